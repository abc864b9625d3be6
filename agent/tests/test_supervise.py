"""The supervisor (model_serving_agent.supervise), against the real agent with no models (ports
16220-16229): a kill -9 of the agent is repaired without anyone calling (its pid file follows), a config error is not retried,
SIGTERM stops both, and a killed supervisor takes its agent with it."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from .support import AGENT_DIR, TOKEN, free_port, pid_alive, wait_http

PORTS = range(16220, 16230)


def write_config(tmp_path, token_file: bool = True) -> str:
    port = free_port(PORTS)
    config = {
        "port": port,
        "front_ports": {"first": 16230, "last": 16239},
        "backend_ports": {"first": 16240, "last": 16249},
        "state_file": str(tmp_path / "state.json"),
        "log_dir": str(tmp_path / "logs"),
        "token_file": str(tmp_path / "token"),
    }
    if token_file:
        fd = os.open(config["token_file"], os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, f"{TOKEN}\n".encode())
        os.close(fd)
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(config))
    return str(path)


def start(config: str, tmp_path, *extra: str) -> subprocess.Popen:
    log = open(tmp_path / "supervisor.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "model_serving_agent.supervise", "--config", config, *extra],
        cwd=AGENT_DIR, env={**os.environ, "PYTHONPATH": AGENT_DIR}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def children(pid: int) -> list:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as f:
        return [int(c) for c in f.read().split()]


def agent_child(supervisor: subprocess.Popen, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = children(supervisor.pid)
        if found:
            return found[0]
        time.sleep(0.05)
    raise TimeoutError("the supervisor started no agent")


def wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), f"pid {pid} still runs after {timeout} s"


def url_of(config: str) -> str:
    with open(config, encoding="utf-8") as f:
        return f"http://127.0.0.1:{json.load(f)['port']}"


@pytest.fixture
def stop_after():
    started = []
    yield started.append
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def test_a_killed_agent_is_started_again_and_sigterm_stops_both(tmp_path, stop_after):
    config = write_config(tmp_path)
    pid_file = tmp_path / "run" / "agent.pid"
    pid_file.parent.mkdir()
    supervisor = start(config, tmp_path, "--agent-pid-file", str(pid_file))
    stop_after(supervisor)
    wait_http(f"{url_of(config)}/health", 60)
    first = agent_child(supervisor)
    assert pid_file.read_text() == f"{first}\n"
    os.kill(first, signal.SIGKILL)
    wait_gone(first, 10)
    # Back on the same port, answering as an agent (a bad token is refused), by a new process.
    wait_http(f"{url_of(config)}/health", 60)
    second = agent_child(supervisor)
    assert second != first
    assert pid_file.read_text() == f"{second}\n"
    assert requests.get(f"{url_of(config)}/models", headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
    assert requests.get(f"{url_of(config)}/models", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).status_code == 200
    log = (tmp_path / "supervisor.log").read_text()
    assert "the agent exited (killed by SIGKILL); starting it again in 1 s" in log

    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=40) == 0
    wait_gone(second, 10)
    assert not pid_file.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url_of(config)}/health", timeout=5)


def test_a_config_error_is_not_retried(tmp_path, stop_after):
    config = write_config(tmp_path, token_file=False)
    supervisor = start(config, tmp_path)
    stop_after(supervisor)
    assert supervisor.wait(timeout=60) == 2
    log = (tmp_path / "supervisor.log").read_text()
    assert log.count("started the agent") == 1
    assert "model_serving_agent: " in log and "token" in log
    assert "the agent exited with status 2 (its config, token or state file): not restarting" in log


def test_a_killed_supervisor_takes_its_agent_with_it(tmp_path, stop_after):
    config = write_config(tmp_path)
    supervisor = start(config, tmp_path)
    stop_after(supervisor)
    wait_http(f"{url_of(config)}/health", 60)
    agent = agent_child(supervisor)
    supervisor.kill()
    supervisor.wait(timeout=10)
    wait_gone(agent, 20)
