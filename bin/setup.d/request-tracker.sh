#!/usr/bin/env bash
# Request Tracker 5 from Debian 12, for the ticket integration tests (tests/rt.py starts a private copy).
# Idempotent and noninteractive: preseeds debconf (SQLite database, no cron jobs), installs only what is missing.
# The packaged database is only a template: each test session copies it and runs its own rt-server on loopback.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
for pkg in request-tracker5 rt5-standalone rt5-db-sqlite; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0

echo "setup: installing ${need[*]} (Request Tracker for the ticket tests)"
$SUDO debconf-set-selections <<'SEL'
request-tracker5 request-tracker5/rtname string tourniquet-test
request-tracker5 request-tracker5/organization string tourniquet.test
request-tracker5 request-tracker5/correspondaddress string rt@tourniquet.test
request-tracker5 request-tracker5/commentaddress string rt-comment@tourniquet.test
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1
request-tracker5 request-tracker5/webpath string /rt
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean true
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/initial-root-password password tourniquet-rt-root
request-tracker5 request-tracker5/dbconfig-install boolean true
request-tracker5 request-tracker5/database-type select sqlite3
SEL
# Keep package scripts from starting daemons (the mail server RT depends on) in containers without init.
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  policy=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
fi
trap '[ -n "$policy" ] && $SUDO rm -f "$policy"' EXIT
if ! apt-cache show rt5-standalone >/dev/null 2>&1; then
  $SUDO apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  request-tracker5 rt5-standalone rt5-db-sqlite >/dev/null
