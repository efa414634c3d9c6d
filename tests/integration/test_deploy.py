"""Production on Prefect: a real `prefect server start`, `digest deploy` on a process work pool, and a real
`prefect worker start` whose environment holds only PREFECT_API_URL and PATH."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from digest.replay import ArxivState, LLMState, serve_arxiv, serve_llm
from digest.replay.smtp import Mailbox, free_port, serve_smtp
from digest.store import Store

BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "PREFECT_"))},
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.skip("`prefect server start` did not become healthy here")
            time.sleep(1)
        yield env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def api(env: dict[str, str], method: str, path: str, **kw: Any) -> Any:
    """The Prefect REST API, retrying what a busy server answers (5xx, a dropped connection) a few times."""
    for attempt in range(6):
        try:
            r = httpx.request(method, env["PREFECT_API_URL"] + path, timeout=30, **kw)
        except httpx.TransportError:
            if attempt == 5:
                raise
            time.sleep(1 + attempt)
            continue
        if r.status_code >= 500 and attempt < 5:
            time.sleep(1 + attempt)
            continue
        r.raise_for_status()
        return r.json() if r.content else None


def wait_for(env: dict[str, str], run_id: str, timeout: float = 400) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fr = api(env, "GET", f"/flow_runs/{run_id}")
        if fr["state_type"] in TERMINAL:
            return dict(fr)
        time.sleep(2)
    raise AssertionError(f"flow run {run_id} did not finish: {fr['state_type']}")


def start_run(env: dict[str, str], name: str, params: dict[str, Any], when: dt.datetime | None = None) -> str:
    dep = api(env, "GET", f"/deployments/name/{name}")
    body: dict[str, Any] = {"parameters": params}
    if when is not None:
        body["state"] = {"type": "SCHEDULED", "state_details": {"scheduled_time": when.isoformat()}}
    return str(api(env, "POST", f"/deployments/{dep['id']}/create_flow_run", json=body)["id"])


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain (non-editable) install of this checkout in its own virtualenv: the code lives in site-packages,
    as in the Docker image; nothing may depend on the checkout or the working directory."""
    venv = tmp_path_factory.mktemp("plain-install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    res = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-c", str(REPO / "constraints.txt"), str(REPO)],
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert (site / "flows" / "daily.py").is_file() and not (site / "digest" / "__editable__").exists()
    return venv / "bin"


@pytest.fixture(scope="module")
def deployed(
    prefect_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory, installed: Path
) -> Iterator[dict[str, Any]]:
    """Stand-ins, `digest deploy` of a plain install run from a folder outside the checkout, and a worker of that
    install with a clean environment."""
    work = tmp_path_factory.mktemp("deployed")
    state = ArxivState(day=dt.date(2026, 7, 3))  # the feed carries another day: runs use the API
    llm = LLMState()
    with serve_arxiv(state) as arxiv, serve_llm(llm) as url, serve_smtp() as (box, port):
        settings = {
            "DIGEST_ARXIV_RSS_URL": f"{arxiv}/rss/",
            "DIGEST_ARXIV_API_URL": f"{arxiv}/api/query",
            "DIGEST_ARXIV_DELAY_SECONDS": "0",
            "DIGEST_DB_URL": f"sqlite:///{work}/store/digest.db",
            "DIGEST_OUTPUT_DIR": str(work / "site"),
            "DIGEST_DATA_DIR": str(work / "data"),
            "DIGEST_LLM_BASE_URL": url,
            "DIGEST_LLM_API_KEY": "sk-deploy-SECRET-0123456789",
            "DIGEST_LLM_MAX_TRIES": "1",
            "DIGEST_TRANSLATE_FALLBACK": "none",
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(port),
            "DIGEST_EMAIL_TO": "reader@example.org",
            "DIGEST_ALERT_EMAIL": "ops@example.org",
            "DIGEST_LEASE_SECONDS": "10",
        }
        res = subprocess.run([str(installed / "digest"), "deploy"], env={**prefect_server, **settings}, cwd=work,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
        clean = {"PREFECT_API_URL": prefect_server["PREFECT_API_URL"], "PATH": os.environ["PATH"]}
        log = (work / "worker.log").open("w")
        worker = subprocess.Popen(
            [str(installed / "prefect"), "worker", "start", "--pool", "arxiv-digest"], env=clean, cwd="/",
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            yield {"work": work, "llm": llm, "box": box, "settings": settings, "env": prefect_server,
                   "worker": worker, "deploy_out": res.stdout, "bin": installed}  # fmt: skip
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            log.close()


def test_deploy_carries_settings_but_never_secrets(deployed: dict[str, Any]) -> None:
    env = deployed["env"]
    dep = api(env, "GET", "/deployments/name/daily-digest/daily")
    job_env = dep["job_variables"]["env"]
    assert job_env["DIGEST_OUTPUT_DIR"] == deployed["settings"]["DIGEST_OUTPUT_DIR"]
    assert (
        "sk-deploy-SECRET" not in str(dep)
        and "DIGEST_LLM_API_KEY=digest-llm-api-key" in job_env["DIGEST_SECRET_BLOCKS"]
    )
    sched = dep["schedules"][0]["schedule"]
    assert sched["cron"] == "30 0 * * 1-5" and sched["timezone"] == "America/New_York"
    assert dep["concurrency_limit"] == 1 or dep.get("global_concurrency_limit")
    for name in ("backfill/backfill", "weekly/weekly", "retrain/retrain", "watchdog/watchdog"):
        api(env, "GET", f"/deployments/name/{name}")
    # the flows were found by import in the plain install, not in the checkout or the deploying folder
    working = dep["job_variables"]["working_dir"]
    assert working.startswith(str(deployed["bin"].parent)) and "site-packages" in working
    assert not working.startswith(str(REPO)) and dep["entrypoint"] == "flows/daily.py:daily_digest"


def test_a_worker_with_a_clean_environment_runs_a_deployed_day(deployed: dict[str, Any]) -> None:
    env, llm, work = deployed["env"], deployed["llm"], deployed["work"]
    before = llm.requests
    run_id = start_run(env, "daily-digest/daily", {"date": "2026-06-26"})
    fr = wait_for(env, run_id)
    assert fr["state_type"] == "COMPLETED", (fr["state"], (work / "worker.log").read_text()[-3000:])
    assert (work / "site/2026/06/2026-06-26.md").is_file() and llm.requests > before
    arts = api(env, "POST", "/artifacts/filter", json={"artifacts": {"key": {"any_": ["digest-2026-06-26"]}}})
    assert arts and "2026-06-26 ok" in arts[0]["data"]
    subs = api(env, "POST", "/flow_runs/filter", json={"flow_runs": {"name": {"any_": ["digest-2026-06-26"]}}})
    assert subs, "the day's subflow is named by its date"
    ids = [run_id] + [s["id"] for s in subs]
    deadline = time.monotonic() + 120  # logs are shipped in batches: on a loaded machine they arrive later
    while True:
        logs = api(env, "POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": ids}}, "limit": 200})
        ours = [entry for entry in logs if entry["name"].startswith("digest.")]
        if any("2026-06-26 ok" in entry["message"] for entry in ours) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert any("2026-06-26 ok" in entry["message"] for entry in ours), {entry["name"] for entry in logs}


def test_two_runs_of_one_day_through_the_deployment_pay_once(deployed: dict[str, Any]) -> None:
    env, llm, work = deployed["env"], deployed["llm"], deployed["work"]
    before = llm.requests
    ids = [start_run(env, "daily-digest/daily", {"date": "2026-06-29"}) for _ in range(2)]
    states = sorted(wait_for(env, i)["state_type"] for i in ids)
    assert "COMPLETED" in states, states
    store = Store(deployed["settings"]["DIGEST_DB_URL"])
    relevant = max(r["report"].get("relevant", 0) for r in store.last_runs(10) if r["date"] == dt.date(2026, 6, 29))
    assert llm.requests - before == relevant > 0
    assert (work / "site/2026/06/2026-06-29.md").is_file()


def test_a_scheduled_run_knows_its_day_and_catches_up_a_missed_one(deployed: dict[str, Any]) -> None:
    env, work = deployed["env"], deployed["work"]
    # 2026-06-30 (Tue) was never run: the worker was "down". Wednesday's scheduled run catches it up.
    when = dt.datetime(2026, 7, 1, 0, 30, tzinfo=ZoneInfo("America/New_York"))
    fr = wait_for(env, start_run(env, "daily-digest/daily", {}, when), timeout=600)
    assert fr["state_type"] == "COMPLETED", fr["state"]
    assert (work / "site/2026/07/2026-07-01.md").is_file() and (work / "site/2026/06/2026-06-30.md").is_file()
    names = {r["name"] for r in api(env, "POST", "/flow_runs/filter", json={})}
    assert {"digest-2026-07-01", "digest-2026-06-30"} <= names


def test_a_failed_day_tells_the_operator_exactly_once(deployed: dict[str, Any]) -> None:
    env, llm, box = deployed["env"], deployed["llm"], deployed["box"]
    llm.always = {"500"}
    try:
        for _ in range(2):
            fr = wait_for(env, start_run(env, "daily-digest/daily", {"date": "2026-06-24"}))
            assert fr["state_type"] == "FAILED"
    finally:
        llm.always = set()
    # (the hourly watchdog deployment may also fire during the test and report its own overdue days)
    alerts = [m for m in box.messages if m["To"] == "ops@example.org" and "2026-06-24" in str(m["Subject"])]
    assert len(alerts) == 1 and "2026-06-24 failed" in alerts[0]["Subject"], [m["Subject"] for m in box.messages]


def test_sigterm_on_the_worker_leaves_no_zombie(deployed: dict[str, Any]) -> None:
    env, llm, worker, work = deployed["env"], deployed["llm"], deployed["worker"], deployed["work"]
    llm.latency = 3.0
    try:
        run_id = start_run(env, "daily-digest/daily", {"date": "2026-06-23"})
        deadline = time.monotonic() + 300
        while llm.requests == 0 or api(env, "GET", f"/flow_runs/{run_id}")["state_type"] != "RUNNING":
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(1)
        before = llm.requests
        while llm.requests == before and time.monotonic() < deadline:
            time.sleep(0.5)
        os.kill(worker.pid, signal.SIGTERM)  # what `docker stop` and systemd send: to the worker alone
        try:  # Prefect's worker stops taking runs and waits for the one in flight; after its grace period
            worker.wait(timeout=10)  # (10 s: `docker stop`'s default) docker sends SIGKILL
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=30)
        time.sleep(21)  # two lease periods: the day's lease lapses with its process
        # the operator looks (or the watchdog / the next deployed run does): zombies are settled in Prefect
        res = subprocess.run([str(deployed["bin"] / "digest"), "status"], env={**env, **deployed["settings"]},
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert "Traceback" not in res.stderr and res.stdout, res.stdout + res.stderr
        fr = wait_for(env, run_id, timeout=60)
        # interrupted (or, when the worker's wait outran the run on a loaded machine, completed): never Running
        assert fr["state_type"] in {"CANCELLED", "CRASHED", "COMPLETED"}, fr["state"]
    finally:
        llm.latency = 0.0
    store = Store(deployed["settings"]["DIGEST_DB_URL"])
    mine = [r for r in store.last_runs(20, stale_after=20) if r["date"] == dt.date(2026, 6, 23)]
    ended = ("ok", "partial") if fr["state_type"] == "COMPLETED" else ("cancelled", "crashed")
    assert mine and all(r["status"] in ended for r in mine), (fr["state_type"], mine)  # the store agrees
    assert store.lease_holder("day:2026-06-23") is None
    _ = (work, Mailbox)
