"""The workflow part of the agent's OpenAPI document (merged into GET /openapi.json)."""

from typing import Any, Dict

_FORMAT = {"enum": ["csv", "parquet", "jsonl"], "default": "csv"}
_LOCATION = {
    "type": "string",
    "description": "absolute path of a file or folder on the agent's host, or s3://, abfss://, abfs://, az:// (the host's credentials)",
}
WORKFLOW_SCHEMAS: Dict[str, Any] = {
    "WorkflowSpec": {
        "type": "object",
        "additionalProperties": False,
        "required": ["model_uri", "input", "output"],
        "properties": {
            "model_uri": {"type": "string", "examples": ["models:/iris@champion", "models:/iris/2"]},
            "input": _LOCATION,
            "input_format": _FORMAT,
            "output": {**_LOCATION, "description": "one output file: the input rows plus a prediction column"},
            "output_format": _FORMAT,
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1000},
            "max_concurrent_runs": {"type": "integer", "minimum": 1, "maximum": 16, "default": 1},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 3600},
        },
    },
    "ExecuteRequest": {
        "type": "object",
        "required": ["workflowId"],
        "description": "the user guide's body; unknown fields are ignored",
        "properties": {
            "workflowId": {"type": "string"},
            "programParameters": {
                "type": "string",
                "description": "per-run overrides: --input --output --input-format --output-format --batch-size --model",
                "examples": ["--input /data/in.csv --output /data/out.csv"],
            },
            "sparkConfig": {"type": "object", "description": "recorded and ignored (no Spark runtime); the run's `ignored` says so"},
            "libJars": {"type": ["string", "array"], "description": "recorded and ignored (no JVM); the run's `ignored` says so"},
            "emailOnSuccess": {"type": ["string", "array"], "description": "addresses mailed on success through config smtp"},
            "emailOnFailure": {"type": ["string", "array"], "description": "addresses mailed on failure through config smtp"},
        },
    },
    "Execution": {
        "type": "object",
        "required": ["id", "workflow_id", "status"],
        "properties": {
            "id": {"type": "string"},
            "workflow_id": {"type": "string"},
            "status": {"enum": ["queued", "running", "succeeded", "failed"]},
            "error": {"type": ["string", "null"], "description": "failed: the cause; 'interrupted: ...' after an agent stop"},
            "rows_in": {"type": "integer"},
            "rows_out": {"type": "integer"},
            "batches": {"type": "integer"},
            "duration_seconds": {"type": ["number", "null"]},
            "output": {"type": "string"},
            "peak_rss_bytes": {"type": ["integer", "null"], "description": "the scoring process's VmHWM"},
            "ignored": {"type": "object", "description": "request fields accepted but without effect here, with why"},
            "notifications": {
                "type": "object",
                "properties": {
                    "on_success": {"type": "array", "items": {"type": "string"}},
                    "on_failure": {"type": "array", "items": {"type": "string"}},
                    "status": {"enum": ["none requested", "not configured", "pending", "sent", "failed"]},
                    "detail": {"type": ["string", "null"]},
                },
            },
        },
    },
}

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_COOKIE_OR_TOKEN = [{"token": []}, {"session": []}]


def _json(schema: Dict[str, Any], description: str) -> Dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> Dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _err(*codes: int) -> Dict[str, Any]:
    return {str(code): {"$ref": f"#/components/responses/E{code}"} for code in codes}


WORKFLOW_PATHS: Dict[str, Any] = {
    "/api/v1/login": {
        "post": {
            "security": [],
            "summary": "sets the session cookie (HttpOnly, random id, expiry) from the agent token",
            "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"token": {"type": "string"}}}}}},
            "responses": {"200": {"description": "logged in; Set-Cookie model_serving_session"}, **_err(400, 401)},
        }
    },
    "/api/v1/logout": {"post": {"security": _COOKIE_OR_TOKEN, "responses": {"200": {"description": "logged out"}, **_err(401)}}},
    "/api/v1/workflows": {"get": {"security": _COOKIE_OR_TOKEN, "responses": {"200": _json({"type": "object"}, "workflows"), **_err(401)}}},
    "/api/v1/workflows/{id}": {
        "parameters": [_ID],
        "get": {"security": _COOKIE_OR_TOKEN, "responses": {"200": _json(_ref("WorkflowSpec"), "workflow"), **_err(400, 401, 404)}},
        "put": {
            "security": _COOKIE_OR_TOKEN,
            "summary": "declare or change a workflow (idempotent)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("WorkflowSpec")}}},
            "responses": {"200": _json(_ref("WorkflowSpec"), "declared"), **_err(400, 401)},
        },
        "delete": {"security": _COOKIE_OR_TOKEN, "responses": {"200": {"description": "deleted"}, **_err(400, 401, 404, 409)}},
    },
    "/api/v1/workflow/execute": {
        "post": {
            "security": _COOKIE_OR_TOKEN,
            "summary": "queue a run; answers at once with its executionId",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ExecuteRequest")}}},
            "responses": {"202": _json({"type": "object", "properties": {"executionId": {"type": "string"}}}, "queued"), **_err(400, 401, 404)},
        }
    },
    "/api/v1/workflow/executions": {
        "get": {
            "security": _COOKIE_OR_TOKEN,
            "parameters": [{"name": "workflowId", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": _json({"type": "object", "properties": {"executions": {"type": "array", "items": _ref("Execution")}}}, "newest first"), **_err(401)},
        }
    },
    "/api/v1/workflow/executions/{id}": {
        "parameters": [_ID],
        "get": {"security": _COOKIE_OR_TOKEN, "responses": {"200": _json(_ref("Execution"), "execution"), **_err(401, 404)}},
    },
}
SESSION_SCHEME = {"type": "apiKey", "in": "cookie", "name": "model_serving_session"}
