#!/usr/bin/env bash
# A private Docker engine for the tests (and for trying the standalone scorer by hand), kept under
# $MODEL_SERVING_CACHE/docker so it never touches a system Docker:
#   dockerd.sh start    install docker.io, debootstrap (etcd-server and docker-registry for the replays) if
#                       missing, start dockerd (idempotent), make
#                       the local base image (idempotent); prints the `env` lines last
#   dockerd.sh stop     stop the dockerd that `start` started (by its pidfile), nothing else
#   dockerd.sh status   exit 0 when our dockerd answers, 1 otherwise
#   dockerd.sh env      the variables tests need: DOCKER_HOST, MODEL_SERVING_DOCKER_CLI and
#                       MODEL_SERVING_SCORER_BASE (use: eval "$(bash scripts/dockerd.sh env)")
# No registry can be pulled from here, so the scorer's base image is made locally: a debootstrap
# minbase of Debian bookworm with python3 and python3-venv, `docker import`ed. The rootfs tarball is
# cached under docker/base/, keyed by suite + package list; it is rebuilt only when missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

DOCKER_DIR="$MODEL_SERVING_CACHE/docker"
SOCKET="$DOCKER_DIR/docker.sock"
PIDFILE="$DOCKER_DIR/dockerd.pid"
LOG="$DOCKER_DIR/dockerd.log"
# Debian's client (docker.io): it builds with the engine's own BuildKit (DOCKER_BUILDKIT=1, --secret)
# without the buildx plugin, which newer clients require.
CLI=/usr/bin/docker
BASE_SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,ca-certificates
BASE_KEY="$(printf '%s %s minbase\n' "$BASE_SUITE" "$BASE_PACKAGES" | sha256sum | cut -c1-12)"
BASE_TARBALL="$DOCKER_DIR/base/rootfs-$BASE_SUITE-$BASE_KEY.tar"
BASE_IMAGE="model-serving/scorer-base:$BASE_SUITE-$BASE_KEY"

log() { printf '[dockerd] %s\n' "$*" >&2; }

print_env() {
  printf 'export DOCKER_HOST=%q\n' "unix://$SOCKET"
  printf 'export MODEL_SERVING_DOCKER_CLI=%q\n' "$CLI"
  printf 'export MODEL_SERVING_SCORER_BASE=%q\n' "$BASE_IMAGE"
}

answers() {
  [ -S "$SOCKET" ] && DOCKER_HOST="unix://$SOCKET" timeout 10 "$CLI" version >/dev/null 2>&1
}

our_pid() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && printf '%s\n' "$pid"
}

install_missing() {
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  [ -x "$CLI" ] || need+=(docker.io)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  # The Kubernetes replay (test/replay/kubeEnv.ts) runs kube-apiserver against Debian's etcd.
  command -v etcd >/dev/null || need+=(etcd-server)
  # The registry push replay (test/replay/registryPush.test.ts) pushes to Debian's registry on loopback.
  [ -x /usr/bin/docker-registry ] || need+=(docker-registry)
  # The SSH test host's keys (ssh-keygen) and the Docker-over-ssh replay's transport (ssh).
  command -v ssh-keygen >/dev/null && command -v ssh >/dev/null || need+=(openssh-client)
  # The netns test host (test/support/netnsHost.ts): ip netns, veth and its NAT rule.
  command -v ip >/dev/null || need+=(iproute2)
  command -v iptables >/dev/null || need+=(iptables)
  if [ "${#need[@]}" -gt 0 ]; then
    log "installing ${need[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
  fi
}

start_daemon() {
  if answers; then
    log "dockerd already answers on $SOCKET"
    return 0
  fi
  if pid="$(our_pid)"; then
    log "dockerd (pid $pid) is running but not answering; stopping it first"
    stop_daemon
  fi
  mkdir -p "$DOCKER_DIR/data" "$DOCKER_DIR/exec"
  log "starting dockerd (data root $DOCKER_DIR/data, socket $SOCKET)"
  # setsid: the daemon outlives this script and is not in the caller's process group.
  setsid dockerd \
    --data-root "$DOCKER_DIR/data" \
    --exec-root "$DOCKER_DIR/exec" \
    --host "unix://$SOCKET" \
    --pidfile "$PIDFILE" \
    >>"$LOG" 2>&1 </dev/null &
  local deadline=$((SECONDS + 60))
  until answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "dockerd did not answer within 60s; last lines of $LOG:"
      tail -n 20 "$LOG" >&2
      return 1
    fi
    sleep 0.5
  done
  log "dockerd ready (pid $(cat "$PIDFILE"))"
}

stop_daemon() {
  local pid
  if ! pid="$(our_pid)"; then
    log "no dockerd of ours is running"
    rm -f "$PIDFILE"
    return 0
  fi
  log "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  # dockerd stops its containers first (their own stop timeouts); give it time, then insist.
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "dockerd (pid $pid) still running after 30s: SIGKILL"
    kill -KILL "$pid"
  fi
  rm -f "$PIDFILE"
}

make_base_image() {
  if DOCKER_HOST="unix://$SOCKET" "$CLI" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    return 0
  fi
  if [ ! -s "$BASE_TARBALL" ]; then
    local root
    mkdir -p "$(dirname "$BASE_TARBALL")"
    root="$(mktemp -d "$DOCKER_DIR/base/rootfs.XXXXXX")"
    log "debootstrap $BASE_SUITE minbase + $BASE_PACKAGES (a minute or two, once)"
    if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$BASE_SUITE" "$root" \
      >"$DOCKER_DIR/base/debootstrap.log" 2>&1; then
      log "debootstrap failed; see $DOCKER_DIR/base/debootstrap.log"
      rm -rf "$root"
      return 1
    fi
    # Package lists and caches are not part of the image.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$BASE_TARBALL.tmp" . && mv "$BASE_TARBALL.tmp" "$BASE_TARBALL"
    rm -rf "$root"
  fi
  log "docker import $BASE_TARBALL as $BASE_IMAGE"
  DOCKER_HOST="unix://$SOCKET" "$CLI" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    "$BASE_TARBALL" "$BASE_IMAGE" >/dev/null
}

case "${1:-}" in
  start)
    install_missing
    start_daemon
    make_base_image
    print_env
    ;;
  stop) stop_daemon ;;
  status) answers ;;
  env) print_env ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
