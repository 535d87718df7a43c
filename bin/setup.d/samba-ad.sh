#!/usr/bin/env bash
# Samba 4 as a throwaway Active Directory domain controller, for tests/test_directory_ad_*.py
# (tests/samba_ad.py provisions one DC per test session into a temp folder and runs it on loopback).
# Idempotent and noninteractive; about a minute the first time. The packaged smb.conf and services are
# not used: package scripts are kept from starting daemons, the tests start their own DC.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# krb5-user: kinit and kvno, for the Kerberos tests against the DC's own KDC.
packages=(samba samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind krb5-user)

need=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0

echo "setup: installing Samba for the Active Directory tests (${#need[@]} packages)"
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  policy=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
fi
trap '[ -n "$policy" ] && $SUDO rm -f "$policy"' EXIT
if ! apt-cache show samba-ad-provision >/dev/null 2>&1; then
  $SUDO apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
