// SPDX-License-Identifier: MIT
// ShmqctlLanes*: /bin/shmqctl on lane queues with the real module (issue 10):
// create --producers, send as several users at once, recv --sender printing
// each message's kernel-proven sender and END lines, a corrupt lane reported
// and dropped, stat listing the producers lane by lane, and send's queue
// semantics (it outlives a killed consumer; --fail-without-consumer gives
// EPIPE). docs/operations.md describes the commands.
#include "shmq_test.hpp"

#include <shmq/shmq.hpp>

#include <grp.h>

#include <fstream>
#include <map>
#include <sstream>

using namespace shmqt;

namespace {

const char *const kCtl = "/bin/shmqctl";

#define REQUIRE_SHMQCTL()                                                               \
	do {                                                                            \
		SHMQT_REQUIRE_ROOT();                                                   \
		if (access(kCtl, X_OK) != 0)                                            \
			GTEST_SKIP() << kCtl << " is not in this guest (GUEST_TOOLS)"; \
	} while (0)

int become(uid_t uid)
{
	if (uid && (setgroups(0, nullptr) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)))
		return -1;
	return 0;
}

struct Ran {
	int status = -1; // exit status; -1: did not exit normally (in time)
	std::string out, err;
};

// shmqctl running as @uid, stdin from @in (-1: /dev/null), stdout and stderr
// into files (readable while it runs).
class Ctl {
public:
	static Ctl start(const std::vector<std::string> &args, uid_t uid = 0, int in = -1)
	{
		static unsigned seq;
		Ctl c;
		const std::string base = strprintf("/tmp/ctl-lanes-%d-%u", int(getpid()), seq++);
		c.out_ = base + ".out";
		c.err_ = base + ".err";
		const std::string out = c.out_, err = c.err_;
		c.child_ = Child::spawn([&] {
			const int i = in >= 0 ? in : ::open("/dev/null", O_RDONLY);
			const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
			const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
				return 126;
			if (become(uid))
				return 125;
			std::vector<char *> a{const_cast<char *>(kCtl)};
			for (auto &s : args)
				a.push_back(const_cast<char *>(s.c_str()));
			a.push_back(nullptr);
			execv(kCtl, a.data());
			return 127;
		});
		return c;
	}
	Ctl() = default;
	Ctl(Ctl &&) = default;
	Ctl &operator=(Ctl &&) = default;
	~Ctl()
	{
		child_.kill_and_reap();
		if (!out_.empty()) {
			unlink(out_.c_str());
			unlink(err_.c_str());
		}
	}
	pid_t pid() const { return child_.pid(); }
	bool wait(unsigned ms = 60000) { return child_.wait_exit(ms); }
	void kill() { child_.kill_and_reap(SIGKILL); }
	Child &child() { return child_; }
	std::string out() const
	{
		std::string s;
		read_file(out_, &s);
		return s;
	}
	std::string err() const
	{
		std::string s;
		read_file(err_, &s);
		return s;
	}
	// Waits for the exit (killing it after @ms) and collects its output.
	Ran finish(unsigned ms = 60000)
	{
		Ran r;
		if (child_.wait_exit(ms) && WIFEXITED(child_.status()))
			r.status = WEXITSTATUS(child_.status());
		child_.kill_and_reap();
		r.out = out();
		r.err = err();
		return r;
	}

private:
	Child child_;
	std::string out_, err_;
};

Ran ctl(const std::vector<std::string> &args, uid_t uid = 0)
{
	return Ctl::start(args, uid).finish();
}

// A pipe for a child's stdin: both ends close-on-exec, so that only the
// child it is dup2()ed into holds the read end and closing ours gives EOF.
class InPipe {
public:
	InPipe()
	{
		int p[2];
		if (::pipe2(p, O_CLOEXEC) != 0)
			abort();
		r_.reset(p[0]);
		w_.reset(p[1]);
	}
	int rfd() const { return r_.get(); }
	void close_read() { r_.reset(); }
	bool write(const std::string &s)
	{
		size_t done = 0;
		while (done < s.size()) {
			const ssize_t n = ::write(w_.get(), s.data() + done, s.size() - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return false;
			done += size_t(n);
		}
		return true;
	}
	void close_write() { w_.reset(); }

private:
	Fd r_, w_;
};

// A queue made by shmqctl create, destroyed at the end of the test.
class CtlQueue {
public:
	CtlQueue() = default;
	CtlQueue(const CtlQueue &) = delete;
	CtlQueue &operator=(const CtlQueue &) = delete;
	~CtlQueue()
	{
		if (!name_.empty())
			destroy_queue_now(name_);
	}
	// shmqctl create NAME --size SIZE [--producers N] (N 0: without), then
	// mode 0666 for the tests that send as other users.
	void create(const std::string &size, uint32_t producers, const char *tag = "ctl")
	{
		const std::string name = unique_name(tag);
		std::vector<std::string> args = {"create", name, "--size", size};
		if (producers)
			args.insert(args.end(), {"--producers", std::to_string(producers)});
		Ran r = ctl(args);
		ASSERT_EQ(0, r.status) << r.err;
		ASSERT_EQ("", r.err);
		name_ = name;
		ASSERT_TRUE(wait_node_settled(dev_path(name_))) << dev_path(name_);
		ASSERT_EQ(0, ::chmod(dev_path(name_).c_str(), 0666)) << strerror(errno);
	}
	const std::string &name() const { return name_; }

private:
	std::string name_;
};

uint64_t attr(const std::string &q, const char *a)
{
	std::string s;
	if (!read_file(sysfs_dir(q) + "/" + a, &s))
		return UINT64_MAX;
	return strtoull(trim(s).c_str(), nullptr, 10);
}

// The lanes in use from /sys/class/shmq/NAME/lanes, unpadded.
std::string lanes_file(const std::string &q)
{
	std::string s;
	read_file(sysfs_dir(q) + "/lanes", &s);
	return lanes_in_use(s);
}

std::vector<std::string> lines_of(const std::string &text)
{
	std::istringstream in(text);
	std::vector<std::string> v;
	for (std::string l; std::getline(in, l);)
		v.push_back(l);
	return v;
}

std::vector<std::string> words(const std::string &line)
{
	std::istringstream in(line);
	std::vector<std::string> v;
	for (std::string w; in >> w;)
		v.push_back(w);
	return v;
}

// jq -e @expr over @json: true when it holds; *why gets what jq said.
bool jq_holds(const std::string &json, const std::string &expr, std::string *why)
{
	const std::string f = strprintf("/tmp/ctl-lanes-%d.json", int(getpid()));
	std::ofstream(f) << json;
	Child c = Child::spawn([&] {
		const int n = ::open("/dev/null", O_WRONLY);
		if (n >= 0)
			dup2(n, 1);
		execl("/bin/jq", "jq", "-e", expr.c_str(), f.c_str(), (char *)nullptr);
		return 127;
	});
	const bool ok = c.wait_exit(30000) && c.exited_with(0);
	*why = "jq -e '" + expr + "': " + c.describe();
	unlink(f.c_str());
	return ok;
}

} // namespace

// create --producers N makes a lane queue of N lanes (the library sees
// lanes, N producers fit, the N+1st is refused); without it, the queue of
// one producer as before. Bad counts are refused before anything is made.
TEST(ShmqctlLanes, CreateProducersMakesALaneQueueOfNLanes)
{
	REQUIRE_SHMQCTL();
	CtlQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create("16K", 4));
	EXPECT_EQ(4u, attr(q.name(), "max_producers"));
	EXPECT_EQ(16384u, attr(q.name(), "capacity")) << "--size is the size of each lane";
	{
		auto c = shmq::Consumer::open(q.name());
		ASSERT_TRUE(c) << c.error().message();
		EXPECT_TRUE(c->info().lanes);
		EXPECT_EQ(4u, c->info().max_producers);
		std::vector<shmq::Producer> ps;
		for (uint32_t i = 0; i < 4; i++) {
			auto p = shmq::Producer::open(q.name());
			ASSERT_TRUE(p) << "producer " << i << ": " << p.error().message();
			EXPECT_EQ(i, p->info().lane);
			ps.push_back(std::move(*p));
		}
		// A fifth: shmqctl send says that every lane is taken.
		Ran r = ctl({"send", q.name(), "x"});
		EXPECT_EQ(1, r.status) << r.err;
		EXPECT_EQ("shmqctl: send: " + q.name() + ": every lane of the queue is taken (max_producers 4): "
			  "each is attached to a producer or still holds messages of one that has gone, until "
			  "the consumer receives them (see 'shmqctl stat " + q.name() + "')\n",
			  r.err);
	}
	CtlQueue one;
	ASSERT_NO_FATAL_FAILURE(one.create("4K", 0));
	{
		auto c = shmq::Consumer::open(one.name());
		ASSERT_TRUE(c) << c.error().message();
		EXPECT_FALSE(c->info().lanes) << "without --producers: a queue of one producer";
		EXPECT_EQ(1u, c->info().max_producers);
	}
	CtlQueue single;
	ASSERT_NO_FATAL_FAILURE(single.create("4K", 1));
	{
		auto c = shmq::Consumer::open(single.name());
		ASSERT_TRUE(c) << c.error().message();
		EXPECT_TRUE(c->info().lanes) << "--producers 1: a lane queue of one lane";
	}
	// Refused: nothing is created.
	const std::string none = unique_name("ctl-none");
	for (const char *bad : {"0", "1025", "many"}) {
		Ran r = ctl({"create", none, "--size", "4K", "--producers", bad});
		EXPECT_EQ(2, r.status) << bad << ": " << r.err;
		EXPECT_NE(std::string::npos, r.err.find("--producers")) << r.err;
		EXPECT_FALSE(path_exists(sysfs_dir(none))) << bad;
	}
	// The module's parameter is the ceiling, and shmqctl names it.
	ParamOverride lim("max_producers", "8");
	ASSERT_EQ(0, lim.error()) << errname(lim.error());
	Ran r = ctl({"create", none, "--size", "4K", "--producers", "9"});
	EXPECT_EQ(1, r.status) << r.err;
	EXPECT_EQ("shmqctl: create: " + none + ": --producers 9 is above the module's max_producers "
		  "parameter, 8 (/sys/module/shmq/parameters/max_producers): ask for fewer, or raise the "
		  "parameter as root\n",
		  r.err);
	EXPECT_FALSE(path_exists(sysfs_dir(none)));
	r = ctl({"create", none, "--size", "4K", "--producers", "8"});
	EXPECT_EQ(0, r.status) << r.err;
	EXPECT_EQ(8u, attr(none, "max_producers"));
	EXPECT_EQ(0, destroy_queue_now(none));
}

// Three users send with shmqctl send at once, each into its own lane. While
// they are attached, stat lists them lane by lane (pid, uid, gid, bytes
// queued); one that has gone shows as draining. recv --sender then prints
// every message as "UID PID<TAB>TEXT" with the sender the kernel recorded,
// in each sender's order, and "END UID PID" after each sender's last
// message; it ends (EPIPE) when the last producer has gone.
TEST(ShmqctlLanes, UsersSendAtOnceAndRecvSenderNamesEachAndItsEnd)
{
	REQUIRE_SHMQCTL();
	CtlQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create("4K", 4));
	const uid_t uids[3] = {2001, 3102, 3103}; // 2001: "member" in the guest's /etc/passwd
	const size_t count[3] = {2, 4, 6};
	InPipe in[3];
	Ctl senders[3];
	pid_t pid[3]; // (Ctl::pid() is -1 once reaped)
	std::vector<std::string> msgs[3];
	for (int i = 0; i < 3; i++) {
		senders[i] = Ctl::start({"send", q.name()}, uids[i], in[i].rfd());
		pid[i] = senders[i].pid();
		in[i].close_read();
		// One at a time, so that sender i gets lane i (the lowest free).
		ASSERT_TRUE(eventually(10000, [&] { return attr(q.name(), "producers") == uint64_t(i + 1); }))
			<< "sender " << i << " did not attach: " << senders[i].err();
		std::string all;
		for (size_t k = 0; k < count[i]; k++) {
			msgs[i].push_back(strprintf("from-%u-%zu", unsigned(uids[i]), k)); // 11 bytes: 24-byte records
			all += msgs[i].back() + "\n";
		}
		ASSERT_TRUE(in[i].write(all));
	}
	// Every message is in its lane (nobody receives yet).
	const std::string want_lanes = strprintf(
		"0 attached 1 %d 2001 2001 48\n1 attached 1 %d 3102 3102 96\n2 attached 1 %d 3103 3103 144\n",
		int(pid[0]), int(pid[1]), int(pid[2]));
	ASSERT_TRUE(eventually(10000, [&] {
		// generation of each lane: 1 (a fresh queue)
		return lanes_file(q.name()) == want_lanes;
	})) << lanes_file(q.name()) << "expected:\n" << want_lanes;

	Ran r = ctl({"stat", q.name()});
	ASSERT_EQ(0, r.status) << r.err;
	EXPECT_EQ("", r.err);
	const auto out = lines_of(r.out);
	const auto at = std::find_if(out.begin(), out.end(),
				     [](const std::string &l) { return l.rfind("lanes:", 0) == 0; });
	ASSERT_NE(out.end(), at) << r.out;
	EXPECT_EQ((std::vector<std::string>{"lanes:", "3", "in", "use", "of", "4", "(max_producers)"}), words(*at));
	ASSERT_EQ(4, out.end() - at - 1) << r.out;
	EXPECT_EQ((std::vector<std::string>{"LANE", "STATE", "PID", "UID", "GID", "BYTES", "COMMAND"}),
		  words(at[1]));
	EXPECT_EQ((std::vector<std::string>{"0", "attached", std::to_string(pid[0]), "2001(member)",
					    "2001(member)", "48", "shmqctl"}),
		  words(at[2]));
	EXPECT_EQ((std::vector<std::string>{"1", "attached", std::to_string(pid[1]), "3102", "3102",
					    "96", "shmqctl"}),
		  words(at[3]));
	EXPECT_EQ((std::vector<std::string>{"2", "attached", std::to_string(pid[2]), "3103", "3103",
					    "144", "shmqctl"}),
		  words(at[4]));
	r = ctl({"stat", "--json", q.name()});
	ASSERT_EQ(0, r.status) << r.err;
	std::string why;
	const std::string jq_want = strprintf(
		".producers == 3 and .max_producers == 4 and [.lanes[] | [.lane, .state, .generation, .pid, "
		".uid, .gid, .bytes_queued]] == [[0, \"attached\", 1, %d, 2001, 2001, 48], "
		"[1, \"attached\", 1, %d, 3102, 3102, 96], [2, \"attached\", 1, %d, 3103, 3103, 144]]",
		int(pid[0]), int(pid[1]), int(pid[2]));
	EXPECT_TRUE(jq_holds(r.out, jq_want, &why)) << why << "\n" << r.out;

	// Sender 0 leaves before any consumer came: its lane drains later,
	// and its pid is no longer shown (the process is gone).
	in[0].close_write();
	ASSERT_TRUE(senders[0].wait(30000));
	EXPECT_TRUE(senders[0].child().exited_with(0)) << senders[0].child().describe() << senders[0].err();
	r = ctl({"stat", q.name()});
	ASSERT_EQ(0, r.status) << r.err;
	{
		const auto o = lines_of(r.out);
		const auto l = std::find_if(o.begin(), o.end(), [](const std::string &s) {
			return s.rfind("  0 ", 0) == 0;
		});
		ASSERT_NE(o.end(), l) << r.out;
		EXPECT_EQ((std::vector<std::string>{"0", "draining", "0", "2001(member)", "2001(member)", "48", "-"}),
			  words(*l));
	}

	// The consumer. Its first look at lane 0 is after sender 0 exited: the
	// kernel reports pid 0 for it ("not visible, or exited before the
	// consumer saw it"); the uid stays.
	Ctl recv = Ctl::start({"recv", q.name(), "--sender", "--count", "0", "--timeout", "30000"});
	ASSERT_TRUE(eventually(10000, [&] { return attr(q.name(), "consumers") == 1; })) << recv.err();
	for (int i = 1; i < 3; i++)
		in[i].close_write();
	const uint64_t t0 = now_ns();
	r = recv.finish(60000);
	EXPECT_LT(ns_to_ms(now_ns() - t0), 20000.0) << "recv did not end when the producers had gone";
	for (int i = 1; i < 3; i++) {
		ASSERT_TRUE(senders[i].wait(30000));
		EXPECT_TRUE(senders[i].child().exited_with(0)) << senders[i].err();
	}
	ASSERT_EQ(0, r.status) << r.err << r.out;
	EXPECT_EQ("", r.err);
	const pid_t pids[3] = {0, pid[1], pid[2]}; // sender 0 had exited
	std::map<std::string, int> who; // "UID PID" -> sender
	for (int i = 0; i < 3; i++)
		who[strprintf("%u %d", unsigned(uids[i]), int(pids[i]))] = i;
	size_t next[3] = {0, 0, 0};
	int ends[3] = {0, 0, 0};
	const auto got = lines_of(r.out);
	EXPECT_EQ(12u + 3u, got.size()) << r.out;
	for (const auto &l : got) {
		if (l.rfind("END ", 0) == 0) {
			const auto it = who.find(l.substr(4));
			ASSERT_NE(who.end(), it) << "END of an unknown sender: '" << l << "'\n" << r.out;
			const int i = it->second;
			EXPECT_EQ(count[i], next[i]) << "END of sender " << i << " before its last message:\n" << r.out;
			ends[i]++;
			continue;
		}
		const size_t tab = l.find('\t');
		ASSERT_NE(std::string::npos, tab) << "not 'UID PID<TAB>TEXT': '" << l << "'";
		const auto it = who.find(l.substr(0, tab));
		ASSERT_NE(who.end(), it) << "a message with a sender that did not send it: '" << l << "'\n" << r.out;
		const int i = it->second;
		ASSERT_LT(next[i], count[i]) << l;
		EXPECT_EQ(msgs[i][next[i]], l.substr(tab + 1)) << "out of order or from the wrong sender:\n" << r.out;
		EXPECT_EQ(0, ends[i]) << "a message after its sender's END:\n" << r.out;
		next[i]++;
	}
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(count[i], next[i]) << "sender " << i;
		EXPECT_EQ(1, ends[i]) << "END lines of sender " << i << ":\n" << r.out;
	}
	// Drained and gone: no lane in use.
	r = ctl({"stat", q.name()});
	ASSERT_EQ(0, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.out.find("none in use of 4 (max_producers)")) << r.out;
}

// A producer that writes garbage into its lane: recv warns on stderr with
// the lane and its sender, drops it (the kernel detaches it: its producer
// gets ECONNRESET) and goes on with the other lanes.
TEST(ShmqctlLanes, RecvReportsACorruptLaneDropsItAndGoesOn)
{
	REQUIRE_SHMQCTL();
	CtlQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create("4K", 3));
	auto good = shmq::Producer::open(q.name());
	auto evil = shmq::Producer::open(q.name());
	ASSERT_TRUE(good && evil);
	const uint32_t evil_lane = evil->info().lane;
	ASSERT_TRUE(evil->send(std::as_bytes(std::span("soon garbage", 12))));
	{
		// rewrite the header it published: the lane's pages are its own
		auto res = evil->try_reserve(8);
		ASSERT_TRUE(res);
		auto *hdr = reinterpret_cast<uint64_t *>(res->data().data() - 8 - 24);
		*hdr = 0xdeadbeefdeadbeefull;
		evil->abort(std::move(*res));
	}
	std::string want;
	for (int i = 0; i < 5; i++) {
		const std::string m = "g" + std::to_string(i);
		ASSERT_TRUE(good->send(std::as_bytes(std::span(m.data(), m.size()))));
		want += strprintf("0 %d\t", int(getpid())) + m + "\n";
	}
	Ran r = ctl({"recv", q.name(), "--sender", "--count", "5", "--timeout", "10000"});
	EXPECT_EQ(0, r.status) << r.err;
	EXPECT_EQ(want, r.out);
	EXPECT_EQ(strprintf("shmqctl: recv: %s: warning: lane %u (uid 0, pid %d) is corrupt: its producer wrote "
			    "invalid records; dropped it, receiving from the other lanes\n",
			    q.name().c_str(), evil_lane, int(getpid())),
		  r.err);
	// Dropped by shmqctl (the library drops a corrupt lane itself only when
	// nothing else is readable, which never happened here): the kernel
	// shows it dropped while its producer holds it, and cuts the producer off.
	EXPECT_NE(std::string::npos, lanes_file(q.name()).find(strprintf("%u dropped ", evil_lane)))
		<< lanes_file(q.name());
	int e = 0;
	for (int i = 0; i < 4096 && !e; i++) {
		auto s = evil->send(std::as_bytes(std::span("after", 5)),
				    shmq::Timeout::after(std::chrono::milliseconds(100)));
		if (!s)
			e = s.error().code();
	}
	EXPECT_EQ(ECONNRESET, e);
	// The good lane goes on.
	ASSERT_TRUE(good->send(std::as_bytes(std::span("g5", 2))));
	r = ctl({"recv", q.name(), "--timeout", "10000"});
	EXPECT_EQ(0, r.status) << r.err;
	EXPECT_EQ("g5\n", r.out);
	EXPECT_EQ("", r.err);
}

// A queue without lanes records no sender: --sender is refused (status 1)
// before anything is received.
TEST(ShmqctlLanes, RecvSenderRefusesAQueueWithoutLanes)
{
	REQUIRE_SHMQCTL();
	CtlQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create("4K", 0));
	{
		auto p = shmq::Producer::open(q.name());
		ASSERT_TRUE(p) << p.error().message();
		ASSERT_TRUE(p->send(std::as_bytes(std::span("kept", 4))));
	}
	Ran r = ctl({"recv", q.name(), "--sender", "--timeout", "1000"});
	EXPECT_EQ(1, r.status) << r.err;
	EXPECT_EQ("", r.out);
	EXPECT_EQ("shmqctl: recv: " + q.name() + ": --sender needs a lane queue (made by 'shmqctl create NAME "
		  "--size BYTES --producers N'): a queue of one producer does not record who sent each message\n",
		  r.err);
	r = ctl({"recv", q.name(), "--timeout", "1000"});
	EXPECT_EQ(0, r.status) << r.err;
	EXPECT_EQ("kept\n", r.out) << "the refused recv took the message";
}

// Queue semantics (issue 10): shmqctl send whose consumer is SIGKILLed keeps
// going, waits while the ring is full, and finishes when a new consumer
// drains it; nothing is lost (a message the killed consumer printed but had
// not released yet is delivered again). --fail-without-consumer: EPIPE,
// status 1, once the ring is full. On a lane queue and on a queue of one
// producer.
TEST(ShmqctlLanes, SendKeepsGoingAfterItsConsumerIsKilled)
{
	REQUIRE_SHMQCTL();
	constexpr int kFirst = 100, kTotal = 1000; // 24-byte records: 170 fill 4096 bytes
	for (const uint32_t producers : {2u, 0u}) {
		for (const bool fail : {false, true}) {
			SCOPED_TRACE(strprintf("%s, %s", producers ? "lane queue" : "queue of one producer",
					       fail ? "--fail-without-consumer" : "default"));
			CtlQueue q;
			ASSERT_NO_FATAL_FAILURE(q.create("4K", producers));
			Ctl first = Ctl::start({"recv", q.name(), "--count", "0"});
			ASSERT_TRUE(eventually(10000, [&] { return attr(q.name(), "consumers") == 1; }));
			InPipe in;
			std::vector<std::string> args = {"send", q.name()};
			if (fail)
				args.push_back("--fail-without-consumer");
			Ctl sender = Ctl::start(args, 0, in.rfd());
			in.close_read();
			auto line = [](int i) { return strprintf("seq-%05d", i); }; // 9 bytes
			std::string part;
			for (int i = 0; i < kFirst; i++)
				part += line(i) + "\n";
			ASSERT_TRUE(in.write(part));
			ASSERT_TRUE(eventually(20000, [&] { return lines_of(first.out()).size() == size_t(kFirst); }))
				<< first.out() << first.err();
			first.kill();
			ASSERT_TRUE(eventually(10000, [&] { return attr(q.name(), "consumers") == 0; }));
			part.clear();
			for (int i = kFirst; i < kTotal; i++)
				part += line(i) + "\n";
			ASSERT_TRUE(in.write(part)); // 9000 bytes: within the pipe's buffer
			in.close_write();
			// The ring fills up: 4096 bytes hold 170 records.
			EXPECT_TRUE(eventually(20000, [&] { return attr(q.name(), "bytes_used") >= 4096 - 24; }))
				<< attr(q.name(), "bytes_used");
			if (fail) {
				Ran s = sender.finish(20000);
				EXPECT_EQ(1, s.status) << s.err;
				EXPECT_EQ("shmqctl: send: " + q.name() + ": the ring is full and the consumer has gone "
					  "(--fail-without-consumer; without it send waits for a consumer to drain "
					  "the queue)\n",
					  s.err);
				continue;
			}
			// Waiting, not failing.
			EXPECT_FALSE(sender.wait(500)) << "send ended without a consumer: " << sender.err();
			Ran second = ctl({"recv", q.name(), "--count", "0", "--timeout", "5000"});
			Ran s = sender.finish(30000);
			EXPECT_EQ(0, s.status) << s.err;
			EXPECT_EQ("", s.err);
			EXPECT_EQ(0, second.status) << second.err;
			// first: 0..99; second: 100..999, or 99..999 when the kill came
			// between printing 99 and releasing it.
			const auto a = lines_of(first.out()), b = lines_of(second.out);
			ASSERT_EQ(size_t(kFirst), a.size());
			for (int i = 0; i < kFirst; i++)
				EXPECT_EQ(line(i), a[size_t(i)]);
			ASSERT_FALSE(b.empty());
			const int from = b.front() == line(kFirst - 1) ? kFirst - 1 : kFirst;
			ASSERT_EQ(size_t(kTotal - from), b.size()) << second.out.substr(0, 200);
			for (int i = from; i < kTotal; i++)
				ASSERT_EQ(line(i), b[size_t(i - from)]) << "message " << i;
		}
	}
}
