"""The one definition of the deployments (names, entrypoints, schedules, concurrency), and the two ways to run
them: ``digest serve`` (one process) and ``digest deploy`` (a process work pool and its workers).

There is no ``prefect.yaml``: a second hand-kept copy drifted from this one. The flows are found by import
(this package's own location), never by the working directory, so ``digest deploy`` works from any folder,
from an editable or a plain install and from the Docker image.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from digest.config import SECRET_FIELDS, Settings
from digest.errors import ConfigError, mask_secrets
from digest.retry import GaveUp, RetryPolicy, Transient
from flows.runtime import DEPLOYED_MARK, SECRET_BLOCKS

T = TypeVar("T")

#: the folder that holds the ``flows`` package: a checkout, or site-packages of an installed wheel or image
CODE_ROOT = Path(__file__).resolve().parents[1]
ENTRY_FILE = "flows/daily.py"
TAGS = ["arxiv-digest"]
DOWS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 0}


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    flow: str  # the function's name in flows/daily.py
    description: str
    cron: str | None = None
    one_at_a_time: bool = True

    @property
    def entrypoint(self) -> str:
        return f"{ENTRY_FILE}:{self.flow}"


def specs(settings: Settings) -> list[DeploymentSpec]:
    """Every deployment, with the schedules the settings choose."""
    return [
        DeploymentSpec("daily", "daily_digest",
                       "Today's arXiv announcement → digest (then missed weekdays), after the RSS update.",
                       settings.schedule_cron),
        DeploymentSpec("backfill", "backfill", "Re-run a date range.", None, one_at_a_time=False),
        DeploymentSpec("weekly", "weekly", "The weekly edition.", f"0 7 * * {DOWS[settings.weekly_day]}"),
        DeploymentSpec("retrain", "retrain", "Rebuild the relevance model from seeds and votes.", "0 5 * * 0"),
        DeploymentSpec("watchdog", "watchdog", "Alert on missing, failed or crashed days.", "17 * * * *"),
    ]  # fmt: skip


def _prefect_options(spec: DeploymentSpec, settings: Settings) -> dict[str, Any]:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    out: dict[str, Any] = {"description": spec.description, "tags": TAGS}
    if spec.cron:
        out["schedules"] = [Cron(spec.cron, timezone=settings.timezone)]
    if spec.one_at_a_time:
        out["concurrency_limit"] = ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        )
    return out


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


def split_credentials(env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(job variables without credentials, the variables that carry one): a URL with ``user:password@``, an
    ``?api-key=`` / ``token=`` or a key-like token never goes into a deployment's job variables (readable by
    anyone with access to the Prefect UI or API); it travels as a Secret block instead."""
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for k, v in env.items():
        (secret if mask_secrets(v) != v else plain)[k] = v
    return plain, secret


def secret_block_names() -> dict[str, str]:
    """``DIGEST_LLM_API_KEY`` → ``digest-llm-api-key``, for every secret setting."""
    return {f"DIGEST_{f.upper()}": f"digest-{f.replace('_', '-')}" for f in SECRET_FIELDS}


def runner_deployments(settings: Settings) -> list[Any]:
    """The flows as runner deployments (for ``digest serve``)."""
    from flows import daily

    return [
        getattr(daily, s.flow).to_deployment(name=s.name, **_prefect_options(s, settings)) for s in specs(settings)
    ]


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

    serve(*runner_deployments(settings))


def _prefect_call(fn: Callable[[], T], what: str) -> T:
    """A Prefect API call that survives a busy server: 5xx answers and dropped connections are retried."""
    import httpx

    def once() -> T:
        try:
            return fn()
        except httpx.TransportError as exc:
            raise Transient(f"{what}: {exc.__class__.__name__}") from None
        except Exception as exc:  # PrefectHTTPStatusError and friends carry the response
            response = getattr(exc, "response", None)
            if response is not None and getattr(response, "status_code", 0) >= 500:
                raise Transient(f"{what}: HTTP {response.status_code}") from None
            raise

    try:
        return RetryPolicy(tries=6, backoff=1.0).call(once, what)
    except GaveUp as exc:
        raise ConfigError(f"the Prefect server did not take {what}: {exc.last}; is it overloaded? try again") from None


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
            _prefect_call(lambda: client.read_work_pool(pool), f"reading work pool {pool}")
        except ObjectNotFound:
            _prefect_call(lambda: client.create_work_pool(WorkPoolCreate(name=pool, type="process")), "a work pool")
            lines.append(f"created process work pool {pool!r}")
    env, with_credentials = split_credentials(job_env(settings))
    blocks = []
    values = {var: os.environ.get(var) or (os.environ.get("OPENAI_API_KEY") if var == "DIGEST_LLM_API_KEY" else None)
              for var in secret_block_names()}  # fmt: skip
    names = {**secret_block_names(), **{k: "digest-" + k.removeprefix("DIGEST_").lower().replace("_", "-")
                                        for k in with_credentials}}  # fmt: skip
    for var, value in {**values, **with_credentials}.items():
        if value:
            _prefect_call(partial(Secret(value=value).save, names[var], overwrite=True), f"secret block {names[var]}")
            blocks.append(f"{var}={names[var]}")
    if blocks:
        env[SECRET_BLOCKS] = ",".join(blocks)
        lines.append(f"secrets stored as Prefect Secret blocks: {', '.join(b.split('=')[1] for b in blocks)}")
    for spec in specs(settings):
        source: Any = prefect_flow.from_source(str(CODE_ROOT), spec.entrypoint)
        dep_id = _prefect_call(
            partial(
                source.deploy,
                name=spec.name,
                work_pool_name=pool,
                job_variables={"env": env, "working_dir": str(CODE_ROOT)},
                build=False,
                push=False,
                print_next_steps=False,
                **_prefect_options(spec, settings),
            ),
            f"deployment {spec.name}",
        )
        lines.append(f"deployed {source.name}/{spec.name} on pool {pool} ({dep_id})")
    lines.append(f"start a worker: PREFECT_API_URL={os.environ['PREFECT_API_URL']} prefect worker start --pool {pool}")
    return lines
