# ecr-janitor: `make demo` runs the janitor end to end against a local ECR emulator,
# `make test` runs everything CI runs. Both install what they need on a fresh machine.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_SAM := .venv-sam
SAM_CLI_VERSION := 1.170.0
# Project-local tools come first: cargo-lambda and zig live in the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export CARGO_TERM_COLOR ?= never
EVENT ?= events/scheduled.json
PORT ?= 9000
EMULATOR_PORT ?= 5000
# The Lambda architecture `make build` compiles for: arm64 (as deployed) or x86_64.
ARCH ?= arm64
ifeq ($(ARCH),arm64)
RUST_TARGET := aarch64-unknown-linux-gnu
LAMBDA_ARCH := --arm64
else ifeq ($(ARCH),x86_64)
RUST_TARGET := x86_64-unknown-linux-gnu
LAMBDA_ARCH := --x86-64
else
$(error ARCH must be arm64 or x86_64, not "$(ARCH)")
endif
# The largest arm64 bootstrap (as deployed) `make build` accepts (8 MiB): a guard on the
# release profile and the dependency features (docs/build-size.md). x86_64 builds are larger.
MAX_BOOTSTRAP_BYTES := 8388608

.PHONY: help venv demo test lint fmt build emulator watch invoke deploy clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed ## project-local venv with pinned moto, cargo-lambda (+zig), cfn-lint, pytest

demo: venv ## seed the local ECR emulator, run the Lambda once through cargo-lambda, show what is left
	$(VENV)/bin/python scripts/demo.py

test: venv lint ## everything CI runs: lint, Rust tests, emulator end-to-end and template tests
	cargo test --all-targets
	$(VENV)/bin/python -m pytest tests

lint: venv ## rustfmt, clippy (warnings are errors), cfn-lint
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --bin bootstrap --no-default-features -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

fmt: ## format the Rust code
	cargo fmt --all

build: venv ## the Lambda bootstrap, arm64 as deployed or ARCH=x86_64 (target/lambda/bootstrap/bootstrap)
	rustup target add $(RUST_TARGET)
	cargo lambda build --release $(LAMBDA_ARCH) --bin bootstrap --no-default-features
	@bytes=$$(wc -c < target/lambda/bootstrap/bootstrap); \
	echo "target/lambda/bootstrap/bootstrap ($(ARCH)): $$bytes bytes"; \
	test "$(ARCH)" != arm64 || test "$$bytes" -le $(MAX_BOOTSTRAP_BYTES) || \
	  { echo "over $(MAX_BOOTSTRAP_BYTES) bytes: see docs/build-size.md" >&2; exit 1; }

emulator: venv ## a seeded local ECR emulator on 127.0.0.1:$(EMULATOR_PORT), for watch/invoke by hand
	$(VENV)/bin/python scripts/demo.py --serve $(EMULATOR_PORT)

watch: venv ## local Lambda runtime on 127.0.0.1:$(PORT) with the current environment
	cargo lambda watch -A 127.0.0.1 -P $(PORT)

invoke: venv ## invoke the function served by `make watch` with EVENT=events/x.json
	cargo lambda invoke bootstrap -A 127.0.0.1 -P $(PORT) --data-file $(EVENT)

.PHONY: bench
# Not part of `make test`. SCENARIOS=1000x100,10x20000,1x100000 (REPOSxIMAGES, the default),
# LATENCIES=0,20 (ms per ECR call), QUICK=1 (ten times smaller), BENCH_ARGS=... (see bench/run.py).
bench: venv ## planner micro-benchmark + sweeps of large emulated registries vs a boto3 script; writes bench/RESULTS.md
	@started=$$(date +%s); status=0; \
	if cargo bench --bench planner && \
		cargo build --release --bin ecr-janitor && \
		$(VENV)/bin/python bench/run.py --make-started $$started \
			$(if $(SCENARIOS),--scenarios $(SCENARIOS)) $(if $(LATENCIES),--latencies $(LATENCIES)) \
			$(if $(QUICK),--quick) $(BENCH_ARGS); \
	then :; else status=$$?; fi; \
	elapsed=$$(( $$(date +%s) - started )); \
	echo "make bench took $$(( elapsed / 60 )) min $$(( elapsed % 60 )) s"; exit $$status

$(VENV_SAM)/.installed:
	$(PYTHON) -m venv $(VENV_SAM)
	$(VENV_SAM)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

deploy: venv $(VENV_SAM)/.installed ## sam build + sam deploy --guided (needs AWS credentials; not run in CI)
	rustup target add aarch64-unknown-linux-gnu
	SAM_CLI_TELEMETRY=0 $(VENV_SAM)/bin/sam build
	SAM_CLI_TELEMETRY=0 $(VENV_SAM)/bin/sam deploy --guided

clean: ## remove build output and the venvs
	cargo clean
	rm -rf $(VENV) $(VENV_SAM) .aws-sam
