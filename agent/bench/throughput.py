"""Requests/s and latency through the agent's front vs a bare `mlflow models serve` of the same model
with its defaults (1 worker), same client, same concurrency, one after the other in one run.

Usage: python agent/bench/throughput.py [--model DIR] [--concurrency 8] [--seconds 5]
Ports 16300-16399 only. Prints one table and a JSON line with the figures."""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import aiohttp

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT_DIR = os.path.dirname(HERE)
sys.path.insert(0, AGENT_DIR)

from tests.support import SERVING_PYTHON, TOKEN, CACHE, free_port, kill_group, wait_http  # noqa: E402

PORTS = range(16300, 16400)


async def drive(url: str, body: bytes, concurrency: int, seconds: float) -> dict:
    latencies, errors = [], 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one_client(stop_at: float, record: bool) -> None:
            nonlocal errors
            while time.monotonic() < stop_at:
                started = time.monotonic()
                try:
                    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                        ok = r.status == 200
                except aiohttp.ClientError:
                    ok = False
                if record:
                    latencies.append(time.monotonic() - started) if ok else None
                    errors += 0 if ok else 1

        warm = time.monotonic() + 1.0
        await asyncio.gather(*(one_client(warm, False) for _ in range(concurrency)))
        started = time.monotonic()
        await asyncio.gather(*(one_client(started + seconds, True) for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=os.path.join(CACHE, "test-models", "iris-C1"))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with open(os.path.join(args.model, "serving_input_example.json"), "rb") as f:
        body = f.read()
    work = tempfile.mkdtemp(prefix="agent-bench-")
    procs = []
    try:
        bare_port = free_port(PORTS)
        bare = subprocess.Popen(
            [SERVING_PYTHON, "-m", "mlflow", "models", "serve", "-m", args.model, "--env-manager", "local",
             "--port", str(bare_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PATH": f"{os.path.dirname(SERVING_PYTHON)}:{os.environ['PATH']}"},
        )  # fmt: skip
        procs.append(bare.pid)
        agent_port = free_port(range(bare_port + 1, PORTS.stop))
        config = {
            "port": agent_port,
            "front_ports": {"first": agent_port + 1, "last": agent_port + 5},
            "backend_ports": {"first": agent_port + 6, "last": agent_port + 20},
            "state_file": os.path.join(work, "state.json"),
            "log_dir": os.path.join(work, "logs"),
            "python": SERVING_PYTHON,
            "stop_backends_on_exit": True,
        }
        with open(os.path.join(work, "agent.json"), "w") as f:
            json.dump(config, f)
        agent = subprocess.Popen(
            [sys.executable, "-m", "model_serving_agent", "--config", os.path.join(work, "agent.json"), "--token-stdin"],
            cwd=AGENT_DIR, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": AGENT_DIR}, start_new_session=True,
        )  # fmt: skip
        procs.append(agent.pid)
        agent.stdin.write(f"{TOKEN}\n".encode())
        agent.stdin.close()
        wait_http(f"http://127.0.0.1:{agent_port}/health", 60)
        import requests

        deployed = requests.put(
            f"http://127.0.0.1:{agent_port}/models/bench",
            json={"model_uri": args.model},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=300,
        ).json()
        if "backend" not in deployed:
            raise RuntimeError(f"the agent did not deploy the model: {json.dumps(deployed)[:2000]}")
        procs.append(deployed["backend"]["pid"])
        wait_http(f"http://127.0.0.1:{bare_port}/ping", 120)
        results = {}
        for label, url in (
            ("bare mlflow models serve (1 worker)", f"http://127.0.0.1:{bare_port}/invocations"),
            (f"agent front ({os.cpu_count()} backend workers)", deployed["front_url"]),
        ):
            results[label] = asyncio.run(drive(url, body, args.concurrency, args.seconds))
        print(f"{os.cpu_count()} cores, concurrency {args.concurrency}, {args.seconds:g} s each")
        for label, r in results.items():
            print(f"  {label:<40} {r['requests_per_second']:>8} req/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  errors {r['errors']}")
        (bare_r, front_r) = results.values()
        ratio = front_r["requests_per_second"] / bare_r["requests_per_second"]
        print(f"  front / bare: {ratio:.2f}x")
        print(json.dumps({"cores": os.cpu_count(), "concurrency": args.concurrency, "ratio": round(ratio, 2), **results}))
    finally:
        for pid in reversed(procs):
            kill_group(pid)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
