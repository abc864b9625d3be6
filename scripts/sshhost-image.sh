#!/usr/bin/env bash
# The SSH test host's image (test/support/sshHost.ts): a debootstrap minbase of Debian bookworm with
# sshd, Python and sudo, `docker import`ed into the private engine of scripts/dockerd.sh. No registry is
# pulled. The rootfs tarball is cached under $MODEL_SERVING_CACHE/docker/sshhost/, keyed by suite +
# package list, and rebuilt only when missing; the image is re-imported only when the engine lacks it.
# Keys are NOT part of the image: the test generates host and user keys per run.
#   sshhost-image.sh image    make sure the image exists; prints its name last
#   sshhost-image.sh rootfs   make sure the rootfs folder exists (the netns fallback); prints its path
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

DIR="$MODEL_SERVING_CACHE/docker/sshhost"
SOCKET="$MODEL_SERVING_CACHE/docker/docker.sock"
CLI="${MODEL_SERVING_DOCKER_CLI:-/usr/bin/docker}"
SUITE=bookworm
# What PostgreSQL needs comes from the provisioning profile (apt at run time), not from the image.
PACKAGES=openssh-server,python3,python3-venv,ca-certificates,sudo,procps,iproute2
KEY="$(printf '%s %s minbase\n' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)"
TARBALL="$DIR/rootfs-$SUITE-$KEY.tar"
ROOTFS="$DIR/rootfs-$SUITE-$KEY"
IMAGE="model-serving/sshhost:$SUITE-$KEY"

log() { printf '[sshhost-image] %s\n' "$*" >&2; }

make_rootfs() {
  [ -d "$ROOTFS/usr/sbin" ] && [ -x "$ROOTFS/usr/sbin/sshd" ] && return 0
  mkdir -p "$DIR"
  local tmp
  tmp="$(mktemp -d "$DIR/rootfs.XXXXXX")"
  log "debootstrap $SUITE minbase + $PACKAGES (a minute or two, once)"
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" >"$DIR/debootstrap.log" 2>&1; then
    log "debootstrap failed; see $DIR/debootstrap.log"
    rm -rf "$tmp"
    return 1
  fi
  # No package caches, and no host keys baked in (the test generates its own).
  rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/* "$tmp"/etc/ssh/ssh_host_*
  mkdir -p "$tmp/run/sshd"
  rm -rf "$ROOTFS"
  mv "$tmp" "$ROOTFS"
}

make_image() {
  if DOCKER_HOST="unix://$SOCKET" "$CLI" image inspect "$IMAGE" >/dev/null 2>&1; then
    printf '%s\n' "$IMAGE"
    return 0
  fi
  make_rootfs
  if [ ! -s "$TARBALL" ]; then
    tar -C "$ROOTFS" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
  fi
  log "docker import $TARBALL as $IMAGE"
  DOCKER_HOST="unix://$SOCKET" "$CLI" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/usr/sbin/sshd","-D","-e"]' \
    "$TARBALL" "$IMAGE" >/dev/null
  printf '%s\n' "$IMAGE"
}

case "${1:-}" in
  image) make_image ;;
  rootfs)
    make_rootfs
    printf '%s\n' "$ROOTFS"
    ;;
  *)
    echo "usage: $0 image|rootfs" >&2
    exit 2
    ;;
esac
