"""Terraform's own evaluation of terraform/'s variables, locals and preconditions, offline.

No OCI provider can be installed here, so the configuration cannot be planned as it is. What can be
evaluated without one is taken as written: every `variable` block (with its validations), every `locals`
block, and every resource's `precondition`, which becomes an output's precondition. The only change is that
each resource or data source attribute a local reads becomes PLACEHOLDER, a string as long as an OCID, so
Terraform (>= 1.3: `optional()` defaults) evaluates the rest exactly as `terraform plan` would:

    outputs = evaluate(Path("terraform"), tfvars, tmp_path)   # {"function_config_octets": 1234, ...}

TerraformRefused carries Terraform's own message (a validation's or a precondition's error_message).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.terraform import tfcheck

PLACEHOLDER = "ocid1.placeholder.oc1.eu-frankfurt-1." + "a" * 60
OUTPUTS = (
    "functions",
    "function_config",
    "function_config_octets",
    "config_limit_octets",
    "extract_catalog",
    "catalog_object",
    "function_statements",
    "platform_statements",
    "scheduler_statements",
    "watched_extracts",
)
BLOCK = re.compile(r"^(locals|variable \"[a-z0-9_]+\") \{$", re.M)


class TerraformRefused(Exception):
    """Terraform rejected the inputs: a variable's validation or a precondition failed."""


def terraform_binary() -> str | None:
    """A terraform of at least 1.3 on PATH (or in $TERRAFORM), else None."""
    binary = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if binary is None:
        return None
    shown = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, env=_env())
    try:
        major, minor = (int(part) for part in json.loads(shown.stdout)["terraform_version"].split(".")[:2])
    except (ValueError, KeyError):
        return None
    return binary if (major, minor) >= (1, 3) else None


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": "/dev/null",
    }


def _blocks(text: str) -> list[str]:
    """Every top-level `locals { ... }` and `variable "x" { ... }` block of one file, as written."""
    found = []
    for start in BLOCK.finditer(text):
        end = text.index("\n}\n", start.start()) + 3
        found.append(text[start.start() : end])
    return found


def _preconditions(text: str) -> list[str]:
    """The body of every `precondition { ... }` in one file."""
    return [found[2] for found in re.finditer(r"\n( +)precondition \{\n(.*?)\n\1\}", text, re.S)]


def module(root: Path, workdir: Path) -> Path:
    """The evaluable copy of `root` in workdir/terraform, beside a link to the function folders it reads."""
    target = workdir / "terraform"
    target.mkdir(parents=True)
    (workdir / "functions").symlink_to(root.resolve().parent / "functions")
    parts: list[str] = []
    checks: list[str] = []
    for path in sorted(root.glob("*.tf")):
        text = path.read_text()
        parts += _blocks(text)
        checks += _preconditions(text)
    source = "\n".join(parts)
    source = tfcheck.REFERENCE.sub(f'"{PLACEHOLDER}"', source)
    outputs = [f'output "{name}" {{\n  value = local.{name}\n}}\n' for name in OUTPUTS]
    outputs += [
        f'output "precondition_{index}" {{\n  value = true\n  precondition {{\n{body}\n  }}\n}}\n'
        for index, body in enumerate(checks)
    ]
    (target / "evaluated.tf").write_text(source + "\n" + "\n".join(outputs))
    return target


def evaluate(root: Path, tfvars: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The outputs of an apply of the evaluable copy with these inputs; TerraformRefused with Terraform's
    message when a validation or precondition fails."""
    binary = terraform_binary()
    assert binary is not None, "terraform >= 1.3 is needed"
    target = module(root, workdir)
    (target / "inputs.tfvars.json").write_text(json.dumps(tfvars))
    env = {**_env(), "TF_DATA_DIR": str(workdir / ".terraform")}
    steps = [
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color", "-var-file=inputs.tfvars.json"],
    ]
    for step in steps:
        done = subprocess.run([binary, *step], cwd=target, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            message = " ".join(done.stderr.split()) or " ".join(done.stdout.split())
            raise TerraformRefused(re.sub(r'"[^"]{200,}"', '"..."', message)[:4000])
    shown = subprocess.run(
        [binary, "output", "-json", "-no-color"],
        cwd=target,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return {name: value["value"] for name, value in json.loads(shown.stdout).items()}
