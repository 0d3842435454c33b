"""Landing one output file, in pieces of work that each fit in an invocation:

1. fetch (fetch.py): the file copied into the staging area part by part and verified (size, SHA-256);
2. for an archive: its directory read from the staged copy, every rule checked before anything is
   unpacked, its members unpacked by the invocation that fetched it when they fit in what remains of its
   budget, else split into units (units.py) that parallel invocations unpack;
3. promote: once every unit is done, every member renamed into the landing folder. A bad archive leaves
   nothing visible. Fusion's `.mf` manifest and outputs that are not archives are promoted as fetched.

A run that ends without landing takes back what it made visible (`withdraw`): its folder is left empty.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from fusion_extract.chain.budget import Budget
from fusion_extract.chain.ledger.codec import landed_members
from fusion_extract.chain.ledger.records import Fetch, Member, Run, StagedMember, Unit
from fusion_extract.chain.transfer.archive import Entry, RangeReader, ZipLimits, read_directory
from fusion_extract.chain.transfer.archive_source import ArchiveSource
from fusion_extract.chain.transfer.fetch import Fetcher
from fusion_extract.chain.transfer.kept import Written, keep, staged
from fusion_extract.chain.transfer.kinds import FileKind, file_kind, is_archive
from fusion_extract.chain.transfer.layout import (
    Layout,
    reserved_name,
    staged_file,
    staged_member,
    staged_members,
    staged_tail,
    unit_checkpoint,
)
from fusion_extract.chain.transfer.manifest import parse_manifest
from fusion_extract.chain.transfer.overlap import Live, Relay, TailKept, in_thread, tail_length
from fusion_extract.chain.transfer.units import LEAST_UNIT_PARTS, UnitRun, is_metadata, plan, staged_reader
from fusion_extract.chain.transfer.zipdir import directory_slice, read_slice
from fusion_extract.config import Settings
from fusion_extract.errors import (
    FusionExtractError,
    IntegrityError,
    NotFoundError,
    SupersededError,
    UnsafeInputError,
)
from fusion_extract.models import OutputFile, SourceVersion
from fusion_extract.ports import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 15.0  # a download's progress is logged at most this often
SMALL_FILE_LIMIT = 4 * 2**20  # a .mf manifest is read into memory up to this size
PROMOTE_CHUNK = 64  # members made visible between two looks at the budget
# Renames at once. Each is a metadata operation (no bytes move), so their round trips, not the service, bound
# the promote, which every member of an archive waits for after its last byte. Ten: the SDK's connection
# pool holds ten per host; more would open connections only to drop them.
PROMOTE_AT_ONCE = 10
OVERLAP_FROM = 4 * 2**20  # a smaller archive is fetched before it is unpacked: too little to overlap
OVERLAP_RATE = 50e6  # bytes/s: an archive that would need a faster fetch to end within the budget left is
# fetched first and unpacked after (what is unpacked beside a fetch that stops is not kept)
FIRST_DIRECTORY_BYTES = 256 * 2**10  # the directory read before the fetch, at most (else: after it)
# Parts uploaded at once by a fetch and the member bytes held by the unpacking beside it (as for this many
# uploads): together they hold what one alone holds with UPLOAD_PARALLELISM's 3 (`make bench`: 135 MiB peak
# with two each; 128 MiB is the bound). The unpacking still sends UPLOAD_PARALLELISM small members at once.
UPLOADS_BESIDE = 1


def names_in_folder(files: Iterable[OutputFile]) -> dict[str, str]:
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
    planned: OutputFile
    plain: Callable[[], Iterable[OutputFile]]  # the run's files landed as they are (and maybe others)
    budget: Budget
    still_wanted: Callable[[], bool] = lambda: True  # asked once, just before anything becomes visible
    _overlap: _Overlap | None = field(default=None, init=False, repr=False)
    _written: Written = field(default_factory=dict, init=False, repr=False)  # lists kept: never read back

    @property
    def is_archive(self) -> bool:
        return is_archive(self.planned.name)

    def folder(self, fetch: Fetch) -> str:
        """The staging folder of the file attempt that started the fetch."""
        return self.layout.staging(self.run, self.planned.name, fetch.attempt)

    def fetched(self, fetch: Fetch) -> str:
        return staged_file(self.folder(fetch))

    def fetch(self, progress: Fetch, save: Callable[[Fetch], None]) -> Fetch:
        """Go on fetching: done (`sha256` set), or as far as the budget allowed. A fetch that starts an
        archive reads its directory first and unpacks its first unit beside it (overlap.py); if it stops
        before its end, the tail it read first is kept in staging, and the fetch that goes on takes those
        bytes from there: Fusion sends each byte once."""
        s = self.settings
        overlap = self._overlapping(progress)
        source: ArchiveSource = self.archives
        if overlap is not None:
            source = _TailFirst(self.archives, overlap.tail_start, overlap.tail, overlap.live.feed)
        elif (tail := self._kept_tail(progress)) is not None:
            source = _TailFirst(self.archives, self.planned.size - len(tail), tail, _unfed)
        if overlap is not None:  # the fetch reads the version the directory was read from
            version = overlap.version
            progress = replace(progress, source_etag=version.etag, source_modified=version.last_modified)
        fetcher = Fetcher(
            self.store,
            _Progress(source, self.planned.name),
            s.upload_part_mb * 2**20,
            UPLOADS_BESIDE if overlap is not None else s.upload_parallelism,
            self.budget,
            save,
        )
        if overlap is None:
            return fetcher.fetch(self.planned, self.fetched(progress), progress)
        fetched: Fetch | None = None
        try:
            fetched = fetcher.fetch(self.planned, self.fetched(progress), progress)
            if fetched.done:
                overlap.live.commit(staged_reader(self.store, self.fetched(fetched), fetched.etag))
            elif fetched.offset <= overlap.tail_start:  # stopped before the tail (TailKept ends there)
                self.store.put_whole(staged_tail(self.folder(fetched)), overlap.tail)
                fetched = replace(fetched, tail_start=overlap.tail_start)  # recorded by the caller
            return fetched
        finally:
            overlap.live.end()
            if fetched is None or not fetched.done:
                self._abandon(progress, overlap)

    def _kept_tail(self, fetch: Fetch) -> bytes | None:
        """The archive's tail that an earlier invocation's fetch read first and kept, if it did and the
        fetch goes on before it (whatever it holds, the fetch's SHA-256 is checked against the listing)."""
        if fetch.tail_start is None or fetch.done or fetch.offset > fetch.tail_start:
            return None
        try:
            tail, _etag = self.store.get_bytes(staged_tail(self.folder(fetch)))
        except NotFoundError:
            return None
        return tail if len(tail) == self.planned.size - fetch.tail_start else None

    def entries(self, fetch: Fetch) -> list[Entry]:
        """The staged archive's members, every directory rule checked (read before the fetch, if it was)."""
        if self._overlap is not None:
            return self._overlap.entries
        return self._checked(staged_reader(self.store, self.fetched(fetch), fetch.etag), fetch.offset)

    def unit_entries(self, fetch: Fetch, unit: Unit) -> list[Entry]:
        """The members of `unit`: read from its run of the staged archive's directory when its plan
        recorded one (zipdir.read_slice: they must be the entries the plan was made from), else from the
        whole directory, every rule checked again."""
        if self._overlap is not None or unit.directory is None:
            return self.entries(fetch)[unit.first : unit.first + unit.count]
        read = staged_reader(self.store, self.fetched(fetch), fetch.etag)
        return read_slice(read, fetch.offset, unit.directory, unit.first, unit.count, self._limits)

    @property
    def _limits(self) -> ZipLimits:
        s = self.settings
        return ZipLimits(s.zip_max_entries, s.zip_max_bytes, s.zip_max_ratio)

    def _checked(self, read: RangeReader, size: int, max_directory: int | None = None) -> list[Entry]:
        limits = self._limits
        if max_directory is not None:
            limits = replace(limits, max_directory_bytes=max_directory)
        entries = read_directory(read, size, limits)
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

    def units(self, entries: list[Entry], fetching: float = 0.0) -> tuple[Unit, ...]:
        """One unit when this invocation can unpack the archive in what remains of its budget and parallel
        invocations would not win (`fetching`: the seconds of a fetch still to come, which one unit is
        unpacked beside and parallel units wait for); else up to TRANSFER_FANOUT (units.plan). First its
        members are known not to take a name another file of the run lands at (checked here, once: the plan
        does not change)."""
        if self._overlap is not None:
            return self._overlap.units  # checked when they were planned, before the fetch
        taken = names_in_folder(self.plain())
        for entry in entries:
            if entry.path in taken:
                other = taken[entry.path]
                raise UnsafeInputError(
                    f"{self.planned.name}: member {entry.path!r} collides with the file {other}"
                )
        least = LEAST_UNIT_PARTS * self.settings.upload_part_mb * 2**20
        units = plan(entries, self.settings.transfer_fanout, least, self.budget.remaining(), fetching)
        # Where each unit's members lie in the directory: its invocations read that alone.
        return tuple(
            unit.but(directory=directory_slice(entries[unit.first : unit.first + unit.count]))
            for unit in units
        )

    def unpack(
        self, fetch: Fetch, index: int, unit: Unit, alive: Callable[[], None] = lambda: None
    ) -> tuple[Unit, bool]:
        """Unpack what remains of unit `index`: the first unit of an archive fetched by this invocation was
        unpacked beside its fetch (its result is taken here), any other from the staged copy. `alive` is
        called at each member or part on its way (it keeps the unit's claim fresh). The unit returned keeps
        its staged members in its claim's object (kept.py), ready to be saved."""
        overlap, folder = self._overlap, self.folder(fetch)
        if overlap is not None and index == 0 and not overlap.taken:
            overlap.taken = True
            beside, done = overlap.unpacking.result()
            unit = unit.but(staged=beside.staged, metadata=beside.metadata)
            return keep(self.store, folder, index, unit, self._written), done
        unit = unit.but(staged=staged(self.store, folder, index, unit, self._written), kept=None)
        runner = replace(self._runner(fetch, self.unit_entries(fetch, unit)), alive=alive)
        unpacked, done = runner.run(index, unit)
        return keep(self.store, folder, index, unpacked, self._written), done

    def _runner(self, fetch: Fetch, members: list[Entry], source: RangeReader | None = None) -> UnitRun:
        s = self.settings
        return UnitRun(
            self.store,
            self.fetched(fetch),
            fetch.etag,
            self.folder(fetch),
            members,
            s.upload_part_mb * 2**20,
            s.upload_parallelism,
            self.budget,
            source,
            memory_for=None if source is None else UPLOADS_BESIDE,
            fresh=source is not None,  # beside a fetch that began its attempt (_overlapping)
        )

    def _overlapping(self, progress: Fetch) -> _Overlap | None:
        """An archive whose fetch starts now: its directory read from its tail, checked, its units planned,
        and its first unit unpacked in a thread from the bytes the fetch stages. None when the archive is
        too small, or its tail cannot be read or holds no directory within FIRST_DIRECTORY_BYTES: the
        directory is then read from the staged copy, after the fetch, as the rules are checked there. None
        too when the fetch could not end within the budget left at OVERLAP_RATE."""
        size = self.planned.size
        fresh = progress.offset == 0 and not progress.upload_id and not progress.whole
        part_size = self.settings.upload_part_mb * 2**20
        within = size <= self.budget.remaining() * OVERLAP_RATE
        if not (self.is_archive and fresh and within and size >= max(OVERLAP_FROM, part_size)):
            return None
        version = SourceVersion()
        tail_start = size - tail_length(size, FIRST_DIRECTORY_BYTES)
        try:
            tail = b"".join(self.archives.open(self.planned, tail_start, version))
            entries = self._checked(_Tail(tail_start, tail), size, FIRST_DIRECTORY_BYTES)
            units = self.units(entries, fetching=size / OVERLAP_RATE)
        except FusionExtractError as exc:
            log.info("directory not read first; unpacking after the fetch", extra={"reason": str(exc)})
            return None
        first = entries[units[0].first : units[0].first + units[0].count]
        # One unit paces the fetch (nothing is read twice); of several, the first does not hold the others'
        # bytes back: it falls behind instead, and goes on from the staged copy.
        live = Live(first[0].offset, first[-1].limit, paced=len(units) == 1)
        runner = self._runner(progress, first, live)
        unpacking = in_thread(lambda: _closing(live, runner.run, units[0]))
        self._overlap = _Overlap(version, tail_start, tail, entries, units, live, unpacking)
        return self._overlap

    def _abandon(self, progress: Fetch, overlap: _Overlap) -> None:
        """The fetch stopped before it was done: the unpacking beside it ends, and what it left open is taken
        back (its member uploads, its checkpoint); its unit starts afresh once the fetch is done."""
        self._overlap = None
        try:
            overlap.unpacking.result()
        except Exception as exc:
            log.info("unpacking beside the fetch stopped", extra={"reason": str(exc)})
        folder = self.folder(progress)
        self.store.abort_uploads(staged_members(folder))
        self.store.delete(unit_checkpoint(folder, 0))

    def promote_unit(
        self, fetch: Fetch, index: int, unit: Unit, alive: Callable[[], None] = lambda: None
    ) -> tuple[Unit, bool]:
        """Every unit of the archive staged: what remains of this unit's members into the landing folder,
        PROMOTE_CHUNK at a time while the budget lasts (one chunk at least), `alive` called after each. The
        unit with the count of its members now visible, and whether that is all of them."""
        self._check_wanted()
        folder = self.folder(fetch)

        def move(item: StagedMember) -> None:
            path = item.member.path
            info = ObjectInfo(staged_member(folder, path), item.member.size, item.etag, item.md5)
            self.store.promote(info.name, self.layout.member(self.run, path), info)

        promoted, members = unit.promoted, staged(self.store, folder, index, unit, self._written)
        started = time.monotonic()
        with ThreadPoolExecutor(PROMOTE_AT_ONCE, thread_name_prefix="promote") as pool:
            while promoted < len(members):
                if promoted > unit.promoted and self.budget.spent():
                    break
                chunk = members[promoted : promoted + PROMOTE_CHUNK]
                for done in [pool.submit(move, item) for item in chunk]:
                    done.result()
                promoted += len(chunk)
                alive()
        seconds = round(time.monotonic() - started, 3)
        log.info(
            "members promoted", extra={"unit": index, "members": promoted - unit.promoted, "seconds": seconds}
        )
        self._check_still_wanted()
        return unit.but(promoted=promoted), promoted == len(members)

    def landed(self, fetch: Fetch, units: Iterable[Unit]) -> Sequence[Member]:
        """Every unit's members as landed, read unit by unit."""
        folder = self.folder(fetch)
        written = self._written
        return landed_members(
            staged(self.store, folder, index, unit, written) for index, unit in enumerate(units)
        )

    def promote_raw(self, fetch: Fetch) -> None:
        """The archive itself under raw/, when KEEP_RAW_ZIPS asks for it (once every member is visible)."""
        if self.settings.keep_raw:
            self.store.promote(self.fetched(fetch), self.layout.raw(self.run, self.planned.name))
            self._check_still_wanted()

    def promote_plain(self, fetch: Fetch) -> tuple[tuple[Member, ...], dict[str, str] | None]:
        """A file that is not an archive: landed as fetched, as its own member. A `.mf` manifest is parsed
        (and is not a member: the run's manifest accounts for it as Fusion's)."""
        assert fetch.sha256 is not None
        if file_kind(self.planned.name) is FileKind.MANIFEST:
            if fetch.offset > SMALL_FILE_LIMIT:
                raise IntegrityError(
                    f"{self.planned.name} is larger than {SMALL_FILE_LIMIT} bytes; not a manifest"
                )
            data, _ = self.store.get_bytes(self.fetched(fetch))
            manifest: dict[str, str] | None = parse_manifest(data.decode("utf-8", errors="replace"))
            members: tuple[Member, ...] = ()
        else:
            manifest, members = None, (Member(self.planned.name, fetch.offset, fetch.sha256, None),)
        self._check_wanted()
        self.store.promote(self.fetched(fetch), self.layout.member(self.run, self.planned.name))
        self._check_still_wanted()
        return members, manifest

    def _check_wanted(self) -> None:
        if not self.still_wanted():
            raise SupersededError(f"{self.planned.name}: the run ended meanwhile; nothing of it is landed")

    def _check_still_wanted(self) -> None:
        """After promoting: a run that ended while this invocation promoted may have withdrawn its folder
        before these objects arrived; they are taken back here."""
        if not self.still_wanted():
            withdraw(self.store, self.layout, self.run)
            raise SupersededError(f"{self.planned.name}: the run ended while it was promoted; withdrawn")


@dataclass
class _Overlap:
    """An archive's first unit unpacked beside its fetch: what was read first, and the unpacking."""

    version: SourceVersion  # the archive's version, as the tail's read pinned it
    tail_start: int
    tail: bytes
    entries: list[Entry]
    units: tuple[Unit, ...]
    live: Live
    unpacking: Future[tuple[Unit, bool]]
    taken: bool = False


def _closing(live: Live, run: Callable[[int, Unit], tuple[Unit, bool]], unit: Unit) -> tuple[Unit, bool]:
    try:
        return run(0, unit)
    finally:
        live.close()  # the fetch never waits for an unpacking that ended


@dataclass(frozen=True)
class _Tail:
    """The archive's last bytes, read first: ranged reads inside them."""

    start: int
    data: bytes

    def __call__(self, start: int, end: int) -> Iterator[bytes]:
        if start < self.start:
            raise IntegrityError(f"the directory begins before the {len(self.data)} bytes read first")
        return iter((self.data[start - self.start : end - self.start],))


def _unfed(offset: int, chunk: bytes) -> None:
    """No unpacking beside this fetch: nothing to hand the bytes to."""


@dataclass(frozen=True)
class _TailFirst:
    """The source, its bytes from the tail on taken from the tail already read."""

    source: ArchiveSource
    tail_start: int
    tail: bytes
    feed: Callable[[int, bytes], None]  # handed each chunk read, with its offset

    def open(self, file: OutputFile, start: int = 0, version: SourceVersion | None = None) -> Iterator[bytes]:
        chunks = self.source.open(file, start, version)
        return TailKept(chunks, start, self.tail_start, self.tail, self.feed)


@dataclass(frozen=True)
class _Progress:
    """The source, logging `transfer progress` (bytes, percent, MB/s) every PROGRESS_SECONDS."""

    source: ArchiveSource
    name: str

    def open(self, file: OutputFile, start: int = 0, version: SourceVersion | None = None) -> Iterator[bytes]:
        return ProgressLog(self.source.open(file, start, version), self.name, file.size, done=start)


class ProgressLog(Relay):
    """The chunks as they come, logging `transfer progress` (bytes, percent, MB/s) every `every` seconds;
    `settle` and `close` reach the stream underneath."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        name: str,
        total: int | None,
        *,
        done: int = 0,
        every: float = PROGRESS_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._chunks, self._name, self._total, self._every, self._monotonic = (
            chunks,
            name,
            total,
            every,
            monotonic,
        )
        self._started = self._last = monotonic()
        self._first = self._done = done

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        self._done += len(chunk)
        now = self._monotonic()
        if now - self._last >= self._every:
            self._last = now
            extra: dict[str, Any] = {
                "file": self._name,
                "bytes": self._done,
                "mb_per_s": round((self._done - self._first) / 1e6 / (now - self._started), 2),
            }
            if self._total:
                extra["percent"] = round(100 * self._done / self._total, 1)
            log.info("transfer progress", extra=extra)
        return chunk
