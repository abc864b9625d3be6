"""Memory and start time per extra model: N separate `mlflow models serve` processes (what the agent's
backends are today, one per version) vs one multi-model worker (model_serving_agent.multi_worker)
holding N models. Memory is PSS (shared pages split between the processes that map them), summed
over each server's process group; start time is the wall time until every server answers /ping.

Usage: python agent/bench/multi_model.py [--separate 1,5] [--shared 1,5,10]   (ports 16400-16499)"""

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT_DIR = os.path.dirname(HERE)
sys.path.insert(0, AGENT_DIR)

from tests.support import CACHE, SERVING_PYTHON, free_port, kill_group, wait_http  # noqa: E402

MODEL = os.path.join(CACHE, "test-models", "iris-C1")
PORTS = range(16400, 16500)
ENV = {**os.environ, "PATH": f"{os.path.dirname(SERVING_PYTHON)}:{os.environ['PATH']}", "PYTHONPATH": AGENT_DIR}


def pss_mib(leader: int) -> float:
    """PSS of every process in the leader's process group."""
    total_kib = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != leader:
                continue
            with open(f"/proc/{entry}/smaps_rollup", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total_kib += int(line.split()[1])
        except (OSError, ProcessLookupError):
            continue
    return total_kib / 1024


def measure(commands: List[List[str]], ports: List[int], env: Dict[str, str]) -> Dict[str, float]:
    started = time.monotonic()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
             for c in commands]  # fmt: skip
    try:
        for port in ports:
            wait_http(f"http://127.0.0.1:{port}/ping", 600)
        elapsed = time.monotonic() - started
        time.sleep(1.0)
        return {"start_s": round(elapsed, 1), "pss_mib": round(sum(pss_mib(p.pid) for p in procs), 1)}
    finally:
        for p in procs:
            kill_group(p.pid)
        for p in procs:
            p.wait(timeout=30)


def separate(n: int) -> Dict[str, float]:
    ports, commands = [], []
    for _ in range(n):
        port = free_port(range(max(ports, default=PORTS.start - 1) + 1, PORTS.stop))
        ports.append(port)
        commands.append([SERVING_PYTHON, "-m", "mlflow", "models", "serve", "-m", MODEL, "--env-manager", "local",
                         "--port", str(port), "--workers", "1"])  # fmt: skip
    return measure(commands, ports, ENV)


def shared(n: int) -> Dict[str, float]:
    port = free_port(PORTS)
    models = {f"m{i}": MODEL for i in range(n)}
    env = {**ENV, "MODEL_SERVING_MODELS": json.dumps(models)}
    return measure([[SERVING_PYTHON, "-m", "model_serving_agent.multi_worker", "--port", str(port)]], [port], env)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--separate", default="1,5")
    parser.add_argument("--shared", default="1,5,10")
    args = parser.parse_args()
    results: Dict[str, Dict[int, Dict[str, float]]] = {"separate": {}, "shared": {}}
    for kind, counts, run in (("separate", args.separate, separate), ("shared", args.shared, shared)):
        for n in (int(c) for c in counts.split(",") if c):
            results[kind][n] = run(n)
            print(f"{kind:>8} x{n:<3} start {results[kind][n]['start_s']:>6} s   PSS {results[kind][n]['pss_mib']:>7} MiB", flush=True)
    for kind, by_n in results.items():
        ns = sorted(by_n)
        if len(ns) >= 2:
            lo, hi = by_n[ns[0]], by_n[ns[-1]]
            extra = hi["pss_mib"] - lo["pss_mib"]
            print(f"{kind}: per extra model {extra / (ns[-1] - ns[0]):.1f} MiB PSS, "
                  f"{(hi['start_s'] - lo['start_s']) / (ns[-1] - ns[0]):.2f} s start")  # fmt: skip
    print(json.dumps({"cores": os.cpu_count(), **{k: {str(n): v for n, v in r.items()} for k, r in results.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
