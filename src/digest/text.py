"""Text hygiene shared by every source: one place that knows what arXiv text looks like."""

from __future__ import annotations

import re

_PREFIX = re.compile(
    r"^\s*arXiv:\s*\S+\s+Announce\s+Type:\s*[\w-]+\s*(?:Abstract:\s*)?",
    re.IGNORECASE,
)
_ABSTRACT_LABEL = re.compile(r"^\s*Abstract:\s*", re.IGNORECASE)
_WS = re.compile(r"\s+")
_ID_VERSION = re.compile(r"(?P<id>(?:\d{4}\.\d{4,5})|(?:[a-z\-]+(?:\.[A-Z]{2})?/\d{7}))(?:v(?P<v>\d+))?")


def clean_text(text: str | None) -> str:
    """Collapse hard wraps and repeated whitespace. LaTeX, URLs and numbers are kept as they are."""
    if not text:
        return ""
    return _WS.sub(" ", text).strip()


def clean_abstract(text: str | None) -> str:
    """Strip the RSS ``arXiv:… Announce Type: … Abstract:`` prefix, then :func:`clean_text`. Never truncates."""
    if not text:
        return ""
    text = _PREFIX.sub("", text, count=1)
    text = _ABSTRACT_LABEL.sub("", text, count=1)
    return clean_text(text)


def split_id(raw: str) -> tuple[str, int | None]:
    """``'oai:arXiv.org:2403.13298v2'`` or ``'http://arxiv.org/abs/2403.13298v2'`` → ``('2403.13298', 2)``."""
    matches = list(_ID_VERSION.finditer(raw))
    m = matches[-1] if matches else None  # the last match is the id (URLs may contain other digits first)
    if m is None:
        raise ValueError(f"no arXiv id in {raw!r}")
    version = m.group("v")
    return m.group("id"), int(version) if version else None
