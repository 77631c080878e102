// SPDX-License-Identifier: MIT
// Race*: threads in several processes race create/destroy/open/mmap/wait/
// poll/close on the same few names. Every operation must end with one of
// the results allowed for it, the operation count is exact, and afterwards
// nothing is left: no queue, no device node, module usage at its baseline.
// Then waiters in other processes, proven asleep in the kernel, woken by
// destroy (EIDRM), by the peer leaving (EPIPE) and by a signal (EINTR) while
// the names are being recycled.
#include "shmq_test.hpp"
#include "usage.hpp"

#include <sys/epoll.h>

using namespace shmqt;

namespace {

class Race : public testing::Test {
protected:
	void SetUp() override { SHMQT_REQUIRE_ROOT(); }
};

enum Op : int { O_CREATE, O_DESTROY, O_OPEN, O_LIBOPEN, O_MMAP, O_WAIT, O_POLL, O_CLOSE, O_SYSFS, O_NOPS };
const char *const kOpName[O_NOPS] = {"create", "destroy", "open", "library open", "mmap",
				     "wait",   "poll",	  "close", "sysfs read"};

constexpr int kMaxErr = 134; // errno values counted below this

struct RaceStats {
	std::atomic<uint64_t> count[O_NOPS][kMaxErr + 1]; // [op][errno], 0: success
	std::atomic<uint64_t> total;
	std::atomic<int> failed;
	char error[512];
};

// The results each operation may have while others race it.
bool allowed(int op, int e)
{
	switch (op) {
	case O_CREATE:
		return e == 0 || e == EEXIST;
	case O_DESTROY:
		return e == 0 || e == ENOENT;
	case O_OPEN:
	case O_LIBOPEN:
		// ENOENT: no node. EBUSY: role taken. ENODEV: destroyed between
		// the lookup and the open. ENXIO: the node was looked up but its
		// cdev is already gone.
		return e == 0 || e == ENOENT || e == EBUSY || e == ENODEV || e == ENXIO;
	case O_MMAP: // a ring fd and its mappings work even on a destroyed queue
	case O_CLOSE:
		return e == 0;
	case O_WAIT:
		return e == 0 || e == ETIMEDOUT || e == EIDRM || e == EPIPE;
	case O_POLL:
		return e == 0;
	case O_SYSFS: // ENODEV: the attribute was removed while being read
		return e == 0 || e == ENOENT || e == ENODEV;
	}
	return false;
}

struct Held {
	Fd fd;
	int role = 0; // O_RDONLY / O_WRONLY
	std::vector<Map> maps;
};

// One racing worker: @ops operations on @names.
void race_worker(RaceStats *st, const std::vector<std::string> &names, uint64_t ops, uint64_t seed)
{
	Rng rng(seed);
	std::vector<Held> held;
	Fd ctl(control_open());
	auto note = [&](int op, int e, const std::string &what) {
		if (e < 0 || e > kMaxErr || !allowed(op, e)) {
			if (st->failed.exchange(1) == 0)
				snprintf(st->error, sizeof st->error, "%s %s: %s", kOpName[op], what.c_str(),
					 errname(e).c_str());
			e = std::clamp(e, 0, kMaxErr);
		}
		st->count[op][e]++;
		st->total++;
	};
	for (uint64_t i = 0; i < ops; i++) {
		const std::string &name = names[rng.next() % names.size()];
		int op = int(rng.next() % O_NOPS);
		if ((op == O_MMAP || op == O_WAIT || op == O_POLL || op == O_CLOSE) && held.empty())
			op = O_OPEN;
		if (op == O_OPEN && held.size() >= 4)
			op = O_CLOSE;
		switch (op) {
		case O_CREATE:
			note(op, raw_create(ctl.get(), name, rng.chance(50) ? 4096 : 16384), name);
			break;
		case O_DESTROY:
			note(op, raw_destroy(ctl.get(), name), name);
			break;
		case O_OPEN: {
			const int role = rng.chance(50) ? O_RDONLY : O_WRONLY;
			int fd = open_queue(name, role);
			note(op, fd < 0 ? -fd : 0, name);
			if (fd >= 0) {
				Held h;
				h.fd.reset(fd);
				h.role = role;
				held.push_back(std::move(h));
			}
			break;
		}
		case O_LIBOPEN: {
			int e;
			if (rng.chance(50)) {
				auto c = shmq::Consumer::open(name);
				e = c ? 0 : c.error().code();
			} else {
				auto p = shmq::Producer::open(name);
				e = p ? 0 : p.error().code();
			}
			note(op, e, name);
			break;
		}
		case O_MMAP: {
			Held &h = held[rng.next() % held.size()];
			shmq_layout L;
			int e = get_layout(h.fd.get(), &L);
			Fd r;
			if (!e) {
				r.reset(ring_fd(h.fd.get()));
				e = r.ok() ? 0 : -r.get();
			}
			if (!e) {
				const bool prod = h.role == O_WRONLY;
				const shmq_region *regs[4] = {&L.status, &L.producer, &L.consumer, &L.data};
				const int k = int(rng.next() % 4);
				const bool rw = (k == 1 || k == 3) ? prod : (k == 2 ? !prod : false);
				Map m;
				e = map_region(r.get(), *regs[k], PROT_READ | (rw ? PROT_WRITE : 0), &m);
				if (!e) {
					volatile uint8_t b = m.bytes()[0]; // the pages are there
					(void)b;
					h.maps.push_back(std::move(m));
				}
			}
			note(op, e, "on a held queue fd");
			break;
		}
		case O_WAIT: {
			Held &h = held[rng.next() % held.size()];
			const bool prod = h.role == O_WRONLY;
			int e = raw_wait(h.fd.get(), prod ? SHMQ_WAIT_WRITABLE : SHMQ_WAIT_READABLE, prod ? 8 : 0,
					 deadline_in_ms(rng.range(0, 3)));
			note(op, e, "on a held queue fd");
			break;
		}
		case O_POLL: {
			Held &h = held[rng.next() % held.size()];
			int r = poll_one(h.fd.get(), POLLIN | POLLOUT, 0);
			const int ok_bits = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM | POLLHUP | POLLERR;
			int e = r < 0 ? -r : 0;
			if (r > 0 && (r & ~ok_bits))
				e = EPROTO; // not allowed: reported as a failure
			note(op, e, strprintf("revents %#x", r));
			break;
		}
		case O_CLOSE: {
			size_t k = rng.next() % held.size();
			if (!held[k].maps.empty() && rng.chance(50))
				held[k].maps.pop_back(); // munmap only
			else
				held.erase(held.begin() + long(k));
			note(op, 0, "");
			break;
		}
		case O_SYSFS: {
			std::string s;
			int e = 0;
			if (read_file(sysfs_dir(name) + "/bytes_used", &s, &e)) {
				uint64_t v = ~uint64_t(0);
				if (!parse_size(s, &v) || v > 16384)
					e = ERANGE; // not allowed: reported as a failure
			}
			note(op, e, name + "/bytes_used");
			break;
		}
		}
	}
}

} // namespace

TEST_F(Race, CreateDestroyOpenMmapWaitCloseOnFewNames)
{
	const Usage base = read_usage();
	const std::vector<std::string> names = {unique_name("race"), unique_name("race"), unique_name("race")};
	const int procs = 4, threads = 2;
	const uint64_t ops = scaled<uint64_t>(400, 80);
	const uint64_t seed = test_seed();
	printf("[   INFO   ] seed %llu (SHMQ_TEST_SEED to repeat the operation sequences)\n",
	       (unsigned long long)seed);
	Shared<RaceStats> st;
	std::vector<Child> kids;
	for (int p = 0; p < procs; p++)
		kids.push_back(Child::spawn([&, p] {
			std::vector<std::thread> ts;
			for (int t = 0; t < threads; t++)
				ts.emplace_back([&, p, t] {
					race_worker(&*st, names, ops, seed * 31 + uint64_t(p * threads + t));
				});
			for (auto &t : ts)
				t.join();
			return 0;
		}));
	for (auto &k : kids) {
		ASSERT_TRUE(k.wait_exit(scaled(120000u, 600000u))) << "a racing worker hangs";
		EXPECT_TRUE(k.exited_with(0)) << k.describe();
	}
	EXPECT_EQ(0, st->failed.load()) << st->error;

	// Exact count, and every kind of operation did succeed sometimes.
	const uint64_t want = uint64_t(procs * threads) * ops;
	uint64_t sum = 0;
	for (int op = 0; op < O_NOPS; op++) {
		std::string line;
		uint64_t n = 0;
		for (int e = 0; e <= kMaxErr; e++) {
			const uint64_t c = st->count[op][e];
			if (!c)
				continue;
			n += c;
			line += strprintf(" %s %llu", e ? errname(e).c_str() : "ok", (unsigned long long)c);
		}
		sum += n;
		printf("[   INFO   ] %-12s %5llu:%s\n", kOpName[op], (unsigned long long)n, line.c_str());
	}
	EXPECT_EQ(want, sum) << "operations counted by result";
	EXPECT_EQ(want, st->total.load());
	for (int op : {O_CREATE, O_DESTROY, O_OPEN, O_MMAP, O_WAIT})
		EXPECT_GT(st->count[op][0].load(), 0u) << kOpName[op] << " never succeeded: the race did not happen";

	// A final destroy leaves nothing behind.
	for (const auto &n : names) {
		const int e = destroy_queue_now(n);
		EXPECT_TRUE(e == 0 || e == ENOENT) << n << ": " << errname(e);
		EXPECT_TRUE(wait_path(dev_path(n), false)) << dev_path(n) << " left behind";
		EXPECT_FALSE(path_exists(sysfs_dir(n))) << sysfs_dir(n) << " left behind";
	}
	Usage now;
	EXPECT_TRUE(usage_back_to(base, &now)) << "leak: before " << base.describe() << ", after " << now.describe();
	printf("[   INFO   ] usage checked with %s: %s\n", base.source().c_str(), now.describe().c_str());
	report_figure("race_ops", sum, "racing create/destroy/open/mmap/wait/close operations");
}

// ---------------------------------------------------------------------------
// Waiters proven blocked, then woken.

namespace {

enum Event : int { E_DESTROY, E_PEER_EXIT, E_SIGNAL, E_COUNT };
const char *const kEventName[E_COUNT] = {"destroy", "peer exit", "signal"};

// What one waiter process reports (MAP_SHARED).
struct WaiterReport {
	std::atomic<pid_t> wait_tid, poll_tid;
	std::atomic<int> wait_result; // errno + 1000 once returned
	std::atomic<int> poll_result; // revents + 1000 once returned, or -errno + 1000
	std::atomic<int> ready;
};

void on_usr1(int) {}

// A process attached to @name as @role whose main thread sleeps in
// SHMQ_IOC_WAIT and a second thread in epoll_wait (SIGUSR1 blocked there).
int waiter_process(const std::string &name, int role, WaiterReport *rep)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1; // no SA_RESTART: EINTR
	sigaction(SIGUSR1, &sa, nullptr);
	int fd = open_queue(name, role);
	if (fd < 0)
		return 10;
	Fd q(fd);
	const bool prod = role == O_WRONLY;
	std::thread poller([&] {
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &s, nullptr);
		rep->poll_tid = gettid_();
		Fd ep(epoll_create1(EPOLL_CLOEXEC));
		struct epoll_event ev = {};
		ev.events = prod ? EPOLLOUT : EPOLLIN;
		epoll_ctl(ep.get(), EPOLL_CTL_ADD, q.get(), &ev);
		struct epoll_event out = {};
		int r = epoll_wait(ep.get(), &out, 1, 60000);
		rep->poll_result = 1000 + (r < 0 ? -errno : r == 0 ? 0 : int(out.events));
	});
	rep->wait_tid = gettid_();
	rep->ready = 1;
	// Producer: the ring is full (filled by the parent), so it waits for
	// all of it to be free. Consumer: the ring is empty.
	int r = raw_wait(q.get(), prod ? SHMQ_WAIT_WRITABLE : SHMQ_WAIT_READABLE, prod ? 4096 : 0,
			 deadline_in_ms(60000));
	rep->wait_result = 1000 + r;
	poller.join();
	return 0;
}

// Asleep in syscall @nr (thread @tid of @pid)?
bool asleep_in(pid_t pid, pid_t tid, long nr)
{
	if (task_state(pid, tid) != 'S')
		return false;
	std::string s;
	if (!read_file(strprintf("/proc/%d/task/%d/syscall", int(pid), int(tid)), &s))
		return false;
	return strtol(s.c_str(), nullptr, 10) == nr;
}

} // namespace

TEST_F(Race, WaitersProvenBlockedWokenByDestroyPeerExitAndSignal)
{
	const Usage base = read_usage();
	const int rounds = scaled(9, 3);
	const unsigned wake_ms = wake_bound_ms();
	Rng rng(test_seed());
	// Meanwhile a thread recycles other names as fast as it can.
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> churn{0};
	const std::string other = unique_name("race-churn");
	std::thread churner([&] {
		Fd ctl(control_open());
		while (!stop) {
			if (raw_create(ctl.get(), other, 4096) == 0) {
				Fd f(open_queue(other, O_RDONLY));
				raw_destroy(ctl.get(), other);
			}
			churn++;
		}
	});
	std::array<int, E_COUNT> seen{};
	for (int round = 0; round < rounds && !HasFailure(); round++) {
		const Event ev = Event(round % E_COUNT);
		SCOPED_TRACE(strprintf("round %d: %s", round, kEventName[ev]));
		// Two queues (their minors recycled by the churn): a producer
		// waiting for room on one, a consumer waiting for data on the
		// other; each queue's other side is held by a passive process.
		TestQueue wq, rq;
		ASSERT_NO_FATAL_FAILURE(wq.create(4096, "race-w"));
		ASSERT_NO_FATAL_FAILURE(rq.create(4096, "race-r"));
		{
			RawEnd fill;
			ASSERT_NO_FATAL_FAILURE(fill.open(wq.name(), O_WRONLY));
			fill.publish(1016);
			fill.publish(1016);
			fill.publish(1016);
			fill.publish(1016); // full
		}
		Pipe hold;
		auto passive = [&](const std::string &n, int role) {
			return Child::spawn([&, n, role] {
				int fd = open_queue(n, role);
				if (fd < 0)
					return 10;
				hold.recv(120000); // until told, or killed
				return 0;
			});
		};
		Child pc = passive(wq.name(), O_RDONLY); // consumer of the full ring
		Child pp = passive(rq.name(), O_WRONLY); // producer of the empty ring
		ASSERT_TRUE(eventually(10000, [&] {
			std::string a, b;
			read_file(sysfs_dir(wq.name()) + "/consumers", &a);
			read_file(sysfs_dir(rq.name()) + "/producers", &b);
			return trim(a) == "1" && trim(b) == "1";
		})) << "passive peers did not attach";
		Shared<WaiterReport> wr, rr;
		Child ww = Child::spawn([&] { return waiter_process(wq.name(), O_WRONLY, &*wr); });
		Child rw = Child::spawn([&] { return waiter_process(rq.name(), O_RDONLY, &*rr); });
		// Proven blocked: the WAIT thread asleep in ioctl, the poller in
		// epoll_wait, both still so and without a result 100 ms later.
		auto all_asleep = [&] {
			return wr->ready && rr->ready && asleep_in(ww.pid(), wr->wait_tid, SYS_ioctl) &&
			       asleep_in(rw.pid(), rr->wait_tid, SYS_ioctl) &&
			       asleep_in(ww.pid(), wr->poll_tid, SYS_epoll_wait) &&
			       asleep_in(rw.pid(), rr->poll_tid, SYS_epoll_wait);
		};
		ASSERT_TRUE(eventually(10000, all_asleep)) << "waiters never fell asleep";
		sleep_ms(100);
		ASSERT_TRUE(all_asleep()) << "a waiter woke up without an event";
		ASSERT_EQ(0, wr->wait_result.load() + rr->wait_result.load() + wr->poll_result.load() +
				     rr->poll_result.load());

		int want_wait = 0, want_poll = 0;
		switch (ev) {
		case E_DESTROY:
			ASSERT_EQ(0, wq.destroy());
			ASSERT_EQ(0, rq.destroy());
			want_wait = EIDRM;
			want_poll = EPOLLERR | EPOLLHUP;
			break;
		case E_PEER_EXIT:
			pc.kill_and_reap();
			pp.kill_and_reap();
			want_wait = EPIPE;
			want_poll = EPOLLHUP;
			break;
		case E_SIGNAL:
			kill(ww.pid(), SIGUSR1);
			kill(rw.pid(), SIGUSR1);
			want_wait = EINTR;
			break;
		default:
			break;
		}
		const uint64_t t0 = now_ns();
		ASSERT_TRUE(eventually(wake_ms, [&] { return wr->wait_result && rr->wait_result; }))
			<< "SHMQ_IOC_WAIT not woken by " << kEventName[ev];
		EXPECT_EQ(1000 + want_wait, wr->wait_result.load()) << "producer waiter: " << errname(wr->wait_result - 1000);
		EXPECT_EQ(1000 + want_wait, rr->wait_result.load()) << "consumer waiter: " << errname(rr->wait_result - 1000);
		if (ev == E_SIGNAL) {
			// The signal was not for the pollers: still asleep. Destroy
			// ends them.
			sleep_ms(50);
			EXPECT_TRUE(asleep_in(ww.pid(), wr->poll_tid, SYS_epoll_wait) &&
				    asleep_in(rw.pid(), rr->poll_tid, SYS_epoll_wait))
				<< "a poller woke up for a signal it blocked";
			ASSERT_EQ(0, wq.destroy());
			ASSERT_EQ(0, rq.destroy());
			want_poll = EPOLLERR | EPOLLHUP;
		}
		ASSERT_TRUE(eventually(wake_ms, [&] { return wr->poll_result && rr->poll_result; }))
			<< "epoll_wait not woken";
		EXPECT_EQ(1000 + want_poll, wr->poll_result.load() & ~int(EPOLLOUT)) << "producer poller";
		EXPECT_EQ(1000 + want_poll, rr->poll_result.load() & ~int(EPOLLIN)) << "consumer poller";
		EXPECT_LT(now_ns() - t0, ms_to_ns(2 * wake_ms));
		ASSERT_TRUE(ww.wait_exit(wake_ms));
		ASSERT_TRUE(rw.wait_exit(wake_ms));
		EXPECT_TRUE(ww.exited_with(0) && rw.exited_with(0)) << ww.describe() << ", " << rw.describe();
		hold.send();
		hold.send();
		pc.kill_and_reap();
		pp.kill_and_reap();
		seen[size_t(ev)]++;
	}
	stop = true;
	churner.join();
	destroy_queue_now(other);
	for (int e = 0; e < E_COUNT; e++)
		EXPECT_GT(seen[size_t(e)], 0) << kEventName[e] << " never tested";
	Usage now;
	EXPECT_TRUE(usage_back_to(base, &now)) << "leak: before " << base.describe() << ", after " << now.describe();
	printf("[   INFO   ] %d rounds while %llu create/open/destroy cycles ran on another name\n", rounds,
	       (unsigned long long)churn.load());
}
