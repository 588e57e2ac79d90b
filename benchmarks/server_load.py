"""Load on the example HTTP servers (export/python/examples/serve.py and export/node/examples/serve.js): a burst of
requests, `--concurrency` at a time, each on its own connection to 127.0.0.1; failed connections, throughput and
p50/p99 per server. The test suite runs the same load (tests/test_servers.py) and asserts zero failures.

    python benchmarks/server_load.py BUNDLE --out benchmarks/results/server_load [--requests 2000 --concurrency 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVERS = {"python": [sys.executable, str(ROOT / "export" / "python" / "examples" / "serve.py")],
           "node": ["node", str(ROOT / "export" / "node" / "examples" / "serve.js")]}
BODY = json.dumps({"texts": ["a gorgeous, witty film", "the plot is paper-thin"]}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(kind: str, bundle: Path, read_timeout_s: float = 10.0):
    """The example server of `kind` on a free port of 127.0.0.1: yields (port, process); stopped afterwards."""
    port = free_port()
    env = {**os.environ, "SERVE_READ_TIMEOUT_S": str(read_timeout_s)}
    proc = subprocess.Popen([*SERVERS[kind], str(bundle), str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        if "serving on" not in line:
            raise RuntimeError(f"the {kind} server did not start: {line}{proc.stderr.read()[-2000:]}")
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def post(port: int, body: bytes, headers: dict | None = None, timeout: float = 30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/predict", body, headers if headers is not None else {"Content-Length": str(len(body))})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def run_load(port: int, requests: int = 2000, concurrency: int = 200) -> dict:
    """`requests` POSTs of two sentences, `concurrency` at a time, each on its own connection."""

    def one(_):
        start = time.perf_counter()
        try:
            status, reply = post(port, BODY)
            ok = status == 200 and len(reply["predictions"]) == 2
            return ok, None if ok else f"status {status}", time.perf_counter() - start
        except OSError as e:
            return False, type(e).__name__, time.perf_counter() - start

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    latencies = sorted(r[2] for r in results if r[0])
    failures = [r[1] for r in results if not r[0]]

    def percentile(q):
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else None

    return {"requests": requests, "concurrency": concurrency, "failed": len(failures),
            "failures": sorted(set(failures)), "wall_s": round(wall, 2), "throughput_rps": round(requests / wall, 1),
            "p50_ms": percentile(0.5), "p99_ms": percentile(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    rows = []
    for kind in SERVERS:
        with running_server(kind, args.bundle) as (port, _):
            post(port, BODY)  # load the model's kernels before the clock starts
            rows.append({"server": kind, **run_load(port, args.requests, args.concurrency)})
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    report = {"command": " ".join(["python", *sys.argv]), "bundle": str(args.bundle),
              "bundle_model": f"{manifest['architecture']} {manifest['precision']}, "
                              f"{manifest['files']['model.onnx']['bytes'] / 1e6:.2f} MB", "cpu": cpu,
              "cpus": len(os.sched_getaffinity(0)), "node": subprocess.run(["node", "--version"], capture_output=True,
                                                                           text=True).stdout.strip(),
              "python": platform.python_version(), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Example servers under load: {args.requests} requests, {args.concurrency} concurrent", "",
             f"`{report['command']}`; bundle: {report['bundle_model']}; {cpu}, {report['cpus']} CPUs; "
             f"Python {report['python']}, Node {report['node']}. Each request: two sentences, a new connection "
             "to 127.0.0.1; the client runs on the same CPUs.", "",
             "| server | failed | throughput req/s | p50 ms | p99 ms | wall s |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['server']} | {r['failed']} | {r['throughput_rps']} | {r['p50_ms']} | {r['p99_ms']} | "
              f"{r['wall_s']} |" for r in rows]
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
