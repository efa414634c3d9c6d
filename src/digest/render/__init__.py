"""The render stage: the store's digests → Markdown, HTML, index, RSS/Atom under ``output/`` (atomic writes)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from digest.config import Settings
from digest.models import Digest
from digest.render.build import build_digest
from digest.render.files import write_atomic
from digest.render.formats import day_path, feeds, html_page, index_page, markdown
from digest.store import Store


@dataclass
class RenderResult:
    day: dt.date
    entries: int
    written: list[str] = field(default_factory=list)  # paths whose bytes changed
    files: list[str] = field(default_factory=list)  # every path this render is responsible for
    empty_day: str = ""  # "" | "skip" | "note" | "kept-existing"
    digest: Digest | None = None


def render_day(day: dt.date, settings: Settings, store: Store) -> RenderResult:
    """(Re)build a day's digest files from the store, then the index and the feeds.

    A day with nothing relevant never overwrites an existing digest: it is skipped, or gets a short note,
    as ``DIGEST_EMPTY_DAY`` says.
    """
    d = build_digest(day, store)
    out = Path(settings.output_dir)
    res = RenderResult(day=day, entries=len(d.entries), digest=d)
    md_path, html_path = out / day_path(day, "md"), out / day_path(day, "html")
    if not d.entries:
        if md_path.exists():
            res.empty_day = "kept-existing"
            return res
        res.empty_day = settings.empty_day
        if settings.empty_day == "skip":
            return res
    for path, text in ((md_path, markdown(d, settings.categories)), (html_path, html_page(d, settings.categories))):
        _write(path, text.encode("utf-8"), out, res)
    store.save_digest(day, len(d.entries), [str(p.relative_to(out)) for p in (md_path, html_path)])
    render_site(settings, store, res)
    return res


def render_site(settings: Settings, store: Store, res: RenderResult) -> None:
    """The archive index and the feeds over the last ``DIGEST_FEED_DAYS`` digest days (recorded in ``res``)."""
    out = Path(settings.output_dir)
    days = store.digest_days()
    _write(out / "index.html", index_page(days, settings.categories).encode("utf-8"), out, res)
    recent = sorted((d for d, _n in days), reverse=True)
    horizon = recent[0] - dt.timedelta(days=settings.feed_days - 1) if recent else dt.date.min
    digests = [build_digest(d, store) for d in recent if d >= horizon]
    rss, atom = feeds(digests, settings.categories, settings.site_url, settings.timezone)
    _write(out / "feed.xml", rss, out, res)
    _write(out / "atom.xml", atom, out, res)


def _write(path: Path, data: bytes, root: Path, res: RenderResult) -> None:
    rel = str(path.relative_to(root))
    res.files.append(rel)
    if write_atomic(path, data):
        res.written.append(rel)
