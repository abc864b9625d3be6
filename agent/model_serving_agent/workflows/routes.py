"""The workflow routes under /api/v1 (the user guide's paths): declare workflows by id, execute one
with the guide's JSON body, poll executions, and log in for a session cookie."""

import json
from typing import Any, Optional
from urllib.parse import parse_qs

from aiohttp import web

from ..auth import bearer_matches
from ..manager import AgentError
from .service import WorkflowError, WorkflowService
from .sessions import COOKIE, COOKIE_PATH, Sessions
from .spec import WORKFLOW_ID, ExecuteRequest, SpecError, WorkflowSpec, parse_body

LOGIN_PATH = "/api/v1/login"
SERVICE_KEY = web.AppKey("workflows", WorkflowService)
SESSIONS_KEY = web.AppKey("sessions", Sessions)
TOKEN_KEY = web.AppKey("token", str)


def session_allows(sessions: Sessions, request: web.Request) -> bool:
    """A valid login cookie opens the /api/v1/ routes (model management needs the bearer token)."""
    return request.path.startswith(COOKIE_PATH) and sessions.valid(request.cookies.get(COOKIE))


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except ValueError:
        raise AgentError(400, "the request body is not JSON") from None


def _service(request: web.Request) -> WorkflowService:
    return request.app[SERVICE_KEY]


def _workflow_id(request: web.Request) -> str:
    workflow_id = request.match_info["id"]
    if not WORKFLOW_ID.match(workflow_id):
        raise AgentError(400, f"workflow id {workflow_id!r} must match {WORKFLOW_ID.pattern}")
    return workflow_id


def _call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except SpecError as err:
        raise AgentError(400, str(err)) from None
    except WorkflowError as err:
        raise AgentError(err.status, str(err)) from None


async def put_workflow(request: web.Request) -> web.Response:
    workflow_id = _workflow_id(request)
    spec = _call(parse_body, WorkflowSpec, await _json_body(request), "request body")
    return web.json_response(_call(_service(request).put, workflow_id, spec))


async def get_workflow(request: web.Request) -> web.Response:
    return web.json_response(_call(_service(request).describe_workflow, _workflow_id(request)))


async def list_workflows(request: web.Request) -> web.Response:
    service = _service(request)
    return web.json_response({"workflows": [service.describe_workflow(k) for k in sorted(service.workflows)]})


async def delete_workflow(request: web.Request) -> web.Response:
    return web.json_response(_call(_service(request).delete, _workflow_id(request)))


async def execute(request: web.Request) -> web.Response:
    body: ExecuteRequest = _call(parse_body, ExecuteRequest, await _json_body(request), "request body")
    recorded = body.model_dump(exclude={"workflowId", "programParameters"}, exclude_none=True)
    execution = _call(_service(request).execute, body.workflowId, body.programParameters, recorded)
    return web.json_response(
        {"executionId": execution["id"], "workflowId": body.workflowId, "status": execution["status"],
         "statusUrl": f"/api/v1/workflow/executions/{execution['id']}"},
        status=202,
    )  # fmt: skip


async def get_execution(request: web.Request) -> web.Response:
    return web.json_response(_call(_service(request).describe_execution, request.match_info["id"]))


async def list_executions(request: web.Request) -> web.Response:
    workflow_id: Optional[str] = request.query.get("workflowId")
    return web.json_response({"executions": _service(request).list_executions(workflow_id)})


async def login(request: web.Request) -> web.Response:
    """The token as JSON {"token": ...}, a form field token=..., or the bearer header."""
    token: Optional[str] = None
    authorization = request.headers.get("Authorization", "")
    if authorization:
        token = authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else ""
    elif request.content_type == "application/x-www-form-urlencoded":
        token = (parse_qs(await request.text()).get("token") or [""])[0]
    elif request.can_read_body:
        body = await _json_body(request)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise AgentError(400, f"request body token: must be a string (got {json.dumps(token)})")
    if token is None:
        raise AgentError(400, 'request body token: required ({"token": "<agent token>"})')
    if not bearer_matches(request.app[TOKEN_KEY], f"Bearer {token}"):
        return web.json_response({"error": "wrong token"}, status=401)
    sessions = request.app[SESSIONS_KEY]
    response = web.json_response({"status": "logged in", "expires_in_seconds": sessions.ttl_seconds})
    response.set_cookie(
        COOKIE, sessions.create(), max_age=int(sessions.ttl_seconds), path=COOKIE_PATH, httponly=True, samesite="Strict"
    )
    return response


async def logout(request: web.Request) -> web.Response:
    request.app[SESSIONS_KEY].end(request.cookies.get(COOKIE))
    response = web.json_response({"status": "logged out"})
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response


def add_workflow_routes(app: web.Application, service: WorkflowService, sessions: Sessions, token: str) -> None:
    app[SERVICE_KEY] = service
    app[SESSIONS_KEY] = sessions
    app[TOKEN_KEY] = token

    async def on_startup(_: web.Application) -> None:
        await service.start()

    async def on_cleanup(_: web.Application) -> None:
        await service.shutdown()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post(LOGIN_PATH, login)
    app.router.add_post("/api/v1/logout", logout)
    app.router.add_get("/api/v1/workflows", list_workflows)
    app.router.add_get("/api/v1/workflows/{id}", get_workflow)
    app.router.add_put("/api/v1/workflows/{id}", put_workflow)
    app.router.add_delete("/api/v1/workflows/{id}", delete_workflow)
    app.router.add_post("/api/v1/workflow/execute", execute)
    app.router.add_get("/api/v1/workflow/executions", list_executions)
    app.router.add_get("/api/v1/workflow/executions/{id}", get_execution)
