# Tests, demo and the QEMU harness. Included by the top-level Makefile (BUILD,
# CXX); the native tests come from tests/native/native.mk.
#
#   make test         install deps, build everything, run the native tests,
#                     then for each kernel (Debian 6.1, Debian 6.12, the debug
#                     kernel of ../shared/kernels/6.1-debug) build shmq.ko and
#                     boot QEMU guests (1 vCPU: every suite; 2 vCPUs: the
#                     concurrency suites). Ends with "N passed, N failed".
#   make demo         install deps, build, run shmq-demo against the module:
#                     natively where this machine can load modules, otherwise
#                     in a QEMU guest with the Debian 6.1 kernel
#   make guest-tests  just $(BUILD)/tests/shmq-guest-tests
#   make guest-shell  a shell in a guest with the module loaded (debugging)
#
# Knobs (make VAR=value), see tests/guest/run-matrix.sh for all:
#   KERNELS="6.1 6.12 6.1-debug"  GUEST_SMP="1 2"  GUEST_JOBS=$(nproc)
#   GUEST_FILTER=<gtest filter for the root suite>  SKIP_DEPS=1 (no apt)
#   FUZZ_SECONDS=60 (consumer fuzzer in the native section, 0: off; tests/fuzz/fuzz.mk)
#   DEMO_ARGS=<arguments for shmq-demo>   DEMO_KERNEL=6.1   SHELL_KERNEL=6.1
#   BENCH_SMOKE="6.1" (kernels whose last boot runs a shmq-bench smoke run)

-include tests/native/native.mk

GUEST_TESTS_BIN  := $(BUILD)/tests/shmq-guest-tests
GUEST_TEST_SRCS  := $(wildcard tests/guest/*.cpp)
GUEST_TEST_OBJS  := $(patsubst tests/guest/%.cpp,$(BUILD)/tests/guest/%.o,$(GUEST_TEST_SRCS))
GUEST_CXXFLAGS   := -std=c++20 -O2 -g -Wall -Wextra -Iinclude -Ilib -Itests/guest
SHMQ_LIB_A       := $(or $(LIBSHMQ_A),$(BUILD)/lib/libshmq.a)
SHMQ_TOOL_BINS   := $(BUILD)/tools/shmqctl $(BUILD)/tools/shmq-demo
# shmq-bench and jq for the guest's bench smoke run (run-matrix.sh BENCH_SMOKE)
SHMQ_GUEST_EXTRA := $(BUILD)/tools/shmq-bench $(shell command -v jq 2>/dev/null)
# native test binaries that make test runs (the ASan/UBSan build too when
# tests/native/native.mk provides it)
SHMQ_NATIVE_BINS := $(or $(NATIVE_BIN),$(BUILD)/tests/shmq-native-tests) $(NATIVE_ASAN_BIN)
NPROC            := $(shell nproc 2>/dev/null || echo 2)
HARNESS_ENV       = BUILD="$(BUILD)" GUEST_TESTS="$(GUEST_TESTS_BIN)" \
		    GUEST_TOOLS="$(SHMQ_TOOL_BINS) $(SHMQ_GUEST_EXTRA)" NATIVE_TESTS="$(SHMQ_NATIVE_BINS)" \
		    MODULE_BUILD="$(CURDIR)/kernel/build-module.sh"

.PHONY: test test-build guest-tests demo guest-shell

guest-tests: $(GUEST_TESTS_BIN)

$(BUILD)/tests/guest/%.o: tests/guest/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(GUEST_CXXFLAGS) -MMD -MP -c -o $@ $<

# Static, so that it runs in the busybox initramfs. main() comes from the
# test sources when they define one, else from gtest_main.
$(GUEST_TESTS_BIN): $(GUEST_TEST_OBJS) $(SHMQ_LIB_A)
	@mkdir -p $(@D)
	$(CXX) -static -o $@ $(GUEST_TEST_OBJS) $(SHMQ_LIB_A) -lgtest_main -lgtest -pthread

-include $(GUEST_TEST_OBJS:.o=.d)

# Everything make test needs on the host, built in parallel.
test-build: lib tools $(SHMQ_NATIVE_BINS) $(GUEST_TESTS_BIN) $(BUILD)/tools/shmq-bench

# A build that fails still ends with the summary line (as one failure).
test:
	@t0=$$(date +%s); \
	if [ -z "$(SKIP_DEPS)" ]; then bash tools/install-deps.sh || exit 1; fi; \
	if ! $(MAKE) --no-print-directory -j$(NPROC) test-build; then \
		echo "== build failed (see above)"; echo "0 passed, 1 failed"; exit 1; \
	fi; \
	echo "== dependencies and build: $$(( $$(date +%s) - t0 ))s"; \
	$(HARNESS_ENV) bash tests/guest/run-matrix.sh

demo:
	@if [ -z "$(SKIP_DEPS)" ]; then bash tools/install-deps.sh; fi
	@$(MAKE) --no-print-directory -j$(NPROC) lib tools
	@$(HARNESS_ENV) DEMO_ARGS="$(DEMO_ARGS)" DEMO_KERNEL="$(DEMO_KERNEL)" \
		bash tests/guest/demo.sh

guest-shell:
	@$(MAKE) --no-print-directory -j$(NPROC) lib tools $(GUEST_TESTS_BIN)
	@$(HARNESS_ENV) DEMO_KERNEL="$(or $(SHELL_KERNEL),6.1)" bash tests/guest/demo.sh --shell

# The C API (include/shmq/shmq.h): a C11 test program, static, copied into
# the guest as /bin/shmq-capi-test and run there by the CApi* suites
# (tests/guest/capi_wrap_test.cpp); and a check that the header compiles as
# strict C99, C11 and C++ on its own.
CAPI_TEST_BIN   := $(BUILD)/tests/shmq-capi-test
CAPI_CFLAGS     := -std=c11 -O2 -g -Wall -Wextra -Werror -Iinclude
CAPI_HEADER_OK  := $(BUILD)/tests/capi-header.ok
SHMQ_TOOL_BINS  += $(CAPI_TEST_BIN)

.PHONY: capi-header-check
test-build: $(CAPI_TEST_BIN) $(CAPI_HEADER_OK)
capi-header-check: $(CAPI_HEADER_OK)

$(BUILD)/tests/guest/capi_test.o: tests/guest/capi_test.c
	@mkdir -p $(@D)
	$(CC) $(CAPI_CFLAGS) -MMD -MP -c -o $@ $<

$(CAPI_TEST_BIN): $(BUILD)/tests/guest/capi_test.o $(SHMQ_LIB_A)
	@mkdir -p $(@D)
	$(CC) -static -o $@ $< $(SHMQ_LIB_A) -lstdc++ -pthread

$(CAPI_HEADER_OK): include/shmq/shmq.h
	@mkdir -p $(@D)
	for std in c99 c11; do \
		printf '#include <shmq/shmq.h>\n' | $(CC) -std=$$std -pedantic-errors -Wall -Wextra \
			-Werror -Iinclude -fsyntax-only -x c - || exit 1; \
	done
	for std in c++98 c++11 c++20; do \
		printf '#include <shmq/shmq.h>\n' | $(CXX) -std=$$std -pedantic-errors -Wall -Wextra \
			-Werror -Iinclude -fsyntax-only -x c++ - || exit 1; \
	done
	touch $@

-include $(BUILD)/tests/guest/capi_test.d
