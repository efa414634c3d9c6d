"""Turn a :class:`Digest` into display-ready entries: what every output format shows, decided once.

Pure functions. Escaping for a given format is the template's (HTML autoescape) or the ``md_*`` helpers'
job; the Markdown helpers also make sure untrusted text cannot create links or images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from markupsafe import Markup

from digest.models import Digest, DigestEntry, LearnItem, SummaryStatus, SummaryTier
from digest.render import latex
from digest.text import one_line

_CODE_HOSTS = re.compile(
    r"https?://(?:www\.)?(?:github\.com|gitlab\.com|bitbucket\.org|huggingface\.co(?:/datasets|/spaces)?)/[\w.-]+/[\w.-]+"
)
_PROJECT = re.compile(r"https?://[\w.-]+\.github\.io(?:/[^\s]*)?|https?://[^\s]*project[^\s]*", re.IGNORECASE)
_PAGES = re.compile(r"\b(\d+)\s+pages?\b", re.IGNORECASE)


@dataclass(frozen=True)
class Badge:
    id: str
    name: str
    score: float


@dataclass(frozen=True)
class EntryView:
    n: int
    id: str
    abs_url: str
    pdf_url: str
    html_url: str
    title_en: str
    title_zh: str  # the Chinese title, or the English one when there is none
    tldr_zh: str
    tldr_en: str
    abstract_zh: str
    abstract_en: str
    score: float
    topics: dict[str, float]
    badges: list[Badge]
    best_topic: str
    status: str  # ok | fallback | missing
    tier: str  # llm | translated | extractive | missing
    backend: str
    note: str  # visible note when the Chinese text is missing or machine-translated ("" when ok)
    why: list[tuple[str, str, float]] = field(default_factory=list)  # (id, title, similarity)
    cross: bool = False
    code_url: str = ""
    project_url: str = ""  # a project page other than the code link (JSON Feed ``links.project``)
    venue: str = ""  # short plain text: clauses with links left out (email, JSON Feed)
    venue_src: str = ""  # the comment and journal reference as written
    bibtex: str = ""
    fulltext_zh_url: str = ""
    authors: str = ""
    author_list: list[str] = field(default_factory=list)
    # the texts as written (text-mode LaTeX included): the plain fields above have it resolved to text
    src: dict[str, str] = field(default_factory=dict)

    def source(self, name: str) -> str:
        return self.src.get(name) or str(getattr(self, name))

    # HTML: text-mode LaTeX as emphasis and links, TeX math as MathML (escaped text, sanitised math)
    @property
    def title_en_html(self) -> Markup:
        return latex.to_html(self.source("title_en"))

    @property
    def title_zh_html(self) -> Markup:
        return latex.to_html(self.source("title_zh"))

    @property
    def tldr_en_html(self) -> Markup:
        return latex.to_html(self.source("tldr_en"))

    @property
    def abstract_en_html(self) -> Markup:
        return latex.to_html(self.source("abstract_en"))

    @property
    def abstract_zh_html(self) -> Markup:
        return latex.to_html(self.source("abstract_zh"))

    @property
    def venue_html(self) -> Markup:
        """The page's venue line: the whole comment with its links (``Project page: https://…``) when it is of a
        reasonable length, else the short line."""
        if self.venue_src and len(self.venue_src) <= 400:
            return latex.to_html(self.venue_src)
        return Markup.escape(self.venue)

    @property
    def meta(self) -> str:
        """One line: topics, score, who wrote the summary."""
        topics = " · ".join(f"{b.name} {b.score:.2f}" for b in self.badges)
        parts = [f"relevance {self.score:.2f}"] + ([topics] if topics else [])
        if self.cross:
            parts.append("cross-list")
        parts.append(f"summary: {self.backend}" if self.status == "ok" else f"summary: {self.backend} ({self.status})")
        return " · ".join(parts)


def _links(texts: tuple[str | None, ...]) -> list[str]:
    """Every link of the texts as the LaTeX reader finds them (``\\url{}``, ``\\href{}{}``, bare; http(s) only)."""
    return [r.href.rstrip(".,;:)") for t in texts if t for r in latex.runs(one_line(t)) if r.href]


def code_link(*texts: str | None) -> str:
    """The paper's code or project URL, when its abstract or comments carry one."""
    links = _links(texts)
    for pattern in (_CODE_HOSTS, _PROJECT):
        for link in links:
            if m := pattern.match(link):
                return m.group(0).rstrip(".,;:)")
    return ""


def project_link(*texts: str | None) -> str:
    """The paper's project page (``*.github.io``, a URL naming a project) when it is not its code link."""
    code = code_link(*texts)
    for link in _links(texts):
        if (m := _PROJECT.match(link)) and not _CODE_HOSTS.match(link) and m.group(0) != code:
            return m.group(0)
    return ""


#: where a comment's clauses part: "ECCV 2024 (Oral), project page: https://…; Code: https://…"
_CLAUSE = re.compile(r"(\s*[;,]\s+|(?<=\.)\s+|\s*·\s*)")


def venue_source(comment: str | None, journal_ref: str | None) -> str:
    """The arXiv comment and journal reference as one line (text-mode LaTeX not yet resolved)."""
    parts = [one_line(x) for x in (comment, journal_ref) if x and one_line(x)]
    return " · ".join(dict.fromkeys(parts))


def venue_line(comment: str | None, journal_ref: str | None) -> str:
    """The venue, pages and the like in short plain text: text-mode LaTeX resolved, and every clause that carries a
    link left out (the links have their own place: the Code link, the full venue line of the page)."""
    pieces = _CLAUSE.split(latex.plain(venue_source(comment, journal_ref)))
    kept: list[str] = []
    for i in range(0, len(pieces), 2):
        if "http://" in pieces[i] or "https://" in pieces[i] or "www." in pieces[i]:
            continue
        if kept and pieces[i].strip():
            kept.append(pieces[i - 1])
        if pieces[i].strip():
            kept.append(pieces[i])
    text = "".join(kept).strip(" ,;·")
    return text if len(text) <= 200 else text[:199].rstrip() + "…"


def bibtex(e: DigestEntry) -> str:
    p = e.paper

    def esc(s: str) -> str:
        return s.replace("\\", "\\textbackslash{}").replace("{", "\\{").replace("}", "\\}")

    when = p.published or p.updated
    year = when.year if when is not None else (p.announced.year if p.announced else "")
    first = (p.authors[0].split()[-1] if p.authors and p.authors[0].split() else "arxiv").lower()
    key = re.sub(r"[^a-z0-9]", "", first) + str(year) + "_" + p.id.replace(".", "_").replace("/", "_")
    fields = [
        ("title", esc(p.title)),
        ("author", esc(" and ".join(p.authors)) if p.authors else ""),
        ("year", str(year)),
        ("eprint", p.id),
        ("archivePrefix", "arXiv"),
        ("primaryClass", p.primary_category or ""),
        ("url", p.abs_url),
    ]
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields if v)
    return f"@misc{{{key},\n{body}\n}}"


def entry_view(e: DigestEntry, topic_names: dict[str, str], fulltext_zh: str | None = None) -> EntryView:
    p, s, r = e.paper, e.summary, e.relevance
    status = s.status.value if s else "missing"
    tier = s.tier.value if s else "missing"
    title_zh = one_line(s.title_zh) if s and s.title_zh else ""
    tldr_zh = one_line(s.tldr_zh) if s and s.tldr_zh else ""
    abstract_zh = one_line(s.abstract_zh) if s and s.abstract_zh else ""
    tldr_en = one_line(s.tldr_en) if s and s.tldr_en else ""
    reason = _short_reason(s.reason) if s else ""
    if s is None:
        note = "⚠ 尚未生成摘要，请阅读下方英文摘要（not summarised yet）"
    elif not abstract_zh and s.status == SummaryStatus.fallback:
        note = f"⚠ 中文摘要暂缺，请阅读下方英文摘要（{reason or 'summary failed'}）"
    elif not abstract_zh:
        note = f"⚠ 中文暂缺，请阅读下方英文摘要（{reason or 'no translation available'}）"
    elif s.tier == SummaryTier.translated:
        note = f"机器翻译（machine translation, {s.backend}: {reason}）" if reason else f"机器翻译（{s.backend}）"
    else:
        note = ""
    topics = dict(r.topics) if r else {}
    best = r.best_topic if r and r.best_topic else ""
    matched = [t for t in topics if t == best or topics[t] >= 0.5]
    badges = [Badge(t, topic_names.get(t, t), topics[t]) for t in sorted(matched, key=lambda t: -topics[t])]
    src = {
        "title_en": one_line(p.title),
        "title_zh": title_zh or one_line(p.title),
        "tldr_zh": tldr_zh or note,
        "tldr_en": tldr_en or "—",
        "abstract_zh": abstract_zh or note,
        "abstract_en": one_line(p.abstract),
    }
    text = {k: latex.plain(v) for k, v in src.items()}
    return EntryView(
        n=e.n,
        id=p.id,
        abs_url=p.abs_url,
        pdf_url=p.pdf_url,
        html_url=p.html_url,
        title_en=text["title_en"],
        title_zh=text["title_zh"],
        tldr_zh=text["tldr_zh"],
        tldr_en=text["tldr_en"],
        abstract_zh=text["abstract_zh"],
        abstract_en=text["abstract_en"],
        src=src,
        score=r.score if r else 0.0,
        topics=topics,
        badges=badges,
        best_topic=best,
        status=status,
        tier=tier,
        backend=s.backend if s else "none",
        note=note,
        why=[(nb.id, one_line(nb.title), nb.similarity) for nb in (r.neighbours if r else [])],
        cross=p.announce_type == "cross",
        code_url=code_link(p.abstract, p.comment),
        project_url=project_link(p.abstract, p.comment),
        venue=venue_line(p.comment, p.journal_ref),
        venue_src=venue_source(p.comment, p.journal_ref),
        bibtex=bibtex(e),
        fulltext_zh_url=fulltext_zh.replace("{id}", p.id) if fulltext_zh else "",
        authors=", ".join(p.authors[:12]) + (" et al." if len(p.authors) > 12 else ""),
        author_list=list(p.authors),
    )


def broken_view(e: DigestEntry, exc: BaseException) -> EntryView:
    """An entry that could not be prepared: shown marked (title and link only), never failing the day."""
    p = e.paper
    note = f"⚠ 此条目无法显示（entry could not be rendered: {exc.__class__.__name__}）"
    return EntryView(
        n=e.n, id=p.id, abs_url=p.abs_url, pdf_url=p.pdf_url, html_url=p.html_url, title_en=one_line(p.title),
        title_zh=one_line(p.title), tldr_zh=note, tldr_en="—", abstract_zh=note, abstract_en=one_line(p.abstract),
        score=e.relevance.score if e.relevance else 0.0, topics={}, badges=[], best_topic="", status="missing",
        tier="missing", backend="none", note=note,
    )  # fmt: skip


#: what a reader may be told of a fallback: generic phrases only, never upstream text (the operator's log has it)
_READER_REASONS = (
    ("LLM answer rejected", "the LLM's answer was rejected"),
    ("LLM answer unavailable", "the LLM was unavailable"),
    ("translation unavailable", "translation unavailable"),
    ("repaired", "repaired"),
)


def _short_reason(reason: str) -> str:
    """A short, generic reason for readers: which kind of fallback, never the stored details."""
    text = one_line(reason)
    said = [phrase for key, phrase in _READER_REASONS if key in text]
    return "; ".join(said) if said else ("fallback" if text else "")


def views(d: Digest, fulltext_zh: str | None = None) -> list[EntryView]:
    out = []
    for e in d.entries:
        try:
            out.append(entry_view(e, d.topic_names, fulltext_zh))
        except Exception as exc:  # one bad entry is shown marked; it never fails the day
            out.append(broken_view(e, exc))
    return out


@dataclass(frozen=True)
class LearnView:
    """A "help me learn" paper as shown: its title as plain text and the topic its vote links are for."""

    id: str
    title: str
    abs_url: str
    best_topic: str


def learn_views(items: list[LearnItem]) -> list[LearnView]:
    return [LearnView(x.id, latex.plain(one_line(x.title)), x.abs_url, x.topic) for x in items]


@dataclass(frozen=True)
class Section:
    topic: str
    name: str
    entries: list[EntryView]


def sections(entries: list[EntryView], topic_names: dict[str, str]) -> list[Section]:
    """Entries grouped by their best topic, in the model's topic order (a paper appears once), numbered
    in reading order (the Markdown digest keeps its own, global relevance order)."""
    groups = [(tid, name, [e for e in entries if e.best_topic == tid]) for tid, name in topic_names.items()]
    groups.append(("other", "Other", [e for e in entries if e.best_topic not in topic_names]))
    out, n = [], 0
    for tid, name, group in groups:
        if not group:
            continue
        numbered = []
        for e in group:
            n += 1
            numbered.append(replace(e, n=n))
        out.append(Section(tid, name, numbered))
    return out


def header(d: Digest, categories: list[str]) -> str:
    cats = ", ".join(categories)
    n = len(d.entries)
    approx = " (reconstructed from the arXiv API: approximate)" if d.approximate else ""
    title = d.title or f"arXiv {cats} · {d.date.isoformat()}"
    return f"{title} · {n} relevant of {d.fetched} papers{approx}"


# --- Markdown escaping ----------------------------------------------------------------------------
def _md_inline(text: str) -> str:
    """One line; raw HTML and link/image syntax neutralised (untrusted text cannot make links)."""
    t = re.sub(r"&(?=#?\w+;)", "&amp;", one_line(text)).replace("<", "&lt;").replace(">", "&gt;")
    return t.replace("[", "\\[").replace("]", "\\]")


def md_cell(text: str) -> str:
    """A GFM table cell: one line, pipes escaped, no HTML, no links."""
    return _md_inline(text).replace("|", "\\|")


def md_link_text(text: str) -> str:
    return md_cell(text)


def md_url(url: str) -> str:
    """A link target: only http(s) URLs pass (anything else becomes ``#``), parentheses encoded."""
    if not re.match(r"^https?://[^\s<>]+$", url):
        return "#"
    return url.replace("(", "%28").replace(")", "%29")


def md_note(text: str) -> str:
    """A footnote's title line: like :func:`md_para`. Renderers without footnote support read ``[^1]: x`` as a
    link definition whose target is the title's first word, so a title starting with a script scheme
    (``javascript:``, ``data:``, …) gets a full-width colon and can never become a live link."""
    t = md_para(text)
    return re.sub(r"^(\s*(?:javascript|vbscript|data|file|blob))\s*:", r"\1：", t, flags=re.IGNORECASE)


def md_rich(text: str) -> str:
    """A footnote paragraph from text with text-mode LaTeX: ``**bold**``, ``*italic*`` and http(s) links from
    ``\\textbf``/``\\emph``/``\\href``/``\\url`` and bare URLs; otherwise like :func:`md_para`."""
    t = latex.to_markdown(one_line(text), _md_inline, md_url)
    if re.match(r"([#>*+-]|\d+[.)])(\s|$)", t):
        t = "\\" + t
    return t


def md_para(text: str) -> str:
    """A footnote paragraph: one line, no HTML, no links/images, no accidental heading/list/quote start."""
    t = _md_inline(text)
    if re.match(r"([#>*+-]|\d+[.)])(\s|$)", t):
        t = "\\" + t
    return t
