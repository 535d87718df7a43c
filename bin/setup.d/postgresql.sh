#!/usr/bin/env bash
# PostgreSQL 15 server binaries for the audit connector's tests (each test starts its own throwaway
# cluster with initdb/pg_ctl on a free port; the package's own cluster is not used).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! dpkg -s postgresql >/dev/null 2>&1; then
  echo "setup: installing postgresql"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
