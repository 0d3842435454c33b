"""A function instance of the bench: the transfer's func.py under an fdk context, in a process of its own."""

import json
import os
import queue
from pathlib import Path

from fusion_extract.chain.messages import encode
from tests.bench.instances import FUNCTION, REPO, Answer, Instance, import_roots, settle_access_times


def test_a_cold_instance_answers_its_one_request_through_the_handler_then_exits_with_its_cpu():
    # Given a new instance and a transfer message with a configuration the function refuses
    answers: queue.Queue[Answer] = queue.Queue()
    instance = Instance(answers)
    body = json.dumps(encode("transfer", run_id="run-1", files=["a.zip"]))

    # When it gets the message as its last
    instance.send({}, body, last=True)
    answer, exit = answers.get(timeout=60), answers.get(timeout=60)

    # Then the handler answered as the platform would see it (502, the error named), with the call's figures
    assert not answer.exited and answer.figures["status"] == 502
    assert answer.figures["outcome"]["error"] == "ConfigError"
    assert answer.figures["wall_s"] > 0 and answer.figures["peak_rss_mib"] > 0
    assert answer.figures["disk_write_bytes"] == 0
    # And the instance exited, its whole CPU (start-up and imports included) above the call's
    assert exit.exited and exit.figures["status"] == 0
    assert exit.figures["cpu_s"] > answer.figures["cpu_s"]


def test_an_instance_told_to_tell_its_own_peak_counts_the_process_that_served_not_the_harness():
    # Given a harness holding 300 MiB (a process it starts inherits that peak in its own ru_maxrss)
    held = bytearray(300 * 2**20)
    held[::4096] = b"\1" * len(range(0, len(held), 4096))
    answers: queue.Queue[Answer] = queue.Queue()
    instance = Instance(answers, own_rusage=True)
    body = json.dumps(encode("transfer", run_id="run-1", files=["a.zip"]))

    # When it answers one request and exits
    instance.send({}, body, last=True)
    answer, exit = answers.get(timeout=60), answers.get(timeout=60)

    # Then it told the kernel's peak of the process that served: its own VmHWM, nothing of the harness's
    assert answer.figures["status"] == 502 and exit.exited and exit.figures["status"] == 0
    assert instance.max_rss_mib is not None
    assert instance.max_rss_mib < 200 < len(held) / 2**20
    assert abs(instance.max_rss_mib - answer.figures["peak_rss_mib"]) < 8


def test_an_instances_import_roots_hold_every_module_the_transfer_loads_even_lazily():
    # Given the modules a transfer instance loads: fdk, the SDK, the standard library, ours, and those it
    # loads only on the call that needs them (the fast inflater, the resumable one)
    import fdk
    import isal.isal_zlib
    import oci

    import fusion_extract.resumable

    loaded = [fdk, oci, isal.isal_zlib, json, fusion_extract.resumable]

    # When the bench lists the folders an instance imports from
    roots = import_roots()

    # Then each module's file, the function's func.py and what `-m` reads of the repository are in them
    for path in [
        *(Path(str(module.__file__)) for module in loaded),
        FUNCTION / "func.py",
        REPO / "tests" / "__init__.py",
    ]:
        assert any(root == path or root in path.parents for root in roots), path
    assert REPO not in roots  # not the archives and the git objects beside our code


def test_settling_reads_every_file_once_so_no_instance_is_the_first_reader(tmp_path: Path):
    # Given a package whose files were last read long before they changed (as a fresh clone's: the kernel
    # moves such a file's access time on its next read, and counts the inode written to the reader)
    package = tmp_path / "package"
    (package / "__pycache__").mkdir(parents=True)
    files = [
        package / "__init__.py",
        package / "__pycache__" / "__init__.cpython-311.pyc",
        package / "data.bin",
    ]
    for path in files:
        path.write_bytes(b"x" * 10)
        os.utime(path, ns=(0, path.stat().st_mtime_ns))  # read in 1970, changed now

    # When the bench settles the access times under the package's folder
    count = settle_access_times([package])

    # Then every file was read: its access time is no longer before its change, nothing left for a reader
    assert count == len(files)
    assert all(path.stat().st_atime_ns >= path.stat().st_ctime_ns for path in files)
