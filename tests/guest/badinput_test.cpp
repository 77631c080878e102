// SPDX-License-Identifier: MIT
// BadIoctl*, BadMmap*: hostile input for every ioctl and for mmap (issue 3).
//
// BadIoctl.Matrix is table driven: each row changes one thing of a valid
// call (one field, one flag bit, the argument pointer, the command number,
// the kind of fd) and names the exact errno docs/abi.md promises. Every row
// also checks that the failing call changed nothing: the argument memory
// (poisoned around the argument; in-arguments must not be written, the
// LAYOUT out-argument only on success), the queues in /sys/class/shmq, the
// fixture queue's status words and sysfs attributes, and the fd table.
// BadMmap does the same for mmap/mprotect/mremap/madvise and the lifetime of
// mappings (fork, close of every fd, destroy). The counts are reported as
// figures bad_ioctl_inputs and bad_mmap_inputs.
//
// Not repeated here (see other suites): rmmod refused while only a mapping
// holds the module (ZModule.RmmodRefusedWhileOnlyRingFdOrMappingExists),
// writes through read-only mappings (Mmap.WritesToEveryReadOnlyRegionFault),
// max_queues / max_total_memory limits (Control.*).
#include "shmq_test.hpp"

#include <dirent.h>
#include <set>
#include <sys/resource.h>
#include <sys/uio.h>
#include <termios.h>

using namespace shmqt;

namespace {

constexpr uint64_t kCap = 64 * 1024;
constexpr uint64_t kKtimeMax = uint64_t(INT64_MAX);

unsigned long long g_ioctl_cases;
unsigned long long g_mmap_cases;

std::set<std::string> class_entries()
{
	std::set<std::string> s;
	DIR *d = opendir("/sys/class/shmq");
	if (!d)
		return s;
	while (struct dirent *e = readdir(d))
		if (e->d_name[0] != '.')
			s.insert(e->d_name);
	closedir(d);
	return s;
}

std::string join(const std::set<std::string> &s)
{
	std::string r;
	for (const auto &x : s)
		r += (r.empty() ? "" : ",") + x;
	return "{" + r + "}";
}

int lowest_free_fd()
{
	int fd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		::close(fd);
	return fd;
}

unsigned long taint()
{
	std::string s;
	if (!read_file("/proc/sys/kernel/tainted", &s))
		return 0;
	return strtoul(s.c_str(), nullptr, 10);
}
constexpr unsigned long kTaintWarn = 1ul << 9;

std::string sysattr(const std::string &q, const char *a)
{
	std::string s;
	int err = 0;
	if (!read_file(sysfs_dir(q) + "/" + a, &s, &err))
		return "<" + errname(err) + ">";
	return trim(s);
}

template <class T> std::vector<uint8_t> bytes_of(const T &t)
{
	std::vector<uint8_t> v(sizeof t);
	memcpy(v.data(), &t, sizeof t);
	return v;
}

unsigned long ioc(unsigned dir, unsigned type, unsigned nr, unsigned size)
{
	return _IOC(dir, type, nr, size);
}

std::string hex(unsigned long long v) { return strprintf("0x%llx", v); }

// @s with bytes outside printable ASCII as \xNN.
std::string printable(const std::string &s)
{
	std::string r;
	for (unsigned char ch : s)
		r += (ch >= 0x20 && ch < 0x7f) ? std::string(1, char(ch)) : strprintf("\\x%02x", ch);
	return r;
}

// Fails the test if the kernel taint W bit (a WARN) appeared since @before.
void expect_no_new_warning(unsigned long before, const char *what)
{
	const unsigned long now = taint();
	EXPECT_FALSE((now & kTaintWarn) && !(before & kTaintWarn))
		<< what << ": the kernel printed a WARNING (taint " << before << " -> " << now
		<< "); see the console log";
}

// ---------------------------------------------------------------------------
// Argument memory: two writable pages, an unmapped hole, a read-only page and
// a PROT_NONE page. Everything is poisoned before each call and compared
// afterwards.

class Arena {
public:
	Arena()
	{
		ps_ = page_size();
		void *p = mmap(nullptr, 5 * ps_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return;
		b_ = static_cast<uint8_t *>(p);
		// The hole is reserved (PROT_NONE) except around the calls that
		// use it, so that no other mapping of this process lands there.
		if (mprotect(b_ + 2 * ps_, ps_, PROT_NONE) || mprotect(b_ + 3 * ps_, ps_, PROT_READ) ||
		    mprotect(b_ + 4 * ps_, ps_, PROT_NONE)) {
			munmap(b_, 5 * ps_);
			b_ = nullptr;
		}
	}
	~Arena()
	{
		if (b_)
			munmap(b_, 5 * ps_);
	}
	// Unmaps the hole for one call; close_hole() reserves it again.
	bool open_hole() { return munmap(hole(), ps_) == 0; }
	bool close_hole()
	{
		return mmap(hole(), ps_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == hole();
	}
	Arena(const Arena &) = delete;
	Arena &operator=(const Arena &) = delete;
	bool ok() const { return b_ != nullptr; }
	size_t ps() const { return ps_; }
	uint8_t *rw() const { return b_; } // 2 pages
	uint8_t *hole() const { return b_ + 2 * ps_; }
	uint8_t *ro() const { return b_ + 3 * ps_; }
	uint8_t *none() const { return b_ + 4 * ps_; }

	void poison()
	{
		memset(b_, 0x5a, 2 * ps_);
		mprotect(ro(), ps_, PROT_READ | PROT_WRITE);
		memset(ro(), 0x5a, ps_);
		mprotect(ro(), ps_, PROT_READ);
	}
	void write_ro(size_t off, const std::vector<uint8_t> &v)
	{
		mprotect(ro(), ps_, PROT_READ | PROT_WRITE);
		memcpy(ro() + off, v.data(), v.size());
		mprotect(ro(), ps_, PROT_READ);
	}
	// The two writable pages followed by the read-only page.
	std::vector<uint8_t> snapshot() const
	{
		std::vector<uint8_t> v(3 * ps_);
		memcpy(v.data(), b_, 2 * ps_);
		memcpy(v.data() + 2 * ps_, ro(), ps_);
		return v;
	}

private:
	size_t ps_ = 0;
	uint8_t *b_ = nullptr;
};

// Where the argument of a row lives.
enum Place {
	kBuf,	     // in writable memory, poison around it
	kExactEnd,   // ends at the last byte before the unmapped hole
	kRO,	     // in a PROT_READ page
	kStraddle,   // first half writable, second half in the unmapped hole
	kHole,	     // in the unmapped hole
	kProtNone,   // in a PROT_NONE page
	kNull,	     // NULL
	kMinus1,     // (void *)-1
	kLow,	     // (void *)16
	kKernel,     // a kernel address
	kNonCanon,   // first address above the 47-bit user space
	kRingStatus, // the caller's own read-only status mapping
	kValue,	     // not a pointer: the integer argument of _IO ioctls
};
const char *const kPlaceName[] = {"in writable memory", "ending at a hole", "in a read-only page",
				  "straddling into a hole", "in an unmapped hole", "in a PROT_NONE page",
				  "NULL", "(void *)-1", "(void *)16", "a kernel address",
				  "a non-canonical address", "the read-only status mapping", "value"};

enum FdKind { kCtl, kCtlRO, kProd, kCons, kProdRing, kConsRing, kFdKinds };
const char *const kFdName[] = {"control fd", "read-only control fd", "producer fd", "consumer fd",
			       "producer ring fd", "consumer ring fd"};

struct Row {
	std::string what;
	FdKind fd;
	unsigned long cmd;
	Place place;
	std::vector<uint8_t> arg; // pointer places
	unsigned long value;	  // kValue
	int expect;		  // errno, 0 for success
};

// What must not change when a call fails.
struct State {
	std::set<std::string> entries;
	uint32_t read_waiters = 0, write_waiters = 0, state = 0;
	uint64_t write_need = 0;
	std::string producers, consumers, used, victim_cap;
	int lowfd = -1;
	bool operator==(const State &) const = default;
};

std::string describe(const State &s)
{
	return strprintf("queues %s, status rw=%u ww=%u need=%llu state=%u, sysfs producers=%s consumers=%s "
			 "bytes_used=%s, victim capacity=%s, lowest free fd %d",
			 join(s.entries).c_str(), s.read_waiters, s.write_waiters,
			 (unsigned long long)s.write_need, s.state, s.producers.c_str(), s.consumers.c_str(),
			 s.used.c_str(), s.victim_cap.c_str(), s.lowfd);
}

class BadIoctl : public testing::Test {
protected:
	void SetUp() override
	{
		SHMQT_REQUIRE_ROOT();
		taint0_ = taint();
		ASSERT_TRUE(arena_.ok()) << "arena mmap failed";
		int fd = control_open(O_RDWR);
		ASSERT_GE(fd, 0) << "open " << control_path() << ": " << errname(-fd);
		fds_[kCtl].reset(fd);
		fd = control_open(O_RDONLY);
		ASSERT_GE(fd, 0) << "open " << control_path() << " O_RDONLY: " << errname(-fd);
		fds_[kCtlRO].reset(fd);

		victim_ = unique_name("bivic");
		ASSERT_EQ(0, raw_create(ctl(), victim_, kCap)) << victim_;
		ASSERT_NO_FATAL_FAILURE(q_.create(kCap, "biq"));
		fd = open_queue(q_.name(), O_WRONLY);
		ASSERT_GE(fd, 0) << errname(-fd);
		fds_[kProd].reset(fd);
		fd = open_queue(q_.name(), O_RDONLY);
		ASSERT_GE(fd, 0) << errname(-fd);
		fds_[kCons].reset(fd);
		ASSERT_EQ(0, get_layout(fds_[kProd].get(), &lay_[0]));
		ASSERT_EQ(0, get_layout(fds_[kCons].get(), &lay_[1]));
		fd = ring_fd(fds_[kProd].get());
		ASSERT_GE(fd, 0) << errname(-fd);
		fds_[kProdRing].reset(fd);
		fd = ring_fd(fds_[kCons].get());
		ASSERT_GE(fd, 0) << errname(-fd);
		fds_[kConsRing].reset(fd);
		ASSERT_EQ(0, map_region(fds_[kConsRing].get(), lay_[1].status, PROT_READ, &cstatus_));
		ASSERT_EQ(0, map_region(fds_[kProdRing].get(), lay_[0].status, PROT_READ, &pstatus_));
	}
	void TearDown() override
	{
		if (!victim_.empty()) {
			int e = raw_destroy(ctl(), victim_);
			if (e && e != ENOENT)
				ADD_FAILURE() << "cleanup: destroy " << victim_ << ": " << errname(e);
		}
		if (is_root())
			expect_no_new_warning(taint0_, "BadIoctl");
	}
	static void TearDownTestSuite()
	{
		if (g_ioctl_cases)
			report_figure("bad_ioctl_inputs", g_ioctl_cases, "ioctl inputs tried, each with its exact errno");
	}

	int ctl() const { return fds_[kCtl].get(); }

	State state() const
	{
		State s;
		s.entries = class_entries();
		const shmq_layout &L = lay_[1];
		s.read_waiters = load_acquire<uint32_t>(cstatus_.get(), L.read_wake_off);
		s.write_waiters = load_acquire<uint32_t>(cstatus_.get(), L.write_wake_off);
		s.write_need = load_acquire<uint64_t>(cstatus_.get(), L.write_need_off);
		s.state = load_acquire<uint32_t>(cstatus_.get(), L.state_off);
		s.producers = sysattr(q_.name(), "producers");
		s.consumers = sysattr(q_.name(), "consumers");
		s.used = sysattr(q_.name(), "bytes_used");
		s.victim_cap = sysattr(victim_, "capacity");
		s.lowfd = lowest_free_fd();
		return s;
	}

	// Places the argument; returns the pointer and the offset of its first
	// byte in Arena::snapshot() (or SIZE_MAX when not in the arena).
	void *place(const Row &r, size_t *snap_off)
	{
		const size_t ps = arena_.ps(), n = r.arg.size();
		*snap_off = SIZE_MAX;
		switch (r.place) {
		case kBuf:
			memcpy(arena_.rw() + 256, r.arg.data(), n);
			*snap_off = 256;
			return arena_.rw() + 256;
		case kExactEnd:
			memcpy(arena_.rw() + 2 * ps - n, r.arg.data(), n);
			*snap_off = 2 * ps - n;
			return arena_.rw() + 2 * ps - n;
		case kRO:
			arena_.write_ro(64, r.arg);
			*snap_off = 2 * ps + 64;
			return arena_.ro() + 64;
		case kStraddle: {
			const size_t half = n / 2;
			memcpy(arena_.rw() + 2 * ps - half, r.arg.data(), half);
			*snap_off = 2 * ps - half;
			return arena_.rw() + 2 * ps - half;
		}
		case kHole:
			return arena_.hole() + 8;
		case kProtNone:
			return arena_.none() + 8;
		case kNull:
			return nullptr;
		case kMinus1:
			return reinterpret_cast<void *>(~uintptr_t(0));
		case kLow:
			return reinterpret_cast<void *>(uintptr_t(16));
		case kKernel:
			return reinterpret_cast<void *>(uintptr_t(0xffffffff81000000ull));
		case kNonCanon:
			return reinterpret_cast<void *>(uintptr_t(0x0000800000000000ull));
		case kRingStatus:
			return r.fd == kProd ? pstatus_.get() : cstatus_.get();
		case kValue:
			return reinterpret_cast<void *>(r.value);
		}
		return nullptr;
	}

	void run_row(size_t idx, const Row &r);

	Arena arena_;
	Fd fds_[kFdKinds];
	std::string victim_;
	TestQueue q_;
	shmq_layout lay_[2]{};
	Map cstatus_, pstatus_;
	unsigned long taint0_ = 0;
};

void BadIoctl::run_row(size_t idx, const Row &r)
{
	const std::string name = strprintf("row %zu '%s' (%s, cmd %s, argument %s)", idx, r.what.c_str(),
					   kFdName[r.fd], hex(r.cmd).c_str(), kPlaceName[r.place]);
	SCOPED_TRACE(name);
	g_ioctl_cases++;
	arena_.poison();
	size_t off = SIZE_MAX;
	void *argp = place(r, &off);
	const std::vector<uint8_t> before_mem = arena_.snapshot();
	const State before = state();

	const bool hole = r.place == kHole || r.place == kStraddle;
	ASSERT_TRUE(!hole || arena_.open_hole()) << name << ": munmap of the hole";
	errno = 0;
	const long rc = ::ioctl(fds_[r.fd].get(), r.cmd, argp);
	const int e = rc < 0 ? errno : 0;
	ASSERT_TRUE(!hole || arena_.close_hole()) << name << ": mmap of the hole";
	const std::vector<uint8_t> after_mem = arena_.snapshot();
	EXPECT_EQ(errname(r.expect), errname(e)) << name << ": ioctl returned " << rc;
	if (rc < -1)
		ADD_FAILURE() << name << ": ioctl returned " << rc;

	const bool is_create = r.cmd == SHMQ_IOC_CREATE && r.fd == kCtl && e == 0;
	const bool is_destroy = r.cmd == SHMQ_IOC_DESTROY && r.fd == kCtl && e == 0;
	const bool is_ring = r.cmd == SHMQ_IOC_RING_FD && (r.fd == kProd || r.fd == kCons) && e == 0;
	const bool is_layout = r.cmd == SHMQ_IOC_LAYOUT && (r.fd == kProd || r.fd == kCons);

	// Argument memory: only a LAYOUT may write, exactly the layout, and
	// when it fails half-way (straddle) only a prefix of it.
	{
		std::vector<uint8_t> want = before_mem;
		size_t lo = SIZE_MAX, hi = SIZE_MAX;
		if (is_layout && off != SIZE_MAX) {
			const shmq_layout &L = lay_[r.fd == kProd ? 0 : 1];
			const size_t n = std::min(sizeof L, want.size() - off);
			if (e == 0)
				memcpy(want.data() + off, &L, n);
			else {
				lo = off;
				hi = off + std::min(n, 2 * arena_.ps() - off);
			}
		}
		for (size_t i = 0; i < want.size(); i++) {
			if (after_mem[i] == want[i])
				continue;
			if (i >= lo && i < hi &&
			    after_mem[i] == reinterpret_cast<const uint8_t *>(&lay_[r.fd == kProd ? 0 : 1])[i - lo])
				continue; // a prefix of the layout before the fault
			ADD_FAILURE() << name << ": argument memory changed at byte " << i << " (argument at "
				      << (off == SIZE_MAX ? std::string("-") : std::to_string(off)) << "): "
				      << hex(want[i]) << " -> " << hex(after_mem[i]);
			break;
		}
	}

	State after = state();
	State expect = before;
	if (is_create) {
		std::string n(reinterpret_cast<const char *>(r.arg.data()) + offsetof(shmq_create_args, name),
			      strnlen(reinterpret_cast<const char *>(r.arg.data()) + offsetof(shmq_create_args, name),
				      SHMQ_NAME_MAX));
		expect.entries.insert(n);
		EXPECT_EQ(join(expect.entries), join(after.entries)) << name << ": created something else";
		EXPECT_EQ(0, raw_destroy(ctl(), n)) << name << ": destroy of the created " << n;
		after = state();
		expect = before;
	} else if (is_destroy) {
		expect.entries.erase(victim_);
		EXPECT_EQ(join(expect.entries), join(after.entries)) << name << ": destroyed something else";
		EXPECT_EQ(0, raw_create(ctl(), victim_, kCap)) << name << ": recreate " << victim_;
		after = state();
		expect = before;
	} else if (is_ring) {
		EXPECT_EQ(before.lowfd, int(rc)) << name << ": ring fd is not the lowest free fd";
		const int fl = fcntl(int(rc), F_GETFD);
		EXPECT_EQ((r.value & O_CLOEXEC) ? FD_CLOEXEC : 0, fl & FD_CLOEXEC) << name;
		::close(int(rc));
		after = state();
	} else if (rc > 0) {
		ADD_FAILURE() << name << ": unexpected return value " << rc << " (closing it)";
		::close(int(rc));
		after = state();
	}
	EXPECT_TRUE(expect == after) << name << ": state changed\n  before: " << describe(before)
				     << "\n  after:  " << describe(after);
}

// Rows of one ioctl argument struct with one field changed.
template <class T> Row row(std::string what, FdKind fd, unsigned long cmd, const T &arg, int expect,
			  Place place = kBuf)
{
	return Row{std::move(what), fd, cmd, place, bytes_of(arg), 0, expect};
}
Row vrow(std::string what, FdKind fd, unsigned long cmd, unsigned long value, int expect)
{
	return Row{std::move(what), fd, cmd, kValue, {}, value, expect};
}

const Place kBadPointers[] = {kStraddle, kHole, kProtNone, kNull, kMinus1, kLow, kKernel, kNonCanon};

} // namespace

TEST_F(BadIoctl, Matrix)
{
	std::vector<Row> rows;
	uint64_t max_qs = 0;
	ASSERT_TRUE(read_param("max_queue_size", &max_qs));
	uint64_t above_max = SHMQ_MIN_CAPACITY;
	while (above_max <= max_qs && above_max < (uint64_t(1) << 63))
		above_max <<= 1;

	// ---- SHMQ_IOC_CREATE (control fd) ----
	auto cr = [] { return create_args(unique_name("bicr"), kCap); };
	rows.push_back(row("valid CREATE", kCtl, SHMQ_IOC_CREATE, cr(), 0));
	for (int b = 0; b < 32; b++) {
		auto a = cr();
		a.flags = 1u << b;
		rows.push_back(row(strprintf("CREATE flags bit %d", b), kCtl, SHMQ_IOC_CREATE, a, EINVAL));
	}
	for (uint32_t v : {1u, 0x80000000u, ~0u}) {
		auto a = cr();
		a.__pad = v;
		rows.push_back(row("CREATE __pad " + hex(v), kCtl, SHMQ_IOC_CREATE, a, EINVAL));
	}
	for (int i = 0; i < 4; i++)
		for (uint64_t v : {uint64_t(1), uint64_t(1) << 63, ~uint64_t(0)}) {
			auto a = cr();
			a.reserved[i] = v;
			rows.push_back(row(strprintf("CREATE reserved[%d] ", i) + hex(v), kCtl, SHMQ_IOC_CREATE, a,
					   EINVAL));
		}
	for (auto [cap, err] : std::initializer_list<std::pair<uint64_t, int>>{
		     {0, EINVAL},
		     {1, EINVAL},
		     {SHMQ_MIN_CAPACITY - 1, EINVAL},
		     {SHMQ_MIN_CAPACITY, 0},
		     {SHMQ_MIN_CAPACITY + 1, EINVAL},
		     {3 * SHMQ_MIN_CAPACITY, EINVAL},
		     {max_qs + 1, EINVAL},
		     {above_max, EFBIG},
		     {above_max + SHMQ_MIN_CAPACITY, EINVAL},
		     {uint64_t(1) << 62, EFBIG},
		     {uint64_t(1) << 63, EFBIG},
		     {~uint64_t(0), EINVAL}}) {
		auto a = create_args(unique_name("bicap"), cap);
		rows.push_back(row("CREATE capacity " + std::to_string(cap), kCtl, SHMQ_IOC_CREATE, a, err));
	}
	{
		std::string n63 = unique_name("bi63");
		n63 += std::string(63 - n63.size(), 'x');
		rows.push_back(row("CREATE 63-character name", kCtl, SHMQ_IOC_CREATE, create_args(n63, kCap), 0));
		auto a = create_args("", kCap);
		memset(a.name, 'y', sizeof a.name);
		rows.push_back(row("CREATE 64 characters, no NUL", kCtl, SHMQ_IOC_CREATE, a, ENAMETOOLONG));
		memset(a.name, 0xff, sizeof a.name);
		rows.push_back(row("CREATE 64 bytes 0xff, no NUL", kCtl, SHMQ_IOC_CREATE, a, ENAMETOOLONG));
		a = cr();
		const size_t len = strlen(a.name);
		memset(a.name + len + 1, 'j', sizeof a.name - len - 1);
		a.name[sizeof a.name - 1] = 'j';
		rows.push_back(row("CREATE name followed by junk after its NUL (ignored)", kCtl, SHMQ_IOC_CREATE, a, 0));
		for (const char *bad : {"", ".", "..", ".x", "a/b", "a b", "\xff", "a\nb"})
			rows.push_back(row("CREATE name '" + printable(bad) + "'", kCtl, SHMQ_IOC_CREATE,
					   create_args(bad, kCap), EINVAL));
		rows.push_back(row("CREATE name of an existing queue", kCtl, SHMQ_IOC_CREATE,
				   create_args(victim_, kCap), EEXIST));
	}
	rows.push_back(row("CREATE argument read-only (read by the kernel)", kCtl, SHMQ_IOC_CREATE, cr(), 0, kRO));
	rows.push_back(row("CREATE argument at the end of a mapping", kCtl, SHMQ_IOC_CREATE, cr(), 0, kExactEnd));
	for (Place p : kBadPointers)
		rows.push_back(row(std::string("CREATE argument ") + kPlaceName[p], kCtl, SHMQ_IOC_CREATE, cr(),
				   EFAULT, p));
	{
		rows.push_back(row("CREATE through a read-only control fd", kCtlRO, SHMQ_IOC_CREATE, cr(), EBADF));
		rows.push_back(row("CREATE NULL through a read-only control fd", kCtlRO, SHMQ_IOC_CREATE, cr(), EBADF,
				   kNull));
		auto a = cr();
		a.flags = 1;
		rows.push_back(row("CREATE bad flags through a read-only control fd", kCtlRO, SHMQ_IOC_CREATE, a,
				   EBADF));
	}

	// ---- SHMQ_IOC_DESTROY (control fd), target: the victim queue ----
	auto ds = [&] { return destroy_args(victim_); };
	rows.push_back(row("valid DESTROY", kCtl, SHMQ_IOC_DESTROY, ds(), 0));
	for (int b = 0; b < 32; b++) {
		auto a = ds();
		a.flags = 1u << b;
		rows.push_back(row(strprintf("DESTROY flags bit %d", b), kCtl, SHMQ_IOC_DESTROY, a, EINVAL));
	}
	for (uint32_t v : {1u, 0x80000000u, ~0u}) {
		auto a = ds();
		a.__pad = v;
		rows.push_back(row("DESTROY __pad " + hex(v), kCtl, SHMQ_IOC_DESTROY, a, EINVAL));
	}
	for (int i = 0; i < 3; i++)
		for (uint64_t v : {uint64_t(1), uint64_t(1) << 63, ~uint64_t(0)}) {
			auto a = ds();
			a.reserved[i] = v;
			rows.push_back(row(strprintf("DESTROY reserved[%d] ", i) + hex(v), kCtl, SHMQ_IOC_DESTROY, a,
					   EINVAL));
		}
	{
		auto a = destroy_args("");
		memset(a.name, 'y', sizeof a.name);
		rows.push_back(row("DESTROY 64 characters, no NUL", kCtl, SHMQ_IOC_DESTROY, a, ENAMETOOLONG));
		a = ds();
		memset(a.name + victim_.size() + 1, 'j', sizeof a.name - victim_.size() - 1);
		rows.push_back(row("DESTROY name followed by junk after its NUL (ignored)", kCtl, SHMQ_IOC_DESTROY, a, 0));
		for (const char *bad : {"", ".", ".x", "a/b", "\xff"})
			rows.push_back(row("DESTROY name '" + printable(bad) + "'", kCtl, SHMQ_IOC_DESTROY,
					   destroy_args(bad), EINVAL));
		rows.push_back(row("DESTROY unknown name", kCtl, SHMQ_IOC_DESTROY, destroy_args(unique_name("none")),
				   ENOENT));
		rows.push_back(row("DESTROY victim name + 'x'", kCtl, SHMQ_IOC_DESTROY, destroy_args(victim_ + "x"),
				   ENOENT));
		rows.push_back(row("DESTROY victim name minus its last character", kCtl, SHMQ_IOC_DESTROY,
				   destroy_args(victim_.substr(0, victim_.size() - 1)), ENOENT));
	}
	rows.push_back(row("DESTROY argument read-only", kCtl, SHMQ_IOC_DESTROY, ds(), 0, kRO));
	rows.push_back(row("DESTROY argument at the end of a mapping", kCtl, SHMQ_IOC_DESTROY, ds(), 0, kExactEnd));
	for (Place p : kBadPointers)
		rows.push_back(row(std::string("DESTROY argument ") + kPlaceName[p], kCtl, SHMQ_IOC_DESTROY, ds(),
				   EFAULT, p));
	rows.push_back(row("DESTROY through a read-only control fd", kCtlRO, SHMQ_IOC_DESTROY, ds(), EBADF));
	rows.push_back(row("DESTROY NULL through a read-only control fd", kCtlRO, SHMQ_IOC_DESTROY, ds(), EBADF,
			   kNull));

	// ---- SHMQ_IOC_LAYOUT (queue fds): the argument is poisoned ----
	shmq_layout poison;
	memset(&poison, 0xa5, sizeof poison);
	for (FdKind fd : {kProd, kCons}) {
		rows.push_back(row("valid LAYOUT", fd, SHMQ_IOC_LAYOUT, poison, 0));
		rows.push_back(row("LAYOUT at the end of a mapping", fd, SHMQ_IOC_LAYOUT, poison, 0, kExactEnd));
		rows.push_back(row("LAYOUT into a read-only page", fd, SHMQ_IOC_LAYOUT, poison, EFAULT, kRO));
		rows.push_back(row("LAYOUT into the caller's read-only status mapping", fd, SHMQ_IOC_LAYOUT, poison,
				   EFAULT, kRingStatus));
		for (Place p : kBadPointers)
			rows.push_back(row(std::string("LAYOUT into ") + kPlaceName[p], fd, SHMQ_IOC_LAYOUT, poison,
					   EFAULT, p));
	}

	// ---- SHMQ_IOC_WAIT (queue fds) ----
	// Valid inputs that return at once: the consumer's READABLE on the
	// empty ring with a past deadline (ETIMEDOUT), the producer's WRITABLE
	// of 1 byte on the empty ring (0).
	auto wv = [](FdKind fd) {
		shmq_wait_args w;
		memset(&w, 0, sizeof w);
		w.cond = fd == kProd ? SHMQ_WAIT_WRITABLE : SHMQ_WAIT_READABLE;
		w.min_bytes = fd == kProd ? 1 : 0;
		return w;
	};
	auto wok = [](FdKind fd) { return fd == kProd ? 0 : ETIMEDOUT; };
	for (FdKind fd : {kProd, kCons}) {
		rows.push_back(row("valid WAIT", fd, SHMQ_IOC_WAIT, wv(fd), wok(fd)));
		for (int b = 0; b < 32; b++) {
			auto w = wv(fd);
			w.flags = 1u << b;
			// SHMQ_WAIT_DIR_GEN is for consumers of lane queues
			// (SHMQ_IOC_CREATE2); this queue is SHMQ_IOC_CREATE's.
			const bool ok = (w.flags & SHMQ_WAIT_FLAGS_ALL) && w.flags != SHMQ_WAIT_DIR_GEN;
			rows.push_back(row(strprintf("WAIT flags bit %d", b), fd, SHMQ_IOC_WAIT, w,
					   ok ? wok(fd) : EINVAL));
		}
		for (int i = 0; i < 2; i++)
			for (uint64_t v : {uint64_t(1), uint64_t(1) << 63, ~uint64_t(0)}) {
				auto w = wv(fd);
				w.reserved[i] = v;
				rows.push_back(row(strprintf("WAIT reserved[%d] ", i) + hex(v), fd, SHMQ_IOC_WAIT, w,
						   EINVAL));
			}
		for (uint32_t c : {0u, 3u, 4u, 0x80000000u, ~0u}) {
			auto w = wv(fd);
			w.cond = c;
			rows.push_back(row("WAIT cond " + hex(c), fd, SHMQ_IOC_WAIT, w, EINVAL));
		}
		{
			auto w = wv(fd);
			w.cond = fd == kProd ? SHMQ_WAIT_READABLE : SHMQ_WAIT_WRITABLE;
			w.min_bytes = fd == kProd ? 0 : 1;
			rows.push_back(row("WAIT condition of the other role", fd, SHMQ_IOC_WAIT, w, EINVAL));
		}
		rows.push_back(row("WAIT argument read-only (read by the kernel)", fd, SHMQ_IOC_WAIT, wv(fd), wok(fd),
				   kRO));
		rows.push_back(row("WAIT argument at the end of a mapping", fd, SHMQ_IOC_WAIT, wv(fd), wok(fd),
				   kExactEnd));
		// The status words as arguments: cond = the state word = 3.
		rows.push_back(row("WAIT argument read from the status mapping (cond 3)", fd, SHMQ_IOC_WAIT, wv(fd),
				   EINVAL, kRingStatus));
		for (Place p : kBadPointers)
			rows.push_back(row(std::string("WAIT argument ") + kPlaceName[p], fd, SHMQ_IOC_WAIT, wv(fd),
					   EFAULT, p));
	}
	for (auto [mb, err] : std::initializer_list<std::pair<uint64_t, int>>{
		     {0, EINVAL},
		     {kCap - 1, 0},
		     {kCap, 0},
		     {kCap + 1, EINVAL},
		     {(uint64_t(1) << 32) | 1, EINVAL},
		     {uint64_t(1) << 63, EINVAL},
		     {~uint64_t(0), EINVAL}}) {
		auto w = wv(kProd);
		w.min_bytes = mb;
		rows.push_back(row("WAIT WRITABLE min_bytes " + hex(mb), kProd, SHMQ_IOC_WAIT, w, err));
	}
	for (uint64_t mb : {uint64_t(1), kCap, ~uint64_t(0)}) {
		auto w = wv(kCons);
		w.min_bytes = mb;
		rows.push_back(row("WAIT READABLE min_bytes " + hex(mb), kCons, SHMQ_IOC_WAIT, w, EINVAL));
	}
	// Deadlines: the consumer's condition is false (times out at once for
	// any past deadline); the producer's is true (0 for every deadline,
	// including the "no timeout" ones, without sleeping).
	for (uint64_t t : {uint64_t(1), now_ns() - 1000000}) {
		auto w = wv(kCons);
		w.timeout_ns = t;
		rows.push_back(row("WAIT READABLE past deadline " + std::to_string(t), kCons, SHMQ_IOC_WAIT, w,
				   ETIMEDOUT));
	}
	for (uint64_t t : {kKtimeMax - 1, kKtimeMax, uint64_t(1) << 63, ~uint64_t(0)}) {
		auto w = wv(kProd);
		w.timeout_ns = t;
		rows.push_back(row("WAIT WRITABLE (true) deadline " + hex(t), kProd, SHMQ_IOC_WAIT, w, 0));
	}

	// ---- SHMQ_IOC_RING_FD and SHMQ_IOC_WAKE (queue fds, integer arguments) ----
	for (FdKind fd : {kProd, kCons}) {
		rows.push_back(vrow("RING_FD 0", fd, SHMQ_IOC_RING_FD, 0, 0));
		rows.push_back(vrow("RING_FD O_CLOEXEC", fd, SHMQ_IOC_RING_FD, O_CLOEXEC, 0));
		for (unsigned long v :
		     {1ul, (unsigned long)O_NONBLOCK, (unsigned long)O_RDWR, (unsigned long)O_WRONLY,
		      (unsigned long)(O_CLOEXEC | 1), (unsigned long)(O_CLOEXEC | O_NONBLOCK), (unsigned long)O_CLOEXEC << 1,
		      (unsigned long)O_CLOEXEC << 32, 1ul << 32, 1ul << 63, ~0ul,
		      reinterpret_cast<unsigned long>(arena_.rw())})
			rows.push_back(vrow("RING_FD flags " + hex(v), fd, SHMQ_IOC_RING_FD, v, EINVAL));
		rows.push_back(vrow("WAKE 0", fd, SHMQ_IOC_WAKE, 0, 0));
		for (unsigned long v : {1ul, 0x80000000ul, 1ul << 32, 1ul << 63, ~0ul,
					reinterpret_cast<unsigned long>(arena_.rw())})
			rows.push_back(vrow("WAKE argument " + hex(v), fd, SHMQ_IOC_WAKE, v, EINVAL));
	}

	// ---- the right ioctl on the wrong kind of fd ----
	for (FdKind fd : {kCtl, kCtlRO, kProdRing, kConsRing}) {
		rows.push_back(row("LAYOUT on the wrong fd", fd, SHMQ_IOC_LAYOUT, poison, ENOTTY));
		rows.push_back(vrow("RING_FD on the wrong fd", fd, SHMQ_IOC_RING_FD, O_CLOEXEC, ENOTTY));
		rows.push_back(row("WAIT on the wrong fd", fd, SHMQ_IOC_WAIT, wv(kCons), ENOTTY));
		rows.push_back(vrow("WAKE on the wrong fd", fd, SHMQ_IOC_WAKE, 0, ENOTTY));
	}
	for (FdKind fd : {kProd, kCons, kProdRing, kConsRing}) {
		rows.push_back(row("CREATE on the wrong fd", fd, SHMQ_IOC_CREATE, cr(), ENOTTY));
		rows.push_back(row("DESTROY on the wrong fd", fd, SHMQ_IOC_DESTROY, ds(), ENOTTY));
	}

	// ---- unknown numbers, in the shmq magic and in others, on every fd ----
	const std::vector<std::pair<const char *, unsigned long>> unknown = {
		{"_IO(SHMQ, 0x02)", _IO(SHMQ_IOC_MAGIC, 0x02)},
		{"_IOW(SHMQ, 0x02, create_args)", _IOW(SHMQ_IOC_MAGIC, 0x02, struct shmq_create_args)},
		{"_IO(SHMQ, 0x0f)", _IO(SHMQ_IOC_MAGIC, 0x0f)},
		{"_IOR(SHMQ, 0x14, layout)", _IOR(SHMQ_IOC_MAGIC, 0x14, struct shmq_layout)},
		{"_IOW(SHMQ, 0x14, wait_args)", _IOW(SHMQ_IOC_MAGIC, 0x14, struct shmq_wait_args)},
		{"_IO(SHMQ, 0x7f)", _IO(SHMQ_IOC_MAGIC, 0x7f)},
		{"_IOWR(SHMQ, 0xff, u64)", _IOWR(SHMQ_IOC_MAGIC, 0xff, uint64_t)},
		{"command 0", 0},
		{"CREATE number, magic 0xB6", _IOW(SHMQ_IOC_MAGIC - 1, 0x00, struct shmq_create_args)},
		{"CREATE number, magic 0xB8", _IOW(SHMQ_IOC_MAGIC + 1, 0x00, struct shmq_create_args)},
		{"LAYOUT number, magic 'X'", _IOR('X', 0x10, struct shmq_layout)},
		{"WAKE number, magic 0", _IO(0, 0x13)},
		{"TCGETS", TCGETS},
		{"FIONREAD", FIONREAD},
	};
	std::vector<uint8_t> zeros(64, 0);
	for (int fd = 0; fd < kFdKinds; fd++)
		for (const auto &[what, cmd] : unknown)
			rows.push_back(Row{std::string("unknown ") + what, FdKind(fd), cmd, kBuf, zeros, 0, ENOTTY});

	// ---- the right numbers with the wrong direction or size ----
	struct Real {
		const char *name;
		unsigned long cmd;
		std::vector<FdKind> fds;
	};
	const Real reals[] = {
		{"CREATE", SHMQ_IOC_CREATE, {kCtl}},	   {"DESTROY", SHMQ_IOC_DESTROY, {kCtl}},
		{"LAYOUT", SHMQ_IOC_LAYOUT, {kProd, kCons}}, {"RING_FD", SHMQ_IOC_RING_FD, {kProd, kCons}},
		{"WAIT", SHMQ_IOC_WAIT, {kProd, kCons}},	   {"WAKE", SHMQ_IOC_WAKE, {kProd, kCons}},
	};
	for (const Real &re : reals) {
		const unsigned dir = _IOC_DIR(re.cmd), nr = _IOC_NR(re.cmd), size = _IOC_SIZE(re.cmd);
		std::set<unsigned long> cmds;
		for (unsigned d : {unsigned(_IOC_NONE), unsigned(_IOC_READ), unsigned(_IOC_WRITE),
				   unsigned(_IOC_READ | _IOC_WRITE)}) {
			if (d != dir)
				cmds.insert(ioc(d, SHMQ_IOC_MAGIC, nr, size ? size : 8));
		}
		for (long s : {0l, 4l, 8l, long(size) - 1, long(size) + 1, long(size) + 8, 0x3fffl})
			if (s >= 0 && unsigned(s) != size)
				cmds.insert(ioc(dir, SHMQ_IOC_MAGIC, nr, unsigned(s)));
		for (FdKind fd : re.fds) {
			for (unsigned long c : cmds) {
				const std::string what = strprintf("%s number, dir %u size %u", re.name,
								   unsigned(_IOC_DIR(c)), unsigned(_IOC_SIZE(c)));
				if (re.cmd == SHMQ_IOC_CREATE)
					rows.push_back(row(what, fd, c, cr(), ENOTTY));
				else if (re.cmd == SHMQ_IOC_DESTROY)
					rows.push_back(row(what, fd, c, ds(), ENOTTY));
				else if (re.cmd == SHMQ_IOC_LAYOUT)
					rows.push_back(row(what, fd, c, poison, ENOTTY));
				else if (re.cmd == SHMQ_IOC_WAIT)
					rows.push_back(row(what, fd, c, wv(fd), ENOTTY));
				else
					rows.push_back(vrow(what, fd, c, re.cmd == SHMQ_IOC_RING_FD ? O_CLOEXEC : 0,
							    ENOTTY));
			}
		}
	}

	printf("BadIoctl.Matrix: %zu rows\n", rows.size());
	for (size_t i = 0; i < rows.size(); i++) {
		run_row(i, rows[i]);
		if (HasFatalFailure())
			return;
	}
	// Nothing leaked: every attachment and sleeper is gone once the fds
	// are closed, so both roles can be opened again.
	for (int fd = kProd; fd < kFdKinds; fd++)
		fds_[fd].reset();
	cstatus_.reset();
	pstatus_.reset();
	Fd p(open_queue(q_.name(), O_WRONLY)), c(open_queue(q_.name(), O_RDONLY));
	EXPECT_TRUE(p.ok()) << "producer attachment leaked: " << errname(-p.get());
	EXPECT_TRUE(c.ok()) << "consumer attachment leaked: " << errname(-c.get());
}

// RING_FD when the fd table is full (RLIMIT_NOFILE): EMFILE, and the failed
// call takes no reference on the attachment.
TEST_F(BadIoctl, RingFdAtFdLimitEMFILE)
{
	struct rlimit old;
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &old));
	for (FdKind fd : {kProd, kCons}) {
		SCOPED_TRACE(kFdName[fd]);
		const int low = lowest_free_fd();
		ASSERT_GT(low, 0);
		struct rlimit lim = old;
		lim.rlim_cur = rlim_t(low); // no fd number below the limit is free
		ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &lim));
		errno = 0;
		const int r = ::ioctl(fds_[fd].get(), SHMQ_IOC_RING_FD, O_CLOEXEC);
		const int e = r < 0 ? errno : 0;
		ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &old));
		g_ioctl_cases++;
		EXPECT_EQ(errname(EMFILE), errname(e)) << "RING_FD at RLIMIT_NOFILE returned " << r;
		if (r >= 0)
			::close(r);
		EXPECT_EQ(low, lowest_free_fd());
	}
	// No attachment reference leaked: closing every fd detaches both.
	for (int fd = kProd; fd < kFdKinds; fd++)
		fds_[fd].reset();
	cstatus_.reset();
	pstatus_.reset();
	Fd p(open_queue(q_.name(), O_WRONLY)), c(open_queue(q_.name(), O_RDONLY));
	EXPECT_TRUE(p.ok()) << errname(-p.get());
	EXPECT_TRUE(c.ok()) << errname(-c.get());
}

// Capacities whose page array alone is larger than any allocation, accepted
// by raised limits (root's knobs): ENOMEM, nothing created, no kernel WARN.
TEST_F(BadIoctl, HugeCapacityUnderRaisedLimitsENOMEMWithoutWarning)
{
	ParamOverride qs("max_queue_size", std::to_string(uint64_t(1) << 63));
	ASSERT_EQ(0, qs.error()) << errname(qs.error());
	ParamOverride tm("max_total_memory", std::to_string(~uint64_t(0)));
	ASSERT_EQ(0, tm.error()) << errname(tm.error());
	const auto before = class_entries();
	const unsigned long t0 = taint();
	for (int shift : {40, 50, 62, 63}) {
		const std::string n = unique_name("bihuge");
		g_ioctl_cases++;
		EXPECT_EQ(errname(ENOMEM), errname(raw_create(ctl(), n, uint64_t(1) << shift)))
			<< "capacity 2^" << shift;
		EXPECT_EQ(join(before), join(class_entries())) << "capacity 2^" << shift;
		expect_no_new_warning(t0, strprintf("CREATE capacity 2^%d", shift).c_str());
	}
}

// ===========================================================================
// BadMmap

namespace {

struct End {
	Fd q, ring;
	shmq_layout L{};
};

class BadMmap : public testing::Test {
protected:
	void SetUp() override
	{
		SHMQT_REQUIRE_ROOT();
		taint0_ = taint();
		ps_ = page_size();
		ASSERT_NO_FATAL_FAILURE(q_.create(kCap, "bm"));
		ASSERT_NO_FATAL_FAILURE(open_end(O_WRONLY, &e_[0]));
		ASSERT_NO_FATAL_FAILURE(open_end(O_RDONLY, &e_[1]));
		ASSERT_EQ(0, map_region(e_[1].ring.get(), e_[1].L.status, PROT_READ, &status_));
	}
	void TearDown() override
	{
		if (is_root())
			expect_no_new_warning(taint0_, "BadMmap");
	}
	static void TearDownTestSuite()
	{
		if (g_mmap_cases)
			report_figure("bad_mmap_inputs", g_mmap_cases, "mmap/mprotect/mremap cases tried");
	}
	void open_end(int mode, End *e)
	{
		e->q.reset(open_queue(q_.name(), mode));
		ASSERT_TRUE(e->q.ok()) << errname(-e->q.get());
		ASSERT_EQ(0, get_layout(e->q.get(), &e->L));
		e->ring.reset(ring_fd(e->q.get()));
		ASSERT_TRUE(e->ring.ok()) << errname(-e->ring.get());
	}
	uint32_t state() const { return load_acquire<uint32_t>(status_.get(), e_[1].L.state_off); }
	// One counted case: @got must be @want.
	void expect_errno(int want, int got, const std::string &what)
	{
		g_mmap_cases++;
		EXPECT_EQ(errname(want), errname(got)) << what;
	}
	static int mm(int fd, uint64_t off, size_t len, int prot, int flags, Map *m)
	{
		void *p = ::mmap(nullptr, len, prot, flags, fd, off_t(off));
		if (p == MAP_FAILED)
			return errno;
		*m = Map(p, len);
		return 0;
	}
	static int sys(int r) { return r == 0 ? 0 : errno; }
	// A child that reads (or writes) one byte at @p; its wait status.
	static Child touch_in_child(void *p, bool write)
	{
		return Child::spawn([p, write] {
			volatile uint8_t *b = static_cast<volatile uint8_t *>(p);
			if (write)
				*b = 0x42;
			else
				(void)*b;
			return 0;
		});
	}

	TestQueue q_;
	End e_[2]; // producer, consumer
	Map status_;
	size_t ps_ = 0;
	unsigned long taint0_ = 0;
};

const char *const kRole[] = {"producer", "consumer"};
const char *const kRegion[] = {"status", "producer", "consumer", "data"};
// docs/abi.md: the regions each role maps writable.
const bool kWritable[2][4] = {{false, true, false, true}, {false, false, true, false}};

const shmq_region &region(const shmq_layout &L, int i)
{
	const shmq_region *r[] = {&L.status, &L.producer, &L.consumer, &L.data};
	return *r[i];
}

} // namespace

TEST_F(BadMmap, MmapMatrix)
{
	struct MRow {
		std::string what;
		int fdsel; // 0 ring fd, 1 queue fd, 2 control fd
		uint64_t off;
		size_t len;
		int prot, flags, expect;
	};
	Fd ctlfd(control_open(O_RDWR));
	ASSERT_TRUE(ctlfd.ok());
	for (int role = 0; role < 2; role++) {
		const shmq_layout &L = e_[role].L;
		const int w = role == 0 ? PROT_READ | PROT_WRITE : PROT_READ; // data prot
		const uint64_t end = L.data.offset + L.data.size;
		const int S = MAP_SHARED;
		const std::vector<MRow> rows = {
			{"valid data mapping", 0, L.data.offset, L.data.size, w, S, 0},
			{"unaligned offset (status + 1)", 0, L.status.offset + 1, ps_, PROT_READ, S, EINVAL},
			{"unaligned offset (data + page/2)", 0, L.data.offset + ps_ / 2, ps_, PROT_READ, S, EINVAL},
			{"offset data + 1 page", 0, L.data.offset + ps_, ps_, PROT_READ, S, EINVAL},
			{"offset last data page", 0, end - ps_, ps_, PROT_READ, S, EINVAL},
			{"offset at the end", 0, end, ps_, PROT_READ, S, EINVAL},
			{"offset 1 TiB", 0, uint64_t(1) << 40, ps_, PROT_READ, S, EINVAL},
			{"offset INT64_MAX page", 0, uint64_t(INT64_MAX) & ~uint64_t(ps_ - 1), ps_, PROT_READ, S, EINVAL},
			{"offset -1 page (pgoff overflow)", 0, uint64_t(0) - ps_, ps_, PROT_READ, S, EOVERFLOW},
			{"length 0", 0, L.data.offset, 0, PROT_READ, S, EINVAL},
			{"length 1 byte (one page)", 0, L.status.offset, 1, PROT_READ, S, 0},
			{"length region - 1 byte", 0, L.data.offset, size_t(L.data.size) - 1, PROT_READ, S, 0},
			{"status length page + 1 byte", 0, L.status.offset, ps_ + 1, PROT_READ, S, EINVAL},
			{"data length capacity + 1 byte", 0, L.data.offset, size_t(L.data.size) + 1, PROT_READ, S, EINVAL},
			{"data length 64 TiB", 0, L.data.offset, size_t(1) << 46, PROT_READ, S, EINVAL},
			{"length SIZE_MAX", 0, L.data.offset, SIZE_MAX, PROT_READ, S, ENOMEM},
			{"MAP_PRIVATE", 0, L.data.offset, L.data.size, PROT_READ, MAP_PRIVATE, EINVAL},
			{"MAP_SHARED_VALIDATE", 0, L.data.offset, L.data.size, w, MAP_SHARED_VALIDATE, 0},
			{"MAP_SHARED_VALIDATE | MAP_SYNC", 0, L.data.offset, L.data.size, w, MAP_SHARED_VALIDATE | MAP_SYNC,
			 EOPNOTSUPP},
			{"MAP_SHARED_VALIDATE | unknown flag 0x800000", 0, L.data.offset, L.data.size, PROT_READ,
			 MAP_SHARED_VALIDATE | 0x800000, EOPNOTSUPP},
			{"MAP_GROWSDOWN", 0, L.data.offset, L.data.size, PROT_READ, S | MAP_GROWSDOWN, EINVAL},
			{"MAP_HUGETLB", 0, L.data.offset, L.data.size, PROT_READ, S | MAP_HUGETLB, EINVAL},
			{"MAP_LOCKED (accepted)", 0, L.data.offset, L.data.size, PROT_READ, S | MAP_LOCKED, 0},
			{"MAP_POPULATE (accepted)", 0, L.data.offset, L.data.size, PROT_READ, S | MAP_POPULATE, 0},
			{"PROT_NONE (accepted)", 0, L.data.offset, L.data.size, PROT_NONE, S, 0},
			{"PROT_EXEC", 0, L.data.offset, L.data.size, PROT_EXEC, S, EPERM},
			{"PROT_READ|PROT_WRITE|PROT_EXEC (EXEC checked first)", 0, L.data.offset, L.data.size,
			 PROT_READ | PROT_WRITE | PROT_EXEC, S, EPERM},
			{"MAP_PRIVATE|PROT_EXEC (sharing checked first)", 0, L.data.offset, L.data.size,
			 PROT_READ | PROT_EXEC, MAP_PRIVATE, EINVAL},
			{"status PROT_WRITE only", 0, L.status.offset, ps_, PROT_WRITE, S, EACCES},
			// The producer's queue fd is O_WRONLY: EACCES before ENODEV.
			{"mmap of the queue fd", 1, 0, ps_, PROT_READ, S, role == 0 ? EACCES : ENODEV},
			{"mmap of the control fd", 2, 0, ps_, PROT_READ, S, ENODEV},
		};
		for (const MRow &r : rows) {
			const std::string what = std::string(kRole[role]) + ": " + r.what;
			const int fd = r.fdsel == 0 ? e_[role].ring.get() : r.fdsel == 1 ? e_[role].q.get() : ctlfd.get();
			const uint32_t st0 = state();
			Map m;
			const int e = mm(fd, r.off, r.len, r.prot, r.flags, &m);
			expect_errno(r.expect, e, what);
			if (e == 0 && (r.prot & PROT_READ)) {
				volatile const uint8_t *b = m.bytes();
				(void)b[0];
			}
			m.reset();
			EXPECT_EQ(st0, state()) << what << ": state word changed";
		}
	}
	// The consumer's write-protected regions are refused writable whatever
	// else the call asks for.
	const shmq_layout &C = e_[1].L;
	for (int flags : {MAP_SHARED, MAP_SHARED | MAP_POPULATE, MAP_SHARED_VALIDATE}) {
		Map m;
		expect_errno(EACCES, mm(e_[1].ring.get(), C.data.offset, C.data.size, PROT_READ | PROT_WRITE, flags, &m),
			     "consumer: data writable, flags " + hex(flags));
	}
}

TEST_F(BadMmap, MprotectMatrix)
{
	for (int role = 0; role < 2; role++) {
		for (int i = 0; i < 4; i++) {
			const std::string what = std::string(kRole[role]) + " " + kRegion[i];
			const shmq_region &r = region(e_[role].L, i);
			const int base = kWritable[role][i] ? PROT_READ | PROT_WRITE : PROT_READ;
			Map m;
			ASSERT_EQ(0, map_region(e_[role].ring.get(), r, base, &m)) << what;
			expect_errno(EACCES, sys(mprotect(m.get(), m.size(), PROT_READ | PROT_EXEC)), what + ": mprotect +EXEC");
			expect_errno(EACCES, sys(mprotect(m.get(), m.size(), PROT_EXEC)), what + ": mprotect EXEC only");
			expect_errno(EINVAL, sys(mprotect(m.get(), m.size(), PROT_READ | 0x10)),
				     what + ": mprotect unknown bit 0x10");
			expect_errno(EINVAL, sys(mprotect(m.get(), m.size(), PROT_READ | PROT_GROWSDOWN)),
				     what + ": mprotect PROT_GROWSDOWN");
			// Down to nothing and back is allowed.
			expect_errno(0, sys(mprotect(m.get(), m.size(), PROT_NONE)), what + ": mprotect PROT_NONE");
			expect_errno(kWritable[role][i] ? 0 : EACCES,
				     sys(mprotect(m.get(), m.size(), PROT_READ | PROT_WRITE)),
				     what + ": mprotect PROT_NONE -> READ|WRITE");
			expect_errno(0, sys(mprotect(m.get(), m.size(), PROT_READ)), what + ": mprotect back to READ");
			volatile const uint8_t *b = m.bytes();
			(void)b[0];
			if (m.size() > ps_)
				expect_errno(EACCES, sys(mprotect(m.bytes() + ps_, ps_, PROT_READ | PROT_EXEC)),
					     what + ": mprotect +EXEC on one page inside");
		}
	}
	// A writer's region mapped read-only first may still become writable.
	Map d;
	ASSERT_EQ(0, map_region(e_[0].ring.get(), e_[0].L.data, PROT_READ, &d));
	expect_errno(0, sys(mprotect(d.get(), d.size(), PROT_READ | PROT_WRITE)), "producer data READ -> READ|WRITE");
	d.bytes()[d.size() - 1] = 1;
	d.bytes()[d.size() - 1] = 0;
}

TEST_F(BadMmap, MremapCannotGrowDuplicateOrDontunmap)
{
	for (int role = 0; role < 2; role++) {
		const shmq_layout &L = e_[role].L;
		const std::string who = kRole[role];
		Map m;
		ASSERT_EQ(0, map_region(e_[role].ring.get(), L.data.offset, 4 * ps_, PROT_READ, &m));
		auto remap = [&](size_t old_len, size_t new_len, int flags, void *to = nullptr) {
			void *r = mremap(m.get(), old_len, new_len, flags, to);
			if (r == MAP_FAILED)
				return errno;
			ADD_FAILURE() << who << ": mremap(" << old_len << ", " << new_len << ", " << flags
				      << ") succeeded";
			munmap(r, new_len);
			return 0;
		};
		expect_errno(EFAULT, remap(4 * ps_, 8 * ps_, MREMAP_MAYMOVE), who + ": mremap grow, may move");
		expect_errno(EFAULT, remap(4 * ps_, 5 * ps_, 0), who + ": mremap grow in place");
		expect_errno(EFAULT, remap(0, 4 * ps_, MREMAP_MAYMOVE), who + ": mremap old_size 0 (duplicate)");
		expect_errno(EINVAL, remap(4 * ps_, 4 * ps_, MREMAP_MAYMOVE | MREMAP_DONTUNMAP),
			     who + ": mremap MREMAP_DONTUNMAP");
		expect_errno(EFAULT, remap(5 * ps_, 6 * ps_, MREMAP_MAYMOVE), who + ": mremap old_size past the vma");
		// Shrinking and moving are fine; the pages stay the right ones.
		void *s = mremap(m.get(), 4 * ps_, 2 * ps_, 0);
		expect_errno(0, s == MAP_FAILED ? errno : 0, who + ": mremap shrink");
		if (s != MAP_FAILED) {
			m.release();
			m = Map(s, 2 * ps_);
		}
		void *hole = mmap(nullptr, 2 * ps_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(MAP_FAILED, hole);
		void *mv = mremap(m.get(), m.size(), m.size(), MREMAP_MAYMOVE | MREMAP_FIXED, hole);
		expect_errno(0, mv == MAP_FAILED ? errno : 0, who + ": mremap move");
		if (mv == MAP_FAILED) {
			munmap(hole, 2 * ps_);
			continue;
		}
		m.release();
		m = Map(mv, 2 * ps_);
		Map pv;
		ASSERT_EQ(0, map_region(e_[0].ring.get(), L.data, PROT_READ | PROT_WRITE, &pv));
		pv.bytes()[ps_ + 3] = uint8_t(0x30 + role);
		EXPECT_EQ(uint8_t(0x30 + role), m.bytes()[ps_ + 3]) << who << ": moved mapping shows other pages";
		pv.bytes()[ps_ + 3] = 0;
	}
}

TEST_F(BadMmap, PartialMunmapThenUseOfTheRest)
{
	Map pd, cd;
	ASSERT_EQ(0, map_region(e_[0].ring.get(), e_[0].L.data, PROT_READ | PROT_WRITE, &pd));
	ASSERT_EQ(0, map_region(e_[1].ring.get(), e_[1].L.data, PROT_READ, &cd));
	const size_t n = pd.size() / ps_;
	ASSERT_GE(n, 8u);
	uint8_t *p = pd.bytes();
	const uint8_t *c = cd.bytes();
	// Punch holes into both views: the first page, two in the middle, the last.
	for (uint8_t *b : {p, const_cast<uint8_t *>(c)}) {
		expect_errno(0, sys(munmap(b + 3 * ps_, 2 * ps_)), "munmap of two middle pages");
		expect_errno(0, sys(munmap(b, ps_)), "munmap of the first page");
		expect_errno(0, sys(munmap(b + (n - 1) * ps_, ps_)), "munmap of the last page");
	}
	// What is left maps the same offsets of the ring in both views.
	for (size_t pg : {size_t(1), size_t(2), size_t(5), n - 2}) {
		p[pg * ps_ + 17] = uint8_t(pg);
		g_mmap_cases++;
		EXPECT_EQ(uint8_t(pg), c[pg * ps_ + 17]) << "page " << pg << " after partial unmaps";
		p[pg * ps_ + 17] = 0;
	}
	// The holes are gone for good: touching one is SIGSEGV, not another page.
	for (const uint8_t *hole : {c + 3 * ps_, c, static_cast<const uint8_t *>(p + (n - 1) * ps_)}) {
		Child ch = touch_in_child(const_cast<uint8_t *>(hole), false);
		ASSERT_TRUE(ch.wait_exit(10000));
		g_mmap_cases++;
		EXPECT_TRUE(ch.killed_by(SIGSEGV)) << "read of an unmapped hole: " << ch.describe();
	}
	// Still attached through the pieces; munmap of the pieces detaches.
	for (End &e : e_) {
		e.ring.reset();
		e.q.reset();
	}
	EXPECT_EQ(uint32_t(SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER), state());
	for (uint8_t *b : {p, const_cast<uint8_t *>(c)}) {
		munmap(b + ps_, 2 * ps_);
		munmap(b + 5 * ps_, (n - 6) * ps_);
	}
	pd.release();
	cd.release();
	// The consumer is still attached through status_, the producer is not.
	g_mmap_cases++;
	EXPECT_TRUE(eventually(2000, [&] { return state() == SHMQ_STATE_CONSUMER; }))
		<< "state " << state() << " after the producer's last munmap";
	status_.reset();
	Fd p2(open_queue(q_.name(), O_WRONLY)), c2(open_queue(q_.name(), O_RDONLY));
	EXPECT_TRUE(p2.ok()) << errname(-p2.get());
	EXPECT_TRUE(c2.ok()) << errname(-c2.get());
}

TEST_F(BadMmap, MappingOutlivesBothFdsThroughMoveAndMprotect)
{
	Map pd;
	ASSERT_EQ(0, map_region(e_[0].ring.get(), e_[0].L.data, PROT_READ | PROT_WRITE, &pd));
	Map cd;
	ASSERT_EQ(0, map_region(e_[1].ring.get(), e_[1].L.data, PROT_READ, &cd));
	e_[0].ring.reset();
	e_[0].q.reset();
	// Only the mapping is left: it can be moved and re-protected.
	void *to = mmap(nullptr, pd.size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, to);
	void *mv = mremap(pd.get(), pd.size(), pd.size(), MREMAP_MAYMOVE | MREMAP_FIXED, to);
	expect_errno(0, mv == MAP_FAILED ? errno : 0, "mremap move with no fd left");
	ASSERT_NE(MAP_FAILED, mv);
	const size_t len = pd.size();
	pd.release();
	pd = Map(mv, len);
	expect_errno(0, sys(mprotect(pd.get(), len, PROT_READ)), "mprotect READ with no fd left");
	expect_errno(0, sys(mprotect(pd.get(), len, PROT_READ | PROT_WRITE)), "mprotect back to READ|WRITE");
	expect_errno(EACCES, sys(mprotect(pd.get(), len, PROT_READ | PROT_EXEC)), "mprotect EXEC with no fd left");
	pd.bytes()[100] = 0x7e;
	EXPECT_EQ(0x7e, cd.bytes()[100]);
	pd.bytes()[100] = 0;
	EXPECT_EQ(uint32_t(SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER), state());
	EXPECT_EQ(-EBUSY, open_queue(q_.name(), O_WRONLY)) << "the moved mapping no longer holds the producer";
	pd.reset();
	g_mmap_cases++;
	EXPECT_TRUE(eventually(2000, [&] { return state() == SHMQ_STATE_CONSUMER; }))
		<< "state " << state() << " after munmap of the moved mapping";
	Fd again(open_queue(q_.name(), O_WRONLY));
	EXPECT_TRUE(again.ok()) << errname(-again.get());
}

TEST_F(BadMmap, ForkAfterMmap)
{
	Map pd, cd;
	ASSERT_EQ(0, map_region(e_[0].ring.get(), e_[0].L.data, PROT_READ | PROT_WRITE, &pd));
	ASSERT_EQ(0, map_region(e_[1].ring.get(), e_[1].L.data, PROT_READ, &cd));
	Pipe ready, go;
	// 1. The child sees the same memory both ways, then exits.
	Child a = Child::spawn([&] {
		ready.send();
		if (go.recv(20000) != 1)
			return 2;
		if (cd.bytes()[7] != 0x11) // written by the parent after the fork
			return 3;
		pd.bytes()[8] = 0x22;
		return 0;
	});
	ASSERT_EQ(1, ready.recv(10000));
	pd.bytes()[7] = 0x11;
	go.send();
	ASSERT_TRUE(a.wait_exit(10000));
	g_mmap_cases++;
	EXPECT_TRUE(a.exited_with(0)) << "child view of the mapping: " << a.describe();
	EXPECT_EQ(0x22, cd.bytes()[8]) << "the child's write did not reach the parent";
	// 2. A child killed while holding the inherited mappings.
	Child b = Child::spawn([&] {
		ready.send();
		pause();
		return 0;
	});
	ASSERT_EQ(1, ready.recv(10000));
	b.kill_and_reap();
	// The parent's mappings and fds are unaffected by either child.
	pd.bytes()[9] = 0x33;
	g_mmap_cases++;
	EXPECT_EQ(0x33, cd.bytes()[9]);
	EXPECT_EQ(uint32_t(SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER), state());
	expect_errno(0, raw_wait(e_[0].q.get(), SHMQ_WAIT_WRITABLE, 1, 0), "producer WAIT after the children left");
	shmq_layout l;
	expect_errno(0, get_layout(e_[1].q.get(), &l), "consumer LAYOUT after the children left");
	// 3. MADV_DONTFORK: the child has no mapping there; MADV_WIPEONFORK is
	// for private anonymous memory only.
	expect_errno(0, sys(madvise(cd.get(), cd.size(), MADV_DONTFORK)), "MADV_DONTFORK");
	Child c = touch_in_child(cd.get(), false);
	ASSERT_TRUE(c.wait_exit(10000));
	g_mmap_cases++;
	EXPECT_TRUE(c.killed_by(SIGSEGV)) << "child read a MADV_DONTFORK mapping: " << c.describe();
	expect_errno(EINVAL, sys(madvise(pd.get(), pd.size(), MADV_WIPEONFORK)), "MADV_WIPEONFORK");
	memset(pd.get(), 0, 16);
}

TEST_F(BadMmap, Madvise)
{
	Map pd, cd;
	ASSERT_EQ(0, map_region(e_[0].ring.get(), e_[0].L.data, PROT_READ | PROT_WRITE, &pd));
	ASSERT_EQ(0, map_region(e_[1].ring.get(), e_[1].L.data, PROT_READ, &cd));
	for (size_t i = 0; i < pd.size(); i += ps_)
		pd.bytes()[i + 1] = uint8_t(i / ps_ + 1);
	auto intact = [&](const char *what) {
		for (size_t i = 0; i < pd.size(); i += ps_)
			if (pd.bytes()[i + 1] != uint8_t(i / ps_ + 1) || cd.bytes()[i + 1] != uint8_t(i / ps_ + 1)) {
				ADD_FAILURE() << what << ": page " << i / ps_ << " lost its contents";
				return;
			}
	};
	// Neither side can free the ring's pages.
	expect_errno(ENODEV, sys(madvise(pd.get(), pd.size(), MADV_REMOVE)), "producer data MADV_REMOVE");
	expect_errno(EACCES, sys(madvise(cd.get(), cd.size(), MADV_REMOVE)), "consumer data MADV_REMOVE");
	expect_errno(EINVAL, sys(madvise(pd.get(), pd.size(), MADV_FREE)), "producer data MADV_FREE");
	intact("MADV_REMOVE/MADV_FREE");
	// Reclaim hints are accepted and change nothing.
	for (auto [adv, name] : {std::pair{MADV_COLD, "MADV_COLD"}, std::pair{MADV_PAGEOUT, "MADV_PAGEOUT"},
				 std::pair{MADV_DONTNEED, "MADV_DONTNEED"}}) {
		expect_errno(0, sys(madvise(cd.get(), cd.size(), adv)), std::string("consumer data ") + name);
		expect_errno(0, sys(madvise(pd.get(), pd.size(), adv)), std::string("producer data ") + name);
		intact(name);
	}
	expect_errno(0, sys(mlock(cd.get(), cd.size())), "mlock consumer data");
	expect_errno(0, sys(munlock(cd.get(), cd.size())), "munlock consumer data");
	intact("mlock");
	memset(pd.get(), 0, pd.size());
}

// The protections hold against the kernel's own access paths too.
TEST_F(BadMmap, ProcMemAndProcessVmWritevCannotBypassProtection)
{
	Map pd, cd, ph;
	ASSERT_EQ(0, map_region(e_[0].ring.get(), e_[0].L.data, PROT_READ | PROT_WRITE, &pd));
	ASSERT_EQ(0, map_region(e_[1].ring.get(), e_[1].L.data, PROT_READ, &cd));
	ASSERT_EQ(0, map_region(e_[0].ring.get(), e_[0].L.consumer, PROT_READ, &ph));
	Fd mem(::open("/proc/self/mem", O_RDWR | O_CLOEXEC));
	ASSERT_TRUE(mem.ok()) << errname(errno);
	const uint8_t v = 0x99;
	auto pw = [&](const void *at) {
		ssize_t n = pwrite(mem.get(), &v, 1, off_t(reinterpret_cast<uintptr_t>(at)));
		return n == 1 ? 0 : n < 0 ? errno : EIO;
	};
	expect_errno(EIO, pw(cd.bytes() + 64), "/proc/self/mem write into the consumer's read-only data");
	expect_errno(EIO, pw(status_.bytes() + 64), "/proc/self/mem write into the status page");
	expect_errno(EIO, pw(ph.bytes() + 64), "/proc/self/mem write into the producer's view of head");
	EXPECT_EQ(0, pd.bytes()[64]) << "a forced write reached the ring";
	auto vw = [&](const void *at) {
		struct iovec l = {const_cast<uint8_t *>(&v), 1}, r = {const_cast<void *>(at), 1};
		ssize_t n = process_vm_writev(getpid(), &l, 1, &r, 1, 0);
		return n == 1 ? 0 : n < 0 ? errno : EIO;
	};
	expect_errno(EFAULT, vw(cd.bytes() + 65), "process_vm_writev into the consumer's read-only data");
	EXPECT_EQ(0, pd.bytes()[65]);
	// Where the role writes, both paths work.
	expect_errno(0, pw(pd.bytes() + 66), "/proc/self/mem write into the producer's data");
	EXPECT_EQ(0x99, cd.bytes()[66]);
	pd.bytes()[66] = 0;
}

TEST_F(BadMmap, DestroyWhileMappedThenIoctls)
{
	RawEnd p, c;
	e_[0] = End();
	e_[1] = End();
	status_.reset();
	ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	p.publish(100);
	const uint64_t t = p.tail();
	ASSERT_EQ(0, q_.destroy());
	g_mmap_cases++;
	EXPECT_EQ(uint32_t(SHMQ_STATE_PRODUCER | SHMQ_STATE_CONSUMER | SHMQ_STATE_DESTROYED), c.state());
	// The mappings stay valid memory.
	EXPECT_EQ(t, c.tail());
	shmq_record h;
	memcpy(&h, c.data.bytes(), sizeof h);
	EXPECT_EQ(100u, h.len);
	// WAIT: a false condition is EIDRM at once, a true one 0, bad
	// arguments still EINVAL (checked first).
	const uint64_t dl = deadline_in_ms(10000);
	expect_errno(0, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, dl), "destroyed: READABLE, data pending");
	c.set_head(t);
	expect_errno(EIDRM, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, dl), "destroyed: READABLE on empty ring");
	expect_errno(EIDRM, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, dl, SHMQ_WAIT_IGNORE_HUP),
		     "destroyed: READABLE with IGNORE_HUP");
	expect_errno(0, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, kCap, dl), "destroyed: WRITABLE, ring empty");
	expect_errno(EINVAL, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, kCap + 1, dl), "destroyed: WRITABLE > capacity");
	expect_errno(EINVAL, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, dl, 2), "destroyed: unknown flag");
	EXPECT_LT(now_ns(), dl) << "a WAIT on the destroyed queue slept";
	// The other ioctls keep working on the open files.
	shmq_layout l;
	expect_errno(0, get_layout(c.fd(), &l), "destroyed: LAYOUT");
	expect_errno(0, xioctl_val(p.fd(), SHMQ_IOC_WAKE, 0), "destroyed: producer WAKE");
	expect_errno(0, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 0), "destroyed: consumer WAKE");
	expect_errno(EINVAL, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 1), "destroyed: WAKE 1");
	Fd r(ring_fd(c.fd()));
	expect_errno(0, r.ok() ? 0 : -r.get(), "destroyed: RING_FD");
	if (r.ok()) {
		Map m;
		expect_errno(0, map_region(r.get(), l.data, PROT_READ, &m), "destroyed: mmap of a new ring fd");
		if (m.ok()) {
			EXPECT_EQ(0, memcmp(m.get(), c.data.get(), 64)) << "new mapping of a destroyed queue differs";
		}
		expect_errno(EACCES, map_region(r.get(), l.data, PROT_READ | PROT_WRITE, &m),
			     "destroyed: consumer data writable");
	}
	// The name is free again while all of this is still mapped.
	const int e = create_queue_now(q_.name(), kCap);
	expect_errno(0, e, "create of the same name while the destroyed queue is mapped");
	if (e == 0) {
		EXPECT_EQ(0, destroy_queue_now(q_.name()));
	}
	// After everything is gone, the state word cannot be read any more, but
	// nothing may have broken: the memory was valid until the last unmap.
	p.data.bytes()[0] = 1;
	EXPECT_EQ(1, c.data.bytes()[0]);
	r.reset();
	p.close();
	c.close();
}
