"""Workflows and their executions: declared by id, persisted beside the agent's state file
(workflows.json, replaced atomically), run in a bounded pool (config workflow_runs at once, and a
workflow's own max_concurrent_runs, default 1; the rest wait as queued). Each run is a scoring
subprocess of the serving python (score.py); its record is saved at every status change, so after
an agent crash a queued or running run is reported "failed" with an "interrupted" error and its
orphaned scoring process is stopped, never silently lost. A finished run mails its emailOnSuccess or
emailOnFailure addresses through config smtp (mail.py), or its record says why nothing was sent; the
guide's sparkConfig and libJars are recorded and the record says they were ignored."""

import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

from ..config import AgentConfig
from .mail import compose, recipients, send
from .score import SCORE_MODULE
from .spec import WorkflowSpec, run_spec
from .stores import is_remote, remove_quietly

log = logging.getLogger("model_serving_agent")

AGENT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STORE_VERSION = 1
KEEP_EXECUTIONS = 500
ACTIVE = ("queued", "running")
STOP_GRACE_SECONDS = 5.0
IGNORED = {
    "sparkConfig": "ignored: this agent has no Spark runtime; the run scores pandas batches in one process (batch size: --batch-size)",
    "libJars": "ignored: this agent runs no JVM; the model is loaded with mlflow.pyfunc",
}


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_atomic(path: str, body: Dict[str, Any]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".workflows-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def scoring_pid_alive(pid: int, run_dir: str) -> bool:
    """The pid still runs this run's scoring module (not a recycled pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return False
    return SCORE_MODULE in argv and run_dir in argv


async def stop_group(pid: int, run_dir: str) -> None:
    """SIGTERM to the scoring process group, SIGKILL after a grace period."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 2.0)):
        if not scoring_pid_alive(pid, run_dir):
            return
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and scoring_pid_alive(pid, run_dir):
            await asyncio.sleep(0.1)


class WorkflowError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class WorkflowService:
    def __init__(self, config: AgentConfig):
        self.config = config
        self.path = os.path.join(os.path.dirname(os.path.abspath(config.state_file)), "workflows.json")
        self.runs_dir = os.path.join(config.log_dir, "workflow-runs")
        self.workflows: Dict[str, WorkflowSpec] = {}
        self.executions: Dict[str, Dict[str, Any]] = {}
        self._pool = asyncio.Semaphore(config.workflow_runs)
        self._per_workflow: Dict[str, Tuple[int, asyncio.Semaphore]] = {}
        self._tasks: Dict[str, "asyncio.Task[None]"] = {}
        self._mail_tasks: "set[asyncio.Task[None]]" = set()

    # -- persistence and recovery ------------------------------------------------------------
    def _save(self) -> None:
        finished = [e for e in self.executions.values() if e["status"] not in ACTIVE]
        for old in sorted(finished, key=lambda e: e["submitted_at"])[: max(0, len(self.executions) - KEEP_EXECUTIONS)]:
            del self.executions[old["id"]]
            shutil.rmtree(old["run_dir"], ignore_errors=True)
        write_atomic(
            self.path,
            {
                "version": STORE_VERSION,
                "workflows": {k: v.model_dump() for k, v in self.workflows.items()},
                "executions": self.executions,
            },
        )

    async def start(self) -> None:
        """Reads workflows.json; runs that were queued or running when the agent died are failed."""
        stored = read_json(self.path) if os.path.exists(self.path) else {"workflows": {}, "executions": {}}
        if stored is None or stored.get("version", STORE_VERSION) != STORE_VERSION:
            raise RuntimeError(f"workflow store {self.path} cannot be read")
        self.workflows = {k: WorkflowSpec.model_validate(v) for k, v in stored.get("workflows", {}).items()}
        self.executions = stored.get("executions", {})
        interrupted = [e for e in self.executions.values() if e["status"] in ACTIVE]
        for execution in interrupted:
            if execution.get("pid"):
                await stop_group(execution["pid"], execution["run_dir"])
            await self._remove_partial(execution)
            self._finish(execution, "failed", f"interrupted: the agent stopped while this run was {execution['status']}")
            log.info("workflow %s execution %s: interrupted by an agent restart", execution["workflow_id"], execution["id"])
        if interrupted or not os.path.exists(self.path):
            self._save()
        for execution in self.executions.values():  # finished, but the agent stopped before mailing
            notifications = execution.get("notifications") or {}
            if execution["status"] not in ACTIVE and notifications.get("status") == "pending" and self.config.smtp:
                self._queue_mail(execution, notifications["on_success" if execution["status"] == "succeeded" else "on_failure"])

    async def shutdown(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=STOP_GRACE_SECONDS + 5)
        if self._mail_tasks:  # the notifications of the runs just stopped
            smtp = self.config.smtp
            await asyncio.wait(list(self._mail_tasks), timeout=(smtp.timeout_seconds if smtp else 0) + 5)

    # -- workflows ---------------------------------------------------------------------------
    def put(self, workflow_id: str, spec: WorkflowSpec) -> Dict[str, Any]:
        changed = self.workflows.get(workflow_id) != spec
        self.workflows[workflow_id] = spec
        if changed:
            self._save()
        return {**self.describe_workflow(workflow_id), "changed": changed}

    def describe_workflow(self, workflow_id: str) -> Dict[str, Any]:
        spec = self.workflows.get(workflow_id)
        if spec is None:
            raise WorkflowError(404, f"workflow {workflow_id} is not declared")
        return {"id": workflow_id, **spec.model_dump()}

    def delete(self, workflow_id: str) -> Dict[str, Any]:
        if workflow_id not in self.workflows:
            raise WorkflowError(404, f"workflow {workflow_id} is not declared")
        active = [e["id"] for e in self.executions.values() if e["workflow_id"] == workflow_id and e["status"] in ACTIVE]
        if active:
            raise WorkflowError(409, f"workflow {workflow_id} has executions queued or running: {', '.join(active)}")
        del self.workflows[workflow_id]
        self._save()
        return {"id": workflow_id, "deleted": True}

    # -- executions --------------------------------------------------------------------------
    def execute(self, workflow_id: str, program_parameters: str, recorded: Dict[str, Any]) -> Dict[str, Any]:
        workflow = self.workflows.get(workflow_id)
        if workflow is None:
            raise WorkflowError(404, f"workflowId {workflow_id!r}: no such workflow; declare it with PUT /api/v1/workflows/<id>")
        spec = run_spec(workflow, program_parameters)
        execution_id = f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"
        run_dir = os.path.join(self.runs_dir, execution_id)
        execution: Dict[str, Any] = {
            "id": execution_id,
            "workflow_id": workflow_id,
            "status": "queued",
            "submitted_at": now_iso(),
            "started_at": None,
            "finished_at": None,
            "duration_seconds": None,
            "model_uri": spec.model_uri,
            "input": spec.input,
            "input_format": spec.input_format,
            "output": spec.output,
            "output_format": spec.output_format,
            "batch_size": spec.batch_size,
            "rows_in": 0,
            "rows_out": 0,
            "batches": 0,
            "error": None,
            "peak_rss_bytes": None,
            "pid": None,
            "run_dir": run_dir,
            "log": os.path.join(run_dir, "score.log"),
            "request": {"programParameters": program_parameters, **recorded},
            "ignored": {k: v for k, v in IGNORED.items() if recorded.get(k) not in (None, "", [], {})},
            "notifications": self._notifications(recorded),
        }
        self.executions[execution_id] = execution
        self._save()
        self._tasks[execution_id] = asyncio.create_task(self._run(execution, spec, workflow.max_concurrent_runs))
        return execution

    def _notifications(self, recorded: Dict[str, Any]) -> Dict[str, Any]:
        wanted = {"on_success": recipients(recorded.get("emailOnSuccess")), "on_failure": recipients(recorded.get("emailOnFailure"))}
        if not wanted["on_success"] and not wanted["on_failure"]:
            return {**wanted, "status": "none requested", "detail": None}
        if self.config.smtp is None:
            detail = "emailOnSuccess/emailOnFailure recorded but no mail is sent: the agent has no smtp settings (config smtp)"
            return {**wanted, "status": "not configured", "detail": detail}
        return {**wanted, "status": "pending", "detail": "sent when the run finishes"}

    def describe_execution(self, execution_id: str) -> Dict[str, Any]:
        execution = self.executions.get(execution_id)
        if execution is None:
            raise WorkflowError(404, f"execution {execution_id} does not exist")
        if execution["status"] == "running":
            execution.update(self._counts(read_json(os.path.join(execution["run_dir"], "progress.json")) or {}))
        return {k: v for k, v in execution.items() if k != "run_dir"}

    def list_executions(self, workflow_id: Optional[str]) -> List[Dict[str, Any]]:
        chosen = [e for e in self.executions.values() if workflow_id is None or e["workflow_id"] == workflow_id]
        return [self.describe_execution(e["id"]) for e in sorted(chosen, key=lambda e: e["submitted_at"], reverse=True)]

    def _workflow_slots(self, workflow_id: str, limit: int) -> asyncio.Semaphore:
        held = self._per_workflow.get(workflow_id)
        if held is None or held[0] != limit:  # a changed limit applies to the runs queued from now on
            held = (limit, asyncio.Semaphore(limit))
            self._per_workflow[workflow_id] = held
        return held[1]

    async def _run(self, execution: Dict[str, Any], spec: WorkflowSpec, limit: int) -> None:
        proc: Optional[asyncio.subprocess.Process] = None
        try:
            async with self._workflow_slots(execution["workflow_id"], limit), self._pool:
                run_dir = execution["run_dir"]
                os.makedirs(run_dir, exist_ok=True)
                job = {**spec.model_dump(), "partial": f"{spec.output}.{execution['id']}.partial"}
                write_atomic(os.path.join(run_dir, "job.json"), job)
                execution.update(status="running", started_at=now_iso())
                started = time.monotonic()
                env = dict(os.environ)
                env["PYTHONPATH"] = os.pathsep.join(p for p in (AGENT_DIR, env.get("PYTHONPATH")) if p)
                if self.config.mlflow_tracking_uri:
                    env["MLFLOW_TRACKING_URI"] = self.config.mlflow_tracking_uri
                if self.config.smtp and self.config.smtp.password_env:  # the scorer never sees the SMTP password
                    env.pop(self.config.smtp.password_env, None)
                with open(execution["log"], "ab") as out:
                    proc = await asyncio.create_subprocess_exec(
                        self.config.python or sys.executable, "-m", SCORE_MODULE, run_dir,
                        cwd=run_dir, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                        start_new_session=True,
                    )  # fmt: skip
                execution["pid"] = proc.pid
                self._save()
                log.info("workflow %s execution %s: scoring %s with %s (pid %d)", execution["workflow_id"],
                         execution["id"], spec.input, spec.model_uri, proc.pid)  # fmt: skip
                try:
                    code = await asyncio.wait_for(proc.wait(), timeout=spec.timeout_seconds)
                except asyncio.TimeoutError:
                    await stop_group(proc.pid, run_dir)
                    await self._remove_partial(execution)
                    execution["duration_seconds"] = round(time.monotonic() - started, 3)
                    self._finish(execution, "failed", f"timed out after {spec.timeout_seconds:g} s (timeout_seconds)")
                    return
                result = read_json(os.path.join(run_dir, "result.json"))
                execution["duration_seconds"] = round(time.monotonic() - started, 3)
                if result is None:
                    await self._remove_partial(execution)
                    self._finish(execution, "failed", f"the scoring process exited with code {code} without a result; see {execution['log']}")
                else:
                    execution.update(self._counts(result), peak_rss_bytes=result.get("peak_rss_bytes"))
                    self._finish(execution, result["status"], result.get("error"))
        except asyncio.CancelledError:
            if proc is not None and proc.returncode is None:
                await stop_group(proc.pid, execution["run_dir"])
            await self._remove_partial(execution)
            self._finish(execution, "failed", "interrupted: the agent was stopped during this run")
            raise
        except Exception as err:  # noqa: BLE001 - the run's record carries it
            log.exception("workflow execution %s", execution["id"])
            self._finish(execution, "failed", f"{type(err).__name__}: {err}")
        finally:
            self._tasks.pop(execution["id"], None)

    @staticmethod
    def _counts(source: Dict[str, Any]) -> Dict[str, Any]:
        return {k: source[k] for k in ("rows_in", "rows_out", "batches") if k in source}

    @staticmethod
    async def _remove_partial(execution: Dict[str, Any]) -> None:
        partial = f"{execution['output']}.{execution['id']}.partial"
        if is_remote(partial):  # a network call: off the event loop
            await asyncio.to_thread(remove_quietly, partial)
        else:
            remove_quietly(partial)

    def _finish(self, execution: Dict[str, Any], status: str, error: Optional[str]) -> None:
        execution.update(status=status, error=error, finished_at=now_iso(), pid=None)
        notifications = execution.get("notifications") or {}
        to = notifications.get("on_success" if status == "succeeded" else "on_failure") or []
        if notifications.get("status") == "pending" and not to:
            notifications.update(status="none requested", detail=f"no address for a {status} run")
        self._save()
        log.info("workflow %s execution %s: %s%s rows_out=%s", execution["workflow_id"], execution["id"], status,
                 f" ({error})" if error else "", execution["rows_out"])  # fmt: skip
        if notifications.get("status") == "pending":
            self._queue_mail(execution, to)

    def _queue_mail(self, execution: Dict[str, Any], to: List[str]) -> None:
        task = asyncio.get_running_loop().create_task(self._notify(execution, to))
        self._mail_tasks.add(task)
        task.add_done_callback(self._mail_tasks.discard)

    async def _notify(self, execution: Dict[str, Any], to: List[str]) -> None:
        smtp = self.config.smtp
        assert smtp is not None
        notifications = execution["notifications"]
        try:
            message = compose(smtp, to, execution)
            await asyncio.wait_for(asyncio.to_thread(send, smtp, message), timeout=smtp.timeout_seconds + 5)
            notifications.update(status="sent", detail=f"to {', '.join(to)} via {smtp.host}:{smtp.port}", sent_at=now_iso())
            log.info("workflow %s execution %s: notified %d address(es) via %s:%d", execution["workflow_id"],
                     execution["id"], len(to), smtp.host, smtp.port)  # fmt: skip
        except Exception as err:  # noqa: BLE001 - the record carries it; the password is in no message
            detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            notifications.update(status="failed", detail=f"to {', '.join(to)} via {smtp.host}:{smtp.port}: {detail}")
            log.warning("workflow %s execution %s: notification failed: %s", execution["workflow_id"], execution["id"], detail)
        self._save()
