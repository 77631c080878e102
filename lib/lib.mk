# libshmq: $(BUILD)/lib/libshmq.a and the shared library
# $(BUILD)/lib/libshmq.so.$(SHMQ_VERSION) with soname libshmq.so.$(major)
# (+ the libshmq.so.$(major) and libshmq.so symlinks, as installed).
# Included by the top-level Makefile, which defines BUILD and CXX.
# The version is the top-level VERSION file; the soname's number is its
# major (MAJOR.MINOR before 1.0): bump the major when the C++ ABI breaks.

LIBSHMQ_TOP      := $(patsubst %/lib/lib.mk,%,$(abspath $(lastword $(MAKEFILE_LIST))))
SHMQ_VERSION     ?= $(shell cat $(LIBSHMQ_TOP)/VERSION)
# Before 1.0 every minor release may break the ABI (0.4.0 did: inline fast
# paths, expected<>), so the soname's number is then MAJOR.MINOR.
LIBSHMQ_VPARTS   := $(subst ., ,$(SHMQ_VERSION))
LIBSHMQ_SOVERSION := $(if $(filter 0,$(word 1,$(LIBSHMQ_VPARTS))),0.$(word 2,$(LIBSHMQ_VPARTS)),$(word 1,$(LIBSHMQ_VPARTS)))
LIBSHMQ_SONAME   := libshmq.so.$(LIBSHMQ_SOVERSION)
# Hidden by default: only what <shmq/export.hpp>'s SHMQ_API marks, and the C
# API, is exported, and lib/libshmq.map keeps everything else (instantiated
# std templates included) out of the dynamic symbol table. make
# check-exports (run by tests/install/run.sh) verifies it.
LIBSHMQ_CXXFLAGS := -std=c++20 -O2 -g -Wall -Wextra -Werror -fPIC -fvisibility=hidden \
		    -fvisibility-inlines-hidden -I$(LIBSHMQ_TOP)/include
LIBSHMQ_MAP      := $(LIBSHMQ_TOP)/lib/libshmq.map
LIBSHMQ_SRCS     := $(wildcard $(LIBSHMQ_TOP)/lib/*.cpp)
LIBSHMQ_OBJS     := $(patsubst $(LIBSHMQ_TOP)/lib/%.cpp,$(BUILD)/lib/%.o,$(LIBSHMQ_SRCS))
LIBSHMQ_A        := $(BUILD)/lib/libshmq.a
LIBSHMQ_SO       := $(BUILD)/lib/libshmq.so.$(SHMQ_VERSION)

.PHONY: lib check-exports
lib: $(LIBSHMQ_A) $(LIBSHMQ_SO) $(BUILD)/lib/$(LIBSHMQ_SONAME) $(BUILD)/lib/libshmq.so

$(BUILD)/lib/%.o: $(LIBSHMQ_TOP)/lib/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(LIBSHMQ_CXXFLAGS) -MMD -MP -c -o $@ $<

$(LIBSHMQ_A): $(LIBSHMQ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(LIBSHMQ_SO): $(LIBSHMQ_OBJS) $(LIBSHMQ_MAP)
	$(CXX) -shared -Wl,-soname,$(LIBSHMQ_SONAME) -Wl,-z,defs -Wl,--version-script=$(LIBSHMQ_MAP) \
		-o $@ $(LIBSHMQ_OBJS)

# Fails when libshmq.so exports anything but the public API.
check-exports: $(LIBSHMQ_SO)
	bash $(LIBSHMQ_TOP)/lib/check-exports.sh $(LIBSHMQ_SO)

$(BUILD)/lib/$(LIBSHMQ_SONAME): $(LIBSHMQ_SO)
	ln -sf $(notdir $<) $@

$(BUILD)/lib/libshmq.so: $(BUILD)/lib/$(LIBSHMQ_SONAME)
	ln -sf $(LIBSHMQ_SONAME) $@

-include $(LIBSHMQ_OBJS:.o=.d)
