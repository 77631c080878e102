// SPDX-License-Identifier: MIT
// Roles*: the open mode decides the role; one producer and one consumer at a
// time; the layout the kernel reports. Raw ioctl ABI.
#include "shmq_test.hpp"

#include <sys/sysmacros.h>

using namespace shmqt;

namespace {

constexpr uint64_t kCap = 64 * 1024;

class Roles : public testing::Test {
protected:
	void SetUp() override
	{
		SHMQT_REQUIRE_ROOT();
		ASSERT_NO_FATAL_FAILURE(q_.create(kCap, "role"));
	}
	TestQueue q_;
};

bool regions_overlap(const shmq_region &a, const shmq_region &b)
{
	return a.offset < b.offset + b.size && b.offset < a.offset + a.size;
}

void check_layout(const shmq_layout &l, uint64_t cap, uint32_t role)
{
	const uint64_t ps = page_size();
	EXPECT_EQ(SHMQ_FEATURES_V2, l.features & SHMQ_FEATURES_V2) << std::hex << l.features;
	EXPECT_EQ(uint64_t(SHMQ_QUEUE_SPSC), l.queue_features) << std::hex << l.queue_features;
	EXPECT_EQ(std::max<uint64_t>(SHMQ_MIN_CAPACITY, ps), l.min_capacity);
	EXPECT_EQ(cap, l.capacity);
	EXPECT_EQ(cap / 4 - 8, l.max_message);
	EXPECT_EQ(role, l.role);
	EXPECT_EQ(ps, l.page_size);
	EXPECT_EQ(sizeof(shmq_record), l.record_header_size);
	EXPECT_EQ(uint32_t(SHMQ_RECORD_ALIGN), l.record_align);
	const shmq_region *rs[] = {&l.status, &l.producer, &l.consumer, &l.data};
	const char *names[] = {"status", "producer", "consumer", "data"};
	for (int i = 0; i < 4; i++) {
		EXPECT_EQ(0u, rs[i]->offset % ps) << names[i] << " offset " << rs[i]->offset;
		EXPECT_EQ(0u, rs[i]->size % ps) << names[i] << " size " << rs[i]->size;
		EXPECT_GT(rs[i]->size, 0u) << names[i];
		for (int j = 0; j < i; j++)
			EXPECT_FALSE(regions_overlap(*rs[i], *rs[j])) << names[i] << " overlaps " << names[j];
	}
	EXPECT_EQ(cap, l.data.size);
	// tail and head on different pages (different regions): checked above.
	EXPECT_EQ(0u, l.tail_off % 8);
	EXPECT_LE(uint64_t(l.tail_off) + 8, l.producer.size);
	EXPECT_EQ(0u, l.head_off % 8);
	EXPECT_LE(uint64_t(l.head_off) + 8, l.consumer.size);
	EXPECT_EQ(0u, l.write_armed_off % 4);
	EXPECT_LE(uint64_t(l.write_armed_off) + 4, l.producer.size);
	EXPECT_TRUE(l.write_armed_off >= l.tail_off + 8 || l.write_armed_off + 4 <= l.tail_off);
	EXPECT_EQ(0u, l.read_armed_off % 4);
	EXPECT_LE(uint64_t(l.read_armed_off) + 4, l.consumer.size);
	EXPECT_TRUE(l.read_armed_off >= l.head_off + 8 || l.read_armed_off + 4 <= l.head_off);
	EXPECT_EQ(0u, l.read_wake_off % 4);
	EXPECT_LE(uint64_t(l.read_wake_off) + 4, l.status.size);
	EXPECT_EQ(0u, l.write_wake_off % 4);
	EXPECT_LE(uint64_t(l.write_wake_off) + 4, l.status.size);
	EXPECT_EQ(0u, l.write_need_off % 8);
	EXPECT_LE(uint64_t(l.write_need_off) + 8, l.status.size);
	EXPECT_EQ(0u, l.state_off % 4);
	EXPECT_LE(uint64_t(l.state_off) + 4, l.status.size);
	// The status words do not overlap each other.
	struct W {
		uint32_t off, len;
	} w[] = {{l.read_wake_off, 4}, {l.write_wake_off, 4}, {l.write_need_off, 8},
		 {l.state_off, 4}};
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < i; j++)
			EXPECT_TRUE(w[i].off + w[i].len <= w[j].off || w[j].off + w[j].len <= w[i].off)
				<< "status words " << i << " and " << j << " overlap";
	for (int i = 0; i < 8; i++)
		EXPECT_EQ(0u, l.reserved[i]) << "reserved[" << i << "] not zeroed (poison left?)";
}

} // namespace

TEST_F(Roles, WriteOnlyOpenIsProducer)
{
	Fd p(open_queue(q_.name(), O_WRONLY));
	ASSERT_TRUE(p.ok()) << errname(-p.get());
	shmq_layout l;
	ASSERT_EQ(0, get_layout(p.get(), &l));
	EXPECT_EQ(uint32_t(SHMQ_ROLE_PRODUCER), l.role);
}

TEST_F(Roles, ReadOnlyOpenIsConsumer)
{
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok()) << errname(-c.get());
	shmq_layout l;
	ASSERT_EQ(0, get_layout(c.get(), &l));
	EXPECT_EQ(uint32_t(SHMQ_ROLE_CONSUMER), l.role);
}

TEST_F(Roles, ReadWriteOpenEINVAL)
{
	EXPECT_EQ(-EINVAL, open_queue(q_.name(), O_RDWR));
	// Refused opens attach nothing.
	Fd p(open_queue(q_.name(), O_WRONLY));
	EXPECT_TRUE(p.ok()) << errname(-p.get());
	Fd c(open_queue(q_.name(), O_RDONLY));
	EXPECT_TRUE(c.ok()) << errname(-c.get());
	EXPECT_EQ(-EINVAL, open_queue(q_.name(), O_RDWR)) << "with both roles attached";
}

TEST_F(Roles, SecondProducerEBUSYUntilFirstCloses)
{
	Fd p(open_queue(q_.name(), O_WRONLY));
	ASSERT_TRUE(p.ok()) << errname(-p.get());
	EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_WRONLY));
	EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_WRONLY)) << "a refused open must not change state";
	// A consumer is still welcome.
	Fd c(open_queue(q_.name(), O_RDONLY));
	EXPECT_TRUE(c.ok()) << errname(-c.get());
	p.reset();
	Fd p2(open_queue(q_.name(), O_WRONLY));
	EXPECT_TRUE(p2.ok()) << "producer slot not freed by close: " << errname(-p2.get());
}

TEST_F(Roles, SecondConsumerEBUSYUntilFirstCloses)
{
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok()) << errname(-c.get());
	EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_RDONLY));
	EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_RDONLY));
	Fd p(open_queue(q_.name(), O_WRONLY));
	EXPECT_TRUE(p.ok()) << errname(-p.get());
	c.reset();
	Fd c2(open_queue(q_.name(), O_RDONLY));
	EXPECT_TRUE(c2.ok()) << "consumer slot not freed by close: " << errname(-c2.get());
}

TEST_F(Roles, DupOfQueueFdIsTheSamePeer)
{
	Fd p(open_queue(q_.name(), O_WRONLY));
	ASSERT_TRUE(p.ok());
	Fd d(fcntl(p.get(), F_DUPFD_CLOEXEC, 0));
	ASSERT_TRUE(d.ok());
	p.reset();
	EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_WRONLY)) << "detached while a dup is open";
	d.reset();
	Fd p2(open_queue(q_.name(), O_WRONLY));
	EXPECT_TRUE(p2.ok()) << errname(-p2.get());
}

TEST_F(Roles, RoleBusyAcrossProcessesAndFreedWhenHolderIsKilled)
{
	for (int mode : {O_WRONLY, O_RDONLY}) {
		Pipe ready;
		Child c = Child::spawn([&] {
			int fd = open_queue(q_.name(), mode);
			if (fd < 0)
				return 1;
			ready.send();
			pause();
			return 0;
		});
		ASSERT_EQ(1, ready.recv(10000)) << "child could not open";
		EXPECT_EQ(-EBUSY, open_queue(q_.name(), mode));
		c.kill_and_reap();
		EXPECT_TRUE(c.killed_by(SIGKILL));
		Fd again(open_queue(q_.name(), mode));
		EXPECT_TRUE(again.ok()) << "role still taken after its holder was killed: "
					<< errname(-again.get());
	}
}

TEST_F(Roles, RingFdKeepsAttachmentAfterQueueFdCloses)
{
	for (int mode : {O_WRONLY, O_RDONLY}) {
		Fd q(open_queue(q_.name(), mode));
		ASSERT_TRUE(q.ok()) << errname(-q.get());
		Fd r(ring_fd(q.get()));
		ASSERT_TRUE(r.ok()) << errname(-r.get());
		q.reset();
		EXPECT_EQ(-EBUSY, open_queue(q_.name(), mode)) << "ring fd must keep the peer attached";
		r.reset();
		Fd again(open_queue(q_.name(), mode));
		EXPECT_TRUE(again.ok()) << errname(-again.get());
	}
}

TEST_F(Roles, MappingKeepsAttachmentAfterAllFdsClose)
{
	for (int mode : {O_WRONLY, O_RDONLY}) {
		Fd q(open_queue(q_.name(), mode));
		ASSERT_TRUE(q.ok()) << errname(-q.get());
		shmq_layout l;
		ASSERT_EQ(0, get_layout(q.get(), &l));
		Fd r(ring_fd(q.get()));
		ASSERT_TRUE(r.ok());
		Map m;
		ASSERT_EQ(0, map_region(r.get(), l.status, PROT_READ, &m));
		r.reset();
		q.reset();
		EXPECT_EQ(-EBUSY, open_queue(q_.name(), mode)) << "a mapping must keep the peer attached";
		m.reset();
		Fd again(open_queue(q_.name(), mode));
		EXPECT_TRUE(again.ok()) << "detach after the last munmap: " << errname(-again.get());
	}
}

TEST_F(Roles, LayoutOfProducerAndConsumer)
{
	Fd p(open_queue(q_.name(), O_WRONLY));
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(p.ok() && c.ok());
	shmq_layout lp, lc;
	ASSERT_EQ(0, get_layout(p.get(), &lp));
	ASSERT_EQ(0, get_layout(c.get(), &lc));
	check_layout(lp, kCap, SHMQ_ROLE_PRODUCER);
	check_layout(lc, kCap, SHMQ_ROLE_CONSUMER);
	// Same geometry for both roles.
	lc.role = lp.role;
	EXPECT_EQ(0, memcmp(&lp, &lc, sizeof lp)) << "layouts differ beyond the role";
}

TEST_F(Roles, LayoutForSeveralCapacities)
{
	for (uint64_t cap : {uint64_t(4096), uint64_t(8192), uint64_t(1) << 20}) {
		TestQueue q;
		ASSERT_NO_FATAL_FAILURE(q.create(cap, "lay"));
		Fd c(open_queue(q.name(), O_RDONLY));
		ASSERT_TRUE(c.ok());
		shmq_layout l;
		ASSERT_EQ(0, get_layout(c.get(), &l));
		SCOPED_TRACE("capacity " + std::to_string(cap));
		check_layout(l, cap, SHMQ_ROLE_CONSUMER);
	}
}

TEST_F(Roles, LayoutBadPointerEFAULT)
{
	Fd c(open_queue(q_.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	EXPECT_EQ(EFAULT, xioctl(c.get(), SHMQ_IOC_LAYOUT, nullptr));
	EXPECT_EQ(EFAULT, xioctl(c.get(), SHMQ_IOC_LAYOUT, reinterpret_cast<void *>(16)));
}

TEST_F(Roles, WakeArgumentMustBeZero)
{
	for (int mode : {O_WRONLY, O_RDONLY}) {
		Fd q(open_queue(q_.name(), mode));
		ASSERT_TRUE(q.ok());
		EXPECT_EQ(0, xioctl_val(q.get(), SHMQ_IOC_WAKE, 0));
		EXPECT_EQ(EINVAL, xioctl_val(q.get(), SHMQ_IOC_WAKE, 1));
		EXPECT_EQ(EINVAL, xioctl_val(q.get(), SHMQ_IOC_WAKE, ~0ul));
	}
}

// docs/abi.md: an open that reaches a destroyed queue gets ENODEV. Reach the
// old device number through a private node made before the destroy.
TEST_F(Roles, OpenOfDestroyedQueueThroughStaleNodeFails)
{
	struct stat st;
	ASSERT_EQ(0, stat(q_.path().c_str(), &st));
	char tmpl[] = "/tmp/shmq-stale-XXXXXX";
	ASSERT_NE(nullptr, mkdtemp(tmpl));
	const std::string node = std::string(tmpl) + "/node";
	if (mknod(node.c_str(), S_IFCHR | 0600, st.st_rdev) != 0) {
		int e = errno;
		rmdir(tmpl);
		GTEST_SKIP() << "mknod in /tmp: " << errname(e);
	}
	Fd held(open_err(node, O_RDONLY)); // also keeps the queue object alive
	EXPECT_TRUE(held.ok()) << "open through a copy of the node: " << errname(-held.get());
	held.reset();
	ASSERT_EQ(0, q_.destroy());
	int r = open_err(node, O_WRONLY);
	EXPECT_TRUE(r == -ENODEV || r == -ENXIO) << "open of a destroyed queue gave " << (r >= 0 ? "success" : errname(-r));
	if (r >= 0)
		close(r);
	r = open_err(node, O_RDONLY);
	EXPECT_TRUE(r == -ENODEV || r == -ENXIO) << "open of a destroyed queue gave " << (r >= 0 ? "success" : errname(-r));
	if (r >= 0)
		close(r);
	unlink(node.c_str());
	rmdir(tmpl);
}
