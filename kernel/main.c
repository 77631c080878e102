// SPDX-License-Identifier: GPL-2.0
/*
 * shmq - module parameters, global state, load and unload.
 *
 * Owns the module parameters, the global state shared by the other files
 * (declared in shmq_internal.h, which says which lock protects what), the
 * parsing of queues= and the order in which module init makes things
 * visible and module exit takes them down.
 *
 * Locks: shmq_ns_lock is taken by shmq_add_param_queues() (and, through
 * shmq_destroy_all(), by module exit). The parameters are read with
 * READ_ONCE() wherever they are used, since root may write them at any
 * time through /sys/module/shmq/parameters/.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "shmq_internal.h"

#include <shmq/version.h>

/* ------------------------------------------------------------------------
 * Module parameters and global state. Declared, with the lock that protects
 * each, in shmq_internal.h.
 */

static char *shmq_queues_param;
u64 shmq_max_queue_size = 256ULL << 20;
u64 shmq_max_total_memory = 1ULL << 30;
unsigned int shmq_max_queues = 256;
unsigned int shmq_max_producers = SHMQ_MAX_PRODUCERS;

/* The namespace lock: see "Locking" in shmq_internal.h. */
DEFINE_MUTEX(shmq_ns_lock);
LIST_HEAD(shmq_queues);
unsigned int shmq_nr_queues;
unsigned int shmq_next_minor;
atomic64_t shmq_total_memory = ATOMIC64_INIT(0);
DEFINE_IDA(shmq_minor_ida);
dev_t shmq_devt;
struct class *shmq_class;

/* Queues allocated and not yet released, plus one held until module exit. */
atomic_t shmq_queues_alive = ATOMIC_INIT(1);
DECLARE_COMPLETION(shmq_all_released);

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

/* The ceiling of max_producers for SHMQ_IOC_CREATE2 (at most 1024). */
static int shmq_param_set_producers(const char *val, const struct kernel_param *kp)
{
	unsigned int n;
	int ret = kstrtouint(val, 0, &n);

	if (ret)
		return ret;
	if (!n || n > SHMQ_MAX_PRODUCERS)
		return -EINVAL;
	WRITE_ONCE(shmq_max_producers, n);
	return 0;
}

static const struct kernel_param_ops shmq_producers_param_ops = {
	.set = shmq_param_set_producers,
	.get = param_get_uint,
};
module_param_cb(max_producers, &shmq_producers_param_ops, &shmq_max_producers, 0644);
MODULE_PARM_DESC(max_producers,
		 "Most lanes (producers) a queue of SHMQ_IOC_CREATE2 may have, 1..1024 (default 1024)");

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
		if (check_add_overflow(bytes, shmq_queue_bytes(pq[n].capacity, 1), &bytes))
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
 * control device, a failing registration) is logged and left out. Takes
 * shmq_ns_lock.
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

/* Takes shmq_ns_lock through shmq_add_param_queues(). */
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
		pq[i].q = shmq_queue_new(pq[i].name, pq[i].capacity, 1, SHMQ_QUEUE_SPSC);
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

/* Takes shmq_ns_lock through shmq_destroy_all(). */
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
