// SPDX-License-Identifier: GPL-2.0
/*
 * shmq - the shared ring as the kernel sees it, and the ring file.
 *
 * Owns the reading of the user-written counters (one consistent pair, see
 * shmq_read_counters()), the readable and writable conditions derived from
 * them, the report of corrupt counters, SHMQ_IOC_LAYOUT (where each region
 * and word lives), and the ring file of SHMQ_IOC_RING_FD: its mmap of one
 * region with the protections of the caller's role, and its faults.
 *
 * Locks: the counters live in user-writable pages and are read with
 * READ_ONCE() and barriers, under no lock; nothing here indexes memory with
 * them. queue->lock is taken only to name the attached processes when
 * corrupt counters are logged. ->mmap runs with the caller's mmap_lock
 * held by the mm core; the ring file holds a peer reference and a device
 * reference.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/bitops.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "shmq_internal.h"

/* ------------------------------------------------------------------------
 * Ring state, as seen by the kernel.
 */

/* Rounds of shmq_read_counters() before it gives up on a stable pair. */
#define SHMQ_COUNTER_TRIES	8

/**
 * shmq_read_counters() - read a lane's tail and head as one pair
 * @lane: the lane, with pages (the caller keeps them: q->lock or
 *	q->pages_rwsem, or a producer's own lane)
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
 * Takes no lock.
 */
void shmq_read_counters(const struct shmq_lane *lane, struct shmq_counters *c)
{
	u64 head = READ_ONCE(*lane->head);
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
		tail = READ_ONCE(*lane->tail);
		smp_rmb(); /* tail before head again */
		again = READ_ONCE(*lane->head);
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

bool shmq_readable(const struct shmq_counters *c)
{
	/* tail != head; an impossible or unstable pair counts as readable. */
	return !c->stable || c->tail != c->head;
}

bool shmq_writable(const struct shmq_queue *q, const struct shmq_counters *c, u64 need)
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

/**
 * shmq_check_counters_locked() - report counters that user space corrupted
 * @q: the queue, lock held
 * @lane: the lane they were read from
 * @c: the counters as just read
 *
 * Called where the kernel evaluates a condition for a waiter or poller. A
 * stable, impossible pair (tail - head > capacity) cannot come from the
 * protocol: one of the peers wrote garbage into its counter. The kernel
 * copes (see shmq_readable()); the log says which queue and lane and who
 * was attached, once per queue, rate-limited.
 */
static void shmq_check_counters_locked(struct shmq_queue *q, const struct shmq_lane *lane,
				       const struct shmq_counters *c)
{
	lockdep_assert_held(&q->lock);
	if (likely(!shmq_counters_corrupt(q, c)) ||
	    test_and_set_bit(SHMQ_QF_CORRUPT_LOGGED, &q->stats.flags))
		return;
	dev_warn_ratelimited(&q->dev,
			     "corrupt ring counters: tail %llu - head %llu exceeds capacity %llu (lane %u, producer pid %d, consumer pid %d; seen by %s[%d])\n",
			     c->tail, c->head, q->capacity, lane->index,
			     shmq_pid_nr_locked(q, lane->producer ? lane->pid : NULL, &init_pid_ns),
			     shmq_pid_nr_locked(q, q->cons_pid, &init_pid_ns),
			     current->comm, task_tgid_nr(current));
}

/**
 * shmq_any_readable_locked() - the consumer's condition over every lane
 * @q: the queue, lock held (which keeps every lane's pages)
 *
 * Readable when some lane shown to the consumer has tail != head (or an
 * unstable or impossible pair: judged in the waiter's favour). Each lane is
 * the store-buffering pair of docs/design.md on its own: its producer
 * stores tail, fences, reads read_wake; the caller published read_wake,
 * issued a full barrier, and reads every tail here. O(lanes), on the slow
 * path only.
 *
 * Return: true if a message may be there.
 */
bool shmq_any_readable_locked(struct shmq_queue *q)
{
	struct shmq_counters c;
	unsigned int j;

	lockdep_assert_held(&q->lock);
	for (j = 0; j < q->nr_lanes; j++) {
		struct shmq_lane *lane = &q->lanes[j];

		if (!shmq_lane_visible(lane))
			continue;
		shmq_read_counters(lane, &c);
		shmq_check_counters_locked(q, lane, &c);
		if (shmq_readable(&c))
			return true;
	}
	return false;
}

/**
 * shmq_lane_writable_locked() - a producer's condition on its own lane
 * @q: the queue, lock held
 * @lane: the producer's lane (with pages while it is attached)
 * @need: free bytes wanted
 *
 * Return: true if at least @need bytes are free.
 */
bool shmq_lane_writable_locked(struct shmq_queue *q, struct shmq_lane *lane, u64 need)
{
	struct shmq_counters c;

	lockdep_assert_held(&q->lock);
	shmq_read_counters(lane, &c);
	shmq_check_counters_locked(q, lane, &c);
	return shmq_writable(q, &c, need);
}

/*
 * Bytes a lane holds for the consumer, clamped to [0, capacity] (user
 * space may have corrupted the counters). Caller holds q->lock.
 */
u64 shmq_lane_queued_locked(const struct shmq_queue *q, const struct shmq_lane *lane)
{
	struct shmq_counters c;
	u64 used;

	lockdep_assert_held(&q->lock);
	if (!lane->tail)
		return 0;
	shmq_read_counters(lane, &c);
	used = c.tail - c.head;
	if ((s64)used < 0)
		return 0;
	return min(used, q->capacity);
}

/* ------------------------------------------------------------------------
 * Layout of the shared pages, as SHMQ_IOC_LAYOUT and SHMQ_IOC_LAYOUT2
 * report it.
 */

/*
 * The largest payload. A record is at most capacity/4 bytes, so that the
 * largest one, plus a PAD record up to the ring end, needs less than
 * capacity/2: EPOLLOUT at capacity/2 free then means any message fits, at
 * any tail.
 */
static u64 shmq_max_message(const struct shmq_queue *q)
{
	return q->capacity / 4 - sizeof(struct shmq_record);
}

/* The lane a fd's layout describes: a producer's own, lane 0 otherwise. */
static const struct shmq_lane *shmq_layout_lane(const struct shmq_peer *peer)
{
	return peer->lane ? peer->lane : &peer->queue->lanes[0];
}

/**
 * shmq_ioc_layout() - SHMQ_IOC_LAYOUT: describe the shared memory
 * @peer: the caller's peer
 * @argp: struct shmq_layout in user memory, written in full
 *
 * The four regions of one lane: the caller's own (producer) or lane 0
 * (consumer). A consumer of a SHMQ_QUEUE_LANES queue needs
 * SHMQ_IOC_LAYOUT2; the queue_features bit tells an older library so.
 *
 * Return: 0 or -EFAULT.
 */
int shmq_ioc_layout(const struct shmq_peer *peer, void __user *argp)
{
	const struct shmq_queue *q = peer->queue;
	const struct shmq_lane *lane = shmq_layout_lane(peer);
	u64 lane_off = (u64)shmq_lane_pgoff(q, lane->index) << PAGE_SHIFT;
	struct shmq_layout l;

	memset(&l, 0, sizeof(l));
	l.features = SHMQ_FEATURES_V3;
	l.queue_features = q->queue_features;
	l.capacity = q->capacity;
	l.max_message = shmq_max_message(q);
	l.min_capacity = SHMQ_MIN_CAP;
	l.role = peer->role;
	l.page_size = PAGE_SIZE;
	l.record_header_size = sizeof(struct shmq_record);
	l.record_align = SHMQ_RECORD_ALIGN;
	l.status.offset = 0;
	l.status.size = (u64)q->status_pages << PAGE_SHIFT;
	l.consumer.offset = (u64)q->status_pages << PAGE_SHIFT;
	l.consumer.size = (u64)q->consumer_pages << PAGE_SHIFT;
	l.producer.offset = lane_off;
	l.producer.size = PAGE_SIZE;
	l.data.offset = lane_off + PAGE_SIZE;
	l.data.size = q->capacity;
	l.tail_off = SHMQ_TAIL_OFF;
	l.write_armed_off = SHMQ_WRITE_ARMED_OFF;
	l.head_off = SHMQ_HEAD_OFF(lane->index);
	l.read_armed_off = SHMQ_READ_ARMED_OFF;
	l.state_off = offsetof(struct shmq_status_hdr, state);
	l.read_wake_off = offsetof(struct shmq_status_hdr, read_wake);
	l.write_wake_off = SHMQ_DIR_OFF(lane->index) + offsetof(struct shmq_lane_dir, write_wake);
	l.write_need_off = SHMQ_DIR_OFF(lane->index) + offsetof(struct shmq_lane_dir, write_need);

	if (copy_to_user(argp, &l, sizeof(l)))
		return -EFAULT;
	return 0;
}

/*
 * Fills one region entry; @i counts every entry, only those below @cap are
 * stored in @out.
 */
static void shmq_region_add(struct shmq_region2 *out, u32 cap, u32 *i, u32 kind, u32 index,
			    unsigned long pgoff, unsigned long pages, bool writable)
{
	if (*i < cap) {
		struct shmq_region2 *r = &out[*i];

		memset(r, 0, sizeof(*r));
		r->kind = kind;
		r->index = index;
		r->offset = (u64)pgoff << PAGE_SHIFT;
		r->size = (u64)pages << PAGE_SHIFT;
		r->prot = PROT_READ | (writable ? PROT_WRITE : 0);
	}
	(*i)++;
}

/**
 * shmq_ioc_layout2() - SHMQ_IOC_LAYOUT2: the layout as a list of regions
 * @peer: the caller's peer
 * @argp: struct shmq_layout2 in user memory
 *
 * Lists the status region, the consumer slot, and the lanes this fd may
 * map: a producer only its own, a consumer every one. Takes no lock: the
 * geometry is fixed at creation. Allocates a bounce buffer of at most
 * SHMQ_MAX_PRODUCERS + 2 entries.
 *
 * Return: 0, -EINVAL (reserved or output fields set on input), -ENOMEM,
 * -EFAULT.
 */
int shmq_ioc_layout2(const struct shmq_peer *peer, void __user *argp)
{
	const struct shmq_queue *q = peer->queue;
	bool producer = peer->role == SHMQ_ROLE_PRODUCER;
	struct shmq_region2 *regions = NULL;
	struct shmq_layout2 l;
	u32 cap, i = 0, j;
	int ret = 0;

	if (copy_from_user(&l, argp, sizeof(l)))
		return -EFAULT;
	if (memchr_inv(&l.regions_count, 0, sizeof(l) - offsetof(struct shmq_layout2,
								 regions_count)))
		return -EINVAL;
	cap = min_t(u32, l.regions_cap, q->nr_lanes + 2);
	if (cap) {
		regions = kvcalloc(cap, sizeof(*regions), GFP_KERNEL);
		if (!regions)
			return -ENOMEM;
	}

	shmq_region_add(regions, cap, &i, SHMQ_REGION_STATUS, 0, 0, q->status_pages, false);
	shmq_region_add(regions, cap, &i, SHMQ_REGION_CONSUMER, 0, q->status_pages,
			q->consumer_pages, !producer);
	for (j = 0; j < q->nr_lanes; j++)
		if (!producer || peer->lane->index == j)
			shmq_region_add(regions, cap, &i, SHMQ_REGION_LANE, j,
					shmq_lane_pgoff(q, j), q->lane_pages, producer);

	l.regions_count = i;
	l.features = SHMQ_FEATURES_V3;
	l.queue_features = q->queue_features;
	l.lane_size = q->capacity;
	l.max_message = shmq_max_message(q);
	l.min_capacity = SHMQ_MIN_CAP;
	l.lane_stride = (u64)q->lane_pages << PAGE_SHIFT;
	l.role = peer->role;
	l.page_size = PAGE_SIZE;
	l.record_header_size = sizeof(struct shmq_record);
	l.record_align = SHMQ_RECORD_ALIGN;
	l.max_producers = q->nr_lanes;
	l.max_consumers = 1;
	l.overflow = SHMQ_OVERFLOW_BLOCK;
	l.slot = producer ? peer->lane->index : 0;
	l.tail_off = SHMQ_TAIL_OFF;
	l.write_armed_off = SHMQ_WRITE_ARMED_OFF;
	l.data_off = PAGE_SIZE;
	l.read_armed_off = SHMQ_READ_ARMED_OFF;
	l.head_off = SHMQ_HEAD_OFF(0);
	l.head_stride = SHMQ_LINE;
	l.state_off = offsetof(struct shmq_status_hdr, state);
	l.read_wake_off = offsetof(struct shmq_status_hdr, read_wake);
	l.dir_gen_off = offsetof(struct shmq_status_hdr, dir_gen);
	l.dir_off = SHMQ_DIR_OFF(0);
	l.dir_stride = SHMQ_LINE;

	if (cap && copy_to_user(u64_to_user_ptr(l.regions), regions,
				min(cap, i) * sizeof(*regions)))
		ret = -EFAULT;
	else if (copy_to_user(argp, &l, sizeof(l)))
		ret = -EFAULT;
	kvfree(regions);
	return ret;
}

/* ------------------------------------------------------------------------
 * Lanes as a consumer sees them: who sent, and dropping a corrupt one.
 */

/**
 * shmq_ioc_lane_info() - SHMQ_IOC_LANE_INFO: who holds or held a lane
 * @peer: the caller's peer, a consumer
 * @argp: struct shmq_lane_info in user memory
 *
 * The credentials were taken from the producer's file at open; they are
 * translated into the caller's namespaces now, as SO_PEERCRED translates
 * into the receiver's: an unmapped uid or gid is (u32)-1 (not the overflow
 * id, which a real user may have), a producer invisible in the caller's
 * pid namespace (or exited) is pid 0. Frees drained lanes first, so that a
 * lane the consumer finished shows as free. Takes q->lock.
 *
 * Return: 0, -EACCES (a producer), -EINVAL, -ENOENT (free lane), -EFAULT.
 */
int shmq_ioc_lane_info(struct shmq_peer *peer, void __user *argp)
{
	struct shmq_queue *q = peer->queue;
	struct user_namespace *ns = current_user_ns();
	struct shmq_lane_info info;
	struct shmq_lane *lane;
	kuid_t uid;
	kgid_t gid;
	pid_t pid;

	if (peer->role != SHMQ_ROLE_CONSUMER)
		return -EACCES;
	if (copy_from_user(&info, argp, sizeof(info)))
		return -EFAULT;
	if (info.lane >= q->nr_lanes || info.state || info.generation || info.uid ||
	    info.gid || info.pid || info.bytes_queued ||
	    memchr_inv(info.reserved, 0, sizeof(info.reserved)))
		return -EINVAL;
	shmq_reap_lanes(q);

	lane = &q->lanes[info.lane];
	spin_lock(&q->lock);
	if (!shmq_lane_visible(lane)) {
		spin_unlock(&q->lock);
		return -ENOENT;
	}
	info.state = lane->state;
	info.generation = lane->generation;
	uid = lane->uid;
	gid = lane->gid;
	pid = shmq_pid_nr_locked(q, lane->pid, task_active_pid_ns(current));
	info.bytes_queued = shmq_lane_queued_locked(q, lane);
	spin_unlock(&q->lock);

	info.uid = from_kuid(ns, uid);	/* (uid_t)-1 when unmapped */
	info.gid = from_kgid(ns, gid);
	info.pid = pid;
	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

/**
 * shmq_ioc_lane_drop() - SHMQ_IOC_LANE_DROP: a consumer detaches a lane
 * @peer: the caller's peer, a consumer
 * @argp: struct shmq_lane_ref in user memory
 *
 * For a lane whose records the consumer found corrupt. The lane leaves
 * the directory at once, its pages are zapped from every mapping (its
 * producer, which keeps them, faults them back in; consumers see zeros),
 * its producer's waits and wakes fail with ECONNRESET, and it is freed when
 * the producer has gone. Takes q->pages_rwsem (write), so that no fault
 * inserts the lane's pages for a consumer afterwards, and q->lock.
 *
 * Return: 0, -EACCES (a producer), -EINVAL, -ENOENT (free), -ESTALE (other
 * generation), -EFAULT.
 */
int shmq_ioc_lane_drop(struct shmq_peer *peer, void __user *argp)
{
	struct shmq_queue *q = peer->queue;
	struct shmq_lane_ref ref;
	struct shmq_lane *lane;
	int ret = 0;

	if (peer->role != SHMQ_ROLE_CONSUMER)
		return -EACCES;
	if (copy_from_user(&ref, argp, sizeof(ref)))
		return -EFAULT;
	if (ref.lane >= q->nr_lanes || ref.flags || ref.__pad || ref.reserved[0] ||
	    ref.reserved[1])
		return -EINVAL;

	lane = &q->lanes[ref.lane];
	down_write(&q->pages_rwsem);
	spin_lock(&q->lock);
	if (!shmq_lane_visible(lane))
		ret = -ENOENT;
	else if (lane->generation != ref.generation)
		ret = -ESTALE;
	if (!ret) {
		lane->dropped = true;
		shmq_publish_lane_locked(q, lane);
	}
	spin_unlock(&q->lock);
	up_write(&q->pages_rwsem);
	if (ret)
		return ret;

	shmq_unmap_lane(q, lane);
	dev_info_ratelimited(&q->dev, "lane %u (generation %u) dropped by its consumer %s[%d]\n",
			     lane->index, lane->generation, current->comm,
			     task_tgid_nr(current));
	shmq_wake_waiters(q, &lane->writers, EPOLLERR);
	shmq_reap_lanes(q);
	return 0;
}

/* ------------------------------------------------------------------------
 * Ring file: mmap of the queue's regions with the protections of a role.
 */

/*
 * What a fault at page @pgoff of the ring file maps for @peer: a page of
 * the status or consumer region, or of a lane. A producer gets only its
 * own lane's pages (its mmap was checked); a consumer gets a lane's pages
 * while the lane has them and is not dropped, the queue's zero page
 * otherwise. Caller holds q->pages_rwsem (read).
 */
static struct page *shmq_fault_page(struct shmq_peer *peer, unsigned long pgoff)
{
	struct shmq_queue *q = peer->queue;
	unsigned long tables = q->status_pages + q->consumer_pages;
	struct shmq_lane *lane;
	unsigned long j;

	if (pgoff < tables)
		return q->pages[pgoff];
	j = (pgoff - tables) / q->lane_pages;
	if (j >= q->nr_lanes)
		return NULL;
	lane = &q->lanes[j];
	pgoff = (pgoff - tables) % q->lane_pages;
	if (peer->role == SHMQ_ROLE_PRODUCER)
		return lane == peer->lane && lane->pages ? lane->pages[pgoff] : NULL;
	if (lane->pages && !READ_ONCE(lane->dropped))
		return lane->pages[pgoff];
	return q->zero_page;
}

/*
 * Lanes come and go while mappings live: their pages are inserted here, on
 * first touch, under q->pages_rwsem (read), and zapped from every mapping
 * (q->mapping) when a lane gives them back. The status and consumer
 * regions are inserted at mmap time; this refills only what user space
 * zapped itself (e.g. MADV_DONTNEED). No vma extends past the region it
 * was checked against (VM_DONTEXPAND).
 */
static vm_fault_t shmq_vm_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct shmq_peer *peer = vma->vm_file->private_data;
	struct shmq_queue *q = peer->queue;
	struct page *page;
	int ret;

	down_read(&q->pages_rwsem);
	page = shmq_fault_page(peer, vmf->pgoff);
	ret = page ? vm_insert_page(vma, vmf->address & PAGE_MASK, page) : -EFAULT;
	up_read(&q->pages_rwsem);
	switch (ret) {
	case 0:
	case -EBUSY:	/* a racing fault of another thread inserted it */
		return VM_FAULT_NOPAGE;
	case -ENOMEM:
		return VM_FAULT_OOM;
	default:
		return VM_FAULT_SIGBUS;
	}
}

static const struct vm_operations_struct shmq_vm_ops = {
	.fault = shmq_vm_fault,
};

/**
 * shmq_mmap_span() - which pages a mapping may cover, and who writes them
 * @peer: the caller's peer
 * @first: the mapping's first page offset
 * @size: set to the number of pages it may cover from @first
 * @writer: set to the role that writes them
 *
 * A mapping starts at a region: the status region, the consumer region,
 * a lane's producer page or a lane's data. From a lane's producer page a
 * producer may map its whole lane (SHMQ_QUEUE_SPSC: that page only, as
 * SHMQ_IOC_LAYOUT describes it), a consumer every lane from there on.
 *
 * Return: 0, -EINVAL (no region starts there), -EACCES (another
 * producer's lane).
 */
static int shmq_mmap_span(const struct shmq_peer *peer, unsigned long first,
			  unsigned long *size, u32 *writer)
{
	const struct shmq_queue *q = peer->queue;
	unsigned long tables = q->status_pages + q->consumer_pages;
	bool lanes = q->queue_features & SHMQ_QUEUE_LANES;
	unsigned long j, k;

	if (first == 0) {
		*size = q->status_pages;
		*writer = 0;
		return 0;
	}
	if (first == q->status_pages) {
		*size = q->consumer_pages;
		*writer = SHMQ_ROLE_CONSUMER;
		return 0;
	}
	if (first < tables)
		return -EINVAL;
	j = (first - tables) / q->lane_pages;
	k = (first - tables) % q->lane_pages;
	if (j >= q->nr_lanes || k > 1)
		return -EINVAL;
	*writer = SHMQ_ROLE_PRODUCER;
	if (peer->role == SHMQ_ROLE_PRODUCER && peer->lane->index != j)
		return -EACCES;
	if (k == 1)
		*size = q->lane_pages - 1;
	else if (!lanes)
		*size = 1;
	else if (peer->role == SHMQ_ROLE_PRODUCER)
		*size = q->lane_pages;
	else
		*size = (q->nr_lanes - j) * q->lane_pages;
	return 0;
}

/**
 * shmq_ring_mmap() - map a region of the ring
 * @file: the ring file
 * @vma: the new mapping
 *
 * The mapping must start at a region (shmq_mmap_span()) and end within
 * what may be mapped from there, be shared, not executable, and writable
 * only where the caller's role writes. Read-only mappings lose VM_MAYWRITE
 * so that mprotect(), /proc/PID/mem and process_vm_writev() cannot write
 * them. The status and consumer regions are inserted now; lanes fault in
 * (shmq_vm_fault()). The mm core calls it with the caller's mmap_lock held
 * for writing.
 *
 * Return: 0, -EINVAL (bad offset or length, not MAP_SHARED), -EPERM
 * (PROT_EXEC), -EACCES (PROT_WRITE not allowed for the role, another
 * producer's lane) or an error from inserting the pages.
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

	ret = shmq_mmap_span(peer, first, &size, &writer);
	if (ret)
		return ret;
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
	shmq_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP | VM_MIXEDMAP);
	vma->vm_ops = &shmq_vm_ops;

	if (first >= q->status_pages + q->consumer_pages)
		return 0;
	num = count;
	ret = vm_insert_pages(vma, vma->vm_start, q->pages + first, &num);
	if (!ret && num)
		ret = -EFAULT;
	return ret;
}

/*
 * The last close of a ring file (and so its last mapping): see
 * shmq_peer_put().
 */
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
	.poll		= shmq_queue_poll,
	.flush		= shmq_file_flush,
	.release	= shmq_ring_release,
};

/**
 * shmq_ioc_ring_fd() - create a ring file for mmap
 * @peer: the caller's peer
 * @arg: fd flags, 0 or O_CLOEXEC
 *
 * Return: the new fd, or -EINVAL for other flags, or a negative errno.
 */
long shmq_ioc_ring_fd(struct shmq_peer *peer, unsigned long arg)
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
	/*
	 * Every ring file of the queue shares the queue's address space, so
	 * that a lane's pages can be zapped from all of their mappings. The
	 * host stays the anon inode, as for the file's own mapping.
	 */
	q->mapping.host = file_inode(file);
	file->f_mapping = &q->mapping;
	fd_install(fd, file);
	return fd;

err_getfile:
	put_device(&q->dev);
	shmq_peer_put(peer);	/* not the last: the queue file holds one */
	put_unused_fd(fd);
	return ret;
}
