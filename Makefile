# Triggers: `make run` builds and serves on the embedded store; `make test`
# builds and runs every test. Each target first installs what it needs, and
# only that (scripts/bootstrap TARGET: `make run` needs no test tools).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
PREFIX ?= /usr/local
BOOTSTRAP := bash scripts/bootstrap
CONFIGURE = cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

.PHONY: all bootstrap build build-tests run test test-asan fuzz fuzz-smoke fuzz-build bench-ingest bench-delivery bench-pull bench-postgres bench-fanout bench-all bench-aws bench-growth format clean install deb man check-portable

all: build

bootstrap:
	@$(BOOTSTRAP) build test

# The server (and the tests when GTest is installed: TRIGGERS_TESTS=AUTO).
# An existing build dir keeps its configuration.
build:
	@$(BOOTSTRAP) build
	@test -f $(BUILD)/build.ninja || $(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/triggers serve --data-dir ./data

# The build dir with the tests required (TRIGGERS_TESTS=ON).
build-tests:
	@$(BOOTSTRAP) test
	@grep -qx 'TRIGGERS_TESTS:STRING=ON' $(BUILD)/CMakeCache.txt 2>/dev/null || $(CONFIGURE) -DTRIGGERS_TESTS=ON
	cmake --build $(BUILD) -j $(JOBS)

# scripts/ctest-run: Ctrl-C also stops the private PostgreSQL of the tests.
test: build-tests
	@bash scripts/ctest-run $(BUILD) --output-on-failure -j 1

# cmake --install: bin/triggers, man page, systemd unit, example config
# (docs/operations.md, "Installing"). `make install PREFIX=/usr DESTDIR=...`.
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

# The Debian package, $(BUILD)/deb/triggers_<version>_<arch>.deb (packaging/make-deb).
deb: build
	@$(BOOTSTRAP) deb
	cmake --build $(BUILD) --target deb

# Refreshes the committed man page (packaging/triggers.1), installed where the
# build cannot generate it.
man: build
	cmake --build $(BUILD) --target man_page
	cp $(BUILD)/triggers.1 packaging/triggers.1

# The build, the unit tests and a smoke run on Debian 13 in a chroot made by
# mmdebstrap (scripts/check-portable; slow, not part of `make test`). The root
# is kept in build-portable/ for the next run.
check-portable:
	@$(BOOTSTRAP) portable
	bash scripts/check-portable build-portable

# The same tests on an ASan+UBSan build (CI runs it after `make test`),
# except the PostgreSQL twins of modules whose server code is the SQLite
# twin's and whose store calls the conformance suite runs on both stores
# under ASan too (all PostgreSQL twins took 246 s of the ASan run's 625 s, in
# a CI run of 28 minutes). The PostgreSQL-only ones
# (several nodes, crashes, races, revocation, probes, delivery wakeups) stay.
ASAN_SKIP := ^integration_pg_(api|hostile_clients|pull|ordered|metrics|fanout|limits|aws)$$
test-asan:
	@$(BOOTSTRAP) test
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTRIGGERS_SANITIZE=ON -DTRIGGERS_TESTS=ON
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 bash scripts/ctest-run build-asan --output-on-failure -j 1 -E '$(ASAN_SKIP)'

# libFuzzer targets (docs/fuzzing.md), built with clang under ASan+UBSan in
# build-fuzz. Each runs FUZZ_SECONDS on a scratch copy of its seeds (the
# committed corpus stays as it is); a crash fails the target and leaves the
# input as build-fuzz/artifacts/<target>/crash-*. CI runs fuzz-smoke.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := event_parser event_pattern json_body parse http_request
FUZZ_BUILD := build-fuzz

fuzz-build:
	@$(BOOTSTRAP) fuzz
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTRIGGERS_FUZZ=ON -DTRIGGERS_TESTS=OFF \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/run-fuzzers $(FUZZ_BUILD) $(FUZZ_TARGETS)

# Deterministic (a fixed seed and input count per target; see scripts/run-fuzzers).
fuzz-smoke:
	@FUZZ_DETERMINISTIC=1 $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

bench-pull: build
	@$(BOOTSTRAP) bench
	cmake --build $(BUILD) --target pull_load
	BUILD=$(BUILD) bash bench/pull.sh

bench-postgres: build
	@$(BOOTSTRAP) bench
	bash bench/postgres.sh

bench-delivery: build
	@$(BOOTSTRAP) bench
	bash bench/delivery.sh

bench-ingest: build
	@$(BOOTSTRAP) bench
	bash bench/ingest.sh

# Ingest as the store grows to 10 million events, then while the purge deletes (bench/growth.sh).
bench-growth: build
	@$(BOOTSTRAP) bench
	bash bench/growth.sh

# Every issue-12 row in one run, each beside its reference (bench/all.sh).
bench-all: build
	@$(BOOTSTRAP) bench
	bash bench/all.sh

# Fairness: bench/fanout.sh, which also runs bench/fanout_hanging.sh when that file exists.
bench-fanout: build
	@$(BOOTSTRAP) bench
	bash bench/fanout.sh

# EventBridge PutEvents (10 a call) and an AWS SDK consumer loop (receive 10,
# delete batch) beside the same work through /v1, in one run (CALLS calls).
bench-aws: build
	@$(BOOTSTRAP) test
	TRIGGERS_AWS_BENCH_CALLS=$${CALLS:-300} /usr/bin/python3 -m unittest -v \
	  tests.integration.test_aws.SdkTest.test_producer_and_long_polling_consumer_with_throughput

format:
	@$(BOOTSTRAP) format
	find src include tests fuzz -name '*.h' -o -name '*.cc' | xargs clang-format -i

# A test PostgreSQL left running by an interrupted ctest is stopped first.
clean:
	-@bash scripts/test-pg stop $(BUILD)/pg >/dev/null 2>&1
	-@bash scripts/test-pg stop build-asan/pg >/dev/null 2>&1
	rm -rf $(BUILD) build-asan build-fuzz
	@echo "build-portable/ (the Debian 13 root of make check-portable) is kept: rm -rf build-portable"
