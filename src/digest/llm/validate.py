"""Validation of an LLM answer against its English source. Thresholds measured on real translations.

Measured on 4,475 real LLM translations in ../shared/bilingual (cn-chat-arxiv): the CJK share of letters in a
Chinese abstract (LaTeX and URLs removed) has 1st percentile 0.68, median 0.93; Chinese TL;DRs (daily-arXiv)
1st percentile 0.52; Chinese titles 5th percentile 0.49. The zh/en character-length ratio of full translations
has median 0.30 and 99.5th percentile 0.43; below ~0.14 they are condensed, not translated.

The answer checked here is the *masked* one (placeholders for LaTeX/URLs/code, see :mod:`digest.llm.mask`):
each placeholder of the abstract must appear exactly once in the Chinese abstract. The glossary is checked,
not only requested: a kept term the source contains must appear in the Chinese text, and a fixed
translation must be used. Control characters and bidi overrides are rejected (the repair call is told).
"""

from __future__ import annotations

import re
from typing import Any

from digest.llm.mask import PLACEHOLDER, Masked, placeholder_problems
from digest.models import SummaryFields
from digest.text import unsafe_chars

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
FIELDS = ("tldr_en", "title_zh", "tldr_zh", "abstract_zh")
MIN_CJK = {"title_zh": 0.2, "tldr_zh": 0.4, "abstract_zh": 0.5}
LENGTH_RATIO = (0.14, 0.9)
MAX_TLDR_ZH = 300
MAX_TLDR_EN = 600
MAX_TLDR_EN_CJK = 0.05


def cjk_ratio(text: str) -> float:
    text = PLACEHOLDER.sub("", URL.sub("", LATEX.sub("", text)))
    c = len(CJK.findall(text))
    return c / max(c + len(LATIN.findall(text)), 1)


def numbers_of(text: str) -> set[str]:
    text = PLACEHOLDER.sub(" ", URL.sub(" ", LATEX.sub(" ", text)))
    return set(NUMBER.findall(text))


def term_pattern(term: str, case: bool = True) -> re.Pattern[str]:
    """A glossary term as a whole word (plural allowed); kept terms are case-sensitive (CLIP, not a video clip)."""
    flags = 0 if case else re.IGNORECASE
    return re.compile(r"(?<![A-Za-z0-9])" + re.escape(term) + r"(?:e?s)?(?![A-Za-z0-9])", flags)


def glossary_problems(source: str, chinese: str, glossary: dict[str, Any], name: str) -> list[str]:
    """Kept terms that the source has but ``chinese`` lacks; fixed translations not used."""
    problems = []
    lost = [
        t for t in glossary.get("keep", []) if term_pattern(t).search(source) and not term_pattern(t).search(chinese)
    ]
    if lost:
        problems.append(f"{name} must keep these terms in English: {', '.join(lost[:6])}")
    wrong = [
        f"{en}→{zh}"
        for en, zh in (glossary.get("fixed") or {}).items()
        if term_pattern(en, case=False).search(source) and zh not in chinese
    ]
    if wrong:
        problems.append(f"{name} must use the fixed translations {', '.join(wrong[:6])}")
    return problems


def validate(
    fields: SummaryFields, title: Masked, abstract: Masked, glossary: dict[str, Any] | None = None
) -> list[str]:
    """Problems with a (masked) answer; an empty list means valid."""
    errors: list[str] = []
    for name in FIELDS:
        if not getattr(fields, name).strip():
            errors.append(f"{name} is empty")
    if errors:
        return errors
    for name in FIELDS:
        bad = unsafe_chars(getattr(fields, name))
        if bad:
            errors.append(f"{name} contains control or bidirectional characters ({', '.join(bad[:5])}): remove them")
    for name, floor in MIN_CJK.items():
        r = cjk_ratio(getattr(fields, name))
        if r < floor:
            errors.append(f"{name} is not Chinese (CJK share {r:.2f} < {floor})")
    # caps: a model stuck in a repetition loop must not put a 225 KB title into every page, feed and email
    if len(fields.title_zh) > 3 * len(title.text) + 40:
        errors.append("title_zh is far longer than the title: translate the title once")
    if len(fields.tldr_zh) > MAX_TLDR_ZH:
        errors.append(f"tldr_zh must be one short sentence (at most {MAX_TLDR_ZH} characters)")
    if len(fields.tldr_en) > MAX_TLDR_EN:
        errors.append(f"tldr_en must be one short sentence (at most {MAX_TLDR_EN} characters)")
    if len(fields.abstract_zh) > LENGTH_RATIO[1] * len(abstract.text) + 300:
        errors.append("abstract_zh is far longer than the abstract: translate it all, once")
    if cjk_ratio(fields.tldr_en) > MAX_TLDR_EN_CJK:
        errors.append("tldr_en must be English")
    if len(fields.tldr_en.split()) > 80:
        errors.append("tldr_en must be one sentence")
    plain = PLACEHOLDER.sub("", abstract.text)
    ratio = len(PLACEHOLDER.sub("", fields.abstract_zh)) / max(len(plain), 1)
    lo, hi = LENGTH_RATIO
    if len(plain) > 200 and not lo <= ratio <= hi:
        errors.append(f"abstract_zh length is {ratio:.2f}× the English (expected {lo}–{hi}): translate it all, once")
    errors += placeholder_problems(fields.abstract_zh, abstract.ids(), "abstract_zh")
    errors += placeholder_problems(fields.title_zh, title.ids(), "title_zh", exact=False)
    known = title.ids() + abstract.ids()
    for name in ("tldr_en", "tldr_zh"):
        errors += placeholder_problems(getattr(fields, name), known, name, exact=False)
    missing_num = sorted(n for n in numbers_of(abstract.text) if n not in fields.abstract_zh)
    if missing_num:
        errors.append("abstract_zh lacks numbers " + ", ".join(missing_num[:8]))
    if glossary:
        errors += glossary_problems(PLACEHOLDER.sub(" ", abstract.text), fields.abstract_zh, glossary, "abstract_zh")
        errors += glossary_problems(PLACEHOLDER.sub(" ", title.text), fields.title_zh, glossary, "title_zh")
    source = (title.text + " " + abstract.text).lower()
    for name in FIELDS:
        low = getattr(fields, name).lower()
        leaked = [w for w in LEAKS if w in low and w not in source]
        if leaked:
            errors.append(f"{name} contains prompt text ({', '.join(leaked)})")
    return errors
