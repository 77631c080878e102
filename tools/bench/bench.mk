# shmq-bench: $(BUILD)/tools/shmq-bench, statically linked against libshmq.a
# so that it runs in a minimal (busybox initramfs) guest too.
# Included by the top-level Makefile, which defines BUILD and CXX; lib/lib.mk
# defines LIBSHMQ_A and the target lib.
#
#   make bench-build          build $(BUILD)/tools/shmq-bench
#   make bench                natively, in a guest with the module, ratios and
#                             chart: see the guest benchmark block below
#   make bench BENCH_ARGS=--quick   only natively, with these options

BENCH_TOP      := $(patsubst %/tools/bench/bench.mk,%,$(abspath $(lastword $(MAKEFILE_LIST))))
BENCH_CXXFLAGS := -std=c++20 -O2 -g -Wall -Wextra -Werror -I$(BENCH_TOP)/include
BENCH_SRCS     := $(wildcard $(BENCH_TOP)/tools/bench/*.cpp)
BENCH_OBJS     := $(patsubst $(BENCH_TOP)/tools/bench/%.cpp,$(BUILD)/tools/bench/%.o,$(BENCH_SRCS))
BENCH_BIN      := $(BUILD)/tools/shmq-bench
BENCH_LIB_A    := $(or $(LIBSHMQ_A),$(BUILD)/lib/libshmq.a)
BENCH_ARGS     ?=

.PHONY: bench-build
bench-build: $(BENCH_BIN)

$(BUILD)/tools/bench/%.o: $(BENCH_TOP)/tools/bench/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(BENCH_CXXFLAGS) -MMD -MP -c -o $@ $<

# The mechanisms register themselves from static constructors, so their
# objects are linked directly, never through an archive.
$(BENCH_BIN): $(BENCH_OBJS) $(BENCH_LIB_A)
	@mkdir -p $(@D)
	$(CXX) -static -pthread -o $@ $(BENCH_OBJS) $(BENCH_LIB_A) -lrt

-include $(BENCH_OBJS:.o=.d)

# ==== guest benchmark (tests/guest/bench.sh) ================================
#   make bench          shmq-bench natively (every mechanism but shmq: the
#                       reference for what emulation distorts), then in a QEMU
#                       guest per BENCH_KERNELS with the module loaded (every
#                       mechanism in one run), then ratios, targets and chart.
#                       Results: $(BUILD)/bench/ (native.*, guest-KVER.*,
#                       targets.txt, ratios.csv, chart.png)
#   make bench-native / bench-guest / bench-report   one part only
# Knobs: BENCH_KERNELS="6.1 6.12" (default 6.1), BENCH_SMP=2, BENCH_ROUNDS=5,
#        BENCH_NICE=-10 (QEMU's niceness),
#        BENCH_GUEST_ARGS, BENCH_NATIVE_ARGS (shmq-bench options),
#        BENCH_ARGS=... (set: `make bench` only runs shmq-bench natively with it)
BENCH_ENV = BUILD="$(BUILD)" BENCH_BIN="$(BENCH_BIN)" \
	    MODULE_BUILD="$(BENCH_TOP)/kernel/build-module.sh" \
	    $(if $(BENCH_KERNELS),BENCH_KERNELS="$(BENCH_KERNELS)") \
	    $(if $(BENCH_SMP),BENCH_SMP="$(BENCH_SMP)") \
	    $(if $(BENCH_ROUNDS),BENCH_ROUNDS="$(BENCH_ROUNDS)") \
	    $(if $(BENCH_NICE),BENCH_NICE="$(BENCH_NICE)") \
	    $(if $(BENCH_GUEST_ARGS),BENCH_GUEST_ARGS="$(BENCH_GUEST_ARGS)") \
	    $(if $(BENCH_NATIVE_ARGS),BENCH_NATIVE_ARGS="$(BENCH_NATIVE_ARGS)")

.PHONY: bench bench-native bench-guest bench-report
ifneq ($(BENCH_ARGS),)
bench: $(BENCH_BIN)
	$(BENCH_BIN) $(BENCH_ARGS)
else
bench: $(BENCH_BIN)
	@$(BENCH_ENV) bash $(BENCH_TOP)/tests/guest/bench.sh native guest report
endif
bench-native: $(BENCH_BIN)
	@$(BENCH_ENV) bash $(BENCH_TOP)/tests/guest/bench.sh native
bench-guest: $(BENCH_BIN)
	@$(BENCH_ENV) bash $(BENCH_TOP)/tests/guest/bench.sh guest
bench-report:
	@$(BENCH_ENV) bash $(BENCH_TOP)/tests/guest/bench.sh report
# ==== end of the guest benchmark block =======================================
