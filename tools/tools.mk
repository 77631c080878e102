# shmqctl and shmq-demo, statically linked against libshmq.a so that they run
# in a minimal (busybox initramfs) guest. Needs lib/lib.mk included first.

TOOLS_TOP      := $(patsubst %/tools/tools.mk,%,$(abspath $(lastword $(MAKEFILE_LIST))))
TOOLS_CXXFLAGS := -std=c++20 -O2 -g -Wall -Wextra -Werror -I$(TOOLS_TOP)/include
TOOLS_BINS     := $(BUILD)/tools/shmqctl $(BUILD)/tools/shmq-demo

.PHONY: tools
tools: $(TOOLS_BINS)

$(BUILD)/tools/%.o: $(TOOLS_TOP)/tools/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(TOOLS_CXXFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tools/shmqctl: $(BUILD)/tools/shmqctl.o $(LIBSHMQ_A)
	$(CXX) -static -o $@ $< $(LIBSHMQ_A)

$(BUILD)/tools/shmq-demo: $(BUILD)/tools/shmq-demo.o $(LIBSHMQ_A)
	$(CXX) -static -o $@ $< $(LIBSHMQ_A)

-include $(TOOLS_BINS:=.d)
