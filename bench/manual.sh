#!/usr/bin/env bash
# P1's "by hand" side: what a person types to get the same result as a cold `pulumi up` of the dev stack:
# `mlflow server`, register the model with MLflow's Python client, `mlflow models serve`, poll /ping.
# Usage: manual.sh MLFLOW_BIN PYTHON DATA_DIR MLFLOW_PORT SERVE_PORT MODEL_DIR PID_FILE
# Both servers run in their own process groups; their pids (= pgids) go to PID_FILE for the caller to stop.
set -euo pipefail
mlflow_bin="$1" python="$2" data="$3" mlflow_port="$4" serve_port="$5" model_dir="$6" pids="$7"
uri="http://127.0.0.1:$mlflow_port"
mkdir -p "$data/artifacts"
# As with an activated venv: `mlflow models serve` execs `uvicorn` by name.
export PATH="$(dirname "$mlflow_bin"):$PATH"
wait_ok() { # url pid log: poll every 0.2 s while the server lives, at most 5 minutes
  for _ in $(seq 1500); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "server for $1 exited:" >&2; tail -5 "$3" >&2; return 1; }
    sleep 0.2
  done
  echo "timed out waiting for $1" >&2
  return 1
}

setsid "$mlflow_bin" server --host 127.0.0.1 --port "$mlflow_port" \
  --backend-store-uri "sqlite:///$data/mlflow.db" --artifacts-destination "$data/artifacts" \
  --serve-artifacts --workers 1 >"$data/server.log" 2>&1 &
echo $! >>"$pids"
wait_ok "$uri/health" $! "$data/server.log"

MLFLOW_TRACKING_URI="$uri" "$python" - "$model_dir" <<'PY'
import sys
import mlflow
from mlflow import MlflowClient

with mlflow.start_run() as run:
    mlflow.log_artifacts(sys.argv[1], "model")
version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "iris")
MlflowClient().set_registered_model_alias("iris", "champion", version.version)
PY

MLFLOW_TRACKING_URI="$uri" setsid "$mlflow_bin" models serve -m models:/iris/1 --env-manager local \
  -h 127.0.0.1 -p "$serve_port" >"$data/serve.log" 2>&1 &
echo $! >>"$pids"
wait_ok "http://127.0.0.1:$serve_port/ping" $! "$data/serve.log"
