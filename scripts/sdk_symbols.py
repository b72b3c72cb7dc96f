#!/usr/bin/env python3
"""Which AWS SDK crates each function binary links, and how much of each.

For every function binary (the `[[bin]]` names under `functions/`) in a build directory, counts
the defined symbols (`nm --defined-only`, demangled) that name each `aws_sdk_<service>` crate,
and prints JSON: {binary: {"bytes": size, "sdkSymbols": {service: count}}}. With `--table`, a
Markdown table instead, listing per binary the services with more than `--floor` symbols (a
service whose client the handler never builds keeps only the drop glue of its empty slot in
`aws::Clients`, a handful of symbols).

Run it on the debug binaries: `cargo build --workspace --bins`, then
`python3 scripts/sdk_symbols.py "$CARGO_TARGET_DIR/debug" --table`. Release binaries are
stripped (`profile.release.strip`), so they have no symbols to count.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK = re.compile(r"aws_sdk_(\w+?)::")


def function_binaries():
    names = []
    for manifest in sorted((ROOT / "functions").glob("*/Cargo.toml")):
        bins = tomllib.loads(manifest.read_text()).get("bin", [])
        names.extend(b["name"] for b in bins)
    return names


def sdk_symbols(binary: Path) -> dict:
    listing = subprocess.run(
        ["nm", "--defined-only", "-C", str(binary)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts = {}
    for line in listing.splitlines():
        for service in set(SDK.findall(line)):
            counts[service] = counts.get(service, 0) + 1
    return dict(sorted(counts.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin_dir", type=Path, help="the build directory (e.g. target/debug)")
    parser.add_argument("--table", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--floor",
        type=int,
        default=20,
        help="in the table, services with at most this many symbols count as not linked",
    )
    args = parser.parse_args()
    found = {}
    for name in function_binaries():
        binary = args.bin_dir / name
        if not binary.is_file():
            sys.exit(f"{binary}: no such binary; build them with `cargo build --workspace --bins`")
        found[name] = {"bytes": os.path.getsize(binary), "sdkSymbols": sdk_symbols(binary)}
    if not args.table:
        json.dump(found, sys.stdout, indent=2)
        print()
        return 0
    print("| binary | MiB | SDK symbols | SDK crates linked |")
    print("|---|---|---|---|")
    for name, f in found.items():
        linked = [s for s, n in f["sdkSymbols"].items() if n > args.floor]
        total = sum(f["sdkSymbols"].values())
        print(f"| {name} | {f['bytes'] / 2**20:.1f} | {total:,} | {', '.join(linked)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
