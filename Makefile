# shmq top-level build.
#   make            library, tools, native tests and the module for KDIR
#   make module     the kernel module for KDIR (default: the running kernel)
#   make demo       a demo of real queues between processes (in a QEMU guest)
#   make test       native tests, then the module in every listed kernel
#   make bench      shmq-bench natively and in a guest with the module, ratios,
#                   chart: build/bench/ (BENCH_ARGS=--quick: natively only)
# Everything is built under build/ so that the source tree stays clean.

BUILD   ?= $(CURDIR)/build
KDIR    ?= /lib/modules/$(shell uname -r)/build
CXX     ?= g++
CC      ?= gcc

.PHONY: all module lib tools test demo deps clean check-kernel
all: lib tools

include kernel/module.mk
include lib/lib.mk
include tools/tools.mk
include tests/tests.mk
include tools/bench/bench.mk

deps:
	bash tools/install-deps.sh

clean:
	rm -rf $(BUILD)
