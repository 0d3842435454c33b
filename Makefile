# The interface to the project. `make` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_VENV := .local/bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_ARGS ?=
CODE := shared functions tests

.DEFAULT_GOAL := help
.PHONY: help dev test check fmt lint types unit e2e demo emulator bench lock clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): constraints.txt requirements-dev.txt shared/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -r requirements-dev.txt
	touch $(STAMP)

dev: $(STAMP) ## Create the virtual environment with everything installed

test: $(STAMP) ## The whole gate, exactly what CI runs: format, lint, types, all tests
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/ruff check $(CODE)
	$(BIN)/mypy shared/fusion_extract functions tests
	$(BIN)/pytest

check: test ## Alias of test

fmt: $(STAMP) ## Format and autofix the code
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

lint: $(STAMP) ## Lint and type-check only
	$(BIN)/ruff check $(CODE)
	$(BIN)/mypy shared/fusion_extract functions tests

unit: $(STAMP) ## Fast tests only (no end-to-end chain)
	$(BIN)/pytest tests/unit

e2e: $(STAMP) ## End-to-end chain tests through fdk and the emulators
	$(BIN)/pytest tests/e2e

demo: $(STAMP) ## Run the whole chain locally against the emulators; bucket left in .local/bucket/
	$(BIN)/python -m tests.demo

emulator: $(STAMP) ## Run the Fusion and OCI emulators in the foreground; endpoints in .local/endpoints.json
	$(BIN)/python -m tests.emulators

$(BENCH_STAMP): requirements-bench.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -r requirements-bench.txt
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP) ## Transfer vs blog pipeline, poll cost, cold start: .local/bench.json + .png (BENCH_ARGS="--quick")
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

lock: ## Re-resolve every pinned version into constraints.txt
	rm -rf .local/lock && $(PYTHON) -m venv .local/lock
	.local/lock/bin/pip install --quiet -r requirements-dev.txt
	{ echo "# Every version the functions, the tests and CI resolve. Regenerate with: make lock"; \
	  .local/lock/bin/pip freeze --exclude-editable; } > constraints.txt

clean: ## Remove the virtual environment, caches and local state
	rm -rf $(VENV) .local .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
