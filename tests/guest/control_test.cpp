// SPDX-License-Identifier: MIT
// Control*: /dev/shmq-control (SHMQ_IOC_CREATE / SHMQ_IOC_DESTROY), module
// parameters as limits, the device node and sysfs attributes of a queue.
// Raw ioctl ABI throughout (include/shmq/uapi.h, docs/abi.md).
#include "shmq_test.hpp"

#include <algorithm>
#include <sstream>

using namespace shmqt;

namespace {

constexpr uint64_t kCap = 64 * 1024;

class Control : public testing::Test {
protected:
	void SetUp() override
	{
		SHMQT_REQUIRE_ROOT();
		int fd = control_open(O_RDWR);
		ASSERT_GE(fd, 0) << "open " << control_path() << ": " << errname(-fd);
		ctl_.reset(fd);
	}
	void TearDown() override
	{
		for (auto &n : created_) {
			int e = raw_destroy(ctl_.get(), n);
			if (e && e != ENOENT)
				ADD_FAILURE() << "cleanup: destroy " << n << ": " << errname(e);
		}
	}
	// Create expecting success; the queue is destroyed in TearDown.
	int create(const std::string &name, uint64_t cap)
	{
		int e = raw_create(ctl_.get(), name, cap);
		if (e == 0)
			created_.push_back(name);
		return e;
	}
	int create(shmq_create_args &a)
	{
		int e = xioctl(ctl_.get(), SHMQ_IOC_CREATE, &a);
		if (e == 0)
			created_.push_back(std::string(a.name, strnlen(a.name, sizeof a.name)));
		return e;
	}
	int destroy(const std::string &name) { return raw_destroy(ctl_.get(), name); }
	// A refused create must leave nothing behind.
	void expect_absent(const std::string &name)
	{
		EXPECT_FALSE(path_exists(dev_path(name))) << name;
		EXPECT_EQ(ENOENT, destroy(name)) << "refused create of '" << name << "' left a queue";
	}
	Fd ctl_;
	std::vector<std::string> created_;
};

std::string sysfs_attr(const std::string &q, const char *attr)
{
	std::string s;
	int err = 0;
	if (!read_file(sysfs_dir(q) + "/" + attr, &s, &err))
		return "<" + errname(err) + ">";
	return trim(s);
}

} // namespace

// --- create / destroy happy path ----------------------------------------

TEST_F(Control, CreateMakesDeviceNodeAndDestroyRemovesIt)
{
	const std::string n = unique_name("cr");
	ASSERT_EQ(0, create(n, kCap));
	ASSERT_TRUE(wait_path(dev_path(n), true)) << dev_path(n) << " never appeared";
	struct stat st;
	ASSERT_EQ(0, stat(dev_path(n).c_str(), &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode)) << "mode " << std::oct << st.st_mode;
	EXPECT_TRUE(path_exists(sysfs_dir(n))) << sysfs_dir(n);

	ASSERT_EQ(0, destroy(n));
	EXPECT_TRUE(wait_path(dev_path(n), false)) << dev_path(n) << " still there 10 s after destroy";
	EXPECT_TRUE(wait_path(sysfs_dir(n), false)) << sysfs_dir(n) << " still there after destroy";
}

TEST_F(Control, CreatedQueueCanBeOpenedByBothRoles)
{
	const std::string n = unique_name("cr");
	ASSERT_EQ(0, create(n, kCap));
	ASSERT_TRUE(wait_path(dev_path(n), true));
	Fd p(open_queue(n, O_WRONLY));
	ASSERT_TRUE(p.ok()) << errname(-p.get());
	Fd c(open_queue(n, O_RDONLY));
	ASSERT_TRUE(c.ok()) << errname(-c.get());
}

TEST_F(Control, ControlOpenedWriteOnlyCanCreate)
{
	Fd w(control_open(O_WRONLY));
	ASSERT_TRUE(w.ok()) << errname(-w.get());
	const std::string n = unique_name("wo");
	ASSERT_EQ(0, raw_create(w.get(), n, kCap));
	created_.push_back(n);
	EXPECT_EQ(0, raw_destroy(w.get(), n));
}

TEST_F(Control, MinimumCapacityAccepted)
{
	const std::string n = unique_name("min");
	EXPECT_EQ(0, create(n, SHMQ_MIN_CAPACITY));
}

TEST_F(Control, DuplicateNameEEXIST)
{
	const std::string n = unique_name("dup");
	ASSERT_EQ(0, create(n, kCap));
	EXPECT_EQ(EEXIST, raw_create(ctl_.get(), n, kCap));
	EXPECT_EQ(EEXIST, raw_create(ctl_.get(), n, 2 * kCap)) << "other capacity, same name";
}

TEST_F(Control, DestroyMissingENOENT)
{
	EXPECT_EQ(ENOENT, destroy(unique_name("missing")));
}

TEST_F(Control, DestroyTwiceENOENT)
{
	const std::string n = unique_name("twice");
	ASSERT_EQ(0, create(n, kCap));
	ASSERT_EQ(0, destroy(n));
	EXPECT_EQ(ENOENT, destroy(n));
}

TEST_F(Control, NameReusableAfterDestroyWhileOldQueueStillOpen)
{
	const std::string n = unique_name("reuse");
	ASSERT_EQ(0, create(n, kCap));
	ASSERT_TRUE(wait_path(dev_path(n), true));
	RawEnd oldp;
	ASSERT_NO_FATAL_FAILURE(oldp.open(n, O_WRONLY));
	oldp.publish(100);
	ASSERT_EQ(0, destroy(n));
	ASSERT_TRUE(wait_path(dev_path(n), false));

	// Same name again: a fresh, empty queue independent of the old one.
	ASSERT_EQ(0, create(n, kCap)) << "name not reusable while the destroyed queue is open";
	ASSERT_TRUE(wait_path(dev_path(n), true));
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(n, O_RDONLY));
	EXPECT_EQ(0u, c.tail()) << "new queue shares the old queue's pages";
	EXPECT_EQ(SHMQ_STATE_CONSUMER, c.state()) << "old producer counted as attached to the new queue";
	Fd p2(open_queue(n, O_WRONLY));
	EXPECT_TRUE(p2.ok()) << "producer slot of the new queue taken by the old one: "
			     << errname(-p2.get());
	// The old producer still writes into its own (destroyed) ring.
	oldp.publish(8);
	EXPECT_EQ(0u, c.tail());
}

// --- names ----------------------------------------------------------------

TEST_F(Control, EmptyNameEINVAL)
{
	EXPECT_EQ(EINVAL, create("", kCap));
	EXPECT_EQ(EINVAL, destroy(""));
}

TEST_F(Control, LeadingDotEINVAL)
{
	const std::string base = unique_name("dot");
	for (std::string n : {std::string("."), std::string(".."), "." + base, ".." + base}) {
		EXPECT_EQ(EINVAL, create(n, kCap)) << "'" << n << "'";
		EXPECT_EQ(EINVAL, destroy(n)) << "'" << n << "'";
	}
	expect_absent(base);
}

TEST_F(Control, DotInsideNameAccepted)
{
	const std::string n = unique_name("dot") + ".x.";
	EXPECT_EQ(0, create(n, kCap));
}

TEST_F(Control, SlashEINVAL)
{
	const std::string base = unique_name("sl");
	for (std::string n : {base + "/x", "/" + base, base + "/", std::string("../") + base}) {
		EXPECT_EQ(EINVAL, create(n, kCap)) << "'" << n << "'";
		EXPECT_EQ(EINVAL, destroy(n)) << "'" << n << "'";
	}
	expect_absent(base);
}

TEST_F(Control, SpacesEINVAL)
{
	const std::string base = unique_name("sp");
	for (std::string n : {base + " x", " " + base, base + " ", base + "\tx", base + "\nx"}) {
		EXPECT_EQ(EINVAL, create(n, kCap)) << "'" << n << "'";
	}
	expect_absent(base);
}

TEST_F(Control, OtherCharactersEINVAL)
{
	const std::string base = unique_name("ch");
	for (const char *bad : {"@", ":", "*", "?", "\\", "%", "+", "~", "\x7f", "\x01", "\xc3\xa4",
				"\xff"}) {
		std::string n = base + bad + "z";
		EXPECT_EQ(EINVAL, create(n, kCap)) << "name with byte 0x" << std::hex
						    << unsigned(uint8_t(bad[0]));
	}
	expect_absent(base);
}

TEST_F(Control, AllAllowedCharactersAccepted)
{
	std::string n = "gt-AZaz09_.-" + std::to_string(getpid());
	EXPECT_EQ(0, create(n, kCap));
	EXPECT_TRUE(wait_path(dev_path(n), true));
}

TEST_F(Control, Name63CharsAccepted)
{
	std::string n = unique_name("len");
	n += std::string(63 - n.size(), 'x');
	ASSERT_EQ(63u, n.size());
	EXPECT_EQ(0, create(n, kCap));
	EXPECT_TRUE(wait_path(dev_path(n), true)) << dev_path(n);
	EXPECT_EQ(0, destroy(n));
}

TEST_F(Control, Name64CharsENAMETOOLONG)
{
	std::string n = unique_name("len");
	n += std::string(64 - n.size(), 'y');
	shmq_create_args a = create_args("", kCap);
	memcpy(a.name, n.data(), 64); // no NUL anywhere in the array
	EXPECT_EQ(ENAMETOOLONG, create(a));
	shmq_destroy_args d = destroy_args("");
	memcpy(d.name, n.data(), 64);
	EXPECT_EQ(ENAMETOOLONG, xioctl(ctl_.get(), SHMQ_IOC_DESTROY, &d));
	// The 63-character prefix must not have been created either.
	expect_absent(n.substr(0, 63));
}

// --- capacity ---------------------------------------------------------------

TEST_F(Control, CapacityZeroEINVAL)
{
	const std::string n = unique_name("c0");
	EXPECT_EQ(EINVAL, create(n, 0));
	expect_absent(n);
}

TEST_F(Control, CapacityBelowMinimumEINVAL)
{
	const std::string n = unique_name("cmin");
	for (uint64_t c : std::initializer_list<uint64_t>{1, 8, 2048, SHMQ_MIN_CAPACITY - 1})
		EXPECT_EQ(EINVAL, create(n, c)) << "capacity " << c;
	expect_absent(n);
}

TEST_F(Control, CapacityNotPowerOfTwoEINVAL)
{
	const std::string n = unique_name("cp2");
	for (uint64_t c : std::initializer_list<uint64_t>{SHMQ_MIN_CAPACITY + 1, uint64_t(12288), uint64_t(65535), uint64_t(65536 + 4096),
			   uint64_t(3) << 20, ~uint64_t(0), (uint64_t(1) << 63) + 4096})
		EXPECT_EQ(EINVAL, create(n, c)) << "capacity " << c;
	expect_absent(n);
}

TEST_F(Control, CapacityAboveMaxQueueSizeEFBIG)
{
	uint64_t max = 0;
	std::string raw;
	ASSERT_TRUE(read_param("max_queue_size", &max, &raw)) << "cannot read " << param_path("max_queue_size")
							      << " ('" << raw << "')";
	ASSERT_GT(max, 0u);
	// The smallest power of two above the limit.
	uint64_t c = SHMQ_MIN_CAPACITY;
	while (c <= max && c < (uint64_t(1) << 62))
		c <<= 1;
	const std::string n = unique_name("big");
	EXPECT_EQ(EFBIG, create(n, c)) << "max_queue_size " << max << ", capacity " << c;
	// Sizes whose page arithmetic would overflow.
	EXPECT_EQ(EFBIG, create(n, uint64_t(1) << 62));
	EXPECT_EQ(EFBIG, create(n, uint64_t(1) << 63));
	expect_absent(n);
}

TEST_F(Control, CapacityAtMaxQueueSizeLoweredIsAccepted)
{
	// Lower max_queue_size to 64K: 64K passes, 128K is EFBIG.
	ParamOverride o("max_queue_size", "65536");
	ASSERT_EQ(0, o.error()) << "cannot write " << param_path("max_queue_size") << ": "
				<< errname(o.error());
	const std::string a = unique_name("atmax"), b = unique_name("overmax");
	EXPECT_EQ(0, create(a, 65536));
	EXPECT_EQ(EFBIG, create(b, 131072));
	expect_absent(b);
}

// --- limits -------------------------------------------------------------------

TEST_F(Control, OverMaxQueuesENOSPC)
{
	const std::string a = unique_name("mq"), b = unique_name("mq");
	ASSERT_EQ(0, create(a, SHMQ_MIN_CAPACITY));
	{
		ParamOverride o("max_queues", "1");
		ASSERT_EQ(0, o.error()) << "cannot write " << param_path("max_queues") << ": "
					<< errname(o.error());
		EXPECT_EQ(ENOSPC, create(b, SHMQ_MIN_CAPACITY));
		expect_absent(b);
	}
	EXPECT_EQ(0, create(b, SHMQ_MIN_CAPACITY)) << "limit restored, create must work again";
}

TEST_F(Control, OverMaxTotalMemoryENOSPC)
{
	const std::string a = unique_name("mt"), b = unique_name("mt");
	ASSERT_EQ(0, create(a, SHMQ_MIN_CAPACITY));
	{
		// The queue above alone uses 4096 data bytes (plus pages): no
		// other queue fits under this limit.
		ParamOverride o("max_total_memory", "4096");
		ASSERT_EQ(0, o.error()) << "cannot write " << param_path("max_total_memory") << ": "
					<< errname(o.error());
		EXPECT_EQ(ENOSPC, create(b, SHMQ_MIN_CAPACITY));
		EXPECT_EQ(ENOSPC, create(b, kCap));
		expect_absent(b);
	}
	EXPECT_EQ(0, create(b, SHMQ_MIN_CAPACITY)) << "limit restored, create must work again";
}

// docs/security.md: memory of a destroyed queue still counts against
// max_total_memory until its last file and mapping are gone.
TEST_F(Control, DestroyedButOpenQueueStillCountsAgainstMaxTotalMemory)
{
	const std::string a = unique_name("acct"), probe = unique_name("probe");
	ASSERT_EQ(0, create(a, kCap));
	ASSERT_TRUE(wait_path(dev_path(a), true));

	std::string old;
	ASSERT_TRUE(read_file(param_path("max_total_memory"), &old));
	old = trim(old);
	struct Restore {
		std::string v;
		~Restore() { write_file(param_path("max_total_memory"), v); }
	} restore{old};

	// Smallest limit under which a 4K probe queue still fits next to
	// everything that exists now (binary search; creation is monotonic in
	// the limit).
	auto probe_fits = [&](uint64_t limit) {
		EXPECT_EQ(0, write_file(param_path("max_total_memory"), std::to_string(limit)));
		int e = raw_create(ctl_.get(), probe, SHMQ_MIN_CAPACITY);
		if (e == 0)
			EXPECT_EQ(0, raw_destroy(ctl_.get(), probe));
		else
			EXPECT_EQ(ENOSPC, e) << "limit " << limit;
		return e == 0;
	};
	uint64_t lo = 0, hi = 0;
	ASSERT_TRUE(parse_size(old, &hi)) << "max_total_memory = '" << old << "'";
	ASSERT_TRUE(probe_fits(hi)) << "a 4K queue does not fit under the default limit";
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (probe_fits(mid))
			hi = mid;
		else
			lo = mid;
		if (HasFailure())
			return;
	}
	const uint64_t threshold = hi;
	// Now a probe does not fit under threshold - 1 while queue a exists ...
	ASSERT_FALSE(probe_fits(threshold - 1));
	Fd held(open_queue(a, O_RDONLY));
	ASSERT_TRUE(held.ok()) << errname(-held.get());
	ASSERT_EQ(0, destroy(a));
	// ... nor while a is destroyed but still open ...
	EXPECT_FALSE(probe_fits(threshold - 1))
		<< "memory of a destroyed queue with an open fd was uncharged early";
	// ... and fits once the last file is closed (a's 64K are returned).
	held.reset();
	EXPECT_TRUE(eventually(2000, [&] { return probe_fits(threshold - 1); }))
		<< "memory of a destroyed queue not returned after its last close";
}

// --- reserved fields and flags ------------------------------------------------

TEST_F(Control, CreateFlagsEINVAL)
{
	const std::string n = unique_name("fl");
	for (int bit = 0; bit < 32; bit++) {
		shmq_create_args a = create_args(n, kCap);
		a.flags = 1u << bit;
		EXPECT_EQ(EINVAL, create(a)) << "flags bit " << bit;
	}
	expect_absent(n);
}

TEST_F(Control, CreatePadEINVAL)
{
	const std::string n = unique_name("pad");
	shmq_create_args a = create_args(n, kCap);
	a.__pad = 1;
	EXPECT_EQ(EINVAL, create(a));
	a.__pad = 0x80000000u;
	EXPECT_EQ(EINVAL, create(a));
	expect_absent(n);
}

TEST_F(Control, CreateEachReservedWordEINVAL)
{
	const std::string n = unique_name("rsv");
	for (int i = 0; i < 4; i++) {
		for (uint64_t v : {uint64_t(1), uint64_t(1) << 63}) {
			shmq_create_args a = create_args(n, kCap);
			a.reserved[i] = v;
			EXPECT_EQ(EINVAL, create(a)) << "reserved[" << i << "] = " << v;
		}
	}
	expect_absent(n);
}

TEST_F(Control, DestroyFlagsPadReservedEINVAL)
{
	const std::string n = unique_name("dfl");
	ASSERT_EQ(0, create(n, kCap));
	for (int bit = 0; bit < 32; bit++) {
		shmq_destroy_args d = destroy_args(n);
		d.flags = 1u << bit;
		EXPECT_EQ(EINVAL, xioctl(ctl_.get(), SHMQ_IOC_DESTROY, &d)) << "flags bit " << bit;
	}
	{
		shmq_destroy_args d = destroy_args(n);
		d.__pad = 1;
		EXPECT_EQ(EINVAL, xioctl(ctl_.get(), SHMQ_IOC_DESTROY, &d)) << "__pad";
	}
	for (int i = 0; i < 3; i++) {
		shmq_destroy_args d = destroy_args(n);
		d.reserved[i] = 1;
		EXPECT_EQ(EINVAL, xioctl(ctl_.get(), SHMQ_IOC_DESTROY, &d)) << "reserved[" << i << "]";
	}
	// None of them destroyed it.
	EXPECT_TRUE(path_exists(dev_path(n)));
	EXPECT_EQ(0, destroy(n));
}

TEST_F(Control, DestroyBadNamesEINVAL)
{
	for (std::string n : {"", ".x", "a/b", "a b", "a@b"})
		EXPECT_EQ(EINVAL, destroy(n)) << "'" << n << "'";
}

TEST_F(Control, BadPointerEFAULT)
{
	EXPECT_EQ(EFAULT, xioctl(ctl_.get(), SHMQ_IOC_CREATE, nullptr));
	EXPECT_EQ(EFAULT, xioctl(ctl_.get(), SHMQ_IOC_DESTROY, nullptr));
	EXPECT_EQ(EFAULT, xioctl(ctl_.get(), SHMQ_IOC_CREATE, reinterpret_cast<void *>(8)));
	// Arguments ending in an unmapped page.
	Map m;
	ASSERT_EQ(0, [&] {
		void *p = mmap(nullptr, 2 * page_size(), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return errno;
		m = Map(p, 2 * page_size());
		return 0;
	}());
	ASSERT_EQ(0, munmap(m.bytes() + page_size(), page_size()));
	shmq_create_args a = create_args(unique_name("fault"), kCap);
	void *at = m.bytes() + page_size() - sizeof a / 2;
	memcpy(at, &a, sizeof a / 2);
	EXPECT_EQ(EFAULT, xioctl(ctl_.get(), SHMQ_IOC_CREATE, at));
	// Keep Map from unmapping the already unmapped second page twice: fine,
	// munmap of an unmapped range is not an error.
}

// --- ioctl numbers and access mode --------------------------------------------

TEST_F(Control, UnknownIoctlENOTTY)
{
	shmq_create_args a = create_args(unique_name("tty"), kCap);
	uint64_t zero[16] = {};
	EXPECT_EQ(ENOTTY, xioctl(ctl_.get(), _IO(SHMQ_IOC_MAGIC, 0x7f), zero));
	EXPECT_EQ(ENOTTY, xioctl(ctl_.get(), _IO(SHMQ_IOC_MAGIC, 0x02), zero));
	EXPECT_EQ(ENOTTY, xioctl(ctl_.get(), _IOW(SHMQ_IOC_MAGIC, 0x00, uint64_t), &a))
		<< "CREATE number with a wrong size";
	EXPECT_EQ(ENOTTY, xioctl(ctl_.get(), _IOR(SHMQ_IOC_MAGIC, 0x00, struct shmq_create_args), &a))
		<< "CREATE number with a wrong direction";
	EXPECT_EQ(ENOTTY, xioctl(ctl_.get(), _IOW('T', 0x00, struct shmq_create_args), &a))
		<< "other magic";
	EXPECT_EQ(ENOTTY, xioctl(ctl_.get(), 0, zero));
	EXPECT_EQ(ENOTTY, xioctl(ctl_.get(), TCGETS, zero));
	expect_absent(a.name);
}

TEST_F(Control, QueueIoctlsOnControlENOTTY)
{
	shmq_layout l;
	EXPECT_EQ(ENOTTY, xioctl(ctl_.get(), SHMQ_IOC_LAYOUT, &l));
	shmq_wait_args w{};
	w.cond = SHMQ_WAIT_READABLE;
	EXPECT_EQ(ENOTTY, xioctl(ctl_.get(), SHMQ_IOC_WAIT, &w));
	EXPECT_EQ(ENOTTY, xioctl_val(ctl_.get(), SHMQ_IOC_RING_FD, 0));
	EXPECT_EQ(ENOTTY, xioctl_val(ctl_.get(), SHMQ_IOC_WAKE, 0));
}

TEST_F(Control, ControlIoctlsOnQueueFdENOTTY)
{
	const std::string n = unique_name("qtty");
	ASSERT_EQ(0, create(n, kCap));
	ASSERT_TRUE(wait_path(dev_path(n), true));
	for (int mode : {O_WRONLY, O_RDONLY}) {
		Fd q(open_queue(n, mode));
		ASSERT_TRUE(q.ok()) << errname(-q.get());
		shmq_create_args a = create_args(unique_name("qtty"), kCap);
		EXPECT_EQ(ENOTTY, xioctl(q.get(), SHMQ_IOC_CREATE, &a));
		expect_absent(a.name);
		shmq_destroy_args d = destroy_args(n);
		EXPECT_EQ(ENOTTY, xioctl(q.get(), SHMQ_IOC_DESTROY, &d));
		EXPECT_EQ(ENOTTY, xioctl(q.get(), _IO(SHMQ_IOC_MAGIC, 0x7f), nullptr));
		EXPECT_EQ(ENOTTY, xioctl(q.get(), TCGETS, &a));
	}
	EXPECT_TRUE(path_exists(dev_path(n)));
}

TEST_F(Control, ReadOnlyControlFdEBADF)
{
	Fd r(control_open(O_RDONLY));
	ASSERT_TRUE(r.ok()) << errname(-r.get());
	const std::string n = unique_name("ro");
	EXPECT_EQ(EBADF, raw_create(r.get(), n, kCap));
	expect_absent(n);
	ASSERT_EQ(0, create(n, kCap));
	EXPECT_EQ(EBADF, raw_destroy(r.get(), n));
	EXPECT_TRUE(path_exists(dev_path(n))) << "destroy through a read-only fd removed the queue";
}

// --- sysfs and parameters ---------------------------------------------------

TEST_F(Control, ModuleParametersReadable)
{
	for (const char *p : {"max_queue_size", "max_total_memory", "max_queues"}) {
		uint64_t v = 0;
		std::string raw;
		EXPECT_TRUE(read_param(p, &v, &raw)) << param_path(p) << " = '" << raw << "'";
		EXPECT_GT(v, 0u) << p;
	}
	EXPECT_TRUE(path_exists(param_path("queues"))) << param_path("queues");
}

TEST_F(Control, SysfsAttributesOfNewQueue)
{
	const std::string n = unique_name("sysfs");
	ASSERT_EQ(0, create(n, kCap));
	ASSERT_TRUE(wait_path(dev_path(n), true));
	EXPECT_EQ(std::to_string(kCap), sysfs_attr(n, "capacity"));
	EXPECT_EQ("0", sysfs_attr(n, "bytes_used"));
	EXPECT_EQ("0", sysfs_attr(n, "producers"));
	EXPECT_EQ("0", sysfs_attr(n, "consumers"));
	EXPECT_EQ("0", sysfs_attr(n, "producer_pid"));
	EXPECT_EQ("0", sysfs_attr(n, "consumer_pid"));
}

TEST_F(Control, SysfsAttributesFollowAttachmentAndUse)
{
	const std::string n = unique_name("sysfs");
	ASSERT_EQ(0, create(n, kCap));
	ASSERT_TRUE(wait_path(dev_path(n), true));
	const std::string me = std::to_string(getpid());
	{
		RawEnd p;
		ASSERT_NO_FATAL_FAILURE(p.open(n, O_WRONLY));
		EXPECT_EQ("1", sysfs_attr(n, "producers"));
		EXPECT_EQ("0", sysfs_attr(n, "consumers"));
		EXPECT_EQ(me, sysfs_attr(n, "producer_pid"));
		EXPECT_EQ("0", sysfs_attr(n, "consumer_pid"));

		p.publish(100); // 8 + 100 -> 112 bytes
		p.publish(3);	// 8 + 3 -> 16 bytes
		EXPECT_EQ("128", sysfs_attr(n, "bytes_used"));

		// The consumer is another process.
		Pipe ready, go;
		Child c = Child::spawn([&] {
			RawEnd cons;
			int fd = open_queue(n, O_RDONLY);
			if (fd < 0)
				return 1;
			cons.qfd.reset(fd);
			ready.send();
			go.recv(20000);
			return 0;
		});
		ASSERT_EQ(1, ready.recv(10000));
		EXPECT_EQ("1", sysfs_attr(n, "consumers"));
		EXPECT_EQ(std::to_string(c.pid()), sysfs_attr(n, "consumer_pid"));
		go.send();
		ASSERT_TRUE(c.wait_exit());
		EXPECT_TRUE(c.exited_with(0)) << c.describe();
		EXPECT_EQ("0", sysfs_attr(n, "consumers"));
		EXPECT_EQ("0", sysfs_attr(n, "consumer_pid"));

		// Consumption shows in bytes_used.
		RawEnd cons;
		ASSERT_NO_FATAL_FAILURE(cons.open(n, O_RDONLY));
		cons.set_head(112);
		EXPECT_EQ("16", sysfs_attr(n, "bytes_used"));
		cons.set_head(128);
		EXPECT_EQ("0", sysfs_attr(n, "bytes_used"));
	}
	EXPECT_EQ("0", sysfs_attr(n, "producers"));
	EXPECT_EQ("0", sysfs_attr(n, "consumers"));
	EXPECT_EQ("0", sysfs_attr(n, "producer_pid"));
}

TEST_F(Control, SysfsAttributesAreReadOnly)
{
	const std::string n = unique_name("sysro");
	ASSERT_EQ(0, create(n, kCap));
	ASSERT_TRUE(wait_path(dev_path(n), true));
	for (const char *a : {"capacity", "bytes_used", "producers", "consumers", "producer_pid",
			      "consumer_pid"}) {
		struct stat st;
		ASSERT_EQ(0, stat((sysfs_dir(n) + "/" + a).c_str(), &st)) << a;
		EXPECT_EQ(0u, st.st_mode & 0222) << a << " is writable: mode " << std::oct
						 << (st.st_mode & 0777);
	}
	EXPECT_EQ(std::to_string(kCap), sysfs_attr(n, "capacity"));
}

TEST_F(Control, LoadTimeQueueFromParameterExists)
{
	const char *params = getenv("SHMQ_MODULE_PARAMS");
	if (!params || !strstr(params, "unpriv:64K"))
		GTEST_SKIP() << "SHMQ_MODULE_PARAMS does not create 'unpriv:64K'";
	ASSERT_TRUE(wait_path(dev_path("unpriv"), true));
	EXPECT_EQ("65536", sysfs_attr("unpriv", "capacity"));
	std::string q;
	ASSERT_TRUE(read_file(param_path("queues"), &q));
	EXPECT_NE(std::string::npos, q.find("unpriv")) << "queues parameter reads '" << trim(q) << "'";
}
