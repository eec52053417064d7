# Every target builds its own virtualenv from pyproject.toml on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
MUTATE_STAMP := $(VENV)/.installed-mutate
FUZZ_STAMP := $(VENV)/.installed-fuzz
# The deterministic cores are compiled with mypyc (setup.py, appchaind/native.py). When any
# source changes, appchaind.native says whether the compiled build still matches (it knows
# which modules count) and they are recompiled if not. APPCHAIND_PURE_PYTHON=1 runs pure Python.
NATIVE_STAMP := $(VENV)/.compiled
NATIVE_SOURCES := setup.py $(wildcard appchaind/*.py appchaind/*/*.py orderbook/*.py margin/*.py config/*.py)
LOCALNET ?= localnet
VALIDATORS ?= 4
BASE_PORT ?= 26600
SIM_SECONDS ?= 600
# make soak: seconds of faults of the campaign (appchaind bench soak; SOAK_SEED replays one)
SOAK_SECONDS ?= 600
FUZZ_EXAMPLES ?= 20000
# make fuzz: seconds of atheris per target (tools/fuzz/run.py), and which targets (default all:
# codec p2p rpc http tx), e.g. make fuzz FUZZ_SECONDS=300 FUZZ_TARGETS=http
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
# make bench: seconds of the long load runs (bench/run.py); below 60 every benchmark shrinks
BENCH_SECONDS ?= 60
# make mutate: the time budget for all modules, and which modules (paths, default: all of
# tools/mutate.py's MODULES), e.g. make mutate MUTATE_MODULES=margin/clearing.py
MUTATE_SECONDS ?= 1800
MUTATE_MODULES ?=

.PHONY: all run test bench fuzz mutate sim soak lint clean

all: test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "installing (compiling the order book, margin and exchange cores with mypyc: about a minute)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(NATIVE_STAMP): $(NATIVE_SOURCES) | $(STAMP)
	@$(BIN)/python -c "from appchaind.native import build_is_current as c; raise SystemExit(not c())" \
	  || { echo "sources of the compiled cores changed: recompiling with mypyc"; \
	       $(BIN)/python -m pip install --quiet --no-deps -e .; }
	@touch $(NATIVE_STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

$(FUZZ_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,fuzz]'
	@touch $(FUZZ_STAMP)

$(MUTATE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,mutate]'
	@touch $(MUTATE_STAMP)

test: $(NATIVE_STAMP)
	$(BIN)/python -m pytest -q

bench: $(BENCH_STAMP) $(NATIVE_STAMP)
	BENCH_SECONDS=$(BENCH_SECONDS) $(BIN)/python bench/run.py

# The long hypothesis run of the property and fuzz tests, then each atheris target for
# FUZZ_SECONDS (niced); prints executions and crashes per target, and how to replay each crash.
fuzz: $(FUZZ_STAMP) $(NATIVE_STAMP)
	HYPOTHESIS_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -m "not slow" tests -k "fuzz or property"
	nice -n 10 $(BIN)/python -m tools.fuzz.run --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Mutation testing (mutmut, pure Python, niced): prints every surviving mutant and a summary
# per module; results are kept in .mutmut-cache/, so a rerun tests only what changed.
mutate: $(MUTATE_STAMP)
	nice -n 10 $(BIN)/python tools/mutate.py --seconds $(MUTATE_SECONDS) \
	  $(if $(MUTATE_MODULES),--modules $(MUTATE_MODULES))

sim: $(STAMP)
	$(BIN)/python -m appchaind.consensus.sim --seconds $(SIM_SECONDS)

soak: $(NATIVE_STAMP)
	$(BIN)/python -m appchaind.cli bench soak --seconds $(SOAK_SECONDS) \
	  $(if $(SOAK_SEED),--seed $(SOAK_SEED))

lint: $(STAMP)
	$(BIN)/ruff check appchaind orderbook margin p2p config spec tests bench tools
	$(BIN)/ruff format --check appchaind orderbook margin p2p config spec tests bench tools
	$(BIN)/mypy --strict appchaind/consensus appchaind/chain/codec.py appchaind/chain/crypto.py appchaind/chain/types.py \
	  appchaind/native.py orderbook

run: $(NATIVE_STAMP)
	@test -d $(LOCALNET)/node0 || $(BIN)/appchaind localnet init --dir $(LOCALNET) --validators $(VALIDATORS) --base-port $(BASE_PORT)
	$(BIN)/appchaind localnet start --dir $(LOCALNET) --traders

clean:
	rm -rf $(VENV) $(LOCALNET) .pytest_cache .hypothesis .ruff_cache .mypy_cache .mutmut-cache .fuzz \
	  *.egg-info build
	rm -f *__mypyc*.so orderbook/*.so margin/*.so appchaind/*.so appchaind/exchange/*.so \
	  appchaind/_native_build.json
