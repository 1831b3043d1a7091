#!/usr/bin/env bash
# Install Debian packages the project needs beside Python (Chromium, bubblewrap), once.
#
# Usage: infra/install-debian.sh NAME "WHY WITHOUT IT" CMD... -- PKG...
# Exits 0 at once when every CMD is on PATH. Otherwise, as root on Debian, runs
# `apt-get install PKG...` (with `apt-get update` only if the first try fails) and prints the
# installed version of the first CMD; elsewhere it says what to install and why, and exits 0
# (what needs the package then refuses or skips with that reason). Nothing is downloaded but
# Debian's packages.
set -euo pipefail
name=$1 why=$2
shift 2
cmds=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do cmds+=("$1"); shift; done
[ "$#" -gt 0 ] || { echo "install-debian: usage: NAME WHY CMD... -- PKG..." >&2; exit 2; }
shift
pkgs=("$@")
missing=0
for c in "${cmds[@]}"; do command -v "$c" >/dev/null || missing=1; done
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-$name: need Debian's ${pkgs[*]} (apt-get install ${pkgs[*]} as root); $why" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${pkgs[@]}" >/dev/null 2>&1 || {
  apt-get update -q >/dev/null
  apt-get install -y -q "${pkgs[@]}" >/dev/null
}
echo "install-$name: $("${cmds[0]}" --version 2>&1 | head -1)"
