# One entry point for people and CI. `make test` builds everything it needs on a fresh machine
# (Python >= 3.11, Node/npm and Java 17 present) and runs lint, types and the full test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test lint typecheck unit bench

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .
	touch $@

node_modules/.installed: package.json
	npm install --no-package-lock --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest

test: lint typecheck unit

# Side-by-side benchmarks against Powertools (not tests): writes docs/benchmarks/. See bench/run.py.
$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

# The layer size needs the SAM CLI (aws-sam-cli==1.170.0) in .venv-sam, built with Python 3.12; without it the
# page says the size was not measured.
bench: setup $(VENV)/.bench-installed
	PYENV_VERSION=3.12.1 $(BIN)/python bench/run.py
