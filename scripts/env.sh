# shellcheck shell=bash
# Sourced by the other scripts: the environment the project's Pulumi CLI, tests and MLflow run in.
# Everything heavy lives under $MODEL_SERVING_CACHE (default ~/.cache/model-serving), outside the repo.

MODEL_SERVING_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MODEL_SERVING_ROOT
export MODEL_SERVING_CACHE="${MODEL_SERVING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/model-serving}"
export MODEL_SERVING_VENV="${MODEL_SERVING_VENV:-$MODEL_SERVING_CACHE/venv}"

# The Pulumi release the CLI is built from (tools/pulumi/go.mod) and @pulumi/pulumi is pinned to.
export MODEL_SERVING_PULUMI_VERSION="3.248.0"

# The project's own CLI build, keyed by the sources that produce it.
pulumi_build_key() {
  cat "$MODEL_SERVING_ROOT"/tools/pulumi/go.mod "$MODEL_SERVING_ROOT"/tools/pulumi/go.sum \
    "$MODEL_SERVING_ROOT"/tools/pulumi/tools.go $(ls "$MODEL_SERVING_ROOT"/tools/pulumi/langhost/*.go | grep -v '_test\.go$') \
    "$MODEL_SERVING_ROOT"/tools/pulumi/dynamic-provider/* |
    sha256sum | cut -c1-12
}
export MODEL_SERVING_PULUMI_BIN="$MODEL_SERVING_CACHE/pulumi/v$MODEL_SERVING_PULUMI_VERSION-$(pulumi_build_key)/bin"

# An existing `pulumi` (with a Node.js language host) at least as new as the pinned one is used as is.
existing_pulumi_ok() {
  local have
  command -v pulumi >/dev/null 2>&1 && command -v pulumi-language-nodejs >/dev/null 2>&1 || return 1
  have="$(pulumi version 2>/dev/null | sed 's/^v//')"
  [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$MODEL_SERVING_PULUMI_VERSION" "$have" | sort -V | head -n1)" = "$MODEL_SERVING_PULUMI_VERSION" ]
}
# Decided once per shell: sourcing this again must not mistake the project's build for "yours".
if [ -z "${MODEL_SERVING_PULUMI_SOURCE:-}" ]; then
  if [ "${MODEL_SERVING_USE_PATH_PULUMI:-}" != "false" ] && existing_pulumi_ok; then
    export MODEL_SERVING_PULUMI_SOURCE=path
  else
    export MODEL_SERVING_PULUMI_SOURCE=build
  fi
fi
if [ "$MODEL_SERVING_PULUMI_SOURCE" = build ]; then
  case ":$PATH:" in
    *":$MODEL_SERVING_PULUMI_BIN:"*) ;;
    *) export PATH="$MODEL_SERVING_PULUMI_BIN:$PATH" ;;
  esac
fi

export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_HOME="${PULUMI_HOME:-$MODEL_SERVING_CACHE/pulumi-home}"

# State: a local file backend unless you chose one (pulumi login, or PULUMI_BACKEND_URL).
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$MODEL_SERVING_CACHE/state}"

# Secrets passphrase: yours if PULUMI_CONFIG_PASSPHRASE(_FILE) is set, else one generated for this
# machine and kept (0600) in $MODEL_SERVING_CACHE/passphrase.
if [ -z "${PULUMI_CONFIG_PASSPHRASE+x}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE_FILE="$MODEL_SERVING_CACHE/passphrase"
fi

# A stack's settings on this machine live in $MODEL_SERVING_CACHE/stacks/Pulumi.<stack>.yaml, a copy of
# the committed Pulumi.<stack>.yaml plus what belongs to this machine: the passphrase's encryptionsalt
# and the secrets (and other keys) set with `npm run pulumi -- config set` (scripts/stack-config.js).
# The scripts pass it to Pulumi with --config-file, so the committed file stays as it is. If the copy
# is lost, Pulumi takes the salt from the stack's state.
export PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true

# Prints the path of the machine's settings of stack $1, brought up to date with the committed file.
stack_config_file() {
  node "$MODEL_SERVING_ROOT/scripts/stack-config.js" "$1"
}

# Makes sure stack $1 exists (creating it from the machine's folder, so the new stack's salt goes into
# the machine's copy) and prints the path of its settings.
prepare_stack() {
  local file
  file="$(stack_config_file "$1")" || return 1
  (cd "$(dirname "$file")" && pulumi stack select --create "$1" --non-interactive >/dev/null) || return 1
  printf '%s\n' "$file"
}
