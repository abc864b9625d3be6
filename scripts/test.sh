#!/usr/bin/env bash
# `npm test`: bootstrap, type-check, the language host's Go tests, then every jest project: unit (pure +
# mocks), integration (real MLflow servers on loopback), engine end-to-end and faults (the real Pulumi
# CLI through the Automation API) and replay, with the MLOps agent's pytest suite beside the first steps.
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MODEL_SERVING_ROOT"
# kube-apiserver for the Kubernetes replay (scripts/kube-apiserver.js) takes ~13 min on a cold Go
# cache: it builds in the background, niced, while the suites before the replay run; the replay
# waits for it. Its own session, so the whole build stops with us however the tests end.
cleanup=()
if command -v go >/dev/null; then
  mkdir -p "$MODEL_SERVING_CACHE/kube"
  setsid nice -n 19 node scripts/kube-apiserver.js build >"$MODEL_SERVING_CACHE/kube/build.log" 2>&1 &
  kube_build=$!
  cleanup+=("kill -- -$kube_build 2>/dev/null || true")
fi
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT
# The MLOps agent's own tests (agent/tests: real model servers on loopback, ports 16000-16999) run
# meanwhile: they are mostly waits on model servers, so the type-check, lint, Go tests and jest unit
# suites go beside them, and so does the start of the jest projects that start servers (their ports are
# reserved in 13000-14999 and 17000-32767, test/support/env.ts): a full run (no arguments) does not wait
# for them to start those, it stops before them only if the agent's tests already failed, and it
# fails at the end if they did.
agent_log="$(mktemp "${TMPDIR:-/tmp}/agent-pytest.XXXXXX")"
agent_tests=""
if [ $# -eq 0 ]; then
  # Its own session too, so a failed type-check stops it with its model servers.
  setsid "$MODEL_SERVING_VENV/bin/python" -m pytest agent/tests -q -p no:cacheprovider >"$agent_log" 2>&1 &
  agent_tests=$!
  cleanup+=("kill -- -$agent_tests 2>/dev/null || true; rm -f $agent_log")
fi
wait_for_agent_tests() {
  [ -n "$agent_tests" ] || return 0
  local rc=0
  wait "$agent_tests" || rc=$?
  agent_tests=""
  echo "[test] the agent's pytest suite (agent/tests):"
  cat "$agent_log"
  return "$rc"
}
npx tsc --noEmit -p .
npm run --silent lint
# The project's own Node.js language host (tools/pulumi/langhost).
if command -v go >/dev/null; then
  (cd tools/pulumi && GONOSUMDB=github.com/pulumi/pulumi go test ./langhost)
else
  echo "[test] skipping the language host's Go tests: go is not installed (your own pulumi is in use)"
fi
# The replay suite's private Docker engine (scripts/dockerd.sh): started here unless it already runs,
# and then stopped again when the tests end, however they end.
if ! bash scripts/dockerd.sh status; then
  cleanup+=("bash scripts/dockerd.sh stop")
fi
if docker_env="$(bash scripts/dockerd.sh start)"; then
  eval "$docker_env"
else
  echo "[test] the private Docker engine did not start; the replay suite reports why (a failure under CI=true)"
fi
if [ $# -gt 0 ]; then
  # `npm test -- <jest arguments>`: only the jest run they select.
  npx jest --runInBand "$@"
  exit 0
fi
npx jest --selectProjects unit
if ! kill -0 "$agent_tests" 2>/dev/null; then
  wait_for_agent_tests
fi
# The suites that start servers, in two lanes side by side (test/support/replayLastSequencer.js):
# lane 1 prints as it goes, lane 2 into a file printed when both are done.
rc=0
server_projects=(--runInBand --selectProjects integration engine faults replay)
lane_two_log="$(mktemp "${TMPDIR:-/tmp}/jest-lane-two.XXXXXX")"
setsid npx jest "${server_projects[@]}" --shard=2/2 >"$lane_two_log" 2>&1 &
lane_two=$!
cleanup+=("kill -- -$lane_two 2>/dev/null || true; rm -f $lane_two_log")
npx jest "${server_projects[@]}" --shard=1/2 || rc=$?
wait "$lane_two" || rc=$?
echo "[test] lane 2 of the jest projects that start servers (MLflow servers on this machine):"
cat "$lane_two_log"
wait_for_agent_tests || rc=$?
exit "$rc"
