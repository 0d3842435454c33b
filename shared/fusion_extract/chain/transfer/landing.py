"""Landing one output file, in pieces of work that each fit in an invocation:

1. fetch (fetch.py): the file copied into the staging area part by part and verified (size, SHA-256);
2. for an archive: its directory read from the staged copy, every rule checked before anything is
   unpacked, its members split into units (units.py) that one or more invocations unpack;
3. promote: once every unit is done, every member renamed into the landing folder. A bad archive leaves
   nothing visible. Fusion's `.mf` manifest and outputs that are not archives are promoted as fetched.

A run that ends without landing takes back what it made visible (`withdraw`): its folder is left empty.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fusion_extract.chain.ledger.records import Fetch, LandedMember, PlannedFile, Run, StagedMember, Unit
from fusion_extract.chain.transfer.archive import Entry, ZipLimits, read_directory
from fusion_extract.chain.transfer.archive_source import ArchiveSource
from fusion_extract.chain.transfer.fetch import Budget, Fetcher
from fusion_extract.chain.transfer.layout import Layout, reserved_name
from fusion_extract.chain.transfer.manifest import parse_manifest
from fusion_extract.chain.transfer.units import LEAST_UNIT_PARTS, UnitRun, is_metadata, split, staged_reader
from fusion_extract.config import Settings
from fusion_extract.errors import IntegrityError, SupersededError, UnsafeInputError
from fusion_extract.models import OutputFile, SourceVersion
from fusion_extract.ports import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 15.0  # a download's progress is logged at most this often
SMALL_FILE_LIMIT = 4 * 2**20  # a .mf manifest is read into memory up to this size
PROMOTE_CHUNK = 64  # members made visible between two looks at the budget


def is_archive(name: str) -> bool:
    """An output file whose members are landed (a ZIP); any other is landed as it is, under its own name."""
    return name.lower().endswith(".zip")


def names_in_folder(files: Iterable[PlannedFile]) -> dict[str, str]:
    """What those of the files that are not archives take in the run's folder: object path -> file."""
    return {p.name: p.name for p in files if not is_archive(p.name)}


def withdraw(store: ObjectStore, layout: Layout, run: Run) -> int:
    """Take back what a run that ends without landing made visible: every object of its folder; how many.

    A folder that holds `_SUCCESS` is left whole: it is an earlier, complete landing of the same job (a
    re-land shares its job's folder), and this run only ever put identical bytes beside it.
    """
    if store.head(layout.success(run)) is not None:
        return 0
    names = [info.name for info in store.list(layout.run_folder(run) + "/")]
    for name in names:
        store.delete(name)
    if names:
        log.info("landing withdrawn", extra={"objects": len(names)})
    return len(names)


@dataclass
class Landing:
    """The work of landing one planned file of a run; what is done so far lives in its file record."""

    settings: Settings
    layout: Layout
    store: ObjectStore
    archives: ArchiveSource
    run: Run
    planned: PlannedFile
    plain: Callable[[], Iterable[PlannedFile]]  # the run's files landed as they are (and maybe others)
    budget: Budget
    still_wanted: Callable[[], bool] = lambda: True  # asked once, just before anything becomes visible

    @property
    def is_archive(self) -> bool:
        return is_archive(self.planned.name)

    def folder(self, fetch: Fetch) -> str:
        """The staging folder of the file attempt that started the fetch."""
        return self.layout.staging(self.run, self.planned.name, fetch.attempt) + "/"

    def fetched(self, fetch: Fetch) -> str:
        return f"{self.folder(fetch)}fetched"

    def fetch(self, progress: Fetch, save: Callable[[Fetch], None]) -> Fetch:
        """Go on fetching: done (`sha256` set), or as far as the budget allowed."""
        s = self.settings
        source = _Progress(self.archives, self.planned.name)
        fetcher = Fetcher(
            self.store, source, s.upload_part_mb * 2**20, s.upload_parallelism, self.budget, save
        )
        return fetcher.fetch(self._file, self.fetched(progress), progress)

    def entries(self, fetch: Fetch) -> list[Entry]:
        """The staged archive's members, every directory rule checked."""
        s = self.settings
        limits = ZipLimits(s.zip_max_entries, s.zip_max_bytes, s.zip_max_ratio)
        read = staged_reader(self.store, self.fetched(fetch), fetch.etag)
        entries = read_directory(read, fetch.offset, limits)
        for entry in entries:
            if reserved := reserved_name(entry.path):
                raise UnsafeInputError(
                    f"{self.planned.name}: member {entry.path!r} would take {reserved!r}, a name the run "
                    "reserves"
                )
        # Two would leave the row counts to whichever unit saves first: the check could pass unseen.
        if len(metadata := [entry.path for entry in entries if is_metadata(entry.path)]) > 1:
            raise UnsafeInputError(f"{self.planned.name}: more than one metadata member: {metadata[:3]}")
        return entries

    def units(self, entries: list[Entry]) -> tuple[Unit, ...]:
        """The archive's units, once its members are known not to take a name another file of the run lands
        at (checked here, once: the plan does not change)."""
        taken = names_in_folder(self.plain())
        for entry in entries:
            if entry.path in taken:
                other = taken[entry.path]
                raise UnsafeInputError(
                    f"{self.planned.name}: member {entry.path!r} collides with the file {other}"
                )
        least = LEAST_UNIT_PARTS * self.settings.upload_part_mb * 2**20
        return split(entries, self.settings.transfer_fanout, least)

    def unpack(self, fetch: Fetch, entries: list[Entry], index: int, unit: Unit) -> tuple[Unit, bool]:
        s = self.settings
        part_size = s.upload_part_mb * 2**20
        runner = UnitRun(
            self.store,
            self.fetched(fetch),
            fetch.etag,
            self.folder(fetch),
            entries,
            part_size,
            s.upload_parallelism,
            self.budget,
        )
        return runner.run(index, unit)

    def promote_unit(self, fetch: Fetch, unit: Unit) -> tuple[Unit, bool]:
        """Every unit of the archive staged: what remains of this unit's members into the landing folder,
        PROMOTE_CHUNK at a time while the budget lasts (one chunk at least). The unit with the count of its
        members now visible, and whether that is all of them."""
        self._check_wanted()
        folder = self.folder(fetch)

        def move(item: StagedMember) -> None:
            path = item.member.path
            info = ObjectInfo(f"{folder}members/{path}", item.member.size, item.etag, item.md5)
            self.store.promote(info.name, self.layout.member(self.run, path), info)

        promoted = unit.promoted
        with ThreadPoolExecutor(self.settings.upload_parallelism * 2, thread_name_prefix="promote") as pool:
            while promoted < len(unit.staged):
                if promoted > unit.promoted and self.budget.spent():
                    break
                chunk = unit.staged[promoted : promoted + PROMOTE_CHUNK]
                for done in [pool.submit(move, item) for item in chunk]:
                    done.result()
                promoted += len(chunk)
        self._check_still_wanted()
        return unit.but(promoted=promoted), promoted == len(unit.staged)

    def promote_raw(self, fetch: Fetch) -> None:
        """The archive itself under raw/, when KEEP_RAW_ZIPS asks for it (once every member is visible)."""
        if self.settings.keep_raw:
            self.store.promote(self.fetched(fetch), self.layout.raw(self.run, self.planned.name))
            self._check_still_wanted()

    def promote_plain(self, fetch: Fetch) -> tuple[tuple[LandedMember, ...], dict[str, str] | None]:
        """A file that is not an archive: landed as fetched, as its own member. A `.mf` manifest is parsed
        (and is not a member: the run's manifest accounts for it as Fusion's)."""
        assert fetch.sha256 is not None
        if self.planned.name.lower().endswith(".mf"):
            if fetch.offset > SMALL_FILE_LIMIT:
                raise IntegrityError(
                    f"{self.planned.name} is larger than {SMALL_FILE_LIMIT} bytes; not a manifest"
                )
            data, _ = self.store.get_bytes(self.fetched(fetch))
            manifest: dict[str, str] | None = parse_manifest(data.decode("utf-8", errors="replace"))
            members: tuple[LandedMember, ...] = ()
        else:
            manifest, members = None, (LandedMember(self.planned.name, fetch.offset, fetch.sha256, None),)
        self._check_wanted()
        self.store.promote(self.fetched(fetch), self.layout.member(self.run, self.planned.name))
        self._check_still_wanted()
        return members, manifest

    @property
    def _file(self) -> OutputFile:
        assert self.run.job_id is not None
        p = self.planned
        return OutputFile(self.run.job_id, p.name, p.size, p.sha256, None, p.url, listed_name=p.listed_name)

    def _check_wanted(self) -> None:
        if not self.still_wanted():
            raise SupersededError(f"{self.planned.name}: the run ended meanwhile; nothing of it is landed")

    def _check_still_wanted(self) -> None:
        """After promoting: a run that ended while this invocation promoted may have withdrawn its folder
        before these objects arrived; they are taken back here."""
        if not self.still_wanted():
            withdraw(self.store, self.layout, self.run)
            raise SupersededError(f"{self.planned.name}: the run ended while it was promoted; withdrawn")


@dataclass(frozen=True)
class _Progress:
    """The source, logging `transfer progress` (bytes, percent, MB/s) every PROGRESS_SECONDS."""

    source: ArchiveSource
    name: str

    def open(self, file: OutputFile, start: int = 0, version: SourceVersion | None = None) -> Iterator[bytes]:
        return progress(self.source.open(file, start, version), self.name, file.size, done=start)


def progress(
    chunks: Iterator[bytes],
    name: str,
    total: int | None,
    *,
    done: int = 0,
    every: float = PROGRESS_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[bytes]:
    """The chunks as they come, logging `transfer progress` (bytes, percent, MB/s) every `every` seconds."""
    started = last = monotonic()
    first = done
    for chunk in chunks:
        done += len(chunk)
        now = monotonic()
        if now - last >= every:
            last = now
            extra: dict[str, Any] = {
                "file": name,
                "bytes": done,
                "mb_per_s": round((done - first) / 1e6 / (now - started), 2),
            }
            if total:
                extra["percent"] = round(100 * done / total, 1)
            log.info("transfer progress", extra=extra)
        yield chunk
