"""The agent with real model servers on loopback: a real MLflow server and registered iris versions
(conftest.registry). One agent for the module, so the tests run in order and build on each other:
deploy v1, switch to v2 under load, a broken v3 and a bad sample that leave v2 serving, restarts,
undeploy. Ports: 16000-16199 only (support.py)."""

import os
import threading
import time
from typing import Dict, Iterator, List, Tuple

import pytest
import requests

from .support import TOKEN, Agent, kill_group, pid_alive

SAMPLE = {"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                              "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}  # fmt: skip


@pytest.fixture(scope="module")
def agent(registry: Dict[str, str], work_dir: str) -> Iterator[Agent]:
    agent = Agent(work_dir, registry["tracking_uri"])
    agent.start()
    agent.wait_healthy(60)
    try:
        yield agent
    finally:
        agent.cleanup()


def score(url: str) -> requests.Response:
    return requests.post(url, json=SAMPLE, timeout=30)


def iris(agent: Agent) -> Dict:
    response = agent.call("GET", "/models/iris")
    assert response.status_code == 200, response.text
    return response.json()


class Load:
    """Constant scoring load on one URL from a few threads until stopped; counts every outcome."""

    def __init__(self, url: str, threads: int = 2, pause: float = 0.02):
        self.url, self.pause = url, pause
        self.ok: List[str] = []
        # (sent, answered, model URI) of each scored request, by monotonic time.
        self.timed: List[Tuple[float, float, str]] = []
        self.failures: List[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    sent = time.monotonic()
                    r = session.post(self.url, json=SAMPLE, timeout=30)
                    if r.status_code == 200 and len(r.json()["predictions"]) == 2:
                        self.ok.append(r.headers["X-Model-Uri"])
                        self.timed.append((sent, time.monotonic(), r.headers["X-Model-Uri"]))
                    else:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")
                except requests.RequestException as err:
                    self.failures.append(repr(err))
                time.sleep(self.pause)

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)


def test_health_and_openapi_need_no_token_everything_else_does(agent: Agent):
    assert agent.call("GET", "/health", token=None).json()["status"] == "ok"
    assert agent.call("GET", "/openapi.json", token=None).json()["openapi"].startswith("3.")
    for method, path in (("GET", "/models"), ("GET", "/version"), ("PUT", "/models/iris"), ("DELETE", "/models/iris")):
        for token in (None, "wrong-token-0123456789", TOKEN + "x"):
            response = agent.call(method, path, token=token, json={"model_uri": "models:/iris/1"})
            assert response.status_code == 401, (method, path, token, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert agent.call("GET", "/models").json() == {"models": []}
    assert agent.call("GET", "/version").json()["mlflow"] == "3.17.2"


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/models/iris", b"{not json", 400, "the request body is not JSON"),
        ("/models/iris", b"{}", 400, "request body model_uri: Field required"),
        ("/models/iris", b'{"model_uri": 7}', 400, "request body model_uri: Input should be a valid string (got 7)"),
        ("/models/iris", b'{"model_uri": "models:/iris/1", "replicas": 2}', 400, "request body replicas: Extra inputs"),
        ("/models/iris", b'{"model_uri": "models:/iris/1", "front_port": 5001}', 400, "port 5001 is outside front_ports"),
        ("/models/-bad", b'{"model_uri": "models:/iris/1"}', 400, "model name '-bad' must match"),
    ],
)
def test_malformed_deploys_get_a_clear_400(agent: Agent, path, body, status, message):
    response = agent.call("PUT", path, data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_unknown_models_and_methods_get_json_4xx(agent: Agent):
    assert agent.call("GET", "/models/nope").status_code == 404
    assert agent.call("DELETE", "/models/nope").status_code == 404
    response = requests.post(f"{agent.url}/models/nope/invocations", json=SAMPLE, timeout=10)
    assert (response.status_code, response.json()["error"]) == (404, "model nope is not deployed")
    response = agent.call("POST", "/models")
    assert response.status_code == 405 and "Method Not Allowed" in response.json()["error"]


def test_deploy_serves_on_its_front_port_and_the_path_form(agent: Agent, registry):
    response = agent.call("PUT", "/models/iris", json={"model_uri": registry["v1"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["changed"], body["status"], body["front_port"]) == (True, "serving", 16010)
    assert body["verified_with"] == "sample_input"  # the model's own serving_input_example.json
    for url in (body["front_url"], body["path_url"]):
        scored = score(url)
        assert scored.status_code == 200, scored.text
        assert len(scored.json()["predictions"]) == 2
        assert scored.headers["X-Model-Uri"] == registry["v1"]
    # Same URI again: nothing restarts.
    again = agent.call("PUT", "/models/iris", json={"model_uri": registry["v1"]}).json()
    assert (again["changed"], again["backend"]["pid"]) == (False, body["backend"]["pid"])


def test_switch_under_constant_load_fails_no_request(agent: Agent, registry):
    before = iris(agent)
    with Load(before["front_url"]) as load:
        time.sleep(0.5)
        response = agent.call("PUT", "/models/iris", json={"model_uri": registry["v2"]})
        time.sleep(1.0)
    assert response.status_code == 200, response.text
    after = response.json()
    served = load.ok
    print(f"switch under load: {len(served)} ok, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:5]
    assert len(served) >= 100
    assert served[0] == registry["v1"] and served[-1] == registry["v2"]
    # Requests never flip back: every request sent after the new version first answered is served by
    # it. (By answer order alone, a request the old backend accepted before the switch may finish
    # after the first answer of the new one: that is the drain, not a flip back.)
    first_new_answer = min(answered for _, answered, uri in load.timed if uri == registry["v2"])
    later = {uri for sent, _, uri in load.timed if sent > first_new_answer}
    assert later == {registry["v2"]}
    assert after["front_port"] == before["front_port"]
    assert after["backend"]["port"] != before["backend"]["port"]
    assert not pid_alive(before["backend"]["pid"]), "the old backend was not stopped after draining"


def test_a_version_that_cannot_load_leaves_the_old_one_serving(agent: Agent, registry):
    serving = iris(agent)
    response = agent.call("PUT", "/models/iris", json={"model_uri": registry["broken"]})
    assert response.status_code == 422, response.text
    failure = response.json()
    cause = "ModuleNotFoundError: No module named 'model_serving_no_such_module'"
    assert "exited" in failure["error"] and failure["error"].endswith(cause), failure["error"]
    assert cause in failure["log_tail"] and len(failure["log_tail"]) > 5, failure["log_tail"]
    now = iris(agent)
    assert (now["model_uri"], now["backend"]["pid"]) == (registry["v2"], serving["backend"]["pid"])
    assert score(now["front_url"]).headers["X-Model-Uri"] == registry["v2"]


def test_a_version_that_fails_its_sample_scoring_leaves_the_old_one_serving(agent: Agent, registry):
    serving = iris(agent)
    bad_sample = {"dataframe_split": {"columns": ["colour"], "data": [["blue"]]}}
    response = agent.call("PUT", "/models/iris", json={"model_uri": registry["v1"], "sample_input": bad_sample})
    assert response.status_code == 422, response.text
    assert "the scoring call with the sample input answered 400" in response.json()["error"]
    now = iris(agent)
    assert (now["model_uri"], now["backend"]["pid"]) == (registry["v2"], serving["backend"]["pid"])
    assert agent.state()["models"]["iris"]["model_uri"] == registry["v2"]


def first_healthy_then_score(agent: Agent, front_url: str) -> requests.Response:
    """/health ok must mean the models already serve: score right after the first ok."""
    agent.wait_healthy()
    return score(front_url)


def test_a_killed_agent_comes_back_adopting_the_running_backend(agent: Agent, registry):
    serving = iris(agent)
    agent.kill9()
    with pytest.raises(requests.ConnectionError):  # the front lives in the agent's process
        score(serving["front_url"])
    agent.start()
    scored = first_healthy_then_score(agent, serving["front_url"])
    assert (scored.status_code, scored.headers["X-Model-Uri"]) == (200, registry["v2"])
    now = iris(agent)
    assert (now["verified_with"], now["backend"]["pid"]) == ("adopted", serving["backend"]["pid"])


def test_after_agent_and_backends_die_it_restarts_the_same_version_on_the_same_port(agent: Agent, registry):
    serving = iris(agent)
    agent.kill9()
    kill_group(serving["backend"]["pid"], 9)  # the host "rebooted": nothing of the old processes is left
    agent.start()
    scored = first_healthy_then_score(agent, serving["front_url"])
    assert (scored.status_code, scored.headers["X-Model-Uri"]) == (200, registry["v2"])
    now = iris(agent)
    assert now["front_port"] == serving["front_port"]
    assert now["backend"]["pid"] != serving["backend"]["pid"] and now["verified_with"] == "sample_input"


def test_a_backend_that_dies_is_restarted_on_the_same_front(agent: Agent, registry):
    serving = iris(agent)
    kill_group(serving["backend"]["pid"], 9)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        now = iris(agent)
        if now["status"] == "serving" and now["backend"]["pid"] != serving["backend"]["pid"]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"not restarted: {now}")
    assert agent.call("GET", "/health", token=None).json()["status"] == "ok"
    scored = score(serving["front_url"])
    assert (scored.status_code, scored.headers["X-Model-Uri"]) == (200, serving["model_uri"])
    assert agent.state()["models"]["iris"]["backend"]["pid"] == now["backend"]["pid"]


def test_challenger_gets_its_weight_the_pin_header_wins_and_promotion_restarts_nothing(agent: Agent, registry):
    serving = iris(agent)  # v2 serves as champion
    body = {"model_uri": registry["v2"], "challenger": {"model_uri": registry["v1"], "weight": 0.3}}
    response = agent.call("PUT", "/models/iris", json=body)
    assert response.status_code == 200, response.text
    split = response.json()
    assert split["backend"]["pid"] == serving["backend"]["pid"]  # the champion kept running
    assert split["challenger"]["model_uri"] == registry["v1"] and split["challenger"]["weight"] == 0.3

    with requests.Session() as session:
        variants = [session.post(split["front_url"], json=SAMPLE, timeout=30).headers for _ in range(300)]
        pinned = [
            session.post(split["path_url"], json=SAMPLE, headers={"X-Model-Variant": "challenger"}, timeout=30).headers
            for _ in range(20)
        ]
    to_challenger = sum(h["X-Model-Variant"] == "challenger" for h in variants)
    print(f"challenger share: {to_challenger}/300 at weight 0.3")
    assert 60 <= to_challenger <= 120  # 90 expected; +-3.8 standard deviations
    assert all(h["X-Model-Uri"] == registry["v1"] for h in variants if h["X-Model-Variant"] == "challenger")
    assert {(h["X-Model-Variant"], h["X-Model-Uri"]) for h in pinned} == {("challenger", registry["v1"])}
    bad_pin = requests.post(split["front_url"], json=SAMPLE, headers={"X-Model-Variant": "blue"}, timeout=30)
    assert bad_pin.status_code == 400

    # A restarted agent brings back both versions and the weight.
    agent.kill9()
    agent.start()
    agent.wait_healthy()
    adopted = iris(agent)
    assert adopted["challenger"]["backend"]["pid"] == split["challenger"]["backend"]["pid"]
    assert (adopted["challenger"]["weight"], adopted["challenger"]["verified_with"]) == (0.3, "adopted")

    # Promotion: the challenger's backend becomes the champion as it is; the old champion drains and stops.
    promoted = agent.call("PUT", "/models/iris", json={"model_uri": registry["v1"]}).json()
    assert promoted["backend"]["pid"] == split["challenger"]["backend"]["pid"]
    assert promoted["challenger"] is None
    assert not pid_alive(split["backend"]["pid"])
    assert score(promoted["front_url"]).headers["X-Model-Uri"] == registry["v1"]


def test_shared_backend_holds_several_models_switches_them_together_and_is_adopted(agent: Agent, registry):
    a = agent.call("PUT", "/models/shared-a", json={"model_uri": registry["v1"], "backend": "shared"})
    assert a.status_code == 200, a.text
    b = agent.call("PUT", "/models/shared-b", json={"model_uri": registry["v2"], "backend": "shared"})
    assert b.status_code == 200, b.text
    first = b.json()["backend"]
    assert first["shared"] and not pid_alive(a.json()["backend"]["pid"])  # the one-model worker was replaced
    fronts = {n: iris_of(agent, n)["front_url"] for n in ("shared-a", "shared-b")}
    assert score(fronts["shared-a"]).headers["X-Model-Uri"] == registry["v1"]
    assert score(fronts["shared-b"]).headers["X-Model-Uri"] == registry["v2"]

    # A new version of one member: a new worker with both, under load on the other member's front.
    with Load(fronts["shared-b"]) as load:
        switched = agent.call("PUT", "/models/shared-a", json={"model_uri": registry["v2"], "backend": "shared"})
        time.sleep(0.5)
    assert switched.status_code == 200, switched.text
    assert load.failures == [] and len(load.ok) > 20, load.failures[:5]
    worker = switched.json()["backend"]["pid"]
    assert iris_of(agent, "shared-b")["backend"]["pid"] == worker != first["pid"]
    assert not pid_alive(first["pid"])
    assert score(fronts["shared-a"]).headers["X-Model-Uri"] == registry["v2"]

    agent.kill9()
    agent.start()
    agent.wait_healthy()
    for n in fronts:
        assert (iris_of(agent, n)["backend"]["pid"], iris_of(agent, n)["verified_with"]) == (worker, "adopted")
        assert score(fronts[n]).status_code == 200

    assert agent.call("DELETE", "/models/shared-a").status_code == 200
    assert pid_alive(worker)  # shared-b still uses it
    assert score(fronts["shared-b"]).status_code == 200
    assert agent.call("DELETE", "/models/shared-b").status_code == 200
    assert not pid_alive(worker)


def shared_starts(agent: Agent) -> int:
    """How many shared workers the agent switched to (one log line each)."""
    with open(os.path.join(agent.config["log_dir"], "agent.log"), encoding="utf-8") as f:
        return sum("shared backend port" in line for line in f)


def put_together(agent: Agent, bodies: Dict[str, Dict]) -> Dict[str, requests.Response]:
    """The PUTs at once, from one thread each (as the engine runs a stack's creates)."""
    answers: Dict[str, requests.Response] = {}

    def put(name: str) -> None:
        answers[name] = agent.call("PUT", f"/models/{name}", json=bodies[name])

    threads = [threading.Thread(target=put, args=(n,)) for n in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return answers


def test_shared_deploys_that_arrive_together_start_one_worker(agent: Agent, registry):
    before = shared_starts(agent)
    names = [f"batch-{i}" for i in range(4)]
    answers = put_together(agent, {n: {"model_uri": registry["v1" if i % 2 else "v2"], "backend": "shared"}
                                   for i, n in enumerate(names)})  # fmt: skip
    assert {n: r.status_code for n, r in answers.items()} == {n: 200 for n in names}, [r.text for r in answers.values()]
    assert shared_starts(agent) == before + 1  # one worker start for the four, not four
    pids = {iris_of(agent, n)["backend"]["pid"] for n in names}
    assert len(pids) == 1 and all(answers[n].json()["verified_with"] == "sample_input" for n in names)
    for i, n in enumerate(names):
        assert score(iris_of(agent, n)["front_url"]).headers["X-Model-Uri"] == registry["v1" if i % 2 else "v2"]

    # A broken version in a batch: the batch fails as a whole, then each join alone; only it fails.
    answers = put_together(agent, {"batch-0": {"model_uri": registry["broken"], "backend": "shared"},
                                   "batch-4": {"model_uri": registry["v1"], "backend": "shared"}})  # fmt: skip
    assert answers["batch-0"].status_code == 422, answers["batch-0"].text
    assert "batch-0" in answers["batch-0"].json()["error"] and answers["batch-0"].json()["log_tail"]
    assert answers["batch-4"].status_code == 200, answers["batch-4"].text
    assert iris_of(agent, "batch-0")["model_uri"] == registry["v2"]  # the old version keeps serving
    for n in ("batch-0", "batch-4"):
        assert score(iris_of(agent, n)["front_url"]).status_code == 200
    for n in names + ["batch-4"]:
        assert agent.call("DELETE", f"/models/{n}").status_code == 200


def iris_of(agent: Agent, name: str) -> Dict:
    response = agent.call("GET", f"/models/{name}")
    assert response.status_code == 200, response.text
    return response.json()


def test_undeploy_closes_the_front_and_stops_the_backend(agent: Agent):
    serving = iris(agent)
    response = agent.call("DELETE", "/models/iris")
    assert response.status_code == 200, response.text
    assert agent.call("GET", "/models").json() == {"models": []}
    with pytest.raises(requests.ConnectionError):
        score(serving["front_url"])
    assert requests.post(serving["path_url"], json=SAMPLE, timeout=10).status_code == 404
    assert not pid_alive(serving["backend"]["pid"])
    assert agent.state()["models"] == {}
