/* SPDX-License-Identifier: GPL-2.0 */
/*
 * shmq - kernel-assisted shared-memory message queues.
 *
 * The module owns the memory of each queue's rings (one lane per producer),
 * hands it out through mmap with role-dependent protections (each producer
 * writes only its own lane, the consumer only its read positions), lets
 * either side sleep until the other side's counter makes its condition
 * true, and tracks who is attached and who sent what. It never reads or
 * copies a message. The protocol is described in docs/design.md, the ABI in
 * include/shmq/uapi.h.
 *
 * This header is internal to the module: shared structures, cross-file
 * declarations, and the rules below. The files of the module:
 *
 *  - main.c     module parameters, global state, load (queues=) and unload
 *  - control.c  /dev/shmq-control, names and limits, create and destroy
 *               (the namespace: shmq_ns_lock)
 *  - queue.c    a queue's object, pages and release; lanes (claim, drain,
 *               reap); peers (attach, detach); the queue file /dev/shmq/NAME
 *               and its ioctl dispatch
 *  - ring.c     the shared rings as the kernel sees them (counters snapshot,
 *               conditions over the lanes, corruption report), SHMQ_IOC_LAYOUT
 *               and LAYOUT2, LANE_INFO and LANE_DROP, the ring file, its mmap
 *               with role-dependent protections and its fault handler
 *  - wait.c     waiter words, SHMQ_IOC_WAIT/WAKE/INTERRUPT, the tree of
 *               producer sleepers, deadlines, poll/epoll arming
 *  - sysfs.c    /sys/class/shmq/NAME attributes, /sys/module/shmq/usage
 *
 * Functions used in more than one file are declared here, grouped by the
 * file that defines them; everything else is static.
 *
 * Objects and lifetimes
 *
 *  - struct shmq_queue: one queue. Its lifetime is the reference count of
 *    the embedded struct device. References are held by the namespace (from
 *    creation until SHMQ_IOC_DESTROY or module exit), by every open queue
 *    file and by every ring file (hence, through vma->vm_file, by every
 *    mapping). The device release callback shmq_queue_release() frees the
 *    pages (the queue's and every lane's still allocated), the minor number
 *    and the memory accounting.
 *  - struct shmq_lane: one producer's ring, embedded in the queue. A lane
 *    of SHMQ_IOC_CREATE2 is free (no pages), claimed and given pages by a
 *    producer's open (charged to the opener), attached, then draining once
 *    the producer's peer is gone, and free again when the kernel sees it
 *    drained or dropped (shmq_reap_lanes()): its pages are then zapped from
 *    every mapping (queue->mapping) and freed. The lane of SHMQ_IOC_CREATE
 *    is persistent: its pages are the queue's, and each producer takes it
 *    over (a new generation) with whatever is queued.
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
 *    it, READ_ONCE), shmq_next_minor, queue->registering, and the
 *    insertion and removal of queues. Held for short checks and for
 *    registering or removing a device, never across the allocation of a
 *    queue's pages and never while sleeping for a queue condition; taken
 *    killable where a user waits.
 *  - queue->pages_rwsem (rw_semaphore), outside queue->lock: taken for
 *    reading by the fault handler while it inserts a lane's page (under
 *    the caller's mmap_lock), for writing where a lane's pages are set or
 *    cleared and where a lane is dropped. Pages are zapped and freed after
 *    it is released.
 *  - queue->lock (spinlock), taken inside shmq_ns_lock and pages_rwsem,
 *    never the other way round: queue->destroyed, the attachment counts
 *    and departures, every struct shmq_waiters, every lane's state,
 *    generation, producer, dropped flag, credentials and page pointers,
 *    peer->interrupted and every word of the status region. It keeps the
 *    lanes' pages: the counters of a lane are read under it (or by the
 *    lane's own producer). Functions named *_locked() expect it held.
 *  - Wait queues: each struct shmq_waiters has wq for SHMQ_IOC_WAIT sleepers
 *    and pollq for poll/epoll, so that waitqueue_active() on a pollq tells
 *    whether a poller is registered when the waiter words are published.
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

#ifndef SHMQ_INTERNAL_H
#define SHMQ_INTERNAL_H

#include <linux/atomic.h>
#include <linux/cdev.h>
#include <linux/completion.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/poll.h>
#include <linux/rbtree.h>
#include <linux/rwsem.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/sysfs.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/version.h>
#include <linux/wait.h>

#include <shmq/uapi.h>

struct miscdevice;
struct pid_namespace;

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
 * Layout of the shared pages (reported to user space by SHMQ_IOC_LAYOUT and
 * SHMQ_IOC_LAYOUT2; docs/design.md, "Lanes"). In mmap offsets of the ring
 * file, in pages:
 *
 *   [0, S)                     status: state, read_wake, dir_gen, directory
 *   [S, S + C)                 consumer slot 0: read_armed, head of each lane
 *   [S + C + j * P, ... + P)   lane j: its producer page (tail, write_armed),
 *                              then capacity bytes of records
 *
 * S and C hold 64 bytes per lane plus a 64-byte header; P = 1 + capacity /
 * PAGE_SIZE. The queue of SHMQ_IOC_CREATE is one lane whose pages are
 * allocated with the queue and kept for its lifetime (a "persistent" lane,
 * which every producer of that queue takes over in turn); the lanes of
 * SHMQ_IOC_CREATE2 get their pages when a producer opens and give them back
 * when it has gone and every message was consumed.
 */

#define SHMQ_LINE		64	/* one cache line per shared word group */

/* Producer page of a lane: the counter alone on its line, the armed word
 * (written only when the producer is about to sleep) on the next. */
#define SHMQ_TAIL_OFF		0
#define SHMQ_WRITE_ARMED_OFF	64
/* Consumer page: read_armed in the header line, head of lane j on line j+1. */
#define SHMQ_READ_ARMED_OFF	0
#define SHMQ_HEAD_OFF(j)	(SHMQ_LINE * ((j) + 1))
/* Status region: the header line, then the directory entry of lane j. */
#define SHMQ_DIR_OFF(j)		(SHMQ_LINE * ((j) + 1))

/* The smallest capacity: whole pages of data, at least SHMQ_MIN_CAPACITY. */
#define SHMQ_MIN_CAP		max_t(u64, SHMQ_MIN_CAPACITY, PAGE_SIZE)

/* Number of minors reserved for queues; bounds max_queues in practice. */
#define SHMQ_MAX_MINORS		4096

/* Sides, indexed by role - 1. */
#define SHMQ_PROD		0
#define SHMQ_CONS		1

/**
 * struct shmq_status_hdr - kernel-written words at the start of the status page
 * @state: SHMQ_STATE_* bits
 * @read_wake: SHMQ_WAKE_* bits of the consumer side (checked by producers)
 * @dir_gen: incremented after every change of a directory entry's state or
 *	generation (store-release)
 * @nr_lanes: entries in the directory
 * @__pad: zero
 *
 * The directory (struct shmq_lane_dir, uapi.h) follows at SHMQ_DIR_OFF().
 * User space maps the status region read-only. Written only under
 * queue->lock.
 */
struct shmq_status_hdr {
	u32 state;
	u32 read_wake;
	u32 dir_gen;
	u32 nr_lanes;
	u64 __pad[6];
};

static_assert(sizeof(struct shmq_status_hdr) == SHMQ_LINE);
static_assert(sizeof(struct shmq_lane_dir) == SHMQ_LINE);
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
 * struct shmq_waiters - the sleepers and pollers of one side of a ring
 * @nr_sleepers: tasks sleeping in SHMQ_IOC_WAIT
 * @poll_armers: polls that found their condition false since the pollers
 *	were last woken (each such poller may be asleep)
 * @poll_gen: bumped whenever the pollers are woken, so that a poll that
 *	armed and then found its condition true undoes only its own arm
 * @sleepers: writers only: struct shmq_sleeper by need
 * @need: writers only: value last published in @need_word
 * @wq: SHMQ_IOC_WAIT sleepers
 * @pollq: poll/epoll waiters
 * @wake_word: the SHMQ_WAKE_* word in the status region
 * @need_word: writers only: the write_need word in the status region
 *
 * The consumer side has one (queue->readers), each lane one for its
 * producer (lane->writers). All fields are under queue->lock.
 */
struct shmq_waiters {
	unsigned int nr_sleepers;
	unsigned int poll_armers;
	u64 poll_gen;
	struct rb_root_cached sleepers;
	u64 need;
	wait_queue_head_t wq;
	wait_queue_head_t pollq;
	u32 *wake_word;
	u64 *need_word;
};

/**
 * struct shmq_lane - one producer's ring inside a queue
 * @index: position in queue->lanes and in the directory
 * @state: SHMQ_LANE_*, as published in @dir (queue->lock)
 * @generation: of the current or last producer, never 0 once used
 *	(queue->lock)
 * @producer: the attached producer's peer, NULL when it has gone
 *	(queue->lock)
 * @dropped: a consumer dropped the lane while its producer was attached:
 *	no consumer sees it any more, it is freed when the producer goes
 *	(queue->lock)
 * @persistent: the pages belong to the queue (SHMQ_IOC_CREATE's lane)
 * @pages: producer page then data pages; NULL when free. Set and cleared
 *	under queue->pages_rwsem (write) and queue->lock, so that the fault
 *	handler (pages_rwsem read) and the counter readers (queue->lock) see
 *	either all of them or none
 * @tail: kernel address of the lane's tail, with @pages
 * @head: kernel address of the consumer's head for this lane
 * @uid: producer's effective uid at open (queue->lock)
 * @gid: producer's effective gid at open (queue->lock)
 * @pid: producer's thread group at open, a reference (queue->lock)
 * @writers: the producer's sleepers and pollers
 * @dir: the lane's directory entry in the status region
 */
struct shmq_lane {
	unsigned int index;
	u32 state;
	u32 generation;
	struct shmq_peer *producer;
	bool dropped;
	bool persistent;
	struct page **pages;
	u64 *tail;
	u64 *head;
	kuid_t uid;
	kgid_t gid;
	struct pid *pid;
	struct shmq_waiters writers;
	struct shmq_lane_dir *dir;
};

/**
 * struct shmq_queue - one queue
 * @dev: class device; its reference count is the queue's lifetime
 * @cdev: the /dev/shmq/NAME character device
 * @node: entry in shmq_queues (shmq_ns_lock)
 * @registering: in shmq_queues to hold the name while its pages are
 *	allocated; not yet openable, not destroyable (shmq_ns_lock)
 * @name: queue name, NUL-terminated
 * @queue_features: SHMQ_QUEUE_SPSC or SHMQ_QUEUE_LANES
 * @capacity: data bytes of each lane, a power of two, a multiple of PAGE_SIZE
 * @nr_lanes: lanes (max_producers)
 * @status_pages: pages of the status region
 * @consumer_pages: pages of the consumer region
 * @lane_pages: pages of one lane (its producer page and its data)
 * @nr_pages: pages in @pages: status and consumer region, and for
 *	SHMQ_QUEUE_SPSC the persistent lane's
 * @pages: pages allocated with the queue, zeroed, charged to the creator
 * @zero_page: what a consumer reads in a free lane (never written)
 * @accounted: bytes reserved in shmq_total_memory for this queue (the worst
 *	case: every lane allocated)
 * @minor: minor number from shmq_minor_ida, -1 before registration
 * @status: kernel mapping of the status region's header
 * @read_armed: kernel mapping of the consumer's read_armed word
 * @lanes: @nr_lanes lanes
 * @mapping: the address space of every ring file of the queue, so that a
 *	lane's pages can be unmapped from every process (unmap_mapping_range)
 * @pages_rwsem: serializes installing and removing lane pages against the
 *	fault handler, which inserts them (see struct shmq_lane)
 * @lock: protects the fields below it, the lanes' fields marked so and the
 *	words of the status region
 * @destroyed: SHMQ_IOC_DESTROY or module exit removed the queue
 * @nr_producers: producers attached
 * @prod_departures: producer detaches so far
 * @cons_attached: a consumer is attached
 * @cons_pid: thread group of the process that attached the consumer
 * @cons_departures: consumer detaches so far
 * @readers: the consumer's sleepers and pollers
 * @stats: counters and creation facts shown in sysfs
 */
struct shmq_queue {
	struct device dev;
	struct cdev cdev;
	struct list_head node;
	bool registering;
	char name[SHMQ_NAME_MAX];
	u64 queue_features;
	u64 capacity;
	unsigned int nr_lanes;
	unsigned int status_pages;
	unsigned int consumer_pages;
	unsigned long lane_pages;
	unsigned long nr_pages;
	struct page **pages;
	struct page *zero_page;
	u64 accounted;
	int minor;
	struct shmq_status_hdr *status;
	u32 *read_armed;
	struct shmq_lane *lanes;
	struct address_space mapping;
	struct rw_semaphore pages_rwsem;

	spinlock_t lock;	/* see "Locking" at the top of this file */
	bool destroyed;
	unsigned int nr_producers;
	u64 prod_departures;
	bool cons_attached;
	struct pid *cons_pid;
	u64 cons_departures;
	struct shmq_waiters readers;

	struct shmq_stats stats;
};

/**
 * struct shmq_peer - one attachment of a producer or a consumer
 * @ref: held by the queue file and by each ring file made from it
 * @queue: the queue; each file holding @ref also holds a device reference
 * @role: SHMQ_ROLE_PRODUCER or SHMQ_ROLE_CONSUMER
 * @side: SHMQ_PROD or SHMQ_CONS (role - 1)
 * @lane: a producer's lane (for the peer's lifetime)
 * @waiters: the producer's lane's writers, or the queue's readers
 * @seen_departures: the other side's departure counter at attach time
 * @interrupted: SHMQ_IOC_INTERRUPT is pending (queue->lock)
 */
struct shmq_peer {
	refcount_t ref;
	struct shmq_queue *queue;
	u32 role;
	unsigned int side;
	struct shmq_lane *lane;
	struct shmq_waiters *waiters;
	u64 seen_departures;
	bool interrupted;
};

/**
 * struct shmq_counters - one lane's shared counters as the kernel read them
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

/*
 * Whether the lane is shown to consumers (it may hold messages): the
 * persistent lane always. Caller holds q->lock or q->pages_rwsem.
 */
static inline bool shmq_lane_visible(const struct shmq_lane *lane)
{
	if (!lane->tail || lane->dropped)
		return false;
	return lane->persistent || lane->state == SHMQ_LANE_ATTACHED ||
	       lane->state == SHMQ_LANE_DRAINING;
}

/* First page offset of lane @j in the ring file. */
static inline unsigned long shmq_lane_pgoff(const struct shmq_queue *q, unsigned int j)
{
	return q->status_pages + q->consumer_pages + (unsigned long)j * q->lane_pages;
}

static inline struct shmq_queue *shmq_dev_to_queue(struct device *dev)
{
	return container_of(dev, struct shmq_queue, dev);
}

/* ------------------------------------------------------------------------
 * main.c: module parameters and global state (see "Locking" above).
 */

extern u64 shmq_max_queue_size;		/* max_queue_size=, READ_ONCE */
extern u64 shmq_max_total_memory;	/* max_total_memory=, READ_ONCE */
extern unsigned int shmq_max_queues;	/* max_queues=, READ_ONCE */
extern unsigned int shmq_max_producers;	/* max_producers=, READ_ONCE */

extern struct mutex shmq_ns_lock;
extern struct list_head shmq_queues;	/* shmq_ns_lock */
extern unsigned int shmq_nr_queues;	/* shmq_ns_lock; READ_ONCE without it */
extern unsigned int shmq_next_minor;	/* shmq_ns_lock */
extern atomic64_t shmq_total_memory;	/* atomic, no lock */
extern struct ida shmq_minor_ida;	/* its own lock */
extern dev_t shmq_devt;			/* set at load, then only read */
extern struct class *shmq_class;	/* set at load, then only read */
extern atomic_t shmq_queues_alive;	/* atomic, no lock */
extern struct completion shmq_all_released;

/* ------------------------------------------------------------------------
 * control.c: names, limits, create and destroy, the control device.
 */

int shmq_check_name(const char *name);
int shmq_check_capacity(u64 capacity);
int shmq_reserve_memory(const char *name, u64 bytes);
int shmq_add_locked(struct shmq_queue *q);
void shmq_destroy_all(void);
extern struct miscdevice shmq_control;

/* ------------------------------------------------------------------------
 * queue.c: queue object and pages, lanes, peers, the queue file.
 */

u64 shmq_queue_bytes(u64 capacity, unsigned int nr_lanes);
struct shmq_queue *shmq_queue_new(const char *name, u64 capacity, unsigned int nr_lanes,
				  u64 queue_features);
int shmq_queue_alloc_pages(struct shmq_queue *q);
void shmq_publish_state_locked(struct shmq_queue *q);
pid_t shmq_pid_nr_locked(struct shmq_queue *q, struct pid *pid, struct pid_namespace *ns);
struct pid *shmq_first_producer_pid_locked(struct shmq_queue *q);
void shmq_publish_lane_locked(struct shmq_queue *q, struct shmq_lane *lane);
void shmq_unmap_lane(struct shmq_queue *q, const struct shmq_lane *lane);
void shmq_reap_lanes(struct shmq_queue *q);
void shmq_peer_put(struct shmq_peer *peer);
extern const struct file_operations shmq_queue_fops;

/* ------------------------------------------------------------------------
 * ring.c: ring state, layout, lane information, the ring file.
 */

void shmq_read_counters(const struct shmq_lane *lane, struct shmq_counters *c);
bool shmq_readable(const struct shmq_counters *c);
bool shmq_writable(const struct shmq_queue *q, const struct shmq_counters *c, u64 need);
bool shmq_any_readable_locked(struct shmq_queue *q);
bool shmq_lane_writable_locked(struct shmq_queue *q, struct shmq_lane *lane, u64 need);
u64 shmq_lane_queued_locked(const struct shmq_queue *q, const struct shmq_lane *lane);
int shmq_ioc_layout(const struct shmq_peer *peer, void __user *argp);
int shmq_ioc_layout2(const struct shmq_peer *peer, void __user *argp);
int shmq_ioc_lane_info(struct shmq_peer *peer, void __user *argp);
int shmq_ioc_lane_drop(struct shmq_peer *peer, void __user *argp);
long shmq_ioc_ring_fd(struct shmq_peer *peer, unsigned long arg);

/* ------------------------------------------------------------------------
 * wait.c: waiting, waking, poll.
 */

void shmq_waiters_init(struct shmq_waiters *w);
bool shmq_publish_waiters_locked(struct shmq_waiters *w);
void shmq_wake_waiters(struct shmq_queue *q, struct shmq_waiters *w, __poll_t key);
void shmq_wake_writers(struct shmq_queue *q, __poll_t key);
int shmq_file_flush(struct file *file, fl_owner_t id);
int shmq_ioc_wait(struct shmq_peer *peer, void __user *argp);
long shmq_ioc_wake(struct shmq_peer *peer, unsigned long arg);
long shmq_ioc_interrupt(struct shmq_peer *peer, unsigned long arg);
__poll_t shmq_queue_poll(struct file *file, poll_table *wait);

/* ------------------------------------------------------------------------
 * sysfs.c: attributes of /sys/class/shmq/NAME and /sys/module/shmq/usage.
 */

extern const struct attribute_group *shmq_groups[];
extern const struct attribute_group shmq_usage_group;
char *shmq_devnode(SHMQ_CLASS_DEV_CONST struct device *dev, umode_t *mode);

#endif /* SHMQ_INTERNAL_H */
