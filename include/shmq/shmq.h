/* SPDX-License-Identifier: MIT */
/*
 * shmq.h - the C API of libshmq, in the shape of POSIX message queues.
 *
 * Every mq_* call of <mqueue.h> has a shmq_mq_* counterpart with the same
 * arguments, the same -1/errno convention and the same blocking rules, so
 * that code moves over by renaming calls and types. docs/c-api.md has the
 * mapping table and states every difference from POSIX; the man page is
 * shmq_mq_open(3). In short:
 *
 *  - a descriptor is an opaque pointer (shmq_mqd_t, like FILE *); a
 *    failed shmq_mq_open returns SHMQ_MQ_FAILED, which is
 *    (shmq_mqd_t)-1 as POSIX's (mqd_t)-1;
 *  - one role per descriptor: O_WRONLY opens the producer (send),
 *    O_RDONLY the consumer (receive); O_RDWR gives EINVAL; one consumer
 *    at a time (EBUSY); a queue made by shmq_mq_open(O_CREAT) takes up to
 *    mq_maxproducers producers at once (64 by default), each sending
 *    into its own lane, and every message carries its sender's uid, gid
 *    and pid (shmq_mq_receive_sender); a queue made by `shmqctl create`
 *    without --producers takes one producer at a time (EBUSY);
 *  - no priorities: messages are delivered in the order sent; a non-zero
 *    msg_prio gives EINVAL, received priorities are always 0;
 *  - permissions come from the device node /dev/shmq/NAME (udev rules), not
 *    from the mode argument of shmq_mq_open; creating and unlinking need
 *    the control device (root by default);
 *  - on a queue of one producer, EPIPE when the queue is empty (receive)
 *    or full (send) and the peer that was attached has gone, unless
 *    SHMQ_MQ_IGNORE_HUP; a queue of several producers has queue semantics
 *    (SHMQ_MQ_IGNORE_HUP set at open): messages wait for a consumer and a
 *    sender blocks while its lane is full; EIDRM when it was unlinked;
 *  - no mq_notify: poll/epoll the fd from shmq_mq_fd() instead.
 *
 * Valid C99/C11 and C++; all functions have C linkage, never throw, and
 * are thread-safe (calls on one descriptor are serialised by a mutex that
 * is never held while sleeping). None is a cancellation point.
 */
#ifndef SHMQ_SHMQ_H
#define SHMQ_SHMQ_H

#include <fcntl.h>     /* O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NONBLOCK */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h> /* ssize_t, mode_t, clockid_t */

/* Complete in <time.h>; declared here so that the header stands alone in
 * strict C99, where <time.h> has no struct timespec. */
struct timespec;

#ifdef __cplusplus
extern "C" {
#endif

/* The functions never throw: C++ callers see them as noexcept. */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define SHMQ_NOTHROW noexcept
#elif defined(__cplusplus)
#define SHMQ_NOTHROW throw()
#else
#define SHMQ_NOTHROW
#endif

/* Version of this C API: incremented when functions, fields or flags are
 * added or their meaning changes. 2: SHMQ_MQ_USE_CAPACITY, SHMQ_MQ_FAILED
 * is (shmq_mqd_t)-1 (was NULL). 3: shmq_mq_interrupt. 4: several
 * producers, senders, lane events. 5: SHMQ_MQ_REPORT_HUP; setattr keeps the
 * peer-death semantics unless mq_flags names them. */
#define SHMQ_C_API_VERSION 5

/* A message queue descriptor: an opaque handle owned by the caller until
 * shmq_mq_close(). */
typedef struct shmq_mq *shmq_mqd_t;

/* What shmq_mq_open returns on failure: (shmq_mqd_t)-1, as POSIX's
 * (mqd_t)-1, so that a ported `q == (mqd_t)-1` check still works once
 * renamed. Never NULL. Every call given SHMQ_MQ_FAILED or NULL for a
 * descriptor fails with EBADF. */
#define SHMQ_MQ_FAILED ((shmq_mqd_t)-1)

/* mq_flags bits for shmq_mq_setattr/getattr (besides O_NONBLOCK), the
 * peer-death semantics. Chosen not to collide with any O_* flag.
 * SHMQ_MQ_IGNORE_HUP (queue semantics): when the peer has gone, keep
 * waiting for a new one instead of failing with EPIPE (what a POSIX queue
 * does). SHMQ_MQ_REPORT_HUP (pipe semantics): fail with EPIPE when the
 * queue is empty (receive) or full (send) and the peer has gone. getattr
 * reports exactly one of the two. setattr changes the semantics only when
 * mq_flags names one of them (both: EINVAL), so that code ported from
 * POSIX, which sets mq_flags to 0 or O_NONBLOCK, changes only O_NONBLOCK;
 * and a saved getattr result restores both. SHMQ_MQ_REPORT_HUP since
 * SHMQ_C_API_VERSION 5 (before, setattr without SHMQ_MQ_IGNORE_HUP cleared
 * it). */
#define SHMQ_MQ_IGNORE_HUP 0x40000000L
#define SHMQ_MQ_REPORT_HUP 0x08000000L

/* mq_flags bit for shmq_mq_open with O_CREAT: use mq_capacity. Open honours
 * it only when mq_flags has no bits but this one, O_NONBLOCK and
 * SHMQ_MQ_IGNORE_HUP; otherwise open ignores mq_flags and mq_capacity (as
 * POSIX ignores mq_flags) and derives the ring from mq_maxmsg and
 * mq_msgsize, so that code ported from POSIX, which leaves mq_capacity
 * uninitialised, gets what it asked for. getattr never reports it and
 * setattr refuses it (EINVAL). */
#define SHMQ_MQ_USE_CAPACITY 0x20000000L

/* mq_flags bit for shmq_mq_open with O_CREAT: use mq_maxproducers (with
 * SHMQ_MQ_USE_CAPACITY or on its own; the same rule as there for the other
 * bits). Without it a queue is made for 64 producers (or the module's
 * max_producers parameter, if lower). Since SHMQ_C_API_VERSION 4. */
#define SHMQ_MQ_USE_PRODUCERS 0x10000000L

/* Queue attributes. The first four fields are those of struct mq_attr. */
struct shmq_mq_attr {
	long mq_flags;	 /* get/setattr: O_NONBLOCK, SHMQ_MQ_IGNORE_HUP,
			  * SHMQ_MQ_REPORT_HUP;
			  * open: SHMQ_MQ_USE_CAPACITY or not (the rest is
			  * ignored) */
	long mq_maxmsg;	 /* open: messages of mq_msgsize bytes the queue must
			  * hold; getattr: how many of the largest messages
			  * fit (capacity / record size of mq_msgsize) */
	long mq_msgsize; /* open: largest message wanted; getattr: largest
			  * message the queue accepts */
	long mq_curmsgs; /* getattr: messages queued now */
	uint64_t mq_capacity; /* open with SHMQ_MQ_USE_CAPACITY: ring bytes
			       * (power of two >= 4096); ignored without it
			       * (derived from mq_maxmsg and mq_msgsize);
			       * getattr: ring bytes */
	uint64_t mq_curbytes; /* getattr: ring bytes in use now (headers and
			       * padding included) */
	uint64_t mq_maxproducers; /* open with SHMQ_MQ_USE_PRODUCERS (ignored
				   * without it, so a caller of C API 3 that
				   * left garbage in mq_reserved[0] is safe): producers
				   * the queue takes at once, 1 to 1024 (0: 64);
				   * getattr: that number (1 for a queue of one
				   * producer) */
	uint64_t mq_reserved[3]; /* getattr: written as 0; ignored on input */
};

/* Who sent a message (shmq_mq_receive_sender) or holds a lane
 * (shmq_mq_lane_events), proven by the kernel: the producer's effective uid
 * and gid and its process at its shmq_mq_open, in the caller's user and pid
 * namespaces. */
struct shmq_mq_sender {
	uint32_t uid;	     /* (uid_t)-1: not mapped here (or not a lane queue) */
	uint32_t gid;	     /* (gid_t)-1: not mapped here */
	int32_t pid;	     /* 0: not visible here, or exited before the consumer
			      * first saw it */
	uint32_t lane;	     /* its lane */
	uint32_t generation; /* the lane's holder, new at every producer open */
	uint32_t reserved[3]; /* written as 0 */
};

/* Kinds of struct shmq_mq_lane_event. */
#define SHMQ_MQ_LANE_ATTACHED 1 /* a producer opened the queue */
#define SHMQ_MQ_LANE_ENDED 2	/* it has gone and all it sent was received */
#define SHMQ_MQ_LANE_CORRUPT 3	/* its records are garbage (receive: EBADMSG) */
#define SHMQ_MQ_LANE_DROPPED 4	/* the lane was dropped (shmq_mq_drop_lane,
				 * or by the library once nothing else was
				 * readable) */

struct shmq_mq_lane_event {
	uint32_t kind;	       /* SHMQ_MQ_LANE_* */
	uint32_t reserved;     /* written as 0 */
	struct shmq_mq_sender who;
};

/* Opens queue @name ("orders" or "/orders": /dev/shmq/orders). @oflag:
 * O_RDONLY (consumer) or O_WRONLY (producer), optionally O_CREAT, O_EXCL,
 * O_NONBLOCK, O_CLOEXEC (always in effect). With O_CREAT two more
 * arguments follow as in POSIX: mode_t mode (ignored: the udev rules decide
 * permissions) and const struct shmq_mq_attr *attr (NULL: like Linux's
 * defaults, 10 messages of 8192 bytes; used only when the queue is created,
 * ignored when it exists unless O_EXCL). Returns SHMQ_MQ_FAILED with errno
 * EACCES, EBADMSG (a previous producer left a corrupt tail), EBUSY, EEXIST,
 * EINVAL, EMFILE, ENAMETOOLONG, ENFILE, ENODEV, ENOENT, ENOMEM, ENOSPC,
 * ENOTTY (/dev/shmq/NAME is not a queue), EPROTO (module and library
 * disagree). */
shmq_mqd_t shmq_mq_open(const char *name, int oflag, ...) SHMQ_NOTHROW;

/* Detaches and frees @mqd (which must not be used again). 0, or -1 with
 * errno EBADF for NULL or SHMQ_MQ_FAILED. */
int shmq_mq_close(shmq_mqd_t mqd) SHMQ_NOTHROW;

/* Removes queue @name: its node goes at once; descriptors still open can
 * drain what is queued, but blocked and later waits fail with EIDRM.
 * 0, or -1 with errno EACCES, EINVAL, EMFILE, ENAMETOOLONG, ENFILE, ENOENT,
 * ENOMEM. */
int shmq_mq_unlink(const char *name) SHMQ_NOTHROW;

/* Queues @msg_len bytes (0 allowed). Blocks while the queue is full unless
 * O_NONBLOCK (EAGAIN). @msg_prio must be 0 (EINVAL otherwise). Errors:
 * EAGAIN, EBADF (NULL, SHMQ_MQ_FAILED or a consumer descriptor), EINTR
 * (signal handler without SA_RESTART), EINVAL, EMSGSIZE (msg_len >
 * mq_msgsize), EPIPE (full and the consumer has gone), EIDRM (full and
 * unlinked), EBADMSG (the consumer corrupted the shared counters). */
int shmq_mq_send(shmq_mqd_t mqd, const char *msg_ptr, size_t msg_len,
		 unsigned int msg_prio) SHMQ_NOTHROW;

/* As shmq_mq_send, but gives up with ETIMEDOUT at the absolute
 * CLOCK_REALTIME time @abs_timeout (EINVAL if tv_nsec is not in
 * [0, 1e9) or tv_sec < 0). NULL waits forever. */
int shmq_mq_timedsend(shmq_mqd_t mqd, const char *msg_ptr, size_t msg_len,
		      unsigned int msg_prio, const struct timespec *abs_timeout) SHMQ_NOTHROW;

/* As shmq_mq_timedsend, with the deadline on @clock: CLOCK_REALTIME or
 * CLOCK_MONOTONIC (EINVAL otherwise). Like sem_clockwait(3). */
int shmq_mq_clocksend(shmq_mqd_t mqd, const char *msg_ptr, size_t msg_len,
		      unsigned int msg_prio, clockid_t clock,
		      const struct timespec *abs_timeout) SHMQ_NOTHROW;

/* Takes the oldest message into @msg_ptr and returns its length. Blocks
 * while the queue is empty unless O_NONBLOCK (EAGAIN). If @msg_prio is not
 * NULL, 0 is stored there. Errors: EAGAIN, EBADF (NULL, SHMQ_MQ_FAILED or
 * a producer descriptor), EINTR, EINVAL, EMSGSIZE (@msg_len smaller than
 * this message, which stays queued), EPIPE (empty and the producer has
 * gone), EIDRM (empty and unlinked), EBADMSG (the producer wrote garbage). */
ssize_t shmq_mq_receive(shmq_mqd_t mqd, char *msg_ptr, size_t msg_len,
			unsigned int *msg_prio) SHMQ_NOTHROW;

/* As shmq_mq_receive, with an absolute CLOCK_REALTIME deadline
 * (ETIMEDOUT; EINVAL for an invalid timespec; NULL: forever). */
ssize_t shmq_mq_timedreceive(shmq_mqd_t mqd, char *msg_ptr, size_t msg_len,
			     unsigned int *msg_prio,
			     const struct timespec *abs_timeout) SHMQ_NOTHROW;

/* As shmq_mq_timedreceive, with the deadline on @clock (CLOCK_REALTIME or
 * CLOCK_MONOTONIC). */
ssize_t shmq_mq_clockreceive(shmq_mqd_t mqd, char *msg_ptr, size_t msg_len,
			     unsigned int *msg_prio, clockid_t clock,
			     const struct timespec *abs_timeout) SHMQ_NOTHROW;

/* As shmq_mq_timedreceive (@abs_timeout NULL: forever), and stores who
 * sent the message in @sender (which must not be NULL: EINVAL). On a queue
 * of one producer the sender is unknown: uid and gid (uid_t)-1, pid 0. A
 * corrupt lane fails one receive with EBADMSG (shmq_mq_lane_events names
 * it); the other lanes keep flowing. Since SHMQ_C_API_VERSION 4. */
ssize_t shmq_mq_receive_sender(shmq_mqd_t mqd, char *msg_ptr, size_t msg_len,
			       unsigned int *msg_prio, struct shmq_mq_sender *sender,
			       const struct timespec *abs_timeout) SHMQ_NOTHROW;

/* Moves up to @n pending lane events of consumer @mqd, oldest first, into
 * @events and returns how many (0: none). -1 with EBADF (not a consumer),
 * EINVAL (@events NULL with @n > 0). Events of a queue of one producer:
 * none. */
int shmq_mq_lane_events(shmq_mqd_t mqd, struct shmq_mq_lane_event *events,
			unsigned int n) SHMQ_NOTHROW;

/* Detaches @lane (of a corrupt producer, say): nothing more it sends is
 * received, its next send that waits fails with ECONNRESET. 0, or -1 with
 * EBADF, EINVAL (not a lane queue, lane out of range), ENOENT (free),
 * ESTALE (another producer holds it now than the one last reported). */
int shmq_mq_drop_lane(shmq_mqd_t mqd, unsigned int lane) SHMQ_NOTHROW;

/* Fills @attr. 0, or -1 with errno EBADF, EINVAL (attr NULL), EBADMSG
 * (corrupt shared counters or records). */
int shmq_mq_getattr(shmq_mqd_t mqd, struct shmq_mq_attr *attr) SHMQ_NOTHROW;

/* Sets O_NONBLOCK from @newattr->mq_flags, and the peer-death semantics if
 * it names them (SHMQ_MQ_IGNORE_HUP or SHMQ_MQ_REPORT_HUP; the other fields
 * are ignored), unless @newattr is NULL, after storing the previous
 * attributes in @oldattr unless that is NULL. EINVAL for other mq_flags
 * bits or both HUP bits (nothing changed), EBADF, EBADMSG (@oldattr and a
 * corrupt ring). */
int shmq_mq_setattr(shmq_mqd_t mqd, const struct shmq_mq_attr *newattr,
		    struct shmq_mq_attr *oldattr) SHMQ_NOTHROW;

/* The queue's file descriptor for poll/select/epoll (owned by @mqd: do not
 * close it). Consumer: POLLIN when a message is queued. Producer: POLLOUT
 * when half the ring is free (any message then fits). Both: POLLHUP when
 * the peer has gone, POLLERR|POLLHUP when unlinked. -1 with EBADF. */
int shmq_mq_fd(shmq_mqd_t mqd) SHMQ_NOTHROW;

/* Makes the send or receive sleeping on @mqd in another thread, or the next
 * one that would sleep, fail with ECANCELED: how to stop a blocked thread,
 * since no call is a cancellation point. @mqd must stay open until this
 * returns. 0, or -1 with EBADF. (No POSIX counterpart; since
 * SHMQ_C_API_VERSION 3.) */
int shmq_mq_interrupt(shmq_mqd_t mqd) SHMQ_NOTHROW;

#ifdef __cplusplus
}
#endif

#endif /* SHMQ_SHMQ_H */
