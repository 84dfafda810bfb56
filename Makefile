# healthpipe — one-machine setup, demo and checks. Needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# runtime only (what `make demo` needs) / runtime + dev tools (what `make test` needs)
RUNTIME := $(VENV)/.runtime
DEV     := $(VENV)/.installed
BENCH   := $(VENV)/.bench
# tests run in parallel (pytest-xdist); PYTEST_ARGS adds to or overrides it. loadgroup: tests
# are dealt out one by one, but those marked with one xdist_group share a worker (and so its
# module fixture: the Lambda zips are built once)
PYTEST_WORKERS ?= auto
PYTEST_XDIST := -n $(PYTEST_WORKERS) --dist loadgroup

.PHONY: setup setup-runtime demo test test-e2e test-clock unit lint typecheck checkov asl bench clean

# The host's pip installs into the venv when it can (`pip --python`, pip >= 22.3): creating a
# venv without its own pip copy is seconds faster; .pyc files are compiled on first import.
PIP_FLAGS := --quiet --disable-pip-version-check --no-compile
pip_install = if [ -x $(BIN)/pip ]; then $(BIN)/python -m pip install $(PIP_FLAGS) $(1); \
	else $(PYTHON) -m pip --python $(BIN)/python install $(PIP_FLAGS) $(1); fi

$(BIN)/python:
	if $(PYTHON) -m pip --version >/dev/null 2>&1; then \
		$(PYTHON) -m venv --without-pip $(VENV); else $(PYTHON) -m venv $(VENV); fi

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(call pip_install,-e .)
	touch $(RUNTIME)

$(DEV): pyproject.toml $(RUNTIME)
	$(call pip_install,-e '.[dev]')
	touch $(DEV)

# the harness's peers (polars) beside the dev tools; `make bench` only
$(BENCH): pyproject.toml $(DEV)
	$(call pip_install,-e '.[bench]')
	touch $(BENCH)

setup-runtime: $(RUNTIME)

setup: $(DEV)

## Run the whole pipeline on generated sample data, on this machine (no cloud, no dev tools).
demo: setup-runtime
	$(BIN)/healthpipe demo

## Lint, type-check and run the whole test suite, in parallel.
test: setup lint typecheck
	$(BIN)/python -m pytest -q $(PYTEST_XDIST) $(PYTEST_ARGS)

## The end-to-end tests only.
test-e2e: setup
	$(BIN)/python -m pytest -q $(PYTEST_XDIST) tests/e2e $(PYTEST_ARGS)

## The end-to-end tests whose behaviour depends on today's date (marker `clock`); CI runs
## them with the clock shifted by faketime.
test-clock: setup
	$(BIN)/python -m pytest -q $(PYTEST_XDIST) -m clock tests/e2e $(PYTEST_ARGS)

unit: setup
	$(BIN)/python -m pytest -q $(PYTEST_XDIST) tests/unit

## Ruff, and the import contracts of docs/architecture.md's layer table (pyproject.toml).
lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/lint-imports --no-logo
	$(BIN)/python scripts/layers_doc.py --check
	$(BIN)/python scripts/count_untyped.py --check
	$(BIN)/vulture src vulture_allowlist.py --min-confidence 60

typecheck: setup
	$(BIN)/mypy

## Security scan of the Terraform (0 failed checks expected; skips are inline with reasons).
checkov: setup
	$(BIN)/checkov -d infra/terraform --quiet --compact --skip-download

## The Step Functions definition through a real ASL validator (npm asl-validator, installed
## from tools/asl's lockfile; needs node and npm). CI runs it before `make test`.
asl: setup
	cd tools/asl && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	$(BIN)/python scripts/validate_asl.py

## The benchmark harness (docs/scaling.md), its peers installed: every target MET or NOT MET.
bench: $(BENCH)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) healthpipe-data .pytest_cache .mypy_cache .ruff_cache dist build
