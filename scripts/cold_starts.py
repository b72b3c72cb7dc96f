#!/usr/bin/env python3
"""Measures each function's cold start after `make package`: the time from exec of its release
`bootstrap` to its first `GET /2018-06-01/runtime/invocation/next` against a local Lambda Runtime
API stub, with the production environment (no endpoint override: the binary builds its SDK
clients exactly as in Lambda; its init makes no network call). Writes the figures beside the
zips (`target/lambda/cold_starts.json`) for the benchmark record (`make bench`).

Usage: cold_starts.py [LAMBDA_DIR] [RUNS]   (defaults: target/lambda, 15)

The stub never answers `next`: each run ends when the request arrives, and the process is killed.
Exits 1 when a function has no zip, or when a binary reports an init error or exits instead of
asking for an event.
"""

import http.server
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

GOAL_MS = 15.0  # issue 17's goal: init of at most 15 ms on this machine
TIMEOUT_S = 10.0

# What Lambda sets for a function (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html),
# with credentials of the shape a role session has. No AWS_ENDPOINT_URL: production.
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "ASIACOLDSTARTBENCH00",
    "AWS_SECRET_ACCESS_KEY": "cold-start-bench-secret-not-a-real-key",
    "AWS_SESSION_TOKEN": "cold-start-bench-session-token",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_STREAM_NAME": "cold-start",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/cold-start",
    "RUST_LOG": "info",
}


class Stub(http.server.BaseHTTPRequestHandler):
    """The Runtime API: records when `next` (or an init error) arrives, then holds the request."""

    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            self.server.arrived = time.perf_counter_ns()
            self.server.event.set()
            self.server.release.wait(TIMEOUT_S)
        self.send_response(404)
        self.end_headers()

    def do_POST(self):
        self.server.init_error = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.event.set()
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def one_run(binary: pathlib.Path, name: str, workdir: pathlib.Path) -> float:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    server.daemon_threads = True
    server.event, server.release = threading.Event(), threading.Event()
    server.arrived, server.init_error = None, None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(workdir), **LAMBDA_ENV}
    env["AWS_LAMBDA_FUNCTION_NAME"] = f"tenantry-{name}"
    env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{server.server_address[1]}"
    log = open(workdir / f"{name}.log", "ab")
    started = time.perf_counter_ns()
    proc = subprocess.Popen([str(binary)], env=env, cwd=workdir, stdout=log, stderr=log)
    try:
        if not server.event.wait(TIMEOUT_S):
            raise SystemExit(f"{name}: no `next` request within {TIMEOUT_S} s (exit {proc.poll()})")
        if server.init_error is not None:
            raise SystemExit(f"{name}: init error: {server.init_error[:300]!r}")
        return (server.arrived - started) / 1e6
    finally:
        proc.kill()
        proc.wait()
        server.release.set()
        server.shutdown()
        server.server_close()
        log.close()


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    lambda_dir = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "target" / "lambda"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    functions = sorted(p.name for p in (root / "functions").iterdir() if p.is_dir())
    rows, missing = [], []
    with tempfile.TemporaryDirectory(prefix="tenantry-cold-") as tmp:
        for name in functions:
            archive = lambda_dir / name / "bootstrap.zip"
            if not archive.is_file():
                missing.append(name)
                continue
            workdir = pathlib.Path(tmp) / name
            with zipfile.ZipFile(archive) as z:
                z.extract("bootstrap", workdir)
            binary = workdir / "bootstrap"
            binary.chmod(0o755)
            one_run(binary, name, workdir)  # page the binary in once, as a warm host would have it
            times = sorted(one_run(binary, name, workdir) for _ in range(runs))
            rows.append(
                {
                    "function": name,
                    "runs": runs,
                    "medianMs": round(statistics.median(times), 2),
                    "p90Ms": round(times[int(0.9 * (runs - 1))], 2),
                    "minMs": round(times[0], 2),
                }
            )
    print(f"{'function':<14} {'median':>9} {'p90':>9} {'min':>9}   ({runs} runs, exec to first `next`)")
    for r in rows:
        over = "  (over the 15 ms goal)" if r["medianMs"] > GOAL_MS else ""
        print(f"{r['function']:<14} {r['medianMs']:>7.2f}ms {r['p90Ms']:>7.2f}ms {r['minMs']:>7.2f}ms{over}")
    if rows:
        (lambda_dir / "cold_starts.json").write_text(json.dumps(rows, indent=2) + "\n")
    if missing:
        print(f"no zip for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
