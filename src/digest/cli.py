"""The ``digest`` command. Thin: parses options, builds the providers once, calls one use case, prints."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from digest.config import Settings, load_settings, settings_doc, unknown_env
from digest.errors import DigestError, UsageError, mask_secrets
from digest.relevance import FT_MAX_TOKENS

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(
    help="arxiv-digest: fetch the day's arXiv cs.CV papers, keep the relevant ones, summarise them in "
    "English and Chinese, and publish Markdown/HTML/RSS digests and email.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)  # our text may contain [brackets]
out = Console(markup=False, highlight=False, soft_wrap=True)

VERBOSE = [False]


@app.callback()
def _options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="show warnings (retries, fallbacks) and the files written")
    ] = False,
) -> None:
    """arxiv-digest: fetch the day's arXiv cs.CV papers, keep the relevant ones, summarise them in English and
    Chinese, and publish Markdown/HTML/RSS digests and email."""
    VERBOSE[0] = verbose
    logging.getLogger().setLevel(logging.WARNING if verbose else logging.ERROR)


DateOpt = Annotated[dt.datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="announcement day")]
FromOpt = Annotated[dt.datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="first day of a range")]
ToOpt = Annotated[dt.datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="last day of a range")]
EXIT = {"ok": 0, "no_announcement": 0, "busy": 0, "partial": 3, "failed": 1, "cancelled": 130}


def progress_bar(transient: bool = True) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=transient,
        disable=not err.is_terminal,  # bars on a terminal only: logs and pipes get just the report lines
    )


def _d(x: dt.datetime | None) -> dt.date | None:
    return x.date() if x else None


def _settings() -> Settings:
    s = load_settings()
    for w in unknown_env():
        err.print(f"warning: {w}")
    return s


@contextmanager
def runtime(need_llm: bool = True, bars: bool = False) -> Iterator[Any]:
    """Settings → providers (validated before any work) → a :class:`~digest.pipeline.Run`, closed after."""
    from digest.pipeline import Run
    from digest.providers import Providers

    providers = Providers.from_settings(_settings(), need_llm=need_llm)
    for w in providers.warnings:
        err.print(f"warning: {w}")
    try:
        if bars:
            with progress_bar() as bar:
                yield Run(providers, progress=_stage_progress(bar))
        else:
            yield Run(providers)
    finally:
        providers.close()


def _stage_progress(bar: Progress) -> Any:
    tasks: dict[str, Any] = {}

    def progress(stage: str, advance: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.advance(tasks[stage], advance)

    return progress


def _line(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


# --- the daily job --------------------------------------------------------------------------------------
@app.command(rich_help_panel="Daily job")
def run(
    date: DateOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    resend: Annotated[bool, typer.Option(help="email the subscribers again even if already sent")] = False,
    catch_up: Annotated[
        bool, typer.Option(help="without --date: also run missed weekdays (DIGEST_CATCH_UP_DAYS)")
    ] = True,
) -> None:
    """The whole job: fetch → classify → summarise → render → email, for today or given days.

    Without options: today's announcement from the RSS feed, then any weekday missed since the last
    finished one. --date D: one announcement day (from the store if ingested, else the RSS feed if it
    carries D, else reconstructed from the arXiv API). --from/--to: every weekday in the range. Safe to
    re-run and to run twice at once: finished work is never redone or re-sent.
    Exit status: 0 ok / no announcement / another run has the day, 1 failed, 2 configuration, 3 partial.
    """
    from digest.usecases import run as usecases

    with runtime(bars=True) as r:
        r.resend = resend
        reports = usecases.run_days(r, _d(date), _d(date_from), _d(date_to), catch_up)
    for rep in reports:
        _line(rep.line())
        if rep.files and VERBOSE[0]:
            _line(f"  wrote: {', '.join(rep.files)}")
    if len(reports) > 1:
        by: dict[str, int] = {}
        for rep in reports:
            by[rep.status.value] = by.get(rep.status.value, 0) + 1
        _line(f"{len(reports)} days: " + ", ".join(f"{k} {v}" for k, v in sorted(by.items())))
    if not reports:
        _line("no weekday in that range: nothing to do")
    code = max((EXIT[rep.status.value] for rep in reports), default=0)
    if code:
        worst = next(rep for rep in reports if EXIT[rep.status.value] == code)
        err.print(Text.assemble((f"{worst.status.value}:", "red"), f" {worst.date or 'today'}: {worst.reason}"))
        raise typer.Exit(code)


@app.command(rich_help_panel="Daily job")
def runs(
    n: Annotated[int, typer.Argument(help="how many runs to show")] = 10,
    n_opt: Annotated[int | None, typer.Option("--n", help="same as the argument")] = None,
    format: Annotated[str, typer.Option("--format", help="table, or jsonl for programs")] = "table",
) -> None:
    """Show the last runs (a run killed without cleanup shows as crashed) and undelivered emails."""
    from digest.usecases.run import recent_runs

    if format not in ("table", "jsonl"):
        raise UsageError(f"--format must be table or jsonl, not {format!r}")
    with runtime(need_llm=False) as r:
        rows, doubtful = recent_runs(r, n_opt or n)
    if format == "jsonl":
        for row in rows:
            _line(json.dumps(row, default=_json_default, ensure_ascii=False))
    else:
        t = Table("run", "day", "status", "started", "took", "relevant", "summarised", "emails", "cost", "reason")
        for row in rows:
            rep = row.get("report") or {}
            started = row.get("started")
            took = (row["finished"] - started).total_seconds() if row.get("finished") and started else None
            t.add_row(
                str(row["run_id"]), str(row.get("date") or "today"), row["status"],
                started.strftime("%Y-%m-%d %H:%M") if started else "", f"{took:.0f}s" if took is not None else "",
                str(rep.get("relevant", "")), str(rep.get("summarised", "")), str(rep.get("emails_sent", "")),
                f"${rep['cost']:.4f}" if "cost" in rep else "", str(rep.get("reason", ""))[:60],
            )  # fmt: skip
        out.print(t)
        if not rows:
            _line("no runs yet: `digest run` runs today's announcement")
    for d in doubtful:
        _line(f"email {d['edition']} → {d['recipient']}: {d['status']} {d['error']}".rstrip())
        kind, _, day = str(d["edition"]).partition(":")
        if d["status"] == "unknown" and kind == "daily":
            _line(f"  it may or may not have arrived; to send it again to just this reader: "
                  f"digest render --date {day} --resend-to {d['recipient']}")  # fmt: skip


@app.command(rich_help_panel="Daily job")
def status(days: Annotated[int, typer.Option(help="how many recent weekdays to show")] = 10) -> None:
    """The last weekdays: their state, the last run, and anything overdue (exit 1 when something is)."""
    from digest.usecases.status import day_status

    with runtime(need_llm=False) as r:
        rows, overdue = day_status(r, days)
        if not r.providers.store.last_runs(1):
            _line("never run: this store has no run yet — `digest run` for today, `digest deploy` (or `digest "
                  "serve`) for the daily schedule; nothing is overdue")  # fmt: skip
            return
    for row in rows:
        _line(row)
    for o in overdue:
        err.print(f"overdue: {o}")
    if overdue:
        raise typer.Exit(1)


# --- stages ----------------------------------------------------------------------------------------------
@app.command(rich_help_panel="Stages")
def fetch(date: DateOpt = None, date_from: FromOpt = None, date_to: ToOpt = None) -> None:
    """Fetch papers into the store by the same policy as `digest run` (store → RSS → API)."""
    from digest.usecases import run as usecases

    with runtime(need_llm=False) as r:
        got = usecases.fetch_days(r, _d(date), _d(date_from), _d(date_to))
    for f in got:
        c = f.counts
        day = f.date.isoformat() if f.date else "today"
        note = f" ({f.source.value}{', approximate' if f.approximate else ''})" if f.source else ""
        _line(
            f"{day}: {f.state.value}{note}: {len(f.papers)} papers; fetched {c.fetched}, new {c.new}, "
            f"duplicate {c.duplicate}, replaced {c.replaced}, skipped {c.skipped}"
            + (f" — {f.reason}" if f.reason else "")
        )


@app.command(rich_help_panel="Stages")
def papers(
    date: Annotated[dt.datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="announcement day")],
    format: Annotated[str, typer.Option("--format", help="jsonl or table")] = "jsonl",
) -> None:
    """Export the papers of an announcement day from the store."""
    from digest.usecases.run import papers_of_day

    with runtime(need_llm=False) as r:
        items = papers_of_day(r, date.date())
    if format == "jsonl":
        for p in items:
            sys.stdout.write(p.model_dump_json() + "\n")
    elif format == "table":
        t = Table("id", "v", "type", "title")
        for p in items:
            t.add_row(p.id, str(p.version), p.announce_type or "", p.title[:90])
        out.print(t)
        _line(f"{len(items)} papers announced {date.date()}")
    else:
        raise UsageError(f"--format must be jsonl or table, not {format!r}")


@app.command(rich_help_panel="Stages")
def classify(
    input: Annotated[Path | None, typer.Option("--input", help="JSONL with id, title, abstract per line")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="JSONL: id, relevant, score, topics")] = None,
    date: DateOpt = None,
) -> None:
    """Score papers: a JSONL file (--input/--output, same order and count), or a day in the store (--date)."""
    from digest.usecases import run as usecases
    from digest.usecases.train import classify_file

    if input is not None:
        if output is None:
            raise UsageError("--input needs --output")
        with runtime(need_llm=False) as r, progress_bar() as bar:
            task = bar.add_task("classifying", total=None)
            res = classify_file(r.providers, input, output, lambda n: bar.advance(task, n))
        err.print(f"{len(res.relevance)} papers scored, {len(res.relevant_ids)} relevant → {output}")
        return
    if date is None:
        raise UsageError("give --input/--output or --date")
    with runtime(need_llm=False, bars=True) as r:
        res = usecases.classify_day(r, date.date())
    _line(f"{date.date()}: {len(res.relevance)} papers, {len(res.relevant_ids)} relevant")


@app.command(rich_help_panel="Stages")
def summarize(
    date: DateOpt = None,
    ids: Annotated[
        list[str] | None, typer.Option("--ids", help="arXiv ids already in the store (repeat or comma-separate)")
    ] = None,
    force: Annotated[bool, typer.Option(help="ignore cached summaries and call again")] = False,
) -> None:
    """Summarise papers in English and Chinese: a day's relevant papers (--date) or given ids (--ids).

    Final cached summaries are reused (0 calls). Ends with one line: papers, cached, called, fallback,
    tokens in/out, cost, and who wrote them.
    """
    from digest.usecases import run as usecases

    with runtime(bars=True) as r:
        if r.providers.chat is None:
            tr = "Google translation" if r.providers.translator else "no translation"
            err.print(f"no LLM endpoint configured (DIGEST_LLM_BASE_URL): offline tiers (first sentence + {tr})")
        _n, stats = usecases.summarise(r, _d(date), ids, force)
    if stats is None:
        _line(f"{_d(date)}: no relevant papers, nothing to summarise")
        return
    backends = ", ".join(f"{k} {v}" for k, v in sorted(stats.backends.items()))
    _line(f"{stats.line()} [{backends}]")


@app.command(rich_help_panel="Stages")
def render(
    date: Annotated[dt.datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="announcement day")],
    email: Annotated[
        bool, typer.Option(help="email the digest to DIGEST_EMAIL_TO (when DIGEST_SMTP_HOST is set)")
    ] = True,
    resend: Annotated[bool, typer.Option(help="email again even if already sent")] = False,
    resend_to: Annotated[
        list[str] | None,
        typer.Option("--resend-to", help="email again to just this reader (repeat; e.g. a delivery in doubt)"),
    ] = None,
) -> None:
    """(Re)build a day's Markdown + HTML, the index and the feeds from the store, then email it once."""
    from digest.usecases import run as usecases

    day = date.date()
    with runtime(need_llm=False) as r:
        r.resend = resend or frozenset(resend_to or [])
        res = usecases.render_and_deliver(r, day, email)
    changed = ", ".join(res.render.written) if res.render.written else "none (already up to date)"
    extra = f"; empty day: {res.render.empty_day.value}" if res.render.empty_day.value != "none" else ""
    _line(f"{day}: {res.render.entries} entries; files changed: {changed}{extra}")
    if res.delivery is not None:
        _line(f"email: {res.delivery.status}")
        if res.delivery.failed:
            err.print("email failed: " + "; ".join(f"{k}: {v}" for k, v in res.delivery.failed.items()))
            raise typer.Exit(3)


@app.command(rich_help_panel="Stages")
def weekly(
    week: Annotated[str | None, typer.Option(help="ISO week YYYY-Www (default: the last complete week)")] = None,
    email: Annotated[bool, typer.Option(help="email it to weekly subscribers")] = True,
    resend: Annotated[bool, typer.Option(help="email again even if already sent")] = False,
) -> None:
    """Build a week's edition from the store (per topic, best first; nothing re-fetched or re-summarised)."""
    from digest.usecases.weekly import weekly_edition

    with runtime(need_llm=False) as r:
        r.resend = resend
        res = weekly_edition(r, week, email)
    _line(res.line())
    if res.delivery is not None and res.delivery.failed:
        raise typer.Exit(3)


# --- relevance model ------------------------------------------------------------------------------------
@app.command(rich_help_panel="Relevance model")
def train(
    labels: Annotated[
        list[Path] | None,
        typer.Option(
            help="JSONL of {id, label 0/1/2, topics, weight?}; repeat to add files (a later file's label for a "
            "paper wins); none: retrain from votes"
        ),
    ] = None,
    corpus: Annotated[Path | None, typer.Option(help="JSONL(.gz) of papers (id, title, abstract, date)")] = None,
    reading_list: Annotated[
        list[str] | None, typer.Option("--reading-list", help="TOPIC=FILE.md: a reading list's papers as positives")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="where to write the model (default: DIGEST_DATA_DIR)")] = None,
    finetune: Annotated[bool, typer.Option(help="fine-tune the encoder first (needs `pip install .[train]`)")] = False,
    split: Annotated[str, typer.Option(help="time split: train on papers up to this month (YYYY-MM)")] = "2025-12",
    folds: int = 5,
    epochs: Annotated[float, typer.Option(help="fine-tuning epochs (--finetune)")] = 3.0,
    max_tokens: Annotated[
        int, typer.Option(help="word pieces of 'title. abstract' the tuned encoder reads (--finetune)")
    ] = FT_MAX_TOKENS,
) -> None:
    """Train the relevance model. With --labels: from labels (CV and time-split lines printed). Without:
    rebuild the reader's model from the shipped base data, each topic's seeds and every vote."""
    from digest.usecases.train import train_command

    with runtime(need_llm=False) as r:
        lines = train_command(
            r.providers, labels, corpus, reading_list or [], output, finetune, split, folds, err.print, epochs,
            max_tokens,
        )
    for line in lines:
        _line(line)


@app.command("eval", rich_help_panel="Relevance model")
def eval_(
    labels: Annotated[Path, typer.Option(help="JSONL of {id, label, topics}")],
    corpus: Annotated[Path | None, typer.Option(help="JSONL(.gz) of papers")] = None,
    cv: Annotated[
        bool, typer.Option(help="k-fold CV of the training procedure instead of scoring with the current model")
    ] = False,
    folds: int = 5,
) -> None:
    """Precision / recall / F1 (label ≥ 1 vs 0), clear-recall, per topic; keyword and TF-IDF baselines too."""
    from digest.usecases.train import eval_command

    with runtime(need_llm=False) as r:
        rows = eval_command(r.providers, labels, corpus, cv, folds)
    t = Table("approach", "precision", "recall", "F1", "label-2 recall", "n")
    for name, m in rows.items():
        t.add_row(
            name,
            f"{m['precision']:.3f}",
            f"{m['recall']:.3f}",
            f"{m['f1']:.3f}",
            f"{m['recall_label2']:.3f}",
            str(m["n"]),
        )
    out.print(t)


# --- the reader -----------------------------------------------------------------------------------------
feedback_app = typer.Typer(help="The reader's votes: 👍/👎 per paper and topic; `digest train` learns from them.")
topics_app = typer.Typer(help="The reader's interest profiles (DIGEST_TOPICS).")
app.add_typer(feedback_app, name="feedback", rich_help_panel="The reader")
app.add_typer(topics_app, name="topics", rich_help_panel="The reader")


READER_HELP = (
    "the reader's email address: the vote trains their personal model only "
    "(default: the operator's vote, which retrains the topic model)"
)


@feedback_app.command("add")
def feedback_add(
    paper: Annotated[str, typer.Argument(help="arXiv id")],
    vote: Annotated[str, typer.Option(help="up or down")],
    topic: Annotated[str | None, typer.Option(help="a topic id (default: any topic)")] = None,
    reader: Annotated[str, typer.Option(help=READER_HELP)] = "",
) -> None:
    """Record one vote (the paper is fetched from arXiv by id when the store does not have it)."""
    from digest.usecases.readers import add_vote

    with runtime(need_llm=False) as r:
        v = add_vote(r, paper, vote, topic, reader)
    _line(f"recorded: {v.paper_id} {v.vote} ({v.topic}) for {v.who or 'the operator'}")


@feedback_app.command("import")
def feedback_import(
    path: Annotated[Path, typer.Argument(help='JSONL: {"id": …, "vote": "up"|"down", "topics": […]?, "reader"?}')],
    reader: Annotated[str, typer.Option(help="every vote of the file is this reader's (email address)")] = "",
) -> None:
    """Import votes from a JSONL file; a bad line is named and nothing is imported."""
    from digest.usecases.readers import import_votes

    with runtime(need_llm=False) as r:
        n = import_votes(r, path, reader)
    _line(f"imported {n} votes from {path}" + (f" for {reader}" if reader else ""))


@feedback_app.command("list")
def feedback_list(
    format: Annotated[str, typer.Option("--format", help="table or jsonl")] = "table",
    reader: Annotated[str | None, typer.Option(help="only this reader's votes")] = None,
) -> None:
    """Every vote recorded, oldest first (`reader` is null for the operator's)."""
    from digest.usecases.readers import list_votes, reader_of

    with runtime(need_llm=False) as r:
        votes = [v for v in list_votes(r) if reader is None or v.who == reader]
    if format == "jsonl":
        for v in votes:
            sys.stdout.write(json.dumps({"id": v.paper_id, "vote": v.vote, "topics": [v.topic], "reader": reader_of(v),
                                         "source": v.source, "when": v.created.isoformat()}) + "\n")  # fmt: skip
        return
    if format != "table":
        raise UsageError(f"--format must be table or jsonl, not {format!r}")
    t = Table("when", "id", "vote", "topic", "reader", "source")
    for v in votes:
        t.add_row(v.created.strftime("%Y-%m-%d %H:%M"), v.paper_id, v.vote, v.topic, reader_of(v) or "(operator)",
                  v.source)  # fmt: skip
    out.print(t)
    _line(f"{len(votes)} votes")


@feedback_app.command("reset")
def feedback_reset(
    reader: Annotated[str, typer.Option(help="the reader whose votes are forgotten (email address)")],
    yes: Annotated[bool, typer.Option("--yes", help="do it (without: say what would be removed)")] = False,
) -> None:
    """Forget a reader's votes: their next edition is the shared one again (their topics)."""
    from digest.usecases.readers import reset_votes

    with runtime(need_llm=False) as r:
        n = reset_votes(r, reader, dry_run=not yes)
    _line(f"removed {n} votes of {reader}" if yes else f"{n} votes of {reader} would be removed: add --yes")


@feedback_app.command("stats")
def feedback_stats(
    reader: Annotated[str | None, typer.Option(help="only this reader")] = None,
    format: Annotated[str, typer.Option("--format", help="table or jsonl")] = "table",
) -> None:
    """Each reader's votes replayed in time order, each predicted by their model as it was before that vote:
    accuracy and AUC per reader (how well the personal model has learnt them)."""
    from digest.usecases.readers import vote_stats

    with runtime(need_llm=False) as r:
        rows = vote_stats(r, reader)
    if format == "jsonl":
        for row in rows:
            sys.stdout.write(json.dumps(row.__dict__) + "\n")
        return
    t = Table("reader", "votes", "👍", "👎", "predicted", "accuracy", "AUC", "refit ms")
    for row in rows:
        t.add_row(row.reader, str(row.votes), str(row.up), str(row.down), str(row.predicted), f"{row.accuracy:.3f}",
                  "n/a" if row.auc != row.auc else f"{row.auc:.3f}", f"{row.refit_ms:.1f}")  # fmt: skip
    out.print(t)
    if not rows:
        _line("no reader has voted yet")


@topics_app.command("list")
def topics_list() -> None:
    """The topics in force: configured ones, and whether the model has a head for each."""
    from digest.usecases.readers import topics_overview

    with runtime(need_llm=False) as r:
        rows = topics_overview(r)
    for t in rows:
        head = "trained" if t.trained else "no head yet: run `digest train`"
        _line(f"{t.id}: {t.name} — {t.seeds} seeds, {t.reading_lists} reading lists; {head}")


@topics_app.command("suggest")
def topics_suggest(
    topic: Annotated[str, typer.Argument(help="a topic id with seeds")],
    n: Annotated[int, typer.Option(help="how many papers")] = 20,
) -> None:
    """The store's papers nearest to a topic's seed papers: vote on them to shape a new topic in minutes."""
    from digest.usecases.readers import suggest

    with runtime(need_llm=False) as r:
        rows = suggest(r, topic, n, err.print)
    for s in rows:
        _line(f"{s.similarity:.3f}  {s.id}  {s.title[:100]}  (near seed {s.nearest_seed})")
    if rows:
        _line(f"vote: digest feedback add ID --vote up --topic {topic}")


@app.command(rich_help_panel="The reader")
def web(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8080,
) -> None:
    """Serve the archive (day pages with a vote on every paper, index, feeds) and the feedback endpoint."""
    from digest import web as webapp
    from digest.providers import Providers

    webapp.check_port(host, port)
    p = Providers.from_settings(_settings(), need_llm=False)
    who = "operator mode: every visitor" if p.settings.web_operator else "readers with their email's page link"
    err.print(f"serving {p.settings.output_dir} on http://{host}:{port}/ (votes: {who}); Ctrl-C to stop")
    webapp.serve(p, host, port)


# --- operations -----------------------------------------------------------------------------------------
@app.command("settings", rich_help_panel="Operations")
def settings_cmd(
    show: Annotated[bool, typer.Option(help="show the values in force (secrets masked)")] = False,
) -> None:
    """List every DIGEST_* setting with its default and meaning (--show: the values in force)."""
    current = _settings() if show else None
    for name, default, desc in settings_doc():
        if current is not None:
            key = name.removeprefix("DIGEST_").lower()
            value = getattr(current, key)
            shown = "***" if value is not None and "Secret" in type(value).__name__ else mask_secrets(repr(value))
            _line(f"{name}={shown}  # {desc}")
        else:
            _line(f"{name} (default {default}): {desc}")


@app.command(rich_help_panel="Operations")
def replay(
    day: Annotated[dt.datetime, typer.Option("--day", formats=["%Y-%m-%d"], help="a cs.CV day of the corpus")],
    shared: Annotated[
        Path | None, typer.Option(help="the shared data folder (default: DIGEST_SHARED_DIR, else ../shared)")
    ] = None,
    port: Annotated[int, typer.Option(help="arXiv replay port")] = 8765,
    llm_port: Annotated[int, typer.Option(help="OpenAI-compatible stand-in port (0: none)")] = 8766,
    llm_latency: Annotated[float, typer.Option(help="seconds per LLM answer")] = 0.0,
) -> None:
    """Replay a real arXiv day offline: a local arXiv (RSS + API) from ../shared and an LLM stand-in.

    Prints the DIGEST_* settings that point `digest run` at them; runs until interrupted.
    """
    from digest.replay import serve_forever
    from digest.replay.data import default_shared

    serve_forever(day.date(), shared or default_shared(), port, llm_port, llm_latency, _line)


def _json_default(o: Any) -> Any:
    if isinstance(o, dt.date | dt.datetime):
        return o.isoformat()
    return str(o)


INTERRUPTED = [False]


def _interrupt(signum: int, _frame: object) -> None:
    INTERRUPTED[0] = True
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through run_day: the run is recorded as cancelled


def _exit_interrupted() -> None:
    """The run recorded itself as cancelled and freed its day: leave now — worker threads stuck in a network
    read must not hold the process for minutes (interpreter shutdown would join them)."""
    err.print("interrupted")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def load_plugins() -> None:
    """Commands other installed packages add (``digest.plugins`` entry points): the Prefect flows package adds
    ``digest deploy`` and ``digest serve``. The core never imports them."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="digest.plugins"):
        try:
            ep.load()(app, _settings)
        except ImportError as exc:  # a plugin whose dependencies are missing: its commands are absent
            logging.getLogger(__name__).warning("plugin %s not loaded: %s", ep.name, exc)


load_plugins()


def main() -> None:
    import signal

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)  # docker stop / systemd: like Ctrl-C, never a silent kill
    signal.signal(signal.SIGINT, _interrupt)
    try:
        app()
    except SystemExit:  # click turns an interrupt into "Aborted!" and exit 1
        if INTERRUPTED[0]:
            _exit_interrupted()
        raise
    except DigestError as exc:
        err.print(Text.assemble(("error:", "red"), f" {exc}"))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _exit_interrupted()
    except Exception as exc:  # a bug: one line, and where to look
        err.print(
            Text.assemble(
                ("error:", "red"), f" {mask_secrets(f'{exc.__class__.__name__}: {exc}')} (a bug: please report it)"
            )
        )
        sys.exit(1)
