# Two commands do all set-up on a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: $(BIN)/.installed  ## the main job on the embedded default
	$(BIN)/allscene demo

test: $(BIN)/.installed  ## the test suite (PostgreSQL and Redis tests need the local servers)
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check allscene tests bench

bench: $(BIN)/.installed  ## benchmarks, each printed beside a baseline measured in the same run
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_world.py
	$(BIN)/python bench/bench_audience.py
	$(BIN)/python bench/bench_lookalike.py
	$(BIN)/python bench/bench_tags.py
	$(BIN)/python bench/bench_scenes.py
	$(BIN)/python bench/bench_extrasensory.py
	$(BIN)/python bench/bench_decide.py

clean:
	rm -rf $(VENV)  # never the data directory: it holds the event log
