#!/usr/bin/env bash
# 389 Directory Server, for the 389-DS flavor tests (a throwaway instance per test module, no systemd).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! dpkg -s 389-ds-base >/dev/null 2>&1; then
  echo "setup: installing 389-ds-base"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends 389-ds-base >/dev/null
fi
