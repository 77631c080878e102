// SPDX-License-Identifier: MIT
// The consumer of a lane queue on plain memory laid out as the kernel lays
// it out (docs/abi.md, "Lane queues"): the fairness rule message by message,
// FIFO per lane, batches, PAD records, a corrupt lane confined, lane events.
// The kernel's part (directory, senders, waits) is played by the test.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "shm_lanes.hpp"

using namespace shmq;
using shmq::test::ShmLanes;

namespace {

void send_text(Producer &p, const std::string &s)
{
	auto r = p.try_send(std::as_bytes(std::span(s.data(), s.size())));
	ASSERT_TRUE(r) << r.error().message();
}

std::string text(const Message &m)
{
	return std::string(reinterpret_cast<const char *>(m.data().data()), m.size());
}

// Receives until EAGAIN; returns "lane:text" of each message.
std::vector<std::string> drain(Consumer &c)
{
	std::vector<std::string> out;
	for (;;) {
		auto m = c.try_peek();
		if (!m) {
			EXPECT_EQ(m.error().code(), EAGAIN) << m.error().message();
			break;
		}
		out.push_back(std::to_string(m->lane()) + ":" + text(*m));
		EXPECT_TRUE(c.release());
	}
	return out;
}

Consumer consumer(ShmLanes &q)
{
	auto c = detail::plain_lane_consumer(q.plain());
	if (!c)
		throw std::runtime_error(c.error().message());
	return std::move(*c);
}

TEST(LaneScan, EmptyQueueIsEagain)
{
	ShmLanes q(4, 4096);
	Consumer c = consumer(q);
	EXPECT_TRUE(c.info().lanes);
	EXPECT_EQ(c.info().max_producers, 4u);
	auto m = c.try_peek();
	ASSERT_FALSE(m);
	EXPECT_EQ(m.error().code(), EAGAIN);
	auto r = c.release();
	ASSERT_FALSE(r);
	EXPECT_EQ(r.error().code(), EINVAL);
	auto rs = c.resync();
	ASSERT_FALSE(rs);
	EXPECT_EQ(rs.error().code(), EINVAL);
}

// The fairness rule: one message from each lane that has one, in lane
// order starting after the lane served last, before a second from any.
TEST(LaneScan, FloodingLaneGetsOneMessagePerRound)
{
	ShmLanes q(4, 65536);
	for (uint32_t j = 0; j < 4; j++)
		q.attach(j);
	Producer p0 = q.producer(0), p1 = q.producer(1), p3 = q.producer(3);
	for (int i = 0; i < 20; i++)
		send_text(p0, "f" + std::to_string(i));
	for (int i = 0; i < 3; i++)
		send_text(p1, "a" + std::to_string(i));
	for (int i = 0; i < 2; i++)
		send_text(p3, "b" + std::to_string(i));
	Consumer c = consumer(q);
	std::vector<std::string> want = {"0:f0", "1:a0", "3:b0", "0:f1", "1:a1", "3:b1", "0:f2", "1:a2"};
	for (int i = 3; i < 20; i++)
		want.push_back("0:f" + std::to_string(i));
	EXPECT_EQ(drain(c), want);
}

TEST(LaneScan, ScanStartsAfterTheLaneServedLast)
{
	ShmLanes q(4, 65536);
	for (uint32_t j = 0; j < 4; j++)
		q.attach(j);
	Producer p[4] = {q.producer(0), q.producer(1), q.producer(2), q.producer(3)};
	Consumer c = consumer(q);
	send_text(p[2], "x");
	auto m = c.try_receive(std::span<std::byte>());
	ASSERT_FALSE(m); // buffer too small: stays peeked
	EXPECT_EQ(m.error().code(), EMSGSIZE);
	EXPECT_TRUE(c.release());
	// Served lane 2 last: lane 3 comes before lane 1 and lane 0.
	send_text(p[0], "a");
	send_text(p[1], "b");
	send_text(p[3], "c");
	EXPECT_EQ(drain(c), (std::vector<std::string>{"3:c", "0:a", "1:b"}));
}

TEST(LaneScan, SecondPeekBeforeReleaseReturnsTheSameMessage)
{
	ShmLanes q(2, 4096);
	q.attach(0);
	q.attach(1);
	Producer p0 = q.producer(0), p1 = q.producer(1);
	send_text(p0, "a");
	send_text(p1, "b");
	Consumer c = consumer(q);
	auto m1 = c.try_peek();
	ASSERT_TRUE(m1);
	auto m2 = c.try_peek();
	ASSERT_TRUE(m2);
	EXPECT_EQ(text(*m1), text(*m2));
	EXPECT_EQ(m1->lane(), m2->lane());
	EXPECT_TRUE(c.release());
	auto m3 = c.try_peek();
	ASSERT_TRUE(m3);
	EXPECT_NE(m3->lane(), m1->lane());
}

TEST(LaneScan, BatchIsRoundsOfTheScanAndReleaseMovesEachHeadOnce)
{
	ShmLanes q(3, 65536);
	for (uint32_t j = 0; j < 3; j++)
		q.attach(j);
	Producer p0 = q.producer(0), p1 = q.producer(1), p2 = q.producer(2);
	for (int i = 0; i < 3; i++)
		send_text(p0, "a" + std::to_string(i));
	send_text(p1, "b0");
	for (int i = 0; i < 2; i++)
		send_text(p2, "c" + std::to_string(i));
	Consumer c = consumer(q);
	Message ms[8];
	auto n = c.try_peek_many(ms);
	ASSERT_TRUE(n) << n.error().message();
	ASSERT_EQ(*n, 6u);
	std::vector<std::string> got;
	for (size_t i = 0; i < *n; i++)
		got.push_back(std::to_string(ms[i].lane()) + ":" + text(ms[i]));
	EXPECT_EQ(got, (std::vector<std::string>{"0:a0", "1:b0", "2:c0", "0:a1", "2:c1", "0:a2"}));
	// Nothing moves before release.
	EXPECT_EQ(q.head(0), 0u);
	EXPECT_TRUE(c.release());
	for (uint32_t j = 0; j < 3; j++)
		EXPECT_EQ(q.head(j), q.tail(j)) << "lane " << j;
	EXPECT_EQ(drain(c), std::vector<std::string>{});
}

TEST(LaneScan, FifoPerLaneAcrossManyMessagesAndPads)
{
	ShmLanes q(8, 4096);
	for (uint32_t j = 0; j < 8; j++)
		q.attach(j);
	std::vector<Producer> ps;
	for (uint32_t j = 0; j < 8; j++)
		ps.push_back(q.producer(j));
	Consumer c = consumer(q);
	std::vector<uint32_t> next(8, 0);
	uint64_t received = 0;
	std::vector<uint32_t> sent(8, 0);
	// Takes one message and checks it is its lane's next; false when empty.
	auto take = [&]() {
		auto m = c.try_peek();
		if (!m) {
			EXPECT_EQ(m.error().code(), EAGAIN) << m.error().message();
			return false;
		}
		const std::string s = text(*m);
		const uint32_t j = m->lane();
		EXPECT_LT(j, 8u);
		EXPECT_EQ(std::stoul(s.substr(0, s.find(':'))), next[j]) << "lane " << j;
		next[j]++;
		received++;
		EXPECT_TRUE(c.release());
		return j < 8;
	};
	// Messages of varying sizes wrap every lane many times (PAD records).
	for (int round = 0; round < 2000; round++) {
		for (uint32_t j = 0; j < 8; j++) {
			std::string s = std::to_string(sent[j]) + ":" + std::string((sent[j] * 7 + j) % 300, 'x');
			if (ps[j].try_send(std::as_bytes(std::span(s.data(), s.size()))))
				sent[j]++;
		}
		for (int k = 0; k < 6 && take(); k++) {
		}
	}
	while (take()) {
	}
	uint64_t total = 0;
	for (uint32_t j = 0; j < 8; j++)
		total += sent[j];
	EXPECT_EQ(received, total);
	for (uint32_t j = 0; j < 8; j++)
		EXPECT_EQ(q.head(j), q.tail(j));
}

TEST(LaneScan, CorruptLaneIsReportedOnceAndTheOthersKeepFlowing)
{
	ShmLanes q(3, 4096);
	for (uint32_t j = 0; j < 3; j++)
		q.attach(j);
	Producer p0 = q.producer(0), p1 = q.producer(1), p2 = q.producer(2);
	send_text(p1, "bad");
	// Lane 1's producer scribbles its record header.
	detail::Ring r1 = q.ring(1);
	detail::store_relaxed(detail::header_at(r1, 0), detail::pack_header(7, 0xdead));
	for (int i = 0; i < 3; i++) {
		send_text(p0, "a" + std::to_string(i));
		send_text(p2, "c" + std::to_string(i));
	}
	Consumer c = consumer(q);
	std::vector<std::string> got;
	int corrupt = 0;
	for (;;) {
		auto m = c.try_peek();
		if (!m) {
			if (m.error().code() == EBADMSG) {
				EXPECT_EQ(m.error().lane(), 1);
				EXPECT_NE(m.error().message().find("[lane 1]"), std::string::npos);
				corrupt++;
				continue;
			}
			EXPECT_EQ(m.error().code(), EAGAIN);
			break;
		}
		got.push_back(std::to_string(m->lane()) + ":" + text(*m));
		ASSERT_TRUE(c.release());
	}
	EXPECT_EQ(corrupt, 1);
	EXPECT_EQ(got, (std::vector<std::string>{"0:a0", "2:c0", "0:a1", "2:c1", "0:a2", "2:c2"}));
	LaneEvent ev[8];
	const size_t n = c.events(ev);
	ASSERT_EQ(n, 4u); // three attached, one corrupt
	EXPECT_EQ(ev[3].kind, LaneEvent::Kind::corrupt);
	EXPECT_EQ(ev[3].lane, 1u);
	ASSERT_TRUE(c.drop_lane(1));
	ASSERT_EQ(c.events(ev), 1u);
	EXPECT_EQ(ev[0].kind, LaneEvent::Kind::dropped);
	auto again = c.drop_lane(1);
	ASSERT_FALSE(again);
	EXPECT_EQ(again.error().code(), ENOENT);
	auto out = c.drop_lane(3);
	ASSERT_FALSE(out);
	EXPECT_EQ(out.error().code(), EINVAL);
}

TEST(LaneScan, EndIsReportedOnceAfterTheLastMessage)
{
	ShmLanes q(2, 4096);
	q.attach(0);
	q.attach(1);
	Producer p0 = q.producer(0);
	send_text(p0, "x");
	send_text(p0, "y");
	p0.close();
	q.set_state(0, SHMQ_LANE_DRAINING);
	Consumer c = consumer(q);
	LaneEvent ev[8];
	EXPECT_EQ(c.events(ev), 2u); // attached x2
	EXPECT_EQ(drain(c), (std::vector<std::string>{"0:x", "0:y"}));
	ASSERT_EQ(c.events(ev), 1u);
	EXPECT_EQ(ev[0].kind, LaneEvent::Kind::ended);
	EXPECT_EQ(ev[0].lane, 0u);
	EXPECT_EQ(drain(c), std::vector<std::string>{});
	EXPECT_EQ(c.events(ev), 0u);
	// The kernel frees it and a new producer gets it: a new generation.
	q.set_state(0, SHMQ_LANE_FREE);
	q.attach(0);
	Producer p0b = q.producer(0);
	send_text(p0b, "z");
	auto m = c.try_peek();
	ASSERT_TRUE(m);
	EXPECT_EQ(text(*m), "z");
	EXPECT_EQ(m->generation(), 2u);
	ASSERT_EQ(c.events(ev), 1u);
	EXPECT_EQ(ev[0].kind, LaneEvent::Kind::attached);
	EXPECT_EQ(ev[0].generation, 2u);
}

TEST(LaneScan, EventsAreBoundedAndCountWhatWasLost)
{
	ShmLanes q(1, 4096);
	Consumer c = consumer(q);
	// 4 x 1 + 16 = 20 events kept: 30 attaches and ends.
	for (int i = 0; i < 15; i++) {
		q.attach(0);
		(void)c.try_peek();
		q.set_state(0, SHMQ_LANE_FREE);
		(void)c.try_peek();
	}
	LaneEvent ev[64];
	EXPECT_EQ(c.events(ev), 20u);
	EXPECT_EQ(c.events_lost(), 10u);
	EXPECT_EQ(ev[19].kind, LaneEvent::Kind::ended);
}

TEST(LaneScan, BlockingReceiveWakesOnANewLane)
{
	ShmLanes q(2, 4096);
	Consumer c = consumer(q);
	std::thread t([&] {
		usleep(20000);
		q.attach(1);
		Producer p = q.producer(1);
		send_text(p, "late");
	});
	auto m = c.peek(Timeout::after(std::chrono::seconds(20)));
	t.join();
	ASSERT_TRUE(m) << m.error().message();
	EXPECT_EQ(text(*m), "late");
	EXPECT_EQ(m->lane(), 1u);
}

// A hostile producer rewinds its tail to our head while we hold a peek and
// leaves; the kernel frees the lane (tail == head) and a new producer gets
// it. Our release must not store the old peek's end into the new holder's
// head (found by review), whether or not we looked at the lanes between.
void release_after_reuse(bool sync_between)
{
	ShmLanes q(2, 4096);
	q.attach(0);
	Consumer c = consumer(q);
	{
		Producer p1 = q.producer(0);
		send_text(p1, std::string(40, 'a'));
		auto m = c.try_peek();
		ASSERT_TRUE(m);
		EXPECT_EQ(m->generation(), 1u);
		*reinterpret_cast<uint64_t *>(q.lane(0)) = q.head(0);
	}
	q.set_state(0, SHMQ_LANE_FREE);
	if (sync_between) {
		LaneEvent ev[8];
		(void)c.events(ev);
	}
	q.attach(0); // generation 2, tail = our head (0)
	Producer p2 = q.producer(0);
	send_text(p2, "bb");
	ASSERT_TRUE(c.release());
	EXPECT_EQ(q.head(0), 0u) << "release wrote the old peek's end into the new holder's head";
	auto m = c.try_peek();
	ASSERT_TRUE(m) << m.error().message();
	EXPECT_EQ(text(*m), "bb");
	EXPECT_EQ(m->generation(), 2u);
}

TEST(LaneScan, ReleaseAfterTheLaneWasReusedLeavesTheNewHoldersHead)
{
	release_after_reuse(true);
}

TEST(LaneScan, ReleaseAfterTheLaneWasReusedUnseenLeavesTheNewHoldersHead)
{
	release_after_reuse(false);
}

// drop_lane names the lane's current holder, even one that attached after
// the consumer last looked.
TEST(LaneScan, DropLaneOfALaneAttachedSinceTheLastLook)
{
	ShmLanes q(2, 4096);
	Consumer c = consumer(q);
	EXPECT_FALSE(c.try_peek());
	q.attach(1);
	auto r = c.drop_lane(1);
	EXPECT_TRUE(r) << r.error().message();
}

// Directory churn (producers opening and closing elsewhere) does not starve
// a lane that has messages: every call makes progress.
TEST(LaneScan, DirectoryChurnDoesNotStarveTheScan)
{
	ShmLanes q(4, 65536);
	q.attach(0);
	Producer p = q.producer(0);
	for (int i = 0; i < 200; i++)
		send_text(p, "m" + std::to_string(i));
	Consumer c = consumer(q);
	std::atomic<bool> stop{false};
	std::thread churn([&] {
		while (!stop.load(std::memory_order_relaxed))
			detail::store_release(q.dir_gen(), *q.dir_gen() + 1);
	});
	int got = 0;
	for (int calls = 0; calls < 2000 && got < 200; calls++) {
		Message ms[8];
		auto n = c.try_peek_many(ms);
		if (!n)
			continue;
		for (size_t k = 0; k < *n; k++)
			EXPECT_EQ(text(ms[k]), "m" + std::to_string(got + int(k)));
		got += int(*n);
		ASSERT_TRUE(c.release());
	}
	stop = true;
	churn.join();
	EXPECT_EQ(200, got);
}

} // namespace
