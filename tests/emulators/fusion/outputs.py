"""The output files of a job that succeeded: one ZIP per chunk, named the way Oracle names them
(reference 2.2), then the `.mf` manifest, plain text, one `<zip name>;<docid>;<sha-256>` line per ZIP.

Every file is a recipe, not bytes: its content is produced again whenever it is read.
"""

from __future__ import annotations

from datetime import UTC
from functools import partial
from pathlib import Path

from tests.emulators.fusion.archive import Member, OutputFile, zip_stream
from tests.emulators.fusion.data import data_blocks, epoch_of, member_name, metadata_document, metadata_name
from tests.emulators.fusion.hostile import hostile_members
from tests.emulators.fusion.jobs import Job
from tests.emulators.fusion.prebuilt import PrebuiltFile

MAX_ROW_BYTES = 512  # generous bound of one generated row, to decide on ZIP64 up front
RECORDS_BEGIN_DAYS = 1000  # generated records start this many days before the job


def job_outputs(job: Job) -> list[OutputFile]:
    plan = job.scenario
    if plan.zero_files or plan.chunks == len(plan.extra_files) == 0:
        return []
    if plan.prebuilt_zip is not None:
        archives: list[OutputFile] = [PrebuiltFile(_archive_name(job, 1), Path(plan.prebuilt_zip))]
        return [*archives, _manifest(job, archives)]
    archives = [_archive(job, chunk) for chunk in range(1, plan.chunks + 1)]
    extras = [
        OutputFile(name, "application/octet-stream", partial(list, [data])) for name, data in plan.extra_files
    ]
    return [*archives, *extras, _manifest(job, archives)]


def _archive_name(job: Job, chunk: int) -> str:
    ended = job.ended_at.astimezone(UTC)
    submitted_ms = int(job.submitted_at.timestamp() * 1000)
    view = job.scenario.view
    return f"{job.ess_id}_S_{job.extract}_{view}_{submitted_ms}_{ended:%Y%m%d_%H%M%S.%f}_{chunk}.zip"


def _archive(job: Job, chunk: int) -> OutputFile:
    plan = job.scenario
    ended = job.ended_at.astimezone(UTC)
    name = _archive_name(job, chunk)
    data_member = member_name(plan.view, chunk, plan.format)
    blocks = partial(
        data_blocks,
        f"{plan.seed}:{job.id}:{chunk}",
        (chunk - 1) * plan.rows_per_chunk + 1,
        plan.rows_per_chunk,
        epoch_of(job.submitted_at) - RECORDS_BEGIN_DAYS * 86400,
        plan.format,
    )
    members = [Member(data_member, blocks, size_hint=plan.rows_per_chunk * MAX_ROW_BYTES)]
    if chunk == 1 and plan.hostile is not None:
        members += hostile_members(plan.hostile, data_member, plan.bomb_bytes)
    if chunk == plan.chunks:  # only the last chunk carries the metadata file
        metadata = metadata_document(job.extract, plan.view, plan.format, [plan.rows_per_chunk] * plan.chunks)
        members.append(Member(metadata_name(plan.view), lambda: [metadata]))
    stamp = (ended.year, ended.month, ended.day, ended.hour, ended.minute, ended.second)
    return OutputFile(name, "application/zip", partial(zip_stream, members, stamp, plan.compress_level))


def _manifest(job: Job, archives: list[OutputFile]) -> OutputFile:
    name = (
        f"MANIFEST_EXTRACT_{job.ended_at.astimezone(UTC):%Y%m%d%H%M%S}"
        f"-SCHEDULE_{job.id}_REQUEST_{job.id}_{job.ess_id}.mf"
    )

    def lines() -> list[bytes]:
        docids = range(job.ess_id * 1000 + 1, job.ess_id * 1000 + 1 + len(archives))
        text = "".join(
            f"{archive.name};{docid};{archive.digest().sha256}\n"
            for archive, docid in zip(archives, docids, strict=True)
        )
        return [text.encode()]

    return OutputFile(name, "text/plain; charset=utf-8", lines)
