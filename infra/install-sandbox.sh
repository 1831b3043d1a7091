#!/usr/bin/env bash
# Debian's bubblewrap for the sandbox that runs the model's code (issue #17). Without bwrap
# every sandboxed run is refused (fails closed) and the sandbox tests say why they skip.
exec bash "$(dirname "$0")/install-debian.sh" sandbox \
  "sandboxed runs are refused without it" bwrap -- bubblewrap
