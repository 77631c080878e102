// SPDX-License-Identifier: MIT
// Errors, time, names, administration, and mapping a queue device.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmq/version.h>

#include "internal.hpp"

namespace shmq {

std::string Error::message() const
{
	char buf[128];
	// GNU strerror_r: returns a pointer to the text (maybe not buf).
	const char *s = strerror_r(code_, buf, sizeof buf);
	std::string m = what_;
	m += " (";
	m += s;
	m += ")";
	if (lane_ >= 0) {
		m += " [lane ";
		m += std::to_string(lane_);
		m += "]";
	}
	return m;
}

uint64_t monotonic_now_ns() noexcept
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

Result<void> validate_name(std::string_view name)
{
	if (name.empty())
		return unexpected(Error(EINVAL, "invalid queue name: it is empty (use 1 to 63 characters "
				     "of [A-Za-z0-9_.-], not starting with '.' or '-')"));
	if (name.size() >= SHMQ_NAME_MAX)
		return unexpected(Error(ENAMETOOLONG, "invalid queue name: longer than 63 characters"));
	if (name[0] == '.')
		return unexpected(Error(EINVAL, "invalid queue name: it must not start with '.'"));
	if (name[0] == '-')
		return unexpected(Error(EINVAL, "invalid queue name: it must not start with '-' (shell "
					"tools, shmqctl included, would take /dev/shmq/-NAME for an "
					"option)"));
	for (char c : name) {
		const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				(c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
		if (!ok)
			return unexpected(Error(EINVAL, "invalid queue name: only characters of "
					     "[A-Za-z0-9_.-] are allowed"));
	}
	return {};
}

namespace {

unexpected<Error> control_error(int e, bool create, bool opening)
{
	switch (e) {
	case ENOENT:
		return unexpected(Error(e, opening ? "no control device: is the shmq module loaded? (modprobe shmq)"
					: "no such queue"));
	case EACCES:
	case EPERM:
		return unexpected(Error(e, "permission denied on the control device (root only by default)"));
	case EBADF:
		return unexpected(Error(e, "the control device was not opened for writing"));
	case EEXIST:
		return unexpected(Error(e, "a queue with this name already exists"));
	case EFBIG:
		return unexpected(Error(e, "capacity above the module's max_queue_size parameter"));
	case ENOSPC:
		return unexpected(Error(e, "too many queues or too much queue memory (module parameters "
				"max_queues, max_total_memory)"));
	case ENOMEM:
		return unexpected(Error(e, "the kernel could not allocate the queue's memory"));
	case EINVAL:
		return unexpected(Error(e, create ? "rejected: the capacity must be a power of two of at least "
					 "4096 bytes, and the name valid"
				       : "rejected by the kernel: invalid name"));
	case ENAMETOOLONG:
		return unexpected(Error(e, "queue name too long: at most 63 characters"));
	case ENOTTY:
		return unexpected(Error(e, "not a shmq control device (ioctl not supported)"));
	default:
		return unexpected(Error(e, create ? "creating the queue failed" : "destroying the queue failed"));
	}
}

template <class Args>
Result<void> control_ioctl(const std::string &control, unsigned long cmd, Args &args, bool create)
{
	const int fd = ::open(control.c_str(), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return control_error(errno, create, true);
	int e = 0;
	if (ioctl(fd, cmd, &args) < 0)
		e = errno;
	::close(fd);
	if (e)
		return control_error(e, create, false);
	return {};
}

} // namespace

Result<void> create_queue(std::string_view name, uint64_t capacity, const std::string &control)
{
	if (auto v = validate_name(name); !v)
		return unexpected(v.error());
	const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
	if (capacity < std::max<uint64_t>(SHMQ_MIN_CAPACITY, page) || (capacity & (capacity - 1)) != 0)
		return unexpected(Error(EINVAL, "the capacity must be a power of two of at least 4096 "
					"bytes and of at least the page size"));
	struct shmq_create_args a;
	std::memset(&a, 0, sizeof a);
	a.capacity = capacity;
	std::memcpy(a.name, name.data(), name.size());
	return control_ioctl(control, SHMQ_IOC_CREATE, a, true);
}

Result<void> create_queue(std::string_view name, const CreateOptions &opt)
{
	if (opt.max_producers == 0)
		return create_queue(name, opt.capacity, opt.control);
	if (auto v = validate_name(name); !v)
		return unexpected(v.error());
	const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
	if (opt.capacity < std::max<uint64_t>(SHMQ_MIN_CAPACITY, page) ||
	    (opt.capacity & (opt.capacity - 1)) != 0)
		return unexpected(Error(EINVAL, "the lane size must be a power of two of at least 4096 "
					"bytes and of at least the page size"));
	if (opt.max_producers > SHMQ_MAX_PRODUCERS)
		return unexpected(Error(EINVAL, "max_producers is at most 1024 (and at most the "
					"module's max_producers parameter)"));
	struct shmq_create2_args a;
	std::memset(&a, 0, sizeof a);
	a.lane_size = opt.capacity;
	a.max_producers = opt.max_producers;
	a.max_consumers = 1;
	a.overflow = SHMQ_OVERFLOW_BLOCK;
	a.gid = UINT32_MAX;
	std::memcpy(a.name, name.data(), name.size());
	const int fd = ::open(opt.control.c_str(), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return control_error(errno, true, true);
	int e = 0;
	if (ioctl(fd, SHMQ_IOC_CREATE2, &a) < 0)
		e = errno;
	::close(fd);
	if (e == EINVAL)
		return unexpected(Error(e, "rejected: max_producers above the module's max_producers "
					"parameter (cat /sys/module/shmq/parameters/max_producers), or "
					"a lane size the module does not take"));
	if (e == ENOTTY)
		return unexpected(Error(e, "the shmq module does not offer lane queues "
					"(SHMQ_IOC_CREATE2): load shmq.ko " SHMQ_VERSION_STRING));
	if (e)
		return control_error(e, true, false);
	return {};
}

Result<void> destroy_queue(std::string_view name, const std::string &control)
{
	if (auto v = validate_name(name); !v)
		return unexpected(v.error());
	struct shmq_destroy_args a;
	std::memset(&a, 0, sizeof a);
	std::memcpy(a.name, name.data(), name.size());
	return control_ioctl(control, SHMQ_IOC_DESTROY, a, false);
}

namespace detail {

Mapping &Mapping::operator=(Mapping &&o) noexcept
{
	if (this != &o) {
		reset();
		addr = std::exchange(o.addr, nullptr);
		len = o.len;
	}
	return *this;
}

Mapping::~Mapping() { reset(); }

void Mapping::reset()
{
	if (addr)
		munmap(addr, len);
	addr = nullptr;
	len = 0;
}

// ---------------------------------------------------------------------------
// fork(): the registry of live handles and the pthread_atfork handlers.
//
// A child inherits copies of every Producer and Consumer object, but must
// not use them: a second producer (consumer) on the same counters would
// overwrite (re-deliver) records, a child's ~Producer could store a stale
// tail and move it backwards, and an inherited queue fd or mapping would
// keep the parent's attachment alive after the parent died, so the peer
// would never see the hang-up. The mappings carry MADV_DONTFORK (the child
// does not get them at all); the child handler below closes the inherited
// queue fds and disarms the objects, whose calls then fail with EBADF.

namespace {

struct Registry {
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	QueueHandle *first = nullptr;
};
constinit Registry g_registry;
pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

// prepare/parent: no handle is being added, removed or re-owned while the
// address space is copied, so the child sees a consistent list.
void atfork_prepare() { pthread_mutex_lock(&g_registry.mu); }
void atfork_parent() { pthread_mutex_unlock(&g_registry.mu); }

// Runs in the child, single-threaded, before fork() returns there. Only
// writes the child's own memory and closes fds (async-signal-safe): the
// queue fd numbers are certainly still ours right after fork.
void atfork_child()
{
	for (QueueHandle *h = g_registry.first; h; h = h->reg_next) {
		if (h->forked)
			continue; // inherited by our parent already: disarmed then
		h->forked = true;
		if (h->fd >= 0)
			::close(h->fd);
		h->fd = -1;
		h->status.forget();
		h->producer.forget();
		h->consumer.forget();
		h->data.forget();
		h->ring = Ring();
		Access::disarm_after_fork(*h);
	}
	// The prepare handler's lock was taken by the thread that forked, which
	// is this child's only thread: release it.
	pthread_mutex_unlock(&g_registry.mu);
}

void install_atfork() { (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

} // namespace

QueueHandle::QueueHandle()
{
	pthread_once(&g_atfork_once, install_atfork);
	pthread_mutex_lock(&g_registry.mu);
	reg_next = g_registry.first;
	if (reg_next)
		reg_next->reg_prev = this;
	g_registry.first = this;
	pthread_mutex_unlock(&g_registry.mu);
}

QueueHandle::~QueueHandle()
{
	// Unmap and close under the lock too: a fork between leaving the
	// registry and closing would hand the child an fd (and with it the
	// attachment) that its handler never sees. In a forked child the
	// mappings are forgotten and the fd is -1.
	pthread_mutex_lock(&g_registry.mu);
	if (reg_prev)
		reg_prev->reg_next = reg_next;
	else
		g_registry.first = reg_next;
	if (reg_next)
		reg_next->reg_prev = reg_prev;
	status.reset();
	producer.reset();
	consumer.reset();
	data.reset();
	if (fd >= 0)
		::close(fd);
	fd = -1;
	pthread_mutex_unlock(&g_registry.mu);
}

ForkLock::ForkLock() noexcept
{
	pthread_once(&g_atfork_once, install_atfork);
	pthread_mutex_lock(&g_registry.mu);
}

ForkLock::~ForkLock() { pthread_mutex_unlock(&g_registry.mu); }

void Access::disarm_after_fork(QueueHandle &h) noexcept
{
	// Zero geometry and limits send every fast path to the slow paths,
	// which check h.forked; see Producer::fits and Consumer::peek_fits.
	if (Producer *p = h.owner_producer) {
		p->ring_ = Ring();
		p->mask_ = 0;
		p->limit_ = 0;
		if (p->res_) { // points into memory the child does not have
			p->res_->clear();
			p->res_ = nullptr;
		}
	}
	if (Consumer *c = h.owner_consumer) {
		c->ring_ = Ring();
		c->mask_ = 0;
		c->live_ = false;
		c->end_peek();
		c->read_end_ = c->head_;
	}
}

void Access::set_owner(QueueHandle *h, Producer *p, Consumer *c) noexcept
{
	if (!h)
		return;
	pthread_mutex_lock(&g_registry.mu);
	h->owner_producer = p;
	h->owner_consumer = c;
	pthread_mutex_unlock(&g_registry.mu);
}

void Access::set_owner_locked(QueueHandle *h, Producer *p, Consumer *c) noexcept
{
	if (!h)
		return;
	h->owner_producer = p;
	h->owner_consumer = c;
}

void QueueHandle::wake()
{
	++wake_calls;
	if (fd < 0)
		return;
	const int saved = errno;
	// Failure needs no handling: the peer is gone or the queue destroyed,
	// and whoever waits learns that from its own SHMQ_IOC_WAIT.
	(void)ioctl(fd, SHMQ_IOC_WAKE, 0);
	errno = saved;
}

namespace {

// The kernel's wait condition, evaluated from the shared counters; used for
// rings on plain memory, where waiting is spinning with sched_yield.
bool plain_condition(const Ring &r, uint32_t cond, uint64_t min_bytes)
{
	const uint64_t t = load_acquire(r.tail), h = load_acquire(r.head);
	if (t - h > r.capacity) // impossible counters: readable, not writable
		return cond == SHMQ_WAIT_READABLE;
	if (cond == SHMQ_WAIT_READABLE)
		return t != h;
	return r.capacity - (t - h) >= min_bytes;
}

int plain_wait(const QueueHandle &h, uint32_t cond, uint64_t min_bytes, uint64_t deadline_ns)
{
	const uint32_t peer = cond == SHMQ_WAIT_READABLE ? SHMQ_STATE_PRODUCER : SHMQ_STATE_CONSUMER;
	for (;;) {
		if (plain_condition(h.ring, cond, min_bytes))
			return 0;
		const uint32_t st = load_acquire(h.ring.state);
		if (st & SHMQ_STATE_DESTROYED)
			return EIDRM;
		if (!(st & peer) && !h.ignore_hangup)
			return EPIPE;
		if (deadline_ns != UINT64_MAX && monotonic_now_ns() >= deadline_ns)
			return ETIMEDOUT;
		// As the kernel: taken only by a wait that would sleep.
		if (h.interrupt_requested.exchange(false, std::memory_order_acq_rel))
			return ECANCELED;
		sched_yield();
	}
}

} // namespace

void QueueHandle::interrupt()
{
	interrupt_requested.store(true, std::memory_order_release);
	if (fd < 0)
		return;
	const int saved = errno;
	// Fails only with EINVAL for a non-zero argument.
	(void)ioctl(fd, SHMQ_IOC_INTERRUPT, 0);
	errno = saved;
}

int QueueHandle::wait(uint32_t cond, uint64_t min_bytes, uint64_t deadline_ns) const
{
	if (fd < 0)
		return plain_wait(*this, cond, min_bytes, deadline_ns);
	struct shmq_wait_args a;
	std::memset(&a, 0, sizeof a);
	a.timeout_ns = deadline_ns;
	a.min_bytes = min_bytes;
	a.cond = cond;
	a.flags = ignore_hangup ? SHMQ_WAIT_IGNORE_HUP : 0;
	return wait_ioctl(a);
}

int QueueHandle::wait_ioctl(const struct shmq_wait_args &a) const
{
	for (;;) {
		if (ioctl(fd, SHMQ_IOC_WAIT, &a) == 0)
			return 0;
		// The kernel consumed the interrupt; forget our own mark of it.
		if (errno == ECANCELED)
			interrupt_requested.store(false, std::memory_order_relaxed);
		// The deadline is absolute: retrying after a signal does not
		// extend it.
		if (errno != EINTR)
			return errno;
	}
}

int QueueHandle::probe(uint32_t cond, uint64_t min_bytes, uint32_t peer_bit) const
{
	const uint32_t st = load_acquire(ring.state);
	if (!(st & SHMQ_STATE_DESTROYED) && ((st & peer_bit) || ignore_hangup))
		return EAGAIN;
	// Only the kernel knows whether the peer has gone (its departure
	// counter) or never came: ask with a deadline in the past.
	const int e = wait(cond, min_bytes, 0);
	if (e == 0 || e == EPIPE || e == EIDRM)
		return e;
	if (load_acquire(ring.state) & SHMQ_STATE_DESTROYED)
		return EIDRM;
	return EAGAIN;
}

std::unique_ptr<QueueHandle> plain_handle(const Ring &ring, uint32_t spin)
{
	auto h = std::make_unique<QueueHandle>();
	h->ring = ring;
	h->spin = spin;
	return h;
}

namespace {

unexpected<Error> open_error(int e, int role, const std::string &dev_dir)
{
	const bool prod = role == SHMQ_ROLE_PRODUCER;
	switch (e) {
	case ENOENT: {
		struct stat st;
		if (::stat(dev_dir.c_str(), &st) != 0)
			return unexpected(Error(e, "no queue device directory (/dev/shmq): is the shmq module "
					"loaded? (modprobe shmq)"));
		return unexpected(Error(e, "no such queue: create it with shmqctl create NAME --size BYTES"));
	}
	case EACCES:
	case EPERM:
		return unexpected(Error(e, "permission denied: the queue's device mode/group does not allow "
				"this role (producer needs write, consumer needs read)"));
	case EBUSY:
		return unexpected(Error(e, prod ? "no room for another producer: a queue of one producer has "
					   "one attached, or every lane of a lane queue is taken "
					   "(max_producers; shmqctl stat NAME lists them)"
				     : "a consumer is already attached to this queue (one at a time)"));
	case ENODEV:
	case ENXIO:
		return unexpected(Error(e, "the queue was destroyed (or the shmq module unloaded) while "
				"opening it"));
	case ENOTDIR:
		return unexpected(Error(e, "the queue device directory is not a directory"));
	case EMFILE:
	case ENFILE:
		return unexpected(Error(e, "too many open files"));
	case EINVAL:
		return unexpected(Error(e, "the kernel refused this open mode for the queue device"));
	default:
		return unexpected(Error(e, "cannot open the queue device"));
	}
}

// Closes a file descriptor on scope exit.
struct FdGuard {
	int fd;
	~FdGuard()
	{
		if (fd >= 0)
			::close(fd);
	}
};

// The kernel's layout must be one this library can use safely.
bool layout_ok(const struct shmq_layout &l, int role)
{
	auto field_ok = [](uint32_t off, uint32_t width, const struct shmq_region &reg) {
		return off % width == 0 && uint64_t{off} + width <= reg.size;
	};
	auto region_ok = [&](const struct shmq_region &reg) {
		return reg.size > 0 && l.page_size > 0 && reg.offset % l.page_size == 0 &&
		       reg.size % l.page_size == 0 && reg.size <= (uint64_t{1} << 62);
	};
	return l.role == static_cast<uint32_t>(role) && l.record_header_size == kRecordHeader &&
	       l.record_align == kRecordAlign && l.capacity >= SHMQ_MIN_CAPACITY &&
	       (l.capacity & (l.capacity - 1)) == 0 && l.capacity <= (uint64_t{1} << 62) &&
	       l.max_message <= l.capacity / 4 - kRecordHeader && region_ok(l.status) &&
	       region_ok(l.producer) && region_ok(l.consumer) && region_ok(l.data) &&
	       l.data.size >= l.capacity && field_ok(l.tail_off, 8, l.producer) &&
	       field_ok(l.write_armed_off, 4, l.producer) && field_ok(l.head_off, 8, l.consumer) &&
	       field_ok(l.read_armed_off, 4, l.consumer) && field_ok(l.read_wake_off, 4, l.status) &&
	       field_ok(l.write_wake_off, 4, l.status) && field_ok(l.write_need_off, 8, l.status) &&
	       field_ok(l.state_off, 4, l.status) && l.min_capacity <= l.capacity;
}

// A capability this libshmq needs from the module, and the message for a
// module that lacks it. The messages are literals (Error keeps a pointer).
struct NeededFeature {
	uint64_t bit;
	const char *missing;
};

// Every bit of SHMQ_FEATURES_V2 exists in every shmq.ko since 0.4.0 (whose
// ioctl numbers changed: older modules answer ENOTTY, see open_queue()).
#define SHMQ_FEATURES_V2_SINCE "0.4.0"

#define SHMQ_LACKS(feat, what)                                                                   \
	"shmq module lacks feature " #feat " (" what ") that libshmq " SHMQ_VERSION_STRING          \
	" needs: load shmq.ko version >= " SHMQ_FEATURES_V2_SINCE " (modinfo shmq; "              \
	"cat /sys/module/shmq/version)"

constexpr NeededFeature kNeeded[] = {
	{SHMQ_FEAT_SPSC_RING, SHMQ_LACKS(SHMQ_FEAT_SPSC_RING, "the shared byte ring")},
	{SHMQ_FEAT_WAIT, SHMQ_LACKS(SHMQ_FEAT_WAIT, "SHMQ_IOC_WAIT and SHMQ_IOC_WAKE")},
	{SHMQ_FEAT_POLL, SHMQ_LACKS(SHMQ_FEAT_POLL, "poll/epoll on the queue fd")},
	{SHMQ_FEAT_PEER_HUP, SHMQ_LACKS(SHMQ_FEAT_PEER_HUP, "EPIPE/EPOLLHUP when the peer goes")},
	{SHMQ_FEAT_WAKE_ARM, SHMQ_LACKS(SHMQ_FEAT_WAKE_ARM, "wake words and armed words")},
	{SHMQ_FEAT_INTERRUPT, SHMQ_LACKS(SHMQ_FEAT_INTERRUPT, "SHMQ_IOC_INTERRUPT")},
};
#undef SHMQ_LACKS

static_assert([] {
	uint64_t all = 0;
	for (const auto &n : kNeeded)
		all |= n.bit;
	return all == SHMQ_FEATURES_V2;
}(), "kNeeded must list exactly the bits of SHMQ_FEATURES_V2");

// The kinds of queue (SHMQ_QUEUE_* bits) this library can attach to.
constexpr uint64_t kKnownQueueFeatures = SHMQ_QUEUE_SPSC | SHMQ_QUEUE_LANES;

} // namespace

Result<void> check_module(const struct shmq_layout &l, int role)
{
	// Bits this library does not know are newer capabilities: ignored.
	for (const auto &n : kNeeded)
		if (!(l.features & n.bit))
			return unexpected(Error(EPROTO, n.missing));
	// Incompatible bits: a kind of queue whose memory this library cannot
	// read correctly. Unlike module features, never ignored.
	if (l.queue_features & ~kKnownQueueFeatures)
		return unexpected(Error(EPROTO, "the queue is of a kind this libshmq " SHMQ_VERSION_STRING
					" does not know (unknown SHMQ_QUEUE_* bits in its layout): "
					"use the libshmq that comes with the module (cat "
					"/sys/module/shmq/version)"));
	if (!(l.queue_features & (SHMQ_QUEUE_SPSC | SHMQ_QUEUE_LANES)))
		return unexpected(Error(EPROTO, "the module does not say what kind of queue this is "
					"(no SHMQ_QUEUE_* bit): load a shmq.ko of the same release"));
	if ((l.queue_features & SHMQ_QUEUE_LANES) && (l.queue_features & SHMQ_QUEUE_SPSC))
		return unexpected(Error(EPROTO, "the module says the queue is both SHMQ_QUEUE_SPSC and "
					"SHMQ_QUEUE_LANES: load a shmq.ko of the same release"));
	if ((l.queue_features & SHMQ_QUEUE_LANES) &&
	    (l.features & (SHMQ_FEAT_LANES | SHMQ_FEAT_REGIONS)) != (SHMQ_FEAT_LANES | SHMQ_FEAT_REGIONS))
		return unexpected(Error(EPROTO, "a lane queue on a shmq module that does not offer "
					"SHMQ_FEAT_LANES and SHMQ_FEAT_REGIONS: load a shmq.ko of the "
					"same release (cat /sys/module/shmq/version)"));
	// The module writes reserved fields as zero unless a bit announces what
	// they mean; a non-zero one here is something this library cannot read.
	for (const uint64_t r : l.reserved)
		if (r)
			return unexpected(Error(EPROTO, "shmq module reports layout fields that libshmq "
						SHMQ_VERSION_STRING " does not know (non-zero reserved "
						"fields): load a shmq.ko of the same release (modinfo "
						"shmq; cat /sys/module/shmq/version)"));
	if (!layout_ok(l, role))
		return unexpected(Error(EPROTO, "shmq module reports a memory layout that libshmq " SHMQ_VERSION_STRING
				     " does not understand: load a shmq.ko of the same release (modinfo "
				     "shmq; cat /sys/module/shmq/version)"));
	return {};
}

namespace {

constexpr const char *kBadLayout2 =
	"shmq module reports a lane queue layout (SHMQ_IOC_LAYOUT2) that libshmq " SHMQ_VERSION_STRING
	" does not understand: load a shmq.ko of the same release (modinfo shmq; cat "
	"/sys/module/shmq/version)";

// SHMQ_IOC_LAYOUT2 with the whole region list, checked as far as every
// role needs it.
Result<void> read_layout2(int fd, int role, struct shmq_layout2 &l2,
			  std::vector<struct shmq_region2> &regions)
{
	regions.resize(SHMQ_MAX_PRODUCERS + 2);
	std::memset(&l2, 0, sizeof l2);
	l2.regions = reinterpret_cast<uintptr_t>(regions.data());
	l2.regions_cap = static_cast<uint32_t>(regions.size());
	if (ioctl(fd, SHMQ_IOC_LAYOUT2, &l2) < 0)
		return unexpected(Error(errno, "reading the lane queue's layout (SHMQ_IOC_LAYOUT2) failed"));
	for (const uint64_t r : l2.reserved)
		if (r)
			return unexpected(Error(EPROTO, kBadLayout2));
	if (l2.regions_count > regions.size() || l2.role != static_cast<uint32_t>(role) ||
	    l2.max_producers == 0 || l2.max_producers > SHMQ_MAX_PRODUCERS ||
	    l2.record_header_size != kRecordHeader || l2.record_align != kRecordAlign ||
	    l2.page_size == 0 || l2.lane_size < SHMQ_MIN_CAPACITY ||
	    (l2.lane_size & (l2.lane_size - 1)) != 0 || l2.lane_size > (uint64_t{1} << 40) ||
	    l2.max_message > l2.lane_size / 4 - kRecordHeader ||
	    (role == SHMQ_ROLE_PRODUCER && l2.slot >= l2.max_producers) ||
	    l2.page_size != static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) ||
	    !(l2.queue_features & SHMQ_QUEUE_LANES))
		return unexpected(Error(EPROTO, kBadLayout2));
	// What this library implements of the 0.5 design: one consumer, the
	// blocking policy. A module offering more (fan-out, issue 11) says so
	// with values this library must not read as these.
	if (l2.max_consumers != 1 || l2.overflow != SHMQ_OVERFLOW_BLOCK)
		return unexpected(Error(EPROTO, "the lane queue has several consumers or an overflow "
					"policy this libshmq " SHMQ_VERSION_STRING " does not implement: use "
					"the libshmq that comes with the module (cat "
					"/sys/module/shmq/version)"));
	regions.resize(l2.regions_count);
	return {};
}

// Whether a field of @width bytes at @off lies inside @size bytes, aligned.
bool field_in(uint64_t off, uint32_t width, uint64_t size)
{
	return off % width == 0 && off + width <= size;
}

} // namespace

// A lane queue's consumer maps the status page, its consumer page (read-
// write) and every lane at once (read-only: a free lane reads as zeros), and
// scans the lanes (lib/lanes.cpp).
template <class Map, class MapError>
Result<std::unique_ptr<QueueHandle>> map_lane_consumer(std::unique_ptr<QueueHandle> h,
						       const struct shmq_layout2 &l2,
						       const std::vector<struct shmq_region2> &regions,
						       Map &map, MapError &map_error, QueueInfo &info)
{
	const struct shmq_region2 *status = nullptr, *consumer = nullptr, *lane0 = nullptr;
	uint32_t nlanes = 0;
	bool ok = true;
	for (const auto &r : regions) {
		if (r.offset % l2.page_size || r.size % l2.page_size || r.size == 0 ||
		    r.size > (uint64_t{1} << 41))
			ok = false;
		else if (r.kind == SHMQ_REGION_STATUS && !status && r.index == 0)
			status = &r;
		else if (r.kind == SHMQ_REGION_CONSUMER && !consumer && r.index == 0 &&
			 (r.prot & PROT_WRITE))
			consumer = &r;
		else if (r.kind == SHMQ_REGION_LANE && r.index == nlanes) {
			if (!lane0)
				lane0 = &r;
			// Contiguous, lane_stride apart: mapped as one range.
			if (r.size != l2.lane_stride ||
			    r.offset != lane0->offset + uint64_t{nlanes} * l2.lane_stride)
				ok = false;
			nlanes++;
		} else
			ok = false;
	}
	if (!ok || !status || !consumer || !lane0 || nlanes != l2.max_producers ||
	    !field_in(l2.state_off, 4, status->size) || !field_in(l2.read_wake_off, 4, status->size) ||
	    !field_in(l2.dir_gen_off, 4, status->size) || l2.dir_stride < sizeof(struct shmq_lane_dir) ||
	    l2.dir_stride % 8 ||
	    l2.dir_off % 8 || uint64_t{l2.dir_off} + uint64_t{l2.dir_stride} * l2.max_producers > status->size ||
	    !field_in(l2.read_armed_off, 4, consumer->size) || l2.head_stride < 8 ||
	    !field_in(l2.head_off + uint64_t{l2.head_stride} * (l2.max_producers - 1), 8, consumer->size) ||
	    l2.head_off % 8 || l2.head_stride % 8 || !field_in(l2.tail_off, 8, l2.data_off) ||
	    !field_in(l2.write_armed_off, 4, l2.data_off) || l2.data_off % l2.page_size ||
	    uint64_t{l2.data_off} + l2.lane_size > l2.lane_stride ||
	    // words written by different parties never share bytes
	    !(uint64_t{l2.read_armed_off} + 4 <= l2.head_off ||
	      l2.read_armed_off >= l2.head_off + uint64_t{l2.head_stride} * l2.max_producers) ||
	    !(uint64_t{l2.tail_off} + 8 <= l2.write_armed_off ||
	      uint64_t{l2.write_armed_off} + 4 <= l2.tail_off))
		return unexpected(Error(EPROTO, kBadLayout2));

	int e = map(h->status, status->offset, status->size, false);
	if (!e)
		e = map(h->consumer, consumer->offset, consumer->size, true);
	if (!e)
		e = map(h->data, lane0->offset, uint64_t{nlanes} * l2.lane_stride, false);
	if (e)
		return map_error(e);

	auto *st = static_cast<std::byte *>(h->status.addr);
	auto *cp = static_cast<std::byte *>(h->consumer.addr);
	Ring shared;
	shared.state = reinterpret_cast<uint32_t *>(st + l2.state_off);
	shared.read_wake = reinterpret_cast<uint32_t *>(st + l2.read_wake_off);
	shared.read_armed = reinterpret_cast<uint32_t *>(cp + l2.read_armed_off);
	shared.capacity = l2.lane_size;
	shared.max_message = std::min<uint64_t>(l2.max_message, UINT32_MAX & ~(kRecordAlign - 1));
	h->ring = shared; // for probe() and the plain waits: the shared words
	LaneGeometry g;
	g.max_producers = nlanes;
	g.lane_stride = l2.lane_stride;
	g.tail_off = l2.tail_off;
	g.write_armed_off = l2.write_armed_off;
	g.data_off = l2.data_off;
	g.head_off = l2.head_off;
	g.head_stride = l2.head_stride;
	g.dir_gen_off = l2.dir_gen_off;
	g.dir_off = l2.dir_off;
	g.dir_stride = l2.dir_stride;
	h->lanes = make_lane_set(shared, st, cp, static_cast<std::byte *>(h->data.addr), g);
	info.capacity = l2.lane_size;
	info.max_message = shared.max_message;
	info.features = l2.features;
	return h;
}

Result<std::unique_ptr<QueueHandle>> open_queue(std::string_view name, const OpenOptions &opt,
						int role, QueueInfo &info)
{
	if (auto v = validate_name(name); !v)
		return unexpected(v.error());
	const bool prod = role == SHMQ_ROLE_PRODUCER;
	std::string path = opt.dev_dir;
	path += '/';
	path += name;
	// Allocated first: nothing below may fail while a queue fd is not yet
	// owned by a handle (it would keep the role attached).
	auto h = std::make_unique<QueueHandle>();
	// From the open to the last MADV_DONTFORK and the ring fd's close, no
	// fork may copy the process: the child would inherit an fd or a mapping
	// its handler does not know, and with it the attachment. (Declared after
	// h, so released before h's destructor takes the same lock.)
	const ForkLock no_fork;
	const int fd = ::open(path.c_str(), (prod ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return open_error(errno, role, opt.dev_dir);
	h->fd = fd;
	h->spin = opt.spin;
	h->ignore_hangup = opt.ignore_hangup;

	struct shmq_layout l;
	std::memset(&l, 0, sizeof l);
	if (ioctl(fd, SHMQ_IOC_LAYOUT, &l) < 0) {
		const int e = errno;
		if (e == ENOTTY || e == EINVAL)
			return unexpected(Error(e, "the device does not answer SHMQ_IOC_LAYOUT: not a shmq "
						"queue device, or a shmq.ko older than 0.4.0 (whose ioctl "
						"numbers differ): load shmq.ko version " SHMQ_VERSION_STRING
						" (modinfo shmq; cat /sys/module/shmq/version)"));
		return unexpected(Error(e, "reading the queue's layout (SHMQ_IOC_LAYOUT) failed"));
	}
	if (auto c = check_module(l, role); !c)
		return unexpected(c.error());

	FdGuard ring{static_cast<int>(ioctl(fd, SHMQ_IOC_RING_FD, O_CLOEXEC))};
	if (ring.fd < 0)
		return unexpected(Error(errno, "getting the ring fd (SHMQ_IOC_RING_FD) failed"));

	bool madvise_failed = false;
	auto map = [&](Mapping &m, uint64_t offset, uint64_t size, bool writable) -> int {
		void *p = mmap(nullptr, size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
			       MAP_SHARED, ring.fd, static_cast<off_t>(offset));
		if (p == MAP_FAILED)
			return errno;
		m = Mapping(p, size);
		// Never in a forked child (see atfork_child): otherwise the child
		// would keep the attachment, and so the peer would not see this
		// process's death, until the child exits too.
		if (madvise(p, size, MADV_DONTFORK) != 0) {
			madvise_failed = true;
			return errno;
		}
		return 0;
	};
	auto map_error = [&](int e) {
		if (madvise_failed)
			return unexpected(Error(e, "madvise(MADV_DONTFORK) on the queue's memory failed "
						   "(libshmq/module mismatch?)"));
		return unexpected(Error(e, e == ENOMEM ? "mapping the queue's memory failed: out of memory or "
						      "address space"
						    : "mapping the queue's memory failed (mmap of the ring fd)"));
	};
	const bool lanes = l.queue_features & SHMQ_QUEUE_LANES;
	info.lanes = lanes;
	info.max_producers = 1;
	if (lanes) {
		struct shmq_layout2 l2;
		std::vector<struct shmq_region2> regions;
		if (auto r = read_layout2(fd, role, l2, regions); !r)
			return unexpected(r.error());
		info.max_producers = l2.max_producers;
		info.lane = prod ? l2.slot : 0;
		if (!prod)
			return map_lane_consumer(std::move(h), l2, regions, map, map_error, info);
	}

	int e = map(h->status, l.status.offset, l.status.size, false);
	if (!e)
		e = map(h->producer, l.producer.offset, l.producer.size, prod);
	if (!e)
		e = map(h->consumer, l.consumer.offset, l.consumer.size, !prod);
	if (!e)
		e = map(h->data, l.data.offset, l.data.size, prod);
	if (e)
		return map_error(e);

	auto at = [](Mapping &m, uint32_t off) { return static_cast<std::byte *>(m.addr) + off; };
	Ring &r = h->ring;
	r.tail = reinterpret_cast<uint64_t *>(at(h->producer, l.tail_off));
	r.write_armed = reinterpret_cast<uint32_t *>(at(h->producer, l.write_armed_off));
	r.head = reinterpret_cast<uint64_t *>(at(h->consumer, l.head_off));
	r.read_armed = reinterpret_cast<uint32_t *>(at(h->consumer, l.read_armed_off));
	r.read_wake = reinterpret_cast<uint32_t *>(at(h->status, l.read_wake_off));
	r.write_wake = reinterpret_cast<uint32_t *>(at(h->status, l.write_wake_off));
	r.write_need = reinterpret_cast<uint64_t *>(at(h->status, l.write_need_off));
	r.state = reinterpret_cast<uint32_t *>(at(h->status, l.state_off));
	r.data = static_cast<std::byte *>(h->data.addr);
	r.capacity = l.capacity;
	// A record's len is 32 bits: cap max_message for capacities above 8 GiB.
	r.max_message = std::min<uint64_t>(l.max_message, UINT32_MAX & ~(kRecordAlign - 1));
	if (!ring_geometry_ok(r))
		return unexpected(Error(EPROTO, "kernel module reports a memory layout this libshmq does not "
				     "understand (module and library versions differ?)"));
	info.capacity = r.capacity;
	info.max_message = r.max_message;
	info.features = l.features;
	return h;
}

} // namespace detail
} // namespace shmq
