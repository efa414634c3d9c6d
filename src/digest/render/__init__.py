"""The render stage: a day's :class:`Digest` → Markdown, HTML, index, RSS/Atom under ``output/`` (atomic writes)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from digest.config import Settings
from digest.errors import ConfigError
from digest.models import Digest, Edition, EmptyDayMode, EmptyDayOutcome, RenderResult
from digest.render.build import build_digest
from digest.render.files import write_atomic
from digest.render.formats import day_path, feeds, html_page, index_page, json_feed, markdown
from digest.store import Store
from digest.topics import check_topic_id


def edition_of(settings: Settings, topic_names: dict[str, str]) -> Edition:
    """The one rendering context of this installation's editions."""
    return Edition(
        categories=list(settings.categories),
        site_url=settings.site_url,
        timezone=settings.timezone,
        fulltext_zh=settings.fulltext_zh_url,
        topic_names=topic_names,
    )


def render_day(d: Digest, ed: Edition, settings: Settings, store: Store) -> RenderResult:
    """Write a day's digest files, then the index and the feeds.

    A day with nothing relevant never overwrites an existing digest: it is skipped, or gets a short note,
    as ``DIGEST_EMPTY_DAY`` says.
    """
    t0 = time.perf_counter()
    day = d.date
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
    for path, text in ((md_path, markdown(d, ed)), (html_path, html_page(d, ed))):
        _write(path, text.encode("utf-8"), out, res)
    store.save_digest(day, len(d.entries), [str(p.relative_to(out)) for p in (md_path, html_path)])
    render_site(ed, settings, store, res, {day: d})
    res.published = bool(d.entries)
    return _timed(res, t0)


def render_site(
    ed: Edition, settings: Settings, store: Store, res: RenderResult, built: dict[dt.date, Digest] | None = None
) -> None:
    """The archive index and the feeds (combined and per topic) over the last ``DIGEST_FEED_DAYS`` digest days
    (``built``: digests this run already has, not rebuilt from the store)."""
    out = Path(settings.output_dir)
    days = store.digest_days()
    weeks = sorted(p.stem for p in (out / "weekly").glob("*.html")) if (out / "weekly").is_dir() else []
    _write(out / "index.html", index_page(days, ed, weeks).encode("utf-8"), out, res)
    recent = sorted((d for d, _n in days), reverse=True)
    horizon = recent[0] - dt.timedelta(days=settings.feed_days - 1) if recent else dt.date.min
    have = built or {}
    digests = [have.get(d) or build_digest(d, store, ed.topic_names) for d in recent if d >= horizon]
    rss, atom = feeds(digests, ed)
    _write(out / "feed.xml", rss, out, res)
    _write(out / "atom.xml", atom, out, res)
    _write(out / "feed.json", json_feed(digests, ed), out, res)
    for tid, name in ed.topic_names.items():
        try:  # a topic id becomes a file name: checked here too, whatever model or file it came from
            check_topic_id(tid)
        except ValueError as exc:
            raise ConfigError(f"{exc}; the relevance model or topics file carries it: retrain with valid ids") from None
        rss, atom = feeds(digests, ed, tid, name)
        _write(out / "feeds" / f"{tid}.xml", rss, out, res)
        _write(out / "feeds" / f"{tid}.atom.xml", atom, out, res)
        _write(out / "feeds" / f"{tid}.json", json_feed(digests, ed, tid, name), out, res)


def _write(path: Path, data: bytes, root: Path, res: RenderResult) -> None:
    rel = str(path.relative_to(root))
    res.files.append(rel)
    if write_atomic(path, data):
        res.written.append(rel)


def _timed(res: RenderResult, t0: float) -> RenderResult:
    res.seconds = round(time.perf_counter() - t0, 3)
    return res
