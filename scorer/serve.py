"""Scorer entrypoint: serve the MLflow model baked into this image (SageMaker, Azure ML, Docker, Kubernetes).

Usage:
  serve.py serve     listen on $HOST:$PORT (0.0.0.0:8080): GET /ping (and /health), POST /invocations
  serve.py ping      exit 0 when the local server answers GET /ping with 200 (container health check)
  serve.py check     load the model once and exit (the Dockerfile runs this at build time)
  serve.py prepare MODEL_DIR OUT_DIR [STACK_REQUIREMENTS]
                     build time, before anything is installed (standard library only): checks that this
                     Python satisfies the model's python_env.yaml and writes OUT_DIR/build-requirements.txt,
                     OUT_DIR/model-requirements.txt (the model's requirements without its mlflow pin) and
                     OUT_DIR/stack-requirements.txt (the image's pins without the packages the model names)

Scoring is MLflow's own server (mlflow.pyfunc.scoring_server): JSON with dataframe_split,
dataframe_records, instances or inputs; text/csv; a malformed body gets 400, an unsupported content type
415, a scoring call over the timeout 504. What this file adds around it: a POST /invocations without a
Content-Type header gets 415 (MLflow's handler would fail with 500 on it), and a body over the limit 413.

Environment (every target can set these; defaults are the container's):
  MODEL_PATH                 /opt/ml/model
  HOST, PORT                 0.0.0.0, 8080 (SageMaker's and Azure ML's container contract)
  SCORER_WORKERS             CPU count the container may use (cgroup quota / cpuset), at least 1;
                             WORKERS (the image's earlier name) is read when SCORER_WORKERS is unset
  SCORER_KEEP_ALIVE_SECONDS  300: above the idle timeouts of the load balancers in front (AWS ALB 60 s,
                             Azure Load Balancer 240 s), so the server never closes a connection the
                             balancer still reuses (that race shows as 502s)
  SCORER_MAX_BODY_BYTES      6291456 (6 MiB, SageMaker's real-time payload limit); larger bodies get 413
  SCORER_TIMEOUT_SECONDS     55: below SageMaker's 60 s invocation limit, so a slow call ends as our
                             504 and not as the platform's; MLflow's own name for it,
                             MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT, is read when this is unset
Where two names are given the first one set wins.
Nothing is installed at start: the image's Python environment must already satisfy the model.
"""

import math
import os
import re
import sys
from dataclasses import dataclass

DEFAULT_MODEL_PATH = "/opt/ml/model"
# Requirement names (PEP 503 normalized) the image provides itself: the model's pins of them are dropped.
SERVING_STACK = {"mlflow", "mlflow-skinny"}


def model_path() -> str:
    return os.environ.get("MODEL_PATH", DEFAULT_MODEL_PATH)


def available_cpus() -> int:
    """CPUs this process may use: its affinity set, capped by a cgroup CPU quota (v2 or v1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_cpu_quota():
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:  # cgroup v2: "<quota> <period>" or "max <period>"
            quota, period = f.read().split()
            return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as q, open(
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us"
        ) as p:
            quota, period = int(q.read()), int(p.read())
            return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Settings:
    """The server's settings, read once from the environment; a bad value names its variable."""

    model_path: str
    host: str
    port: int
    workers: int
    keep_alive_seconds: int
    max_body_bytes: int
    timeout_seconds: int

    @staticmethod
    def from_env(env=os.environ) -> "Settings":
        def integer(name: str, default: int, minimum: int, fallback: str = "") -> int:
            raw = env.get(name)
            if (raw is None or raw == "") and fallback:
                name, raw = fallback, env.get(fallback)
            if raw is None or raw == "":
                return default
            if not re.fullmatch(r"[0-9]+", raw.strip()) or int(raw) < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {raw!r}")
            return int(raw)

        return Settings(
            model_path=env.get("MODEL_PATH", DEFAULT_MODEL_PATH),
            host=env.get("HOST", "0.0.0.0"),
            port=integer("PORT", 8080, 1),
            workers=integer("SCORER_WORKERS", available_cpus(), 1, fallback="WORKERS"),
            keep_alive_seconds=integer("SCORER_KEEP_ALIVE_SECONDS", 300, 1),
            max_body_bytes=integer("SCORER_MAX_BODY_BYTES", 6 * 1024 * 1024, 1),
            timeout_seconds=integer(
                "SCORER_TIMEOUT_SECONDS", 55, 1, fallback="MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"
            ),
        )


async def _reply(send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequireContentType:
    """ASGI middleware: POST /invocations without a Content-Type header -> 415."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/invocations"
            and not any(name == b"content-type" for name, _ in scope["headers"])
        ):
            await _reply(send, 415, "Missing Content-Type: use application/json or text/csv")
            return
        await self.app(scope, receive, send)


class LimitBody:
    """ASGI middleware: a request body over max_bytes -> 413, by Content-Length or counted as it arrives.

    A body without Content-Length (chunked) is read here up to the limit and replayed to the app, so the
    app never starts on a body that will turn out too large.
    """

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"Request body over the limit of {self.max_bytes} bytes (SCORER_MAX_BODY_BYTES)"
        headers = dict(scope["headers"])
        if b"content-length" in headers:
            try:
                declared = int(headers[b"content-length"])
            except ValueError:
                await _reply(send, 400, "Invalid Content-Length")
                return
            if declared > self.max_bytes:
                await _reply(send, 413, too_large)
                return
            await self.app(scope, receive, send)
            return
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await _reply(send, 413, too_large)
                return
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def load(path: str):
    from mlflow.pyfunc import scoring_server

    return scoring_server.load_model_with_mlflow_config(path)


def create_app():
    """uvicorn factory: each worker loads the model and wraps MLflow's scoring app."""
    settings = Settings.from_env()
    # MLflow's app reads its timeout when it is built.
    os.environ["MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"] = str(settings.timeout_seconds)
    from mlflow.pyfunc import scoring_server

    app = scoring_server.init(load(settings.model_path))
    return LimitBody(RequireContentType(app), settings.max_body_bytes)


def _requirement_name(line: str):
    """The normalized project name of a requirements.txt line, or None for options, comments, blanks."""
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("-"):
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else None


def model_requirements(text: str) -> list:
    """The model's requirements.txt lines without the serving stack's own packages (mlflow's pin)."""
    return [line for line in text.splitlines() if _requirement_name(line) not in SERVING_STACK]


def python_env(text: str) -> dict:
    """The `python:` and `build_dependencies:` of MLflow's python_env.yaml (a fixed, simple layout)."""
    python, build, section = None, [], None
    for raw in text.splitlines():
        line = raw.rstrip()
        top = re.match(r"^([a-z_]+):\s*(.*)$", line)
        if top:
            section = top.group(1)
            if section == "python":
                python = top.group(2).strip().strip("'\"")
            continue
        item = re.match(r"^\s*-\s*(.+)$", line)
        if item and section == "build_dependencies":
            build.append(item.group(1).strip().strip("'\""))
    return {"python": python, "build_dependencies": build}


def python_mismatch(required, have=sys.version_info) -> str:
    """Why this Python cannot run a model that needs `required` (e.g. "3.11.7"), or "" when it can."""
    if not required:
        return ""
    parts = required.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return f"python_env.yaml names python {required!r}, not a version like 3.11.7"
    if (int(parts[0]), int(parts[1])) == (have[0], have[1]):
        return ""
    return (
        f"the model needs Python {parts[0]}.{parts[1]} (python_env.yaml: python: {required}) but the base "
        f"image has Python {have[0]}.{have[1]}.{have[2]}: build with --build-arg BASE_IMAGE=<an image "
        f"with python{parts[0]}.{parts[1]} and its venv module>, e.g. python:{parts[0]}.{parts[1]}-slim-bookworm"
    )


def stack_requirements(stack: str, model: list) -> list:
    """The image's own pinned lines, without the packages the model's requirements name (its pins win)."""
    named = {_requirement_name(line) for line in model} - {None}
    return [line for line in stack.splitlines() if _requirement_name(line) not in named]


def prepare(model_dir: str, out_dir: str, stack_file: str = "") -> int:
    env_file = os.path.join(model_dir, "python_env.yaml")
    env = {"python": None, "build_dependencies": []}
    if os.path.isfile(env_file):
        with open(env_file) as f:
            env = python_env(f.read())
    problem = python_mismatch(env["python"])
    if problem:
        print(f"scorer image: {problem}", file=sys.stderr)
        return 1
    requirements = []
    req_file = os.path.join(model_dir, "requirements.txt")
    if os.path.isfile(req_file):
        with open(req_file) as f:
            requirements = model_requirements(f.read())
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "build-requirements.txt"), "w") as f:
        f.write("".join(f"{d}\n" for d in env["build_dependencies"]))
    with open(os.path.join(out_dir, "model-requirements.txt"), "w") as f:
        f.write("".join(f"{r}\n" for r in requirements))
    if stack_file:
        with open(stack_file) as f:
            stack = stack_requirements(f.read(), requirements)
        with open(os.path.join(out_dir, "stack-requirements.txt"), "w") as f:
            f.write("".join(f"{r}\n" for r in stack))
    print(f"scorer image: Python {sys.version.split()[0]} ok for python {env['python'] or '(any)'}")
    return 0


def ping(settings: Settings) -> int:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.port}/ping", timeout=5) as res:
            return 0 if res.status == 200 else 1
    except Exception as err:  # noqa: BLE001 - any failure is "unhealthy"
        print(f"ping failed: {err}", file=sys.stderr)
        return 1


def main(argv) -> int:
    command = argv[1] if len(argv) > 1 else "serve"
    if command == "prepare":
        if len(argv) not in (4, 5):
            print("usage: serve.py prepare MODEL_DIR OUT_DIR [STACK_REQUIREMENTS]", file=sys.stderr)
            return 2
        return prepare(argv[2], argv[3], argv[4] if len(argv) > 4 else "")
    if command not in ("serve", "check", "ping"):
        print(f"unknown command {command!r}: use serve, ping, check or prepare", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except ValueError as err:
        print(f"scorer: {err}", file=sys.stderr)
        return 2
    if command == "ping":
        return ping(settings)
    if not os.path.isfile(os.path.join(settings.model_path, "MLmodel")):
        print(
            f"no MLflow model at {settings.model_path} (MLmodel missing); set MODEL_PATH",
            file=sys.stderr,
        )
        return 1
    if command == "check":
        model = load(settings.model_path)
        print(f"model at {settings.model_path} loads: {list(model.metadata.flavors.keys())}")
        return 0
    import uvicorn

    print(
        f"scorer: serving {settings.model_path} on {settings.host}:{settings.port} with "
        f"{settings.workers} workers, keep-alive {settings.keep_alive_seconds}s, body limit "
        f"{settings.max_body_bytes} bytes, timeout {settings.timeout_seconds}s",
        flush=True,
    )
    uvicorn.run(
        "serve:create_app",
        factory=True,
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_keep_alive=settings.keep_alive_seconds,
        log_level="info",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
