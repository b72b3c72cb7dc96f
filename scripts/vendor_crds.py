#!/usr/bin/env python3
"""Derives the objects Tenantry embeds from a controller's vendored upstream YAML.

For the controllers Tenantry installs (`shared/manifests/<controller>/<tag>/`, each with a
`SOURCE.md` naming repository, tag, commit, path and sha256 of every upstream file): the
upstream files stay verbatim, and `objects.json` holds their objects in file order (the files
listed in UPSTREAM below, per directory name), as minified JSON with the CRD schemas'
`description` texts removed (documentation only), and without a top-level `status` or
null-valued fields, which are never in a live object (see `vendor_calico.py`, the same rules).

usage:
  vendor_crds.py DIR            writes DIR/objects.json from DIR's upstream files
  vendor_crds.py --check DIR    exit 1 when DIR/objects.json differs from what DIR derives
"""
import json
import sys
from pathlib import Path

import yaml

# The upstream files of each controller, in apply order.
UPSTREAM = {
    "alb-controller": ["crds.yaml", "role.yaml"],
    # The CRDs the controller watches with Tenantry's arguments (see its SOURCE.md).
    "external-secrets": [
        "external-secrets.io_secretstores.yaml",
        "external-secrets.io_clustersecretstores.yaml",
        "external-secrets.io_externalsecrets.yaml",
        "external-secrets.io_clusterexternalsecrets.yaml",
        "generators.external-secrets.io_generatorstates.yaml",
    ],
}


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
    if isinstance(node, dict):
        return {k: strip_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [strip_nulls(x) for x in node]
    return node


def derive(directory: Path) -> str:
    objects = []
    for name in UPSTREAM[directory.resolve().parent.name]:
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
        if not target.exists() or target.read_text(encoding="utf-8") != derived:
            print(f"{target} is not derived from its upstream files: run scripts/vendor_crds.py {directory}")
            return 1
        print(f"{target}: derived from its upstream files")
        return 0
    target.write_text(derived, encoding="utf-8")
    print(f"wrote {target} ({len(derived)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
