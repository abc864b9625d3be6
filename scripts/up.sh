#!/usr/bin/env bash
# `npm run up`: bootstrap, bring the `dev` stack up (refreshing first, so servers that died since the
# last run are started again), then score every endpoint once with its generated curl command.
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MODEL_SERVING_ROOT"
pulumi stack select --create dev --non-interactive
pulumi up --yes --refresh --non-interactive --stack dev
pulumi stack output endpoints --json --stack dev | node scripts/score.js
