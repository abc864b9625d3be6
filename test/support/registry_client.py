"""MLflow's own Python client, for tests that need a registry the project did not write.

Usage (MLFLOW_TRACKING_URI set):
  registry_client.py register NAME MODEL_DIR   log the sklearn model in MODEL_DIR (with its input
                                               example) and register it as a new version of NAME
  registry_client.py register-broken NAME      register a version that cannot be loaded (its
                                               loader module does not exist), as a bad release is
  registry_client.py alias NAME ALIAS VERSION  point ALIAS at VERSION
  registry_client.py snapshot NAME             every version, tag and alias of NAME
Each prints one JSON object as the last line of stdout.
"""

import json
import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient


def register(name: str, model_dir: str) -> dict:
    model = mlflow.sklearn.load_model(model_dir)
    example = mlflow.models.Model.load(model_dir).load_input_example(model_dir)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            sk_model=model, name="model", input_example=example, registered_model_name=name
        )
    return {
        "run_id": run.info.run_id,
        "model_id": info.model_id,
        "version": str(info.registered_model_version),
    }


def register_broken(name: str) -> dict:
    with tempfile.TemporaryDirectory() as data:
        with open(os.path.join(data, "weights.txt"), "w") as f:
            f.write("not a model")
        with mlflow.start_run() as run:
            info = mlflow.pyfunc.log_model(
                name="model",
                loader_module="model_serving_no_such_module",
                data_path=data,
                pip_requirements=[],
                registered_model_name=name,
            )
    return {
        "run_id": run.info.run_id,
        "model_id": info.model_id,
        "version": str(info.registered_model_version),
    }


def snapshot(name: str) -> dict:
    client = MlflowClient()
    model = client.get_registered_model(name)
    versions = client.search_model_versions(f"name='{name}'")
    return {
        "aliases": dict(sorted(model.aliases.items())),
        "tags": model.tags,
        "versions": sorted(
            (
                {
                    "version": v.version,
                    "source": v.source,
                    "run_id": v.run_id,
                    "status": v.status,
                    "tags": v.tags,
                    "aliases": sorted(v.aliases),
                    "description": v.description,
                    "last_updated": v.last_updated_timestamp,
                }
                for v in versions
            ),
            key=lambda v: int(v["version"]),
        ),
    }


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "register":
        out = register(*args)
    elif command == "register-broken":
        out = register_broken(*args)
    elif command == "alias":
        name, alias, version = args
        MlflowClient().set_registered_model_alias(name, alias, version)
        out = {"alias": alias, "version": version}
    elif command == "snapshot":
        out = snapshot(*args)
    else:
        raise SystemExit(f"unknown command {command!r}")
    # MLflow prints its own lines (run links) to stdout: the result is the last line.
    print("\n" + json.dumps(out))


if __name__ == "__main__":
    main()
