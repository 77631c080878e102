// SPDX-License-Identifier: MIT
// The C API of include/shmq/shmq.h: POSIX-message-queue-shaped calls over
// Producer and Consumer (docs/c-api.md).
//
// The ring work is the C++ library's non-blocking calls (try_send,
// try_receive). Waiting is done here with SHMQ_IOC_WAIT directly rather
// than through the C++ blocking calls, for two POSIX behaviours those do not
// have: EINTR when a signal handler without SA_RESTART interrupts a wait
// (the kernel restarts the wait itself under SA_RESTART, with the same
// absolute deadline), and deadlines on CLOCK_REALTIME. The per-descriptor
// mutex makes a descriptor usable from several threads, as POSIX
// descriptors are; it is never held while sleeping, so a blocked receiver
// does not stall a non-blocking or timed caller on the same descriptor.
#include <shmq/shmq.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string_view>

#include <pthread.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "internal.hpp"

using shmq::detail::Access;
using shmq::detail::QueueHandle;
using shmq::detail::Ring;

struct shmq_mq {
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	bool producer = false;
	std::atomic<long> flags{0}; // O_NONBLOCK | SHMQ_MQ_IGNORE_HUP
	shmq::Producer prod;
	shmq::Consumer cons;

	~shmq_mq()
	{
		// In a forked child the mutex may be held by a thread that does
		// not exist there: leave it alone.
		if (!inherited())
			pthread_mutex_destroy(&mu);
	}
	[[nodiscard]] QueueHandle *handle() const
	{
		return producer ? Access::handle(prod) : Access::handle(cons);
	}
	// Opened by the parent before fork(): every call is EBADF in the
	// child, decided before the mutex is touched (see above). forked is
	// only ever written by the child's atfork handler, before the child
	// runs anything else.
	[[nodiscard]] bool inherited() const
	{
		const QueueHandle *h = handle();
		return h && h->forked;
	}
	[[nodiscard]] const shmq::QueueInfo &info() const
	{
		return producer ? prod.info() : cons.info();
	}
};

namespace {

constexpr long kHupFlags = SHMQ_MQ_IGNORE_HUP | SHMQ_MQ_REPORT_HUP;
constexpr long kSettableFlags = O_NONBLOCK | kHupFlags;
// The mq_flags of an attr that open honours (see SHMQ_MQ_USE_CAPACITY).
constexpr long kOpenFlags = kSettableFlags | SHMQ_MQ_USE_CAPACITY | SHMQ_MQ_USE_PRODUCERS;
constexpr uint64_t kForever = UINT64_MAX;
constexpr uint64_t kNsPerSec = 1000000000u;

// Producers a queue made by O_CREAT takes at once, unless
// SHMQ_MQ_USE_PRODUCERS says otherwise (the kernel's default too).
constexpr uint32_t kDefaultProducers = SHMQ_DEFAULT_PRODUCERS;

// Linux's mq_open defaults (mq_overview(7)): what attr == NULL creates.
constexpr long kDefaultMaxMsg = 10;
constexpr long kDefaultMsgSize = 8192;
// Largest capacity the library accepts (open_queue's layout check).
constexpr uint64_t kMaxCapacity = uint64_t{1} << 62;

class Lock {
public:
	explicit Lock(pthread_mutex_t &m) : m_(m) { pthread_mutex_lock(&m_); }
	~Lock() { pthread_mutex_unlock(&m_); }
	Lock(const Lock &) = delete;
	Lock &operator=(const Lock &) = delete;

private:
	pthread_mutex_t &m_;
};

// No call is a cancellation point: open(2), close(2) and usleep inside
// open, close and unlink are, and a cancellation there would unwind
// through these noexcept functions (std::terminate) and leak the
// descriptor. A pending cancellation takes effect at the caller's next
// cancellation point. (send and receive wait in ioctl(2), which is not
// one.) The previous state is restored on return.
class NoCancel {
public:
	NoCancel() { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_); }
	~NoCancel() { pthread_setcancelstate(old_, nullptr); }
	NoCancel(const NoCancel &) = delete;
	NoCancel &operator=(const NoCancel &) = delete;

private:
	int old_ = PTHREAD_CANCEL_ENABLE;
};

int fail(int e)
{
	errno = e;
	return -1;
}

// NULL and SHMQ_MQ_FAILED ((shmq_mqd_t)-1, what a failed open returns)
// are not descriptors: EBADF, as POSIX gives for (mqd_t)-1.
// NULL, SHMQ_MQ_FAILED, or a descriptor inherited across fork(): EBADF.
bool bad(shmq_mqd_t mq) { return !mq || mq == SHMQ_MQ_FAILED || mq->inherited(); }

// "orders" or "/orders" -> "orders", validated as the kernel does.
int queue_name(const char *name, std::string_view &out)
{
	if (!name)
		return EINVAL;
	std::string_view n(name);
	if (!n.empty() && n.front() == '/')
		n.remove_prefix(1);
	if (auto v = shmq::validate_name(n); !v)
		return v.error().code();
	out = n;
	return 0;
}

uint64_t timespec_ns(const struct timespec &ts)
{
	const auto sec = static_cast<uint64_t>(ts.tv_sec);
	if (sec > (kForever - kNsPerSec) / kNsPerSec)
		return kForever;
	return sec * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

// The absolute CLOCK_MONOTONIC deadline (what SHMQ_IOC_WAIT takes) for
// @ts on @clock; kForever for NULL. A CLOCK_REALTIME deadline is converted
// once, at the start of the call: a later jump of the wall clock does not
// move it (POSIX would follow the jump).
int deadline_ns(clockid_t clock, const struct timespec *ts, uint64_t &out)
{
	out = kForever;
	if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)
		return EINVAL;
	if (!ts)
		return 0;
	if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= static_cast<long>(kNsPerSec))
		return EINVAL;
	const uint64_t abs = timespec_ns(*ts);
	if (clock == CLOCK_MONOTONIC) {
		out = abs;
		return 0;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	const uint64_t now_rt = timespec_ns(now);
	const uint64_t now_mono = shmq::monotonic_now_ns();
	if (abs <= now_rt) {
		out = 0; // already past: fail at once if the call would block
		return 0;
	}
	const uint64_t left = abs - now_rt;
	out = now_mono + left < now_mono ? kForever : now_mono + left;
	return 0;
}

bool past(uint64_t deadline)
{
	return deadline != kForever && shmq::monotonic_now_ns() >= deadline;
}

// SHMQ_IOC_WAIT once. 0 when the condition holds, else the errno: EINTR is
// returned, not retried (a handler installed with SA_RESTART never gets
// here: the kernel restarts the ioctl).
// @dir_gen: for the consumer of a lane queue, the directory generation its
// last look at the lanes saw (SHMQ_WAIT_DIR_GEN: a producer's arrival ends
// the wait).
int kernel_wait(const shmq_mq *mq, uint32_t cond, uint64_t min_bytes, uint64_t deadline,
		const uint32_t *dir_gen = nullptr)
{
	struct shmq_wait_args a;
	std::memset(&a, 0, sizeof a);
	a.timeout_ns = deadline;
	a.min_bytes = min_bytes;
	a.cond = cond;
	a.flags = (mq->flags.load(std::memory_order_relaxed) & SHMQ_MQ_IGNORE_HUP)
			  ? SHMQ_WAIT_IGNORE_HUP
			  : 0;
	if (dir_gen) {
		a.flags |= SHMQ_WAIT_DIR_GEN;
		a.reserved[0] = *dir_gen;
	}
	if (ioctl(mq->handle()->fd, SHMQ_IOC_WAIT, &a) == 0)
		return 0;
	return errno;
}

// Free bytes the producer must wait for to queue @len bytes at its tail,
// as the ring core computes it (a PAD to the ring end included). The C API
// never defers a commit, so the published tail is the producer's tail.
uint64_t send_need(const Ring &r, size_t len)
{
	const uint64_t tail = shmq::detail::load_acquire(r.tail);
	const uint64_t rec = shmq::detail::record_size(len);
	const uint64_t room_to_end = r.capacity - (tail & r.mask());
	return rec > room_to_end ? room_to_end + rec : rec;
}

int do_send(shmq_mqd_t mq, const char *msg, size_t len, unsigned int prio, clockid_t clock,
	    const struct timespec *ts)
{
	if (bad(mq) || !mq->producer)
		return fail(EBADF);
	uint64_t deadline;
	if (int e = deadline_ns(clock, ts, deadline))
		return fail(e);
	if (prio != 0 || (!msg && len))
		return fail(EINVAL);
	if (len > mq->prod.info().max_message)
		return fail(EMSGSIZE);
	const std::span<const std::byte> bytes(reinterpret_cast<const std::byte *>(msg), len);
	bool woken = false;
	for (;;) {
		int e = 0;
		uint64_t need = 0;
		{
			Lock l(mq->mu);
			auto r = mq->prod.try_send(bytes);
			if (!r) {
				e = r.error().code();
				if (e == EAGAIN)
					need = send_need(mq->handle()->ring, len);
			}
		}
		if (e == 0)
			return 0;
		if (e != EAGAIN)
			return fail(e);
		if (mq->flags.load(std::memory_order_relaxed) & O_NONBLOCK)
			return fail(EAGAIN);
		// The kernel said there was room, yet there is not for us (a
		// thread of ours sent meanwhile): never past the deadline.
		if (woken && past(deadline))
			return fail(ETIMEDOUT);
		if (int w = kernel_wait(mq, SHMQ_WAIT_WRITABLE, need, deadline))
			return fail(w);
		woken = true;
	}
}

void fill_sender(struct shmq_mq_sender *out, const shmq::Sender &s, uint32_t lane, uint32_t gen)
{
	std::memset(out, 0, sizeof *out);
	out->uid = s.uid;
	out->gid = s.gid;
	out->pid = s.pid;
	out->lane = lane;
	out->generation = gen;
}

// One message into @buf under the descriptor's mutex: the Consumer's
// try_receive, or, when the sender is wanted, its peek, copy and release.
// Returns 0 or the errno; @dir_gen gets what a wait must pass.
int receive_once(shmq_mq *mq, std::span<std::byte> bytes, size_t &n,
		 struct shmq_mq_sender *sender, uint32_t &dir_gen, bool &lanes)
{
	Lock l(mq->mu);
	const QueueHandle *h = mq->handle();
	lanes = h->lanes != nullptr;
	int e = 0;
	if (!sender) {
		auto r = mq->cons.try_receive(bytes);
		if (r)
			n = *r;
		e = r ? 0 : r.error().code();
	} else {
		auto m = mq->cons.try_peek();
		if (!m) {
			e = m.error().code();
		} else if (m->size() > bytes.size()) {
			e = EMSGSIZE; // stays queued, as try_receive leaves it
		} else {
			n = m->size();
			if (n)
				std::memcpy(bytes.data(), m->data().data(), n);
			fill_sender(sender, m->sender(), m->lane(), m->generation());
			(void)mq->cons.release(); // the peek just made cannot be missing
		}
	}
	if (lanes)
		dir_gen = h->lanes->seen_gen;
	return e;
}

ssize_t do_receive(shmq_mqd_t mq, char *buf, size_t len, unsigned int *prio, clockid_t clock,
		   const struct timespec *ts, struct shmq_mq_sender *sender = nullptr)
{
	if (bad(mq) || mq->producer)
		return fail(EBADF);
	uint64_t deadline;
	if (int e = deadline_ns(clock, ts, deadline))
		return fail(e);
	if (!buf && len)
		return fail(EINVAL);
	const std::span<std::byte> bytes(reinterpret_cast<std::byte *>(buf), len);
	bool woken = false;
	for (;;) {
		size_t n = 0;
		uint32_t dir_gen = 0;
		bool lanes = false;
		const int e = receive_once(mq, bytes, n, sender, dir_gen, lanes);
		if (e == 0) {
			if (prio)
				*prio = 0;
			return static_cast<ssize_t>(n);
		}
		if (e != EAGAIN)
			return fail(e);
		if (mq->flags.load(std::memory_order_relaxed) & O_NONBLOCK)
			return fail(EAGAIN);
		if (woken && past(deadline))
			return fail(ETIMEDOUT);
		if (int w = kernel_wait(mq, SHMQ_WAIT_READABLE, 0, deadline, lanes ? &dir_gen : nullptr))
			return fail(w);
		woken = true;
	}
}

// The attributes, with mq_curmsgs counted by walking the records between
// head and tail. Those records are stable while we hold the descriptor's
// mutex: the producer writes only beyond tail, and only the consumer moves
// head (for a producer descriptor a stale head only means an older count).
// Everything read is validated like the consumer's ring core does.
// Bytes and messages between @head and @tail of @r, every record
// validated; EBADMSG for anything inconsistent.
int count_ring(const Ring &r, uint64_t max, uint64_t head, uint64_t tail, uint64_t &bytes,
	       long &msgs)
{
	const uint64_t cap = r.capacity;
	if (tail - head > cap || head % SHMQ_RECORD_ALIGN || tail % SHMQ_RECORD_ALIGN)
		return EBADMSG;
	bytes += tail - head;
	for (uint64_t pos = head; pos != tail;) {
		const uint64_t off = pos & r.mask(), left = tail - pos;
		const struct shmq_record h = shmq::detail::unpack_header(
			shmq::detail::load_relaxed(shmq::detail::header_at(r, off)));
		uint64_t rec;
		if (h.type == SHMQ_REC_PAD) {
			rec = cap - off;
			if (h.len != rec - sizeof h)
				return EBADMSG;
		} else if (h.type == SHMQ_REC_MSG && h.len <= max) {
			rec = shmq::detail::record_size(h.len);
			if (rec > cap - off)
				return EBADMSG;
			++msgs;
		} else {
			return EBADMSG;
		}
		if (rec > left)
			return EBADMSG;
		pos += rec;
	}
	return 0;
}

int fill_attr(const shmq_mq *mq, struct shmq_mq_attr *a)
{
	const QueueHandle *h = mq->handle();
	const Ring &r = h->ring;
	const uint64_t cap = r.capacity, max = mq->info().max_message;
	std::memset(a, 0, sizeof *a);
	// The stored flags have SHMQ_MQ_IGNORE_HUP or not; getattr names the
	// semantics either way, so that a saved result restores them.
	const long f = mq->flags.load(std::memory_order_relaxed);
	a->mq_flags = (f & SHMQ_MQ_IGNORE_HUP) ? f : f | SHMQ_MQ_REPORT_HUP;
	a->mq_msgsize = static_cast<long>(max);
	a->mq_maxmsg = static_cast<long>(cap / shmq::detail::record_size(max));
	a->mq_capacity = cap;
	a->mq_maxproducers = mq->info().max_producers;
	long msgs = 0;
	uint64_t bytes = 0;
	if (h->lanes) {
		// The consumer of a lane queue: every lane it knows, from its own
		// heads; a corrupt lane (reported by receive) counts as empty.
		shmq::detail::sync_lanes_for(*h, *h->lanes);
		for (const uint32_t j : h->lanes->active) {
			const auto &l = h->lanes->lanes[j];
			if (l.corrupt)
				continue;
			const uint64_t tail = shmq::detail::load_acquire(l.ring.tail);
			uint64_t b = 0;
			long m = 0;
			if (count_ring(l.ring, max, l.head, tail, b, m) == 0) {
				bytes += b;
				msgs += m;
			}
		}
	} else {
		const uint64_t head = shmq::detail::load_acquire(r.head);
		const uint64_t tail = shmq::detail::load_acquire(r.tail);
		if (int e = count_ring(r, max, head, tail, bytes, msgs))
			return e;
	}
	a->mq_curbytes = bytes;
	a->mq_curmsgs = msgs;
	return 0;
}

// Whether O_CREAT takes attr->mq_capacity: only when asked for with
// SHMQ_MQ_USE_CAPACITY in a mq_flags that holds nothing else open does not
// know. Code ported from POSIX fills mq_maxmsg and mq_msgsize only (POSIX
// open ignores mq_flags), so both mq_flags and mq_capacity may be garbage:
// a stray bit among others must not make garbage the ring size.
bool use_capacity(const struct shmq_mq_attr *attr)
{
	if (!attr)
		return false;
	const long f = attr->mq_flags;
	return (f & SHMQ_MQ_USE_CAPACITY) && !(f & ~kOpenFlags);
}

// SHMQ_MQ_USE_PRODUCERS, under the same rule.
bool use_producers(const struct shmq_mq_attr *attr)
{
	if (!attr)
		return false;
	const long f = attr->mq_flags;
	return (f & SHMQ_MQ_USE_PRODUCERS) && !(f & ~kOpenFlags);
}

// Ring bytes for O_CREAT: mq_capacity (with SHMQ_MQ_USE_CAPACITY), or the
// smallest power of two whose max_message (capacity/4 - 8) is at least
// mq_msgsize and which holds mq_maxmsg such messages from any position
// (one more record's worth covers the PAD at the ring end).
int capacity_for(const struct shmq_mq_attr *attr, uint64_t &cap)
{
	const long maxmsg = attr ? attr->mq_maxmsg : kDefaultMaxMsg;
	const long msgsize = attr ? attr->mq_msgsize : kDefaultMsgSize;
	const bool given = use_capacity(attr);
	if (maxmsg < 0 || msgsize < 0 || (!given && (maxmsg == 0 || msgsize == 0)))
		return EINVAL;
	// A record's length is 32 bits, and max_message < capacity/4.
	if (static_cast<uint64_t>(msgsize) > UINT32_MAX / 2 ||
	    static_cast<uint64_t>(maxmsg) > kMaxCapacity / 16)
		return EINVAL;
	const uint64_t rec = shmq::detail::record_size(static_cast<uint64_t>(msgsize));
	const uint64_t for_size = 4 * (static_cast<uint64_t>(msgsize) + 8);
	const uint64_t n = static_cast<uint64_t>(maxmsg);
	if (n && rec > kMaxCapacity / (n + 1))
		return EINVAL;
	const uint64_t for_count = n ? (n + 1) * rec : 0;
	if (given) {
		const uint64_t fixed = attr->mq_capacity;
		if (fixed < SHMQ_MIN_CAPACITY || !std::has_single_bit(fixed) || fixed > kMaxCapacity ||
		    for_size > fixed || for_count > fixed)
			return EINVAL;
		cap = fixed;
		return 0;
	}
	const uint64_t want = std::max<uint64_t>({SHMQ_MIN_CAPACITY, for_size, for_count});
	if (want > kMaxCapacity)
		return EINVAL;
	cap = std::bit_ceil(want);
	return 0;
}

// POSIX names for the control device's errors.
int posix_control_errno(int e)
{
	switch (e) {
	case EPERM:
	case EBADF: // the control device is not writable for us
		return EACCES;
	case EFBIG: // above the module's max_queue_size: attr beyond a limit
		return EINVAL;
	default:
		return e;
	}
}

// POSIX names for the queue device's errors: EPERM is EACCES; ENXIO (the
// node outlived its queue's device) means what ENODEV means.
int posix_open_errno(int e)
{
	switch (e) {
	case EPERM:
		return EACCES;
	case ENXIO:
		return ENODEV;
	default:
		return e;
	}
}

int attach(shmq_mq *mq, std::string_view name)
{
	if (mq->producer) {
		auto p = shmq::Producer::open(name);
		if (!p)
			return posix_open_errno(p.error().code());
		mq->prod = std::move(*p);
	} else {
		auto c = shmq::Consumer::open(name);
		if (!c)
			return posix_open_errno(c.error().code());
		mq->cons = std::move(*c);
	}
	// Queue semantics on a queue of several producers: messages wait for
	// a consumer, senders for room, as in POSIX (setattr can clear it).
	if (mq->info().lanes) {
		mq->flags.fetch_or(SHMQ_MQ_IGNORE_HUP, std::memory_order_relaxed);
		mq->handle()->ignore_hangup = true;
	}
	return 0;
}

// After creating: the node is made by devtmpfs before the create ioctl
// returns, but where udev makes it, it may take a moment.
int attach_created(shmq_mq *mq, std::string_view name)
{
	const uint64_t give_up = shmq::monotonic_now_ns() + 2 * kNsPerSec;
	for (;;) {
		const int e = attach(mq, name);
		if (e != ENOENT || shmq::monotonic_now_ns() >= give_up)
			return e;
		usleep(1000);
	}
}

// The module's max_producers parameter, if it can be read.
bool read_max_producers(uint64_t &out)
{
	const int fd = ::open("/sys/module/shmq/parameters/max_producers", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[32] = {};
	const ssize_t n = ::read(fd, buf, sizeof buf - 1);
	::close(fd);
	if (n <= 0)
		return false;
	char *end = nullptr;
	out = std::strtoull(buf, &end, 10);
	return end != buf;
}

static_assert(SHMQ_MQ_LANE_ATTACHED == static_cast<int>(shmq::LaneEvent::Kind::attached) &&
	      SHMQ_MQ_LANE_ENDED == static_cast<int>(shmq::LaneEvent::Kind::ended) &&
	      SHMQ_MQ_LANE_CORRUPT == static_cast<int>(shmq::LaneEvent::Kind::corrupt) &&
	      SHMQ_MQ_LANE_DROPPED == static_cast<int>(shmq::LaneEvent::Kind::dropped));

// A lane queue (docs/design.md, "Lanes"): several processes may send at
// once, as to a POSIX queue.
int create(std::string_view name, uint64_t cap, const struct shmq_mq_attr *attr)
{
	shmq::CreateOptions o;
	o.capacity = cap;
	o.max_producers = kDefaultProducers;
	if (use_producers(attr)) {
		if (attr->mq_maxproducers > SHMQ_MAX_PRODUCERS)
			return EINVAL;
		if (attr->mq_maxproducers)
			o.max_producers = static_cast<uint32_t>(attr->mq_maxproducers);
	}
	auto r = shmq::create_queue(name, o);
	if (!r && r.error().code() == EINVAL && !use_producers(attr)) {
		// The module's max_producers parameter is below our default:
		// its ceiling is what the default means then.
		uint64_t param = 0;
		if (read_max_producers(param) && param > 0 && param < o.max_producers) {
			o.max_producers = static_cast<uint32_t>(param);
			r = shmq::create_queue(name, o);
		}
	}
	// The kernel charges every lane at creation: a queue of large
	// messages that does not fit max_total_memory with the default 64
	// producers gets as many as fit (down to one), unless the caller
	// asked for a number.
	while (!r && r.error().code() == ENOSPC && !use_producers(attr) && o.max_producers > 1) {
		o.max_producers /= 2;
		r = shmq::create_queue(name, o);
	}
	return r ? 0 : posix_control_errno(r.error().code());
}

// @attr counts only when a queue is created: O_CREAT of one that exists
// ignores it, as POSIX and Linux do (with O_EXCL it is checked first).
int open_impl(shmq_mq *mq, std::string_view name, int oflag, const struct shmq_mq_attr *attr)
{
	if (!(oflag & O_CREAT))
		return attach(mq, name);
	uint64_t cap = 0;
	if (oflag & O_EXCL) {
		if (int e = capacity_for(attr, cap))
			return e;
		if (int e = create(name, cap, attr))
			return e;
		return attach_created(mq, name);
	}
	// Open first: opening an existing queue needs no control device.
	int e = attach(mq, name);
	if (e != ENOENT)
		return e;
	if ((e = capacity_for(attr, cap)))
		return e;
	e = create(name, cap, attr);
	if (e == EEXIST) // created by someone else meanwhile
		return attach(mq, name);
	return e ? e : attach_created(mq, name);
}

} // namespace

// The C API is exported (the library is built with -fvisibility=hidden).
#pragma GCC visibility push(default)
extern "C" {

shmq_mqd_t shmq_mq_open(const char *name, int oflag, ...) SHMQ_NOTHROW
{
	const NoCancel nc;
	const struct shmq_mq_attr *attr = nullptr;
	if (oflag & O_CREAT) {
		va_list ap;
		va_start(ap, oflag);
		(void)va_arg(ap, mode_t); // permissions come from the udev rules
		attr = va_arg(ap, const struct shmq_mq_attr *);
		va_end(ap);
	}
	std::string_view n;
	if (int e = queue_name(name, n)) {
		errno = e;
		return SHMQ_MQ_FAILED;
	}
	const int acc = oflag & O_ACCMODE;
	if ((acc != O_RDONLY && acc != O_WRONLY) ||
	    (oflag & ~(O_ACCMODE | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC))) {
		errno = EINVAL;
		return SHMQ_MQ_FAILED;
	}
	shmq_mq *mq = new (std::nothrow) shmq_mq;
	if (!mq) {
		errno = ENOMEM;
		return SHMQ_MQ_FAILED;
	}
	mq->producer = acc == O_WRONLY;
	mq->flags.store(oflag & O_NONBLOCK, std::memory_order_relaxed);
	int e;
	try { // the open path allocates (paths, handles): std::bad_alloc
		e = open_impl(mq, n, oflag, attr);
	} catch (const std::bad_alloc &) {
		e = ENOMEM;
	} catch (...) {
		e = EIO;
	}
	if (e) {
		delete mq;
		errno = e;
		return SHMQ_MQ_FAILED;
	}
	return mq;
}

int shmq_mq_close(shmq_mqd_t mqd) SHMQ_NOTHROW
{
	// An inherited descriptor may be closed (that frees the child's copy).
	if (!mqd || mqd == SHMQ_MQ_FAILED)
		return fail(EBADF);
	const NoCancel nc;
	// Detaches: Producer/Consumer close the queue fd and unmap. In a
	// forked child (mqd->inherited()) there is nothing left to close:
	// this only frees the child's copy.
	delete mqd;
	return 0;
}

int shmq_mq_unlink(const char *name) SHMQ_NOTHROW
{
	const NoCancel nc;
	std::string_view n;
	if (int e = queue_name(name, n))
		return fail(e);
	try {
		auto r = shmq::destroy_queue(n);
		if (!r)
			return fail(posix_control_errno(r.error().code()));
	} catch (const std::bad_alloc &) {
		return fail(ENOMEM);
	} catch (...) {
		return fail(EIO);
	}
	return 0;
}

int shmq_mq_send(shmq_mqd_t mqd, const char *msg_ptr, size_t msg_len,
		 unsigned int msg_prio) SHMQ_NOTHROW
{
	return do_send(mqd, msg_ptr, msg_len, msg_prio, CLOCK_REALTIME, nullptr);
}

int shmq_mq_timedsend(shmq_mqd_t mqd, const char *msg_ptr, size_t msg_len, unsigned int msg_prio,
		      const struct timespec *abs_timeout) SHMQ_NOTHROW
{
	return do_send(mqd, msg_ptr, msg_len, msg_prio, CLOCK_REALTIME, abs_timeout);
}

int shmq_mq_clocksend(shmq_mqd_t mqd, const char *msg_ptr, size_t msg_len, unsigned int msg_prio,
		      clockid_t clock, const struct timespec *abs_timeout) SHMQ_NOTHROW
{
	return do_send(mqd, msg_ptr, msg_len, msg_prio, clock, abs_timeout);
}

ssize_t shmq_mq_receive(shmq_mqd_t mqd, char *msg_ptr, size_t msg_len,
			unsigned int *msg_prio) SHMQ_NOTHROW
{
	return do_receive(mqd, msg_ptr, msg_len, msg_prio, CLOCK_REALTIME, nullptr);
}

ssize_t shmq_mq_timedreceive(shmq_mqd_t mqd, char *msg_ptr, size_t msg_len,
			     unsigned int *msg_prio,
			     const struct timespec *abs_timeout) SHMQ_NOTHROW
{
	return do_receive(mqd, msg_ptr, msg_len, msg_prio, CLOCK_REALTIME, abs_timeout);
}

ssize_t shmq_mq_clockreceive(shmq_mqd_t mqd, char *msg_ptr, size_t msg_len,
			     unsigned int *msg_prio, clockid_t clock,
			     const struct timespec *abs_timeout) SHMQ_NOTHROW
{
	return do_receive(mqd, msg_ptr, msg_len, msg_prio, clock, abs_timeout);
}

int shmq_mq_getattr(shmq_mqd_t mqd, struct shmq_mq_attr *attr) SHMQ_NOTHROW
{
	if (bad(mqd))
		return fail(EBADF);
	if (!attr)
		return fail(EINVAL);
	Lock l(mqd->mu);
	if (int e = fill_attr(mqd, attr))
		return fail(e);
	return 0;
}

int shmq_mq_setattr(shmq_mqd_t mqd, const struct shmq_mq_attr *newattr,
		    struct shmq_mq_attr *oldattr) SHMQ_NOTHROW
{
	if (bad(mqd))
		return fail(EBADF);
	if (newattr && ((newattr->mq_flags & ~kSettableFlags) ||
			(newattr->mq_flags & kHupFlags) == kHupFlags))
		return fail(EINVAL);
	Lock l(mqd->mu);
	if (oldattr) {
		if (int e = fill_attr(mqd, oldattr))
			return fail(e);
	}
	if (newattr) {
		// O_NONBLOCK always (POSIX's one settable flag); the HUP
		// semantics only when named, so that a ported
		// `mq_flags = O_NONBLOCK` keeps a lane queue's queue semantics.
		const long want = newattr->mq_flags;
		long f = mqd->flags.load(std::memory_order_relaxed);
		if (want & SHMQ_MQ_IGNORE_HUP)
			f |= SHMQ_MQ_IGNORE_HUP;
		else if (want & SHMQ_MQ_REPORT_HUP)
			f &= ~SHMQ_MQ_IGNORE_HUP;
		f = (f & ~O_NONBLOCK) | (want & O_NONBLOCK);
		mqd->flags.store(f, std::memory_order_relaxed);
		// Also what the C++ try_* calls consult before reporting EPIPE.
		mqd->handle()->ignore_hangup = (f & SHMQ_MQ_IGNORE_HUP) != 0;
	}
	return 0;
}

int shmq_mq_fd(shmq_mqd_t mqd) SHMQ_NOTHROW
{
	if (bad(mqd))
		return fail(EBADF);
	return mqd->handle()->fd;
}

ssize_t shmq_mq_receive_sender(shmq_mqd_t mqd, char *msg_ptr, size_t msg_len,
			       unsigned int *msg_prio, struct shmq_mq_sender *sender,
			       const struct timespec *abs_timeout) SHMQ_NOTHROW
{
	if (!bad(mqd) && !mqd->producer && !sender)
		return fail(EINVAL);
	return do_receive(mqd, msg_ptr, msg_len, msg_prio, CLOCK_REALTIME, abs_timeout, sender);
}

int shmq_mq_lane_events(shmq_mqd_t mqd, struct shmq_mq_lane_event *events,
			unsigned int n) SHMQ_NOTHROW
{
	if (bad(mqd) || mqd->producer)
		return fail(EBADF);
	if (!events && n)
		return fail(EINVAL);
	Lock l(mqd->mu);
	unsigned int done = 0;
	while (done < n) {
		shmq::LaneEvent ev[16];
		const size_t want = std::min<size_t>(16, n - done);
		const size_t got = mqd->cons.events(std::span(ev, want));
		for (size_t k = 0; k < got; k++) {
			struct shmq_mq_lane_event &o = events[done + k];
			std::memset(&o, 0, sizeof o);
			o.kind = static_cast<uint32_t>(ev[k].kind);
			fill_sender(&o.who, ev[k].sender, ev[k].lane, ev[k].generation);
		}
		done += static_cast<unsigned int>(got);
		if (got < want)
			break;
	}
	return static_cast<int>(done);
}

int shmq_mq_drop_lane(shmq_mqd_t mqd, unsigned int lane) SHMQ_NOTHROW
{
	if (bad(mqd) || mqd->producer)
		return fail(EBADF);
	Lock l(mqd->mu);
	auto r = mqd->cons.drop_lane(lane);
	return r ? 0 : fail(r.error().code());
}

int shmq_mq_interrupt(shmq_mqd_t mqd) SHMQ_NOTHROW
{
	if (bad(mqd))
		return fail(EBADF);
	// Lock-free: the waiter sleeps without the descriptor's mutex.
	mqd->handle()->interrupt();
	return 0;
}

} // extern "C"
#pragma GCC visibility pop
