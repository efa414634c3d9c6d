"""The weekly edition: a week's relevant papers per topic, best first, capped per topic — from the store only
(nothing is fetched or summarised), rendered to the same formats under ``output/weekly/``, emailed to the
subscribers who chose ``weekly``."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from digest.deliver import deliver
from digest.errors import UsageError
from digest.models import DeliveryResult, Digest, DigestEntry, RenderResult
from digest.personalise import without_downvoted
from digest.pipeline import Run, push_chat
from digest.render import render_site
from digest.render.build import entries_for
from digest.render.files import write_atomic
from digest.render.formats import html_page, markdown, week_path


@dataclass
class WeeklyResult:
    week: str
    entries: int
    written: list[str]
    delivery: DeliveryResult | None

    def line(self) -> str:
        email = f"; email: {self.delivery.status}" if self.delivery else ""
        files = ", ".join(self.written) or "none changed"
        return f"week {self.week}: {self.entries} papers; files: {files}{email}"


def parse_week(week: str | None, today: dt.date | None = None) -> tuple[str, dt.date, dt.date]:
    """``YYYY-Www`` → (label, Monday, Friday); default: the last complete week (Mon–Fri before today)."""
    if week is None:
        today = today or dt.date.today()
        monday = today - dt.timedelta(days=today.weekday() + (7 if today.weekday() < 5 else 0))
    else:
        m = re.fullmatch(r"(\d{4})-W(\d{2})", week.strip())
        if not m:
            raise UsageError(f"--week {week!r}: write an ISO week like 2026-W23")
        try:
            monday = dt.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        except ValueError as exc:
            raise UsageError(f"--week {week!r}: {exc}") from None
    y, w, _ = monday.isocalendar()
    return f"{y}-W{w:02d}", monday, monday + dt.timedelta(days=4)


def build_week(run: Run, monday: dt.date, friday: dt.date, label: str) -> Digest:
    p = run.providers
    papers = p.store.papers_between(monday, friday)
    entries = entries_for(papers, p.store)
    cap = p.settings.weekly_per_topic
    names = p.topic_names
    kept: list[DigestEntry] = []
    for tid in names:
        group = [e for e in entries if e.relevance is not None and e.relevance.best_topic == tid]
        kept += group[:cap]
    kept.sort(key=lambda e: -(e.relevance.score if e.relevance else 0.0))
    numbered = [e.model_copy(update={"n": i}) for i, e in enumerate(kept, 1)]
    title = f"arXiv {', '.join(p.settings.categories)} · week {label} ({monday:%b %d}–{friday:%b %d})"
    return Digest(date=friday, entries=numbered, fetched=len(papers), topic_names=names, title=title)


def weekly_edition(run: Run, week: str | None, email: bool = True) -> WeeklyResult:
    p = run.providers
    label, monday, friday = parse_week(week)
    d = build_week(run, monday, friday, label)
    out = Path(p.settings.output_dir)
    res = RenderResult(day=friday)
    written = []
    if d.entries:
        ed = p.edition
        html = html_page(d, ed, index_href="../index.html")
        for ext, text in (("md", markdown(d, ed)), ("html", html)):
            path = out / week_path(label, ext)
            if write_atomic(path, text.encode("utf-8")):
                written.append(str(path.relative_to(out)))
        render_site(ed, p.settings, p.store, res)
        written += res.written
    delivery = None
    if email and d.entries:
        subs = [s for s in p.subscribers if s.edition == "weekly"]
        page = p.edition.url(week_path(label, "html"))
        mine = without_downvoted(d, p)  # a reader's 👎 paper never reaches them, in the weekly either
        delivery = deliver(mine, f"weekly:{label}", subs, p.mailer, p.store, p.settings, p.owner, page, run.resend)
        delivery = push_chat(run, d, f"weekly:{label}", "weekly", page, delivery)
    return WeeklyResult(label, len(d.entries), written, delivery)
