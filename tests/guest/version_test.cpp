// SPDX-License-Identifier: MIT
// Version*: the loaded module, libshmq and <shmq/version.h> carry the one
// version of the tree (VERSION), and libshmq's open-time compatibility check
// (detail::check_module) accepts the real module's SHMQ_IOC_LAYOUT answer
// and refuses it, with EPROTO, once a feature it needs is masked out.
#include <fstream>

#include <shmq/version.h>

#include "internal.hpp"
#include "shmq_test.hpp"

using namespace shmqt;

TEST(Version, ModuleLibraryAndHeaderAgree)
{
	std::ifstream f("/sys/module/shmq/version");
	std::string v;
	ASSERT_TRUE(f && std::getline(f, v)) << "no /sys/module/shmq/version (MODULE_VERSION missing?)";
	EXPECT_EQ(SHMQ_VERSION_STRING, v);
	EXPECT_STREQ(SHMQ_VERSION_STRING, shmq::version());
}

TEST(Version, OpenCheckAcceptsTheModuleAndRefusesAMissingFeature)
{
	SHMQT_REQUIRE_ROOT();
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(64 * 1024, "ver"));
	for (int role : {SHMQ_ROLE_PRODUCER, SHMQ_ROLE_CONSUMER}) {
		Fd fd(open_queue(q.name(), role == SHMQ_ROLE_PRODUCER ? O_WRONLY : O_RDONLY));
		ASSERT_TRUE(fd.ok()) << errname(-fd.get());
		shmq_layout l;
		ASSERT_EQ(0, get_layout(fd.get(), &l));
		auto ok = shmq::detail::check_module(l, role);
		EXPECT_TRUE(ok.has_value()) << ok.error().message();
		l.features &= ~SHMQ_FEAT_WAIT;
		auto bad = shmq::detail::check_module(l, role);
		ASSERT_FALSE(bad.has_value());
		EXPECT_EQ(EPROTO, bad.error().code());
		EXPECT_NE(nullptr, strstr(bad.error().what(), "lacks feature SHMQ_FEAT_WAIT"))
			<< bad.error().what();
	}
}
