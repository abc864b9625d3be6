#!/usr/bin/env bash
# Installs what the project needs, idempotently, with progress lines: npm dependencies, a Python venv with
# the pinned MLflow, the Pulumi CLI + Node.js language host (built from Pulumi's Go modules), the demo
# model and the local state backend. A warm machine skips every step whose inputs did not change.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MODEL_SERVING_ROOT"
step() { printf '[bootstrap] %s\n' "$*"; }
mkdir -p "$MODEL_SERVING_CACHE"

# 1. npm dependencies
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
else
  step "npm dependencies up to date"
fi
# The dynamic providers' code as a package (node_modules/@model-serving/code), rebuilt when providers/
# changed; the serialized providers in the state require it (scripts/provider-code.js). After npm ci,
# which empties node_modules.
node scripts/provider-code.js

# 2. Python venv with the pinned MLflow and scikit-learn (and the tests' tools: requirements-dev.txt)
python_bin="${MODEL_SERVING_PYTHON:-python3}"
venv_key="$(cat python/requirements.txt python/requirements-dev.txt python/constraints.txt | sha256sum | cut -c1-16) $("$python_bin" --version 2>&1)"
if [ "$(cat "$MODEL_SERVING_VENV/.model-serving-stamp" 2>/dev/null)" != "$venv_key" ]; then
  step "python venv at $MODEL_SERVING_VENV ($(grep '^mlflow' python/requirements.txt))"
  [ -x "$MODEL_SERVING_VENV/bin/python" ] || "$python_bin" -m venv "$MODEL_SERVING_VENV"
  "$MODEL_SERVING_VENV/bin/pip" install --quiet --disable-pip-version-check \
    -r python/requirements.txt -r python/requirements-dev.txt -c python/constraints.txt
  printf '%s' "$venv_key" >"$MODEL_SERVING_VENV/.model-serving-stamp"
else
  step "python venv up to date"
fi

# 3. Pulumi CLI and Node.js language host
if [ "$MODEL_SERVING_PULUMI_SOURCE" = path ]; then
  step "using pulumi $(pulumi version) from PATH"
elif [ -x "$MODEL_SERVING_PULUMI_BIN/pulumi" ] && [ -x "$MODEL_SERVING_PULUMI_BIN/pulumi-language-nodejs" ] &&
  [ -x "$MODEL_SERVING_PULUMI_BIN/pulumi-resource-pulumi-nodejs" ]; then
  step "pulumi v$MODEL_SERVING_PULUMI_VERSION up to date ($MODEL_SERVING_PULUMI_BIN)"
else
  command -v go >/dev/null || { echo "[bootstrap] go is required to build the Pulumi CLI" >&2; exit 1; }
  step "building pulumi v$MODEL_SERVING_PULUMI_VERSION from Go modules (first time: several minutes)"
  tmp_bin="$MODEL_SERVING_PULUMI_BIN.tmp.$$"
  mkdir -p "$tmp_bin"
  (
    cd tools/pulumi
    # go.sum pins every module; the checksum database does not list every Pulumi release.
    export GONOSUMDB="github.com/pulumi/pulumi" GOFLAGS="${GOFLAGS:-} -mod=readonly"
    go build -trimpath \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$MODEL_SERVING_PULUMI_VERSION" \
      -o "$tmp_bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    step "building pulumi-language-nodejs"
    go build -trimpath -ldflags "-s -w -X main.version=v$MODEL_SERVING_PULUMI_VERSION" \
      -o "$tmp_bin/pulumi-language-nodejs" ./langhost
  )
  # The dynamic-provider plugin: @pulumi/pulumi's, plus an engine watchdog (tools/pulumi/dynamic-provider);
  # like the official CLI, keep it next to `pulumi`.
  cp tools/pulumi/dynamic-provider/pulumi-resource-pulumi-nodejs \
    tools/pulumi/dynamic-provider/engine-watchdog.js "$tmp_bin/"
  rm -rf "$MODEL_SERVING_PULUMI_BIN"
  mv "$tmp_bin" "$MODEL_SERVING_PULUMI_BIN"
  step "pulumi $("$MODEL_SERVING_PULUMI_BIN/pulumi" version) ready"
fi

# 4. The demo model (trained once, deterministically, from the data set scikit-learn ships)
if [ ! -f .models/iris/MLmodel ]; then
  step "training the demo model into .models/iris"
  "$MODEL_SERVING_VENV/bin/python" python/demo/train_iris.py .models/iris
else
  step "demo model present (.models/iris)"
fi

# 5. Local state backend and passphrase
if [[ "$PULUMI_BACKEND_URL" == file://* ]]; then
  mkdir -p "${PULUMI_BACKEND_URL#file://}"
fi
if [ -n "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] && [ ! -s "$PULUMI_CONFIG_PASSPHRASE_FILE" ]; then
  step "generating a secrets passphrase in $PULUMI_CONFIG_PASSPHRASE_FILE"
  (umask 077 && head -c 32 /dev/urandom | base64 >"$PULUMI_CONFIG_PASSPHRASE_FILE")
fi
step "done"
