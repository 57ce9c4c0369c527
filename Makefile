# i-PoC on AWS — developer entry points. Quick start: `make demo`, `make test`.
# Every target bootstraps what it needs (.venv with the pinned dependencies) idempotently.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov's own venv: its dependency pins clash with ours (requirements-tools.txt says which).
TOOLS  := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
BUILD  := build
ZIGCC  := $(PY) -m ziglang cc --target=wasm32-wasi -O2 -s

FUNCTION_SOURCES := $(wildcard functions/*/*.c)
FUNCTION_WASM    := $(patsubst functions/%.c,$(BUILD)/functions/%.wasm,$(FUNCTION_SOURCES))

.PHONY: help bootstrap lint test reliability demo bench functions proto openapi synth clean

help:
	@echo "make demo       run the end-to-end demo on this machine"
	@echo "make lint       ruff (lint rules and format check) and mypy (strict on ipoc/ and runtime/)"
	@echo "make test       make lint, then the test suite"
	@echo "make reliability  fault injection, concurrency, fuzzing, secret scan (prints counts; ~10 min)"
	@echo "make bench      run the benchmarks (bench/*.py) and print their figures"
	@echo "make functions  build every WebAssembly function into $(BUILD)/functions/"
	@echo "make proto      regenerate ipoc/wire/transport_protocol_pb2.py and its .pyi"
	@echo "make openapi    regenerate infra/openapi/*.json from the routes (after changing a route)"
	@echo "make synth      synthesise the AWS deployment (infra/) into cdk.out/"
	@echo "make clean      remove $(BUILD)/, $(VENV)/, $(TOOLS)/, node_modules/ and cdk.out/"

bootstrap: $(STAMP) $(NODE_STAMP) $(TOOLS_STAMP)

# Reinstall only when the dependency pins change.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# checkov (tests/infra/test_validators.py), every package pinned, in its own venv.
$(TOOLS_STAMP): requirements-tools.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-tools.txt
	@touch $@

# The aws-cdk CLI and asl-validator, pinned in package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

VOD := $(BUILD)/functions/vod

functions: $(FUNCTION_WASM) $(VOD)/function.json $(VOD)/detector

# The VOD function: its model (converted from OpenCV's cascade), its function policy with the
# hashes, and a native build of the same source for comparison.
$(VOD)/function.json: $(VOD)/detector.wasm functions/vod/build_function.py functions/vod/cascade_tool.py $(STAMP)
	$(PY) functions/vod/build_function.py $(VOD)

# Native builds of the detector, for bench/vod.py's wasm/native ratios: the system cc (gcc here)
# and zig cc for this machine, the compiler of the wasm build. No FMA contraction, so every build
# computes the same floats and writes the same detections.json. $(VOD_BASELINE) holds another
# revision's source (bench/vod.py --baseline REV) built natively the same two ways; its wasm is built
# by that revision's own Makefile, as that revision ships it (bench/vod.py does that).
VOD_BASELINE := $(BUILD)/bench/vod-baseline
ZIGCC_NATIVE := $(PY) -m ziglang cc -target $(shell uname -m)-linux-musl -O2 -ffp-contract=off

# The wasm build gets the native builds' -ffp-contract=off too, so the three compare the same flags
# (wasm32 has no fused multiply-add, but clang's IR still differs with contraction allowed).
$(VOD)/detector.wasm: ZIGCC += -ffp-contract=off

$(VOD)/detector $(VOD)/detector-zig $(VOD)/detector.wasm: functions/vod/detector.c
$(VOD_BASELINE)/detector $(VOD_BASELINE)/detector-zig: $(VOD_BASELINE)/detector.c

$(VOD)/detector $(VOD_BASELINE)/detector:
	@mkdir -p $(dir $@)
	$${CC:-cc} -O2 -ffp-contract=off -o $@ $(filter %.c,$^) -lm

# The first build for a native target builds zig's musl libc into its cache (~25 s of CPU).
$(VOD)/detector-zig $(VOD_BASELINE)/detector-zig: $(STAMP)
	@mkdir -p $(dir $@)
	$(ZIGCC_NATIVE) -o $@.tmp $(filter %.c,$^) && mv $@.tmp $@

# The detector's wasm gets one post-link pass, binaryen's OptimizeAddedConstants (wasm-opt from the
# binaryen npm package, pinned in package.json): clang's wasm output addresses the scan's struct
# fields as `i32.add base, const` and a load, where a load's own offset immediate would do; the pass
# folds those constants into the loads, so wasmtime emits one instruction per load, not two. The fold
# assumes the program never touches addresses below 1024 (--low-memory-unused): zig's wasm-ld puts
# the 16 MiB stack first, growing down from 16 MiB, so those bytes are the bottom of a 16 MiB-deep
# stack (the detector uses a few KiB), and the one case the fold changes, an address that wraps past
# 2^32 into them, traps instead. wasm-opt's -O2/-O3 measured slower under wasmtime (README).
# The features are those zig's wasm32-wasi output uses (-s drops the section that would name them).
WASM_OPT := node_modules/.bin/wasm-opt --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
	--enable-mutable-globals --low-memory-unused --optimize-added-constants

$(VOD)/detector.wasm: $(STAMP) $(NODE_STAMP)
	@mkdir -p $(dir $@)
	$(ZIGCC) -o $@.zig $(filter %.c,$^) && $(WASM_OPT) $@.zig -o $@.tmp && rm $@.zig && mv $@.tmp $@

# The first compile builds zig's wasi libc into its cache (~30 s); later ones are quick.
$(BUILD)/functions/%.wasm: functions/%.c $(STAMP)
	@mkdir -p $(dir $@)
	$(ZIGCC) -o $@.tmp $< && mv $@.tmp $@

proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iipoc/wire --python_out=ipoc/wire --pyi_out=ipoc/wire ipoc/wire/transport_protocol.proto

# The APIs' OpenAPI documents, checked in: infra/ builds API Gateway from them without importing a
# handler. tests/infra/test_openapi_documents.py fails while they differ from the routes.
openapi: $(STAMP)
	$(PY) -m lambdas.openapi infra/openapi

synth: $(STAMP) $(NODE_STAMP)
	npx cdk synth --quiet

# The quality gate, configured in pyproject.toml ([tool.ruff], [tool.mypy]); make test runs it first.
lint: $(STAMP)
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check
	$(VENV)/bin/mypy

test: lint $(STAMP) $(NODE_STAMP) $(TOOLS_STAMP) functions
	$(PY) -m pytest $(PYTEST_ARGS)

# Faults, concurrency, schemathesis fuzzing and a secret scan; the counts print at the end.
reliability: $(STAMP) functions
	$(PY) -m pytest -m reliability tests/reliability tests/security $(PYTEST_ARGS)

demo: $(STAMP) functions
	$(VENV)/bin/ipoc --version
	$(PY) scripts/demo.py

bench: $(STAMP) functions
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(BUILD) $(VENV) $(TOOLS) node_modules cdk.out
