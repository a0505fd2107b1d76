#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of Vltava from Debian's
# packages. This file is the only place the dependency list lives.
# Idempotent: prints nothing and installs nothing when all are present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-format
  libev-dev libzookeeper-mt-dev protobuf-c-compiler libprotobuf-c-dev
  libcunit1-dev librdkafka-dev
  zlib1g-dev liblz4-dev libzstd-dev libsnappy-dev
  zookeeper default-jre-headless
  kcat python3-kafka python3-confluent-kafka python3-kazoo
  procps iproute2 debootstrap
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
