# SPDX-License-Identifier: GPL-2.0
# shmq kernel module: included by the top-level Makefile (BUILD, KDIR).
#
#   make module             shmq.ko for KDIR -> $(BUILD)/module/<kver>/shmq.ko
#   make module-all         shmq.ko for Debian 6.1, Debian 6.12 and the debug
#                           kernel -> $(BUILD)/module/<kver>/shmq.ko each
#   make module-check       the same three with W=1 and sparse (C=2), in
#                           $(BUILD)/module-check/<kver>/; fails on any warning
#   make module-kdir-debug  unpack the debug kernel's build tree
#                           -> $(BUILD)/kdir-debug/build
#
# <kver> is the kernel's UTS_RELEASE (what vermagic must match). Per-kernel
# builds for other scripts (e.g. the QEMU harness):
#   kernel/build-module.sh [--check] KDIR [OUTDIR]
# which prints the path of shmq.ko on its last line.

SHMQ_MODULE_SCRIPT := $(CURDIR)/kernel/build-module.sh

# Debian's header trees, resolved by glob (newest if several are installed).
SHMQ_KDIR_61  ?= $(shell ls -d /usr/src/linux-headers-6.1.0-*-amd64 2>/dev/null | sort -V | tail -n 1)
SHMQ_KDIR_612 ?= $(shell ls -d /usr/src/linux-headers-6.12.*-amd64 2>/dev/null | sort -V | tail -n 1)

# The debug kernel (KASAN, lockdep, ...) ships its build tree as a tarball.
SHMQ_DEBUG_KERNEL ?= $(abspath $(CURDIR)/../shared/kernels/6.1-debug)
SHMQ_KDIR_DEBUG   := $(BUILD)/kdir-debug/build
SHMQ_DEBUG_STAMP  := $(BUILD)/kdir-debug/.unpacked

.PHONY: module module-all module-check module-kdir-debug

module:
	@$(SHMQ_MODULE_SCRIPT) "$(KDIR)" >/dev/null || \
		{ echo "module: build for KDIR=$(KDIR) failed (see above or build.log)" >&2; exit 1; }
	@echo "module: built for KDIR=$(KDIR)"

module-kdir-debug: $(SHMQ_DEBUG_STAMP)

$(SHMQ_DEBUG_STAMP): $(SHMQ_DEBUG_KERNEL)/build.tar.xz
	rm -rf $(BUILD)/kdir-debug
	mkdir -p $(BUILD)/kdir-debug
	tar -C $(BUILD)/kdir-debug -xJf $<
	test -f $(SHMQ_KDIR_DEBUG)/Makefile
	touch $@

$(SHMQ_DEBUG_KERNEL)/build.tar.xz:
	@echo "module: debug kernel build tree $@ not found" >&2; exit 1

# $(call shmq_build_each,EXTRA_ARGS,OUTROOT): build for each of the three
# kernels; fails if a header tree is missing.
define shmq_build_each
	@set -e; \
	for kdir in "$(SHMQ_KDIR_61)" "$(SHMQ_KDIR_612)" "$(SHMQ_KDIR_DEBUG)"; do \
		if [ -z "$$kdir" ] || [ ! -d "$$kdir" ]; then \
			echo "module: missing kernel build tree '$$kdir' (6.1: '$(SHMQ_KDIR_61)', 6.12: '$(SHMQ_KDIR_612)'; run make deps)" >&2; \
			exit 1; \
		fi; \
		kver=$$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$$/\1/p' "$$kdir/include/generated/utsrelease.h"); \
		echo "== shmq.ko for $$kver ($$kdir)"; \
		$(SHMQ_MODULE_SCRIPT) $(1) "$$kdir" "$(2)/$$kver" >/dev/null; \
		echo "   $(2)/$$kver/shmq.ko"; \
	done
endef

module-all: $(SHMQ_DEBUG_STAMP)
	$(call shmq_build_each,,$(BUILD)/module)

module-check: $(SHMQ_DEBUG_STAMP)
	$(call shmq_build_each,--check,$(BUILD)/module-check)
	@echo "module-check: no warnings (W=1, C=2) on 6.1, 6.12 and the debug kernel"
