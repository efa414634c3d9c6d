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


# --- text-mode commands wrapped in math ---------------------------------------------------------------------
#: text-mode commands an author may wrap in ``$…$`` (``$\\textbf{MolSight}$``, ``$\\texttt{$\\textbf{Flora}$}$``)
_TEXT_MODE = {"textbf", "textit", "texttt", "textsc", "textsf", "textrm", "textsl", "textup", "textmd", "text",
              "textnormal", "mbox", "emph", "underline", "textcolor", "href", "url"}  # fmt: skip
_TEXT_IN_MATH = re.compile(r"\$[^$]{0,200}?\\(?:text[a-z]*|emph|underline|mbox|href|url)\b")
_LINK_TARGET = re.compile(r"\\(href|url)\s*\{[^{}]*\}")
_COMMAND = re.compile(r"\\([A-Za-z]+|.)")
#: how far a ``$`` looks for its partner
_SPAN = 2000
_TEX_ESCAPED = set("%&_#${} ,\\")  # \\% \\& \\_ … : escaped characters, text in any mode


class _OverBudget(Exception):
    """The unwrapping of ``$\\text…{}$`` spans looked at more characters than a linear pass allows."""


class _Scan:
    """A bounded left-to-right reading of inline math as MathJax pairs it: braces counted, and a ``$`` inside a
    brace group opening math nested in a ``\\text…{}`` argument. Hostile text (thousands of unpaired ``$`` or
    ``{$``) costs at most a fixed multiple of its length: past that the text is left as it was."""

    def __init__(self, s: str) -> None:
        self.s = s
        self.left = 20 * len(s) + 10_000

    def end(self, i: int) -> int | None:
        """Index of the ``$`` closing the inline math opened just before ``i``, or None."""
        s, depths, stop = self.s, [0], min(len(self.s), i + _SPAN)
        start = i
        try:
            while i < stop:
                c = s[i]
                if c == "\\":
                    i += 2
                    continue
                if c == "{":
                    depths[-1] += 1
                elif c == "}":
                    depths[-1] -= 1
                    if depths[-1] < 0:
                        return None
                elif c == "$" and depths[-1] > 0:
                    depths.append(0)  # math nested in a text argument
                elif c == "$":
                    depths.pop()
                    if not depths:
                        return i
                i += 1
            return None
        finally:
            self.left -= i - start + 1
            if self.left < 0:
                raise _OverBudget

    def text_only(self, a: int, b: int) -> bool:
        """Whether the math body ``s[a:b]`` is only text-mode commands around text (math nested in them aside)."""
        s, outer, i = self.s, [], a
        while i < b:
            end = self.end(i + 1) if s[i] == "$" else None
            if end is not None and end < b:
                i = end + 1
                continue
            step = 2 if s[i] == "\\" else 1
            outer.append(s[i : i + step])
            i += step
        flat = _LINK_TARGET.sub(r"\\\1", "".join(outer).strip())  # a URL's "_" or "#" is not math
        names = [m.group(1) for m in _COMMAND.finditer(flat)]
        return (
            flat.startswith("\\")
            and names[0] in _TEXT_MODE
            and all(n in _TEXT_MODE or n in _TEX_ESCAPED for n in names)
            and not re.search(r"(?<!\\)[\^_&]", flat)
        )

    def unwrap(self, a: int, b: int, level: int = 0) -> str:
        s, out, i = self.s, [], a
        while i < b:
            c = s[i]
            if c == "\\":
                out.append(s[i : i + 2])
                i += 2
                continue
            if c == "$" and s.startswith("$$", i):
                close = s.find("$$", i + 2, b)
                close = b if close < 0 else close + 2
                out.append(s[i:close])
                i = close
                continue
            end = self.end(i + 1) if c == "$" else None
            if end is None or end >= b:
                out.append(c)
                i += 1
                continue
            keep = level >= 4 or not self.text_only(i + 1, end)
            out.append(s[i : end + 1] if keep else self.unwrap(i + 1, end, level + 1))
            i = end + 1
        return "".join(out)


def unwrap_text_math(s: str) -> str:
    """``$\\textbf{…}$`` spans (and the math nested in their arguments, ``$\\texttt{$\\textbf{Flora}$}$``) read as
    text mode, so their commands become emphasis rather than math or raw text; math inside them stays math."""
    if "$" not in s or not _TEXT_IN_MATH.search(s):
        return s
    scan = _Scan(s)
    try:
        return scan.unwrap(0, len(s))
    except _OverBudget:
        return s
