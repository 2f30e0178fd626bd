#!/usr/bin/env bash
# Installs the OS packages the lab runs (Debian/Ubuntu names) when any is
# missing: redis-server, Prometheus and the node exporter; shellcheck for
# ansible-test sanity; Node.js and npm for the dependency review's tests; the
# openssl command for the certificate tests.
set -euo pipefail

packages=(redis-server prometheus prometheus-node-exporter shellcheck nodejs npm openssl)
binaries=(redis-server prometheus prometheus-node-exporter shellcheck node npm openssl)

missing=()
for i in "${!binaries[@]}"; do
  if ! command -v "${binaries[$i]}" >/dev/null 2>&1 \
    && [[ ! -x /usr/bin/${binaries[$i]} ]]; then
    missing+=("${packages[$i]}")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-os-packages: please install ${missing[*]} with your package manager" >&2
  exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
echo "install-os-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's packages start system services where an init system runs them; the
# lab starts its own servers on free ports, so those are not needed.
for service in redis-server prometheus prometheus-node-exporter; do
  "${sudo[@]}" service "$service" stop >/dev/null 2>&1 || true
done
