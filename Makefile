# trainhouse — set-up, run and test on a fresh machine (python3 + make are all it assumes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard protos/trainhouse/v1/*.proto)
# Optional extras to install besides the tests' (CI adds "ray" for the Ray executor test).
EXTRAS ?= test

.PHONY: all install stubs run test bench clean

all: stubs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# `pip install -e .` runs setup.py's build hook, which compiles protos/ into services/v1/ (the
# `trainhouse.v1` stubs; git-ignored), so a proto change reinstalls.
$(STAMP): pyproject.toml setup.py $(PROTOS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(STAMP)

stubs: $(STAMP)

run: install
	$(BIN)/trainhouse up

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf services/v1 build .pytest_cache
