#!/usr/bin/env bash
# `npm test`: bootstrap, then every suite: unit (pure + mocks), integration (real MLflow servers on
# loopback) and engine end-to-end (the real Pulumi CLI through the Automation API).
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MODEL_SERVING_ROOT"
npx tsc --noEmit -p .
npx jest --runInBand "$@"
