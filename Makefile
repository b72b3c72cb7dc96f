# Tenantry: the two commands of the README are `make demo` and `make test`.
# Both install what they need (Python venv with moto and the checkers, npm tools, chromium and
# tesseract for the browser test) on first use.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
CARGO ?= cargo
TENANTRY := target/debug/tenantry
ifdef CARGO_TARGET_DIR
TENANTRY := $(CARGO_TARGET_DIR)/debug/tenantry
endif

.PHONY: all setup venv npm browser build demo test lint fmt-check clippy cargo-test check-asl check-infra check-iam check-calls target-role schemas package bench soak clean-stack help

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

setup: venv npm browser ## install the local stack's Python tools, the npm checkers and the browser test's tools

# The browser test of the HTML compliance report (tests/it/report_html.rs) renders it in headless
# Chromium and reads the screenshot back with Tesseract (Debian packages; sudo unless root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser: ## install chromium and tesseract (apt) unless they are there
	@command -v chromium >/dev/null && command -v tesseract >/dev/null || \
		($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium tesseract-ocr)

venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

npm: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

build: ## build the workspace (debug)
	$(CARGO) build --workspace

demo: setup build ## the main job on the local stack (no AWS account needed)
	scripts/demo.sh $(TENANTRY)

test: setup lint cargo-test check-asl check-infra check-iam ## every test and check
	@echo "make test: all checks passed"

lint: fmt-check clippy

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Every AWS call a function makes on the local stack is recorded (gateway, TENANTRY_CALL_LOG_DIR)
# and then checked against that function's role in the template (scripts/check_calls.py).
CALL_LOG_DIR := $(abspath $(or $(CARGO_TARGET_DIR),target))/tenantry-calls

# The function binaries first: the workflow tests on the real binaries (tests/it/binaries.rs) run
# them behind the local Lambda Runtime API, and `cargo test` alone builds no binary.
cargo-test: venv
	$(CARGO) build --workspace --bins
	rm -rf $(CALL_LOG_DIR) && mkdir -p $(CALL_LOG_DIR)
	TENANTRY_CALL_LOG_DIR=$(CALL_LOG_DIR) $(CARGO) test --workspace
	$(PY) scripts/check_calls.py $(CALL_LOG_DIR)

check-calls: venv ## the recorded calls of the last `make cargo-test` against the template's roles
	$(PY) scripts/check_calls.py $(CALL_LOG_DIR)

check-asl: npm ## asl-validator on every state machine definition
	@for f in statemachine/*.asl.json; do \
		node_modules/.bin/asl-validator --json-path "$$f" || exit 1; \
	done

# `sam validate --lint` transforms nothing remotely and needs no AWS credentials, only a region;
# telemetry off, so that it sends nothing either.
check-infra: venv ## cfn-lint on the deployment template and the Service Catalog portfolio and product; sam validate --lint; the template's logs, DLQs and alarms (check_template_ops.py)
	$(VENV)/bin/cfn-lint infra/*.yaml infra/service-catalog/*.yaml
	AWS_DEFAULT_REGION=eu-west-1 SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --template infra/template.yaml
	$(PY) scripts/check_template_ops.py infra/template.yaml

check-iam: venv ## parliament, privilege rules and bus-policy cases on the template and the target-account role; the exploit fixtures must be rejected
	$(PY) scripts/check_template_iam.py infra/template.yaml infra/target-account-role.yaml
	$(PY) scripts/target_role.py --check
	$(PY) scripts/check_template_iam.py --must-reject infra/tests/*.yaml

BENCH_DIR := $(abspath $(or $(CARGO_TARGET_DIR),target))/tenantry-bench
BENCH_TENANTS ?= 50

bench: venv ## benchmarks on the local stack (provision: wall time vs critical path; 50 concurrent onboardings; drift at 1/10/100 tenants, fleet projection), recorded in tests/bench/latest.json and .md (with the zip sizes of the last `make package`)
	mkdir -p $(BENCH_DIR)
	BENCH_OUT=$(BENCH_DIR)/provision.json $(CARGO) bench -p tenantry-integration --bench provision --profile dev
	BENCH_OUT=$(BENCH_DIR)/tenants.json TENANTRY_BENCH_TENANTS=$(BENCH_TENANTS) $(CARGO) bench -p tenantry-integration --bench tenants --profile dev
	BENCH_OUT=$(BENCH_DIR)/drift.json $(CARGO) bench -p tenantry-integration --bench drift --profile dev
	$(PY) scripts/bench_record.py $(BENCH_DIR) tests/bench --packages target/lambda/sizes.json --cold-starts target/lambda/cold_starts.json --command "make bench" --readme README.md

soak: venv ## long local-stack suites (the `#[ignore]`d tests): the nightly drift sweep over a fleet of 20 platforms, the network crash sweep over all 48 crash points, the workflow crash sweep over every crash point of node groups, add-ons, access, bootstrap, tenant and decommission, every workflow under three more fault storms on the real binaries
	$(CARGO) test -p tenantry-integration --test integration -- --ignored --nocapture

target-role: venv ## regenerate infra/target-account-role.yaml (the role target accounts deploy) from the template's phase function policies
	$(PY) scripts/target_role.py

schemas: ## regenerate the committed JSON Schemas from the Rust types
	UPDATE_SCHEMAS=1 $(CARGO) test -p tenantry --test schemas --test event_schemas

FUNCTIONS := $(notdir $(wildcard functions/*))

# The zips go to target/lambda/<function>/bootstrap.zip, where infra/template.yaml's CodeUri
# looks, whatever CARGO_TARGET_DIR is; only the function packages are built (not the CLI).
package: venv ## release zips of every function with cargo-lambda (from PyPI), then each zip's size and each binary's cold start (slow from clean: see the README)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check cargo-lambda
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --output-format zip \
	  --lambda-dir target/lambda $(addprefix -p tenantry-fn-,$(FUNCTIONS))
	$(PY) scripts/package_sizes.py target/lambda
	$(PY) scripts/cold_starts.py target/lambda

clean-stack: ## stop a local stack left running by `tenantry dev up`
	-$(TENANTRY) dev down
