#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the dashboard's browser test (issue #12).
# Nothing is downloaded by a test tool; as root on Debian only, otherwise says what to do.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-browser: need Debian's chromium and chromium-driver (apt-get install" \
       "chromium chromium-driver as root); the dashboard test is skipped without them" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || {
  apt-get update -q >/dev/null
  apt-get install -y -q chromium chromium-driver >/dev/null
}
echo "install-browser: $(chromium --version)"
