#!/usr/bin/env bash
# Installs the OS packages that `make demo` and `make test` need (Debian/Ubuntu
# names) when any is missing: python3-venv for the virtual environment (Debian's
# python3 has no ensurepip without it) and git for the sanity copy, both needed
# before anything else; redis-server, Prometheus and the node exporter for the
# lab; shellcheck for ansible-test sanity; Node.js and npm for the dependency
# review's tests; the openssl command for the certificate tests.
#
# Usage: install-os-packages.sh [--dry-run]
#   --dry-run  print what would be installed, one package a line; install nothing
# PYTHON names the interpreter that will build the virtual environment
# (default: python3).
set -euo pipefail

PYTHON=${PYTHON:-python3}
dry_run=false
case ${1:-} in
  --dry-run) dry_run=true ;;
  "") ;;
  *)
    echo "usage: $0 [--dry-run]" >&2
    exit 2
    ;;
esac

packages=(git redis-server prometheus prometheus-node-exporter shellcheck nodejs npm openssl)
binaries=(git redis-server prometheus prometheus-node-exporter shellcheck node npm openssl)

missing=()
# `python3 -m venv` needs the venv and ensurepip modules; Debian ships
# ensurepip in python3-venv.
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  missing+=(python3 python3-venv)
elif ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
for i in "${!binaries[@]}"; do
  if ! command -v "${binaries[$i]}" >/dev/null 2>&1; then
    missing+=("${packages[$i]}")
  fi
done

if [[ $dry_run == true ]]; then
  if [[ ${#missing[@]} -gt 0 ]]; then
    printf '%s\n' "${missing[@]}"
  fi
  exit 0
fi
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-os-packages: please install ${missing[*]} with your package manager" >&2
  exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-os-packages: run as root or install sudo to install ${missing[*]}" >&2
    exit 1
  fi
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
