# The README's two commands: `make demo` and `make test`. Both create .venv and install
# what they need from the package registries; nothing has to be installed by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean system-deps fuzz docs

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py src/netsleuth/capture/_framing.c src/netsleuth/sources/_ringbuf.c src/netsleuth/decode/_prefix.c \
		src/netsleuth/steering/_fields.c src/netsleuth/steering/_mix64.c \
		src/netsleuth/steering/_tally.c src/netsleuth/steering/_toeplitz.c \
		src/netsleuth/profile/_perf.c src/netsleuth/capture/_ring.c \
		src/netsleuth/checks/_trains.c
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The optional extras the tests exercise, on top of the base install `make demo` uses:
# dask for `scan --dask` (tests/test_dask_cluster.py starts a local cluster; mypy reads
# netsleuth/cluster.py against dask.distributed's annotations).
EXTRAS_STAMP := $(VENV)/.installed-extras
$(EXTRAS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,dask]'
	touch $(EXTRAS_STAMP)

# Real tools the tests use: tshark reads netsleuth's pcapng exports back; ethtool is the
# oracle for the SIOCETHTOOL readings; prometheus (with promtool) scrapes the exporter and
# checks its alert rules; chromium renders the HTML reports. The missing ones are installed from Debian's packages
# in one apt-get run when we are root (CI is); otherwise the tests that need them skip and
# say why (and fail under CI=true).
SYSTEM_TOOLS := tshark ethtool prometheus chromium
# scan --live: tcpreplay (bench/live_bench.py) brings libpcap0.8, whose pcap_compile
# compiles --filter and `netsleuth bpf` (src/netsleuth/bpf.py).
SYSTEM_TOOLS += tcpreplay

system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (Debian packages)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $$missing >/dev/null; \
	  else echo "missing and not root:$$missing; the tests that need them will skip"; fi; fi

demo: $(STAMP)
	$(BIN)/netsleuth demo

# The last line: returns stay bounded too (PLR0911, off elsewhere) in the command modules
# and the findings package, which meet it (branches and statements: pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check --select PLR0911 src/netsleuth/commands src/netsleuth/findings src/netsleuth/cli.py

typecheck: $(EXTRAS_STAMP)
	$(BIN)/mypy

pytest: $(EXTRAS_STAMP) system-deps
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

# docs/findings.md is generated from the finding catalogue (src/netsleuth/findings/
# catalogue.py); tests/test_findings_catalogue.py fails when it is stale.
docs: $(STAMP)
	$(BIN)/python -m netsleuth.findings.docs docs/findings.md

# Benchmark: builds a deterministic 1M-packet capture once (cached under .bench/), then runs
# netsleuth scan and the peer tools in one process run and prints packets/s and ratios.
# Byte-compiled first, as an installed package is (pip compiles a wheel's modules): with
# PYTHONDONTWRITEBYTECODE set, every run would compile each module again (~30 ms).
bench: $(STAMP)
	$(BIN)/python -m compileall -q src >/dev/null
	$(BIN)/python bench/bench.py $(BENCH_ARGS)
	$(BIN)/python bench/drops_flood.py
	$(BIN)/python bench/watch_overhead.py
	$(BIN)/python bench/profile_overhead.py
	$(BIN)/python bench/record_exporter.py
	$(BIN)/python bench/live_bench.py

# Long fuzzing (issue 13): the properties of tests/test_fuzz*.py with random seeds until
# FUZZ_MINUTES (default 30) pass, in .fuzz-venv where the C extensions are built with
# AddressSanitizer and libasan is preloaded into Python (leak checks off: CPython keeps
# objects alive at exit by design). bench/fuzz.py prints the inputs tried.
FUZZ_VENV := .fuzz-venv
ASAN_LIB = $(shell $${CC:-gcc} -print-file-name=libasan.so)

$(FUZZ_VENV)/.installed: pyproject.toml setup.py $(wildcard src/netsleuth/*/_*.c)
	$(PY) -m venv $(FUZZ_VENV)
	$(FUZZ_VENV)/bin/python -m pip install --quiet --upgrade pip
	CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g" LDFLAGS="-fsanitize=address" \
	  $(FUZZ_VENV)/bin/python -m pip install --quiet --no-cache-dir '.[test]'
	# The same version again after a C change: rebuild it, do not keep the old wheel.
	CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g" LDFLAGS="-fsanitize=address" \
	  $(FUZZ_VENV)/bin/python -m pip install --quiet --no-cache-dir --no-deps --force-reinstall .
	touch $@

fuzz: $(FUZZ_VENV)/.installed
	LD_PRELOAD=$(ASAN_LIB) ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	  $(FUZZ_VENV)/bin/python bench/fuzz.py

clean:
	rm -rf $(VENV) $(FUZZ_VENV) build .bench .mypy_cache .ruff_cache .pytest_cache src/*.egg-info
	find src -name '*.so' -delete

# Golden text outputs (tests/golden/): rewrite them after a reviewed renderer change, then
# read the diff before committing it.
.PHONY: golden
golden: $(STAMP)
	NETSLEUTH_REGEN_GOLDEN=1 $(BIN)/python -m pytest -q tests/test_golden.py
