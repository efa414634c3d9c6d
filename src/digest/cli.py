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
from rich.text import Text

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
err = Console(stderr=True, markup=False, highlight=False)  # our text may contain [brackets]
out = Console(markup=False, highlight=False)

DateOpt = Annotated[dt.datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="announcement day")]
FromOpt = Annotated[dt.datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="first day of a range")]
ToOpt = Annotated[dt.datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="last day of a range")]


def progress_bar(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=transient,
    )


def _ctx() -> tuple[Settings, Store]:
    settings = load_settings()
    return settings, Store(settings.db_url)


def _d(x: dt.datetime | None) -> dt.date | None:
    return x.date() if x else None


def _counts_line(c: UpsertCounts) -> str:
    return f"fetched {c.fetched}, new {c.new}, duplicate {c.duplicate}, replaced {c.replaced}, skipped {c.skipped}"


@app.command(rich_help_panel="Stages")
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


@app.command(rich_help_panel="Stages")
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


@app.command(rich_help_panel="Daily job")
def runs(n: int = 10) -> None:
    """Show the last run reports stored."""
    _settings, store = _ctx()
    for r in store.last_runs(n):
        out.print(json.dumps(r, default=_json_default, ensure_ascii=False))


@app.command(rich_help_panel="Relevance model")
def train(
    labels: Annotated[Path, typer.Option(help="JSONL of {id, label 0/1/2, topics}")],
    corpus: Annotated[Path | None, typer.Option(help="JSONL(.gz) of papers (id, title, abstract)")] = None,
    reading_list: Annotated[list[Path] | None, typer.Option("--reading-list", help="Markdown reading list(s)")] = None,
    output: Annotated[Path, typer.Option(help="where to write the model")] = Path("data/relevance-model.npz"),
    folds: int = 5,
) -> None:
    """Train the relevance model (threshold and model card from k-fold CV)."""
    from digest.relevance import stage as rel
    from digest.relevance.embed import make_embedder

    settings, store = _ctx()
    labs = rel.read_labels(labels)
    corp = rel.read_corpus(corpus)
    ex, missing = rel.build_examples(labs, corp, store)
    if missing:
        err.print(
            f"{len(missing)} labelled ids not found in the corpus or the store (skipped): "
            + ", ".join(missing[:10])
            + (" …" if len(missing) > 10 else "")
        )
    extra, reports = rel.reading_list_examples(reading_list or [], corp, store)
    known = {e.id for e in ex}
    extra = [e for e in extra if e.id not in known]
    for r in reports:
        err.print(
            f"{r.path.name}: {r.items} items, {len(r.resolved)} resolved, {len(r.unresolved)} unresolved"
            + (f" (e.g. {', '.join(r.unresolved[:3])})" if r.unresolved else "")
        )
    embedder = make_embedder(settings)
    with progress_bar() as bar:
        task = bar.add_task(f"embedding ({embedder.name})", total=len(ex) + len(extra))
        emb = rel.embed_examples(ex, embedder, store, lambda n: bar.advance(task, n))
        extra_emb = rel.embed_examples(extra, embedder, store, lambda n: bar.advance(task, n)) if extra else None
    model = rel.train(ex, emb, embedder.name, extra=extra, extra_emb=extra_emb, folds=folds)
    model.save(output)
    cv = model.card["cv"]
    out.print(
        f"model → {output}: {folds}-fold CV F1 {cv['f1']:.3f} (P {cv['precision']:.3f}, R {cv['recall']:.3f}, "
        f"label-2 recall {cv['recall_label2']:.3f}) at threshold {cv['threshold']:.3f}; "
        f"{len(extra)} reading-list positives added"
    )


@app.command("eval", rich_help_panel="Relevance model")
def eval_(
    labels: Annotated[Path, typer.Option(help="JSONL of {id, label, topics}")],
    corpus: Annotated[Path | None, typer.Option(help="JSONL(.gz) of papers")] = None,
    cv: Annotated[
        bool,
        typer.Option(
            help="k-fold CV of the training procedure (for training labels) instead of scoring with the current model"
        ),
    ] = False,
    folds: int = 5,
) -> None:
    """Precision / recall / F1 (label ≥ 1 vs 0), label-2 recall, per topic; keyword and TF-IDF baselines too."""
    from digest.relevance import stage as rel
    from digest.relevance.embed import make_embedder

    settings, store = _ctx()
    ex, missing = rel.build_examples(rel.read_labels(labels), rel.read_corpus(corpus), store)
    if missing:
        err.print(f"{len(missing)} labelled ids not found (skipped)")
    embedder = make_embedder(settings)
    with progress_bar() as bar:
        task = bar.add_task(f"embedding ({embedder.name})", total=len(ex))
        emb = rel.embed_examples(ex, embedder, store, lambda n: bar.advance(task, n))
    model = None if cv else rel.load_model(settings)
    if model is not None:
        rel.check_embedder(model, embedder)
        if settings.relevance_threshold is not None:
            model.threshold = settings.relevance_threshold
    res = rel.evaluate(ex, emb, model, None, folds)
    t = Table("approach", "precision", "recall", "F1", "label-2 recall", "n")
    for name, m in res.items():
        t.add_row(
            name,
            f"{m['precision']:.3f}",
            f"{m['recall']:.3f}",
            f"{m['f1']:.3f}",
            f"{m['recall_label2']:.3f}",
            str(m["n"]),
        )
    out.print(t)


@app.command(rich_help_panel="Stages")
def classify(
    input: Annotated[Path | None, typer.Option("--input", help="JSONL with id, title, abstract per line")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="JSONL: id, relevant, score, topics")] = None,
    date: DateOpt = None,
) -> None:
    """Score papers: a JSONL file (--input/--output), or an announcement day in the store (--date)."""
    from digest.relevance import stage as rel
    from digest.relevance.embed import make_embedder

    settings = load_settings()
    if input is not None:
        if output is None:
            raise DigestError("--input needs --output")
        with open(input, encoding="utf-8") as f:
            items = rel.read_input_jsonl(f)
        model = rel.load_model(settings)
        embedder = make_embedder(settings)
        with progress_bar() as bar:
            task = bar.add_task("classifying", total=len(items))
            res = rel.score_papers(
                items,
                model,
                embedder,
                None,
                settings.relevance_threshold,
                lambda n: bar.advance(task, n),
                explain=False,
            )
        tmp = output.with_name(output.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for line in rel.classify_rows(items, res):
                f.write(line + "\n")
        tmp.replace(output)
        err.print(f"{len(items)} papers scored, {sum(r.relevant for r in res)} relevant → {output}")
        return
    if date is None:
        raise DigestError("give --input/--output or --date")
    store = Store(settings.db_url)
    papers_ = store.papers_of_day(date.date())
    if not papers_:
        raise DigestError(f"no papers announced on {date.date()} in the store: run `digest fetch` first")
    with progress_bar() as bar:
        task = bar.add_task("classifying", total=len(papers_))
        res = rel.classify_day(papers_, settings, store, lambda n: bar.advance(task, n))
    out.print(f"{date.date()}: {len(res)} papers, {sum(r.relevant for r in res)} relevant")


def _relevant_of_day(day: dt.date, settings: Settings, store: Store) -> list[Any]:
    """The day's relevant papers, classifying first where the store has no decision yet."""
    from digest.relevance import stage as rel

    papers_ = store.papers_of_day(day)
    if not papers_:
        raise DigestError(f"no papers announced on {day} in the store: run `digest fetch` (or `digest run`) first")
    known = store.get_relevance([(p.id, p.version) for p in papers_])
    if len(known) < len(papers_):
        with progress_bar() as bar:
            task = bar.add_task("classifying", total=len(papers_))
            res = rel.classify_day(papers_, settings, store, lambda n: bar.advance(task, n))
        known = {(r.id, r.version): r for r in res}
    return [p for p in papers_ if (r := known.get((p.id, p.version))) is not None and r.relevant]


@app.command(rich_help_panel="Stages")
def summarize(
    date: DateOpt = None,
    ids: Annotated[
        list[str] | None, typer.Option("--ids", help="arXiv ids already in the store (repeat or comma-separate)")
    ] = None,
    force: Annotated[bool, typer.Option(help="ignore cached summaries and call again")] = False,
) -> None:
    """Summarise papers in English and Chinese: a day's relevant papers (--date) or given ids (--ids).

    Cached summaries are reused (0 calls); failed ones are retried. Ends with one line: papers, cached,
    called, fallback, failed, tokens in/out, cost.
    """
    from digest.llm.summarize import summarise

    settings, store = _ctx()
    if ids:
        from digest.text import split_id

        try:
            wanted = [split_id(i.strip())[0] for x in ids for i in x.split(",") if i.strip()]
        except ValueError as exc:
            raise DigestError(f"--ids: {exc}") from None
        items = store.get_papers(wanted)
        found = {p.id for p in items}
        missing = [i for i in wanted if i not in found]
        if missing:
            raise DigestError(f"not in the store: {', '.join(missing)} (fetch them first with `digest fetch`)")
    elif date is not None:
        items = _relevant_of_day(date.date(), settings, store)
        if not items:
            out.print(f"{date.date()}: no relevant papers, nothing to summarise")
            return
    else:
        raise DigestError("give --date D or --ids ID[,ID…]")
    if not settings.llm_base_url:
        err.print(
            "no LLM endpoint configured (DIGEST_LLM_BASE_URL): using the offline fallback (first sentence + "
            f"{'Google translation' if settings.translate_fallback == 'google' else 'no translation'})"
        )
    with progress_bar() as bar:
        task = bar.add_task(
            f"summarising ({settings.llm_model if settings.llm_base_url else 'offline'})", total=len(items)
        )
        _res, stats = summarise(items, settings, store, tick=lambda _s: bar.advance(task), force=force)
    backends = ", ".join(f"{k} {v}" for k, v in sorted(stats.backends.items()))
    out.print(f"{stats.line()} [{backends}]", markup=False, highlight=False)


EXIT = {"ok": 0, "no_announcement": 0, "partial": 3, "failed": 1}


def _stage_progress(bar: Progress) -> Any:
    tasks: dict[str, Any] = {}

    def progress(stage: str, advance: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.advance(tasks[stage], advance)

    return progress


@app.command(rich_help_panel="Daily job")
def run(
    date: DateOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    resend: Annotated[bool, typer.Option(help="email the subscribers again even if already sent")] = False,
) -> None:
    """The whole job: fetch → classify → summarise → render → email, for today or given days.

    Without options: today's announcement from the RSS feed. --date D: one announcement day (from the
    store if ingested, else the RSS feed if it carries D, else reconstructed from the arXiv API).
    --from/--to: every weekday in the range. Safe to re-run: finished work is never redone or re-sent.
    Exit status: 0 ok or no announcement, 1 failed (alarm), 3 partial (e.g. email failed).
    """
    from digest.pipeline import RunContext, run_day, run_range

    settings, store = _ctx()
    if (date_from is None) != (date_to is None):
        raise DigestError("give both --from and --to (or --date)")
    if date is not None and date_from is not None:
        raise DigestError("give --date or --from/--to, not both")
    with progress_bar(transient=True) as bar:  # bars while working; the report lines stay
        ctx = RunContext(settings, store, progress=_stage_progress(bar), resend=resend)
        if date_from is not None and date_to is not None:
            reports = run_range(date_from.date(), date_to.date(), ctx)
        else:
            reports = [run_day(_d(date), ctx)]
    for r in reports:
        out.print(r.line(), markup=False, highlight=False, soft_wrap=True)
        if r.files:
            out.print(f"  wrote: {', '.join(r.files)}", highlight=False, soft_wrap=True)
    if len(reports) > 1:
        by: dict[str, int] = {}
        for r in reports:
            by[r.status.value] = by.get(r.status.value, 0) + 1
        out.print(f"{len(reports)} days: " + ", ".join(f"{k} {v}" for k, v in sorted(by.items())), highlight=False)
    if not reports:
        out.print("no weekday in that range: nothing to do")
    code = max((EXIT[r.status.value] for r in reports), default=0)
    if code:
        worst = next(r for r in reports if EXIT[r.status.value] == code)
        err.print(
            Text.assemble((f"{worst.status.value}:", "red"), f" {worst.date or 'today'}: {worst.reason}"),
            soft_wrap=True,
        )
        raise typer.Exit(code)


@app.command(rich_help_panel="Stages")
def render(
    date: Annotated[dt.datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="announcement day")],
    email: Annotated[
        bool, typer.Option(help="email the digest to DIGEST_EMAIL_TO (when DIGEST_SMTP_HOST is set)")
    ] = True,
    resend: Annotated[bool, typer.Option(help="email again even if already sent")] = False,
) -> None:
    """(Re)build a day's Markdown + HTML, the index and the feeds from the store, then email it once."""
    from digest.deliver import deliver_day
    from digest.render import render_day

    settings, store = _ctx()
    day = date.date()
    day_papers = store.papers_of_day(day)
    if not day_papers:
        raise DigestError(f"no papers announced on {day} in the store: run `digest run --date {day}` first")
    if not store.get_relevance([(p.id, p.version) for p in day_papers]):
        raise DigestError(f"the papers of {day} are not classified yet: run `digest classify --date {day}` first")
    res = render_day(day, settings, store)
    changed = ", ".join(res.written) if res.written else "none (already up to date)"
    extra = f"; empty day: {res.empty_day}" if res.empty_day else ""
    out.print(f"{day}: {res.entries} entries; files changed: {changed}{extra}", highlight=False, soft_wrap=True)
    if email and res.digest is not None:
        d = deliver_day(res.digest, settings, store, resend=resend)
        out.print(f"email: {d.status}", highlight=False)
        if d.failed:
            err.print("email failed: " + "; ".join(f"{k}: {v}" for k, v in d.failed.items()), highlight=False)
            raise typer.Exit(3)


@app.command(rich_help_panel="Daily job")
def serve(
    register_only: Annotated[
        bool, typer.Option(help="register the deployments with the Prefect server and exit (no runner)")
    ] = False,
) -> None:
    """Serve the Prefect deployments: 'daily-digest/daily' on DIGEST_SCHEDULE_CRON in DIGEST_TIMEZONE, and
    'backfill/backfill'. Needs a Prefect server (schedules never fire on the ephemeral one):
    `prefect server start --host 127.0.0.1` and PREFECT_API_URL=http://127.0.0.1:4200/api.
    """
    if not os.environ.get("PREFECT_API_URL"):
        raise DigestError(
            "PREFECT_API_URL is not set: start a server (`prefect server start --host 127.0.0.1`) and export "
            "PREFECT_API_URL=http://127.0.0.1:4200/api — schedules do not fire on Prefect's ephemeral server"
        )
    from flows.daily import deployments
    from prefect import serve as prefect_serve

    settings = load_settings()
    deps = deployments(settings)
    if register_only:
        for d in deps:
            d.apply()
        out.print(
            f"registered daily-digest/daily (cron '{settings.schedule_cron}' {settings.timezone}) and "
            "backfill/backfill with the Prefect server"
        )
        return
    prefect_serve(*deps)


def main() -> None:
    try:
        app()
    except DigestError as exc:
        err.print(Text.assemble(("error:", "red"), f" {exc}"), soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
