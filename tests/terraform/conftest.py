"""The real Terraform folder, and broken copies of it made by editing one file."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.terraform import tfcheck

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"

Mutate = Callable[[str, str, str], tfcheck.Config]


@pytest.fixture(scope="session")
def config() -> tfcheck.Config:
    return tfcheck.load(TERRAFORM)


@pytest.fixture
def broken_copy(tmp_path: Path) -> Mutate:
    """Copy terraform/ (and the function folders it reads) to a tmp dir, replace `old` by `new` in one
    file (which must contain `old`), and parse the copy."""

    def mutate(file: str, old: str, new: str) -> tfcheck.Config:
        copy = tmp_path / "terraform"
        shutil.copytree(TERRAFORM, copy)
        path = copy / file
        text = path.read_text()
        assert old in text, f"{file} no longer contains {old!r}: update the test"
        path.write_text(text.replace(old, new, 1))
        return tfcheck.load(copy)

    return mutate
