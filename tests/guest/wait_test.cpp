// SPDX-License-Identifier: MIT
// Wait*: SHMQ_IOC_WAIT and SHMQ_IOC_WAKE (raw ABI), woken by libshmq peers
// running in other processes.
#include "shmq_test.hpp"

using namespace shmqt;

namespace {

constexpr uint64_t kCap = 64 * 1024;
constexpr unsigned kBlockMs = 150;  // "proven blocked" for longer than 100 ms
const unsigned kWakeMs = wake_bound_ms(); // "woken promptly", generously

class Wait : public testing::Test {
protected:
	void SetUp() override { SHMQT_REQUIRE_ROOT(); }
	void make(uint64_t cap = kCap) { ASSERT_NO_FATAL_FAILURE(q_.create(cap, "wait")); }
	TestQueue q_;
};

// Child: open a library producer on @name and send one @n-byte message.
Child send_from_child(const std::string &name, size_t n = 32)
{
	return Child::spawn([name, n] {
		auto p = shmq::Producer::open(name);
		if (!p)
			return 10;
		std::vector<uint8_t> m(n, 0x61);
		auto r = p->send(as_bytes(m.data(), m.size()), shmq::Timeout::after(std::chrono::seconds(10)));
		return r.has_value() ? 0 : 20 + r.error().code() % 200;
	});
}

int g_signals = 0;
void on_signal(int) { g_signals++; }

struct SigGuard {
	struct sigaction old;
	explicit SigGuard(int flags)
	{
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sa.sa_flags = flags;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, &old);
		g_signals = 0;
	}
	~SigGuard() { sigaction(SIGUSR1, &old, nullptr); }
};

} // namespace

// --- deadlines --------------------------------------------------------------

TEST_F(Wait, ReadableTimesOutAtAbsoluteDeadline)
{
	make();
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	const uint64_t deadline = deadline_in_ms(200);
	EXPECT_EQ(ETIMEDOUT, raw_wait(c.get(), SHMQ_WAIT_READABLE, 0, deadline));
	const uint64_t now = now_ns();
	EXPECT_GE(now, deadline) << "returned " << ns_to_ms(deadline - now) << " ms early";
	EXPECT_LT(now, deadline + ms_to_ns(kWakeMs)) << "returned " << ns_to_ms(now - deadline) << " ms late";
}

TEST_F(Wait, WritableTimesOutAtAbsoluteDeadline)
{
	make(4096);
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	p.publish(4096 / 2 - 8); // half the ring used
	const uint64_t deadline = deadline_in_ms(200);
	EXPECT_EQ(ETIMEDOUT, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 4096, deadline));
	const uint64_t now = now_ns();
	EXPECT_GE(now, deadline);
	EXPECT_LT(now, deadline + ms_to_ns(kWakeMs));
}

TEST_F(Wait, DeadlineInThePastReturnsAtOnce)
{
	make();
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	for (uint64_t dl : {uint64_t(0), uint64_t(1), now_ns() - ms_to_ns(1), now_ns()}) {
		const uint64_t t0 = now_ns();
		EXPECT_EQ(ETIMEDOUT, raw_wait(c.get(), SHMQ_WAIT_READABLE, 0, dl)) << "deadline " << dl;
		EXPECT_LT(now_ns() - t0, ms_to_ns(kWakeMs));
	}
}

TEST_F(Wait, ConditionAlreadyTrueReturnsZero)
{
	make(4096);
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	// Empty ring: the whole capacity is writable, nothing readable.
	EXPECT_EQ(0, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 4096, 0));
	EXPECT_EQ(0, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 1, 0));
	EXPECT_EQ(ETIMEDOUT, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, 0));
	p.publish(100); // 112 bytes
	EXPECT_EQ(0, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, 0));
	EXPECT_EQ(0, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, UINT64_MAX)) << "infinite deadline, true condition";
	EXPECT_EQ(0, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 4096 - 112, 0)) << "exactly the free bytes";
	EXPECT_EQ(ETIMEDOUT, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 4096 - 111, 0)) << "one byte more than free";
	c.set_head(112);
	EXPECT_EQ(ETIMEDOUT, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, 0));
	EXPECT_EQ(0, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 4096, 0));
}

// --- blocking and waking -----------------------------------------------------

TEST_F(Wait, ReaderBlockedThenWokenBySendFromAnotherProcess)
{
	make();
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	EXPECT_EQ(0u, c.read_waiters());
	WaitThread w(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(20000));
	ASSERT_TRUE(w.blocked_for(kBlockMs)) << "waiter returned " << (w.done() ? errname(w.result()) : "?")
					     << " instead of sleeping";
	EXPECT_NE(0u, c.read_waiters()) << "kernel did not publish read_waiters for a sleeper";
	const uint64_t t0 = now_ns();
	Child s = send_from_child(q_.name());
	ASSERT_TRUE(w.wait(kWakeMs)) << "not woken within " << kWakeMs << " ms of the send";
	EXPECT_EQ(0, w.result());
	EXPECT_LT(w.end_ns() - t0, ms_to_ns(kWakeMs));
	ASSERT_TRUE(s.wait_exit());
	EXPECT_TRUE(s.exited_with(0)) << s.describe();
	EXPECT_NE(c.tail(), c.head());
	EXPECT_TRUE(eventually(1000, [&] { return c.read_waiters() == 0; }))
		<< "read_waiters stays " << c.read_waiters() << " after the sleeper left";
}

TEST_F(Wait, ReaderWithInfiniteDeadlineWoken)
{
	make();
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	WaitThread w(c.fd(), SHMQ_WAIT_READABLE, 0, UINT64_MAX);
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	Child s = send_from_child(q_.name());
	bool woken = w.wait(kWakeMs);
	if (!woken)
		q_.destroy(); // unblock it (EIDRM) so the test can end
	EXPECT_TRUE(woken) << "infinite wait not woken by a send";
	EXPECT_EQ(0, w.result());
}

TEST_F(Wait, WakeWithoutProgressDoesNotEndTheWait)
{
	make();
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	Fd p(open_queue(q_.name(), O_WRONLY));
	ASSERT_TRUE(p.ok());
	// Long enough for both "still blocked" checks on a slow kernel.
	const unsigned deadline_ms = scaled(3000u, 8000u);
	const uint64_t deadline = deadline_in_ms(deadline_ms);
	WaitThread w(c.fd(), SHMQ_WAIT_READABLE, 0, deadline);
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	for (int i = 0; i < 5; i++)
		EXPECT_EQ(0, xioctl_val(p.get(), SHMQ_IOC_WAKE, 0));
	EXPECT_TRUE(w.blocked_for(kBlockMs)) << "a WAKE with an empty ring ended the wait";
	ASSERT_LT(now_ns(), deadline) << "the checks above took longer than the deadline";
	ASSERT_TRUE(w.wait(kWakeMs + deadline_ms));
	EXPECT_EQ(ETIMEDOUT, w.result());
	EXPECT_GE(w.end_ns(), deadline);
}

TEST_F(Wait, TwoReadersOnOneFdBothWoken)
{
	make();
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	WaitThread w1(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(20000));
	WaitThread w2(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(20000));
	ASSERT_TRUE(w1.blocked_for(kBlockMs));
	ASSERT_TRUE(w2.blocked_for(0));
	Child s = send_from_child(q_.name());
	EXPECT_TRUE(w1.wait(kWakeMs));
	EXPECT_TRUE(w2.wait(kWakeMs));
	EXPECT_EQ(0, w1.result());
	EXPECT_EQ(0, w2.result());
}

TEST_F(Wait, WriterOnFullRingWokenWhenConsumerReleasesEnough)
{
	make(4096);
	// 16 records of 256 bytes fill the 4096-byte ring exactly.
	auto prod = shmq::Producer::open(q_.name());
	ASSERT_TRUE(prod) << err_str(prod.error());
	std::vector<uint8_t> m(248, 0x33);
	int sent = 0;
	while (prod->try_send(as_bytes(m.data(), m.size())).has_value())
		sent++;
	ASSERT_EQ(16, sent);
	Pipe step, stepped;
	Child cons = Child::spawn([&] {
		auto c = shmq::Consumer::open(q_.name());
		if (!c)
			return 10;
		std::vector<uint8_t> buf(4096);
		for (int round = 0; round < 2; round++) {
			if (step.recv(20000) < 0)
				return 11;
			int n = round == 0 ? 3 : 1;
			for (int i = 0; i < n; i++) {
				auto r = c->try_receive(as_wbytes(buf.data(), buf.size()));
				if (!r || *r != 248)
					return 12;
			}
			stepped.send();
		}
		return 0;
	});
	WaitThread w(prod->fd(), SHMQ_WAIT_WRITABLE, 1024, deadline_in_ms(20000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	// 3 releases free 768 bytes: not enough.
	step.send();
	ASSERT_EQ(1, stepped.recv(10000));
	EXPECT_TRUE(w.blocked_for(kBlockMs)) << "woken with 768 of 1024 bytes free";
	// The 4th crosses 1024.
	const uint64_t t0 = now_ns();
	step.send();
	ASSERT_EQ(1, stepped.recv(10000));
	ASSERT_TRUE(w.wait(kWakeMs)) << "not woken after the release that made 1024 bytes free";
	EXPECT_EQ(0, w.result());
	EXPECT_LT(w.end_ns() - t0, ms_to_ns(kWakeMs));
	ASSERT_TRUE(cons.wait_exit());
	EXPECT_TRUE(cons.exited_with(0)) << cons.describe();
}

TEST_F(Wait, WriterNeedIsPublishedInStatusPage)
{
	make(4096);
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	p.publish(2040); // 2048 of 4096 bytes free
	EXPECT_EQ(0u, p.write_waiters());
	WaitThread w(p.fd(), SHMQ_WAIT_WRITABLE, 3000, deadline_in_ms(20000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	EXPECT_NE(0u, p.write_waiters());
	EXPECT_EQ(3000u, p.write_need()) << "write_need in the status page";
	c.set_head(p.tail());
	EXPECT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 0));
	ASSERT_TRUE(w.wait(kWakeMs));
	EXPECT_EQ(0, w.result());
	EXPECT_TRUE(eventually(1000, [&] { return p.write_waiters() == 0; }));
}

TEST_F(Wait, WaiterInStoppedAndContinuedProcessKeepsWaiting)
{
	make();
	Pipe ready;
	Child waiter = Child::spawn([&] {
		int fd = open_queue(q_.name(), O_RDONLY);
		if (fd < 0)
			return 10;
		ready.send();
		int r = raw_wait(fd, SHMQ_WAIT_READABLE, 0, deadline_in_ms(20000));
		return r == 0 ? 0 : 20 + r % 200;
	});
	ASSERT_EQ(1, ready.recv(10000));
	ASSERT_TRUE(eventually(10000, [&] { return task_state(waiter.pid()) == 'S'; }));
	sleep_ms(kBlockMs);
	ASSERT_EQ('S', task_state(waiter.pid()));
	kill(waiter.pid(), SIGSTOP);
	ASSERT_TRUE(eventually(2000, [&] { return task_state(waiter.pid()) == 'T'; }));
	kill(waiter.pid(), SIGCONT);
	sleep_ms(kBlockMs);
	ASSERT_FALSE(waiter.wait_exit(0)) << "wait ended by SIGSTOP/SIGCONT: " << waiter.describe();
	Child s = send_from_child(q_.name());
	ASSERT_TRUE(waiter.wait_exit(kWakeMs));
	EXPECT_TRUE(waiter.exited_with(0)) << waiter.describe();
}

// --- signals ---------------------------------------------------------------------

TEST_F(Wait, SignalWithoutSaRestartGivesEINTR)
{
	make();
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	SigGuard g(0);
	WaitThread w(c.get(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(20000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	const uint64_t t0 = now_ns();
	pthread_kill(w.native(), SIGUSR1);
	ASSERT_TRUE(w.wait(kWakeMs)) << "signal did not interrupt the wait";
	EXPECT_EQ(EINTR, w.result());
	EXPECT_LT(w.end_ns() - t0, ms_to_ns(kWakeMs));
	EXPECT_EQ(1, g_signals);
}

TEST_F(Wait, SignalWithSaRestartRestartsAndKeepsDeadline)
{
	make();
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	SigGuard g(SA_RESTART);
	// Long enough that both "still blocked" checks end well before it, even
	// on the KASAN kernel with 2 vCPUs on a loaded host (900 ms was not).
	const unsigned deadline_ms = scaled(3000u, 8000u);
	const uint64_t deadline = deadline_in_ms(deadline_ms);
	WaitThread w(c.get(), SHMQ_WAIT_READABLE, 0, deadline);
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	pthread_kill(w.native(), SIGUSR1);
	EXPECT_TRUE(w.blocked_for(kBlockMs)) << "returned " << (w.done() ? errname(w.result()) : "")
					     << " after a SA_RESTART signal";
	ASSERT_LT(now_ns(), deadline) << "the checks above took longer than the deadline";
	pthread_kill(w.native(), SIGUSR1);
	ASSERT_TRUE(w.wait(deadline_ms + kWakeMs));
	EXPECT_EQ(ETIMEDOUT, w.result());
	EXPECT_GE(w.end_ns(), deadline) << "restart shortened the deadline";
	EXPECT_LT(w.end_ns(), deadline + ms_to_ns(kWakeMs)) << "restart extended the deadline";
	EXPECT_EQ(2, g_signals);
}

TEST_F(Wait, SignalWithSaRestartThenMessageReturnsZero)
{
	make();
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	SigGuard g(SA_RESTART);
	WaitThread w(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(20000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	pthread_kill(w.native(), SIGUSR1);
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	Child s = send_from_child(q_.name());
	ASSERT_TRUE(w.wait(kWakeMs));
	EXPECT_EQ(0, w.result());
	EXPECT_EQ(1, g_signals);
}

// --- argument checking -------------------------------------------------------------

TEST_F(Wait, ConditionNotAllowedForRoleEINVAL)
{
	make();
	Fd p(open_queue(q_.name(), O_WRONLY));
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(p.ok() && c.ok());
	EXPECT_EQ(EINVAL, raw_wait(p.get(), SHMQ_WAIT_READABLE, 0, 0)) << "producer waiting READABLE";
	EXPECT_EQ(EINVAL, raw_wait(c.get(), SHMQ_WAIT_WRITABLE, 1, 0)) << "consumer waiting WRITABLE";
	EXPECT_EQ(EINVAL, raw_wait(c.get(), SHMQ_WAIT_WRITABLE, 1, deadline_in_ms(5000)));
}

TEST_F(Wait, UnknownConditionEINVAL)
{
	make();
	Fd p(open_queue(q_.name(), O_WRONLY));
	Fd c(open_queue(q_.name(), O_RDONLY));
	for (uint32_t cond : {0u, 3u, 4u, 0x80000000u, ~0u}) {
		EXPECT_EQ(EINVAL, raw_wait(p.get(), cond, 1, 0)) << "producer cond " << cond;
		EXPECT_EQ(EINVAL, raw_wait(c.get(), cond, 0, 0)) << "consumer cond " << cond;
	}
}

TEST_F(Wait, UnknownFlagsEINVAL)
{
	make();
	Fd c(open_queue(q_.name(), O_RDONLY));
	Fd p(open_queue(q_.name(), O_WRONLY));
	for (int bit = 0; bit < 32; bit++) {
		uint32_t f = 1u << bit;
		if (f & SHMQ_WAIT_FLAGS_ALL)
			continue;
		EXPECT_EQ(EINVAL, raw_wait(c.get(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(5000), f)) << "bit " << bit;
		EXPECT_EQ(EINVAL, raw_wait(p.get(), SHMQ_WAIT_WRITABLE, 1, 0, f)) << "bit " << bit;
	}
	// The defined flag is accepted.
	EXPECT_EQ(ETIMEDOUT, raw_wait(c.get(), SHMQ_WAIT_READABLE, 0, 0, SHMQ_WAIT_IGNORE_HUP));
	EXPECT_EQ(0, raw_wait(p.get(), SHMQ_WAIT_WRITABLE, 1, 0, SHMQ_WAIT_IGNORE_HUP));
}

TEST_F(Wait, ReservedWordsEINVAL)
{
	make();
	Fd c(open_queue(q_.name(), O_RDONLY));
	for (int i = 0; i < 2; i++) {
		shmq_wait_args w;
		memset(&w, 0, sizeof w);
		w.cond = SHMQ_WAIT_READABLE;
		w.timeout_ns = deadline_in_ms(5000);
		w.reserved[i] = 1;
		EXPECT_EQ(EINVAL, xioctl(c.get(), SHMQ_IOC_WAIT, &w)) << "reserved[" << i << "]";
	}
}

TEST_F(Wait, MinBytesRulesEINVAL)
{
	make(4096);
	Fd c(open_queue(q_.name(), O_RDONLY));
	Fd p(open_queue(q_.name(), O_WRONLY));
	EXPECT_EQ(EINVAL, raw_wait(c.get(), SHMQ_WAIT_READABLE, 1, deadline_in_ms(5000))) << "READABLE min_bytes 1";
	EXPECT_EQ(EINVAL, raw_wait(c.get(), SHMQ_WAIT_READABLE, ~uint64_t(0), 0));
	EXPECT_EQ(EINVAL, raw_wait(p.get(), SHMQ_WAIT_WRITABLE, 0, 0)) << "WRITABLE min_bytes 0";
	EXPECT_EQ(EINVAL, raw_wait(p.get(), SHMQ_WAIT_WRITABLE, 4097, 0)) << "WRITABLE min_bytes > capacity";
	EXPECT_EQ(EINVAL, raw_wait(p.get(), SHMQ_WAIT_WRITABLE, ~uint64_t(0), 0));
	EXPECT_EQ(EINVAL, raw_wait(p.get(), SHMQ_WAIT_WRITABLE, uint64_t(1) << 32 | 1, 0));
	EXPECT_EQ(0, raw_wait(p.get(), SHMQ_WAIT_WRITABLE, 4096, 0)) << "min_bytes == capacity is valid";
}

TEST_F(Wait, BadPointerEFAULT)
{
	make();
	Fd c(open_queue(q_.name(), O_RDONLY));
	EXPECT_EQ(EFAULT, xioctl(c.get(), SHMQ_IOC_WAIT, nullptr));
	EXPECT_EQ(EFAULT, xioctl(c.get(), SHMQ_IOC_WAIT, reinterpret_cast<void *>(64)));
}

// --- destroy ----------------------------------------------------------------------

TEST_F(Wait, WaitAfterDestroyEIDRM)
{
	make(4096);
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	p.publish(2040);
	p.publish(2040); // full
	c.set_head(p.tail());
	p.publish(2040);
	p.publish(2000); // 2048 + 2008 = 4056 used, 40 free
	ASSERT_EQ(0, q_.destroy());
	const uint64_t t0 = now_ns();
	// Conditions false: EIDRM at once, not at the deadline.
	EXPECT_EQ(EIDRM, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 1024, deadline_in_ms(10000)));
	c.set_head(p.tail());
	EXPECT_EQ(EIDRM, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(10000)));
	EXPECT_LT(now_ns() - t0, ms_to_ns(kWakeMs));
	// Conditions true: 0.
	EXPECT_EQ(0, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 1024, deadline_in_ms(10000)));
	p.publish(8);
	EXPECT_EQ(0, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(10000)));
	EXPECT_EQ(SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER | SHMQ_STATE_DESTROYED, c.state());
}

TEST_F(Wait, ReaderWokenByDestroyWithEIDRM)
{
	make();
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	WaitThread w(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(20000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	const uint64_t t0 = now_ns();
	ASSERT_EQ(0, q_.destroy());
	ASSERT_TRUE(w.wait(kWakeMs)) << "destroy did not wake the reader";
	EXPECT_EQ(EIDRM, w.result());
	EXPECT_LT(w.end_ns() - t0, ms_to_ns(kWakeMs));
}

TEST_F(Wait, WriterWokenByDestroyWithEIDRM)
{
	make(4096);
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	p.publish(2040);
	WaitThread w(p.fd(), SHMQ_WAIT_WRITABLE, 4096, deadline_in_ms(20000));
	ASSERT_TRUE(w.blocked_for(kBlockMs));
	ASSERT_EQ(0, q_.destroy());
	ASSERT_TRUE(w.wait(kWakeMs)) << "destroy did not wake the writer";
	EXPECT_EQ(EIDRM, w.result());
}

TEST_F(Wait, IgnoreHupDoesNotHideDestroy)
{
	make();
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	ASSERT_EQ(0, q_.destroy());
	EXPECT_EQ(EIDRM, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(5000), SHMQ_WAIT_IGNORE_HUP))
		<< "IGNORE_HUP must not hide a destroyed queue";
}

// --- library level -------------------------------------------------------------------

TEST_F(Wait, LibraryReceiveTimesOut)
{
	make();
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c) << err_str(c.error());
	uint8_t buf[64];
	const uint64_t t0 = now_ns();
	auto r = c->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(std::chrono::milliseconds(200)));
	ASSERT_FALSE(r);
	EXPECT_EQ(ETIMEDOUT, r.error().code()) << err_str(r.error());
	EXPECT_GE(now_ns() - t0, ms_to_ns(200));
	EXPECT_LT(now_ns() - t0, ms_to_ns(200 + kWakeMs));
}

TEST_F(Wait, LibrarySendTimesOutOnFullRing)
{
	make(4096);
	auto p = shmq::Producer::open(q_.name());
	ASSERT_TRUE(p) << err_str(p.error());
	auto c = shmq::Consumer::open(q_.name()); // attached, never reads
	ASSERT_TRUE(c);
	std::vector<uint8_t> m(1000, 1);
	while (p->try_send(as_bytes(m.data(), m.size())).has_value()) {
	}
	const uint64_t t0 = now_ns();
	auto r = p->send(as_bytes(m.data(), m.size()), shmq::Timeout::after(std::chrono::milliseconds(200)));
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(ETIMEDOUT, r.error().code()) << err_str(r.error());
	EXPECT_GE(now_ns() - t0, ms_to_ns(200));
}

// Many short sleeps racing with publications: no wake-up may be lost.
TEST_F(Wait, NoLostWakeupReaderRace)
{
	make();
	const int iters = scaled(400, 100);
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	Pipe go;
	Shared<std::atomic<int>> sent;
	Child prod = Child::spawn([&] {
		auto p = shmq::Producer::open(q_.name());
		if (!p)
			return 10;
		Rng rng(getpid());
		uint8_t m[64] = {};
		for (int i = 0; i < iters; i++) {
			if (go.recv(20000) < 0)
				return 11;
			// Publish at a random moment around the reader's wait.
			for (uint64_t spin = rng.range(0, 20000); spin; spin--)
				asm volatile("" ::: "memory");
			if (!p->send(as_bytes(m, sizeof m), shmq::Timeout::after(std::chrono::seconds(10))))
				return 12;
			sent->fetch_add(1);
		}
		return 0;
	});
	int lost = 0;
	for (int i = 0; i < iters && !lost; i++) {
		go.send();
		int r = raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(5000));
		if (r != 0) {
			ADD_FAILURE() << "iteration " << i << ": " << errname(r) << " (sent " << sent->load() << ")";
			lost++;
			break;
		}
		// Consume everything published so far.
		c.set_head(c.tail());
	}
	ASSERT_TRUE(prod.wait_exit(20000));
	EXPECT_TRUE(prod.exited_with(0)) << prod.describe();
	EXPECT_EQ(0, lost);
}

TEST_F(Wait, NoLostWakeupWriterRace)
{
	make(4096);
	const int iters = scaled(300, 80);
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	Pipe go;
	Child cons = Child::spawn([&] {
		auto c = shmq::Consumer::open(q_.name());
		if (!c)
			return 10;
		Rng rng(getpid());
		std::vector<uint8_t> buf(4096);
		for (int i = 0; i < iters; i++) {
			if (go.recv(20000) < 0)
				return 11;
			for (uint64_t spin = rng.range(0, 20000); spin; spin--)
				asm volatile("" ::: "memory");
			// Release the four messages that fill the ring.
			for (int k = 0; k < 4; k++)
				if (!c->receive(as_wbytes(buf.data(), buf.size()), shmq::Timeout::after(std::chrono::seconds(10))))
					return 12;
		}
		return 0;
	});
	for (int i = 0; i < iters; i++) {
		// Fill the ring: 4 records of 1024 bytes (max_message is 1016).
		uint64_t t = p.tail();
		for (int k = 0; k < 4; k++)
			t = p.write_record(1016, uint8_t(i), t);
		p.set_tail(t);
		go.send();
		int r = raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 4096, deadline_in_ms(5000));
		if (r != 0) {
			ADD_FAILURE() << "iteration " << i << ": " << errname(r);
			break;
		}
	}
	ASSERT_TRUE(cons.wait_exit(20000));
	EXPECT_TRUE(cons.exited_with(0)) << cons.describe();
}
