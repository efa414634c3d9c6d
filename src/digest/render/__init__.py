"""The render stage: the store's digests → Markdown, HTML, index, RSS/Atom under ``output/`` (atomic writes)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from digest.config import Settings
from digest.models import EmptyDayMode, EmptyDayOutcome, RenderResult
from digest.render.build import build_digest
from digest.render.files import write_atomic
from digest.render.formats import day_path, feeds, html_page, index_page, markdown
from digest.store import Store


def render_day(day: dt.date, settings: Settings, store: Store, topic_names: dict[str, str]) -> RenderResult:
    """(Re)build a day's digest files from the store, then the index and the feeds.

    A day with nothing relevant never overwrites an existing digest: it is skipped, or gets a short note,
    as ``DIGEST_EMPTY_DAY`` says.
    """
    t0 = time.perf_counter()
    d = build_digest(day, store, topic_names)
    out = Path(settings.output_dir)
    res = RenderResult(day=day, entries=len(d.entries))
    md_path, html_path = out / day_path(day, "md"), out / day_path(day, "html")
    if not d.entries:
        if md_path.exists():
            res.empty_day = EmptyDayOutcome.kept_existing
            res.published = True
            return _timed(res, t0)
        if settings.empty_day == EmptyDayMode.skip:
            res.empty_day = EmptyDayOutcome.skipped
            return _timed(res, t0)
        res.empty_day = EmptyDayOutcome.note
    pages = (
        (md_path, markdown(d, settings.categories)),
        (html_path, html_page(d, settings.categories, fulltext_zh=settings.fulltext_zh_url)),
    )
    for path, text in pages:
        _write(path, text.encode("utf-8"), out, res)
    store.save_digest(day, len(d.entries), [str(p.relative_to(out)) for p in (md_path, html_path)])
    render_site(settings, store, topic_names, res)
    res.published = bool(d.entries)
    return _timed(res, t0)


def render_site(settings: Settings, store: Store, topic_names: dict[str, str], res: RenderResult) -> None:
    """The archive index and the feeds (combined and per topic) over the last ``DIGEST_FEED_DAYS`` digest days."""
    out = Path(settings.output_dir)
    days = store.digest_days()
    weeks = sorted(p.stem for p in (out / "weekly").glob("*.html")) if (out / "weekly").is_dir() else []
    _write(out / "index.html", index_page(days, settings.categories, topic_names, weeks).encode("utf-8"), out, res)
    recent = sorted((d for d, _n in days), reverse=True)
    horizon = recent[0] - dt.timedelta(days=settings.feed_days - 1) if recent else dt.date.min
    digests = [build_digest(d, store, topic_names) for d in recent if d >= horizon]
    rss, atom = feeds(digests, settings.categories, settings.site_url, settings.timezone)
    _write(out / "feed.xml", rss, out, res)
    _write(out / "atom.xml", atom, out, res)
    for tid, name in topic_names.items():
        rss, atom = feeds(digests, settings.categories, settings.site_url, settings.timezone, tid, name)
        _write(out / "feeds" / f"{tid}.xml", rss, out, res)
        _write(out / "feeds" / f"{tid}.atom.xml", atom, out, res)


def _write(path: Path, data: bytes, root: Path, res: RenderResult) -> None:
    rel = str(path.relative_to(root))
    res.files.append(rel)
    if write_atomic(path, data):
        res.written.append(rel)


def _timed(res: RenderResult, t0: float) -> RenderResult:
    res.seconds = round(time.perf_counter() - t0, 3)
    return res
