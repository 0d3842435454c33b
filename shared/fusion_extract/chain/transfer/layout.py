"""Where things land in the bucket: one place that turns a run into object names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fusion_extract.chain.ledger.records import Run
from fusion_extract.config import Settings

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
RAW = "raw"


def reserved_name(path: str) -> str | None:
    """The run folder's own name that `path` would take or shadow, or None.

    Compared case-insensitively and as a prefix: `_success`, `_SUCCESS.tmp` and `_SUCCESS/x` all stand
    where a reader looks for `_SUCCESS` (a listing of `<folder>/_SUCCESS` matches them too).
    """
    lowered = path.lower()
    for name in (SUCCESS, MANIFEST):
        if lowered.startswith(name.lower()):
            return name
    return f"{RAW}/" if lowered.split("/", 1)[0] == RAW else None


@dataclass(frozen=True)
class Layout:
    landing_prefix: str
    template: str
    staging_prefix: str
    # Each extract's own template from the catalog, asked for only when a run folder is named: what never
    # names one (the sweep's figures, staging) works even when the catalog object cannot be read.
    templates: Callable[[], Mapping[str, str]] = field(default=dict, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings, templates: Callable[[], Mapping[str, str]]) -> Layout:
        return cls(settings.landing_prefix, settings.landing_template, settings.staging_prefix, templates)

    def run_folder(self, run: Run) -> str:
        """`<prefix>/<extract>/dt=<YYYY-MM-DD>/run=<jobRequestId>` by default (LANDING_TEMPLATE, or the
        extract's landing_template in the catalog)."""
        template = self.templates().get(run.extract, self.template)
        return template.format(
            prefix=self.landing_prefix,
            extract=run.extract,
            mode=run.mode,
            date=run.created_at.strftime("%Y-%m-%d"),
            job_id=run.job_id,
        ).strip("/")

    def member(self, run: Run, path: str) -> str:
        return f"{self.run_folder(run)}/{path}"

    def raw(self, run: Run, file_name: str) -> str:
        return f"{self.run_folder(run)}/{RAW}/{file_name}"

    def manifest(self, run: Run) -> str:
        return f"{self.run_folder(run)}/{MANIFEST}"

    def success(self, run: Run) -> str:
        return f"{self.run_folder(run)}/{SUCCESS}"

    def staging(self, run: Run, file_name: str, attempt: int) -> str:
        """A private folder per transfer attempt, so a retry never mixes with a dead attempt's leftovers:
        the names in it are staged_file, staged_tail, staged_member, unit_checkpoint and kept_members'."""
        return f"{self.file_staging(run, file_name)}{attempt}/"

    def file_staging(self, run: Run, file_name: str) -> str:
        """Every attempt's folder of one file."""
        return f"{self.staging_prefix}/{run.run_id}/{file_name}/"

    def run_staging(self, run: Run) -> str:
        return f"{self.staging_prefix}/{run.run_id}/"


# The names inside one attempt's staging folder (Layout.staging).


def staged_file(folder: str) -> str:
    """The output file as fetched."""
    return f"{folder}fetched"


def staged_tail(folder: str) -> str:
    """An archive's last bytes, read first for its directory, kept for a fetch that goes on elsewhere."""
    return f"{folder}tail"


def staged_members(folder: str) -> str:
    """Where an archive's members wait, as unpacked, until they are promoted."""
    return f"{folder}members/"


def staged_member(folder: str, path: str) -> str:
    return staged_members(folder) + path


def unit_checkpoint(folder: str, unit: int) -> str:
    """Where a unit that paused inside a large member left its upload and its place in the stream."""
    return f"{folder}units/{unit}"


def kept_members(folder: str, unit: int, claim: int) -> str:
    """Where the claim `claim` of unit `unit` kept the list of its staged members (transfer/kept.py)."""
    return f"{folder}kept/{unit}/{claim}"
