"""The image's prune step keeps the OCI SDK core and the services the functions use, and nothing else."""

from pathlib import Path

import pytest

from tools.prune_oci import prune


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / "oci" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def sdk(tmp_path: Path) -> Path:
    # A miniature oci package laid out like the real one: a service registry in __init__.py (with the
    # eager fallback import), core modules, and one folder per service.
    services = [
        "object_storage",
        "secrets",
        "ons",
        "functions",
        "monitoring",
        "core",
        "identity",
        "work_requests",
    ]
    registry = ", ".join(f'"{s}"' for s in ["pagination", *services])
    _write(
        tmp_path,
        {
            "__init__.py": (
                "from . import pagination\n"
                f"__all__ = [{registry}]\nif False:\n    from . import {', '.join(services)}\n"
            ),
            "pagination/__init__.py": "",
            "signer.py": "import oci.util\n",
            "util.py": '"""See :py:class:`~oci.identity.models.User`."""\n',
            "waiter.py": "from oci.work_requests import WorkRequestClient\n",
            "addons/adk/agent.py": "import oci.core\n",
            **{f"{s}/__init__.py": "" for s in services},
            "object_storage/transfer.py": "from ..secrets import models\n",
        },
    )
    return tmp_path


def test_prune_keeps_used_services_and_what_they_import(sdk):
    # Given an SDK whose core (pagination, named in __all__ too) imports work_requests and whose
    # object_storage imports secrets
    # When it is pruned
    _, _, removed = prune(sdk)

    # Then the five used services and the imported one stay; the rest, and the addons, go
    left = sorted(p.name for p in (sdk / "oci").iterdir() if p.is_dir())
    assert left == [
        "functions",
        "monitoring",
        "object_storage",
        "ons",
        "pagination",
        "secrets",
        "work_requests",
    ]
    assert removed == ["core", "identity", "addons"]


def test_prune_ignores_services_named_only_in_docstrings(sdk):
    # Given util.py mentions oci.identity in a docstring only
    # When the SDK is pruned
    prune(sdk)

    # Then identity is removed all the same
    assert not (sdk / "oci" / "identity").exists()


def test_prune_refuses_an_sdk_without_a_kept_service(sdk):
    # Given an SDK that no longer ships monitoring
    (sdk / "oci" / "__init__.py").write_text('__all__ = ["object_storage", "secrets", "ons", "functions"]\n')

    # When it is pruned, Then it stops and names the missing service rather than shipping a broken image
    with pytest.raises(SystemExit, match="monitoring"):
        prune(sdk)
