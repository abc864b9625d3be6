"""The REST API (aiohttp): token-protected model management, public /health and /openapi.json, and
the path form of every model's front (/models/<name>/invocations, no token, like the per-model port)."""

import json
import platform
from typing import Any, Awaitable, Callable, Dict, Literal, Optional

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import __version__
from .auth import bearer_matches
from .config import describe_validation_error
from .manager import MODEL_NAME, AgentError, Manager
from .openapi import openapi_schema
from .proxy import FORWARDED_PATHS, forward, json_error
from .routing import ChallengerSpec
from .workflows.routes import LOGIN_PATH, add_workflow_routes, session_allows
from .workflows.service import WorkflowService
from .workflows.sessions import Sessions

PUBLIC_PATHS = {"/health", "/openapi.json", LOGIN_PATH}
MANAGER_KEY = web.AppKey("manager", Manager)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    model_uri: str = Field(min_length=1, max_length=2048)
    sample_input: Optional[Dict[str, Any]] = None
    front_port: Optional[int] = None
    challenger: Optional[ChallengerSpec] = None
    backend: Literal["dedicated", "shared"] = "dedicated"
    """shared: the model joins the one multi-model worker of this agent (no challenger)."""


def is_front_path(path: str) -> bool:
    parts = path.strip("/").split("/")
    return len(parts) == 3 and parts[0] == "models" and parts[2] in FORWARDED_PATHS


def model_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not MODEL_NAME.match(name):
        raise AgentError(400, f"model name {name!r} must match {MODEL_NAME.pattern}")
    return name


def make_auth_middleware(token: str, sessions: Optional[Sessions] = None) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS or is_front_path(request.path):
            return await handler(request)
        if sessions is not None and session_allows(sessions, request):
            return await handler(request)
        if not bearer_matches(token, request.headers.get("Authorization")):
            return web.json_response(
                {"error": "missing or wrong token: send Authorization: Bearer <token>"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await handler(request)

    return auth


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AgentError as err:
        extra = {"log_tail": err.log_tail} if err.log_tail is not None else {}
        return json_error(err.status, str(err), **extra)
    except web.HTTPException as err:
        if err.status >= 400:
            return json_error(err.status, f"{err.reason}: {request.method} {request.path}")
        raise


async def health(request: web.Request) -> web.Response:
    body = request.app[MANAGER_KEY].health()
    return web.json_response(body, status=200 if body["status"] == "ok" else 503)


async def version(request: web.Request) -> web.Response:
    import importlib.metadata as md

    def installed(dist: str) -> Optional[str]:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    return web.json_response(
        {"agent": __version__, "python": platform.python_version(), "mlflow": installed("mlflow"), "aiohttp": installed("aiohttp")}
    )


async def list_models(request: web.Request) -> web.Response:
    manager = request.app[MANAGER_KEY]
    return web.json_response({"models": [manager.describe(m) for m in manager.models.values()]})


async def model_status(request: web.Request) -> web.Response:
    manager = request.app[MANAGER_KEY]
    name = model_name(request)
    model = manager.models.get(name)
    if model is None:
        raise AgentError(404, f"model {name} is not deployed")
    return web.json_response(manager.describe(model))


async def deploy(request: web.Request) -> web.Response:
    name = model_name(request)
    try:
        raw = await request.json(loads=json.loads)
    except ValueError:
        raise AgentError(400, "the request body is not JSON") from None
    try:
        body = DeployRequest.model_validate(raw)
    except ValidationError as err:
        raise AgentError(400, describe_validation_error(err, "request body")) from None
    result = await request.app[MANAGER_KEY].deploy(
        name, body.model_uri, body.sample_input, body.front_port, body.challenger, shared=body.backend == "shared"
    )
    return web.json_response(result)


async def undeploy(request: web.Request) -> web.Response:
    return web.json_response(await request.app[MANAGER_KEY].undeploy(model_name(request)))


async def front(request: web.Request) -> web.StreamResponse:
    manager = request.app[MANAGER_KEY]
    name = model_name(request)
    if name not in manager.models:
        raise AgentError(404, f"model {name} is not deployed")
    return await forward(manager.session, manager.picker(name), request, request.match_info["path"], name)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_schema())


def create_app(manager: Manager, token: str) -> web.Application:
    sessions = Sessions(manager.config.session_ttl_seconds)
    app = web.Application(middlewares=[errors_as_json, make_auth_middleware(token, sessions)], client_max_size=64 * 1024 * 1024)
    app[MANAGER_KEY] = manager
    add_workflow_routes(app, WorkflowService(manager.config), sessions, token)  # /api/v1/: the user guide's paths
    app.router.add_get("/health", health)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/version", version)
    app.router.add_get("/models", list_models)
    app.router.add_get("/models/{name}", model_status)
    app.router.add_put("/models/{name}", deploy)
    app.router.add_delete("/models/{name}", undeploy)
    app.router.add_route("*", "/models/{name}/{path}", front)
    return app
