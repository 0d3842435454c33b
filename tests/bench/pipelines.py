"""One pipeline run per process: `python -m tests.bench.pipelines NAME` with its parameters as JSON on stdin.

The harness measures the whole child (CPU and peak RSS from wait4); the child reports its own window
(from just before the pipeline's first call to its end, imports excluded): wall seconds, CPU seconds of
every thread (getrusage RUSAGE_SELF), and bytes it caused to be written to storage (/proc/self/io
write_bytes, temporary files included even when deleted afterwards). One JSON line on stdout.

- blog: the pipeline this product replaces, re-implemented from its description: download the ZIP to a
  temporary file (requests, 1 MiB chunks), refuse unsafe member paths, zipfile extractall to a folder,
  then one put_object per extracted file from an open file, with an ObjectStorageClient built from the
  same config file and endpoint (SDK defaults otherwise, as the blog builds it).
- download: the ZIP over the same link, discarded (what the network alone allows).
- inflate_archive / inflate_zipfile: the cached ZIP read from disk and inflated, nothing kept (the product's
  random-access reader, by ranged reads of the file; the standard library's zipfile).
- upload: put_object of synthetic bodies with the members' sizes (what the upload alone costs).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MiB = 2**20
Params = dict[str, Any]


def _write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def window(figures: dict[str, Any]) -> Iterator[None]:
    wall, cpu, written = time.perf_counter(), _cpu(), _write_bytes()
    yield
    figures["wall_s"] = time.perf_counter() - wall
    figures["cpu_s"] = _cpu() - cpu
    figures["disk_write_bytes"] = _write_bytes() - written


# -- the pipelines ------------------------------------------------------------------------------------


def _fusion_session(fusion: Params) -> Any:
    import requests

    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify= (tooling.md section 0)
    session.verify = fusion["ca_path"]
    return session


def _token(session: Any, fusion: Params) -> str:
    from requests.auth import HTTPBasicAuth

    answer = session.post(
        f"{fusion['idcs_url']}/oauth2/v1/token",
        data={"grant_type": "client_credentials", "scope": fusion["scope"]},
        auth=HTTPBasicAuth(fusion["client_id"], fusion["client_secret"]),
        timeout=60,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def blog(params: Params) -> dict[str, Any]:
    import oci
    import requests  # noqa: F401 (imported before the window, as the blog's notebook has it)

    fusion, storage = params["fusion"], params["oci"]
    figures: dict[str, Any] = {}
    scratch = Path(params["tmp"])
    with window(figures):
        session = _fusion_session(fusion)
        token = _token(session, fusion)
        tmp_dir = Path(tempfile.mkdtemp(prefix="bof_extract_", dir=scratch))
        destination = tmp_dir / Path(params["name"]).name
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/octet-stream"}
        with session.get(params["url"], headers=headers, stream=True, timeout=120) as response:
            response.raise_for_status()
            with destination.open("wb") as file:
                for chunk in response.iter_content(chunk_size=MiB):
                    if chunk:
                        file.write(chunk)
        extract_dir = tmp_dir / "extract_output"
        _extract_zip(destination, extract_dir)
        config = oci.config.from_file(storage["config_file"], "DEFAULT")
        client = oci.object_storage.ObjectStorageClient(config, service_endpoint=storage["endpoint"])
        namespace = client.get_namespace().data
        uploaded = 0
        for file_path in extract_dir.rglob("*"):
            if file_path.is_file():
                with file_path.open("rb") as body:
                    client.put_object(
                        namespace_name=namespace,
                        bucket_name=storage["bucket"],
                        object_name=f"{params['prefix']}{file_path.name}",
                        put_object_body=body,
                    )
                uploaded += file_path.stat().st_size
    shutil.rmtree(tmp_dir, ignore_errors=True)  # the blog leaves it; we clean up outside the window
    return {**figures, "ok": uploaded == params["uncompressed"], "bytes": uploaded}


def _extract_zip(zip_path: Path, extract_dir: Path) -> None:
    extract_dir.mkdir(parents=True, exist_ok=True)
    base = extract_dir.resolve()
    with zipfile.ZipFile(zip_path, "r") as zip_file:
        for member in zip_file.infolist():
            target = (extract_dir / member.filename).resolve()
            if not str(target).startswith(str(base) + os.sep):
                raise RuntimeError(f"Unsafe ZIP member path blocked: {member.filename}")
        zip_file.extractall(extract_dir)


def download(params: Params) -> dict[str, Any]:
    import requests  # noqa: F401

    fusion = params["fusion"]
    figures: dict[str, Any] = {}
    received = 0
    with window(figures):
        session = _fusion_session(fusion)
        headers = {"Authorization": f"Bearer {_token(session, fusion)}"}
        with session.get(params["url"], headers=headers, stream=True, timeout=120) as response:
            response.raise_for_status()
            for chunk in response.iter_content(chunk_size=MiB):
                received += len(chunk)
    return {**figures, "ok": received == params["zip_bytes"], "bytes": received}


def inflate_archive(params: Params) -> dict[str, Any]:
    """The product's reader (directory, then each member by ranged reads), over the file on disk."""
    from fusion_extract.chain.transfer.archive import MemberStream, ZipLimits, read_directory

    path = Path(params["zip"])
    size = path.stat().st_size

    def read(start: int, end: int) -> Iterator[bytes]:
        with path.open("rb") as archive:
            archive.seek(start)
            while start < end and (block := archive.read(min(MiB, end - start))):
                start += len(block)
                yield block

    figures: dict[str, Any] = {}
    inflated = 0
    with window(figures):
        limits = ZipLimits(max_entries=10_000, max_total_bytes=64 * 2**30, max_ratio=200)
        for entry in read_directory(read, size, limits):
            for piece in MemberStream(read, entry):
                inflated += len(piece)
    return {**figures, "ok": inflated == params["uncompressed"], "bytes": inflated}


def inflate_zipfile(params: Params) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    inflated = 0
    with window(figures), zipfile.ZipFile(params["zip"]) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                while piece := member.read(MiB):
                    inflated += len(piece)
    return {**figures, "ok": inflated == params["uncompressed"], "bytes": inflated}


class SyntheticBody:
    """`size` bytes (one random MiB over and over) as a seekable file, so the SDK streams it."""

    def __init__(self, size: int, block: bytes) -> None:
        self._size = size
        self._block = block
        self._position = 0

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._position
        n = left if n is None or n < 0 else min(n, left)
        offset = self._position % len(self._block)
        data = self._block[offset : offset + n]
        while len(data) < n:
            data += self._block[: n - len(data)]
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, self._size)[whence]
        self._position = max(0, min(self._size, base + offset))
        return self._position

    def tell(self) -> int:
        return self._position

    def __len__(self) -> int:
        return self._size


def upload(params: Params) -> dict[str, Any]:
    import oci

    storage = params["oci"]
    block = os.urandom(MiB)
    figures: dict[str, Any] = {}
    uploaded = 0
    with window(figures):
        config = oci.config.from_file(storage["config_file"], "DEFAULT")
        client = oci.object_storage.ObjectStorageClient(config, service_endpoint=storage["endpoint"])
        for index, size in enumerate(params["member_sizes"]):
            client.put_object(
                storage["namespace"],
                storage["bucket"],
                f"{params['prefix']}member-{index}",
                SyntheticBody(size, block),
                content_length=size,
            )
            uploaded += size
    return {**figures, "ok": True, "bytes": uploaded}


PIPELINES: dict[str, Callable[[Params], dict[str, Any]]] = {
    "blog": blog,
    "download": download,
    "inflate_archive": inflate_archive,
    "inflate_zipfile": inflate_zipfile,
    "upload": upload,
}


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: reset by exec, unlike the ru_maxrss a parent reads,
    which keeps the forking parent's size)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    name = sys.argv[1]
    params = json.loads(sys.stdin.read())
    figures = PIPELINES[name](params)
    print(json.dumps({**figures, "peak_rss_mib": peak_rss_mib()}), flush=True)


if __name__ == "__main__":
    main()
