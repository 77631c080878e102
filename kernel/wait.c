// SPDX-License-Identifier: GPL-2.0
/*
 * shmq - waiting and waking: SHMQ_IOC_WAIT, SHMQ_IOC_WAKE,
 * SHMQ_IOC_INTERRUPT and poll/epoll.
 *
 * Owns the waiter words of the status page (read_wake, write_wake,
 * write_need) that tell the other side's library when to call
 * SHMQ_IOC_WAKE, the tree of producer sleepers ordered by need, the
 * sleep itself (absolute deadlines, time namespaces, interrupts, signals,
 * freezing), the arming and disarming of pollers, and the wake of the
 * other side at every close (->flush of both files).
 *
 * Locks: queue->lock (spinlock) protects every struct shmq_waiters (the
 * consumer's readers, each lane's writers), peer->interrupted and the waiter
 * words; functions named *_locked() expect it held. It is never held while
 * sleeping or waking: wake-ups happen after it is dropped. The memory
 * ordering against user space (store-buffering pairs with libshmq's
 * fences) is explained at each smp_mb().
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/compiler.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/nsproxy.h>
#include <linux/poll.h>
#include <linux/rbtree.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/spinlock.h>
#include <linux/time_namespace.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "shmq_internal.h"

/* ------------------------------------------------------------------------
 * Waiter words and wake-ups.
 */

/**
 * struct shmq_sleeper - a producer task sleeping in SHMQ_IOC_WAIT
 * @node: entry in a lane's writers.sleepers, ordered by @need
 * @need: the free bytes it waits for
 */
struct shmq_sleeper {
	struct rb_node node;
	u64 need;
};

/* Empty waiters; the words are pointed at once the status region exists. */
void shmq_waiters_init(struct shmq_waiters *w)
{
	memset(w, 0, sizeof(*w));
	w->sleepers = RB_ROOT_CACHED;
	init_waitqueue_head(&w->wq);
	init_waitqueue_head(&w->pollq);
}

/*
 * The writer sleeper with the smallest need, or NULL. Caller holds
 * q->lock.
 */
static struct shmq_sleeper *shmq_first_sleeper(struct shmq_waiters *w)
{
	struct rb_node *n = rb_first_cached(&w->sleepers);

	return n ? rb_entry(n, struct shmq_sleeper, node) : NULL;
}

static bool shmq_sleeper_less(struct rb_node *a, const struct rb_node *b)
{
	return rb_entry(a, struct shmq_sleeper, node)->need <
	       rb_entry(b, struct shmq_sleeper, node)->need;
}

/**
 * shmq_publish_waiters_locked() - refresh one side's waiter words
 * @w: the consumer's readers or a lane's writers; the queue's lock held
 *
 * The wake word tells the other side's library what to check after it
 * moved its counter (uapi.h, SHMQ_WAKE_*): SLEEPER while a task of that
 * side sleeps in SHMQ_IOC_WAIT, POLLED while a poller is registered,
 * POLL_ARMED when besides the last poll found the condition false. A
 * lane's write_need is the smallest need of its producer's sleepers (the
 * leftmost of an rbtree, so publishing is O(1)): a release that crosses it
 * wakes every sleeper, those still short of room sleep again, and when the
 * smallest one leaves the next smallest is published and checked by
 * shmq_recheck_writers(). The consumer reads write_wake before write_need,
 * so write_need is stored before a SLEEPER bit that makes it valid.
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
bool shmq_publish_waiters_locked(struct shmq_waiters *w)
{
	struct shmq_sleeper *first;
	bool polled, changed;
	u32 bits = 0;
	u64 need;

	/* Lockless emptiness check: see the poll_wait() ordering above. */
	polled = waitqueue_active(&w->pollq);
	if (!polled)
		w->poll_armers = 0;
	if (w->nr_sleepers)
		bits |= SHMQ_WAKE_SLEEPER;
	if (polled)
		bits |= SHMQ_WAKE_POLLED;
	if (w->poll_armers)
		bits |= SHMQ_WAKE_POLL_ARMED;

	if (!w->need_word) {
		WRITE_ONCE(*w->wake_word, bits);
		return false;
	}

	first = shmq_first_sleeper(w);
	need = first ? first->need : 0;
	changed = need != w->need;
	w->need = need;
	if (need) {
		WRITE_ONCE(*w->need_word, need);
		smp_wmb(); /* write_need before a SLEEPER bit that validates it */
		WRITE_ONCE(*w->wake_word, bits);
	} else {
		WRITE_ONCE(*w->wake_word, bits);
		smp_wmb(); /* the SLEEPER bit gone before write_need */
		WRITE_ONCE(*w->need_word, 0);
	}
	return changed && need;
}

/**
 * shmq_wake_waiters() - wake every sleeper and poller of one side
 * @q: the queue, lock not held
 * @w: the consumer's readers or a lane's writers
 * @key: the poll events to report
 *
 * Every poller is woken and will poll again, re-arming if its condition is
 * still false: so its arms are dropped first, under the lock and before
 * the wake-up (never after: a poller woken by us might re-arm and go back
 * to sleep before a later clear, which would then hide it). Also refreshes
 * the wake word, dropping marks of pollers gone away. Takes q->lock; wakes
 * after dropping it.
 */
void shmq_wake_waiters(struct shmq_queue *q, struct shmq_waiters *w, __poll_t key)
{
	spin_lock(&q->lock);
	w->poll_armers = 0;
	w->poll_gen++;
	/* write_need is the sleepers': unchanged here, no recheck needed. */
	shmq_publish_waiters_locked(w);
	spin_unlock(&q->lock);
	wake_up_all(&w->wq);
	wake_up_poll(&w->pollq, key);
}

/* Whether anybody waits on @w. Caller holds q->lock. */
static bool shmq_waiting_locked(struct shmq_waiters *w)
{
	return w->nr_sleepers || waitqueue_active(&w->pollq);
}

/**
 * shmq_wake_writers() - wake the producers of every lane that has waiters
 * @q: the queue, lock not held
 * @key: the poll events to report
 *
 * O(lanes). Takes q->lock for each lane that has waiters.
 */
void shmq_wake_writers(struct shmq_queue *q, __poll_t key)
{
	unsigned int j;
	bool waiting;

	for (j = 0; j < q->nr_lanes; j++) {
		spin_lock(&q->lock);
		waiting = shmq_waiting_locked(&q->lanes[j].writers);
		spin_unlock(&q->lock);
		if (waiting)
			shmq_wake_waiters(q, &q->lanes[j].writers, key);
	}
}

/**
 * shmq_recheck_writers() - wake a lane's producer whose published need changed
 * @q: the queue, lock not held
 * @lane: the producer's lane
 *
 * A consumer that judged its release against the old write_need may have
 * crossed the new one without calling SHMQ_IOC_WAKE. Store-buffering pair
 * with its fence: we stored write_need (under the lock), then this full
 * barrier, then read head; it stores head, fences, then reads write_need.
 * Either we see its head here, or it sees the new write_need. Takes
 * q->lock (and again through shmq_wake_waiters()).
 */
static void shmq_recheck_writers(struct shmq_queue *q, struct shmq_lane *lane)
{
	bool wake = false;

	smp_mb();
	spin_lock(&q->lock);
	if (lane->writers.need)
		wake = shmq_lane_writable_locked(q, lane, lane->writers.need);
	spin_unlock(&q->lock);
	if (wake)
		shmq_wake_waiters(q, &lane->writers, EPOLLOUT | EPOLLWRNORM);
}

/**
 * shmq_peer_gone_locked() - has the other side gone?
 * @peer: the peer asking, whose queue's lock is held
 *
 * Pipe semantics: nobody of the other role is attached now and at least one
 * detached since @peer attached (for a consumer: no producer on any lane).
 *
 * Return: true if the other side hung up.
 */
static bool shmq_peer_gone_locked(const struct shmq_peer *peer)
{
	const struct shmq_queue *q = peer->queue;

	lockdep_assert_held(&q->lock);
	if (peer->side == SHMQ_PROD)
		return !q->cons_attached && q->cons_departures != peer->seen_departures;
	return !q->nr_producers && q->prod_departures != peer->seen_departures;
}

/* A producer whose lane a consumer dropped. Caller holds q->lock. */
static bool shmq_peer_dropped_locked(const struct shmq_peer *peer)
{
	return peer->lane && peer->lane->dropped;
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
 * Takes q->lock (and again to wake).
 *
 * Return: 0.
 */
int shmq_file_flush(struct file *file, fl_owner_t id)
{
	struct shmq_peer *peer = file->private_data;
	struct shmq_queue *q = peer->queue;
	bool waiting;

	if (peer->side == SHMQ_CONS) {
		shmq_wake_writers(q, EPOLLOUT | EPOLLWRNORM);
		return 0;
	}
	spin_lock(&q->lock);
	waiting = shmq_waiting_locked(&q->readers);
	spin_unlock(&q->lock);
	if (waiting)
		shmq_wake_waiters(q, &q->readers, EPOLLIN | EPOLLRDNORM);
	return 0;
}

/* ------------------------------------------------------------------------
 * SHMQ_IOC_WAIT, SHMQ_IOC_WAKE and SHMQ_IOC_INTERRUPT.
 */

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
 * The state and the counters are read under the lock, the state first, so
 * that a peer which published and then detached is seen with its last
 * counter: a consumer drains before it gets EPIPE.
 *
 * Takes q->lock.
 *
 * Return: 0 if the condition holds, -ECONNRESET if a consumer dropped the
 * producer's lane, -EIDRM if the queue was destroyed, -EPIPE if the peer
 * has gone (unless SHMQ_WAIT_IGNORE_HUP), -EAGAIN to keep waiting.
 */
static int shmq_wait_check(struct shmq_peer *peer, const struct shmq_wait_args *args)
{
	struct shmq_queue *q = peer->queue;
	bool destroyed, gone, ok;

	spin_lock(&q->lock);
	destroyed = q->destroyed;
	gone = shmq_peer_gone_locked(peer);
	if (shmq_peer_dropped_locked(peer)) {
		spin_unlock(&q->lock);
		return -ECONNRESET;
	}
	if (args->cond == SHMQ_WAIT_READABLE)
		ok = shmq_any_readable_locked(q) ||
		     ((args->flags & SHMQ_WAIT_DIR_GEN) &&
		      READ_ONCE(q->status->dir_gen) != (u32)args->reserved[0]);
	else
		ok = shmq_lane_writable_locked(q, peer->lane, args->min_bytes);
	spin_unlock(&q->lock);

	if (ok)
		return 0;
	if (destroyed)
		return -EIDRM;
	if (gone && !(args->flags & SHMQ_WAIT_IGNORE_HUP))
		return -EPIPE;
	return -EAGAIN;
}

/*
 * Consumes a pending SHMQ_IOC_INTERRUPT of @peer; true if there was one.
 * Takes q->lock.
 */
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
 * Return: 0, or -EINVAL for non-zero reserved fields (reserved[0] is the
 * dir_gen of SHMQ_WAIT_DIR_GEN, only for READABLE on a lane queue), unknown
 * flags, a condition of the other role, READABLE with min_bytes, WRITABLE
 * with min_bytes 0 or above the capacity.
 */
static int shmq_wait_validate(const struct shmq_peer *peer, const struct shmq_wait_args *args)
{
	const struct shmq_queue *q = peer->queue;

	if (args->flags & ~SHMQ_WAIT_FLAGS_ALL)
		return -EINVAL;
	if (args->reserved[1])
		return -EINVAL;
	if (args->flags & SHMQ_WAIT_DIR_GEN) {
		if (args->cond != SHMQ_WAIT_READABLE ||
		    !(q->queue_features & SHMQ_QUEUE_LANES) || args->reserved[0] > U32_MAX)
			return -EINVAL;
	} else if (args->reserved[0]) {
		return -EINVAL;
	}
	switch (args->cond) {
	case SHMQ_WAIT_READABLE:
		if (peer->role != SHMQ_ROLE_CONSUMER || args->min_bytes)
			return -EINVAL;
		break;
	case SHMQ_WAIT_WRITABLE:
		if (peer->role != SHMQ_ROLE_PRODUCER || !args->min_bytes ||
		    args->min_bytes > q->capacity)
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
 * instead of waking it to restart the call. Takes q->lock to register and
 * unregister the sleeper and in each check, never across the sleep.
 *
 * Return: 0 when the condition holds, -ECANCELED, -ECONNRESET, -EIDRM, -EPIPE,
 * -ETIMEDOUT, -ERESTARTSYS on a signal (the deadline is absolute, so
 * restarting is safe), -EINVAL for bad arguments, -EFAULT.
 */
int shmq_ioc_wait(struct shmq_peer *peer, void __user *argp)
{
	struct shmq_queue *q = peer->queue;
	struct shmq_waiters *w = peer->waiters;
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

	/* A consumer's wait is where drained lanes are noticed. */
	if (peer->side == SHMQ_CONS)
		shmq_reap_lanes(q);

	me.need = args.min_bytes;
	spin_lock(&q->lock);
	w->nr_sleepers++;
	if (w->need_word)
		rb_add_cached(&me.node, &w->sleepers, shmq_sleeper_less);
	/* Registering can only lower write_need: our own check covers it. */
	shmq_publish_waiters_locked(w);
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
		prepare_to_wait(&w->wq, &wait, TASK_INTERRUPTIBLE | TASK_FREEZABLE);
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
	finish_wait(&w->wq, &wait);

	spin_lock(&q->lock);
	w->nr_sleepers--;
	if (w->need_word)
		rb_erase_cached(&me.node, &w->sleepers);
	recheck = shmq_publish_waiters_locked(w);
	spin_unlock(&q->lock);

	/* Leaving may raise write_need to the next sleeper's. */
	if (recheck)
		shmq_recheck_writers(q, peer->lane);
	return ret;
}

/**
 * shmq_ioc_wake() - SHMQ_IOC_WAKE: wake the other side
 * @peer: the caller's peer
 * @arg: 0; for a consumer of a lane queue also lane + 1 (that lane only)
 *
 * A producer wakes the consumer; a consumer the producers of every lane,
 * or of one. Refreshes the waiter words, dropping marks of pollers that
 * have gone away; a consumer's wake also frees drained lanes. Takes
 * q->lock through shmq_wake_waiters().
 *
 * Return: 0, -ECONNRESET (a producer whose lane was dropped), or -EINVAL
 * for another @arg.
 */
long shmq_ioc_wake(struct shmq_peer *peer, unsigned long arg)
{
	struct shmq_queue *q = peer->queue;
	bool dropped;

	if (peer->side == SHMQ_PROD) {
		if (arg)
			return -EINVAL;
		spin_lock(&q->lock);
		dropped = shmq_peer_dropped_locked(peer);
		spin_unlock(&q->lock);
		if (dropped)
			return -ECONNRESET;
		atomic64_inc(&q->stats.wakes);
		shmq_wake_waiters(q, &q->readers, EPOLLIN | EPOLLRDNORM);
		return 0;
	}
	if (arg && (!(q->queue_features & SHMQ_QUEUE_LANES) || arg > q->nr_lanes))
		return -EINVAL;
	atomic64_inc(&q->stats.wakes);
	if (arg)
		shmq_wake_waiters(q, &q->lanes[arg - 1].writers, EPOLLOUT | EPOLLWRNORM);
	else
		shmq_wake_writers(q, EPOLLOUT | EPOLLWRNORM);
	shmq_reap_lanes(q);
	return 0;
}

/**
 * shmq_ioc_interrupt() - SHMQ_IOC_INTERRUPT: cancel this peer's wait
 * @peer: the caller's peer
 * @arg: must be 0
 *
 * The SHMQ_IOC_WAIT sleeping on this attachment, or the next one that
 * would sleep, returns -ECANCELED. Meant for another thread of the process
 * that wants a blocked sender or receiver back. Takes q->lock; wakes after
 * dropping it.
 *
 * Return: 0, or -EINVAL for a non-zero @arg.
 */
long shmq_ioc_interrupt(struct shmq_peer *peer, unsigned long arg)
{
	struct shmq_queue *q = peer->queue;

	if (arg)
		return -EINVAL;

	spin_lock(&q->lock);
	peer->interrupted = true;
	spin_unlock(&q->lock);
	wake_up_all(&peer->waiters->wq);
	return 0;
}

/* ------------------------------------------------------------------------
 * poll/epoll, on the queue file and on its ring files.
 */

/**
 * shmq_queue_poll() - poll/epoll on a queue file (and on its ring files)
 * @file: the queue or ring file
 * @wait: poll table
 *
 * A consumer is readable when some lane has tail != head; a producer is
 * writable when at least capacity/2 bytes of its lane are free, enough for
 * any message (max_message is capacity/4 - 8). The poller is armed
 * (SHMQ_WAKE_POLL_ARMED) before the counters are read and disarmed again
 * when the condition holds: a poll that reports nothing is followed by a
 * sleep, one that reports readiness by the caller's own reads and writes,
 * after which its library arms its own word when it finds the ring empty
 * or full (docs/design.md). A producer whose lane was dropped gets
 * EPOLLERR. Takes q->lock.
 *
 * Return: the ready events.
 */
__poll_t shmq_queue_poll(struct file *file, poll_table *wait)
{
	struct shmq_peer *peer = file->private_data;
	struct shmq_queue *q = peer->queue;
	struct shmq_waiters *w = peer->waiters;
	bool destroyed, gone, dropped, ready;
	__poll_t mask = 0;

	poll_wait(file, &w->pollq, wait);

	spin_lock(&q->lock);
	w->poll_armers++;
	shmq_publish_waiters_locked(w);
	destroyed = q->destroyed;
	gone = shmq_peer_gone_locked(peer);
	dropped = shmq_peer_dropped_locked(peer);

	/*
	 * Store-buffering pair with the waker's fence between its counter
	 * store and its read of our wake word, as in shmq_ioc_wait().
	 */
	smp_mb();

	if (peer->side == SHMQ_CONS) {
		ready = shmq_any_readable_locked(q);
		if (ready)
			mask |= EPOLLIN | EPOLLRDNORM;
	} else {
		ready = shmq_lane_writable_locked(q, peer->lane, q->capacity / 2);
		if (ready)
			mask |= EPOLLOUT | EPOLLWRNORM;
	}
	/*
	 * Ready: undo our own arm (still under the lock, so the pollers
	 * cannot have been woken and their arms dropped meanwhile). Another
	 * poller's arm stays: it may be asleep with its condition false when
	 * it looked.
	 */
	if (ready && w->poll_armers) {
		w->poll_armers--;
		shmq_publish_waiters_locked(w);
	}
	spin_unlock(&q->lock);

	if (destroyed || dropped)
		mask |= EPOLLERR | EPOLLHUP;
	else if (gone)
		mask |= EPOLLHUP;
	return mask;
}
