# The README's two commands: `make demo` and `make test`. Both create .venv and install
# what they need from the package registries; nothing has to be installed by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py src/netsleuth/capture/_framing.c
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/netsleuth demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

# Benchmark: builds a deterministic 1M-packet capture once (cached under .bench/), then runs
# netsleuth scan and the peer tools in one process run and prints packets/s and ratios.
bench: $(STAMP)
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build .bench .mypy_cache .ruff_cache .pytest_cache src/*.egg-info
	find src -name '*.so' -delete
