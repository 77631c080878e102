// SPDX-License-Identifier: GPL-2.0
/*
 * shmq - the namespace of queues and the control device /dev/shmq-control.
 *
 * Owns queue names and the limits a creation is checked against
 * (max_queue_size, max_queues, max_total_memory), the creation of a queue
 * (hold the name, allocate the pages without the lock, register the node),
 * minor numbers, destruction, and the SHMQ_IOC_CREATE and SHMQ_IOC_DESTROY
 * ioctls of the control device.
 *
 * Locks: shmq_ns_lock (mutex) protects shmq_queues, shmq_nr_queues (also
 * read without it, READ_ONCE), shmq_next_minor and every insertion and
 * removal; functions named *_locked() expect it held. It is never held
 * across the allocation of a queue's pages. queue->lock (spinlock) is
 * taken inside it, in shmq_destroy_locked(), never the other way round.
 * shmq_total_memory is reserved without any lock (compare-and-exchange).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/cdev.h>
#include <linux/compat.h>
#include <linux/cred.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mutex.h>
#include <linux/ratelimit.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/poll.h>
#include <linux/uaccess.h>

#include "shmq_internal.h"

/* ------------------------------------------------------------------------
 * Names, limits and the namespace.
 */

/*
 * The queue called @name in the namespace, or NULL. Caller holds
 * shmq_ns_lock.
 */
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
int shmq_check_name(const char *name)
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
int shmq_check_capacity(u64 capacity)
{
	if (capacity < SHMQ_MIN_CAP || (capacity & (capacity - 1)))
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
int shmq_reserve_memory(const char *name, u64 bytes)
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

/**
 * shmq_alloc_minor_locked() - the next free minor after the last one given
 *
 * Minors are handed out cyclically, so that the number of a destroyed
 * queue is reused as late as possible: a stale node (a static /dev, a
 * copied node, a bind mount made before the destroy) then reaches no
 * queue rather than the next one created. The cursor starts at a random
 * minor at load, so that a reload does not hand out the old numbers first.
 *
 * Caller holds shmq_ns_lock, which also protects the cursor.
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

/*
 * Undoes shmq_queue_hold_name_locked() for a creation that failed. Caller
 * holds shmq_ns_lock.
 */
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
 * Caller holds shmq_ns_lock.
 *
 * Return: 0, or an error of shmq_check_room_locked() or
 * shmq_queue_register_locked() (the caller then drops its reference).
 */
int shmq_add_locked(struct shmq_queue *q)
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
 * @nr_lanes: lanes, 1..SHMQ_MAX_PRODUCERS
 * @queue_features: SHMQ_QUEUE_SPSC (SHMQ_IOC_CREATE) or SHMQ_QUEUE_LANES
 *
 * The name is held (and counted) under shmq_ns_lock, the pages are
 * allocated without it, and the node is registered under it again: so
 * creating a large queue blocks nobody else, and a fatal signal ends it.
 * Takes shmq_ns_lock twice: killable to hold the name, not killable to
 * register or drop it.
 *
 * Return: 0 on success, -EEXIST, -ENOSPC (max_queues, max_total_memory or
 * no minor left), -ENOMEM, -EINTR, or an error from device registration.
 */
static int shmq_create(const char *name, u64 capacity, unsigned int nr_lanes,
		       u64 queue_features)
{
	struct shmq_queue *q;
	int ret;

	q = shmq_queue_new(name, capacity, nr_lanes, queue_features);
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
 * are gone. Drops the namespace's reference. Takes q->lock inside
 * shmq_ns_lock (and again through shmq_wake_side()).
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

	shmq_wake_writers(q, EPOLLERR | EPOLLHUP);
	shmq_wake_waiters(q, &q->readers, EPOLLERR | EPOLLHUP);

	cdev_device_del(&q->cdev, &q->dev);
	put_device(&q->dev);
}

/*
 * Module exit: destroys every queue left in the namespace. Takes
 * shmq_ns_lock.
 */
void shmq_destroy_all(void)
{
	struct shmq_queue *q, *tmp;

	mutex_lock(&shmq_ns_lock);
	list_for_each_entry_safe(q, tmp, &shmq_queues, node)
		shmq_destroy_locked(q);
	mutex_unlock(&shmq_ns_lock);
}

/* ------------------------------------------------------------------------
 * Control device /dev/shmq-control.
 */

/**
 * shmq_ioc_create() - SHMQ_IOC_CREATE: a queue of one persistent lane
 * @argp: struct shmq_create_args in user memory
 *
 * Takes shmq_ns_lock through shmq_create().
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
	return shmq_create(args.name, args.capacity, 1, SHMQ_QUEUE_SPSC);
}

/**
 * shmq_ioc_create2() - SHMQ_IOC_CREATE2: a queue of max_producers lanes
 * @argp: struct shmq_create2_args in user memory
 *
 * The fan-out and ownership fields are in the ABI already and refused until
 * the module offers them (SHMQ_FEAT_FANOUT, _POLICIES, _OWNER). Takes
 * shmq_ns_lock through shmq_create().
 *
 * Return: 0, -EFAULT, -EINVAL, -ENAMETOOLONG, -EFBIG, or an error of
 * shmq_create() (-EEXIST, -ENOSPC, -ENOMEM, -EINTR).
 */
static int shmq_ioc_create2(void __user *argp)
{
	unsigned int ceiling = min_t(unsigned int, READ_ONCE(shmq_max_producers),
				     SHMQ_MAX_PRODUCERS);
	struct shmq_create2_args args;
	unsigned int lanes;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.lag_limit || args.max_consumers > 1 ||
	    args.overflow != SHMQ_OVERFLOW_BLOCK || args.mode || args.gid != (__u32)-1 ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	lanes = args.max_producers ? args.max_producers :
		min_t(unsigned int, SHMQ_DEFAULT_PRODUCERS, ceiling);
	if (!lanes || lanes > ceiling)
		return -EINVAL;
	ret = shmq_check_name(args.name);
	if (ret)
		return ret;
	ret = shmq_check_capacity(args.lane_size);
	if (ret)
		return ret;
	return shmq_create(args.name, args.lane_size, lanes, SHMQ_QUEUE_LANES);
}

/**
 * shmq_ioc_destroy() - SHMQ_IOC_DESTROY
 * @argp: struct shmq_destroy_args in user memory
 *
 * Takes shmq_ns_lock, killable.
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
	case SHMQ_IOC_CREATE2:
		if (!(file->f_mode & FMODE_WRITE))
			return -EBADF;
		return shmq_ioc_create2(argp);
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

struct miscdevice shmq_control = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "shmq-control",
	.fops	= &shmq_control_fops,
	.mode	= 0600,
};
