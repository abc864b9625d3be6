#!/usr/bin/env bash
# `npm run pulumi -- <args>`: the project's Pulumi CLI with the project's environment. Commands that
# read stack settings (up, preview, refresh, destroy, config, import, watch, logs) get the machine's
# copy of Pulumi.<stack>.yaml (--config-file, see scripts/env.sh) and, without --stack, the dev stack;
# `up`, `preview` and `config` create the stack when it does not exist yet.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MODEL_SERVING_ROOT"

args=("$@")
command="" at=-1 stack="" has_config_file=false
for ((i = 0; i < ${#args[@]}; i++)); do
  arg="${args[$i]}"
  case "$arg" in
  --) break ;;
  --stack | -s) stack="${args[$((i + 1))]:-}" && i=$((i + 1)) ;;
  --stack=*) stack="${arg#--stack=}" ;;
  --config-file | --config-file=*) has_config_file=true ;;
  -*) ;;
  *) if [ -z "$command" ]; then command="$arg" at=$i; fi ;;
  esac
done

case "$command" in
# These run the dynamic providers, which load the installed provider code: build it if it is stale.
up | update | preview | refresh | destroy | import | watch) node scripts/provider-code.js --quiet >&2 ;;
esac
case "$command" in
up | update | preview | refresh | destroy | config | import | watch | logs)
  if [ "$has_config_file" = false ]; then
    extra=()
    if [ -z "$stack" ]; then
      stack=dev
      extra+=("--stack=$stack")
    fi
    case "$command" in
    up | update | preview | config) config_file="$(prepare_stack "$stack")" ;;
    *) config_file="$(stack_config_file "$stack")" ;;
    esac
    extra+=("--config-file=$config_file")
    # Right after the command, before any `--` of the caller's.
    args=("${args[@]:0:$((at + 1))}" "${extra[@]}" "${args[@]:$((at + 1))}")
  fi
  ;;
esac
exec pulumi "${args[@]}"
