// SPDX-License-Identifier: GPL-2.0
/*
 * shmq - a queue's object and pages, its peers, and the queue file.
 *
 * Owns the lifetime of struct shmq_queue (allocation, the pages allocated
 * with it, the device release callback that frees them), the lanes (claimed
 * and given pages at a producer's open, draining after it, freed by
 * shmq_reap_lanes() once drained or dropped), the attachment of peers (open
 * of /dev/shmq/NAME with the opener's credentials, the last shmq_peer_put()
 * that detaches, the state word and the lane directory of the status
 * region) and the queue file's operations, whose ioctls are handled in
 * ring.c (layout, lanes, ring fd) and wait.c (wait, wake, interrupt).
 *
 * Locks: queue->pages_rwsem (write) around setting or clearing a lane's
 * pages, then queue->lock (spinlock) for the lane's fields, the attachment
 * counts and the status region; functions named *_locked() expect q->lock
 * held. Pages are allocated, zapped and freed with neither held. The
 * queue's lifetime is the reference count of its struct device; a peer's
 * is peer->ref (refcount_t, no lock).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/cdev.h>
#include <linux/compat.h>
#include <linux/cred.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/fcntl.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/idr.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/pagemap.h>
#include <linux/rwsem.h>
#include <linux/pid.h>
#include <linux/poll.h>
#include <linux/rbtree.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/wait.h>

#include "shmq_internal.h"

/* ------------------------------------------------------------------------
 * Queue lifetime.
 */

static void shmq_free_page_array(struct page **pages, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		if (pages[i])
			__free_page(pages[i]);
	kvfree(pages);
}

/**
 * shmq_queue_release() - free a queue after its last reference
 * @dev: the queue's device
 *
 * Runs when the namespace, every queue file and every ring file (and so
 * every mapping) have let go of the queue, or when a creation failed after
 * shmq_queue_new(). Lanes still draining give their pages back here. The
 * last statement lets module exit proceed.
 */
static void shmq_queue_release(struct device *dev)
{
	struct shmq_queue *q = shmq_dev_to_queue(dev);
	unsigned int j;

	for (j = 0; q->lanes && j < q->nr_lanes; j++) {
		struct shmq_lane *lane = &q->lanes[j];

		if (lane->pages && !lane->persistent)
			shmq_free_page_array(lane->pages, q->lane_pages);
		put_pid(lane->pid);
	}
	kvfree(q->lanes);
	if (q->pages)
		shmq_free_page_array(q->pages, q->nr_pages);
	if (q->zero_page)
		__free_page(q->zero_page);
	put_pid(q->cons_pid);
	if (q->minor >= 0)
		ida_free(&shmq_minor_ida, q->minor);
	atomic64_sub(q->accounted, &shmq_total_memory);
	kfree(q);
	if (atomic_dec_and_test(&shmq_queues_alive))
		complete(&shmq_all_released);
}

/* Pages of the status or the consumer region for @nr_lanes lanes. */
static unsigned int shmq_table_pages(unsigned int nr_lanes)
{
	return DIV_ROUND_UP((nr_lanes + 1) * SHMQ_LINE, PAGE_SIZE);
}

/**
 * shmq_queue_bytes() - the memory a queue can take at most
 * @capacity: data bytes of each lane (a valid capacity)
 * @nr_lanes: 1 for SHMQ_IOC_CREATE's queue, max_producers for CREATE2's
 *	(whose lanes also need one zero page for the consumers' view of free
 *	lanes)
 *
 * Return: bytes of pages with every lane allocated; U64_MAX on overflow
 * (then above any limit).
 */
u64 shmq_queue_bytes(u64 capacity, unsigned int nr_lanes)
{
	u64 lane = capacity + PAGE_SIZE, bytes;

	if (check_mul_overflow(lane, (u64)nr_lanes, &bytes) ||
	    check_add_overflow(bytes, (u64)(2 * shmq_table_pages(nr_lanes)) << PAGE_SHIFT,
			       &bytes))
		return U64_MAX;
	return nr_lanes > 1 ? bytes + PAGE_SIZE : bytes;
}

/**
 * shmq_queue_new() - allocate a queue's object, without pages or a name
 * @name: valid name (see shmq_check_name())
 * @capacity: valid capacity (see shmq_check_capacity())
 * @nr_lanes: 1..SHMQ_MAX_PRODUCERS
 * @queue_features: SHMQ_QUEUE_SPSC (one persistent lane) or SHMQ_QUEUE_LANES
 *
 * Initializes the device, so that put_device(&q->dev) undoes everything
 * from here on (shmq_queue_release()). Charged to the caller's memory
 * cgroup, as the pages will be.
 *
 * Return: the queue, or ERR_PTR(-ENOMEM).
 */
struct shmq_queue *shmq_queue_new(const char *name, u64 capacity, unsigned int nr_lanes,
				  u64 queue_features)
{
	struct shmq_queue *q;
	unsigned int j;
	int ret;

	q = kzalloc(sizeof(*q), GFP_KERNEL_ACCOUNT);
	if (!q)
		return ERR_PTR(-ENOMEM);
	strscpy(q->name, name, sizeof(q->name));
	INIT_LIST_HEAD(&q->node);
	q->queue_features = queue_features;
	q->capacity = capacity;
	q->nr_lanes = nr_lanes;
	q->status_pages = shmq_table_pages(nr_lanes);
	q->consumer_pages = shmq_table_pages(nr_lanes);
	q->lane_pages = 1 + (capacity >> PAGE_SHIFT);
	q->minor = -1;
	q->stats.creator_uid = current_euid();
	q->stats.created_at = ktime_get_real_seconds();
	spin_lock_init(&q->lock);
	init_rwsem(&q->pages_rwsem);
	address_space_init_once(&q->mapping);
	shmq_waiters_init(&q->readers);

	atomic_inc(&shmq_queues_alive);
	device_initialize(&q->dev);
	q->dev.class = shmq_class;
	q->dev.release = shmq_queue_release;
	ret = dev_set_name(&q->dev, "%s", name);
	if (ret)
		goto err;
	ret = -ENOMEM;
	q->lanes = kvcalloc(nr_lanes, sizeof(*q->lanes), GFP_KERNEL_ACCOUNT);
	if (!q->lanes)
		goto err;
	for (j = 0; j < nr_lanes; j++) {
		q->lanes[j].index = j;
		shmq_waiters_init(&q->lanes[j].writers);
	}
	return q;

err:
	put_device(&q->dev);
	return ERR_PTR(ret);
}

/* The kernel address of byte @off of the region starting at page @first. */
static void *shmq_region_addr(struct shmq_queue *q, unsigned long first, size_t off)
{
	return page_address(q->pages[first + (off >> PAGE_SHIFT)]) + offset_in_page(off);
}

/*
 * Ring pages: zeroed, charged to the caller's memory cgroup, and allowed to
 * fail: __GFP_RETRY_MAYFAIL makes a cgroup at its memory.max (or a system
 * out of memory) answer ENOMEM to the create or open instead of invoking
 * the OOM killer, which would kill the caller or somebody else.
 */
#define SHMQ_GFP_PAGES	(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

/*
 * Allocates @n zeroed pages charged to the caller's memory cgroup, stopping
 * at a fatal signal. Return: the array, or ERR_PTR(-ENOMEM / -EINTR).
 */
static struct page **shmq_alloc_page_array(unsigned long n)
{
	struct page **pages;
	unsigned long i;
	int ret = -ENOMEM;

	/*
	 * Raised limits let a capacity through whose page array alone is
	 * beyond any allocation (kvmalloc WARNs above INT_MAX bytes): that is
	 * ENOMEM for the caller, not a kernel warning.
	 */
	pages = kvcalloc(n, sizeof(*pages), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!pages)
		return ERR_PTR(-ENOMEM);
	for (i = 0; i < n; i++) {
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			goto err;
		}
		pages[i] = alloc_page(SHMQ_GFP_PAGES);
		if (!pages[i])
			goto err;
		cond_resched();
	}
	return pages;

err:
	shmq_free_page_array(pages, n);
	return ERR_PTR(ret);
}

/* Points the lane's tail at its producer page. */
static void shmq_lane_set_pages(struct shmq_lane *lane, struct page **pages)
{
	lane->pages = pages;
	lane->tail = pages ? page_address(pages[0]) + SHMQ_TAIL_OFF : NULL;
}

/**
 * shmq_queue_alloc_pages() - reserve the memory and allocate a queue's pages
 * @q: from shmq_queue_new()
 *
 * Reserves the worst case (every lane allocated) in shmq_total_memory and
 * allocates the status and consumer regions, plus the one persistent lane
 * of a SHMQ_QUEUE_SPSC queue. Without any global lock held: a large queue
 * takes long to allocate, and a fatal signal stops it. The pages are zeroed
 * and charged to the caller's memory cgroup. What was reserved or allocated
 * is returned by shmq_queue_release().
 *
 * Return: 0, -ENOSPC (max_total_memory, logged), -ENOMEM, -EINTR.
 */
int shmq_queue_alloc_pages(struct shmq_queue *q)
{
	bool persistent = q->queue_features & SHMQ_QUEUE_SPSC;
	unsigned long tables = q->status_pages + q->consumer_pages;
	u64 bytes = shmq_queue_bytes(q->capacity, q->nr_lanes);
	struct page **pages;
	unsigned int j;
	int ret;

	ret = shmq_reserve_memory(q->name, bytes);
	if (ret)
		return ret;
	q->accounted = bytes;

	pages = shmq_alloc_page_array(tables + (persistent ? q->lane_pages : 0));
	if (IS_ERR(pages))
		return PTR_ERR(pages);
	q->pages = pages;
	q->nr_pages = tables + (persistent ? q->lane_pages : 0);
	if (!persistent) {
		q->zero_page = alloc_page(SHMQ_GFP_PAGES);
		if (!q->zero_page)
			return -ENOMEM;
	}

	q->status = shmq_region_addr(q, 0, 0);
	q->status->nr_lanes = q->nr_lanes;
	q->read_armed = shmq_region_addr(q, q->status_pages, SHMQ_READ_ARMED_OFF);
	q->readers.wake_word = &q->status->read_wake;
	for (j = 0; j < q->nr_lanes; j++) {
		struct shmq_lane *lane = &q->lanes[j];

		lane->dir = shmq_region_addr(q, 0, SHMQ_DIR_OFF(j));
		lane->head = shmq_region_addr(q, q->status_pages, SHMQ_HEAD_OFF(j));
		lane->writers.wake_word = &lane->dir->write_wake;
		lane->writers.need_word = &lane->dir->write_need;
	}
	if (persistent) {
		q->lanes[0].persistent = true;
		shmq_lane_set_pages(&q->lanes[0], q->pages + tables);
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Peers and lanes.
 */

/* Writes the state word of the status page. Caller holds q->lock. */
void shmq_publish_state_locked(struct shmq_queue *q)
{
	u32 state = 0;

	lockdep_assert_held(&q->lock);

	if (q->nr_producers)
		state |= SHMQ_STATE_PRODUCER;
	if (q->cons_attached)
		state |= SHMQ_STATE_CONSUMER;
	if (q->destroyed)
		state |= SHMQ_STATE_DESTROYED;
	WRITE_ONCE(q->status->state, state);
}

/*
 * Publishes a lane's directory entry, then a new dir_gen with release
 * semantics: a consumer that reads dir_gen (acquire) and then the entry
 * sees at least this entry. A dropped lane shows as free. Caller holds
 * q->lock.
 */
void shmq_publish_lane_locked(struct shmq_queue *q, struct shmq_lane *lane)
{
	lockdep_assert_held(&q->lock);

	WRITE_ONCE(lane->dir->state, lane->dropped ? SHMQ_LANE_FREE : lane->state);
	WRITE_ONCE(lane->dir->generation, lane->generation);
	smp_store_release(&q->status->dir_gen, q->status->dir_gen + 1);
}

/**
 * shmq_pid_nr_locked() - the number of a peer's thread group, if it lives
 * @q: the queue, lock held
 * @pid: the opener's thread group, or NULL
 * @ns: the pid namespace to show it in
 *
 * The attachment may outlive its opener (a child inherited the file and
 * the mappings): then the opener's number is shown no longer, because the
 * system may already have handed it to an unrelated process. Caller holds
 * q->lock; takes rcu_read_lock() to look at the task.
 *
 * Return: the number in @ns, or 0 when @pid is NULL, has exited or is not
 * visible in @ns.
 */
pid_t shmq_pid_nr_locked(struct shmq_queue *q, struct pid *pid, struct pid_namespace *ns)
{
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

/* The opener of the lowest attached lane, or NULL. Caller holds q->lock. */
struct pid *shmq_first_producer_pid_locked(struct shmq_queue *q)
{
	unsigned int j;

	lockdep_assert_held(&q->lock);
	for (j = 0; j < q->nr_lanes && q->nr_producers; j++)
		if (q->lanes[j].producer && q->lanes[j].state == SHMQ_LANE_ATTACHED)
			return q->lanes[j].pid;
	return NULL;
}

/* Zaps lane @lane's pages from every mapping of the queue. */
void shmq_unmap_lane(struct shmq_queue *q, const struct shmq_lane *lane)
{
	unmap_mapping_range(&q->mapping, (loff_t)shmq_lane_pgoff(q, lane->index) << PAGE_SHIFT,
			    (loff_t)q->lane_pages << PAGE_SHIFT, 1);
}

/*
 * Whether the lane can give its pages back: not persistent, no producer,
 * and dropped or drained (its last tail consumed). Caller holds q->lock.
 */
static bool shmq_lane_reapable_locked(struct shmq_queue *q, struct shmq_lane *lane)
{
	struct shmq_counters c;

	lockdep_assert_held(&q->lock);
	if (lane->persistent || !lane->pages || lane->producer)
		return false;
	if (lane->dropped)
		return true;
	if (lane->state != SHMQ_LANE_DRAINING)
		return false;
	shmq_read_counters(lane, &c);
	return c.stable && c.tail == c.head;
}

/**
 * shmq_reap_lanes() - free the lanes whose producer has gone and whose
 * messages were all consumed (or that a consumer dropped)
 * @q: the queue
 *
 * Called where the kernel looks anyway and may sleep: a consumer's wait,
 * wake and lane calls, a producer's open that finds no free lane, every
 * detach. A freed lane leaves the directory (free, dir_gen bumped) before
 * its pages are zapped from every mapping and freed. Takes
 * q->pages_rwsem (write) and q->lock, one lane at a time; zaps and frees
 * with neither held.
 */
void shmq_reap_lanes(struct shmq_queue *q)
{
	struct page **pages;
	struct shmq_lane *lane;
	struct pid *pid;
	unsigned int j;
	bool reapable;

	if (q->queue_features & SHMQ_QUEUE_SPSC)
		return;
	for (j = 0; j < q->nr_lanes; j++) {
		lane = &q->lanes[j];
		/*
		 * Unlocked peek, then the counters under q->lock alone: the
		 * fault handler's lock is taken only for a lane that is done.
		 */
		if (!READ_ONCE(lane->pages) || READ_ONCE(lane->producer))
			continue;
		spin_lock(&q->lock);
		reapable = shmq_lane_reapable_locked(q, lane);
		spin_unlock(&q->lock);
		if (!reapable)
			continue;
		down_write(&q->pages_rwsem);
		spin_lock(&q->lock);
		if (!shmq_lane_reapable_locked(q, lane)) {
			spin_unlock(&q->lock);
			up_write(&q->pages_rwsem);
			continue;
		}
		pages = lane->pages;
		shmq_lane_set_pages(lane, NULL);
		lane->state = SHMQ_LANE_FREE;
		lane->dropped = false;
		pid = lane->pid;
		lane->pid = NULL;
		shmq_publish_lane_locked(q, lane);
		spin_unlock(&q->lock);
		up_write(&q->pages_rwsem);

		/*
		 * No fault inserts these pages any more (pages_rwsem); the
		 * ones inserted before are zapped here, so nobody's mapping
		 * shows this producer's data after the lane was reused.
		 */
		shmq_unmap_lane(q, lane);
		shmq_free_page_array(pages, q->lane_pages);
		put_pid(pid);
	}
}

/*
 * Takes the lowest free lane of a SHMQ_QUEUE_LANES queue for @peer: claims
 * it under q->lock (lane->producer set, still free for everybody else),
 * allocates its pages in the opener's context, installs them (the tail
 * starts at the consumer's head, so that the lane continues where the
 * consumer is), zaps the zero pages a consumer may have mapped there, and
 * only then shows it as attached. Takes q->lock, q->pages_rwsem.
 *
 * Return: the lane, or ERR_PTR(-EBUSY / -ENODEV / -ENOMEM / -EINTR).
 */
static struct shmq_lane *shmq_claim_lane(struct shmq_queue *q, struct shmq_peer *peer)
{
	struct shmq_lane *lane = NULL;
	struct page **pages;
	unsigned int j, tries;

	for (tries = 0; !lane && tries < 2; tries++) {
		if (tries)
			shmq_reap_lanes(q);
		spin_lock(&q->lock);
		if (q->destroyed) {
			spin_unlock(&q->lock);
			return ERR_PTR(-ENODEV);
		}
		for (j = 0; j < q->nr_lanes; j++) {
			if (q->lanes[j].state == SHMQ_LANE_FREE && !q->lanes[j].producer) {
				lane = &q->lanes[j];
				lane->producer = peer;
				break;
			}
		}
		spin_unlock(&q->lock);
	}
	if (!lane)
		return ERR_PTR(-EBUSY);

	pages = shmq_alloc_page_array(q->lane_pages);
	if (IS_ERR(pages)) {
		spin_lock(&q->lock);
		lane->producer = NULL;
		spin_unlock(&q->lock);
		return ERR_CAST(pages);
	}
	down_write(&q->pages_rwsem);
	spin_lock(&q->lock);
	shmq_lane_set_pages(lane, pages);
	/* The consumer owns head; a hostile one only confuses itself. */
	WRITE_ONCE(*lane->tail, READ_ONCE(*lane->head));
	spin_unlock(&q->lock);
	up_write(&q->pages_rwsem);
	shmq_unmap_lane(q, lane);
	return lane;
}

/*
 * Attaches a producer: a lane for it (a free one, or the persistent lane
 * when nobody holds it), its credentials, a new generation. Takes q->lock
 * (and what shmq_claim_lane() takes).
 *
 * Return: 0, -EBUSY, -ENODEV, -ENOMEM, -EINTR.
 */
static int shmq_attach_producer(struct shmq_queue *q, struct shmq_peer *peer,
				const struct cred *cred)
{
	bool lanes = q->queue_features & SHMQ_QUEUE_LANES;
	struct shmq_lane *lane;
	struct pid *old_pid;

	if (lanes) {
		lane = shmq_claim_lane(q, peer);
		if (IS_ERR(lane))
			return PTR_ERR(lane);
	} else {
		lane = &q->lanes[0];
	}

	spin_lock(&q->lock);
	if (!lanes && (q->destroyed || lane->producer)) {
		int ret = q->destroyed ? -ENODEV : -EBUSY;

		spin_unlock(&q->lock);
		return ret;
	}
	/* A destroy after the claim: the lane attaches and is never seen. */
	lane->producer = peer;
	lane->state = SHMQ_LANE_ATTACHED;
	lane->dropped = false;
	lane->generation = lane->generation + 1 ? lane->generation + 1 : 1;
	lane->uid = cred->euid;
	lane->gid = cred->egid;
	old_pid = lane->pid;
	lane->pid = get_pid(task_tgid(current));
	q->nr_producers++;
	peer->lane = lane;
	peer->waiters = &lane->writers;
	peer->seen_departures = q->cons_departures;
	shmq_publish_lane_locked(q, lane);
	shmq_publish_state_locked(q);
	spin_unlock(&q->lock);
	put_pid(old_pid);

	/* A consumer waiting for the directory to change (SHMQ_WAIT_DIR_GEN). */
	if (lanes)
		shmq_wake_waiters(q, &q->readers, EPOLLIN | EPOLLRDNORM);
	return 0;
}

/* Attaches the consumer. Takes q->lock. Return: 0, -EBUSY, -ENODEV. */
static int shmq_attach_consumer(struct shmq_queue *q, struct shmq_peer *peer)
{
	int ret = 0;

	spin_lock(&q->lock);
	if (q->destroyed) {
		ret = -ENODEV;
	} else if (q->cons_attached) {
		ret = -EBUSY;
	} else {
		q->cons_attached = true;
		q->cons_pid = get_pid(task_tgid(current));
		peer->waiters = &q->readers;
		peer->seen_departures = q->prod_departures;
		shmq_publish_state_locked(q);
	}
	spin_unlock(&q->lock);
	return ret;
}

/**
 * shmq_peer_put() - drop a reference to a peer, detaching it at the last
 * @peer: the peer
 *
 * The caller still holds its device reference, so the queue is valid. No
 * SHMQ_IOC_WAIT of this peer can be in progress (it holds the file). At the
 * last reference takes q->lock: a producer's lane starts draining (its
 * committed messages are still delivered) and the consumer is woken; a
 * consumer's departure wakes every producer. Then frees the lanes that are
 * done (shmq_reap_lanes()). May sleep.
 */
void shmq_peer_put(struct shmq_peer *peer)
{
	struct shmq_queue *q = peer->queue;
	struct shmq_lane *lane = peer->lane;
	struct pid *pid = NULL;
	__poll_t key;

	if (!refcount_dec_and_test(&peer->ref))
		return;

	spin_lock(&q->lock);
	if (peer->side == SHMQ_PROD) {
		lane->producer = NULL;
		lane->state = SHMQ_LANE_DRAINING;
		q->nr_producers--;
		q->prod_departures++;
		shmq_publish_lane_locked(q, lane);
		/* No file of this lane is left: drop stale poller marks. */
		shmq_publish_waiters_locked(&lane->writers);
		key = q->nr_producers ? EPOLLIN | EPOLLRDNORM : EPOLLHUP;
	} else {
		q->cons_attached = false;
		q->cons_departures++;
		pid = q->cons_pid;
		q->cons_pid = NULL;
		shmq_publish_waiters_locked(&q->readers);
		key = EPOLLHUP;
	}
	shmq_publish_state_locked(q);
	spin_unlock(&q->lock);

	put_pid(pid);
	if (peer->side == SHMQ_PROD)
		shmq_wake_waiters(q, &q->readers, key);
	else
		shmq_wake_writers(q, key);
	kfree(peer);
	shmq_reap_lanes(q);
}

/* ------------------------------------------------------------------------
 * Queue file: open, release, ioctls (handled in ring.c and wait.c); its
 * flush and poll are in wait.c.
 */

/**
 * shmq_queue_open() - attach a producer (O_WRONLY) or consumer (O_RDONLY)
 * @inode: the /dev/shmq/NAME inode
 * @file: the new queue file
 *
 * A producer's credentials are its file's (those of the open), as for
 * SO_PEERCRED. Takes q->lock to attach, and for a lane queue allocates the
 * producer's lane in its context.
 *
 * Return: 0, -EINVAL for O_RDWR, -EBUSY if the role (or every lane) is
 * taken, -ENODEV if the queue was destroyed, -ENOMEM, -EINTR.
 */
static int shmq_queue_open(struct inode *inode, struct file *file)
{
	struct shmq_queue *q = container_of(inode->i_cdev, struct shmq_queue, cdev);
	struct shmq_peer *peer;
	u32 role;
	int ret;

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

	peer = kzalloc(sizeof(*peer), GFP_KERNEL);
	if (!peer)
		return -ENOMEM;
	refcount_set(&peer->ref, 1);
	peer->queue = q;
	peer->role = role;
	peer->side = role - 1;

	get_device(&q->dev);
	if (role == SHMQ_ROLE_PRODUCER)
		ret = shmq_attach_producer(q, peer, file->f_cred);
	else
		ret = shmq_attach_consumer(q, peer);
	if (ret)
		goto err_attach;

	file->private_data = peer;
	return nonseekable_open(inode, file);

err_attach:
	put_device(&q->dev);
	kfree(peer);
	return ret;
}

/*
 * The last close of a queue file: drops its peer reference (see
 * shmq_peer_put()).
 */
static int shmq_queue_file_release(struct inode *inode, struct file *file)
{
	struct shmq_peer *peer = file->private_data;
	struct shmq_queue *q = peer->queue;

	shmq_peer_put(peer);
	put_device(&q->dev);
	return 0;
}

static long shmq_queue_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct shmq_peer *peer = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case SHMQ_IOC_LAYOUT:
		return shmq_ioc_layout(peer, argp);
	case SHMQ_IOC_LAYOUT2:
		return shmq_ioc_layout2(peer, argp);
	case SHMQ_IOC_LANE_INFO:
		return shmq_ioc_lane_info(peer, argp);
	case SHMQ_IOC_LANE_DROP:
		return shmq_ioc_lane_drop(peer, argp);
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

const struct file_operations shmq_queue_fops = {
	.owner		= THIS_MODULE,
	.open		= shmq_queue_open,
	.flush		= shmq_file_flush,
	.release	= shmq_queue_file_release,
	.unlocked_ioctl	= shmq_queue_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.poll		= shmq_queue_poll,
};
