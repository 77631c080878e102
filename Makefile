# shmq top-level build.
#   make            library, tools, native tests and the module for KDIR
#   make module     the kernel module for KDIR (default: see KDIR below)
#   make demo       a demo of real queues between processes (in a QEMU guest)
#   make test       native tests, then the module in every listed kernel
#   make bench      shmq-bench natively and in a guest with the module, ratios,
#                   chart: build/bench/ (BENCH_ARGS=--quick: natively only)
#   make bench-instr  instructions per message of the fast paths and of a
#                   hand-written ring, natively under callgrind (valgrind)
#   make fuzz       the consumer record-parser fuzzer for FUZZ_SECONDS (clang, libFuzzer)
#   make install    PREFIX=/usr/local DESTDIR= KDIR=|KVER= (see install.mk,
#                   docs/install.md); make uninstall; make dkms-install;
#                   make dkms-check
# Everything is built under build/ so that the source tree stays clean.

BUILD   ?= $(CURDIR)/build

# The one version string: VERSION. include/shmq/version.h is made from it
# (rewritten only when it changes) before anything is compiled.
SHMQ_VERSION := $(shell cat $(CURDIR)/VERSION)
SHMQ_VERSION_GEN := $(shell sh $(CURDIR)/tools/gen-version.sh $(CURDIR)/VERSION \
			$(CURDIR)/include/shmq/version.h 2>&1 || echo failed)
ifneq ($(SHMQ_VERSION_GEN),)
$(error $(SHMQ_VERSION_GEN))
endif

# The kernel to build (and install) the module for: KDIR, or KVER's build
# tree, else the running kernel's if its headers are installed, else the
# newest Debian header tree (this host's own kernel cannot load modules).
ifeq ($(origin KDIR),undefined)
ifneq ($(KVER),)
KDIR    := /lib/modules/$(KVER)/build
else
KDIR    := $(or $(shell d=/lib/modules/$$(uname -r)/build; [ -f $$d/Makefile ] && echo $$d),\
		$(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1))
endif
endif
ifeq ($(KVER),)
KVER    := $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"$$/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)
endif
CXX     ?= g++
CC      ?= gcc

.PHONY: all module lib tools test demo deps clean check-kernel
all: lib tools

include kernel/module.mk
include lib/lib.mk
include tools/tools.mk
include tests/tests.mk
include tests/fuzz/fuzz.mk
include tools/bench/bench.mk
include install.mk

deps:
	bash tools/install-deps.sh

clean:
	rm -rf $(BUILD)
