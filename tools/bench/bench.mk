# shmq-bench: $(BUILD)/tools/shmq-bench, statically linked against libshmq.a,
# dynamically against the libraries it compares shmq with: libzmq (zmq-ipc),
# iceoryx 2.0 (iceoryx) and Boost.Interprocess (boost-mq, headers only).
# Those are hard dependencies (tools/install-deps.sh installs them): a missing
# library fails the build loudly instead of dropping a mechanism. The binary
# is dynamic because Debian ships iceoryx only as shared libraries (no .a) and
# libzmq.a would drag in static libsodium, libpgm, libnorm and GSSAPI.
#
# guest needs (to run shmq-bench in the busybox initramfs guest):
#   - shmq-bench's ldd closure (libzmq5 and its deps, libiceoryx_{posh,hoofs,
#     platform}.so.2, libstdc++, ...): tests/guest/mkinitramfs.sh copies the
#     closure of every dynamic BINARY it is given;
#   - /usr/bin/iox-roudi and its ldd closure (libiceoryx_posh_roudi.so.2,
#     libiceoryx_posh_config.so.2, libiceoryx_introspection.so.2, ...): pass it
#     to mkinitramfs.sh as a BINARY (it lands in /bin, found through PATH);
#     shmq-bench starts and stops it itself (SHMQ_BENCH_IOX_ROUDI=PATH
#     overrides the lookup), without it the iceoryx rows are skipped;
#   - a writable tmpfs /dev/shm (iceoryx segments, Boost queues) and a
#     writable /tmp (zmq ipc:// sockets, iceoryx sockets and lock file, the
#     generated RouDi config): tests/guest/init mounts both;
#   - /etc/passwd and /etc/group with the running user and its group (RouDi
#     names the payload segment /dev/shm/<group>): mkinitramfs.sh writes them;
#   - memory: RouDi's two segments take ~135 MiB of /dev/shm (/dev/shm/
#     iceoryx_mgmt 63 MiB, /dev/shm/<group> 68 MiB of mempools of 128 B to
#     1 MiB), zeroed when it starts; the guest's 1 GiB is enough.
# Checked: a 6.1 guest (2 vCPUs) whose initramfs got shmq-bench and
# /usr/bin/iox-roudi as BINARYs ran --quick with boost-mq, zmq-ipc and
# iceoryx next to shmq-zc: every run verified, RouDi started and stopped.
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
BENCH_IOX_INC  := $(firstword $(wildcard /usr/include/iceoryx/v*))
BENCH_LDLIBS   := -lzmq -liceoryx_posh -liceoryx_hoofs -liceoryx_platform -lrt
BENCH_ARGS     ?=

.PHONY: bench-build
bench-build: $(BENCH_BIN)

$(BUILD)/tools/bench/%.o: $(BENCH_TOP)/tools/bench/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(BENCH_CXXFLAGS) -MMD -MP -c -o $@ $<

# iceoryx installs its headers under a versioned directory; system include so
# that its headers' warnings do not trip -Werror.
# (Without them the compile stops with an #error naming install-deps.sh.)
$(BUILD)/tools/bench/mech_iceoryx.o: BENCH_CXXFLAGS += $(if $(BENCH_IOX_INC),-isystem $(BENCH_IOX_INC))

# The mechanisms register themselves from static constructors, so their
# objects are linked directly, never through an archive.
$(BENCH_BIN): $(BENCH_OBJS) $(BENCH_LIB_A)
	@mkdir -p $(@D)
	$(CXX) -pthread -o $@ $(BENCH_OBJS) $(BENCH_LIB_A) $(BENCH_LDLIBS)

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

# ==== instruction counts (tools/bench/instr/) ================================
#   make bench-instr    instructions per 64 B message of libshmq's zero-copy and
#                       copying fast paths and of a hand-written SPSC ring,
#                       natively under callgrind over plain shared memory, in
#                       one run; prints a table. BENCH_INSTR_ARGS: options of
#                       shmq-bench-instr (--messages --batch --size --capacity)
BENCH_INSTR_BIN  := $(BUILD)/tools/shmq-bench-instr
BENCH_INSTR_ARGS ?=

.PHONY: bench-instr
bench-instr: $(BENCH_INSTR_BIN)
	@bash $(BENCH_TOP)/tools/bench/instr/run.sh $(BENCH_INSTR_BIN) $(BENCH_INSTR_ARGS)

$(BENCH_INSTR_BIN): $(BUILD)/tools/bench/instr/instr.o $(BENCH_LIB_A)
	@mkdir -p $(@D)
	$(CXX) -o $@ $< $(BENCH_LIB_A)

-include $(BUILD)/tools/bench/instr/instr.d
