#!/usr/bin/env python3
"""Gathers the benchmarks' JSON into the committed record: `tests/bench/latest.json` (every
figure, with the machine, the commit and the command) and `tests/bench/latest.md` (the headline
figures, for the README).

Usage: bench_record.py BENCH_DIR OUT_DIR [--packages SIZES_JSON] [--cold-starts COLD_JSON]
                       [--command TEXT] [--readme README.md]

BENCH_DIR holds what `make bench` wrote: provision.json, tenants.json, drift.json. SIZES_JSON is
`make package`'s `target/lambda/sizes.json`; without it the record says the zips were not built.
COLD_JSON is `scripts/cold_starts.py`'s `target/lambda/cold_starts.json` (each release binary's
exec to first `next`), joined to the sizes by function.
Exits 1 when a benchmark's file is missing: a record must hold every figure.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys

BENCHES = ("provision", "tenants", "drift")
# Step Functions Standard: $0.025 per 1,000 state transitions.
USD_PER_TRANSITION = 0.025 / 1000


def sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gib = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memoryGiB": mem_gib,
        "os": platform.platform(),
        "rustc": sh("rustc", "--version"),
        "note": "a shared machine: wall times are indicative; calls and transitions are exact",
    }


def cost(transitions) -> float | None:
    return None if transitions is None else round(transitions * USD_PER_TRANSITION, 6)


def get(doc, *path):
    for key in path:
        if isinstance(doc, dict):
            doc = doc.get(key)
        elif isinstance(doc, list) and isinstance(key, int) and key < len(doc):
            doc = doc[key]
        else:
            return None
    return doc


def fmt(value, digits=1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(record: dict) -> str:
    r, m = record["results"], record["machine"]
    p, t, d = r["provision"], r["tenants"], r["drift"]
    lines = [
        "# Benchmark record",
        "",
        f"Recorded {record['recordedAt']} at commit `{record['commit']}` by `{record['command']}` on "
        f"{m['cpu']}, {m['cores']} cores, {m['memoryGiB']} GiB ({m['note']}).",
        "Every figure is in `tests/bench/latest.json`.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| provision wall time / critical path (simulated AWS durations) | "
        f"{fmt(get(p, 'provision', 'wallSeconds'))} s / {fmt(get(p, 'provision', 'criticalPathSeconds'))} s "
        f"(ratio {fmt(get(p, 'provision', 'wallOverCriticalPath'), 3)}) |",
        f"| provision state transitions (Step Functions cost) | "
        f"{fmt(get(p, 'provision', 'stateTransitions'))} (${fmt(get(p, 'provision', 'stateTransitionCostUsd'), 4)}) |",
        f"| provision AWS calls: mutating / read | {fmt(get(p, 'provision', 'mutatingCalls'))} / "
        f"{fmt(get(p, 'provision', 'readCalls'))} |",
        f"| decommission state transitions, mutating calls | {fmt(get(p, 'decommission', 'stateTransitions'))}, "
        f"{fmt(get(p, 'decommission', 'mutatingCalls'))} |",
        f"| {fmt(get(t, 'n'))} concurrent onboardings: p50 / p95 event to done | "
        f"{fmt(get(t, 'concurrent', 'eventToDoneMs', 'p50'), 0)} ms / "
        f"{fmt(get(t, 'concurrent', 'eventToDoneMs', 'p95'), 0)} ms |",
        f"| concurrent onboardings: throughput, succeeded | "
        f"{fmt(get(t, 'concurrent', 'throughputPerMinute'))} per minute, "
        f"{fmt(get(t, 'concurrent', 'succeeded'))} of {fmt(get(t, 'concurrent', 'requests'))} |",
        f"| concurrent onboardings: p50 / p95 waiting for intake (local queue stand-in) / execution alone | "
        f"{fmt(get(t, 'concurrent', 'eventToStartMs', 'p50'), 0)} / {fmt(get(t, 'concurrent', 'eventToStartMs', 'p95'), 0)} ms, "
        f"{fmt(get(t, 'concurrent', 'executionMs', 'p50'), 0)} / {fmt(get(t, 'concurrent', 'executionMs', 'p95'), 0)} ms |",
        f"| one onboarding alone: p50 event to done | {fmt(get(t, 'sequential', 'eventToDoneMs', 'p50'), 0)} ms |",
        f"| re-ensure of an onboarded tenant: mutating calls | {fmt(get(t, 'reensure', 'mutatingPlatformCalls'))} |",
    ]
    for check in get(d, "checks") or []:
        lines.append(
            f"| drift check, {check.get('tenants')} tenant(s): platform calls, transitions | "
            f"{fmt(check.get('platformCalls'))}, {fmt(check.get('transitions'))} |"
        )
    for size in get(d, "fleetProjection", "bySize") or []:
        lines.append(
            f"| fleet sweep of {fmt(get(d, 'fleetProjection', 'platforms'), 0)} platforms, "
            f"{size.get('tenantsPerPlatform')} tenants each: hours | {fmt(size.get('sweepHours'), 2)} |"
        )
    packages = r.get("packages")
    if packages:
        for row in packages:
            cold = row.get("coldStart")
            init = f" / {cold['medianMs']:.1f} ms" if cold else " / not measured"
            lines.append(
                f"| `{row['function']}` zip / binary / cold start (median of {cold['runs'] if cold else 0}) | "
                f"{row['zipBytes'] / 2**20:.1f} MiB / {row['binaryBytes'] / 2**20:.1f} MiB{init} |"
            )
    else:
        lines.append("| function zips | not built in this record (`make package`) |")
    return "\n".join(lines) + "\n"


START, END = "<!-- bench:start (scripts/bench_record.py) -->", "<!-- bench:end -->"


def update_readme(readme: pathlib.Path, md: str) -> None:
    """Puts the record's table (and its provenance line) between the README's markers."""
    text = readme.read_text()
    head, sep, rest = text.partition(START)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise SystemExit(f"{readme}: no {START} ... {END} block to update")
    body = "\n".join(md.splitlines()[2:])  # without the title
    readme.write_text(f"{head}{START}\n{body}\n{END}{tail}")


def main() -> int:
    args = argparse.ArgumentParser()
    args.add_argument("bench_dir", type=pathlib.Path)
    args.add_argument("out_dir", type=pathlib.Path)
    args.add_argument("--packages", type=pathlib.Path)
    args.add_argument("--cold-starts", type=pathlib.Path)
    args.add_argument("--command", default="make bench")
    args.add_argument("--readme", type=pathlib.Path, help="rewrite the table between the bench markers")
    a = args.parse_args()
    results = {}
    for name in BENCHES:
        path = a.bench_dir / f"{name}.json"
        if not path.is_file():
            print(f"{path}: missing; run the {name} benchmark first", file=sys.stderr)
            return 1
        results[name] = json.loads(path.read_text())
    for part in ("provision", "decommission"):
        section = results["provision"].get(part, {})
        section["stateTransitionCostUsd"] = cost(section.get("stateTransitions"))
    if a.packages and a.packages.is_file():
        results["packages"] = json.loads(a.packages.read_text())
        if a.cold_starts and a.cold_starts.is_file():
            cold = {c["function"]: c for c in json.loads(a.cold_starts.read_text())}
            for row in results["packages"]:
                row["coldStart"] = cold.get(row["function"])
    record = {
        "recordedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": sh("git", "rev-parse", "--short", "HEAD"),
        "command": a.command,
        "machine": machine(),
        "results": results,
    }
    a.out_dir.mkdir(parents=True, exist_ok=True)
    (a.out_dir / "latest.json").write_text(json.dumps(record, indent=2) + "\n")
    (a.out_dir / "latest.md").write_text(markdown(record))
    print(f"written {a.out_dir / 'latest.json'} and {a.out_dir / 'latest.md'}")
    if a.readme:
        update_readme(a.readme, markdown(record))
        print(f"updated the figures in {a.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
