// SPDX-License-Identifier: MIT
// Poll*: poll/epoll on queue fds (docs/abi.md table), level- and
// edge-triggered, woken by libshmq peers in other processes.
#include "shmq_test.hpp"

#include <sys/epoll.h>

using namespace shmqt;

namespace {

constexpr unsigned kBlockMs = 150;
const unsigned kWakeMs = wake_bound_ms(); // "woken promptly", generously

class Poll : public testing::Test {
protected:
	void SetUp() override { SHMQT_REQUIRE_ROOT(); }
	void make(uint64_t cap = 64 * 1024) { ASSERT_NO_FATAL_FAILURE(q_.create(cap, "poll")); }
	TestQueue q_;
};

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
	// Events of one epoll_wait (0: none within @timeout_ms).
	uint32_t wait(int timeout_ms)
	{
		struct epoll_event ev = {};
		int n;
		do
			n = epoll_wait(ep_.get(), &ev, 1, timeout_ms);
		while (n < 0 && errno == EINTR);
		return n == 1 ? ev.events : 0;
	}
	int fd() const { return ep_.get(); }

private:
	Fd ep_;
};

std::string ev_str(uint32_t e)
{
	std::string s;
	struct {
		uint32_t bit;
		const char *name;
	} names[] = {{EPOLLIN, "IN"},	{EPOLLOUT, "OUT"},	   {EPOLLERR, "ERR"},	    {EPOLLHUP, "HUP"},
		     {EPOLLPRI, "PRI"}, {EPOLLRDNORM, "RDNORM"}, {EPOLLWRNORM, "WRNORM"}, {EPOLLRDHUP, "RDHUP"}};
	for (auto &n : names)
		if (e & n.bit)
			s += std::string(s.empty() ? "" : "|") + n.name;
	return s.empty() ? "0" : s;
}

// Child process sending @count messages of @n bytes with a library producer,
// then staying attached until @linger_ms passed (or exiting at once).
Child send_from_child(const std::string &name, int count = 1, size_t n = 16, unsigned linger_ms = 0)
{
	return Child::spawn([=] {
		auto p = shmq::Producer::open(name);
		if (!p)
			return 10;
		std::vector<uint8_t> m(n, 0x71);
		for (int i = 0; i < count; i++)
			if (!p->send(as_bytes(m.data(), m.size()), shmq::Timeout::after(std::chrono::seconds(10))))
				return 11;
		if (linger_ms)
			sleep_ms(linger_ms);
		return 0;
	});
}

int drain(shmq::Consumer &c)
{
	std::vector<uint8_t> buf(64 * 1024);
	int n = 0;
	for (;;) {
		auto r = c.try_receive(as_wbytes(buf.data(), buf.size()));
		if (!r)
			return r.error().code() == EAGAIN ? n : -r.error().code();
		n++;
	}
}

} // namespace

// --- consumer readiness ---------------------------------------------------------

TEST_F(Poll, ConsumerReadableOnlyAfterPublication)
{
	make();
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	EXPECT_EQ(0, poll_one(c.get(), POLLIN | POLLOUT, 0)) << "empty queue, no producer ever";
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	EXPECT_EQ(0, poll_one(c.get(), POLLIN | POLLOUT, 0)) << "producer attached, nothing sent";
	// Written but not yet published: still not readable.
	const uint64_t t = p.write_record(40, 1, p.tail());
	EXPECT_EQ(0, poll_one(c.get(), POLLIN, 0)) << "unpublished record reported";
	p.set_tail(t);
	EXPECT_EQ(POLLIN | POLLRDNORM, poll_one(c.get(), POLLIN | POLLRDNORM | POLLOUT, 0));
	// Consumed (head written through the consumer's own mapping): not
	// readable again.
	Fd r(ring_fd(c.get()));
	shmq_layout l;
	ASSERT_EQ(0, get_layout(c.get(), &l));
	Map head;
	ASSERT_EQ(0, map_region(r.get(), l.consumer, PROT_READ | PROT_WRITE, &head));
	store_release<uint64_t>(head.get(), l.head_off, t);
	EXPECT_EQ(0, poll_one(c.get(), POLLIN, 0));
}

TEST_F(Poll, EpollInWakesBlockedWaiterOnSendFromAnotherProcess)
{
	make();
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c) << err_str(c.error());
	Epoll ep;
	ASSERT_EQ(0, ep.add(c->fd(), EPOLLIN));
	EXPECT_EQ(0u, ep.wait(0));
	Async<uint32_t> w([&] { return ep.wait(20000); });
	sleep_ms(kBlockMs);
	ASSERT_FALSE(w.done()) << "epoll_wait returned " << ev_str(w.get()) << " on an empty queue";
	const uint64_t t0 = now_ns();
	Child s = send_from_child(q_.name(), 1, 16, 3000);
	ASSERT_TRUE(w.wait(kWakeMs)) << "epoll_wait not woken by the send";
	EXPECT_EQ(uint32_t(EPOLLIN), w.get() & (EPOLLIN | EPOLLOUT | EPOLLHUP | EPOLLERR)) << ev_str(w.get());
	EXPECT_LT(w.end_ns() - t0, ms_to_ns(kWakeMs));
	uint8_t buf[64];
	auto r = c->try_receive(as_wbytes(buf, sizeof buf));
	ASSERT_TRUE(r) << err_str(r.error());
	EXPECT_EQ(16u, *r);
}

TEST_F(Poll, ConsumerNeverWritableProducerNeverReadable)
{
	make();
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	p.publish(100);
	EXPECT_EQ(0, poll_one(c.fd(), POLLOUT | POLLWRNORM, 0) & (POLLOUT | POLLWRNORM));
	EXPECT_EQ(0, poll_one(p.fd(), POLLIN | POLLRDNORM, 0) & (POLLIN | POLLRDNORM));
}

// --- producer readiness -----------------------------------------------------------

TEST_F(Poll, ProducerWritableExactlyWhenHalfTheRingIsFree)
{
	make(4096);
	auto p = shmq::Producer::open(q_.name());
	ASSERT_TRUE(p) << err_str(p.error());
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c);
	EXPECT_EQ(POLLOUT | POLLWRNORM, poll_one(p->fd(), POLLOUT | POLLWRNORM | POLLIN, 0)) << "empty ring";
	uint8_t m[8] = {};
	// 8-byte payloads take 16 bytes each: 128 of them use exactly half.
	for (int i = 0; i < 128; i++)
		ASSERT_TRUE(p->try_send(as_bytes(m, sizeof m)).has_value()) << i;
	EXPECT_EQ(POLLOUT, poll_one(p->fd(), POLLOUT, 0)) << "2048 of 4096 free must be writable";
	ASSERT_TRUE(p->try_send(as_bytes(m, sizeof m)).has_value());
	EXPECT_EQ(0, poll_one(p->fd(), POLLOUT, 0)) << "2032 of 4096 free must not be writable";
	uint8_t buf[16];
	ASSERT_TRUE(c->try_receive(as_wbytes(buf, sizeof buf)));
	EXPECT_EQ(POLLOUT, poll_one(p->fd(), POLLOUT, 0)) << "back to 2048 free";
}

TEST_F(Poll, EpollOutWokenByReleaseCrossingHalf)
{
	make(4096);
	auto p = shmq::Producer::open(q_.name());
	ASSERT_TRUE(p) << err_str(p.error());
	std::vector<uint8_t> m(248, 1);
	while (p->try_send(as_bytes(m.data(), m.size())).has_value()) {
	}
	Pipe step, stepped;
	Child cons = Child::spawn([&] {
		auto c = shmq::Consumer::open(q_.name());
		if (!c)
			return 10;
		uint8_t buf[512];
		for (int n : {7, 1}) {
			if (step.recv(20000) < 0)
				return 11;
			for (int i = 0; i < n; i++)
				if (!c->try_receive(as_wbytes(buf, sizeof buf)))
					return 12;
			stepped.send();
		}
		step.recv(20000); // stay attached
		return 0;
	});
	Epoll ep;
	ASSERT_EQ(0, ep.add(p->fd(), EPOLLOUT));
	Async<uint32_t> w([&] { return ep.wait(20000); });
	sleep_ms(kBlockMs);
	ASSERT_FALSE(w.done()) << ev_str(w.get());
	step.send(); // 7 x 256 = 1792 free
	ASSERT_EQ(1, stepped.recv(10000));
	sleep_ms(kBlockMs);
	EXPECT_FALSE(w.done()) << "EPOLLOUT with 1792 of 4096 free: " << ev_str(w.done() ? w.get() : 0);
	const uint64_t t0 = now_ns();
	step.send(); // 2048 free
	ASSERT_EQ(1, stepped.recv(10000));
	ASSERT_TRUE(w.wait(kWakeMs)) << "release reaching half free did not wake epoll";
	EXPECT_EQ(uint32_t(EPOLLOUT), w.get() & (EPOLLOUT | EPOLLHUP | EPOLLERR)) << ev_str(w.get());
	EXPECT_LT(w.end_ns() - t0, ms_to_ns(kWakeMs));
	step.send();
	ASSERT_TRUE(cons.wait_exit());
	EXPECT_TRUE(cons.exited_with(0)) << cons.describe();
}

// --- hang-up -----------------------------------------------------------------------

TEST_F(Poll, NoHangupForPeerThatLeftBeforeOurOpen)
{
	make();
	{
		Fd p(open_queue(q_.name(), O_WRONLY));
		ASSERT_TRUE(p.ok());
	}
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	EXPECT_EQ(0, poll_one(c.get(), POLLIN, 0)) << "hang-up of a producer that left before our open";
	{
		Fd c2(open_queue(q_.name(), O_RDONLY)); // EBUSY: must not count as a visit
		EXPECT_EQ(-EBUSY, c2.get());
	}
	c.reset();
	Fd p(open_queue(q_.name(), O_WRONLY));
	ASSERT_TRUE(p.ok());
	EXPECT_EQ(0, poll_one(p.get(), POLLOUT, 0) & POLLHUP) << "hang-up of a consumer that left before our open";
}

TEST_F(Poll, ConsumerHangupAfterProducerDetaches)
{
	make();
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	EXPECT_EQ(0, poll_one(c.get(), POLLIN, 0)) << "no peer ever: no HUP";
	Fd p(open_queue(q_.name(), O_WRONLY));
	ASSERT_TRUE(p.ok());
	EXPECT_EQ(0, poll_one(c.get(), POLLIN, 0)) << "peer attached: no HUP";
	p.reset();
	EXPECT_EQ(POLLHUP, poll_one(c.get(), POLLIN, 0)) << "producer left";
	// A new producer clears the hang-up.
	Fd p2(open_queue(q_.name(), O_WRONLY));
	ASSERT_TRUE(p2.ok());
	EXPECT_EQ(0, poll_one(c.get(), POLLIN, 0)) << "HUP persists with a new producer attached";
	p2.reset();
	EXPECT_EQ(POLLHUP, poll_one(c.get(), POLLIN, 0));
}

TEST_F(Poll, HangupWithPendingMessageAlsoReadable)
{
	make();
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	Child s = send_from_child(q_.name(), 2);
	ASSERT_TRUE(s.wait_exit());
	ASSERT_TRUE(s.exited_with(0)) << s.describe();
	EXPECT_EQ(POLLIN | POLLHUP, poll_one(c.get(), POLLIN, 0));
}

TEST_F(Poll, ProducerHangupAfterConsumerDetaches)
{
	make();
	Fd p(open_queue(q_.name(), O_WRONLY));
	ASSERT_TRUE(p.ok());
	EXPECT_EQ(0, poll_one(p.get(), POLLOUT, 0) & POLLHUP) << "no consumer ever: no HUP";
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	EXPECT_EQ(0, poll_one(p.get(), POLLOUT, 0) & POLLHUP);
	c.reset();
	EXPECT_EQ(POLLHUP, poll_one(p.get(), POLLOUT, 0) & (POLLHUP | POLLERR));
	Fd c2(open_queue(q_.name(), O_RDONLY));
	EXPECT_EQ(0, poll_one(p.get(), POLLOUT, 0) & POLLHUP) << "HUP persists with a new consumer";
}

TEST_F(Poll, BlockedEpollWokenByPeerKilled)
{
	make();
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c);
	Pipe ready;
	Child prod = Child::spawn([&] {
		auto p = shmq::Producer::open(q_.name());
		if (!p)
			return 10;
		ready.send();
		pause();
		return 0;
	});
	ASSERT_EQ(1, ready.recv(10000));
	Epoll ep;
	ASSERT_EQ(0, ep.add(c->fd(), EPOLLIN));
	Async<uint32_t> w([&] { return ep.wait(20000); });
	sleep_ms(kBlockMs);
	ASSERT_FALSE(w.done()) << ev_str(w.get());
	prod.kill_and_reap();
	ASSERT_TRUE(w.wait(kWakeMs)) << "killing the producer did not wake epoll";
	EXPECT_EQ(uint32_t(EPOLLHUP), w.get() & (EPOLLIN | EPOLLHUP | EPOLLERR)) << ev_str(w.get());
}

// --- edge-triggered -------------------------------------------------------------------

TEST_F(Poll, EdgeTriggeredConsumerWokenAfterDrainToEAGAIN)
{
	make();
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c);
	Epoll ep;
	ASSERT_EQ(0, ep.add(c->fd(), EPOLLIN | EPOLLET));
	Pipe go, sent;
	const int rounds = scaled(40, 10);
	Child prod = Child::spawn([&] {
		auto p = shmq::Producer::open(q_.name());
		if (!p)
			return 10;
		uint8_t m[32] = {};
		for (int i = 0; i < rounds; i++) {
			if (go.recv(20000) < 0)
				return 11;
			for (int k = 0; k <= i % 3; k++)
				if (!p->send(as_bytes(m, sizeof m), shmq::Timeout::after(std::chrono::seconds(10))))
					return 12;
			sent.send();
		}
		go.recv(20000);
		return 0;
	});
	for (int i = 0; i < rounds; i++) {
		SCOPED_TRACE("round " + std::to_string(i));
		EXPECT_EQ(0u, ep.wait(0)) << "event with nothing new";
		go.send();
		uint32_t ev = ep.wait(kWakeMs);
		ASSERT_TRUE(ev & EPOLLIN) << "edge-triggered epoll not woken by a publication: " << ev_str(ev);
		ASSERT_EQ(1, sent.recv(10000));
		EXPECT_EQ(i % 3 + 1, drain(*c)) << "messages in round";
	}
	go.send();
	ASSERT_TRUE(prod.wait_exit());
	EXPECT_TRUE(prod.exited_with(0)) << prod.describe();
}

TEST_F(Poll, EdgeTriggeredProducerWokenWhenConsumerDrains)
{
	make(4096);
	auto p = shmq::Producer::open(q_.name());
	ASSERT_TRUE(p);
	Epoll ep;
	ASSERT_EQ(0, ep.add(p->fd(), EPOLLOUT | EPOLLET));
	EXPECT_TRUE(ep.wait(0) & EPOLLOUT) << "initial edge";
	const int rounds = scaled(30, 8);
	Pipe go;
	Child cons = Child::spawn([&] {
		auto c = shmq::Consumer::open(q_.name());
		if (!c)
			return 10;
		std::vector<uint8_t> buf(4096);
		for (int i = 0; i < rounds; i++) {
			if (go.recv(20000) < 0)
				return 11;
			for (;;) {
				auto r = c->try_receive(as_wbytes(buf.data(), buf.size()));
				if (!r) {
					if (r.error().code() != EAGAIN)
						return 12;
					break;
				}
			}
		}
		go.recv(20000);
		return 0;
	});
	std::vector<uint8_t> m(200, 2);
	for (int i = 0; i < rounds; i++) {
		SCOPED_TRACE("round " + std::to_string(i));
		int n = 0;
		while (p->try_send(as_bytes(m.data(), m.size())).has_value())
			n++;
		ASSERT_GT(n, 0);
		EXPECT_EQ(0u, ep.wait(0) & EPOLLOUT) << "EPOLLOUT on a full ring";
		go.send();
		uint32_t ev = ep.wait(kWakeMs);
		ASSERT_TRUE(ev & EPOLLOUT) << "edge-triggered EPOLLOUT not delivered after drain: " << ev_str(ev);
	}
	go.send();
	ASSERT_TRUE(cons.wait_exit());
	EXPECT_TRUE(cons.exited_with(0)) << cons.describe();
}

// --- destroy ----------------------------------------------------------------------------

TEST_F(Poll, ErrAndHupAfterDestroyForBothRoles)
{
	make();
	Fd p(open_queue(q_.name(), O_WRONLY));
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(p.ok() && c.ok());
	EXPECT_EQ(0, poll_one(c.get(), POLLIN, 0) & (POLLERR | POLLHUP));
	EXPECT_EQ(0, poll_one(p.get(), POLLOUT, 0) & (POLLERR | POLLHUP));
	ASSERT_EQ(0, q_.destroy());
	EXPECT_EQ(POLLERR | POLLHUP, poll_one(c.get(), POLLIN, 0) & (POLLERR | POLLHUP | POLLIN));
	EXPECT_EQ(POLLERR | POLLHUP, poll_one(p.get(), POLLOUT, 0) & (POLLERR | POLLHUP));
	Epoll ep;
	ASSERT_EQ(0, ep.add(c.get(), EPOLLIN));
	EXPECT_EQ(uint32_t(EPOLLERR | EPOLLHUP), ep.wait(0) & (EPOLLERR | EPOLLHUP | EPOLLIN));
}

TEST_F(Poll, BlockedEpollWokenByDestroy)
{
	make();
	Fd c(open_queue(q_.name(), O_RDONLY));
	Fd p(open_queue(q_.name(), O_WRONLY));
	ASSERT_TRUE(c.ok() && p.ok());
	Epoll ep;
	ASSERT_EQ(0, ep.add(c.get(), EPOLLIN));
	Async<uint32_t> w([&] { return ep.wait(20000); });
	sleep_ms(kBlockMs);
	ASSERT_FALSE(w.done()) << ev_str(w.get());
	ASSERT_EQ(0, q_.destroy());
	ASSERT_TRUE(w.wait(kWakeMs)) << "destroy did not wake epoll_wait";
	EXPECT_EQ(uint32_t(EPOLLERR | EPOLLHUP), w.get() & (EPOLLERR | EPOLLHUP)) << ev_str(w.get());
}

TEST_F(Poll, BlockedPollOnProducerWokenByDestroy)
{
	make(4096);
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	p.publish(2040);
	p.publish(8); // below half free
	Async<int> w([&] { return poll_one(p.fd(), POLLOUT, 20000); });
	sleep_ms(kBlockMs);
	ASSERT_FALSE(w.done());
	ASSERT_EQ(0, q_.destroy());
	ASSERT_TRUE(w.wait(kWakeMs));
	EXPECT_EQ(POLLERR | POLLHUP, w.get() & (POLLERR | POLLHUP));
}

// design.md: a registered poller is published in its side's wake word:
// POLLED while registered, POLL_ARMED while its last poll found the
// condition false. write_need is the sleepers' alone (pollers wait for
// capacity/2, which the library knows); with a sleeper it is its need.
TEST_F(Poll, RegisteredPollersArePublishedAsWaiters)
{
	make(4096);
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	EXPECT_EQ(0u, p.read_waiters());
	EXPECT_EQ(0u, c.write_waiters());
	Epoll ec, ep;
	ASSERT_EQ(0, ec.add(c.fd(), EPOLLIN | EPOLLET));
	// Empty ring: the registration's poll found nothing, so armed too.
	EXPECT_EQ(SHMQ_WAKE_POLLED | SHMQ_WAKE_POLL_ARMED, p.read_waiters())
		<< "consumer's epoll registration not published";
	ASSERT_EQ(0, ep.add(p.fd(), EPOLLOUT | EPOLLET));
	// Empty ring: writable at once, so registered but not armed.
	EXPECT_EQ(SHMQ_WAKE_POLLED, c.write_waiters()) << "producer's epoll registration not published";
	EXPECT_EQ(0u, c.write_need());
	// A sleeper sets SLEEPER and its need; when it leaves, both go.
	p.publish(2040);
	{
		WaitThread w(p.fd(), SHMQ_WAIT_WRITABLE, 3000, deadline_in_ms(20000));
		ASSERT_TRUE(w.blocked_for(50));
		EXPECT_EQ(3000u, c.write_need());
		EXPECT_TRUE(c.write_waiters() & SHMQ_WAKE_SLEEPER);
		c.set_head(p.tail());
		EXPECT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 0));
		ASSERT_TRUE(w.wait(kWakeMs));
		EXPECT_EQ(0, w.result());
	}
	EXPECT_EQ(0u, c.write_need()) << "write_need after the sleeper left";
	EXPECT_EQ(SHMQ_WAKE_POLLED, c.write_waiters() & ~SHMQ_WAKE_POLL_ARMED)
		<< "the poller is still registered";
	// The consumer's poller: a poll that finds the ring readable disarms it.
	p.publish(8);
	EXPECT_TRUE(ec.wait(kWakeMs) & EPOLLIN);
	EXPECT_EQ(SHMQ_WAKE_POLLED, p.read_waiters()) << "a poll that found data left it armed";
}
