"""Turn a :class:`Digest` into display-ready entries: what every output format shows, decided once.

Pure functions. Escaping for a given format is the template's (HTML autoescape) or ``md_*`` helpers' job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from digest.models import Digest, DigestEntry, SummaryStatus

TOPIC_NAMES = {"clip": "CLIP / contrastive VLM", "editing": "image editing"}
_WS = re.compile(r"\s+")


def one_line(text: str) -> str:
    return _WS.sub(" ", text or "").strip()


@dataclass(frozen=True)
class EntryView:
    n: int
    id: str
    abs_url: str
    pdf_url: str
    title_en: str
    title_zh: str  # the Chinese title, or the English one when there is none
    tldr_zh: str
    tldr_en: str
    abstract_zh: str
    abstract_en: str
    score: float
    topics: dict[str, float]
    status: str  # ok | fallback | failed | missing
    backend: str
    note: str  # visible note when the Chinese text is missing or machine-translated ("" when ok)
    why: list[tuple[str, float]] = field(default_factory=list)
    cross: bool = False

    @property
    def meta(self) -> str:
        """One line: topics, score, who wrote the summary."""
        topics = " · ".join(f"{t} {v:.2f}" for t, v in sorted(self.topics.items(), key=lambda kv: -kv[1]))
        parts = [f"relevance {self.score:.2f}", topics] if topics else [f"relevance {self.score:.2f}"]
        if self.cross:
            parts.append("cross-list")
        parts.append(f"summary: {self.backend}" if self.status == "ok" else f"summary: {self.backend} ({self.status})")
        return " · ".join(parts)


def entry_view(e: DigestEntry) -> EntryView:
    p, s, r = e.paper, e.summary, e.relevance
    status = s.status.value if s else "missing"
    title_zh = one_line(s.title_zh) if s and s.title_zh else ""
    tldr_zh = one_line(s.tldr_zh) if s and s.tldr_zh else ""
    abstract_zh = one_line(s.abstract_zh) if s and s.abstract_zh else ""
    tldr_en = one_line(s.tldr_en) if s and s.tldr_en else ""
    reason = _short_reason(s.reason) if s else ""
    if s is None:
        note = "⚠ 尚未生成摘要，请阅读下方英文摘要（not summarised yet）"
    elif not abstract_zh and s.status == SummaryStatus.failed:
        note = f"⚠ 摘要生成失败，请阅读下方英文摘要（summary failed: {reason or 'unknown'}）"
    elif not abstract_zh:
        note = f"⚠ 中文暂缺，请阅读下方英文摘要（{reason or 'no translation available'}）"
    elif s.status == SummaryStatus.fallback:
        note = f"机器翻译（machine translation, {s.backend}: {reason}）" if reason else f"机器翻译（{s.backend}）"
    else:
        note = ""
    return EntryView(
        n=e.n,
        id=p.id,
        abs_url=f"https://arxiv.org/abs/{p.id}",
        pdf_url=f"https://arxiv.org/pdf/{p.id}",
        title_en=one_line(p.title),
        title_zh=title_zh or one_line(p.title),
        tldr_zh=tldr_zh or note,
        tldr_en=tldr_en or "—",
        abstract_zh=abstract_zh or note,
        abstract_en=one_line(p.abstract),
        score=r.score if r else 0.0,
        topics=dict(r.topics) if r else {},
        status=status,
        backend=s.backend if s else "none",
        note=note,
        why=[(one_line(nb.title), nb.similarity) for nb in (r.neighbours if r else [])],
        cross=p.announce_type == "cross",
    )


def _short_reason(reason: str) -> str:
    """The first clause of a stored reason, without exception details (the store keeps the whole text)."""
    parts = [re.sub(r"\s*\(.*$", "", p).strip() for p in one_line(reason).split(";")]
    return "; ".join(p for p in parts if p)[:160]


def views(d: Digest) -> list[EntryView]:
    return [entry_view(e) for e in d.entries]


def header(d: Digest, categories: list[str]) -> str:
    cats = ", ".join(categories)
    n = len(d.entries)
    approx = " (reconstructed from the arXiv API: approximate)" if d.approximate else ""
    return f"arXiv {cats} · {d.date.isoformat()} · {n} relevant of {d.fetched} papers{approx}"


# --- Markdown escaping ----------------------------------------------------------------------------
def md_cell(text: str) -> str:
    """A GFM table cell: one line, pipes escaped, raw HTML neutralised."""
    return one_line(text).replace("|", "\\|").replace("<", "&lt;")


def md_link_text(text: str) -> str:
    return md_cell(text).replace("[", "\\[").replace("]", "\\]")


def md_para(text: str) -> str:
    """A footnote paragraph: one line, raw HTML neutralised, no accidental heading/list/quote start."""
    t = one_line(text).replace("<", "&lt;")
    if re.match(r"([#>*+-]|\d+[.)])(\s|$)", t):
        t = "\\" + t
    return t
