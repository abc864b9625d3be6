"""The agent's OpenAPI 3.1 document, served at GET /openapi.json; the project's client is generated
against it, and a test checks it names every route the app serves."""

from typing import Any, Dict

from . import __version__
from .workflows.openapi import SESSION_SCHEME, WORKFLOW_PATHS, WORKFLOW_SCHEMAS

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "log_tail": {"type": "array", "items": {"type": "string"}, "description": "the backend's last log lines"},
    },
}
_MODEL = {
    "type": "object",
    "required": ["name", "model_uri", "status", "front_port", "front_url", "path_url"],
    "properties": {
        "name": {"type": "string"},
        "model_uri": {"type": "string"},
        "status": {"type": "string", "enum": ["starting", "serving", "restarting", "failed"]},
        "front_port": {"type": "integer"},
        "front_url": {"type": "string"},
        "path_url": {"type": "string"},
        "verified_with": {"type": "string", "enum": ["sample_input", "ping", "adopted"]},
        "backend": {
            "type": ["object", "null"],
            "properties": {
                "port": {"type": "integer"},
                "pid": {"type": "integer"},
                "inflight": {"type": "integer"},
                "log": {"type": "string"},
                "shared": {"type": "boolean"},
            },
        },
        "error": {"type": ["string", "null"]},
        "log_tail": {"type": ["array", "null"], "items": {"type": "string"}},
        "changed": {"type": "boolean", "description": "deploy only: false when nothing had to change"},
        "challenger": {
            "type": ["object", "null"],
            "properties": {
                "model_uri": {"type": "string"},
                "weight": {"type": "number"},
                "verified_with": {"type": "string"},
                "backend": {"type": ["object", "null"]},
            },
        },
    },
}
_CHALLENGER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["model_uri", "weight"],
    "properties": {
        "model_uri": {"type": "string", "minLength": 1},
        "weight": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "sample_input": {"type": "object"},
    },
    "description": "a second version behind the same front serving `weight` of the unpinned requests",
}
_DEPLOY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["model_uri"],
    "properties": {
        "model_uri": {"type": "string", "minLength": 1, "examples": ["models:/iris/2", "models:/iris@champion"]},
        "sample_input": {"type": "object", "description": "one scoring request body; default: the model's own example"},
        "front_port": {"type": "integer", "description": "first deploy only; default: the first spare front port"},
        "challenger": {"$ref": "#/components/schemas/Challenger"},
        "backend": {
            "enum": ["dedicated", "shared"],
            "default": "dedicated",
            "description": "shared: one multi-model worker holds every shared model (no challenger)",
        },
    },
    "description": "a version already running for this model (champion or challenger) is reused, not restarted",
}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
}


def _json(schema: Dict[str, Any], description: str) -> Dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> Dict[str, Any]:
    return {str(code): {"$ref": f"#/components/responses/E{code}"} for code in codes}


def openapi_schema() -> Dict[str, Any]:
    model_ref = {"$ref": "#/components/schemas/Model"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "model-serving agent", "version": __version__},
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}, "session": SESSION_SCHEME},
            "schemas": {"Error": _ERROR, "Model": _MODEL, "DeployRequest": _DEPLOY, "Challenger": _CHALLENGER,
                        **WORKFLOW_SCHEMAS},  # fmt: skip
            "responses": {
                f"E{code}": _json({"$ref": "#/components/schemas/Error"}, text)
                for code, text in (
                    (400, "malformed request"),
                    (401, "missing or wrong token"),
                    (404, "model, workflow or execution not found"),
                    (409, "port conflict; a workflow with queued or running executions"),
                    (422, "the new version failed to start or score; the old one keeps serving"),
                    (503, "agent starting or out of ports"),
                )
            },
        },
        "security": [{"token": []}],
        "paths": {
            "/health": {
                "get": {
                    "security": [],
                    "summary": "ok once every recorded model serves again",
                    "responses": {"200": _json({"type": "object"}, "ok"), "503": _json({"type": "object"}, "starting or degraded")},
                }
            },
            "/openapi.json": {"get": {"security": [], "responses": {"200": {"description": "this document"}}}},
            "/version": {"get": {"responses": {"200": _json({"type": "object"}, "agent, python, mlflow versions"), **_errors(401)}}},
            "/models": {
                "get": {
                    "summary": "list deployed models",
                    "responses": {
                        "200": _json({"type": "object", "properties": {"models": {"type": "array", "items": model_ref}}}, "models"),
                        **_errors(401),
                    },
                }
            },
            "/models/{name}": {
                "parameters": [_NAME],
                "get": {"summary": "status", "responses": {"200": _json(model_ref, "model"), **_errors(400, 401, 404)}},
                "put": {
                    "summary": "deploy (idempotent): start, verify, switch the front, drain the old version",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DeployRequest"}}},
                    },
                    "responses": {"200": _json(model_ref, "served"), **_errors(400, 401, 409, 422, 503)},
                },
                "delete": {
                    "summary": "undeploy: close the front, drain and stop the backend",
                    "responses": {"200": _json({"type": "object"}, "undeployed"), **_errors(400, 401, 404)},
                },
            },
            "/models/{name}/{path}": {
                "parameters": [
                    _NAME,
                    {"name": "path", "in": "path", "required": True, "schema": {"enum": ["invocations", "ping", "health", "version"]}},
                    {
                        "name": "X-Model-Variant",
                        "in": "header",
                        "required": False,
                        "schema": {"enum": ["champion", "challenger"]},
                        "description": "pins the request to one version; the answer's X-Model-Variant and X-Model-Uri say which served",
                    },
                ],
                "post": {
                    "security": [],
                    "summary": "the model's front on the API port: forwarded to its current backend (MLflow scoring protocol)",
                    "responses": {"200": {"description": "the backend's answer"}, **_errors(404, 503)},
                },
                "get": {"security": [], "responses": {"200": {"description": "the backend's answer"}, **_errors(404)}},
            },
            **WORKFLOW_PATHS,
        },
    }
