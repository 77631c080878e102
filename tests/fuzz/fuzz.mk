# libFuzzer target for the consumer's record parsing (tests/fuzz/consumer_fuzz.cpp).
# Included by the top-level Makefile after lib/lib.mk and tests/tests.mk.
#   $(BUILD)/fuzz/shmq-consumer-fuzz   the fuzzer (clang, -fsanitize=fuzzer,address,undefined;
#                                      libshmq's sources compiled with coverage too)
#   $(BUILD)/fuzz/seeds/               seed corpus written by make-seeds (real Producer)
#   tests/fuzz/regressions/            inputs that once failed, replayed first by every run
#   make fuzz                          builds both and fuzzes for FUZZ_SECONDS (default 60);
#                                      the corpus grows in $(BUILD)/fuzz/corpus, failing inputs
#                                      land in $(BUILD)/fuzz/artifacts (replay: the fuzzer binary
#                                      with the file as argument; SHMQ_FUZZ_TRACE=1 lists the steps)
# make test runs it in its native section (tests/guest/run-matrix.sh); FUZZ_SECONDS=0 skips
# it there. Needs clang++ and libFuzzer (Debian: clang, libclang-rt-14-dev); without them
# the fuzzer is not built and make test reports one failure saying so.

FUZZ_TOP      := $(patsubst %/tests/fuzz/fuzz.mk,%,$(abspath $(lastword $(MAKEFILE_LIST))))
ifeq ($(origin FUZZ_CXX),undefined)
FUZZ_CXX      := $(firstword $(shell command -v clang++-14 clang++ 2>/dev/null))
endif
FUZZ_SECONDS  ?= 60
# libFuzzer's runtime: -print-file-name prints just the name when it is absent.
FUZZ_RT       := $(if $(FUZZ_CXX),$(shell $(FUZZ_CXX) -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null))
FUZZ_OK       := $(if $(filter /%,$(FUZZ_RT)),$(wildcard $(FUZZ_RT)))
FUZZ_MISSING  := $(if $(FUZZ_OK),,clang++ with libFuzzer not found (FUZZ_CXX='$(FUZZ_CXX)'): install the Debian packages clang and libclang-rt-14-dev (tools/install-deps.sh))
FUZZ_CXXFLAGS := -std=c++20 -O1 -g -Wall -Wextra -Werror -I$(FUZZ_TOP)/include -fno-omit-frame-pointer
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_BIN      := $(BUILD)/fuzz/shmq-consumer-fuzz
FUZZ_SEEDER   := $(BUILD)/fuzz/make-seeds
FUZZ_SEEDS    := $(BUILD)/fuzz/seeds
FUZZ_REGRESSIONS := $(FUZZ_TOP)/tests/fuzz/regressions
FUZZ_LIB_OBJS := $(patsubst $(FUZZ_TOP)/lib/%.cpp,$(BUILD)/fuzz/lib/%.o,$(LIBSHMQ_SRCS))

.PHONY: fuzz fuzz-build
fuzz-build: $(if $(FUZZ_OK),$(FUZZ_BIN)) $(BUILD)/fuzz/seeds.stamp

fuzz: fuzz-build
	@$(if $(FUZZ_OK),,echo "$(FUZZ_MISSING)"; exit 1)
	@mkdir -p $(BUILD)/fuzz/corpus $(BUILD)/fuzz/artifacts
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=8448 -use_value_profile=1 \
		-dict=$(FUZZ_TOP)/tests/fuzz/consumer.dict -print_final_stats=1 \
		-artifact_prefix=$(BUILD)/fuzz/artifacts/ $(BUILD)/fuzz/corpus $(FUZZ_SEEDS) $(FUZZ_REGRESSIONS)

# make test builds the fuzzer with everything else, unless fuzzing is off
ifneq ($(FUZZ_SECONDS),0)
test-build: fuzz-build
endif
HARNESS_ENV += FUZZ_BIN="$(FUZZ_BIN)" FUZZ_SEEDS="$(FUZZ_SEEDS)" FUZZ_SECONDS="$(FUZZ_SECONDS)" \
	       FUZZ_REGRESSIONS="$(FUZZ_REGRESSIONS)" \
	       FUZZ_MISSING="$(FUZZ_MISSING)"

$(BUILD)/fuzz/lib/%.o: $(FUZZ_TOP)/lib/%.cpp
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(BUILD)/fuzz/consumer_fuzz.o: $(FUZZ_TOP)/tests/fuzz/consumer_fuzz.cpp
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BIN): $(BUILD)/fuzz/consumer_fuzz.o $(FUZZ_LIB_OBJS)
	$(FUZZ_CXX) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^

# The seeds come from the ordinary build of libshmq (g++): no clang needed.
$(FUZZ_SEEDER): $(FUZZ_TOP)/tests/fuzz/make_seeds.cpp $(LIBSHMQ_A)
	@mkdir -p $(@D)
	$(CXX) -std=c++20 -O2 -g -Wall -Wextra -Werror -I$(FUZZ_TOP)/include -MMD -MP -MF $@.d -o $@ $< $(LIBSHMQ_A)

$(BUILD)/fuzz/seeds.stamp: $(FUZZ_SEEDER)
	@rm -rf $(FUZZ_SEEDS) && mkdir -p $(FUZZ_SEEDS)
	$(FUZZ_SEEDER) $(FUZZ_SEEDS)
	@touch $@

-include $(FUZZ_LIB_OBJS:.o=.d) $(BUILD)/fuzz/consumer_fuzz.d $(FUZZ_SEEDER).d
