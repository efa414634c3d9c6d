"""Rows ↔ pydantic records, in one place: a record's fields are the table's columns of the same name."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Table

M = TypeVar("M", bound=BaseModel)


def utcnow() -> dt.datetime:
    """Now, as the store keeps times: naive UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def naive(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def aware(t: Any) -> Any:
    return t.replace(tzinfo=dt.UTC) if isinstance(t, dt.datetime) and t.tzinfo is None else t


def to_row(record: BaseModel, table: Table, **extra: Any) -> dict[str, Any]:
    """The columns of ``table`` taken from ``record`` (same names), plus ``extra``."""
    data = record.model_dump(mode="python")
    row = {c.name: data[c.name] for c in table.columns if c.name in data}
    for k, v in row.items():
        if isinstance(v, dt.datetime):
            row[k] = naive(v)
        elif isinstance(v, StrEnum):
            row[k] = v.value
    row.update(extra)
    return row


def from_row(cls: type[M], row: Any) -> M:
    """A ``cls`` record from a result row (fields missing from the row keep their defaults)."""
    m = row._mapping
    data = {k: aware(m[k]) for k in cls.model_fields if k in m and m[k] is not None}
    return cls.model_validate(data)
