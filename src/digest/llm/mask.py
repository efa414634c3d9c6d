"""What a model cannot see, it cannot mistranslate: LaTeX, URLs and inline code become placeholders.

Before the LLM sees a title or abstract, every LaTeX span (``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``), URL
and inline-code span is replaced by a numbered placeholder ``⟦n⟧``; the answer must carry each placeholder
of the abstract exactly once in its Chinese abstract, and placeholders are restored afterwards. The rest
of the text is encoded so it cannot open or close the prompt's own tags (``<``, ``>``, ``&`` as entities).
Text-mode commands an author wrapped in ``$…$`` are read as text first (as the page reads them), so a span like
``$\\textbf{$\\textit{80$\\times$ lower}$}$`` is one bold phrase around one formula, not three broken spans.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from digest.text import unwrap_text_math

#: longest first: display math before inline math, escaped delimiters never start a span
SPAN = re.compile(  # spans bounded to 2,000 characters: unclosed delimiters cost linear time
    r"(?<!\\)\$\$.{1,2000}?(?<!\\)\$\$"  # $$ … $$
    r"|(?<!\\)\$(?!\s)[^$]{1,2000}?(?<![\\\s])\$"  # $ … $ (no space just inside, like TeX)
    r"|\\\(.{1,2000}?\\\)"  # \( … \)
    r"|\\\[.{1,2000}?\\\]"  # \[ … \]
    r"|https?://[^\s<>\"'）)\]}，。,;]+[^\s<>\"'）)\]}，。,;.:]"  # URLs (no trailing punctuation)
    r"|`[^`\n]+`",  # inline code
    re.DOTALL,
)
PLACEHOLDER = re.compile(r"⟦(\d+)⟧")
_LOOSE = re.compile(r"[【⟦]\s*(\d+)\s*[】⟧]")  # models sometimes turn ⟦n⟧ into 【n】


@dataclass
class Masked:
    text: str  # what the model sees (placeholders, entities encoded)
    spans: list[str] = field(default_factory=list)  # placeholder n → original span

    def ids(self, text: str | None = None) -> list[int]:
        return [int(m) for m in PLACEHOLDER.findall(self.text if text is None else text)]


def mask(text: str, start: int = 0) -> Masked:
    """``text`` with its spans replaced by ``⟦start⟧, ⟦start+1⟧, …``, then ``<``, ``>``, ``&`` encoded."""
    spans: list[str] = []

    def sub(m: re.Match[str]) -> str:
        spans.append(m.group(0))
        return f"⟦{start + len(spans) - 1}⟧"

    masked = SPAN.sub(sub, unwrap_text_math(text))
    return Masked(html.escape(masked, quote=False), spans)


def unmask(text: str, spans: dict[int, str]) -> str:
    """Put the spans back (placeholders with unknown numbers are left as they are; validation catches them)."""
    return PLACEHOLDER.sub(lambda m: spans.get(int(m.group(1)), m.group(0)), text)


_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")


def decode_answer(text: str) -> str:
    """An answer's text: HTML tags dropped (no translation has any: the paper's own ``<`` arrive encoded),
    entities decoded once (the model may echo ``&lt;``), loose placeholders normalised."""
    return _LOOSE.sub(lambda m: f"⟦{m.group(1)}⟧", html.unescape(_TAG.sub("", text)))


def placeholder_problems(answer: str, expected: list[int], name: str, exact: bool = True) -> list[str]:
    """What is wrong with the placeholders of ``answer`` (lost, duplicated, unknown)."""
    got = [int(m) for m in PLACEHOLDER.findall(answer)]
    problems = []
    known = set(expected)
    lost = [n for n in expected if n not in got] if exact else []
    dup = sorted({n for n in got if got.count(n) > 1}) if exact else []
    unknown = sorted({n for n in got if n not in known})
    if lost:
        problems.append(
            f"{name} lost placeholder(s) {', '.join(f'⟦{n}⟧' for n in lost[:6])}: keep each one exactly once"
        )
    if dup:
        problems.append(f"{name} repeats placeholder(s) {', '.join(f'⟦{n}⟧' for n in dup[:6])}: keep each one once")
    if unknown:
        problems.append(f"{name} has unknown placeholder(s) {', '.join(f'⟦{n}⟧' for n in unknown[:6])}")
    return problems
