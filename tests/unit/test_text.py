"""Text hygiene: one place that knows what untrusted text may carry."""

from __future__ import annotations

import pytest

from digest.models import Paper, Summary, SummaryTier
from digest.text import clean_abstract, clean_text, decode_entities, split_id, unsafe_chars


def test_prefix_stripped_and_wraps_collapsed() -> None:
    raw = "arXiv:2403.13298v1 Announce Type: cross \nAbstract: Rotary   Position\n  Embedding $O(n^2)$ at https://x.org/a_b."
    assert clean_abstract(raw) == "Rotary Position Embedding $O(n^2)$ at https://x.org/a_b."


def test_replace_cross_prefix() -> None:
    assert clean_abstract("arXiv:2203.01250v3 Announce Type: replace-cross \nAbstract: X y") == "X y"


def test_never_truncates_long_abstract() -> None:
    text = "word " * 2000
    assert len(clean_abstract(text)) == len(text.strip())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("oai:arXiv.org:2403.13298v2", ("2403.13298", 2)),
        ("http://arxiv.org/abs/2202.12139v1", ("2202.12139", 1)),
        ("https://arxiv.org/abs/2604.21935", ("2604.21935", None)),
        ("http://arxiv.org/abs/hep-ex/0406020v1", ("hep-ex/0406020", 1)),
    ],
)
def test_split_id(raw: str, expected: tuple[str, int | None]) -> None:
    assert split_id(raw) == expected


def test_paper_cleans_and_derives_urls() -> None:
    p = Paper(id="2403.13298", version=1, title="A\n  title", abstract="Abstract:  b\nc")
    assert p.title == "A title" and p.abstract == "b c"
    assert p.abs_url == "https://arxiv.org/abs/2403.13298" and p.html_url == "https://arxiv.org/html/2403.13298"
    assert clean_text(None) == ""


@pytest.mark.parametrize("bad", ["\u0008", "\u202e", "\u2066", "\x00", "\x1b", "\u200f", "\ufeff", "\x85"])
def test_control_and_bidi_characters_are_stripped_from_every_record(bad: str) -> None:
    title = f"Edit{bad}ing images"
    assert unsafe_chars(title)
    p = Paper(id="1", title=title, abstract=f"An {bad}abstract", authors=[f"A{bad}da"])
    assert p.title == "Editing images" and p.abstract == "An abstract" and p.authors == ["Ada"]
    s = Summary(id="1", version=1, title_zh=f"标题{bad}", tier=SummaryTier.llm, backend="llm:x")
    assert s.title_zh == "标题" and not unsafe_chars(s.title_zh)


def test_entities_decoded_once() -> None:
    assert decode_entities("H&amp;E staining &amp;amp; more") == "H&E staining &amp; more"
    assert decode_entities("no entities") == "no entities"
