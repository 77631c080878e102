# shmq-bench: $(BUILD)/tools/shmq-bench, statically linked against libshmq.a,
# dynamically against the libraries it compares shmq with: libzmq (zmq-ipc)
# and Boost.Interprocess (boost-mq, headers only).
# Those are hard dependencies (tools/install-deps.sh installs them): a missing
# library fails the build loudly instead of dropping a mechanism. The binary
# is dynamic because libzmq.a would drag in static libsodium, libpgm, libnorm
# and GSSAPI.
#
# guest needs (to run shmq-bench in the busybox initramfs guest):
#   - shmq-bench's ldd closure (libzmq5 and its deps, libstdc++, ...):
#     tests/guest/mkinitramfs.sh copies the closure of every dynamic BINARY;
#   - a writable tmpfs /dev/shm (Boost queues) and a writable /tmp (zmq
#     ipc:// sockets): tests/guest/init mounts both.
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
BENCH_LDLIBS   := -lzmq -lrt
BENCH_ARGS     ?=

.PHONY: bench-build bench
bench-build: $(BENCH_BIN)

$(BUILD)/tools/bench/%.o: $(BENCH_TOP)/tools/bench/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(BENCH_CXXFLAGS) -MMD -MP -c -o $@ $<

# The mechanisms register themselves from static constructors, so their
# objects are linked directly, never through an archive.
$(BENCH_BIN): $(BENCH_OBJS) $(BENCH_LIB_A)
	@mkdir -p $(@D)
	$(CXX) -pthread -o $@ $(BENCH_OBJS) $(BENCH_LIB_A) $(BENCH_LDLIBS)

bench: $(BENCH_BIN)
	$(BENCH_BIN) $(BENCH_ARGS)

-include $(BENCH_OBJS:.o=.d)
