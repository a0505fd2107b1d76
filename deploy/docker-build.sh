#!/usr/bin/env bash
# Builds the images docker-compose.yml uses, with no registry:
#  1. vltava-base:bookworm, a minimal Debian 12 root file system made here by
#     debootstrap and turned into an image by `docker import` (skipped when
#     the image exists; --rebase forces it);
#  2. vltava:latest from deploy/Dockerfile, with the committed tree
#     (git archive HEAD) as the build context.
# Then: docker-compose up -d   (ZooKeeper + 3 brokers on 127.0.0.1:9092-9094)
# Needs root (debootstrap) and a running Docker daemon.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
base=vltava-base:bookworm
image="${VLTAVA_IMAGE:-vltava:latest}"
mirror="${VLTAVA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ "${1:-}" = "--rebase" ] || ! docker image inspect "$base" >/dev/null 2>&1; then
    bash "$repo/deploy/install-deps.sh"   # provides debootstrap
    rootfs="$(mktemp -d "${TMPDIR:-/tmp}/vltava-rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    echo "docker-build: debootstrap bookworm into $rootfs" >&2
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
        { tail -20 "$rootfs.log" >&2; exit 1; }
    rm -f "$rootfs.log"
    tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
    echo "docker-build: imported $base" >&2
fi

echo "docker-build: building $image from $(git -C "$repo" rev-parse --short HEAD)" >&2
git -C "$repo" archive --format=tar HEAD | docker build -f deploy/Dockerfile -t "$image" -
echo "docker-build: done; now: docker-compose up -d" >&2
