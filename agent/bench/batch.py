"""Rows/s of a workflow run on the agent vs `mlflow models predict` on the same CSV, same registered
model (models:/iris/1 on a local `mlflow server`), one run each, end to end: process start, model
load, reading, scoring and writing the output. Also the peak RSS of each scoring process.

Usage: python agent/bench/batch.py [--rows 200000] [--batch-size 10000]
Ports 16700-16799 only. Prints both figures, the ratio and a JSON line."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT_DIR = os.path.dirname(HERE)
sys.path.insert(0, AGENT_DIR)

from tests import support  # noqa: E402
from tests.support import SERVING_PYTHON, TOKEN, CACHE, free_port, wait_http  # noqa: E402

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MIB = 1024 * 1024


def make_csv(path: str, rows: int) -> None:
    from sklearn.datasets import load_iris

    rng = np.random.default_rng(7)
    iris = load_iris().data
    values = iris[rng.integers(0, len(iris), rows)] + rng.normal(0, 0.05, (rows, 4))
    pd.DataFrame(values.round(3), columns=COLUMNS).to_csv(path, index=False)


def mlflow_predict(model_uri: str, csv: str, out: str, env: dict) -> dict:
    started = time.monotonic()
    proc = subprocess.Popen(
        [SERVING_PYTHON, "-m", "mlflow", "models", "predict", "-m", model_uri, "-i", csv, "-t", "csv", "-o", out,
         "--env-manager", "local"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"mlflow models predict failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return {"seconds": round(elapsed, 2), "peak_rss_mib": round(usage.ru_maxrss * 1024 / MIB, 1)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="agent-bench-batch-")
    support.MLFLOW_PORTS = range(16790, 16800)
    server = agent = None
    try:
        server = support.MlflowServer(work)
        version = server.registry("register", "iris", os.path.join(CACHE, "test-models", "iris-C1"))["version"]
        model_uri = f"models:/iris/{version}"
        csv = os.path.join(work, "in.csv")
        make_csv(csv, args.rows)
        env = {**os.environ, "MLFLOW_TRACKING_URI": server.uri}

        port = free_port(range(16700, 16710))
        config = {
            "port": port, "front_ports": {"first": 16710, "last": 16719}, "backend_ports": {"first": 16720, "last": 16789},
            "state_file": os.path.join(work, "state", "state.json"), "log_dir": os.path.join(work, "logs"),
            "mlflow_tracking_uri": server.uri, "python": SERVING_PYTHON,
        }  # fmt: skip
        with open(os.path.join(work, "agent.json"), "w") as f:
            json.dump(config, f)
        agent = subprocess.Popen(
            [sys.executable, "-m", "model_serving_agent", "--config", os.path.join(work, "agent.json"), "--token-stdin"],
            cwd=AGENT_DIR, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": AGENT_DIR}, start_new_session=True,
        )  # fmt: skip
        assert agent.stdin is not None
        agent.stdin.write(f"{TOKEN}\n".encode())
        agent.stdin.close()
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", 60)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        spec = {"model_uri": model_uri, "input": csv, "output": os.path.join(work, "out.csv"), "batch_size": args.batch_size}
        requests.put(f"{url}/api/v1/workflows/bench", json=spec, headers=auth, timeout=30).raise_for_status()

        predict = mlflow_predict(model_uri, csv, os.path.join(work, "predict.json"), env)
        started = time.monotonic()
        execution = requests.post(f"{url}/api/v1/workflow/execute", json={"workflowId": "bench"}, headers=auth, timeout=30).json()
        while True:
            run = requests.get(f"{url}/api/v1/workflow/executions/{execution['executionId']}", headers=auth, timeout=30).json()
            if run["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.1)
        wall = time.monotonic() - started
        if run["status"] != "succeeded":
            raise RuntimeError(f"workflow run failed: {run['error']}")
        workflow = {"seconds": round(wall, 2), "peak_rss_mib": round(run["peak_rss_bytes"] / MIB, 1)}

        rate_w, rate_p = args.rows / workflow["seconds"], args.rows / predict["seconds"]
        print(f"{args.rows} rows ({os.path.getsize(csv) / MIB:.1f} MiB CSV), {os.cpu_count()} cores, one run each")
        print(f"  workflow run (batches of {args.batch_size}) {rate_w:>10.0f} rows/s  {workflow['seconds']:>7} s  peak RSS {workflow['peak_rss_mib']} MiB")
        print(f"  mlflow models predict           {rate_p:>10.0f} rows/s  {predict['seconds']:>7} s  peak RSS {predict['peak_rss_mib']} MiB")
        print(f"  workflow / predict: {rate_w / rate_p:.2f}x")
        print(json.dumps({"rows": args.rows, "batch_size": args.batch_size, "workflow": workflow, "mlflow_models_predict": predict,
                          "ratio": round(rate_w / rate_p, 2)}))  # fmt: skip
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(timeout=30)
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
