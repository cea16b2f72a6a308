# orglink's front door. `make demo` shows it working, `make test` is the one test command.
# Everything a target needs beyond the Rust toolchain is installed into project-local,
# git-ignored folders (.venv for Python tools), so a fresh clone runs as it is.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: test fmt-check clippy unit python-tests demo bench venv clean-venv infra-check lambda-check build

## test: formatting, lints, every Rust test in the workspace, then the Python-driven suites,
## and the SAM template's checks.
test: fmt-check clippy unit python-tests infra-check

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The AWS adapter tests start .venv/bin/moto_server, so the venv comes first.
unit: venv
	$(CARGO) test --workspace

## venv: project-local Python tools (pinned in tests/requirements.txt).
venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

## python-tests: suites that drive our binaries with real third-party clients.
python-tests: venv
	@if ls tests/python/test_*.py >/dev/null 2>&1; then \
		$(CARGO) build -p orglink-sandbox && $(PY) -m pytest -q tests/python; \
	else echo "python-tests: no suites yet"; fi

## demo: what a newcomer runs first.
demo:
	$(CARGO) build --quiet -p orglink-cli
	@echo "== orglink demo (the full pipeline demo is not built yet; see README 'What works today') =="
	@echo "== What orglink makes of messy Website values:"
	./target/debug/orglink check-website \
		"https://www.Acme.com/contact?ref=x" "acme.co.uk" "mailto:sales@globex.com" \
		"jane.doe@gmail.com" "acme.herokuapp.com" "linkedin.com/company/acme" \
		"http://192.168.1.10:8080" "n/a" "www.bücher.de" "acme.com; acme.io"

## bench: measured figures recorded in docs/benchmarks.md.
bench:
	$(CARGO) run --release -p orglink-shared --example reconcile_diff_bench

clean-venv:
	rm -rf $(VENV)

## infra-check: cfn-lint on the SAM template, its expansion by aws-sam-translator (plus the
## least-privilege IAM, queue-timeout and code-agreement checks of infra/check_template.py)
## linted again, and checkov on both with zero failed checks (skips are inline, with reasons).
INFRA_OUT := target/infra
infra-check: venv
	$(VENV)/bin/cfn-lint infra/template.yaml
	$(PY) infra/check_template.py --out $(INFRA_OUT)/template.expanded.json
	$(VENV)/bin/cfn-lint $(INFRA_OUT)/template.expanded.json
	$(VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		-f infra/template.yaml -f $(INFRA_OUT)/template.expanded.json

## lambda-check: the three functions build for Lambda with cargo-lambda (debug; ARCH=arm64 by
## default, as deployed; infra/lambda-build.sh says which compiler provides the aarch64 std).
ARCH ?= arm64
lambda-check: venv
	infra/lambda-build.sh debug $(ARCH)

## build: release zips target/lambda/<function>/bootstrap.zip (ARCH=arm64|x86_64). `sam build`
## (infra/samconfig.toml) builds its own; these are for sizes and direct uploads.
build: venv
	infra/lambda-build.sh release $(ARCH)
