# Every target creates its virtualenv and installs into it on first use (pinned by constraints/).
# `make test AIRFLOW=2` runs the same suite on Airflow 2.11 in its own venv.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

AIRFLOW ?= 3
PYTHON ?= python3
ifeq ($(AIRFLOW),2)
VENV ?= .venv-airflow2
CONSTRAINTS := constraints/airflow-2.11.txt
AIRFLOW_SPEC := apache-airflow==2.11.2
else
VENV ?= .venv
CONSTRAINTS := constraints/airflow-3.3.txt
AIRFLOW_SPEC := apache-airflow==3.3.2
endif

# This machine sets PYTHONDONTWRITEBYTECODE; compile at install time so imports stay fast.
export UV_COMPILE_BYTECODE := 1
export UV_LINK_MODE := copy
UV := $(shell command -v uv 2>/dev/null || echo .bootstrap/bin/uv)
STAMP := $(VENV)/.installed-$(AIRFLOW)
PYTEST_ARGS ?=

.PHONY: install test lint demo bench chaos simulator constraints clean wheel-check

install: $(STAMP)

.bootstrap/bin/uv:
	$(PYTHON) -m venv .bootstrap
	.bootstrap/bin/pip install -q --disable-pip-version-check uv

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(UV)
	@test -x $(VENV)/bin/python || $(UV) venv -q -p $(PYTHON) $(VENV)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(UV) pip install -q -c $(CONSTRAINTS) "$(AIRFLOW_SPEC)" -e ".[dev]"
	@touch $@

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check airflow_provider_ft dags tests tools bench
	$(VENV)/bin/ruff format --check airflow_provider_ft dags tests tools
	$(VENV)/bin/mypy

# The chaos test alone, with more runs: make chaos RUNS=200 [SEED=...]
RUNS ?= 100
chaos: $(STAMP)
	FT_CHAOS_RUNS=$(RUNS) $(if $(SEED),FT_CHAOS_SEED=$(SEED)) $(VENV)/bin/python -m pytest -m chaos -q

demo: $(STAMP)
	$(VENV)/bin/python tools/demo.py

bench: $(STAMP)
	$(VENV)/bin/python -m bench

# The built wheel in a clean venv, on both Airflow lines: `airflow providers` must list it.
wheel-check: | $(UV)
	UV=$(UV) PYTHON=$(PYTHON) bash tools/check_wheel.sh
	UV=$(UV) PYTHON=$(PYTHON) CONSTRAINTS=constraints/airflow-2.11.txt AIRFLOW_SPEC=apache-airflow==2.11.2 \
		bash tools/check_wheel.sh 2>&1 | grep -v RemovedInAirflow3Warning

simulator: $(STAMP)
	$(VENV)/bin/ft-simulator --port 8089

# Re-pin after changing dependencies: resolves the newest compatible set into constraints/.
constraints: | $(UV)
	echo "$(AIRFLOW_SPEC)" > $(VENV).in
	$(UV) pip compile -q -p $(PYTHON) $(VENV).in pyproject.toml --extra dev \
		--no-emit-package airflow-provider-ft -o $(CONSTRAINTS)
	rm -f $(VENV).in

clean:
	rm -rf .venv .venv-airflow2 .bootstrap .pytest_cache .mypy_cache .ruff_cache .airflow-home*
