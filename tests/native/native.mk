# Native tests of the ring protocol core and of Producer/Consumer on plain
# shared memory (no kernel module needed).
#   $(BUILD)/tests/shmq-native-tests       against libshmq.a
#   $(BUILD)/tests/shmq-native-tests-asan  library and tests built with
#                                          -fsanitize=address,undefined
#   $(BUILD)/tests/shmq-expected-std-tests expected_test.cpp against C++23's
#                                          std::expected: shmq::expected must
#                                          pass the same tests
#   make native-test                       builds and runs all three
# shmqctl_test.cpp and tools_test.cpp run $(BUILD)/tools/shmqctl, shmq-demo
# (and shmq-bench when built: make bench-build) and jq.
# Needs lib/lib.mk (LIBSHMQ_*) to be included first.

NATIVE_TOP      := $(patsubst %/tests/native/native.mk,%,$(abspath $(lastword $(MAKEFILE_LIST))))
NATIVE_CXXFLAGS := -std=c++20 -O2 -g -Wall -Wextra -Werror -I$(NATIVE_TOP)/include -DSHMQ_TOP='"$(NATIVE_TOP)"'
NATIVE_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
NATIVE_LDLIBS   := -lgtest -lgtest_main -pthread
NATIVE_SRCS     := $(wildcard $(NATIVE_TOP)/tests/native/*_test.cpp)
NATIVE_OBJS     := $(patsubst $(NATIVE_TOP)/tests/native/%.cpp,$(BUILD)/tests/native/%.o,$(NATIVE_SRCS))
NATIVE_ASAN_OBJS := $(patsubst $(NATIVE_TOP)/tests/native/%.cpp,$(BUILD)/tests/native-asan/%.o,$(NATIVE_SRCS)) \
		    $(patsubst $(NATIVE_TOP)/lib/%.cpp,$(BUILD)/tests/native-asan/lib/%.o,$(LIBSHMQ_SRCS))
NATIVE_BIN      := $(BUILD)/tests/shmq-native-tests
NATIVE_ASAN_BIN := $(BUILD)/tests/shmq-native-tests-asan
NATIVE_STD_EXPECTED_BIN := $(BUILD)/tests/shmq-expected-std-tests

.PHONY: native-tests native-test
# shmqctl_test.cpp and tools_test.cpp run the tools they test.
native-tests: $(NATIVE_BIN) $(NATIVE_ASAN_BIN) $(NATIVE_STD_EXPECTED_BIN) $(BUILD)/tools/shmqctl \
	      $(BUILD)/tools/shmq-demo

native-test: native-tests
	$(NATIVE_BIN)
	$(NATIVE_STD_EXPECTED_BIN)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(NATIVE_ASAN_BIN)

$(BUILD)/tests/native/%.o: $(NATIVE_TOP)/tests/native/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(NATIVE_CXXFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/native-asan/%.o: $(NATIVE_TOP)/tests/native/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(NATIVE_CXXFLAGS) $(NATIVE_SAN) -MMD -MP -c -o $@ $<

$(BUILD)/tests/native-asan/lib/%.o: $(NATIVE_TOP)/lib/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(NATIVE_CXXFLAGS) $(NATIVE_SAN) -MMD -MP -c -o $@ $<

$(NATIVE_BIN): $(NATIVE_OBJS) $(LIBSHMQ_A)
	$(CXX) -o $@ $(NATIVE_OBJS) $(LIBSHMQ_A) $(NATIVE_LDLIBS)

$(NATIVE_ASAN_BIN): $(NATIVE_ASAN_OBJS)
	$(CXX) $(NATIVE_SAN) -o $@ $^ $(NATIVE_LDLIBS)

$(BUILD)/tests/native-std/expected_test.o: $(NATIVE_TOP)/tests/native/expected_test.cpp
	@mkdir -p $(@D)
	$(CXX) $(subst -std=c++20,-std=c++23,$(NATIVE_CXXFLAGS)) -DSHMQ_EXPECTED_TEST_STD -MMD -MP -c -o $@ $<

$(NATIVE_STD_EXPECTED_BIN): $(BUILD)/tests/native-std/expected_test.o
	$(CXX) -o $@ $^ $(NATIVE_LDLIBS)

-include $(NATIVE_OBJS:.o=.d) $(BUILD)/tests/native-std/expected_test.d $(NATIVE_ASAN_OBJS:.o=.d)
