"""What an extract does when a job runs it: timing, outcome, output, response shapes and faults.

One ExtractScenario per extract name (`FusionEmulator.define_extract`). A job keeps the scenario it
was submitted under, so redefining an extract changes only later jobs. Fault counters start afresh
with each definition and fire in order, never at random.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field

# The job produced its output files (COMPLETED as an outcome: post-processing ended there, reference 1.4).
SUCCESS_STATUSES = frozenset({"SUCCEEDED", "WARNING", "COMPLETED"})
STUCK_STATUSES = frozenset({"ERROR_MANUAL_RECOVERY", "HOLD"})  # final here, yet `completed` stays false
OUTCOMES = SUCCESS_STATUSES | STUCK_STATUSES | {"ERROR", "FAILED", "CANCELLED", "CANCELED", "EXPIRED"}
PASSING_STATUSES = frozenset(
    {"IN_PROGRESS", "PAUSED", "COMPLETED", "BLOCKED", "WAIT", "READY", "CANCELLING", "ERROR_AUTO_RETRY"}
)
FORMATS = ("csv", "json")


class Hostile(enum.StrEnum):
    """An entry added to the first ZIP that a safe unpacker must refuse."""

    ZIP_SLIP = "zip_slip"  # ../name
    ABSOLUTE_PATH = "absolute_path"  # /tmp/name
    BACKSLASH = "backslash"  # ..\name
    DRIVE_LETTER = "drive_letter"  # C:/name
    SYMLINK = "symlink"  # a symbolic link to /etc/passwd
    ENCRYPTED = "encrypted"  # the encryption flag set
    DUPLICATE_NAMES = "duplicate_names"  # a second entry named like the data member
    ZIP_BOMB = "zip_bomb"  # `bomb_bytes` of zeros: a compression ratio near 1000:1


class BadLink(enum.StrEnum):
    """A download (`enclosure`) link that must not receive the bearer token."""

    FOREIGN_HOST = "foreign_host"  # https://localhost:<port>/api/saas-batch/...: rebuilt on the Fusion host
    PLAIN_HTTP = "plain_http"  # http://127.0.0.1:<port>/api/saas-batch/...: rebuilt over https
    OUTSIDE_API = "outside_api"  # https://127.0.0.1:<port>/download/... (outside /api/saas-batch/)
    FOREIGN_OUTSIDE_API = "foreign_outside_api"  # https://localhost:<port>/download/...: refused


class Redirect(enum.StrEnum):
    """How `.../content` answers instead of the file (whether Fusion redirects downloads is unknown)."""

    SAME_HOST = "same_host"  # 307 to the same API URL with ?hop=1 (then the file)
    OTHER_HOST = "other_host"  # 302 to https://localhost:<port>/storage/<job>/<name>, served without a token
    LOOP = "loop"  # 302 to itself with ?hop=<n+1>, for ever


@dataclass(frozen=True)
class ExtractScenario:
    # The job: ENQUEUED, then RUNNING, then each of `passes_through`, then `outcome`.
    outcome: str = "SUCCEEDED"
    completed_flag: bool | None = (
        True  # jobProgress.completed once a COMPLETED outcome is reached (None: absent)
    )
    fail_first_jobs: int = 0  # the first N jobs of this extract end ERROR whatever `outcome` says
    seconds_enqueued: float = 1.0
    seconds_running: float = 4.0
    passes_through: tuple[str, ...] = ()  # e.g. ("PAUSED", "COMPLETED") before a success
    seconds_passing: float = 1.0  # time spent in each of `passes_through`
    # The output.
    chunks: int = 2
    rows_per_chunk: int = 50
    format: str = "csv"
    view: str = "carriers"
    seed: str = "fusion"
    zero_files: bool = False  # success with no output (nothing changed since the last run)
    # Files listed after the archives and before the manifest, served as given: (listed name, bytes).
    extra_files: tuple[tuple[str, bytes], ...] = ()
    compress_level: int = 6
    page_size: int = 25  # the most outputFiles items one page returns
    prebuilt_zip: str | None = None  # serve this ZIP file from disk as the only archive (benchmarks)
    # Response shapes seen in third-party clients (reference 1.3).
    jobdetails_as_list: bool = False
    status_at_top_level: bool = False  # `jobStatus` only at the top, none inside jobDetails
    echo_job_request: bool = True  # False: no `jobRequest` in jobDetails (Oracle's later status examples)
    # Faults, counted over the saas-batch requests about this extract (submit, status, files).
    throttle_requests: int = 0  # the first N answer 429 with Retry-After
    retry_after: int = 1
    server_errors: int = 0  # then N answer 503
    expire_tokens: int = 0  # then N answer 401 although the token is valid
    feature_disabled: bool = False  # every one answers 404 "The requested feature is not enabled"
    drop_download_after_bytes: int | None = None  # cut each file's download after this many bytes...
    drop_download_times: int = 1  # ...this many times per file
    wrong_checksum: bool = False  # the first ZIP is listed with a checksum it does not have
    hostile: Hostile | None = None
    bomb_bytes: int = 16 * 1024 * 1024
    bad_link: BadLink | None = None  # on the first file's enclosure link
    location_foreign_host: bool = False  # submit answers with a Location on https://localhost:<port>
    redirect_downloads: Redirect | None = None
    ignore_range: bool = False  # downloads answer 200 with the whole file whatever Range asks
    dated_only: bool = False  # downloads name their version by Last-Modified alone (no ETag)
    # Held RUNNING (whatever the clock says) until the test sets this event: no test waits on wall time.
    hold: threading.Event | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ValueError("invalid ExtractScenario: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        checks = [
            (self.outcome in OUTCOMES, f"outcome must be one of {sorted(OUTCOMES)}"),
            (
                set(self.passes_through) <= PASSING_STATUSES,
                f"passes_through must be in {sorted(PASSING_STATUSES)}",
            ),
            (self.format in FORMATS, f"format must be one of {FORMATS}"),
            (bool(self.view) and "/" not in self.view, "view must be a non-empty name without '/'"),
            (0 <= self.compress_level <= 9, "compress_level must be 0..9"),
            (self.page_size >= 1, "page_size must be at least 1"),
            (
                min(self.seconds_enqueued, self.seconds_running, self.seconds_passing) >= 0,
                "durations must be zero or more",
            ),
            (
                min(
                    self.fail_first_jobs,
                    self.chunks,
                    self.rows_per_chunk,
                    self.throttle_requests,
                    self.retry_after,
                    self.server_errors,
                    self.expire_tokens,
                    self.drop_download_times,
                    self.bomb_bytes,
                    self.drop_download_after_bytes or 0,
                )
                >= 0,
                "counts and sizes must be zero or more",
            ),
        ]
        return [problem for ok, problem in checks if not ok]
