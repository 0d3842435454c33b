"""Benchmark data: seeded, invoice-like CSV and JSON members that deflate 5-10x, zipped once and cached.

An archive is built ONCE per parameter set under `.local/bench-data/<key>/` (`archive.zip` plus
`archive.json`: its size, SHA-256 and members), and served from disk by the Fusion emulator afterwards,
so no benchmark measures data generation. The key names every parameter and the generator's version, so
a change of either builds a new archive and never reuses a stale one.

Rows look like an AP invoice extract: sequential ids, an invoice number, supplier id and name from a fixed
list, business unit, ISO dates and timestamps, currency, amounts with two decimals, a status, payment
terms, a description made of repeated categorical words, and a random token: what makes real extracts
compress well (repeated text) and what keeps them from compressing absurdly (ids, amounts, tokens).
Members of a many-member archive alternate: three CSV then one JSON. Every archive also carries the
`<view>_metadata.json` member Fusion adds, listing each data member and its rows.

    .venv/bin/python -m tests.bench.datagen --megabytes 100 --members 200    (builds, prints the summary)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.emulators.fusion.data import metadata_document

MB = 2**20
REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".local" / "bench-data"
VERSION = 1  # bump when the bytes generated for a given key change
VIEW = "invoices"
LEVEL = 6  # deflate level of the archives (zipfile's default)
BATCH_ROWS = 4000
ZIP64_FROM = 2**30  # members that may pass 2 GiB need ZIP64 headers from the start

SUPPLIERS = tuple(
    f"{first} {second} {kind}"
    for first in ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay")
    for second in ("Industrial", "Logistics", "Foods", "Energy", "Software", "Medical")
    for kind in ("Inc.", "GmbH", "Ltd", "S.A.")
)
UNITS = ("US1 Business Unit", "UK Business Unit", "DE Business Unit", "FR Business Unit", "JP Business Unit")
CURRENCIES = ("USD", "EUR", "GBP", "JPY")
STATUSES = ("VALIDATED", "APPROVED", "PAID", "NEEDS REVALIDATION", "CANCELLED")
TERMS = ("Net 30", "Net 45", "Net 60", "Immediate", "2/10 Net 30")
WORDS = (
    "office supplies",
    "consulting services",
    "freight",
    "maintenance",
    "software subscription",
    "hardware",
    "travel expenses",
    "utilities",
    "marketing",
    "raw materials",
)
TYPES = ("STANDARD", "CREDIT", "PREPAYMENT")
SOURCES = ("Manual Invoice Entry", "Invoice Gateway", "Spreadsheet", "EDI Gateway")
METHODS = ("Electronic Funds Transfer", "Check", "Wire")
ENTITIES = ("Vision Operations Legal Entity", "Vision Services UK Ltd", "Vision Deutschland GmbH")
PRICES = tuple(range(995, 250_000, 2_500))  # unit prices in cents: amounts are quantity x price
USERS = tuple(f"user{number:02d}@example.com" for number in range(40))
COLUMNS = (
    "INVOICE_ID",
    "INVOICE_NUM",
    "SUPPLIER_ID",
    "SUPPLIER_NAME",
    "BUSINESS_UNIT",
    "INVOICE_DATE",
    "GL_DATE",
    "CURRENCY",
    "INVOICE_AMOUNT",
    "TAX_AMOUNT",
    "STATUS",
    "PAYMENT_TERMS",
    "DESCRIPTION",
    "TOKEN",
    "INVOICE_TYPE",
    "SOURCE",
    "PAYMENT_METHOD",
    "LEGAL_ENTITY",
    "CREATED_BY",
    "LAST_UPDATE_DATE",
)
DAYS = tuple((date(2024, 1, 1) + timedelta(days=day)).isoformat() for day in range(1100))
CSV_LINE = ",".join("{}" for _ in COLUMNS) + "\n"
JSON_ITEM = (
    '{{"invoiceId":{},"invoiceNum":"{}","supplierId":{},"supplierName":"{}","businessUnit":"{}",'
    '"invoiceDate":"{}","glDate":"{}","currency":"{}","invoiceAmount":{},"taxAmount":{},"status":"{}",'
    '"paymentTerms":"{}","description":"{}","token":"{}","invoiceType":"{}","source":"{}",'
    '"paymentMethod":"{}","legalEntity":"{}","createdBy":"{}","lastUpdateDate":"{}"}}'
)


@dataclass(frozen=True)
class Spec:
    """What an archive holds: `megabytes` MiB of data members in `members` files, from `seed`."""

    megabytes: int
    members: int
    seed: int = 11

    @property
    def key(self) -> str:
        return f"v{VERSION}-{self.megabytes}mib-{self.members}m-s{self.seed}"

    @property
    def data_bytes(self) -> int:
        return self.megabytes * MB


@dataclass(frozen=True)
class Built:
    """A cached archive: where it is and what the emulator and the checks need to know about it."""

    spec: Spec
    path: Path
    size: int
    sha256: str
    members: list[dict[str, Any]]  # name, size, rows

    @property
    def uncompressed(self) -> int:
        return sum(int(member["size"]) for member in self.members)

    @property
    def ratio(self) -> float:
        return self.uncompressed / self.size

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.spec.key,
            "zip_bytes": self.size,
            "uncompressed_bytes": self.uncompressed,
            "ratio": round(self.ratio, 2),
            "members": len(self.members),
        }


def member_format(index: int, members: int) -> str:
    """Three CSV members, then one JSON, and so on; a one-member archive is CSV."""
    return "json" if members > 1 and index % 4 == 3 else "csv"


def rows(seed: int | str, first_id: int, data_format: str) -> Iterator[tuple[int, bytes]]:
    """Endless batches of rows (count, bytes): the same seed gives the same bytes. JSON batches are
    comma-separated items without the enclosing document (see `member_blocks`)."""
    rng = random.Random(seed)
    template = CSV_LINE if data_format == "csv" else JSON_ITEM
    json_rows = data_format == "json"
    start = first_id
    while True:
        ids = range(start, start + BATCH_ROWS)
        count = len(ids)
        suppliers = rng.choices(range(len(SUPPLIERS)), k=count)
        # Invoices arrive in id order: dates move forward with the id, a few days of jitter.
        days = [
            (row_id // 2000 + jitter) % (len(DAYS) - 40)
            for row_id, jitter in zip(ids, rng.choices(range(8), k=count), strict=True)
        ]
        cents = [
            price * quantity
            for price, quantity in zip(
                rng.choices(PRICES, k=count), rng.choices(range(1, 60), k=count), strict=True
            )
        ]
        width = 20 if json_rows else 8  # a reference token: on half the CSV rows, longer on every JSON item
        tokens = rng.randbytes(width // 2 * count).hex()
        columns = (
            ids,
            [f"INV-{row_id:09d}" for row_id in ids],
            [3_000_000 + supplier for supplier in suppliers],
            [SUPPLIERS[supplier] for supplier in suppliers],
            rng.choices(UNITS, k=count),
            [DAYS[day] for day in days],
            [DAYS[day + 3] for day in days],
            rng.choices(CURRENCIES, weights=(6, 3, 2, 1), k=count),
            [f"{amount / 100:.2f}" for amount in cents],
            [f"{amount * 0.2 / 100:.2f}" for amount in cents],
            rng.choices(STATUSES, weights=(3, 4, 8, 1, 1), k=count),
            rng.choices(TERMS, k=count),
            [
                f"{a} and {b}"
                for a, b in zip(rng.choices(WORDS, k=count), rng.choices(WORDS, k=count), strict=True)
            ],
            [
                tokens[at : at + width] if row_id % 2 or json_rows else ""
                for row_id, at in zip(ids, range(0, width * count, width), strict=True)
            ],
            rng.choices(TYPES, weights=(20, 2, 1), k=count),
            rng.choices(SOURCES, weights=(5, 3, 1, 2), k=count),
            rng.choices(METHODS, weights=(8, 2, 1), k=count),
            rng.choices(ENTITIES, k=count),
            rng.choices(USERS, k=count),
            [
                f"{DAYS[day + 5]}T{row_id % 24:02d}:{row_id % 60:02d}:00Z"
                for row_id, day in zip(ids, days, strict=True)
            ],
        )
        lines = map(template.format, *columns)
        text = "".join(lines) if data_format == "csv" else ",".join(lines)
        yield count, text.encode()
        start += count


def member_blocks(seed: str, size: int, data_format: str) -> Iterator[tuple[int, bytes]]:
    """One member of about `size` bytes (whole rows; it stops at the first batch that reaches the size),
    as (rows, bytes) blocks; the header or the JSON document's frame count no rows."""
    opening, closing = (",".join(COLUMNS) + "\n", "") if data_format == "csv" else ('{"items":[', "]}")
    yield 0, opening.encode()
    written, first = len(opening), True
    for count, block in rows(seed, 1, data_format):
        if data_format == "json" and not first:
            block = b"," + block
        first = False
        left = size - written - len(closing)
        if len(block) > left:  # the last batch: keep only the rows that fit, at least one
            kept, taken = _whole_rows(block, left, data_format)
            yield kept, taken
            break
        yield count, block
        written += len(block)
    yield 0, closing.encode()


def _whole_rows(block: bytes, room: int, data_format: str) -> tuple[int, bytes]:
    separator = b"\n" if data_format == "csv" else b'"},{'
    cut = block.rfind(separator, 0, max(room, 1))
    if cut <= 0:
        cut = block.find(separator, 1)
    end = cut + (1 if data_format == "csv" else 2)
    kept = block[:end]
    count = kept.count(b"\n") if data_format == "csv" else kept.count(b'{"invoiceId"')
    return count, kept


def build(spec: Spec, cache: Path = CACHE) -> Built:
    """The cached archive for `spec`, built first if missing (into a temporary name, then renamed)."""
    folder = cache / spec.key
    described = folder / "archive.json"
    if described.exists():
        document = json.loads(described.read_text())
        return Built(spec, folder / "archive.zip", document["size"], document["sha256"], document["members"])
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "archive.zip.partial"
    members = _write(spec, partial)
    digest, size = hashlib.sha256(), 0
    with partial.open("rb") as archive:
        while block := archive.read(4 * MB):
            digest.update(block)
            size += len(block)
    partial.replace(folder / "archive.zip")
    built = Built(spec, folder / "archive.zip", size, digest.hexdigest(), members)
    document = {"spec": spec.__dict__, "size": size, "sha256": built.sha256, "members": members}
    described.write_text(json.dumps(document, indent=1) + "\n")
    return built


def _write(spec: Spec, path: Path) -> list[dict[str, Any]]:
    each = spec.data_bytes // spec.members
    members: list[dict[str, Any]] = []
    stamp = (2026, 3, 1, 8, 0, 0)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=LEVEL) as archive:
        for index in range(spec.members):
            data_format = member_format(index, spec.members)
            name = f"{VIEW}_{index + 1}.{data_format}"
            info = zipfile.ZipInfo(name, stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = LEVEL  # type: ignore[attr-defined]  # what ZipFile.open reads (3.11)
            size = count = 0
            with archive.open(info, "w", force_zip64=each >= ZIP64_FROM) as entry:
                for added, block in member_blocks(f"{spec.seed}:{index}", each, data_format):
                    entry.write(block)
                    size += len(block)
                    count += added
            members.append({"name": name, "size": size, "rows": count})
        metadata = metadata_document("Bench", VIEW, "csv", [0])  # replaced below with the real listing
        document = json.loads(metadata)
        document["files"] = [{"name": m["name"], "rows": m["rows"]} for m in members]
        document["totalRows"] = sum(m["rows"] for m in members)
        data = json.dumps(document, indent=2).encode()
        archive.writestr(zipfile.ZipInfo(f"{VIEW}_metadata.json", stamp), data, zipfile.ZIP_DEFLATED)
        members.append({"name": f"{VIEW}_metadata.json", "size": len(data), "rows": None})
    return members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=100, help="uncompressed data, MiB")
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--seed", type=int, default=11)
    options = parser.parse_args()
    print(json.dumps(build(Spec(options.megabytes, options.members, options.seed)).summary()))


if __name__ == "__main__":
    main()
