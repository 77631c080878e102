// SPDX-License-Identifier: MIT
/*
 * shmq-capi-test: the C API (include/shmq/shmq.h) exercised from C against
 * the real module, in the guest. Built with gcc -std=c11 -Wall -Wextra
 * -Werror and linked statically with libshmq.a; run by the CApi* gtest
 * wrappers (capi_wrap_test.cpp), one section per run:
 *
 *   shmq-capi-test [SECTION...]     no argument: every root section
 *   shmq-capi-test --list
 *
 * Every check counts; a failed check prints "FAIL file:line: what" and makes
 * the exit status 1. Each run ends with "@@SHMQ FIGURE capi_checks N ...".
 * Errors are asserted exactly (return value -1 or SHMQ_MQ_FAILED, and the
 * errno). Child processes report through their exit status only.
 */
#define _GNU_SOURCE
#include <shmq/shmq.h>

#include <shmq/uapi.h> /* the corrupt section plays a hostile peer */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ checks */

static unsigned long checks, failures;

static void failed(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void failed(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	failures++;
	printf("FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static const char *en(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "?";
}

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		checks++;                                                       \
		if (!(cond))                                                    \
			failed(__FILE__, __LINE__, __VA_ARGS__);                \
	} while (0)

/* A call that must fail with -1 and errno @err. */
#define EXPECT_ERR(err, call)                                                   \
	do {                                                                    \
		errno = 0;                                                      \
		long long r_ = (long long)(call);                               \
		int e_ = errno;                                                 \
		CHECK(r_ == -1 && e_ == (err), "%s: want -1/%s, got %lld/%s",  \
		      #call, en(err), r_, en(e_));                              \
	} while (0)

/* A call that must succeed with 0. */
#define EXPECT_OK(call)                                                         \
	do {                                                                    \
		errno = 0;                                                      \
		long long r_ = (long long)(call);                               \
		int e_ = errno;                                                 \
		CHECK(r_ == 0, "%s: want 0, got %lld/%s", #call, r_, en(e_));  \
	} while (0)

/* An open that must fail with errno @err (a descriptor it returns anyway is
 * closed). */
#define EXPECT_OPEN_ERR(err, call)                                              \
	do {                                                                    \
		errno = 0;                                                      \
		shmq_mqd_t m_ = (call);                                         \
		int e_ = errno;                                                 \
		CHECK(m_ == SHMQ_MQ_FAILED && e_ == (err),                      \
		      "%s: want SHMQ_MQ_FAILED/%s, got %s/%s", #call, en(err), \
		      m_ == SHMQ_MQ_FAILED ? "FAILED" : m_ ? "a descriptor" : "NULL", \
		      en(e_));                                                  \
		if (m_ != SHMQ_MQ_FAILED && m_)                                 \
			shmq_mq_close(m_);                                      \
	} while (0)

static shmq_mqd_t open_ok(const char *file, int line, const char *what, shmq_mqd_t m)
{
	checks++;
	if (m == SHMQ_MQ_FAILED)
		failed(file, line, "%s: failed with %s", what, en(errno));
	return m;
}
#define OPEN_OK(call) open_ok(__FILE__, __LINE__, #call, (call))

/* ------------------------------------------------------------------ helpers */

static int slow(void)
{
	const char *v[] = {"SHMQ_TEST_SLOW", "SHMQ_DEBUG_KERNEL"};
	for (unsigned i = 0; i < 2; i++) {
		const char *s = getenv(v[i]);
		if (s && *s && strcmp(s, "0") != 0)
			return 1;
	}
	return 0;
}

/* "Woken promptly" bound and the general patience for children: generous,
 * since guest time under emulation varies with the host's load. */
static long wake_bound_ms(void) { return slow() ? 8000 : 2000; }

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static uint64_t mono_ms(void) { return now_ns(CLOCK_MONOTONIC) / 1000000u; }

/* Absolute time @ms from now on @c (negative: in the past). */
static struct timespec in_ms(clockid_t c, long ms)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	long long ns = (long long)ts.tv_nsec + (long long)ms * 1000000LL;
	ts.tv_sec += (time_t)(ns / 1000000000LL);
	ns %= 1000000000LL;
	if (ns < 0) {
		ns += 1000000000LL;
		ts.tv_sec--;
	}
	ts.tv_nsec = (long)ns;
	return ts;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static unsigned name_seq;
/* A fresh queue name: "capi-TAG-PID-N"; with a leading '/' if @slash. */
static const char *qname(char *buf, size_t n, const char *tag, int slash)
{
	snprintf(buf, n, "%scapi-%s-%d-%u", slash ? "/" : "", tag, (int)getpid(), name_seq++);
	return buf;
}

/* Creates queue @name with @cap ring bytes through the C API (O_CREAT|O_EXCL,
 * then closes that first descriptor). 1 on success. */
static int create_q(const char *name, uint64_t cap)
{
	struct shmq_mq_attr a;
	memset(&a, 0, sizeof a);
	a.mq_flags = SHMQ_MQ_USE_CAPACITY;
	a.mq_capacity = cap;
	shmq_mqd_t m = shmq_mq_open(name, O_RDONLY | O_CREAT | O_EXCL, 0600, &a);
	checks++;
	if (m == SHMQ_MQ_FAILED) {
		failed(__FILE__, __LINE__, "create %s (%llu bytes): %s", name,
		       (unsigned long long)cap, en(errno));
		return 0;
	}
	shmq_mq_close(m);
	return 1;
}

/* A queue of one producer (SHMQ_IOC_CREATE, as `shmqctl create` without
 * --producers): what O_CREAT does not make, with the pipe-like semantics
 * some sections pin. */
static int create_q1(const char *name, uint64_t cap)
{
	struct shmq_create_args a;
	memset(&a, 0, sizeof a);
	a.capacity = cap;
	if (strlen(name) >= sizeof a.name)
		return 0;
	memcpy(a.name, name, strlen(name));
	int fd = open("/dev/shmq-control", O_WRONLY | O_CLOEXEC);
	int ok = fd >= 0 && ioctl(fd, SHMQ_IOC_CREATE, &a) == 0;
	int e = errno;
	if (fd >= 0)
		close(fd);
	checks++;
	if (!ok) {
		failed(__FILE__, __LINE__, "SHMQ_IOC_CREATE %s: %s", name, en(e));
		return 0;
	}
	/* udev may take a moment to make the node */
	for (int i = 0; i < 2000; i++) {
		char path[128];
		snprintf(path, sizeof path, "/dev/shmq/%s", name);
		if (access(path, F_OK) == 0)
			return 1;
		sleep_ms(1);
	}
	failed(__FILE__, __LINE__, "/dev/shmq/%s did not appear", name);
	return 0;
}

static void unlink_q(const char *name)
{
	if (shmq_mq_unlink(name) != 0 && errno != ENOENT)
		failed(__FILE__, __LINE__, "unlink %s: %s", name, en(errno));
}

/* The end of most tests: close whichever ends were opened, remove the queue. */
static void close_pair_and_unlink(shmq_mqd_t p, shmq_mqd_t c, const char *name)
{
	if (p != SHMQ_MQ_FAILED)
		shmq_mq_close(p);
	if (c != SHMQ_MQ_FAILED)
		shmq_mq_close(c);
	unlink_q(name);
}

/* Message @seq of @len bytes: a pattern any corruption or mix-up shows. */
static void fill(char *p, size_t len, uint32_t seq)
{
	uint32_t x = seq * 2654435761u + (uint32_t)len;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (char)(x >> 24);
	}
	if (len >= 4)
		memcpy(p, &seq, 4);
}
static int matches(const char *p, size_t len, uint32_t seq)
{
	static char want[1 << 17];
	if (len > sizeof want)
		return 0;
	fill(want, len, seq);
	return memcmp(p, want, len) == 0;
}

/* Size of message @seq, 0..max. */
static size_t size_of(uint32_t seq, size_t max)
{
	uint32_t x = seq * 2246822519u + 374761393u;
	x ^= x >> 15;
	size_t s = (x % 8 == 0) ? x % (max + 1) : x % (max < 300 ? max + 1 : 301);
	return s;
}

/* Fills a producer's ring with @len-byte messages until it is full, using
 * O_NONBLOCK through setattr and restoring the flags. Returns the count. */
static long fill_ring(shmq_mqd_t p, size_t len)
{
	struct shmq_mq_attr old, nb;
	char buf[256];
	memset(buf, 0x5a, sizeof buf);
	memset(&nb, 0, sizeof nb);
	if (shmq_mq_getattr(p, &old) != 0)
		return -1;
	nb.mq_flags = old.mq_flags | O_NONBLOCK;
	shmq_mq_setattr(p, &nb, NULL);
	long n = 0;
	while (shmq_mq_send(p, buf, len, 0) == 0)
		n++;
	CHECK(errno == EAGAIN, "filling the ring ended with %s, want EAGAIN", en(errno));
	shmq_mq_setattr(p, &old, NULL);
	return n;
}

/* Waits for child @pid; returns its exit status (or 128 + signal). */
static int reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

static int revents(int fd, short events, int timeout_ms)
{
	struct pollfd p = {fd, events, 0};
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : (r == 0 ? 0 : p.revents);
}

/* ------------------------------------------------------------------ sections */

static void t_open(void)
{
	char n[80], n2[80], n3[80], slashed[96];
	char longname[300];
	struct shmq_mq_attr a, got;

	/* names */
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(NULL, O_RDONLY));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open("", O_RDONLY));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open("/", O_RDONLY));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open("//x", O_RDONLY));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open("a/b", O_RDONLY));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(".hidden", O_RDONLY));
	/* a leading '-' reads as an option to shell tools (issue 14) */
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open("-rf", O_RDONLY));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open("/-rf", O_WRONLY));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open("--help", O_WRONLY | O_CREAT, 0600, NULL));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open("-", O_RDONLY | O_CREAT | O_EXCL, 0600, NULL));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open("sp ace", O_WRONLY));
	memset(longname, 'n', sizeof longname);
	longname[64] = '\0';
	EXPECT_OPEN_ERR(ENAMETOOLONG, shmq_mq_open(longname, O_RDONLY));
	/* 63 characters are fine, also behind a '/' */
	longname[63] = '\0';
	EXPECT_OPEN_ERR(ENOENT, shmq_mq_open(longname, O_RDONLY));
	memmove(longname + 1, longname, 64);
	longname[0] = '/';
	EXPECT_OPEN_ERR(ENOENT, shmq_mq_open(longname, O_WRONLY));
	memset(longname, 'n', sizeof longname);
	longname[sizeof longname - 1] = '\0';
	longname[0] = '/';
	EXPECT_OPEN_ERR(ENAMETOOLONG, shmq_mq_open(longname, O_WRONLY));
	EXPECT_OPEN_ERR(ENAMETOOLONG, shmq_mq_open(longname, O_WRONLY | O_CREAT, 0600, NULL));

	/* flags */
	qname(n, sizeof n, "open", 0);
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDWR));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_ACCMODE));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_TRUNC));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_WRONLY | O_APPEND));
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDWR | O_CREAT, 0600, NULL));
	EXPECT_OPEN_ERR(ENOENT, shmq_mq_open(n, O_RDONLY));
	EXPECT_OPEN_ERR(ENOENT, shmq_mq_open(n, O_WRONLY | O_NONBLOCK));
	EXPECT_OPEN_ERR(ENOENT, shmq_mq_open(n, O_WRONLY | O_EXCL)); /* O_EXCL alone: no effect */

	/* attributes for O_CREAT (nothing may be created by a refused call) */
	memset(&a, 0, sizeof a);
	a.mq_maxmsg = 0;
	a.mq_msgsize = 100;
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, &a));
	a.mq_maxmsg = 10;
	a.mq_msgsize = 0;
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, &a));
	a.mq_msgsize = -1;
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, &a));
	a.mq_msgsize = 100;
	a.mq_maxmsg = -5;
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, &a));
	a.mq_maxmsg = 1L << 62;
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, &a));
	a.mq_maxmsg = 10;
	a.mq_msgsize = 1L << 40;
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, &a));
	memset(&a, 0, sizeof a);
	a.mq_flags = SHMQ_MQ_USE_CAPACITY;
	a.mq_capacity = 12288; /* not a power of two */
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, &a));
	a.mq_capacity = 2048; /* below 4096 */
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, &a));
	a.mq_capacity = 4096;
	a.mq_msgsize = 1017; /* max_message of 4096 is 1016 */
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, &a));
	a.mq_msgsize = 100;
	a.mq_maxmsg = 40; /* 41 records of 112 bytes > 4096 */
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, &a));
	memset(&a, 0, sizeof a);
	a.mq_flags = SHMQ_MQ_USE_CAPACITY;
	a.mq_capacity = 1ULL << 40; /* above the module's max_queue_size (EFBIG) */
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT | O_EXCL, 0600, &a));
	EXPECT_OPEN_ERR(ENOENT, shmq_mq_open(n, O_RDONLY));

	/* O_CREAT derives the capacity: 10 x 100 bytes -> 4096 */
	memset(&a, 0, sizeof a);
	a.mq_maxmsg = 10;
	a.mq_msgsize = 100;
	a.mq_flags = 12345; /* ignored by open, as in POSIX (no SHMQ_MQ_USE_CAPACITY) */
	a.mq_curmsgs = -7;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY | O_CREAT | O_EXCL, 0600, &a));
	if (c != SHMQ_MQ_FAILED) {
		memset(&got, 0xa5, sizeof got);
		EXPECT_OK(shmq_mq_getattr(c, &got));
		CHECK(got.mq_capacity == 4096, "capacity %llu, want 4096",
		      (unsigned long long)got.mq_capacity);
		CHECK(got.mq_msgsize == 1016, "mq_msgsize %ld, want 1016", got.mq_msgsize);
		CHECK(got.mq_maxmsg == 4, "mq_maxmsg %ld, want 4", got.mq_maxmsg);
		/* a queue of several producers: queue semantics, not EPIPE */
		CHECK(got.mq_flags == SHMQ_MQ_IGNORE_HUP, "mq_flags %ld, want SHMQ_MQ_IGNORE_HUP",
		      got.mq_flags);
		CHECK(got.mq_curmsgs == 0 && got.mq_curbytes == 0, "empty queue: %ld msgs %llu bytes",
		      got.mq_curmsgs, (unsigned long long)got.mq_curbytes);
		CHECK(got.mq_reserved[0] == 0 && got.mq_reserved[2] == 0, "reserved not zeroed");
		CHECK(got.mq_maxproducers == 64, "mq_maxproducers %llu, want 64 (O_CREAT's default)",
		      (unsigned long long)got.mq_maxproducers);
	}
	/* exists now */
	EXPECT_OPEN_ERR(EEXIST, shmq_mq_open(n, O_WRONLY | O_CREAT | O_EXCL, 0600, NULL));
	/* a second consumer, also through O_CREAT without O_EXCL (opens) */
	EXPECT_OPEN_ERR(EBUSY, shmq_mq_open(n, O_RDONLY));
	EXPECT_OPEN_ERR(EBUSY, shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, NULL));
	/* O_CREAT of a queue that exists ignores attr, even an invalid one (as
	 * POSIX); with O_EXCL it is checked first */
	memset(&a, 0xa5, sizeof a);
	a.mq_maxmsg = -1;
	{
		shmq_mqd_t w = OPEN_OK(shmq_mq_open(n, O_WRONLY | O_CREAT, 0600, &a));
		if (w != SHMQ_MQ_FAILED) {
			EXPECT_OK(shmq_mq_getattr(w, &got));
			CHECK(got.mq_capacity == 4096, "capacity %llu after an ignored attr",
			      (unsigned long long)got.mq_capacity);
			EXPECT_OK(shmq_mq_close(w));
		}
	}
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_WRONLY | O_CREAT | O_EXCL, 0600, &a));
	/* "/name" is the same queue */
	snprintf(slashed, sizeof slashed, "/%s", n);
	shmq_mqd_t p = OPEN_OK(shmq_mq_open(slashed, O_WRONLY | O_CREAT, 0600, NULL));
	/* O_CREAT made a queue of 64 producers: a second one opens */
	{
		shmq_mqd_t p2 = OPEN_OK(shmq_mq_open(n, O_WRONLY));
		if (p2 != SHMQ_MQ_FAILED)
			EXPECT_OK(shmq_mq_close(p2));
	}
	if (p != SHMQ_MQ_FAILED && c != SHMQ_MQ_FAILED) {
		char buf[2048];
		unsigned prio = 99;
		EXPECT_OK(shmq_mq_send(p, "via slash", 9, 0));
		CHECK(shmq_mq_receive(c, buf, sizeof buf, &prio) == 9 && memcmp(buf, "via slash", 9) == 0,
		      "message through \"/name\" not received");
		CHECK(prio == 0, "priority %u, want 0", prio);
	}
	if (p != SHMQ_MQ_FAILED)
		EXPECT_OK(shmq_mq_close(p));
	if (c != SHMQ_MQ_FAILED)
		EXPECT_OK(shmq_mq_close(c));
	/* roles are free again after close */
	c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	if (c != SHMQ_MQ_FAILED)
		EXPECT_OK(shmq_mq_close(c));

	/* O_CREAT with attr NULL: Linux's defaults (10 x 8192) -> 128 KiB */
	qname(n2, sizeof n2, "open", 1);
	p = OPEN_OK(shmq_mq_open(n2, O_WRONLY | O_CREAT | O_NONBLOCK, 0644, NULL));
	if (p != SHMQ_MQ_FAILED) {
		EXPECT_OK(shmq_mq_getattr(p, &got));
		CHECK(got.mq_capacity == 131072 && got.mq_msgsize == 32760 &&
			      got.mq_flags == (O_NONBLOCK | SHMQ_MQ_IGNORE_HUP),
		      "defaults: capacity %llu msgsize %ld flags %ld", (unsigned long long)got.mq_capacity,
		      got.mq_msgsize, got.mq_flags);
		CHECK(got.mq_msgsize >= 8192 && (uint64_t)got.mq_capacity >= 11 * 8200,
		      "defaults do not hold 10 x 8192");
		EXPECT_OK(shmq_mq_close(p));
	}
	/* an explicit capacity */
	qname(n3, sizeof n3, "open", 0);
	memset(&a, 0, sizeof a);
	a.mq_flags = SHMQ_MQ_USE_CAPACITY;
	a.mq_capacity = 65536;
	a.mq_msgsize = 16376;
	p = OPEN_OK(shmq_mq_open(n3, O_WRONLY | O_CREAT | O_EXCL, 0600, &a));
	if (p != SHMQ_MQ_FAILED) {
		EXPECT_OK(shmq_mq_getattr(p, &got));
		CHECK(got.mq_capacity == 65536 && got.mq_msgsize == 16376,
		      "capacity %llu msgsize %ld", (unsigned long long)got.mq_capacity, got.mq_msgsize);
		EXPECT_OK(shmq_mq_close(p));
	}

	/* unlink */
	EXPECT_ERR(EINVAL, shmq_mq_unlink(NULL));
	EXPECT_ERR(EINVAL, shmq_mq_unlink("/"));
	EXPECT_ERR(EINVAL, shmq_mq_unlink("a/b"));
	EXPECT_ERR(EINVAL, shmq_mq_unlink("-rf"));
	EXPECT_ERR(EINVAL, shmq_mq_unlink("/-rf"));
	EXPECT_ERR(ENAMETOOLONG, shmq_mq_unlink(longname));
	EXPECT_OK(shmq_mq_unlink(n3));
	EXPECT_ERR(ENOENT, shmq_mq_unlink(n3));
	EXPECT_OPEN_ERR(ENOENT, shmq_mq_open(n3, O_WRONLY));
	EXPECT_OK(shmq_mq_unlink(slashed));
	EXPECT_ERR(ENOENT, shmq_mq_unlink(n));
	EXPECT_OK(shmq_mq_unlink(n2 + 1)); /* created as "/name" */
	EXPECT_ERR(ENOENT, shmq_mq_unlink(n2));
}

/* Opens @name with O_CREAT|O_EXCL and @a, checks that the ring has @want
 * bytes, closes and unlinks it. */
static void created_with(const char *name, const struct shmq_mq_attr *a, uint64_t want,
			 const char *what)
{
	struct shmq_mq_attr got;
	shmq_mqd_t m = shmq_mq_open(name, O_RDONLY | O_CREAT | O_EXCL, 0600, a);
	checks++;
	if (m == SHMQ_MQ_FAILED) {
		failed(__FILE__, __LINE__, "%s: open failed with %s, want a %llu-byte queue", what,
		       en(errno), (unsigned long long)want);
		return;
	}
	memset(&got, 0, sizeof got);
	EXPECT_OK(shmq_mq_getattr(m, &got));
	CHECK(got.mq_capacity == want, "%s: capacity %llu, want %llu", what,
	      (unsigned long long)got.mq_capacity, (unsigned long long)want);
	shmq_mq_close(m);
	unlink_q(name);
}

/* Ported POSIX code sets mq_maxmsg and mq_msgsize and nothing else: the rest
 * of struct shmq_mq_attr is whatever was in memory (here 0xA5 bytes, so
 * mq_capacity is huge and not a power of two, and mq_flags has stray bits).
 * mq_capacity counts only with SHMQ_MQ_USE_CAPACITY in an otherwise clean
 * mq_flags; without it the ring is derived from mq_maxmsg/mq_msgsize. */
static void t_attrgarbage(void)
{
	char n[80];
	struct shmq_mq_attr a;

	/* garbage everywhere but the two POSIX fields: 10 x 100 -> 4096 */
	memset(&a, 0xa5, sizeof a);
	a.mq_maxmsg = 10;
	a.mq_msgsize = 100;
	created_with(qname(n, sizeof n, "garb", 0), &a, 4096, "0xA5 garbage, 10 x 100 bytes");
	/* garbage that happens to be a valid capacity does not count either */
	memset(&a, 0, sizeof a);
	a.mq_maxmsg = 10;
	a.mq_msgsize = 100;
	a.mq_capacity = 1 << 20;
	created_with(qname(n, sizeof n, "garb", 0), &a, 4096, "stray mq_capacity of 1 MiB");
	/* nor does a garbage mq_flags that has the bit among others */
	memset(&a, 0xa5, sizeof a);
	a.mq_flags |= SHMQ_MQ_USE_CAPACITY;
	a.mq_capacity = 1 << 20;
	a.mq_maxmsg = 10;
	a.mq_msgsize = 100;
	created_with(qname(n, sizeof n, "garb", 0), &a, 4096, "the flag among stray mq_flags bits");
	/* without the flag mq_maxmsg and mq_msgsize are required */
	memset(&a, 0, sizeof a);
	a.mq_capacity = 65536;
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(qname(n, sizeof n, "garb", 0),
					     O_RDONLY | O_CREAT | O_EXCL, 0600, &a));
	EXPECT_OPEN_ERR(ENOENT, shmq_mq_open(n, O_RDONLY));

	/* with the flag (alone, or with the flags setattr knows) it counts */
	memset(&a, 0, sizeof a);
	a.mq_flags = SHMQ_MQ_USE_CAPACITY;
	a.mq_capacity = 65536;
	created_with(qname(n, sizeof n, "garb", 0), &a, 65536, "SHMQ_MQ_USE_CAPACITY, 64 KiB");
	a.mq_flags = SHMQ_MQ_USE_CAPACITY | O_NONBLOCK | SHMQ_MQ_IGNORE_HUP;
	a.mq_maxmsg = 10;
	a.mq_msgsize = 100;
	created_with(qname(n, sizeof n, "garb", 0), &a, 65536, "SHMQ_MQ_USE_CAPACITY | O_NONBLOCK");
	a.mq_flags = SHMQ_MQ_USE_CAPACITY;
	a.mq_capacity = 12288;
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(qname(n, sizeof n, "garb", 0),
					     O_RDONLY | O_CREAT | O_EXCL, 0600, &a));
	EXPECT_OPEN_ERR(ENOENT, shmq_mq_open(n, O_RDONLY));
	/* getattr does not report the flag, and setattr refuses it: it only
	 * means something to O_CREAT */
	memset(&a, 0, sizeof a);
	a.mq_maxmsg = 1;
	a.mq_msgsize = 64;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(qname(n, sizeof n, "garb", 0),
					    O_RDONLY | O_CREAT | O_EXCL, 0600, &a));
	if (c != SHMQ_MQ_FAILED) {
		struct shmq_mq_attr got;
		EXPECT_OK(shmq_mq_getattr(c, &got));
		CHECK(!(got.mq_flags & SHMQ_MQ_USE_CAPACITY), "getattr: mq_flags %#lx", got.mq_flags);
		a.mq_flags = SHMQ_MQ_USE_CAPACITY;
		EXPECT_ERR(EINVAL, shmq_mq_setattr(c, &a, NULL));
		shmq_mq_close(c);
	}
	unlink_q(n);
}

/* Every call given @bad (NULL or SHMQ_MQ_FAILED) fails with EBADF; in a
 * child, since a call that takes @bad for a descriptor would crash. Returns
 * the number of wrong results (printed). */
static int child_bad_descriptor(shmq_mqd_t bad, const char *what)
{
	char buf[64];
	unsigned prio = 0;
	struct shmq_mq_attr a;
	const struct timespec later = in_ms(CLOCK_REALTIME, 60000);
	const struct timespec later_m = in_ms(CLOCK_MONOTONIC, 60000);
	int fails = 0;
	memset(&a, 0, sizeof a);
#define CHILD_EBADF(call)                                                       \
	do {                                                                    \
		errno = 0;                                                      \
		long long r_ = (long long)(call);                               \
		if (r_ != -1 || errno != EBADF) {                               \
			printf("FAIL child: %s with %s: %lld/%s, want -1/EBADF\n", \
			       #call, what, r_, en(errno));                     \
			fails++;                                                \
		}                                                               \
	} while (0)
	CHILD_EBADF(shmq_mq_send(bad, "x", 1, 0));
	CHILD_EBADF(shmq_mq_timedsend(bad, "x", 1, 0, &later));
	CHILD_EBADF(shmq_mq_clocksend(bad, "x", 1, 0, CLOCK_MONOTONIC, &later_m));
	CHILD_EBADF(shmq_mq_receive(bad, buf, sizeof buf, &prio));
	CHILD_EBADF(shmq_mq_timedreceive(bad, buf, sizeof buf, &prio, &later));
	CHILD_EBADF(shmq_mq_clockreceive(bad, buf, sizeof buf, &prio, CLOCK_MONOTONIC, &later_m));
	CHILD_EBADF(shmq_mq_getattr(bad, &a));
	CHILD_EBADF(shmq_mq_setattr(bad, &a, &a));
	CHILD_EBADF(shmq_mq_setattr(bad, NULL, NULL));
	CHILD_EBADF(shmq_mq_fd(bad));
	CHILD_EBADF(shmq_mq_close(bad));
	CHILD_EBADF(shmq_mq_close(bad)); /* still nothing to free */
#undef CHILD_EBADF
	fflush(stdout);
	return fails;
}

/* SHMQ_MQ_FAILED is (shmq_mqd_t)-1, what a ported `q == (mqd_t)-1` check
 * becomes when renamed; every failed open returns it, and every call takes
 * it, as NULL, for a bad descriptor (EBADF). */
static void t_failed(void)
{
	char n[80];
	struct shmq_mq_attr a;
	CHECK(SHMQ_MQ_FAILED == (shmq_mqd_t)-1, "SHMQ_MQ_FAILED is %p, want (shmq_mqd_t)-1",
	      (void *)SHMQ_MQ_FAILED);
	/* failed opens, one per kind of check, return exactly (shmq_mqd_t)-1 */
	qname(n, sizeof n, "failed", 0);
	memset(&a, 0, sizeof a);
	const struct {
		const char *what;
		shmq_mqd_t m;
		int err;
	} opens[] = {
		{"NULL name", shmq_mq_open(NULL, O_RDONLY), EINVAL},
		{"bad name", shmq_mq_open("a/b", O_RDONLY), EINVAL},
		{"O_RDWR", shmq_mq_open(n, O_RDWR), EINVAL},
		{"bad attr", shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, &a), EINVAL},
		{"no queue", shmq_mq_open(n, O_WRONLY), ENOENT},
	};
	for (unsigned i = 0; i < sizeof opens / sizeof opens[0]; i++) {
		checks++;
		if (opens[i].m != (shmq_mqd_t)-1)
			failed(__FILE__, __LINE__, "open with %s returned %p, want (shmq_mqd_t)-1",
			       opens[i].what, (void *)opens[i].m);
	}
	{
		errno = 0;
		shmq_mqd_t m = shmq_mq_open(n, O_RDONLY);
		const int e = errno;
		CHECK(m == (shmq_mqd_t)-1 && e == ENOENT, "ported check (q == (mqd_t)-1): %p/%s",
		      (void *)m, en(e));
	}
	if (!create_q(n, 4096))
		return;
	/* EEXIST and EBUSY come from later steps of the open */
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	{
		shmq_mqd_t m = shmq_mq_open(n, O_RDONLY);
		CHECK(m == (shmq_mqd_t)-1 && errno == EBUSY, "EBUSY open returned %p/%s", (void *)m,
		      en(errno));
		m = shmq_mq_open(n, O_WRONLY | O_CREAT | O_EXCL, 0600, NULL);
		CHECK(m == (shmq_mqd_t)-1 && errno == EEXIST, "EEXIST open returned %p/%s", (void *)m,
		      en(errno));
	}
	if (c != SHMQ_MQ_FAILED)
		shmq_mq_close(c);
	unlink_q(n);

	/* every call, given SHMQ_MQ_FAILED or NULL: EBADF */
	const shmq_mqd_t bad[2] = {SHMQ_MQ_FAILED, NULL};
	const char *const names[2] = {"SHMQ_MQ_FAILED", "NULL"};
	for (int i = 0; i < 2; i++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_bad_descriptor(bad[i], names[i]) ? 1 : 0);
		int st = reap(pid);
		CHECK(st == 0, "calls given %s: child status %d (1: wrong results, %d: crashed)",
		      names[i], st, 128 + SIGSEGV);
	}
}

/* EACCES: a child that drops root to the guest's outsider user (uid/gid
 * 2002, not in group shmq; see mkinitramfs.sh). */
static int child_outsider(const char *existing, const char *fresh)
{
	if (setgroups(0, NULL) != 0 || setgid(2002) != 0 || setuid(2002) != 0)
		return 90;
	shmq_mqd_t m;
	int fails = 0;
#define CHILD_OPEN_EACCES(call)                                                 \
	do {                                                                    \
		errno = 0;                                                      \
		m = (call);                                                     \
		if (m != SHMQ_MQ_FAILED || errno != EACCES) {                   \
			printf("FAIL child: %s: %s\n", #call,                  \
			       m != SHMQ_MQ_FAILED ? "opened" : en(errno));     \
			fails++;                                                \
		}                                                               \
		if (m != SHMQ_MQ_FAILED)                                        \
			shmq_mq_close(m);                                       \
	} while (0)
	CHILD_OPEN_EACCES(shmq_mq_open(existing, O_RDONLY));
	CHILD_OPEN_EACCES(shmq_mq_open(existing, O_WRONLY));
	CHILD_OPEN_EACCES(shmq_mq_open(existing, O_WRONLY | O_CREAT, 0600, NULL));
	CHILD_OPEN_EACCES(shmq_mq_open(fresh, O_RDONLY | O_CREAT, 0600, NULL));
	CHILD_OPEN_EACCES(shmq_mq_open(fresh, O_WRONLY | O_CREAT | O_EXCL, 0600, NULL));
	errno = 0;
	if (shmq_mq_unlink(existing) != -1 || errno != EACCES) {
		printf("FAIL child: unlink %s: %s\n", existing, en(errno));
		fails++;
	}
	fflush(stdout);
	return fails ? 1 : 0;
}

static void t_access(void)
{
	char n[80], fresh[80];
	qname(n, sizeof n, "acc", 0);
	qname(fresh, sizeof fresh, "acc", 0);
	if (!create_q(n, 4096))
		return;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(child_outsider(n, fresh));
	int st = reap(pid);
	CHECK(st == 0, "outsider child: status %d (90: could not drop root)", st);
	/* nothing was created or removed by the child */
	EXPECT_ERR(ENOENT, shmq_mq_unlink(fresh));
	EXPECT_OK(shmq_mq_unlink(n));
}

static void t_close(void)
{
	char n[80];
	EXPECT_ERR(EBADF, shmq_mq_close(NULL));
	EXPECT_ERR(EBADF, shmq_mq_close(SHMQ_MQ_FAILED));
	qname(n, sizeof n, "close", 0);
	if (!create_q(n, 4096))
		return;
	shmq_mqd_t p = OPEN_OK(shmq_mq_open(n, O_WRONLY));
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	if (p != SHMQ_MQ_FAILED && c != SHMQ_MQ_FAILED) {
		/* what was sent before close stays queued for the next consumer */
		EXPECT_OK(shmq_mq_send(p, "kept", 4, 0));
		EXPECT_OK(shmq_mq_close(p));
		EXPECT_OK(shmq_mq_close(c));
		c = OPEN_OK(shmq_mq_open(n, O_RDONLY | O_NONBLOCK));
		char buf[1024];
		if (c != SHMQ_MQ_FAILED) {
			CHECK(shmq_mq_receive(c, buf, sizeof buf, NULL) == 4 && memcmp(buf, "kept", 4) == 0,
			      "message sent before close was lost");
			EXPECT_OK(shmq_mq_close(c));
		}
	}
	unlink_q(n);
}

static void t_sendrecv(void)
{
	char n[80], buf[4096], big[2048];
	unsigned prio;
	qname(n, sizeof n, "sr", 0);
	if (!create_q(n, 4096))
		return;
	shmq_mqd_t p = OPEN_OK(shmq_mq_open(n, O_WRONLY));
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	if (p == SHMQ_MQ_FAILED || c == SHMQ_MQ_FAILED)
		goto out;
	const struct timespec later = in_ms(CLOCK_REALTIME, 60000);
	const struct timespec later_m = in_ms(CLOCK_MONOTONIC, 60000);

	/* EBADF: NULL and the wrong role, for every send and receive call */
	EXPECT_ERR(EBADF, shmq_mq_send(NULL, "x", 1, 0));
	EXPECT_ERR(EBADF, shmq_mq_send(c, "x", 1, 0));
	EXPECT_ERR(EBADF, shmq_mq_timedsend(NULL, "x", 1, 0, &later));
	EXPECT_ERR(EBADF, shmq_mq_timedsend(c, "x", 1, 0, &later));
	EXPECT_ERR(EBADF, shmq_mq_clocksend(NULL, "x", 1, 0, CLOCK_MONOTONIC, &later_m));
	EXPECT_ERR(EBADF, shmq_mq_clocksend(c, "x", 1, 0, CLOCK_MONOTONIC, &later_m));
	EXPECT_ERR(EBADF, shmq_mq_receive(NULL, buf, sizeof buf, NULL));
	EXPECT_ERR(EBADF, shmq_mq_receive(p, buf, sizeof buf, NULL));
	EXPECT_ERR(EBADF, shmq_mq_timedreceive(NULL, buf, sizeof buf, NULL, &later));
	EXPECT_ERR(EBADF, shmq_mq_timedreceive(p, buf, sizeof buf, NULL, &later));
	EXPECT_ERR(EBADF, shmq_mq_clockreceive(NULL, buf, sizeof buf, NULL, CLOCK_MONOTONIC, &later_m));
	EXPECT_ERR(EBADF, shmq_mq_clockreceive(p, buf, sizeof buf, NULL, CLOCK_MONOTONIC, &later_m));

	/* EINVAL: priorities, NULL buffers */
	EXPECT_ERR(EINVAL, shmq_mq_send(p, "x", 1, 1));
	EXPECT_ERR(EINVAL, shmq_mq_timedsend(p, "x", 1, 31, &later));
	EXPECT_ERR(EINVAL, shmq_mq_clocksend(p, "x", 1, 7, CLOCK_MONOTONIC, &later_m));
	EXPECT_ERR(EINVAL, shmq_mq_send(p, NULL, 5, 0));
	EXPECT_ERR(EINVAL, shmq_mq_receive(c, NULL, 5, NULL));

	/* EMSGSIZE on send: one byte above mq_msgsize (1016) */
	memset(big, 'b', sizeof big);
	EXPECT_ERR(EMSGSIZE, shmq_mq_send(p, big, 1017, 0));
	EXPECT_ERR(EMSGSIZE, shmq_mq_timedsend(p, big, 2048, 0, &later));
	{
		struct shmq_mq_attr a;
		EXPECT_OK(shmq_mq_getattr(c, &a));
		CHECK(a.mq_curmsgs == 0, "refused sends queued %ld messages", a.mq_curmsgs);
	}

	/* exactly mq_msgsize; EMSGSIZE on receive keeps the message */
	fill(big, 1016, 1016);
	EXPECT_OK(shmq_mq_send(p, big, 1016, 0));
	EXPECT_ERR(EMSGSIZE, shmq_mq_receive(c, buf, 1015, NULL));
	EXPECT_ERR(EMSGSIZE, shmq_mq_receive(c, buf, 0, NULL));
	prio = 77;
	CHECK(shmq_mq_receive(c, buf, 1016, &prio) == 1016 && matches(buf, 1016, 1016),
	      "the message refused with EMSGSIZE was not kept intact");
	CHECK(prio == 0, "priority %u, want 0", prio);

	/* zero-length messages, also with a NULL pointer */
	EXPECT_OK(shmq_mq_send(p, NULL, 0, 0));
	EXPECT_OK(shmq_mq_send(p, "", 0, 0));
	CHECK(shmq_mq_receive(c, NULL, 0, NULL) == 0, "empty message into a NULL buffer");
	CHECK(shmq_mq_receive(c, buf, sizeof buf, NULL) == 0, "empty message");

	/* FIFO order and content over many wraps of the 4 KiB ring */
	{
		uint32_t sent = 0, got = 0;
		long bad = 0;
		while (got < 3000) {
			while (sent < 3000 && sent - got < 3) {
				size_t len = size_of(sent, 1016);
				fill(big, len, sent);
				if (shmq_mq_send(p, big, len, 0) != 0) {
					bad++;
					break;
				}
				sent++;
			}
			ssize_t r = shmq_mq_receive(c, buf, sizeof buf, NULL);
			if (r != (ssize_t)size_of(got, 1016) || !matches(buf, (size_t)r, got))
				bad++;
			got++;
			if (bad)
				break;
		}
		CHECK(bad == 0 && got == 3000, "FIFO exchange: %ld bad at message %u", bad, got);
	}
out:
	close_pair_and_unlink(p, c, n);
}

static void t_nonblock(void)
{
	char n[80], buf[4096];
	struct shmq_mq_attr a, old;
	qname(n, sizeof n, "nb", 0);
	if (!create_q(n, 4096))
		return;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY | O_NONBLOCK));
	shmq_mqd_t p = OPEN_OK(shmq_mq_open(n, O_WRONLY | O_NONBLOCK));
	if (p == SHMQ_MQ_FAILED || c == SHMQ_MQ_FAILED)
		goto out;
	const struct timespec later = in_ms(CLOCK_REALTIME, 60000);
	/* empty: EAGAIN, also for the timed calls (O_NONBLOCK wins) */
	EXPECT_ERR(EAGAIN, shmq_mq_receive(c, buf, sizeof buf, NULL));
	EXPECT_ERR(EAGAIN, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &later));
	EXPECT_ERR(EAGAIN, shmq_mq_clockreceive(c, buf, sizeof buf, NULL, CLOCK_REALTIME, &later));
	/* full: 100-byte messages (112-byte records) -> 36 fit in 4096 */
	memset(buf, 'f', 100);
	long sent = 0;
	while (shmq_mq_send(p, buf, 100, 0) == 0)
		sent++;
	CHECK(errno == EAGAIN, "full ring: %s, want EAGAIN", en(errno));
	CHECK(sent == 4096 / 112, "%ld messages fit, want %d", sent, 4096 / 112);
	EXPECT_ERR(EAGAIN, shmq_mq_send(p, buf, 100, 0));
	EXPECT_ERR(EAGAIN, shmq_mq_timedsend(p, buf, 100, 0, &later));
	EXPECT_ERR(EAGAIN, shmq_mq_clocksend(p, buf, 100, 0, CLOCK_REALTIME, &later));
	/* getattr from both sides agrees with what was sent */
	EXPECT_OK(shmq_mq_getattr(p, &a));
	CHECK(a.mq_curmsgs == sent && a.mq_curbytes == (uint64_t)sent * 112,
	      "producer getattr: %ld msgs %llu bytes, want %ld / %ld", a.mq_curmsgs,
	      (unsigned long long)a.mq_curbytes, sent, sent * 112);
	EXPECT_OK(shmq_mq_getattr(c, &a));
	CHECK(a.mq_curmsgs == sent && a.mq_curbytes == (uint64_t)sent * 112,
	      "consumer getattr: %ld msgs %llu bytes", a.mq_curmsgs, (unsigned long long)a.mq_curbytes);
	CHECK(a.mq_flags == (O_NONBLOCK | SHMQ_MQ_IGNORE_HUP), "mq_flags %ld, want O_NONBLOCK | "
	      "SHMQ_MQ_IGNORE_HUP", a.mq_flags);
	/* clearing O_NONBLOCK with setattr: now the calls wait (and time out) */
	memset(&a, 0, sizeof a);
	memset(&old, 0xa5, sizeof old);
	EXPECT_OK(shmq_mq_setattr(p, &a, &old));
	CHECK(old.mq_flags == (O_NONBLOCK | SHMQ_MQ_IGNORE_HUP) && old.mq_curmsgs == sent,
	      "oldattr: flags %ld msgs %ld",
	      old.mq_flags, old.mq_curmsgs);
	{
		const struct timespec soon = in_ms(CLOCK_REALTIME, 100);
		uint64_t t0 = mono_ms();
		EXPECT_ERR(ETIMEDOUT, shmq_mq_timedsend(p, buf, 100, 0, &soon));
		CHECK(mono_ms() - t0 >= 85, "timed send on a full ring returned after %llu ms, "
		      "before its deadline", (unsigned long long)(mono_ms() - t0));
	}
	/* drain; the consumer sees exactly what was sent */
	long got = 0;
	while (shmq_mq_receive(c, buf, sizeof buf, NULL) == 100)
		got++;
	CHECK(errno == EAGAIN && got == sent, "drained %ld of %ld, then %s", got, sent, en(errno));
	/* setting O_NONBLOCK back with setattr */
	a.mq_flags = O_NONBLOCK;
	EXPECT_OK(shmq_mq_setattr(p, &a, NULL));
	while (shmq_mq_send(p, buf, 100, 0) == 0) {
	}
	CHECK(errno == EAGAIN, "O_NONBLOCK set again: %s, want EAGAIN", en(errno));
out:
	close_pair_and_unlink(p, c, n);
}

static void t_attr(void)
{
	char n[80], buf[4096];
	struct shmq_mq_attr a, old;
	EXPECT_ERR(EBADF, shmq_mq_getattr(NULL, &a));
	EXPECT_ERR(EBADF, shmq_mq_setattr(NULL, NULL, &a));
	qname(n, sizeof n, "attr", 0);
	if (!create_q(n, 8192))
		return;
	shmq_mqd_t p = OPEN_OK(shmq_mq_open(n, O_WRONLY));
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	if (p == SHMQ_MQ_FAILED || c == SHMQ_MQ_FAILED)
		goto out;
	EXPECT_ERR(EINVAL, shmq_mq_getattr(c, NULL));
	memset(&a, 0, sizeof a);
	a.mq_flags = O_APPEND;
	EXPECT_ERR(EINVAL, shmq_mq_setattr(c, &a, NULL));
	a.mq_flags = O_NONBLOCK | O_CREAT;
	EXPECT_ERR(EINVAL, shmq_mq_setattr(p, &a, NULL));
	EXPECT_OK(shmq_mq_getattr(c, &a));
	CHECK(a.mq_flags == SHMQ_MQ_IGNORE_HUP, "a refused setattr changed the flags to %ld",
	      a.mq_flags);
	/* query only; the other fields of newattr are ignored */
	memset(&old, 0xa5, sizeof old);
	EXPECT_OK(shmq_mq_setattr(c, NULL, &old));
	CHECK(old.mq_flags == SHMQ_MQ_IGNORE_HUP && old.mq_capacity == 8192 && old.mq_msgsize == 2040 &&
		      old.mq_maxmsg == 4 && old.mq_reserved[1] == 0,
	      "setattr(NULL, old): flags %ld cap %llu msgsize %ld maxmsg %ld", old.mq_flags,
	      (unsigned long long)old.mq_capacity, old.mq_msgsize, old.mq_maxmsg);
	memset(&a, 0, sizeof a);
	a.mq_flags = SHMQ_MQ_IGNORE_HUP;
	a.mq_msgsize = 5;
	a.mq_capacity = 3;
	EXPECT_OK(shmq_mq_setattr(c, &a, NULL));
	EXPECT_OK(shmq_mq_getattr(c, &a));
	CHECK(a.mq_flags == SHMQ_MQ_IGNORE_HUP && a.mq_msgsize == 2040 && a.mq_capacity == 8192,
	      "after setattr: flags %ld msgsize %ld cap %llu", a.mq_flags, a.mq_msgsize,
	      (unsigned long long)a.mq_capacity);
	a.mq_flags = O_NONBLOCK | SHMQ_MQ_IGNORE_HUP;
	EXPECT_OK(shmq_mq_setattr(c, &a, &old));
	CHECK(old.mq_flags == SHMQ_MQ_IGNORE_HUP, "old flags %ld", old.mq_flags);
	EXPECT_OK(shmq_mq_getattr(c, &a));
	CHECK(a.mq_flags == (O_NONBLOCK | SHMQ_MQ_IGNORE_HUP), "flags %ld", a.mq_flags);
	/* POSIX code sets mq_flags to 0 or O_NONBLOCK: that changes O_NONBLOCK
	 * only, the lane queue keeps its queue semantics */
	a.mq_flags = 0;
	EXPECT_OK(shmq_mq_setattr(p, &a, NULL));
	EXPECT_OK(shmq_mq_getattr(p, &a));
	CHECK(a.mq_flags == SHMQ_MQ_IGNORE_HUP, "setattr(0): flags %#lx, want SHMQ_MQ_IGNORE_HUP",
	      a.mq_flags);
	a.mq_flags = O_NONBLOCK;
	EXPECT_OK(shmq_mq_setattr(p, &a, NULL));
	EXPECT_OK(shmq_mq_getattr(p, &a));
	CHECK(a.mq_flags == (O_NONBLOCK | SHMQ_MQ_IGNORE_HUP),
	      "setattr(O_NONBLOCK): flags %#lx, want O_NONBLOCK | SHMQ_MQ_IGNORE_HUP", a.mq_flags);
	/* both semantics at once: EINVAL, nothing changed */
	a.mq_flags = SHMQ_MQ_IGNORE_HUP | SHMQ_MQ_REPORT_HUP;
	EXPECT_ERR(EINVAL, shmq_mq_setattr(p, &a, NULL));
	EXPECT_OK(shmq_mq_getattr(p, &a));
	CHECK(a.mq_flags == (O_NONBLOCK | SHMQ_MQ_IGNORE_HUP), "refused setattr: flags %#lx",
	      a.mq_flags);
	/* pipe semantics by name; getattr names them, and the saved result
	 * restores queue semantics and O_NONBLOCK */
	a.mq_flags = SHMQ_MQ_REPORT_HUP;
	EXPECT_OK(shmq_mq_setattr(p, &a, &old));
	EXPECT_OK(shmq_mq_getattr(p, &a));
	CHECK(a.mq_flags == SHMQ_MQ_REPORT_HUP, "setattr(REPORT_HUP): flags %#lx", a.mq_flags);
	EXPECT_OK(shmq_mq_setattr(p, &old, NULL));
	EXPECT_OK(shmq_mq_getattr(p, &a));
	CHECK(a.mq_flags == (O_NONBLOCK | SHMQ_MQ_IGNORE_HUP), "restored: flags %#lx", a.mq_flags);
	a.mq_flags = 0;
	EXPECT_OK(shmq_mq_setattr(p, &a, NULL));

	/* counts across the wrap (PAD records are not messages), from both
	 * sides, as messages go in and out */
	{
		long queued = 0;
		uint64_t bytes = 0;
		int bad = 0;
		for (uint32_t i = 0; i < 400 && !bad; i++) {
			size_t len = size_of(i, 600);
			fill(buf, len, i);
			if (shmq_mq_send(p, buf, len, 0) != 0) {
				bad = 1;
				break;
			}
			queued++;
			if (i % 3 == 2) { /* take one of every three... */
				struct shmq_mq_attr x;
				if (shmq_mq_getattr(c, &x) != 0)
					bad = 2;
				bytes = x.mq_curbytes;
				if (x.mq_curmsgs != queued)
					bad = 3;
				if (shmq_mq_getattr(p, &x) != 0 || x.mq_curmsgs != queued ||
				    x.mq_curbytes != bytes)
					bad = 4;
				if (shmq_mq_receive(c, buf, sizeof buf, NULL) < 0)
					bad = 5;
				queued--;
			}
			if (queued >= 6) { /* ...and keep at most 6 queued */
				while (queued > 1) {
					if (shmq_mq_receive(c, buf, sizeof buf, NULL) < 0)
						bad = 6;
					queued--;
				}
			}
		}
		CHECK(bad == 0, "curmsgs/curbytes across wraps: failure kind %d", bad);
	}
out:
	close_pair_and_unlink(p, c, n);
	/* a queue of one producer opens with pipe semantics, named by
	 * getattr; O_NONBLOCK alone keeps them */
	qname(n, sizeof n, "attr1", 0);
	if (!create_q1(n, 4096))
		return;
	c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	if (c != SHMQ_MQ_FAILED) {
		EXPECT_OK(shmq_mq_getattr(c, &a));
		CHECK(a.mq_flags == SHMQ_MQ_REPORT_HUP, "one producer: flags %#lx, want "
		      "SHMQ_MQ_REPORT_HUP", a.mq_flags);
		a.mq_flags = O_NONBLOCK;
		EXPECT_OK(shmq_mq_setattr(c, &a, NULL));
		EXPECT_OK(shmq_mq_getattr(c, &a));
		CHECK(a.mq_flags == (O_NONBLOCK | SHMQ_MQ_REPORT_HUP), "one producer, O_NONBLOCK: "
		      "flags %#lx", a.mq_flags);
	}
	close_pair_and_unlink(SHMQ_MQ_FAILED, c, n);
}

static void t_timed(void)
{
	char n[80], buf[4096];
	qname(n, sizeof n, "tm", 0);
	if (!create_q(n, 4096))
		return;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	shmq_mqd_t p = OPEN_OK(shmq_mq_open(n, O_WRONLY));
	if (p == SHMQ_MQ_FAILED || c == SHMQ_MQ_FAILED)
		goto out;
	struct timespec bad;
	/* invalid deadlines: EINVAL even when the call would not block (Linux) */
	bad = in_ms(CLOCK_REALTIME, 1000);
	bad.tv_nsec = 1000000000L;
	EXPECT_ERR(EINVAL, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &bad));
	EXPECT_ERR(EINVAL, shmq_mq_timedsend(p, "x", 1, 0, &bad));
	bad.tv_nsec = -1;
	EXPECT_ERR(EINVAL, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &bad));
	EXPECT_ERR(EINVAL, shmq_mq_clocksend(p, "x", 1, 0, CLOCK_MONOTONIC, &bad));
	bad.tv_sec = -1;
	bad.tv_nsec = 0;
	EXPECT_ERR(EINVAL, shmq_mq_clockreceive(c, buf, sizeof buf, NULL, CLOCK_MONOTONIC, &bad));
	EXPECT_ERR(EINVAL, shmq_mq_timedsend(p, "x", 1, 0, &bad));
	/* clocks other than REALTIME and MONOTONIC */
	bad = in_ms(CLOCK_MONOTONIC, 1000);
	EXPECT_ERR(EINVAL, shmq_mq_clockreceive(c, buf, sizeof buf, NULL, CLOCK_PROCESS_CPUTIME_ID, &bad));
	EXPECT_ERR(EINVAL, shmq_mq_clocksend(p, "x", 1, 0, CLOCK_BOOTTIME, &bad));
	EXPECT_ERR(EINVAL, shmq_mq_clocksend(p, "x", 1, 0, CLOCK_THREAD_CPUTIME_ID, NULL));
	EXPECT_OK(shmq_mq_send(p, "x", 1, 0));
	{
		struct timespec b2 = in_ms(CLOCK_REALTIME, 1000);
		b2.tv_nsec = 2000000000L;
		EXPECT_ERR(EINVAL, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &b2));
	}

	/* a deadline in the past: what is there is returned, else ETIMEDOUT */
	{
		const struct timespec past_rt = in_ms(CLOCK_REALTIME, -1000);
		const struct timespec zero = {0, 0};
		CHECK(shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &past_rt) == 1 && buf[0] == 'x',
		      "queued message not returned with a past deadline");
		EXPECT_ERR(ETIMEDOUT, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &past_rt));
		EXPECT_ERR(ETIMEDOUT, shmq_mq_clockreceive(c, buf, sizeof buf, NULL, CLOCK_MONOTONIC, &zero));
		EXPECT_ERR(ETIMEDOUT, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &zero));
	}
	/* timing out after the deadline, on both clocks */
	{
		struct timespec d = in_ms(CLOCK_REALTIME, 200);
		uint64_t t0 = mono_ms();
		EXPECT_ERR(ETIMEDOUT, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &d));
		uint64_t el = mono_ms() - t0;
		CHECK(el >= 190, "REALTIME deadline 200 ms ahead: returned after %llu ms",
		      (unsigned long long)el);
		d = in_ms(CLOCK_MONOTONIC, 200);
		t0 = mono_ms();
		EXPECT_ERR(ETIMEDOUT, shmq_mq_clockreceive(c, buf, sizeof buf, NULL, CLOCK_MONOTONIC, &d));
		el = mono_ms() - t0;
		CHECK(el >= 195, "MONOTONIC deadline 200 ms ahead: returned after %llu ms",
		      (unsigned long long)el);
		CHECK(el < 200 + (uint64_t)wake_bound_ms() * 5, "timed out only after %llu ms",
		      (unsigned long long)el);
	}
	/* full ring: timed sends time out on both clocks */
	{
		long k = fill_ring(p, 100);
		CHECK(k >= 35, "%ld messages filled the ring, want 35 or 36", k);
		const struct timespec past_rt = in_ms(CLOCK_REALTIME, -1);
		struct timespec d = in_ms(CLOCK_MONOTONIC, 150);
		EXPECT_ERR(ETIMEDOUT, shmq_mq_timedsend(p, buf, 100, 0, &past_rt));
		uint64_t t0 = mono_ms();
		EXPECT_ERR(ETIMEDOUT, shmq_mq_clocksend(p, buf, 100, 0, CLOCK_MONOTONIC, &d));
		CHECK(mono_ms() - t0 >= 145, "timed send returned after %llu ms",
		      (unsigned long long)(mono_ms() - t0));
		/* drained by a child after a delay: a blocked timed send is
		 * woken. A descriptor does not work across fork (EBADF in the
		 * child), so the parent hands the consumer role over: it closes
		 * its descriptor (the queued messages stay), the child opens
		 * its own and says so before the parent's send, which would
		 * otherwise see the consumer gone (EPIPE). */
		EXPECT_OK(shmq_mq_close(c));
		c = SHMQ_MQ_FAILED;
		int ready[2];
		CHECK(pipe(ready) == 0, "pipe: %s", en(errno));
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			close(ready[0]);
			shmq_mqd_t c2 = shmq_mq_open(n, O_RDONLY);
			if (!c2)
				_exit(2);
			if (write(ready[1], "r", 1) != 1)
				_exit(5);
			sleep_ms(300);
			for (long i = 0; i < k; i++)
				if (shmq_mq_receive(c2, buf, sizeof buf, NULL) != 100)
					_exit(3);
			/* and the one the parent sends once woken */
			if (shmq_mq_receive(c2, buf, sizeof buf, NULL) != 100 || memcmp(buf, "new", 4))
				_exit(4);
			_exit(0);
		}
		close(ready[1]);
		char rb;
		CHECK(read(ready[0], &rb, 1) == 1, "the draining child did not attach");
		close(ready[0]);
		t0 = mono_ms();
		d = in_ms(CLOCK_REALTIME, 10000 + wake_bound_ms());
		memcpy(buf, "new", 4); /* as large as those that filled the ring */
		EXPECT_OK(shmq_mq_timedsend(p, buf, 100, 0, &d));
		uint64_t el = mono_ms() - t0;
		CHECK(el >= 290, "timed send returned after %llu ms, before the child drained",
		      (unsigned long long)el);
		int st = reap(pid);
		CHECK(st == 0, "draining child: status %d", st);
	}
out:
	close_pair_and_unlink(p, c, n);
}

/* A timed receive woken by a message from another process. */
static void t_wake(void)
{
	char n[80], buf[256];
	qname(n, sizeof n, "wk", 0);
	if (!create_q(n, 4096))
		return;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	if (c == SHMQ_MQ_FAILED)
		goto out;
	uint64_t t0 = mono_ms();
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		shmq_mqd_t p = shmq_mq_open(n, O_WRONLY);
		if (p == SHMQ_MQ_FAILED)
			_exit(2);
		sleep_ms(300);
		if (shmq_mq_send(p, "wake", 4, 0) != 0)
			_exit(3);
		/* stay attached until the parent has the message (no EPIPE race) */
		sleep_ms(100);
		shmq_mq_close(p);
		_exit(0);
	}
	long limit = 10000 + wake_bound_ms();
	struct timespec d = in_ms(CLOCK_REALTIME, limit);
	ssize_t r = shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &d);
	uint64_t el = mono_ms() - t0;
	CHECK(r == 4 && memcmp(buf, "wake", 4) == 0, "woken timed receive: %zd (%s)", r, en(errno));
	CHECK(el >= 300 && el < (uint64_t)limit, "woken after %llu ms (sender waited 300 ms)",
	      (unsigned long long)el);
	CHECK(reap(pid) == 0, "sender child failed");
out:
	if (c != SHMQ_MQ_FAILED)
		shmq_mq_close(c);
	unlink_q(n);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void arm(long ms, int restart)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it;
	memset(&it, 0, sizeof it);
	/* repeating, in case one arrives before the call is inside its wait
	 * (the handler would run and the wait would never end) */
	it.it_value.tv_sec = it.it_interval.tv_sec = ms / 1000;
	it.it_value.tv_usec = it.it_interval.tv_usec = (ms % 1000) * 1000;
	setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm(void)
{
	struct itimerval it;
	memset(&it, 0, sizeof it);
	setitimer(ITIMER_REAL, &it, NULL);
}

static void t_eintr(void)
{
	char n[80], buf[256];
	qname(n, sizeof n, "intr", 0);
	if (!create_q(n, 4096))
		return;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	shmq_mqd_t p = OPEN_OK(shmq_mq_open(n, O_WRONLY));
	if (p == SHMQ_MQ_FAILED || c == SHMQ_MQ_FAILED)
		goto out;
	/* a handler without SA_RESTART: EINTR, from every blocking call */
	alarms = 0;
	arm(100, 0);
	EXPECT_ERR(EINTR, shmq_mq_receive(c, buf, sizeof buf, NULL));
	disarm();
	CHECK(alarms >= 1, "no alarm");
	struct timespec d = in_ms(CLOCK_REALTIME, 60000);
	arm(100, 0);
	EXPECT_ERR(EINTR, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &d));
	disarm();
	long k = fill_ring(p, 200);
	CHECK(k > 0, "ring not filled");
	arm(100, 0);
	EXPECT_ERR(EINTR, shmq_mq_send(p, buf, 200, 0));
	disarm();
	d = in_ms(CLOCK_MONOTONIC, 60000);
	arm(100, 0);
	EXPECT_ERR(EINTR, shmq_mq_clocksend(p, buf, 200, 0, CLOCK_MONOTONIC, &d));
	disarm();
	CHECK(alarms >= 4, "%d alarms, want at least 4", (int)alarms);
	/* with SA_RESTART the wait goes on, and its deadline does not move */
	alarms = 0;
	d = in_ms(CLOCK_MONOTONIC, 450);
	uint64_t t0 = mono_ms();
	arm(100, 1);
	EXPECT_ERR(ETIMEDOUT, shmq_mq_clocksend(p, buf, 200, 0, CLOCK_MONOTONIC, &d));
	disarm();
	uint64_t el = mono_ms() - t0;
	CHECK(alarms >= 1, "SA_RESTART: no alarm during the wait");
	CHECK(el >= 445 && el < 450 + (uint64_t)wake_bound_ms() * 5,
	      "SA_RESTART: timed out after %llu ms for a 450 ms deadline", (unsigned long long)el);
	/* drain, then a restarted receive times out at its deadline too */
	for (long i = 0; i < k; i++)
		shmq_mq_receive(c, buf, sizeof buf, NULL);
	alarms = 0;
	d = in_ms(CLOCK_REALTIME, 450);
	t0 = mono_ms();
	arm(100, 1);
	EXPECT_ERR(ETIMEDOUT, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &d));
	disarm();
	el = mono_ms() - t0;
	CHECK(alarms >= 1 && el >= 440, "SA_RESTART receive: %d alarms, %llu ms", (int)alarms,
	      (unsigned long long)el);
	signal(SIGALRM, SIG_DFL);
out:
	close_pair_and_unlink(p, c, n);
}

/* EPIPE (peer gone) and EIDRM (unlinked), and SHMQ_MQ_IGNORE_HUP. */
static void t_peer(void)
{
	char n[80], buf[256];
	struct shmq_mq_attr a;
	qname(n, sizeof n, "peer", 0);
	if (!create_q(n, 4096))
		return;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	if (c == SHMQ_MQ_FAILED)
		goto out;
	/* a queue of several producers opens with queue semantics: ask for
	 * the peer-death notice (EPIPE) with SHMQ_MQ_REPORT_HUP */
	memset(&a, 0, sizeof a);
	a.mq_flags = SHMQ_MQ_REPORT_HUP;
	EXPECT_OK(shmq_mq_setattr(c, &a, NULL));
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		shmq_mqd_t p = shmq_mq_open(n, O_WRONLY);
		if (p == SHMQ_MQ_FAILED || shmq_mq_send(p, "one", 3, 0) || shmq_mq_send(p, "two", 3, 0))
			_exit(2);
		_exit(0); /* exit detaches, as close does */
	}
	CHECK(shmq_mq_receive(c, buf, sizeof buf, NULL) == 3 && !memcmp(buf, "one", 3), "one");
	CHECK(shmq_mq_receive(c, buf, sizeof buf, NULL) == 3 && !memcmp(buf, "two", 3), "two");
	CHECK(reap(pid) == 0, "producer child failed");
	/* drained, producer gone: EPIPE from blocking, timed, non-blocking */
	EXPECT_ERR(EPIPE, shmq_mq_receive(c, buf, sizeof buf, NULL));
	{
		struct timespec d = in_ms(CLOCK_REALTIME, 60000);
		EXPECT_ERR(EPIPE, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &d));
	}
	memset(&a, 0, sizeof a);
	a.mq_flags = O_NONBLOCK;
	EXPECT_OK(shmq_mq_setattr(c, &a, NULL));
	EXPECT_ERR(EPIPE, shmq_mq_receive(c, buf, sizeof buf, NULL));
	/* POLLHUP on the fd */
	{
		int r = revents(shmq_mq_fd(c), POLLIN, 0);
		CHECK(r == POLLHUP, "poll after the producer left: revents %#x, want POLLHUP", r);
	}
	/* SHMQ_MQ_IGNORE_HUP: wait for a new producer like a POSIX queue */
	a.mq_flags = O_NONBLOCK | SHMQ_MQ_IGNORE_HUP;
	EXPECT_OK(shmq_mq_setattr(c, &a, NULL));
	EXPECT_ERR(EAGAIN, shmq_mq_receive(c, buf, sizeof buf, NULL));
	a.mq_flags = SHMQ_MQ_IGNORE_HUP;
	EXPECT_OK(shmq_mq_setattr(c, &a, NULL));
	{
		struct timespec d = in_ms(CLOCK_MONOTONIC, 150);
		EXPECT_ERR(ETIMEDOUT, shmq_mq_clockreceive(c, buf, sizeof buf, NULL, CLOCK_MONOTONIC, &d));
	}
	/* a new producer is received from */
	{
		shmq_mqd_t p = OPEN_OK(shmq_mq_open(n, O_WRONLY));
		if (p != SHMQ_MQ_FAILED) {
			memset(&a, 0, sizeof a);
			a.mq_flags = SHMQ_MQ_REPORT_HUP;
			EXPECT_OK(shmq_mq_setattr(p, &a, NULL));
			EXPECT_OK(shmq_mq_send(p, "three", 5, 0));
			CHECK(shmq_mq_receive(c, buf, sizeof buf, NULL) == 5, "message of the new producer");
			/* producer side: the ring is full and the consumer leaves: EPIPE */
			long k = fill_ring(p, 100);
			CHECK(k >= 35, "%ld messages filled the ring", k);
			EXPECT_OK(shmq_mq_close(c));
			c = SHMQ_MQ_FAILED;
			EXPECT_ERR(EPIPE, shmq_mq_send(p, buf, 100, 0));
			a.mq_flags = O_NONBLOCK;
			EXPECT_OK(shmq_mq_setattr(p, &a, NULL));
			EXPECT_ERR(EPIPE, shmq_mq_send(p, buf, 100, 0));
			int r = revents(shmq_mq_fd(p), POLLOUT, 0);
			CHECK(r == POLLHUP, "producer poll: revents %#x, want POLLHUP", r);
			a.mq_flags = O_NONBLOCK | SHMQ_MQ_IGNORE_HUP;
			EXPECT_OK(shmq_mq_setattr(p, &a, NULL));
			EXPECT_ERR(EAGAIN, shmq_mq_send(p, buf, 100, 0));
			a.mq_flags = SHMQ_MQ_IGNORE_HUP;
			EXPECT_OK(shmq_mq_setattr(p, &a, NULL));
			struct timespec d = in_ms(CLOCK_REALTIME, 150);
			EXPECT_ERR(ETIMEDOUT, shmq_mq_timedsend(p, buf, 100, 0, &d));
			/* unlinked while full: EIDRM, also with IGNORE_HUP */
			EXPECT_OK(shmq_mq_unlink(n));
			EXPECT_ERR(EIDRM, shmq_mq_send(p, buf, 100, 0));
			r = revents(shmq_mq_fd(p), POLLOUT, 0);
			CHECK(r == (POLLERR | POLLHUP), "unlinked: revents %#x, want POLLERR|POLLHUP", r);
			EXPECT_OK(shmq_mq_close(p));
		}
	}
	/* consumer: what is queued is still delivered after unlink, then EIDRM */
	qname(n, sizeof n, "peer", 0);
	if (!create_q(n, 4096))
		goto out;
	c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	{
		shmq_mqd_t p = OPEN_OK(shmq_mq_open(n, O_WRONLY));
		if (c != SHMQ_MQ_FAILED && p != SHMQ_MQ_FAILED) {
			EXPECT_OK(shmq_mq_send(p, "last", 4, 0));
			EXPECT_OK(shmq_mq_unlink(n));
			CHECK(shmq_mq_receive(c, buf, sizeof buf, NULL) == 4, "drain after unlink");
			EXPECT_ERR(EIDRM, shmq_mq_receive(c, buf, sizeof buf, NULL));
			struct timespec d = in_ms(CLOCK_REALTIME, 60000);
			EXPECT_ERR(EIDRM, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &d));
			a.mq_flags = O_NONBLOCK;
			EXPECT_OK(shmq_mq_setattr(c, &a, NULL));
			EXPECT_ERR(EIDRM, shmq_mq_receive(c, buf, sizeof buf, NULL));
			int r = revents(shmq_mq_fd(c), POLLIN, 0);
			CHECK(r == (POLLERR | POLLHUP), "unlinked: revents %#x", r);
			EXPECT_OPEN_ERR(ENOENT, shmq_mq_open(n, O_RDONLY));
		}
		if (p != SHMQ_MQ_FAILED)
			shmq_mq_close(p);
	}
out:
	if (c != SHMQ_MQ_FAILED)
		shmq_mq_close(c);
	unlink_q(n);
}

static void t_poll(void)
{
	char n[80], buf[256];
	EXPECT_ERR(EBADF, shmq_mq_fd(NULL));
	qname(n, sizeof n, "poll", 0);
	if (!create_q(n, 4096))
		return;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	shmq_mqd_t p = OPEN_OK(shmq_mq_open(n, O_WRONLY));
	if (p == SHMQ_MQ_FAILED || c == SHMQ_MQ_FAILED)
		goto out;
	int cfd = shmq_mq_fd(c), pfd = shmq_mq_fd(p);
	CHECK(cfd >= 0 && pfd >= 0 && cfd != pfd, "fds %d %d", cfd, pfd);
	CHECK(shmq_mq_fd(c) == cfd, "fd not stable");
	int r = revents(cfd, POLLIN, 0);
	CHECK(r == 0, "empty: consumer revents %#x", r);
	r = revents(pfd, POLLOUT, 0);
	CHECK(r == POLLOUT, "empty: producer revents %#x, want POLLOUT", r);
	EXPECT_OK(shmq_mq_send(p, "p", 1, 0));
	r = revents(cfd, POLLIN, 0);
	CHECK(r == POLLIN, "one message: revents %#x, want POLLIN", r);
	CHECK(shmq_mq_receive(c, buf, sizeof buf, NULL) == 1, "receive");
	/* POLLOUT means half the ring free */
	long k = fill_ring(p, 100);
	CHECK(k >= 35, "%ld messages filled the ring", k);
	for (int steps = 0;; steps++) {
		struct shmq_mq_attr a;
		if (shmq_mq_getattr(p, &a) != 0 || steps > 40) {
			CHECK(0, "getattr: %s after %d steps", en(errno), steps);
			break;
		}
		r = revents(pfd, POLLOUT, 0);
		if (a.mq_capacity - a.mq_curbytes >= a.mq_capacity / 2) {
			CHECK(r == POLLOUT, "%llu of %llu bytes free: revents %#x, want POLLOUT",
			      (unsigned long long)(a.mq_capacity - a.mq_curbytes),
			      (unsigned long long)a.mq_capacity, r);
			break;
		}
		if (r != 0) {
			CHECK(0, "%llu bytes free, less than half: revents %#x, want 0",
			      (unsigned long long)(a.mq_capacity - a.mq_curbytes), r);
			break;
		}
		shmq_mq_receive(c, buf, sizeof buf, NULL);
	}
	for (;;) {
		struct shmq_mq_attr a;
		if (shmq_mq_getattr(c, &a) || a.mq_curmsgs == 0)
			break;
		shmq_mq_receive(c, buf, sizeof buf, NULL);
	}
	/* a poll woken by another process's send. A descriptor does not
	 * work across fork (EBADF in the child), so the parent hands the
	 * producer role over: it closes its descriptor and the child opens
	 * its own, and says so before the parent polls (until a producer is
	 * attached again, the consumer sees the hang-up). The child stays
	 * attached until the parent has its message. */
	EXPECT_OK(shmq_mq_close(p));
	p = SHMQ_MQ_FAILED;
	int ready[2], done[2];
	CHECK(pipe(ready) == 0 && pipe(done) == 0, "pipe: %s", en(errno));
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		close(done[1]);
		shmq_mqd_t p2 = shmq_mq_open(n, O_WRONLY);
		if (!p2)
			_exit(3);
		if (write(ready[1], "r", 1) != 1)
			_exit(4);
		sleep_ms(300);
		if (shmq_mq_send(p2, "late", 4, 0) != 0)
			_exit(2);
		char b;
		if (read(done[0], &b, 1) < 0)
			_exit(5);
		_exit(0); /* exit detaches, as close does */
	}
	close(ready[1]);
	close(done[0]);
	char rb;
	CHECK(read(ready[0], &rb, 1) == 1, "the sending child did not attach");
	close(ready[0]);
	uint64_t t0 = mono_ms();
	r = revents(cfd, POLLIN, 10000 + wake_bound_ms());
	uint64_t el = mono_ms() - t0;
	CHECK(r == POLLIN && el >= 250, "poll woken by a send: revents %#x after %llu ms", r,
	      (unsigned long long)el);
	CHECK(shmq_mq_receive(c, buf, sizeof buf, NULL) == 4 && !memcmp(buf, "late", 4),
	      "message of the child");
	/* POLLHUP when the producer has gone */
	CHECK(write(done[1], "d", 1) == 1, "write: %s", en(errno));
	close(done[1]);
	CHECK(reap(pid) == 0, "sending child failed");
	r = revents(cfd, POLLIN, 0);
	CHECK(r == POLLHUP, "producer closed: revents %#x, want POLLHUP", r);
out:
	close_pair_and_unlink(p, c, n);
}

/* Two processes: a producer and a consumer over a small ring, every message
 * numbered and checked, both sides blocking in turn. */
static void t_fork(void)
{
	char n[80];
	static char buf[32768];
	const uint32_t count = slow() ? 3000 : 30000;
	qname(n, sizeof n, "fork", 0);
	if (!create_q(n, 16384))
		return;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	if (c == SHMQ_MQ_FAILED)
		goto out;
	struct shmq_mq_attr a;
	/* the end of the exchange is the producer's exit: EPIPE (no queue
	 * semantics for this one) */
	memset(&a, 0, sizeof a);
	a.mq_flags = SHMQ_MQ_REPORT_HUP;
	EXPECT_OK(shmq_mq_setattr(c, &a, NULL));
	EXPECT_OK(shmq_mq_getattr(c, &a));
	const size_t max = (size_t)a.mq_msgsize;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		shmq_mq_close(c); /* the child is only the producer */
		shmq_mqd_t p = shmq_mq_open(n, O_WRONLY);
		if (p == SHMQ_MQ_FAILED)
			_exit(2);
		for (uint32_t i = 0; i < count; i++) {
			size_t len = size_of(i, max);
			if (len < 4)
				len = 4;
			fill(buf, len, i);
			int r;
			if (i % 2) {
				struct timespec d = in_ms(CLOCK_MONOTONIC, 60000);
				r = shmq_mq_clocksend(p, buf, len, 0, CLOCK_MONOTONIC, &d);
			} else {
				r = shmq_mq_send(p, buf, len, 0);
			}
			if (r != 0)
				_exit(3);
			if (i % 1000 == 999)
				sleep_ms(20); /* let the consumer sleep on an empty ring */
		}
		shmq_mq_close(p);
		_exit(0);
	}
	uint32_t got = 0;
	long bad = 0;
	uint64_t bytes = 0;
	for (;;) {
		ssize_t r;
		if (got % 2) {
			struct timespec d = in_ms(CLOCK_REALTIME, 60000);
			r = shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &d);
		} else {
			r = shmq_mq_receive(c, buf, sizeof buf, NULL);
		}
		if (r < 0) {
			CHECK(errno == EPIPE, "receive %u: %s, want EPIPE at the end", got, en(errno));
			break;
		}
		size_t len = size_of(got, max);
		if (len < 4)
			len = 4;
		if ((size_t)r != len || !matches(buf, len, got)) {
			if (bad++ < 5)
				printf("message %u: %zd bytes, want %zu, %s\n", got, r, len,
				       matches(buf, (size_t)r, got) ? "content ok" : "content wrong");
		}
		bytes += (uint64_t)r;
		got++;
		if (got % 1000 == 500)
			sleep_ms(20); /* let the producer sleep on a full ring */
	}
	CHECK(got == count && bad == 0, "received %u of %u messages, %ld bad", got, count, bad);
	CHECK(reap(pid) == 0, "producer child failed");
	printf("fork exchange: %u messages, %llu bytes, checked\n", got, (unsigned long long)bytes);
out:
	if (c != SHMQ_MQ_FAILED)
		shmq_mq_close(c);
	unlink_q(n);
}

/* One descriptor per role shared by several threads, as POSIX allows:
 * every message arrives exactly once, each sender's in order. */
enum { kThreads = 3 };
static uint32_t rx_total;     /* messages received by all receivers */
static uint64_t rx_give_up;   /* monotonic ms */
struct thr {
	shmq_mqd_t q;
	uint32_t id, count;
	uint32_t *seen; /* receivers: per sender and message, times received */
	long bad;
	uint32_t got;
	uint32_t last[kThreads];
};

static void *sender(void *arg)
{
	struct thr *t = arg;
	char m[64];
	for (uint32_t i = 0; i < t->count; i++) {
		uint32_t w[2] = {t->id, i};
		memcpy(m, w, sizeof w);
		memset(m + 8, (int)(i & 0xff), sizeof m - 8);
		struct timespec d = in_ms(CLOCK_REALTIME, 60000);
		if (shmq_mq_timedsend(t->q, m, 8 + i % 56, 0, &d) != 0) {
			t->bad++;
			break;
		}
	}
	return NULL;
}

static void *receiver(void *arg)
{
	struct thr *t = arg;
	const uint32_t target = kThreads * t->count;
	char m[128];
	while (__atomic_load_n(&rx_total, __ATOMIC_RELAXED) < target) {
		if (mono_ms() > rx_give_up) {
			t->bad++;
			break;
		}
		struct timespec d = in_ms(CLOCK_MONOTONIC, 50);
		ssize_t r = shmq_mq_clockreceive(t->q, m, sizeof m, NULL, CLOCK_MONOTONIC, &d);
		if (r < 0) {
			if (errno == ETIMEDOUT)
				continue;
			t->bad++;
			break;
		}
		uint32_t w[2];
		memcpy(w, m, sizeof w);
		if (r < 8 || w[0] >= kThreads || w[1] >= t->count || (size_t)r != 8 + w[1] % 56) {
			t->bad++;
			continue;
		}
		/* per sender, strictly increasing as this thread sees them */
		if (t->last[w[0]] != UINT32_MAX && w[1] <= t->last[w[0]])
			t->bad++;
		t->last[w[0]] = w[1];
		__atomic_fetch_add(&t->seen[w[0] * t->count + w[1]], 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&rx_total, 1, __ATOMIC_RELAXED);
		t->got++;
	}
	return NULL;
}

static void t_threads(void)
{
	char n[80];
	const uint32_t per = slow() ? 500 : 5000;
	qname(n, sizeof n, "thr", 0);
	if (!create_q(n, 4096))
		return;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	shmq_mqd_t p = OPEN_OK(shmq_mq_open(n, O_WRONLY));
	uint32_t *seen = calloc((size_t)kThreads * per, sizeof *seen);
	if (p == SHMQ_MQ_FAILED || c == SHMQ_MQ_FAILED || !seen)
		goto out;
	struct thr s[kThreads], r[kThreads];
	pthread_t st[kThreads], rt[kThreads];
	rx_total = 0;
	rx_give_up = mono_ms() + 120000;
	for (uint32_t i = 0; i < kThreads; i++) {
		memset(&r[i], 0, sizeof r[i]);
		r[i].q = c;
		r[i].count = per;
		r[i].seen = seen;
		for (int j = 0; j < kThreads; j++)
			r[i].last[j] = UINT32_MAX;
		pthread_create(&rt[i], NULL, receiver, &r[i]);
	}
	for (uint32_t i = 0; i < kThreads; i++) {
		memset(&s[i], 0, sizeof s[i]);
		s[i].q = p;
		s[i].id = i;
		s[i].count = per;
		pthread_create(&st[i], NULL, sender, &s[i]);
	}
	long bad = 0;
	uint32_t total = 0;
	for (int i = 0; i < kThreads; i++) {
		pthread_join(st[i], NULL);
		bad += s[i].bad;
	}
	for (int i = 0; i < kThreads; i++) {
		pthread_join(rt[i], NULL);
		bad += r[i].bad;
		total += r[i].got;
	}
	uint32_t dup = 0, lost = 0;
	for (size_t i = 0; i < (size_t)kThreads * per; i++) {
		if (seen[i] == 0)
			lost++;
		else if (seen[i] > 1)
			dup++;
	}
	CHECK(total == kThreads * per && lost == 0 && dup == 0 && bad == 0,
	      "%u threads x %u: received %u, lost %u, duplicated %u, %ld errors", kThreads, per,
	      total, lost, dup, bad);
out:
	free(seen);
	if (p != SHMQ_MQ_FAILED)
		shmq_mq_close(p);
	if (c != SHMQ_MQ_FAILED)
		shmq_mq_close(c);
	unlink_q(n);
}

/* As the unprivileged users of the guest (SHMQ_TEST_USER), on the
 * load-time queue "unpriv" (root:shmq 0660). */
static void t_unpriv(void)
{
	const char *user = getenv("SHMQ_TEST_USER");
	char fresh[80], buf[64];
	qname(fresh, sizeof fresh, "unp", 0);
	CHECK(getuid() != 0, "the unpriv section must not run as root");
	if (!user || getuid() == 0)
		return;
	/* neither may create or unlink: the control device is root's */
	EXPECT_OPEN_ERR(EACCES, shmq_mq_open(fresh, O_WRONLY | O_CREAT, 0660, NULL));
	EXPECT_OPEN_ERR(EACCES, shmq_mq_open(fresh, O_RDONLY | O_CREAT | O_EXCL, 0660, NULL));
	EXPECT_ERR(EACCES, shmq_mq_unlink("unpriv"));
	EXPECT_ERR(EACCES, shmq_mq_unlink(fresh));
	if (strcmp(user, "member") == 0) {
		/* O_CREAT of an existing queue needs no control device */
		shmq_mqd_t c = OPEN_OK(shmq_mq_open("/unpriv", O_RDONLY | O_CREAT | O_NONBLOCK, 0660, NULL));
		shmq_mqd_t p = OPEN_OK(shmq_mq_open("unpriv", O_WRONLY));
		if (c != SHMQ_MQ_FAILED && p != SHMQ_MQ_FAILED) {
			while (shmq_mq_receive(c, buf, sizeof buf, NULL) >= 0) {
			}
			EXPECT_OK(shmq_mq_send(p, "member", 6, 0));
			CHECK(shmq_mq_receive(c, buf, sizeof buf, NULL) == 6 && !memcmp(buf, "member", 6),
			      "member's exchange on unpriv");
		}
		if (p != SHMQ_MQ_FAILED)
			shmq_mq_close(p);
		if (c != SHMQ_MQ_FAILED)
			shmq_mq_close(c);
	} else {
		EXPECT_OPEN_ERR(EACCES, shmq_mq_open("unpriv", O_RDONLY));
		EXPECT_OPEN_ERR(EACCES, shmq_mq_open("/unpriv", O_WRONLY));
		EXPECT_OPEN_ERR(EACCES, shmq_mq_open("unpriv", O_WRONLY | O_CREAT, 0660, NULL));
	}
}

/* The shared counter of descriptor @m's own side (producer: tail, consumer:
 * head), mapped writable from its queue fd as a hostile peer would (each
 * side may write its own counter). NULL on failure (reported). *@len gets
 * the mapping's length for munmap. */
static volatile uint64_t *own_counter(shmq_mqd_t m, int producer, size_t *len)
{
	struct shmq_layout l;
	memset(&l, 0, sizeof l);
	checks++;
	if (ioctl(shmq_mq_fd(m), SHMQ_IOC_LAYOUT, &l) != 0) {
		failed(__FILE__, __LINE__, "SHMQ_IOC_LAYOUT: %s", en(errno));
		return NULL;
	}
	const int rfd = ioctl(shmq_mq_fd(m), SHMQ_IOC_RING_FD, O_CLOEXEC);
	if (rfd < 0) {
		failed(__FILE__, __LINE__, "SHMQ_IOC_RING_FD: %s", en(errno));
		return NULL;
	}
	const struct shmq_region *reg = producer ? &l.producer : &l.consumer;
	void *a = mmap(NULL, reg->size, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, (off_t)reg->offset);
	close(rfd);
	if (a == MAP_FAILED) {
		failed(__FILE__, __LINE__, "mmap of the %s region: %s", producer ? "producer" : "consumer",
		       en(errno));
		return NULL;
	}
	*len = reg->size;
	return (volatile uint64_t *)((char *)a + (producer ? l.tail_off : l.head_off));
}

static void unmap_counter(volatile uint64_t *c, size_t len)
{
	if (c)
		munmap((void *)((uintptr_t)c & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1)), len);
}

/* EBADMSG: a peer that writes garbage into its counter is reported by open,
 * send, receive, getattr and setattr, never read past. */
static void t_corrupt(void)
{
	char n[80], buf[256];
	struct shmq_mq_attr a;
	size_t len = 0;
	const struct timespec later = in_ms(CLOCK_REALTIME, 60000);

	/* the producer leaves a misaligned tail (3): consumer calls and the
	 * next producer's open see it (a queue of one producer: the next
	 * producer takes over the same ring; in a queue of several a corrupt
	 * lane is confined to its producer, see the lanes section) */
	qname(n, sizeof n, "corrupt", 0);
	if (!create_q1(n, 4096))
		return;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	shmq_mqd_t p = OPEN_OK(shmq_mq_open(n, O_WRONLY));
	volatile uint64_t *tail = p != SHMQ_MQ_FAILED ? own_counter(p, 1, &len) : NULL;
	if (c != SHMQ_MQ_FAILED && tail) {
		*tail = 3;
		EXPECT_ERR(EBADMSG, shmq_mq_receive(c, buf, sizeof buf, NULL));
		EXPECT_ERR(EBADMSG, shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &later));
		EXPECT_ERR(EBADMSG, shmq_mq_getattr(c, &a));
		EXPECT_ERR(EBADMSG, shmq_mq_getattr(p, &a));
		EXPECT_ERR(EBADMSG, shmq_mq_setattr(c, NULL, &a));
		memset(&a, 0, sizeof a);
		EXPECT_OK(shmq_mq_setattr(c, &a, NULL)); /* reads nothing of the ring */
		unmap_counter(tail, len);
		EXPECT_OK(shmq_mq_close(p));
		p = SHMQ_MQ_FAILED;
		EXPECT_OPEN_ERR(EBADMSG, shmq_mq_open(n, O_WRONLY));
		EXPECT_OPEN_ERR(EBADMSG, shmq_mq_open(n, O_WRONLY | O_CREAT, 0600, NULL));
	}
	close_pair_and_unlink(p, c, n);

	/* the consumer moves its head ahead of tail: the producer notices as
	 * soon as it looks at head (when its cached head says full) */
	qname(n, sizeof n, "corrupt", 0);
	if (!create_q(n, 4096))
		return;
	c = OPEN_OK(shmq_mq_open(n, O_RDONLY));
	p = OPEN_OK(shmq_mq_open(n, O_WRONLY | O_NONBLOCK));
	volatile uint64_t *head = c != SHMQ_MQ_FAILED ? own_counter(c, 0, &len) : NULL;
	if (p != SHMQ_MQ_FAILED && head) {
		*head = UINT64_C(1) << 40; /* far ahead of tail (0) */
		memset(buf, 'c', sizeof buf);
		int r = 0;
		long sent = 0;
		while ((r = shmq_mq_send(p, buf, 100, 0)) == 0 && sent < 100)
			sent++;
		const int e = errno;
		CHECK(r == -1 && e == EBADMSG, "send with head ahead of tail: %d/%s after %ld messages",
		      r, en(e), sent);
		if (r != -1 || e != EBADMSG)
			goto out; /* a blocking send would wait forever */
		memset(&a, 0, sizeof a);
		EXPECT_OK(shmq_mq_setattr(p, &a, NULL)); /* blocking now */
		EXPECT_ERR(EBADMSG, shmq_mq_send(p, buf, 100, 0));
		EXPECT_ERR(EBADMSG, shmq_mq_timedsend(p, buf, 100, 0, &later));
		EXPECT_ERR(EBADMSG, shmq_mq_getattr(p, &a));
		EXPECT_ERR(EBADMSG, shmq_mq_setattr(p, &a, &a));
	}
out:
	unmap_counter(head, len);
	close_pair_and_unlink(p, c, n);
}

/* Reads a decimal number from @path; -1 on failure. */
static long long read_num(const char *path)
{
	FILE *f = fopen(path, "r");
	long long v = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int write_num(const char *path, long long v)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	const int r = fprintf(f, "%lld\n", v) > 0 ? 0 : -1;
	return fclose(f) == 0 ? r : -1;
}

/* Out of file descriptors: a child with RLIMIT_NOFILE used up. With one fd
 * free the queue's open(2) succeeds and SHMQ_IOC_RING_FD fails; with none,
 * open(2) itself, and unlink's open of the control device. */
static int child_emfile(const char *existing, const char *fresh)
{
	struct rlimit rl = {32, 32};
	int fds[40], nfds = 0, fails = 0;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 90;
	while (nfds < 40 && (fds[nfds] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		nfds++;
	if (nfds == 0 || nfds == 40 || errno != EMFILE)
		return 91;
#define CHILD_ERR(want, what, r, e)                                             \
	do {                                                                    \
		if ((r) != -1 || (e) != (want)) {                               \
			printf("FAIL child: %s: %lld/%s, want -1/%s\n", what,   \
			       (long long)(r), en(e), en(want));                \
			fails++;                                                \
		}                                                               \
	} while (0)
#define CHILD_OPEN_ERR(want, call)                                              \
	do {                                                                    \
		errno = 0;                                                      \
		shmq_mqd_t m_ = (call);                                         \
		const int e_ = errno;                                           \
		CHILD_ERR(want, #call, m_ == SHMQ_MQ_FAILED ? -1 : 0, e_);      \
	} while (0)
#define CHILD_CALL_ERR(want, call)                                              \
	do {                                                                    \
		errno = 0;                                                      \
		const long long r_ = (call);                                    \
		const int e_ = errno;                                           \
		CHILD_ERR(want, #call, r_, e_);                                 \
	} while (0)
	/* no fd free */
	CHILD_OPEN_ERR(EMFILE, shmq_mq_open(existing, O_RDONLY));
	CHILD_OPEN_ERR(EMFILE, shmq_mq_open(existing, O_WRONLY | O_CREAT, 0600, NULL));
	CHILD_OPEN_ERR(EMFILE, shmq_mq_open(fresh, O_WRONLY | O_CREAT | O_EXCL, 0600, NULL));
	CHILD_CALL_ERR(EMFILE, shmq_mq_unlink(existing));
	/* one fd free: the queue fd opens, the ring fd does not */
	close(fds[--nfds]);
	CHILD_OPEN_ERR(EMFILE, shmq_mq_open(existing, O_RDONLY));
	CHILD_OPEN_ERR(EMFILE, shmq_mq_open(existing, O_WRONLY));
	/* and nothing stayed attached */
	while (nfds > 0)
		close(fds[--nfds]);
	shmq_mqd_t c = shmq_mq_open(existing, O_RDONLY);
	shmq_mqd_t p = shmq_mq_open(existing, O_WRONLY);
	if (c == SHMQ_MQ_FAILED || p == SHMQ_MQ_FAILED) {
		printf("FAIL child: after EMFILE the roles do not open again: %s\n", en(errno));
		fails++;
	}
#undef CHILD_CALL_ERR
#undef CHILD_OPEN_ERR
#undef CHILD_ERR
	fflush(stdout);
	return fails ? 1 : 0;
}

/* EMFILE (RLIMIT_NOFILE) and ENOSPC (the module's max_queues and
 * max_total_memory), each leaving nothing behind. */
static void t_limits(void)
{
	char n[80], fresh[80];
	qname(n, sizeof n, "lim", 0);
	qname(fresh, sizeof fresh, "lim", 0);
	if (!create_q(n, 4096))
		return;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(child_emfile(n, fresh));
	int st = reap(pid);
	CHECK(st == 0, "EMFILE child: status %d (90, 91: could not use up the fds)", st);
	EXPECT_ERR(ENOENT, shmq_mq_unlink(fresh));

	const char *mq = "/sys/module/shmq/parameters/max_queues";
	const char *mm = "/sys/module/shmq/parameters/max_total_memory";
	const long long queues = read_num("/sys/module/shmq/usage/queues");
	const long long memory = read_num("/sys/module/shmq/usage/memory_bytes");
	const long long old_q = read_num(mq), old_m = read_num(mm);
	CHECK(queues > 0 && memory > 0 && old_q > 0 && old_m > 0,
	      "module usage/parameters unreadable: %lld %lld %lld %lld", queues, memory, old_q, old_m);
	if (queues > 0 && old_q > 0 && write_num(mq, queues) == 0) {
		EXPECT_OPEN_ERR(ENOSPC, shmq_mq_open(fresh, O_RDONLY | O_CREAT, 0600, NULL));
		EXPECT_OPEN_ERR(ENOSPC, shmq_mq_open(fresh, O_WRONLY | O_CREAT | O_EXCL, 0600, NULL));
		/* an existing queue opens as ever */
		shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY | O_CREAT, 0600, NULL));
		if (c != SHMQ_MQ_FAILED)
			shmq_mq_close(c);
		CHECK(write_num(mq, old_q) == 0, "restoring max_queues %lld: %s", old_q, en(errno));
	} else {
		CHECK(0, "cannot set max_queues: %s", en(errno));
	}
	if (memory > 0 && old_m > 0 && write_num(mm, memory) == 0) {
		EXPECT_OPEN_ERR(ENOSPC, shmq_mq_open(fresh, O_RDONLY | O_CREAT, 0600, NULL));
		CHECK(write_num(mm, old_m) == 0, "restoring max_total_memory %lld: %s", old_m, en(errno));
	} else {
		CHECK(0, "cannot set max_total_memory: %s", en(errno));
	}
	EXPECT_OPEN_ERR(ENOENT, shmq_mq_open(fresh, O_RDONLY));
	EXPECT_OK(shmq_mq_unlink(n));
}

/* ENOTTY: /dev/shmq/NAME that is not a queue (a root made a file there). */
static void t_notaqueue(void)
{
	char n[80], path[128];
	qname(n, sizeof n, "notq", 0);
	snprintf(path, sizeof path, "/dev/shmq/%s", n);
	const int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	CHECK(fd >= 0, "cannot create %s: %s", path, en(errno));
	if (fd < 0)
		return;
	close(fd);
	EXPECT_OPEN_ERR(ENOTTY, shmq_mq_open(n, O_RDONLY));
	EXPECT_OPEN_ERR(ENOTTY, shmq_mq_open(n, O_WRONLY));
	EXPECT_OPEN_ERR(ENOTTY, shmq_mq_open(n, O_WRONLY | O_CREAT, 0600, NULL));
	EXPECT_ERR(ENOENT, shmq_mq_unlink(n)); /* the module has no such queue */
	CHECK(unlink(path) == 0, "removing %s: %s", path, en(errno));
}

/* None of the calls is a cancellation point: with a cancellation pending,
 * each call completes (none is cut short inside the library, where an
 * unwind would abort the process: the functions are noexcept) and the
 * thread is cancelled at its next cancellation point. */
struct cancel_run {
	const char *name, *fresh;
	int step;   /* calls completed as expected */
	int failed; /* the step that went wrong, 0: none */
};

static void *cancel_thread(void *arg)
{
	struct cancel_run *r = arg;
	char buf[64];
	pthread_cancel(pthread_self()); /* deferred: pending from here on */
	shmq_mqd_t c = shmq_mq_open(r->name, O_RDONLY | O_CREAT, 0600, NULL);
	r->step++;
	if (c == SHMQ_MQ_FAILED)
		r->failed = r->step;
	shmq_mqd_t p = shmq_mq_open(r->name, O_WRONLY);
	r->step++;
	if (p == SHMQ_MQ_FAILED && !r->failed)
		r->failed = r->step;
	if (shmq_mq_send(p, "x", 1, 0) != 0 && !r->failed)
		r->failed = 3;
	r->step++;
	if (shmq_mq_receive(c, buf, sizeof buf, NULL) != 1 && !r->failed)
		r->failed = 4;
	r->step++;
	struct timespec d = in_ms(CLOCK_REALTIME, 100);
	if (!(shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &d) == -1 && errno == ETIMEDOUT) &&
	    !r->failed)
		r->failed = 5;
	r->step++;
	if (shmq_mq_close(p) != 0 && !r->failed)
		r->failed = 6;
	r->step++;
	if (shmq_mq_close(c) != 0 && !r->failed)
		r->failed = 7;
	r->step++;
	shmq_mqd_t f = shmq_mq_open(r->fresh, O_RDONLY | O_CREAT | O_EXCL, 0600, NULL);
	if (f == SHMQ_MQ_FAILED && !r->failed)
		r->failed = 8;
	r->step++;
	if (f != SHMQ_MQ_FAILED)
		shmq_mq_close(f);
	if (shmq_mq_unlink(r->fresh) != 0 && !r->failed)
		r->failed = 9;
	r->step++;
	pthread_testcancel();
	r->failed = 100; /* not cancelled */
	return NULL;
}

static int child_cancel(const char *name, const char *fresh)
{
	struct cancel_run r = {name, fresh, 0, 0};
	pthread_t t;
	void *ret = NULL;
	if (pthread_create(&t, NULL, cancel_thread, &r) != 0 || pthread_join(t, &ret) != 0)
		return 90;
	if (ret != PTHREAD_CANCELED || r.step != 9 || r.failed) {
		printf("FAIL child: %s after %d of 9 calls, call %d failed (100: not cancelled at "
		       "pthread_testcancel)\n", ret == PTHREAD_CANCELED ? "cancelled" : "not cancelled",
		       r.step, r.failed);
		fflush(stdout);
		return 1;
	}
	return 0;
}

static void t_cancel(void)
{
	char n[80], fresh[80];
	qname(n, sizeof n, "cancel", 0);
	qname(fresh, sizeof fresh, "cancel", 0);
	if (!create_q(n, 4096))
		return;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(child_cancel(n, fresh));
	const int st = reap(pid);
	CHECK(st == 0, "cancellation child: status %d (%d: aborted, cancelled inside a call)", st,
	      128 + SIGABRT);
	unlink_q(fresh);
	EXPECT_OK(shmq_mq_unlink(n));
}

/* shmq_mq_interrupt: a receiver and a sender blocked in other threads come
 * back with ECANCELED; the next calls work; bad descriptors are EBADF. */
struct blocked_call {
	shmq_mqd_t q;
	int producer;
	int rc, err;
	volatile int started;
};

static void *blocked_thread(void *arg)
{
	struct blocked_call *b = arg;
	char buf[64] = {0};
	b->started = 1;
	if (b->producer)
		b->rc = shmq_mq_send(b->q, buf, 8, 0);
	else
		b->rc = (int)shmq_mq_receive(b->q, buf, sizeof buf, NULL);
	b->err = errno;
	return NULL;
}

static void t_interrupt(void)
{
	char n[80];
	qname(n, sizeof n, "intr", 0);
	if (!create_q(n, 4096))
		return;
	shmq_mqd_t c = shmq_mq_open(n, O_RDONLY);
	shmq_mqd_t p = shmq_mq_open(n, O_WRONLY);
	CHECK(c != SHMQ_MQ_FAILED && p != SHMQ_MQ_FAILED, "open: %s", strerror(errno));
	if (c == SHMQ_MQ_FAILED || p == SHMQ_MQ_FAILED)
		return;
	for (int producer = 0; producer < 2; producer++) {
		char buf[64] = {0};
		if (producer) /* fill the ring so that a send blocks */
			while (shmq_mq_timedsend(p, buf, 8, 0, &(struct timespec){0, 0}) == 0) {
			}
		struct blocked_call b = {producer ? p : c, producer, 0, 0, 0};
		pthread_t t;
		CHECK(pthread_create(&t, NULL, blocked_thread, &b) == 0, "pthread_create");
		while (!b.started) {
		}
		sleep_ms(100);
		EXPECT_OK(shmq_mq_interrupt(producer ? p : c));
		pthread_join(t, NULL);
		CHECK(b.rc == -1 && b.err == ECANCELED, "%s: rc %d errno %s (want -1 ECANCELED)",
		      producer ? "send" : "receive", b.rc, strerror(b.err));
	}
	/* taken: the queue still works */
	char buf[64];
	struct timespec d = in_ms(CLOCK_REALTIME, 5000);
	CHECK(shmq_mq_timedreceive(c, buf, sizeof buf, NULL, &d) == 8, "receive after: %s",
	      strerror(errno));
	EXPECT_ERR(EBADF, shmq_mq_interrupt(NULL));
	EXPECT_ERR(EBADF, shmq_mq_interrupt(SHMQ_MQ_FAILED));
	EXPECT_OK(shmq_mq_close(p));
	EXPECT_OK(shmq_mq_close(c));
	EXPECT_OK(shmq_mq_unlink(n));
}

/* Several producers on a queue made by O_CREAT: each message's sender,
 * FIFO per producer, lane events, mq_maxproducers and its limits, a
 * corrupt lane confined and dropped. */
static void t_lanes(void)
{
	char n[80], buf[256];
	struct shmq_mq_attr a;
	struct shmq_mq_sender who;
	const int kProducers = 3, per = slow() ? 200 : 2000;
	qname(n, sizeof n, "lanes", 0);
	memset(&a, 0, sizeof a);
	a.mq_flags = SHMQ_MQ_USE_PRODUCERS | SHMQ_MQ_USE_CAPACITY;
	a.mq_capacity = 4096;
	a.mq_maxproducers = 1025;
	EXPECT_OPEN_ERR(EINVAL, shmq_mq_open(n, O_RDONLY | O_CREAT | O_EXCL, 0600, &a));
	a.mq_maxproducers = kProducers;
	shmq_mqd_t c = OPEN_OK(shmq_mq_open(n, O_RDONLY | O_CREAT | O_EXCL, 0600, &a));
	if (c == SHMQ_MQ_FAILED)
		return;
	EXPECT_OK(shmq_mq_getattr(c, &a));
	CHECK(a.mq_maxproducers == (uint64_t)kProducers && a.mq_capacity == 4096,
	      "getattr: mq_maxproducers %llu capacity %llu", (unsigned long long)a.mq_maxproducers,
	      (unsigned long long)a.mq_capacity);
	EXPECT_ERR(EINVAL, shmq_mq_receive_sender(c, buf, sizeof buf, NULL, NULL, NULL));
	EXPECT_ERR(EINVAL, shmq_mq_drop_lane(c, kProducers));
	EXPECT_ERR(EINVAL, shmq_mq_lane_events(c, NULL, 1));
	pid_t kids[3];
	fflush(stdout);
	for (int i = 0; i < kProducers; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			shmq_mq_close(c);
			shmq_mqd_t p = shmq_mq_open(n, O_WRONLY);
			if (p == SHMQ_MQ_FAILED)
				_exit(2);
			for (int k = 0; k < per; k++) {
				int len = snprintf(buf, sizeof buf, "%d:%d", i, k);
				if (shmq_mq_send(p, buf, (size_t)len, 0) != 0)
					_exit(3);
			}
			shmq_mq_close(p);
			_exit(0);
		}
	}
	int next[3] = {0, 0, 0};
	long bad = 0;
	for (int got = 0; got < kProducers * per && !bad; got++) {
		struct timespec d = in_ms(CLOCK_REALTIME, 60000);
		ssize_t r = shmq_mq_receive_sender(c, buf, sizeof buf - 1, NULL, &who, &d);
		if (r < 0) {
			CHECK(0, "receive_sender %d: %s", got, en(errno));
			bad = 1;
			break;
		}
		buf[r] = 0;
		int i = -1, k = -1;
		if (sscanf(buf, "%d:%d", &i, &k) != 2 || i < 0 || i >= kProducers || k != next[i] ||
		    who.pid != kids[i] || who.uid != 0 || who.gid != 0 || who.reserved[0]) {
			CHECK(0, "message '%s' from pid %d uid %u lane %u (child %d is pid %d)", buf,
			      (int)who.pid, who.uid, who.lane, i, i >= 0 && i < 3 ? (int)kids[i] : -1);
			bad = 1;
		}
		if (i >= 0 && i < kProducers)
			next[i] = k + 1;
	}
	for (int i = 0; i < kProducers; i++)
		CHECK(reap(kids[i]) == 0, "producer %d failed", i);
	/* every producer attached, then ended once its lane was drained */
	struct shmq_mq_lane_event ev[16];
	int attached = 0, ended = 0;
	for (int tries = 0; tries < 2000 && ended < kProducers; tries++) {
		memset(&a, 0, sizeof a);
		a.mq_flags = O_NONBLOCK | SHMQ_MQ_IGNORE_HUP;
		EXPECT_OK(shmq_mq_setattr(c, &a, NULL));
		(void)shmq_mq_receive(c, buf, sizeof buf, NULL);
		int k = shmq_mq_lane_events(c, ev, 16);
		for (int j = 0; j < k; j++) {
			attached += ev[j].kind == SHMQ_MQ_LANE_ATTACHED;
			ended += ev[j].kind == SHMQ_MQ_LANE_ENDED;
		}
		if (ended < kProducers)
			sleep_ms(2);
	}
	CHECK(attached == kProducers && ended == kProducers, "lane events: %d attached, %d ended",
	      attached, ended);
	/* a producer that scribbles its own lane is reported once, then
	 * dropped; the others keep flowing */
	{
		shmq_mqd_t good = OPEN_OK(shmq_mq_open(n, O_WRONLY));
		shmq_mqd_t evil = OPEN_OK(shmq_mq_open(n, O_WRONLY));
		size_t len = 0;
		volatile uint64_t *tail = evil != SHMQ_MQ_FAILED ? own_counter(evil, 1, &len) : NULL;
		if (good != SHMQ_MQ_FAILED && tail) {
			EXPECT_OK(shmq_mq_send(good, "g", 1, 0));
			*tail += 3; /* misaligned */
			int corrupt = 0, goods = 0;
			for (int k = 0; k < 4; k++) {
				ssize_t r = shmq_mq_receive_sender(c, buf, sizeof buf, NULL, &who, NULL);
				if (r < 0 && errno == EBADMSG)
					corrupt++;
				else if (r == 1)
					goods++;
			}
			CHECK(corrupt == 1 && goods == 1, "corrupt lane: %d EBADMSG, %d good messages",
			      corrupt, goods);
			int k = shmq_mq_lane_events(c, ev, 16);
			int saw_corrupt = 0, saw_dropped = 0;
			for (int j = 0; j < k; j++) {
				if (ev[j].kind == SHMQ_MQ_LANE_CORRUPT)
					saw_corrupt = ev[j].who.pid == getpid();
				saw_dropped |= ev[j].kind == SHMQ_MQ_LANE_DROPPED;
			}
			CHECK(saw_corrupt && saw_dropped, "events: corrupt (with our pid) %d, dropped %d",
			      saw_corrupt, saw_dropped);
			EXPECT_OK(shmq_mq_send(good, "h", 1, 0));
			CHECK(shmq_mq_receive(c, buf, sizeof buf, NULL) == 1 && buf[0] == 'h',
			      "the good producer after the drop");
		}
		unmap_counter(tail, len);
		if (evil != SHMQ_MQ_FAILED)
			EXPECT_OK(shmq_mq_close(evil));
		if (good != SHMQ_MQ_FAILED)
			EXPECT_OK(shmq_mq_close(good));
	}
	close_pair_and_unlink(SHMQ_MQ_FAILED, c, n);

	/* POSIX-sized large messages: the 64 default lanes would not fit
	 * max_total_memory (1 GiB by default: 64 x 16 MiB), so the queue is
	 * made with as many as fit, and getattr says how many */
	qname(n, sizeof n, "lanes", 1);
	memset(&a, 0, sizeof a);
	a.mq_maxmsg = 10;
	a.mq_msgsize = 1 << 20;
	c = OPEN_OK(shmq_mq_open(n, O_RDONLY | O_CREAT | O_EXCL, 0600, &a));
	if (c != SHMQ_MQ_FAILED) {
		EXPECT_OK(shmq_mq_getattr(c, &a));
		CHECK(a.mq_maxproducers >= 1 && a.mq_maxproducers < 64 && a.mq_msgsize >= (1 << 20),
		      "large messages: %llu producers, msgsize %ld",
		      (unsigned long long)a.mq_maxproducers, a.mq_msgsize);
		close_pair_and_unlink(SHMQ_MQ_FAILED, c, n);
	}
}

/* ------------------------------------------------------------------ main */

struct section {
	const char *name;
	void (*fn)(void);
	int root; /* part of the default (root) run */
};

static const struct section sections[] = {
	{"open", t_open, 1},	 {"access", t_access, 1}, {"close", t_close, 1},
	{"sendrecv", t_sendrecv, 1}, {"nonblock", t_nonblock, 1}, {"attr", t_attr, 1},
	{"timed", t_timed, 1},	 {"wake", t_wake, 1},	  {"eintr", t_eintr, 1},
	{"peer", t_peer, 1},	 {"poll", t_poll, 1},	  {"fork", t_fork, 1},
	{"threads", t_threads, 1}, {"attrgarbage", t_attrgarbage, 1},
	{"failed", t_failed, 1},	 {"corrupt", t_corrupt, 1},	  {"limits", t_limits, 1},
	{"notaqueue", t_notaqueue, 1}, {"cancel", t_cancel, 1}, {"interrupt", t_interrupt, 1},
	{"lanes", t_lanes, 1},	 {"unpriv", t_unpriv, 0},
};
enum { kSections = sizeof sections / sizeof sections[0] };

static int run(const struct section *s)
{
	unsigned long c0 = checks, f0 = failures;
	uint64_t t0 = mono_ms();
	printf("== %s\n", s->name);
	fflush(stdout);
	s->fn();
	printf("== %s: %lu checks, %lu failed (%llu ms)\n", s->name, checks - c0, failures - f0,
	       (unsigned long long)(mono_ms() - t0));
	fflush(stdout);
	return failures == f0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	printf("shmq-capi-test: C API version %d, uid %d\n", SHMQ_C_API_VERSION, (int)getuid());
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (int i = 0; i < kSections; i++)
			printf("%s\n", sections[i].name);
		return 0;
	}
	if (argc == 1) {
		for (int i = 0; i < kSections; i++)
			if (sections[i].root)
				run(&sections[i]);
	}
	for (int a = 1; a < argc; a++) {
		int found = 0;
		for (int i = 0; i < kSections; i++) {
			if (strcmp(argv[a], sections[i].name) == 0) {
				run(&sections[i]);
				found = 1;
			}
		}
		if (!found) {
			fprintf(stderr, "shmq-capi-test: no section '%s' (see --list)\n", argv[a]);
			return 2;
		}
	}
	printf("\n@@SHMQ FIGURE capi_checks %lu C API checks (exact errno) in shmq-capi-test\n", checks);
	printf("shmq-capi-test: %lu checks, %lu failed\n", checks, failures);
	return failures ? 1 : 0;
}
