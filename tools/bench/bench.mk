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
#   make bench                build and run it natively (BENCH_ARGS=...)
#   make bench BENCH_ARGS=--quick

BENCH_TOP      := $(patsubst %/tools/bench/bench.mk,%,$(abspath $(lastword $(MAKEFILE_LIST))))
BENCH_CXXFLAGS := -std=c++20 -O2 -g -Wall -Wextra -Werror -I$(BENCH_TOP)/include
BENCH_SRCS     := $(wildcard $(BENCH_TOP)/tools/bench/*.cpp)
BENCH_OBJS     := $(patsubst $(BENCH_TOP)/tools/bench/%.cpp,$(BUILD)/tools/bench/%.o,$(BENCH_SRCS))
BENCH_BIN      := $(BUILD)/tools/shmq-bench
BENCH_LIB_A    := $(or $(LIBSHMQ_A),$(BUILD)/lib/libshmq.a)
BENCH_IOX_INC  := $(firstword $(wildcard /usr/include/iceoryx/v*))
BENCH_LDLIBS   := -lzmq -liceoryx_posh -liceoryx_hoofs -liceoryx_platform -lrt
BENCH_ARGS     ?=

.PHONY: bench-build bench
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

bench: $(BENCH_BIN)
	$(BENCH_BIN) $(BENCH_ARGS)

-include $(BENCH_OBJS:.o=.d)
