# seriesgen — two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export SERIESGEN_DATABASE_URL ?= sqlite:///$(CURDIR)/.seriesgen/seriesgen.db

.PHONY: install install-test demo test lint ui serve soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/seriesgen db upgrade
	$(BIN)/seriesgen demo

lint: install-test
	$(BIN)/ruff check seriesgen_pipeline seriesgen_pipeline_tests benchmarks
	$(BIN)/mypy

test: lint $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/python -m pytest

# The production layout on this machine: daemon + webserver on PostgreSQL (docs/deployment.md).
serve: install
	bash deploy/serve.sh

soak: install-test
	$(BIN)/python -m pytest -m soak

# `make ui` runs on the demo's clock: SERIESGEN_NOW is the instant `seriesgen demo`
# generates at (DEMO_NOW in seriesgen_pipeline/commands.py), so the sensor, the schedule and
# the runs see the demo series as they were loaded, whatever today's date (on the wall
# clock, series past their end date would be retired at once). A SERIESGEN_NOW of your
# own (environment or `make ui SERIESGEN_NOW=...`) wins; `SERIESGEN_NOW= make ui` runs
# on the wall clock (docs/dagster.md, "The demo in the UI").
DEMO_NOW = $(shell $(BIN)/python -c "from seriesgen_pipeline.commands import DEMO_NOW; \
	print(DEMO_NOW.strftime('%Y-%m-%dT%H:%M:%SZ'))")
UI_NOW = $(if $(filter undefined,$(origin SERIESGEN_NOW)),$(DEMO_NOW),$(SERIESGEN_NOW))

ui: install $(DAGSTER_HOME)/dagster.yaml
	@echo "make ui: SERIESGEN_NOW=$(or $(UI_NOW),(the wall clock))"
	$(if $(UI_NOW),SERIESGEN_NOW="$(UI_NOW)",env -u SERIESGEN_NOW) \
	  $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	rm -rf $(VENV) .dagster_home .dagster_home_serve .seriesgen
