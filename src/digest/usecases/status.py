"""Status and alerts to the operator: ``digest status``, ``digest runs``, the watchdog's checks, the run's artifact.

Alerts go to ``DIGEST_ALERT_EMAIL`` through the store's outbox and the one mailer, keyed by what happened
(``failed:2026-06-09``, ``holiday:2026-06-09``, ``stale:2026-06-09``, ``crashed:42``), so each one is sent
exactly once however many processes notice it. Nothing here knows Prefect: the flows package adds its own
checks (zombie flow runs) through :data:`STATUS_CHECKS`.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from digest.config import Settings
from digest.models import DeliveryStatus, RunReport, RunStatus
from digest.notify import AppriseNotifier, parse_channels
from digest.retry import GaveUp, InDoubt, RetryPolicy
from digest.sources.calendar import weekdays
from digest.store import Claim, Store

if TYPE_CHECKING:
    from digest.pipeline import Run

log = logging.getLogger(__name__)


#: extra checks run before ``digest status`` and the watchdog read the store (the flows package registers
#: one that settles Prefect flow runs left Running by a dead process); each returns lines to report
STATUS_CHECKS: list[Callable[[Store, float], list[str]]] = []


def run_status_checks(store: Store, stale_after: float) -> list[str]:
    lines: list[str] = []
    for check in STATUS_CHECKS:
        try:
            lines += check(store, stale_after)
        except Exception as exc:  # an orchestrator that cannot be reached never hides the store's view
            log.warning("status check %s failed: %s", getattr(check, "__name__", check), exc)
    return lines


# --- alerts ---------------------------------------------------------------------------------------------
def notify(run: Run, key: str, subject: str, body: str) -> bool:
    """Tell the operator once per ``key`` (outbox): the alert chat channels, then email; False when no alert
    address or SMTP is configured."""
    p = run.providers
    _alert_channels(run, key, subject, body)
    to = p.settings.alert_email
    if not to or p.mailer is None:
        log.warning("alert (%s): %s — set DIGEST_ALERT_EMAIL and DIGEST_SMTP_HOST to be told by email", key, subject)
        return False
    edition = f"alert:{key}"[:40]
    if p.store.claim_delivery(edition, to, p.owner, p.settings.lease_seconds) != Claim.claimed:
        return False
    msg = EmailMessage()
    msg["Subject"] = f"[arxiv-digest] {subject}"
    msg["From"] = p.settings.email_from
    msg["To"] = to
    msg["Date"] = formatdate()
    msg["Message-ID"] = make_msgid(domain="arxiv-digest.local")
    msg.set_content(body + f"\n\n(host {socket.gethostname()}; `digest status` shows the last days)\n")
    mailer = p.mailer

    def send() -> None:
        with mailer.session() as s:
            s.send(msg)

    try:
        RetryPolicy(p.settings.email_max_tries, p.settings.email_backoff_seconds).call(send, "SMTP alert")
    except (GaveUp, Exception) as exc:  # an alert that cannot be sent is logged, never fatal
        p.store.mark_delivery(edition, to, p.owner, DeliveryStatus.failed, str(exc))
        log.error("could not send the alert %s: %s", key, exc)
        return False
    p.store.mark_delivery(edition, to, p.owner, DeliveryStatus.sent, message_id=str(msg["Message-ID"]))
    return True


def _alert_channels(run: Run, key: str, subject: str, body: str) -> None:
    """``DIGEST_ALERT_NOTIFY_URLS``: the same alert in chat, once per channel (a failure is logged, never fatal)."""
    p = run.providers
    if p.settings.alert_notify_urls is None:
        return
    urls = p.settings.alert_notify_urls.get_secret_value().replace(",", " ").split()
    notifier = p.notifier or AppriseNotifier(p.settings.notify_timeout)
    edition = f"alert:{key}"[:40]
    for ch in parse_channels(urls, []):
        if p.store.claim_delivery(edition, ch.key, p.owner, p.settings.lease_seconds) != Claim.claimed:
            continue
        send = partial(notifier.send, ch.url, f"[arxiv-digest] {subject}", body)
        try:
            RetryPolicy(p.settings.email_max_tries, p.settings.email_backoff_seconds).call(send, f"chat alert {ch.key}")
        except InDoubt as exc:  # may have arrived: never sent again on its own
            p.store.mark_delivery(edition, ch.key, p.owner, DeliveryStatus.unknown, str(exc))
            log.error("the alert %s to %s is in doubt: %s", key, ch.key, exc)
            continue
        except (GaveUp, Exception) as exc:
            p.store.mark_delivery(edition, ch.key, p.owner, DeliveryStatus.failed, str(exc))
            log.error("could not send the alert %s to %s: %s", key, ch.key, exc)
            continue
        p.store.mark_delivery(edition, ch.key, p.owner, DeliveryStatus.sent)


def after_day(run: Run, report: RunReport) -> None:
    """Alerts a finished day calls for: a failure, or a weekday with no announcement (was it a holiday?)."""
    day = report.date.isoformat() if report.date else "today"
    if report.status == RunStatus.failed:
        notify(run, f"failed:{day}", f"{day} failed", report.line())
    elif report.status == RunStatus.no_announcement and report.date is not None and report.date.weekday() < 5:
        notify(
            run,
            f"holiday:{day}",
            f"{day}: no announcement — was it an arXiv holiday?",
            report.line() + "\nIf it was not a holiday, re-run it once the feed is back: digest run --date " + day,
        )


def deadline(settings: Settings, day: dt.date) -> dt.datetime:
    """When a weekday's digest is overdue: the cron's time that day plus ``DIGEST_STALE_HOURS``."""
    fields = settings.schedule_cron.split()
    try:
        minute, hour = int(fields[0]), int(fields[1])
    except (ValueError, IndexError):
        minute, hour = 30, 0
    tz = ZoneInfo(settings.timezone)
    return dt.datetime.combine(day, dt.time(hour, minute), tz) + dt.timedelta(hours=settings.stale_hours)


def overdue(settings: Settings, store: Store, now: dt.datetime | None = None, back: int = 5) -> list[str]:
    """Weekdays past their deadline with no finished run, runs that crashed, emails in doubt."""
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    days = weekdays(today - dt.timedelta(days=back + 4), today)[-back:]
    done = (
        {r["date"] for r in store.runs_of_days(days[0], today) if RunStatus(r["status"]).finished}
        if days
        else set()
    )
    first = store.first_run()
    since = first.date() if first is not None else today + dt.timedelta(days=1)  # never run: nothing is overdue
    out = [f"stale:{d.isoformat()}" for d in days if d >= since and d not in done and now > deadline(settings, d)]
    out += [
        f"crashed:{r['run_id']}" for r in store.last_runs(50, settings.lease_seconds * 2) if r["status"] == "crashed"
    ]
    out += [f"email:{d['edition']}:{d['recipient']}" for d in store.deliveries() if d["status"] == "unknown"]
    return out


def watchdog(run: Run, now: dt.datetime | None = None) -> list[str]:
    """Alert (once each) on weekdays overdue, crashed runs and emails in doubt; returns what it found."""
    run_status_checks(run.providers.store, run.providers.settings.lease_seconds * 2)
    found = overdue(run.providers.settings, run.providers.store, now)
    for key in found:
        kind, _, what = key.partition(":")
        subject = {
            "stale": f"no digest for {what} yet",
            "crashed": f"run {what} crashed",
            "email": f"email {what} may not have been delivered",
        }[kind]
        notify(run, key, subject, f"{subject}. Look at `digest status` and `digest runs`.")
    return found


def day_status(run: Run, n: int = 10) -> tuple[list[str], list[str]]:
    """``digest status``: one line per recent weekday, and what is overdue (after the registered checks)."""
    settings, store = run.providers.settings, run.providers.store
    for line in run_status_checks(store, settings.lease_seconds * 2):
        log.warning("%s", line)
    today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
    days = weekdays(today - dt.timedelta(days=n * 2 + 4), today)[-n:]
    runs: dict[dt.date | None, dict[str, Any]] = {}
    for r in store.runs_of_days(days[0], today) if days else []:
        runs[r["date"]] = r
    digests = dict(store.digest_days())
    crashed = {r["run_id"] for r in store.last_runs(100, settings.lease_seconds * 2) if r["status"] == "crashed"}
    rows = []
    for d in reversed(days):
        info = store.day_info(d)
        lr = runs.get(d)
        state = info.state.value if info else "not fetched"
        if lr is None:
            last = "no run"
        else:
            st = "crashed" if lr["run_id"] in crashed else lr["status"]
            reason = (lr.get("report") or {}).get("reason", "")
            last = f"last run {st}" + (f" ({reason[:90]})" if reason else "")
        entries = f"{digests[d]} papers" if d in digests else "no digest"
        rows.append(f"{d} {d:%a}: {state}; {entries}; {last}")
    return rows, overdue(settings, store)


def report_markdown(settings: Settings, report: RunReport) -> str:
    """The day's Markdown artifact: the report line, counts, cost, and where the digest is."""
    day = report.date.isoformat() if report.date else "today"
    page = ""
    if report.date:
        page = settings.site_url.rstrip("/") + f"/{report.date:%Y}/{report.date:%m}/{day}.html"
    rows = [
        ("status", report.status.value),
        ("reason", report.reason or "—"),
        ("fetched / new", f"{report.fetched} / {report.new}"),
        ("relevant", str(report.relevant)),
        ("summarised (cached, fallback)", f"{report.summarised} ({report.cached}, {report.summary.fallback})"),
        ("emails", f"{report.emails_sent} ({report.email_status or '—'})"),
        ("tokens in / out", f"{report.summary.tokens_in} / {report.summary.tokens_out}"),
        ("cost", f"${report.summary.cost:.4f}"),
        ("digest", page or "—"),
        ("files written", ", ".join(report.files) or "none"),
    ]
    table = "\n".join(f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows)
    return f"# arxiv-digest {day}\n\n`{report.line()}`\n\n| | |\n|---|---|\n{table}\n"


