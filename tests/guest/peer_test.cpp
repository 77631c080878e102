// SPDX-License-Identifier: MIT
// Peer*: attachment, departure and hang-up (design.md "Peers and hang-up"),
// end to end through libshmq with the peers in separate processes.
#include "shmq_test.hpp"

using namespace shmqt;

namespace {

constexpr unsigned kBlockMs = 150;
const unsigned kWakeMs = wake_bound_ms(); // "woken promptly", generously
const auto k10s = std::chrono::seconds(10);

class Peer : public testing::Test {
protected:
	void SetUp() override { SHMQT_REQUIRE_ROOT(); }
	void make(uint64_t cap = 64 * 1024) { ASSERT_NO_FATAL_FAILURE(q_.create(cap, "peer")); }
	TestQueue q_;
};

// Sends messages [first, first+count) of stream @stream, @size bytes each.
int send_seq(shmq::Producer &p, uint64_t first, uint64_t count, uint64_t stream = 0, size_t size = 64)
{
	std::vector<uint8_t> m(size);
	for (uint64_t s = first; s < first + count; s++) {
		make_msg(m.data(), m.size(), s, stream);
		auto r = p.send(as_bytes(m.data(), m.size()), shmq::Timeout::after(k10s));
		if (!r)
			return r.error().code();
	}
	return 0;
}

// Receives one message and checks it is @seq (0: ok, else an errno or -1).
int expect_seq(shmq::Consumer &c, uint64_t seq, std::string *why, uint64_t stream = 0)
{
	uint8_t buf[4096];
	auto r = c.receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(k10s));
	if (!r) {
		*why = "receive: " + err_str(r.error());
		return r.error().code();
	}
	MsgHdr h{};
	if (!check_msg(buf, *r, &h, why))
		return -1;
	if (h.seq != seq || h.stream != stream) {
		*why = strprintf("got seq %llu stream %llu, expected seq %llu stream %llu",
				 (unsigned long long)h.seq, (unsigned long long)h.stream,
				 (unsigned long long)seq, (unsigned long long)stream);
		return -1;
	}
	return 0;
}

} // namespace

TEST_F(Peer, ConsumerSeesEpipeOnlyAfterDrainingEverything)
{
	make();
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c) << err_str(c.error());
	const int n = 200;
	Child prod = Child::spawn([&] {
		auto p = shmq::Producer::open(q_.name());
		if (!p)
			return 10;
		return send_seq(*p, 0, n) ? 11 : 0;
	});
	ASSERT_TRUE(prod.wait_exit());
	ASSERT_TRUE(prod.exited_with(0)) << prod.describe();
	for (int i = 0; i < n; i++) {
		std::string why;
		ASSERT_EQ(0, expect_seq(*c, i, &why)) << "message " << i << ": " << why;
	}
	uint8_t buf[64];
	const uint64_t t0 = now_ns();
	auto r = c->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(k10s));
	ASSERT_FALSE(r);
	EXPECT_EQ(EPIPE, r.error().code()) << err_str(r.error());
	EXPECT_LT(now_ns() - t0, ms_to_ns(kWakeMs)) << "EPIPE must not wait for the deadline";
}

TEST_F(Peer, BlockedReceiveWokenWithEpipeWhenProducerDies)
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
	Async<int> w([&] {
		uint8_t buf[64];
		auto r = c->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(std::chrono::seconds(20)));
		return r ? 0 : r.error().code();
	});
	sleep_ms(kBlockMs);
	ASSERT_FALSE(w.done()) << errname(w.get());
	prod.kill_and_reap();
	ASSERT_TRUE(w.wait(kWakeMs)) << "receive not woken by the producer's death";
	EXPECT_EQ(EPIPE, w.get());
}

TEST_F(Peer, RawWaitEpipeAndIgnoreHup)
{
	make();
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	// No producer ever: plain timeout, not EPIPE.
	EXPECT_EQ(ETIMEDOUT, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(50)));
	{
		Fd p(open_queue(q_.name(), O_WRONLY));
		ASSERT_TRUE(p.ok());
		EXPECT_EQ(ETIMEDOUT, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(50)));
	}
	EXPECT_EQ(EPIPE, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(5000)));
	// IGNORE_HUP: keeps waiting until a new producer publishes.
	WaitThread w(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(20000), SHMQ_WAIT_IGNORE_HUP);
	ASSERT_TRUE(w.blocked_for(kBlockMs)) << "IGNORE_HUP wait returned " << (w.done() ? errname(w.result()) : "");
	Child s = Child::spawn([&] {
		auto p = shmq::Producer::open(q_.name());
		return p && send_seq(*p, 0, 1) == 0 ? 0 : 1;
	});
	ASSERT_TRUE(w.wait(kWakeMs));
	EXPECT_EQ(0, w.result());
	ASSERT_TRUE(s.wait_exit());
	EXPECT_TRUE(s.exited_with(0));
}

TEST_F(Peer, ProducerThatLeftBeforeConsumerOpenedIsNoHangup)
{
	make();
	{
		auto p = shmq::Producer::open(q_.name());
		ASSERT_TRUE(p);
		ASSERT_EQ(0, send_seq(*p, 0, 3));
	}
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c);
	for (int i = 0; i < 3; i++) {
		std::string why;
		ASSERT_EQ(0, expect_seq(*c, i, &why)) << why;
	}
	uint8_t buf[64];
	auto r = c->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(std::chrono::milliseconds(100)));
	ASSERT_FALSE(r);
	EXPECT_EQ(ETIMEDOUT, r.error().code()) << "producer left before this consumer came: " << err_str(r.error());
}

TEST_F(Peer, MessagesStayQueuedForTheNextConsumer)
{
	make();
	auto p = shmq::Producer::open(q_.name());
	ASSERT_TRUE(p);
	ASSERT_EQ(0, send_seq(*p, 0, 100));
	// Consumer 1 (another process) takes 37 and leaves.
	Child c1 = Child::spawn([&] {
		auto c = shmq::Consumer::open(q_.name());
		if (!c)
			return 10;
		for (int i = 0; i < 37; i++) {
			std::string why;
			if (expect_seq(*c, i, &why))
				return 11;
		}
		return 0;
	});
	ASSERT_TRUE(c1.wait_exit());
	ASSERT_TRUE(c1.exited_with(0)) << c1.describe();
	// The producer keeps sending meanwhile, without EPIPE (ring not full).
	ASSERT_EQ(0, send_seq(*p, 100, 50));
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c);
	for (int i = 37; i < 150; i++) {
		std::string why;
		ASSERT_EQ(0, expect_seq(*c, i, &why)) << "next consumer, message " << i << ": " << why;
	}
	uint8_t buf[64];
	auto r = c->try_receive(as_wbytes(buf, sizeof buf));
	ASSERT_FALSE(r);
	EXPECT_EQ(EAGAIN, r.error().code());
}

TEST_F(Peer, ConsumerKilledBetweenPeekAndReleaseRedelivers)
{
	make();
	auto p = shmq::Producer::open(q_.name());
	ASSERT_TRUE(p);
	ASSERT_EQ(0, send_seq(*p, 0, 10));
	Pipe peeked;
	Child c1 = Child::spawn([&] {
		auto c = shmq::Consumer::open(q_.name());
		if (!c)
			return 10;
		for (int i = 0; i < 4; i++) {
			std::string why;
			if (expect_seq(*c, i, &why))
				return 11;
		}
		auto m = c->peek(shmq::Timeout::after(k10s));
		if (!m)
			return 12;
		MsgHdr h{};
		std::string why;
		if (!check_msg(reinterpret_cast<const uint8_t *>(m->data().data()), m->size(), &h, &why) || h.seq != 4)
			return 13;
		// Peek again before release: the same message.
		auto m2 = c->try_peek();
		if (!m2 || m2->data().data() != m->data().data())
			return 14;
		peeked.send();
		pause();
		return 0;
	});
	ASSERT_EQ(1, peeked.recv(10000)) << "child failed: " << (c1.wait_exit(100) ? c1.describe() : "");
	c1.kill_and_reap();
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c) << err_str(c.error());
	for (int i = 4; i < 10; i++) {
		std::string why;
		ASSERT_EQ(0, expect_seq(*c, i, &why)) << "after the kill, message " << i << ": " << why;
	}
}

TEST_F(Peer, ProducerGetsEpipeWhenRingFullAndConsumerGone)
{
	make(4096);
	auto p = shmq::Producer::open(q_.name());
	ASSERT_TRUE(p);
	{
		auto c = shmq::Consumer::open(q_.name());
		ASSERT_TRUE(c);
	}
	// Not full: sends still succeed (the messages wait for a next consumer).
	std::vector<uint8_t> m(500, 9);
	int sent = 0;
	for (;;) {
		auto r = p->try_send(as_bytes(m.data(), m.size()));
		if (!r) {
			EXPECT_TRUE(r.error().code() == EAGAIN || r.error().code() == EPIPE) << err_str(r.error());
			break;
		}
		sent++;
	}
	EXPECT_EQ(8, sent); // 8 x 512 = 4096
	const uint64_t t0 = now_ns();
	auto r = p->send(as_bytes(m.data(), m.size()), shmq::Timeout::after(k10s));
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EPIPE, r.error().code()) << err_str(r.error());
	EXPECT_LT(now_ns() - t0, ms_to_ns(kWakeMs)) << "EPIPE must come at once, not at the deadline";
}

TEST_F(Peer, BlockedSendWokenWithEpipeWhenConsumerDies)
{
	make(4096);
	auto p = shmq::Producer::open(q_.name());
	ASSERT_TRUE(p);
	Pipe ready;
	Child cons = Child::spawn([&] {
		auto c = shmq::Consumer::open(q_.name());
		if (!c)
			return 10;
		ready.send();
		pause();
		return 0;
	});
	ASSERT_EQ(1, ready.recv(10000));
	std::vector<uint8_t> m(500, 9);
	while (p->try_send(as_bytes(m.data(), m.size())).has_value()) {
	}
	Async<int> w([&] {
		auto r = p->send(as_bytes(m.data(), m.size()), shmq::Timeout::after(std::chrono::seconds(20)));
		return r.has_value() ? 0 : r.error().code();
	});
	sleep_ms(kBlockMs);
	ASSERT_FALSE(w.done()) << errname(w.get());
	cons.kill_and_reap();
	ASSERT_TRUE(w.wait(kWakeMs)) << "blocked send not woken by the consumer's death";
	EXPECT_EQ(EPIPE, w.get());
}

TEST_F(Peer, StateBitsReflectAttachment)
{
	make();
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	EXPECT_EQ(uint32_t(SHMQ_STATE_PRODUCER), p.state());
	{
		Fd c(open_queue(q_.name(), O_RDONLY));
		ASSERT_TRUE(c.ok());
		EXPECT_EQ(uint32_t(SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER), p.state());
		// A refused second consumer changes nothing.
		EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_RDONLY));
		EXPECT_EQ(uint32_t(SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER), p.state());
	}
	EXPECT_EQ(uint32_t(SHMQ_STATE_PRODUCER), p.state());
	// A consumer in another process, killed.
	Pipe ready;
	Child c = Child::spawn([&] {
		int fd = open_queue(q_.name(), O_RDONLY);
		if (fd < 0)
			return 10;
		ready.send();
		pause();
		return 0;
	});
	ASSERT_EQ(1, ready.recv(10000));
	EXPECT_EQ(uint32_t(SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER), p.state());
	c.kill_and_reap();
	EXPECT_EQ(uint32_t(SHMQ_STATE_PRODUCER), p.state());
	// Seen from the consumer side.
	RawEnd cons;
	ASSERT_NO_FATAL_FAILURE(cons.open(q_.name(), O_RDONLY));
	p.close();
	EXPECT_EQ(uint32_t(SHMQ_STATE_CONSUMER), cons.state());
	ASSERT_EQ(0, q_.destroy());
	EXPECT_EQ(uint32_t(SHMQ_STATE_CONSUMER | SHMQ_STATE_DESTROYED), cons.state());
}

TEST_F(Peer, LibraryReceiveAfterDestroyDrainsThenEIDRM)
{
	make();
	auto p = shmq::Producer::open(q_.name());
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(p && c);
	ASSERT_EQ(0, send_seq(*p, 0, 5));
	ASSERT_EQ(0, q_.destroy());
	for (int i = 0; i < 5; i++) {
		std::string why;
		ASSERT_EQ(0, expect_seq(*c, i, &why)) << why;
	}
	uint8_t buf[64];
	auto r = c->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(k10s));
	ASSERT_FALSE(r);
	EXPECT_EQ(EIDRM, r.error().code()) << err_str(r.error());
}

TEST_F(Peer, ProducerReservationLostWithProducerIsNeverSeen)
{
	make();
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c);
	Pipe reserved;
	Child prod = Child::spawn([&] {
		auto p = shmq::Producer::open(q_.name());
		if (!p || send_seq(*p, 0, 3))
			return 10;
		// Reserved and filled, never committed.
		auto r = p->reserve(256, shmq::Timeout::after(k10s));
		if (!r)
			return 11;
		make_msg(reinterpret_cast<uint8_t *>(r->data().data()), 256, 3, 0);
		reserved.send();
		pause();
		return 0;
	});
	ASSERT_EQ(1, reserved.recv(10000));
	prod.kill_and_reap();
	for (int i = 0; i < 3; i++) {
		std::string why;
		ASSERT_EQ(0, expect_seq(*c, i, &why)) << why;
	}
	uint8_t buf[512];
	auto r = c->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(k10s));
	ASSERT_FALSE(r) << "an uncommitted reservation was delivered";
	EXPECT_EQ(EPIPE, r.error().code()) << err_str(r.error());
}

TEST_F(Peer, DeferredCommitsInvisibleUntilFlush)
{
	make();
	auto p = shmq::Producer::open(q_.name());
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(p && c);
	for (int i = 0; i < 5; i++) {
		auto r = p->reserve(100, shmq::Timeout::after(k10s));
		ASSERT_TRUE(r) << err_str(r.error());
		make_msg(reinterpret_cast<uint8_t *>(r->data().data()), 100, i, 0);
		ASSERT_TRUE(p->commit_deferred(std::move(*r)).has_value());
	}
	uint8_t buf[256];
	auto none = c->try_receive(as_wbytes(buf, sizeof buf));
	ASSERT_FALSE(none) << "deferred commit visible before flush";
	EXPECT_EQ(EAGAIN, none.error().code());
	EXPECT_EQ(0, poll_one(c->fd(), POLLIN, 0));
	p->flush();
	EXPECT_EQ(POLLIN, poll_one(c->fd(), POLLIN, 0) & POLLIN);
	for (int i = 0; i < 5; i++) {
		std::string why;
		ASSERT_EQ(0, expect_seq(*c, i, &why)) << why;
	}
}
