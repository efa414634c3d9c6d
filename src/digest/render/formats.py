"""Output formats, as pure functions of digests: Markdown, HTML page, index page, RSS/Atom, email bodies.

Every format escapes untrusted text for its own context: HTML is autoescaped (math as sanitised MathML);
Markdown goes through the ``md_*`` filters (no raw HTML, no links or images from untrusted text, link
targets http(s) only); an RSS ``<description>`` is HTML that readers render, so the text is HTML-escaped
before feedgen escapes it again as XML; Atom content is typed HTML, escaped the same way.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from feedgen.feed import FeedGenerator
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from digest.models import Digest, Edition, LearnItem
from digest.render.view import (
    EntryView,
    LearnView,
    header,
    learn_views,
    md_cell,
    md_link_text,
    md_note,
    md_para,
    md_rich,
    md_url,
    sections,
    views,
)


@cache
def _env(html_mode: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("digest.render", "templates"),
        autoescape=html_mode,  # every HTML template is autoescaped; Markdown escapes via the md_* filters
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters.update(
        nowrap_dates=nowrap_dates,
        md_cell=md_cell, md_link=md_link_text, md_para=md_para, md_url=md_url, md_note=md_note, md_rich=md_rich
    )
    return env


def nowrap_dates(text: str) -> Markup:
    """Escaped text whose ISO dates never break across lines (a phone broke "2026-06-" / "02" at the hyphen)."""
    parts = re.split(r"(\d{4}-\d{2}-\d{2})", text)
    return Markup("".join(
        f'<span class="nowrap">{escape(p)}</span>' if i % 2 else str(escape(p)) for i, p in enumerate(parts)
    ))  # fmt: skip


def day_path(day: dt.date, ext: str) -> str:
    """Path of a day's file relative to the output directory: ``YYYY/MM/YYYY-MM-DD.<ext>``."""
    return f"{day:%Y}/{day:%m}/{day.isoformat()}.{ext}"


def week_path(week: str, ext: str) -> str:
    """Path of a weekly edition relative to the output directory: ``weekly/YYYY-Www.<ext>``."""
    return f"weekly/{week}.{ext}"


def markdown(d: Digest, ed: Edition) -> str:
    name = "digest.md.j2" if d.entries else "empty.md.j2"
    return _env(False).get_template(name).render(header=header(d, ed.categories), entries=views(d))


@dataclass(frozen=True)
class RestRow:
    id: str
    title: str
    score: float


def html_page(
    d: Digest,
    ed: Edition,
    index_href: str | None = "../../index.html",
    votes: Callable[[EntryView], Any] | None = None,
    rest: list[RestRow] | None = None,
    rest_vote: Callable[[RestRow], Any] | None = None,
    learn: list[LearnItem] | None = None,
    feedback_line: str = "",
    voted: dict[str, str] | None = None,
) -> str:
    """The day page; ``votes``/``rest_vote`` draw vote controls; ``learn``, ``feedback_line`` and ``voted``
    (paper id → vote) are one reader's (the page opened from their email)."""
    entries = views(d, ed.fulltext_zh)
    return (
        _env(True)
        .get_template("digest.html.j2")
        .render(
            page_title=d.title or f"arXiv {ed.label} · {d.date.isoformat()}",
            header=header(d, ed.categories),
            sections=sections(entries, d.topic_names),
            total=len(entries),
            index_href=index_href,
            votes=votes,
            rest=rest or [],
            rest_vote=rest_vote,
            learn=learn_views(learn or []),
            feedback_line=feedback_line,
            voted=voted or {},
        )
    )


@dataclass(frozen=True)
class IndexRow:
    date: str
    count: int
    href: str


@dataclass(frozen=True)
class TopicFeed:
    name: str
    href: str


def index_page(days: list[tuple[dt.date, int]], ed: Edition, weeks: list[str] | None = None) -> str:
    rows = [IndexRow(d.isoformat(), n, day_path(d, "html")) for d, n in sorted(days, reverse=True)]
    wrows = [IndexRow(w, 0, week_path(w, "html")) for w in sorted(weeks or [], reverse=True)]
    return (
        _env(True)
        .get_template("index.html.j2")
        .render(
            days=rows,
            weeks=wrows,
            categories=ed.label,
            topics=", ".join(ed.topic_names.values()),
            topic_feeds=[TopicFeed(n, f"feeds/{t}.xml") for t, n in ed.topic_names.items()],
        )
    )


def feeds(
    digests: list[Digest],
    ed: Edition,
    topic: str | None = None,
    topic_name: str = "",
) -> tuple[bytes, bytes]:
    """(RSS 2.0, Atom): one item per paper (only ``topic``'s papers when given); GUID = arXiv id."""
    tz = ZoneInfo(ed.timezone)
    site = ed.site_url if ed.site_url.endswith("/") else ed.site_url + "/"
    ordered = sorted(digests, key=lambda d: d.date, reverse=True)
    newest = dt.datetime.combine(ordered[0].date if ordered else dt.date(1970, 1, 1), dt.time(0), tz)
    names = ordered[0].topic_names if ordered else {}
    fg = FeedGenerator()
    fg.id(site + (f"feeds/{topic}" if topic else ""))
    fg.title(f"arXiv {ed.label} digest" + (f" · {topic_name}" if topic else ""))
    fg.subtitle(
        f"Relevant new papers ({topic_name or ', '.join(names.values()) or 'all topics'}) "
        "with English and Chinese TL;DRs"
    )
    self_href = site + (f"feeds/{topic}.atom.xml" if topic else "atom.xml")
    fg.link(href=self_href, rel="self")
    fg.link(href=site, rel="alternate")  # after "self": feedgen's RSS <link> is the last one set
    fg.language("zh-Hans")
    fg.updated(newest)
    fg.lastBuildDate(newest)
    # feedgen prepends added entries; add oldest first so the newest day comes first in the files
    for d in reversed(ordered):
        when = dt.datetime.combine(d.date, dt.time(0), tz)
        for e in reversed(views(d)):
            if topic is not None and e.best_topic != topic and topic not in {b.id for b in e.badges}:
                continue
            fe = fg.add_entry()
            fe.guid(e.id, permalink=False)  # also the Atom <id>: the bare arXiv id, stable across versions
            fe.title(e.title_en)
            fe.link(href=e.abs_url)
            fe.published(when)
            fe.updated(when)
            note = f"<p>{_esc(e.note)}</p>" if e.note and e.note != e.tldr_zh else ""
            body = (
                f"<p>{_esc(e.title_zh)}</p><p>{_esc(e.tldr_zh)}</p><p>{_esc(e.tldr_en)}</p>{note}"
                f'<p><a href="{_esc(e.abs_url)}">arXiv:{_esc(e.id)}</a> · <a href="{_esc(e.pdf_url)}">PDF</a></p>'
            )
            fe.description(body)  # HTML for RSS readers; feedgen XML-escapes it once more
            fe.content(body, type="html")
    return fg.rss_str(pretty=True), fg.atom_str(pretty=True)


def json_feed(digests: list[Digest], ed: Edition, topic: str | None = None, topic_name: str = "") -> bytes:
    """JSON Feed 1.1 for programs: one item per paper (only ``topic``'s when given), newest day first, with the
    structured fields in the ``_arxiv_digest`` extension (title_zh, tldr_en, tldr_zh, abstract_zh, topic, score,
    links, venue). Text is plain (text-mode LaTeX resolved; math kept as TeX)."""
    tz = ZoneInfo(ed.timezone)
    site = ed.site_url if ed.site_url.endswith("/") else ed.site_url + "/"
    items: list[dict[str, Any]] = []
    for d in sorted(digests, key=lambda d: d.date, reverse=True):
        when = dt.datetime.combine(d.date, dt.time(0), tz).isoformat()
        for e in views(d):
            if topic is not None and e.best_topic != topic and topic not in {b.id for b in e.badges}:
                continue
            links = {"abs": e.abs_url, "pdf": e.pdf_url, "html": e.html_url, "code": e.code_url or None,
                     "project": e.project_url or None}  # fmt: skip
            items.append({
                "id": e.id,
                "url": e.abs_url,
                "title": e.title_en,
                "content_text": e.abstract_en,
                "summary": e.tldr_en,
                "date_published": when,
                "authors": [{"name": a} for a in e.author_list],
                "tags": [b.id for b in e.badges],
                "language": "en",
                "_arxiv_digest": {
                    "arxiv_id": e.id,
                    "title_zh": e.title_zh,
                    "tldr_en": e.tldr_en,
                    "tldr_zh": e.tldr_zh,
                    "abstract_zh": e.abstract_zh,
                    "topic": e.best_topic,
                    "topics": e.topics,
                    "score": round(e.score, 4),
                    "summary_status": e.status,
                    "links": {k: v for k, v in links.items() if v},
                    "venue": e.venue or None,
                    "day": d.date.isoformat(),
                },
            })  # fmt: skip
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"arXiv {ed.label} digest" + (f" · {topic_name}" if topic else ""),
        "home_page_url": site,
        "feed_url": site + (f"feeds/{topic}.json" if topic else "feed.json"),
        "description": "Relevant new papers with English and Chinese TL;DRs (fields in _arxiv_digest)",
        "language": "zh-Hans",
        "items": items,
    }
    return (json.dumps(feed, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def _esc(s: str) -> str:
    return html.escape(s, quote=True)


def email_subject(d: Digest, ed: Edition) -> str:
    if d.title:
        return f"{d.title}: {len(d.entries)} 篇相关论文"
    return f"arXiv {ed.label} 摘要 {d.date.isoformat()}: {len(d.entries)} 篇相关论文"


#: the transfer encoding of every email part: base64 costs 4/3 whatever the script; quoted-printable triples CJK
EMAIL_CTE = "base64"


def wire_size(text: str) -> int:
    """Bytes of ``text`` as sent in a base64 part (76-character lines and their CRLFs included)."""
    n = len(text.encode("utf-8"))
    encoded = 4 * ((n + 2) // 3)
    return encoded + 2 * ((encoded + 75) // 76)


@dataclass(frozen=True)
class EmailBodies:
    text: str
    html: str
    compact: bool
    omitted: int


def email_bodies(
    d: Digest,
    ed: Edition,
    page_url: str = "",
    footer: str = "",
    unsubscribe_url: str = "",
    vote_links: Callable[[EntryView | LearnView], Any] | None = None,
    budget_bytes: int = 95_000,
    learn: Sequence[LearnItem] = (),
    feedback_line: str = "",
) -> EmailBodies:
    """Plain text + HTML (CSS inlined) whose HTML part **as sent** (base64, see :func:`wire_size`) is under
    ``budget_bytes``: full, else without abstracts, else fewer entries."""
    import css_inline

    entries = views(d)
    subject = email_subject(d, ed)
    heading = d.title or f"arXiv {ed.label} · {d.date.isoformat()}"

    def render(keep: list[EntryView], compact: bool, omitted: int) -> tuple[str, str]:
        ctx = {
            "subject": subject,
            "heading": heading,
            "header": header(d, ed.categories),
            "sections": sections(keep, d.topic_names),
            "compact": compact,
            "omitted": omitted,
            "page_url": page_url,
            "footer": footer,
            "unsubscribe_url": unsubscribe_url,
            "vote_links": vote_links,
            "learn": learn_views(list(learn)),
            "feedback_line": feedback_line,
        }
        text = _env(False).get_template("email.txt.j2").render(**ctx)
        page = css_inline.inline(_env(True).get_template("email.html.j2").render(**ctx))
        return text, page

    text, page = render(entries, False, 0)
    if wire_size(page) <= budget_bytes:
        return EmailBodies(text, page, False, 0)
    keep = list(entries)
    text, page = render(keep, True, 0)
    while wire_size(page) > budget_bytes and len(keep) > 1:
        keep = keep[: max(1, int(len(keep) * 0.85))]
        text, page = render(keep, True, len(entries) - len(keep))
    return EmailBodies(text, page, True, len(entries) - len(keep))
