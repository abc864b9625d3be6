#!/usr/bin/env bash
# `npm run down`: undeploy the `dev` stack (model servers and the local MLflow server stop; the MLflow
# data directory, and so the registry's history, is kept).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MODEL_SERVING_ROOT"
# Delete runs the installed provider code (node_modules/@model-serving/code): build it if it is stale.
node scripts/provider-code.js --quiet
pulumi destroy --yes --non-interactive --stack dev --config-file "$(stack_config_file dev)"
