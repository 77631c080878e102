// SPDX-License-Identifier: GPL-2.0
/*
 * shmq - sysfs: /sys/class/shmq/NAME/ and /sys/module/shmq/usage/.
 *
 * Owns the attributes of each queue's class device (docs/abi.md defines
 * each one), the class's devnode callback (/dev/shmq/NAME, mode 0600) and
 * the global usage group (the limits themselves are the module parameters).
 *
 * Locks: queue->lock is taken to read attachment state and openers; the
 * counters (stats, shmq_total_memory) are atomic64_t and the ring counters
 * are read with READ_ONCE(), under no lock; shmq_nr_queues is read with
 * READ_ONCE() without shmq_ns_lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/cred.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/uidgid.h>
#include <linux/user_namespace.h>

#include "shmq_internal.h"

/* ------------------------------------------------------------------------
 * sysfs attributes of /sys/class/shmq/NAME.
 */

static ssize_t capacity_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", shmq_dev_to_queue(dev)->capacity);
}
static DEVICE_ATTR_RO(capacity);

/*
 * A sum over the lanes shown to the consumer (the one lane of a
 * SHMQ_QUEUE_SPSC queue): @what 0 bytes queued (clamped per lane), 1 the
 * tails, 2 the heads. Takes q->lock, which keeps the lanes' pages.
 */
static u64 shmq_sum_lanes(struct shmq_queue *q, int what)
{
	u64 sum = 0;
	unsigned int j;

	spin_lock(&q->lock);
	for (j = 0; j < q->nr_lanes; j++) {
		struct shmq_lane *lane = &q->lanes[j];

		if (!shmq_lane_visible(lane))
			continue;
		if (what == 0)
			sum += shmq_lane_queued_locked(q, lane);
		else
			sum += what == 1 ? READ_ONCE(*lane->tail) : READ_ONCE(*lane->head);
	}
	spin_unlock(&q->lock);
	return sum;
}

static ssize_t bytes_used_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", shmq_sum_lanes(shmq_dev_to_queue(dev), 0));
}
static DEVICE_ATTR_RO(bytes_used);

/* How many peers of that side are attached. Takes q->lock. */
static ssize_t shmq_show_attached(struct device *dev, char *buf, unsigned int side)
{
	struct shmq_queue *q = shmq_dev_to_queue(dev);
	unsigned int n;

	spin_lock(&q->lock);
	n = side == SHMQ_PROD ? q->nr_producers : q->cons_attached;
	spin_unlock(&q->lock);
	return sysfs_emit(buf, "%u\n", n);
}

/*
 * The opener of that side while it lives (for producers: of the lowest
 * attached lane), in the reader's pid namespace: a sysfs file records no
 * pid namespace at open, unlike a user namespace (f_cred, see
 * created_by_uid_read()). Takes q->lock.
 */
static ssize_t shmq_show_pid(struct device *dev, char *buf, unsigned int side)
{
	struct shmq_queue *q = shmq_dev_to_queue(dev);
	pid_t nr;

	spin_lock(&q->lock);
	nr = shmq_pid_nr_locked(q, side == SHMQ_PROD ? shmq_first_producer_pid_locked(q) :
				q->cons_pid, task_active_pid_ns(current));
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

static ssize_t max_producers_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", shmq_dev_to_queue(dev)->nr_lanes);
}
static DEVICE_ATTR_RO(max_producers);

static ssize_t max_message_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  shmq_dev_to_queue(dev)->capacity / 4 - sizeof(struct shmq_record));
}
static DEVICE_ATTR_RO(max_message);

/*
 * The two shared counters as their writers left them: free-running byte
 * positions (record headers, payload, alignment and PAD records included),
 * summed over the lanes present now.
 * User space writes them, so they are only as true as the peers; READ_ONCE
 * of an aligned u64 is one load on the 64-bit kernels we build for.
 */
static ssize_t bytes_published_show(struct device *dev, struct device_attribute *attr,
				    char *buf)
{
	return sysfs_emit(buf, "%llu\n", shmq_sum_lanes(shmq_dev_to_queue(dev), 1));
}
static DEVICE_ATTR_RO(bytes_published);

static ssize_t bytes_passed_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", shmq_sum_lanes(shmq_dev_to_queue(dev), 2));
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

/*
 * Every lane has a line of exactly this many bytes in the lanes
 * attribute, padded with spaces before its newline. The longest line,
 * "1023 draining 4294967295 -2147483648 4294967295 4294967295
 * 18446744073709551615", is 80 bytes. A power of two no larger than a
 * page: a read of a page, as kernfs passes it, ends at a line's end.
 */
#define SHMQ_LANE_LINE		128

/*
 * The producers: line J is lane J, "LANE STATE GENERATION PID UID GID
 * BYTES_QUEUED", STATE free, attached, draining or dropped (a free lane:
 * pid 0, uid and gid 4294967295, 0 bytes), PID in the reader's pid
 * namespace (0: exited or not visible), UID and GID in the opener's user
 * namespace (f_cred, as created_by_uid; 4294967295, (uid_t)-1, when
 * unmapped, as SHMQ_IOC_LANE_INFO). Binary so that 1024 lanes fit (a text
 * attribute holds a page).
 *
 * kernfs calls this once per page of a read, and lanes come and go between
 * the calls. Fixed lines keep every line where it is: each is formatted
 * whole from one look at its lane under q->lock, so a reader sees every
 * lane's line from one moment (not the whole table from one moment, which
 * no reader of a changing table could use anyway), never a line torn
 * between two lanes or two states. Only the lines this read covers are
 * formatted. Takes q->lock per lane.
 */
static ssize_t lanes_read(struct file *filp, struct kobject *kobj, struct bin_attribute *attr,
			  char *buf, loff_t off, size_t count)
{
	struct shmq_queue *q = shmq_dev_to_queue(kobj_to_dev(kobj));
	struct user_namespace *ns = filp->f_cred->user_ns;
	struct pid_namespace *pidns = task_active_pid_ns(current);
	const loff_t size = (loff_t)q->nr_lanes * SHMQ_LANE_LINE;
	char line[SHMQ_LANE_LINE];
	size_t done = 0;

	if (off < 0)
		return -EINVAL;
	while (done < count && off < size) {
		const unsigned int j = off / SHMQ_LANE_LINE;
		const size_t at = off % SHMQ_LANE_LINE;
		const size_t n = min_t(size_t, SHMQ_LANE_LINE - at, count - done);
		struct shmq_lane *lane = &q->lanes[j];
		const char *state = "free";
		u64 queued = 0;
		u32 gen;
		kuid_t uid = INVALID_UID;
		kgid_t gid = INVALID_GID;
		pid_t pid = 0;
		int len;

		spin_lock(&q->lock);
		gen = lane->generation;
		if (lane->state != SHMQ_LANE_FREE && lane->pages) {
			state = lane->dropped ? "dropped" :
				lane->state == SHMQ_LANE_ATTACHED ? "attached" : "draining";
			uid = lane->uid;
			gid = lane->gid;
			pid = shmq_pid_nr_locked(q, lane->pid, pidns);
			queued = shmq_lane_queued_locked(q, lane);
		}
		spin_unlock(&q->lock);
		len = scnprintf(line, sizeof(line), "%u %s %u %d %u %u %llu", j, state, gen, pid,
				from_kuid(ns, uid), from_kgid(ns, gid), queued);
		memset(line + len, ' ', SHMQ_LANE_LINE - 1 - len);
		line[SHMQ_LANE_LINE - 1] = '\n';
		memcpy(buf + done, line + at, n);
		done += n;
		off += n;
	}
	return done;
}
static BIN_ATTR_RO(lanes, 0);

static struct attribute *shmq_attrs[] = {
	&dev_attr_capacity.attr,
	&dev_attr_bytes_used.attr,
	&dev_attr_producers.attr,
	&dev_attr_consumers.attr,
	&dev_attr_producer_pid.attr,
	&dev_attr_consumer_pid.attr,
	&dev_attr_max_producers.attr,
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
	&bin_attr_lanes,
	NULL,
};

static const struct attribute_group shmq_group = {
	.attrs		= shmq_attrs,
	.bin_attrs	= shmq_bin_attrs,
};

/* shmq_class->dev_groups (set at load): they exist before the uevent. */
const struct attribute_group *shmq_groups[] = {
	&shmq_group,
	NULL,
};

/* shmq_class->devnode: /dev/shmq/NAME, mode 0600 (udev rules may change it). */
char *shmq_devnode(SHMQ_CLASS_DEV_CONST struct device *dev, umode_t *mode)
{
	if (mode)
		*mode = 0600;
	return kasprintf(GFP_KERNEL, "shmq/%s", dev_name(dev));
}

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

/* Added to /sys/module/shmq/ at load, removed at unload. */
const struct attribute_group shmq_usage_group = {
	.name	= "usage",
	.attrs	= shmq_usage_attrs,
};
