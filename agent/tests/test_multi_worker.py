"""The multi-model worker: one process, two iris versions, each answering under its own prefix with
its own predictions (C=1 and C=0.01 disagree on this row), and /ping once both are loaded."""

import json
import os
import subprocess

import requests

from .support import AGENT_DIR, SERVING_PYTHON, free_port, kill_group, trained_model_dir, wait_http

ROW = {"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                           "data": [[7.0, 3.2, 4.7, 1.4]]}}  # fmt: skip


def test_one_worker_serves_two_models_under_their_prefixes(tmp_path):
    models = {"strong": trained_model_dir("iris-C1", "1.0", str(tmp_path)),
              "weak": trained_model_dir("iris-C0.01", "0.01", str(tmp_path))}  # fmt: skip
    port = free_port(range(16250, 16299))
    env = {
        **os.environ,
        "MODEL_SERVING_MODELS": json.dumps(models),
        "PYTHONPATH": AGENT_DIR,
        "PATH": f"{os.path.dirname(SERVING_PYTHON)}:{os.environ['PATH']}",
    }
    proc = subprocess.Popen([SERVING_PYTHON, "-m", "model_serving_agent.multi_worker", "--port", str(port)],
                            env=env, start_new_session=True)  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", 120)
        answers = {}
        for name in models:
            assert requests.get(f"http://127.0.0.1:{port}/m/{name}/ping", timeout=10).status_code == 200
            r = requests.post(f"http://127.0.0.1:{port}/m/{name}/invocations", json=ROW, timeout=30)
            assert r.status_code == 200, r.text
            answers[name] = r.json()["predictions"]
        assert answers == {"strong": [1], "weak": [2]}
        missing = requests.post(f"http://127.0.0.1:{port}/m/nope/invocations", json=ROW, timeout=10)
        assert missing.status_code == 404
    finally:
        kill_group(proc.pid)
        proc.wait(timeout=30)
