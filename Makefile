# trialcast: two commands. `make demo` runs the main job, `make test` runs the whole suite.
# Both create or reuse the virtual environment in .venv (idempotent).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# torch==2.13.0 (CPU) comes from the folder pip is configured to find wheels in (`pip config list`).
# --compile-bytecode: uv compiles the whole site-packages (about 20,000 files); without it every command
# recompiles its imports (this environment sets PYTHONDONTWRITEBYTECODE=1), e.g. `trialcast status` 18 s -> 8 s.
FIND_LINKS ?= $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null || echo /opt/wheels)
STAMP := $(VENV)/.installed
export BENTOML_DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export RAY_USAGE_STATS_ENABLED := 0
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-fast system lint bench

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python --find-links $(FIND_LINKS) -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@# A venv made before --compile-bytecode (uv compiles what it installs): compile the rest once. Some
	@# packages ship files that are not Python 3 on purpose (test data), hence the ignored status.
	@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true
	@touch $(STAMP)

# Build the synthetic sample catalogue, embed it, train and gate, then serve the champion.
demo: setup
	$(BIN)/trialcast demo

# Debian packages: Chromium and ChromeDriver for the browser tests, a CJK font for plots, PostgreSQL (once).
SYSTEM_PACKAGES := chromium chromium-driver fonts-wqy-microhei
# PostgreSQL for the forecast-log tests (tests/conftest.py starts a throwaway cluster with initdb + pg_ctl).
SYSTEM_PACKAGES += postgresql
# strace and iproute2 for tests/serving/test_offline.py (every connect/sendto of a process tree in its
# own network namespace; util-linux's unshare and mount are part of every Debian).
SYSTEM_PACKAGES += strace iproute2
system:
	@dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || \
	  ( (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null)

# Two pytest-xdist workers (one per core), a test file per worker at a time (--dist loadfile keeps
# each module's fixtures, e.g. its server, on one worker); the 3,000-SKU sample is drawn and trained
# once per run and copied to each worker (tests/conftest.py). The 30 slowest steps are listed last.
# --no-loadscope-reorder: files go out in collection order, which tests/conftest.py's LONGEST_FIRST
# sets (the VISUELLE reproduction on one worker, the sample's training on the other, from the start;
# without it xdist sends the files with most tests first and the 8-12 min test late).
# One test alone: `.venv/bin/python -m pytest -q tests/path::name` (no workers).
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=30
test: setup system
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL)

# The part a developer runs often: no trained sample, no server, no browser, no benchmark
# (markers applied automatically by tests/conftest.py). `make test` still runs everything.
test-fast: setup
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL) -m "not slow and not browser and not benchmark"

lint: setup
	$(BIN)/ruff check features training serving trialcast tests benchmarks

bench: setup
	$(BIN)/python benchmarks/features_speed.py
	$(BIN)/python -m benchmarks.laptop
