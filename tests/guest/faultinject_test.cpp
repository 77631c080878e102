// SPDX-License-Identifier: MIT
// FaultInject*: every allocation (and user copy) on the paths of create,
// open, SHMQ_IOC_RING_FD and mmap made to fail in turn with
// /proc/thread-self/fail-nth (debug kernel: FAILSLAB, FAIL_PAGE_ALLOC,
// FAULT_INJECTION_USERCOPY). Each failure must give a clean error and leave
// nothing behind, checked after every injected failure: no queue (destroy
// says ENOENT, no /dev/shmq node, no /sys/class/shmq entry: the queue count
// is back to its baseline), no attachment (the role opens again, sysfs
// producers/consumers 0), the module's reference count back to its baseline
// (no file or mapping kept alive), and at the end no accounted memory (the
// max_total_memory threshold is unchanged); KASAN, kmemleak and lockdep in
// the harness's gates judge the rest. Reports the figure faults_injected.
// Skipped on kernels without fault injection.
#include <dirent.h>

#include "shmq_test.hpp"

using namespace shmqt;

namespace {

constexpr uint64_t kCap = 64 * 1024;
constexpr int kMaxSteps = 2000;

// Injected failures over the suite (create, open, ring fd, mmap).
unsigned long long faults_injected = 0;

// Sets a debugfs knob for the test's duration.
class Knob {
public:
	Knob(const std::string &path, const std::string &value) : path_(path)
	{
		std::string s;
		if (!read_file(path, &s))
			return;
		old_ = trim(s);
		ok_ = write_file(path, value) == 0;
	}
	~Knob()
	{
		if (ok_)
			write_file(path_, old_);
	}
	bool ok() const { return ok_; }

private:
	std::string path_, old_;
	bool ok_ = false;
};

class FaultInject : public testing::Test {
protected:
	void SetUp() override
	{
		SHMQT_REQUIRE_ROOT();
		fd_.reset(::open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC));
		if (!fd_.ok())
			GTEST_SKIP() << "no /proc/thread-self/fail-nth (kernel without fault injection)";
		const std::string dbg = "/sys/kernel/debug/";
		if (!path_exists(dbg + "failslab"))
			GTEST_SKIP() << "debugfs fault-injection knobs not available";
		// Inject into GFP_KERNEL allocations and order-0 pages too, quietly.
		knobs_.emplace_back(new Knob(dbg + "failslab/ignore-gfp-wait", "N"));
		knobs_.emplace_back(new Knob(dbg + "failslab/verbose", "0"));
		knobs_.emplace_back(new Knob(dbg + "fail_page_alloc/ignore-gfp-wait", "N"));
		knobs_.emplace_back(new Knob(dbg + "fail_page_alloc/ignore-gfp-highmem", "N"));
		knobs_.emplace_back(new Knob(dbg + "fail_page_alloc/min-order", "0"));
		knobs_.emplace_back(new Knob(dbg + "fail_page_alloc/verbose", "0"));
		knobs_.emplace_back(new Knob(dbg + "fail_usercopy/verbose", "0"));
		ctl_.reset(control_open());
		ASSERT_TRUE(ctl_.ok());
	}
	void TearDown() override { arm(0); }
	static void TearDownTestSuite()
	{
		if (faults_injected)
			report_figure("faults_injected", faults_injected,
				      "allocation failures injected (fail-nth) across create/open/ring "
				      "fd/mmap, each a clean errno and nothing left behind");
	}

	// The next @n-th fault-injection point of this thread fails.
	void arm(unsigned n)
	{
		if (!fd_.ok())
			return;
		char buf[16];
		int len = snprintf(buf, sizeof buf, "%u", n);
		// Disarming can itself consume the last count (the write copies
		// from user memory) and fail with EFAULT: the counter is 0 then.
		for (int attempt = 0;; attempt++) {
			if (pwrite(fd_.get(), buf, size_t(len), 0) == len)
				return;
			if (n != 0 || errno != EFAULT || attempt > 0) {
				ADD_FAILURE() << "fail-nth write " << n << ": " << errname(errno);
				return;
			}
		}
	}
	// True when the armed failure was injected (the counter reached 0).
	bool injected()
	{
		char buf[16] = {};
		ssize_t n = pread(fd_.get(), buf, sizeof buf - 1, 0);
		const bool hit = n > 0 && strtoul(buf, nullptr, 10) == 0;
		arm(0);
		return hit;
	}

	// Smallest max_total_memory under which a 4K queue still fits: a
	// fingerprint of the module's memory accounting.
	uint64_t accounting_threshold()
	{
		std::string old;
		read_file(param_path("max_total_memory"), &old);
		old = trim(old);
		uint64_t lo = 0, hi = 0;
		parse_size(old, &hi);
		const std::string probe = unique_name("fiprobe");
		while (hi - lo > 1) {
			uint64_t mid = lo + (hi - lo) / 2;
			write_file(param_path("max_total_memory"), std::to_string(mid));
			int e = raw_create(ctl_.get(), probe, SHMQ_MIN_CAPACITY);
			if (e == 0) {
				raw_destroy(ctl_.get(), probe);
				hi = mid;
			} else {
				lo = mid;
			}
		}
		write_file(param_path("max_total_memory"), old);
		return hi;
	}

	Fd fd_, ctl_;
	std::vector<std::unique_ptr<Knob>> knobs_;
};

// Module references: every queue fd, ring fd (and so mapping) and control
// fd holds one (file_operations.owner). -1 when unreadable.
int module_refcnt()
{
	std::string s;
	if (!read_file("/sys/module/shmq/refcnt", &s))
		return -1;
	return atoi(trim(s).c_str());
}

// Queues that exist: entries of /sys/class/shmq. -1 when unreadable.
int queue_count()
{
	DIR *d = opendir("/sys/class/shmq");
	if (!d)
		return -1;
	int n = 0;
	while (struct dirent *e = readdir(d))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

// sysfs producers/consumers of queue @name, -1 when unreadable.
int attached(const std::string &name, const char *role)
{
	std::string s;
	if (!read_file(sysfs_dir(name) + "/" + role, &s))
		return -1;
	return atoi(trim(s).c_str());
}

bool allowed(int e, std::initializer_list<int> ok)
{
	for (int o : ok)
		if (e == o)
			return true;
	return false;
}

} // namespace

TEST_F(FaultInject, CreateFailsCleanlyAtEveryAllocation)
{
	const uint64_t before = accounting_threshold();
	const int refs = module_refcnt(), queues = queue_count();
	ASSERT_GT(refs, 0) << "/sys/module/shmq/refcnt unreadable";
	ASSERT_GE(queues, 0) << "/sys/class/shmq unreadable";
	int injected_failures = 0, steps = 0;
	for (int n = 1; n <= kMaxSteps; n++, steps++) {
		const std::string name = unique_name("fi");
		arm(unsigned(n));
		const int e = raw_create(ctl_.get(), name, kCap);
		const bool hit = injected();
		if (e == 0) {
			EXPECT_EQ(0, raw_destroy(ctl_.get(), name));
			if (!hit)
				break; // every injection point passed
			continue;
		}
		injected_failures++;
		EXPECT_TRUE(hit) << "create failed with " << errname(e) << " without an injected fault (step " << n << ")";
		EXPECT_TRUE(allowed(e, {ENOMEM, EFAULT})) << "step " << n << ": " << errname(e);
		EXPECT_EQ(ENOENT, raw_destroy(ctl_.get(), name)) << "step " << n << ": a failed create left the queue";
		EXPECT_TRUE(wait_path(dev_path(name), false, 2000)) << "step " << n << ": node left behind";
		EXPECT_FALSE(path_exists(sysfs_dir(name))) << "step " << n << ": sysfs entry left behind";
		EXPECT_EQ(queues, queue_count()) << "step " << n << ": queue count changed";
		EXPECT_EQ(refs, module_refcnt()) << "step " << n << ": module reference leaked";
		if (HasFailure())
			break;
	}
	EXPECT_LT(steps, kMaxSteps) << "create never got through";
	EXPECT_GT(injected_failures, 10) << "fault injection did not reach the module's allocations";
	EXPECT_EQ(before, accounting_threshold()) << "failed creates leaked accounted memory";
	EXPECT_EQ(queues, queue_count());
	EXPECT_EQ(refs, module_refcnt());
	faults_injected += unsigned(injected_failures);
	printf("[   INFO   ] %d injected create failures\n", injected_failures);
}

TEST_F(FaultInject, OpenRingFdAndMmapFailCleanly)
{
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kCap, "fi"));
	const uint64_t before = accounting_threshold();
	const int refs = module_refcnt(), queues = queue_count();
	ASSERT_GT(refs, 0) << "/sys/module/shmq/refcnt unreadable";
	int injected_failures = 0;
	// Nothing of a failed step survives it: no attachment, no reference.
	auto nothing_left = [&](const char *what, int n) {
		EXPECT_EQ(0, attached(q.name(), "producers")) << what << " step " << n;
		EXPECT_EQ(0, attached(q.name(), "consumers")) << what << " step " << n;
		EXPECT_EQ(refs, module_refcnt()) << what << " step " << n << ": module reference leaked";
	};
	for (int mode : {O_WRONLY, O_RDONLY}) {
		SCOPED_TRACE(mode == O_WRONLY ? "producer" : "consumer");
		// open(2)
		int failures = 0;
		for (int n = 1; n <= kMaxSteps; n++) {
			arm(unsigned(n));
			int fd = ::open(q.path().c_str(), mode | O_CLOEXEC);
			const int e = fd < 0 ? errno : 0;
			const bool hit = injected();
			if (fd >= 0) {
				close(fd);
				if (!hit)
					break;
				continue;
			}
			failures++;
			EXPECT_TRUE(hit) << "open failed with " << errname(e) << " without an injected fault";
			EXPECT_TRUE(allowed(e, {ENOMEM, EFAULT, ENFILE})) << "open step " << n << ": " << errname(e);
			nothing_left("open", n);
			// A failed open attached nothing.
			Fd again(open_queue(q.name(), mode));
			ASSERT_TRUE(again.ok()) << "open step " << n << " failed with " << errname(e)
						<< " and left the role taken: " << errname(-again.get());
		}
		injected_failures += failures;
		EXPECT_GT(failures, 0);

		// SHMQ_IOC_RING_FD, then mmap of every region.
		for (int n = 1; n <= kMaxSteps; n++) {
			Fd qfd(open_queue(q.name(), mode));
			ASSERT_TRUE(qfd.ok()) << "step " << n << ": " << errname(-qfd.get());
			shmq_layout l;
			ASSERT_EQ(0, get_layout(qfd.get(), &l));
			const int with_qfd = module_refcnt();
			arm(unsigned(n));
			int r = ::ioctl(qfd.get(), SHMQ_IOC_RING_FD, O_CLOEXEC);
			const int e = r < 0 ? errno : 0;
			bool hit = injected();
			Fd ring(r);
			if (r < 0) {
				EXPECT_TRUE(hit);
				EXPECT_TRUE(allowed(e, {ENOMEM, EMFILE, ENFILE})) << "RING_FD step " << n << ": " << errname(e);
				injected_failures++;
				// Only the queue fd holds references now.
				EXPECT_EQ(with_qfd, module_refcnt()) << "RING_FD step " << n << ": reference leaked";
			} else {
				// Map each region with its own fault point budget.
				const shmq_region regs[] = {l.status, l.producer, l.consumer, l.data};
				const bool prodw[] = {false, true, false, true}, consw[] = {false, false, true, false};
				std::vector<Map> maps;
				bool all_done = !hit;
				for (int i = 0; i < 4; i++) {
					const bool w = mode == O_WRONLY ? prodw[i] : consw[i];
					Map m;
					arm(unsigned(n));
					int me = map_region(ring.get(), regs[i], w ? PROT_READ | PROT_WRITE : PROT_READ, &m);
					bool mhit = injected();
					if (me) {
						EXPECT_TRUE(mhit) << "mmap failed without injection: " << errname(me);
						EXPECT_TRUE(allowed(me, {ENOMEM, EFAULT, EAGAIN}))
							<< "mmap step " << n << " region " << i << ": " << errname(me);
						if (mhit)
							injected_failures++;
					} else {
						// The mapping works in full.
						volatile uint8_t *b = m.bytes();
						for (size_t off = 0; off < m.size(); off += page_size())
							(void)b[off];
						maps.push_back(std::move(m));
					}
					all_done = all_done && !mhit;
				}
				maps.clear();
				if (all_done) {
					ring.reset();
					qfd.reset();
					nothing_left("mmap", n);
					break;
				}
			}
			// Everything goes away: the role must be free again.
			ring.reset();
			qfd.reset();
			nothing_left("RING_FD/mmap", n);
			if (HasFailure())
				break;
		}
		Fd again(open_queue(q.name(), mode));
		EXPECT_TRUE(again.ok()) << "role still taken after the RING_FD/mmap failures: " << errname(-again.get());
	}
	EXPECT_EQ(before, accounting_threshold()) << "failed opens/mmaps changed accounted memory";
	EXPECT_EQ(queues, queue_count());
	faults_injected += unsigned(injected_failures);
	printf("[   INFO   ] %d injected open/RING_FD/mmap failures\n", injected_failures);
	// The queue still works end to end.
	auto p = shmq::Producer::open(q.name());
	auto c = shmq::Consumer::open(q.name());
	ASSERT_TRUE(p && c);
	uint8_t m[100] = {7}, buf[128];
	ASSERT_TRUE(p->try_send(as_bytes(m, sizeof m)).has_value());
	auto r = c->try_receive(as_wbytes(buf, sizeof buf));
	ASSERT_TRUE(r);
	EXPECT_EQ(100u, *r);
}

TEST_F(FaultInject, UserCopyFailuresGiveEFAULT)
{
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kCap, "fi"));
	Fd c(open_queue(q.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	shmq_layout l;
	arm(1);
	int e = xioctl(c.get(), SHMQ_IOC_LAYOUT, &l);
	bool hit = injected();
	if (hit) {
		EXPECT_EQ(EFAULT, e) << "LAYOUT with a failing copy_to_user";
	}
	arm(1);
	e = raw_wait(c.get(), SHMQ_WAIT_READABLE, 0, 0);
	hit = injected();
	if (hit) {
		EXPECT_EQ(EFAULT, e) << "WAIT with a failing copy_from_user";
	} else {
		EXPECT_EQ(ETIMEDOUT, e);
	}
	arm(1);
	shmq_create_args a = create_args(unique_name("fi"), kCap);
	e = xioctl(ctl_.get(), SHMQ_IOC_CREATE, &a);
	hit = injected();
	if (hit) {
		EXPECT_EQ(EFAULT, e);
		EXPECT_EQ(ENOENT, raw_destroy(ctl_.get(), a.name));
	} else if (e == 0) {
		raw_destroy(ctl_.get(), a.name);
	}
}
