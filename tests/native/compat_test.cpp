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
	l.features = SHMQ_FEATURES_V1;
	l.capacity = 4096;
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
	l.head_off = 0;
	l.read_waiters_off = 0;
	l.write_waiters_off = 4;
	l.write_need_off = 8;
	l.state_off = 16;
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

TEST(Compat, EachMissingV1FeatureIsEPROTONamingItAndTheModuleVersion)
{
	const struct {
		uint64_t bit;
		const char *name;
	} feats[] = {
		{SHMQ_FEAT_SPSC_RING, "SHMQ_FEAT_SPSC_RING"},
		{SHMQ_FEAT_WAIT, "SHMQ_FEAT_WAIT"},
		{SHMQ_FEAT_POLL, "SHMQ_FEAT_POLL"},
		{SHMQ_FEAT_PEER_HUP, "SHMQ_FEAT_PEER_HUP"},
	};
	uint64_t covered = 0;
	for (const auto &f : feats) {
		covered |= f.bit;
		auto l = good_layout(SHMQ_ROLE_PRODUCER);
		l.features = SHMQ_FEATURES_V1 & ~f.bit;
		auto r = check_module(l, SHMQ_ROLE_PRODUCER);
		ASSERT_FALSE(r.has_value()) << f.name;
		EXPECT_EQ(EPROTO, r.error().code()) << f.name;
		const std::string m = r.error().what();
		EXPECT_NE(std::string::npos, m.find(std::string("lacks feature ") + f.name)) << m;
		EXPECT_NE(std::string::npos, m.find("load shmq.ko version >= 0.3.0")) << m;
		EXPECT_NE(std::string::npos, m.find("libshmq " SHMQ_VERSION_STRING)) << m;
	}
	EXPECT_EQ(SHMQ_FEATURES_V1, covered) << "a V1 bit is not covered by this test";
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
