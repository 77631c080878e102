// SPDX-License-Identifier: MIT
// The inline fast paths of Producer::reserve/send/commit and
// Consumer::peek/receive/release (include/shmq/shmq.hpp) work on windows
// (the producer's write end, the consumer's read end) computed from the
// last counters the slow paths read: they must accept only what the ring core
// (include/shmq/ring.hpp) accepts and hand everything else to the slow
// paths (lib/producer.cpp, lib/consumer.cpp), which give the precise answer.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "shm_ring.hpp"

using namespace shmq;
using shmq::test::ShmRing;

namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

// Two 8-byte messages at 0 and 16, peeked (tail cached at 32) and the
// first released: the next peek uses the cached tail without reloading it.
struct CachedTail {
	ShmRing s{4096};
	Consumer c;
	CachedTail()
	{
		s.set_header(0, 8, SHMQ_REC_MSG);
		s.set_header(16, 8, SHMQ_REC_MSG);
		s.set_counters(32, 0);
		c = s.consumer();
		EXPECT_TRUE(c.try_peek().has_value());
		EXPECT_TRUE(c.release().has_value());
		EXPECT_EQ(s.head(), 16u);
	}
};

} // namespace

// Every kind of corrupt header behind a cached tail is EBADMSG, through
// both peek and receive, and the message is delivered once it is repaired.
TEST(FastPath, CorruptHeaderBehindACachedTailIsEBADMSG)
{
	const struct {
		uint32_t len, type;
	} bad[] = {
		{8, 7},			  // unknown type
		{0xffffffff, SHMQ_REC_MSG}, // longer than max_message
		{24, SHMQ_REC_MSG},	  // record beyond the tail (avail 16)
		{8, SHMQ_REC_PAD},	  // PAD not reaching the ring end
	};
	for (const auto &b : bad) {
		CachedTail t;
		t.s.set_header(16, b.len, b.type);
		EXPECT_EQ(t.c.try_peek().error().code(), EBADMSG) << b.len << " " << b.type;
		EXPECT_EQ(t.c.peek(Timeout::none()).error().code(), EBADMSG);
		std::byte buf[64];
		EXPECT_EQ(t.c.try_receive(buf).error().code(), EBADMSG);
		EXPECT_EQ(t.c.release().error().code(), EINVAL);
		EXPECT_EQ(t.s.head(), 16u);
		t.s.set_header(16, 8, SHMQ_REC_MSG);
		auto n = t.c.try_receive(buf);
		ASSERT_TRUE(n.has_value()) << n.error().message();
		EXPECT_EQ(*n, 8u);
		EXPECT_EQ(t.s.head(), 32u);
	}
}

// A record ending exactly at the ring end needs no PAD; one byte more does.
TEST(FastPath, RecordThatFitsToTheRingEndHasNoPad)
{
	ShmRing s(4096);
	s.set_counters(4096 - 64, 4096 - 64);
	auto p = s.producer();
	auto c = s.consumer();
	const std::string fits(56, 'a'); // 8 + 56 = 64: up to the end
	ASSERT_TRUE(p.try_send(bytes(fits)).has_value());
	EXPECT_EQ(s.header(4096 - 64).type, SHMQ_REC_MSG);
	EXPECT_EQ(s.tail(), 4096u);
	std::byte buf[128];
	ASSERT_EQ(c.try_receive(buf).value(), 56u);

	s.set_counters(2 * 4096 - 64, 2 * 4096 - 64);
	auto p2 = s.producer();
	auto c2 = s.consumer();
	const std::string over(57, 'b'); // needs 72 bytes: PAD, then offset 0
	ASSERT_TRUE(p2.try_send(bytes(over)).has_value());
	EXPECT_EQ(s.header(4096 - 64).type, SHMQ_REC_PAD);
	EXPECT_EQ(s.header(0).type, SHMQ_REC_MSG);
	EXPECT_EQ(s.tail(), 2 * 4096u + 72);
	ASSERT_EQ(c2.try_receive(buf).value(), 57u);
	EXPECT_EQ(std::memcmp(buf, over.data(), 57), 0);
}

// The producer relies on its cached head only while it shows room; once it
// does not, the shared head is read and validated: a consumer that moved
// head ahead of tail makes the next reservation EBADMSG, not a write over
// unread data.
TEST(FastPath, ReserveRereadsAndValidatesHeadWhenTheCacheShowsNoRoom)
{
	ShmRing s(4096);
	auto p = s.producer();
	const std::string msg(1000, 'x'); // 1008-byte records: 4 fill 4032
	for (int i = 0; i < 4; ++i)
		ASSERT_TRUE(p.try_send(bytes(msg)).has_value());
	s.set_counters(s.tail(), s.tail() + 8); // hostile: head ahead of tail
	EXPECT_EQ(p.try_send(bytes(msg)).error().code(), EBADMSG);
	EXPECT_EQ(p.try_reserve(1000).error().code(), EBADMSG);
	s.set_counters(s.tail(), s.tail()); // everything consumed
	EXPECT_TRUE(p.try_send(bytes(msg)).has_value());
}

// With the cached head showing room the shared head is not read at all,
// and a reservation still refuses a second one and oversize messages.
TEST(FastPath, ReserveChecksStayOnTheFastPath)
{
	ShmRing s(4096);
	auto p = s.producer();
	EXPECT_EQ(p.try_reserve(s.info.max_message + 1).error().code(), EMSGSIZE);
	auto r = p.try_reserve(8);
	ASSERT_TRUE(r.has_value());
	EXPECT_EQ(p.try_reserve(8).error().code(), EBUSY);
	EXPECT_EQ(p.try_send(bytes("x")).error().code(), EBUSY);
	ASSERT_TRUE(p.commit(std::move(*r)).has_value());
	EXPECT_EQ(s.tail(), 16u);
	Producer closed;
	EXPECT_EQ(closed.try_reserve(8).error().code(), EBADF);
	EXPECT_EQ(closed.try_send(bytes("x")).error().code(), EBADF);
	Consumer cclosed;
	EXPECT_EQ(cclosed.try_peek().error().code(), EBADF);
}

// Closed and moved-from objects fail every fast-path call with EBADF (the
// fast paths test no "open" flag of their own: a closed object's zero limit,
// zero geometry and ended peek send them to the slow path).
TEST(FastPath, ClosedAndMovedFromObjectsTakeTheSlowPath)
{
	ShmRing s(4096);
	s.set_header(0, 8, SHMQ_REC_MSG);
	s.set_counters(16, 0);
	auto p = s.producer();
	auto c = s.consumer();
	ASSERT_TRUE(c.try_peek().has_value()); // the tail is cached now
	Producer p2(std::move(p));
	Consumer c2(std::move(c));
	std::byte buf[16];
	EXPECT_EQ(p.try_send(bytes("x")).error().code(), EBADF);
	EXPECT_EQ(p.send(bytes("x"), Timeout::none()).error().code(), EBADF);
	EXPECT_EQ(p.reserve(0).error().code(), EBADF);
	EXPECT_EQ(c.try_peek().error().code(), EBADF);
	EXPECT_EQ(c.release().error().code(), EBADF);
	EXPECT_EQ(c.receive(buf, Timeout::none()).error().code(), EBADF);
	// The moved-to objects carry on, peek included.
	ASSERT_TRUE(c2.release().has_value());
	EXPECT_EQ(s.head(), 16u);
	c2.close();
	EXPECT_EQ(c2.try_receive(buf).error().code(), EBADF);
	auto r = p2.try_reserve(0);
	ASSERT_TRUE(r.has_value());
	p2.close();
	EXPECT_EQ(p2.commit(std::move(*r)).error().code(), EBADF);
	EXPECT_EQ(p2.try_send(bytes("")).error().code(), EBADF);
	p2.flush(); // nothing to do, and nothing touched
	EXPECT_EQ(s.tail(), 16u);
}

// try_send answering EAGAIN arms the write side (an epoll of the producer's
// fd is then woken when room appears) and leaves the write end at the tail
// ("no room"), so that the next successful send takes the slow path, which
// disarms. Its second look reloads the head; had the write end followed it, a
// smaller message that fits by it succeeded inline and the arm stayed set, costing
// the consumer a wake call on every release for a producer that waits for
// nothing.
TEST(FastPath, ASmallSendAfterEAGAINDisarmsTheWriteSide)
{
	ShmRing s(4096);
	auto p = s.producer();
	const std::vector<std::byte> big(1000), biggest(1016), small(8);
	for (int i = 0; i < 4; ++i) // 4 x 1008 bytes: 64 left
		ASSERT_TRUE(p.try_send(big).has_value()) << i;
	auto r = p.try_send(biggest);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(r.error().code(), EAGAIN);
	EXPECT_EQ(s.write_armed(), 1u);
	ASSERT_TRUE(p.try_send(small).has_value()); // 16 of the 64 bytes
	EXPECT_EQ(s.write_armed(), 0u) << "a send that succeeded left the write side armed";
}

// The producer's inline path writes only below its write end: the room it
// saw at its last look at the shared head, and never past the end of the
// ring in this lap. With the shared head turned to garbage after that look
// (ahead of every tail this test reaches),
// sends up to exactly that end succeed without reading it, and the next one
// goes to the slow path, which reads and refuses the garbage (EBADMSG).
// A write end past the ring end would let a record cross it, past the
// mapping.
TEST(FastPath, TheProducerWritesInlineUpToItsLastLookAndTheRingEndOnly)
{
	const std::vector<std::byte> msg(1000), small(8); // 1008- and 16-byte records
	{ // bounded by the ring end: head 1600 leaves room past it
		ShmRing s(4096);
		s.set_counters(1600, 1600);
		auto p = s.producer();
		ASSERT_TRUE(p.try_send(small).has_value()); // the slow path looks
		s.set_counters(s.tail(), 4096 + 8);	    // hostile: ahead of tail
		for (uint64_t t = 1616; t < 4096; t += 16)
			ASSERT_TRUE(p.try_send(small).has_value()) << t;
		EXPECT_EQ(s.tail(), 4096u);
		EXPECT_EQ(p.try_send(small).error().code(), EBADMSG);
		EXPECT_EQ(s.tail(), 4096u);
	}
	{ // bounded by the head it saw: 4032 after a wrap
		ShmRing s(4096);
		auto p = s.producer();
		auto c = s.consumer();
		std::byte buf[1024];
		for (int i = 0; i < 4; ++i)
			ASSERT_TRUE(p.try_send(msg).has_value());
		for (int i = 0; i < 4; ++i)
			ASSERT_EQ(c.try_receive(buf).value(), 1000u);
		ASSERT_TRUE(p.try_send(msg).has_value()); // PAD at 4032, then 0
		EXPECT_EQ(s.header(4032).type, SHMQ_REC_PAD);
		EXPECT_EQ(s.tail(), 4096u + 1008);
		s.set_counters(s.tail(), 8128 + 8); // hostile: ahead of tail
		for (int i = 0; i < 3; ++i) // 5104 + 3 x 1008 = 8128 = 4032 + 4096
			ASSERT_TRUE(p.try_send(msg).has_value()) << i;
		EXPECT_EQ(s.tail(), 8128u);
		EXPECT_EQ(p.try_send(small).error().code(), EBADMSG);
		EXPECT_EQ(s.tail(), 8128u);
	}
}

// The consumer's inline path reads only below its read end: records the
// tail it last loaded covered, and never past the ring end, even when that
// tail is a lap ahead. A hostile header just before the ring end claiming a
// record that crosses it is EBADMSG, not a read past the mapping; a window
// ending at the ring end makes the record after the wrap reload the tail.
TEST(FastPath, TheConsumerReadsInlineUpToTheRingEndOnly)
{
	{
		ShmRing s(4096);
		s.set_header(4080, 16, SHMQ_REC_MSG); // 24-byte record, 16 bytes left
		s.set_counters(4096 + 64, 4080);
		auto c = s.consumer();
		std::byte buf[64];
		EXPECT_EQ(c.try_peek().error().code(), EBADMSG);
		EXPECT_EQ(c.try_receive(buf).error().code(), EBADMSG);
		EXPECT_EQ(s.head(), 4080u);
	}
	{
		ShmRing s(4096);
		s.set_header(3968, 56, SHMQ_REC_MSG);
		s.set_header(4032, 56, SHMQ_REC_MSG);
		s.set_header(0, 8, SHMQ_REC_MSG);
		s.set_counters(4096 + 16, 3968);
		auto c = s.consumer();
		std::byte buf[64];
		ASSERT_EQ(c.try_receive(buf).value(), 56u); // loads the tail
		s.set_counters(3968 - 8, s.head());	     // hostile tail, behind head
		ASSERT_EQ(c.try_receive(buf).value(), 56u); // still in the window
		EXPECT_EQ(s.head(), 4096u);
		EXPECT_EQ(c.try_receive(buf).error().code(), EBADMSG);
		s.set_counters(4096 + 16, 4096);
		ASSERT_EQ(c.try_receive(buf).value(), 8u);
		EXPECT_EQ(s.head(), 4096u + 16);
	}
}

// A reservation that needs a PAD lies in the next lap, and the write end
// the slow path computes for it ends in that lap too. Aborted (or dropped
// uncommitted), it leaves tail_ before the ring's end: the next send there
// must go slow and pad again, not write a record across the ring's end
// (into the guard page after the data area).
TEST(FastPath, AnAbortedReservationAfterAPadLeavesNoWindowAcrossTheRingEnd)
{
	const std::vector<std::byte> msg(1000), big(200, std::byte{0x5a}); // 1008- and 208-byte records
	std::byte buf[2048];
	for (int how = 0; how < 3; ++how) {
		ShmRing s(8192);
		auto p = s.producer();
		auto c = s.consumer();
		for (int i = 0; i < 8; ++i) {
			ASSERT_TRUE(p.try_send(msg).has_value());
			ASSERT_EQ(c.try_receive(buf).value(), 1000u);
		}
		ASSERT_EQ(s.tail(), 8064u); // 128 bytes to the ring's end
		{
			auto r = p.try_reserve(big.size()); // PAD at 8064, record at 8192
			ASSERT_TRUE(r.has_value());
			EXPECT_EQ(s.header(8064).type, SHMQ_REC_PAD);
			if (how == 0)
				p.abort(std::move(*r));
			else if (how == 1)
				*r = Reservation(); // assigned over: aborted
			// how == 2: destroyed uncommitted at the end of the scope
		}
		EXPECT_EQ(s.tail(), 8064u) << how;
		s.set_header(8064, 0, 0); // what the PAD was: gone, to see it written again
		ASSERT_TRUE(p.try_send(big).has_value()) << how;
		EXPECT_EQ(s.header(8064).type, SHMQ_REC_PAD) << how;
		EXPECT_EQ(s.tail(), 8192u + 208) << how;
		ASSERT_EQ(c.try_receive(buf).value(), 200u) << how;
		EXPECT_EQ(0, std::memcmp(buf, big.data(), big.size())) << how;
	}
}

// peek_many past the read end reloads the shared tail and checks it
// against its own position: a hostile tail a capacity past that position
// passed, and the batch wrapped onto its own first record (the release
// then moved head by more than the capacity). Found by review.
TEST(FastPath, APeekManyBatchNeverSpansMoreThanOneRingOfTheHead)
{
	ShmRing s(4096);
	for (uint64_t off = 0; off < 4032; off += 1008)
		s.set_header(off, 1000, SHMQ_REC_MSG);
	s.set_header(4032, 56, SHMQ_REC_PAD);
	s.set_counters(4032, 0);
	auto c = s.consumer();
	ASSERT_TRUE(c.try_peek().has_value()); // read end 4032
	s.set_counters(4032 + 4096, 0);	      // hostile: tail - head > capacity
	std::vector<Message> out(8);
	auto n = c.try_peek_many(out);
	ASSERT_TRUE(n.has_value()) << n.error().message();
	EXPECT_EQ(4u, *n) << "the four messages before the PAD, then the batch ends";
	for (size_t i = 1; i < *n; ++i)
		EXPECT_NE(out[i].data().data(), out[0].data().data()) << "message " << i << " aliases message 0";
	ASSERT_TRUE(c.release().has_value());
	EXPECT_LE(s.head(), 4096u) << "one release moved head by more than the capacity";
	// From head 4032 that tail is a full ring (consistent): the next peek
	// starts the next lap, never hands out a record twice in one lap.
	auto next = c.try_peek();
	if (next.has_value()) {
		EXPECT_EQ(4096u, next->position());
	}
}

// Aborting a reservation that needed no PAD keeps the producer's window:
// only a PAD reservation's write end lies in the next lap. (With the head
// made garbage after the window was taken, a send that went to the slow
// path would fail with EBADMSG.)
TEST(FastPath, AnAbortedReservationWithoutAPadKeepsTheWriteEnd)
{
	ShmRing s(4096);
	auto p = s.producer();
	std::vector<std::byte> small(8);
	ASSERT_TRUE(p.try_send(small).has_value()); // slow: takes the window
	s.set_counters(s.tail(), 4096 + 8);	    // head garbage from now on
	ASSERT_TRUE(p.try_send(small).has_value()); // inline
	{
		auto r = p.try_reserve(8); // inline
		ASSERT_TRUE(r.has_value());
		p.abort(std::move(*r));
	}
	{
		auto r = p.try_reserve(8);
		ASSERT_TRUE(r.has_value()); // dropped: aborts too
	}
	auto e = p.try_send(small);
	EXPECT_TRUE(e.has_value()) << "after abort: " << (e ? "" : e.error().message());
}
