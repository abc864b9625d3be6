#!/usr/bin/env bash
# `npm run up`: bootstrap, bring the `dev` stack up (refreshing first, so servers that died since the
# last run are started again), then score every endpoint once with its generated curl command.
# The stack's settings come from the machine's copy of Pulumi.dev.yaml (scripts/env.sh prepare_stack).
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MODEL_SERVING_ROOT"
config_file="$(prepare_stack dev)"
pulumi up --yes --refresh --non-interactive --stack dev --config-file "$config_file"
pulumi stack output endpoints --json --stack dev | node scripts/score.js
