#!/usr/bin/env python3
"""Validates custom-resource manifests against a CustomResourceDefinition's schema.

kubernetes-validate knows only the built-in kinds, so the objects of a CRD (the VPC CNI's
ENIConfig) are checked here against the vendored CRD's `openAPIV3Schema` for their version.
Strict, like `kubernetes-validate --strict`: a field the schema does not name fails (the API
server would silently prune it), except under `metadata` and where the schema preserves unknown
fields below the top level.

usage: validate_crd.py CRD.yaml MANIFEST.json...
"""
import json
import sys

import jsonschema
import yaml


def strict(schema: dict, top: bool = True) -> dict:
    """The schema with additionalProperties false wherever properties are listed."""
    out = dict(schema)
    props = schema.get("properties")
    if props is not None:
        out["properties"] = {
            k: (v if k == "metadata" else strict(v, False)) for k, v in props.items()
        }
        if top or not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if "items" in schema:
        out["items"] = strict(schema["items"], False)
    return out


def main() -> int:
    crd_path, *manifests = sys.argv[1:]
    with open(crd_path, encoding="utf-8") as f:
        crd = yaml.safe_load(f)
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    schemas = {
        f"{group}/{v['name']}": strict(v["schema"]["openAPIV3Schema"])
        for v in crd["spec"]["versions"]
        if v.get("served")
    }
    failed = 0
    for path in manifests:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
        where = f"{path} ({obj.get('kind')} {obj.get('metadata', {}).get('name')})"
        if obj.get("kind") != kind or obj.get("apiVersion") not in schemas:
            print(f"{where}: not a {kind} of a served version {sorted(schemas)}")
            failed += 1
            continue
        if "namespace" in obj.get("metadata", {}) and crd["spec"]["scope"] == "Cluster":
            print(f"{where}: {kind} is cluster-scoped and must not name a namespace")
            failed += 1
        errors = sorted(
            jsonschema.Draft7Validator(schemas[obj["apiVersion"]]).iter_errors(obj),
            key=str,
        )
        for e in errors:
            print(f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
        failed += bool(errors)
        if not errors:
            print(f"{where}: valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
