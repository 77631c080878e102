// SPDX-License-Identifier: MIT
// Shmqctl*: what shmqctl does without the module: option parsing (getopt_long
// in every subcommand, '--', unknown options: status 2 and a usage hint) and
// the JSON of list and stat, read from a fake sysfs tree (--sysfs) and
// checked with jq. The guest suites (tests/guest/sysfs_test.cpp) run it
// against the real module.
//
// The binary: $SHMQCTL, else $(BUILD)/tools/shmqctl (tool_run.hpp).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "tool_run.hpp"

namespace {

void put(const std::string &path, const std::string &text)
{
	std::ofstream(path) << text;
}

// A sysfs tree as shmq.ko makes it (two queues, one of them a legacy name
// with a leading '-'), a device directory with a node for "orders", and
// shmqctl pointed at both.
class Shmqctl : public testing::Test {
protected:
	void SetUp() override
	{
		tool_ = build_tool("shmqctl", "SHMQCTL");
		ASSERT_EQ(0, access(tool_.c_str(), X_OK))
			<< tool_ << " is missing: build it with 'make tools' (or set SHMQCTL)";
		char t[] = "/tmp/shmqctl-test-XXXXXX";
		ASSERT_NE(nullptr, mkdtemp(t));
		root_ = t;
		for (const char *d : {"/sys", "/sys/class", "/sys/class/shmq", "/sys/class/shmq/orders",
				      "/sys/class/shmq/-rf", "/sys/module", "/sys/module/shmq",
				      "/sys/module/shmq/usage", "/sys/module/shmq/parameters", "/dev"})
			ASSERT_EQ(0, mkdir((root_ + d).c_str(), 0755)) << d;
		const std::string q = root_ + "/sys/class/shmq/orders/";
		const std::pair<const char *, const char *> attrs[] = {
			{"capacity", "65536"},	   {"max_message", "16376"},   {"bytes_used", "256"},
			{"producers", "1"},	   {"producer_pid", "417"},    {"consumers", "0"},
			{"consumer_pid", "0"},	   {"bytes_published", "640"}, {"bytes_passed", "384"},
			{"waits", "3"},		   {"wakes", "2"},	       {"full_events", "1"},
			{"empty_events", "0"},	   {"created_by_uid", "0"},    {"created_at", "1764175000"},
			{"dev", "245:0"},
		};
		for (auto &[n, v] : attrs)
			put(q + n, std::string(v) + "\n");
		put(q + "uevent", "MAJOR=245\nMINOR=0\nDEVNAME=shmq/orders\n");
		// an attribute of a newer module, with characters JSON must escape
		put(q + "future_note", "say \"hi\"\\\tnow\n");
		put(root_ + "/sys/class/shmq/-rf/capacity", "4096\n");
		put(root_ + "/sys/module/shmq/usage/queues", "2\n");
		put(root_ + "/sys/module/shmq/usage/memory_bytes", "81920\n");
		put(root_ + "/sys/module/shmq/parameters/max_queues", "256\n");
		put(root_ + "/sys/module/shmq/parameters/max_total_memory", "1073741824\n");
		put(root_ + "/sys/module/shmq/parameters/queues", "unpriv:64K\n");
		put(root_ + "/dev/orders", "");
		ASSERT_EQ(0, chmod((root_ + "/dev/orders").c_str(), 0640));
	}
	void TearDown() override
	{
		if (!root_.empty())
			run({"rm", "-rf", root_});
	}
	Ran ctl(std::vector<std::string> args)
	{
		std::vector<std::string> a = {tool_, "--sysfs", root_ + "/sys", "--dev-dir", root_ + "/dev",
					      "--control", root_ + "/no-control"};
		a.insert(a.end(), args.begin(), args.end());
		return run(a);
	}
	// jq -e @expr over @json; true if it printed "true"-ish (exit 0).
	bool jq(const std::string &json, const std::string &expr, std::string *out = nullptr)
	{
		const std::string f = root_ + "/out.json";
		put(f, json);
		Ran r = run({"jq", "-e", expr, f});
		if (out)
			*out = r.out + r.err;
		if (r.status == 127)
			ADD_FAILURE() << "jq is not installed (tools/install-deps.sh installs it)";
		return r.status == 0;
	}
	std::string tool_, root_;
};

} // namespace

// 'shmqctl send q -rf' used to send "-rf": an unknown option is a usage error.
TEST_F(Shmqctl, SendTreatsAnUnknownOptionAsAnErrorNotAsAMessage)
{
	Ran r = ctl({"send", "orders", "-rf"});
	EXPECT_EQ(2, r.status) << r.err;
	EXPECT_EQ("", r.out);
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: send: unknown option '-rf'")) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("'--'")) << "no hint about '--': " << r.err;
	EXPECT_NE(std::string::npos, r.err.find("see 'shmqctl send --help'")) << r.err;
	r = ctl({"send", "orders", "hello", "--bogus=1"});
	EXPECT_EQ(2, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("unknown option '--bogus'")) << r.err;
}

TEST_F(Shmqctl, EveryCommandRefusesUnknownOptionsWithStatus2AndAUsageHint)
{
	for (const char *cmd : {"create", "destroy", "list", "stat", "top", "send", "recv"}) {
		for (const char *bad : {"--bogus", "-Z"}) {
			Ran r = ctl({cmd, "orders", bad});
			EXPECT_EQ(2, r.status) << cmd << " " << bad << ": " << r.err;
			EXPECT_NE(std::string::npos, r.err.find(std::string("shmqctl: ") + cmd +
								": unknown option '" + bad + "'"))
				<< r.err;
			EXPECT_NE(std::string::npos, r.err.find(std::string("see 'shmqctl ") + cmd + " --help'"))
				<< r.err;
			EXPECT_EQ("", r.out) << cmd;
		}
	}
	Ran r = run({tool_, "--bogus", "list"});
	EXPECT_EQ(2, r.status);
	EXPECT_EQ("shmqctl: unknown option '--bogus' (see 'shmqctl --help')\n", r.err);
	r = run({tool_, "--dev-dir"});
	EXPECT_EQ(2, r.status);
	EXPECT_EQ("shmqctl: option '--dev-dir' needs a value (see 'shmqctl --help')\n", r.err);
}

// A flag given a value (--json=3) used to be reported as the unknown
// option '--json=3' or as nothing useful: it is "takes no value".
TEST_F(Shmqctl, FlagGivenAValueSaysItTakesNone)
{
	Ran r = ctl({"list", "--json=3"});
	EXPECT_EQ(2, r.status) << r.err;
	EXPECT_EQ("", r.out);
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: list: option '--json' takes no value")) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("see 'shmqctl list --help'")) << r.err;
	r = ctl({"stat", "orders", "--json=yes"});
	EXPECT_EQ(2, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: stat: option '--json' takes no value")) << r.err;
}

TEST_F(Shmqctl, OptionWithoutItsValueIsAUsageError)
{
	Ran r = ctl({"create", "q", "--size"});
	EXPECT_EQ(2, r.status);
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: create: option '--size' needs a value")) << r.err;
	r = ctl({"top", "-d"});
	EXPECT_EQ(2, r.status);
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: top: option '-d' needs a value")) << r.err;
	r = ctl({"recv", "orders", "--count"});
	EXPECT_EQ(2, r.status);
	EXPECT_NE(std::string::npos, r.err.find("option '--count' needs a value")) << r.err;
}

// '--' ends the options: what follows is a name or a message, even "-rf".
TEST_F(Shmqctl, DoubleDashEndsOptionsSoDashWordsAreNamesAndMessages)
{
	// a message: the send goes ahead (and fails on the missing node: 1)
	Ran r = ctl({"send", "orders", "--", "-rf", "--help"});
	EXPECT_EQ(1, r.status) << r.err;
	EXPECT_EQ(std::string::npos, r.err.find("unknown option")) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: send: orders: ")) << r.err;
	// a (legacy) name
	r = ctl({"send", "--", "-rf", "x"});
	EXPECT_EQ(1, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: send: -rf: ")) << r.err;
	r = ctl({"stat", "--", "-rf"});
	EXPECT_EQ(0, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.out.find("name:")) << r.out;
	EXPECT_NE(std::string::npos, r.out.find("-rf")) << r.out;
	EXPECT_NE(std::string::npos, r.out.find("4096 bytes")) << r.out;
	r = ctl({"stat", "-rf"});
	EXPECT_EQ(2, r.status) << r.out;
	r = ctl({"destroy", "--", "-rf"}); // reaches the (missing) control device
	EXPECT_EQ(1, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: destroy: -rf: ")) << r.err;
	// after '--' an option is an operand
	r = ctl({"create", "--", "q", "--size", "4K"});
	EXPECT_EQ(2, r.status);
	EXPECT_NE(std::string::npos, r.err.find("unexpected argument '--size'")) << r.err;
	// options may come before or after NAME, and as --opt=value
	r = ctl({"recv", "--count=2", "orders", "--timeout", "10"});
	EXPECT_EQ(1, r.status) << r.err; // no /dev node: fails at the open, not at parsing
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: recv: orders: ")) << r.err;
	// help anywhere before '--'
	r = ctl({"send", "orders", "--help"});
	EXPECT_EQ(0, r.status);
	EXPECT_EQ(0u, r.out.find("usage: shmqctl send NAME")) << r.out;
}

// New names follow the rule; a leading '-' is refused with the reason.
TEST_F(Shmqctl, CreateRefusesANameThatStartsWithADash)
{
	Ran r = ctl({"create", "--size", "4K", "--", "-rf"});
	EXPECT_EQ(2, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("must not start with '-'")) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("option")) << r.err;
}

TEST_F(Shmqctl, ListJsonHasOneObjectPerQueueWithEverySysfsAttribute)
{
	Ran r = ctl({"list", "--json"});
	ASSERT_EQ(0, r.status) << r.err;
	EXPECT_EQ("", r.err);
	std::string why;
	EXPECT_TRUE(jq(r.out, ".queues | length == 2", &why)) << why << r.out;
	EXPECT_TRUE(jq(r.out, "[.queues[].name] == [\"-rf\", \"orders\"]", &why)) << why << r.out;
	const char *const want =
		".queues[] | select(.name == \"orders\") | .capacity == 65536 and .max_message == 16376 and "
		".bytes_used == 256 and .producers == 1 and .producer_pid == 417 and .consumers == 0 and "
		".consumer_pid == 0 and .bytes_published == 640 and .bytes_passed == 384 and .waits == 3 and "
		".wakes == 2 and .full_events == 1 and .empty_events == 0 and .created_by_uid == 0 and "
		".created_at == 1764175000 and .dev == \"245:0\" and .future_note == \"say \\\"hi\\\"\\\\\\tnow\" "
		"and (has(\"uevent\") | not) and (.node.path | endswith(\"/dev/orders\"))";
	EXPECT_TRUE(jq(r.out, want, &why)) << want << "\n" << why << r.out;
	EXPECT_TRUE(jq(r.out, ".queues[] | select(.name == \"-rf\") | .capacity == 4096 and .node == null", &why))
		<< why << r.out;
	EXPECT_TRUE(jq(r.out, ".usage == {\"queues\": 2, \"memory_bytes\": 81920}", &why)) << why << r.out;
	EXPECT_TRUE(jq(r.out, ".parameters.max_queues == 256 and .parameters.queues == \"unpriv:64K\"", &why))
		<< why << r.out;
	// no queues: an empty array
	run({"rm", "-rf", root_ + "/sys/class/shmq/orders", root_ + "/sys/class/shmq/-rf"});
	r = ctl({"list", "--json"});
	ASSERT_EQ(0, r.status) << r.err;
	EXPECT_TRUE(jq(r.out, ".queues == []", &why)) << why << r.out;
}

TEST_F(Shmqctl, StatJsonIsTheQueuesObject)
{
	Ran r = ctl({"stat", "--json", "orders"});
	ASSERT_EQ(0, r.status) << r.err;
	std::string why;
	EXPECT_TRUE(jq(r.out, ".name == \"orders\" and .capacity == 65536 and .bytes_used == 256 and "
			      ".node.mode == \"0640\" and (.node.uid | type) == \"number\"",
		       &why))
		<< why << r.out;
	// the same object as in list
	Ran l = ctl({"list", "--json"});
	ASSERT_EQ(0, l.status);
	put(root_ + "/stat.json", r.out);
	put(root_ + "/list.json", l.out);
	Ran same = run({"jq", "-e", "--slurpfile", "s", root_ + "/stat.json",
			".queues[] | select(.name == \"orders\") == $s[0]", root_ + "/list.json"});
	EXPECT_EQ(0, same.status) << same.out << same.err << "\nstat: " << r.out << "\nlist: " << l.out;
	r = ctl({"stat", "--json", "missing"});
	EXPECT_EQ(1, r.status);
	EXPECT_EQ("", r.out);
	EXPECT_EQ("shmqctl: no queue named missing (see shmqctl list)\n", r.err);
}

// --- lane queues (issue 10) -------------------------------------------------

// create --producers N: 1 to 1024; anything else is a usage error (status 2)
// that says the range, checked before the control device is touched.
TEST_F(Shmqctl, CreateProducersTakesOneTo1024)
{
	for (const char *bad : {"abc", "4x", "", "-3", "+4", "2.5"}) {
		Ran r = ctl({"create", "q", "--size", "4K", "--producers", bad});
		EXPECT_EQ(2, r.status) << bad << ": " << r.err;
		EXPECT_EQ("", r.out);
		EXPECT_EQ(std::string("shmqctl: create: bad --producers '") + bad +
				  "': a number of producers from 1 to 1024 expected (see 'shmqctl create "
				  "--help')\n",
			  r.err)
			<< bad;
	}
	for (const char *out : {"0", "1025", "18446744073709551616", "4294967297"}) {
		Ran r = ctl({"create", "q", "--size", "4K", "--producers", out});
		EXPECT_EQ(2, r.status) << out << ": " << r.err;
		const bool huge = std::string(out).size() > 10;
		if (huge) // does not fit 64 bits: not a number shmqctl can hold
			EXPECT_NE(std::string::npos, r.err.find("bad --producers")) << r.err;
		else
			EXPECT_EQ(std::string("shmqctl: create: --producers ") + out +
					  " is out of range: a lane queue has 1 to 1024 producers (without "
					  "--producers, one producer at a time) (see 'shmqctl create --help')\n",
				  r.err);
	}
	Ran r = ctl({"create", "q", "--size", "4K", "--producers"});
	EXPECT_EQ(2, r.status);
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: create: option '--producers' needs a value")) << r.err;
	// The size is still checked, and still first.
	r = ctl({"create", "q", "--size", "12K", "--producers", "4"});
	EXPECT_EQ(2, r.status);
	EXPECT_NE(std::string::npos, r.err.find("size 12288 is not a power of two")) << r.err;
	r = ctl({"create", "q", "--producers", "4"});
	EXPECT_EQ(2, r.status);
	EXPECT_NE(std::string::npos, r.err.find("missing --size BYTES")) << r.err;
	// Valid: parsing passes and the create reaches the (missing) control
	// device, 1 and 1024 included, as --producers=N too.
	for (const char *ok : {"1", "4", "1024"}) {
		r = ctl({"create", "q", "--size", "4K", std::string("--producers=") + ok});
		EXPECT_EQ(1, r.status) << ok << ": " << r.err;
		EXPECT_EQ(0u, r.err.find("shmqctl: create: q: ")) << ok << ": " << r.err;
		EXPECT_EQ(std::string::npos, r.err.find("producers")) << r.err;
	}
}

// The module's max_producers parameter, when it can be read, is checked
// before the kernel's bare EINVAL: status 1 (not a usage error: the module
// is configured so), with the parameter's value and where it lives.
TEST_F(Shmqctl, CreateProducersAboveTheModulesParameterSaysSo)
{
	put(root_ + "/sys/module/shmq/parameters/max_producers", "16\n");
	Ran r = ctl({"create", "q", "--size", "4K", "--producers", "17"});
	EXPECT_EQ(1, r.status) << r.err;
	EXPECT_EQ("", r.out);
	EXPECT_EQ("shmqctl: create: q: --producers 17 is above the module's max_producers parameter, 16 (" +
			  root_ + "/sys/module/shmq/parameters/max_producers): ask for fewer, or raise the "
				  "parameter as root\n",
		  r.err);
	r = ctl({"create", "q", "--size", "4K", "--producers", "16"});
	EXPECT_EQ(1, r.status) << r.err;
	EXPECT_EQ(std::string::npos, r.err.find("max_producers")) << r.err; // got to the control device
	EXPECT_EQ(0u, r.err.find("shmqctl: create: q: ")) << r.err;
}

// send --fail-without-consumer is a flag (the default is queue semantics,
// which only the module can show: tests/guest/shmqctl_lanes_test.cpp).
TEST_F(Shmqctl, SendFailWithoutConsumerIsAFlag)
{
	Ran r = ctl({"send", "orders", "--fail-without-consumer=yes", "x"});
	EXPECT_EQ(2, r.status) << r.err;
	EXPECT_NE(std::string::npos,
		  r.err.find("shmqctl: send: option '--fail-without-consumer' takes no value"))
		<< r.err;
	// Accepted anywhere before '--' (then the open fails: no node here).
	r = ctl({"send", "orders", "x", "--fail-without-consumer"});
	EXPECT_EQ(1, r.status) << r.err;
	EXPECT_EQ(0u, r.err.find("shmqctl: send: orders: ")) << r.err;
	// After '--' it is a message.
	r = ctl({"send", "orders", "--", "--fail-without-consumer"});
	EXPECT_EQ(1, r.status) << r.err;
	EXPECT_EQ(0u, r.err.find("shmqctl: send: orders: ")) << r.err;
}

TEST_F(Shmqctl, RecvSenderIsAFlag)
{
	Ran r = ctl({"recv", "orders", "--sender=1"});
	EXPECT_EQ(2, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: recv: option '--sender' takes no value")) << r.err;
	r = ctl({"recv", "--sender", "orders", "--count", "2"});
	EXPECT_EQ(1, r.status) << r.err; // fails at the open: no node here
	EXPECT_EQ(0u, r.err.find("shmqctl: recv: orders: ")) << r.err;
	r = ctl({"recv", "orders", "--sender", "extra"});
	EXPECT_EQ(2, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("unexpected argument 'extra'")) << r.err;
}

TEST_F(Shmqctl, HelpDescribesTheLaneOptions)
{
	Ran r = run({tool_, "--help"});
	ASSERT_EQ(0, r.status);
	for (const char *s : {"create NAME --size BYTES [--producers N]", "[--fail-without-consumer]",
			      "recv NAME [--count N] [--timeout MS] [--sender]"})
		EXPECT_NE(std::string::npos, r.out.find(s)) << s << " not in:\n" << r.out;
	r = ctl({"create", "--help"});
	ASSERT_EQ(0, r.status);
	EXPECT_NE(std::string::npos, r.out.find("--producers N (1 to 1024")) << r.out;
	r = ctl({"recv", "--help"});
	ASSERT_EQ(0, r.status);
	EXPECT_NE(std::string::npos, r.out.find("'UID PID<TAB>TEXT'")) << r.out;
	EXPECT_NE(std::string::npos, r.out.find("'END UID PID'")) << r.out;
	r = ctl({"send", "--help"});
	ASSERT_EQ(0, r.status);
	EXPECT_NE(std::string::npos, r.out.find("--fail-without-consumer: fail instead")) << r.out;
	r = ctl({"stat", "--help"});
	ASSERT_EQ(0, r.status);
	EXPECT_NE(std::string::npos, r.out.find("one line per lane in")) << r.out;
}

// The lanes attribute (kernel/sysfs.c): "LANE STATE GENERATION PID UID GID
// BYTES_QUEUED" per lane in use; uid and gid printed by the kernel with %d,
// so -1 is unmapped and a uid of 2^31 or more comes out negative.
class ShmqctlLanes : public Shmqctl {
protected:
	void SetUp() override
	{
		ASSERT_NO_FATAL_FAILURE(Shmqctl::SetUp());
		const std::string q = root_ + "/sys/class/shmq/orders/";
		put(q + "max_producers", "4\n");
		put(q + "producers", "2\n");
		pid_ = std::to_string(getpid());
		std::ifstream("/proc/self/comm") >> comm_;
		put(q + "lanes", lanes_file(pid_));
	}
	// The lanes attribute as the module writes it since 0.7: a line of 128
	// bytes for every lane, free ones too, padded with spaces.
	static std::string lanes_file(const std::string &pid)
	{
		std::string t;
		for (const std::string &l : {"0 attached 3 " + pid + " 0 0 64", std::string("1 free 2 0 4294967295 4294967295 0"),
					    std::string("2 draining 1 0 -1 -1 128"),
					    std::string("3 attached 7 0 -1294967296 54321 0")})
			t += l + std::string(127 - l.size(), ' ') + "\n";
		return t;
	}
	// As a 0.6 module wrote it: lanes in use only, unpadded.
	std::string old_lanes_file() const
	{
		return "0 attached 3 " + pid_ + " 0 0 64\n" + "2 draining 1 0 -1 -1 128\n" +
		       "3 attached 7 0 -1294967296 54321 0\n";
	}
	std::string pid_, comm_;
};

TEST_F(ShmqctlLanes, StatListsTheProducersLaneByLane)
{
	Ran r = ctl({"stat", "orders"});
	ASSERT_EQ(0, r.status) << r.err;
	EXPECT_EQ("", r.err);
	std::istringstream in(r.out);
	std::vector<std::string> lines;
	for (std::string l; std::getline(in, l);)
		lines.push_back(l);
	auto words = [](const std::string &l) {
		std::istringstream w(l);
		std::vector<std::string> v;
		for (std::string x; w >> x;)
			v.push_back(x);
		return v;
	};
	size_t at = lines.size();
	for (size_t i = 0; i < lines.size(); ++i)
		if (lines[i].rfind("lanes:", 0) == 0)
			at = i;
	ASSERT_LT(at, lines.size()) << r.out;
	EXPECT_EQ((std::vector<std::string>{"lanes:", "3", "in", "use", "of", "4", "(max_producers)"}),
		  words(lines[at]));
	ASSERT_EQ(at + 5, lines.size()) << "a header and three rows expected after:\n" << r.out;
	EXPECT_EQ((std::vector<std::string>{"LANE", "STATE", "PID", "UID", "GID", "BYTES", "COMMAND"}),
		  words(lines[at + 1]));
	EXPECT_EQ((std::vector<std::string>{"0", "attached", pid_, "0(root)", "0(root)", "64", comm_}),
		  words(lines[at + 2]));
	EXPECT_EQ((std::vector<std::string>{"2", "draining", "0", "unmapped", "unmapped", "128", "-"}),
		  words(lines[at + 3]));
	EXPECT_EQ((std::vector<std::string>{"3", "attached", "0", "3000000000", "54321", "0", "-"}),
		  words(lines[at + 4]))
		<< "a uid above 2^31 (printed negative by the kernel) is the uid it is";
	// indented, columns aligned: every row's STATE starts where the header's does
	const size_t col = lines[at + 1].find("STATE");
	EXPECT_EQ(0u, lines[at + 1].find("  LANE"));
	for (size_t i = at + 2; i < lines.size(); ++i)
		EXPECT_NE(' ', lines[i][col]) << lines[i];
	EXPECT_NE(std::string::npos, r.out.find("max_producers: ")) << r.out;
	// The raw file is not also printed as an unknown attribute.
	EXPECT_EQ(std::string::npos, r.out.find("0 attached 3")) << r.out;
	EXPECT_EQ(std::string::npos, r.out.find("free")) << "a free lane is not a producer:\n" << r.out;
	// A 0.6 module's file (no free lanes, no padding) gives the same.
	put(root_ + "/sys/class/shmq/orders/lanes", old_lanes_file());
	Ran old = ctl({"stat", "orders"});
	ASSERT_EQ(0, old.status) << old.err;
	EXPECT_EQ(r.out, old.out);

	// No lane in use: the count, no table.
	put(root_ + "/sys/class/shmq/orders/lanes", "");
	r = ctl({"stat", "orders"});
	ASSERT_EQ(0, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.out.find("none in use of 4 (max_producers)\n")) << r.out;
	EXPECT_EQ(std::string::npos, r.out.find("LANE")) << r.out;
	// An older module without the file: no lanes line at all.
	unlink((root_ + "/sys/class/shmq/orders/lanes").c_str());
	r = ctl({"stat", "orders"});
	ASSERT_EQ(0, r.status) << r.err;
	EXPECT_EQ(std::string::npos, r.out.find("lanes:")) << r.out;
}

TEST_F(ShmqctlLanes, StatAndListJsonHaveTheLanesAsAnArray)
{
	Ran r = ctl({"stat", "--json", "orders"});
	ASSERT_EQ(0, r.status) << r.err;
	std::string why;
	const std::string want =
		".max_producers == 4 and .lanes == ["
		"{\"lane\": 0, \"state\": \"attached\", \"generation\": 3, \"pid\": " + pid_ +
		", \"uid\": 0, \"gid\": 0, \"bytes_queued\": 64},"
		"{\"lane\": 2, \"state\": \"draining\", \"generation\": 1, \"pid\": 0, \"uid\": 4294967295, "
		"\"gid\": 4294967295, \"bytes_queued\": 128},"
		"{\"lane\": 3, \"state\": \"attached\", \"generation\": 7, \"pid\": 0, \"uid\": 3000000000, "
		"\"gid\": 54321, \"bytes_queued\": 0}]";
	EXPECT_TRUE(jq(r.out, want, &why)) << want << "\n" << why << r.out;
	Ran l = ctl({"list", "--json"});
	ASSERT_EQ(0, l.status) << l.err;
	EXPECT_TRUE(jq(l.out, ".queues[] | select(.name == \"orders\") | " + want, &why)) << why << l.out;
	EXPECT_TRUE(jq(l.out, ".queues[] | select(.name == \"-rf\") | has(\"lanes\") | not", &why)) << why;
	// A line of a format this shmqctl does not know stays, as a string;
	// more words than seven are a newer module's and are ignored.
	put(root_ + "/sys/class/shmq/orders/lanes", "0 attached 3 1 0 0 64 extra\nsomething else\n");
	r = ctl({"stat", "--json", "orders"});
	ASSERT_EQ(0, r.status) << r.err;
	EXPECT_TRUE(jq(r.out, ".lanes[0].bytes_queued == 64 and .lanes[1] == \"something else\"", &why))
		<< why << r.out;
	put(root_ + "/sys/class/shmq/orders/lanes", "");
	r = ctl({"stat", "--json", "orders"});
	ASSERT_EQ(0, r.status) << r.err;
	EXPECT_TRUE(jq(r.out, ".lanes == []", &why)) << why << r.out;
}
