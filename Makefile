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

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	rm -rf $(VENV) .dagster_home .dagster_home_serve .seriesgen
