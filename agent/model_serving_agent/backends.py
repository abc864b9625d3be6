"""Backends: one `mlflow models serve --env-manager local` process per model version, on a loopback
port, in its own process group (so it outlives a killed agent and can be adopted by the next one)."""

import asyncio
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import aiohttp

from .config import AgentConfig

BACKEND_HOST = "127.0.0.1"
LOG_TAIL_LINES = 20


class BackendFailed(Exception):
    def __init__(self, message: str, log_tail: List[str]):
        super().__init__(message)
        self.log_tail = log_tail


@dataclass(eq=False)
class Backend:
    model_uri: str
    port: int
    pid: int
    log_path: str
    process: Optional[asyncio.subprocess.Process] = None
    """None for a backend adopted from an earlier agent (not our child)."""
    verified_with: str = "ping"
    """How this backend was accepted: "sample_input" (scored it), "ping" (no sample known), "adopted"."""
    inflight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    models: Optional[Dict[str, str]] = None
    """A shared backend (model_serving_agent.multi_worker): model name -> URI, each under /m/<name>/."""

    def url(self, path: str) -> str:
        return f"http://{BACKEND_HOST}:{self.port}/{path.lstrip('/')}"

    def path_for(self, name: str, path: str) -> str:
        return path if self.models is None else f"m/{name}/{path}"

    def uri_for(self, name: str) -> str:
        return self.model_uri if self.models is None else self.models[name]

    def begin_request(self) -> None:
        self.inflight += 1
        self.idle.clear()

    def end_request(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self.idle.set()

    def running(self) -> bool:
        if self.process is not None:
            return self.process.returncode is None
        return process_serves(self.pid, self.port)


def shared_command(config: AgentConfig, port: int) -> List[str]:
    python = config.python or sys.executable
    return [python, "-m", "model_serving_agent.multi_worker", "--port", str(port), "--workers", str(config.workers())]


def serve_command(config: AgentConfig, model_uri: str, port: int) -> List[str]:
    return [
        config.python or sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "--model-uri",
        model_uri,
        "--env-manager",
        "local",
        "--host",
        BACKEND_HOST,
        "--port",
        str(port),
        "--workers",
        str(config.workers()),
    ]


def backend_env(config: AgentConfig) -> Dict[str, str]:
    env = dict(os.environ)
    # `mlflow models serve` execs `uvicorn` by name: the interpreter's own bin directory comes first.
    python_bin = os.path.dirname(config.python or sys.executable)
    env["PATH"] = os.pathsep.join(p for p in (python_bin, env.get("PATH")) if p)
    if config.mlflow_tracking_uri:
        env["MLFLOW_TRACKING_URI"] = config.mlflow_tracking_uri
    return env


def process_serves(pid: int, port: int) -> bool:
    """The pid is alive and is an `mlflow models serve` on that port (not a recycled pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        return False
    kind = "serve" in argv or "model_serving_agent.multi_worker" in argv
    return kind and "--port" in argv and str(port) in argv


def rotate_log(path: str, keep: int = 3) -> None:
    """backend.log -> backend.log.1 -> ... (each start gets a fresh file; `keep` old ones stay)."""
    for index in range(keep - 1, 0, -1):
        older = f"{path}.{index}"
        if os.path.exists(older):
            os.replace(older, f"{path}.{index + 1}")
    if os.path.exists(path):
        os.replace(path, f"{path}.1")


# The last line of a Python traceback: `ModuleNotFoundError: ...`, `mlflow.exceptions.MlflowException: ...`.
EXCEPTION_LINE = re.compile(r"^([A-Za-z_]\w*\.)*[A-Za-z_]\w*(Error|Exception)(: .*)?$")
# `mlflow models serve` wraps its uvicorn's failure in this one; the cause is the line before it.
WRAPPER_LINE = re.compile(r"^Exception: Command .* returned non zero return code")


def _read_end(path: str, size: int = 64 * 1024) -> List[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()]


def failure_cause(lines: List[str]) -> Optional[str]:
    """The last exception line that is not MLflow's wrapper: the model server's own reason to fail."""
    causes = [line for line in lines if EXCEPTION_LINE.match(line) and not WRAPPER_LINE.match(line)]
    return causes[-1] if causes else None


def log_tail(path: str, lines: int = LOG_TAIL_LINES) -> List[str]:
    """The last lines of a backend log, led by the failure's cause when it scrolled out of them."""
    all_lines = _read_end(path)
    tail = all_lines[-lines:]
    cause = failure_cause(all_lines)
    if cause is not None and cause not in tail:
        tail = [cause, "..."] + tail
    return tail


async def start_backend(
    config: AgentConfig, model_uri: str, port: int, log_path: str, shared_models: Optional[Dict[str, str]] = None
) -> Backend:
    """One `mlflow models serve` of `model_uri`, or (shared_models given) one multi-model worker."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    rotate_log(log_path)
    env = backend_env(config)
    if shared_models is None:
        command = serve_command(config, model_uri, port)
    else:
        command = shared_command(config, port)
        env["MODEL_SERVING_MODELS"] = json.dumps(shared_models)
        agent_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (agent_dir, env.get("PYTHONPATH")) if p)
    with open(log_path, "ab") as log:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return Backend(
        model_uri=model_uri, port=port, pid=process.pid, log_path=log_path, process=process, models=shared_models
    )


def _failed(backend: Backend, message: str) -> BackendFailed:
    cause = failure_cause(_read_end(backend.log_path))
    reason = f"{message}: {cause}" if cause else message
    return BackendFailed(f"{backend.model_uri} on backend port {backend.port}: {reason}", log_tail(backend.log_path))


async def wait_ready(backend: Backend, session: aiohttp.ClientSession, timeout: float) -> None:
    """Polls /ping until it answers 200; fails early when the process exits."""
    deadline = time.monotonic() + timeout
    while True:
        if not backend.running():
            code = backend.process.returncode if backend.process else "unknown"
            raise _failed(backend, f"the model server exited (code {code}) before answering /ping")
        try:
            async with session.get(backend.url("/ping"), timeout=aiohttp.ClientTimeout(total=2)) as resp:
                if resp.status == 200:
                    return
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise _failed(backend, f"/ping did not answer 200 within {timeout:g} s")
        await asyncio.sleep(0.25)


async def verify_scoring(
    backend: Backend, session: aiohttp.ClientSession, sample: Dict[str, Any], name: str = ""
) -> None:
    try:
        async with session.post(
            backend.url(backend.path_for(name, "invocations")),
            data=json.dumps(sample),
            headers={"Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=60),
        ) as resp:
            body = await resp.text()
    except (aiohttp.ClientError, asyncio.TimeoutError) as err:
        raise _failed(backend, f"the scoring call with the sample input failed: {err!r}") from None
    if resp.status != 200:
        raise _failed(backend, f"the scoring call with the sample input answered {resp.status}: {body[:500]}")


def process_exited(pid: int) -> bool:
    """Gone or a zombie: what a process exiting looks like to a non-parent (its cmdline empties earlier)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


async def _wait_exit(backend: Backend, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if backend.process is not None:
            try:
                await asyncio.wait_for(backend.process.wait(), timeout=0.2)
                return True
            except asyncio.TimeoutError:
                continue
        if process_exited(backend.pid):
            return True
        await asyncio.sleep(0.1)
    return False


async def stop_backend(backend: Backend, grace: float = 10.0) -> None:
    """SIGTERM to the backend's process group, SIGKILL after `grace` seconds; returns once it exited."""
    try:
        os.killpg(backend.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    await _wait_exit(backend, grace)
    try:
        os.killpg(backend.pid, signal.SIGKILL)  # workers left behind by the server, if any
    except ProcessLookupError:
        return
    await _wait_exit(backend, 5.0)
