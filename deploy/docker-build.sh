#!/usr/bin/env bash
# Builds the images docker-compose.yml runs, with no registry:
#  1. vltava-base:bookworm: a minimal Debian 12 root file system made here by
#     debootstrap and turned into an image by `docker import`; made once and
#     kept (--rebase makes it again, e.g. for Debian's updates);
#  2. vltava:latest (deploy/Dockerfile): vltava-broker and the vltava CLI
#     with their runtime libraries, run as the unprivileged user vltava;
#  3. vltava-zookeeper:latest (deploy/zookeeper.Dockerfile): Debian's
#     ZooKeeper on a headless JRE, run as the user zookeeper.
# The build context is the tracked files of this working tree, uncommitted
# edits included and untracked files left out (git stash create; the work
# tree and the stash list are not touched).
#
#   deploy/docker-build.sh [--rebase]
#   then: docker-compose up -d
#
# Environment: VLTAVA_IMAGE, VLTAVA_ZOOKEEPER_IMAGE (tags of 2 and 3),
# VLTAVA_DEBIAN_MIRROR, VLTAVA_DEBIAN_SECURITY_MIRROR, VLTAVA_BUILD_JOBS
# (compile jobs, default 2). Needs a running Docker daemon, and root while
# the base image is made (debootstrap).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
base=vltava-base:bookworm
image="${VLTAVA_IMAGE:-vltava:latest}"
zookeeper_image="${VLTAVA_ZOOKEEPER_IMAGE:-vltava-zookeeper:latest}"
mirror="${VLTAVA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${VLTAVA_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
jobs="${VLTAVA_BUILD_JOBS:-2}"

log() { printf 'docker-build: %s\n' "$*" >&2; }
image_size() { docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }

rebase=0
case "${1:-}" in
    "") ;;
    --rebase) rebase=1 ;;
    *) echo "usage: deploy/docker-build.sh [--rebase]" >&2; exit 2 ;;
esac

# rootfs_slim DIR: the settings Debian's own slim images have. Packages
# installed later leave out documentation, manuals and translations (the
# copyright files stay), apt keeps no .deb files, recommends are not
# installed, and no package install tries to start a service.
rootfs_slim() {
    local root=$1
    cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
EOF
    cat >"$root/etc/dpkg/dpkg.cfg.d/vltava-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
    cat >"$root/etc/apt/apt.conf.d/90vltava-docker" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
EOF
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/locale/"* \
        "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
        "$root/var/log/"*.log "$root/var/log/apt/"* "$root/etc/machine-id"
    : >"$root/etc/hostname"
}

make_base() {
    local rootfs
    [ "$(id -u)" -eq 0 ] || { log "making $base needs root (debootstrap)"; exit 1; }
    bash "$repo/deploy/install-deps.sh"   # provides debootstrap
    rootfs="$(mktemp -d "${TMPDIR:-/tmp}/vltava-rootfs.XXXXXX")"
    # --one-file-system: a debootstrap that failed half-way may leave /proc
    # or /sys mounted inside.
    trap 'rm -rf --one-file-system "$rootfs" "$rootfs.log"' EXIT
    log "debootstrap bookworm into $rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
        { tail -20 "$rootfs.log" >&2; exit 1; }
    rootfs_slim "$rootfs"
    tar --numeric-owner --one-file-system -C "$rootfs" -c . |
        docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["bash"]' - "$base" >/dev/null
    rm -rf --one-file-system "$rootfs" "$rootfs.log"
    trap - EXIT
    log "imported $base ($(image_size "$base"))"
}

# One base maker at a time: test runs of several clones may start together.
lock="${TMPDIR:-/tmp}/vltava-docker-base.lock"
[ -e "$lock" ] || : >>"$lock" 2>/dev/null || true
exec 9<"$lock"
flock 9
if [ "$rebase" -eq 1 ] || ! docker image inspect "$base" >/dev/null 2>&1; then
    make_base
fi
flock -u 9

# The tracked files as they are now: a commit object of the work tree when
# it has uncommitted edits, else HEAD.
tree="$(git -C "$repo" stash create)"
tree="${tree:-HEAD}"
context="$(mktemp "${TMPDIR:-/tmp}/vltava-docker-context.XXXXXX")"
trap 'rm -f "$context"' EXIT
git -C "$repo" archive --format=tar "$tree" >"$context"

# build TAG DOCKERFILE [ARG...]: the build's output goes to a log, shown
# (its end) only when the build fails.
build() {
    local tag=$1 dockerfile=$2 build_log
    shift 2
    build_log="$(mktemp "${TMPDIR:-/tmp}/vltava-docker-build.XXXXXX")"
    log "building $tag ($dockerfile) from $(git -C "$repo" rev-parse --short HEAD)$([ "$tree" = HEAD ] || echo ' with uncommitted edits')"
    if ! docker build -f "$dockerfile" -t "$tag" "$@" - <"$context" >"$build_log" 2>&1; then
        tail -40 "$build_log" >&2
        rm -f "$build_log"
        log "building $tag failed"
        exit 1
    fi
    rm -f "$build_log"
}
build "$image" deploy/Dockerfile --build-arg "JOBS=$jobs"
build "$zookeeper_image" deploy/zookeeper.Dockerfile
for i in "$image" "$zookeeper_image"; do
    log "$i: $(image_size "$i")"
done
log "done; now: docker-compose up -d"
