# orglink's front door. `make demo` shows it working, `make test` is the one test command.
# Everything a target needs beyond the Rust toolchain is installed into project-local,
# git-ignored folders (.venv for Python tools), so a fresh clone runs as it is.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# A full `make test` builds every test binary once: incremental caches would only double the
# disk it needs (CI machines have little to spare). Set CARGO_INCREMENTAL=1 to keep them.
export CARGO_INCREMENTAL ?= 0
# ORGLINK_CI=1 (.ci/run sets it): a step removes the build directories only it uses once it has
# passed (the arm64 lambda check's, the fuzz targets'), so the run's peak disk stays small.
ORGLINK_CI ?= 0

.PHONY: test fmt-check clippy unit python-tests demo bench bench-reconcile bench-backfill bench-lambda venv clean-venv infra-check lambda-check build chaos

## test: formatting, lints, the dependency checks (deny), every Rust test in the workspace, a
## few seconds of each fuzz target, then the Python-driven suites, the SAM template's checks and
## a debug build of the three Lambda functions for arm64 (lambda-check).
test: fmt-check clippy deny unit fuzz-smoke python-tests infra-check lambda-check

fmt-check:
	$(CARGO) fmt --all --check

# The second line: the pure core alone, without the `aws` feature the workspace turns on (the
# fuzz targets build it that way).
clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p orglink-shared --lib -- -D warnings

# The AWS adapter tests start moto from .venv (tests/harness/moto/moto_server), so the venv comes first.
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

## demo: what a newcomer runs first: a generated messy world of 2,000 accounts on the sandbox and
## the template's stack on moto; config check, the audit (target/demo/audit.html), backfill plan
## and apply, live events through intake and four workers, a reconcile, what happened, and a
## scan of every log line and output for the run's canary secrets (fails on a hit).
## Everything it starts, it stops.
demo: venv
	$(CARGO) build --quiet -p orglink-cli -p orglink-sandbox
	@echo "== What orglink makes of messy Website values:"
	./target/debug/orglink check-website \
		"https://www.Acme.com/contact?ref=x" "acme.co.uk" "mailto:sales@globex.com" \
		"jane.doe@gmail.com" "acme.herokuapp.com" "linkedin.com/company/acme" \
		"http://192.168.1.10:8080" "n/a" "www.bücher.de" "acme.com; acme.io"
	$(CARGO) run --quiet -p orglink-cli --example demo

## bench: measured figures recorded in docs/benchmarks.md.
bench: bench-reconcile bench-backfill bench-worker bench-lambda
	$(CARGO) run --release -p orglink-shared --example reconcile_diff_bench

## bench-worker: events per second through the local runner (the worker's real handler on the
## template's stack on moto, the sandbox over loopback), 1 and 4 workers; CPU by process.
bench-worker: venv
	$(CARGO) build -p orglink-sandbox
	$(CARGO) run -p orglink-e2e --example worker_bench -- 100 1 4

## bench-lambda: cold starts of the three release binaries (x86_64) against a local stand-in
## for the Lambda Runtime API, with the template's environment on moto and the sandbox: time from
## process start to ready (first invocation/next) and to the first response, peak RSS, sizes.
BENCH_LAMBDA_RUNS ?= 10
bench-lambda: venv
	$(CARGO) build --release -p orglink-intake -p orglink-sync-worker -p orglink-reconcile
	$(CARGO) build -p orglink-sandbox
	$(CARGO) run -p orglink-e2e --example lambda_ready_bench -- $(BENCH_LAMBDA_RUNS)

## chaos: the chaos run of docs/reliability.md (issue 10): a generated world of CHAOS_ACCOUNTS
## accounts, CHAOS_EVENTS events through intake, the queue on moto and four workers beside a
## backfill, under faults; then a reconcile. Prints its report and fails on any violation.
## CHAOS_SPEEDUP > 1 runs the durations and budgets that many times faster. Not in make test
## (its small twin, chaos_smoke, is).
CHAOS_ACCOUNTS ?= 2000
CHAOS_EVENTS ?= 10000
CHAOS_SPEEDUP ?= 1
chaos: venv
	$(CARGO) build --quiet -p orglink-sandbox
	ORGLINK_CHAOS_ACCOUNTS=$(CHAOS_ACCOUNTS) ORGLINK_CHAOS_EVENTS=$(CHAOS_EVENTS) \
		ORGLINK_CHAOS_SPEEDUP=$(CHAOS_SPEEDUP) \
		$(CARGO) test -p orglink-e2e --test chaos -- --ignored --exact chaos_full --nocapture

## bench-backfill: plan and apply of a 100,000-account world against the simulators (release),
## API calls by system against the floor; then 5,000 accounts with Zendesk truly at 700/minute.
bench-backfill:
	$(CARGO) run --release -p orglink-shared --example backfill_bench -- 100000
	$(CARGO) run --release -p orglink-shared --example backfill_bench -- 5000 700

## e2e-5000: the backfill proofs of issue 7 on a generated world of 5,000 accounts (make test
## runs them on 1,000 and 300): plan + apply + reconcile against the truth, and apply beside
## four workers and 500 live events. Long (moto is slow; docs/backfill.md has the times).
.PHONY: e2e-5000
e2e-5000: venv
	$(CARGO) build --quiet -p orglink-sandbox
	ORGLINK_E2E_BACKFILL_ACCOUNTS=5000 $(CARGO) test -p orglink-e2e --test backfill --test backfill_live -- \
		--test-threads 1 --nocapture a_generated_world_ends_as_its_truth backfill_and_500_live_events

## bench-reconcile: a 100,000-account reconcile against the sandbox, once uninterrupted and once
## through checkpoints (a page limit per invocation: 70, so the 50-page account stream, read
## whole in one invocation, is cut once and started over); API calls against the floor.
bench-reconcile:
	$(CARGO) run --release -p orglink-reconcile --example reconcile_bench -- 100000 70

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
	@if [ "$(ORGLINK_CI)" = 1 ]; then rm -rf target/arm64-debian-rustc target/lambda; fi

## build: release zips <target dir>/lambda/<function>/bootstrap.zip (ARCH=arm64|x86_64; the
## script prints each path and size). `sam build` (infra/samconfig.toml) builds its own; these
## are for sizes and direct uploads.
build: venv
	infra/lambda-build.sh release $(ARCH)

# ---------------------------------------------------------------------------------------------
# Fuzzing and dependency checks (docs/reliability.md, docs/security.md). Tools are built from
# crates.io into .tools, pinned.
TOOLS := .tools
CARGO_FUZZ := $(TOOLS)/bin/cargo-fuzz
CARGO_DENY := $(TOOLS)/bin/cargo-deny
HOST := $(shell rustc -vV | sed -n 's/^host: //p')
FUZZ_TARGETS := domain_normalizer account_id intake_signature intake_batch soql_literal zendesk_webhook
# cargo-fuzz passes nightly-only flags (-Cpasses=sancov-module...); RUSTC_BOOTSTRAP lets the
# stable compiler take them. `-s none`: orglink's code is safe Rust, so the properties and
# panics are what a run checks (overflow checks and debug assertions stay on).
FUZZ := PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" RUSTC_BOOTSTRAP=1 $(CARGO) fuzz
FUZZ_FEATURES := --sanitizer none --features sandbox,intake
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_RUNS ?= 5000000

.PHONY: fuzz-smoke fuzz-long deny

$(CARGO_FUZZ):
	CARGO_PROFILE_DEV_DEBUG=0 $(CARGO) install --quiet --debug --root $(TOOLS) cargo-fuzz --version 0.13.2 --locked

$(CARGO_DENY):
	CARGO_PROFILE_DEV_DEBUG=0 $(CARGO) install --quiet --debug --root $(TOOLS) cargo-deny --version 0.20.2 --locked

## fuzz-smoke: every fuzz target for FUZZ_SMOKE_SECONDS from its seeds (a debug build; new
## inputs go to target/fuzz-smoke, never into the committed seeds).
fuzz-smoke: $(CARGO_FUZZ)
	rustfmt --edition 2024 --check fuzz/fuzz_targets/*.rs
	$(FUZZ) build --dev $(FUZZ_FEATURES)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p target/fuzz-smoke/$$t; \
		seeds=""; if [ -d fuzz/seeds/$$t ]; then seeds=fuzz/seeds/$$t; fi; \
		echo "fuzz-smoke: $$t"; \
		fuzz/target/$(HOST)/debug/$$t target/fuzz-smoke/$$t $$seeds \
			-max_total_time=$(FUZZ_SMOKE_SECONDS) -artifact_prefix=target/fuzz-smoke/$$t- \
			> target/fuzz-smoke/$$t.log 2>&1 \
			|| { tail -n 40 target/fuzz-smoke/$$t.log; echo "fuzz-smoke: $$t failed; the input is in target/fuzz-smoke/$$t-*"; exit 1; }; \
		grep -E '^Done [0-9]+ runs' target/fuzz-smoke/$$t.log; \
	done
	@if [ "$(ORGLINK_CI)" = 1 ]; then rm -rf fuzz/target; fi

## fuzz-long: the long runs recorded in docs/reliability.md (FUZZ_RUNS executions per target,
## one target at a time, release build, corpus kept in fuzz/corpus).
fuzz-long: $(CARGO_FUZZ)
	$(FUZZ) build $(FUZZ_FEATURES)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t; \
		seeds=""; if [ -d fuzz/seeds/$$t ]; then seeds=fuzz/seeds/$$t; fi; \
		/usr/bin/time -f "$$t: %e s" fuzz/target/$(HOST)/release/$$t fuzz/corpus/$$t $$seeds \
			-runs=$(FUZZ_RUNS) -print_final_stats=1 -artifact_prefix=fuzz/artifacts/$$t- 2>&1 \
			| grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)|: [0-9.]+ s$$|panicked|SUMMARY'; \
	done

## deny: cargo-deny offline: licences, bans and sources always (deny.toml); advisories too when a
## RustSec advisory-db snapshot is provided (ADVISORY_DB_TARBALL, a `git archive` tarball; none is
## committed: this project's machines reach no git host, and a copy fetched from elsewhere is not
## ours to commit). docs/security.md says how to provide one.
ADVISORY_DB_TARBALL ?= ../shared/advisory-db.tar.xz
ADVISORY_DB_DATE ?= 2026-08-21T08:28:40+02:00
# cargo-deny's directory for the db-urls entry in deny.toml.
ADVISORY_DB := $(TOOLS)/advisory-dbs/advisory-db-3157b0e258782691

deny: $(CARGO_DENY)
	@if [ -f "$(ADVISORY_DB_TARBALL)" ]; then \
		rm -rf $(ADVISORY_DB) && mkdir -p $(ADVISORY_DB) && tar -xJf "$(ADVISORY_DB_TARBALL)" -C $(ADVISORY_DB) && \
		git -C $(ADVISORY_DB) init -q && git -C $(ADVISORY_DB) add -A && \
		GIT_AUTHOR_DATE=$(ADVISORY_DB_DATE) GIT_COMMITTER_DATE=$(ADVISORY_DB_DATE) \
			git -C $(ADVISORY_DB) -c user.name=orglink -c user.email=orglink@localhost \
			-c commit.gpgsign=false commit -q -m "RustSec advisory-db snapshot" && \
		$(CARGO_DENY) --offline check; \
	else \
		echo "deny: advisories NOT checked: no RustSec snapshot at $(ADVISORY_DB_TARBALL) (docs/security.md)"; \
		$(CARGO_DENY) --offline check licenses bans sources; \
	fi
	@# deny.toml lets orglink-cli wrap rsa for the demo's throwaway key: never in what ships.
	@if $(CARGO) tree --offline -q -p orglink-cli -e normal,build | grep -q ' rsa v'; then \
		echo "deny: rsa reached orglink-cli's normal dependencies (deny.toml allows it for the demo only)"; exit 1; \
	fi
