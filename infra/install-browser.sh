#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the dashboard's browser test (issue #12).
# Nothing is downloaded by a test tool (infra/install-debian.sh says how it installs).
exec bash "$(dirname "$0")/install-debian.sh" browser \
  "the dashboard test is skipped without them" chromium chromedriver -- chromium chromium-driver
