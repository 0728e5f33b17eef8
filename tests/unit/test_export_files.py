"""The export writer streams: each format hands out bytes before it has pulled the last
batch, so a response's first byte leaves before the last row is read; and the bytes
depend on the rows alone."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest

from stanceline.store.export_files import FileFormat, encode
from stanceline.store.exports import STATEMENT_COLUMNS

BATCHES = 5


def row(n: int) -> tuple[Any, ...]:
    said = datetime(2023, 5, 1, tzinfo=UTC) + timedelta(minutes=n)
    return (
        f"s{n:05d}", "ru", "Russia", "t", "A topic, with a comma", said, "support", 0.5, 1.0,
        "assert", None, "Name", None, 'He said "yes"\nthen left', None, None, said, f"e{n}",
        n % 2 == 0,
    )  # fmt: skip


class Source:
    """Batches handed out one at a time, counting how many have been pulled."""

    def __init__(self) -> None:
        self.pulled = 0

    async def batches(self) -> AsyncIterator[list[tuple[Any, ...]]]:
        for b in range(BATCHES):
            self.pulled += 1
            yield [row(b * 100 + i) for i in range(100)]


async def collect(file_format: FileFormat) -> tuple[list[int], bytes]:
    source = Source()
    seen, out = [], b""
    async for chunk in encode("statements", file_format, source.batches()):
        seen.append(source.pulled)
        out += chunk
    return seen, out


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
async def test_bytes_leave_before_the_last_batch_is_pulled(file_format: FileFormat) -> None:
    seen, _ = await collect(file_format)
    assert seen[0] < BATCHES  # the first chunk was handed out with batches still unread
    assert seen == sorted(seen)
    assert len(seen) >= BATCHES  # a chunk (a row group) per batch, not one at the end


async def test_csv_and_parquet_hold_the_same_rows_and_the_same_bytes_twice() -> None:
    _, text = await collect("csv")
    _, parquet = await collect("parquet")
    assert (await collect("csv"))[1] == text
    assert (await collect("parquet"))[1] == parquet
    from_csv = list(csv.DictReader(io.StringIO(text.decode())))
    table = pq.read_table(io.BytesIO(parquet))
    assert table.num_rows == len(from_csv) == BATCHES * 100
    assert pq.ParquetFile(io.BytesIO(parquet)).num_row_groups == BATCHES
    assert list(from_csv[0]) == [name for name, _ in STATEMENT_COLUMNS] == table.column_names
    first = table.slice(0, 1).to_pylist()[0]
    assert from_csv[0]["quote"] == first["quote"] == 'He said "yes"\nthen left'
    assert from_csv[0]["said_at"] == "2023-05-01T00:00:00Z"
    assert first["said_at"] == datetime(2023, 5, 1, tzinfo=UTC)
    assert (from_csv[0]["corrected"], first["corrected"]) == ("true", True)
    assert (from_csv[0]["certainty"], first["certainty"]) == ("", None)
