#!/usr/bin/env bash
# LemonLDAP::NG 2.16 portal and lemonldap-ng-sessions, for tests/test_identity_lemonldap_real.py
# (a throwaway portal run with plackup; no web server). Idempotent; ~35 s the first time.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# The portal refuses to start ("Initialization failed") without the modules it loads at start.
packages=(lemonldap-ng libapache-session-browseable-perl libgd-securityimage-perl libimage-magick-perl
  libemail-sender-perl fonts-urw-base35 libauthen-webauthn-perl libconvert-base32-perl
  libcookie-baker-xs-perl libdbi-perl libhttp-parser-xs-perl libio-socket-timeout-perl libio-string-perl
  libipc-run-perl liblwp-protocol-https-perl libmime-tools-perl libnet-ldap-perl libstring-random-perl
  libunicode-string-perl)

need=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0

echo "setup: installing LemonLDAP::NG for the identity tests (${#need[@]} packages)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
