"""The one export writer: rows in batches in, CSV or Parquet bytes out, as they come.

The HTTP routes stream these bytes to the client and ``stanceline export`` writes
them to a file; both take the column list from ``exports.COLUMNS``. Nothing here
holds more than one batch: CSV is written a batch at a time, Parquet one row group
per batch through pyarrow's ``ParquetWriter``, its bytes handed on as each group is
written (the footer comes last). Timestamps are real types in Parquet (microseconds,
UTC) and RFC 3339 in CSV; the output depends on the rows alone, so the same rows
give the same bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from stanceline.store.exports import COLUMNS, ColumnType, Kind

FileFormat = Literal["csv", "parquet"]
MEDIA_TYPES: dict[FileFormat, str] = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}

_ARROW: dict[ColumnType, pa.DataType] = {
    "text": pa.string(),
    "time": pa.timestamp("us", tz="UTC"),
    "float": pa.float64(),
    "bool": pa.bool_(),
}


def arrow_schema(kind: Kind) -> pa.Schema:
    return pa.schema([pa.field(name, _ARROW[t]) for name, t in COLUMNS[kind]])


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, float):
        return repr(value)
    return str(value)


async def csv_bytes(
    kind: Kind, batches: AsyncIterator[list[tuple[Any, ...]]]
) -> AsyncIterator[bytes]:
    """A header line, then one line per row (RFC 4180 quoting, CRLF line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([name for name, _ in COLUMNS[kind]])
    yield buffer.getvalue().encode()
    async for rows in batches:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_text(v) for v in row] for row in rows)
        yield buffer.getvalue().encode()


class _Drain(io.RawIOBase):
    """A write-only sink whose bytes are taken away as soon as they are written."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._written += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        taken, self._chunks = b"".join(self._chunks), []
        return taken


def _table(schema: pa.Schema, rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)],
        schema=schema,
    )


async def parquet_bytes(
    kind: Kind, batches: AsyncIterator[list[tuple[Any, ...]]]
) -> AsyncIterator[bytes]:
    """One row group per batch; the file is complete once the last chunk is out."""
    schema = arrow_schema(kind)
    sink = _Drain()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression="zstd")
    try:
        async for rows in batches:
            if rows:
                writer.write_table(_table(schema, rows))
                yield sink.take()
    finally:
        writer.close()
    yield sink.take()


def encode(
    kind: Kind, file_format: FileFormat, batches: AsyncIterator[list[tuple[Any, ...]]]
) -> AsyncIterator[bytes]:
    return (csv_bytes if file_format == "csv" else parquet_bytes)(kind, batches)
