# tarn -- the two set-up commands are `make run` and `make test`.
# Both install what is missing (scripts/install-deps.sh), then build with
# Meson + Ninja: build/ is the optimised binary, build-test/ the ASan/UBSan
# build with warnings as errors that the tests use.

BUILD      := build
TEST_BUILD := build-test
DATA       ?= ./tarn-data
LISTEN     ?= 127.0.0.1:9000

.PHONY: all deps run test unit e2e test-objects bench fuzz clean

all: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) --buildtype=release >/dev/null
	@ninja -C $(BUILD) tarn src/sandbox/libtarn-zygote.so >/dev/null
	@echo "built $(BUILD)/tarn"

deps:
	@scripts/install-deps.sh

run: all
	@$(BUILD)/tarn server --data $(DATA) --listen $(LISTEN)

$(TEST_BUILD)/build.ninja:
	meson setup $(TEST_BUILD) --buildtype=debug -Db_sanitize=address,undefined \
	  -Db_lundef=false -Dwerror=true >/dev/null

test: deps $(TEST_BUILD)/build.ninja
	@ninja -C $(TEST_BUILD) >/dev/null
	@/usr/bin/python3 tests/run.py --build $(TEST_BUILD)

unit: deps $(TEST_BUILD)/build.ninja
	@ninja -C $(TEST_BUILD) >/dev/null
	@/usr/bin/python3 tests/run.py --build $(TEST_BUILD) --unit-only

e2e: deps $(TEST_BUILD)/build.ninja
	@ninja -C $(TEST_BUILD) >/dev/null
	@/usr/bin/python3 tests/run.py --build $(TEST_BUILD) --e2e-only

# Every S3 end-to-end file, with the servers' object bytes in a backend tarn
# (tarn server --objects; tests/e2e/tarnlib.py, TARN_E2E_OBJECTS=1).
test-objects: deps $(TEST_BUILD)/build.ninja
	@ninja -C $(TEST_BUILD) >/dev/null
	@/usr/bin/python3 tests/run.py --build $(TEST_BUILD) --objects

# The seed talk in one command: a bucket, a Python function wired to its
# uploads, CSV files cleaned into clean/, a queue, then SQL over the result.
# Uses the tarn at TARN_ENDPOINT when set, else starts one of its own.
.PHONY: demo
demo: all
	@TARN=$(BUILD)/tarn examples/sales-pipeline/run.sh

bench: all
	@bench/run.sh

clean:
	rm -rf $(BUILD) $(TEST_BUILD)

fuzz:
	@tests/fuzz/run.sh 60
