// SPDX-License-Identifier: MIT
// Sysfs*: every attribute of /sys/class/shmq/NAME and /sys/module/shmq/usage
// checked against activity the test caused itself (exact values), the kernel
// log messages about limits and corrupt counters, and shmqctl stat, list and
// top (/bin/shmqctl in the guest) printing them. docs/abi.md defines each
// attribute; docs/operations.md the shmqctl commands.
#include "shmq_test.hpp"

#include <dirent.h>
#include <fstream>
#include <sstream>
#include <thread>
#include <sys/klog.h>

using namespace shmqt;

namespace {

constexpr uint64_t kCap = 64 * 1024;
constexpr unsigned kBlockMs = 150;
const unsigned kWakeMs = wake_bound_ms();
const char *const kShmqctl = "/bin/shmqctl";

const char *const kQueueAttrs[] = {
	"capacity",	   "bytes_used",   "producers",	  "consumers",	    "producer_pid",
	"consumer_pid",	   "max_message",  "bytes_published", "bytes_passed", "waits",
	"wakes",	   "full_events",  "empty_events",	  "created_by_uid", "created_at",
};
const char *const kCounters[] = {"waits", "wakes", "full_events", "empty_events"};

// The value of a numeric sysfs file; fails the test if absent or not a number.
uint64_t num_file(const std::string &path)
{
	std::string s;
	int err = 0;
	if (!read_file(path, &s, &err)) {
		ADD_FAILURE() << "cannot read " << path << ": " << errname(err);
		return UINT64_MAX;
	}
	s = trim(s);
	char *end = nullptr;
	errno = 0;
	const unsigned long long v = strtoull(s.c_str(), &end, 10);
	if (s.empty() || errno || *end) {
		ADD_FAILURE() << path << " holds '" << s << "', not a decimal number";
		return UINT64_MAX;
	}
	return v;
}
uint64_t attr(const std::string &q, const char *a) { return num_file(sysfs_dir(q) + "/" + a); }
uint64_t usage(const char *a) { return num_file(std::string("/sys/module/shmq/usage/") + a); }

// Ring bytes a queue of @cap accounts for: the data plus three control pages.
uint64_t queue_memory(uint64_t cap) { return cap + 3 * page_size(); }

std::string my_comm()
{
	std::string c;
	read_file("/proc/self/comm", &c);
	return trim(c);
}

// The kernel log (needs root: the suite runs as root).
std::string kernel_log()
{
	const int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, nullptr, 0);
	if (size <= 0)
		return "";
	std::string buf(size_t(size), '\0');
	const int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf.data(), size);
	buf.resize(n > 0 ? size_t(n) : 0);
	return buf;
}

size_t count_of(const std::string &hay, const std::string &needle)
{
	size_t n = 0;
	for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1))
		++n;
	return n;
}

// The first line of @text that contains @key, "" if none.
std::string line_with(const std::string &text, const std::string &key)
{
	std::istringstream in(text);
	std::string l;
	while (std::getline(in, l))
		if (l.find(key) != std::string::npos)
			return l;
	return "";
}

// Whitespace-separated words of @line.
std::vector<std::string> words(const std::string &line);

// The first line of @text that has @word as one of its words, "" if none.
std::string row_named(const std::string &text, const std::string &word)
{
	std::istringstream in(text);
	std::string l;
	while (std::getline(in, l)) {
		const auto w = words(l);
		if (std::find(w.begin(), w.end(), word) != w.end())
			return l;
	}
	return "";
}

std::vector<std::string> words(const std::string &line)
{
	std::istringstream in(line);
	std::vector<std::string> w;
	std::string x;
	while (in >> x)
		w.push_back(x);
	return w;
}

struct CmdResult {
	int status = -1; // exit status, or -1 if it did not exit normally in time
	std::string out, err;
};

// Runs @argv with stdout and stderr captured (through files, so a chatty
// command cannot block on a full pipe).
CmdResult run(const std::vector<std::string> &argv, unsigned timeout_ms = 60000)
{
	CmdResult r;
	static unsigned seq;
	const std::string base = strprintf("/tmp/sysfs-test-%d-%u", int(getpid()), seq++);
	const std::string outp = base + ".out", errp = base + ".err";
	Child c = Child::spawn([&] {
		int o = ::open(outp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = ::open(errp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			return 126;
		std::vector<char *> a;
		for (auto &s : argv)
			a.push_back(const_cast<char *>(s.c_str()));
		a.push_back(nullptr);
		execv(a[0], a.data());
		return 127;
	});
	if (c.wait_exit(timeout_ms) && WIFEXITED(c.status()))
		r.status = WEXITSTATUS(c.status());
	read_file(outp, &r.out);
	read_file(errp, &r.err);
	unlink(outp.c_str());
	unlink(errp.c_str());
	return r;
}

bool have_shmqctl() { return access(kShmqctl, X_OK) == 0; }

// jq -e @expr over @json (jq is in the guest: tests/tests.mk SHMQ_GUEST_EXTRA);
// true when the expression holds. *why gets jq's output.
bool jq_holds(const std::string &json, const std::string &expr, std::string *why)
{
	const std::string f = strprintf("/tmp/sysfs-test-%d.json", int(getpid()));
	std::ofstream(f) << json;
	CmdResult r = run({"/bin/jq", "-e", expr, f});
	unlink(f.c_str());
	*why = "jq " + expr + ": status " + std::to_string(r.status) + ": " + r.out + r.err;
	return r.status == 0;
}

#define REQUIRE_SHMQCTL()                                                                  \
	do {                                                                               \
		if (!have_shmqctl())                                                       \
			GTEST_SKIP() << kShmqctl << " is not in this guest (GUEST_TOOLS)"; \
	} while (0)

class Sysfs : public testing::Test {
protected:
	void SetUp() override { SHMQT_REQUIRE_ROOT(); }
	// The list and stat tests show the node's mode and group: wait for udev.
	void make(uint64_t cap = kCap)
	{
		ASSERT_NO_FATAL_FAILURE(q_.create(cap, "sysfs"));
		ASSERT_TRUE(wait_node_settled(q_.path())) << q_.path() << ": udev did not make it root:shmq 0660";
	}
	uint64_t a(const char *name) { return attr(q_.name(), name); }
	void expect_counters(uint64_t waits, uint64_t wakes, uint64_t full, uint64_t empty,
			     const char *when)
	{
		EXPECT_EQ(waits, a("waits")) << when;
		EXPECT_EQ(wakes, a("wakes")) << when;
		EXPECT_EQ(full, a("full_events")) << when;
		EXPECT_EQ(empty, a("empty_events")) << when;
	}
	TestQueue q_;
};

} // namespace

// --- presence, permissions --------------------------------------------------------

TEST_F(Sysfs, EveryAttributeIsReadOnlyEvenForRoot)
{
	make();
	std::vector<std::string> paths;
	for (const char *n : kQueueAttrs)
		paths.push_back(sysfs_dir(q_.name()) + "/" + n);
	paths.push_back("/sys/module/shmq/usage/queues");
	paths.push_back("/sys/module/shmq/usage/memory_bytes");
	for (const auto &p : paths) {
		struct stat st;
		ASSERT_EQ(0, ::stat(p.c_str(), &st)) << p << ": " << errname(errno);
		EXPECT_EQ(0444u, st.st_mode & 07777) << p;
		// Root passes the mode check (CAP_DAC_OVERRIDE); kernfs itself
		// refuses a write open of a file without a store method.
		const int fd = open_err(p, O_WRONLY);
		EXPECT_EQ(-EACCES, fd) << "open(" << p << ", O_WRONLY) as root";
		if (fd >= 0)
			::close(fd);
		EXPECT_EQ(EACCES, write_file(p, "0\n")) << p;
		EXPECT_NE(UINT64_MAX, num_file(p)) << p;
	}
}

TEST_F(Sysfs, NewQueueAttributes)
{
	const uint64_t t0 = uint64_t(time(nullptr));
	make();
	const uint64_t t1 = uint64_t(time(nullptr));
	EXPECT_EQ(kCap, a("capacity"));
	EXPECT_EQ(kCap / 4 - 8, a("max_message"));
	EXPECT_EQ(0u, a("bytes_used"));
	EXPECT_EQ(0u, a("bytes_published"));
	EXPECT_EQ(0u, a("bytes_passed"));
	EXPECT_EQ(0u, a("producers"));
	EXPECT_EQ(0u, a("consumers"));
	EXPECT_EQ(0u, a("producer_pid"));
	EXPECT_EQ(0u, a("consumer_pid"));
	EXPECT_EQ(0u, a("created_by_uid"));
	const uint64_t at = a("created_at");
	EXPECT_GE(at, t0);
	EXPECT_LE(at, t1);
	expect_counters(0, 0, 0, 0, "fresh queue");
	// max_message agrees with what the ABI tells an attached peer.
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	EXPECT_EQ(p.L.max_message, a("max_message"));
}

// --- bytes, from the shared counters ------------------------------------------------

// 56-byte messages make 64-byte records, which tile the 64K ring exactly:
// no PAD record, so every byte count is N * 64. The library's fast path
// makes no system call here, so the event counters stay at 0.
TEST_F(Sysfs, BytesCountRecordsAndTheFastPathCountsNoEvents)
{
	make();
	auto prod = shmq::Producer::open(q_.name());
	ASSERT_TRUE(prod.has_value()) << err_str(prod.error());
	auto cons = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(cons.has_value()) << err_str(cons.error());
	constexpr size_t kSize = 56, kRec = 64;
	const unsigned n = scaled(3000u, 600u);
	std::vector<uint8_t> m(kSize, 0x33), buf(kSize);
	unsigned sent = 0, got = 0;
	while (sent < n) {
		// up to 500 ahead (32000 bytes, under the 64K capacity)
		for (unsigned i = 0; i < 500 && sent < n; ++i, ++sent) {
			auto r = prod->try_send(as_bytes(m.data(), m.size()));
			ASSERT_TRUE(r.has_value()) << "message " << sent << ": " << err_str(r.error());
		}
		EXPECT_EQ(uint64_t(sent) * kRec, a("bytes_published"));
		EXPECT_EQ(uint64_t(got) * kRec, a("bytes_passed"));
		EXPECT_EQ(uint64_t(sent - got) * kRec, a("bytes_used"));
		while (got + 100 < sent) {
			auto r = cons->try_receive(as_wbytes(buf.data(), buf.size()));
			ASSERT_TRUE(r.has_value()) << "message " << got << ": " << err_str(r.error());
			ASSERT_EQ(kSize, *r);
			++got;
		}
	}
	while (got < n) {
		auto r = cons->try_receive(as_wbytes(buf.data(), buf.size()));
		ASSERT_TRUE(r.has_value()) << err_str(r.error());
		++got;
	}
	EXPECT_EQ(uint64_t(n) * kRec, a("bytes_published"));
	EXPECT_EQ(uint64_t(n) * kRec, a("bytes_passed"));
	EXPECT_EQ(0u, a("bytes_used"));
	expect_counters(0, 0, 0, 0, "nobody ever waited");
	report_figure("sysfs_bytes_passed_checked", uint64_t(n) * kRec,
		      "bytes passed through a queue, matched exactly by bytes_passed");
}

// A PAD record at the ring end counts too: 4 records of 1008 bytes fill
// 4032 of 4096 bytes; the 5th needs a 64-byte PAD first.
TEST_F(Sysfs, BytesIncludeThePadRecordAtTheWrap)
{
	make(4096);
	auto prod = shmq::Producer::open(q_.name());
	ASSERT_TRUE(prod.has_value()) << err_str(prod.error());
	auto cons = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(cons.has_value()) << err_str(cons.error());
	std::vector<uint8_t> m(1000, 0x44), buf(1000);
	for (int i = 0; i < 5; ++i) {
		auto s = prod->try_send(as_bytes(m.data(), m.size()));
		ASSERT_TRUE(s.has_value()) << "message " << i << ": " << err_str(s.error());
		auto r = cons->try_receive(as_wbytes(buf.data(), buf.size()));
		ASSERT_TRUE(r.has_value()) << "message " << i << ": " << err_str(r.error());
	}
	EXPECT_EQ(5u * 1008 + 64, a("bytes_published"));
	EXPECT_EQ(5u * 1008 + 64, a("bytes_passed"));
	EXPECT_EQ(0u, a("bytes_used"));
}

// --- waits, wakes, full and empty events -------------------------------------------

TEST_F(Sysfs, BlockedReaderCountsOneWaitOneEmptyEventAndTheWakeThatEndsIt)
{
	make();
	RawEnd c, p;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	WaitThread w(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(20000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	expect_counters(1, 0, 0, 1, "reader asleep in SHMQ_IOC_WAIT");
	ASSERT_NE(0u, c.read_waiters());
	p.publish(56); // calls SHMQ_IOC_WAKE: the ring was empty, a reader waits
	ASSERT_TRUE(w.wait(kWakeMs)) << "reader not woken";
	EXPECT_EQ(0, w.result());
	expect_counters(1, 1, 0, 1, "after the wake");
	EXPECT_EQ(64u, a("bytes_published"));
	EXPECT_EQ(0u, a("bytes_passed"));
	EXPECT_EQ(64u, a("bytes_used"));
}

TEST_F(Sysfs, BlockedWriterCountsOneWaitOneFullEvent)
{
	make(4096);
	RawEnd c, p;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	p.publish(1000); // 1008 of 4096 used
	WaitThread w(p.fd(), SHMQ_WAIT_WRITABLE, 4096, deadline_in_ms(20000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	expect_counters(1, 0, 1, 0, "writer asleep in SHMQ_IOC_WAIT");
	c.set_head(c.tail());
	ASSERT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 0));
	ASSERT_TRUE(w.wait(kWakeMs)) << "writer not woken";
	EXPECT_EQ(0, w.result());
	expect_counters(1, 1, 1, 0, "after the wake");
	EXPECT_EQ(1008u, a("bytes_passed"));
	// A refused WAKE (non-zero argument) is not counted.
	EXPECT_EQ(EINVAL, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 1));
	EXPECT_EQ(1u, a("wakes"));
}

// Events count a first check that found the condition false; waits count
// calls that slept. A deadline in the past gives an event but no wait.
TEST_F(Sysfs, EventsAndWaitsAreCountedByTheirDefinitions)
{
	make(4096);
	RawEnd c, p;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	EXPECT_EQ(ETIMEDOUT, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, 0));
	EXPECT_EQ(ETIMEDOUT, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, 0));
	expect_counters(0, 0, 0, 2, "two non-blocking READABLE checks on an empty ring");
	EXPECT_EQ(0, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 4096, 0));
	expect_counters(0, 0, 0, 2, "WRITABLE that holds at once");
	p.publish(100);
	EXPECT_EQ(0, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, UINT64_MAX));
	EXPECT_EQ(ETIMEDOUT, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 4096, 0));
	expect_counters(0, 0, 1, 2, "READABLE that holds, WRITABLE that does not");
	// Invalid arguments are refused before any check.
	EXPECT_EQ(EINVAL, raw_wait(c.fd(), SHMQ_WAIT_WRITABLE, 8, 0));
	expect_counters(0, 0, 1, 2, "refused WAIT");
	// Wait that times out after sleeping.
	EXPECT_EQ(ETIMEDOUT, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 4096, deadline_in_ms(50)));
	expect_counters(1, 0, 2, 2, "WRITABLE that slept until its deadline");
}

// --- peers ----------------------------------------------------------------------------

TEST_F(Sysfs, PidsOfAttachedPeersAndZeroAfterDetach)
{
	make();
	Pipe attached, go;
	Child child = Child::spawn([&] {
		auto p = shmq::Producer::open(q_.name());
		if (!p)
			return 10;
		attached.send();
		return go.recv(30000) == 1 ? 0 : 11;
	});
	ASSERT_EQ(1, attached.recv(30000)) << "child did not attach";
	EXPECT_EQ(1u, a("producers"));
	EXPECT_EQ(uint64_t(child.pid()), a("producer_pid"));
	EXPECT_EQ(0u, a("consumers"));
	EXPECT_EQ(0u, a("consumer_pid"));
	{
		auto c = shmq::Consumer::open(q_.name());
		ASSERT_TRUE(c.has_value()) << err_str(c.error());
		EXPECT_EQ(1u, a("consumers"));
		EXPECT_EQ(uint64_t(getpid()), a("consumer_pid"));
	}
	EXPECT_EQ(0u, a("consumers"));
	EXPECT_EQ(0u, a("consumer_pid"));
	go.send();
	ASSERT_TRUE(child.wait_exit());
	EXPECT_TRUE(child.exited_with(0)) << child.describe();
	EXPECT_EQ(0u, a("producers"));
	EXPECT_EQ(0u, a("producer_pid"));
	// Opened from a second thread: still the process id.
	Async<int> t([&] {
		int fd = open_queue(q_.name(), O_RDONLY);
		if (fd < 0)
			return -1;
		const int pid = int(attr(q_.name(), "consumer_pid"));
		::close(fd);
		return pid;
	});
	EXPECT_EQ(int(getpid()), t.get());
}

// created_by_uid is the effective uid of the SHMQ_IOC_CREATE caller: a
// process that got a writable control fd from root and then dropped to uid
// 2001 creates queues as 2001.
TEST_F(Sysfs, CreatedByUidIsTheCreatorsEffectiveUid)
{
	const std::string name = unique_name("sysfs-uid");
	Fd ctl(control_open());
	ASSERT_TRUE(ctl.ok()) << errname(-ctl.get());
	Child child = Child::spawn([&] {
		if (setresgid(2001, 2001, 2001) != 0 || setresuid(2001, 2001, 2001) != 0)
			return 10;
		return raw_create(ctl.get(), name, 4096) == 0 ? 0 : 11;
	});
	ASSERT_TRUE(child.wait_exit());
	ASSERT_TRUE(child.exited_with(0)) << child.describe();
	EXPECT_EQ(2001u, attr(name, "created_by_uid"));
	EXPECT_EQ(0, destroy_queue_now(name));
	// The load-time queue (queues=unpriv:64K) was created by insmod as root.
	if (path_exists(sysfs_dir("unpriv"))) {
		EXPECT_EQ(0u, attr("unpriv", "created_by_uid"));
	}
}

// --- global usage -------------------------------------------------------------------

TEST_F(Sysfs, UsageMovesExactlyWithCreateAndDestroy)
{
	const uint64_t q0 = usage("queues"), m0 = usage("memory_bytes");
	size_t dirs = 0;
	if (DIR *d = opendir("/sys/class/shmq")) {
		while (struct dirent *e = readdir(d))
			dirs += e->d_name[0] != '.';
		closedir(d);
	}
	EXPECT_EQ(uint64_t(dirs), q0) << "usage/queues disagrees with /sys/class/shmq";

	TestQueue qa, qb;
	ASSERT_NO_FATAL_FAILURE(qa.create(kCap, "sysfs-ua"));
	EXPECT_EQ(q0 + 1, usage("queues"));
	EXPECT_EQ(m0 + queue_memory(kCap), usage("memory_bytes"));
	ASSERT_NO_FATAL_FAILURE(qb.create(4096, "sysfs-ub"));
	EXPECT_EQ(q0 + 2, usage("queues"));
	EXPECT_EQ(m0 + queue_memory(kCap) + queue_memory(4096), usage("memory_bytes"));

	// A destroyed queue leaves the namespace at once but keeps its memory
	// while a file is open.
	Fd c(open_queue(qb.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	ASSERT_EQ(0, qb.destroy());
	EXPECT_EQ(q0 + 1, usage("queues"));
	EXPECT_EQ(m0 + queue_memory(kCap) + queue_memory(4096), usage("memory_bytes"));
	c.reset();
	EXPECT_EQ(m0 + queue_memory(kCap), usage("memory_bytes"));
	ASSERT_EQ(0, qa.destroy());
	EXPECT_EQ(q0, usage("queues"));
	EXPECT_EQ(m0, usage("memory_bytes"));
}

// --- kernel log ----------------------------------------------------------------------

// A refused creation names the queue, the process and the limit. The log is
// rate-limited per call site (10 per 5 s): if other tests just used that up,
// wait out the interval and try once more.
TEST_F(Sysfs, LimitRefusalIsLoggedWithQueueAndProcess)
{
	const uint64_t q0 = usage("queues");
	ParamOverride lim("max_queues", std::to_string(q0));
	ASSERT_EQ(0, lim.error()) << errname(lim.error());
	const std::string name = unique_name("sysfs-lim");
	const std::string want = strprintf("queue '%s' not created for %s[%d] (uid 0): max_queues=%llu reached",
					   name.c_str(), my_comm().c_str(), int(getpid()),
					   (unsigned long long)q0);
	bool found = false;
	for (int attempt = 0; attempt < 2 && !found; ++attempt) {
		if (attempt)
			sleep_ms(5500);
		ASSERT_EQ(ENOSPC, create_queue_now(name, 4096));
		found = kernel_log().find(want) != std::string::npos;
	}
	EXPECT_TRUE(found) << "no kernel message containing: " << want;
}

// Impossible counters (tail - head > capacity) are reported once per queue,
// and bytes_used is clamped to [0, capacity] whatever the peers wrote.
TEST_F(Sysfs, CorruptCountersAreClampedAndLoggedOnce)
{
	make(4096);
	RawEnd c, p;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	p.set_tail(3 * 4096);
	EXPECT_EQ(4096u, a("bytes_used")) << "tail - head above the capacity";
	EXPECT_EQ(3u * 4096, a("bytes_published")) << "shown as written";
	const std::string key = q_.name() + ": corrupt ring counters: tail 12288 - head 0 exceeds capacity 4096";
	bool found = false;
	for (int attempt = 0; attempt < 2 && !found; ++attempt) {
		if (attempt)
			sleep_ms(5500);
		// readable (the kernel's answer to impossible counters)
		EXPECT_EQ(0, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, 0));
		found = kernel_log().find(key) != std::string::npos;
	}
	ASSERT_TRUE(found) << "no kernel message containing: " << key;
	const std::string who = strprintf("(lane 0, producer pid %d, consumer pid %d; seen by %s[%d])", int(getpid()),
					  int(getpid()), my_comm().c_str(), int(getpid()));
	EXPECT_NE(std::string::npos, line_with(kernel_log(), key).find(who)) << line_with(kernel_log(), key);
	// Once per queue: more checks and polls do not repeat it.
	for (int i = 0; i < 5; ++i) {
		EXPECT_EQ(0, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, 0));
		EXPECT_EQ(ETIMEDOUT, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 8, 0));
		poll_one(c.fd(), POLLIN, 0);
	}
	EXPECT_EQ(1u, count_of(kernel_log(), q_.name() + ": corrupt ring counters"));

	// head ahead of tail: "negative" use is shown as 0.
	p.set_tail(0);
	c.set_head(8);
	EXPECT_EQ(0u, a("bytes_used"));
	EXPECT_EQ(8u, a("bytes_passed"));
}

// --- shmqctl ------------------------------------------------------------------------

TEST_F(Sysfs, ShmqctlStatShowsEveryAttribute)
{
	REQUIRE_SHMQCTL();
	make();
	RawEnd c, p;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	for (int i = 0; i < 10; ++i)
		p.publish(56);
	c.set_head(6 * 64);
	EXPECT_EQ(ETIMEDOUT, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, kCap, 0)); // one full event
	CmdResult r = run({kShmqctl, "stat", q_.name()});
	ASSERT_EQ(0, r.status) << r.out << r.err;
	EXPECT_EQ("", r.err);
	// every attribute has its line
	for (const char *n : kQueueAttrs)
		EXPECT_NE("", line_with(r.out, std::string(n) + ":")) << "no line for " << n << " in:\n" << r.out;
	auto field = [&](const char *key) { return line_with(r.out, std::string(key) + ":"); };
	EXPECT_NE(std::string::npos, field("capacity").find("65536 bytes (64.0 KiB)")) << field("capacity");
	EXPECT_NE(std::string::npos, field("max_message").find("16376 bytes (16.0 KiB)")) << field("max_message");
	EXPECT_NE(std::string::npos, field("bytes_published").find("640 bytes")) << field("bytes_published");
	EXPECT_NE(std::string::npos, field("bytes_passed").find("384 bytes")) << field("bytes_passed");
	EXPECT_NE(std::string::npos, field("bytes_used").find("256 bytes, 0.4% of the capacity"))
		<< field("bytes_used");
	const std::string pid = std::to_string(getpid());
	EXPECT_NE(std::string::npos, field("producer_pid").find(pid + " (" + my_comm() + ")"))
		<< field("producer_pid");
	EXPECT_NE(std::string::npos, field("consumer_pid").find(pid)) << field("consumer_pid");
	EXPECT_EQ((std::vector<std::string>{"full_events:", "1"}), words(field("full_events")));
	EXPECT_EQ((std::vector<std::string>{"empty_events:", "0"}), words(field("empty_events")));
	EXPECT_EQ((std::vector<std::string>{"waits:", "0"}), words(field("waits")));
	EXPECT_EQ((std::vector<std::string>{"wakes:", "0"}), words(field("wakes")));
	EXPECT_NE(std::string::npos, field("created_by_uid").find("0 (root)")) << field("created_by_uid");
	EXPECT_NE(std::string::npos, field("created_at").find(" UTC)")) << field("created_at");
	// the device node as udev made it
	EXPECT_NE(std::string::npos,
		  field("device").find("/dev/shmq/" + q_.name() + " crw-rw---- (0660) owner root group shmq"))
		<< field("device");

	// errors
	const std::string missing = unique_name("sysfs-none");
	r = run({kShmqctl, "stat", missing});
	EXPECT_EQ(1, r.status);
	EXPECT_EQ("shmqctl: no queue named " + missing + " (see shmqctl list)\n", r.err);
	EXPECT_EQ("", r.out);
	r = run({kShmqctl, "--sysfs", "/nonexistent", "stat", q_.name()});
	EXPECT_EQ(1, r.status);
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: the shmq module is not loaded")) << r.err;
	r = run({kShmqctl, "send", missing, "x"});
	EXPECT_EQ(1, r.status);
	EXPECT_EQ("shmqctl: no queue named " + missing + " (see shmqctl list)\n", r.err);
}

TEST_F(Sysfs, ShmqctlListIsLikeLsL)
{
	REQUIRE_SHMQCTL();
	make();
	auto prod = shmq::Producer::open(q_.name());
	ASSERT_TRUE(prod.has_value()) << err_str(prod.error());
	std::vector<uint8_t> m(4088, 1); // 4096-byte records
	for (int i = 0; i < 4; ++i)
		ASSERT_TRUE(prod->try_send(as_bytes(m.data(), m.size())).has_value());
	CmdResult r = run({kShmqctl, "list"});
	ASSERT_EQ(0, r.status) << r.out << r.err;
	EXPECT_EQ("", r.err);
	const auto head = words(line_with(r.out, "MODE"));
	EXPECT_EQ((std::vector<std::string>{"MODE", "OWNER", "GROUP", "CAPACITY", "USED", "USED%", "PRODUCER",
					    "CONSUMER", "NAME"}),
		  head);
	const auto w = words(row_named(r.out, q_.name()));
	EXPECT_EQ((std::vector<std::string>{"crw-rw----", "root", "shmq", "64K", "16K", "25.0%",
					    std::to_string(getpid()), "-", q_.name()}),
		  w) << r.out;
	EXPECT_NE(std::string::npos,
		  line_with(r.out, "total:").find(strprintf("total: %llu queues of max",
							    (unsigned long long)usage("queues"))))
		<< r.out;
}

// Two screens of rates over 0.5 s each: a queue that moves bytes during the
// interval is listed first with a non-zero rate, an idle one with 0/s.
TEST_F(Sysfs, ShmqctlTopShowsRatesBusiestFirst)
{
	REQUIRE_SHMQCTL();
	make();
	TestQueue idle;
	ASSERT_NO_FATAL_FAILURE(idle.create(4096, "sysfs-idle"));
	Shared<std::atomic<int>> stop;
	Pipe ready;
	const std::string busy = q_.name();
	Child pump = Child::spawn([&] {
		auto p = shmq::Producer::open(busy);
		auto c = shmq::Consumer::open(busy);
		if (!p || !c)
			return 10;
		std::vector<uint8_t> m(56, 7), buf(56);
		ready.send();
		while (!stop->load()) {
			for (int i = 0; i < 64; ++i)
				if (!p->try_send(as_bytes(m.data(), m.size())).has_value())
					return 11;
			for (int i = 0; i < 64; ++i)
				if (!c->try_receive(as_wbytes(buf.data(), buf.size())).has_value())
					return 12;
			sleep_ms(1); // leave the CPU to shmqctl on one vCPU
		}
		return 0;
	});
	ASSERT_EQ(1, ready.recv(30000));
	const std::string pump_pid = std::to_string(pump.pid());
	CmdResult r = run({kShmqctl, "top", "-n", "2", "-d", "0.5"});
	stop->store(1);
	ASSERT_TRUE(pump.wait_exit());
	EXPECT_TRUE(pump.exited_with(0)) << pump.describe();
	ASSERT_EQ(0, r.status) << r.out << r.err;
	EXPECT_EQ("", r.err);
	EXPECT_EQ(std::string::npos, r.out.find("\033[")) << "escape codes while stdout is not a terminal";
	// two screens, separated by a blank line
	const size_t s1 = r.out.find("screen 1 of 2"), s2 = r.out.find("screen 2 of 2");
	ASSERT_NE(std::string::npos, s1) << r.out;
	ASSERT_NE(std::string::npos, s2) << r.out;
	EXPECT_EQ(2u, count_of(r.out, "shmqctl top - "));
	EXPECT_NE(std::string::npos, r.out.find("\n\nshmqctl top - ")) << r.out;
	for (const std::string &scr : {r.out.substr(s1, s2 - s1), r.out.substr(s2)}) {
		const std::string lb = row_named(scr, busy), li = row_named(scr, idle.name());
		ASSERT_NE("", lb) << scr;
		ASSERT_NE("", li) << scr;
		EXPECT_LT(scr.find(lb), scr.find(li)) << "busy queue not listed first:\n" << scr;
		const auto wb = words(lb), wi = words(li);
		ASSERT_EQ(10u, wb.size()) << lb;
		ASSERT_EQ(10u, wi.size()) << li;
		EXPECT_NE("0/s", wb[1]) << "busy queue shows no bytes passed:\n" << scr;
		EXPECT_NE("0/s", wb[2]) << scr;
		EXPECT_EQ(pump_pid, wb[8]) << lb;
		EXPECT_EQ(pump_pid, wb[9]) << lb;
		EXPECT_EQ((std::vector<std::string>{idle.name(), "0/s", "0/s", "0.0%", "0", "0", "0", "0", "-", "-"}),
			  wi) << li;
	}
}

// '--' ends shmqctl's options: words starting with '-' after it are sent as
// they are; before it an unknown option is a usage error and sends nothing
// (it used to be sent as a message).
TEST_F(Sysfs, ShmqctlSendsDashWordsAfterDoubleDashAndRefusesUnknownOptions)
{
	REQUIRE_SHMQCTL();
	make();
	CmdResult r = run({kShmqctl, "send", q_.name(), "-rf"});
	EXPECT_EQ(2, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("unknown option '-rf'")) << r.err;
	r = run({kShmqctl, "send", "--timeout", "1000", q_.name(), "ok", "--bogus"});
	EXPECT_EQ(2, r.status) << r.err;
	EXPECT_EQ(0u, a("bytes_published")) << "a refused command sent something";
	r = run({kShmqctl, "send", q_.name(), "--timeout=5000", "--", "-rf", "--help", "-", "--"});
	ASSERT_EQ(0, r.status) << r.err;
	EXPECT_EQ("", r.err);
	r = run({kShmqctl, "recv", "--count", "4", q_.name(), "--timeout", "5000"});
	ASSERT_EQ(0, r.status) << r.err;
	EXPECT_EQ("-rf\n--help\n-\n--\n", r.out);
	// options in any order around NAME, and --opt=value
	r = run({kShmqctl, "recv", "--timeout=100", q_.name()}); // empty, producer gone: EPIPE
	EXPECT_EQ(1, r.status);
	EXPECT_NE(std::string::npos, r.err.find("shmqctl: recv: " + q_.name() + ": ")) << r.err;
	r = run({kShmqctl, "recv", q_.name(), "--count", "-1"});
	EXPECT_EQ(2, r.status) << r.err;
}

// --timeout takes any count of milliseconds up to 2^64-1: a huge one is a
// wait with no deadline. It was converted to signed milliseconds, wrapped
// to a negative count and became "no wait at all" (status 1 at once).
TEST_F(Sysfs, ShmqctlHugeTimeoutWaitsInsteadOfFailingAtOnce)
{
	REQUIRE_SHMQCTL();
	make();
	auto prod = shmq::Producer::open(q_.name());
	ASSERT_TRUE(prod.has_value()) << err_str(prod.error());
	std::thread late([&] {
		std::this_thread::sleep_for(std::chrono::milliseconds(1500));
		const char m[] = "late";
		EXPECT_TRUE(prod->send(as_bytes(m, 4), shmq::Timeout::after(std::chrono::seconds(30))).has_value());
	});
	const auto t0 = std::chrono::steady_clock::now();
	CmdResult r = run({kShmqctl, "recv", q_.name(), "--timeout", "18446744073709551615"});
	const auto waited = std::chrono::steady_clock::now() - t0;
	late.join();
	EXPECT_EQ(0, r.status) << r.err;
	EXPECT_EQ("late\n", r.out);
	EXPECT_GE(waited, std::chrono::milliseconds(1000)) << "recv did not wait for the message";
	r = run({kShmqctl, "recv", q_.name(), "--timeout", "18446744073709551616"});
	EXPECT_EQ(2, r.status) << "2^64 ms is not a count shmqctl can hold: " << r.err;
	EXPECT_NE(std::string::npos, r.err.find("bad --timeout")) << r.err;
}

// stat --json and list --json: valid JSON (parsed by jq), one object per
// queue, every attribute of /sys/class/shmq/NAME with the value sysfs shows.
TEST_F(Sysfs, ShmqctlJsonHasEverySysfsAttributeOfEveryQueue)
{
	REQUIRE_SHMQCTL();
	make();
	RawEnd c, p;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	for (int i = 0; i < 10; ++i)
		p.publish(56);
	c.set_head(6 * 64);
	// every attribute, with its value now (nothing moves while shmqctl reads)
	std::string want = ".name == \"" + q_.name() + "\"";
	for (const char *n : kQueueAttrs)
		want += strprintf(" and .%s == %llu", n, (unsigned long long)a(n));
	want += " and .node.path == \"/dev/shmq/" + q_.name() +
		"\" and .node.mode == \"0660\" and .node.group == \"shmq\" and .node.owner == \"root\"";
	CmdResult r = run({kShmqctl, "stat", "--json", q_.name()});
	ASSERT_EQ(0, r.status) << r.out << r.err;
	EXPECT_EQ("", r.err);
	std::string why;
	EXPECT_TRUE(jq_holds(r.out, want, &why)) << why << "\n" << r.out;
	// no attribute of the directory is left out (uevent is not one)
	std::string files = "[";
	if (DIR *d = opendir(sysfs_dir(q_.name()).c_str())) {
		while (struct dirent *e = readdir(d)) {
			struct stat st;
			const std::string f = e->d_name;
			if (f[0] != '.' && f != "uevent" &&
			    ::stat((sysfs_dir(q_.name()) + "/" + f).c_str(), &st) == 0 && S_ISREG(st.st_mode))
				files += (files.size() > 1 ? ",\"" : "\"") + f + "\"";
		}
		closedir(d);
	}
	files += "]";
	EXPECT_TRUE(jq_holds(r.out, "(keys - [\"name\", \"node\"] | sort) == (" + files + " | sort)", &why))
		<< why << "\n" << r.out;

	// list --json: every queue once, ours as stat shows it, the module's totals
	r = run({kShmqctl, "list", "--json"});
	ASSERT_EQ(0, r.status) << r.out << r.err;
	EXPECT_EQ("", r.err);
	size_t dirs = 0;
	if (DIR *d = opendir("/sys/class/shmq")) {
		while (struct dirent *e = readdir(d))
			dirs += e->d_name[0] != '.';
		closedir(d);
	}
	EXPECT_TRUE(jq_holds(r.out, strprintf(".queues | length == %zu", dirs), &why)) << why << r.out;
	EXPECT_TRUE(jq_holds(r.out, ".queues | map(.name) | . == unique", &why)) << why << r.out;
	EXPECT_TRUE(jq_holds(r.out,
			     "(.queues[] | select(.name == \"" + q_.name() + "\")) as $q | $q | " + want, &why))
		<< why << r.out;
	EXPECT_TRUE(jq_holds(r.out,
			     strprintf(".usage.queues == %llu and .usage.memory_bytes == %llu and "
				       "(.parameters.max_queues | type) == \"number\"",
				       (unsigned long long)usage("queues"),
				       (unsigned long long)usage("memory_bytes")),
			     &why))
		<< why << r.out;
	// a missing queue: the usual message, nothing on stdout
	r = run({kShmqctl, "stat", "--json", unique_name("sysfs-none")});
	EXPECT_EQ(1, r.status);
	EXPECT_EQ("", r.out);
}

// Issue 14: a name that looks like an option. The module refuses it, and
// shmqctl says why even when the name comes after '--' (where it is taken
// as a name, not an option).
TEST_F(Sysfs, ShmqctlRefusesDashNamesAfterDoubleDashWithTheReason)
{
	REQUIRE_SHMQCTL();
	const std::string name = "-" + unique_name("dash");
	Fd ctl(control_open());
	ASSERT_TRUE(ctl.ok()) << errname(-ctl.get());
	EXPECT_EQ(EINVAL, raw_create(ctl.get(), name, 4096));
	CmdResult r = run({kShmqctl, "create", "--size", "4K", "--", name});
	EXPECT_EQ(2, r.status) << r.err;
	EXPECT_NE(std::string::npos, r.err.find("must not start with '-'")) << r.err;
	EXPECT_FALSE(path_exists(dev_path(name)));
	EXPECT_FALSE(path_exists(sysfs_dir(name)));
}
