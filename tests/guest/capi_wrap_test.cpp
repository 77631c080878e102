// SPDX-License-Identifier: MIT
// CApi*: the C API test program (tests/guest/capi_test.c, in the guest as
// /bin/shmq-capi-test) run one section per test. A test passes when the
// program exits 0 after at least one check; on failure its whole output is
// shown. Its "@@SHMQ FIGURE" lines are passed on to the harness.
// UnprivCApi runs the "unpriv" section as the unprivileged users.
#include "shmq_test.hpp"

using namespace shmqt;

namespace {

std::string capi_binary()
{
	const char *s = getenv("SHMQ_CAPI_TEST");
	return s && *s ? s : "/bin/shmq-capi-test";
}

// Runs the program with @section; true if it ended within @timeout_ms (then
// *status holds its wait status). *out gets stdout and stderr.
bool run_capi(const std::string &section, unsigned timeout_ms, int *status, std::string *out)
{
	const std::string bin = capi_binary();
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		*out = "pipe2: " + errname(errno);
		*status = -1;
		return true;
	}
	fflush(stdout);
	fflush(stderr);
	const pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execl(bin.c_str(), bin.c_str(), section.c_str(), static_cast<char *>(nullptr));
		dprintf(1, "exec %s: %s\n", bin.c_str(), strerror(errno));
		_exit(127);
	}
	::close(p[1]);
	Fd r(p[0]);
	const uint64_t end = deadline_in_ms(timeout_ms);
	bool timed_out = false;
	char buf[4096];
	for (;;) {
		const uint64_t now = now_ns();
		if (now >= end) {
			timed_out = true;
			break;
		}
		const int ev = poll_one(r.get(), POLLIN, int((end - now) / 1000000) + 1);
		if (ev == 0)
			continue;
		const ssize_t n = ::read(r.get(), buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		out->append(buf, size_t(n));
	}
	if (timed_out)
		::kill(pid, SIGKILL);
	while (::waitpid(pid, status, 0) < 0 && errno == EINTR) {
	}
	return !timed_out;
}

void run_section(const char *section)
{
	if (!path_exists(capi_binary()))
		FAIL() << capi_binary() << " is not in the guest (tests/tests.mk adds it to "
					  "SHMQ_TOOL_BINS)";
	const unsigned limit = scaled(240000u, 900000u);
	int st = 0;
	std::string out;
	const bool ended = run_capi(section, limit, &st, &out);
	size_t pos = 0;
	unsigned long checks = 0, failed = ~0ul;
	while (pos < out.size()) {
		size_t e = out.find('\n', pos);
		const std::string line = out.substr(pos, e == std::string::npos ? e : e - pos);
		if (line.rfind("@@SHMQ FIGURE ", 0) == 0)
			printf("\n%s\n", line.c_str());
		sscanf(line.c_str(), "shmq-capi-test: %lu checks, %lu failed", &checks, &failed);
		if (e == std::string::npos)
			break;
		pos = e + 1;
	}
	fflush(stdout);
	std::string why;
	if (!ended)
		why = "still running after " + std::to_string(limit / 1000) + " s: killed";
	else if (!WIFEXITED(st))
		why = "killed by signal " + std::to_string(WTERMSIG(st));
	else if (WEXITSTATUS(st) != 0)
		why = "exit status " + std::to_string(WEXITSTATUS(st));
	else if (checks == 0 || failed != 0)
		why = "summary says " + std::to_string(checks) + " checks, " +
		      std::to_string(failed) + " failed";
	if (why.empty())
		return;
	// Indented, so that the harness does not count its figure line twice.
	std::string shown;
	for (size_t i = 0; i < out.size();) {
		const size_t e = out.find('\n', i);
		shown += "  | " + out.substr(i, e == std::string::npos ? e : e + 1 - i);
		if (e == std::string::npos)
			break;
		i = e + 1;
	}
	ADD_FAILURE() << "shmq-capi-test " << section << ": " << why << ". Output:\n" << shown;
}

class CApi : public testing::Test {
protected:
	void SetUp() override { SHMQT_REQUIRE_ROOT(); }
};

} // namespace

// Names, flags, attributes and O_CREAT; unlink.
TEST_F(CApi, OpenCreateUnlink) { run_section("open"); }
// EACCES for a user outside group shmq: open, O_CREAT, unlink.
TEST_F(CApi, PermissionDenied) { run_section("access"); }
TEST_F(CApi, Close) { run_section("close"); }
// EBADF for the wrong role, EINVAL, EMSGSIZE both ways, FIFO content.
TEST_F(CApi, SendReceive) { run_section("sendrecv"); }
TEST_F(CApi, NonBlocking) { run_section("nonblock"); }
TEST_F(CApi, GetSetAttr) { run_section("attr"); }
// Deadlines on CLOCK_REALTIME and CLOCK_MONOTONIC; a timed send woken.
TEST_F(CApi, TimedCalls) { run_section("timed"); }
// A timed receive woken by another process.
TEST_F(CApi, WaitWoken) { run_section("wake"); }
// EINTR without SA_RESTART, restart with it.
TEST_F(CApi, SignalInterrupts) { run_section("eintr"); }
// EPIPE, EIDRM, SHMQ_MQ_IGNORE_HUP.
TEST_F(CApi, PeerGoneAndUnlinked) { run_section("peer"); }
TEST_F(CApi, PollOnFd) { run_section("poll"); }
// Three producers on one queue: senders, FIFO per producer, lane events,
// a corrupt lane confined.
TEST_F(CApi, SeveralProducersWithTheirSenders) { run_section("lanes"); }
// Two processes, numbered and checked messages.
TEST_F(CApi, ForkExchange) { run_section("fork"); }
// One descriptor per role shared by threads. "Stress" in the name: the
// 2-vCPU boots run it too (SMP2_FILTER), where the threads truly race.
TEST_F(CApi, ThreadStressSharedDescriptors) { run_section("threads"); }
// Ported code sets only mq_maxmsg/mq_msgsize; the rest of the attr is
// garbage, which must neither change the size nor fail the open.
TEST_F(CApi, GarbageMqCapacityCountsOnlyWithUseCapacityFlag) { run_section("attrgarbage"); }
// A ported `q == (mqd_t)-1` check, renamed, must still see failures; every
// call given SHMQ_MQ_FAILED or NULL is EBADF.
TEST_F(CApi, FailedIsMinusOneAndEveryCallGivenItOrNullIsEBADF) { run_section("failed"); }
// EBADMSG from open, send, receive, getattr and setattr when a peer wrote
// garbage into its counter.
TEST_F(CApi, CorruptCounterIsEBADMSGFromEveryCallThatReadsTheRing) { run_section("corrupt"); }
// EMFILE (RLIMIT_NOFILE, at each fd the open needs, and unlink), ENOSPC
// (max_queues, max_total_memory).
TEST_F(CApi, OutOfFdsIsEMFILEAndOutOfQueueLimitsIsENOSPC) { run_section("limits"); }
TEST_F(CApi, NodeThatIsNotAQueueIsENOTTY) { run_section("notaqueue"); }
// A pending pthread_cancel does not cut a call short (that would abort:
// the calls are noexcept); it takes effect at the next cancellation point.
TEST_F(CApi, NoCallIsACancellationPoint) { run_section("cancel"); }
// No call is a cancellation point: shmq_mq_interrupt is how a blocked
// thread is stopped.
TEST_F(CApi, InterruptStopsABlockedSendAndReceiveWithECANCELED) { run_section("interrupt"); }

TEST(UnprivCApi, MemberOrOutsider)
{
	if (test_user().empty() || is_root())
		GTEST_SKIP() << "runs as the unprivileged users (SHMQ_TEST_USER)";
	run_section("unpriv");
}
