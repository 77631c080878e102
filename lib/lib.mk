# libshmq: $(BUILD)/lib/libshmq.a and $(BUILD)/lib/libshmq.so.0 (+ libshmq.so).
# Included by the top-level Makefile, which defines BUILD and CXX.

LIBSHMQ_TOP      := $(patsubst %/lib/lib.mk,%,$(abspath $(lastword $(MAKEFILE_LIST))))
LIBSHMQ_CXXFLAGS := -std=c++20 -O2 -g -Wall -Wextra -Werror -fPIC -I$(LIBSHMQ_TOP)/include
LIBSHMQ_SRCS     := $(wildcard $(LIBSHMQ_TOP)/lib/*.cpp)
LIBSHMQ_OBJS     := $(patsubst $(LIBSHMQ_TOP)/lib/%.cpp,$(BUILD)/lib/%.o,$(LIBSHMQ_SRCS))
LIBSHMQ_A        := $(BUILD)/lib/libshmq.a
LIBSHMQ_SO       := $(BUILD)/lib/libshmq.so.0

.PHONY: lib
lib: $(LIBSHMQ_A) $(LIBSHMQ_SO) $(BUILD)/lib/libshmq.so

$(BUILD)/lib/%.o: $(LIBSHMQ_TOP)/lib/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(LIBSHMQ_CXXFLAGS) -MMD -MP -c -o $@ $<

$(LIBSHMQ_A): $(LIBSHMQ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(LIBSHMQ_SO): $(LIBSHMQ_OBJS)
	$(CXX) -shared -Wl,-soname,libshmq.so.0 -o $@ $^

$(BUILD)/lib/libshmq.so: $(LIBSHMQ_SO)
	ln -sf libshmq.so.0 $@

-include $(LIBSHMQ_OBJS:.o=.d)
