# libshmq: $(BUILD)/lib/libshmq.a and the shared library
# $(BUILD)/lib/libshmq.so.$(SHMQ_VERSION) with soname libshmq.so.$(major)
# (+ the libshmq.so.$(major) and libshmq.so symlinks, as installed).
# Included by the top-level Makefile, which defines BUILD and CXX.
# The version is the top-level VERSION file; the soname's number is its
# major: bump the major when the C++ ABI breaks.

LIBSHMQ_TOP      := $(patsubst %/lib/lib.mk,%,$(abspath $(lastword $(MAKEFILE_LIST))))
SHMQ_VERSION     ?= $(shell cat $(LIBSHMQ_TOP)/VERSION)
LIBSHMQ_SOVERSION := $(firstword $(subst ., ,$(SHMQ_VERSION)))
LIBSHMQ_SONAME   := libshmq.so.$(LIBSHMQ_SOVERSION)
LIBSHMQ_CXXFLAGS := -std=c++20 -O2 -g -Wall -Wextra -Werror -fPIC -I$(LIBSHMQ_TOP)/include
LIBSHMQ_SRCS     := $(wildcard $(LIBSHMQ_TOP)/lib/*.cpp)
LIBSHMQ_OBJS     := $(patsubst $(LIBSHMQ_TOP)/lib/%.cpp,$(BUILD)/lib/%.o,$(LIBSHMQ_SRCS))
LIBSHMQ_A        := $(BUILD)/lib/libshmq.a
LIBSHMQ_SO       := $(BUILD)/lib/libshmq.so.$(SHMQ_VERSION)

.PHONY: lib
lib: $(LIBSHMQ_A) $(LIBSHMQ_SO) $(BUILD)/lib/$(LIBSHMQ_SONAME) $(BUILD)/lib/libshmq.so

$(BUILD)/lib/%.o: $(LIBSHMQ_TOP)/lib/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(LIBSHMQ_CXXFLAGS) -MMD -MP -c -o $@ $<

$(LIBSHMQ_A): $(LIBSHMQ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(LIBSHMQ_SO): $(LIBSHMQ_OBJS)
	$(CXX) -shared -Wl,-soname,$(LIBSHMQ_SONAME) -Wl,-z,defs -o $@ $^

$(BUILD)/lib/$(LIBSHMQ_SONAME): $(LIBSHMQ_SO)
	ln -sf $(notdir $<) $@

$(BUILD)/lib/libshmq.so: $(BUILD)/lib/$(LIBSHMQ_SONAME)
	ln -sf $(LIBSHMQ_SONAME) $@

-include $(LIBSHMQ_OBJS:.o=.d)
