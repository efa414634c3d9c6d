"""Validation of an answer: each problem is caught and named for the repair call."""

from __future__ import annotations

from digest.llm.mask import mask
from digest.llm.validate import validate
from digest.models import SummaryFields

TITLE = "Editing images with CLIP guidance"
ABSTRACT = (
    "We present a diffusion model for image editing guided by CLIP, with $\\mathcal{O}(n)$ cost. "
    "It improves FID by 12.5 on 3 benchmarks. Code: https://github.com/x/y " + "More words here. " * 10
)
GLOSSARY = {"keep": ["CLIP", "LoRA"], "fixed": {"diffusion model": "扩散模型", "image editing": "图像编辑"}}


def good() -> SummaryFields:
    t, a = mask(TITLE), mask(ABSTRACT, start=100)
    zh = (
        "我们提出一种用于图像编辑的扩散模型，由CLIP引导，代价为⟦100⟧，FID提高12.5，在3个基准上，代码⟦101⟧。"
        + "更多内容。" * 20
    )
    del t, a
    return SummaryFields(tldr_en="A CLIP-guided diffusion editor.", title_zh="基于CLIP引导的图像编辑",
                         tldr_zh="一种CLIP引导的扩散模型图像编辑方法。", abstract_zh=zh)  # fmt: skip


def check(f: SummaryFields) -> list[str]:
    return validate(f, mask(TITLE), mask(ABSTRACT, start=100), GLOSSARY)


def test_a_good_answer_passes() -> None:
    assert check(good()) == []


def test_each_problem_is_named() -> None:
    g = good()
    cases = {
        "title_zh contains control or bidirectional characters (U+0008)": g.model_copy(update={"title_zh": "标题\u0008"}),
        "tldr_zh contains control or bidirectional characters (U+202E)": g.model_copy(update={"tldr_zh": "\u202e中文摘要内容"}),
        "abstract_zh lost placeholder(s) ⟦100⟧": g.model_copy(update={"abstract_zh": g.abstract_zh.replace("⟦100⟧", "")}),
        "abstract_zh repeats placeholder(s) ⟦101⟧": g.model_copy(update={"abstract_zh": g.abstract_zh + "⟦101⟧"}),
        "abstract_zh must keep these terms in English: CLIP": g.model_copy(update={"abstract_zh": g.abstract_zh.replace("CLIP", "对比模型")}),
        "abstract_zh must use the fixed translations diffusion model→扩散模型": g.model_copy(update={"abstract_zh": g.abstract_zh.replace("扩散模型", "弥散模型")}),
        "abstract_zh lacks numbers 12.5": g.model_copy(update={"abstract_zh": g.abstract_zh.replace("12.5", "")}),
        "abstract_zh is not Chinese": g.model_copy(update={"abstract_zh": ABSTRACT}),
        "tldr_zh is empty": g.model_copy(update={"tldr_zh": " "}),
    }  # fmt: skip
    for expected, answer in cases.items():
        errors = check(answer)
        assert any(expected in e for e in errors), (expected, errors)


def test_a_video_clip_is_not_the_clip_model() -> None:
    f = good().model_copy(update={"abstract_zh": good().abstract_zh.replace("CLIP", "视频片段")})
    plain = validate(f, mask("Short video clip editing"), mask(ABSTRACT.replace("CLIP", "clip"), start=100), GLOSSARY)
    assert not any("keep these terms" in e for e in plain)
