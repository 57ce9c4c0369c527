# i-PoC on AWS — developer entry points. Quick start: `make demo`, `make test`.
# Every target bootstraps what it needs (.venv with the pinned dependencies) idempotently.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BUILD  := build
ZIGCC  := $(PY) -m ziglang cc --target=wasm32-wasi -O2 -s

FUNCTION_SOURCES := $(wildcard functions/*/*.c)
FUNCTION_WASM    := $(patsubst functions/%.c,$(BUILD)/functions/%.wasm,$(FUNCTION_SOURCES))

.PHONY: help bootstrap test demo functions proto clean

help:
	@echo "make demo       run the end-to-end demo on this machine"
	@echo "make test       run the test suite"
	@echo "make functions  build every WebAssembly function into $(BUILD)/functions/"
	@echo "make proto      regenerate ipoc/wire/transport_protocol_pb2.py"
	@echo "make clean      remove $(BUILD)/ and $(VENV)/"

bootstrap: $(STAMP)

# Reinstall only when the dependency pins change.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

functions: $(FUNCTION_WASM)

# The first compile builds zig's wasi libc into its cache (~30 s); later ones are quick.
$(BUILD)/functions/%.wasm: functions/%.c $(STAMP)
	@mkdir -p $(dir $@)
	$(ZIGCC) -o $@.tmp $< && mv $@.tmp $@

proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iipoc/wire --python_out=ipoc/wire ipoc/wire/transport_protocol.proto

test: $(STAMP) functions
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP) functions
	$(VENV)/bin/ipoc --version
	$(PY) scripts/demo.py

clean:
	rm -rf $(BUILD) $(VENV)
