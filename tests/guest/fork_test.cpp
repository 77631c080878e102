// SPDX-License-Identifier: MIT
// Fork*: a child forked by a process that holds a queue does not inherit it
// (design.md "Peers and hang-up"): libshmq maps the ring MADV_DONTFORK and
// its pthread_atfork child handler closes the inherited queue fd, so the
// child never holds the attachment and the peer sees the parent's death at
// once, and every call on the inherited objects fails with EBADF.
#include "shmq_test.hpp"

#include <shmq/shmq.h>
#include <sys/prctl.h>

using namespace shmqt;

namespace {

const unsigned kWakeMs = wake_bound_ms();

// What the forked child saw, written by it into shared memory.
struct Report {
	std::atomic<int> ready{0};
	std::atomic<pid_t> child{0};
	int send = -1, reserve = -1, deferred = -1, is_open = -1, fd = -2;
	int capi_send = -1, capi_getattr = -1, capi_fd = -1, capi_close = -1;
	char what[200] = {};
};

class Fork : public testing::Test {
protected:
	void SetUp() override { SHMQT_REQUIRE_ROOT(); }
	TestQueue q_, q2_;
};

int code(const shmq::Result<void> &r) { return r ? 0 : r.error().code(); }

} // namespace

TEST_F(Fork, ParentDeathIsSeenAtOnceAlthoughAForkedChildLives)
{
	ASSERT_NO_FATAL_FAILURE(q_.create(64 * 1024, "fork"));
	ASSERT_NO_FATAL_FAILURE(q2_.create(4096, "forkc"));
	// The forked child is a grandchild: when its parent dies it comes to
	// us, not to init, and we reap it.
	const bool subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c) << err_str(c.error());
	Shared<Report> rep;
	Pipe ready;
	const std::string capi_name = "/" + q2_.name();
	Child parent = Child::spawn([&] {
		auto p = shmq::Producer::open(q_.name());
		if (!p)
			return 10;
		shmq_mqd_t mq = shmq_mq_open(capi_name.c_str(), O_WRONLY);
		if (mq == SHMQ_MQ_FAILED)
			return 11;
		if (!p->send(as_bytes("before fork", 11), shmq::Timeout::after(std::chrono::seconds(5))))
			return 12;
		auto slot = p->try_reserve(8); // outstanding across the fork
		if (!slot)
			return 13;
		fflush(stdout);
		const pid_t g = fork();
		if (g == 0) {
			auto r = p->try_send(as_bytes("child", 5));
			rep->send = code(r);
			if (!r)
				snprintf(rep->what, sizeof rep->what, "%s", r.error().what());
			auto rv = p->try_reserve(8);
			rep->reserve = rv ? 0 : rv.error().code();
			rep->deferred = code(p->commit_deferred(std::move(*slot)));
			p->flush();
			rep->is_open = p->is_open();
			rep->fd = p->fd();
			rep->capi_send = shmq_mq_send(mq, "c", 1, 0) == 0 ? 0 : errno;
			struct shmq_mq_attr a;
			rep->capi_getattr = shmq_mq_getattr(mq, &a) == 0 ? 0 : errno;
			rep->capi_fd = shmq_mq_fd(mq) >= 0 ? 0 : errno;
			rep->capi_close = shmq_mq_close(mq) == 0 ? 0 : errno;
			rep->ready = 1;
			for (;;) // lives on, with its copies of p and slot, until killed
				pause();
		}
		rep->child = g;
		ready.send();
		for (;;)
			pause();
	});
	ASSERT_EQ(1, ready.recv(10000)) << "the producer process did not start";
	ASSERT_TRUE(eventually(10000, [&] { return rep->ready.load() == 1; }))
		<< "the forked child did not report";
	const pid_t child = rep->child;
	// Whatever fails below, the forked child must not outlive the test
	// (it would keep the module busy if it held the queue).
	struct Reaper {
		pid_t pid;
		bool subreaper;
		~Reaper()
		{
			kill(pid, SIGKILL);
			if (subreaper) {
				int st;
				while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
				}
				prctl(PR_SET_CHILD_SUBREAPER, 0);
			}
		}
	} reaper{child, subreaper};
	EXPECT_EQ(EBADF, rep->send) << errname(rep->send);
	EXPECT_NE(nullptr, strstr(rep->what, "before fork()")) << rep->what;
	EXPECT_EQ(EBADF, rep->reserve) << errname(rep->reserve);
	EXPECT_EQ(EBADF, rep->deferred) << errname(rep->deferred);
	EXPECT_EQ(0, rep->is_open);
	EXPECT_EQ(-1, rep->fd);
	EXPECT_EQ(EBADF, rep->capi_send) << errname(rep->capi_send);
	EXPECT_EQ(EBADF, rep->capi_getattr) << errname(rep->capi_getattr);
	EXPECT_EQ(EBADF, rep->capi_fd) << errname(rep->capi_fd);
	EXPECT_EQ(0, rep->capi_close) << "closing an inherited descriptor frees the child's copy";

	// Only the parent's message is in the queue.
	uint8_t buf[64];
	auto n = c->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(std::chrono::seconds(5)));
	ASSERT_TRUE(n) << err_str(n.error());
	EXPECT_EQ(11u, *n);
	EXPECT_EQ(0, memcmp(buf, "before fork", 11));

	// The parent dies; its child lives on.
	parent.kill_and_reap();
	const uint64_t t0 = now_ns();
	const int ev = poll_one(c->fd(), POLLIN, int(kWakeMs));
	const double ms = ns_to_ms(now_ns() - t0);
	EXPECT_TRUE(ev > 0 && (ev & POLLHUP))
		<< "no EPOLLHUP within " << kWakeMs << " ms of the producer's death (revents " << ev
		<< "): the forked child still holds the attachment";
	EXPECT_LT(ms, double(kWakeMs));
	auto r = c->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(std::chrono::seconds(10)));
	ASSERT_FALSE(r);
	EXPECT_EQ(EPIPE, r.error().code()) << err_str(r.error());
	EXPECT_EQ(0, kill(child, 0)) << "the forked child should still be alive";
	// The producer role is free at once: the child does not hold it.
	auto p2 = shmq::Producer::open(q_.name());
	EXPECT_TRUE(p2) << (p2 ? "" : err_str(p2.error()));

}
