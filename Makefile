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
CHROMIUM := /usr/bin/chromium
PROMTOOL := /usr/bin/promtool
AMTOOL := /usr/bin/amtool
MONITORING_PACKAGES := prometheus prometheus-alertmanager
AIRFLOW_ENV = export PATH="$(CURDIR)/$(BIN):$$PATH" && eval "$$(churnloop airflow-env)"

.PHONY: help install test test-fast demo airflow serve lint clean bench

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(SYNCED): pyproject.toml uv.lock | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen
	touch $@

install: $(SYNCED)  ## Create .venv from uv.lock

# The browser check of the Airflow UI drives Debian's chromium (Playwright downloads no browser).
# Package lists may be missing or stale on a fresh machine: refresh them before installing.
$(CHROMIUM):
	@echo "Installing Debian's chromium (browser check of the Airflow UI)"
	@export DEBIAN_FRONTEND=noninteractive && { apt-get update -qq \
	  && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || echo "chromium not installed (apt-get needs root): the browser check skips (fails under CI=true)"

# tests/observability runs Debian's Prometheus and Alertmanager (promtool, amtool, and the
# servers on loopback ports of their own). The packages enable and may start services on
# 9090 and 9093: those are stopped and disabled at once, so nothing is left listening.
$(PROMTOOL) $(AMTOOL) &:
	@echo "Installing Debian's $(MONITORING_PACKAGES) (the monitoring tests)"
	@export DEBIAN_FRONTEND=noninteractive && { apt-get update -qq \
	  && apt-get install -y -qq --no-install-recommends $(MONITORING_PACKAGES) >/dev/null \
	  && { { systemctl disable --now $(MONITORING_PACKAGES) \
	         || for name in $(MONITORING_PACKAGES); do service $$name stop; done; } >/dev/null 2>&1 \
	       || true; }; } \
	  || echo "$(MONITORING_PACKAGES) not installed (apt-get needs root): the monitoring tests skip (fail under CI=true)"

test: lint $(CHROMIUM) $(PROMTOOL) $(AMTOOL)  ## Lint, then the whole test suite (starts what it needs)
	$(BIN)/pytest

test-fast: $(SYNCED)  ## Unit tests only: no Airflow runs, no services
	$(BIN)/pytest -m "not airflow and not services and not slow"

demo: $(SYNCED)  ## The whole loop on the embedded default, then a summary
	$(BIN)/churnloop demo

airflow: $(SYNCED)  ## Airflow UI and scheduler on the embedded default (http://localhost:8080)
	$(AIRFLOW_ENV) && churnloop airflow-setup >/dev/null && exec airflow standalone

serve: $(SYNCED)  ## Model server for @champion at http://127.0.0.1:8000 (docs at /docs)
	$(BIN)/churnloop serve

bench: $(SYNCED)  ## Run the benchmarks in bench/ (20-40 min on 2 cores), write docs/benchmarks.md
	$(BIN)/python bench/run_all.py --quick

lint: $(SYNCED)  ## ruff check, ruff format --check, the import contracts (pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:  ## Remove the embedded profile's state (.churnloop/); keeps .venv
	rm -rf .churnloop
