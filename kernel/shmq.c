// SPDX-License-Identifier: GPL-2.0
/*
 * shmq - kernel-assisted shared-memory message queues.
 *
 * The module owns the memory of each queue's ring, hands it out to exactly
 * one producer and one consumer through mmap with role-dependent
 * protections, lets either side sleep until the other side's counter makes
 * its condition true, and tracks who is attached. It never reads or copies a
 * message. The protocol is described in docs/design.md, the ABI in
 * include/shmq/uapi.h.
 *
 * Objects and lifetimes
 *
 *  - struct shmq_queue: one queue. Its lifetime is the reference count of
 *    the embedded struct device. References are held by the namespace (from
 *    creation until SHMQ_IOC_DESTROY or module exit), by every open queue
 *    file and by every ring file (hence, through vma->vm_file, by every
 *    mapping). The device release callback shmq_queue_release() frees the
 *    pages, the page array, the minor number and the memory accounting.
 *    The cdev is embedded too; cdev_device_add() makes it hold a reference
 *    on the device while it is in use.
 *  - Every queue that was allocated and not yet released counts in
 *    shmq_queues_alive; module exit waits until that count is zero, so a
 *    release callback that runs late (CONFIG_DEBUG_KOBJECT_RELEASE delays
 *    it by seconds) still finds the module's code and data.
 *  - struct shmq_peer: one attachment (producer or consumer). Created by
 *    open() of /dev/shmq/NAME, referenced by that file and by each ring file
 *    made from it. The last shmq_peer_put() detaches it from the queue:
 *    state bit cleared, departure counter bumped, other side woken.
 *  - ring file: anon-inode file from SHMQ_IOC_RING_FD, only for mmap (and
 *    poll, which answers as the queue file). Holds a peer reference and a
 *    device reference.
 *  - Module references: the queue cdev, the ring file and the control
 *    device all use file_operations with .owner = THIS_MODULE, so rmmod is
 *    refused while any of them is open or mapped. Module init never fails
 *    once a device node exists (an opener would keep a file of a module
 *    that is freed); module exit destroys every queue left in the
 *    namespace.
 *
 * Locking
 *
 *  - shmq_ns_lock (mutex): shmq_queues, shmq_nr_queues (also read without
 *    it, READ_ONCE), shmq_next_minor, and the insertion and removal of
 *    queues. Held for short checks and for registering or removing a
 *    device, never across the allocation of a queue's pages and never while
 *    sleeping for a queue condition; taken killable where a user waits.
 *  - queue->lock (spinlock), taken inside shmq_ns_lock, never the other way
 *    round: queue->destroyed, queue->attached[], queue->pid[],
 *    queue->departures[], queue->nr_sleepers[], queue->poll_armers[],
 *    queue->poll_gen[], queue->registering,
 *    queue->write_sleepers, queue->write_need, peer->interrupted and every
 *    word of the status page. Functions named *_locked() expect it held.
 *  - Wait queues: queue->wq[] for SHMQ_IOC_WAIT sleepers, queue->pollq[] for
 *    poll/epoll, so that waitqueue_active() on a pollq tells whether a
 *    poller is registered when the waiter words are published.
 *  - shmq_total_memory (atomic64_t): bytes of ring pages reserved by all
 *    queues alive, including destroyed ones still open. Creation reserves
 *    with a compare-and-exchange against the limit before it allocates; the
 *    release callback subtracts.
 *  - queue->stats: atomic64_t counters, no lock; the creator's uid and the
 *    creation time are written before the device is added, then only read.
 *  - The ring counters tail and head live in user-writable pages: the
 *    kernel reads them with READ_ONCE() (shmq_read_counters()), trusts
 *    nothing about them and never indexes memory with them.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/cdev.h>
#include <linux/compat.h>
#include <linux/completion.h>
#include <linux/cred.h>
#include <linux/device.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/idr.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/nsproxy.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/overflow.h>
#include <linux/poll.h>
#include <linux/random.h>
#include <linux/rbtree.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/time_namespace.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>

#include <shmq/uapi.h>
#include <shmq/version.h>

/*
 * The shared counters are u64 words that the kernel reads with READ_ONCE()
 * while user space writes them: single-copy atomic only on 64-bit kernels.
 */
#if BITS_PER_LONG != 64
#error "shmq needs a 64-bit kernel (the shared u64 counters must be read in one load)"
#endif

/* ------------------------------------------------------------------------
 * Compatibility with the kernels we build for (6.1 .. 6.12). Keep all
 * version checks here.
 */

/* 6.2: class->devnode() takes a const struct device *. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define SHMQ_CLASS_DEV_CONST const
#else
#define SHMQ_CLASS_DEV_CONST
#endif

/* 6.3: vma->vm_flags became read-only; use vm_flags_set()/vm_flags_clear(). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
static inline void shmq_vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vm_flags_set(vma, flags);
}

static inline void shmq_vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vm_flags_clear(vma, flags);
}
#else
static inline void shmq_vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void shmq_vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/* 6.4: class_create() lost its struct module * argument. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define shmq_class_create(name) class_create(name)
#else
#define shmq_class_create(name) class_create(THIS_MODULE, name)
#endif

/* ------------------------------------------------------------------------
 * Layout of the shared pages (reported to user space by SHMQ_IOC_LAYOUT).
 */

#define SHMQ_PG_STATUS		0	/* kernel-written status words */
#define SHMQ_PG_PRODUCER	1	/* tail, write_armed */
#define SHMQ_PG_CONSUMER	2	/* head, read_armed */
#define SHMQ_PG_DATA		3	/* capacity bytes of records */

/*
 * The counters sit alone on their cache lines; the armed words, written
 * only when a side is about to sleep, on the next line of the same page.
 */
#define SHMQ_TAIL_OFF		0
#define SHMQ_WRITE_ARMED_OFF	64
#define SHMQ_HEAD_OFF		0
#define SHMQ_READ_ARMED_OFF	64

/* The smallest capacity: whole pages of data, at least SHMQ_MIN_CAPACITY. */
#define SHMQ_MIN_CAP		max_t(u64, SHMQ_MIN_CAPACITY, PAGE_SIZE)

/* Number of minors reserved for queues; bounds max_queues in practice. */
#define SHMQ_MAX_MINORS		4096

/* Sides, indexed by role - 1. */
#define SHMQ_PROD		0
#define SHMQ_CONS		1

/* Rounds of shmq_read_counters() before it gives up on a stable pair. */
#define SHMQ_COUNTER_TRIES	8

/**
 * struct shmq_status_page - kernel-written words at the start of page 0
 * @state: SHMQ_STATE_* bits
 * @read_wake: SHMQ_WAKE_* bits of the consumer side (checked by the producer)
 * @write_wake: SHMQ_WAKE_* bits of the producer side (checked by the consumer)
 * @__pad: zero
 * @write_need: smallest free-byte count a sleeping producer waits for
 *
 * User space maps this page read-only. Written only under queue->lock.
 */
struct shmq_status_page {
	u32 state;
	u32 read_wake;
	u32 write_wake;
	u32 __pad;
	u64 write_need;
};

static_assert(offsetof(struct shmq_status_page, state) == 0);
static_assert(offsetof(struct shmq_status_page, read_wake) == 4);
static_assert(offsetof(struct shmq_status_page, write_wake) == 8);
static_assert(offsetof(struct shmq_status_page, write_need) == 16);
static_assert(sizeof(struct shmq_record) == SHMQ_RECORD_ALIGN);

/**
 * struct shmq_stats - what the kernel sees of a queue's traffic (sysfs)
 * @waits: SHMQ_IOC_WAIT calls that went to sleep at least once
 * @wakes: SHMQ_IOC_WAKE calls
 * @full_events: SHMQ_IOC_WAIT WRITABLE calls whose first check found the
 *	condition false (too little free room)
 * @empty_events: SHMQ_IOC_WAIT READABLE calls whose first check found the
 *	ring empty
 * @creator_uid: effective uid of the process that created the queue
 * @created_at: creation time, seconds since the epoch (CLOCK_REALTIME)
 * @flags: SHMQ_QF_* bits
 *
 * The counters are only touched on the slow path, which already is a system
 * call; the fast path (user space, no system call) is not counted. Bytes
 * passed come from the shared counters instead. atomic64_t: no torn reads.
 * docs/abi.md defines each attribute.
 */
struct shmq_stats {
	atomic64_t waits;
	atomic64_t wakes;
	atomic64_t full_events;
	atomic64_t empty_events;
	kuid_t creator_uid;
	time64_t created_at;
	unsigned long flags;
};

/* shmq_stats.flags: corrupt counters were reported for this queue. */
#define SHMQ_QF_CORRUPT_LOGGED	0

/**
 * struct shmq_queue - one queue
 * @dev: class device; its reference count is the queue's lifetime
 * @cdev: the /dev/shmq/NAME character device
 * @node: entry in shmq_queues (shmq_ns_lock)
 * @registering: in shmq_queues to hold the name while its pages are
 *	allocated; not yet openable, not destroyable (shmq_ns_lock)
 * @name: queue name, NUL-terminated
 * @capacity: data region bytes, a power of two, a multiple of PAGE_SIZE
 * @nr_pages: pages in @pages: three control pages plus the data pages
 * @pages: ring pages, zeroed, charged to the creator's memory cgroup
 * @accounted: bytes reserved in shmq_total_memory for this queue
 * @minor: minor number from shmq_minor_ida, -1 before registration
 * @status: kernel mapping of the status page
 * @tail: kernel mapping of the producer's counter (user-written)
 * @head: kernel mapping of the consumer's counter (user-written)
 * @lock: protects the fields below it and the status page words
 * @destroyed: SHMQ_IOC_DESTROY or module exit removed the queue
 * @attached: a peer of that side is attached
 * @pid: thread group of the process that attached that side
 * @departures: number of detaches of that side so far
 * @nr_sleepers: tasks of that side sleeping in SHMQ_IOC_WAIT
 * @poll_armers: polls of that side that found their condition false since
 *	its pollers were last woken (each such poller may be asleep)
 * @poll_gen: bumped whenever that side's pollers are woken, so that a poll
 *	that armed and then found its condition true undoes only its own arm
 * @write_sleepers: struct shmq_sleeper of the producer side, by need
 * @write_need: value last published in the status page's write_need
 * @wq: SHMQ_IOC_WAIT sleepers of each side
 * @pollq: poll/epoll waiters of each side
 * @stats: counters and creation facts shown in sysfs
 */
struct shmq_queue {
	struct device dev;
	struct cdev cdev;
	struct list_head node;
	bool registering;
	char name[SHMQ_NAME_MAX];
	u64 capacity;
	unsigned long nr_pages;
	struct page **pages;
	u64 accounted;
	int minor;
	struct shmq_status_page *status;
	u64 *tail;
	u64 *head;

	spinlock_t lock;	/* see "Locking" at the top of this file */
	bool destroyed;
	bool attached[2];
	struct pid *pid[2];
	u64 departures[2];
	unsigned int nr_sleepers[2];
	unsigned int poll_armers[2];
	u64 poll_gen[2];
	struct rb_root_cached write_sleepers;
	u64 write_need;

	wait_queue_head_t wq[2];
	wait_queue_head_t pollq[2];

	struct shmq_stats stats;
};

/**
 * struct shmq_peer - one attachment of a producer or a consumer
 * @ref: held by the queue file and by each ring file made from it
 * @queue: the queue; each file holding @ref also holds a device reference
 * @role: SHMQ_ROLE_PRODUCER or SHMQ_ROLE_CONSUMER
 * @side: SHMQ_PROD or SHMQ_CONS (role - 1)
 * @seen_departures: the other side's departure counter at attach time
 * @interrupted: SHMQ_IOC_INTERRUPT is pending (queue->lock)
 */
struct shmq_peer {
	refcount_t ref;
	struct shmq_queue *queue;
	u32 role;
	unsigned int side;
	u64 seen_departures;
	bool interrupted;
};

/**
 * struct shmq_sleeper - a producer task sleeping in SHMQ_IOC_WAIT
 * @node: entry in queue->write_sleepers, ordered by @need
 * @need: the free bytes it waits for
 */
struct shmq_sleeper {
	struct rb_node node;
	u64 need;
};

/**
 * struct shmq_counters - the shared counters as the kernel read them
 * @tail: the producer's counter
 * @head: the consumer's counter
 * @stable: head did not move while tail was read, so the pair existed at
 *	one instant (for honest peers then 0 <= tail - head <= capacity)
 */
struct shmq_counters {
	u64 tail;
	u64 head;
	bool stable;
};

/* ------------------------------------------------------------------------
 * Module parameters and global state.
 */

static char *shmq_queues_param;
static u64 shmq_max_queue_size = 256ULL << 20;
static u64 shmq_max_total_memory = 1ULL << 30;
static unsigned int shmq_max_queues = 256;

static DEFINE_MUTEX(shmq_ns_lock);
static LIST_HEAD(shmq_queues);
static unsigned int shmq_nr_queues;
static unsigned int shmq_next_minor;
static atomic64_t shmq_total_memory = ATOMIC64_INIT(0);
static DEFINE_IDA(shmq_minor_ida);
static dev_t shmq_devt;
static struct class *shmq_class;

/* Queues allocated and not yet released, plus one held until module exit. */
static atomic_t shmq_queues_alive = ATOMIC_INIT(1);
static DECLARE_COMPLETION(shmq_all_released);

/**
 * shmq_parse_size() - parse a byte count with an optional K, M or G suffix
 * @str: the text, e.g. "64K"; surrounding white space is ignored
 * @out: the result in bytes
 *
 * Return: 0 on success, -EINVAL if @str is not a number with an optional
 * suffix or does not fit in 64 bits.
 */
static int shmq_parse_size(const char *str, u64 *out)
{
	unsigned int shift = 0;
	char buf[32];
	char *s;
	size_t len;
	u64 val;

	if (strscpy(buf, str, sizeof(buf)) < 0)
		return -EINVAL;
	s = strim(buf);
	len = strlen(s);
	if (!len)
		return -EINVAL;
	switch (s[len - 1]) {
	case 'K':
	case 'k':
		shift = 10;
		break;
	case 'M':
	case 'm':
		shift = 20;
		break;
	case 'G':
	case 'g':
		shift = 30;
		break;
	}
	if (shift)
		s[--len] = '\0';
	if (!len || kstrtoull(s, 10, &val))
		return -EINVAL;
	if (val > (U64_MAX >> shift))
		return -EINVAL;
	*out = val << shift;
	return 0;
}

static int shmq_param_set_size(const char *val, const struct kernel_param *kp)
{
	u64 size;
	int ret;

	ret = shmq_parse_size(val, &size);
	if (ret)
		return ret;
	WRITE_ONCE(*(u64 *)kp->arg, size);
	return 0;
}

static int shmq_param_get_size(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%llu\n", READ_ONCE(*(u64 *)kp->arg));
}

static const struct kernel_param_ops shmq_size_param_ops = {
	.set = shmq_param_set_size,
	.get = shmq_param_get_size,
};

module_param_named(queues, shmq_queues_param, charp, 0444);
MODULE_PARM_DESC(queues,
		 "Queues to create at load time: NAME:SIZE[,NAME:SIZE...], SIZE a power of two >= 4096 (and >= the page size) with optional K/M/G suffix (e.g. orders:1M,log:64K)");
module_param_cb(max_queue_size, &shmq_size_param_ops, &shmq_max_queue_size, 0644);
MODULE_PARM_DESC(max_queue_size,
		 "Largest capacity of one queue in bytes, K/M/G suffix allowed (default 256M)");
module_param_cb(max_total_memory, &shmq_size_param_ops, &shmq_max_total_memory, 0644);
MODULE_PARM_DESC(max_total_memory,
		 "Limit on the ring memory of all queues in bytes, including 3 control pages per queue and destroyed queues still open, K/M/G suffix allowed (default 1G)");
module_param_named(max_queues, shmq_max_queues, uint, 0644);
MODULE_PARM_DESC(max_queues, "Largest number of queues that exist at once (default 256)");

/* ------------------------------------------------------------------------
 * Ring state, as seen by the kernel.
 */

static inline struct shmq_queue *shmq_dev_to_queue(struct device *dev)
{
	return container_of(dev, struct shmq_queue, dev);
}

/**
 * shmq_read_counters() - read tail and head as one pair
 * @q: the queue
 * @c: the result
 *
 * Reading the two counters one after the other does not give a state that
 * ever existed: honest peers move both meanwhile, and the pair can look
 * negative or above the capacity. So read head, tail, head again, and take
 * the pair when head did not move: head was the same before and after tail
 * was read, so (tail, head) existed at the moment tail was read, and for
 * honest peers 0 <= tail - head <= capacity holds for it. A head that keeps
 * moving (a consumer releasing fast, or a hostile one) gives up after
 * SHMQ_COUNTER_TRIES rounds with @c->stable false and @c->head the newest
 * head seen; the callers then judge in the waiter's favour (a spurious
 * wake is harmless, a missed one is not) and never call it corruption.
 */
static void shmq_read_counters(const struct shmq_queue *q, struct shmq_counters *c)
{
	u64 head = READ_ONCE(*q->head);
	u64 tail = 0, again;
	unsigned int i;

	c->stable = false;
	for (i = 0; i < SHMQ_COUNTER_TRIES; i++) {
		/*
		 * Full barrier, not just a read barrier: the head we read may
		 * have been stored by another CPU than the one that stored
		 * the tail, and the producer's check (store tail; fence; read
		 * head) must see that head when we see an old tail (the
		 * read-write-causality pattern; rmb suffices on x86 and arm64
		 * only because they are multi-copy atomic).
		 */
		smp_mb();
		tail = READ_ONCE(*q->tail);
		smp_rmb(); /* tail before head again */
		again = READ_ONCE(*q->head);
		if (again == head) {
			c->stable = true;
			break;
		}
		head = again;
	}
	c->tail = tail;
	c->head = head;
}

static bool shmq_counters_corrupt(const struct shmq_queue *q, const struct shmq_counters *c)
{
	return c->stable && c->tail - c->head > q->capacity;
}

static bool shmq_readable(const struct shmq_counters *c)
{
	/* tail != head; an impossible or unstable pair counts as readable. */
	return !c->stable || c->tail != c->head;
}

static bool shmq_writable(const struct shmq_queue *q, const struct shmq_counters *c, u64 need)
{
	u64 used = c->tail - c->head;

	/*
	 * Unstable: c->head was read after c->tail, so the real backlog at
	 * that moment was at least tail - head would say; head overtaking
	 * the tail we read means the ring drained meanwhile.
	 */
	if (!c->stable && (s64)used <= 0)
		return true;
	/* An impossible pair is never writable. */
	return used <= q->capacity && q->capacity - used >= need;
}

static struct shmq_sleeper *shmq_first_sleeper_locked(struct shmq_queue *q)
{
	struct rb_node *n = rb_first_cached(&q->write_sleepers);

	lockdep_assert_held(&q->lock);
	return n ? rb_entry(n, struct shmq_sleeper, node) : NULL;
}

static bool shmq_sleeper_less(struct rb_node *a, const struct rb_node *b)
{
	return rb_entry(a, struct shmq_sleeper, node)->need <
	       rb_entry(b, struct shmq_sleeper, node)->need;
}

/**
 * shmq_publish_waiters_locked() - refresh one side's waiter words
 * @q: the queue, with @q->lock held
 * @side: SHMQ_PROD (write_wake, write_need) or SHMQ_CONS (read_wake)
 *
 * The wake word tells the other side's library what to check after it
 * moved its counter (uapi.h, SHMQ_WAKE_*): SLEEPER while a task of @side
 * sleeps in SHMQ_IOC_WAIT, POLLED while a poller is registered, POLL_ARMED
 * when besides the last poll found the condition false. write_need is the
 * smallest need of the producer's sleepers (the leftmost of an rbtree, so
 * publishing is O(1)): a release that crosses it wakes every sleeper, those
 * still short of room sleep again, and when the smallest one leaves the
 * next smallest is published and checked by shmq_recheck_writers(). The
 * consumer reads write_wake before write_need, so write_need is stored
 * before a SLEEPER bit that makes it valid.
 *
 * A poller adds itself to pollq in poll_wait() before ->poll takes q->lock
 * to publish, so any publish serialized after that one under q->lock sees
 * the entry; a publish that ran earlier and saw none is overwritten by the
 * poller's own. A poller that went away (poll(2) returned, epoll entry
 * removed) is noticed at the next publish of its side.
 *
 * Return: true when write_need changed to another non-zero value: the
 * caller must call shmq_recheck_writers() once it has dropped the lock.
 */
static bool shmq_publish_waiters_locked(struct shmq_queue *q, unsigned int side)
{
	struct shmq_status_page *st = q->status;
	struct shmq_sleeper *first;
	bool polled, changed;
	u32 bits = 0;
	u64 need;

	lockdep_assert_held(&q->lock);

	/* Lockless emptiness check: see the poll_wait() ordering above. */
	polled = waitqueue_active(&q->pollq[side]);
	if (!polled)
		q->poll_armers[side] = 0;
	if (q->nr_sleepers[side])
		bits |= SHMQ_WAKE_SLEEPER;
	if (polled)
		bits |= SHMQ_WAKE_POLLED;
	if (q->poll_armers[side])
		bits |= SHMQ_WAKE_POLL_ARMED;

	if (side == SHMQ_CONS) {
		WRITE_ONCE(st->read_wake, bits);
		return false;
	}

	first = shmq_first_sleeper_locked(q);
	need = first ? first->need : 0;
	changed = need != q->write_need;
	q->write_need = need;
	if (need) {
		WRITE_ONCE(st->write_need, need);
		smp_wmb(); /* write_need before a SLEEPER bit that validates it */
		WRITE_ONCE(st->write_wake, bits);
	} else {
		WRITE_ONCE(st->write_wake, bits);
		smp_wmb(); /* the SLEEPER bit gone before write_need */
		WRITE_ONCE(st->write_need, 0);
	}
	return changed && need;
}

/**
 * shmq_wake_side() - wake every sleeper and poller of one side
 * @q: the queue, lock not held
 * @side: SHMQ_PROD or SHMQ_CONS
 * @key: the poll events to report
 *
 * Every poller of @side is woken and will poll again, re-arming if its
 * condition is still false: so its arms are dropped first, under the lock
 * and before the wake-up (never after: a poller woken by us might re-arm
 * and go back to sleep before a later clear, which would then hide it).
 * Also refreshes @side's wake word, dropping marks of pollers gone away.
 */
static void shmq_wake_side(struct shmq_queue *q, unsigned int side, __poll_t key)
{
	spin_lock(&q->lock);
	q->poll_armers[side] = 0;
	q->poll_gen[side]++;
	/* write_need is the sleepers': unchanged here, no recheck needed. */
	shmq_publish_waiters_locked(q, side);
	spin_unlock(&q->lock);
	wake_up_all(&q->wq[side]);
	wake_up_poll(&q->pollq[side], key);
}

/**
 * shmq_recheck_writers() - wake producers whose published need changed
 * @q: the queue, lock not held
 *
 * A consumer that judged its release against the old write_need may have
 * crossed the new one without calling SHMQ_IOC_WAKE. Store-buffering pair
 * with its fence: we stored write_need (under the lock), then this full
 * barrier, then read head; it stores head, fences, then reads write_need.
 * Either we see its head here, or it sees the new write_need.
 */
static void shmq_recheck_writers(struct shmq_queue *q)
{
	struct shmq_counters c;
	u64 need;

	smp_mb();
	spin_lock(&q->lock);
	need = q->write_need;
	spin_unlock(&q->lock);
	if (!need)
		return;
	shmq_read_counters(q, &c);
	if (shmq_writable(q, &c, need))
		shmq_wake_side(q, SHMQ_PROD, EPOLLOUT | EPOLLWRNORM);
}

static void shmq_publish_state_locked(struct shmq_queue *q)
{
	u32 state = 0;

	lockdep_assert_held(&q->lock);

	if (q->attached[SHMQ_PROD])
		state |= SHMQ_STATE_PRODUCER;
	if (q->attached[SHMQ_CONS])
		state |= SHMQ_STATE_CONSUMER;
	if (q->destroyed)
		state |= SHMQ_STATE_DESTROYED;
	WRITE_ONCE(q->status->state, state);
}

/**
 * shmq_peer_gone_locked() - has the other side's peer gone?
 * @peer: the peer asking, whose queue's lock is held
 *
 * Pipe semantics: nobody of the other role is attached now and at least one
 * detached since @peer attached.
 *
 * Return: true if the other side hung up.
 */
static bool shmq_peer_gone_locked(const struct shmq_peer *peer)
{
	const struct shmq_queue *q = peer->queue;
	unsigned int other = peer->side ^ 1;

	lockdep_assert_held(&q->lock);

	return !q->attached[other] && q->departures[other] != peer->seen_departures;
}

/**
 * shmq_opener_nr_locked() - the pid number of the process that attached
 * @q: the queue, lock held
 * @side: SHMQ_PROD or SHMQ_CONS
 * @ns: the pid namespace to show it in
 *
 * The attachment may outlive its opener (a child inherited the file and
 * the mappings): then the opener's number is shown no longer, because the
 * system may already have handed it to an unrelated process.
 *
 * Return: the number in @ns, or 0 when nobody is attached, the opener has
 * exited or is not visible in @ns.
 */
static pid_t shmq_opener_nr_locked(struct shmq_queue *q, unsigned int side,
				   struct pid_namespace *ns)
{
	struct pid *pid = q->pid[side];
	pid_t nr = 0;

	lockdep_assert_held(&q->lock);
	if (!pid)
		return 0;
	rcu_read_lock();
	if (pid_has_task(pid, PIDTYPE_TGID))
		nr = pid_nr_ns(pid, ns);
	rcu_read_unlock();
	return nr;
}

/**
 * shmq_check_counters() - report counters that user space corrupted
 * @q: the queue
 * @c: the counters as just read
 *
 * Called where the kernel evaluates a condition for a waiter or poller. A
 * stable, impossible pair (tail - head > capacity) cannot come from the
 * protocol: one of the peers wrote garbage into its counter. The kernel
 * copes (see shmq_readable()); the log says which queue and who was
 * attached, once per queue, rate-limited.
 */
static void shmq_check_counters(struct shmq_queue *q, const struct shmq_counters *c)
{
	pid_t pid[2];

	if (likely(!shmq_counters_corrupt(q, c)) ||
	    test_and_set_bit(SHMQ_QF_CORRUPT_LOGGED, &q->stats.flags))
		return;
	spin_lock(&q->lock);
	pid[SHMQ_PROD] = shmq_opener_nr_locked(q, SHMQ_PROD, &init_pid_ns);
	pid[SHMQ_CONS] = shmq_opener_nr_locked(q, SHMQ_CONS, &init_pid_ns);
	spin_unlock(&q->lock);
	dev_warn_ratelimited(&q->dev,
			     "corrupt ring counters: tail %llu - head %llu exceeds capacity %llu (producer pid %d, consumer pid %d; seen by %s[%d])\n",
			     c->tail, c->head, q->capacity, pid[SHMQ_PROD], pid[SHMQ_CONS],
			     current->comm, task_tgid_nr(current));
}

/* ------------------------------------------------------------------------
 * Queue lifetime.
 */

/**
 * shmq_queue_release() - free a queue after its last reference
 * @dev: the queue's device
 *
 * Runs when the namespace, every queue file and every ring file (and so
 * every mapping) have let go of the queue, or when a creation failed after
 * shmq_queue_new(). The last statement lets module exit proceed.
 */
static void shmq_queue_release(struct device *dev)
{
	struct shmq_queue *q = shmq_dev_to_queue(dev);
	unsigned long i;

	for (i = 0; i < q->nr_pages; i++)
		if (q->pages[i])
			__free_page(q->pages[i]);
	kvfree(q->pages);
	if (q->minor >= 0)
		ida_free(&shmq_minor_ida, q->minor);
	atomic64_sub(q->accounted, &shmq_total_memory);
	kfree(q);
	if (atomic_dec_and_test(&shmq_queues_alive))
		complete(&shmq_all_released);
}

static struct shmq_queue *shmq_find_locked(const char *name)
{
	struct shmq_queue *q;

	lockdep_assert_held(&shmq_ns_lock);

	list_for_each_entry(q, &shmq_queues, node)
		if (!strcmp(q->name, name))
			return q;
	return NULL;
}

/**
 * shmq_check_name() - validate a queue name
 * @name: SHMQ_NAME_MAX bytes that should hold a NUL-terminated name
 *
 * A leading '-' is refused because tools would read /dev/shmq/-rf as an
 * option; a leading '.' because the node would be hidden.
 *
 * Return: 0 for 1..SHMQ_NAME_MAX-1 characters of [A-Za-z0-9_.-] not
 * starting with '.' or '-', -ENAMETOOLONG without a NUL, -EINVAL otherwise.
 */
static int shmq_check_name(const char *name)
{
	size_t len = strnlen(name, SHMQ_NAME_MAX);
	size_t i;

	if (len == SHMQ_NAME_MAX)
		return -ENAMETOOLONG;
	if (!len || name[0] == '.' || name[0] == '-')
		return -EINVAL;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')
			continue;
		return -EINVAL;
	}
	return 0;
}

/**
 * shmq_check_capacity() - validate a queue capacity against the limits
 * @capacity: requested data bytes
 *
 * Return: 0 if usable, -EINVAL if not a power of two or below SHMQ_MIN_CAP
 * (so the data region is whole pages on any page size), -EFBIG if above
 * max_queue_size.
 */
static int shmq_check_capacity(u64 capacity)
{
	if (capacity < SHMQ_MIN_CAP || (capacity & (capacity - 1)))
		return -EINVAL;
	if (capacity > READ_ONCE(shmq_max_queue_size))
		return -EFBIG;
	return 0;
}

/* Bytes of ring pages a queue of @capacity takes: the data and 3 control pages. */
static u64 shmq_queue_bytes(u64 capacity)
{
	return capacity + ((u64)SHMQ_PG_DATA << PAGE_SHIFT);
}

/**
 * shmq_log_limit() - say why a queue was not created, and for whom
 * @name: the queue name asked for
 * @limit: the module parameter that refused it
 * @want: what the creation would have needed (queues or bytes)
 * @max: the parameter's value
 *
 * The caller gets ENOSPC; the administrator learns which limit to raise.
 */
static void shmq_log_limit(const char *name, const char *limit, u64 want, u64 max)
{
	pr_warn_ratelimited("queue '%s' not created for %s[%d] (uid %u): %s=%llu reached (would need %llu)\n",
			    name, current->comm, task_tgid_nr(current),
			    from_kuid_munged(&init_user_ns, current_euid()), limit, max, want);
}

/**
 * shmq_check_room_locked() - may a queue called @name be added now?
 * @name: a valid name
 *
 * Caller holds shmq_ns_lock. Checked before the pages are allocated (so
 * that a call that will fail does not allocate first) and again before
 * the queue is inserted (another creator may have come in between).
 *
 * Return: 0, -EEXIST, or -ENOSPC (max_queues, logged).
 */
static int shmq_check_room_locked(const char *name)
{
	unsigned int max = READ_ONCE(shmq_max_queues);

	lockdep_assert_held(&shmq_ns_lock);

	if (shmq_find_locked(name))
		return -EEXIST;
	if (shmq_nr_queues >= max) {
		shmq_log_limit(name, "max_queues", shmq_nr_queues + 1ULL, max);
		return -ENOSPC;
	}
	return 0;
}

/**
 * shmq_reserve_memory() - account @bytes against max_total_memory
 * @name: the queue asked for (for the log)
 * @bytes: what it will allocate
 *
 * A compare-and-exchange against the limit, without any lock, so that the
 * allocation that follows need not hold shmq_ns_lock; shmq_queue_release()
 * returns the bytes.
 *
 * Return: 0, or -ENOSPC (logged).
 */
static int shmq_reserve_memory(const char *name, u64 bytes)
{
	u64 limit = READ_ONCE(shmq_max_total_memory);
	s64 old = atomic64_read(&shmq_total_memory);

	do {
		if (bytes > limit || (u64)old > limit - bytes) {
			shmq_log_limit(name, "max_total_memory", (u64)old + bytes, limit);
			return -ENOSPC;
		}
	} while (!atomic64_try_cmpxchg(&shmq_total_memory, &old, old + bytes));
	return 0;
}

static const struct file_operations shmq_queue_fops;

/**
 * shmq_queue_new() - allocate a queue's object, without pages or a name
 * @name: valid name (see shmq_check_name())
 * @capacity: valid capacity (see shmq_check_capacity())
 *
 * Initializes the device, so that put_device(&q->dev) undoes everything
 * from here on (shmq_queue_release()). Charged to the caller's memory
 * cgroup, as the pages will be.
 *
 * Return: the queue, or ERR_PTR(-ENOMEM).
 */
static struct shmq_queue *shmq_queue_new(const char *name, u64 capacity)
{
	struct shmq_queue *q;
	unsigned int i;
	int ret;

	q = kzalloc(sizeof(*q), GFP_KERNEL_ACCOUNT);
	if (!q)
		return ERR_PTR(-ENOMEM);
	strscpy(q->name, name, sizeof(q->name));
	INIT_LIST_HEAD(&q->node);
	q->capacity = capacity;
	q->minor = -1;
	q->stats.creator_uid = current_euid();
	q->stats.created_at = ktime_get_real_seconds();
	spin_lock_init(&q->lock);
	q->write_sleepers = RB_ROOT_CACHED;
	for (i = 0; i < 2; i++) {
		init_waitqueue_head(&q->wq[i]);
		init_waitqueue_head(&q->pollq[i]);
	}

	atomic_inc(&shmq_queues_alive);
	device_initialize(&q->dev);
	q->dev.class = shmq_class;
	q->dev.release = shmq_queue_release;
	ret = dev_set_name(&q->dev, "%s", name);
	if (ret) {
		put_device(&q->dev);
		return ERR_PTR(ret);
	}
	return q;
}

/**
 * shmq_queue_alloc_pages() - reserve and allocate a queue's ring pages
 * @q: from shmq_queue_new()
 *
 * Without any global lock held: a large queue takes long to allocate, and
 * a fatal signal stops it. The pages are zeroed and charged to the
 * caller's memory cgroup. What was reserved or allocated is returned by
 * shmq_queue_release().
 *
 * Return: 0, -ENOSPC (max_total_memory, logged), -ENOMEM, -EINTR.
 */
static int shmq_queue_alloc_pages(struct shmq_queue *q)
{
	unsigned long nr_pages = (q->capacity >> PAGE_SHIFT) + SHMQ_PG_DATA;
	u64 bytes = shmq_queue_bytes(q->capacity);
	unsigned long i;
	int ret;

	ret = shmq_reserve_memory(q->name, bytes);
	if (ret)
		return ret;
	q->accounted = bytes;

	/*
	 * Raised limits let a capacity through whose page array alone is
	 * beyond any allocation (kvmalloc WARNs above INT_MAX bytes): that is
	 * ENOMEM for the caller, not a kernel warning.
	 */
	q->pages = kvcalloc(nr_pages, sizeof(*q->pages), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!q->pages)
		return -ENOMEM;
	q->nr_pages = nr_pages;
	for (i = 0; i < nr_pages; i++) {
		if (fatal_signal_pending(current))
			return -EINTR;
		q->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!q->pages[i])
			return -ENOMEM;
		cond_resched();
	}
	q->status = page_address(q->pages[SHMQ_PG_STATUS]);
	q->tail = page_address(q->pages[SHMQ_PG_PRODUCER]) + SHMQ_TAIL_OFF;
	q->head = page_address(q->pages[SHMQ_PG_CONSUMER]) + SHMQ_HEAD_OFF;
	return 0;
}

/**
 * shmq_alloc_minor_locked() - the next free minor after the last one given
 *
 * Minors are handed out cyclically, so that the number of a destroyed
 * queue is reused as late as possible: a stale node (a static /dev, a
 * copied node, a bind mount made before the destroy) then reaches no
 * queue rather than the next one created. The cursor starts at a random
 * minor at load, so that a reload does not hand out the old numbers first.
 *
 * Return: the minor, or -ENOSPC when all SHMQ_MAX_MINORS are in use.
 */
static int shmq_alloc_minor_locked(void)
{
	int minor;

	lockdep_assert_held(&shmq_ns_lock);

	minor = ida_alloc_range(&shmq_minor_ida, shmq_next_minor, SHMQ_MAX_MINORS - 1,
				GFP_KERNEL);
	if (minor == -ENOSPC && shmq_next_minor)
		minor = ida_alloc_range(&shmq_minor_ida, 0, shmq_next_minor - 1, GFP_KERNEL);
	if (minor >= 0)
		shmq_next_minor = (minor + 1) % SHMQ_MAX_MINORS;
	return minor;
}

/**
 * shmq_queue_hold_name_locked() - enter a queue being created in the list
 * @q: from shmq_queue_new()
 *
 * Caller holds shmq_ns_lock and has checked shmq_check_room_locked(). The
 * entry holds the name and counts against max_queues while the pages are
 * allocated without the lock, so that a second creator of the same name
 * gets EEXIST at once (not ENOSPC from the memory the first reserved), and
 * creators racing for the last queue slot do not all allocate. It cannot
 * be opened (no node) nor destroyed (ENOENT) until registered.
 */
static void shmq_queue_hold_name_locked(struct shmq_queue *q)
{
	lockdep_assert_held(&shmq_ns_lock);

	q->registering = true;
	list_add_tail(&q->node, &shmq_queues);
	WRITE_ONCE(shmq_nr_queues, shmq_nr_queues + 1);
}

/* Undoes shmq_queue_hold_name_locked() for a creation that failed. */
static void shmq_queue_drop_name_locked(struct shmq_queue *q)
{
	lockdep_assert_held(&shmq_ns_lock);

	list_del_init(&q->node);
	WRITE_ONCE(shmq_nr_queues, shmq_nr_queues - 1);
}

/**
 * shmq_queue_register_locked() - give a queue that holds its name a node
 * @q: with its pages, entered by shmq_queue_hold_name_locked()
 *
 * Caller holds shmq_ns_lock. On success the namespace owns the caller's
 * reference; on failure the caller still holds it, drops the name with
 * shmq_queue_drop_name_locked() and the reference with put_device().
 *
 * Return: 0, -ENOSPC (no minor left), or an error of device registration.
 */
static int shmq_queue_register_locked(struct shmq_queue *q)
{
	int ret;

	lockdep_assert_held(&shmq_ns_lock);

	ret = shmq_alloc_minor_locked();
	if (ret < 0)
		return ret;
	q->minor = ret;
	q->dev.devt = MKDEV(MAJOR(shmq_devt), q->minor);

	cdev_init(&q->cdev, &shmq_queue_fops);
	q->cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&q->cdev, &q->dev);
	if (ret)
		return ret;
	q->registering = false;
	return 0;
}

/**
 * shmq_add_locked() - enter and register a queue that has its pages
 * @q: from shmq_queue_new() and shmq_queue_alloc_pages()
 *
 * For the load-time queues, whose pages were allocated before the lock.
 *
 * Return: 0, or an error of shmq_check_room_locked() or
 * shmq_queue_register_locked() (the caller then drops its reference).
 */
static int shmq_add_locked(struct shmq_queue *q)
{
	int ret;

	ret = shmq_check_room_locked(q->name);
	if (ret)
		return ret;
	shmq_queue_hold_name_locked(q);
	ret = shmq_queue_register_locked(q);
	if (ret)
		shmq_queue_drop_name_locked(q);
	return ret;
}

/**
 * shmq_create() - create a queue and its device node
 * @name: valid name (see shmq_check_name())
 * @capacity: valid capacity (see shmq_check_capacity())
 *
 * The name is held (and counted) under shmq_ns_lock, the pages are
 * allocated without it, and the node is registered under it again: so
 * creating a large queue blocks nobody else, and a fatal signal ends it.
 *
 * Return: 0 on success, -EEXIST, -ENOSPC (max_queues, max_total_memory or
 * no minor left), -ENOMEM, -EINTR, or an error from device registration.
 */
static int shmq_create(const char *name, u64 capacity)
{
	struct shmq_queue *q;
	int ret;

	q = shmq_queue_new(name, capacity);
	if (IS_ERR(q))
		return PTR_ERR(q);

	ret = mutex_lock_killable(&shmq_ns_lock);
	if (ret)
		goto err_put;
	ret = shmq_check_room_locked(name);
	if (!ret)
		shmq_queue_hold_name_locked(q);
	mutex_unlock(&shmq_ns_lock);
	if (ret)
		goto err_put;

	ret = shmq_queue_alloc_pages(q);

	/* Not killable: the name must be registered or dropped either way. */
	mutex_lock(&shmq_ns_lock);
	if (!ret)
		ret = shmq_queue_register_locked(q);
	if (ret)
		shmq_queue_drop_name_locked(q);
	mutex_unlock(&shmq_ns_lock);
	if (ret)
		goto err_put;
	return 0;

err_put:
	put_device(&q->dev);
	return ret;
}

/**
 * shmq_destroy_locked() - remove a queue from the namespace
 * @q: the queue, in the namespace; caller holds shmq_ns_lock
 *
 * The device node goes away at once; sleepers wake with EIDRM, pollers see
 * EPOLLERR|EPOLLHUP. Open files and mappings keep the memory until they
 * are gone. Drops the namespace's reference.
 */
static void shmq_destroy_locked(struct shmq_queue *q)
{
	lockdep_assert_held(&shmq_ns_lock);

	list_del(&q->node);
	WRITE_ONCE(shmq_nr_queues, shmq_nr_queues - 1);

	spin_lock(&q->lock);
	q->destroyed = true;
	shmq_publish_state_locked(q);
	spin_unlock(&q->lock);

	shmq_wake_side(q, SHMQ_PROD, EPOLLERR | EPOLLHUP);
	shmq_wake_side(q, SHMQ_CONS, EPOLLERR | EPOLLHUP);

	cdev_device_del(&q->cdev, &q->dev);
	put_device(&q->dev);
}

static void shmq_destroy_all(void)
{
	struct shmq_queue *q, *tmp;

	mutex_lock(&shmq_ns_lock);
	list_for_each_entry_safe(q, tmp, &shmq_queues, node)
		shmq_destroy_locked(q);
	mutex_unlock(&shmq_ns_lock);
}

/* ------------------------------------------------------------------------
 * Peers.
 */

/**
 * shmq_peer_put() - drop a reference to a peer, detaching it at the last
 * @peer: the peer
 *
 * The caller still holds its device reference, so the queue is valid. No
 * SHMQ_IOC_WAIT of this peer can be in progress (it holds the file).
 */
static void shmq_peer_put(struct shmq_peer *peer)
{
	struct shmq_queue *q = peer->queue;
	unsigned int side = peer->side;
	struct pid *pid;

	if (!refcount_dec_and_test(&peer->ref))
		return;

	spin_lock(&q->lock);
	q->attached[side] = false;
	q->departures[side]++;
	pid = q->pid[side];
	q->pid[side] = NULL;
	shmq_publish_state_locked(q);
	/* No file of this side is left: drop stale poller marks. */
	shmq_publish_waiters_locked(q, side);
	spin_unlock(&q->lock);

	put_pid(pid);
	shmq_wake_side(q, side ^ 1, EPOLLHUP);
	kfree(peer);
}

/* ------------------------------------------------------------------------
 * Ring file: mmap of the queue's regions with the protections of a role.
 */

static vm_fault_t shmq_vm_fault(struct vm_fault *vmf)
{
	struct shmq_peer *peer = vmf->vma->vm_file->private_data;
	struct shmq_queue *q = peer->queue;
	struct page *page;

	/*
	 * All pages are inserted at mmap time; this only refills what
	 * user space zapped itself (e.g. MADV_DONTNEED). The vma cannot grow
	 * past the region it was checked against (VM_DONTEXPAND).
	 */
	if (vmf->pgoff >= q->nr_pages)
		return VM_FAULT_SIGBUS;
	page = q->pages[vmf->pgoff];
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct shmq_vm_ops = {
	.fault = shmq_vm_fault,
};

/**
 * shmq_ring_mmap() - map one region of the ring
 * @file: the ring file
 * @vma: the new mapping
 *
 * The mapping must start at a region's offset and end within it, be shared,
 * not executable, and writable only where the caller's role writes.
 * Read-only mappings lose VM_MAYWRITE so that mprotect() cannot upgrade them.
 *
 * Return: 0, -EINVAL (bad offset or length, not MAP_SHARED), -EPERM
 * (PROT_EXEC), -EACCES (PROT_WRITE not allowed for the role) or an error
 * from inserting the pages.
 */
static int shmq_ring_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct shmq_peer *peer = file->private_data;
	struct shmq_queue *q = peer->queue;
	unsigned long first = vma->vm_pgoff;
	unsigned long count = vma_pages(vma);
	unsigned long size, num;
	u32 writer;
	int ret;

	switch (first) {
	case SHMQ_PG_STATUS:
		size = 1;
		writer = 0;
		break;
	case SHMQ_PG_PRODUCER:
		size = 1;
		writer = SHMQ_ROLE_PRODUCER;
		break;
	case SHMQ_PG_CONSUMER:
		size = 1;
		writer = SHMQ_ROLE_CONSUMER;
		break;
	case SHMQ_PG_DATA:
		size = q->nr_pages - SHMQ_PG_DATA;
		writer = SHMQ_ROLE_PRODUCER;
		break;
	default:
		return -EINVAL;
	}
	if (!count || count > size)
		return -EINVAL;
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (peer->role != writer) {
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		shmq_vm_flags_clear(vma, VM_MAYWRITE);
	}
	shmq_vm_flags_clear(vma, VM_MAYEXEC);
	shmq_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &shmq_vm_ops;

	num = count;
	ret = vm_insert_pages(vma, vma->vm_start, q->pages + first, &num);
	if (!ret && num)
		ret = -EFAULT;
	return ret;
}

/**
 * shmq_file_flush() - every close of a queue or ring file descriptor
 * @file: the file
 * @id: unused
 *
 * A process that stored its counter and died (or closed) before its
 * SHMQ_IOC_WAKE leaves the other side asleep with its condition true. If
 * it was the last holder, detaching wakes the other side; but a forked
 * child may hold the same file and keep the attachment. So each close
 * wakes the other side when somebody there waits: a spurious wake at worst.
 *
 * Return: 0.
 */
static int shmq_file_flush(struct file *file, fl_owner_t id)
{
	struct shmq_peer *peer = file->private_data;
	struct shmq_queue *q = peer->queue;
	unsigned int other = peer->side ^ 1;
	bool waiting;

	spin_lock(&q->lock);
	waiting = q->nr_sleepers[other] || waitqueue_active(&q->pollq[other]);
	spin_unlock(&q->lock);
	if (waiting)
		shmq_wake_side(q, other, other == SHMQ_CONS ?
			       EPOLLIN | EPOLLRDNORM : EPOLLOUT | EPOLLWRNORM);
	return 0;
}

static int shmq_ring_release(struct inode *inode, struct file *file)
{
	struct shmq_peer *peer = file->private_data;
	struct shmq_queue *q = peer->queue;

	shmq_peer_put(peer);
	put_device(&q->dev);
	return 0;
}

static __poll_t shmq_queue_poll(struct file *file, poll_table *wait);

static const struct file_operations shmq_ring_fops = {
	.owner		= THIS_MODULE,
	.mmap		= shmq_ring_mmap,
	.poll		= shmq_queue_poll,
	.flush		= shmq_file_flush,
	.release	= shmq_ring_release,
};

/* ------------------------------------------------------------------------
 * Queue file: open, ioctls, poll.
 */

/**
 * shmq_queue_open() - attach a producer (O_WRONLY) or consumer (O_RDONLY)
 * @inode: the /dev/shmq/NAME inode
 * @file: the new queue file
 *
 * Return: 0, -EINVAL for O_RDWR, -EBUSY if the role is taken, -ENODEV if
 * the queue was destroyed, -ENOMEM.
 */
static int shmq_queue_open(struct inode *inode, struct file *file)
{
	struct shmq_queue *q = container_of(inode->i_cdev, struct shmq_queue, cdev);
	struct shmq_peer *peer;
	unsigned int side;
	u32 role;
	int ret = 0;

	switch (file->f_flags & O_ACCMODE) {
	case O_WRONLY:
		role = SHMQ_ROLE_PRODUCER;
		break;
	case O_RDONLY:
		role = SHMQ_ROLE_CONSUMER;
		break;
	default:
		return -EINVAL;
	}
	side = role - 1;

	peer = kzalloc(sizeof(*peer), GFP_KERNEL);
	if (!peer)
		return -ENOMEM;
	refcount_set(&peer->ref, 1);
	peer->queue = q;
	peer->role = role;
	peer->side = side;

	get_device(&q->dev);
	spin_lock(&q->lock);
	if (q->destroyed) {
		ret = -ENODEV;
	} else if (q->attached[side]) {
		ret = -EBUSY;
	} else {
		q->attached[side] = true;
		q->pid[side] = get_pid(task_tgid(current));
		peer->seen_departures = q->departures[side ^ 1];
		shmq_publish_state_locked(q);
	}
	spin_unlock(&q->lock);
	if (ret)
		goto err_attach;

	file->private_data = peer;
	return nonseekable_open(inode, file);

err_attach:
	put_device(&q->dev);
	kfree(peer);
	return ret;
}

static int shmq_queue_file_release(struct inode *inode, struct file *file)
{
	struct shmq_peer *peer = file->private_data;
	struct shmq_queue *q = peer->queue;

	shmq_peer_put(peer);
	put_device(&q->dev);
	return 0;
}

/**
 * shmq_ioc_layout() - SHMQ_IOC_LAYOUT: describe the shared memory
 * @peer: the caller's peer
 * @argp: struct shmq_layout in user memory, written in full
 *
 * Return: 0 or -EFAULT.
 */
static int shmq_ioc_layout(const struct shmq_peer *peer, void __user *argp)
{
	const struct shmq_queue *q = peer->queue;
	struct shmq_layout l;

	memset(&l, 0, sizeof(l));
	l.features = SHMQ_FEATURES_V2;
	l.queue_features = SHMQ_QUEUE_SPSC;
	l.capacity = q->capacity;
	/*
	 * A record is at most capacity/4 bytes, so that the largest one, plus
	 * a PAD record up to the ring end, needs less than capacity/2: EPOLLOUT
	 * at capacity/2 free then means any message fits, at any tail.
	 */
	l.max_message = q->capacity / 4 - sizeof(struct shmq_record);
	l.min_capacity = SHMQ_MIN_CAP;
	l.role = peer->role;
	l.page_size = PAGE_SIZE;
	l.record_header_size = sizeof(struct shmq_record);
	l.record_align = SHMQ_RECORD_ALIGN;
	l.status.offset = (u64)SHMQ_PG_STATUS << PAGE_SHIFT;
	l.status.size = PAGE_SIZE;
	l.producer.offset = (u64)SHMQ_PG_PRODUCER << PAGE_SHIFT;
	l.producer.size = PAGE_SIZE;
	l.consumer.offset = (u64)SHMQ_PG_CONSUMER << PAGE_SHIFT;
	l.consumer.size = PAGE_SIZE;
	l.data.offset = (u64)SHMQ_PG_DATA << PAGE_SHIFT;
	l.data.size = q->capacity;
	l.tail_off = SHMQ_TAIL_OFF;
	l.write_armed_off = SHMQ_WRITE_ARMED_OFF;
	l.head_off = SHMQ_HEAD_OFF;
	l.read_armed_off = SHMQ_READ_ARMED_OFF;
	l.state_off = offsetof(struct shmq_status_page, state);
	l.read_wake_off = offsetof(struct shmq_status_page, read_wake);
	l.write_wake_off = offsetof(struct shmq_status_page, write_wake);
	l.write_need_off = offsetof(struct shmq_status_page, write_need);

	if (copy_to_user(argp, &l, sizeof(l)))
		return -EFAULT;
	return 0;
}

/**
 * shmq_ioc_ring_fd() - create a ring file for mmap
 * @peer: the caller's peer
 * @arg: fd flags, 0 or O_CLOEXEC
 *
 * Return: the new fd, or -EINVAL for other flags, or a negative errno.
 */
static long shmq_ioc_ring_fd(struct shmq_peer *peer, unsigned long arg)
{
	struct shmq_queue *q = peer->queue;
	struct file *file;
	int fd, ret;

	if (arg & ~(unsigned long)O_CLOEXEC)
		return -EINVAL;

	fd = get_unused_fd_flags(arg);
	if (fd < 0)
		return fd;

	refcount_inc(&peer->ref);
	get_device(&q->dev);
	file = anon_inode_getfile("[shmq]", &shmq_ring_fops, peer, O_RDWR);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_getfile;
	}
	fd_install(fd, file);
	return fd;

err_getfile:
	put_device(&q->dev);
	shmq_peer_put(peer);	/* not the last: the queue file holds one */
	put_unused_fd(fd);
	return ret;
}

/**
 * shmq_deadline_to_host() - a SHMQ_IOC_WAIT deadline on the host's clock
 * @timeout_ns: absolute CLOCK_MONOTONIC nanoseconds as the caller reads
 *	that clock, below KTIME_MAX
 *
 * A task in a time namespace reads CLOCK_MONOTONIC shifted by its
 * namespace's offset; hrtimers run on the host's clock. Convert as futex,
 * clock_nanosleep and timerfd do (timens_ktime_to_host(), whose helper is
 * not exported to modules): subtract the offset, clamped to [0, KTIME_MAX).
 *
 * Return: the deadline on the host's CLOCK_MONOTONIC.
 */
static ktime_t shmq_deadline_to_host(u64 timeout_ns)
{
	ktime_t t = (ktime_t)timeout_ns;
#ifdef CONFIG_TIME_NS
	ktime_t off = timespec64_to_ktime(current->nsproxy->time_ns->offsets.monotonic);

	if (off > 0)
		t = t > off ? t - off : 0;
	else if (off < 0)
		t = t < KTIME_MAX + off ? t - off : KTIME_MAX - 1;
#endif
	return t;
}

/**
 * shmq_wait_check() - evaluate a wait once
 * @peer: the waiting peer
 * @args: validated wait arguments
 *
 * The state is read under the lock before the counters, so that a peer
 * which published and then detached is seen with its last counter: a
 * consumer drains before it gets EPIPE.
 *
 * Return: 0 if the condition holds, -EIDRM if the queue was destroyed,
 * -EPIPE if the peer has gone (unless SHMQ_WAIT_IGNORE_HUP), -EAGAIN to
 * keep waiting.
 */
static int shmq_wait_check(struct shmq_peer *peer, const struct shmq_wait_args *args)
{
	struct shmq_queue *q = peer->queue;
	struct shmq_counters c;
	bool destroyed, gone, ok;

	spin_lock(&q->lock);
	destroyed = q->destroyed;
	gone = shmq_peer_gone_locked(peer);
	spin_unlock(&q->lock);

	shmq_read_counters(q, &c);
	shmq_check_counters(q, &c);
	if (args->cond == SHMQ_WAIT_READABLE)
		ok = shmq_readable(&c);
	else
		ok = shmq_writable(q, &c, args->min_bytes);
	if (ok)
		return 0;
	if (destroyed)
		return -EIDRM;
	if (gone && !(args->flags & SHMQ_WAIT_IGNORE_HUP))
		return -EPIPE;
	return -EAGAIN;
}

/* Consumes a pending SHMQ_IOC_INTERRUPT of @peer; true if there was one. */
static bool shmq_take_interrupt(struct shmq_peer *peer)
{
	struct shmq_queue *q = peer->queue;
	bool interrupted;

	spin_lock(&q->lock);
	interrupted = peer->interrupted;
	peer->interrupted = false;
	spin_unlock(&q->lock);
	return interrupted;
}

/**
 * shmq_wait_validate() - check SHMQ_IOC_WAIT arguments against the role
 * @peer: the caller's peer
 * @args: the arguments as copied from user space
 *
 * Return: 0, or -EINVAL for non-zero reserved fields, unknown flags, a
 * condition of the other role, READABLE with min_bytes, WRITABLE with
 * min_bytes 0 or above the capacity.
 */
static int shmq_wait_validate(const struct shmq_peer *peer, const struct shmq_wait_args *args)
{
	if (args->reserved[0] || args->reserved[1])
		return -EINVAL;
	if (args->flags & ~SHMQ_WAIT_FLAGS_ALL)
		return -EINVAL;
	switch (args->cond) {
	case SHMQ_WAIT_READABLE:
		if (peer->role != SHMQ_ROLE_CONSUMER || args->min_bytes)
			return -EINVAL;
		break;
	case SHMQ_WAIT_WRITABLE:
		if (peer->role != SHMQ_ROLE_PRODUCER || !args->min_bytes ||
		    args->min_bytes > peer->queue->capacity)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

/**
 * shmq_ioc_wait() - SHMQ_IOC_WAIT: sleep until the caller's condition holds
 * @peer: the caller's peer
 * @argp: struct shmq_wait_args in user memory
 *
 * See docs/design.md, "Waiting and waking". The sleeper registers itself
 * and publishes the waiter words, issues a full barrier, then evaluates the
 * condition from the shared counters; it sleeps until woken, signalled,
 * interrupted or past the absolute CLOCK_MONOTONIC deadline and evaluates
 * again. The sleep is freezable: suspend freezes the task where it sleeps
 * instead of waking it to restart the call.
 *
 * Return: 0 when the condition holds, -ECANCELED, -EIDRM, -EPIPE,
 * -ETIMEDOUT, -ERESTARTSYS on a signal (the deadline is absolute, so
 * restarting is safe), -EINVAL for bad arguments, -EFAULT.
 */
static int shmq_ioc_wait(struct shmq_peer *peer, void __user *argp)
{
	struct shmq_queue *q = peer->queue;
	unsigned int side = peer->side;
	struct shmq_wait_args args;
	struct shmq_sleeper me;
	ktime_t deadline = 0, *deadline_p = NULL;
	bool checked = false, slept = false;
	bool recheck;
	DEFINE_WAIT(wait);
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	ret = shmq_wait_validate(peer, &args);
	if (ret)
		return ret;
	if (args.timeout_ns < (u64)KTIME_MAX) {
		deadline = shmq_deadline_to_host(args.timeout_ns);
		deadline_p = &deadline;
	}

	me.need = args.min_bytes;
	spin_lock(&q->lock);
	q->nr_sleepers[side]++;
	if (side == SHMQ_PROD)
		rb_add_cached(&me.node, &q->write_sleepers, shmq_sleeper_less);
	/* Registering can only lower write_need: our own check covers it. */
	shmq_publish_waiters_locked(q, side);
	spin_unlock(&q->lock);

	/*
	 * Store-buffering pair with the waker in libshmq: it stores its
	 * counter, then atomic_thread_fence(seq_cst), then reads our wake
	 * word. We stored the wake word above, then this full barrier, then
	 * read its counter in shmq_wait_check(). So either we see its counter
	 * or it sees our wake word and calls SHMQ_IOC_WAKE.
	 */
	smp_mb();

	for (;;) {
		/*
		 * Queue ourselves and set the task state before each check
		 * (set_current_state() is a full barrier): a wake_up() after
		 * the check finds us on the wait queue.
		 */
		prepare_to_wait(&q->wq[side], &wait, TASK_INTERRUPTIBLE | TASK_FREEZABLE);
		ret = shmq_wait_check(peer, &args);
		if (!checked) {
			checked = true;
			if (ret)
				atomic64_inc(args.cond == SHMQ_WAIT_READABLE ?
					     &q->stats.empty_events :
					     &q->stats.full_events);
		}
		if (ret != -EAGAIN)
			break;
		if (deadline_p && ktime_compare(ktime_get(), deadline) >= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		/*
		 * Taken only by a wait that would sleep: one whose condition
		 * holds returns 0, and a probe with a past deadline (how
		 * libshmq asks whether the peer hung up) leaves it pending.
		 */
		if (shmq_take_interrupt(peer)) {
			ret = -ECANCELED;
			break;
		}
		if (signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		if (!slept) {
			slept = true;
			atomic64_inc(&q->stats.waits);
		}
		schedule_hrtimeout_range_clock(deadline_p, current->timer_slack_ns,
					       HRTIMER_MODE_ABS, CLOCK_MONOTONIC);
	}
	finish_wait(&q->wq[side], &wait);

	spin_lock(&q->lock);
	q->nr_sleepers[side]--;
	if (side == SHMQ_PROD)
		rb_erase_cached(&me.node, &q->write_sleepers);
	recheck = shmq_publish_waiters_locked(q, side);
	spin_unlock(&q->lock);

	/* Leaving may raise write_need to the next sleeper's. */
	if (recheck)
		shmq_recheck_writers(q);
	return ret;
}

/**
 * shmq_ioc_wake() - SHMQ_IOC_WAKE: wake the other side
 * @peer: the caller's peer
 * @arg: must be 0
 *
 * Wakes the other side's sleepers and pollers and refreshes its waiter
 * words, dropping marks of pollers that have gone away.
 *
 * Return: 0, or -EINVAL for a non-zero @arg.
 */
static long shmq_ioc_wake(struct shmq_peer *peer, unsigned long arg)
{
	struct shmq_queue *q = peer->queue;
	unsigned int other = peer->side ^ 1;

	if (arg)
		return -EINVAL;

	atomic64_inc(&q->stats.wakes);
	shmq_wake_side(q, other, other == SHMQ_CONS ?
		       EPOLLIN | EPOLLRDNORM : EPOLLOUT | EPOLLWRNORM);
	return 0;
}

/**
 * shmq_ioc_interrupt() - SHMQ_IOC_INTERRUPT: cancel this peer's wait
 * @peer: the caller's peer
 * @arg: must be 0
 *
 * The SHMQ_IOC_WAIT sleeping on this attachment, or the next one that
 * would sleep, returns -ECANCELED. Meant for another thread of the process
 * that wants a blocked sender or receiver back.
 *
 * Return: 0, or -EINVAL for a non-zero @arg.
 */
static long shmq_ioc_interrupt(struct shmq_peer *peer, unsigned long arg)
{
	struct shmq_queue *q = peer->queue;

	if (arg)
		return -EINVAL;

	spin_lock(&q->lock);
	peer->interrupted = true;
	spin_unlock(&q->lock);
	wake_up_all(&q->wq[peer->side]);
	return 0;
}

static long shmq_queue_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct shmq_peer *peer = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case SHMQ_IOC_LAYOUT:
		return shmq_ioc_layout(peer, argp);
	case SHMQ_IOC_RING_FD:
		return shmq_ioc_ring_fd(peer, arg);
	case SHMQ_IOC_WAIT:
		return shmq_ioc_wait(peer, argp);
	case SHMQ_IOC_WAKE:
		return shmq_ioc_wake(peer, arg);
	case SHMQ_IOC_INTERRUPT:
		return shmq_ioc_interrupt(peer, arg);
	default:
		return -ENOTTY;
	}
}

/**
 * shmq_queue_poll() - poll/epoll on a queue file (and on its ring files)
 * @file: the queue or ring file
 * @wait: poll table
 *
 * A consumer is readable when tail != head; a producer is writable when at
 * least capacity/2 bytes are free, enough for any message (max_message is
 * capacity/4 - 8). The poller is armed (SHMQ_WAKE_POLL_ARMED) before the
 * counters are read and disarmed again when the condition holds: a poll
 * that reports nothing is followed by a sleep, one that reports readiness
 * by the caller's own reads and writes, after which its library arms its
 * own word when it finds the ring empty or full (docs/design.md).
 *
 * Return: the ready events.
 */
static __poll_t shmq_queue_poll(struct file *file, poll_table *wait)
{
	struct shmq_peer *peer = file->private_data;
	struct shmq_queue *q = peer->queue;
	unsigned int side = peer->side;
	struct shmq_counters c;
	bool destroyed, gone, ready;
	__poll_t mask = 0;
	u64 gen;

	poll_wait(file, &q->pollq[side], wait);

	spin_lock(&q->lock);
	q->poll_armers[side]++;
	gen = q->poll_gen[side];
	shmq_publish_waiters_locked(q, side);
	destroyed = q->destroyed;
	gone = shmq_peer_gone_locked(peer);
	spin_unlock(&q->lock);

	/*
	 * Store-buffering pair with the waker's fence between its counter
	 * store and its read of our wake word, as in shmq_ioc_wait().
	 */
	smp_mb();

	shmq_read_counters(q, &c);
	shmq_check_counters(q, &c);
	if (side == SHMQ_CONS) {
		ready = shmq_readable(&c);
		if (ready)
			mask |= EPOLLIN | EPOLLRDNORM;
	} else {
		ready = shmq_writable(q, &c, q->capacity / 2);
		if (ready)
			mask |= EPOLLOUT | EPOLLWRNORM;
	}
	if (ready) {
		/*
		 * Undo our own arm, unless the pollers were woken (and the
		 * arms dropped) meanwhile. Another poller's arm stays: it may
		 * be asleep with its condition false when it looked.
		 */
		spin_lock(&q->lock);
		if (q->poll_gen[side] == gen && q->poll_armers[side]) {
			q->poll_armers[side]--;
			shmq_publish_waiters_locked(q, side);
		}
		spin_unlock(&q->lock);
	}
	if (destroyed)
		mask |= EPOLLERR | EPOLLHUP;
	else if (gone)
		mask |= EPOLLHUP;
	return mask;
}

static const struct file_operations shmq_queue_fops = {
	.owner		= THIS_MODULE,
	.open		= shmq_queue_open,
	.flush		= shmq_file_flush,
	.release	= shmq_queue_file_release,
	.unlocked_ioctl	= shmq_queue_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.poll		= shmq_queue_poll,
};

/* ------------------------------------------------------------------------
 * sysfs attributes of /sys/class/shmq/NAME.
 */

static ssize_t capacity_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", shmq_dev_to_queue(dev)->capacity);
}
static DEVICE_ATTR_RO(capacity);

static ssize_t bytes_used_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct shmq_queue *q = shmq_dev_to_queue(dev);
	struct shmq_counters c;
	u64 used;

	shmq_read_counters(q, &c);
	used = c.tail - c.head;
	/* Clamp what user space may have corrupted to [0, capacity]. */
	if ((s64)used < 0)
		used = 0;
	else if (used > q->capacity)
		used = q->capacity;
	return sysfs_emit(buf, "%llu\n", used);
}
static DEVICE_ATTR_RO(bytes_used);

static ssize_t shmq_show_attached(struct device *dev, char *buf, unsigned int side)
{
	struct shmq_queue *q = shmq_dev_to_queue(dev);
	bool attached;

	spin_lock(&q->lock);
	attached = q->attached[side];
	spin_unlock(&q->lock);
	return sysfs_emit(buf, "%u\n", attached ? 1 : 0);
}

/*
 * The opener of that side while it lives, in the reader's pid namespace: a
 * sysfs file records no pid namespace at open, unlike a user namespace
 * (f_cred, see created_by_uid_read()).
 */
static ssize_t shmq_show_pid(struct device *dev, char *buf, unsigned int side)
{
	struct shmq_queue *q = shmq_dev_to_queue(dev);
	pid_t nr;

	spin_lock(&q->lock);
	nr = shmq_opener_nr_locked(q, side, task_active_pid_ns(current));
	spin_unlock(&q->lock);
	return sysfs_emit(buf, "%d\n", nr);
}

static ssize_t producers_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return shmq_show_attached(dev, buf, SHMQ_PROD);
}
static DEVICE_ATTR_RO(producers);

static ssize_t consumers_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return shmq_show_attached(dev, buf, SHMQ_CONS);
}
static DEVICE_ATTR_RO(consumers);

static ssize_t producer_pid_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return shmq_show_pid(dev, buf, SHMQ_PROD);
}
static DEVICE_ATTR_RO(producer_pid);

static ssize_t consumer_pid_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return shmq_show_pid(dev, buf, SHMQ_CONS);
}
static DEVICE_ATTR_RO(consumer_pid);

static ssize_t max_message_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  shmq_dev_to_queue(dev)->capacity / 4 - sizeof(struct shmq_record));
}
static DEVICE_ATTR_RO(max_message);

/*
 * The two shared counters as their writers left them: free-running byte
 * positions (record headers, payload, alignment and PAD records included).
 * User space writes them, so they are only as true as the peers; READ_ONCE
 * of an aligned u64 is one load on the 64-bit kernels we build for.
 */
static ssize_t bytes_published_show(struct device *dev, struct device_attribute *attr,
				    char *buf)
{
	return sysfs_emit(buf, "%llu\n", READ_ONCE(*shmq_dev_to_queue(dev)->tail));
}
static DEVICE_ATTR_RO(bytes_published);

static ssize_t bytes_passed_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", READ_ONCE(*shmq_dev_to_queue(dev)->head));
}
static DEVICE_ATTR_RO(bytes_passed);

#define SHMQ_STAT_ATTR(field)							\
static ssize_t field##_show(struct device *dev, struct device_attribute *attr,	\
			    char *buf)						\
{										\
	return sysfs_emit(buf, "%lld\n",					\
			  atomic64_read(&shmq_dev_to_queue(dev)->stats.field));	\
}										\
static DEVICE_ATTR_RO(field)

SHMQ_STAT_ATTR(waits);
SHMQ_STAT_ATTR(wakes);
SHMQ_STAT_ATTR(full_events);
SHMQ_STAT_ATTR(empty_events);

static ssize_t created_at_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n", (long long)shmq_dev_to_queue(dev)->stats.created_at);
}
static DEVICE_ATTR_RO(created_at);

/*
 * A binary attribute only to get the struct file: the uid is translated
 * into the user namespace of whoever opened the file (its f_cred), not of
 * whoever reads it, as the kernel's rule for reads goes (a file handed to
 * another process must not answer differently).
 */
static ssize_t created_by_uid_read(struct file *filp, struct kobject *kobj,
				   struct bin_attribute *attr, char *buf, loff_t off,
				   size_t count)
{
	struct shmq_queue *q = shmq_dev_to_queue(kobj_to_dev(kobj));
	char text[16];
	int len;

	len = scnprintf(text, sizeof(text), "%u\n",
			from_kuid_munged(filp->f_cred->user_ns, q->stats.creator_uid));
	return memory_read_from_buffer(buf, count, &off, text, len);
}
static BIN_ATTR_RO(created_by_uid, 0);

static struct attribute *shmq_attrs[] = {
	&dev_attr_capacity.attr,
	&dev_attr_bytes_used.attr,
	&dev_attr_producers.attr,
	&dev_attr_consumers.attr,
	&dev_attr_producer_pid.attr,
	&dev_attr_consumer_pid.attr,
	&dev_attr_max_message.attr,
	&dev_attr_bytes_published.attr,
	&dev_attr_bytes_passed.attr,
	&dev_attr_waits.attr,
	&dev_attr_wakes.attr,
	&dev_attr_full_events.attr,
	&dev_attr_empty_events.attr,
	&dev_attr_created_at.attr,
	NULL,
};

static struct bin_attribute *shmq_bin_attrs[] = {
	&bin_attr_created_by_uid,
	NULL,
};

static const struct attribute_group shmq_group = {
	.attrs		= shmq_attrs,
	.bin_attrs	= shmq_bin_attrs,
};

static const struct attribute_group *shmq_groups[] = {
	&shmq_group,
	NULL,
};

static char *shmq_devnode(SHMQ_CLASS_DEV_CONST struct device *dev, umode_t *mode)
{
	if (mode)
		*mode = 0600;
	return kasprintf(GFP_KERNEL, "shmq/%s", dev_name(dev));
}

/* ------------------------------------------------------------------------
 * Control device /dev/shmq-control.
 */

/**
 * shmq_ioc_create() - SHMQ_IOC_CREATE
 * @argp: struct shmq_create_args in user memory
 *
 * Return: 0, -EFAULT, -EINVAL, -ENAMETOOLONG, -EFBIG, or an error of
 * shmq_create() (-EEXIST, -ENOSPC, -ENOMEM, -EINTR).
 */
static int shmq_ioc_create(void __user *argp)
{
	struct shmq_create_args args;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.__pad || args.reserved[0] || args.reserved[1] ||
	    args.reserved[2] || args.reserved[3])
		return -EINVAL;
	ret = shmq_check_name(args.name);
	if (ret)
		return ret;
	ret = shmq_check_capacity(args.capacity);
	if (ret)
		return ret;
	return shmq_create(args.name, args.capacity);
}

/**
 * shmq_ioc_destroy() - SHMQ_IOC_DESTROY
 * @argp: struct shmq_destroy_args in user memory
 *
 * Return: 0, -EFAULT, -EINVAL, -ENAMETOOLONG, -ENOENT, -EINTR.
 */
static int shmq_ioc_destroy(void __user *argp)
{
	struct shmq_destroy_args args;
	struct shmq_queue *q;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.__pad || args.reserved[0] || args.reserved[1] ||
	    args.reserved[2])
		return -EINVAL;
	ret = shmq_check_name(args.name);
	if (ret)
		return ret;

	ret = mutex_lock_killable(&shmq_ns_lock);
	if (ret)
		return ret;
	q = shmq_find_locked(args.name);
	if (q && !q->registering)
		shmq_destroy_locked(q);
	else
		ret = -ENOENT;
	mutex_unlock(&shmq_ns_lock);
	return ret;
}

static long shmq_control_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case SHMQ_IOC_CREATE:
		if (!(file->f_mode & FMODE_WRITE))
			return -EBADF;
		return shmq_ioc_create(argp);
	case SHMQ_IOC_DESTROY:
		if (!(file->f_mode & FMODE_WRITE))
			return -EBADF;
		return shmq_ioc_destroy(argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations shmq_control_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= shmq_control_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice shmq_control = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "shmq-control",
	.fops	= &shmq_control_fops,
	.mode	= 0600,
};

/* ------------------------------------------------------------------------
 * Global usage, /sys/module/shmq/usage/ (the limits are the parameters).
 */

static ssize_t shmq_usage_queues_show(struct kobject *kobj, struct kobj_attribute *attr,
				      char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(shmq_nr_queues));
}

static ssize_t shmq_usage_memory_show(struct kobject *kobj, struct kobj_attribute *attr,
				      char *buf)
{
	return sysfs_emit(buf, "%lld\n", atomic64_read(&shmq_total_memory));
}

static struct kobj_attribute shmq_usage_queues = __ATTR(queues, 0444, shmq_usage_queues_show, NULL);
static struct kobj_attribute shmq_usage_memory =
	__ATTR(memory_bytes, 0444, shmq_usage_memory_show, NULL);

static struct attribute *shmq_usage_attrs[] = {
	&shmq_usage_queues.attr,
	&shmq_usage_memory.attr,
	NULL,
};

static const struct attribute_group shmq_usage_group = {
	.name	= "usage",
	.attrs	= shmq_usage_attrs,
};

/* ------------------------------------------------------------------------
 * Module load and unload.
 */

/**
 * struct shmq_param_queue - one entry of the queues= parameter
 * @name: queue name
 * @capacity: data bytes
 * @q: the allocated queue, until it is registered
 */
struct shmq_param_queue {
	char name[SHMQ_NAME_MAX];
	u64 capacity;
	struct shmq_queue *q;
};

/**
 * shmq_parse_param_entry() - check one NAME:SIZE entry of queues=
 * @entry: the entry, modified in place
 * @out: the parsed entry
 *
 * Return: 0, or -EINVAL (logged).
 */
static int shmq_parse_param_entry(char *entry, struct shmq_param_queue *out)
{
	char *sep = strchr(entry, ':');
	int ret;

	if (!*entry) {
		pr_err("queues=: empty entry in '%s'\n", shmq_queues_param);
		return -EINVAL;
	}
	if (!sep) {
		pr_err("queues=: '%s' is not NAME:SIZE\n", entry);
		return -EINVAL;
	}
	*sep = '\0';
	if (strlen(entry) >= SHMQ_NAME_MAX || shmq_check_name(entry)) {
		pr_err("queues=: bad queue name '%s'\n", entry);
		return -EINVAL;
	}
	if (shmq_parse_size(sep + 1, &out->capacity)) {
		pr_err("queues=: bad size '%s' for queue '%s'\n", sep + 1, entry);
		return -EINVAL;
	}
	ret = shmq_check_capacity(out->capacity);
	if (ret) {
		pr_err("queues=: size %llu of queue '%s' is %s\n", out->capacity, entry,
		       ret == -EFBIG ? "above max_queue_size" :
		       "not a power of two >= 4096 and >= the page size");
		return -EINVAL;
	}
	strscpy(out->name, entry, sizeof(out->name));
	return 0;
}

/**
 * shmq_parse_param_queues() - parse and check the whole queues= parameter
 * @out: kcalloc'd array of the entries (NULL when there are none)
 * @count: number of entries
 *
 * Everything the parameter can be refused for is checked here, before
 * anything is registered: each entry, duplicate names, max_queues (and the
 * number of minors) and max_total_memory for all of them together.
 *
 * Return: 0, -EINVAL (logged), -ENOMEM.
 */
static int shmq_parse_param_queues(struct shmq_param_queue **out, unsigned int *count)
{
	struct shmq_param_queue *pq = NULL;
	unsigned int n = 0, max, limit, j;
	char *spec, *rest, *entry;
	u64 bytes = 0;
	int ret = 0;

	*out = NULL;
	*count = 0;
	if (!shmq_queues_param || !*shmq_queues_param)
		return 0;

	spec = kstrdup(shmq_queues_param, GFP_KERNEL);
	if (!spec)
		return -ENOMEM;
	max = 1;
	for (rest = spec; *rest; rest++)
		max += *rest == ',';
	pq = kcalloc(max, sizeof(*pq), GFP_KERNEL);
	if (!pq) {
		ret = -ENOMEM;
		goto out;
	}

	limit = min_t(unsigned int, READ_ONCE(shmq_max_queues), SHMQ_MAX_MINORS);
	rest = spec;
	while ((entry = strsep(&rest, ","))) {
		/* Before the duplicate scan, which is quadratic. */
		if (n >= limit) {
			pr_err("queues=: more than %u queues (max_queues=%u, %u minors)\n", limit,
			       READ_ONCE(shmq_max_queues), SHMQ_MAX_MINORS);
			ret = -EINVAL;
			goto out;
		}
		ret = shmq_parse_param_entry(entry, &pq[n]);
		if (ret)
			goto out;
		for (j = 0; j < n; j++) {
			if (!strcmp(pq[j].name, pq[n].name)) {
				pr_err("queues=: queue '%s' listed twice\n", pq[n].name);
				ret = -EINVAL;
				goto out;
			}
		}
		if (check_add_overflow(bytes, shmq_queue_bytes(pq[n].capacity), &bytes))
			bytes = U64_MAX;
		n++;
	}
	if (bytes > READ_ONCE(shmq_max_total_memory)) {
		pr_err("queues=: the queues need %llu bytes, but max_total_memory=%llu\n",
		       bytes, READ_ONCE(shmq_max_total_memory));
		ret = -EINVAL;
		goto out;
	}
	*out = pq;
	*count = n;
	pq = NULL;
out:
	kfree(pq);
	kfree(spec);
	return ret;
}

/**
 * shmq_add_param_queues() - register the queues allocated for queues=
 * @pq: the entries, each with its allocated queue
 * @n: number of entries
 *
 * Runs after the first device node exists, when init must no longer fail:
 * a queue that cannot be registered (its name taken meanwhile through the
 * control device, a failing registration) is logged and left out.
 */
static void shmq_add_param_queues(struct shmq_param_queue *pq, unsigned int n)
{
	unsigned int i;
	int ret;

	mutex_lock(&shmq_ns_lock);
	for (i = 0; i < n; i++) {
		ret = shmq_add_locked(pq[i].q);
		if (ret) {
			pr_err("queues=: queue '%s' could not be registered (%d); the module stays loaded without it\n",
			       pq[i].name, ret);
			put_device(&pq[i].q->dev);
		}
		pq[i].q = NULL;
	}
	mutex_unlock(&shmq_ns_lock);
}

/*
 * Module exit and failed init: a release may still be pending
 * (CONFIG_DEBUG_KOBJECT_RELEASE runs them late), and each touches our ida
 * and counters. Wait for all of them; a reference leaked by a bug would
 * keep rmmod here, so say so every 10 s instead of hanging silently.
 */
static void shmq_wait_for_releases(void)
{
	if (atomic_dec_and_test(&shmq_queues_alive))
		return;
	while (!wait_for_completion_timeout(&shmq_all_released, 10 * HZ))
		pr_warn("waiting for %d queues to be released before unloading\n",
			atomic_read(&shmq_queues_alive));
}

static int __init shmq_init(void)
{
	struct shmq_param_queue *pq;
	unsigned int nr_pq, i;
	int ret;

	/* Every reason to refuse queues= first: nothing exists yet. */
	ret = shmq_parse_param_queues(&pq, &nr_pq);
	if (ret)
		return ret;

	ret = alloc_chrdev_region(&shmq_devt, 0, SHMQ_MAX_MINORS, "shmq");
	if (ret)
		goto err_region;
	shmq_next_minor = get_random_u32_below(SHMQ_MAX_MINORS);

	shmq_class = shmq_class_create("shmq");
	if (IS_ERR(shmq_class)) {
		ret = PTR_ERR(shmq_class);
		goto err_class;
	}
	shmq_class->devnode = shmq_devnode;
	shmq_class->dev_groups = shmq_groups;

	ret = sysfs_create_group(&THIS_MODULE->mkobj.kobj, &shmq_usage_group);
	if (ret)
		goto err_usage;

	/* The pages of the load-time queues: may fail, still nothing visible. */
	for (i = 0; i < nr_pq; i++) {
		pq[i].q = shmq_queue_new(pq[i].name, pq[i].capacity);
		if (IS_ERR(pq[i].q)) {
			ret = PTR_ERR(pq[i].q);
			pq[i].q = NULL;
		} else {
			ret = shmq_queue_alloc_pages(pq[i].q);
		}
		if (ret) {
			pr_err("queues=: cannot allocate queue '%s' (%d)\n", pq[i].name, ret);
			goto err_alloc;
		}
	}

	/*
	 * The first device node. Once it exists a file may be open, and an
	 * init that failed would free the module under that file: nothing
	 * after this point fails.
	 */
	ret = misc_register(&shmq_control);
	if (ret)
		goto err_alloc;
	shmq_add_param_queues(pq, nr_pq);
	kfree(pq);
	return 0;

err_alloc:
	for (i = 0; i < nr_pq; i++)
		if (pq[i].q)
			put_device(&pq[i].q->dev);
	shmq_wait_for_releases();
	sysfs_remove_group(&THIS_MODULE->mkobj.kobj, &shmq_usage_group);
err_usage:
	class_destroy(shmq_class);
err_class:
	unregister_chrdev_region(shmq_devt, SHMQ_MAX_MINORS);
err_region:
	kfree(pq);
	return ret;
}

static void __exit shmq_exit(void)
{
	misc_deregister(&shmq_control);
	sysfs_remove_group(&THIS_MODULE->mkobj.kobj, &shmq_usage_group);
	/* No file is open (module references): this drops every last reference. */
	shmq_destroy_all();
	shmq_wait_for_releases();
	class_destroy(shmq_class);
	unregister_chrdev_region(shmq_devt, SHMQ_MAX_MINORS);
	ida_destroy(&shmq_minor_ida);
}

module_init(shmq_init);
module_exit(shmq_exit);

MODULE_DESCRIPTION("shmq: kernel-assisted shared-memory message queues");
MODULE_LICENSE("GPL");
MODULE_VERSION(SHMQ_VERSION_STRING); /* the top-level VERSION file */
