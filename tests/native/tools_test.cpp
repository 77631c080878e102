// SPDX-License-Identifier: MIT
// Tools*: shmq-demo's and shmq-bench's argument parsing and shmq-bench's
// report, without the module ($(BUILD)/tools/, see tool_run.hpp).
#include <gtest/gtest.h>

#include <string>
#include <unistd.h>

#include "tool_run.hpp"

// getopt_long: '--' ends the options, unknown ones are usage errors.
TEST(Tools, DemoTakesDoubleDashAndRefusesUnknownOptions)
{
	const std::string demo = build_tool("shmq-demo", "SHMQ_DEMO");
	ASSERT_EQ(0, access(demo.c_str(), X_OK)) << demo << ": build it with 'make tools'";
	// '--' is accepted: the run gets as far as checking --msg-size
	Ran r = run({demo, "--msg-size", "8", "--"});
	EXPECT_EQ(2, r.status);
	EXPECT_NE(std::string::npos, r.err.find("--msg-size must be at least 16")) << r.err;
	r = run({demo, "--", "extra"});
	EXPECT_EQ(2, r.status);
	EXPECT_EQ("shmq-demo: unexpected argument 'extra' (see 'shmq-demo --help')\n", r.err);
	r = run({demo, "--bogus"});
	EXPECT_EQ(2, r.status);
	EXPECT_EQ("shmq-demo: unknown option '--bogus' (see 'shmq-demo --help')\n", r.err);
	r = run({demo, "--count"});
	EXPECT_EQ(2, r.status);
	EXPECT_EQ("shmq-demo: option '--count' needs a value (see 'shmq-demo --help')\n", r.err);
	r = run({demo, "--queue", "-rf"});
	EXPECT_EQ(2, r.status);
	EXPECT_NE(std::string::npos, r.err.find("must not start with '-'")) << r.err;
	r = run({demo, "--count=10", "--help"});
	EXPECT_EQ(0, r.status);
	EXPECT_EQ(0u, r.out.find("usage: shmq-demo")) << r.out;
}
