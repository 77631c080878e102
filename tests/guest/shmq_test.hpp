// SPDX-License-Identifier: MIT
// Helpers shared by the guest tests (tests/guest/*_test.cpp).
//
// Conventions:
//  - raw_* helpers return 0 or a positive errno value (never -1), so tests
//    can write EXPECT_EQ(EINVAL, raw_create(...)).
//  - Every deadline handed to the kernel is finite, so a missing wake-up
//    fails a test instead of hanging the run.
//  - Child processes never use gtest assertions: they report through their
//    exit status or through a MAP_SHARED page.
#pragma once

#include <shmq/shmq.hpp>
#include <shmq/uapi.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace shmqt {

// ---------------------------------------------------------------------------
// Environment

inline bool is_root() { return geteuid() == 0; }

#define SHMQT_REQUIRE_ROOT()                                                    \
	do {                                                                    \
		if (!::shmqt::is_root())                                        \
			GTEST_SKIP() << "needs root (runs in the root suite)";  \
	} while (0)

// SHMQ_TEST_SLOW=1, or the harness's SHMQ_DEBUG_KERNEL=1 (KASAN/lockdep
// kernel under emulation): scale message counts down.
inline bool slow_mode()
{
	for (const char *v : {"SHMQ_TEST_SLOW", "SHMQ_DEBUG_KERNEL"}) {
		const char *s = getenv(v);
		if (s && *s && strcmp(s, "0") != 0)
			return true;
	}
	return false;
}

// Pick the normal or the slow (debug kernel) value.
template <class T> T scaled(T normal, T slow) { return slow_mode() ? slow : normal; }

// Upper bound for "woken promptly" (a wake-up under emulation costs
// ~0.1 ms; the bound only absorbs a loaded host): 2 s, 8 s on the debug kernel.
inline unsigned wake_bound_ms() { return scaled(2000u, 8000u); }

inline std::string test_user()
{
	const char *s = getenv("SHMQ_TEST_USER");
	return s ? s : "";
}

inline uint64_t now_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}
inline uint64_t ms_to_ns(uint64_t ms) { return ms * 1000000ull; }
inline uint64_t deadline_in_ms(uint64_t ms) { return now_ns() + ms_to_ns(ms); }
inline double ns_to_ms(uint64_t ns) { return double(ns) / 1e6; }

inline void sleep_ms(unsigned ms)
{
	struct timespec ts = {time_t(ms / 1000), long(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

inline size_t page_size() { return size_t(sysconf(_SC_PAGESIZE)); }

inline std::string errname(int e)
{
	const char *n = strerrorname_np(e);
	return std::string(n ? n : "?") + "(" + std::to_string(e) + ")";
}

inline std::string strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string strprintf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return buf;
}

// report_figure("bad_ioctl_inputs", 143, "ioctl cases with exact errno"):
// one figure the issue asks the test output to show. Printed on its own line
// as "@@SHMQ FIGURE <key> <count> <text>" (the result channel); the harness
// (run-matrix.sh) lists them per run and sums each key over all runs.
// Keys: lower case, no spaces.
inline void report_figure(const char *key, unsigned long long count, const std::string &text)
{
	fflush(stdout);
	printf("\n@@SHMQ FIGURE %s %llu %s\n", key, count, text.c_str());
	fflush(stdout);
}

// ---------------------------------------------------------------------------
// File descriptors and files

class Fd {
public:
	Fd() = default;
	explicit Fd(int fd) : fd_(fd) {}
	Fd(Fd &&o) noexcept : fd_(o.release()) {}
	Fd &operator=(Fd &&o) noexcept
	{
		if (this != &o)
			reset(o.release());
		return *this;
	}
	Fd(const Fd &) = delete;
	Fd &operator=(const Fd &) = delete;
	~Fd() { reset(); }
	int get() const { return fd_; }
	bool ok() const { return fd_ >= 0; }
	int release()
	{
		int f = fd_;
		fd_ = -1;
		return f;
	}
	void reset(int fd = -1)
	{
		if (fd_ >= 0)
			::close(fd_);
		fd_ = fd;
	}

private:
	int fd_ = -1;
};

// open(2) returning the fd, or -errno.
inline int open_err(const std::string &path, int flags)
{
	int fd = ::open(path.c_str(), flags | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

inline bool path_exists(const std::string &p)
{
	struct stat st;
	return ::stat(p.c_str(), &st) == 0;
}

// Poll until @p exists (or no longer exists). True when reached in time.
inline bool wait_path(const std::string &p, bool exist, unsigned timeout_ms = 10000)
{
	const uint64_t end = deadline_in_ms(timeout_ms);
	for (;;) {
		if (path_exists(p) == exist)
			return true;
		if (now_ns() > end)
			return false;
		sleep_ms(5);
	}
}

inline bool read_file(const std::string &path, std::string *out, int *err = nullptr)
{
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (err)
			*err = errno;
		return false;
	}
	out->clear();
	char buf[4096];
	for (;;) {
		ssize_t n = ::read(fd, buf, sizeof buf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (err)
				*err = errno;
			::close(fd);
			return false;
		}
		if (n == 0)
			break;
		out->append(buf, size_t(n));
	}
	::close(fd);
	return true;
}

// The gid of group @name from /etc/group, -1 if missing.
inline long group_gid(const char *name)
{
	std::string s;
	if (!read_file("/etc/group", &s))
		return -1;
	const std::string prefix = std::string(name) + ":";
	size_t pos = 0;
	while (pos < s.size()) {
		size_t end = s.find('\n', pos);
		std::string line = s.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
		if (line.rfind(prefix, 0) == 0) {
			size_t a = line.find(':', prefix.size()), b = line.find(':', a + 1);
			if (a != std::string::npos && b != std::string::npos)
				return strtol(line.substr(a + 1, b - a - 1).c_str(), nullptr, 10);
		}
		if (end == std::string::npos)
			break;
		pos = end + 1;
	}
	return -1;
}


// Writes @val to a sysfs file; returns 0 or errno.
inline int write_file(const std::string &path, const std::string &val)
{
	int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ssize_t n = ::write(fd, val.data(), val.size());
	int e = n < 0 ? errno : (size_t(n) == val.size() ? 0 : EIO);
	::close(fd);
	return e;
}

inline std::string trim(std::string s)
{
	while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
		s.pop_back();
	size_t i = 0;
	while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return s.substr(i);
}

// Parses "123", "64K", "1M", "2G" (module parameters may use either form).
inline bool parse_size(const std::string &s0, uint64_t *out)
{
	std::string s = trim(s0);
	if (s.empty())
		return false;
	char *end = nullptr;
	errno = 0;
	unsigned long long v = strtoull(s.c_str(), &end, 0);
	if (errno || end == s.c_str())
		return false;
	std::string suf = end;
	if (suf == "" )
		*out = v;
	else if (suf == "K" || suf == "k")
		*out = v << 10;
	else if (suf == "M" || suf == "m")
		*out = v << 20;
	else if (suf == "G" || suf == "g")
		*out = v << 30;
	else
		return false;
	return true;
}

inline std::string param_path(const std::string &name)
{
	return "/sys/module/shmq/parameters/" + name;
}

// Reads a numeric module parameter; false if missing or unparsable.
inline bool read_param(const std::string &name, uint64_t *v, std::string *raw = nullptr)
{
	std::string s;
	if (!read_file(param_path(name), &s))
		return false;
	if (raw)
		*raw = trim(s);
	return parse_size(s, v);
}

// Lowers a module parameter for the scope of the object, restores it after.
class ParamOverride {
public:
	ParamOverride(const std::string &name, const std::string &value) : name_(name)
	{
		std::string s;
		if (!read_file(param_path(name), &s, &err_))
			return;
		old_ = trim(s);
		err_ = write_file(param_path(name), value);
		active_ = err_ == 0;
	}
	~ParamOverride() { restore(); }
	int restore()
	{
		if (!active_)
			return 0;
		active_ = false;
		int e = write_file(param_path(name_), old_);
		if (e)
			ADD_FAILURE() << "cannot restore module parameter " << name_ << "=" << old_
				      << ": " << errname(e);
		return e;
	}
	int error() const { return err_; } // 0: override active
	const std::string &old_value() const { return old_; }

private:
	std::string name_;
	std::string old_;
	int err_ = 0;
	bool active_ = false;
};

// ---------------------------------------------------------------------------
// Names and paths

inline std::string dev_path(const std::string &name) { return "/dev/shmq/" + name; }
inline std::string sysfs_dir(const std::string &name) { return "/sys/class/shmq/" + name; }
inline const char *control_path() { return "/dev/shmq-control"; }

// Every line of /sys/class/shmq/NAME/lanes has this many bytes (a lane's
// words, spaces, a newline), one per lane, free lanes too (kernel/sysfs.c).
constexpr size_t kSysfsLaneLine = 128;

// The lines of the lanes attribute's text @raw of the lanes in use: free
// lanes left out, each line's padding taken off (each still ends in a
// newline). "" when @raw has none.
inline std::string lanes_in_use(const std::string &raw)
{
	std::string out;
	size_t at = 0;
	while (at < raw.size()) {
		size_t nl = raw.find('\n', at);
		if (nl == std::string::npos)
			nl = raw.size();
		std::string l = raw.substr(at, nl - at);
		at = nl + 1;
		while (!l.empty() && l.back() == ' ')
			l.pop_back();
		const size_t sp = l.find(' ');
		if (sp != std::string::npos && l.compare(sp, 6, " free ") == 0)
			continue;
		out += l + "\n";
	}
	return out;
}

// A queue name nobody else uses: "gt-<tag>-<pid>-<n>".
inline std::string unique_name(const char *tag = "q")
{
	static std::atomic<unsigned> counter{0};
	return strprintf("gt-%s-%d-%u", tag, int(getpid()), counter.fetch_add(1));
}

// ---------------------------------------------------------------------------
// Raw control ABI

inline void set_name(char (&dst)[SHMQ_NAME_MAX], const std::string &name)
{
	memset(dst, 0, sizeof dst);
	memcpy(dst, name.data(), std::min(name.size(), sizeof dst));
}

inline int xioctl(int fd, unsigned long cmd, const void *arg)
{
	int r = ::ioctl(fd, cmd, arg);
	return r < 0 ? errno : 0;
}
inline int xioctl_val(int fd, unsigned long cmd, unsigned long arg)
{
	int r = ::ioctl(fd, cmd, arg);
	return r < 0 ? errno : 0;
}

inline shmq_create_args create_args(const std::string &name, uint64_t capacity)
{
	shmq_create_args a;
	memset(&a, 0, sizeof a);
	a.capacity = capacity;
	set_name(a.name, name);
	return a;
}
inline shmq_destroy_args destroy_args(const std::string &name)
{
	shmq_destroy_args a;
	memset(&a, 0, sizeof a);
	set_name(a.name, name);
	return a;
}

// Opens the control device (O_RDWR by default); the fd or -errno.
inline int control_open(int flags = O_RDWR) { return open_err(control_path(), flags); }

inline int raw_create(int ctl, const std::string &name, uint64_t capacity)
{
	shmq_create_args a = create_args(name, capacity);
	return xioctl(ctl, SHMQ_IOC_CREATE, &a);
}
inline int raw_destroy(int ctl, const std::string &name)
{
	shmq_destroy_args a = destroy_args(name);
	return xioctl(ctl, SHMQ_IOC_DESTROY, &a);
}

// Creates a queue through a fresh control fd; 0 or errno.
inline int create_queue_now(const std::string &name, uint64_t capacity)
{
	Fd c(control_open());
	if (!c.ok())
		return -c.get();
	return raw_create(c.get(), name, capacity);
}
inline int destroy_queue_now(const std::string &name)
{
	Fd c(control_open());
	if (!c.ok())
		return -c.get();
	return raw_destroy(c.get(), name);
}

// A queue created for one test and destroyed at the end of it.
//   TestQueue q; ASSERT_NO_FATAL_FAILURE(q.create(64 * 1024));
class TestQueue {
public:
	TestQueue() = default;
	TestQueue(const TestQueue &) = delete;
	TestQueue &operator=(const TestQueue &) = delete;
	~TestQueue() { cleanup(); }

	void create(uint64_t capacity, const char *tag = "q")
	{
		name_ = unique_name(tag);
		capacity_ = capacity;
		int e = create_queue_now(name_, capacity);
		ASSERT_EQ(0, e) << "SHMQ_IOC_CREATE " << name_ << " capacity " << capacity
				<< ": " << errname(e);
		created_ = true;
		ASSERT_TRUE(wait_path(dev_path(name_), true))
			<< dev_path(name_) << " did not appear within 10 s";
	}
	// Destroys now; returns 0 or errno.
	int destroy()
	{
		if (!created_)
			return ENOENT;
		created_ = false;
		return destroy_queue_now(name_);
	}
	void cleanup()
	{
		if (!created_)
			return;
		int e = destroy();
		if (e && e != ENOENT)
			ADD_FAILURE() << "destroy " << name_ << ": " << errname(e);
	}
	const std::string &name() const { return name_; }
	std::string path() const { return dev_path(name_); }
	uint64_t capacity() const { return capacity_; }

private:
	std::string name_;
	uint64_t capacity_ = 0;
	bool created_ = false;
};

// ---------------------------------------------------------------------------
// Raw queue ABI

// Opens /dev/shmq/NAME; fd or -errno.
inline int open_queue(const std::string &name, int flags)
{
	return open_err(dev_path(name), flags);
}

// SHMQ_IOC_LAYOUT into a poisoned struct; 0 or errno.
inline int get_layout(int fd, shmq_layout *l)
{
	memset(l, 0xA5, sizeof *l);
	return xioctl(fd, SHMQ_IOC_LAYOUT, l);
}

inline int raw_wait(int fd, uint32_t cond, uint64_t min_bytes, uint64_t deadline_ns,
		    uint32_t flags = 0)
{
	shmq_wait_args w;
	memset(&w, 0, sizeof w);
	w.timeout_ns = deadline_ns;
	w.min_bytes = min_bytes;
	w.cond = cond;
	w.flags = flags;
	return xioctl(fd, SHMQ_IOC_WAIT, &w);
}

// SHMQ_IOC_RING_FD: the new fd or -errno.
inline int ring_fd(int qfd, unsigned long flags = O_CLOEXEC)
{
	int r = ::ioctl(qfd, SHMQ_IOC_RING_FD, flags);
	return r >= 0 ? r : -errno;
}

// An mmap()ed range, unmapped on destruction.
class Map {
public:
	Map() = default;
	Map(void *p, size_t len) : p_(p), len_(len) {}
	Map(Map &&o) noexcept : p_(o.p_), len_(o.len_) { o.p_ = nullptr; }
	Map &operator=(Map &&o) noexcept
	{
		if (this != &o) {
			reset();
			p_ = o.p_;
			len_ = o.len_;
			o.p_ = nullptr;
		}
		return *this;
	}
	Map(const Map &) = delete;
	Map &operator=(const Map &) = delete;
	~Map() { reset(); }
	void reset()
	{
		if (p_)
			::munmap(p_, len_);
		p_ = nullptr;
	}
	void *release()
	{
		void *p = p_;
		p_ = nullptr;
		return p;
	}
	bool ok() const { return p_ != nullptr; }
	void *get() const { return p_; }
	uint8_t *bytes() const { return static_cast<uint8_t *>(p_); }
	size_t size() const { return len_; }

private:
	void *p_ = nullptr;
	size_t len_ = 0;
};

// mmap of (part of) a region; 0 on success with *m set, else errno.
inline int map_region(int rfd, uint64_t offset, size_t len, int prot, Map *m,
		      int flags = MAP_SHARED)
{
	void *p = ::mmap(nullptr, len, prot, flags, rfd, off_t(offset));
	if (p == MAP_FAILED)
		return errno;
	*m = Map(p, len);
	return 0;
}
inline int map_region(int rfd, const shmq_region &r, int prot, Map *m)
{
	return map_region(rfd, r.offset, size_t(r.size), prot, m);
}

template <class T> inline T load_acquire(const void *base, uint32_t off)
{
	return __atomic_load_n(reinterpret_cast<const T *>(static_cast<const uint8_t *>(base) + off),
			       __ATOMIC_ACQUIRE);
}
template <class T> inline void store_release(void *base, uint32_t off, T v)
{
	__atomic_store_n(reinterpret_cast<T *>(static_cast<uint8_t *>(base) + off), v,
			 __ATOMIC_RELEASE);
}

inline uint64_t align8(uint64_t n) { return (n + 7) & ~uint64_t(7); }
// Bytes a message of @n payload bytes takes in the ring (without padding).
inline uint64_t record_bytes(uint64_t n) { return align8(8 + n); }

// One attached end of a queue with every region mapped with the role's
// protections, for tests that drive the ring by hand.
struct RawEnd {
	Fd qfd;
	shmq_layout L{};
	Map status, prod, cons, data;

	// Opens @name with @flags (O_WRONLY: producer, O_RDONLY: consumer).
	void open(const std::string &name, int flags)
	{
		int fd = open_queue(name, flags);
		ASSERT_GE(fd, 0) << "open " << dev_path(name) << ": " << errname(-fd);
		qfd.reset(fd);
		int e = get_layout(fd, &L);
		ASSERT_EQ(0, e) << "SHMQ_IOC_LAYOUT: " << errname(e);
		Fd r(ring_fd(fd));
		ASSERT_TRUE(r.ok()) << "SHMQ_IOC_RING_FD: " << errname(-r.get());
		const bool producer = (flags & O_ACCMODE) == O_WRONLY;
		const int rw = PROT_READ | PROT_WRITE;
		e = map_region(r.get(), L.status, PROT_READ, &status);
		ASSERT_EQ(0, e) << "mmap status: " << errname(e);
		e = map_region(r.get(), L.producer, producer ? rw : PROT_READ, &prod);
		ASSERT_EQ(0, e) << "mmap producer region: " << errname(e);
		e = map_region(r.get(), L.consumer, producer ? PROT_READ : rw, &cons);
		ASSERT_EQ(0, e) << "mmap consumer region: " << errname(e);
		e = map_region(r.get(), L.data, producer ? rw : PROT_READ, &data);
		ASSERT_EQ(0, e) << "mmap data region: " << errname(e);
	}
	void close()
	{
		status.reset();
		prod.reset();
		cons.reset();
		data.reset();
		qfd.reset();
	}
	int fd() const { return qfd.get(); }
	uint64_t capacity() const { return L.capacity; }
	uint64_t tail() const { return load_acquire<uint64_t>(prod.get(), L.tail_off); }
	uint64_t head() const { return load_acquire<uint64_t>(cons.get(), L.head_off); }
	uint32_t state() const { return load_acquire<uint32_t>(status.get(), L.state_off); }
	// The wake words (SHMQ_WAKE_* bits; 0: nobody to wake on that side).
	uint32_t read_waiters() const
	{
		return load_acquire<uint32_t>(status.get(), L.read_wake_off);
	}
	uint32_t write_waiters() const
	{
		return load_acquire<uint32_t>(status.get(), L.write_wake_off);
	}
	uint32_t read_armed() const { return load_acquire<uint32_t>(cons.get(), L.read_armed_off); }
	uint32_t write_armed() const
	{
		return load_acquire<uint32_t>(prod.get(), L.write_armed_off);
	}
	uint64_t write_need() const { return load_acquire<uint64_t>(status.get(), L.write_need_off); }
	void set_tail(uint64_t v) { store_release<uint64_t>(prod.get(), L.tail_off, v); }
	void set_head(uint64_t v) { store_release<uint64_t>(cons.get(), L.head_off, v); }

	// Producer: writes a MSG record of @n bytes (filled with @fill) at the
	// current tail, padding at the ring end like the library, without
	// publishing. Returns the new tail (publish with set_tail()).
	uint64_t write_record(uint64_t n, uint8_t fill, uint64_t at)
	{
		const uint64_t cap = L.capacity, rec = record_bytes(n);
		uint64_t off = at & (cap - 1);
		if (rec > cap - off) {
			shmq_record pad{uint32_t(cap - off - 8), SHMQ_REC_PAD};
			memcpy(data.bytes() + off, &pad, sizeof pad);
			at += cap - off;
			off = 0;
		}
		shmq_record h{uint32_t(n), SHMQ_REC_MSG};
		memset(data.bytes() + off + 8, fill, n);
		memcpy(data.bytes() + off, &h, sizeof h);
		return at + rec;
	}
	// Producer: write and publish one message; wakes the consumer like the
	// library does. Returns the new tail.
	uint64_t publish(uint64_t n, uint8_t fill = 0x5a)
	{
		const uint64_t old = tail();
		const uint64_t t = write_record(n, fill, old);
		set_tail(t);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		const uint32_t w = read_waiters();
		const bool armed = (w & (SHMQ_WAKE_SLEEPER | SHMQ_WAKE_POLL_ARMED)) ||
				   ((w & SHMQ_WAKE_POLLED) && read_armed());
		if (armed && head() == old)
			::ioctl(fd(), SHMQ_IOC_WAKE, 0);
		return t;
	}
};

// ---------------------------------------------------------------------------
// Polling

// poll(2) on one fd; revents (0 on timeout), or -errno.
inline int poll_one(int fd, short events, int timeout_ms)
{
	struct pollfd p = {fd, events, 0};
	int r;
	do
		r = ::poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? 0 : p.revents;
}

// ---------------------------------------------------------------------------
// Processes

// A forked child running @fn; its exit status is fn's return value.
// Destroying a Child that is still running SIGKILLs and reaps it.
class Child {
public:
	Child() = default;
	Child(const Child &) = delete;
	Child &operator=(const Child &) = delete;
	Child(Child &&o) noexcept : pid_(o.pid_), status_(o.status_) { o.pid_ = -1; }
	Child &operator=(Child &&o) noexcept
	{
		if (this != &o) {
			kill_and_reap();
			pid_ = o.pid_;
			status_ = o.status_;
			o.pid_ = -1;
		}
		return *this;
	}
	~Child() { kill_and_reap(); }

	static Child spawn(const std::function<int()> &fn)
	{
		fflush(stdout);
		fflush(stderr);
		Child c;
		pid_t p = ::fork();
		if (p == 0) {
			int rc = 111;
			rc = fn();
			_exit(rc);
		}
		c.pid_ = p;
		return c;
	}
	pid_t pid() const { return pid_; }
	bool running() const { return pid_ > 0; }

	// Waits up to @timeout_ms for the child to exit. True if it did
	// (status() then holds the wait status).
	bool wait_exit(unsigned timeout_ms = 30000)
	{
		if (pid_ <= 0)
			return true;
		const uint64_t end = deadline_in_ms(timeout_ms);
		for (;;) {
			int st;
			pid_t r = ::waitpid(pid_, &st, WNOHANG);
			if (r == pid_) {
				status_ = st;
				pid_ = -1;
				return true;
			}
			if (now_ns() > end)
				return false;
			sleep_ms(1);
		}
	}
	void kill_and_reap(int sig = SIGKILL)
	{
		if (pid_ <= 0)
			return;
		::kill(pid_, sig);
		int st;
		while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
		}
		status_ = st;
		pid_ = -1;
	}
	int status() const { return status_; }
	bool exited_with(int code) const { return WIFEXITED(status_) && WEXITSTATUS(status_) == code; }
	bool killed_by(int sig) const { return WIFSIGNALED(status_) && WTERMSIG(status_) == sig; }
	std::string describe() const
	{
		if (WIFEXITED(status_))
			return "exit " + std::to_string(WEXITSTATUS(status_));
		if (WIFSIGNALED(status_))
			return std::string("signal ") + strsignal(WTERMSIG(status_));
		return "status " + std::to_string(status_);
	}

private:
	pid_t pid_ = -1;
	int status_ = 0;
};

// Memory shared with forked children (MAP_SHARED|MAP_ANONYMOUS).
template <class T> class Shared {
public:
	Shared()
	{
		void *p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			abort();
		p_ = new (p) T();
	}
	~Shared()
	{
		p_->~T();
		::munmap(p_, sizeof(T));
	}
	Shared(const Shared &) = delete;
	Shared &operator=(const Shared &) = delete;
	T *operator->() const { return p_; }
	T &operator*() const { return *p_; }

private:
	T *p_;
};

// A one-shot cross-process notification (a pipe): child signals, parent
// waits with a timeout.
class Pipe {
public:
	Pipe()
	{
		int p[2];
		if (::pipe2(p, O_CLOEXEC) != 0)
			abort();
		r_.reset(p[0]);
		w_.reset(p[1]);
	}
	void send(uint8_t v = 1) const
	{
		while (::write(w_.get(), &v, 1) < 0 && errno == EINTR) {
		}
	}
	// Byte received, or -1 on timeout / EOF.
	int recv(int timeout_ms) const
	{
		if (poll_one(r_.get(), POLLIN, timeout_ms) <= 0)
			return -1;
		uint8_t v;
		ssize_t n = ::read(r_.get(), &v, 1);
		return n == 1 ? v : -1;
	}
	bool readable(int timeout_ms) const { return poll_one(r_.get(), POLLIN, timeout_ms) > 0; }
	int rfd() const { return r_.get(); }
	int wfd() const { return w_.get(); }

private:
	Fd r_, w_;
};

// Runs @fn on a thread; done() tells whether it has returned.
// The function must return on its own (use finite deadlines).
template <class R> class Async {
public:
	explicit Async(std::function<R()> fn)
	{
		t_ = std::thread([this, fn = std::move(fn)] {
			result_ = fn();
			end_ns_ = now_ns();
			done_.store(true, std::memory_order_release);
		});
	}
	~Async() { join(); }
	bool done() const { return done_.load(std::memory_order_acquire); }
	// True if the function returned within @ms.
	bool wait(unsigned ms)
	{
		const uint64_t end = deadline_in_ms(ms);
		while (!done()) {
			if (now_ns() > end)
				return false;
			sleep_ms(1);
		}
		return true;
	}
	R get()
	{
		join();
		return result_;
	}
	uint64_t end_ns() const { return end_ns_; }
	void join()
	{
		if (t_.joinable())
			t_.join();
	}
	pthread_t native() { return t_.native_handle(); }

private:
	std::thread t_;
	std::atomic<bool> done_{false};
	R result_{};
	uint64_t end_ns_ = 0;
};

// Polls @pred every millisecond for up to @ms.
inline bool eventually(unsigned ms, const std::function<bool()> &pred)
{
	const uint64_t end = deadline_in_ms(ms);
	for (;;) {
		if (pred())
			return true;
		if (now_ns() > end)
			return false;
		sleep_ms(1);
	}
}

// Waits until udev applied its rules to a queue node: group shmq, mode 0660
// (udev/60-shmq.rules). The node appears (devtmpfs, root 0600) before udev
// changes it, and on a slow guest that takes a while. True when reached.
inline bool wait_node_settled(const std::string &path, unsigned timeout_ms = 10000)
{
	const long gid = group_gid("shmq");
	if (gid < 0)
		return false;
	return eventually(timeout_ms, [&] {
		struct stat st{};
		return ::stat(path.c_str(), &st) == 0 && st.st_gid == gid_t(gid) && (st.st_mode & 07777) == 0660;
	});
}

// Is task @tid of this process (or process @pid) sleeping ('S' or 'D')?
inline char task_state(pid_t pid, pid_t tid = 0)
{
	std::string path = tid ? strprintf("/proc/%d/task/%d/stat", int(pid), int(tid))
			       : strprintf("/proc/%d/stat", int(pid));
	std::string s;
	if (!read_file(path, &s))
		return '?';
	size_t p = s.rfind(')');
	if (p == std::string::npos || p + 2 >= s.size())
		return '?';
	return s[p + 2];
}

inline pid_t gettid_() { return pid_t(syscall(SYS_gettid)); }

// A thread sleeping in SHMQ_IOC_WAIT.
class WaitThread {
public:
	WaitThread(int fd, uint32_t cond, uint64_t min_bytes, uint64_t deadline_ns, uint32_t flags = 0)
		: a_([this, fd, cond, min_bytes, deadline_ns, flags] {
			  tid_.store(gettid_());
			  return raw_wait(fd, cond, min_bytes, deadline_ns, flags);
		  })
	{
	}
	// Asleep (waiting up to 10 s for it to get there under a loaded
	// host), then still asleep and inside the ioctl @ms later.
	bool blocked_for(unsigned ms)
	{
		auto asleep = [this] {
			if (!tid_.load())
				return false;
			char st = task_state(getpid(), tid_.load());
			return st == 'S' || st == 'D';
		};
		if (!eventually(10000, [&] { return a_.done() || asleep(); }) || a_.done())
			return false;
		sleep_ms(ms);
		return !a_.done() && asleep();
	}
	bool done() const { return a_.done(); }
	bool wait(unsigned ms) { return a_.wait(ms); }
	int result() { return a_.get(); }
	uint64_t end_ns() const { return a_.end_ns(); }
	pthread_t native() { return a_.native(); }
	pid_t tid() const { return tid_.load(); }

private:
	std::atomic<pid_t> tid_{0};
	Async<int> a_;
};

// ---------------------------------------------------------------------------
// Messages with sequence numbers and checksums

struct MsgHdr {
	uint64_t seq;
	uint64_t stream; // which producer incarnation / stream wrote it
	uint32_t len;	 // total message bytes including this header
	uint32_t sum;	 // checksum of the payload after the header
};
static_assert(sizeof(MsgHdr) == 24);
constexpr size_t kMinMsg = sizeof(MsgHdr);

inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	x ^= x >> 33;
	return x;
}

inline uint32_t checksum(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return uint32_t(h ^ (h >> 32));
}

// Fills @buf[0..size) with a message (size >= kMinMsg).
inline void make_msg(uint8_t *buf, size_t size, uint64_t seq, uint64_t stream)
{
	uint64_t x = mix64(seq * 0x9e3779b97f4a7c15ull + stream);
	uint8_t *p = buf + sizeof(MsgHdr);
	const size_t n = size - sizeof(MsgHdr);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		x += 0x9e3779b97f4a7c15ull;
		uint64_t w = x ^ (x >> 29);
		memcpy(p + i, &w, 8);
	}
	for (; i < n; i++)
		p[i] = uint8_t(x >> (8 * (i & 7)));
	MsgHdr h{seq, stream, uint32_t(size), checksum(p, n)};
	memcpy(buf, &h, sizeof h);
}

// Validates a message; on failure returns false with @why set.
inline bool check_msg(const uint8_t *buf, size_t size, MsgHdr *out, std::string *why)
{
	if (size < sizeof(MsgHdr)) {
		*why = strprintf("message of %zu bytes is shorter than its header", size);
		return false;
	}
	MsgHdr h;
	memcpy(&h, buf, sizeof h);
	if (h.len != size) {
		*why = strprintf("seq %llu: header says %u bytes, received %zu",
				 (unsigned long long)h.seq, h.len, size);
		return false;
	}
	uint32_t s = checksum(buf + sizeof h, size - sizeof h);
	if (s != h.sum) {
		*why = strprintf("seq %llu stream %llu: checksum %08x, expected %08x",
				 (unsigned long long)h.seq, (unsigned long long)h.stream, s, h.sum);
		return false;
	}
	*out = h;
	return true;
}

// Small fast PRNG (xorshift64*).
class Rng {
public:
	explicit Rng(uint64_t seed) : s_(seed ? seed : 0x2545f4914f6cdd1dull) {}
	uint64_t next()
	{
		s_ ^= s_ >> 12;
		s_ ^= s_ << 25;
		s_ ^= s_ >> 27;
		return s_ * 0x2545f4914f6cdd1dull;
	}
	// Uniform in [lo, hi].
	uint64_t range(uint64_t lo, uint64_t hi) { return lo + next() % (hi - lo + 1); }
	bool chance(unsigned percent) { return next() % 100 < percent; }

private:
	uint64_t s_;
};

// A message size: mostly small, sometimes up to @max.
inline size_t random_size(Rng &r, size_t max)
{
	size_t hi = std::min<size_t>(max, 256);
	if (r.chance(2))
		hi = max;
	return size_t(r.range(kMinMsg, std::max(hi, kMinMsg)));
}

inline uint64_t test_seed()
{
	const char *s = getenv("SHMQ_TEST_SEED");
	if (s && *s)
		return strtoull(s, nullptr, 0);
	return now_ns() ^ (uint64_t(getpid()) << 32);
}

// Library helpers ----------------------------------------------------------

inline std::span<const std::byte> as_bytes(const void *p, size_t n)
{
	return {static_cast<const std::byte *>(p), n};
}
inline std::span<std::byte> as_wbytes(void *p, size_t n)
{
	return {static_cast<std::byte *>(p), n};
}

inline std::string err_str(const shmq::Error &e)
{
	return errname(e.code()) + ": " + (e.what() ? e.what() : "");
}

} // namespace shmqt
