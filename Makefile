# trainhouse — set-up, run and test on a fresh machine (python3 + make are all it assumes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
GEN    := .gen
PROTOS := $(wildcard protos/trainhouse/v1/*.proto)
# Optional extras to install besides the tests' (CI adds "ray" for the Ray executor test).
EXTRAS ?= test

.PHONY: all install stubs run test bench clean

all: stubs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

# Stubs are generated, never committed: compiled with -I protos so the import path is the
# package path (trainhouse.v1.*), and put on the venv's path with a .pth file.
$(GEN)/.stamp: $(STAMP) $(PROTOS)
	rm -rf $(GEN) && mkdir -p $(GEN)
	$(BIN)/python -m grpc_tools.protoc -I protos \
	  -I "$$($(BIN)/python -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')" \
	  -I "$$($(BIN)/python -c 'import site; print(site.getsitepackages()[0])')" \
	  --python_out=$(GEN) --pyi_out=$(GEN) --grpc_python_out=$(GEN) $(PROTOS)
	echo "$(CURDIR)/$(GEN)" > "$$($(BIN)/python -c 'import site; print(site.getsitepackages()[0])')/trainhouse_stubs.pth"
	touch $@

install: $(GEN)/.stamp

stubs: $(GEN)/.stamp

run: install
	$(BIN)/trainhouse up

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(GEN) .pytest_cache
