"""The ``digest`` commands that need Prefect (``deploy``, ``serve``), added to the core CLI through the
``digest.plugins`` entry point, and the zombie check added to ``digest status`` and the watchdog."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from digest.config import Settings
from digest.usecases.status import STATUS_CHECKS
from flows.runtime import zombie_check


def register(app: typer.Typer, load: Callable[[], Settings]) -> None:
    """Called by ``digest.cli`` with its Typer app and a function that loads the settings."""
    if zombie_check not in STATUS_CHECKS:
        STATUS_CHECKS.append(zombie_check)

    @app.command(rich_help_panel="Operations")
    def serve() -> None:
        """Run the Prefect deployments in this process: 'daily-digest/daily' on DIGEST_SCHEDULE_CRON in
        DIGEST_TIMEZONE, 'backfill/backfill', 'weekly/weekly', 'retrain/retrain' and 'watchdog/watchdog'.
        Needs a Prefect server (schedules never fire on the ephemeral one): `prefect server start` and
        PREFECT_API_URL."""
        from flows.deployments import serve_deployments

        serve_deployments(load())

    @app.command(rich_help_panel="Operations")
    def deploy(
        pool: Annotated[
            str, typer.Option(help="Prefect work pool (a process pool is created if missing)")
        ] = "arxiv-digest",
    ) -> None:
        """Register the deployments on a Prefect work pool, carrying this machine's non-secret DIGEST_* settings
        (secrets go to Prefect Secret blocks). Works from any directory. Start a worker with
        `prefect worker start --pool arxiv-digest`."""
        from flows.deployments import deploy_to_pool

        for line in deploy_to_pool(load(), pool):
            typer.echo(line)
