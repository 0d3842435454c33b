"""The ledger's documents, written and read field by field: explicit, versioned, and strict on read.

Every document carries `"v": 1`. Documents written before the version field existed read as v1 (their
fields are the same). A run whose plan is kept in plan pages is written as v2: it names its pages
(`plan`) instead of holding its files (`files`, v1), so that a build that reads v1 only refuses it
rather than taking it for a run of no files. A file document is written as v2 too: each of its members
is one line of text (`path<TAB>size<TAB>sha256<TAB>rows`, and `<TAB>etag<TAB>md5` once staged), not an
object, so that an archive of 50,000 members makes a document and a read of it a fraction the size. Both
shapes are read. A document that does not fit raises IntegrityError naming the document and field, so
one bad document is reported, never half-read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from fusion_extract.chain.ledger.records import (
    DirectorySlice,
    Entry,
    Fact,
    Fetch,
    FileRecord,
    FileState,
    History,
    KeptMembers,
    Lease,
    Member,
    MemberLines,
    Plan,
    PlanPage,
    Run,
    RunState,
    StagedMember,
    Unit,
    UnitState,
    What,
)
from fusion_extract.clock import isoformat, parse_iso
from fusion_extract.errors import IntegrityError, MessageError
from fusion_extract.models import OutputFile, RunAtTimes

VERSION = 1
PAGED = 2  # a run document whose plan is in plan pages
LINES = 2  # a file document whose members are lines
FIELD = "\t"  # between the fields of a member's line (no member path or ETag holds a control character)
Doc = dict[str, Any]
V = TypeVar("V")
M = TypeVar("M", Member, StagedMember)


def run_to_doc(run: Run) -> Doc:
    doc = _run_fields(run)
    if run.plan is None:
        return {"v": VERSION, **doc, "files": [_planned_to_doc(f) for f in run.files]}
    plan = run.plan
    return {
        "v": PAGED,
        **doc,
        "plan": {"id": plan.id, "files": plan.files, "pages": plan.pages, "plain": plan.plain},
    }


def _run_fields(run: Run) -> Doc:
    return {
        "run_id": run.run_id,
        "extract": run.extract,
        "mode": run.mode,
        "state": run.state.value,
        "created_at": isoformat(run.created_at),
        "updated_at": isoformat(run.updated_at),
        "next_at": isoformat(run.next_at),
        "run_at_times": _run_at_to_doc(run.run_at_times),
        "attempt": run.attempt,
        "job_id": run.job_id,
        "job_ids": list(run.job_ids),
        "deadline": _time_or_none(run.deadline),
        "poll_seq": run.poll_seq,
        "polls": run.polls,
        "status": run.status,
        "status_since": _time_or_none(run.status_since),
        "submitted_at": _time_or_none(run.submitted_at),
        "job_started_at": _time_or_none(run.job_started_at),
        "reason": run.reason,
        "landed_at": _time_or_none(run.landed_at),
        "reland": run.reland,
        "rerun_of": run.rerun_of,
        "alerts": list(run.alerts),
        "failures": run.failures,
        "problem": run.problem,
        "redrives": run.redrives,
        "progress": run.progress,
        "assumed_complete": run.assumed_complete,
        "parked": run.parked,
        "reruns": list(run.reruns),
        "history": [entry_to_doc(entry) for entry in run.history],
        "history_dropped": run.history.dropped,
    }


def run_from_doc(doc: Any, where: str = "run document") -> Run:
    f = _Fields(doc, where, (VERSION, PAGED))
    return Run(
        run_id=f.text("run_id"),
        extract=f.text("extract"),
        mode=f.text("mode"),
        state=f.choice("state", RunState),
        created_at=f.time("created_at"),
        updated_at=f.time("updated_at"),
        next_at=f.time("next_at"),
        run_at_times=f.optional("run_at_times", _run_at_from_doc),
        attempt=f.count("attempt", 0),
        job_id=f.optional_text("job_id"),
        job_ids=tuple(f.texts("job_ids")),
        deadline=f.optional_time("deadline"),
        poll_seq=f.count("poll_seq", 0),
        polls=f.count("polls", 0),
        status=f.optional_text("status"),
        status_since=f.optional_time("status_since"),
        submitted_at=f.optional_time("submitted_at"),
        job_started_at=f.optional_time("job_started_at"),
        reason=f.optional_text("reason"),
        plan=f.optional("plan", _plan) if f.version == PAGED else None,
        files=tuple(f.each("files", _planned_file)) if f.version == VERSION else (),
        landed_at=f.optional_time("landed_at"),
        reland=f.flag("reland"),
        rerun_of=f.optional_text("rerun_of"),
        alerts=tuple(f.texts("alerts")),
        failures=f.count("failures", 0),
        problem=f.optional_text("problem"),
        redrives=f.count("redrives", 0),
        progress=f.count("progress", 0),
        assumed_complete=f.flag("assumed_complete"),
        parked=f.flag("parked"),
        reruns=tuple(f.texts("reruns")),
        history=f.history(),  # absent from documents written before it existed
    )


def file_to_doc(record: FileRecord) -> Doc:
    return {
        "v": LINES,
        "run_id": record.run_id,
        "name": record.name,
        "state": record.state.value,
        "next_at": isoformat(record.next_at),
        "attempts": record.attempts,
        "retries": record.retries,
        "claimed_at": _time_or_none(record.claimed_at),
        "reason": record.reason,
        "sha256": record.sha256,
        "size": record.size,
        "members": _lines(record.members),
        "metadata": record.metadata,
        "manifest": record.manifest,
        "fetch": _fetch_to_doc(record.fetch),
        "units": [_unit_to_doc(unit) for unit in record.units],
        "planned": None if record.planned is None else _planned_to_doc(record.planned),
        "history": [entry_to_doc(entry) for entry in record.history],
        "history_dropped": record.history.dropped,
    }


def file_from_doc(doc: Any, where: str = "file document") -> FileRecord:
    f = _Fields(doc, where, (VERSION, LINES))
    return FileRecord(
        run_id=f.text("run_id"),
        name=f.text("name"),
        state=f.choice("state", FileState),
        next_at=f.time("next_at"),
        attempts=f.count("attempts", 0),
        retries=f.count("retries", 0),
        claimed_at=f.optional_time("claimed_at"),
        reason=f.optional_text("reason"),
        sha256=f.optional_text("sha256"),
        size=f.optional("size", _count),
        members=_members(f, "members", _landed_member, _landed_from_line),
        metadata=f.optional("metadata", _object),
        manifest=f.optional("manifest", _text_map),
        fetch=f.optional("fetch", _fetch),
        units=tuple(f.each("units", _unit)),
        planned=f.optional("planned", _planned_file),  # absent from records written before plan pages
        history=f.history(),
    )


def lease_to_doc(lease: Lease) -> Doc:
    return {
        "v": VERSION,
        "extract": lease.extract,
        "run_id": lease.run_id,
        "taken_at": isoformat(lease.taken_at),
    }


def lease_from_doc(doc: Any, where: str = "lease document") -> Lease:
    f = _Fields(doc, where)
    return Lease(extract=f.text("extract"), run_id=f.text("run_id"), taken_at=f.time("taken_at"))


def page_to_doc(page: PlanPage) -> Doc:
    return {
        "v": VERSION,
        "run_id": page.run_id,
        "plan": page.plan,
        "page": page.index,
        "files": [_planned_to_doc(f) for f in page.files],
    }


def page_from_doc(doc: Any, where: str = "plan page") -> PlanPage:
    f = _Fields(doc, where)
    files = tuple(f.each("files", _planned_file))
    return PlanPage(f.text("run_id"), f.text("plan"), f.count("page", None), files)


# -- the parts ------------------------------------------------------------------------------------------


def _run_at_to_doc(window: RunAtTimes | None) -> Doc | None:
    if window is None:
        return None
    return {
        "interval": window.interval,
        "time_unit": window.time_unit,
        "start_date": window.start_date.isoformat(),
        "end_date": window.end_date.isoformat(),
        "start_time": window.start_time,
        "end_time": window.end_time,
    }


def _run_at_from_doc(value: Any, where: str) -> RunAtTimes:
    f = _Fields(value, where)
    try:
        return RunAtTimes(
            interval=f.count("interval", None),
            time_unit=f.text("time_unit"),
            start_date=f.date("start_date"),
            end_date=f.date("end_date"),
            start_time=f.text("start_time"),
            end_time=f.text("end_time"),
        )
    except MessageError as exc:
        raise IntegrityError(f"{where}: {exc}") from None


ENTRY_KEYS = ("at", "what", "call_id", "from", "to")  # an entry's own keys; any other is one of its facts


def entry_to_doc(entry: Entry) -> Doc:
    """`{"at", "what", "call_id", ...its facts}`; a state change also has `from` and `to`."""
    doc: Doc = {"at": isoformat(entry.at), "what": entry.what.value, "call_id": entry.call_id}
    if entry.what is What.CHANGED:
        doc["from"] = None if entry.source is None else entry.source.value
        doc["to"] = None if entry.to is None else entry.to.value
    return {**doc, **entry.facts}


def _entry(value: Any, where: str) -> Entry:
    """An entry; one without `what` is a state change as documents wrote them before histories held more."""
    f = _Fields(value, where)
    what = f.choice("what", What) if "what" in value else What.CHANGED
    to = source = None
    if what is What.CHANGED:
        to = f.choice("to", RunState)
        source = None if value.get("from") is None else f.choice("from", RunState)
    facts = {key: _fact(item, f"{where}: {key}") for key, item in value.items() if key not in ENTRY_KEYS}
    return Entry(f.time("at"), what, f.optional_text("call_id"), to, source, facts)


def _fact(value: Any, where: str) -> Fact:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise IntegrityError(f"{where} must be text or a whole number, not {_shown(value)}")


def _plan(value: Any, where: str) -> Plan:
    f = _Fields(value, where)
    plan = Plan(f.text("id"), f.count("files", None), f.count("pages", None), f.count("plain", None))
    if plan.plain > plan.files:
        raise IntegrityError(f"{where}: {plan.plain} plain files of {plan.files}")
    return plan


def _planned_to_doc(file: OutputFile) -> Doc:
    doc: Doc = {"name": file.name, "size": file.size, "sha256": file.sha256, "url": file.url}
    if file.listed_name is not None:
        doc["listed_name"] = file.listed_name
    return doc


def _planned_file(value: Any, where: str) -> OutputFile:
    f = _Fields(value, where)
    name, size, sha256 = f.text("name"), f.count("size", None), f.optional_text("sha256")
    return OutputFile(name, size, sha256, f.text("url"), f.optional_text("listed_name"))


def _fetch_to_doc(fetch: Fetch | None) -> Doc | None:
    if fetch is None:
        return None
    return {
        "attempt": fetch.attempt,
        "upload_id": fetch.upload_id or None,
        "offset": fetch.offset,
        "parts": [[number, etag] for number, etag in fetch.parts],
        "hashing": fetch.hashing or None,
        "sha256": fetch.sha256,
        "etag": fetch.etag,
        "source_etag": fetch.source_etag,
        "source_modified": fetch.source_modified,
        "whole": fetch.whole,
        "tail_start": fetch.tail_start,
    }


def _fetch(value: Any, where: str) -> Fetch:
    f = _Fields(value, where)
    hashing = f.optional_text("hashing") or ""
    if any(c not in "0123456789abcdef" for c in hashing):
        raise IntegrityError(f"{where}: hashing must be lower-case hex")
    return Fetch(
        f.count("attempt", None),
        f.optional_text("upload_id") or "",
        f.count("offset", 0),
        tuple(f.each("parts", _part)),
        hashing,
        f.optional_text("sha256"),
        f.optional_text("etag"),
        f.optional_text("source_etag"),
        f.optional_text("source_modified"),
        f.flag("whole"),
        f.optional("tail_start", _count),
    )


def _part(value: Any, where: str) -> tuple[int, str]:
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], str) and value[1]):
        raise IntegrityError(f"{where} must be [part number, etag], not {_shown(value)}")
    return _count(value[0], where), value[1]


def _unit_to_doc(unit: Unit) -> Doc:
    return {
        "first": unit.first,
        "count": unit.count,
        "state": unit.state.value,
        "next_at": _time_or_none(unit.next_at),
        "claimed_at": _time_or_none(unit.claimed_at),
        "claims": unit.claims,
        "retries": unit.retries,
        "staged": _lines(unit.staged),
        "kept": _kept_to_doc(unit.kept),
        "metadata": unit.metadata,
        "promoted": unit.promoted,
        "directory": _directory_slice_to_doc(unit.directory),
    }


def _unit(value: Any, where: str) -> Unit:
    f = _Fields(value, where)
    unit = Unit(
        first=f.count("first", None),
        count=f.count("count", None),
        state=f.choice("state", UnitState),
        next_at=f.optional_time("next_at"),
        claimed_at=f.optional_time("claimed_at"),
        claims=f.count("claims", 0),
        retries=f.count("retries", 0),
        staged=_members(f, "staged", _staged_member, _staged_from_line),
        kept=f.optional("kept", _kept),  # absent from records whose units held their staged members
        metadata=f.optional("metadata", _object),
        promoted=f.count("promoted", 0),
        directory=f.optional("directory", _directory_slice),
    )
    if unit.kept is not None and unit.staged:
        raise IntegrityError(f"{where}: staged members both held and kept")
    if unit.promoted > unit.staged_count:
        raise IntegrityError(f"{where}: {unit.promoted} members promoted of {unit.staged_count} staged")
    return unit


def _kept_to_doc(kept: KeptMembers | None) -> Doc | None:
    if kept is None:
        return None
    return {"claim": kept.claim, "count": kept.count, "size": kept.size, "sha256": kept.sha256}


def _kept(value: Any, where: str) -> KeptMembers:
    f = _Fields(value, where)
    sha256 = f.text("sha256")
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise IntegrityError(f"{where}: sha256 must be 64 lower-case hex digits, not {_shown(sha256)}")
    return KeptMembers(f.count("claim", None), f.count("count", None), f.count("size", None), sha256)


def staged_to_bytes(members: Sequence[StagedMember]) -> bytes:
    """A unit's staged members as the object that keeps them: their lines, one a line."""
    return "\n".join(_lines(members)).encode()


def staged_from_bytes(data: bytes, where: str) -> MemberLines[StagedMember]:
    """The members of such an object, each line checked now (one that does not fit is an IntegrityError
    naming its place), each read when asked for."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise IntegrityError(f"{where} is not UTF-8 text") from None
    lines = tuple(text.split("\n")) if text else ()
    for index, line in enumerate(lines):
        _staged_member(line, f"{where}[{index}]")
    return MemberLines(lines, _staged_from_line)


def landed_members(units: Iterable[Sequence[StagedMember]]) -> MemberLines[Member]:
    """The staged members of each unit in turn as landed ones (their ETag and MD5 dropped), as lines: an
    archive's 50,000 are never made objects all at once, and only one unit's staged ones are held."""
    lines: list[str] = []
    for staged in units:
        if isinstance(staged, MemberLines):
            lines.extend(line.rsplit(FIELD, 2)[0] for line in staged.lines)
        else:
            lines.extend(_member_line(s.member) for s in staged)
    return MemberLines(tuple(lines), _landed_from_line)


def _directory_slice_to_doc(place: DirectorySlice | None) -> Doc | None:
    if place is None:
        return None
    return {"start": place.start, "end": place.end, "bound": place.bound, "digest": place.digest}


def _directory_slice(value: Any, where: str) -> DirectorySlice:
    f = _Fields(value, where)
    place = DirectorySlice(
        f.count("start", None), f.count("end", None), f.count("bound", None), f.text("digest")
    )
    if place.end <= place.start:
        raise IntegrityError(f"{where}: a directory slice must end after it starts")
    return place


def _lines(members: Sequence[Member] | Sequence[StagedMember]) -> list[str]:
    """The members as lines: those read as lines are written back as they were."""
    if isinstance(members, MemberLines):
        return list(members.lines)
    return [
        _member_line(m.member, m.etag, m.md5) if isinstance(m, StagedMember) else _member_line(m)
        for m in members
    ]


def _members(
    f: _Fields, key: str, read: Callable[[Any, str], M], from_line: Callable[[str], M]
) -> Sequence[M]:
    """Members written as lines stay lines, read when asked for; each is checked now all the same (one
    that does not fit is refused here, naming its place). Members written as objects are read."""

    def checked(item: Any, where: str) -> Any:
        member = read(item, where)
        return item if isinstance(item, str) else member

    items = f.each(key, checked)
    if items and all(isinstance(item, str) for item in items):
        return MemberLines(tuple(items), from_line)
    return tuple(from_line(item) if isinstance(item, str) else item for item in items)


def _staged_from_line(line: str) -> StagedMember:
    return _staged_member(line, "staged member")


def _landed_from_line(line: str) -> Member:
    return _landed_member(line, "member")


def _member_line(m: Member, *staged: str | None) -> str:
    """A member as one line: path, size, SHA-256, rows (empty: none); a staged one's ETag and MD5 after."""
    fields = [m.path, str(m.size), m.sha256, "" if m.rows is None else str(m.rows)]
    fields += ["" if value is None else value for value in staged]
    if any(FIELD in value or "\n" in value for value in fields):
        raise IntegrityError(f"member {m.path!r} cannot be recorded: a field holds a tab or a line break")
    return FIELD.join(fields)


def _staged_member(value: Any, where: str) -> StagedMember:
    if isinstance(value, str):
        member, (etag, md5) = _member_from_line(value, where, 6)
        if not etag:
            raise IntegrityError(f"{where}: the member's ETag is missing")
        return StagedMember(member, etag, md5 or None)
    f = _Fields(value, where)  # written before members were lines
    return StagedMember(_landed_member(value, where), f.text("etag"), f.optional_text("md5"))


def _landed_member(value: Any, where: str) -> Member:
    if isinstance(value, str):
        return _member_from_line(value, where, 4)[0]
    f = _Fields(value, where)  # written before members were lines
    return Member(f.text("path"), f.count("size", None), f.text("sha256"), f.optional("rows", _count))


def _member_from_line(line: str, where: str, count: int) -> tuple[Member, list[str]]:
    fields = line.split(FIELD)
    if len(fields) != count or not fields[0] or not fields[2]:
        raise IntegrityError(
            f"{where} must be {count} fields (path, size, sha256, rows...), not {_shown(line)}"
        )
    path, size, sha256, rows = fields[:4]
    member = Member(
        path, _number(size, f"{where}: size"), sha256, _number(rows, f"{where}: rows") if rows else None
    )
    return member, fields[4:]


def _number(text: str, where: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise IntegrityError(f"{where} must be a whole number >= 0, not {_shown(text)}")
    return int(text)


def _time_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else isoformat(moment)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise IntegrityError(f"{where} must be a whole number >= 0, not {_shown(value)}")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise IntegrityError(f"{where} must be an object, not {_shown(value)}")
    return value


def _text_map(value: Any, where: str) -> dict[str, str]:
    mapping = _object(value, where)
    if not all(isinstance(v, str) for v in mapping.values()):
        raise IntegrityError(f"{where} must map names to text")
    return mapping


def _shown(value: Any) -> str:
    return repr(value)[:60]


class _Fields:
    """Typed reads of one document's fields; each failure names the document and the field."""

    def __init__(self, doc: Any, where: str, versions: tuple[int, ...] = (VERSION,)) -> None:
        if not isinstance(doc, Mapping):
            raise IntegrityError(f"{where} must be a JSON object")
        version = doc.get("v", VERSION)
        if version not in versions:
            known = " and ".join(f"v{v}" for v in versions)
            raise IntegrityError(f"{where} has version {_shown(version)}; this build reads {known}")
        self.version: int = version
        self._doc = doc
        self._where = where

    def _at(self, key: str) -> str:
        return f"{self._where}: {key}"

    def _get(self, key: str) -> Any:
        if key not in self._doc:
            raise IntegrityError(f"{self._at(key)} is missing")
        return self._doc[key]

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value:
            raise IntegrityError(f"{self._at(key)} must be non-empty text, not {_shown(value)}")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self._doc.get(key) is None else self.text(key)

    def count(self, key: str, default: int | None) -> int:
        if key not in self._doc and default is not None:
            return default
        return _count(self._get(key), self._at(key))

    def flag(self, key: str) -> bool:
        value = self._doc.get(key, False)
        if not isinstance(value, bool):
            raise IntegrityError(f"{self._at(key)} must be true or false, not {_shown(value)}")
        return value

    def time(self, key: str) -> datetime:
        value = self.text(key)
        try:
            return parse_iso(value)
        except ValueError:
            raise IntegrityError(f"{self._at(key)} is not a time: {_shown(value)}") from None

    def optional_time(self, key: str) -> datetime | None:
        return None if self._doc.get(key) is None else self.time(key)

    def date(self, key: str) -> date:
        value = self.text(key)
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise IntegrityError(f"{self._at(key)} is not a date: {_shown(value)}") from None

    def choice(self, key: str, kind: Callable[[str], V]) -> V:
        value = self.text(key)
        try:
            return kind(value)
        except ValueError:
            raise IntegrityError(f"{self._at(key)} has an unknown value {_shown(value)}") from None

    def texts(self, key: str) -> list[str]:
        return [self._item_text(key, index, item) for index, item in enumerate(self._list(key))]

    def each(self, key: str, read: Callable[[Any, str], V]) -> list[V]:
        return [read(item, f"{self._at(key)}[{index}]") for index, item in enumerate(self._list(key))]

    def history(self) -> History:
        return History(tuple(self.each("history", _entry)), self.count("history_dropped", 0))

    def optional(self, key: str, read: Callable[[Any, str], V]) -> V | None:
        value = self._doc.get(key)
        return None if value is None else read(value, self._at(key))

    def _list(self, key: str) -> list[Any]:
        value = self._doc.get(key, [])
        if not isinstance(value, list):
            raise IntegrityError(f"{self._at(key)} must be a list, not {_shown(value)}")
        return value

    def _item_text(self, key: str, index: int, item: Any) -> str:
        if not isinstance(item, str):
            raise IntegrityError(f"{self._at(key)}[{index}] must be text, not {_shown(item)}")
        return item
