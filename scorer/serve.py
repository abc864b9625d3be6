"""Scorer entrypoint: serve the MLflow model baked into this image, SageMaker/AzureML style.

Usage:
  serve.py serve   listen on $HOST:$PORT (0.0.0.0:8080): GET /ping, POST /invocations
  serve.py check   load the model once and exit (the Dockerfile runs this at build time)

Scoring is MLflow's own server (mlflow.pyfunc.scoring_server): JSON with dataframe_split,
dataframe_records, instances or inputs; text/csv; a malformed body gets 400, an unsupported
content type 415. The one addition here: a POST /invocations without a Content-Type header gets
415 (MLflow's handler would fail with 500 on it).

Environment (defaults are the container's; override them to run it as a local process):
  MODEL_PATH (/opt/ml/model), HOST (0.0.0.0), PORT (8080), WORKERS (1),
  MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT (seconds, MLflow's own setting).
Nothing is installed at start: the image's Python environment must already satisfy the model.
"""

import os
import sys

DEFAULT_MODEL_PATH = "/opt/ml/model"


def model_path() -> str:
    return os.environ.get("MODEL_PATH", DEFAULT_MODEL_PATH)


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
            body = b"Missing Content-Type: use application/json or text/csv"
            await send(
                {
                    "type": "http.response.start",
                    "status": 415,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def load():
    from mlflow.pyfunc import scoring_server

    return scoring_server.load_model_with_mlflow_config(model_path())


def create_app():
    """uvicorn factory: each worker loads the model and wraps MLflow's scoring app."""
    from mlflow.pyfunc import scoring_server

    return RequireContentType(scoring_server.init(load()))


def main(argv) -> int:
    command = argv[1] if len(argv) > 1 else "serve"
    if command == "check":
        model = load()
        print(f"model at {model_path()} loads: {model.metadata.flavors.keys()}")
        return 0
    if command != "serve":
        print(f"unknown command {command!r}: use 'serve' or 'check'", file=sys.stderr)
        return 2
    if not os.path.isfile(os.path.join(model_path(), "MLmodel")):
        print(f"no MLflow model at {model_path()} (MLmodel missing); set MODEL_PATH", file=sys.stderr)
        return 1
    import uvicorn

    uvicorn.run(
        "serve:create_app",
        factory=True,
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        host=os.environ.get("HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT", "8080")),
        workers=int(os.environ.get("WORKERS", "1")),
        log_level="info",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
