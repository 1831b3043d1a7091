#!/usr/bin/env bash
# Drift check (issue #16): install the project from the *ranges* in pyproject.toml — no lock, no
# pip cache, so pip resolves the newest releases they admit today — into a scratch virtualenv and
# run the unit tests (no stack, no model) there. The locked environment is what `make test` uses;
# this run tells whether a user who installs the package today gets a working one.
#
# Usage: infra/drift.sh [PYTHON]. Prints the versions it resolved for the packages that broke us
# before, then pytest's summary. Exit status: pytest's (0 when the unit tests pass).
set -euo pipefail
PY=${1:-python3}
cd "$(dirname "$0")/.."
house=$(bash infra/build-llama.sh "$PY")
scratch=$(mktemp -d "${TMPDIR:-/tmp}/lvlup-drift-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
"$PY" -m venv "$scratch/venv"
vpy="$scratch/venv/bin/python"
start=$(date +%s)
"$vpy" -m pip install -q --no-cache-dir --upgrade pip wheel setuptools
# the copy keeps the scratch install from touching the checkout's egg-info
mkdir -p "$scratch/src"
git ls-files -z --cached --others --exclude-standard \
  | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$scratch/src"
# editable: the compiled codec (schemas/_avrovm, setup.py) is built beside the sources the tests
# import, as in `make setup`
"$vpy" -m pip install -q --no-cache-dir --find-links "$house" --only-binary llama-cpp-python \
  -e "$scratch/src[dev]"
echo "drift: resolved in $(( $(date +%s) - start )) s:"
"$vpy" -m pip list --format=freeze 2>/dev/null \
  | grep -iE '^(litellm|pydantic|pydantic-core|confluent-kafka|aiokafka|faust-streaming|starlette|fastavro|chdb|sqlalchemy|psycopg)==' \
  | sed 's/^/  /'
cd "$scratch/src"
"$vpy" -m pytest -q -p no:cacheprovider -m "not integration and not model" \
  --ignore=tests/integration --ignore=tests/api -rfE
