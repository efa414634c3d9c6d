"""What a deployed flow run needs before it works: settings from the deployment, secrets from blocks, a parent
whose death ends it, and Prefect flow runs left ``Running`` by a dead process settled as Crashed."""

from __future__ import annotations

import logging
import os
from typing import Any

from digest.errors import ConfigError
from digest.store import Store

log = logging.getLogger("digest.flows")

DEPLOYED_MARK = "DIGEST_SERVE_PROCESS"
SECRET_BLOCKS = "DIGEST_SECRET_BLOCKS"


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


def zombie_check(store: Store, stale_after: float) -> list[str]:
    """The status check the flows package adds to ``digest status`` and the watchdog (with a Prefect API)."""
    if not os.environ.get("PREFECT_API_URL"):
        return []
    return [f"flow run {fid} was left Running by a dead process: marked Crashed" for fid in
            reap_zombies(store, stale_after)]  # fmt: skip


def check_deployed_environment() -> None:
    """A flow run from a deployment on a worker must carry its settings: refuse built-in defaults at once."""
    from prefect.runtime import deployment

    if not deployment.get_id() or os.environ.get(DEPLOYED_MARK) == "1":
        return
    load_secret_blocks()  # before the check: a store URL with a password travels as a block
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
