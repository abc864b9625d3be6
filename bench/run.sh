#!/usr/bin/env bash
# `npm run bench`: benchmarks side by side (bench/main.ts). Env: BENCH_ROUNDS (default 3 measured rounds
# per pair after BENCH_WARMUP=1 warm-up round), BENCH_PAIRS (default P1,P2,P3,P4,P5,AG; AG = deploy mode agent, bench/agent.ts),
# BENCH_LOAD_SECONDS (default 10), BENCH_CONCURRENCY (default 8). Results: bench/results/*.json and .md.
# BENCH_PAIRS=FIX BENCH_FIX_ENV=NAME=value: cold up + destroy as is vs with NAME=value in the engine env.
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/bootstrap.sh" >/dev/null
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$MODEL_SERVING_ROOT"
exec node -r ./bench/register.js bench/main.ts "$@"
