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
# Shared-backend deploys that arrive close together (the engine runs a stack's creates in parallel)
# start ONE worker with the whole set: the gatherer waits until no deploy arrived for GATHER seconds
# (at most GATHER_MAX after the first); deploys that arrive while a worker starts join the next one.
SHARED_GATHER_SECONDS = 0.5
SHARED_GATHER_MAX_SECONDS = 3.0


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


@dataclass(eq=False)
class SharedJoin:
    """One pending deploy onto the shared worker; `done` gets its answer (or its AgentError)."""

    name: str
    model_uri: str
    sample_input: Optional[Dict[str, Any]]
    front_port: Optional[int]
    existing: Optional[ServedModel]
    done: "asyncio.Future[Dict[str, Any]]"
    port: int = 0


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
    _shared_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _shared_pending: List[SharedJoin] = field(default_factory=list)
    _shared_arrival: float = 0.0
    _shared_gatherer: Optional["asyncio.Task[None]"] = None

    # ---- queries -------------------------------------------------------------------------------

    def describe(self, model: ServedModel) -> Dict[str, Any]:
        host = self.config.host if self.config.host not in ("0.0.0.0", "::") else "127.0.0.1"
        def backend_info(backend: Optional[Backend]) -> Optional[Dict[str, Any]]:
            if backend is None:
                return None
            return {
                "port": backend.port,
                "pid": backend.pid,
                "inflight": backend.inflight,
                "log": backend.log_path,
                "shared": backend.models is not None,
            }

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
        shared: bool = False,
    ) -> Dict[str, Any]:
        """Serves `model_uri` as `name` (and a challenger with a share of the requests); a version that
        already runs for this model is reused, a new one is started and verified first. Returns the
        model's status and whether anything changed."""
        if not self.ready:
            raise AgentError(503, "the agent is still bringing back the models it served")
        if challenger is not None and challenger.model_uri == model_uri:
            raise AgentError(400, f"challenger model_uri {model_uri} is the champion's model_uri")
        if challenger is not None and shared:
            raise AgentError(400, "a model on the shared backend cannot have a challenger")
        async with self._lock(name):
            existing = self.models.get(name)
            if existing and front_port is not None and front_port != existing.front_port:
                raise AgentError(
                    409, f"model {name} is served on front port {existing.front_port}, not {front_port}; undeploy it first"
                )
            if shared:
                return await self._deploy_shared(name, model_uri, sample_input, front_port, existing)
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

    def _shared_members(self, backend: Optional[Backend] = None) -> Dict[str, str]:
        """name -> URI of the models on a shared backend (any shared one when `backend` is None)."""
        return {
            n: m.model_uri
            for n, m in self.models.items()
            if m.backend is not None and m.backend.models is not None and (backend is None or m.backend is backend)
        }

    async def _deploy_shared(
        self,
        name: str,
        model_uri: str,
        sample_input: Optional[Dict[str, Any]],
        front_port: Optional[int],
        existing: Optional[ServedModel],
    ) -> Dict[str, Any]:
        """The model joins (or changes its version in) the one multi-model worker: a new worker with
        the whole new set starts and is verified, every member's front switches to it at once, then
        the old worker drains and stops, as for a dedicated backend. Joins that arrive together are
        gathered into one such start (SHARED_GATHER_SECONDS)."""
        current = existing.backend if existing else None
        if (
            existing
            and current is not None
            and current.models is not None
            and current.running()
            and current.models.get(name) == model_uri
            and existing.status == "serving"
            and sample_input in (None, existing.sample_input)
        ):
            return {"changed": False, **self.describe(existing)}
        join = SharedJoin(name, model_uri, sample_input, front_port, existing, asyncio.get_running_loop().create_future())
        self._shared_pending.append(join)
        self._shared_arrival = time.monotonic()
        if self._shared_gatherer is None:
            self._shared_gatherer = asyncio.create_task(self._gather_shared())
        return await asyncio.shield(join.done)

    async def _gather_shared(self) -> None:
        """Takes the pending joins in batches, one worker start per batch, until none is left."""
        try:
            while self._shared_pending:
                first = time.monotonic()
                while True:
                    now = time.monotonic()
                    quiet = now - self._shared_arrival
                    if quiet >= SHARED_GATHER_SECONDS or now - first >= SHARED_GATHER_MAX_SECONDS:
                        break
                    await asyncio.sleep(max(0.01, SHARED_GATHER_SECONDS - quiet))
                async with self._shared_lock:
                    batch, self._shared_pending = self._shared_pending, []
                    try:
                        await self._apply_shared(batch)
                    finally:  # no deploy may wait forever, whatever went wrong
                        for join in batch:
                            settle(join, AgentError(500, f"model {join.name}: the shared deploy ended without an answer"))
        finally:
            self._shared_gatherer = None

    async def _apply_shared(self, batch: List[SharedJoin]) -> None:
        """One worker for the whole batch; when it fails with several joins in it, each join is tried
        alone, so a broken version gets its own 422 and the others still serve."""
        try:
            await self._join_shared(batch)
        except Exception as err:  # noqa: BLE001 - every join must get an answer
            if len(batch) == 1:
                settle(batch[0], err)
                return
            log.warning("shared backend: %d models together failed (%s); starting them one by one", len(batch), err)
            for join in batch:
                if join.done.done():
                    continue
                try:
                    await self._join_shared([join])
                except Exception as one:  # noqa: BLE001
                    settle(join, one)

    async def _join_shared(self, batch: List[SharedJoin]) -> None:
        joins: List[SharedJoin] = []
        try:
            for join in batch:
                try:
                    join.port = join.existing.front_port if join.existing else self._spare_front_port(join.front_port)
                except AgentError as err:
                    settle(join, err)
                    continue
                self._reserved_ports.add(join.port)
                joins.append(join)
            if not joins:
                return
            members = self._shared_members()
            members.update({j.name: j.model_uri for j in joins})
            worker = await self._start_verified_shared(members, {j.name: j for j in joins})
            joined: List[SharedJoin] = []
            for join in joins:
                model = join.existing or ServedModel(
                    name=join.name, front_port=join.port, model_uri=join.model_uri, sample_input=join.sample_input
                )
                if model.runner is None:
                    try:
                        await self._open_front(model)
                    except OSError as err:
                        settle(join, AgentError(409, f"front port {join.port} for model {join.name} cannot be bound: {err}"))
                        continue
                self.models[join.name] = model
                joined.append(join)
            if not joined:
                await stop_backend(worker)
                return
        finally:
            for join in joins:
                self._reserved_ports.discard(join.port)
        old: List[Backend] = []
        for backend in [m.backend for m in self.models.values() if m.backend and m.backend.models is not None] + [
            b for j in joined if j.existing for b in (j.existing.backend, j.existing.challenger)
        ]:
            if backend is not None and backend is not worker and not any(backend is b for b in old):
                old.append(backend)
        for member in self._shared_members() | {j.name: j.model_uri for j in joined}:
            self.models[member].backend = worker  # the switch, for every model of the worker at once
        for join in joined:
            model = self.models[join.name]
            model.model_uri, model.sample_input = join.model_uri, join.sample_input
            model.challenger, model.challenger_weight, model.challenger_sample = None, 0.0, None
            model.status, model.error, model.log_tail = "serving", None, None
        self._persist()
        log.info("shared backend port %d now holds %s", worker.port, worker.models)
        await asyncio.gather(*(self._drain_and_stop(b) for b in old))
        for join in joined:
            settle(join, {"changed": True, **self.describe(self.models[join.name])})

    async def _start_verified_shared(self, members: Dict[str, str], changed: Dict[str, SharedJoin]) -> Backend:
        """One multi-model worker with `members`, verified: /ping (every model loaded), then each changed
        model's sample (its own serving example when the deploy gave none; all fetched in one subprocess)."""
        port = self._spare_backend_port()
        self._reserved_ports.add(port)
        try:
            log_path = os.path.join(self.config.log_dir, "backends", f"shared-{port}.log")
            unknown = [j.model_uri for j in changed.values() if j.sample_input is None]
            examples_task = asyncio.create_task(self._serving_examples(unknown)) if unknown else None
            uris = ", ".join(j.model_uri for j in changed.values())
            backend = await start_backend(self.config, uris, port, log_path, members)
            label = ", ".join(changed)
            try:
                await wait_ready(backend, self.session, self.config.backend_start_timeout_seconds)
                examples = await examples_task if examples_task is not None else {}
                scored = 0
                for name, join in changed.items():
                    sample = join.sample_input if join.sample_input is not None else examples.get(join.model_uri)
                    if sample is not None:
                        await verify_scoring(backend, self.session, sample, name)
                        scored += 1
            except BaseException as err:
                if examples_task is not None:
                    examples_task.cancel()
                await stop_backend(backend)
                if isinstance(err, BackendFailed):
                    raise AgentError(422, f"model {label}: {err}", err.log_tail) from None
                raise
            backend.verified_with = "sample_input" if scored == len(changed) else "ping"
            return backend
        finally:
            self._reserved_ports.discard(port)

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
            backends = [b for b in (model.backend, model.challenger) if b]
            if model.backend is not None and model.backend.models is not None and self._shared_members(model.backend):
                # Other models still use this shared worker; it keeps the model loaded until its next change.
                backends = []
            await asyncio.gather(*(self._drain_and_stop(b) for b in backends))
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
        shared = [n for n, r in state.models.items() if r.backend is not None and r.backend.models is not None]
        dedicated = [n for n in state.models if n not in shared]
        await asyncio.gather(
            self._adopt_shared(shared, state), *(self._adopt_one(self.models[n], state.models[n]) for n in dedicated)
        )
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

    async def _adopt_shared(self, names: List[str], state: AgentState) -> None:
        if not names:
            return
        members = {n: state.models[n].model_uri for n in names}
        record = state.models[names[0]].backend
        try:
            worker = await self._adopt_backend(
                names[0], members[names[0]], state.models[names[0]].sample_input, record, shared_models=members
            )
            for n in names:
                self.models[n].backend = worker
                await self._open_front(self.models[n])
                self.models[n].status = "serving"
        except (AgentError, OSError) as err:
            for n in names:
                if self.models[n].status != "serving":
                    self.models[n].status, self.models[n].error = "failed", str(err)
                    self.models[n].log_tail = err.log_tail if isinstance(err, AgentError) else None

    async def _adopt_backend(
        self,
        name: str,
        model_uri: str,
        sample_input: Optional[Dict[str, Any]],
        record: Optional[BackendRecord],
        shared_models: Optional[Dict[str, str]] = None,
    ) -> Backend:
        """The recorded backend when it still runs and answers /ping; else the same version started again."""
        if record and process_serves(record.pid, record.port):
            candidate = Backend(
                model_uri=model_uri, port=record.port, pid=record.pid, log_path=record.log_path, models=record.models
            )
            try:
                await wait_ready(candidate, self.session, ADOPT_PING_TIMEOUT_SECONDS)
                candidate.verified_with = "adopted"
                log.info("model %s: adopted running backend pid %d (%s)", name, candidate.pid, model_uri)
                return candidate
            except BackendFailed:
                await stop_backend(candidate)
        return await self._start_verified(name, model_uri, sample_input, shared_models=shared_models)

    def _stop_orphans(self) -> None:
        """Backends in our port range that no model owns (an agent killed mid-deploy left them)."""
        owned = {b.pid for m in self.models.values() for b in (m.backend, m.challenger) if b}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in owned:
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
                kind = ("models" in argv and "serve" in argv) or "model_serving_agent.multi_worker" in argv
                if kind and "--port" in argv:
                    port = int(argv[argv.index("--port") + 1])
                    if port in self.config.backend_ports and os.getpgid(int(entry)) == int(entry):
                        log.warning("stopping orphan backend pid %s on port %d", entry, port)
                        os.killpg(int(entry), 15)
            except (OSError, ValueError, IndexError):
                continue

    async def _start_verified(
        self,
        name: str,
        model_uri: str,
        sample_input: Optional[Dict[str, Any]],
        shared_models: Optional[Dict[str, str]] = None,
    ) -> Backend:
        port = self._spare_backend_port()
        self._reserved_ports.add(port)
        try:
            label = "shared" if shared_models is not None else name
            log_path = os.path.join(self.config.log_dir, "backends", f"{label}-{port}.log")
            example_task = None if sample_input is not None else asyncio.create_task(self._serving_example(model_uri))
            backend = await start_backend(self.config, model_uri, port, log_path, shared_models)
            try:
                await wait_ready(backend, self.session, self.config.backend_start_timeout_seconds)
                sample = sample_input if example_task is None else await example_task
                if sample is not None:
                    await verify_scoring(backend, self.session, sample, name)
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
        return (await self._serving_examples([model_uri])).get(model_uri)

    async def _serving_examples(self, model_uris: List[str]) -> Dict[str, Optional[Dict[str, Any]]]:
        """The models' own serving_input_example.json, fetched in ONE subprocess (MLflow stays out of
        the agent, and a batch of models pays for one MLflow import, not one each)."""
        env = backend_env(self.config)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env.get("PYTHONPATH")) if p
        )
        proc = await asyncio.create_subprocess_exec(
            self.config.python or sys.executable,
            "-m",
            "model_serving_agent.serving_example",
            *model_uris,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
            lines = out.decode().strip().splitlines()
            values = [json.loads(line) for line in lines[-len(model_uris) :]] if len(lines) >= len(model_uris) else []
        except (asyncio.TimeoutError, ValueError):
            proc.kill()
            return {}
        except asyncio.CancelledError:
            proc.kill()
            raise
        return {uri: v for uri, v in zip(model_uris, values) if isinstance(v, dict)}

    async def _open_front(self, model: ServedModel) -> None:
        name = model.name

        async def handle(request: web.Request) -> web.StreamResponse:
            return await forward(self.session, self.picker(name), request, request.match_info["path"], name)

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
                if dead and dead[0].models is not None and not self._shared_lock.locked() and not recent:
                    await self._revive_shared(name, dead[0])
                elif dead and not self._lock(name).locked() and not recent:
                    await self._revive(name)

    async def _revive_shared(self, name: str, dead: Backend) -> None:
        async with self._shared_lock:
            members = self._shared_members(dead)
            self._last_revive.update({n: time.monotonic() for n in members})
            if not members or dead.running():
                return
            log.error("shared backend pid %d died; restarting it with %s", dead.pid, members)
            for n in members:
                self.models[n].status = "restarting"
            try:
                fresh = await self._start_verified(name, members[name], self.models[name].sample_input, members)
            except AgentError as err:
                for n in members:
                    self.models[n].status, self.models[n].error, self.models[n].log_tail = "failed", str(err), err.log_tail
                return
            for n in members:
                self.models[n].backend, self.models[n].status, self.models[n].error = fresh, "serving", None
            await stop_backend(dead, grace=1.0)
            self._persist()

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
            backends = {id(b): b for m in self.models.values() for b in (m.backend, m.challenger) if b}
            await asyncio.gather(*(stop_backend(b) for b in backends.values()))

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


def settle(join: SharedJoin, outcome: Any) -> None:
    """Answers one pending shared join: a status dict, or the exception its deploy raises."""
    if join.done.done():
        return
    if isinstance(outcome, BaseException):
        join.done.set_exception(outcome)
    else:
        join.done.set_result(outcome)


def backend_record(backend: Optional[Backend]) -> Optional[BackendRecord]:
    if backend is None:
        return None
    return BackendRecord(port=backend.port, pid=backend.pid, log_path=backend.log_path, models=backend.models)
