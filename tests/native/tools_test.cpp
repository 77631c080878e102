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

namespace {

std::string bench_or_skip()
{
	const std::string b = build_tool("shmq-bench", "SHMQ_BENCH");
	if (access(b.c_str(), X_OK) != 0)
		return "";
	return b;
}

// jq -e @expr over file @f.
bool jq_file(const std::string &f, const std::string &expr, std::string *why)
{
	Ran r = run({"jq", "-e", expr, f});
	*why = "jq " + expr + ": status " + std::to_string(r.status) + ": " + r.out + r.err;
	return r.status == 0;
}

// What every measured row of shmq-bench's JSON must say about its runs: as
// many values as runs, each the row's main figure of one run, and
// min <= median <= max over them, the median being the reported figure.
const char *const kSpreadOk = R"(
	[.rows[] | select(.status == "ok")] as $ok
	| ($ok | length) > 0 and all($ok[];
		.spread.metric == (if .workload == "pingpong" then "rtt_median_us" else "msgs_per_s" end)
		and (.spread.runs | length) == .repeats
		and all(.spread.runs[]; . > 0)
		and .spread.min == (.spread.runs | min) and .spread.max == (.spread.runs | max)
		and .spread.min <= .spread.median and .spread.median <= .spread.max
		and .spread.median == .[.spread.metric]
		and (.spread as $s | any($s.runs[]; . == $s.median)))
	and all(.rows[] | select(.status != "ok"); .spread == null))";

} // namespace

// --repeat N used to report the median run alone: every run's figure and
// their min/median/max are now in the JSON and in the table.
TEST(Tools, BenchReportsEveryRunAndMinMedianMaxPerCell)
{
	const std::string bench = bench_or_skip();
	if (bench.empty())
		GTEST_SKIP() << "shmq-bench is not built (make bench-build; make test builds it)";
	char dir[] = "/tmp/shmq-bench-test-XXXXXX";
	ASSERT_NE(nullptr, mkdtemp(dir));
	const std::string json = std::string(dir) + "/out.json";
	Ran r = run({bench, "--mechanisms", "memcpy,pipe", "--workloads", "pingpong,stream", "--sizes", "64",
		     "--count", "300", "--repeat", "3", "--no-pin", "--json", json});
	ASSERT_EQ(0, r.status) << r.out << r.err;
	std::string why;
	EXPECT_TRUE(jq_file(json, ".format == 2 and .options.repeat == 3", &why)) << why;
	EXPECT_TRUE(jq_file(json, "[.rows[] | select(.status == \"ok\")] | length == 3 and all(.[]; .repeats == 3)",
			    &why))
		<< why;
	EXPECT_TRUE(jq_file(json, kSpreadOk, &why)) << why;
	// the table: min and max columns, and every run's figure under each row
	EXPECT_NE(std::string::npos, r.out.find("min run")) << r.out;
	EXPECT_NE(std::string::npos, r.out.find("max run")) << r.out;
	EXPECT_NE(std::string::npos, r.out.find("runs (median us): ")) << r.out;
	EXPECT_NE(std::string::npos, r.out.find("runs (msgs/s): ")) << r.out;
	size_t lines = 0;
	for (size_t p = r.out.find("    runs ("); p != std::string::npos; p = r.out.find("    runs (", p + 1))
		++lines;
	EXPECT_EQ(3u, lines) << r.out;

	// one run: one value, min == median == max
	r = run({bench, "--mechanisms", "memcpy", "--workloads", "stream", "--sizes", "64", "--count", "300",
		 "--json", json});
	ASSERT_EQ(0, r.status) << r.out << r.err;
	EXPECT_TRUE(jq_file(json, kSpreadOk, &why)) << why;
	EXPECT_TRUE(jq_file(json, ".rows[0].spread | (.runs | length) == 1 and .min == .max", &why)) << why;
	EXPECT_EQ(std::string::npos, r.out.find("    runs (")) << r.out;
	run({"rm", "-rf", dir});
}

// `make bench` merges the guest's rounds (tests/guest/bench.sh with
// tools/bench/merge.jq): the merged row keeps the median round and its
// spread covers the runs of every round.
TEST(Tools, BenchMergeOfRoundsKeepsEveryRunInTheSpread)
{
	const std::string bench = bench_or_skip();
	if (bench.empty())
		GTEST_SKIP() << "shmq-bench is not built (make bench-build; make test builds it)";
	const std::string merge = std::string(SHMQ_TOP) + "/tools/bench/merge.jq";
	char dir[] = "/tmp/shmq-bench-test-XXXXXX";
	ASSERT_NE(nullptr, mkdtemp(dir));
	const std::string d = dir;
	for (int i = 1; i <= 3; ++i) {
		Ran r = run({bench, "--mechanisms", "memcpy,pipe", "--workloads", "stream,pingpong", "--sizes",
			     "64", "--count", "200", "--repeat", "2", "--no-pin", "--json",
			     d + "/round-" + std::to_string(i) + ".json"});
		ASSERT_EQ(0, r.status) << r.out << r.err;
	}
	Ran m = run({"sh", "-c",
		     "jq -s -f \"$0\" \"$1\"/round-1.json \"$1\"/round-2.json \"$1\"/round-3.json >\"$1\"/merged.json",
		     merge, d});
	ASSERT_EQ(0, m.status) << m.out << m.err << " (merge program " << merge << ")";
	std::string why;
	EXPECT_TRUE(jq_file(d + "/merged.json", ".rounds == 3 and (.rows | length) == 3", &why)) << why;
	EXPECT_TRUE(jq_file(d + "/merged.json", kSpreadOk, &why)) << why;
	EXPECT_TRUE(jq_file(d + "/merged.json", "all(.rows[]; .repeats == 6)", &why)) << why;
	run({"rm", "-rf", dir});
}

TEST(Tools, BenchTakesDoubleDashAndRefusesUnknownOptions)
{
	const std::string bench = bench_or_skip();
	if (bench.empty())
		GTEST_SKIP() << "shmq-bench is not built (make bench-build; make test builds it)";
	Ran r = run({bench, "--list", "--"});
	EXPECT_EQ(0, r.status) << r.err; // '--' used to be an unexpected argument
	EXPECT_NE(std::string::npos, r.out.find("memcpy")) << r.out;
	r = run({bench, "--", "--list"});
	EXPECT_EQ(2, r.status);
	EXPECT_EQ("shmq-bench: unexpected argument '--list' (see 'shmq-bench --help')\n", r.err);
	r = run({bench, "--bogus=3"});
	EXPECT_EQ(2, r.status);
	EXPECT_EQ("shmq-bench: unknown option '--bogus' (see 'shmq-bench --help')\n", r.err);
	r = run({bench, "--repeat"});
	EXPECT_EQ(2, r.status);
	EXPECT_EQ("shmq-bench: option '--repeat' needs a value (see 'shmq-bench --help')\n", r.err);
	r = run({bench, "--rep=0"}); // a unique abbreviation
	EXPECT_EQ(2, r.status);
	EXPECT_EQ("shmq-bench: bad --repeat '0' (see 'shmq-bench --help')\n", r.err);
}
