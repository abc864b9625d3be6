#!/usr/bin/env bash
# `npm run pulumi -- <args>`: the project's Pulumi CLI with the project's environment.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MODEL_SERVING_ROOT"
exec pulumi "$@"
