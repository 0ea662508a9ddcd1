# One entry point for people and CI. `make test` builds everything it needs on a fresh machine
# (Python >= 3.11, Node/npm and Java 17 present) and runs lint, types and the full test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test lint typecheck unit serve

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

# The template's HTTP functions on 127.0.0.1:$(PORT), with an embedded DynamoDB (moto): no Docker, no AWS account.
TEMPLATE ?= template.yaml
PORT ?= 3000
serve: setup
	$(BIN)/python tools/local_api.py --template $(TEMPLATE) --port $(PORT) --embedded-dynamodb
