# Every set-up step lives here: `make convert` and `make test` work on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := $(wildcard requirements/*.txt)
# The CPU build of torch 2.13.0 is kept on disk on this kind of machine.
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)),--find-links $(WHEELS))

.PHONY: install test lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml $(REQUIREMENTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(FIND_LINKS) -r requirements/lock.txt
	$(BIN)/pip install --quiet --no-deps -r requirements/no-deps.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --editable .
	@touch $@

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
