#!/usr/bin/env python3
"""Vendors Calico's operator manifests and derives the objects Tenantry embeds.

The upstream files are kept verbatim (`operator-crds.yaml`, `tigera-operator.yaml`, with their
tag, commit, URL and sha256 in `SOURCE.md`); `objects.json` is derived from them: every object in
apply order (CRDs first), as minified JSON, with the `description` texts of the CRDs' schemas
removed (they are documentation only, and they are three quarters of the bytes; the bootstrap
function embeds this file), and without a top-level `status` (two upstream CRDs carry an empty
one: status is the API server's, an apply of the object ignores it, so it would never be found
in the live object and every run would apply again) and without null-valued fields (two
`creationTimestamp: null`, the same story). Only a schema's `description` keyword is removed, never a field
that happens to be named `description` (the value of a field under `properties` is a schema
object, not a string).

usage:
  vendor_calico.py DIR            writes DIR/objects.json from DIR's upstream files
  vendor_calico.py --check DIR    exit 1 when DIR/objects.json differs from what DIR derives
"""
import json
import sys
from pathlib import Path

import yaml

UPSTREAM = ["operator-crds.yaml", "tigera-operator.yaml"]


def strip_descriptions(node):
    if isinstance(node, dict):
        return {
            k: strip_descriptions(v)
            for k, v in node.items()
            if not (k == "description" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [strip_descriptions(x) for x in node]
    return node


def strip_nulls(node):
    """Without null-valued keys (`creationTimestamp: null`): an apply reads null as "unset", so
    the live object never has them and would never look converged."""
    if isinstance(node, dict):
        return {k: strip_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [strip_nulls(x) for x in node]
    return node


def derive(directory: Path) -> str:
    objects = []
    for name in UPSTREAM:
        with open(directory / name, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if not doc:
                    continue
                doc.pop("status", None)
                doc = strip_nulls(doc)
                if doc["kind"] == "CustomResourceDefinition":
                    doc = strip_descriptions(doc)
                objects.append(doc)
    return json.dumps(objects, separators=(",", ":"), sort_keys=True) + "\n"


def main() -> int:
    args = sys.argv[1:]
    check = args[:1] == ["--check"]
    directory = Path(args[-1])
    derived = derive(directory)
    target = directory / "objects.json"
    if check:
        if target.read_text(encoding="utf-8") != derived:
            print(f"{target} is not derived from {UPSTREAM}: run scripts/vendor_calico.py {directory}")
            return 1
        print(f"{target}: derived from {UPSTREAM}")
        return 0
    target.write_text(derived, encoding="utf-8")
    print(f"wrote {target} ({len(derived)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
