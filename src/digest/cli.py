"""The ``digest`` command. Thin: parses options, builds Settings and the Store, calls stage functions."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from digest.config import Settings, load_settings
from digest.errors import DigestError
from digest.store import Store, UpsertCounts

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(
    help="arxiv-digest: fetch the day's arXiv cs.CV papers, keep the relevant ones, summarise them in "
    "English and Chinese, and publish Markdown/HTML/RSS digests and email.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

DateOpt = Annotated[dt.datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="announcement day")]
FromOpt = Annotated[dt.datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="first day of a range")]
ToOpt = Annotated[dt.datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="last day of a range")]


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _ctx() -> tuple[Settings, Store]:
    settings = load_settings()
    return settings, Store(settings.db_url)


def _d(x: dt.datetime | None) -> dt.date | None:
    return x.date() if x else None


def _counts_line(c: UpsertCounts) -> str:
    return f"fetched {c.fetched}, new {c.new}, duplicate {c.duplicate}, replaced {c.replaced}, skipped {c.skipped}"


@app.command()
def fetch(
    date: DateOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    source: Annotated[str, typer.Option(help="rss (today's announcement) or api (date ranges)")] = "",
) -> None:
    """Fetch papers into the store: today's RSS announcement, or submission days from the API."""
    from digest import fetch as stage

    settings, store = _ctx()
    start, end = _d(date_from) or _d(date), _d(date_to) or _d(date)
    if (date_from is None) != (date_to is None):
        raise DigestError("give both --from and --to (or --date)")
    src = source or ("api" if start else "rss")
    if src not in ("rss", "api"):
        raise DigestError(f"--source must be rss or api, not {src!r}")
    if src == "rss":
        if start is not None:
            day = start
            state = store.day_state(day)
            if state is None:
                raise DigestError(f"the RSS feed only has today's announcement; for {day} use --source api")
        day_got, counts = stage.fetch_rss(settings, store)
        if day_got is None or (counts.fetched == 0 and counts.skipped == 0):
            out.print(f"no announcement in {settings.arxiv_rss_url} (weekend or holiday): nothing to fetch")
            return
        out.print(f"{day_got}: {_counts_line(counts)}")
        return
    assert start is not None and end is not None
    if end < start:
        raise DigestError(f"--to {end} is before --from {start}")
    n = (end - start).days + 1
    with progress_bar() as bar:
        task = bar.add_task("arXiv API days", total=n)
        counts = stage.fetch_api_range(start, end, settings, store, progress=lambda _d: bar.advance(task))
    out.print(f"{start}…{end}: {_counts_line(counts)}")


@app.command()
def papers(
    date: Annotated[dt.datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="announcement day")],
    format: Annotated[str, typer.Option("--format", help="jsonl or table")] = "jsonl",
) -> None:
    """Export the papers of an announcement day from the store."""
    _settings, store = _ctx()
    items = store.papers_of_day(date.date())
    if format == "jsonl":
        for p in items:
            sys.stdout.write(p.model_dump_json() + "\n")
    elif format == "table":
        t = Table("id", "v", "type", "title")
        for p in items:
            t.add_row(p.id, str(p.version), p.announce_type or "", p.title[:90])
        out.print(t)
        out.print(f"{len(items)} papers announced {date.date()}")
    else:
        raise DigestError(f"--format must be jsonl or table, not {format!r}")


def _json_default(o: Any) -> Any:
    if isinstance(o, dt.date | dt.datetime):
        return o.isoformat()
    return str(o)


@app.command()
def runs(n: int = 10) -> None:
    """Show the last run reports stored."""
    _settings, store = _ctx()
    for r in store.last_runs(n):
        out.print(json.dumps(r, default=_json_default, ensure_ascii=False))


def main() -> None:
    try:
        app()
    except DigestError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


def _unused(_: Path) -> None:  # pragma: no cover - keeps Path import for later commands
    pass
