// SPDX-License-Identifier: MIT
// The check libshmq makes at open against the module's SHMQ_IOC_LAYOUT
// answer (detail::check_module): every feature it needs, a layout it
// understands, EPROTO with a message naming what is missing otherwise.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <shmq/version.h>

#include "../../lib/internal.hpp"

using shmq::detail::check_module;

namespace {

// What the module answers for a 4 KiB queue on x86-64.
struct shmq_layout good_layout(int role)
{
	struct shmq_layout l;
	std::memset(&l, 0, sizeof l);
	l.features = SHMQ_FEATURES_V2;
	l.queue_features = SHMQ_QUEUE_SPSC;
	l.capacity = 4096;
	l.min_capacity = 4096;
	l.max_message = 4096 / 4 - 8;
	l.role = static_cast<uint32_t>(role);
	l.page_size = 4096;
	l.record_header_size = sizeof(struct shmq_record);
	l.record_align = SHMQ_RECORD_ALIGN;
	l.status = {0, 4096};
	l.producer = {4096, 4096};
	l.consumer = {8192, 4096};
	l.data = {12288, 4096};
	l.tail_off = 0;
	l.write_armed_off = 64;
	l.head_off = 0;
	l.read_armed_off = 64;
	l.state_off = 0;
	l.read_wake_off = 4;
	l.write_wake_off = 8;
	l.write_need_off = 16;
	return l;
}

} // namespace

TEST(Compat, AcceptsTheModulesLayoutForBothRoles)
{
	for (int role : {SHMQ_ROLE_PRODUCER, SHMQ_ROLE_CONSUMER}) {
		auto r = check_module(good_layout(role), role);
		EXPECT_TRUE(r.has_value()) << r.error().message();
	}
}

TEST(Compat, IgnoresFeatureBitsItDoesNotKnow)
{
	auto l = good_layout(SHMQ_ROLE_CONSUMER);
	l.features |= 1ULL << 40 | 1ULL << 63;
	EXPECT_TRUE(check_module(l, SHMQ_ROLE_CONSUMER).has_value());
}

TEST(Compat, EachMissingV2FeatureIsEPROTONamingItAndTheModuleVersion)
{
	const struct {
		uint64_t bit;
		const char *name;
	} feats[] = {
		{SHMQ_FEAT_SPSC_RING, "SHMQ_FEAT_SPSC_RING"},
		{SHMQ_FEAT_WAIT, "SHMQ_FEAT_WAIT"},
		{SHMQ_FEAT_POLL, "SHMQ_FEAT_POLL"},
		{SHMQ_FEAT_PEER_HUP, "SHMQ_FEAT_PEER_HUP"},
		{SHMQ_FEAT_WAKE_ARM, "SHMQ_FEAT_WAKE_ARM"},
		{SHMQ_FEAT_INTERRUPT, "SHMQ_FEAT_INTERRUPT"},
	};
	uint64_t covered = 0;
	for (const auto &f : feats) {
		covered |= f.bit;
		auto l = good_layout(SHMQ_ROLE_PRODUCER);
		l.features = SHMQ_FEATURES_V2 & ~f.bit;
		auto r = check_module(l, SHMQ_ROLE_PRODUCER);
		ASSERT_FALSE(r.has_value()) << f.name;
		EXPECT_EQ(EPROTO, r.error().code()) << f.name;
		const std::string m = r.error().what();
		EXPECT_NE(std::string::npos, m.find(std::string("lacks feature ") + f.name)) << m;
		EXPECT_NE(std::string::npos, m.find("load shmq.ko version >= 0.4.0")) << m;
		EXPECT_NE(std::string::npos, m.find("libshmq " SHMQ_VERSION_STRING)) << m;
	}
	EXPECT_EQ(SHMQ_FEATURES_V2, covered) << "a V2 bit is not covered by this test";
}

TEST(Compat, NoFeaturesAtAllIsEPROTO)
{
	auto l = good_layout(SHMQ_ROLE_CONSUMER);
	l.features = 0;
	auto r = check_module(l, SHMQ_ROLE_CONSUMER);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EPROTO, r.error().code());
	EXPECT_NE(nullptr, std::strstr(r.error().what(), "SHMQ_FEAT_SPSC_RING")) << r.error().what();
}

TEST(Compat, ALayoutItDoesNotUnderstandIsEPROTO)
{
	auto expect_layout_error = [](const struct shmq_layout &l, int role, const char *what) {
		auto r = check_module(l, role);
		ASSERT_FALSE(r.has_value()) << what;
		EXPECT_EQ(EPROTO, r.error().code()) << what;
		EXPECT_NE(nullptr, std::strstr(r.error().what(), "memory layout")) << what;
	};
	auto l = good_layout(SHMQ_ROLE_PRODUCER);
	expect_layout_error(l, SHMQ_ROLE_CONSUMER, "role differs");
	l.record_header_size = 16;
	expect_layout_error(l, SHMQ_ROLE_PRODUCER, "record header size");
	l = good_layout(SHMQ_ROLE_PRODUCER);
	l.capacity = 6000;
	expect_layout_error(l, SHMQ_ROLE_PRODUCER, "capacity not a power of two");
	l = good_layout(SHMQ_ROLE_PRODUCER);
	l.state_off = 4094;
	expect_layout_error(l, SHMQ_ROLE_PRODUCER, "state word past its region");
}

// Issue 9: module feature bits describe the module, not the queue. A queue
// of a kind this library does not know must never be attached to, whatever
// the module offers.
TEST(Compat, AnUnknownQueueFeatureBitIsEPROTOEvenWithEveryModuleFeature)
{
	// 1 << 2: SHMQ_QUEUE_SEQ_HEADER, reserved, not made by this release.
	for (const uint64_t bit : {1ULL << 2, 1ULL << 17, 1ULL << 63}) {
		auto l = good_layout(SHMQ_ROLE_CONSUMER);
		l.features = ~0ULL;
		l.queue_features |= bit;
		auto r = check_module(l, SHMQ_ROLE_CONSUMER);
		ASSERT_FALSE(r.has_value()) << std::hex << bit;
		EXPECT_EQ(EPROTO, r.error().code());
		EXPECT_NE(nullptr, std::strstr(r.error().what(), "SHMQ_QUEUE_")) << r.error().what();
	}
}

// A lane queue needs the module's lane features; a queue cannot be both kinds.
TEST(Compat, LaneQueueBitsAreCheckedAgainstTheModule)
{
	auto l = good_layout(SHMQ_ROLE_PRODUCER);
	l.queue_features = SHMQ_QUEUE_LANES;
	l.features = SHMQ_FEATURES_V3;
	EXPECT_TRUE(check_module(l, SHMQ_ROLE_PRODUCER).has_value());
	l.features &= ~SHMQ_FEAT_REGIONS;
	auto r = check_module(l, SHMQ_ROLE_PRODUCER);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EPROTO, r.error().code());
	l = good_layout(SHMQ_ROLE_CONSUMER);
	l.queue_features = SHMQ_QUEUE_LANES | SHMQ_QUEUE_SPSC;
	r = check_module(l, SHMQ_ROLE_CONSUMER);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EPROTO, r.error().code());
}

TEST(Compat, NoQueueFeatureBitIsEPROTO)
{
	auto l = good_layout(SHMQ_ROLE_PRODUCER);
	l.queue_features = 0;
	auto r = check_module(l, SHMQ_ROLE_PRODUCER);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EPROTO, r.error().code());
}

// The module writes reserved fields as zero unless a bit announces them: a
// library must not silently read a layout with fields it does not know.
TEST(Compat, ANonZeroReservedLayoutFieldIsEPROTO)
{
	for (size_t i = 0; i < sizeof(shmq_layout::reserved) / sizeof(uint64_t); i++) {
		auto l = good_layout(SHMQ_ROLE_PRODUCER);
		l.reserved[i] = 1;
		auto r = check_module(l, SHMQ_ROLE_PRODUCER);
		ASSERT_FALSE(r.has_value()) << "reserved[" << i << "]";
		EXPECT_EQ(EPROTO, r.error().code());
		EXPECT_NE(nullptr, std::strstr(r.error().what(), "reserved")) << r.error().what();
	}
}

TEST(Compat, AnArmedWordOutsideItsRegionIsEPROTO)
{
	auto l = good_layout(SHMQ_ROLE_CONSUMER);
	l.read_armed_off = 4094;
	EXPECT_FALSE(check_module(l, SHMQ_ROLE_CONSUMER).has_value());
	l = good_layout(SHMQ_ROLE_CONSUMER);
	l.write_armed_off = 4096;
	EXPECT_FALSE(check_module(l, SHMQ_ROLE_CONSUMER).has_value());
}
