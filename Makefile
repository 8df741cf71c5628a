# Triggers: `make run` builds and serves on the embedded store; `make test`
# builds and runs every test. Both install what they need first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all bootstrap build run test test-asan fuzz fuzz-smoke fuzz-build bench-ingest bench-delivery bench-pull bench-postgres format clean

all: build

bootstrap:
	@bash scripts/bootstrap

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: bootstrap $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/triggers serve --data-dir ./data

# scripts/ctest-run: Ctrl-C also stops the private PostgreSQL of the tests.
test: build
	@bash scripts/ctest-run $(BUILD) --output-on-failure -j 1

# The same tests on an ASan+UBSan build (CI runs it after `make test`).
test-asan: bootstrap
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTRIGGERS_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 bash scripts/ctest-run build-asan --output-on-failure -j 1

# libFuzzer targets (docs/fuzzing.md), built with clang under ASan+UBSan in
# build-fuzz. Each runs FUZZ_SECONDS on a scratch copy of its seeds (the
# committed corpus stays as it is); a crash fails the target and leaves the
# input as build-fuzz/artifacts/<target>/crash-*. CI runs fuzz-smoke.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := event_parser event_pattern json_body parse http_request
FUZZ_BUILD := build-fuzz

fuzz-build: bootstrap
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTRIGGERS_FUZZ=ON \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/run-fuzzers $(FUZZ_BUILD) $(FUZZ_TARGETS)

# Deterministic (a fixed seed and input count per target; see scripts/run-fuzzers).
fuzz-smoke:
	@FUZZ_DETERMINISTIC=1 $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

bench-pull: build
	bash bench/pull.sh

bench-postgres: build
	bash bench/postgres.sh

bench-delivery: build
	bash bench/delivery.sh

bench-ingest: build
	bash bench/ingest.sh

format:
	find src include tests fuzz -name '*.h' -o -name '*.cc' | xargs clang-format -i

# A test PostgreSQL left running by an interrupted ctest is stopped first.
clean:
	-@bash scripts/test-pg stop $(BUILD)/pg >/dev/null 2>&1
	-@bash scripts/test-pg stop build-asan/pg >/dev/null 2>&1
	rm -rf $(BUILD) build-asan build-fuzz
