"""Output formats, as pure functions of digests: Markdown, HTML page, index page, RSS/Atom, email bodies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

from feedgen.feed import FeedGenerator
from jinja2 import Environment, PackageLoader, StrictUndefined

from digest.models import Digest
from digest.render.view import TOPIC_NAMES, header, md_cell, md_link_text, md_para, views


@cache
def _env(html: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("digest.render", "templates"),
        autoescape=html,  # every HTML template is autoescaped; Markdown escapes via the md_* filters
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters.update(md_cell=md_cell, md_link=md_link_text, md_para=md_para)
    return env


def day_path(day: dt.date, ext: str) -> str:
    """Path of a day's file relative to the output directory: ``YYYY/MM/YYYY-MM-DD.<ext>``."""
    return f"{day:%Y}/{day:%m}/{day.isoformat()}.{ext}"


def markdown(d: Digest, categories: list[str]) -> str:
    name = "digest.md.j2" if d.entries else "empty.md.j2"
    return _env(False).get_template(name).render(header=header(d, categories), entries=views(d))


def html_page(d: Digest, categories: list[str], index_href: str | None = "../../index.html") -> str:
    return (
        _env(True)
        .get_template("digest.html.j2")
        .render(
            header=header(d, categories),
            entries=views(d),
            date=d.date.isoformat(),
            categories=", ".join(categories),
            index_href=index_href,
        )
    )


@dataclass(frozen=True)
class IndexRow:
    date: str
    count: int
    href: str


def index_page(days: list[tuple[dt.date, int]], categories: list[str]) -> str:
    rows = [IndexRow(d.isoformat(), n, day_path(d, "html")) for d, n in sorted(days, reverse=True)]
    return (
        _env(True)
        .get_template("index.html.j2")
        .render(days=rows, categories=", ".join(categories), topics=", ".join(TOPIC_NAMES.values()))
    )


def feeds(digests: list[Digest], categories: list[str], site_url: str, timezone: str) -> tuple[bytes, bytes]:
    """(RSS 2.0, Atom) with one item per included paper; GUID = arXiv id; dates = announcement days."""
    tz = ZoneInfo(timezone)
    site = site_url if site_url.endswith("/") else site_url + "/"
    ordered = sorted(digests, key=lambda d: d.date, reverse=True)
    newest = dt.datetime.combine(ordered[0].date if ordered else dt.date(1970, 1, 1), dt.time(0), tz)
    fg = FeedGenerator()
    fg.id(site)
    fg.title(f"arXiv {', '.join(categories)} digest")
    fg.subtitle(f"Relevant new papers ({', '.join(TOPIC_NAMES.values())}) with English and Chinese TL;DRs")
    fg.link(href=site + "atom.xml", rel="self")
    fg.link(href=site, rel="alternate")  # after "self": feedgen's RSS <link> is the last one set
    fg.language("zh-Hans")
    fg.updated(newest)
    fg.lastBuildDate(newest)
    # feedgen prepends added entries; add oldest first so the newest day comes first in the files
    for d in reversed(ordered):
        when = dt.datetime.combine(d.date, dt.time(0), tz)
        for e in reversed(views(d)):
            fe = fg.add_entry()
            fe.guid(e.id, permalink=False)  # also the Atom <id>: the bare arXiv id, stable across versions
            fe.title(e.title_en)
            fe.link(href=e.abs_url)
            fe.published(when)
            fe.updated(when)
            text = f"{e.tldr_zh}\n\n{e.tldr_en}" + (f"\n\n{e.note}" if e.note and e.note != e.tldr_zh else "")
            fe.description(text)
            fe.content(
                f"<p>{_esc(e.title_zh)}</p><p>{_esc(e.tldr_zh)}</p><p>{_esc(e.tldr_en)}</p>"
                f'<p><a href="{e.abs_url}">arXiv:{e.id}</a> · <a href="{e.pdf_url}">PDF</a></p>',
                type="html",
            )
    return fg.rss_str(pretty=True), fg.atom_str(pretty=True)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def email_subject(d: Digest, categories: list[str]) -> str:
    return f"arXiv {', '.join(categories)} 摘要 {d.date.isoformat()}: {len(d.entries)} 篇相关论文"
