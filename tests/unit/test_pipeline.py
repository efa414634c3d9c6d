"""run_day with in-process fakes: records in, report out; the day judged from its stored state."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from digest.config import Settings
from digest.deliver import Subscriber
from digest.models import DayFetch, DayProgress, DayState, DeliveryResult, RunStatus
from digest.pipeline import Run, judge_day, run_day
from digest.sources.http import ArxivClient
from digest.store import Store
from tests.fakes import FakeArxiv, FakeChat, FakeMailer, arxiv_paper, providers, snapshot

TUE = dt.date(2026, 6, 2)
TOPICS = ["clip", "editing", "gs", "other", "other", "gs", "clip", "other"]


def make_run(
    settings: Settings, store: Store, topics: tuple[str, ...] = ("clip", "editing"), **kw: object
) -> tuple[Run, FakeChat, FakeMailer, FakeArxiv]:
    arxiv = FakeArxiv([arxiv_paper(i, TUE, t) for i, t in enumerate(TOPICS)], rss_day=TUE)
    chat, mailer = FakeChat(), FakeMailer()
    p = providers(settings, store, topics, chat=chat, mailer=mailer, subscribers=[Subscriber("r@x.org")],
                  arxiv=ArxivClient(settings, transport=arxiv.transport(), sleep=lambda _s: None), **kw)  # fmt: skip
    return Run(p), chat, mailer, arxiv


def test_a_day_end_to_end_then_a_free_identical_rerun(settings: Settings, store: Store) -> None:
    run, chat, mailer, _ = make_run(settings, store)
    r = run_day(TUE, run)
    assert r.status == RunStatus.ok, r.reason
    assert (r.fetched, r.relevant, r.summarised, r.emails_sent) == (8, 3, 3, 1) and chat.calls == 3
    out = Path(settings.output_dir)
    files = snapshot(out)
    assert {"2026/06/2026-06-02.md", "2026/06/2026-06-02.html", "feed.xml", "feeds/clip.xml"} <= set(files)
    again = run_day(TUE, run)
    assert again.status == RunStatus.ok and again.cached == 3 and chat.calls == 3 and len(mailer.sent) == 1
    assert snapshot(out) == files
    row = store.last_runs(1)[0]
    assert row["date"] == TUE and row["status"] == "ok" and row["report"]["cached"] == 3


def test_three_topics_by_configuration_alone(settings: Settings, store: Store) -> None:
    run, _chat, _mailer, _ = make_run(settings, store, ("clip", "editing", "gs"))
    r = run_day(TUE, run)
    assert r.status == RunStatus.ok and r.relevant == 5
    page = (Path(settings.output_dir) / "2026/06/2026-06-02.html").read_text(encoding="utf-8")
    for name in ("CLIP / contrastive VLM", "image editing", "3D Gaussian splatting"):
        assert f"<h2>{name}</h2>" in page
    assert (Path(settings.output_dir) / "feeds/gs.xml").is_file()


def test_dead_llm_publishes_nothing_then_the_rerun_completes_with_one_email(settings: Settings, store: Store) -> None:
    s = settings.model_copy(update={"llm_max_tries": 2})
    run, chat, mailer, _ = make_run(s, store)
    out = Path(s.output_dir)
    out.mkdir(parents=True)
    (out / "index.html").write_text("yesterday's index")
    chat.always = {"down"}
    r = run_day(TUE, run)
    assert r.status == RunStatus.failed and "nothing published" in r.reason
    assert snapshot(out) == {"index.html": b"yesterday's index"} and not mailer.sent
    chat.always = set()
    r2 = run_day(TUE, run)
    assert r2.status == RunStatus.ok and r2.summarised == 3 and len(mailer.sent) == 1


def test_one_rejected_summary_is_partial_published_and_stays_partial(settings: Settings, store: Store) -> None:
    run, chat, _mailer, arxiv = make_run(settings, store)
    title = arxiv.papers[0]["title"]
    chat.per_paper[title[:20]] = ["english", "english"]
    r = run_day(TUE, run)
    assert r.status == RunStatus.partial and "1 of 3 summaries are fallbacks" in r.reason
    assert (Path(settings.output_dir) / "2026/06/2026-06-02.md").is_file()
    again = run_day(TUE, run)  # the rejected paper is asked again (quoting its problems) and now answered well
    assert again.status == RunStatus.ok and chat.calls == 5
    assert run_day(TUE, run).status == RunStatus.ok and chat.calls == 5  # nothing left to pay for


def test_a_day_held_by_another_run_is_left_to_it(settings: Settings, store: Store) -> None:
    run, chat, _mailer, _ = make_run(settings, store)
    assert store.acquire_lease("day:2026-06-02", "other-host:42", 60)
    r = run_day(TUE, run)
    assert r.status == RunStatus.busy and "other-host:42" in r.reason and chat.calls == 0


def test_weekend_and_empty_weekday(settings: Settings, store: Store) -> None:
    run, _chat, _mailer, arxiv = make_run(settings, store)
    assert run_day(dt.date(2026, 6, 6), run).status == RunStatus.no_announcement
    arxiv.script = ["empty"]
    r = run_day(None, run)
    assert r.status == RunStatus.no_announcement and "checked again" in r.reason and r.date == TUE


def test_crash_after_summaries_then_resume_without_new_calls(settings: Settings, store: Store) -> None:
    run, chat, mailer, _ = make_run(settings, store)
    out = Path(settings.output_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("not a directory")  # the render stage will crash on it, after the LLM stage
    r = run_day(TUE, run)
    assert r.status == RunStatus.failed and "Error" in r.reason and chat.calls == 3 and not mailer.sent
    out.unlink()
    r2 = run_day(TUE, run)
    assert r2.status == RunStatus.ok and r2.cached == 3 and chat.calls == 3 and len(mailer.sent) == 1


@pytest.mark.parametrize(
    ("progress", "delivery", "llm", "expected"),
    [
        (DayProgress(relevant=0), None, True, RunStatus.ok),
        (DayProgress(relevant=5, complete=5), None, True, RunStatus.ok),
        (DayProgress(relevant=5, complete=4, fallback=1), None, True, RunStatus.partial),
        (DayProgress(relevant=5, fallback=5), None, True, RunStatus.failed),
        (DayProgress(relevant=5, complete=5), DeliveryResult(failed={"a": "refused"}), True, RunStatus.partial),
        (DayProgress(relevant=5, complete=5), None, False, RunStatus.ok),
        (DayProgress(relevant=5, missing=5), None, False, RunStatus.failed),
    ],
)
def test_judge_day(progress: DayProgress, delivery: DeliveryResult | None, llm: bool, expected: RunStatus) -> None:
    f = DayFetch(date=TUE, state=DayState.announced)
    assert judge_day(f, progress, delivery, llm)[0] == expected
    assert (
        judge_day(DayFetch(date=TUE, state=DayState.unconfirmed, reason="x"), progress, None, llm)[0]
        == RunStatus.no_announcement
    )
