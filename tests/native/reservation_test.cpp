// SPDX-License-Identifier: MIT
// Reservation is move-only RAII: dropping one uncommitted aborts it, so an
// early return between reserve and commit cannot wedge the producer, and it
// stays linked to its Producer through moves of either side.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <type_traits>
#include <utility>

#include "shm_ring.hpp"

using namespace shmq;
using shmq::test::ShmRing;

namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

// Reserves, then "fails" before committing: the early return that used to
// leave every later reserve/send failing with EBUSY.
Result<void> fill_or_give_up(Producer &p, bool give_up)
{
	auto r = p.reserve(8);
	if (!r)
		return unexpected(r.error());
	if (give_up)
		return unexpected(Error(EIO, "gave up before commit"));
	std::memcpy(r->data().data(), "complete", 8);
	return p.commit(std::move(*r));
}

std::string receive(Consumer &c)
{
	std::byte buf[64];
	auto n = c.try_receive(buf);
	if (!n)
		return "<" + std::to_string(n.error().code()) + ">";
	return std::string(reinterpret_cast<const char *>(buf), *n);
}

} // namespace

static_assert(!std::is_copy_constructible_v<Reservation> && !std::is_copy_assignable_v<Reservation>);
static_assert(std::is_nothrow_move_constructible_v<Reservation> &&
	      std::is_nothrow_move_assignable_v<Reservation>);

TEST(Reservation, EarlyReturnDropsTheReservationAndTheNextReserveSucceeds)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	EXPECT_EQ(fill_or_give_up(p, true).error().code(), EIO);
	auto next = p.try_reserve(8);
	ASSERT_TRUE(next.has_value()) << next.error().message();
	next = unexpected(Error(EIO, "dropped by assignment"));
	EXPECT_TRUE(p.try_send(bytes("sent")).has_value());
	EXPECT_TRUE(fill_or_give_up(p, false).has_value());
	// Aborted reservations publish nothing.
	EXPECT_EQ(receive(c), "sent");
	EXPECT_EQ(receive(c), "complete");
	EXPECT_EQ(receive(c), "<" + std::to_string(EAGAIN) + ">");
}

TEST(Reservation, CommitConsumesItAndASecondCommitIsEINVAL)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto r = p.try_reserve(8);
	ASSERT_TRUE(r.has_value());
	EXPECT_TRUE(r->valid());
	ASSERT_TRUE(p.commit(std::move(*r)).has_value());
	EXPECT_FALSE(r->valid());
	EXPECT_EQ(r->size(), 0u);
	EXPECT_EQ(p.commit(std::move(*r)).error().code(), EINVAL);
	EXPECT_EQ(p.commit(Reservation()).error().code(), EINVAL);
	EXPECT_EQ(s.tail(), 16u);
}

TEST(Reservation, MovedReservationStaysTheOutstandingOne)
{
	ShmRing s(4096);
	auto p = s.producer();
	auto c = s.consumer();
	auto r = p.try_reserve(5);
	ASSERT_TRUE(r.has_value());
	Reservation a = std::move(*r);
	EXPECT_FALSE(r->valid());
	Reservation b;
	b = std::move(a);
	EXPECT_FALSE(a.valid());
	ASSERT_TRUE(b.valid());
	std::memcpy(b.data().data(), "moved", 5);
	EXPECT_EQ(p.try_reserve(1).error().code(), EBUSY); // still outstanding
	// The moved-from objects are not the reservation.
	EXPECT_EQ(p.commit(std::move(a)).error().code(), EINVAL);
	EXPECT_EQ(p.commit(std::move(*r)).error().code(), EINVAL);
	ASSERT_TRUE(p.commit(std::move(b)).has_value());
	EXPECT_EQ(receive(c), "moved");

	// A Result<Reservation> moves with it too.
	auto r1 = p.try_reserve(3);
	ASSERT_TRUE(r1.has_value());
	std::optional<Result<Reservation>> holder(std::move(r1));
	std::memcpy((*holder)->data().data(), "opt", 3);
	ASSERT_TRUE(p.commit(std::move(**holder)).has_value());
	EXPECT_EQ(receive(c), "opt");

	// Move-assigning over an outstanding reservation aborts that one.
	auto r2 = p.try_reserve(4);
	ASSERT_TRUE(r2.has_value());
	Reservation other = std::move(*r2);
	other = Reservation();
	EXPECT_TRUE(p.try_reserve(4).has_value()) << "the overwritten reservation was not aborted";
}

TEST(Reservation, MovedProducerKeepsItsReservation)
{
	ShmRing s(4096);
	auto c = s.consumer();
	auto p1 = s.producer();
	auto r = p1.try_reserve(6);
	ASSERT_TRUE(r.has_value());
	std::memcpy(r->data().data(), "travel", 6);
	Producer p2(std::move(p1));
	Producer p3;
	p3 = std::move(p2);
	EXPECT_EQ(p1.commit(std::move(*r)).error().code(), EBADF); // closed by the move
	EXPECT_EQ(p3.try_reserve(1).error().code(), EBUSY);
	ASSERT_TRUE(p3.commit(std::move(*r)).has_value());
	EXPECT_EQ(receive(c), "travel");

	// Dropping the reservation after the moves aborts it on the new owner.
	{
		auto r2 = p3.try_reserve(6);
		ASSERT_TRUE(r2.has_value());
		Producer p4(std::move(p3));
		p3 = std::move(p4);
	}
	EXPECT_TRUE(p3.try_reserve(6).has_value());
}

TEST(Reservation, ProducerDestroyedBeforeItsReservationDetachesIt)
{
	ShmRing s(4096);
	Result<Reservation> r = unexpected(Error(EIO, "unset"));
	{
		auto p = s.producer();
		r = p.try_reserve(8);
		ASSERT_TRUE(r.has_value());
		EXPECT_TRUE(r->valid());
	} // ~Producer: the reservation is detached, not committed
	EXPECT_FALSE(r->valid());
	EXPECT_TRUE(r->data().empty());
	EXPECT_EQ(s.tail(), 0u);
	// Its destructor (at the end of the test) touches no freed Producer:
	// the ASan build checks.
	auto p = s.producer();
	EXPECT_EQ(p.commit(std::move(*r)).error().code(), EINVAL);
	r = unexpected(Error(EIO, "dropped")); // destroys the detached reservation
	EXPECT_TRUE(p.try_reserve(8).has_value());
}

TEST(Reservation, ClosedProducerDetachesAndAbortOnlyTakesItsOwn)
{
	ShmRing s(4096), s2(4096);
	auto p = s.producer();
	auto q = s2.producer();
	auto r = p.try_reserve(8);
	ASSERT_TRUE(r.has_value());
	// Someone else's reservation: EINVAL, and it stays outstanding.
	EXPECT_EQ(q.commit(std::move(*r)).error().code(), EINVAL);
	q.abort(std::move(*r));
	EXPECT_TRUE(r->valid());
	EXPECT_EQ(p.try_reserve(8).error().code(), EBUSY);
	p.abort(std::move(*r));
	EXPECT_FALSE(r->valid());
	auto r2 = p.try_reserve(8);
	ASSERT_TRUE(r2.has_value());
	p.close();
	EXPECT_FALSE(r2->valid());
	EXPECT_EQ(p.commit(std::move(*r2)).error().code(), EBADF);
	EXPECT_EQ(s.tail(), 0u);
}
