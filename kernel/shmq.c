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
 *  - struct shmq_peer: one attachment (producer or consumer). Created by
 *    open() of /dev/shmq/NAME, referenced by that file and by each ring file
 *    made from it. The last shmq_peer_put() detaches it from the queue:
 *    state bit cleared, departure counter bumped, other side woken.
 *  - ring file: anon-inode file from SHMQ_IOC_RING_FD, only for mmap.
 *    Holds a peer reference and a device reference.
 *  - Module references: the queue cdev, the ring file and the control
 *    device all use file_operations with .owner = THIS_MODULE, so rmmod is
 *    refused while any of them is open or mapped. Module exit destroys every
 *    queue left in the namespace; nothing else can hold a reference then.
 *
 * Locking
 *
 *  - shmq_ns_lock (mutex): shmq_queues, shmq_nr_queues, queue creation and
 *    destruction, the memory limit check. Never held while sleeping for a
 *    queue condition.
 *  - queue->lock (spinlock), taken inside shmq_ns_lock, never the other way
 *    round: queue->destroyed, queue->attached[], queue->pid[],
 *    queue->departures[], queue->nr_sleepers[], queue->write_sleepers,
 *    queue->write_need and every word of the status page.
 *  - Wait queues: queue->wq[] for SHMQ_IOC_WAIT sleepers, queue->pollq[] for
 *    poll/epoll, so that waitqueue_active() on a pollq tells whether a
 *    poller is registered when the waiter words are published.
 *  - shmq_total_memory (atomic64_t): bytes of ring pages allocated by all
 *    queues alive, including destroyed ones still open. Only creation adds
 *    (under shmq_ns_lock); the release callback subtracts without a lock.
 *  - queue->stats: atomic64_t counters, no lock; the creator's uid and the
 *    creation time are written before the device is added, then only read.
 *  - The ring counters tail and head live in user-writable pages: the
 *    kernel reads each with READ_ONCE() once per check, trusts nothing about
 *    them and never indexes memory with them.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/cdev.h>
#include <linux/compat.h>
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
#include <linux/pid.h>
#include <linux/poll.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>

#include <shmq/uapi.h>
#include <shmq/version.h>

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
#define SHMQ_PG_PRODUCER	1	/* tail at offset 0 */
#define SHMQ_PG_CONSUMER	2	/* head at offset 0 */
#define SHMQ_PG_DATA		3	/* capacity bytes of records */

#define SHMQ_TAIL_OFF		0
#define SHMQ_HEAD_OFF		0

/* Number of minors reserved for queues; bounds max_queues in practice. */
#define SHMQ_MAX_MINORS		4096

/* Sides, indexed by role - 1. */
#define SHMQ_PROD		0
#define SHMQ_CONS		1

/**
 * struct shmq_status_page - kernel-written words at the start of page 0
 * @read_waiters: non-zero while a consumer sleeps in SHMQ_IOC_WAIT or polls
 * @write_waiters: non-zero while a producer sleeps in SHMQ_IOC_WAIT or polls
 * @write_need: free bytes the sleeping or polling producer waits for
 * @state: SHMQ_STATE_* bits
 *
 * User space maps this page read-only. Written only under queue->lock.
 */
struct shmq_status_page {
	u32 read_waiters;
	u32 write_waiters;
	u64 write_need;
	u32 state;
};

static_assert(offsetof(struct shmq_status_page, read_waiters) == 0);
static_assert(offsetof(struct shmq_status_page, write_waiters) == 4);
static_assert(offsetof(struct shmq_status_page, write_need) == 8);
static_assert(offsetof(struct shmq_status_page, state) == 16);
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
 * @name: queue name, NUL-terminated
 * @capacity: data region bytes, a power of two
 * @nr_pages: pages in @pages: three control pages plus the data pages
 * @pages: ring pages, zeroed, charged to the creator's memory cgroup
 * @accounted: bytes added to shmq_total_memory for this queue
 * @minor: minor number from shmq_minor_ida
 * @status: kernel mapping of the status page
 * @tail: kernel mapping of the producer's counter (user-written)
 * @head: kernel mapping of the consumer's counter (user-written)
 * @lock: protects the fields below it and the status page words
 * @destroyed: SHMQ_IOC_DESTROY or module exit removed the queue
 * @attached: a peer of that side is attached
 * @pid: thread group of the process that attached that side
 * @departures: number of detaches of that side so far
 * @nr_sleepers: tasks of that side sleeping in SHMQ_IOC_WAIT
 * @write_sleepers: struct shmq_sleeper of the producer's sleepers
 * @write_need: value last published in the status page's write_need
 * @wq: SHMQ_IOC_WAIT sleepers of each side
 * @pollq: poll/epoll waiters of each side
 * @stats: counters and creation facts shown in sysfs
 */
struct shmq_queue {
	struct device dev;
	struct cdev cdev;
	struct list_head node;
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
	struct list_head write_sleepers;
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
 */
struct shmq_peer {
	refcount_t ref;
	struct shmq_queue *queue;
	u32 role;
	unsigned int side;
	u64 seen_departures;
};

/**
 * struct shmq_sleeper - a producer task sleeping in SHMQ_IOC_WAIT
 * @node: entry in queue->write_sleepers
 * @need: the free bytes it waits for
 */
struct shmq_sleeper {
	struct list_head node;
	u64 need;
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
static atomic64_t shmq_total_memory = ATOMIC64_INIT(0);
static DEFINE_IDA(shmq_minor_ida);
static dev_t shmq_devt;
static struct class *shmq_class;

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
		 "Queues to create at load time: NAME:SIZE[,NAME:SIZE...], SIZE a power of two >= 4096 with optional K/M/G suffix (e.g. orders:1M,log:64K)");
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
 * shmq_used() - bytes between head and tail, read once each
 * @q: the queue
 *
 * Return: tail - head as an unsigned 64-bit difference. A value above
 * @q->capacity means user space corrupted a counter.
 */
static u64 shmq_used(const struct shmq_queue *q)
{
	u64 tail = READ_ONCE(*q->tail);
	u64 head = READ_ONCE(*q->head);

	return tail - head;
}

static bool shmq_readable(const struct shmq_queue *q)
{
	/* tail != head; an impossible pair counts as readable. */
	return shmq_used(q) != 0;
}

static bool shmq_writable(const struct shmq_queue *q, u64 need)
{
	u64 used = shmq_used(q);

	/* An impossible pair is never writable. */
	return used <= q->capacity && q->capacity - used >= need;
}

/**
 * shmq_publish_waiters_locked() - refresh one side's waiter words
 * @q: the queue, with @q->lock held
 * @side: SHMQ_PROD (write_waiters, write_need) or SHMQ_CONS (read_waiters)
 *
 * A waiter word counts that side's sleepers plus one if a poller is
 * registered. write_need is the largest need of the producer's sleepers,
 * at least capacity/2 if a poller is registered, and 0 without waiters.
 * The other side's library reads the waiter word first and write_need
 * after it, so write_need is stored before a non-zero waiter word.
 */
static void shmq_publish_waiters_locked(struct shmq_queue *q, unsigned int side)
{
	struct shmq_status_page *st = q->status;
	struct shmq_sleeper *s;
	bool polled;
	u32 waiters;
	u64 need = 0;

	lockdep_assert_held(&q->lock);

	/*
	 * A poller adds itself to pollq in poll_wait() before ->poll takes
	 * q->lock to publish, so any publish serialized after that one under
	 * q->lock sees the entry. A publish that ran earlier and saw none is
	 * overwritten by the poller's own publish.
	 */
	polled = waitqueue_active(&q->pollq[side]);
	waiters = q->nr_sleepers[side] + (polled ? 1 : 0);

	if (side == SHMQ_CONS) {
		WRITE_ONCE(st->read_waiters, waiters);
		return;
	}

	list_for_each_entry(s, &q->write_sleepers, node)
		need = max(need, s->need);
	if (polled)
		need = max(need, q->capacity / 2);
	q->write_need = need;

	if (waiters) {
		WRITE_ONCE(st->write_need, need);
		smp_wmb(); /* write_need before write_waiters */
		WRITE_ONCE(st->write_waiters, waiters);
	} else {
		WRITE_ONCE(st->write_waiters, 0);
		smp_wmb(); /* write_waiters before write_need */
		WRITE_ONCE(st->write_need, 0);
	}
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

static void shmq_wake_side(struct shmq_queue *q, unsigned int side, __poll_t key)
{
	wake_up_all(&q->wq[side]);
	wake_up_poll(&q->pollq[side], key);
}

/**
 * shmq_check_counters() - report counters that user space corrupted
 * @q: the queue
 *
 * Called where the kernel evaluates a condition for a waiter or poller. An
 * impossible pair (tail - head > capacity) cannot come from the protocol:
 * one of the peers wrote garbage into its counter. The kernel copes (see
 * shmq_readable()); the log says which queue and who was attached, once per
 * queue, rate-limited.
 */
static void shmq_check_counters(struct shmq_queue *q)
{
	u64 tail = READ_ONCE(*q->tail);
	u64 head = READ_ONCE(*q->head);
	pid_t pid[2];

	if (likely(tail - head <= q->capacity) ||
	    test_and_set_bit(SHMQ_QF_CORRUPT_LOGGED, &q->stats.flags))
		return;
	spin_lock(&q->lock);
	pid[SHMQ_PROD] = pid_nr(q->pid[SHMQ_PROD]);
	pid[SHMQ_CONS] = pid_nr(q->pid[SHMQ_CONS]);
	spin_unlock(&q->lock);
	dev_warn_ratelimited(&q->dev,
			     "corrupt ring counters: tail %llu - head %llu exceeds capacity %llu (producer pid %d, consumer pid %d; seen by %s[%d])\n",
			     tail, head, q->capacity, pid[SHMQ_PROD], pid[SHMQ_CONS],
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
 * every mapping) have let go of the queue. Also undoes a creation that
 * failed after device_initialize().
 */
static void shmq_queue_release(struct device *dev)
{
	struct shmq_queue *q = shmq_dev_to_queue(dev);
	unsigned long i;

	for (i = 0; i < q->nr_pages; i++)
		if (q->pages[i])
			__free_page(q->pages[i]);
	kvfree(q->pages);
	ida_free(&shmq_minor_ida, q->minor);
	atomic64_sub(q->accounted, &shmq_total_memory);
	kfree(q);
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
 * Return: 0 for 1..SHMQ_NAME_MAX-1 characters of [A-Za-z0-9_.-] not
 * starting with '.', -ENAMETOOLONG without a NUL, -EINVAL otherwise.
 */
static int shmq_check_name(const char *name)
{
	size_t len = strnlen(name, SHMQ_NAME_MAX);
	size_t i;

	if (len == SHMQ_NAME_MAX)
		return -ENAMETOOLONG;
	if (!len || name[0] == '.')
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
 * Return: 0 if usable, -EINVAL if not a power of two or below
 * SHMQ_MIN_CAPACITY, -EFBIG if above max_queue_size.
 */
static int shmq_check_capacity(u64 capacity)
{
	if (capacity < SHMQ_MIN_CAPACITY || (capacity & (capacity - 1)))
		return -EINVAL;
	if (capacity > READ_ONCE(shmq_max_queue_size))
		return -EFBIG;
	return 0;
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

static const struct file_operations shmq_queue_fops;

/**
 * shmq_create_locked() - create a queue and its device node
 * @name: valid name (see shmq_check_name())
 * @capacity: valid capacity (see shmq_check_capacity())
 *
 * Caller holds shmq_ns_lock.
 *
 * Return: 0 on success, -EEXIST, -ENOSPC (max_queues, max_total_memory or
 * no minor left), -ENOMEM, or an error from device registration.
 */
static int shmq_create_locked(const char *name, u64 capacity)
{
	unsigned long nr_pages = (capacity >> PAGE_SHIFT) + SHMQ_PG_DATA;
	u64 bytes = (u64)nr_pages << PAGE_SHIFT;
	u64 limit = READ_ONCE(shmq_max_total_memory);
	struct shmq_queue *q;
	unsigned long i;
	int ret;

	lockdep_assert_held(&shmq_ns_lock);

	if (shmq_find_locked(name))
		return -EEXIST;
	if (shmq_nr_queues >= READ_ONCE(shmq_max_queues)) {
		shmq_log_limit(name, "max_queues", shmq_nr_queues + 1ULL,
			       READ_ONCE(shmq_max_queues));
		return -ENOSPC;
	}
	/* Only creation adds, under shmq_ns_lock: the check cannot go stale. */
	if (bytes > limit || atomic64_read(&shmq_total_memory) > limit - bytes) {
		shmq_log_limit(name, "max_total_memory",
			       atomic64_read(&shmq_total_memory) + bytes, limit);
		return -ENOSPC;
	}

	q = kzalloc(sizeof(*q), GFP_KERNEL);
	if (!q)
		return -ENOMEM;
	strscpy(q->name, name, sizeof(q->name));
	q->capacity = capacity;
	q->stats.creator_uid = current_euid();
	q->stats.created_at = ktime_get_real_seconds();
	spin_lock_init(&q->lock);
	INIT_LIST_HEAD(&q->write_sleepers);
	for (i = 0; i < 2; i++) {
		init_waitqueue_head(&q->wq[i]);
		init_waitqueue_head(&q->pollq[i]);
	}

	ret = ida_alloc_max(&shmq_minor_ida, SHMQ_MAX_MINORS - 1, GFP_KERNEL);
	if (ret < 0)
		goto err_minor;
	q->minor = ret;

	/*
	 * Raised limits let a capacity through whose page array alone is
	 * beyond any allocation (kvmalloc WARNs above INT_MAX bytes): that is
	 * ENOMEM for the caller, not a kernel warning.
	 */
	q->pages = kvcalloc(nr_pages, sizeof(*q->pages), GFP_KERNEL | __GFP_NOWARN);
	if (!q->pages) {
		ret = -ENOMEM;
		goto err_page_array;
	}
	q->nr_pages = nr_pages;
	q->accounted = bytes;
	atomic64_add(bytes, &shmq_total_memory);

	/* From here on, shmq_queue_release() undoes everything. */
	device_initialize(&q->dev);
	q->dev.class = shmq_class;
	q->dev.devt = MKDEV(MAJOR(shmq_devt), q->minor);
	q->dev.release = shmq_queue_release;
	ret = dev_set_name(&q->dev, "%s", name);
	if (ret)
		goto err_set_name;

	for (i = 0; i < nr_pages; i++) {
		q->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!q->pages[i]) {
			ret = -ENOMEM;
			goto err_alloc_page;
		}
		cond_resched();
	}
	q->status = page_address(q->pages[SHMQ_PG_STATUS]);
	q->tail = page_address(q->pages[SHMQ_PG_PRODUCER]) + SHMQ_TAIL_OFF;
	q->head = page_address(q->pages[SHMQ_PG_CONSUMER]) + SHMQ_HEAD_OFF;

	cdev_init(&q->cdev, &shmq_queue_fops);
	q->cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&q->cdev, &q->dev);
	if (ret)
		goto err_cdev_device_add;

	list_add_tail(&q->node, &shmq_queues);
	shmq_nr_queues++;
	return 0;

err_cdev_device_add:
err_alloc_page:
err_set_name:
	put_device(&q->dev);	/* shmq_queue_release() frees the rest */
	return ret;
err_page_array:
	ida_free(&shmq_minor_ida, q->minor);
err_minor:
	kfree(q);
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
	shmq_nr_queues--;

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
 * The caller still holds its device reference, so the queue is valid.
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

static int shmq_ring_release(struct inode *inode, struct file *file)
{
	struct shmq_peer *peer = file->private_data;
	struct shmq_queue *q = peer->queue;

	shmq_peer_put(peer);
	put_device(&q->dev);
	return 0;
}

static const struct file_operations shmq_ring_fops = {
	.owner		= THIS_MODULE,
	.mmap		= shmq_ring_mmap,
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
	l.features = SHMQ_FEATURES_V1;
	l.capacity = q->capacity;
	/*
	 * A record is at most capacity/4 bytes, so that the largest one, plus
	 * a PAD record up to the ring end, needs less than capacity/2: EPOLLOUT
	 * at capacity/2 free then means any message fits, at any tail.
	 */
	l.max_message = q->capacity / 4 - sizeof(struct shmq_record);
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
	l.head_off = SHMQ_HEAD_OFF;
	l.read_waiters_off = offsetof(struct shmq_status_page, read_waiters);
	l.write_waiters_off = offsetof(struct shmq_status_page, write_waiters);
	l.write_need_off = offsetof(struct shmq_status_page, write_need);
	l.state_off = offsetof(struct shmq_status_page, state);

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
	bool destroyed, gone, ok;

	spin_lock(&q->lock);
	destroyed = q->destroyed;
	gone = shmq_peer_gone_locked(peer);
	spin_unlock(&q->lock);

	shmq_check_counters(q);
	if (args->cond == SHMQ_WAIT_READABLE)
		ok = shmq_readable(q);
	else
		ok = shmq_writable(q, args->min_bytes);
	if (ok)
		return 0;
	if (destroyed)
		return -EIDRM;
	if (gone && !(args->flags & SHMQ_WAIT_IGNORE_HUP))
		return -EPIPE;
	return -EAGAIN;
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
 * condition from the shared counters; it sleeps until woken, signalled or
 * past the absolute CLOCK_MONOTONIC deadline and evaluates again.
 *
 * Return: 0 when the condition holds, -EIDRM, -EPIPE, -ETIMEDOUT,
 * -ERESTARTSYS on a signal (the deadline is absolute, so restarting is
 * safe), -EINVAL for bad arguments, -EFAULT.
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
	u64 old_need, new_need;
	DEFINE_WAIT(wait);
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	ret = shmq_wait_validate(peer, &args);
	if (ret)
		return ret;
	if (args.timeout_ns < (u64)KTIME_MAX) {
		deadline = ns_to_ktime(args.timeout_ns);
		deadline_p = &deadline;
	}

	me.need = args.cond == SHMQ_WAIT_WRITABLE ? args.min_bytes : 0;
	spin_lock(&q->lock);
	q->nr_sleepers[side]++;
	if (side == SHMQ_PROD)
		list_add(&me.node, &q->write_sleepers);
	shmq_publish_waiters_locked(q, side);
	spin_unlock(&q->lock);

	/*
	 * Store-buffering pair with the waker in libshmq: it stores its
	 * counter, then atomic_thread_fence(seq_cst), then reads our waiter
	 * word. We stored the waiter word above, then this full barrier, then
	 * read its counter in shmq_wait_check(). So either we see its counter
	 * or it sees our waiter word and calls SHMQ_IOC_WAKE.
	 */
	smp_mb();

	for (;;) {
		/*
		 * Queue ourselves and set the task state before each check
		 * (set_current_state() is a full barrier): a wake_up() after
		 * the check finds us on the wait queue.
		 */
		prepare_to_wait(&q->wq[side], &wait, TASK_INTERRUPTIBLE);
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
		if (signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		if (!slept) {
			slept = true;
			atomic64_inc(&q->stats.waits);
		}
		schedule_hrtimeout_range_clock(deadline_p, 0, HRTIMER_MODE_ABS,
					       CLOCK_MONOTONIC);
	}
	finish_wait(&q->wq[side], &wait);

	spin_lock(&q->lock);
	q->nr_sleepers[side]--;
	old_need = q->write_need;
	if (side == SHMQ_PROD)
		list_del(&me.node);
	shmq_publish_waiters_locked(q, side);
	new_need = q->write_need;
	recheck = side == SHMQ_PROD && new_need && new_need < old_need;
	spin_unlock(&q->lock);

	if (recheck) {
		/*
		 * write_need went down: a consumer that read the old value may
		 * have crossed the new one without calling WAKE. Same
		 * store-buffering pair as above with the consumer's fence: we
		 * stored write_need, full barrier, read head ourselves.
		 */
		smp_mb();
		if (shmq_writable(q, new_need))
			shmq_wake_side(q, side, EPOLLOUT | EPOLLWRNORM);
	}
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

	spin_lock(&q->lock);
	shmq_publish_waiters_locked(q, other);
	spin_unlock(&q->lock);
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
	default:
		return -ENOTTY;
	}
}

/**
 * shmq_queue_poll() - poll/epoll on a queue file
 * @file: the queue file
 * @wait: poll table
 *
 * A consumer is readable when tail != head; a producer is writable when at
 * least capacity/2 bytes are free, enough for any message (max_message is
 * capacity/4 - 8). A registered poller counts as a waiter
 * in the status page, published before the counters are read.
 *
 * Return: the ready events.
 */
static __poll_t shmq_queue_poll(struct file *file, poll_table *wait)
{
	struct shmq_peer *peer = file->private_data;
	struct shmq_queue *q = peer->queue;
	unsigned int side = peer->side;
	bool destroyed, gone;
	__poll_t mask = 0;

	poll_wait(file, &q->pollq[side], wait);

	spin_lock(&q->lock);
	shmq_publish_waiters_locked(q, side);
	destroyed = q->destroyed;
	gone = shmq_peer_gone_locked(peer);
	spin_unlock(&q->lock);

	/*
	 * Pairs with the waker's fence between its counter store and its
	 * read of our waiter word, as in shmq_ioc_wait().
	 */
	smp_mb();

	shmq_check_counters(q);
	if (side == SHMQ_CONS) {
		if (shmq_readable(q))
			mask |= EPOLLIN | EPOLLRDNORM;
	} else {
		if (shmq_writable(q, q->capacity / 2))
			mask |= EPOLLOUT | EPOLLWRNORM;
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
	u64 used = shmq_used(q);

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

static ssize_t shmq_show_pid(struct device *dev, char *buf, unsigned int side)
{
	struct shmq_queue *q = shmq_dev_to_queue(dev);
	pid_t nr;

	spin_lock(&q->lock);
	nr = q->pid[side] ? pid_vnr(q->pid[side]) : 0;
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

static ssize_t created_by_uid_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	kuid_t uid = shmq_dev_to_queue(dev)->stats.creator_uid;

	return sysfs_emit(buf, "%u\n", from_kuid_munged(current_user_ns(), uid));
}
static DEVICE_ATTR_RO(created_by_uid);

static ssize_t created_at_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n", (long long)shmq_dev_to_queue(dev)->stats.created_at);
}
static DEVICE_ATTR_RO(created_at);

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
	&dev_attr_created_by_uid.attr,
	&dev_attr_created_at.attr,
	NULL,
};
ATTRIBUTE_GROUPS(shmq);

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
 * shmq_create_locked() (-EEXIST, -ENOSPC, -ENOMEM).
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

	mutex_lock(&shmq_ns_lock);
	ret = shmq_create_locked(args.name, args.capacity);
	mutex_unlock(&shmq_ns_lock);
	return ret;
}

/**
 * shmq_ioc_destroy() - SHMQ_IOC_DESTROY
 * @argp: struct shmq_destroy_args in user memory
 *
 * Return: 0, -EFAULT, -EINVAL, -ENAMETOOLONG or -ENOENT.
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

	mutex_lock(&shmq_ns_lock);
	q = shmq_find_locked(args.name);
	if (q)
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
	unsigned int n;

	mutex_lock(&shmq_ns_lock);
	n = shmq_nr_queues;
	mutex_unlock(&shmq_ns_lock);
	return sysfs_emit(buf, "%u\n", n);
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
 * shmq_create_param_queues() - create the queues listed in queues=
 *
 * Return: 0, -EINVAL for a malformed entry or one the limits refuse (the
 * reason is logged), -ENOMEM.
 */
static int shmq_create_param_queues(void)
{
	char *spec, *rest, *entry, *sep;
	u64 capacity;
	int ret = 0;

	if (!shmq_queues_param || !*shmq_queues_param)
		return 0;

	spec = kstrdup(shmq_queues_param, GFP_KERNEL);
	if (!spec)
		return -ENOMEM;

	rest = spec;
	while ((entry = strsep(&rest, ","))) {
		sep = strchr(entry, ':');
		if (!*entry) {
			pr_err_ratelimited("queues=: empty entry in '%s'\n", shmq_queues_param);
			ret = -EINVAL;
			break;
		}
		if (!sep) {
			pr_err_ratelimited("queues=: '%s' is not NAME:SIZE\n", entry);
			ret = -EINVAL;
			break;
		}
		*sep = '\0';
		if (strlen(entry) >= SHMQ_NAME_MAX || shmq_check_name(entry)) {
			pr_err_ratelimited("queues=: bad queue name '%s'\n", entry);
			ret = -EINVAL;
			break;
		}
		if (shmq_parse_size(sep + 1, &capacity)) {
			pr_err_ratelimited("queues=: bad size '%s' for queue '%s'\n", sep + 1, entry);
			ret = -EINVAL;
			break;
		}
		ret = shmq_check_capacity(capacity);
		if (ret) {
			pr_err_ratelimited("queues=: size %llu of queue '%s' is %s\n",
					   capacity, entry,
					   ret == -EFBIG ? "above max_queue_size" :
					   "not a power of two >= 4096");
			ret = -EINVAL;
			break;
		}
		mutex_lock(&shmq_ns_lock);
		ret = shmq_create_locked(entry, capacity);
		mutex_unlock(&shmq_ns_lock);
		if (ret) {
			pr_err_ratelimited("queues=: cannot create queue '%s': %s (%d)\n", entry,
					   ret == -EEXIST ? "duplicate name" :
					   ret == -ENOSPC ? "max_queues or max_total_memory reached" :
					   "error", ret);
			if (ret != -ENOMEM)
				ret = -EINVAL;
			break;
		}
	}
	kfree(spec);
	return ret;
}

static int __init shmq_init(void)
{
	int ret;

	ret = alloc_chrdev_region(&shmq_devt, 0, SHMQ_MAX_MINORS, "shmq");
	if (ret)
		return ret;

	shmq_class = shmq_class_create("shmq");
	if (IS_ERR(shmq_class)) {
		ret = PTR_ERR(shmq_class);
		goto err_class;
	}
	shmq_class->devnode = shmq_devnode;
	shmq_class->dev_groups = shmq_groups;

	ret = shmq_create_param_queues();
	if (ret)
		goto err_param_queues;

	ret = sysfs_create_group(&THIS_MODULE->mkobj.kobj, &shmq_usage_group);
	if (ret)
		goto err_usage;

	/* Last: nothing can open the control device before init succeeded. */
	ret = misc_register(&shmq_control);
	if (ret)
		goto err_misc;
	return 0;

err_misc:
	sysfs_remove_group(&THIS_MODULE->mkobj.kobj, &shmq_usage_group);
err_usage:
err_param_queues:
	shmq_destroy_all();
	class_destroy(shmq_class);
err_class:
	unregister_chrdev_region(shmq_devt, SHMQ_MAX_MINORS);
	return ret;
}

static void __exit shmq_exit(void)
{
	misc_deregister(&shmq_control);
	sysfs_remove_group(&THIS_MODULE->mkobj.kobj, &shmq_usage_group);
	/* No file is open (module references), so this frees every queue. */
	shmq_destroy_all();
	class_destroy(shmq_class);
	unregister_chrdev_region(shmq_devt, SHMQ_MAX_MINORS);
	ida_destroy(&shmq_minor_ida);
}

module_init(shmq_init);
module_exit(shmq_exit);

MODULE_DESCRIPTION("shmq: kernel-assisted shared-memory message queues");
MODULE_LICENSE("GPL");
MODULE_VERSION(SHMQ_VERSION_STRING); /* the top-level VERSION file */
