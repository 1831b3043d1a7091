# Lvl_UP Streams — the README's two commands are `make run` and `make test`; both set up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LVLUP := $(VENV)/bin/lvlup
STAMP := $(VENV)/.lvlup-setup
# The test stack's own data dir and ports (tests/conftest.py uses the same defaults), so tests
# never disturb a running `make run`.
TEST_ENV := LVLUP_DATA_DIR=$(CURDIR)/.lvlup-test LVLUP_KAFKA__PORT=49092 \
            LVLUP_KAFKA__CONTROLLER_PORT=49093 LVLUP_POSTGRES__PORT=55433
PYTEST_ARGS ?=
LLAMA_VERSION ?= 0.3.36

.PHONY: setup lock drift audit run test test-stack-up test-stack-down lint bench chaos clean-data

setup: $(STAMP)

# The environment is locked: requirements.lock pins every dependency (dev tools included) with
# its hashes, and pip installs exactly that (--require-hashes --no-deps). llama-cpp-python is the
# one exception: it is built once into a wheelhouse cache with portable AVX2 flags
# (infra/build-llama.sh says why) and installed from there only — --only-binary keeps pip from
# ever building its sdist with the default, AMX-crashing flags. The ranges in pyproject.toml stay
# for users who install the package into their own environment; `make lock` refreshes the lock
# from them and `make drift` tests a fresh resolution of the ranges without it.
$(STAMP): pyproject.toml requirements.lock setup.py schemas/_avrovm.pyx \
  sinks/clickhouse/_columns.pyx infra/build-llama.sh infra/install-debian.sh
	@start=$$(date +%s); \
	test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	$(PY) -m pip install -q --upgrade 'pip>=24' wheel 'setuptools>=77'; \
	house=$$(LVLUP_LLAMA_CPP_VERSION=$(LLAMA_VERSION) bash infra/build-llama.sh $(PY)); \
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements.lock; \
	$(PY) -m pip install -q --no-deps --no-index --find-links "$$house" --only-binary :all: \
	  "llama-cpp-python==$(LLAMA_VERSION)"; \
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .; \
	$(PY) -m pip check; \
	bash infra/install-browser.sh; \
	bash infra/install-sandbox.sh; \
	echo "make setup: done in $$(( $$(date +%s) - start )) s"
	@touch $(STAMP)

# Refresh the lock from the ranges in pyproject.toml (newest versions they admit), with hashes.
lock: setup
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  --no-emit-package llama-cpp-python --upgrade -o requirements.lock
	@echo "make lock: requirements.lock refreshed; run make setup && make test before committing"

# Drift check: resolve the ranges afresh (no lock, no pip cache) in a scratch virtualenv and run
# the unit tests there, so a new release that breaks us shows before a user meets it.
drift: setup
	bash infra/drift.sh $(PYTHON)

run: setup
	$(LVLUP) run

test: setup
	$(TEST_ENV) $(PY) -m pytest -q -rfE $(PYTEST_ARGS)

test-stack-up: setup
	$(TEST_ENV) $(LVLUP) up

test-stack-down:
	$(TEST_ENV) $(LVLUP) down

# Known vulnerabilities in the locked versions (pip-audit, PyPI's advisory data). Packages the
# index cannot answer for are listed as skipped, never as clean.
audit: setup
	$(VENV)/bin/pip-audit -r requirements.lock --disable-pip --no-deps --progress-spinner off

PACKAGES := $(wildcard streams agents schemas sinks inference api infra)

# ruff, strict mypy, and the layer contract (pyproject [tool.importlinter]: nothing imports
# upward; api never imports agents — docs/ARCHITECTURE.md, "Layers").
lint: setup
	$(VENV)/bin/ruff check $(PACKAGES) tests
	$(VENV)/bin/mypy $(PACKAGES)
	$(VENV)/bin/lint-imports

bench: setup
	$(TEST_ENV) $(LVLUP) up
	$(TEST_ENV) $(LVLUP) bench all --write BENCHMARKS.md

# the full fault run (issue #11): 100k events, 20 random faults, on the test stack
chaos: setup
	$(TEST_ENV) $(LVLUP) up
	$(TEST_ENV) $(LVLUP) chaos --events 100000 --faults 20 --write BENCHMARKS.md

clean-data:
	-$(LVLUP) down
	-$(TEST_ENV) $(LVLUP) down
	rm -rf .lvlup .lvlup-test
