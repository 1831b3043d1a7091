#!/usr/bin/env bash
# Debian's bubblewrap for the sandbox that runs the model's code (issue #17). Nothing else is
# installed; as root on Debian only, otherwise says what to do. Without bwrap every sandboxed run
# is refused (fails closed) and the sandbox tests say why they skip.
set -euo pipefail
if command -v bwrap >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-sandbox: need Debian's bubblewrap (apt-get install bubblewrap as root);" \
       "sandboxed runs are refused without it" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q bubblewrap >/dev/null 2>&1 || {
  apt-get update -q >/dev/null
  apt-get install -y -q bubblewrap >/dev/null
}
echo "install-sandbox: $(bwrap --version)"
