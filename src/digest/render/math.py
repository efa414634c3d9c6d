"""TeX in titles and abstracts → MathML on the server, so the page needs no script and no CDN.

Each ``$…$`` / ``$$…$$`` / ``\\(…\\)`` / ``\\[…\\]`` span is converted on its own with ``latex2mathml``; a span that
cannot be rendered (an unknown macro, a converter error, anything outside a MathML allowlist) is shown
as its TeX source — for that span only, never blanking the rest of the text. The converter's output is
re-serialised through an element/attribute allowlist, so TeX from an untrusted abstract cannot inject
links (``\\href``), scripts or event handlers.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache

from markupsafe import Markup, escape

#: a math span is at most MAX_SPAN characters: an unclosed delimiter costs a bounded look-ahead, so thousands of
#: them render in linear time (an unbounded lazy match made 12,000 unclosed ``\(`` take 31 s)
MAX_SPAN = 2000
MATH_SPAN = re.compile(
    r"(?<!\\)\$\$(?P<d1>.{1,N}?)(?<!\\)\$\$"
    r"|(?<!\\)\$(?!\s)(?P<i1>[^$]{1,N}?)(?<![\\\s])\$"
    r"|\\\((?P<i2>.{1,N}?)\\\)"
    r"|\\\[(?P<d2>.{1,N}?)\\\]".replace("N", str(MAX_SPAN)),
    re.DOTALL,
)
NS = "{http://www.w3.org/1998/Math/MathML}"
TAGS = {
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub", "msubsup", "mfrac", "msqrt",
    "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom",
    "menclose", "semantics", "mfenced", "mmultiscripts", "mprescripts", "none",
}  # fmt: skip
ATTRS = {
    "display", "mathvariant", "stretchy", "fence", "separator", "accent", "accentunder", "lspace", "rspace",
    "linethickness", "columnalign", "rowspacing", "columnspacing", "displaystyle", "scriptlevel", "minsize",
    "maxsize", "movablelimits", "symmetric", "largeop", "form", "width", "height", "depth", "notation",
    "open", "close", "separators", "columnlines", "rowlines", "frame", "mathsize", "align",
}  # fmt: skip
_SAFE_VALUE = re.compile(r"^[\w .,%#+-]*$")
ET.register_namespace("", NS[1:-1])


@dataclass(frozen=True)
class Segment:
    text: str  # the source text of this piece (TeX for math, with its delimiters)
    mathml: str = ""  # rendered MathML ("" = plain text, or math that could not be rendered)

    @property
    def is_math(self) -> bool:
        return bool(self.mathml)


def _clean(el: ET.Element) -> bool:
    tag = el.tag.removeprefix(NS)
    if tag not in TAGS:
        return False
    for k in list(el.attrib):
        if k not in ATTRS or not _SAFE_VALUE.match(el.attrib[k]):
            del el.attrib[k]
    if tag == "mi" and (el.text or "").startswith("\\"):  # an unknown macro, echoed as an identifier
        return False
    return all(_clean(c) for c in el)


@lru_cache(maxsize=4096)
def tex_to_mathml(tex: str, display: bool = False) -> str:
    """MathML for one TeX span, or "" if it cannot be rendered safely."""
    from latex2mathml.converter import convert

    try:
        raw = convert(tex.strip(), display="block" if display else "inline")
        root = ET.fromstring(raw)
    except Exception:  # the converter raises many kinds of errors on odd TeX
        return ""
    if not _clean(root):
        return ""
    return ET.tostring(root, encoding="unicode")


def segments(text: str) -> list[Segment]:
    """``text`` split into plain pieces and math spans (rendered where possible)."""
    out: list[Segment] = []
    pos = 0
    for m in MATH_SPAN.finditer(text):
        if m.start() > pos:
            out.append(Segment(text[pos : m.start()]))
        display = m.group("d1") is not None or m.group("d2") is not None
        tex = next(g for g in (m.group("d1"), m.group("i1"), m.group("i2"), m.group("d2")) if g is not None)
        out.append(Segment(m.group(0), tex_to_mathml(tex, display)))
        pos = m.end()
    if pos < len(text):
        out.append(Segment(text[pos:]))
    return out


def to_html(text: str) -> Markup:
    """Escaped text with its math as MathML (unrenderable spans stay as escaped TeX source)."""
    parts = []
    for seg in segments(text):
        if seg.is_math:
            parts.append(f'<span class="math" title="{escape(seg.text)}">{seg.mathml}</span>')
        else:
            parts.append(str(escape(seg.text)))
    return Markup("".join(parts))
