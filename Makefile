# Every target does its own set-up: a fresh clone needs only python3 and make.
unexport PYTHONDONTWRITEBYTECODE
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
SYNCED := $(VENV)/.synced
RUNTIME_SYNCED := $(VENV)/.synced-runtime
CHROMIUM := /usr/bin/chromium
PROMTOOL := /usr/bin/promtool
AMTOOL := /usr/bin/amtool
MONITORING_PACKAGES := prometheus prometheus-alertmanager
AIRFLOW_ENV = export PATH="$(CURDIR)/$(BIN):$$PATH" && eval "$$(churnloop airflow-env)"

.PHONY: help install test test-fast demo airflow mlflow serve lint clean bench

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# Two stamps on one .venv: $(SYNCED) holds the runtime and the dev group (tests, lint,
# benchmarks), $(RUNTIME_SYNCED) the runtime alone (demo, UIs, model server). The runtime sync
# is --inexact, so it leaves an installed dev group in place.
$(SYNCED): pyproject.toml uv.lock | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen
	touch $@ $(RUNTIME_SYNCED)

$(RUNTIME_SYNCED): pyproject.toml uv.lock | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen --no-dev --inexact
	touch $@

install: $(SYNCED)  ## Create .venv from uv.lock, dev tools included (make demo needs none)

# The browser check of the Airflow UI drives Debian's chromium (Playwright downloads no browser).
# Package lists may be missing or stale on a fresh machine: refresh them before installing.
$(CHROMIUM):
	@echo "Installing Debian's chromium (browser check of the Airflow UI)"
	@export DEBIAN_FRONTEND=noninteractive && { apt-get update -qq \
	  && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || echo "chromium not installed (apt-get needs root): the browser check skips (fails under CI=true)"

# tests/observability runs Debian's Prometheus and Alertmanager (promtool, amtool, and the
# servers on loopback ports of their own). A policy-rc.d refusing every start keeps the
# packages' services off 9090 and 9093 while they install (a policy already there is put
# back afterwards); where systemd runs, they are not enabled for the next boot either.
$(PROMTOOL) $(AMTOOL) &:
	@echo "Installing Debian's $(MONITORING_PACKAGES) (the monitoring tests)"
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "$(MONITORING_PACKAGES) not installed (apt-get needs root): the monitoring tests skip (fail under CI=true)"; \
	else \
	  set -e; export DEBIAN_FRONTEND=noninteractive; \
	  policy=/usr/sbin/policy-rc.d; kept=$$(mktemp -d); \
	  if [ -e $$policy ]; then mv $$policy $$kept/; fi; \
	  trap "rm -f $$policy; if [ -e $$kept/policy-rc.d ]; then mv $$kept/policy-rc.d $$policy; fi; rmdir $$kept" EXIT; \
	  printf '#!/bin/sh\nexit 101\n' > $$policy; chmod 755 $$policy; \
	  apt-get update -qq; \
	  apt-get install -y -qq --no-install-recommends $(MONITORING_PACKAGES) >/dev/null; \
	  if [ -d /run/systemd/system ]; then systemctl disable --quiet $(MONITORING_PACKAGES); fi; \
	fi

test: lint $(CHROMIUM) $(PROMTOOL) $(AMTOOL)  ## Lint, then the whole test suite (starts what it needs)
	$(BIN)/pytest

test-fast: $(SYNCED)  ## Unit tests only: no Airflow runs, no services
	$(BIN)/pytest -m "not airflow and not services and not slow"

demo: $(RUNTIME_SYNCED)  ## The whole loop on the embedded default, then a summary
	$(BIN)/churnloop demo

airflow: $(RUNTIME_SYNCED)  ## Airflow UI and scheduler on the embedded default (http://localhost:8080)
	$(AIRFLOW_ENV) && churnloop airflow-setup >/dev/null && exec airflow standalone

mlflow: $(RUNTIME_SYNCED)  ## MLflow UI on the embedded default's runs and models (http://127.0.0.1:5000)
	$(BIN)/churnloop mlflow-ui

serve: $(RUNTIME_SYNCED)  ## Model server for @champion at http://127.0.0.1:8000 (docs at /docs)
	$(BIN)/churnloop serve

bench: $(SYNCED)  ## Run the benchmarks in bench/ (20-40 min on 2 cores), write docs/benchmarks.md
	$(BIN)/python bench/run_all.py --quick

lint: $(SYNCED)  ## ruff check, ruff format --check, the import contracts, declared dependencies (deptry)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/deptry include dags plugins feature_repo
	$(BIN)/deptry tests bench --ignore DEP002,DEP004

clean:  ## Remove the embedded profile's state (.churnloop/); keeps .venv
	rm -rf .churnloop
