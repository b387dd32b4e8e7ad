# Sturgeon: `make tune` runs the main job, `make test` the tests; both set up .venv first.
# torch is pinned to 2.13.0 so pip takes the local CPU build instead of a multi-GB CUDA one.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  := torch==2.13.0

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]' $(TORCH)
	touch $@

.PHONY: setup tune test bench clean
setup: $(VENV)/.installed

tune: setup
	$(VENV)/bin/sturgeon tune examples/digits.toml

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest

bench: setup
	$(PY) -m pip install -q -e '.[bench]' $(TORCH)
	$(PY) bench/coordinator.py
	$(PY) bench/caviar.py
	$(PY) bench/threads.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
	find runs -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
