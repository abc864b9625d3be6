#!/usr/bin/env bash
# `npm run up`: bootstrap, bring the `dev` stack up (refreshing first, so servers that died since the
# last run are started again), then score every endpoint once with its generated curl command.
# The stack's settings come from the machine's copy of Pulumi.dev.yaml (scripts/env.sh prepare_stack).
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MODEL_SERVING_ROOT"
config_file="$(prepare_stack dev)"
# A `pulumi up` killed mid-run (SIGKILL, a crash, a reboot) leaves its lock on the file backend: remove
# it when its holder was a `pulumi` of this machine that no longer runs; a live lock, or another
# machine's, stops here saying what to do (scripts/stale-lock.js).
node scripts/stale-lock.js dev
# Deploy mode `agent` needs the agent's token as secret config: made here the first time, from the
# CSPRNG, and handed to Pulumi on stdin (never a command line), encrypted into the machine's copy.
if grep -q '^ *deployMode: agent' "$config_file" &&
  ! pulumi config get agentToken --stack dev --config-file "$config_file" >/dev/null 2>&1; then
  node -e 'process.stdout.write(require("crypto").randomBytes(24).toString("hex"))' |
    pulumi config set --secret agentToken --stack dev --config-file "$config_file" >/dev/null
  echo "[up] set a new agent token (secret config agentToken of the dev stack on this machine)"
fi
pulumi up --yes --refresh --non-interactive --stack dev --config-file "$config_file"
pulumi stack output endpoints --json --stack dev | node scripts/score.js
