"""Extract data that looks like Fusion's: generated from a seed, in batches, never held whole.

The same seed always gives the same bytes, so a file can be generated again to serve a byte range.
CSV: upper-case header, ISO-8601 UTC timestamps, empty fields for nulls. JSON: {"items": [...]}.
The metadata document's shape is our choice (Oracle's is not published), so it lives only here.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

COLUMNS = ("id", "code", "name", "description", "amount", "activeFlag", "note", "timeCreated", "timeUpdated")
BATCH_ROWS = 2000
NOISE_BYTES = 80  # random bytes per row, as hex: code and a long description
UNIX_DAY_ZERO = date(1970, 1, 1).toordinal()
NOTES = ('Dock "B", north gate', *(f"gate {number}" for number in range(1, 7)))  # the first needs quoting


def member_name(view: str, chunk: int, data_format: str) -> str:
    return f"{view}_{chunk}.{data_format}"


def metadata_name(view: str) -> str:
    return f"{view}_metadata.json"


def metadata_document(extract: str, view: str, data_format: str, rows_per_file: list[int]) -> bytes:
    """The metadata file carried by the last chunk: every data member and its row count."""
    files = [
        {"name": member_name(view, chunk, data_format), "rows": rows}
        for chunk, rows in enumerate(rows_per_file, start=1)
    ]
    document = {
        "extract": extract,
        "view": view,
        "format": data_format,
        "files": files,
        "totalRows": sum(rows_per_file),
    }
    return json.dumps(document, indent=2).encode()


def data_blocks(seed: str, first_id: int, count: int, epoch: int, data_format: str) -> Iterator[bytes]:
    """The bytes of one data member, batch by batch. `epoch`: when the generated records begin."""
    batches = _batches(seed, first_id, count, epoch)
    return _csv_blocks(batches) if data_format == "csv" else _json_blocks(batches)


class _Batch(NamedTuple):
    """Rows in columns: list comprehensions and one `map` per batch beat a Python loop per row."""

    id: range
    code: list[str]
    name: list[str]
    description: list[str]
    amount: list[str]
    activeFlag: list[str]
    note: list[str | None]
    timeCreated: list[str]
    timeUpdated: list[str]


def _batches(seed: str, first_id: int, count: int, epoch: int) -> Iterator[_Batch]:
    rng = random.Random(seed)  # string seeds hash with SHA-512: stable across processes
    days = _DayNames()
    width = 2 * NOISE_BYTES
    for start in range(first_id, first_id + count, BATCH_ROWS):
        ids = range(start, min(start + BATCH_ROWS, first_id + count))
        noise = rng.randbytes(NOISE_BYTES * len(ids)).hex()  # one C call per batch
        offsets = range(0, width * len(ids), width)
        yield _Batch(
            id=ids,
            code=[noise[at : at + 12].upper() for at in offsets],
            name=[f"Carrier {row_id}" for row_id in ids],
            description=[noise[at + 12 : at + width] for at in offsets],
            amount=[f"{row_id * 7919 % 1000000 / 100:.2f}" for row_id in ids],
            activeFlag=["N" if row_id % 11 == 0 else "Y" for row_id in ids],
            note=[None if row_id % 5 == 0 else NOTES[row_id % len(NOTES)] for row_id in ids],
            timeCreated=[days.iso(epoch + row_id * 37) for row_id in ids],
            timeUpdated=[days.iso(epoch + row_id * 37 + row_id * 7919 % 86400) for row_id in ids],
        )


def _csv_blocks(batches: Iterator[_Batch]) -> Iterator[bytes]:
    yield (",".join(column.upper() for column in COLUMNS) + "\n").encode()
    line = ",".join("{}" for _ in COLUMNS) + "\n"
    for batch in batches:
        notes = [CSV_NOTES[note] for note in batch.note]
        yield "".join(map(line.format, *batch[:6], notes, *batch[7:])).encode()


def _json_blocks(batches: Iterator[_Batch]) -> Iterator[bytes]:
    yield b'{"items":['
    separator = ""
    for batch in batches:
        items = (_json_item(row) for row in zip(*batch, strict=True))
        yield (separator + ",".join(map(json.dumps, items))).encode()
        separator = ","
    yield b"]}"


def _json_item(row: tuple[Any, ...]) -> dict[str, Any]:
    item = dict(zip(COLUMNS, row, strict=True))
    item["amount"] = float(item["amount"])
    return item


def _csv_field(value: str | None) -> str:
    if value is None:
        return ""
    if any(special in value for special in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


CSV_NOTES = {note: _csv_field(note) for note in (None, *NOTES)}


MINUTES = tuple(f"T{minute // 60:02d}:{minute % 60:02d}:" for minute in range(1440))
SECONDS = tuple(f"{second:02d}Z" for second in range(60))


class _DayNames:
    """ISO-8601 timestamps from lookup tables: no datetime per row (the hot path of a multi-GB extract)."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def iso(self, epoch: int) -> str:
        day, second = divmod(epoch, 86400)
        name = self._days.get(day)
        if name is None:
            name = self._days[day] = date.fromordinal(day + UNIX_DAY_ZERO).isoformat()
        return name + MINUTES[second // 60] + SECONDS[second % 60]


def epoch_of(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp())
