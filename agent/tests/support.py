"""Helpers for the agent's tests: free loopback ports in the test range, a real `mlflow server`, the
agent as a subprocess, and cleanup of every backend a test run started."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Dict, Optional

import requests

AGENT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_ROOT = os.path.dirname(AGENT_DIR)
CACHE = os.environ.get("MODEL_SERVING_CACHE", os.path.expanduser("~/.cache/model-serving"))
# The project's venv runs the model servers (it has mlflow's `uvicorn` on its bin path).
SERVING_PYTHON = os.path.join(os.environ.get("MODEL_SERVING_VENV", os.path.join(CACHE, "venv")), "bin", "python")
TOKEN = "test-token-0123456789abcdef"

# Never the project's 5000-5100, nor the agent's default backends (15001-15999): the tests bind only
# 16000-16999. Below Linux's ephemeral range (32768-60999) on purpose: a port checked free here is
# bound later by a server we start, and in between the kernel may hand a port of that range to any
# outgoing loopback connection (even a poll of the very server that is starting), which then fails
# to bind. The jest suites keep to 13000-14999 and 17000-32767 (test/support/env.ts).
AGENT_PORTS = range(16000, 16010)
FRONT_PORTS = (16010, 16059)
BACKEND_PORTS = (16100, 16199)
MLFLOW_PORTS = range(16900, 16999)


def free_port(candidates: range) -> int:
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError(f"no free port in {candidates}")


def wait_http(url: str, timeout: float, ok=lambda r: r.status_code == 200) -> requests.Response:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = requests.get(url, timeout=2)
            if ok(last):
                return last
        except requests.RequestException as err:
            last = err
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s: {last!r}")


def trained_model_dir(name: str, regularization: str, tmp_root: str) -> str:
    """The cached trained iris model (~/.cache/model-serving/test-models), trained here when absent."""
    cached = os.path.join(CACHE, "test-models", name)
    if os.path.exists(os.path.join(cached, "MLmodel")):
        return cached
    out = os.path.join(tmp_root, name)
    subprocess.run(
        [SERVING_PYTHON, os.path.join(REPO_ROOT, "python", "demo", "train_iris.py"), out, "--regularization", regularization],
        check=True,
    )
    return out


class MlflowServer:
    """`mlflow server` on a free test port; one that dies before it answers (its port taken after the
    check) is started again on the next port, and a failure says why with the server's last log lines."""

    def __init__(self, data_dir: str, attempts: int = 3):
        self.data_dir = data_dir
        for attempt in range(1, attempts + 1):
            self._start(free_port(MLFLOW_PORTS))
            try:
                self._wait_ready(120)
                return
            except _ServerExited as exited:
                self.log.close()
                if attempt == attempts:
                    raise RuntimeError(f"mlflow server exited {attempts} times before answering; last: {exited}") from None

    def _start(self, port: int) -> None:
        self.port = port
        self.uri = f"http://127.0.0.1:{port}"
        self.log_path = os.path.join(self.data_dir, f"mlflow-server-{port}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                SERVING_PYTHON, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                "--backend-store-uri", f"sqlite:///{os.path.join(self.data_dir, 'mlflow.db')}",
                "--artifacts-destination", os.path.join(self.data_dir, "artifacts"), "--serve-artifacts", "--workers", "1",
            ],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # uvicorn's supervisor stays up when its worker dies: the log says why either way.
            if self.proc.poll() is not None or b"address already in use" in _read(self.log_path):
                kill_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                raise _ServerExited(f"port {self.port}, exit {self.proc.returncode}: {self.log_tail()}")
            try:
                if requests.get(f"{self.uri}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"mlflow server on {self.uri} not ready after {timeout} s; last log lines: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(_read(self.log_path).decode(errors="replace").splitlines()[-lines:])

    def registry(self, *args: str) -> Dict[str, Any]:
        """test/support/registry_client.py (MLflow's own client) against this server."""
        out = subprocess.run(
            [SERVING_PYTHON, os.path.join(REPO_ROOT, "test", "support", "registry_client.py"), *args],
            env={**os.environ, "MLFLOW_TRACKING_URI": self.uri},
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        kill_group(self.proc.pid)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loaded host: SIGTERM not handled within 30 s
            kill_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()


class _ServerExited(Exception):
    pass


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def kill_group(pid: int, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Agent:
    """`python -m model_serving_agent` with the token on stdin; a second start reuses config and state."""

    def __init__(self, work_dir: str, tracking_uri: str, **overrides: Any):
        self.work_dir = work_dir
        self.port = free_port(AGENT_PORTS)
        self.config = {
            "port": self.port,
            "front_ports": {"first": FRONT_PORTS[0], "last": FRONT_PORTS[1]},
            "backend_ports": {"first": BACKEND_PORTS[0], "last": BACKEND_PORTS[1]},
            "state_file": os.path.join(work_dir, "state", "agent-state.json"),
            "log_dir": os.path.join(work_dir, "logs"),
            "mlflow_tracking_uri": tracking_uri,
            "python": SERVING_PYTHON,
            "backend_workers": 1,
            **overrides,
        }
        self.config_path = os.path.join(work_dir, "agent.json")
        with open(self.config_path, "w", encoding="utf-8") as f:
            json.dump(self.config, f)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None
        self.extra_env: Dict[str, str] = {}
        """Set in the agent's environment (the credentials a host's service unit would give it)."""

    def start(self) -> None:
        self.stderr = open(os.path.join(self.work_dir, "agent.stderr"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "model_serving_agent", "--config", self.config_path, "--token-stdin"],
            cwd=AGENT_DIR, stdin=subprocess.PIPE, stdout=self.stderr, stderr=subprocess.STDOUT,
            env={**os.environ, **self.extra_env, "PYTHONPATH": AGENT_DIR},
        )  # fmt: skip
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{TOKEN}\n".encode())
        self.proc.stdin.close()

    def wait_healthy(self, timeout: float = 240) -> requests.Response:
        return wait_http(f"{self.url}/health", timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def call(self, method: str, path: str, token: Optional[str] = TOKEN, **kwargs: Any) -> requests.Response:
        headers = {**kwargs.pop("headers", {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=300, **kwargs)

    def state(self) -> Dict[str, Any]:
        with open(self.config["state_file"], encoding="utf-8") as f:
            return json.load(f)

    def cleanup(self) -> None:
        """Stops the agent and every backend in the test port range it may have left."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
                port = int(argv[argv.index("--port") + 1]) if "--port" in argv else -1
            except (OSError, ValueError, IndexError):
                continue
            if "serve" in argv and BACKEND_PORTS[0] <= port <= BACKEND_PORTS[1]:
                kill_group(int(entry), signal.SIGKILL)
