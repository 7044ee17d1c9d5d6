# Every set-up step lives here: `make convert` and `make test` work on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := $(wildcard requirements/*.txt)
# The CPU build of torch 2.13.0 is kept on disk on this kind of machine.
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)),--find-links $(WHEELS))

# `make convert WEIGHTS=DIR` converts the release files in DIR; without it, the default
# weights directory (fetched if absent; untrained demo weights, loudly, if that fails).
WEIGHTS ?=
CONVERT_FLAGS ?=
# A small model converted from demo weights, for the browser tests.
TEST_MODEL := build/test-model
# pytest-xdist: one worker a core; the tests that share a conversion stay on one worker
# (tests/conftest.py), so each conversion is made once. PYTEST_FLAGS= runs them in one process.
PYTEST_FLAGS ?= -n auto --dist loadgroup

.PHONY: install convert test test-model lint format clean
.DEFAULT_GOAL := install

include web/web.mk
include docs.mk
include bench/bench.mk

install: $(STAMP) $(WEB_NPM_STAMP)

$(STAMP): pyproject.toml $(REQUIREMENTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(FIND_LINKS) -r requirements/lock.txt
	$(BIN)/pip install --quiet --no-deps -r requirements/no-deps.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --editable .
	@touch $@

convert: install
	$(BIN)/python -m convert $(if $(WEIGHTS),--weights $(WEIGHTS)) $(CONVERT_FLAGS)

$(TEST_MODEL)/.built: $(STAMP) $(WEB_NPM_STAMP) $(wildcard sanet/*.py convert/*.py convert/*.mjs)
	$(BIN)/python -m convert --demo small --build $(TEST_MODEL) --output $(TEST_MODEL)/model
	@touch $@

test-model: $(TEST_MODEL)/.built

test: install lint web
	$(BIN)/python -m pytest $(PYTEST_FLAGS)
	$(MAKE) --no-print-directory test-web WEB_TEST_MODEL_TARGET=test-model \
		WEB_TEST_MODEL_DIR=$(TEST_MODEL)/model WEB_TEST_SAVED_MODEL=$(TEST_MODEL)/tf/sanet_module

lint: install web-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build site node_modules .pytest_cache .ruff_cache
