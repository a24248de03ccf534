# Two commands for a fresh machine: `make demo` and `make test`. Both (re)build .venv only when
# pyproject.toml changed, so a second run starts at once.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint venv clean-venv reproduce

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; bpy needs Python 3.11 (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -e ".[render,test]"
	touch $(STAMP)

# The demo's steps are file targets: a second `make demo` finds them done and only prints where they are.
demo: data/augmented.h5
	@echo "outputs: data/pole.h5 (renders), runs/latest/ (model, metrics, interpolation grids), data/augmented.h5"

data/pole.h5: | $(STAMP)
	$(BIN)/toolkit render-pole

runs/latest/checkpoint.pt: data/pole.h5
	$(BIN)/toolkit train

data/augmented.h5: runs/latest/checkpoint.pt
	$(BIN)/toolkit augment --n 5000

data/turntable.h5: | $(STAMP)
	$(BIN)/toolkit render-turntable

# Every method and ablation on both datasets -> docs/results.md: 28 training runs with the defaults (one pole AEAI
# run alone is about 8 minutes on a 2-core CPU). Resumable: run it again after Ctrl-C. Options through
# REPRODUCE_ARGS, e.g. make reproduce REPRODUCE_ARGS="--device cuda --seeds 5".
reproduce: data/pole.h5 data/turntable.h5 | $(STAMP)
	$(BIN)/toolkit reproduce $(REPRODUCE_ARGS)

test: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

test-slow: $(STAMP)
	$(BIN)/pytest -q

# ruff, then the import contract: each folder imports only the stages below it (tests/import_contract.py).
lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/python tests/import_contract.py

clean-venv:
	rm -rf $(VENV)
