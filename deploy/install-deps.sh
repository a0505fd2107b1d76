#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of Vltava: Debian's
# packages, and a virtualenv of current Kafka client libraries from PyPI for
# the integration tests. This file is the only place the dependency list
# lives. Idempotent: prints nothing and installs nothing when all are present.
#
#   install-deps.sh             everything
#   install-deps.sh build       only what configures and builds vltava-broker
#                               and vltava (deploy/Dockerfile's build stage)
#   install-deps.sh zookeeper   only the ZooKeeper server (deploy/zookeeper.Dockerfile)
set -euo pipefail

build_packages=(
  build-essential cmake pkg-config
  libev-dev libzookeeper-mt-dev protobuf-c-compiler libprotobuf-c-dev
  libcunit1-dev librdkafka-dev libmicrohttpd-dev
  zlib1g-dev liblz4-dev libzstd-dev libsnappy-dev
)
# The ZooKeeper server's jar and what it links (libzookeeper-java), run by
# zookeeper-lib.sh; Debian's zookeeper package would add only scripts, and a
# full JRE with GTK.
zookeeper_packages=(libzookeeper-java default-jre-headless)
group="${1:-all}"
case "$group" in
  build) packages=("${build_packages[@]}") ;;
  zookeeper) packages=("${zookeeper_packages[@]}") ;;
  all)
    packages=(
      "${build_packages[@]}" "${zookeeper_packages[@]}" clang-format
      kcat python3-kafka python3-confluent-kafka python3-kazoo python3-venv
      procps iproute2 debootstrap
      iptables python3-matplotlib
    ) ;;
  *) echo "usage: install-deps.sh [build|zookeeper]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "$group" = all ] || exit 0

# Current Kafka clients for the integration tests, pinned, in a virtualenv of
# Debian's /usr/bin/python3 (Debian's python3-kafka 2.0.2 and
# python3-confluent-kafka 1.7 stay with /usr/bin/python3, which runs the test
# harness; the tests run these clients as child processes under the venv's
# python, VLTAVA_VENV_PYTHON). Every package is pinned, dependencies too, and
# installed from wheels only (confluent-kafka's wheel bundles its own
# librdkafka). One venv per machine, outside any clone, so CI's fresh clones
# find it made; the stamp file holds the pin list it was built from, and a
# changed list rebuilds it.
venv="${VLTAVA_VENV:-/opt/vltava-venv}"
venv_requirements=(
  confluent-kafka==2.16.1
  kafka-python==3.0.12
  aiokafka==0.14.0
  async-timeout==5.0.1
  packaging==26.4
  typing_extensions==4.16.0
)
venv_stamp="$(printf '%s\n' "/usr/bin/python3 $(/usr/bin/python3 -c 'import sys; print(sys.version.split()[0])')" "${venv_requirements[@]}")"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.vltava-requirements" 2>/dev/null)" = "$venv_stamp" ]; then
  exit 0
fi
echo "install-deps: building the client virtualenv $venv" >&2
"${sudo_cmd[@]}" mkdir -p "$(dirname "$venv")"
# One builder at a time (worktrees and CI clones share the venv). The lock
# file may belong to another user: it is opened read-only, created first
# only when absent (an O_CREAT open of another user's file in sticky /tmp
# is refused under fs.protected_regular).
lock="${TMPDIR:-/tmp}/vltava-venv.lock"
[ -e "$lock" ] || : >>"$lock" 2>/dev/null || true
exec 9<"$lock"
flock 9
if ! { [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.vltava-requirements" 2>/dev/null)" = "$venv_stamp" ]; }; then
  "${sudo_cmd[@]}" rm -rf "$venv"
  "${sudo_cmd[@]}" /usr/bin/python3 -m venv "$venv"
  "${sudo_cmd[@]}" env PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore "$venv/bin/pip" install -q --no-input \
    --only-binary=:all: "${venv_requirements[@]}"
  "${sudo_cmd[@]}" "$venv/bin/python" -c 'import confluent_kafka, kafka, aiokafka'
  printf '%s\n' "$venv_stamp" | "${sudo_cmd[@]}" tee "$venv/.vltava-requirements" >/dev/null
fi
