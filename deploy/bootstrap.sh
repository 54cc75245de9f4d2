#!/usr/bin/env bash
# Set up intake on Debian 12: the system tools it calls, and a virtual environment
# in .venv with the project installed. Safe to run again; it only adds what is missing.
#   deploy/bootstrap.sh          tools for running intake
#   deploy/bootstrap.sh --test   plus what the tests need (LibreOffice makes .doc/.xls; Dovecot
#                                is the IMAP server the tests start on loopback; systemd gives
#                                systemd-analyze, which checks deploy/intake.service;
#                                docker-compose checks deploy/compose.yaml, no engine needed)
set -euo pipefail
cd "$(dirname "$0")/.."

# file: patool's type detection; unar: RAR incl. RAR5, encrypted and split sets;
# 7zip: 7z and zip; antiword: legacy .doc. Never unrar-free (cannot decrypt, mangles
# split sets). fonts-wqy-microhei: a CJK font, so that the digest's chart draws unit names.
# sqlite3: the online backup of the SQLite database (docs/operations.md).
packages=(file unar 7zip libarchive-tools antiword ffmpeg python3-venv fonts-wqy-microhei sqlite3)
if [ "${1:-}" = "--test" ]; then
  packages+=(libreoffice-writer-nogui libreoffice-calc-nogui zip dovecot-imapd systemd docker-compose)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# The distribution was called "intake" before it became wuxiao-intake: an old editable
# install would stay beside the new one and share bin/intake; remove it (and its
# metadata in the checkout) first, so that the install below owns the command alone.
if .venv/bin/pip show -q intake >/dev/null 2>&1; then
  .venv/bin/pip uninstall -q -y intake
fi
rm -rf intake.egg-info
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
