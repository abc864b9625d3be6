#!/usr/bin/env bash
# `npm test`: bootstrap, type-check, the language host's Go tests, then every jest project: unit (pure +
# mocks), integration (real MLflow servers on loopback), engine end-to-end and faults (the real Pulumi
# CLI through the Automation API).
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MODEL_SERVING_ROOT"
npx tsc --noEmit -p .
npm run --silent lint
# The project's own Node.js language host (tools/pulumi/langhost).
if command -v go >/dev/null; then
  (cd tools/pulumi && GONOSUMDB=github.com/pulumi/pulumi go test ./langhost)
else
  echo "[test] skipping the language host's Go tests: go is not installed (your own pulumi is in use)"
fi
npx jest --runInBand "$@"
