"""A function's process killed (SIGKILL, as the platform kills a container) at each step boundary: the
sweep brings the run back, and it lands exactly once: one job, every member whole, staging empty, the
lease free, no upload left open.

The kill comes from an emulator hook at the exact request that marks the boundary, so no test depends
on timing: the process dies while it waits for that answer (or, for "after", just after it was served).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from fusion_extract.chain.ledger.records import RunState
from tests.e2e.landing import QUICK, assert_every_member_verifies, landed_manifest
from tests.emulators.chain import BUCKET, LocalChain

OBJECTS = r"/n/[^/]+/b/[^/]+/o/"


@dataclass(frozen=True)
class Boundary:
    function: str  # the process that dies
    server: str  # "fusion" or "oci": whose request marks the boundary
    method: str
    path: str  # a regex over the raw path (re.search for Fusion, fullmatch for OCI)
    served_first: bool  # killed after the request took effect (else before)
    body_has: bytes = b""  # only a request whose body holds this marks it


BOUNDARIES = {
    "after the submit POST, before the ledger write": Boundary(
        "submit", "fusion", "POST", r"/jobscheduler/v1/jobRequests$", served_first=True
    ),
    "mid-upload": Boundary("transfer", "oci", "PUT", r"/n/[^/]+/b/[^/]+/u/.*", served_first=True),
    "after staging, before promote": Boundary(
        "transfer", "oci", "POST", r"/n/[^/]+/b/[^/]+/actions/renameObject", served_first=False
    ),
    "after promote, before the ledger update": Boundary(
        "transfer", "oci", "PUT", OBJECTS + r"_state%2Ffiles%2F.*", served_first=False, body_has=b'"LANDED"'
    ),
    "between the last file and _SUCCESS": Boundary(
        "transfer", "oci", "PUT", OBJECTS + r".*%2F_SUCCESS", served_first=False
    ),
}


def kill_once(chain: LocalChain, boundary: Boundary) -> list[str]:
    """Arm the hook: the first request at the boundary kills the function's process. Returns a record."""
    killed: list[str] = []

    def hook(request: Any, serve: Callable[[Any], Any]) -> Any:
        if killed or boundary.body_has not in request.body:
            return serve(request)
        pid = chain.runtimes[boundary.function].pid
        if boundary.served_first:
            answer = serve(request)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed.append(request.path)
        return answer if boundary.served_first else serve(request)

    if boundary.server == "fusion":
        chain.fusion.intercept(boundary.path, hook, method=boundary.method)
    else:
        chain.oci.intercept(boundary.method, boundary.path, hook)
    return killed


def recover(chain: LocalChain, extract: str, function: str) -> None:
    """What the platform and the schedule do: a new container for the killed function, then the sweep
    (every few minutes) until the run is final."""
    chain.settle()
    chain.runtimes[function].stop()
    chain.runtimes[function].start()
    for _ in range(10):
        chain.sweep()
        chain.settle()
        if all(run.state.final for run in chain.runs(extract)):
            return


@pytest.mark.parametrize("where", list(BOUNDARIES))
def test_function_killed_at_a_step_boundary_the_run_still_lands_once(make_chain, where: str) -> None:
    # Given a chain whose sweep re-drives at once, and a kill armed at the boundary
    chain = make_chain(STEP_OVERDUE_SECONDS="0", TRANSFER_BUDGET_SECONDS="0", UPLOAD_PART_MB="1")
    chain.fusion.define_extract("Sales", replace(QUICK, chunks=2, rows_per_chunk=20_000))
    boundary = BOUNDARIES[where]
    killed = kill_once(chain, boundary)

    # When a run goes through, the process dies there, and the platform and the sweep carry on
    chain.functions.invoke("ocid1.fnfunc.oc1.emu.submit", b'{"extract": "Sales", "mode": "full"}')
    recover(chain, "Sales", boundary.function)

    # Then the kill happened, and the run landed exactly once
    assert killed, f"nothing reached the boundary {where!r}"
    [run] = chain.runs("Sales")
    assert run.state is RunState.LANDED
    assert len(chain.fusion.jobs) == 1
    _, manifest = landed_manifest(chain, run)
    assert_every_member_verifies(chain, manifest)
    # And nothing is left behind: no staging, no open upload, no lease
    assert not [p for p in chain.landed_path("_staging").rglob("*") if p.is_file()]
    assert chain.oci.objectstorage.uploads.in_bucket(BUCKET) == []
    assert not chain.landed_path("_state/leases/Sales.json").exists()
