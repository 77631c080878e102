// SPDX-License-Identifier: MIT
// Unpriv*: permissions as seen by a member of group shmq (uid 2001,
// SHMQ_TEST_USER=member) and by an outsider (uid 2002,
// SHMQ_TEST_USER=outsider), on the load-time queue "unpriv" (64K) whose node
// udev gives group shmq, mode 0660. Node checks run for every user.
#include "shmq_test.hpp"

#include <grp.h>

using namespace shmqt;

namespace {

const char *kQueue = "unpriv";

bool in_group(gid_t g)
{
	if (getegid() == g)
		return true;
	gid_t groups[256];
	int n = getgroups(256, groups);
	for (int i = 0; i < n; i++)
		if (groups[i] == g)
			return true;
	return false;
}

class UnprivNodes : public testing::Test {};

class UnprivMember : public testing::Test {
protected:
	void SetUp() override
	{
		if (test_user() != "member")
			GTEST_SKIP() << "runs with SHMQ_TEST_USER=member";
		ASSERT_TRUE(wait_path(dev_path(kQueue), true)) << dev_path(kQueue);
	}
};

class UnprivOutsider : public testing::Test {
protected:
	void SetUp() override
	{
		if (test_user() != "outsider")
			GTEST_SKIP() << "runs with SHMQ_TEST_USER=outsider";
		ASSERT_TRUE(wait_path(dev_path(kQueue), true)) << dev_path(kQueue);
	}
};

} // namespace

// --- every user -----------------------------------------------------------------

TEST_F(UnprivNodes, QueueNodeHasGroupShmqMode0660)
{
	const long gid = group_gid("shmq");
	ASSERT_GE(gid, 0) << "group shmq missing from /etc/group";
	ASSERT_TRUE(wait_path(dev_path(kQueue), true)) << dev_path(kQueue) << " missing";
	// udev applies its rules shortly after the node appears.
	struct stat st{};
	EXPECT_TRUE(eventually(5000, [&] {
		return stat(dev_path(kQueue).c_str(), &st) == 0 && st.st_gid == gid_t(gid) &&
		       (st.st_mode & 07777) == 0660;
	})) << "mode " << std::oct << (st.st_mode & 07777) << std::dec << " gid " << st.st_gid << " (shmq is " << gid
	    << ")";
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0u, st.st_uid);
}

TEST_F(UnprivNodes, ControlNodeRootOnly0600)
{
	struct stat st{};
	ASSERT_EQ(0, stat(control_path(), &st)) << control_path() << ": " << errname(errno);
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600u, st.st_mode & 07777) << std::oct << (st.st_mode & 07777);
	EXPECT_EQ(0u, st.st_uid);
	EXPECT_EQ(0u, st.st_gid);
}

TEST_F(UnprivNodes, SysfsAttributesWorldReadable)
{
	std::string s;
	int err = 0;
	ASSERT_TRUE(read_file(sysfs_dir(kQueue) + "/capacity", &s, &err)) << errname(err);
	EXPECT_EQ("65536", trim(s));
	EXPECT_TRUE(read_file(sysfs_dir(kQueue) + "/bytes_used", &s, &err)) << errname(err);
}

// --- member of group shmq ------------------------------------------------------------

TEST_F(UnprivMember, RunsAsUnprivilegedGroupMember)
{
	EXPECT_NE(0u, geteuid());
	const long gid = group_gid("shmq");
	ASSERT_GE(gid, 0);
	EXPECT_TRUE(in_group(gid_t(gid))) << "uid " << getuid() << " is not in group shmq";
}

TEST_F(UnprivMember, ControlDeviceEACCES)
{
	EXPECT_EQ(-EACCES, control_open(O_RDWR));
	EXPECT_EQ(-EACCES, control_open(O_WRONLY));
	EXPECT_EQ(-EACCES, control_open(O_RDONLY));
	auto r = shmq::create_queue("gt-member-create", 4096);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EACCES, r.error().code()) << err_str(r.error());
}

TEST_F(UnprivMember, CannotChangeModuleParameters)
{
	EXPECT_EQ(EACCES, write_file(param_path("max_queues"), "1"));
}

TEST_F(UnprivMember, OpensBothRolesAndReadWriteIsEINVAL)
{
	Fd p(open_queue(kQueue, O_WRONLY));
	ASSERT_TRUE(p.ok()) << "producer open: " << errname(-p.get());
	Fd c(open_queue(kQueue, O_RDONLY));
	ASSERT_TRUE(c.ok()) << "consumer open: " << errname(-c.get());
	shmq_layout l;
	ASSERT_EQ(0, get_layout(p.get(), &l));
	EXPECT_EQ(uint32_t(SHMQ_ROLE_PRODUCER), l.role);
	EXPECT_EQ(65536u, l.capacity);
	// Waiting works unprivileged (readable at once if a message was left).
	const int w = raw_wait(c.get(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(50));
	EXPECT_TRUE(w == ETIMEDOUT || w == 0) << errname(w);
	p.reset();
	c.reset();
	EXPECT_EQ(-EINVAL, open_queue(kQueue, O_RDWR));
}

TEST_F(UnprivMember, MessageRoundTrip)
{
	auto p = shmq::Producer::open(kQueue);
	ASSERT_TRUE(p) << err_str(p.error());
	auto c = shmq::Consumer::open(kQueue);
	ASSERT_TRUE(c) << err_str(c.error());
	std::vector<uint8_t> buf(65536);
	// Whatever an earlier run left behind.
	while (c->try_receive(as_wbytes(buf.data(), buf.size())).has_value()) {
	}
	Rng rng(test_seed());
	for (uint64_t i = 0; i < 100; i++) {
		std::vector<uint8_t> m(random_size(rng, 4000));
		make_msg(m.data(), m.size(), i, getuid());
		auto s = p->send(as_bytes(m.data(), m.size()), shmq::Timeout::after(std::chrono::seconds(10)));
		ASSERT_TRUE(s.has_value()) << err_str(s.error());
		auto r = c->receive(as_wbytes(buf.data(), buf.size()), shmq::Timeout::after(std::chrono::seconds(10)));
		ASSERT_TRUE(r) << err_str(r.error());
		MsgHdr h{};
		std::string why;
		ASSERT_TRUE(check_msg(buf.data(), *r, &h, &why)) << why;
		EXPECT_EQ(i, h.seq);
	}
}

TEST_F(UnprivMember, ConsumerCannotMapDataWritable)
{
	Fd c(open_queue(kQueue, O_RDONLY));
	ASSERT_TRUE(c.ok()) << errname(-c.get());
	shmq_layout l;
	ASSERT_EQ(0, get_layout(c.get(), &l));
	Fd r(ring_fd(c.get()));
	ASSERT_TRUE(r.ok());
	Map m;
	EXPECT_EQ(EACCES, map_region(r.get(), l.data, PROT_READ | PROT_WRITE, &m));
	EXPECT_EQ(0, map_region(r.get(), l.data, PROT_READ, &m));
}

// --- outsider -------------------------------------------------------------------------

TEST_F(UnprivOutsider, RunsAsUnprivilegedNonMember)
{
	EXPECT_NE(0u, geteuid());
	const long gid = group_gid("shmq");
	ASSERT_GE(gid, 0);
	EXPECT_FALSE(in_group(gid_t(gid))) << "uid " << getuid() << " is in group shmq";
}

TEST_F(UnprivOutsider, QueueOpenEACCES)
{
	EXPECT_EQ(-EACCES, open_queue(kQueue, O_RDONLY));
	EXPECT_EQ(-EACCES, open_queue(kQueue, O_WRONLY));
	EXPECT_EQ(-EACCES, open_queue(kQueue, O_RDWR));
}

TEST_F(UnprivOutsider, LibraryOpenEACCES)
{
	auto p = shmq::Producer::open(kQueue);
	ASSERT_FALSE(p);
	EXPECT_EQ(EACCES, p.error().code()) << err_str(p.error());
	auto c = shmq::Consumer::open(kQueue);
	ASSERT_FALSE(c);
	EXPECT_EQ(EACCES, c.error().code()) << err_str(c.error());
}

TEST_F(UnprivOutsider, ControlDeviceEACCES)
{
	EXPECT_EQ(-EACCES, control_open(O_RDWR));
	EXPECT_EQ(-EACCES, control_open(O_RDONLY));
	auto r = shmq::destroy_queue(kQueue);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EACCES, r.error().code()) << err_str(r.error());
	EXPECT_TRUE(path_exists(dev_path(kQueue)));
}
