"""Function instances for the bench: the transfer function as OCI Functions runs it, one process each.

    python -m tests.bench.instances    (the child; the harness side is `Instance`)

A child starts as a container does: the interpreter, fdk, then the function's func.py loaded from its
folder (what fdk does before it serves). It then reads one request per line on stdin, {"config": {...},
"body": "<the message>"}, calls the handler with an fdk context carrying that configuration (as the
platform passes a function's configuration), and answers one JSON line: the HTTP status and outcome,
and its own figures for the call: `wall_s`, `cpu_s` (every thread, getrusage), `disk_write_bytes`
(/proc/self/io) and `peak_rss_mib` (VmHWM so far). It exits at the end of stdin.

A cold instance gets one request and its stdin closed: it pays the interpreter, the imports and the
first call's set-up, as a new instance does. A warm one answers request after request, as a reused
instance does (the Runtime, its signer and connections kept by `runtime_for`).

`--own-rusage`: the instance serves in a process forked from the bare interpreter, and says at its end
that process's peak RSS as the kernel counts it (ru_maxrss, from wait4): a process started by a large
one (the harness) inherits its parent's peak in its own ru_maxrss, a fork of a small one does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
FUNCTION = REPO / "functions" / "transfer"


@dataclass
class Answer:
    """What an instance said: a request's answer (`figures`), or, once, that it exited (`exited`)."""

    instance: Instance
    figures: dict[str, Any]
    received: float = field(default_factory=time.perf_counter)
    exited: bool = False


@dataclass
class Instance:
    """One child process; what it says goes to `answers` as it comes (a reader thread per child), the
    last thing being its exit, with the process's whole CPU time (wait4) in `cpu_s`."""

    answers: queue.Queue[Answer]
    log: IO[str] | None = None  # where its stderr (the function's JSON log) goes, through us; None: ours
    wrapper: tuple[str, ...] = ()  # a command the instance runs under (a profiler), if any
    started: float = field(default_factory=time.perf_counter)
    busy: Any = None  # what the instance is working on (None when idle): the driver's business
    cpu_s: float | None = None
    status: int | None = None
    own_rusage: bool = False  # serve in a fork of the bare interpreter, and tell its ru_maxrss
    max_rss_mib: float | None = None  # that fork's ru_maxrss, once it ended
    process: subprocess.Popen[str] = field(init=False)

    def __post_init__(self) -> None:
        self.process = subprocess.Popen(
            [
                *self.wrapper,
                sys.executable,
                "-m",
                "tests.bench.instances",
                *(["--own-rusage"] if self.own_rusage else []),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,  # copied by us: the instance's writes are its work's alone
            env=_container_environment(),
            text=True,
        )
        self._copier = threading.Thread(target=self._copy_log, daemon=True)
        self._copier.start()
        threading.Thread(target=self._read, daemon=True).start()

    def send(self, config: dict[str, str], body: str, *, last: bool = False) -> None:
        """One request; `last`: no more will come (the instance exits after answering)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"config": config, "body": body}) + "\n")
        self.process.stdin.flush()
        if last:
            self.process.stdin.close()

    def stop(self) -> None:
        """No more requests: the instance exits once it has answered what it has."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()

    def kill(self) -> None:
        if self.status is None:
            self.process.kill()

    def _copy_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            (self.log or sys.stderr).write(line)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):  # a wrapper (a profiler) may say things of its own
                said = json.loads(line)
                if "own_max_rss_mib" in said:
                    self.max_rss_mib = float(said["own_max_rss_mib"])
                else:
                    self.answers.put(Answer(self, said))
        self._copier.join()  # its log copied before its exit is told
        _pid, status, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = self.status = os.waitstatus_to_exitcode(status)  # Popen must not wait
        self.cpu_s = usage.ru_utime + usage.ru_stime
        self.answers.put(Answer(self, {"status": self.status, "cpu_s": self.cpu_s}, exited=True))


def _container_environment() -> dict[str, str]:
    """A clean environment, as a container's: no OCI_SDK_* switches or CA bundles of the harness."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    # The image's root is read-only: nothing compiled on the fly is written (compile_sources does it first)
    return {
        **{k: os.environ[k] for k in keep if k in os.environ},
        "PYTHONPATH": str(FUNCTION),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def compile_sources() -> None:
    """Byte-compile what an instance imports, as the image has it, so no instance compiles on its clock."""
    import compileall

    for folder in SOURCES:
        compileall.compile_dir(folder, quiet=1)


SOURCES = (REPO / "shared", FUNCTION, REPO / "tests" / "bench")


def import_roots() -> list[Path]:
    """Every folder an instance may import from (or load a library or data file of a package from): ours,
    and the others on an instance's sys.path (the venv's site-packages, the interpreter's library)."""
    said = subprocess.run(
        [sys.executable, "-c", "import json, sys; print(json.dumps(sys.path))"],
        env=_container_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    entries = {Path(entry) for entry in json.loads(said.stdout) if entry}
    # An instance's first entry is its cwd (-m), the repository, of which it imports only tests/ (not the
    # archives and git objects beside it); -c puts no folder there
    folders = {*SOURCES, REPO / "tests", *(entry for entry in entries if entry.is_dir())}
    return sorted(path for path in folders if not any(other in path.parents for other in folders))


def settle_access_times(roots: list[Path]) -> int:
    """Read a byte of every file under `roots` (files too), so that no instance is the first to read one.

    The kernel updates a file's access time on the first read after it was written (relatime: also when
    the access time is a day old), and counts writing the inode out as the reader's write_bytes in
    /proc/<pid>/io: on a fresh clone, the first cold instance read modules nobody had read since pip or
    compileall wrote them, and "wrote" 16 to 20 KiB. The image's root is read-only: no access time moves
    there. How many files were read."""
    count = 0
    for root in roots:
        for path in _files(root):
            with contextlib.suppress(OSError):  # a file that went away, a dangling link
                if path.is_file():  # not a pipe, which would wait for a writer
                    with path.open("rb") as file:
                        file.read(1)
                    count += 1
    return count


def _files(root: Path) -> Iterator[Path]:
    """The files under `root` (or `root`, a file), but those of a site-packages folder below it (the
    interpreter's own, which the venv's instances do not import from)."""
    if root.is_file():
        yield root
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name != "site-packages"]
        yield from (Path(folder) / name for name in files)


# -- the child ------------------------------------------------------------------------------------------


def _status(name: str) -> int:
    """A field of /proc/self/status, kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def _written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def serve() -> None:
    import importlib.util
    import io
    import resource

    import fdk  # noqa: F401  # what the container's entry point imports before it serves
    from fdk import context

    spec = importlib.util.spec_from_file_location("func", FUNCTION / "func.py")
    assert spec is not None and spec.loader is not None
    func = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(func)
    for count, line in enumerate(sys.stdin):
        request = json.loads(line)
        usage, wall, written = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), _written()
        ctx = context.InvokeContext(
            "bench-app",
            "bench",
            "bench-transfer",
            "transfer",
            f"call-{os.getpid()}-{count}",
            content_type="application/json",
            config=request["config"],
            headers={},
        )
        response = func.handler(ctx, io.BytesIO(request["body"].encode()))
        after = resource.getrusage(resource.RUSAGE_SELF)
        body = response.body()
        try:
            outcome = json.loads(body)
        except ValueError:
            outcome = {"error": body}
        print(
            json.dumps(
                {
                    "status": response.status(),
                    "outcome": outcome,
                    "wall_s": time.perf_counter() - wall,
                    "cpu_s": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime,
                    "disk_write_bytes": _written() - written,
                    "peak_rss_mib": _status("VmHWM") / 1024,
                }
            ),
            flush=True,
        )


def serve_in_fork() -> None:
    """serve() in a child forked now, while this process is the bare interpreter; then that child's
    ru_maxrss (its own peak, the few MiB it shares with us included) as one line."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            serve()
            status = 0
        finally:
            sys.stdout.flush()
            os._exit(status)
    _pid, status, usage = os.wait4(pid, 0)
    print(json.dumps({"own_max_rss_mib": usage.ru_maxrss / 1024}), flush=True)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    serve_in_fork() if "--own-rusage" in sys.argv else serve()
