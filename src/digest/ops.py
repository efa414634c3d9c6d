"""Operations: status, alerts to the operator, and the Prefect deployment shapes (serve / work pool).

Alerts go to ``DIGEST_ALERT_EMAIL`` through the store's outbox, keyed by what happened (``failed:2026-06-09``,
``holiday:2026-06-09``, ``stale:2026-06-09``, ``crashed:42``), so each one is sent exactly once however
many processes notice it. Prefect is imported only inside the functions that need it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from digest.config import SECRET_FIELDS, Settings
from digest.errors import ConfigError
from digest.models import DeliveryStatus, RunReport, RunStatus
from digest.retry import GaveUp, RetryPolicy
from digest.sources.calendar import weekdays
from digest.store import Claim, Store

if TYPE_CHECKING:
    from digest.pipeline import Run

log = logging.getLogger(__name__)


def code_root() -> Path:
    """The folder holding the ``flows`` package: the checkout, or site-packages of an installed wheel/image."""
    import flows

    return Path(flows.__file__).resolve().parent.parent


DEPLOYED_MARK = "DIGEST_SERVE_PROCESS"
SECRET_BLOCKS = "DIGEST_SECRET_BLOCKS"


# --- alerts ---------------------------------------------------------------------------------------------
def notify(run: Run, key: str, subject: str, body: str) -> bool:
    """Email the operator once per ``key`` (outbox); False when no alert address or SMTP is configured."""
    p = run.providers
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
        {r["date"] for r in store.runs_of_days(days[0], today) if r["status"] in ("ok", "partial", "no_announcement")}
        if days
        else set()
    )
    out = [f"stale:{d.isoformat()}" for d in days if d not in done and now > deadline(settings, d)]
    out += [
        f"crashed:{r['run_id']}" for r in store.last_runs(50, settings.lease_seconds * 2) if r["status"] == "crashed"
    ]
    out += [f"email:{d['edition']}:{d['recipient']}" for d in store.deliveries() if d["status"] == "unknown"]
    return out


def watchdog(run: Run, now: dt.datetime | None = None) -> list[str]:
    try:
        reap_zombies(run.providers.store, run.providers.settings.lease_seconds * 2)
    except Exception as exc:  # Prefect unreachable: the alerts below still go out
        log.warning("could not check Prefect for zombie runs: %s", exc)
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


def day_status(settings: Settings, n: int = 10) -> tuple[list[str], list[str]]:
    """``digest status``: one line per recent weekday, and what is overdue (settling Prefect zombies first)."""
    store = Store(settings.db_url)
    if os.environ.get("PREFECT_API_URL"):
        try:
            for fid in reap_zombies(store, settings.lease_seconds * 2):
                log.warning("flow run %s was left Running by a dead process: marked Crashed", fid)
        except Exception as exc:
            log.warning("could not check Prefect for zombie runs: %s", exc)
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
        ("summarised (cached, fallback)", f"{report.summarised} ({report.cached}, {report.fallback})"),
        ("emails", f"{report.emails_sent} ({report.email_status or '—'})"),
        ("tokens in / out", f"{report.tokens_in} / {report.tokens_out}"),
        ("cost", f"${report.cost:.4f}"),
        ("digest", page or "—"),
        ("files written", ", ".join(report.files) or "none"),
    ]
    table = "\n".join(f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows)
    return f"# arxiv-digest {day}\n\n`{report.line()}`\n\n| | |\n|---|---|\n{table}\n"


# --- Prefect deployments ----------------------------------------------------------------------------------
def die_with_parent() -> None:
    """A flow-run process started by a worker or by ``digest serve`` gets SIGTERM when that process dies
    (Linux), so an interrupted day is recorded as cancelled and its lease freed instead of running on
    orphaned; :func:`reap_zombies` settles any run that still escapes."""
    if not os.environ.get("PREFECT__FLOW_RUN_ID") and not _in_deployment():
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the reaper covers it
        pass


def _in_deployment() -> bool:
    try:
        from prefect.runtime import deployment

        return bool(deployment.get_id())
    except Exception:
        return False


def reap_zombies(store: Store, stale_after: float) -> list[str]:
    """Prefect flow runs left ``Running`` by a process that died (a SIGKILL, a lost machine): when the store
    says their runs crashed or ended, set them Crashed in Prefect too. Returns their ids."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    ours = {r["flow_run_id"]: r for r in store.last_runs(200, stale_after) if r.get("flow_run_id")}
    live = {fid for fid, r in ours.items() if r["status"] == "running"}
    reaped = []
    with get_client(sync_client=True) as client:
        running = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
            )
        )
        for fr in running:
            root = str(fr.id)
            parent = None
            if fr.parent_task_run_id:
                try:
                    parent = str(client.read_task_run(fr.parent_task_run_id).flow_run_id)
                except Exception:
                    parent = None
            key = root if root in ours else parent
            if key is None or key not in ours or key in live:
                continue
            client.set_flow_run_state(
                fr.id, Crashed(message=f"the run's process is gone ({ours[key]['status']})"), force=True
            )
            reaped.append(str(fr.id))
    return reaped


def check_deployed_environment() -> None:
    """A flow run from a deployment on a worker must carry its settings: refuse built-in defaults at once."""
    from prefect.runtime import deployment

    if not deployment.get_id() or os.environ.get(DEPLOYED_MARK) == "1":
        return
    load_secret_blocks()
    missing = [k for k in ("DIGEST_DB_URL", "DIGEST_OUTPUT_DIR") if not os.environ.get(k)]
    if missing:
        raise ConfigError(
            f"this deployment runs without its settings ({', '.join(missing)} unset on the worker): "
            "register it with `digest deploy` (which puts the settings in its job variables) or set them "
            "in the worker's environment"
        )


def load_secret_blocks() -> None:
    """Secrets named in ``DIGEST_SECRET_BLOCKS`` (``DIGEST_X=block-name,…``) are read from Prefect Secret blocks."""
    spec = os.environ.get(SECRET_BLOCKS, "")
    if not spec:
        return
    from prefect.blocks.system import Secret

    for item in spec.split(","):
        var, _, block = item.partition("=")
        if var and block and not os.environ.get(var):
            try:
                secret: Any = Secret.load(block)
                os.environ[var] = str(secret.get())
            except Exception as exc:  # a missing block is reported by the setting it leaves empty
                log.warning("secret block %s for %s not loaded: %s", block, var, exc.__class__.__name__)


def job_env(settings: Settings) -> dict[str, str]:
    """The non-secret settings a deployment carries, with the store and output made explicit and absolute."""
    env = settings.public()
    db = settings.db_url
    if db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
        db = "sqlite:///" + str(Path(db.removeprefix("sqlite:///")).resolve())
    env["DIGEST_DB_URL"] = db
    env["DIGEST_OUTPUT_DIR"] = str(Path(settings.output_dir).resolve())
    env["DIGEST_DATA_DIR"] = str(Path(settings.data_dir).resolve())
    env["PREFECT_LOGGING_EXTRA_LOGGERS"] = "digest"
    return env


def _secret_env_names() -> dict[str, str]:
    names = {f: f"DIGEST_{f.upper()}" for f in SECRET_FIELDS}
    return {var: f"digest-{f.replace('_', '-')}" for f, var in names.items()}


def deployments(settings: Settings) -> list[Any]:
    """The flows as runner deployments (for ``digest serve``): schedules, concurrency, descriptions."""
    from flows.daily import backfill, daily_digest, retrain, watchdog, weekly
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    one = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
    tz = settings.timezone
    dows = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 0}
    return [
        daily_digest.to_deployment(
            name="daily", schedules=[Cron(settings.schedule_cron, timezone=tz)], concurrency_limit=one,
            description="Today's arXiv announcement → digest (then missed weekdays), after the RSS update.",
            tags=["arxiv-digest"],
        ),
        backfill.to_deployment(name="backfill", description="Re-run a date range.", tags=["arxiv-digest"]),
        weekly.to_deployment(
            name="weekly", schedules=[Cron(f"0 7 * * {dows[settings.weekly_day]}", timezone=tz)],
            concurrency_limit=one, description="The weekly edition.", tags=["arxiv-digest"],
        ),
        retrain.to_deployment(
            name="retrain", schedules=[Cron("0 5 * * 0", timezone=tz)], concurrency_limit=one,
            description="Rebuild the relevance model from seeds and votes.", tags=["arxiv-digest"],
        ),
        watchdog.to_deployment(
            name="watchdog", schedules=[Cron("17 * * * *", timezone=tz)], concurrency_limit=one,
            description="Alert on missing, failed or crashed days.", tags=["arxiv-digest"],
        ),
    ]  # fmt: skip


def serve_deployments(settings: Settings) -> None:
    """``digest serve``: one process runs the scheduled deployments (needs a Prefect server)."""
    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError(
            "PREFECT_API_URL is not set: start a server (`prefect server start --host 127.0.0.1`) and export "
            "PREFECT_API_URL=http://127.0.0.1:4200/api — schedules do not fire on Prefect's ephemeral server"
        )
    os.environ.update(job_env(settings))
    os.environ[DEPLOYED_MARK] = "1"
    from prefect import serve

    serve(*deployments(settings))


def deploy_to_pool(settings: Settings, pool: str) -> list[str]:
    """``digest deploy``: a process work pool (created if missing) and the deployments on it."""
    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError(
            "PREFECT_API_URL is not set: point it at your Prefect server (e.g. http://127.0.0.1:4200/api)"
        )
    from prefect import flow as prefect_flow
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    lines = []
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            lines.append(f"created process work pool {pool!r}")
    env = job_env(settings)
    blocks = []
    for var, block in _secret_env_names().items():
        value = os.environ.get(var) or (os.environ.get("OPENAI_API_KEY") if var == "DIGEST_LLM_API_KEY" else None)
        if value:
            Secret(value=value).save(block, overwrite=True)
            blocks.append(f"{var}={block}")
    if blocks:
        env[SECRET_BLOCKS] = ",".join(blocks)
        lines.append(f"secrets stored as Prefect Secret blocks: {', '.join(b.split('=')[1] for b in blocks)}")
    for dep in deployments(settings):
        source: Any = prefect_flow.from_source(str(code_root()), dep.entrypoint)
        dep_id = source.deploy(
            name=dep.name,
            work_pool_name=pool,
            schedules=dep.schedules,
            concurrency_limit=dep.concurrency_limit,
            description=dep.description,
            tags=dep.tags,
            job_variables={"env": env, "working_dir": str(code_root())},
            build=False,
            push=False,
            print_next_steps=False,
        )
        lines.append(f"deployed {dep.flow_name}/{dep.name} on pool {pool} ({dep_id})")
    lines.append(f"start a worker: PREFECT_API_URL={os.environ['PREFECT_API_URL']} prefect worker start --pool {pool}")
    return lines
