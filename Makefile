# healthpipe — one-machine setup, demo and checks. Needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test unit lint typecheck checkov bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Run the whole pipeline on generated sample data, on this machine (no cloud).
demo: setup
	$(BIN)/healthpipe demo

## Lint, type-check and run the whole test suite.
test: setup lint typecheck
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

unit: setup
	$(BIN)/python -m pytest -q tests/unit

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup
	$(BIN)/mypy

## Security scan of the Terraform (0 failed checks expected; skips are inline with reasons).
checkov: setup
	$(BIN)/checkov -d infra/terraform --quiet --compact --skip-download

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) healthpipe-data .pytest_cache .mypy_cache .ruff_cache dist build
