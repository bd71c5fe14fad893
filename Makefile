# RouterWise: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

$(VENV)/.all: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[all]'
	touch $@ $(VENV)/.test $(VENV)/.base

install: $(VENV)/.all

demo: $(VENV)/.base
	$(BIN)/routerwise plan --out out/demo

lint: $(VENV)/.test
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# the suite without the tests marked slow (end-to-end scenario plans, exhaustive search)
test-fast: lint
	$(BIN)/pytest -q -m "not slow"

bench: $(VENV)/.test
	$(BIN)/python benchmarks/routing_speed.py
	$(BIN)/python benchmarks/estimate_speed.py
	$(BIN)/python benchmarks/search_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
