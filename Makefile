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

.PHONY: setup run test test-stack-up test-stack-down lint bench chaos clean-data

setup: $(STAMP)

# llama-cpp-python is built once into a wheelhouse cache with portable AVX2 flags
# (infra/build-llama.sh says why) and installed from there only: --only-binary keeps pip
# from ever building its sdist with the default, AMX-crashing flags.
$(STAMP): pyproject.toml infra/build-llama.sh
	@start=$$(date +%s); \
	test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	$(PY) -m pip install -q --upgrade pip wheel setuptools; \
	house=$$(bash infra/build-llama.sh $(PY)); \
	$(PY) -m pip install -q --find-links "$$house" --only-binary llama-cpp-python -e '.[dev]'; \
	bash infra/install-browser.sh; \
	echo "make setup: done in $$(( $$(date +%s) - start )) s"
	@touch $(STAMP)

run: setup
	$(LVLUP) run

test: setup
	$(TEST_ENV) $(PY) -m pytest -q -rfE $(PYTEST_ARGS)

test-stack-up: setup
	$(TEST_ENV) $(LVLUP) up

test-stack-down:
	$(TEST_ENV) $(LVLUP) down

PACKAGES := $(wildcard streams agents schemas sinks inference api infra)

lint: setup
	$(VENV)/bin/ruff check $(PACKAGES) tests
	$(VENV)/bin/mypy $(PACKAGES)

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
