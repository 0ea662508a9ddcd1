# One entry point for people and CI. `make demo` runs the local story (Python >= 3.11 only); `make test` builds
# everything it needs on a fresh machine (Python >= 3.11 and 3.12 via pyenv, Node/npm and Java 17 present) and runs
# lint, types and the full test suite, template checks included (tests/test_template.py runs sam build with
# PYENV_VERSION=3.12.1, which puts python3.12 on PATH).
PYTHON ?= python3
PYTHON_MIN := 3.11
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
RUNTIME_VENV := .venv-runtime
PYTHON312 := PYENV_VERSION=3.12.1 python3.12

# First of all: is $(PYTHON) new enough? One line saying what is needed and what was found, instead of a resolver's
# errors. A .venv made by another Python is removed here, so it is rebuilt (tools/check_python.py).
PYTHON_CHECK := $(shell $(PYTHON) tools/check_python.py $(PYTHON_MIN) $(VENV) || echo "lambda-idempotency needs Python >= $(PYTHON_MIN); found no working $(PYTHON) (run make PYTHON=python3.X)")
ifneq ($(PYTHON_CHECK),ok)
$(error $(PYTHON_CHECK))
endif

.PHONY: setup test test-long lint typecheck unit spin-installed demo demo-dynamodb-local serve bench bench-offload build runtime bench-cold-start dist release-check version docs docs-serve

setup: $(VENV)/.installed node_modules/.installed $(SAM_VENV)/.installed $(RUNTIME_VENV)/.installed

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .
	touch $@

node_modules/.installed: package.json
	npm install --no-package-lock --no-audit --no-fund --loglevel=error
	touch $@

# SAM CLI and cfn-lint in their own venv: their pins would fight the test tools'.
$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

# The local Lambda runtime (tools/runtime_pool.py): awslambdaric and boto3, pinned, in a Python 3.12 venv (the
# template's runtime); RIE itself comes from the aws-sam-cli wheel in .venv-sam.
runtime: $(RUNTIME_VENV)/.installed $(SAM_VENV)/.installed

$(RUNTIME_VENV)/.installed: requirements-runtime.txt
	$(PYTHON312) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-runtime.txt
	touch $@

# `sam build` into .aws-sam/build (the functions' code and the layer, as Lambda gets them), offline but for pip.
build: .aws-sam/build/template.yaml

.aws-sam/build/template.yaml: template.yaml $(SAM_VENV)/.installed $(shell find functions layers -type f -not -path '*/__pycache__/*')
	PYENV_VERSION=3.12.1 SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --build-dir .aws-sam/build --cache-dir .aws-sam/cache

# DEMO_FLAGS=--in-process runs the functions in this process (faster, no runtime venv or sam build needed).
DEMO_FLAGS ?=
DEMO_NEEDS := $(if $(findstring --in-process,$(DEMO_FLAGS)),,runtime build)
demo: $(VENV)/.installed $(DEMO_NEEDS)
	$(BIN)/python -m demo $(DEMO_FLAGS)

demo-dynamodb-local: $(VENV)/.installed node_modules/.installed $(DEMO_NEEDS)
	$(BIN)/python -m demo --dynamodb-local $(DEMO_FLAGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/actionlint

typecheck: setup
	$(BIN)/mypy

# The suite mostly waits (DynamoDB Local, moto's server, RIE sandboxes, make serve), so it runs on more pytest-xdist
# workers than cores; tests that must share a worker are grouped in tests/conftest.py (--dist loadgroup).
TEST_WORKERS ?= 4
unit: setup
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

# spin model-checks the lease protocol (tests/test_lease_model.py); a fresh Debian machine gets it (and a C compiler
# for its verifier) here. CI runs as root; GitHub's runner is not, so .github/workflows/test.yml installs them with sudo
# first; elsewhere, install the packages `spin` and `gcc` once.
unit: spin-installed
spin-installed:
	@command -v spin >/dev/null && command -v cc >/dev/null || (apt-get update -qq && apt-get install -y -qq spin gcc)

test: lint typecheck unit release-check docs

# The release: the version is lambda_idempotency.__version__ (hatch reads it). dist/ gets the sdist and the wheel,
# checked by twine; build/ gets the layer zip (deflated), made from `sam build`'s output. The release workflow publishes these.
VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' layers/idempotency/lambda_idempotency/__init__.py)
LAYER_ZIP = build/lambda-idempotency-layer-$(VERSION).zip

dist: $(VENV)/.installed $(SAM_VENV)/.installed
	rm -rf dist build/sam $(LAYER_ZIP)
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(BIN)/twine check --strict dist/*
	PYENV_VERSION=3.12.1 SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build IdempotencyLayer \
		--build-dir build/sam/build --cache-dir build/sam/cache
	$(BIN)/python -c 'import shutil, sys; shutil.make_archive(*sys.argv[1:], "python")' \
		$(LAYER_ZIP:.zip=) zip build/sam/build/IdempotencyLayer

# The artifacts checked as a user gets them: the wheel installed in a fresh venv runs the README's first example.
release-check: dist
	$(BIN)/pytest -m release tests/test_release.py

version:
	@echo $(VERSION)

# The documentation site (mkdocs.yml): every warning is an error. `make docs-serve` previews it on 127.0.0.1:8000.
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

docs-serve: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# The long run of issue 6, apart from `make test`: the slow tests (the 100,000-invocation storm on moto server and
# DynamoDB Local, expiry with DynamoDB Local's real TTL deleter, the lease tests at their literal size), then the
# property tests at 10,000 cases per target, and spin on the lease model to a longer horizon (minutes, 1.5 GB).
# Figures and run time: docs/reliability.md.
test-long: setup
	$(BIN)/pytest -m slow -s --durations=0
	$(BIN)/pytest --hypothesis-profile=long --hypothesis-show-statistics --durations=0 tests/test_bad_input.py tests/test_model.py
	LEASE_MODEL_HORIZON=9 $(BIN)/pytest -s tests/test_lease_model.py

# The template's functions on 127.0.0.1:$(PORT) on the local Lambda runtime (RIE + awslambdaric, one sandbox per
# concurrent request), with an embedded AWS (moto: tables, queues): no Docker, no AWS account. SQS messages reach
# the email function in batches. SERVE_FLAGS=--in-process runs the functions in this process instead (faster).
TEMPLATE ?= template.yaml
PORT ?= 3000
SERVE_FLAGS ?=
serve: $(VENV)/.installed runtime build
	$(BIN)/python tools/local_api.py --template $(TEMPLATE) --port $(PORT) --embedded-dynamodb $(SERVE_FLAGS)

# Side-by-side benchmarks against Powertools (not tests): writes docs/benchmarks/. See bench/run.py.
$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

# The layer size needs the SAM CLI (aws-sam-cli==1.170.0) in .venv-sam, built with Python 3.12; without it the
# page says the size was not measured.
bench: setup $(VENV)/.bench-installed
	PYENV_VERSION=3.12.1 $(BIN)/python bench/run.py

# Cold start the Lambda way (about 3 minutes): Init Duration of new runtime processes on RIE, a minimal handler with
# ours vs with Powertools' idempotency, same layer, 30 cold starts each -> docs/benchmarks/cold-start-rie.md.
bench-cold-start: $(VENV)/.installed runtime build
	$(BIN)/python bench/cold_start_rie.py --runs 30

# What offloading results to S3 adds (DynamoDB Local + moto's S3, on this machine): writes docs/benchmarks/offload.md.
bench-offload: setup
	$(BIN)/python bench/offload.py
