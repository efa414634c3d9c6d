"""Render a day as the pipeline does: its digest built from the store once, then the files."""

from __future__ import annotations

import datetime as dt

from digest.config import Settings
from digest.models import RenderResult
from digest.render import edition_of
from digest.render import render_day as render_digest
from digest.render.build import build_digest
from digest.store import Store


def render_day(day: dt.date, settings: Settings, store: Store, names: dict[str, str]) -> RenderResult:
    return render_digest(build_digest(day, store, names), edition_of(settings, names), settings, store)
