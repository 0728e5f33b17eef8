"""Many rows in one statement whose text never changes: one array per column, ``unnest``.

SQLAlchemy's multi-row ``INSERT`` renders a different statement for every row
count, so asyncpg prepares it afresh for nearly every batch and binds every
value separately. Passing one array per column keeps a single prepared
statement per shape and lets asyncpg encode each column in one go; on the
write path that is the difference between planning and inserting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

_ARRAY_TYPES: tuple[tuple[type[sa.types.TypeEngine[Any]], str], ...] = (
    (sa.Boolean, "boolean"),
    (sa.BigInteger, "bigint"),
    (sa.Integer, "integer"),
    (sa.Float, "double precision"),
    (sa.DateTime, "timestamptz"),
    (JSONB, "jsonb"),
    (sa.LargeBinary, "bytea"),
    (sa.String, "text"),  # after JSONB and friends, which are not Strings; Text is one
)


def any_of(name: str) -> sa.ColumnElement[Any]:
    """``= ANY(:name)``'s right side: one text-array parameter instead of an ``IN`` list
    whose length, and so whose prepared statement, changes with every batch."""
    return sa.func.any(sa.bindparam(name, type_=ARRAY(sa.Text)))


def _array_type(column: sa.Column[Any]) -> str:
    for kind, name in _ARRAY_TYPES:
        if isinstance(column.type, kind):
            return name
    raise TypeError(f"no array type for {column.table.name}.{column.name}: {column.type}")


@cache
def unnest_insert(table: sa.Table, columns: tuple[str, ...], tail: str = "") -> sa.TextClause:
    """``INSERT INTO table (columns) SELECT * FROM unnest(...)`` plus ``tail``
    (``ON CONFLICT ...``, ``RETURNING ...``); bind it with ``column_arrays``."""
    casts = ", ".join(f"CAST(:{c} AS {_array_type(table.c[c])}[])" for c in columns)
    return sa.text(
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({casts}) {tail}"
    )


@cache
def _json_columns(table: sa.Table) -> frozenset[str]:
    # Once per table: isinstance through SQLAlchemy's type hierarchy, per column and
    # per batch, was a measurable share of the write path.
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSONB))


def column_arrays(
    table: sa.Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[Any]]:
    """Rows → one list per column; JSON columns travel as text, as asyncpg expects."""
    json_columns = _json_columns(table)
    arrays: dict[str, list[Any]] = {}
    for name in columns:
        values = [row[name] for row in rows]
        if name in json_columns:
            values = [None if v is None else json_text(v) for v in values]
        arrays[name] = values
    return arrays


def json_text(value: Any) -> str:
    """JSON for a ``jsonb`` column: orjson, several times faster than ``json`` on the write
    path; ``json`` only for what orjson refuses (integers beyond 64 bits, valid JSON)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False)


async def insert_rows(
    conn: AsyncConnection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[str] | None = None,
    tail: str = "",
) -> sa.CursorResult[Any]:
    """Insert ``rows`` (dicts with at least ``columns``, by default the first row's keys)."""
    names = tuple(columns if columns is not None else rows[0].keys())
    return await conn.execute(unnest_insert(table, names, tail), column_arrays(table, names, rows))
