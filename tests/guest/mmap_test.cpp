// SPDX-License-Identifier: MIT
// Mmap*: what each role may map from its ring fd, and with which protection
// (docs/abi.md "Ring fd mmap", docs/security.md). Raw ABI.
#include "shmq_test.hpp"

#include <sstream>

using namespace shmqt;

namespace {

constexpr uint64_t kCap = 64 * 1024;

struct Side {
	Fd q, ring;
	shmq_layout L{};
};

class Mmap : public testing::Test {
protected:
	void SetUp() override
	{
		SHMQT_REQUIRE_ROOT();
		ASSERT_NO_FATAL_FAILURE(q_.create(kCap, "mm"));
		ASSERT_NO_FATAL_FAILURE(open_side(O_WRONLY, &prod_));
		ASSERT_NO_FATAL_FAILURE(open_side(O_RDONLY, &cons_));
	}
	void open_side(int mode, Side *s)
	{
		s->q.reset(open_queue(q_.name(), mode));
		ASSERT_TRUE(s->q.ok()) << errname(-s->q.get());
		ASSERT_EQ(0, get_layout(s->q.get(), &s->L));
		s->ring.reset(ring_fd(s->q.get()));
		ASSERT_TRUE(s->ring.ok()) << "SHMQ_IOC_RING_FD: " << errname(-s->ring.get());
	}
	static const shmq_region &region(const Side &s, int i)
	{
		const shmq_region *r[] = {&s.L.status, &s.L.producer, &s.L.consumer, &s.L.data};
		return *r[i];
	}
	TestQueue q_;
	Side prod_, cons_;
};

const char *kRegion[] = {"status", "producer", "consumer", "data"};
// docs/abi.md: which regions each role may map writable.
const bool kProducerWritable[] = {false, true, false, true};
const bool kConsumerWritable[] = {false, false, true, false};

// VmFlags of the mapping starting at @addr, from /proc/self/smaps.
std::string vm_flags(const void *addr)
{
	std::string s;
	if (!read_file("/proc/self/smaps", &s))
		return "?";
	char start[32];
	snprintf(start, sizeof start, "%lx-", reinterpret_cast<unsigned long>(addr));
	std::istringstream in(s);
	std::string line;
	bool in_vma = false;
	while (std::getline(in, line)) {
		bool header = !line.empty() && isxdigit(uint8_t(line[0])) && line.find('-') != std::string::npos &&
			      line.find(':') > line.find(' ');
		if (header)
			in_vma = line.rfind(start, 0) == 0;
		else if (in_vma && line.rfind("VmFlags:", 0) == 0)
			return " " + line.substr(8) + " ";
	}
	return "?";
}
bool has_flag(const std::string &flags, const char *f)
{
	return flags.find(std::string(" ") + f + " ") != std::string::npos;
}

// Child writes one byte at @p; returns its wait status description.
Child write_in_child(void *p)
{
	return Child::spawn([p] {
		*static_cast<volatile uint8_t *>(p) = 0x42;
		return 0;
	});
}

} // namespace

TEST_F(Mmap, AllowedProtectionsWorkForEveryRegionAndRole)
{
	for (int role = 0; role < 2; role++) {
		const Side &s = role == 0 ? prod_ : cons_;
		const bool *w = role == 0 ? kProducerWritable : kConsumerWritable;
		for (int i = 0; i < 4; i++) {
			SCOPED_TRACE(std::string(role == 0 ? "producer" : "consumer") + " maps " + kRegion[i]);
			const int prot = w[i] ? PROT_READ | PROT_WRITE : PROT_READ;
			Map m;
			ASSERT_EQ(0, map_region(s.ring.get(), region(s, i), prot, &m));
			volatile uint8_t *b = m.bytes();
			(void)b[0];
			(void)b[m.size() - 1];
			if (w[i]) {
				// Write only where it does not disturb the protocol.
				b[m.size() - 1] = 0x11;
				EXPECT_EQ(0x11, b[m.size() - 1]);
				b[m.size() - 1] = 0;
			}
			// A read-only mapping may also be mapped read-only where
			// writable is allowed.
			Map ro;
			EXPECT_EQ(0, map_region(s.ring.get(), region(s, i), PROT_READ, &ro));
		}
	}
}

TEST_F(Mmap, WritableMappingRefusedWhereRoleMustNotWrite)
{
	for (int role = 0; role < 2; role++) {
		const Side &s = role == 0 ? prod_ : cons_;
		const bool *w = role == 0 ? kProducerWritable : kConsumerWritable;
		for (int i = 0; i < 4; i++) {
			if (w[i])
				continue;
			Map m;
			EXPECT_EQ(EACCES, map_region(s.ring.get(), region(s, i), PROT_READ | PROT_WRITE, &m))
				<< (role == 0 ? "producer" : "consumer") << " mapped " << kRegion[i] << " writable";
			EXPECT_EQ(EACCES, map_region(s.ring.get(), region(s, i), PROT_WRITE, &m))
				<< (role == 0 ? "producer" : "consumer") << " mapped " << kRegion[i]
				<< " write-only";
		}
	}
}

TEST_F(Mmap, MprotectCannotUpgradeReadOnlyMappings)
{
	for (int role = 0; role < 2; role++) {
		const Side &s = role == 0 ? prod_ : cons_;
		const bool *w = role == 0 ? kProducerWritable : kConsumerWritable;
		for (int i = 0; i < 4; i++) {
			if (w[i])
				continue;
			SCOPED_TRACE(std::string(role == 0 ? "producer" : "consumer") + " " + kRegion[i]);
			Map m;
			ASSERT_EQ(0, map_region(s.ring.get(), region(s, i), PROT_READ, &m));
			errno = 0;
			EXPECT_EQ(-1, mprotect(m.get(), m.size(), PROT_READ | PROT_WRITE));
			EXPECT_EQ(EACCES, errno);
			const std::string f = vm_flags(m.get());
			EXPECT_FALSE(has_flag(f, "mw")) << "VM_MAYWRITE still set: VmFlags" << f;
		}
	}
}

TEST_F(Mmap, ConsumerWriteToReadOnlyDataFaults)
{
	Map m;
	ASSERT_EQ(0, map_region(cons_.ring.get(), cons_.L.data, PROT_READ, &m));
	Child c = write_in_child(m.get());
	ASSERT_TRUE(c.wait_exit(10000));
	EXPECT_TRUE(c.killed_by(SIGSEGV)) << "child writing the consumer's data mapping: " << c.describe();
	EXPECT_EQ(0, m.bytes()[0]) << "the write reached the ring";
}

TEST_F(Mmap, WritesToEveryReadOnlyRegionFault)
{
	for (int role = 0; role < 2; role++) {
		const Side &s = role == 0 ? prod_ : cons_;
		const bool *w = role == 0 ? kProducerWritable : kConsumerWritable;
		for (int i = 0; i < 4; i++) {
			if (w[i])
				continue;
			Map m;
			ASSERT_EQ(0, map_region(s.ring.get(), region(s, i), PROT_READ, &m));
			Child c = write_in_child(m.bytes() + m.size() - 8);
			ASSERT_TRUE(c.wait_exit(10000));
			EXPECT_TRUE(c.killed_by(SIGSEGV))
				<< (role == 0 ? "producer" : "consumer") << " wrote " << kRegion[i] << ": "
				<< c.describe();
		}
	}
}

TEST_F(Mmap, ProducerCannotMapConsumerPageWritable)
{
	Map m;
	EXPECT_EQ(EACCES, map_region(prod_.ring.get(), prod_.L.consumer, PROT_READ | PROT_WRITE, &m));
	ASSERT_EQ(0, map_region(prod_.ring.get(), prod_.L.consumer, PROT_READ, &m));
	EXPECT_EQ(-1, mprotect(m.get(), m.size(), PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
}

TEST_F(Mmap, BothRolesSeeTheSamePages)
{
	Map pd, cd, pt, ct, ch, ph;
	ASSERT_EQ(0, map_region(prod_.ring.get(), prod_.L.data, PROT_READ | PROT_WRITE, &pd));
	ASSERT_EQ(0, map_region(cons_.ring.get(), cons_.L.data, PROT_READ, &cd));
	ASSERT_EQ(0, map_region(prod_.ring.get(), prod_.L.producer, PROT_READ | PROT_WRITE, &pt));
	ASSERT_EQ(0, map_region(cons_.ring.get(), cons_.L.producer, PROT_READ, &ct));
	ASSERT_EQ(0, map_region(cons_.ring.get(), cons_.L.consumer, PROT_READ | PROT_WRITE, &ch));
	ASSERT_EQ(0, map_region(prod_.ring.get(), prod_.L.consumer, PROT_READ, &ph));
	// Data, every page.
	for (size_t off = 0; off < pd.size(); off += page_size()) {
		pd.bytes()[off + 5] = uint8_t(off / page_size() + 1);
	}
	for (size_t off = 0; off < cd.size(); off += page_size())
		EXPECT_EQ(uint8_t(off / page_size() + 1), cd.bytes()[off + 5]) << "data page " << off / page_size();
	// Scratch bytes far from the counters.
	pt.bytes()[pt.size() - 1] = 0x77;
	EXPECT_EQ(0x77, ct.bytes()[ct.size() - 1]);
	ch.bytes()[ch.size() - 1] = 0x66;
	EXPECT_EQ(0x66, ph.bytes()[ph.size() - 1]);
	pt.bytes()[pt.size() - 1] = 0;
	ch.bytes()[ch.size() - 1] = 0;
	memset(pd.get(), 0, pd.size());
}

TEST_F(Mmap, NewQueueRegionsAreZeroed)
{
	Map d, p, c;
	ASSERT_EQ(0, map_region(cons_.ring.get(), cons_.L.data, PROT_READ, &d));
	ASSERT_EQ(0, map_region(cons_.ring.get(), cons_.L.producer, PROT_READ, &p));
	ASSERT_EQ(0, map_region(cons_.ring.get(), cons_.L.consumer, PROT_READ, &c));
	for (Map *m : {&d, &p, &c})
		for (size_t i = 0; i < m->size(); i++)
			if (m->bytes()[i]) {
				ADD_FAILURE() << "byte " << i << " of a new queue region is " << int(m->bytes()[i]);
				break;
			}
}

TEST_F(Mmap, OffsetNotAtRegionStartEINVAL)
{
	const size_t ps = page_size();
	for (const Side *s : {&prod_, &cons_}) {
		Map m;
		EXPECT_EQ(EINVAL, map_region(s->ring.get(), s->L.data.offset + ps, ps, PROT_READ, &m))
			<< "second page of data";
		const uint64_t end = std::max({s->L.status.offset + s->L.status.size,
					       s->L.producer.offset + s->L.producer.size,
					       s->L.consumer.offset + s->L.consumer.size,
					       s->L.data.offset + s->L.data.size});
		EXPECT_EQ(EINVAL, map_region(s->ring.get(), end, ps, PROT_READ, &m)) << "past the end";
		EXPECT_EQ(EINVAL, map_region(s->ring.get(), end + 64 * ps, ps, PROT_READ, &m))
			<< "far past the end";
		EXPECT_EQ(EINVAL, map_region(s->ring.get(), uint64_t(1) << 40, ps, PROT_READ, &m))
			<< "huge offset";
	}
}

TEST_F(Mmap, LengthPastRegionEndEINVAL)
{
	const size_t ps = page_size();
	for (const Side *s : {&prod_, &cons_}) {
		for (int i = 0; i < 4; i++) {
			const shmq_region &r = region(*s, i);
			Map m;
			EXPECT_EQ(EINVAL, map_region(s->ring.get(), r.offset, r.size + ps, PROT_READ, &m))
				<< kRegion[i] << " + 1 page";
		}
		Map m;
		EXPECT_EQ(EINVAL, map_region(s->ring.get(), s->L.status.offset,
					     s->L.status.size + s->L.producer.size + s->L.consumer.size +
						     s->L.data.size,
					     PROT_READ, &m))
			<< "one mapping across all regions";
	}
}

TEST_F(Mmap, PrefixOfRegionAccepted)
{
	Map m;
	EXPECT_EQ(0, map_region(cons_.ring.get(), cons_.L.data.offset, page_size(), PROT_READ, &m));
	Map m2;
	EXPECT_EQ(0, map_region(prod_.ring.get(), prod_.L.data.offset, 3 * page_size(),
				PROT_READ | PROT_WRITE, &m2));
}

TEST_F(Mmap, PrivateMappingEINVAL)
{
	for (const Side *s : {&prod_, &cons_}) {
		for (int i = 0; i < 4; i++) {
			const shmq_region &r = region(*s, i);
			Map m;
			EXPECT_EQ(EINVAL, map_region(s->ring.get(), r.offset, r.size, PROT_READ, &m, MAP_PRIVATE))
				<< kRegion[i] << " MAP_PRIVATE read-only";
			EXPECT_EQ(EINVAL, map_region(s->ring.get(), r.offset, r.size, PROT_READ | PROT_WRITE, &m,
						     MAP_PRIVATE))
				<< kRegion[i] << " MAP_PRIVATE read-write (copy-on-write)";
		}
	}
}

TEST_F(Mmap, ExecutableMappingEPERM)
{
	for (const Side *s : {&prod_, &cons_}) {
		for (int i = 0; i < 4; i++) {
			Map m;
			EXPECT_EQ(EPERM, map_region(s->ring.get(), region(*s, i), PROT_READ | PROT_EXEC, &m))
				<< kRegion[i];
			EXPECT_EQ(EPERM, map_region(s->ring.get(), region(*s, i), PROT_EXEC, &m)) << kRegion[i];
		}
	}
}

TEST_F(Mmap, MprotectCannotMakeMappingExecutable)
{
	Map m;
	ASSERT_EQ(0, map_region(prod_.ring.get(), prod_.L.data, PROT_READ | PROT_WRITE, &m));
	errno = 0;
	EXPECT_EQ(-1, mprotect(m.get(), m.size(), PROT_READ | PROT_EXEC)) << "data became executable";
	EXPECT_EQ(EACCES, errno);
	const std::string f = vm_flags(m.get());
	EXPECT_FALSE(has_flag(f, "ex")) << "VmFlags" << f;
}

TEST_F(Mmap, MappingsAreDontexpandAndDontdump)
{
	Map m;
	ASSERT_EQ(0, map_region(cons_.ring.get(), cons_.L.data, PROT_READ, &m));
	const std::string f = vm_flags(m.get());
	ASSERT_NE("?", f) << "mapping not found in /proc/self/smaps";
	EXPECT_TRUE(has_flag(f, "de")) << "VM_DONTEXPAND missing: VmFlags" << f;
	EXPECT_TRUE(has_flag(f, "dd")) << "VM_DONTDUMP missing: VmFlags" << f;
	EXPECT_TRUE(has_flag(f, "sh")) << "not shared: VmFlags" << f;
	EXPECT_FALSE(has_flag(f, "ex")) << "VmFlags" << f;
}

TEST_F(Mmap, MremapCannotGrow)
{
	const size_t ps = page_size();
	for (const Side *s : {&prod_, &cons_}) {
		Map m;
		ASSERT_EQ(0, map_region(s->ring.get(), s->L.status, PROT_READ, &m));
		void *r = mremap(m.get(), m.size(), m.size() + ps, MREMAP_MAYMOVE);
		EXPECT_EQ(MAP_FAILED, r) << "status grew by mremap";
		if (r != MAP_FAILED)
			m = Map(r, m.size() + ps);
		r = mremap(m.get(), m.size(), m.size() + ps, 0);
		EXPECT_EQ(MAP_FAILED, r) << "status grew in place";
		if (r != MAP_FAILED)
			m = Map(r, m.size() + ps);
		// A prefix mapping of data cannot grow into the rest either.
		Map d;
		ASSERT_EQ(0, map_region(s->ring.get(), s->L.data.offset, ps, PROT_READ, &d));
		r = mremap(d.get(), ps, 2 * ps, MREMAP_MAYMOVE);
		EXPECT_EQ(MAP_FAILED, r) << "data prefix grew by mremap";
		if (r != MAP_FAILED)
			d = Map(r, 2 * ps);
	}
}

TEST_F(Mmap, RingFdFlags)
{
	Fd a(ring_fd(prod_.q.get(), 0));
	ASSERT_TRUE(a.ok()) << errname(-a.get());
	EXPECT_EQ(0, fcntl(a.get(), F_GETFD) & FD_CLOEXEC);
	Fd b(ring_fd(prod_.q.get(), O_CLOEXEC));
	ASSERT_TRUE(b.ok()) << errname(-b.get());
	EXPECT_EQ(FD_CLOEXEC, fcntl(b.get(), F_GETFD) & FD_CLOEXEC);
	Fd c(ring_fd(cons_.q.get(), O_CLOEXEC));
	ASSERT_TRUE(c.ok()) << errname(-c.get());
}

TEST_F(Mmap, RingFdBadFlagsEINVAL)
{
	for (int fd : {prod_.q.get(), cons_.q.get()}) {
		for (unsigned long f : {1ul, 2ul, (unsigned long)O_NONBLOCK, (unsigned long)(O_CLOEXEC | 1),
					(unsigned long)O_RDWR, (unsigned long)(O_CLOEXEC | O_NONBLOCK), ~0ul,
					1ul << 40}) {
			int r = ring_fd(fd, f);
			EXPECT_EQ(-EINVAL, r) << "flags 0x" << std::hex << f;
			if (r >= 0)
				close(r);
		}
	}
}

TEST_F(Mmap, RingFdRefusesReadWrite)
{
	char buf[16] = {};
	EXPECT_EQ(-1, write(prod_.ring.get(), buf, sizeof buf)) << "write(2) on a ring fd";
	EXPECT_EQ(-1, read(cons_.ring.get(), buf, sizeof buf)) << "read(2) on a ring fd";
}

TEST_F(Mmap, MappingSurvivesCloseOfBothFdsAndStillWorks)
{
	prod_ = Side();
	cons_ = Side();
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	// Only the mappings are left (RawEnd closed its ring fds already).
	p.qfd.reset();
	c.qfd.reset();
	EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_WRONLY)) << "producer detached by closing its fds";
	EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_RDONLY)) << "consumer detached by closing its fds";
	EXPECT_EQ(SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER, c.state());

	// The ring still works through the mappings alone.
	const uint64_t t = p.write_record(100, 0xab, p.tail());
	p.set_tail(t);
	ASSERT_EQ(t, c.tail());
	shmq_record h;
	memcpy(&h, c.data.bytes(), sizeof h);
	EXPECT_EQ(100u, h.len);
	EXPECT_EQ(SHMQ_REC_MSG, h.type);
	EXPECT_EQ(0xab, c.data.bytes()[8 + 99]);
	c.set_head(t);
	EXPECT_EQ(t, p.head());

	// Unmapping the last producer mapping detaches the producer.
	p.close();
	EXPECT_TRUE(eventually(2000, [&] { return c.state() == SHMQ_STATE_CONSUMER; }))
		<< "state " << c.state() << " after the producer's last munmap";
	Fd p2(open_queue(q_.name(), O_WRONLY));
	EXPECT_TRUE(p2.ok()) << errname(-p2.get());
	c.close();
	Fd c2(open_queue(q_.name(), O_RDONLY));
	EXPECT_TRUE(c2.ok()) << errname(-c2.get());
}

TEST_F(Mmap, MappingSurvivesDestroy)
{
	prod_ = Side();
	cons_ = Side();
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	p.qfd.reset();
	ASSERT_EQ(0, q_.destroy());
	EXPECT_TRUE(c.state() & SHMQ_STATE_DESTROYED) << "state " << c.state();
	EXPECT_TRUE(p.state() & SHMQ_STATE_DESTROYED) << "state " << p.state();
	// Memory stays valid and shared until the last mapping goes.
	memset(p.data.bytes(), 0x3c, p.data.size());
	p.set_tail(4096);
	EXPECT_EQ(4096u, c.tail());
	for (size_t i = 0; i < c.data.size(); i += 997)
		ASSERT_EQ(0x3c, c.data.bytes()[i]) << i;
	c.qfd.reset();
	p.close();
	EXPECT_EQ(0x3c, c.data.bytes()[c.data.size() - 1]);
	c.close();
}

TEST_F(Mmap, ForkedMappingKeepsAttachmentUntilChildExits)
{
	prod_ = Side();
	RawEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	Pipe ready, go;
	Child child = Child::spawn([&] {
		// The inherited mapping works in the child.
		p.data.bytes()[10] = 0x5e;
		ready.send();
		go.recv(20000);
		return p.data.bytes()[11] == 0x6f ? 0 : 3;
	});
	ASSERT_EQ(1, ready.recv(10000));
	EXPECT_EQ(0x5e, p.data.bytes()[10]) << "child wrote to a private copy";
	p.data.bytes()[11] = 0x6f;
	p.close(); // the parent lets go of everything
	EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_WRONLY)) << "child's inherited mapping must keep the producer attached";
	go.send();
	ASSERT_TRUE(child.wait_exit(10000));
	EXPECT_TRUE(child.exited_with(0)) << child.describe();
	Fd again(open_queue(q_.name(), O_WRONLY));
	EXPECT_TRUE(again.ok()) << "producer still attached after the child exited: " << errname(-again.get());
}

TEST_F(Mmap, PartialUnmapsKeepAttachmentCountBalanced)
{
	prod_ = Side();
	const size_t ps = page_size();
	for (int round = 0; round < 3; round++) {
		Fd q(open_queue(q_.name(), O_WRONLY));
		ASSERT_TRUE(q.ok()) << "round " << round << ": " << errname(-q.get());
		shmq_layout l;
		ASSERT_EQ(0, get_layout(q.get(), &l));
		Fd r(ring_fd(q.get()));
		ASSERT_TRUE(r.ok());
		Map d;
		ASSERT_EQ(0, map_region(r.get(), l.data, PROT_READ | PROT_WRITE, &d));
		ASSERT_GE(d.size(), 4 * ps);
		uint8_t *b = d.bytes();
		const size_t len = d.size();
		d.release();
		r.reset();
		q.reset();
		// Split the VMA in three, then unmap the pieces one by one.
		ASSERT_EQ(0, munmap(b + ps, ps));
		b[0] = 1;
		b[2 * ps] = 2;
		EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_WRONLY)) << "round " << round;
		ASSERT_EQ(0, munmap(b, ps));
		EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_WRONLY)) << "round " << round;
		// mprotect splits as well.
		ASSERT_EQ(0, mprotect(b + 3 * ps, ps, PROT_READ));
		ASSERT_EQ(0, munmap(b + 2 * ps, ps));
		EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_WRONLY)) << "round " << round;
		ASSERT_EQ(0, munmap(b + 3 * ps, len - 3 * ps));
	}
	Fd q(open_queue(q_.name(), O_WRONLY));
	EXPECT_TRUE(q.ok()) << "producer attachment leaked by split mappings: " << errname(-q.get());
}

TEST_F(Mmap, DontneedKeepsContents)
{
	Map pd, cd;
	ASSERT_EQ(0, map_region(prod_.ring.get(), prod_.L.data, PROT_READ | PROT_WRITE, &pd));
	ASSERT_EQ(0, map_region(cons_.ring.get(), cons_.L.data, PROT_READ, &cd));
	for (size_t i = 0; i < pd.size(); i += 64)
		pd.bytes()[i] = uint8_t(i >> 6);
	ASSERT_EQ(0, madvise(pd.get(), pd.size(), MADV_DONTNEED));
	ASSERT_EQ(0, madvise(cd.get(), cd.size(), MADV_DONTNEED));
	for (size_t i = 0; i < pd.size(); i += 64) {
		ASSERT_EQ(uint8_t(i >> 6), pd.bytes()[i]) << "producer view, offset " << i;
		ASSERT_EQ(uint8_t(i >> 6), cd.bytes()[i]) << "consumer view, offset " << i;
	}
	memset(pd.get(), 0, pd.size());
}
