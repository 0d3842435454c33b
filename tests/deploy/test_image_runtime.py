"""The functions run as the function image runs them (tests/deploy/image_runtime.py): the image's wheel set
(glibc 2.28, CPython 3.11, pruned), the distribution's Python 3.11, uid 1000, a read-only root but /tmp, and
the image's native libraries. A transfer lands with only OpenSSL 1.1.1 loadable and with only OpenSSL 3;
with neither, submit refuses before Fusion is asked anything."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fusion_extract.chain.ledger.records import RunState
from fusion_extract.errors import MessageError
from tests.deploy.image_runtime import (
    DOCKERFILE,
    IMAGE_WHEELS,
    OPENSSL_3,
    OPENSSL_111,
    SYSTEM_PYTHON,
    UID,
    build_interposer,
    build_tree,
    container,
)
from tests.e2e.landing import QUICK, assert_every_member_verifies, landed_manifest
from tests.emulators.chain import LocalChain
from tests.emulators.fdk_runtime import Container
from tests.image_libraries import LIBCRYPTO, LIBZ, unpack

GLIBC_CEILING = (2, 28)  # Oracle Linux 8
GLIBC_NEED = re.compile(r"Name: GLIBC_([0-9]+)\.([0-9]+)")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the image's runtime needs root: mount namespaces, setpriv"),
    pytest.mark.skipif(not SYSTEM_PYTHON.is_file(), reason=f"no {SYSTEM_PYTHON} (the distribution's Python)"),
]


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """A folder uid 1000 can reach (pytest's own are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="image-runtime-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def tree(base: Path) -> Path:
    if not any(IMAGE_WHEELS.glob("*.whl")):
        pytest.skip(f"no wheels in {IMAGE_WHEELS}: run `make image-wheels` (make test does)")
    return build_tree(base / "image")


@pytest.fixture(scope="module")
def interposer(base: Path) -> Path:
    folder = base / "bin"
    folder.mkdir(mode=0o755)
    return build_interposer(folder)


@pytest.fixture(scope="module")
def image_libraries(base: Path) -> Path:
    return unpack(base / "libs")


def chain_in(base: Path, name: str, tree: Path, runtime: Container) -> LocalChain:
    workdir = base / name
    workdir.mkdir(mode=0o755)
    return LocalChain(
        workdir,
        functions_root=tree / "function",
        fdk_script=tree / "python" / "bin" / "fdk",
        container=runtime,
    )


def log_lines(chain: LocalChain, function: str) -> list[dict[str, object]]:
    text = (chain.workdir / "logs" / f"{function}.log").read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def mapped(pid: int | None) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


# --- the image's contents -------------------------------------------------------------------------------


def glibc_needed(library: Path) -> set[tuple[int, int]]:
    """The GLIBC_x.y versions an ELF object needs, from its version-needs section (readelf -V)."""
    shown = subprocess.run(["readelf", "-V", "-W", str(library)], capture_output=True, text=True, check=True)
    needs = shown.stdout.partition("Version needs section")[2]
    return {(int(major), int(minor)) for major, minor in GLIBC_NEED.findall(needs)}


def test_every_shared_object_of_the_image_wheel_set_needs_glibc_2_28_at_most(tree: Path) -> None:
    # Given the image's /python, resolved for manylinux_2_28 and CPython 3.11 as the build stage resolves it
    objects = [path for path in (tree / "python").rglob("*.so*") if path.read_bytes()[:4] == b"\x7fELF"]
    wheel = next((tree / "python").glob("cryptography-*.dist-info")) / "WHEEL"
    assert "Tag: cp311-abi3-manylinux_2_28_x86_64" in wheel.read_text()

    # When the glibc symbol versions each needs are read
    needs = {path.relative_to(tree): glibc_needed(path) for path in objects}

    # Then none needs a glibc newer than 2.28
    assert len(needs) >= 20
    too_new = {str(path): max(versions) for path, versions in needs.items() if max(versions) > GLIBC_CEILING}
    assert too_new == {}
    # (and the check sees a newer need: this machine's own cryptography build needs glibc 2.33 or later)
    here = Path(sys.prefix).glob("lib/python3.*/site-packages/cryptography/hazmat/bindings/_rust*.so")
    assert max(glibc_needed(next(here))) > GLIBC_CEILING


def test_the_dockerfile_makes_the_image_files_readable_whatever_the_checkout_modes(tree: Path) -> None:
    # Given the tree built under umask 077, then the Dockerfile's chmod (tests/deploy/image_runtime.py)
    files = [path for path in tree.rglob("*") if not path.is_symlink()]

    # Then every file is readable and every folder searchable by others (uid 1000), fdk executable
    unreadable = [p for p in files if not p.stat().st_mode & stat.S_IROTH]
    closed = [p for p in files if p.is_dir() and not p.stat().st_mode & stat.S_IXOTH]
    assert unreadable == [] and closed == []
    assert (tree / "python" / "bin" / "fdk").stat().st_mode & stat.S_IXOTH
    # And the final stage takes both folders from the build stage, where the chmod ran, not from the checkout
    final = DOCKERFILE.read_text().rpartition("\nFROM ")[2]
    copies = re.findall(r"^COPY .*$", final, re.M)
    assert copies == ["COPY --from=build /python /python", "COPY --from=build /function /function"]


# --- the container ------------------------------------------------------------------------------------

PROBE = """
import ctypes, json, os
def write(path):
    try:
        open(path, "w").close()
        os.unlink(path)
        return "written"
    except OSError as exc:
        return exc.strerror
def load(name):
    try:
        ctypes.CDLL(name)
        return "loaded"
    except OSError as exc:
        return str(exc)
print(json.dumps({
    "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()],
    "writes": {path: write(path) for path in ("/etc/probe", "/var/tmp/probe", "/dev/shm/probe", "/tmp/probe",
                                               os.environ["OPEN_TO_ALL"] + "/probe")},
    "loads": {name: load(name) for name in ("libcrypto.so.3", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
                                            "libcrypto.so.1.1", "libz.so.1")},
}))
"""


def test_the_container_runs_as_uid_1000_on_a_read_only_root_and_cannot_load_openssl_3(
    base: Path, tree: Path, interposer: Path, image_libraries: Path
) -> None:
    # Given the image's way of starting a function, OpenSSL 3 refused and the image's libraries on the path,
    # and a folder under /tmp that anyone may write to, made read-only like the image's folders
    open_to_all = base / "open-to-all"
    open_to_all.mkdir(mode=0o777)
    open_to_all.chmod(0o777)
    runtime = container(
        tree, interposer, refuse=OPENSSL_3, library_path=image_libraries, read_only=[open_to_all]
    )

    # When a probe runs in it
    command = runtime.wrap(["-c", PROBE])
    env = {**runtime.env, "OPEN_TO_ALL": str(open_to_all)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    seen = json.loads(result.stdout)

    # Then it is uid 1000 with no other group, only /tmp is writable, and only the image's libraries load
    assert seen["ids"] == [UID, UID, UID, []]
    assert seen["writes"] == {
        "/etc/probe": "Read-only file system",
        "/var/tmp/probe": "Read-only file system",
        "/dev/shm/probe": "Read-only file system",
        "/tmp/probe": "written",
        f"{open_to_all}/probe": "Read-only file system",
    }
    assert "cannot open shared object file" in seen["loads"]["libcrypto.so.3"]
    assert "cannot open shared object file" in seen["loads"]["/usr/lib/x86_64-linux-gnu/libcrypto.so.3"]
    assert seen["loads"]["libcrypto.so.1.1"] == seen["loads"]["libz.so.1"] == "loaded"


# --- landing ------------------------------------------------------------------------------------------


def land_one_extract(chain: LocalChain) -> None:
    chain.fusion.define_extract("Sales", replace(QUICK, chunks=2, rows_per_chunk=400))
    answer = chain.invoke("submit", {"extract": "Sales", "mode": "full"})
    run = chain.wait_for_final_run("Sales")
    assert answer["outcome"] == "submitted"
    assert run.state is RunState.LANDED, run.problem
    _, manifest = landed_manifest(chain, run)
    assert manifest["totals"]["rows"] == 800
    assert_every_member_verifies(chain, manifest)


def libraries_ready(chain: LocalChain) -> str:
    [ready] = [
        line["libraries"]
        for line in log_lines(chain, "submit")
        if line.get("message") == "native libraries ready"
    ]
    return str(ready)


def test_a_transfer_lands_in_the_image_runtime_with_only_openssl_111_loadable(
    base: Path, tree: Path, interposer: Path, image_libraries: Path
) -> None:
    # Given the chain in the image's runtime: OpenSSL 3 refused, OpenSSL 1.1.1w and zlib 1.2.11 on the path
    runtime = container(
        tree, interposer, refuse=OPENSSL_3, library_path=image_libraries, read_only=[base / "libs"]
    )
    with chain_in(base, "chain-111", tree, runtime) as chain:
        # When an extract is run by hand, Then it lands, every member verifying
        land_one_extract(chain)

        # And submit checked the image's libraries, and the transfer hashed and inflated with them
        ready = libraries_ready(chain)
        assert f"libcrypto {image_libraries / LIBCRYPTO} (OpenSSL 1.1.1w " in ready
        # (inflate is zlib-ng's, from the image's own wheel: its glibc needs are the image's)
        assert (
            f"libz {tree}" in ready and "/python/zlib_ng/zlib_ng.cpython-311-x86_64-linux-gnu.so (2." in ready
        )
        transfer = mapped(chain.runtimes["transfer"].pid)
        assert str(image_libraries / LIBCRYPTO) in transfer and str(image_libraries / LIBZ) in transfer
        assert "/python/zlib_ng/zlib_ng.cpython-311-x86_64-linux-gnu.so" in transfer
        # (and its members, each sure to finish, went through ISA-L, from the image's own isal wheel)
        assert "/python/isal/igzip_lib.cpython-311-x86_64-linux-gnu.so" in transfer


def test_a_transfer_lands_in_the_image_runtime_with_only_openssl_3_loadable(
    base: Path, tree: Path, interposer: Path
) -> None:
    # Given the same runtime, but OpenSSL 1.1.1 refused and this machine's libraries alone
    runtime = container(tree, interposer, refuse=OPENSSL_111, library_path=None)
    with chain_in(base, "chain-3", tree, runtime) as chain:
        # When an extract is run by hand, Then it lands
        land_one_extract(chain)

        # And the libraries checked and used were OpenSSL 3's
        assert re.search(r"^libcrypto \S+/libcrypto\.so\.3 \(OpenSSL 3\.", libraries_ready(chain))
        assert "libcrypto.so.1.1" not in mapped(chain.runtimes["transfer"].pid)


def test_without_a_loadable_openssl_submit_refuses_before_any_fusion_call_and_alerts_once(
    base: Path, tree: Path, interposer: Path
) -> None:
    # Given the image's runtime where no OpenSSL libcrypto can be loaded
    runtime = container(tree, interposer, refuse=OPENSSL_3 + OPENSSL_111, library_path=None)
    with chain_in(base, "chain-broken", tree, runtime) as chain:
        chain.fusion.define_extract("Sales", QUICK)

        # When an extract is run by hand, twice
        answers = []
        for _ in range(2):
            with pytest.raises(MessageError) as refused:
                chain.invoke("submit", {"extract": "Sales", "mode": "full"})
            answers.append(str(refused.value))
        chain.settle()

        # Then both answers are 502 with the loader's exact error, naming each library tried and where
        for answer in answers:
            assert answer.startswith("submit answered 502: ")
            platform = json.loads(answer.removeprefix("submit answered 502: "))  # what Functions wraps it in
            assert platform["code"] == "FunctionInvokeExecutionFailed"
            body = json.loads(platform["message"])
            assert body["error"] == "ConfigError"
            assert "nothing was submitted: no usable OpenSSL libcrypto; tried " in body["message"]
            assert (
                "libcrypto.so.1.1: /dlopen-refused/libcrypto.so.1.1: cannot open shared object file"
                in body["message"]
            )
            assert "(sonames are looked up in LD_LIBRARY_PATH=unset, /etc/ld.so.cache" in body["message"]
        # And Fusion was asked nothing, no run exists, and people were told once
        assert chain.fusion.requests == [] and chain.runs() == []
        assert [alert["event"] for alert in chain.alerts] == ["runtime_broken"]
