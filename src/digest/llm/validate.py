"""Validation of an LLM answer against its English source. Thresholds measured on real translations.

Measured on 4,475 real LLM translations in ../shared/bilingual (cn-chat-arxiv): the CJK share of letters in a
Chinese abstract (LaTeX and URLs removed) has 1st percentile 0.68, median 0.93; Chinese TL;DRs (daily-arXiv)
1st percentile 0.52; Chinese titles 5th percentile 0.49. The zh/en character-length ratio of full translations
has median 0.30 and 99.5th percentile 0.43; below ~0.14 they are condensed, not translated.
"""

from __future__ import annotations

import re

from digest.models import SummaryFields

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")
LATEX = re.compile(r"(?<!\\)\$[^$]+?(?<!\\)\$")
URL = re.compile(r"https?://[^\s)\]}>,;]+")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
LEAKS = (
    "announce type",
    "abstract:",
    "tldr_en",
    "title_zh",
    "tldr_zh",
    "abstract_zh",
    "as an ai",
    "<abstract>",
    "</abstract>",
    "<title>",
    "ignore previous",
    "ignore all previous",
)

MIN_CJK = {"title_zh": 0.2, "tldr_zh": 0.4, "abstract_zh": 0.5}
LENGTH_RATIO = (0.14, 0.9)
MAX_TLDR_EN_CJK = 0.05


def cjk_ratio(text: str) -> float:
    text = URL.sub("", LATEX.sub("", text))
    c = len(CJK.findall(text))
    return c / max(c + len(LATIN.findall(text)), 1)


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", s)


def numbers_of(text: str) -> set[str]:
    text = URL.sub(" ", LATEX.sub(" ", text))
    return {n for n in NUMBER.findall(text)}


def validate(fields: SummaryFields, title: str, abstract: str) -> list[str]:
    """Problems with an answer (empty list = valid)."""
    errors: list[str] = []
    for name in ("tldr_en", "title_zh", "tldr_zh", "abstract_zh"):
        if not getattr(fields, name).strip():
            errors.append(f"{name} is empty")
    if errors:
        return errors
    for name, floor in MIN_CJK.items():
        r = cjk_ratio(getattr(fields, name))
        if r < floor:
            errors.append(f"{name} is not Chinese (CJK share {r:.2f} < {floor})")
    if cjk_ratio(fields.tldr_en) > MAX_TLDR_EN_CJK:
        errors.append("tldr_en must be English")
    if len(fields.tldr_en.split()) > 80:
        errors.append("tldr_en must be one sentence")
    ratio = len(fields.abstract_zh) / max(len(abstract), 1)
    lo, hi = LENGTH_RATIO
    if len(abstract) > 200 and not lo <= ratio <= hi:
        errors.append(f"abstract_zh length is {ratio:.2f}× the English (expected {lo}–{hi}): translate it all, once")
    zh = _norm(fields.abstract_zh)
    missing_tex = [s for s in LATEX.findall(abstract) if _norm(s) not in zh]
    if missing_tex:
        errors.append("abstract_zh lacks LaTeX spans " + ", ".join(missing_tex[:5]))
    missing_num = sorted(n for n in numbers_of(abstract) if n not in fields.abstract_zh)
    if missing_num:
        errors.append("abstract_zh lacks numbers " + ", ".join(missing_num[:8]))
    for name in ("tldr_en", "title_zh", "tldr_zh", "abstract_zh"):
        low = getattr(fields, name).lower()
        leaked = [w for w in LEAKS if w in low and w not in abstract.lower()]
        if leaked:
            errors.append(f"{name} contains prompt text ({', '.join(leaked)})")
    return errors
