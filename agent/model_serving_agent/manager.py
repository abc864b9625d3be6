"""What the agent serves: each model has a front (its own port and /models/<name>/ on the API port)
and one current backend. Deploying a new version starts it on a spare backend port, checks /ping and
one scoring call, switches the front, then drains and stops the old backend. The state file is
written after every change and read back on start (adoption) before /health answers ok."""

import asyncio
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

import aiohttp
from aiohttp import web

from .backends import (
    Backend,
    BackendFailed,
    backend_env,
    process_serves,
    start_backend,
    stop_backend,
    verify_scoring,
    wait_ready,
)
from .config import AgentConfig
from .ports import port_is_free
from .proxy import forward
from .routing import ChallengerSpec, Picker, choose_backend
from .state import AgentState, BackendRecord, ChallengerRecord, ModelRecord, load_state, save_state

log = logging.getLogger("model_serving_agent")

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ADOPT_PING_TIMEOUT_SECONDS = 10.0
SUPERVISE_INTERVAL_SECONDS = 2.0
REVIVE_RETRY_SECONDS = 30.0


class AgentError(Exception):
    """An API error: HTTP status, message, and the backend's last log lines when a start failed."""

    def __init__(self, status: int, message: str, log_tail: Optional[List[str]] = None):
        super().__init__(message)
        self.status = status
        self.log_tail = log_tail


@dataclass(eq=False)
class ServedModel:
    name: str
    front_port: int
    model_uri: str
    sample_input: Optional[Dict[str, Any]]
    backend: Optional[Backend] = None
    """The champion: every request unless the split or the pin header sends it to the challenger."""
    challenger: Optional[Backend] = None
    challenger_weight: float = 0.0
    challenger_sample: Optional[Dict[str, Any]] = None
    status: str = "starting"
    error: Optional[str] = None
    log_tail: Optional[List[str]] = None
    runner: Optional[web.AppRunner] = None


@dataclass
class Manager:
    config: AgentConfig
    session: aiohttp.ClientSession
    models: Dict[str, ServedModel] = field(default_factory=dict)
    ready: bool = False
    _locks: Dict[str, asyncio.Lock] = field(default_factory=dict)
    _reserved_ports: Set[int] = field(default_factory=set)
    _draining: Set[Backend] = field(default_factory=set)
    _last_revive: Dict[str, float] = field(default_factory=dict)

    # ---- queries -------------------------------------------------------------------------------

    def describe(self, model: ServedModel) -> Dict[str, Any]:
        host = self.config.host if self.config.host not in ("0.0.0.0", "::") else "127.0.0.1"
        def backend_info(backend: Optional[Backend]) -> Optional[Dict[str, Any]]:
            if backend is None:
                return None
            return {"port": backend.port, "pid": backend.pid, "inflight": backend.inflight, "log": backend.log_path}

        challenger = model.challenger
        return {
            "name": model.name,
            "model_uri": model.model_uri,
            "status": model.status,
            "front_port": model.front_port,
            "front_url": f"http://{host}:{model.front_port}/invocations",
            "path_url": f"http://{host}:{self.config.port}/models/{model.name}/invocations",
            "verified_with": model.backend.verified_with if model.backend else None,
            "backend": backend_info(model.backend),
            "challenger": None
            if challenger is None
            else {
                "model_uri": challenger.model_uri,
                "weight": model.challenger_weight,
                "verified_with": challenger.verified_with,
                "backend": backend_info(challenger),
            },
            "error": model.error,
            "log_tail": model.log_tail,
        }

    def health(self) -> Dict[str, Any]:
        if not self.ready:
            return {"status": "starting"}
        failed = {m.name: m.error for m in self.models.values() if m.status != "serving"}
        if failed:
            return {"status": "degraded", "failed": failed}
        return {"status": "ok", "models": len(self.models)}

    def picker(self, name: str) -> Picker:
        """For the proxy: the backend of model `name` for one request (split and pin header)."""
        return lambda headers: choose_backend(self.models.get(name), headers)

    # ---- deploy / undeploy ---------------------------------------------------------------------

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def deploy(
        self,
        name: str,
        model_uri: str,
        sample_input: Optional[Dict[str, Any]],
        front_port: Optional[int],
        challenger: Optional[ChallengerSpec] = None,
    ) -> Dict[str, Any]:
        """Serves `model_uri` as `name` (and a challenger with a share of the requests); a version that
        already runs for this model is reused, a new one is started and verified first. Returns the
        model's status and whether anything changed."""
        if not self.ready:
            raise AgentError(503, "the agent is still bringing back the models it served")
        if challenger is not None and challenger.model_uri == model_uri:
            raise AgentError(400, f"challenger model_uri {model_uri} is the champion's model_uri")
        async with self._lock(name):
            existing = self.models.get(name)
            if existing and front_port is not None and front_port != existing.front_port:
                raise AgentError(
                    409, f"model {name} is served on front port {existing.front_port}, not {front_port}; undeploy it first"
                )
            port = existing.front_port if existing else self._spare_front_port(front_port)
            running = [b for b in (existing.backend, existing.challenger) if b and b.running()] if existing else []
            started: List[Backend] = []
            self._reserved_ports.add(port)  # against a concurrent deploy of another new model
            try:
                champion = await self._reuse_or_start(name, model_uri, sample_input, running, started)
                new_challenger = None
                if challenger is not None:
                    others = [b for b in running if b is not champion]
                    new_challenger = await self._reuse_or_start(
                        name, challenger.model_uri, challenger.sample_input, others, started
                    )
                model = existing or ServedModel(name=name, front_port=port, model_uri=model_uri, sample_input=sample_input)
                if model.runner is None:  # a new model, or one whose adoption failed
                    try:
                        await self._open_front(model)
                    except OSError as err:
                        raise AgentError(409, f"front port {port} for model {name} cannot be bound: {err}") from None
            except BaseException:
                await asyncio.gather(*(stop_backend(b) for b in started))
                raise
            finally:
                self._reserved_ports.discard(port)
            weight = challenger.weight if challenger else 0.0
            changed = (
                existing is None
                or existing.status != "serving"
                or champion is not existing.backend
                or new_challenger is not existing.challenger
                or weight != existing.challenger_weight
            )
            old = [b for b in running if b is not champion and b is not new_challenger]
            if existing and existing.backend and existing.backend not in running and existing.backend is not champion:
                old.append(existing.backend)  # a dead one: stop what may be left of its process group
            self.models[name] = model
            # The switch: requests from here on go to the new backends.
            model.backend, model.model_uri, model.sample_input = champion, model_uri, sample_input
            model.challenger, model.challenger_weight = new_challenger, weight
            model.challenger_sample = challenger.sample_input if challenger else None
            model.status, model.error, model.log_tail = "serving", None, None
            self._persist()
            log.info("model %s serves %s%s", name, model_uri, f" and {challenger.model_uri} at {weight:g}" if challenger else "")
            await asyncio.gather(*(self._drain_and_stop(b) for b in old))
            return {"changed": changed, **self.describe(model)}

    async def _reuse_or_start(
        self,
        name: str,
        model_uri: str,
        sample_input: Optional[Dict[str, Any]],
        running: List[Backend],
        started: List[Backend],
    ) -> Backend:
        for backend in running:
            if backend.model_uri == model_uri:
                if sample_input is not None:  # a new sample checks the running version again
                    try:
                        await verify_scoring(backend, self.session, sample_input)
                    except BackendFailed as err:
                        raise AgentError(422, f"model {name}: {err}", err.log_tail) from None
                    backend.verified_with = "sample_input"
                return backend
        backend = await self._start_verified(name, model_uri, sample_input)
        started.append(backend)
        return backend

    async def undeploy(self, name: str) -> Dict[str, Any]:
        if not self.ready:
            raise AgentError(503, "the agent is still bringing back the models it served")
        async with self._lock(name):
            model = self.models.pop(name, None)
            if model is None:
                raise AgentError(404, f"model {name} is not deployed")
            self._persist()
            if model.runner is not None:
                await model.runner.cleanup()
            await asyncio.gather(*(self._drain_and_stop(b) for b in (model.backend, model.challenger) if b))
            log.info("model %s undeployed", name)
            return {"name": name, "undeployed": True}

    # ---- start, adopt, stop --------------------------------------------------------------------

    async def adopt(self) -> None:
        """Brings back every model of the state file on its front port, reattaching a backend that is
        still running (the agent was restarted, the host was not) or starting it again."""
        state = load_state(self.config.state_file)
        for name, record in state.models.items():
            self.models[name] = ServedModel(
                name=name, front_port=record.front_port, model_uri=record.model_uri, sample_input=record.sample_input
            )
        await asyncio.gather(*(self._adopt_one(self.models[n], state.models[n]) for n in state.models))
        self._stop_orphans()
        self._persist()
        self.ready = True

    async def _adopt_one(self, model: ServedModel, record: ModelRecord) -> None:
        try:
            model.backend = await self._adopt_backend(model.name, record.model_uri, record.sample_input, record.backend)
            if record.challenger is not None:
                c = record.challenger
                model.challenger = await self._adopt_backend(model.name, c.model_uri, c.sample_input, c.backend)
                model.challenger_weight, model.challenger_sample = c.weight, c.sample_input
            await self._open_front(model)
            model.status = "serving"
        except AgentError as err:
            model.status, model.error, model.log_tail = "failed", str(err), err.log_tail
        except OSError as err:
            model.status, model.error = "failed", f"front port {model.front_port} cannot be bound: {err}"
        if model.status == "failed":
            log.error("model %s could not be brought back: %s", model.name, model.error)

    async def _adopt_backend(
        self, name: str, model_uri: str, sample_input: Optional[Dict[str, Any]], record: Optional[BackendRecord]
    ) -> Backend:
        """The recorded backend when it still runs and answers /ping; else the same version started again."""
        if record and process_serves(record.pid, record.port):
            candidate = Backend(model_uri=model_uri, port=record.port, pid=record.pid, log_path=record.log_path)
            try:
                await wait_ready(candidate, self.session, ADOPT_PING_TIMEOUT_SECONDS)
                candidate.verified_with = "adopted"
                log.info("model %s: adopted running backend pid %d (%s)", name, candidate.pid, model_uri)
                return candidate
            except BackendFailed:
                await stop_backend(candidate)
        return await self._start_verified(name, model_uri, sample_input)

    def _stop_orphans(self) -> None:
        """Backends in our port range that no model owns (an agent killed mid-deploy left them)."""
        owned = {b.pid for m in self.models.values() for b in (m.backend, m.challenger) if b}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in owned:
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
                if "models" in argv and "serve" in argv and "--port" in argv:
                    port = int(argv[argv.index("--port") + 1])
                    if port in self.config.backend_ports and os.getpgid(int(entry)) == int(entry):
                        log.warning("stopping orphan backend pid %s on port %d", entry, port)
                        os.killpg(int(entry), 15)
            except (OSError, ValueError, IndexError):
                continue

    async def _start_verified(
        self, name: str, model_uri: str, sample_input: Optional[Dict[str, Any]]
    ) -> Backend:
        port = self._spare_backend_port()
        self._reserved_ports.add(port)
        try:
            log_path = os.path.join(self.config.log_dir, "backends", f"{name}-{port}.log")
            example_task = None if sample_input is not None else asyncio.create_task(self._serving_example(model_uri))
            backend = await start_backend(self.config, model_uri, port, log_path)
            try:
                await wait_ready(backend, self.session, self.config.backend_start_timeout_seconds)
                sample = sample_input if example_task is None else await example_task
                if sample is not None:
                    await verify_scoring(backend, self.session, sample)
            except BaseException as err:
                await stop_backend(backend)
                if isinstance(err, BackendFailed):
                    raise AgentError(422, f"model {name}: {err}", err.log_tail) from None
                raise
            backend.verified_with = "sample_input" if sample is not None else "ping"
            return backend
        finally:
            self._reserved_ports.discard(port)

    async def _serving_example(self, model_uri: str) -> Optional[Dict[str, Any]]:
        """The model's own serving_input_example.json, fetched in a subprocess (MLflow stays out of the agent)."""
        env = backend_env(self.config)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env.get("PYTHONPATH")) if p
        )
        proc = await asyncio.create_subprocess_exec(
            self.config.python or sys.executable,
            "-m",
            "model_serving_agent.serving_example",
            model_uri,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
            lines = out.decode().strip().splitlines()
            value = json.loads(lines[-1]) if lines else None
        except (asyncio.TimeoutError, ValueError):
            proc.kill()
            return None
        return value if isinstance(value, dict) else None

    async def _open_front(self, model: ServedModel) -> None:
        name = model.name

        async def handle(request: web.Request) -> web.StreamResponse:
            return await forward(self.session, self.picker(name), request, request.match_info["path"])

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.config.host, model.front_port, reuse_address=True).start()
        except OSError:
            await runner.cleanup()
            raise
        model.runner = runner

    async def _drain_and_stop(self, backend: Backend) -> None:
        self._draining.add(backend)
        try:
            if backend.inflight:
                try:
                    await asyncio.wait_for(backend.idle.wait(), self.config.drain_timeout_seconds)
                except asyncio.TimeoutError:
                    log.warning("backend port %d still had %d requests after the drain timeout", backend.port, backend.inflight)
            await stop_backend(backend)
        finally:
            self._draining.discard(backend)

    # ---- supervision ---------------------------------------------------------------------------

    async def supervise(self, interval: float = SUPERVISE_INTERVAL_SECONDS) -> None:
        """Restarts a backend whose process died (same version, same front, verified as on deploy);
        /health says degraded until it serves again. A failed restart is retried every 30 s."""
        while True:
            await asyncio.sleep(interval)
            for name, model in list(self.models.items()):
                dead = [b for b in (model.backend, model.challenger) if b is not None and not b.running()]
                recent = time.monotonic() - self._last_revive.get(name, -REVIVE_RETRY_SECONDS) < REVIVE_RETRY_SECONDS
                if dead and not self._lock(name).locked() and not recent:
                    await self._revive(name)

    async def _revive(self, name: str) -> None:
        async with self._lock(name):
            model = self.models.get(name)
            if model is None:
                return
            self._last_revive[name] = time.monotonic()
            revived = False
            for role in ("backend", "challenger"):
                dead: Optional[Backend] = getattr(model, role)
                if dead is None or dead.running():
                    continue
                sample = model.sample_input if role == "backend" else model.challenger_sample
                log.error("model %s: %s backend pid %d died; restarting %s", name, role, dead.pid, dead.model_uri)
                model.status = "restarting"
                try:
                    fresh = await self._start_verified(name, dead.model_uri, sample)
                except AgentError as err:
                    model.status, model.error, model.log_tail = "failed", str(err), err.log_tail
                    log.error("model %s: restart failed: %s", name, err)
                    return
                setattr(model, role, fresh)
                revived = True
                await stop_backend(dead, grace=1.0)  # what is left of its process group
            if revived:
                model.status, model.error, model.log_tail = "serving", None, None
                self._persist()

    async def shutdown(self) -> None:
        for model in self.models.values():
            if model.runner is not None:
                await model.runner.cleanup()
        if self.config.stop_backends_on_exit:
            backends = [b for m in self.models.values() for b in (m.backend, m.challenger) if b]
            await asyncio.gather(*(stop_backend(b) for b in backends))

    # ---- ports and state -----------------------------------------------------------------------

    def _spare_backend_port(self) -> int:
        taken = self._reserved_ports | {b.port for b in self._draining}
        taken |= {b.port for m in self.models.values() for b in (m.backend, m.challenger) if b}
        for port in self.config.backend_ports.ports():
            if port not in taken and port_is_free("127.0.0.1", port):
                return port
        raise AgentError(503, f"no spare backend port in {self.config.backend_ports.first}-{self.config.backend_ports.last}")

    def _spare_front_port(self, requested: Optional[int]) -> int:
        taken = self._reserved_ports | {m.front_port for m in self.models.values()}
        if requested is not None:
            if requested not in self.config.front_ports:
                raise AgentError(
                    400,
                    f"port {requested} is outside front_ports {self.config.front_ports.first}-{self.config.front_ports.last}",
                )
            if requested in taken or not port_is_free(self.config.host, requested):
                raise AgentError(409, f"front port {requested} is already in use")
            return requested
        for port in self.config.front_ports.ports():
            if port not in taken and port_is_free(self.config.host, port):
                return port
        raise AgentError(503, f"no spare front port in {self.config.front_ports.first}-{self.config.front_ports.last}")

    def _persist(self) -> None:
        state = AgentState(
            models={
                m.name: ModelRecord(
                    model_uri=m.model_uri,
                    front_port=m.front_port,
                    sample_input=m.sample_input,
                    backend=backend_record(m.backend),
                    challenger=None
                    if m.challenger is None
                    else ChallengerRecord(
                        model_uri=m.challenger.model_uri,
                        weight=m.challenger_weight,
                        sample_input=m.challenger_sample,
                        backend=backend_record(m.challenger),
                    ),
                )
                for m in self.models.values()
            }
        )
        save_state(self.config.state_file, state)


def backend_record(backend: Optional[Backend]) -> Optional[BackendRecord]:
    return None if backend is None else BackendRecord(port=backend.port, pid=backend.pid, log_path=backend.log_path)
