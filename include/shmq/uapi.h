/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR MIT */
/*
 * shmq - kernel-assisted shared-memory message queues: user-space ABI.
 *
 * This header is shared by the kernel module, libshmq and any other user of
 * /dev/shmq-control and /dev/shmq/NAME. It must stay valid C89/C99/C++ and
 * only use the fixed-width __u* types. docs/abi.md explains every field;
 * docs/design.md explains the ring protocol that uses the shared pages.
 *
 * Rules kept by every struct below (see the kernel's botching-up-ioctls):
 *  - only __u32/__u64 and fixed arrays of char, naturally aligned, with
 *    explicit padding so that the layout is the same on every ABI;
 *  - every reserved or padding field must be zero on input (-EINVAL
 *    otherwise) and is written as zero on output;
 *  - every flags field rejects unknown bits with -EINVAL;
 *  - new functionality gets a new ioctl or a new feature bit, never a
 *    version field.
 */
#ifndef _UAPI_LINUX_SHMQ_H
#define _UAPI_LINUX_SHMQ_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Queue names: 1..SHMQ_NAME_MAX-1 characters of [A-Za-z0-9_.-], not
 * starting with '.' or '-', NUL-terminated inside the SHMQ_NAME_MAX bytes.
 * (A leading '-' would make /dev/shmq/NAME read as an option by tools.) */
#define SHMQ_NAME_MAX		64

/* Smallest capacity on 4 KiB-page kernels; capacities must be powers of
 * two of at least max(SHMQ_MIN_CAPACITY, page size) (shmq_layout's
 * min_capacity), so that the data region is whole pages. */
#define SHMQ_MIN_CAPACITY	4096ULL

/* Capabilities of the module, in shmq_layout.features. A library must
 * refuse to run against a module that lacks a bit it needs; bits it does
 * not know are newer capabilities and may be ignored. */
#define SHMQ_FEAT_SPSC_RING	(1ULL << 0) /* single-producer byte ring   */
#define SHMQ_FEAT_WAIT		(1ULL << 1) /* SHMQ_IOC_WAIT / SHMQ_IOC_WAKE */
#define SHMQ_FEAT_POLL		(1ULL << 2) /* poll/epoll on the queue fd  */
#define SHMQ_FEAT_PEER_HUP	(1ULL << 3) /* EPIPE/EPOLLHUP on peer loss */
#define SHMQ_FEAT_WAKE_ARM	(1ULL << 4) /* SHMQ_WAKE_* words, armed words */
#define SHMQ_FEAT_INTERRUPT	(1ULL << 5) /* SHMQ_IOC_INTERRUPT          */
#define SHMQ_FEAT_LANES		(1ULL << 6) /* SHMQ_IOC_CREATE2, lanes, the
					       lane directory, LANE_INFO/DROP */
#define SHMQ_FEAT_REGIONS	(1ULL << 7) /* SHMQ_IOC_LAYOUT2            */
/* Designed (docs/design-lanes.md), not offered by this module yet: */
#define SHMQ_FEAT_FANOUT	(1ULL << 8) /* max_consumers > 1           */
#define SHMQ_FEAT_POLICIES	(1ULL << 9) /* overflow policies           */
#define SHMQ_FEAT_OWNER		(1ULL << 10) /* mode, gid, per-user limits */
#define SHMQ_FEATURES_V2	(SHMQ_FEAT_SPSC_RING | SHMQ_FEAT_WAIT | \
				 SHMQ_FEAT_POLL | SHMQ_FEAT_PEER_HUP | \
				 SHMQ_FEAT_WAKE_ARM | SHMQ_FEAT_INTERRUPT)
#define SHMQ_FEATURES_V3	(SHMQ_FEATURES_V2 | SHMQ_FEAT_LANES | \
				 SHMQ_FEAT_REGIONS)

/* Properties of one queue, in shmq_layout.queue_features: "incompatible"
 * bits. A library must refuse to attach to a queue that has a bit it does
 * not know (a new kind of queue whose memory means something else), with
 * a message saying which libshmq understands it. */
#define SHMQ_QUEUE_SPSC		(1ULL << 0) /* one producer, one consumer,
					       the ring of docs/design.md
					       (made by SHMQ_IOC_CREATE) */
#define SHMQ_QUEUE_LANES	(1ULL << 1) /* max_producers lanes, each the
					       ring of docs/design.md, and a
					       lane directory (SHMQ_IOC_CREATE2) */
#define SHMQ_QUEUE_SEQ_HEADER	(1ULL << 2) /* reserved: 16-byte records of
					       lossy policies, not made yet */

/* Roles, from the open mode of /dev/shmq/NAME. */
#define SHMQ_ROLE_PRODUCER	1	/* O_WRONLY */
#define SHMQ_ROLE_CONSUMER	2	/* O_RDONLY */

/* ---------------------------------------------------------------------
 * /dev/shmq-control
 */

/* SHMQ_IOC_CREATE: create queue @name with @capacity data bytes.
 * Errors: EINVAL (bad name, flags, reserved, capacity not a power of two or
 * below the minimum), ENAMETOOLONG (no NUL in name), EEXIST,
 * EFBIG (capacity above the max_queue_size module parameter),
 * ENOSPC (max_queues or max_total_memory would be exceeded),
 * ENOMEM, EINTR (fatal signal while allocating), EBADF (control device
 * not opened for writing). */
struct shmq_create_args {
	__u64 capacity;
	__u32 flags;		/* none defined: must be 0 */
	__u32 __pad;		/* must be 0 */
	__u64 reserved[4];	/* must be 0 */
	char name[SHMQ_NAME_MAX];
};

/* SHMQ_IOC_CREATE2: create a queue of @max_producers lanes of @lane_size
 * bytes each (docs/design.md, "Lanes"). Each producer that opens the queue
 * gets a lane of its own; its pages are allocated at that open and charged
 * to the opener's memory cgroup. The limits are charged with the worst case
 * (every lane in use) at creation.
 * Errors: as SHMQ_IOC_CREATE, and EINVAL for max_producers above the
 * max_producers module parameter, max_consumers other than 0 or 1,
 * overflow other than SHMQ_OVERFLOW_BLOCK, lag_limit, mode or a gid other
 * than (__u32)-1 (not offered yet: see SHMQ_FEAT_FANOUT, _POLICIES, _OWNER),
 * or any flag. */
struct shmq_create2_args {
	__u64 lane_size;	/* bytes per lane: power of two >= min_capacity */
	__u64 lag_limit;	/* fan-out, block: must be 0 for now */
	__u32 flags;		/* SHMQ_CREATE_*: none offered, must be 0 */
	__u32 max_producers;	/* lanes; 0: 64 (or the parameter if lower) */
	__u32 max_consumers;	/* 0 or 1 for now */
	__u32 overflow;		/* SHMQ_OVERFLOW_*: BLOCK (0) for now */
	__u32 mode;		/* 0 for now (the udev rules decide) */
	__u32 gid;		/* (__u32)-1 for now */
	__u64 reserved[4];	/* must be 0 */
	char name[SHMQ_NAME_MAX];
};

#define SHMQ_OVERFLOW_BLOCK		0	/* producers wait for room */
#define SHMQ_OVERFLOW_FAIL		1	/* reserved (fan-out) */
#define SHMQ_OVERFLOW_DROP_NEWEST	2	/* reserved (fan-out) */
#define SHMQ_OVERFLOW_OVERWRITE_OLDEST	3	/* reserved (fan-out) */
#define SHMQ_OVERFLOW_LATEST		4	/* reserved (fan-out) */

/* The default and the ceiling of max_producers (the ceiling can be lowered
 * with the max_producers module parameter). */
#define SHMQ_DEFAULT_PRODUCERS	64
#define SHMQ_MAX_PRODUCERS	1024

/* SHMQ_IOC_DESTROY: remove queue @name from the namespace. Its device node
 * disappears at once; open files and mappings stay valid until closed, but
 * waits on them fail with EIDRM. The memory is freed with the last file.
 * Errors: EINVAL, ENAMETOOLONG, ENOENT, EBADF as above. */
struct shmq_destroy_args {
	__u32 flags;		/* none defined: must be 0 */
	__u32 __pad;		/* must be 0 */
	__u64 reserved[3];	/* must be 0 */
	char name[SHMQ_NAME_MAX];
};

/* ---------------------------------------------------------------------
 * /dev/shmq/NAME (a "queue fd": producer or consumer)
 */

/* One mmap-able region of the ring fd. */
struct shmq_region {
	__u64 offset;		/* mmap offset, page aligned */
	__u64 size;		/* bytes, page multiple */
};

/* SHMQ_IOC_LAYOUT: describe the shared memory of this queue. Written by the
 * kernel; user space must never hard-code any of these numbers. Every
 * reserved field is written as 0; a later module puts something there only
 * together with a feature or queue_features bit that says so.
 *
 * Regions (each mapped on its own, see docs/abi.md for protections):
 *   status:   kernel-written, read-only for both roles
 *   producer: written by the producer (tail, write_armed), read-only for
 *             the consumer
 *   consumer: written by the consumer (head, read_armed), read-only for
 *             the producer
 *   data:     written by the producer, read-only for the consumer
 */
struct shmq_layout {
	__u64 features;		/* SHMQ_FEAT_*: what the module offers */
	__u64 queue_features;	/* SHMQ_QUEUE_*: what this queue is */
	__u64 capacity;		/* data region bytes, power of two */
	__u64 max_message;	/* largest payload: capacity/4 - header */
	__u64 min_capacity;	/* smallest capacity SHMQ_IOC_CREATE takes */
	__u32 role;		/* SHMQ_ROLE_* of this fd */
	__u32 page_size;
	__u32 record_header_size; /* sizeof(struct shmq_record) */
	__u32 record_align;	/* records start at multiples of this */
	struct shmq_region status;
	struct shmq_region producer;
	struct shmq_region consumer;
	struct shmq_region data;
	/* byte offsets of the shared fields inside their regions */
	__u32 tail_off;		/* __u64, producer region */
	__u32 write_armed_off;	/* __u32, producer region */
	__u32 head_off;		/* __u64, consumer region */
	__u32 read_armed_off;	/* __u32, consumer region */
	__u32 state_off;	/* __u32, status region, SHMQ_STATE_* */
	__u32 read_wake_off;	/* __u32, status region, SHMQ_WAKE_* */
	__u32 write_wake_off;	/* __u32, status region, SHMQ_WAKE_* */
	__u32 write_need_off;	/* __u64, status region */
	__u64 reserved[8];	/* written as 0 */
};

/* ---------------------------------------------------------------------
 * Lanes (SHMQ_FEAT_LANES, SHMQ_FEAT_REGIONS; docs/design.md, "Lanes").
 *
 * The status region of every queue starts with the state word and the
 * read-side wake word (offsets in the layout), then holds the lane
 * directory: one struct shmq_lane_dir per lane, at dir_off + lane *
 * dir_stride. Written by the kernel under its lock, read-only for
 * everybody; dir_gen (a __u32 in the status region) is incremented with
 * release semantics after every change of an entry's state or generation.
 */
#define SHMQ_LANE_FREE		0	/* no producer, no pages */
#define SHMQ_LANE_ATTACHED	1	/* a producer holds it */
#define SHMQ_LANE_DRAINING	2	/* its producer has gone; what it
					   committed is still delivered */

struct shmq_lane_dir {
	__u32 state;		/* SHMQ_LANE_* */
	__u32 generation;	/* new (never 0) at every attach */
	__u32 write_wake;	/* SHMQ_WAKE_* of this lane's producer */
	__u32 __pad;
	__u64 write_need;	/* smallest need of its sleepers */
	__u64 reserved[5];
};

/* Kinds of struct shmq_region2. */
#define SHMQ_REGION_STATUS	1	/* state, wake words, lane directory */
#define SHMQ_REGION_CONSUMER	2	/* a consumer slot: read_armed, heads */
#define SHMQ_REGION_LANE	3	/* a lane: its producer page, then
					   lane_size bytes of records */

struct shmq_region2 {
	__u32 kind;		/* SHMQ_REGION_* */
	__u32 index;		/* consumer slot or lane */
	__u64 offset;		/* mmap offset in the ring fd, page aligned */
	__u64 size;		/* bytes, page multiple */
	__u32 prot;		/* what this fd may map: PROT_READ, or
				   PROT_READ | PROT_WRITE */
	__u32 __pad;
};

/* SHMQ_IOC_LAYOUT2 (in/out): the layout as a list of regions. The caller
 * passes @regions (a user pointer to @regions_cap entries); the kernel
 * writes min(cap, count) entries and every other field. Lanes that this
 * fd may not map at all (other producers' lanes, for a producer) are not
 * listed. A consumer may map every lane at once: the lanes are contiguous
 * from the first one's offset, lane_stride bytes apart, and a free lane
 * reads as zeros. Errors: EINVAL (non-zero reserved or output fields on
 * input), EFAULT. */
struct shmq_layout2 {
	__u64 regions;		/* in: user pointer to struct shmq_region2[] */
	__u32 regions_cap;	/* in: entries there */
	__u32 regions_count;	/* out: entries of the whole list */
	__u64 features;		/* SHMQ_FEAT_* */
	__u64 queue_features;	/* SHMQ_QUEUE_* */
	__u64 lane_size;	/* data bytes per lane, power of two */
	__u64 max_message;	/* largest payload: lane_size/4 - header */
	__u64 min_capacity;	/* smallest lane_size SHMQ_IOC_CREATE2 takes */
	__u64 lane_stride;	/* bytes from one lane region to the next */
	__u32 role;		/* SHMQ_ROLE_* of this fd */
	__u32 page_size;
	__u32 record_header_size;
	__u32 record_align;
	__u32 max_producers;	/* lanes */
	__u32 max_consumers;	/* consumer slots (1) */
	__u32 overflow;		/* SHMQ_OVERFLOW_* */
	__u32 slot;		/* producer: its lane; consumer: its slot */
	/* byte offsets of the shared fields inside their regions */
	__u32 tail_off;		/* __u64, lane region (producer page) */
	__u32 write_armed_off;	/* __u32, lane region */
	__u32 data_off;		/* lane region: first byte of the records */
	__u32 read_armed_off;	/* __u32, consumer region */
	__u32 head_off;		/* __u64, consumer region: head of lane 0 */
	__u32 head_stride;	/* bytes from head of lane j to lane j + 1 */
	__u32 state_off;	/* __u32, status region, SHMQ_STATE_* */
	__u32 read_wake_off;	/* __u32, status region, SHMQ_WAKE_* */
	__u32 dir_gen_off;	/* __u32, status region */
	__u32 dir_off;		/* struct shmq_lane_dir of lane 0 */
	__u32 dir_stride;	/* bytes from one entry to the next */
	__u32 __pad;
	__u64 reserved[8];	/* written as 0 */
};

/* SHMQ_IOC_LANE_INFO (in/out, consumer): who holds or held @lane. The
 * credentials are the producer's at its open (its file's credentials and
 * thread group), translated into the caller's user and pid namespaces:
 * uid/gid (__u32)-1 when not mapped there, pid 0 when the producer is not
 * visible there or has exited. Errors: EINVAL (lane out of range, non-zero
 * reserved fields), ENOENT (the lane is free), EACCES (not a consumer). */
struct shmq_lane_info {
	__u32 lane;		/* in */
	__u32 state;		/* out: SHMQ_LANE_* */
	__u32 generation;	/* out */
	__u32 uid;		/* out: effective uid at open */
	__u32 gid;		/* out: effective gid at open */
	__s32 pid;		/* out: thread-group id */
	__u64 bytes_queued;	/* out: tail - head for this consumer, clamped */
	__u64 reserved[4];	/* in: must be 0; out: 0 */
};

/* SHMQ_IOC_LANE_DROP (consumer): detach lane @lane of @generation, whose
 * records the consumer found corrupt: it leaves the directory at once and
 * nothing more its producer writes reaches any consumer; the producer's
 * next wait or wake fails with ECONNRESET and its lane is freed when it
 * closes. Errors: EINVAL (range, reserved, flags), ESTALE (the lane is not
 * at @generation any more), ENOENT (free), EACCES (not a consumer). */
struct shmq_lane_ref {
	__u32 lane;
	__u32 generation;
	__u32 flags;		/* must be 0 */
	__u32 __pad;		/* must be 0 */
	__u64 reserved[2];	/* must be 0 */
};

/* Bits of the status region's state word. */
#define SHMQ_STATE_PRODUCER	(1U << 0) /* a producer is attached */
#define SHMQ_STATE_CONSUMER	(1U << 1) /* a consumer is attached */
#define SHMQ_STATE_DESTROYED	(1U << 2) /* queue removed by SHMQ_IOC_DESTROY */

/* Bits of the status region's read_wake (the consumer side) and write_wake
 * (the producer side) words: what the other side must check after it moved
 * its counter, to decide whether to call SHMQ_IOC_WAKE (docs/design.md,
 * "Waiting and waking"). 0: nobody to wake.
 *  SLEEPER:    a task of that side sleeps in SHMQ_IOC_WAIT; on the write
 *              side write_need is the smallest min_bytes of the sleepers
 *  POLL_ARMED: a poller is registered and the last poll found the
 *              condition false
 *  POLLED:     a poller is registered; wake it only if that side's own
 *              armed word (read_armed, write_armed) is non-zero
 * The conditions: read side, the ring became non-empty; write side,
 * free space reached write_need (SLEEPER) or capacity/2 (pollers). */
#define SHMQ_WAKE_SLEEPER	(1U << 0)
#define SHMQ_WAKE_POLL_ARMED	(1U << 1)
#define SHMQ_WAKE_POLLED	(1U << 2)

/* SHMQ_IOC_WAIT conditions. */
#define SHMQ_WAIT_READABLE	1	/* consumer: tail != head */
#define SHMQ_WAIT_WRITABLE	2	/* producer: free bytes >= min_bytes */

/* SHMQ_IOC_WAIT flags. */
#define SHMQ_WAIT_IGNORE_HUP	(1U << 0) /* keep waiting for a new peer
					     instead of failing with EPIPE */
#define SHMQ_WAIT_DIR_GEN	(1U << 1) /* READABLE on a lane queue: also
					     return 0 at once when dir_gen
					     differs from reserved[0] */
#define SHMQ_WAIT_FLAGS_ALL	(SHMQ_WAIT_IGNORE_HUP | SHMQ_WAIT_DIR_GEN)

/* SHMQ_IOC_WAIT: sleep until @cond holds, evaluated by the kernel from the
 * shared counters, or until the absolute CLOCK_MONOTONIC time @timeout_ns
 * (of the caller's time namespace; every value from 2^63 - 1 to U64_MAX
 * means no timeout). Returns 0 when the condition holds.
 * Errors: ETIMEDOUT; EINTR (signal, restarted with SA_RESTART);
 * ECANCELED (SHMQ_IOC_INTERRUPT on this queue fd, taken by a wait that
 * would sleep);
 * EPIPE (condition false and the peer that was attached has gone);
 * EIDRM (condition false and the queue was destroyed);
 * EINVAL (cond not allowed for this role, bad flags/reserved,
 * READABLE with min_bytes != 0, WRITABLE with min_bytes 0 or > capacity). */
struct shmq_wait_args {
	__u64 timeout_ns;
	__u64 min_bytes;
	__u32 cond;		/* SHMQ_WAIT_READABLE or SHMQ_WAIT_WRITABLE */
	__u32 flags;		/* SHMQ_WAIT_* */
	__u64 reserved[2];	/* must be 0; with SHMQ_WAIT_DIR_GEN,
				   reserved[0] is the dir_gen seen */
};

/* SHMQ_IOC_RING_FD: return a new fd (the return value of ioctl) that maps
 * this queue's regions with the protections of the caller's role. The
 * argument is the fd flags: 0 or O_CLOEXEC. The ring fd keeps the
 * attachment alive: the peer detaches when the queue fd, every ring fd and
 * every mapping are gone. */

/* SHMQ_IOC_WAKE: wake the other side (the producer wakes readers, the
 * consumer wakes writers and pollers). The argument must be 0, except for
 * a consumer of a lane queue: 0 wakes the producers of every lane,
 * lane + 1 only that lane's (EINVAL beyond max_producers). A producer of
 * a dropped lane gets ECONNRESET. */

/* SHMQ_IOC_INTERRUPT: make the SHMQ_IOC_WAIT sleeping on this queue fd's
 * attachment, or the next one that would sleep, return ECANCELED: a way for
 * another thread to stop a blocked sender or receiver. A wait whose
 * condition holds, or whose deadline has passed, leaves it pending. The
 * argument must be 0. */

/* The ioctl type: free in Documentation/userspace-api/ioctl/ioctl-number.rst
 * of 6.1 and in the uapi headers of 6.12 (0xB7, used before 0.4.0, belongs
 * to nsfs and remoteproc). */
#define SHMQ_IOC_MAGIC		0xBA

#define SHMQ_IOC_CREATE		_IOW(SHMQ_IOC_MAGIC, 0x00, struct shmq_create_args)
#define SHMQ_IOC_DESTROY	_IOW(SHMQ_IOC_MAGIC, 0x01, struct shmq_destroy_args)
#define SHMQ_IOC_LAYOUT		_IOR(SHMQ_IOC_MAGIC, 0x10, struct shmq_layout)
#define SHMQ_IOC_RING_FD	_IO(SHMQ_IOC_MAGIC, 0x11)
#define SHMQ_IOC_WAIT		_IOW(SHMQ_IOC_MAGIC, 0x12, struct shmq_wait_args)
#define SHMQ_IOC_WAKE		_IO(SHMQ_IOC_MAGIC, 0x13)
#define SHMQ_IOC_INTERRUPT	_IO(SHMQ_IOC_MAGIC, 0x14)
#define SHMQ_IOC_CREATE2	_IOW(SHMQ_IOC_MAGIC, 0x02, struct shmq_create2_args)
#define SHMQ_IOC_LAYOUT2	_IOWR(SHMQ_IOC_MAGIC, 0x15, struct shmq_layout2)
#define SHMQ_IOC_LANE_INFO	_IOWR(SHMQ_IOC_MAGIC, 0x16, struct shmq_lane_info)
#define SHMQ_IOC_LANE_DROP	_IOW(SHMQ_IOC_MAGIC, 0x17, struct shmq_lane_ref)

/* ---------------------------------------------------------------------
 * Records in the data region (written by the producer, validated by the
 * consumer: nothing here is trusted by the kernel, which never reads it).
 */
#define SHMQ_RECORD_ALIGN	8
#define SHMQ_REC_MSG		0x4d534751U /* "QGSM": a message */
#define SHMQ_REC_PAD		0x44415051U /* "QPAD": skip to the ring end */

struct shmq_record {
	__u32 len;		/* payload bytes (MSG) or bytes after header (PAD) */
	__u32 type;		/* SHMQ_REC_* */
	/* payload follows, then padding to SHMQ_RECORD_ALIGN */
};

#endif /* _UAPI_LINUX_SHMQ_H */
