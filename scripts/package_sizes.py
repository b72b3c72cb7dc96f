#!/usr/bin/env python3
"""Prints each function's release zip and binary size after `make package`, and writes them as
JSON beside the zips (`target/lambda/sizes.json`), for the benchmark record.

Usage: package_sizes.py [LAMBDA_DIR]   (default: target/lambda)
Exits 1 when a function of `functions/` has no zip: the package is incomplete.
"""

import json
import pathlib
import sys
import zipfile

GOAL_BYTES = 5 * 1000 * 1000  # issue 17's goal: each zip at most 5 MB


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    lambda_dir = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "target" / "lambda"
    functions = sorted(p.name for p in (root / "functions").iterdir() if p.is_dir())
    rows, missing = [], []
    for name in functions:
        archive = lambda_dir / name / "bootstrap.zip"
        if not archive.is_file():
            missing.append(name)
            continue
        with zipfile.ZipFile(archive) as z:
            binary = z.getinfo("bootstrap").file_size
        rows.append({"function": name, "zipBytes": archive.stat().st_size, "binaryBytes": binary})
    mib = lambda b: f"{b / 1024 / 1024:.1f} MiB"
    print(f"{'function':<14} {'zip':>10} {'binary':>10}")
    for r in rows:
        over = "  (over the 5 MB goal)" if r["zipBytes"] > GOAL_BYTES else ""
        print(f"{r['function']:<14} {mib(r['zipBytes']):>10} {mib(r['binaryBytes']):>10}{over}")
    if rows:
        total = sum(r["zipBytes"] for r in rows)
        print(f"{len(rows)} zips, {mib(total)} in all, in {lambda_dir}")
        (lambda_dir / "sizes.json").write_text(json.dumps(rows, indent=2) + "\n")
    if missing:
        print(f"no zip for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
