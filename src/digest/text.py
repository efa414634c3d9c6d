"""Text hygiene shared by every source: one place that knows what untrusted text may carry.

Everything from arXiv (RSS, API), the LLM or a translator passes through :func:`clean_text` before it is
stored: control characters and bidirectional overrides are removed (they break XML feeds and can
reorder what a reader sees), whitespace is collapsed, and LaTeX, URLs and numbers are kept as they are.
"""

from __future__ import annotations

import html
import re

_PREFIX = re.compile(
    r"^\s*arXiv:\s*\S+\s+Announce\s+Type:\s*[\w-]+\s*(?:Abstract:\s*)?",
    re.IGNORECASE,
)
_ABSTRACT_LABEL = re.compile(r"^\s*Abstract:\s*", re.IGNORECASE)
_WS = re.compile(r"\s+")
_ID_VERSION = re.compile(r"(?P<id>(?:\d{4}\.\d{4,5})|(?:[a-z\-]+(?:\.[A-Z]{2})?/\d{7}))(?:v(?P<v>\d+))?")

#: C0 controls except tab/newline/CR (collapsed as whitespace), DEL, C1 controls, and the characters
#: XML 1.0 forbids outright (U+FFFE, U+FFFF, lone surrogates).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
#: bidirectional embeddings/overrides/isolates and marks (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C),
#: plus the BOM / zero-width no-break space.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\ufeff]")


def unsafe_chars(text: str) -> list[str]:
    """The control / bidi characters in ``text``, as ``U+XXXX`` names (for validation messages)."""
    found = {c for c in _CONTROL.findall(text) + _BIDI.findall(text)}
    return sorted(f"U+{ord(c):04X}" for c in found)


def strip_unsafe(text: str) -> str:
    """``text`` without control characters and bidi controls (whitespace untouched)."""
    return _BIDI.sub("", _CONTROL.sub("", text))


def clean_text(text: str | None) -> str:
    """Strip unsafe characters, collapse hard wraps and repeated whitespace. LaTeX, URLs, numbers kept."""
    if not text:
        return ""
    return _WS.sub(" ", strip_unsafe(text)).strip()


def decode_entities(text: str | None) -> str:
    """Decode HTML entities once (arXiv's RSS carries ``&amp;`` in text that is not HTML)."""
    return html.unescape(text) if text and "&" in text else (text or "")


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


def one_line(text: str | None) -> str:
    return _WS.sub(" ", text or "").strip()
