// SPDX-License-Identifier: MIT
// Defects an independent review found in the module (issue 9) and the
// hardening issue (14), each pinned by a test named after it. The suites are
// named after what they exercise so that the 2-vCPU boots pick up the racy
// ones (run-matrix.sh SMP2_FILTER: *Wait*, *Race*, ...).
#include "shmq_test.hpp"

#include <sched.h>
#include <set>
#include <sys/epoll.h>
#include <sys/sysmacros.h>

using namespace shmqt;

namespace {

constexpr unsigned kBlockMs = 100;

// Kernel log lines written after the object was made (/dev/kmsg).
class KmsgWatch {
public:
	KmsgWatch() : fd_(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC))
	{
		if (fd_.ok())
			::lseek(fd_.get(), 0, SEEK_END);
	}
	bool ok() const { return fd_.ok(); }
	// Every record since construction (or the last call) containing @needle.
	std::vector<std::string> grep(const std::string &needle)
	{
		std::vector<std::string> hits;
		char buf[8192];
		for (;;) {
			ssize_t n = ::read(fd_.get(), buf, sizeof buf - 1);
			if (n < 0) {
				if (errno == EPIPE) // overwritten records: go on
					continue;
				break;
			}
			buf[n] = 0;
			std::string rec(buf, size_t(n));
			if (rec.find(needle) != std::string::npos)
				hits.push_back(rec);
		}
		return hits;
	}

private:
	Fd fd_;
};

uint64_t sysfs_u64(const std::string &q, const char *attr)
{
	std::string s;
	if (!read_file(sysfs_dir(q) + "/" + attr, &s))
		return UINT64_MAX;
	return strtoull(s.c_str(), nullptr, 10);
}

uint64_t usage_memory()
{
	std::string s;
	if (!read_file("/sys/module/shmq/usage/memory_bytes", &s))
		return UINT64_MAX;
	return strtoull(s.c_str(), nullptr, 10);
}

class Epoll {
public:
	Epoll() : ep_(epoll_create1(EPOLL_CLOEXEC)) {}
	int add(int fd, uint32_t events)
	{
		struct epoll_event ev = {};
		ev.events = events;
		ev.data.fd = fd;
		return epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
	}
	uint32_t wait(int timeout_ms)
	{
		struct epoll_event ev = {};
		int n;
		do
			n = epoll_wait(ep_.get(), &ev, 1, timeout_ms);
		while (n < 0 && errno == EINTR);
		return n == 1 ? ev.events : 0;
	}

private:
	Fd ep_;
};

// Fills a ring with records of @n payload bytes until the next does not fit
// at the current tail without a PAD; returns the number published.
unsigned fill_without_pad(RawEnd &p, uint64_t n)
{
	unsigned k = 0;
	const uint64_t rec = record_bytes(n);
	while (p.capacity() - (p.tail() - p.head()) >= rec &&
	       rec <= p.capacity() - (p.tail() & (p.capacity() - 1))) {
		p.publish(n);
		k++;
	}
	return k;
}

} // namespace

// ---------------------------------------------------------------------------
// Issue 9, kernel item 2: write_need was the largest need of all producer
// waiters, so with the producer fd in epoll (need capacity/2) a blocking
// send of a few bytes was not woken when room for it appeared.

class Wait9 : public testing::Test {
protected:
	void SetUp() override { ASSERT_NO_FATAL_FAILURE(q_.create(4096, "wn")); }
	TestQueue q_;
};

TEST_F(Wait9, EpollRegisteredProducerDoesNotHideASmallSendersWakeup)
{
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	// Full: 4096 / 16 records of 8 bytes.
	ASSERT_EQ(256u, fill_without_pad(p, 8));
	Epoll ep;
	ASSERT_EQ(0, ep.add(p.fd(), EPOLLOUT | EPOLLET));
	// A blocking sender of 8 bytes (16 with its header).
	WaitThread w(p.fd(), SHMQ_WAIT_WRITABLE, 16, deadline_in_ms(30000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	EXPECT_EQ(16u, c.write_need()) << "write_need must be the smallest need of the sleepers";
	// The consumer frees one record the way the library does: it wakes when
	// free space crosses write_need.
	const uint64_t old = c.head();
	c.set_head(old + 16);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	const uint32_t wk = c.write_waiters();
	if ((wk & SHMQ_WAKE_SLEEPER) && c.write_need() <= 16) {
		EXPECT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 0));
	}
	ASSERT_TRUE(w.wait(wake_bound_ms())) << "the 8-byte sender was not woken by 16 free bytes";
	EXPECT_EQ(0, w.result());
}

// The same through the library: an epoll-registered Producer's blocking
// send() of a small message completes as soon as one message is received.
TEST_F(Wait9, LibrarySendWithProducerInEpollCompletesWhenOneMessageIsFreed)
{
	auto prod = shmq::Producer::open(q_.name());
	ASSERT_TRUE(prod) << err_str(prod.error());
	auto cons = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(cons) << err_str(cons.error());
	uint8_t msg[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	unsigned sent = 0;
	while (prod->try_send(as_bytes(msg, sizeof msg)))
		sent++;
	ASSERT_GT(sent, 100u);
	Epoll ep;
	ASSERT_EQ(0, ep.add(prod->fd(), EPOLLOUT | EPOLLET));
	Async<int> s([&] {
		auto r = prod->send(as_bytes(msg, sizeof msg),
				    shmq::Timeout::after(std::chrono::seconds(30)));
		return r ? 0 : r.error().code();
	});
	sleep_ms(kBlockMs);
	ASSERT_FALSE(s.done()) << "send did not block on a full ring";
	uint8_t buf[64];
	auto n = cons->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(std::chrono::seconds(5)));
	ASSERT_TRUE(n) << err_str(n.error());
	ASSERT_TRUE(s.wait(wake_bound_ms())) << "send still blocked with room for it";
	EXPECT_EQ(0, s.get());
}

// Several sleepers with different needs: write_need is the smallest; each
// wakes when free space reaches its own need, never later, never earlier.
TEST_F(Wait9, WritersWithDifferentNeedsEachWakeAtTheirOwnCrossing)
{
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	ASSERT_EQ(256u, fill_without_pad(p, 8));
	const uint64_t needs[] = {1024, 64, 3000, 256};
	std::vector<std::unique_ptr<WaitThread>> ws;
	for (uint64_t n : needs) {
		ws.push_back(std::make_unique<WaitThread>(p.fd(), SHMQ_WAIT_WRITABLE, n,
							  deadline_in_ms(30000)));
		ASSERT_TRUE(ws.back()->blocked_for(20));
	}
	EXPECT_EQ(64u, c.write_need());
	// Free space grows in steps of 16 bytes, each release judged like the
	// library's (detail::release: crossing write_need wakes).
	uint64_t freed = 0;
	while (freed < 4096) {
		const uint64_t tail = c.tail(), old = c.head();
		c.set_head(old + 16);
		freed += 16;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		const uint64_t before = 4096 - (tail - old), after = before + 16;
		if ((c.write_waiters() & SHMQ_WAKE_SLEEPER) && before < c.write_need() &&
		    after >= c.write_need()) {
			EXPECT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 0));
		}
		// Every sleeper whose need is met is woken promptly; the others
		// still sleep.
		for (size_t i = 0; i < ws.size(); i++) {
			if (needs[i] <= freed) {
				EXPECT_TRUE(ws[i]->wait(wake_bound_ms()))
					<< "need " << needs[i] << " still asleep with " << freed << " free";
			} else {
				EXPECT_FALSE(ws[i]->done()) << "need " << needs[i] << " woke with only "
							    << freed << " free";
			}
		}
		if (HasFailure())
			break;
	}
	for (auto &w : ws) {
		ASSERT_TRUE(w->wait(wake_bound_ms()));
		EXPECT_EQ(0, w->result());
	}
	EXPECT_EQ(0u, c.write_need());
}

// A poller (need capacity/2, registered for good) and a sleeper that needs
// more: the poller's EPOLLOUT must not end the sleeper's chance of a wake.
TEST_F(Wait9, SleeperNeedingMoreThanAPollerIsWokenAfterThePoller)
{
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	ASSERT_EQ(256u, fill_without_pad(p, 8));
	Epoll ep;
	ASSERT_EQ(0, ep.add(p.fd(), EPOLLOUT | EPOLLET));
	WaitThread w(p.fd(), SHMQ_WAIT_WRITABLE, 3072, deadline_in_ms(30000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	auto release_like_library = [&](uint64_t bytes) {
		const uint64_t old = c.head(), tail = c.tail();
		c.set_head(old + bytes);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		const uint32_t wk = c.write_waiters();
		const uint64_t before = 4096 - (tail - old), after = before + bytes;
		auto crossed = [&](uint64_t need) { return need && before < need && after >= need; };
		bool wake = (wk & SHMQ_WAKE_SLEEPER) && crossed(c.write_need());
		wake |= ((wk & SHMQ_WAKE_POLL_ARMED) || ((wk & SHMQ_WAKE_POLLED) && c.write_armed())) &&
			crossed(2048);
		if (wake) {
			EXPECT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 0));
		}
	};
	release_like_library(2048);
	EXPECT_TRUE(ep.wait(int(wake_bound_ms())) & EPOLLOUT) << "poller not woken at capacity/2";
	EXPECT_FALSE(w.done()) << "sleeper woke with 2048 free, needs 3072";
	release_like_library(1024);
	ASSERT_TRUE(w.wait(wake_bound_ms())) << "sleeper needing 3072 not woken at 3072 free";
	EXPECT_EQ(0, w.result());
}

// ---------------------------------------------------------------------------
// Issue 9, kernel item 3: a deadline from inside a time namespace is on the
// namespace's CLOCK_MONOTONIC (futex, clock_nanosleep and timerfd convert).

TEST_F(Wait9, DeadlineInATimeNamespaceIsOnThatNamespacesClock)
{
	SHMQT_REQUIRE_ROOT();
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	Pipe pipe;
	// The child enters a time namespace whose CLOCK_MONOTONIC is 30 s ahead,
	// waits 1 s by that clock, and reports the host time it took.
	Child ch = Child::spawn([&]() -> int {
		if (unshare(CLONE_NEWTIME) != 0)
			return errno == EINVAL || errno == EPERM ? 77 : 1;
		if (write_file("/proc/self/timens_offsets", "monotonic 30 0") != 0)
			return 2;
		// The new namespace applies to children: fork once more.
		pid_t g = fork();
		if (g == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			const uint64_t ns_now = uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
			const uint64_t t0 = ns_now;
			int e = raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, ns_now + ms_to_ns(1000));
			clock_gettime(CLOCK_MONOTONIC, &ts);
			const uint64_t took = uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec) - t0;
			// A deadline already past in the namespace's clock (but in
			// the future of the host's) must time out at once.
			int e2 = raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, ns_now - ms_to_ns(10000));
			uint64_t msg[3] = {uint64_t(e), took, uint64_t(e2)};
			(void)!::write(pipe.wfd(), msg, sizeof msg);
			_exit(0);
		}
		int st;
		waitpid(g, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
	});
	ASSERT_TRUE(ch.wait_exit(60000));
	if (ch.exited_with(77))
		GTEST_SKIP() << "kernel without time namespaces";
	ASSERT_TRUE(ch.exited_with(0)) << ch.describe();
	uint64_t msg[3] = {};
	ASSERT_EQ(ssize_t(sizeof msg), ::read(pipe.rfd(), msg, sizeof msg));
	EXPECT_EQ(uint64_t(ETIMEDOUT), msg[0]);
	// 1 s by the namespace's clock; 31 s if the deadline were read on the
	// host's clock. The bound only absorbs a loaded host.
	EXPECT_LT(msg[1], ms_to_ns(15000)) << "waited " << ns_to_ms(msg[1]) << " ms for a 1 s deadline";
	EXPECT_GE(msg[1], ms_to_ns(900));
	EXPECT_EQ(uint64_t(ETIMEDOUT), msg[2]);
}

// ---------------------------------------------------------------------------
// Issue 9, kernel item 5: the kernel read tail and head one after the other,
// so with honest peers moving both it saw impossible pairs: the "corrupt
// ring counters" warning against innocent peers and a wrong bytes_used.

TEST(Race9, HonestPeersAreNeverReportedAsCorrupt)
{
	KmsgWatch kmsg;
	if (!kmsg.ok())
		GTEST_SKIP() << "no /dev/kmsg";
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(4096, "hc"));
	auto prod = shmq::Producer::open(q.name());
	ASSERT_TRUE(prod) << err_str(prod.error());
	auto cons = shmq::Consumer::open(q.name());
	ASSERT_TRUE(cons) << err_str(cons.error());
	const unsigned ms = scaled(3000u, 3000u);
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> bad_used{0}, polls{0}, reads{0};
	// A poller on both fds (each poll reads the counters in the kernel) and
	// a reader of bytes_used.
	std::thread poller([&] {
		struct pollfd pf[2] = {{prod->fd(), POLLOUT, 0}, {cons->fd(), POLLIN, 0}};
		while (!stop.load()) {
			(void)::poll(pf, 2, 0);
			polls++;
			const uint64_t used = sysfs_u64(q.name(), "bytes_used");
			reads++;
			// Records of 16 bytes in a 4096-byte ring: a full ring
			// shows 4096 exactly only if the ring is truly full.
			if (used > 4096)
				bad_used++;
		}
	});
	std::thread consumer([&] {
		uint8_t buf[64];
		while (!stop.load()) {
			auto n = cons->receive(as_wbytes(buf, sizeof buf),
					       shmq::Timeout::after(std::chrono::milliseconds(50)));
			(void)n;
		}
	});
	const uint64_t end = deadline_in_ms(ms);
	uint8_t msg[8] = {};
	uint64_t sent = 0;
	while (now_ns() < end) {
		auto r = prod->send(as_bytes(msg, sizeof msg),
				    shmq::Timeout::after(std::chrono::milliseconds(50)));
		if (r)
			sent++;
	}
	stop = true;
	poller.join();
	consumer.join();
	EXPECT_GT(sent, 1000u);
	EXPECT_EQ(0u, bad_used.load());
	const auto hits = kmsg.grep("corrupt ring counters");
	EXPECT_TRUE(hits.empty()) << "honest peers reported as corrupt: " << hits[0];
	report_figure("honest_counter_checks", polls.load() + reads.load(),
		      "kernel counter snapshots taken while honest peers streamed");
}

// The same with the counters moving as fast as memory allows: one thread
// plays an honest producer and consumer at once (tail += 16, head = tail,
// repeated, so 0 <= tail - head <= 16 at every instant) while another polls
// both fds. Reading tail, then head, the kernel sees head past the tail it
// read whenever the thread ran in between (with 2 vCPUs, often): a negative
// backlog, taken for corruption.
TEST(Race9, CountersMovingAtFullSpeedAreReadAsOnePair)
{
	KmsgWatch kmsg;
	if (!kmsg.ok())
		GTEST_SKIP() << "no /dev/kmsg";
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(4096, "hp"));
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> polls{0}, bad{0};
	std::thread mover([&] {
		uint64_t t = p.tail();
		while (!stop.load(std::memory_order_relaxed)) {
			for (int i = 0; i < 256; i++) {
				t += 16;
				p.set_tail(t);
				c.set_head(t);
			}
		}
	});
	std::thread poller([&] {
		struct pollfd pf[2] = {{p.fd(), POLLOUT, 0}, {c.fd(), POLLIN, 0}};
		while (!stop.load(std::memory_order_relaxed)) {
			pf[0].revents = pf[1].revents = 0;
			(void)::poll(pf, 2, 0);
			polls++;
			// At most 16 bytes are ever in the ring: always writable.
			if (!(pf[0].revents & POLLOUT))
				bad++;
		}
	});
	sleep_ms(scaled(3000u, 3000u));
	stop = true;
	mover.join();
	poller.join();
	const auto hits = kmsg.grep("corrupt ring counters");
	EXPECT_TRUE(hits.empty()) << "honest counters reported as corrupt: " << hits[0];
	EXPECT_EQ(0u, bad.load()) << "an honest ring with at most 16 bytes used was not writable";
	report_figure("honest_counter_checks", polls.load() * 2,
		      "kernel counter snapshots taken while honest peers streamed");
}

// ---------------------------------------------------------------------------
// Issue 9, kernel item 6: creation held the global mutex across the
// allocation of every page, unkillable: a large create blocked every other
// create, destroy and open-by-name, and could not be stopped.

class Control9 : public testing::Test {};

TEST_F(Control9, LargeCreateBlocksNobodyAndDiesOnSIGKILL)
{
	SHMQT_REQUIRE_ROOT();
	const uint64_t big = scaled(uint64_t(256) << 20, uint64_t(512) << 20);
	ParamOverride qs("max_queue_size", std::to_string(big));
	ParamOverride tm("max_total_memory", std::to_string(big + (uint64_t(64) << 20)));
	ASSERT_EQ(0, qs.error());
	ASSERT_EQ(0, tm.error());
	const uint64_t base = usage_memory();
	const std::string name = unique_name("big");
	Child ch = Child::spawn([&] { return create_queue_now(name, big); });
	// The reservation shows before the pages are allocated.
	ASSERT_TRUE(eventually(20000, [&] { return usage_memory() >= base + big; }))
		<< "the large create never reserved its memory";
	// Meanwhile another queue is created and destroyed.
	unsigned done = 0;
	for (int i = 0; i < 5; i++) {
		const std::string small = unique_name("small");
		ASSERT_EQ(0, create_queue_now(small, 4096));
		ASSERT_EQ(0, destroy_queue_now(small));
		done++;
	}
	const bool still_allocating = !path_exists(dev_path(name)) && usage_memory() >= base + big;
	ch.kill_and_reap(SIGKILL);
	if (!still_allocating && path_exists(dev_path(name))) {
		(void)destroy_queue_now(name);
		FAIL() << "the small creates waited for the large one (it finished first)";
	}
	EXPECT_EQ(5u, done);
	EXPECT_TRUE(ch.killed_by(SIGKILL)) << ch.describe();
	EXPECT_FALSE(path_exists(dev_path(name))) << "a killed create left its queue";
	if (path_exists(dev_path(name)))
		(void)destroy_queue_now(name);
	EXPECT_TRUE(eventually(5000, [&] { return usage_memory() == base; }))
		<< "memory_bytes " << usage_memory() << ", was " << base;
}

// Review: two creators of the same name raced, and the loser could get
// ENOSPC (the winner's memory was already reserved) instead of EEXIST. The
// name is now held while the pages are allocated.
TEST_F(Control9, RacingCreatorsOfOneNameGetEEXISTNeverENOSPC)
{
	SHMQT_REQUIRE_ROOT();
	const uint64_t cap = 1 << 20;
	std::string used;
	ASSERT_TRUE(read_file("/sys/module/shmq/usage/memory_bytes", &used));
	// Room for exactly one more such queue.
	const uint64_t limit = strtoull(used.c_str(), nullptr, 10) + cap + 3 * page_size() + cap / 2;
	ParamOverride tm("max_total_memory", std::to_string(limit));
	ASSERT_EQ(0, tm.error());
	unsigned eexist = 0;
	for (int round = 0; round < scaled(40, 10); round++) {
		const std::string n = unique_name("race");
		std::atomic<int> go{0};
		auto create = [&] {
			Fd ctl(control_open());
			go++;
			while (go.load() < 2) {
			}
			return raw_create(ctl.get(), n, cap);
		};
		Async<int> a(create), b(create);
		const int ra = a.get(), rb = b.get();
		EXPECT_TRUE((ra == 0 && rb == EEXIST) || (ra == EEXIST && rb == 0))
			<< "round " << round << ": " << errname(ra) << " and " << errname(rb);
		eexist += (ra == EEXIST) + (rb == EEXIST);
		(void)destroy_queue_now(n);
		if (HasFailure())
			break;
	}
	EXPECT_GT(eexist, 0u);
}

// Issue 9, kernel item 4: the smallest capacity is max(4096, PAGE_SIZE), so
// that the data region is whole pages; the layout says what it is.
TEST_F(Control9, CapacityBelowThePageSizeOrMinimumIsEINVAL)
{
	SHMQT_REQUIRE_ROOT();
	const uint64_t min = std::max<uint64_t>(SHMQ_MIN_CAPACITY, page_size());
	Fd ctl(control_open());
	ASSERT_TRUE(ctl.ok());
	const std::string n = unique_name("min");
	EXPECT_EQ(EINVAL, raw_create(ctl.get(), n, min / 2));
	ASSERT_EQ(0, raw_create(ctl.get(), n, min));
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(n, O_RDONLY));
	EXPECT_EQ(min, c.L.min_capacity);
	EXPECT_EQ(0u, c.L.data.size % page_size());
	c.close();
	EXPECT_EQ(0, raw_destroy(ctl.get(), n));
}

// Issue 9, kernel item 7: ioctl type 0xB7 belongs to nsfs and remoteproc.
TEST_F(Control9, IoctlTypeIsNotOneTakenByNsfsOrRemoteproc)
{
	for (unsigned long cmd : {SHMQ_IOC_CREATE, SHMQ_IOC_DESTROY, SHMQ_IOC_LAYOUT,
				  (unsigned long)SHMQ_IOC_RING_FD, SHMQ_IOC_WAIT,
				  (unsigned long)SHMQ_IOC_WAKE, (unsigned long)SHMQ_IOC_INTERRUPT})
		EXPECT_NE(0xB7u, _IOC_TYPE(cmd)) << std::hex << cmd;
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(4096, "nr"));
	Fd c(open_queue(q.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	// NS_GET_USERNS = _IO(0xB7, 0x1): a queue fd does not answer it.
	EXPECT_EQ(ENOTTY, xioctl_val(c.get(), _IO(0xB7, 0x1), 0));
}

// ---------------------------------------------------------------------------
// Issue 9, kernel item 9.

// The ring fd had no .poll, so poll(2) reported it always ready.
TEST_F(Wait9, RingFdPollsLikeItsQueueFd)
{
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	Fd r(ring_fd(c.get()));
	ASSERT_TRUE(r.ok());
	EXPECT_EQ(0, poll_one(r.get(), POLLIN | POLLOUT, 0)) << "empty ring reported ready";
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	p.publish(8);
	EXPECT_EQ(POLLIN, poll_one(r.get(), POLLIN, int(wake_bound_ms())) & POLLIN);
}

// A poll(2) that returned left its waiter mark published for ever, so the
// peer made a wake system call per transition. Now: a poll that found the
// condition true leaves nothing armed; one that timed out costs at most one
// wake, which drops the mark.
TEST_F(Wait9, PollMarkIsDroppedOnceThePollReturned)
{
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	EXPECT_EQ(0, poll_one(c.fd(), POLLIN, 20)); // timed out on an empty ring
	const uint64_t w0 = sysfs_u64(q_.name(), "wakes");
	p.publish(8); // may wake once for the stale mark
	c.set_head(p.tail());
	EXPECT_EQ(0u, p.read_waiters()) << "the stale mark was not dropped by the wake";
	for (int i = 0; i < 10; i++) {
		p.publish(8);
		c.set_head(p.tail());
	}
	EXPECT_LE(sysfs_u64(q_.name(), "wakes") - w0, 1u);
	// A poll that finds data: nothing stays armed.
	p.publish(8);
	EXPECT_EQ(POLLIN, poll_one(c.fd(), POLLIN, 0));
	c.set_head(p.tail());
	const uint64_t w1 = sysfs_u64(q_.name(), "wakes");
	for (int i = 0; i < 10; i++) {
		p.publish(8);
		c.set_head(p.tail());
	}
	EXPECT_EQ(w1, sysfs_u64(q_.name(), "wakes"));
}

// Review of the wake words: one poll that found the ring readable cleared
// the arm of another poller that was asleep (one flag per side): the
// producer then skipped the wake, and the sleeping poller never woke.
TEST_F(Wait9, APollThatFindsDataKeepsAnotherSleepingPollerArmed)
{
	for (const bool producer_side : {false, true}) {
		SCOPED_TRACE(producer_side ? "producer side" : "consumer side");
		TestQueue q;
		ASSERT_NO_FATAL_FAILURE(q.create(4096, "pp"));
		RawEnd p, c;
		ASSERT_NO_FATAL_FAILURE(p.open(q.name(), O_WRONLY));
		ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
		if (producer_side) {
			ASSERT_EQ(256u, fill_without_pad(p, 8));
		}
		RawEnd &waiter = producer_side ? p : c;
		const short ev = producer_side ? POLLOUT : POLLIN;
		// A: level-triggered epoll, asleep with its condition false.
		Epoll ep;
		ASSERT_EQ(0, ep.add(waiter.fd(), producer_side ? EPOLLOUT : EPOLLIN));
		Async<uint32_t> a([&] { return ep.wait(20000); });
		sleep_ms(kBlockMs);
		ASSERT_FALSE(a.done());
		// The other side moves its counter but has not checked yet...
		const uint64_t old_tail = c.tail(), old_head = c.head();
		if (producer_side)
			c.set_head(old_head + 2048);
		else
			p.set_tail(p.write_record(8, 1, old_tail));
		// ...when B's poll finds the condition true.
		EXPECT_EQ(ev, poll_one(waiter.fd(), ev, 0) & ev);
		// Now it checks, as the library does (detail::publish/release).
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		bool wake;
		if (producer_side) {
			const uint32_t w = c.write_waiters();
			const uint64_t before = 4096 - (c.tail() - old_head), after = before + 2048;
			wake = ((w & SHMQ_WAKE_POLL_ARMED) || ((w & SHMQ_WAKE_POLLED) && c.write_armed())) &&
			       before < 2048 && after >= 2048;
		} else {
			const uint32_t w = p.read_waiters();
			wake = ((w & (SHMQ_WAKE_SLEEPER | SHMQ_WAKE_POLL_ARMED)) ||
				((w & SHMQ_WAKE_POLLED) && p.read_armed())) &&
			       p.head() == old_tail;
		}
		if (wake) {
			EXPECT_EQ(0, xioctl_val((producer_side ? c : p).fd(), SHMQ_IOC_WAKE, 0));
		}
		EXPECT_TRUE(wake) << "the sleeping poller's arm was cleared by the other poll";
		ASSERT_TRUE(a.wait(wake_bound_ms())) << "poller A never woken";
		EXPECT_TRUE(a.get() & (producer_side ? EPOLLOUT : EPOLLIN));
	}
}

// Review: a process that stored its counter and died before its WAKE, while
// a forked child kept the attachment, left the other side asleep with its
// condition true. Every close now wakes the other side's waiters.
TEST_F(Wait9, PeerDyingBetweenItsStoreAndItsWakeWhileAChildHoldsTheFile)
{
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	WaitThread w(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(30000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	Pipe done;
	Child prod = Child::spawn([&]() -> int {
		RawEnd p;
		p.open(q_.name(), O_WRONLY);
		if (!p.qfd.ok())
			return 1;
		// The holder: inherits the queue fd and the mappings, lives on.
		pid_t h = fork();
		if (h == 0) {
			for (;;)
				pause();
		}
		uint32_t v = uint32_t(h);
		(void)!::write(done.wfd(), &v, sizeof v);
		// Publish without the wake, then die.
		p.set_tail(p.write_record(8, 7, p.tail()));
		_exit(0);
	});
	uint32_t holder = 0;
	ASSERT_TRUE(done.readable(20000));
	ASSERT_EQ(ssize_t(sizeof holder), ::read(done.rfd(), &holder, sizeof holder));
	ASSERT_TRUE(prod.wait_exit(20000));
	EXPECT_TRUE(w.wait(wake_bound_ms())) << "consumer still asleep with a message in the ring";
	EXPECT_EQ(0, w.result());
	::kill(pid_t(holder), SIGKILL);
}

// Review: a pending interrupt was taken by the zero-deadline probe of
// try_send/try_receive (which ask whether the peer hung up) and mapped to
// EAGAIN, so the following blocking call waited for ever.
TEST_F(Wait9, InterruptSurvivesAProbeAndCancelsTheNextBlockingCall)
{
	auto prod = shmq::Producer::open(q_.name());
	ASSERT_TRUE(prod) << err_str(prod.error());
	// No consumer ever attached: try_send probes the kernel when full.
	uint8_t msg[8] = {};
	while (prod->try_send(as_bytes(msg, sizeof msg))) {
	}
	prod->interrupt();
	auto e = prod->try_send(as_bytes(msg, sizeof msg));
	ASSERT_FALSE(e);
	EXPECT_EQ(EAGAIN, e.error().code());
	Async<int> s([&] {
		auto r = prod->send(as_bytes(msg, sizeof msg), shmq::Timeout::after(std::chrono::seconds(30)));
		return r ? 0 : r.error().code();
	});
	ASSERT_TRUE(s.wait(wake_bound_ms())) << "the interrupt was lost";
	EXPECT_EQ(ECANCELED, s.get());
}

// A wait whose condition holds returns 0 and leaves the interrupt pending
// for the next wait that would sleep.
TEST_F(Wait9, InterruptIsTakenOnlyByAWaitThatWouldSleep)
{
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	p.publish(8);
	EXPECT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_INTERRUPT, 0));
	EXPECT_EQ(0, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(1000)));
	c.set_head(p.tail());
	EXPECT_EQ(ETIMEDOUT, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, 0)) << "a probe took it";
	EXPECT_EQ(ECANCELED, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(30000)));
}

// Issue 9, library item 6: a consumer registered in epoll cost the producer
// a wake system call per message, also while the consumer was busy and not
// waiting. Now the library arms its fd only when it finds the ring empty.
TEST_F(Wait9, EpollConsumerThatIsBusyCostsTheProducerNoWakes)
{
	auto prod = shmq::Producer::open(q_.name());
	ASSERT_TRUE(prod) << err_str(prod.error());
	auto cons = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(cons) << err_str(cons.error());
	Epoll ep;
	ASSERT_EQ(0, ep.add(cons->fd(), EPOLLIN | EPOLLET));
	uint8_t msg[8] = {}, buf[64];
	// The usual start: epoll_wait reports the first message (the kernel's
	// poll finds it and disarms).
	ASSERT_TRUE(prod->try_send(as_bytes(msg, sizeof msg)));
	ASSERT_TRUE(ep.wait(int(wake_bound_ms())) & EPOLLIN);
	const uint64_t w0 = sysfs_u64(q_.name(), "wakes");
	// Busy consumer: it takes each message, and the next one is sent
	// before it looks again (it never sees the ring empty).
	for (int i = 0; i < 100; i++) {
		auto n = cons->try_receive(as_wbytes(buf, sizeof buf));
		ASSERT_TRUE(n) << err_str(n.error());
		ASSERT_TRUE(prod->try_send(as_bytes(msg, sizeof msg)));
	}
	EXPECT_EQ(w0, sysfs_u64(q_.name(), "wakes")) << "wakes for a consumer that was not waiting";
	// Draining to EAGAIN arms it: the next message wakes its epoll.
	ASSERT_TRUE(cons->try_receive(as_wbytes(buf, sizeof buf)));
	auto e = cons->try_receive(as_wbytes(buf, sizeof buf));
	ASSERT_FALSE(e);
	ASSERT_EQ(EAGAIN, e.error().code());
	(void)ep.wait(0); // consume any earlier edge
	Async<uint32_t> waiter([&] { return ep.wait(20000); });
	sleep_ms(kBlockMs);
	ASSERT_FALSE(waiter.done());
	ASSERT_TRUE(prod->try_send(as_bytes(msg, sizeof msg)));
	ASSERT_TRUE(waiter.wait(wake_bound_ms())) << "armed epoll consumer not woken";
	EXPECT_TRUE(waiter.get() & EPOLLIN);
	EXPECT_EQ(w0 + 1, sysfs_u64(q_.name(), "wakes"));
}

// The same for an epoll producer: it arms when try_send says EAGAIN.
TEST_F(Wait9, EpollProducerIsWokenWhenArmedByEAGAIN)
{
	auto prod = shmq::Producer::open(q_.name());
	ASSERT_TRUE(prod) << err_str(prod.error());
	auto cons = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(cons) << err_str(cons.error());
	Epoll ep;
	ASSERT_EQ(0, ep.add(prod->fd(), EPOLLOUT | EPOLLET));
	(void)ep.wait(0);
	uint8_t msg[8] = {}, buf[64];
	while (prod->try_send(as_bytes(msg, sizeof msg))) {
	}
	Async<uint32_t> waiter([&] { return ep.wait(20000); });
	sleep_ms(kBlockMs);
	ASSERT_FALSE(waiter.done());
	// Free half the ring: EPOLLOUT's condition.
	for (int i = 0; i < 128; i++)
		ASSERT_TRUE(cons->try_receive(as_wbytes(buf, sizeof buf)));
	ASSERT_TRUE(waiter.wait(wake_bound_ms())) << "armed epoll producer not woken at capacity/2";
	EXPECT_TRUE(waiter.get() & EPOLLOUT);
}

// The wait loop sleeps TASK_FREEZABLE: suspend's freezer freezes it in place
// instead of waking it to restart the call (visible as a second wait in the
// counters).
TEST_F(Wait9, SleeperIsFrozenInPlaceNotRestarted)
{
	SHMQT_REQUIRE_ROOT();
	std::string states;
	if (!read_file("/sys/power/state", &states) || states.find("freeze") == std::string::npos ||
	    !path_exists("/sys/power/pm_test"))
		GTEST_SKIP() << "no suspend-to-idle test mode (/sys/power/pm_test)";
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	WaitThread w(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(60000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	const uint64_t waits0 = sysfs_u64(q_.name(), "waits");
	const uint64_t empty0 = sysfs_u64(q_.name(), "empty_events");
	std::string old_test;
	ASSERT_TRUE(read_file("/sys/power/pm_test", &old_test));
	(void)write_file("/sys/module/suspend/parameters/pm_test_delay", "1");
	ASSERT_EQ(0, write_file("/sys/power/pm_test", "freezer"));
	const int e = write_file("/sys/power/state", "freeze");
	(void)write_file("/sys/power/pm_test", "none");
	ASSERT_EQ(0, e) << "freeze/thaw cycle failed: " << errname(e);
	EXPECT_EQ(waits0, sysfs_u64(q_.name(), "waits")) << "the wait was restarted by the freezer";
	EXPECT_EQ(empty0, sysfs_u64(q_.name(), "empty_events"));
	EXPECT_FALSE(w.done());
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	p.publish(8);
	ASSERT_TRUE(w.wait(wake_bound_ms()));
	EXPECT_EQ(0, w.result());
}

// ---------------------------------------------------------------------------
// Issue 9, library item 8: a blocked call could not be interrupted.

TEST_F(Wait9, InterruptCancelsAWaitInProgressAndOnlyOne)
{
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	EXPECT_EQ(EINVAL, xioctl_val(c.fd(), SHMQ_IOC_INTERRUPT, 1));
	{
		WaitThread w(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(30000));
		ASSERT_TRUE(w.blocked_for(kBlockMs));
		EXPECT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_INTERRUPT, 0));
		ASSERT_TRUE(w.wait(wake_bound_ms()));
		EXPECT_EQ(ECANCELED, w.result());
	}
	// Consumed: the next wait waits again.
	EXPECT_EQ(ETIMEDOUT, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(50)));
	// Before the wait: the next one returns at once.
	EXPECT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_INTERRUPT, 0));
	EXPECT_EQ(ECANCELED, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(30000)));
	// It belongs to the attachment: the producer's waits are not touched.
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	EXPECT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_INTERRUPT, 0));
	EXPECT_EQ(0, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 16, deadline_in_ms(50)));
	EXPECT_EQ(ECANCELED, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(30000)));
}

TEST_F(Wait9, LibraryInterruptStopsABlockedReceiveAndSend)
{
	auto cons = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(cons) << err_str(cons.error());
	auto prod = shmq::Producer::open(q_.name());
	ASSERT_TRUE(prod) << err_str(prod.error());
	uint8_t buf[64];
	Async<int> r([&] {
		auto n = cons->receive(as_wbytes(buf, sizeof buf));
		return n ? 0 : n.error().code();
	});
	sleep_ms(kBlockMs);
	ASSERT_FALSE(r.done());
	cons->interrupt();
	ASSERT_TRUE(r.wait(wake_bound_ms()));
	EXPECT_EQ(ECANCELED, r.get());
	uint8_t msg[8] = {};
	while (prod->try_send(as_bytes(msg, sizeof msg))) {
	}
	Async<int> s([&] {
		auto e = prod->send(as_bytes(msg, sizeof msg));
		return e ? 0 : e.error().code();
	});
	sleep_ms(kBlockMs);
	ASSERT_FALSE(s.done());
	prod->interrupt();
	ASSERT_TRUE(s.wait(wake_bound_ms()));
	EXPECT_EQ(ECANCELED, s.get());
	// Both still work afterwards.
	auto n = cons->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(std::chrono::seconds(5)));
	EXPECT_TRUE(n);
}

// ---------------------------------------------------------------------------
// Issue 9, kernel item 9: sysfs translated the creator's uid with the
// reader's user namespace; a file handed to another process must answer as
// it would its opener.

TEST(Sysfs9, CreatedByUidIsTranslatedForTheOpenerNotTheReader)
{
	SHMQT_REQUIRE_ROOT();
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(4096, "uid"));
	Pipe go, res;
	Child ch = Child::spawn([&]() -> int {
		Fd f(::open((sysfs_dir(q.name()) + "/created_by_uid").c_str(), O_RDONLY | O_CLOEXEC));
		if (!f.ok())
			return 1;
		// A user namespace in which uid 0 is not mapped: the reader's
		// view of the creator (root) would be the overflow uid.
		if (unshare(CLONE_NEWUSER) != 0)
			return errno == EINVAL || errno == EPERM ? 77 : 2;
		char buf[32] = {};
		ssize_t n = ::pread(f.get(), buf, sizeof buf - 1, 0);
		if (n <= 0)
			return 3;
		(void)!::write(res.wfd(), buf, size_t(n));
		return 0;
	});
	ASSERT_TRUE(ch.wait_exit(20000));
	if (ch.exited_with(77))
		GTEST_SKIP() << "no user namespaces";
	ASSERT_TRUE(ch.exited_with(0)) << ch.describe();
	char buf[32] = {};
	ASSERT_GT(::read(res.rfd(), buf, sizeof buf - 1), 0);
	EXPECT_EQ("0", trim(buf)) << "translated with the reader's namespace";
}

// ---------------------------------------------------------------------------
// Issue 14, item 1: sysfs named a dead process. After the opener died and a
// child that inherited the file keeps the attachment, producer_pid showed
// the dead opener's number, which may belong to another process by now.

TEST(Sysfs14, PidOfAnOpenerThatExitedIsNotShown)
{
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(4096, "pid"));
	Pipe ready;
	// The opener: opens the producer, forks a holder that inherits the fd
	// and sleeps, then is killed.
	Child opener = Child::spawn([&]() -> int {
		int fd = ::open(dev_path(q.name()).c_str(), O_WRONLY); // inherited on purpose
		if (fd < 0)
			return 1;
		pid_t h = fork();
		if (h == 0) {
			for (;;)
				pause();
		}
		uint32_t v = uint32_t(h);
		(void)!::write(ready.wfd(), &v, sizeof v);
		for (;;)
			pause();
	});
	uint32_t holder = 0;
	ASSERT_TRUE(ready.readable(20000));
	ASSERT_EQ(ssize_t(sizeof holder), ::read(ready.rfd(), &holder, sizeof holder));
	EXPECT_EQ(uint64_t(opener.pid()), sysfs_u64(q.name(), "producer_pid"));
	opener.kill_and_reap(SIGKILL);
	EXPECT_EQ(1u, sysfs_u64(q.name(), "producers")) << "the holder keeps the attachment";
	EXPECT_EQ(0u, sysfs_u64(q.name(), "producer_pid")) << "the dead opener is still shown";
	// shmqctl stat says what that means.
	if (path_exists("/bin/shmqctl")) {
		Pipe out;
		Child st = Child::spawn([&]() -> int {
			dup2(out.wfd(), 1);
			execl("/bin/shmqctl", "shmqctl", "stat", "--", q.name().c_str(), (char *)nullptr);
			return 127;
		});
		ASSERT_TRUE(st.wait_exit(20000));
		EXPECT_TRUE(st.exited_with(0)) << st.describe();
		std::string text;
		char buf[4096];
		while (out.readable(0)) {
			ssize_t n = ::read(out.rfd(), buf, sizeof buf);
			if (n <= 0)
				break;
			text.append(buf, size_t(n));
		}
		EXPECT_NE(std::string::npos, text.find("has exited")) << text;
	}
	::kill(pid_t(holder), SIGKILL);
	EXPECT_TRUE(eventually(5000, [&] { return sysfs_u64(q.name(), "producers") == 0; }));
}

// Issue 14, item 2: names that look like options.
TEST(Control14, NamesStartingWithADashAreEINVAL)
{
	SHMQT_REQUIRE_ROOT();
	Fd ctl(control_open());
	ASSERT_TRUE(ctl.ok());
	for (const char *n : {"-", "-rf", "--help", "-0"}) {
		EXPECT_EQ(EINVAL, raw_create(ctl.get(), n, 4096)) << n;
		EXPECT_FALSE(path_exists(dev_path(n))) << n;
		EXPECT_EQ(EINVAL, raw_destroy(ctl.get(), n)) << n;
		auto v = shmq::validate_name(n);
		ASSERT_FALSE(v) << n;
		EXPECT_EQ(EINVAL, v.error().code()) << n;
	}
	// A dash inside a name stays allowed.
	const std::string ok = unique_name("a-b");
	EXPECT_EQ(0, raw_create(ctl.get(), ok, 4096));
	EXPECT_EQ(0, raw_destroy(ctl.get(), ok));
}

// Issue 14, item 3: a destroyed queue's minor was handed to the next queue
// at once, so a stale node (static /dev, a copy, a bind mount) reached it.
TEST(Control14, ADestroyedQueuesMinorIsNotReusedAtOnce)
{
	SHMQT_REQUIRE_ROOT();
	std::set<unsigned> seen;
	Fd ctl(control_open());
	ASSERT_TRUE(ctl.ok());
	for (int i = 0; i < 16; i++) {
		const std::string n = unique_name("mn");
		ASSERT_EQ(0, raw_create(ctl.get(), n, 4096));
		ASSERT_TRUE(wait_path(dev_path(n), true));
		struct stat st{};
		ASSERT_EQ(0, ::stat(dev_path(n).c_str(), &st));
		EXPECT_TRUE(seen.insert(minor(st.st_rdev)).second)
			<< "minor " << minor(st.st_rdev) << " reused after " << i << " destroys";
		ASSERT_EQ(0, raw_destroy(ctl.get(), n));
	}
}

// A node made for a destroyed queue (as a static /dev would keep it)
// reaches nothing, also after new queues were created.
TEST(Control14, AStaleNodeOfADestroyedQueueReachesNoOtherQueue)
{
	SHMQT_REQUIRE_ROOT();
	const std::string n = unique_name("st");
	ASSERT_EQ(0, create_queue_now(n, 4096));
	ASSERT_TRUE(wait_path(dev_path(n), true));
	struct stat st{};
	ASSERT_EQ(0, ::stat(dev_path(n).c_str(), &st));
	const std::string stale = "/tmp/shmq-stale-" + n;
	(void)::unlink(stale.c_str());
	ASSERT_EQ(0, ::mknod(stale.c_str(), S_IFCHR | 0600, st.st_rdev));
	ASSERT_EQ(0, destroy_queue_now(n));
	TestQueue other;
	ASSERT_NO_FATAL_FAILURE(other.create(4096, "new"));
	const int fd = open_err(stale, O_RDONLY);
	EXPECT_LT(fd, 0) << "the stale node opened a queue";
	if (fd >= 0)
		::close(fd);
	else
		EXPECT_EQ(-ENXIO, fd);
	::unlink(stale.c_str());
}
