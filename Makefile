# trialcast: two commands. `make demo` runs the main job, `make test` runs the whole suite.
# Both create or reuse the virtual environment in .venv (idempotent).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# torch==2.13.0 (CPU) comes from the folder pip is configured to find wheels in (`pip config list`).
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
	$(BIN)/uv pip install -q --python $(BIN)/python --find-links $(FIND_LINKS) -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

# Build the synthetic sample catalogue, embed it, train and gate, then serve the champion.
demo: setup
	$(BIN)/trialcast demo

# Debian packages: Chromium and ChromeDriver for the browser tests, a CJK font for plots, PostgreSQL (once).
SYSTEM_PACKAGES := chromium chromium-driver fonts-wqy-microhei
# PostgreSQL for the forecast-log tests (tests/conftest.py starts a throwaway cluster with initdb + pg_ctl).
SYSTEM_PACKAGES += postgresql
system:
	@dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || \
	  ( (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null)

test: setup system
	$(BIN)/python -m pytest -q

# The part a developer runs often: no trained sample, no server, no browser, no benchmark
# (markers applied automatically by tests/conftest.py). `make test` still runs everything.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser and not benchmark"

lint: setup
	$(BIN)/ruff check features training serving trialcast tests benchmarks

bench: setup
	$(BIN)/python benchmarks/features_speed.py
