"""`make stage` writes function folders that `fn deploy` can build on their own: installed into a clean
environment from nothing but their own requirements (offline, from the wheelhouse `make wheels` fills),
with the OCI SDK pruned as the image's build stage prunes it, they run an extract end to end under the
fdk runtime."""

import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

from fusion_extract.chain.ledger.records import RunState
from tests.e2e.landing import QUICK, assert_every_member_verifies, landed_manifest
from tests.emulators.chain import LocalChain
from tools.prune_oci import prune
from tools.stage import FUNCTIONS, stage

REPO = Path(__file__).resolve().parents[2]
WHEELS = REPO / ".local" / "wheels"


@dataclass(frozen=True)
class Staged:
    root: Path
    python: Path
    fdk: Path


@pytest.fixture(scope="module")
def staged_folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stage")
    stage(root)
    return root


@pytest.fixture(scope="module")
def staged(staged_folders: Path, tmp_path_factory: pytest.TempPathFactory) -> Staged:
    """One clean environment for the three folders (their requirements are identical), pruned."""
    if not any(WHEELS.glob("*.whl")):
        pytest.skip("no wheelhouse: run `make wheels` (make test does) to install the staged folders offline")
    venv = tmp_path_factory.mktemp("clean") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # --no-compile: pip would write .pyc files for all of oci before pruning (most of this fixture's time);
    # without them the same code is compiled in memory as it is imported.
    install = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "--quiet",
        "--no-index",
        "--no-compile",
    ]
    requirements = staged_folders / "submit" / "requirements.txt"
    subprocess.run([*install, "--find-links", str(WHEELS), "-r", str(requirements)], check=True)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    prune(site)
    return Staged(staged_folders, python, venv / "bin" / "fdk")


def test_staged_folders_hold_func_yaml_func_py_requirements_and_the_package(staged_folders):
    # Given the folders make stage writes
    for name in FUNCTIONS:
        folder = staged_folders / name

        # Then each is a complete fn function: its func.yaml, its func.py, pinned requirements, the package
        spec = yaml.safe_load((folder / "func.yaml").read_text())
        assert spec["name"] == f"fusion-extract-{name}" and spec["runtime"] == "docker"
        assert (folder / "func.py").read_text() == (REPO / "functions" / name / "func.py").read_text()
        assert (folder / "fusion_extract" / "chain" / "steps" / f"{name}.py").is_file()
        assert not list(folder.rglob("__pycache__"))
        lines = [line for line in (folder / "requirements.txt").read_text().splitlines() if line[:1] != "#"]
        assert lines and all("==" in line for line in lines), "every requirement is pinned"
        assert not any(line.startswith(("./", "-e", "fusion-extract")) for line in lines)


def test_staged_requirements_are_identical_and_cover_the_direct_dependencies(staged_folders):
    # Given the three requirements files
    texts = {(staged_folders / name / "requirements.txt").read_text() for name in FUNCTIONS}

    # Then they are one and the same (one image layer, one test environment), naming every direct dependency
    assert len(texts) == 1
    names = {line.split("==")[0].lower() for line in texts.pop().splitlines() if "==" in line}
    assert {"fdk", "oci", "requests"} <= names


@pytest.mark.slow
def test_staged_pruned_environment_imports_only_the_kept_oci_services(staged):
    # Given the clean, pruned environment
    code = (
        "import oci, fusion_extract.runtime, fusion_extract.oci.clients;"
        "import oci.object_storage, oci.secrets, oci.ons, oci.functions, oci.monitoring;"
        "import importlib.util as u; print(u.find_spec('oci.core') is None)"
    )

    # When the product's modules and the kept services are imported from a staged folder
    result = subprocess.run(
        [str(staged.python), "-c", code],
        cwd=staged.root / "submit",
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(staged.root / "submit")},
        capture_output=True,
        text=True,
        check=False,
    )

    # Then they import, and an unused service is gone
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


@pytest.mark.slow
def test_staged_functions_in_clean_environment_land_an_extract_invoked_by_hand(staged, tmp_path):
    # Given the chain served from the staged folders by the clean environment's fdk
    with LocalChain(tmp_path / "chain", functions_root=staged.root, fdk_script=staged.fdk) as chain:
        chain.fusion.define_extract("Sales", replace(QUICK, chunks=2, rows_per_chunk=20))

        # When an operator runs an extract as with fn invoke <app> fusion-extract-submit
        answer = chain.invoke("submit", {"extract": "Sales", "mode": "full"})
        run = chain.wait_for_final_run("Sales")

        # Then it lands, every member verifying against its manifest
        assert answer["outcome"] == "submitted"
        assert run.state is RunState.LANDED
        _, manifest = landed_manifest(chain, run)
        assert manifest["totals"]["rows"] == 40
        assert_every_member_verifies(chain, manifest)
        assert all(runtime.fdk_script == staged.fdk for runtime in chain.runtimes.values())
