"""A multi-model backend: one Python process (uvicorn, N workers) that loads several pyfunc models and
serves each through MLflow's own scoring app (mlflow.pyfunc.scoring_server.init) under /m/<name>/:
/m/<name>/invocations, /m/<name>/ping. /ping answers once every model is loaded. Models that share
an environment share the interpreter, MLflow, pandas and scikit-learn: an extra model costs its
weights, not a Python process (bench/multi_model.py measures it).

Usage: MODEL_SERVING_MODELS='{"iris": "models:/iris/1", ...}' \\
       python -m model_serving_agent.multi_worker --port P [--workers N]
Not yet a backend kind of the agent (see agent/README.md, "Multi-model backends").
"""

import argparse
import json
import os
import sys

MODELS_ENV = "MODEL_SERVING_MODELS"


def create_app():  # type: ignore[no-untyped-def]
    """uvicorn factory: each worker loads every model once."""
    from mlflow.pyfunc import load_model, scoring_server
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Mount, Route

    models = json.loads(os.environ[MODELS_ENV])
    mounts = [Mount(f"/m/{name}", app=scoring_server.init(load_model(uri))) for name, uri in models.items()]

    async def ping(request):  # type: ignore[no-untyped-def]
        return Response("\n", media_type="application/json")

    return Starlette(routes=[Route("/ping", ping), *mounts])


def main() -> int:
    parser = argparse.ArgumentParser(prog="model_serving_agent.multi_worker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    json.loads(os.environ[MODELS_ENV])  # fail here, not in each worker
    import uvicorn

    uvicorn.run(
        "model_serving_agent.multi_worker:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
