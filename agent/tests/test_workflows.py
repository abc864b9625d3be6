"""The score workflow (agent/model_serving_agent/workflows): a real MLflow server with registered iris
(conftest), one agent on ports 16400-16799, scoring subprocesses of the project's venv.

Covers: 150 iris rows in batches of 32 equal mlflow.pyfunc in process (by version and by alias; CSV,
JSON lines and a folder of Parquet files in; CSV, JSON lines and Parquet out; overrides from
programParameters); a 1,000,000-row CSV within a bounded peak RSS of the scoring process; 400s naming
the field; 401s; the login cookie; SIGKILL of the agent mid-run reported as failed: interrupted after
the restart (orphaned scorer stopped, queued run failed too), the next run works; SIGTERM mid-run."""

import json
import os
import time
from typing import Any, Dict, Iterator

import numpy as np
import pandas as pd
import pytest
import requests

from .support import TOKEN, Agent, free_port, pid_alive

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
PORTS = {"port": range(16400, 16410), "front": (16410, 16459), "backend": (16500, 16599)}
MIB = 1024 * 1024
MILLION = 1_000_000
# The scoring process's VmHWM for 1,000,000 rows in batches of 10,000 may exceed the 150-row run's by
# at most this much (the whole file as one float64 frame alone is 32 MiB; measured: about 5 MiB more than 150 rows).
MEMORY_HEADROOM_BYTES = 24 * MIB


def make_agent(work_dir: str, tracking_uri: str) -> Agent:
    port = free_port(PORTS["port"])
    agent = Agent(
        work_dir, tracking_uri, port=port,
        front_ports={"first": PORTS["front"][0], "last": PORTS["front"][1]},
        backend_ports={"first": PORTS["backend"][0], "last": PORTS["backend"][1]},
        workflow_runs=2,
    )  # fmt: skip
    agent.port, agent.url = port, f"http://127.0.0.1:{port}"
    return agent


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    from sklearn.datasets import load_iris

    root = tmp_path_factory.mktemp("workflow-data")
    iris = pd.DataFrame(load_iris().data, columns=COLUMNS)
    iris_csv = str(root / "iris.csv")
    iris.to_csv(iris_csv, index=False)
    big_csv = str(root / "million.csv")
    rng = np.random.default_rng(7)
    rows = iris.to_numpy()[rng.integers(0, len(iris), MILLION)] + rng.normal(0, 0.05, (MILLION, 4))
    pd.DataFrame(rows.round(3), columns=COLUMNS).to_csv(big_csv, index=False)
    return {"root": str(root), "iris": iris, "iris_csv": iris_csv, "big_csv": big_csv}


@pytest.fixture(scope="module")
def agent(registry: Dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    from mlflow import MlflowClient

    MlflowClient(registry["tracking_uri"]).set_registered_model_alias("iris", "workflow-test", "2")
    agent = make_agent(str(tmp_path_factory.mktemp("workflow-agent")), registry["tracking_uri"])
    try:
        agent.start()
        agent.wait_healthy(120)
        yield agent
    finally:
        stop_scorers(agent)
        agent.cleanup()


def stop_scorers(agent: Agent) -> None:
    """Every scoring process this agent's runs started (their argv names a run dir under its log_dir)."""
    import signal

    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "model_serving_agent.workflows.score" in argv and any(a.startswith(agent.config["log_dir"]) for a in argv):
            try:
                os.killpg(int(entry), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def declare(agent: Agent, workflow_id: str, **spec: Any) -> Dict[str, Any]:
    response = agent.call("PUT", f"/api/v1/workflows/{workflow_id}", json=spec)
    assert response.status_code == 200, response.text
    return response.json()


def execute(agent: Agent, workflow_id: str, program_parameters: str = "", **kwargs: Any) -> str:
    response = agent.call("POST", "/api/v1/workflow/execute", json={"workflowId": workflow_id, "programParameters": program_parameters}, **kwargs)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return response.json()["executionId"]


def wait_done(agent: Agent, execution_id: str, timeout: float = 300) -> Dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = agent.call("GET", f"/api/v1/workflow/executions/{execution_id}").json()
        if body["status"] in ("succeeded", "failed"):
            return body
        time.sleep(0.5)
    raise TimeoutError(f"execution {execution_id} not finished after {timeout} s: {body}")


def wait_running(agent: Agent, execution_id: str, timeout: float = 120) -> Dict[str, Any]:
    """Until the run's scoring process has scored its first rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = agent.call("GET", f"/api/v1/workflow/executions/{execution_id}").json()
        if body["status"] == "running" and body["rows_in"] > 0:
            break
        time.sleep(0.3)
    assert body["status"] == "running" and body["pid"], body
    return body


def pyfunc_predictions(tracking_uri: str, model_uri: str, frame: pd.DataFrame) -> np.ndarray:
    import mlflow.pyfunc

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    return np.asarray(mlflow.pyfunc.load_model(model_uri).predict(frame))


@pytest.fixture(scope="module")
def iris_run(agent: Agent, data: Dict[str, Any], registry: Dict[str, str]) -> Dict[str, Any]:
    out = os.path.join(data["root"], "out", "iris-scored.csv")
    declare(agent, "iris-batch", model_uri=registry["v1"], input=data["iris_csv"], output=out, batch_size=32)
    result = wait_done(agent, execute(agent, "iris-batch"))
    assert result["status"] == "succeeded", result
    return result


def test_150_iris_rows_in_batches_of_32_equal_pyfunc_in_process(iris_run, data, registry):
    assert (iris_run["rows_in"], iris_run["rows_out"], iris_run["batches"]) == (150, 150, 5)
    assert iris_run["duration_seconds"] > 0 and iris_run["error"] is None
    scored = pd.read_csv(iris_run["output"])
    assert list(scored.columns) == COLUMNS + ["prediction"]
    expected = pyfunc_predictions(registry["tracking_uri"], registry["v1"], data["iris"])
    assert scored["prediction"].tolist() == expected.tolist()
    np.testing.assert_allclose(scored[COLUMNS].to_numpy(), data["iris"].to_numpy())
    assert not [n for n in os.listdir(os.path.dirname(iris_run["output"])) if n.endswith(".partial")]


def test_program_parameters_override_output_format_and_model_by_alias(agent, data, registry):
    out = os.path.join(data["root"], "out", "alias.jsonl")
    run = wait_done(agent, execute(agent, "iris-batch", f"--model models:/iris@workflow-test --output {out} --output-format jsonl --batch-size 50"))
    assert run["status"] == "succeeded", run
    assert (run["model_uri"], run["output"], run["batches"], run["rows_out"]) == ("models:/iris@workflow-test", out, 3, 150)
    with open(out, encoding="utf-8") as f:
        lines = f.read().split("\n")
    assert len(lines) == 151 and lines[-1] == "" and all(lines[:-1]), "one JSON object per line, no blank line"
    scored = pd.read_json(out, lines=True)
    expected = pyfunc_predictions(registry["tracking_uri"], registry["v2"], data["iris"])
    v1 = pyfunc_predictions(registry["tracking_uri"], registry["v1"], data["iris"])
    assert scored["prediction"].tolist() == expected.tolist()
    assert expected.tolist() != v1.tolist(), "v1 and v2 must differ for this test to show the alias resolved"
    listed = agent.call("GET", "/api/v1/workflow/executions?workflowId=iris-batch").json()["executions"]
    assert listed[0]["id"] == run["id"] and len(listed) >= 2


def test_parquet_folder_and_json_lines_inputs(agent, data, iris_run):
    folder = os.path.join(data["root"], "parquet-in")
    os.makedirs(folder, exist_ok=True)
    data["iris"].iloc[:75].to_parquet(os.path.join(folder, "part-0.parquet"), index=False)
    data["iris"].iloc[75:].to_parquet(os.path.join(folder, "part-1.parquet"), index=False)
    with open(os.path.join(folder, "notes.txt"), "w", encoding="utf-8") as f:
        f.write("not an input file\n")
    jsonl = os.path.join(data["root"], "iris.jsonl")
    data["iris"].to_json(jsonl, orient="records", lines=True)
    expected = pd.read_csv(iris_run["output"])["prediction"].tolist()
    for parameters, batches in ((f"--input {folder} --input-format parquet", 6), (f"--input {jsonl} --input-format jsonl", 5)):
        out = os.path.join(data["root"], "out", f"from-{batches}.csv")
        run = wait_done(agent, execute(agent, "iris-batch", f"{parameters} --output {out}"))
        assert run["status"] == "succeeded", run
        assert (run["rows_in"], run["batches"]) == (150, batches)  # 75 rows per file: 3 batches of <= 32 each
        assert pd.read_csv(out)["prediction"].tolist() == expected


def test_a_million_row_csv_scores_within_bounded_memory(agent, data, registry, iris_run):
    out = os.path.join(data["root"], "out", "million.csv")
    declare(agent, "million", model_uri=registry["v1"], input=data["big_csv"], output=out, batch_size=10_000)
    run = wait_done(agent, execute(agent, "million"), timeout=600)
    assert run["status"] == "succeeded", run
    assert (run["rows_in"], run["rows_out"], run["batches"]) == (MILLION, MILLION, 100)
    size = os.path.getsize(data["big_csv"])
    print(
        f"\n1,000,000 rows ({size / MIB:.1f} MiB CSV) in batches of 10,000: {run['duration_seconds']:.1f} s, "
        f"{MILLION / run['duration_seconds']:.0f} rows/s including model load; scoring process peak RSS "
        f"{run['peak_rss_bytes'] / MIB:.1f} MiB (150-row run: {iris_run['peak_rss_bytes'] / MIB:.1f} MiB)"
    )
    assert run["peak_rss_bytes"] - iris_run["peak_rss_bytes"] < MEMORY_HEADROOM_BYTES
    with open(out, encoding="utf-8") as f:
        assert sum(1 for _ in f) == MILLION + 1
    assert pd.read_csv(out, nrows=5)["prediction"].isin([0, 1, 2]).all()


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "request body workflowId: Field required"),
        ({"workflowId": 7}, "request body workflowId: Input should be a valid string (got 7)"),
        ({"workflowId": "iris-batch", "programParameters": ["--input", "x"]}, "request body programParameters"),
        ({"workflowId": "iris-batch", "sparkConfig": "spark.executor.memory=2g"}, "request body sparkConfig"),
        ({"workflowId": "iris-batch", "libJars": 3}, "request body libJars"),
        ({"workflowId": "iris-batch", "emailOnSuccess": True}, "request body emailOnSuccess"),
        ({"workflowId": "iris-batch", "emailOnFailure": {"to": "x"}}, "request body emailOnFailure"),
        ({"workflowId": "iris-batch", "programParameters": "--batch-size many"}, "programParameters --batch-size: not an integer (got 'many')"),
        ({"workflowId": "iris-batch", "programParameters": "--batch-size 0"}, "programParameters --batch-size: Input should be greater than or equal to 1 (got 0)"),
        ({"workflowId": "iris-batch", "programParameters": "--executors 4"}, "programParameters: unrecognized arguments: --executors 4"),
        ({"workflowId": "iris-batch", "programParameters": "--input in.csv"}, "programParameters --input: Value error, must be an absolute path"),
        ({"workflowId": "iris-batch", "programParameters": "--input 'gs://bucket/in.csv'"}, "programParameters --input: Value error, scheme gs:// is not supported"),
        ({"workflowId": "iris-batch", "emailOnFailure": "ops at example.com"}, "request body emailOnFailure: Value error, 'ops at example.com' is not an email address"),
        ({"workflowId": "iris-batch", "programParameters": "--output-format xml"}, "programParameters --output-format: Input should be 'csv', 'parquet' or 'jsonl'"),
        ({"workflowId": "iris-batch", "programParameters": "--input 'unterminated"}, "programParameters: No closing quotation"),
    ],
)
def test_malformed_execute_bodies_are_400_naming_the_field(agent, iris_run, body, field):
    response = agent.call("POST", "/api/v1/workflow/execute", json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"input": "/d/in.csv", "output": "/d/out.csv"}, "request body model_uri: Field required"),
        ({"model_uri": "runs:/abc/model", "input": "/d/in.csv", "output": "/d/o.csv"}, "request body model_uri: Value error, must be models:/<name>@<alias> or models:/<name>/<version> (got \"runs:/abc/model\")"),
        ({"model_uri": "models:/iris/1", "input": "abfss://c@a.dfs.core.windows.net/in", "output": "/d/o.csv"}, "request body input: Value error, abfss:// location must be abfss://<container>@<account>.dfs.core.windows.net/<path>"),
        ({"model_uri": "models:/iris/1", "input": "/d/in.csv", "output": "/d/o.csv", "batch_size": "32"}, "request body batch_size: Input should be a valid integer (got \"32\")"),
        ({"model_uri": "models:/iris/1", "input": "/d/in.csv", "output": "/d/o.csv", "input_format": "xls"}, "request body input_format"),
        ({"model_uri": "models:/iris/1", "input": "/d/in.csv", "output": "/d/o.csv", "spark": {}}, "request body spark: Extra inputs are not permitted"),
    ],
)
def test_malformed_workflows_are_400_naming_the_field(agent, spec, field):
    response = agent.call("PUT", "/api/v1/workflows/bad", json=spec)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]
    assert agent.call("GET", "/api/v1/workflows/bad").status_code == 404


def test_unknown_fields_ignored_unknown_workflow_404_and_guide_fields_recorded(agent, iris_run, data):
    response = agent.call("POST", "/api/v1/workflow/execute", json={"workflowId": "nope"})
    assert response.status_code == 404 and "workflowId 'nope'" in response.json()["error"]
    assert agent.call("POST", "/api/v1/workflow/execute", data="{not json").status_code == 400
    out = os.path.join(data["root"], "out", "guide.parquet")
    body = {
        "workflowId": "iris-batch", "programParameters": f"--output {out} --output-format parquet",
        "sparkConfig": {"spark.executor.memory": "2g"}, "libJars": ["a.jar"], "emailOnSuccess": "ops@example.com",
        "emailOnFailure": ["ops@example.com"], "clusterId": "ignored", "priority": 3,
    }  # fmt: skip
    response = agent.call("POST", "/api/v1/workflow/execute", json=body)
    assert response.status_code == 202, response.text
    run = wait_done(agent, response.json()["executionId"])
    assert run["status"] == "succeeded", run
    assert run["request"]["sparkConfig"] == {"spark.executor.memory": "2g"} and "clusterId" not in run["request"]
    assert run["ignored"] == {
        "sparkConfig": "ignored: this agent has no Spark runtime; the run scores pandas batches in one process (batch size: --batch-size)",
        "libJars": "ignored: this agent runs no JVM; the model is loaded with mlflow.pyfunc",
    }
    assert run["notifications"] == {  # this agent has no smtp config: kept, not sent, and said so
        "on_success": ["ops@example.com"], "on_failure": ["ops@example.com"], "status": "not configured",
        "detail": "emailOnSuccess/emailOnFailure recorded but no mail is sent: the agent has no smtp settings (config smtp)",
    }  # fmt: skip
    assert pd.read_parquet(out)["prediction"].tolist() == pd.read_csv(iris_run["output"])["prediction"].tolist()
    failed = wait_done(agent, execute(agent, "iris-batch", f"--input {data['root']}/missing.csv"))
    assert failed["status"] == "failed" and "does not exist on the agent's host" in failed["error"]
    assert failed["ignored"] == {} and failed["notifications"]["status"] == "none requested"


def test_bad_token_401_and_login_cookie(agent, iris_run):
    for method, path in (("POST", "/api/v1/workflow/execute"), ("GET", "/api/v1/workflow/executions"),
                         ("PUT", "/api/v1/workflows/x"), ("GET", f"/api/v1/workflow/executions/{iris_run['id']}")):  # fmt: skip
        assert agent.call(method, path, token=None, json={}).status_code == 401
        assert agent.call(method, path, token="wrong-token-0123456789", json={}).status_code == 401
    assert requests.post(f"{agent.url}/api/v1/login", json={"token": "wrong-token-0123456789"}, timeout=10).status_code == 401
    assert requests.post(f"{agent.url}/api/v1/login", json={"token": 5}, timeout=10).status_code == 400

    session = requests.Session()  # curl -c cookies.txt / -b cookies.txt
    login = session.post(f"{agent.url}/api/v1/login", json={"token": TOKEN}, timeout=10)
    assert login.status_code == 200, login.text
    header = login.headers["Set-Cookie"]
    assert "HttpOnly" in header and "Max-Age=3600" in header and "Path=/api/v1/" in header and "SameSite=Strict" in header
    cookie = session.cookies.get("model_serving_session")
    assert cookie and TOKEN not in header and len(cookie) >= 40
    other = requests.post(f"{agent.url}/api/v1/login", data={"token": TOKEN}, timeout=10)  # form body, as curl -d
    assert other.status_code == 200 and other.cookies.get("model_serving_session") not in (None, cookie)

    assert session.get(f"{agent.url}/api/v1/workflow/executions/{iris_run['id']}", timeout=10).json()["status"] == "succeeded"
    response = session.post(f"{agent.url}/api/v1/workflow/execute", json={"workflowId": "iris-batch"}, timeout=10)
    assert response.status_code == 202
    assert session.get(f"{agent.url}/models", timeout=10).status_code == 401  # the cookie opens /api/v1/ only
    forged = requests.get(f"{agent.url}/api/v1/workflow/executions", cookies={"model_serving_session": "x" * 43}, timeout=10)
    assert forged.status_code == 401
    assert session.post(f"{agent.url}/api/v1/logout", timeout=10).status_code == 200
    assert requests.get(f"{agent.url}/api/v1/workflow/executions", cookies={"model_serving_session": cookie}, timeout=10).status_code == 401
    assert wait_done(agent, response.json()["executionId"])["status"] == "succeeded"


def test_agent_killed_mid_run_reports_interrupted_after_restart_and_the_next_run_works(agent, data, registry, iris_run):
    out = os.path.join(data["root"], "out", "slow.csv")
    declare(agent, "slow", model_uri=registry["v1"], input=data["big_csv"], output=out, batch_size=32)
    first, second = execute(agent, "slow"), execute(agent, "slow")
    running = wait_running(agent, first)
    assert agent.call("GET", f"/api/v1/workflow/executions/{second}").json()["status"] == "queued"  # one at a time
    scorer = running["pid"]

    agent.kill9()
    assert pid_alive(scorer), "the scoring process outlives a SIGKILLed agent (it is stopped on restart)"
    agent.start()
    agent.wait_healthy(120)
    assert not pid_alive(scorer)
    for execution_id, was in ((first, "running"), (second, "queued")):
        body = agent.call("GET", f"/api/v1/workflow/executions/{execution_id}").json()
        assert body["status"] == "failed", body
        assert body["error"] == f"interrupted: the agent stopped while this run was {was}"
    assert not [n for n in os.listdir(os.path.dirname(out)) if n.startswith("slow.csv")]
    assert agent.call("GET", "/api/v1/workflows/slow").json()["batch_size"] == 32  # persisted
    after = wait_done(agent, execute(agent, "iris-batch"))
    assert after["status"] == "succeeded" and after["rows_out"] == 150

    stopped = execute(agent, "slow")  # SIGTERM: the agent stops its run and records why before exiting
    wait_running(agent, stopped)
    assert agent.proc is not None
    agent.proc.terminate()
    agent.proc.wait(timeout=60)
    agent.start()
    agent.wait_healthy(120)
    body = agent.call("GET", f"/api/v1/workflow/executions/{stopped}").json()
    assert (body["status"], body["error"]) == ("failed", "interrupted: the agent was stopped during this run")
    with open(os.path.join(os.path.dirname(agent.config["state_file"]), "workflows.json"), encoding="utf-8") as f:
        stored = json.load(f)
    assert stored["executions"][first]["status"] == "failed" and TOKEN not in json.dumps(stored)
    assert agent.call("DELETE", "/api/v1/workflows/slow").json() == {"id": "slow", "deleted": True}
    assert agent.call("GET", "/api/v1/workflows/slow").status_code == 404


def test_sessions_expire_and_old_executions_are_pruned_with_their_run_folders(tmp_path):
    from model_serving_agent.config import parse_config
    from model_serving_agent.workflows.service import KEEP_EXECUTIONS, WorkflowService
    from model_serving_agent.workflows.sessions import Sessions

    sessions = Sessions(0.2)
    session_id = sessions.create()
    assert sessions.valid(session_id) and not sessions.valid(session_id[:-1] + "x") and not sessions.valid(None)
    time.sleep(0.3)
    assert not sessions.valid(session_id)

    config = parse_config({"port": 16799, "state_file": str(tmp_path / "state.json"), "log_dir": str(tmp_path / "logs")})
    service = WorkflowService(config)
    for i in range(KEEP_EXECUTIONS + 2):
        run_dir = tmp_path / "logs" / "workflow-runs" / f"e{i:04d}"
        run_dir.mkdir(parents=True)
        service.executions[f"e{i:04d}"] = {"id": f"e{i:04d}", "status": "succeeded", "submitted_at": f"2026-12-01T00:{i // 60:02d}:{i % 60:02d}Z", "run_dir": str(run_dir)}
    service.executions["running"] = {"id": "running", "status": "running", "submitted_at": "2026-01-01T00:00:00Z", "run_dir": str(tmp_path / "r")}
    service._save()
    assert len(service.executions) == KEEP_EXECUTIONS and "running" in service.executions
    assert "e0000" not in service.executions and "e0002" not in service.executions and "e0003" in service.executions
    assert not (tmp_path / "logs" / "workflow-runs" / "e0000").exists() and (tmp_path / "logs" / "workflow-runs" / "e0003").exists()
    with open(tmp_path / "workflows.json", encoding="utf-8") as f:
        assert len(json.load(f)["executions"]) == KEEP_EXECUTIONS
