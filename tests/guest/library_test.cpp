// SPDX-License-Identifier: MIT
// Library*: libshmq against the real module where the two must agree: name
// validation, the control API's error codes, ignore_hangup, spinning,
// message size limits, blocked calls ended by destroy.
#include "shmq_test.hpp"

using namespace shmqt;

namespace {

const auto k10s = std::chrono::seconds(10);
constexpr unsigned kBlockMs = 150;
const unsigned kWakeMs = wake_bound_ms(); // "woken promptly", generously

class Library : public testing::Test {
protected:
	void SetUp() override { SHMQT_REQUIRE_ROOT(); }
	void make(uint64_t cap = 64 * 1024) { ASSERT_NO_FATAL_FAILURE(q_.create(cap, "lib")); }
	TestQueue q_;
};

} // namespace

TEST_F(Library, ValidateNameAgreesWithTheKernel)
{
	const std::string u = unique_name("vn");
	const std::vector<std::string> names = {
		"", ".", "..", ".a", "a.", "a..b", "-", "-" + u, "--help", u + "-", "_", "a-b_c.d", "A", "0",
		u + "/x", u + " x", u + "\t", u + "@", u + ":", u + "\xc3\xa4", u + "*", std::string(63, 'n'),
		std::string(64, 'n'), std::string(100, 'n'), u + "\x7f",
	};
	Fd ctl(control_open());
	ASSERT_TRUE(ctl.ok());
	for (const std::string &n : names) {
		auto v = shmq::validate_name(n);
		const int lib = v.has_value() ? 0 : v.error().code();
		int kern;
		if (n.size() >= SHMQ_NAME_MAX) {
			shmq_create_args a = create_args("", 4096);
			memcpy(a.name, n.data(), SHMQ_NAME_MAX);
			kern = xioctl(ctl.get(), SHMQ_IOC_CREATE, &a);
		} else {
			kern = raw_create(ctl.get(), n, 4096);
		}
		if (kern == 0) {
			EXPECT_EQ(0, raw_destroy(ctl.get(), n));
		}
		EXPECT_EQ(kern, lib) << "name '" << n << "' (" << n.size() << " bytes): kernel " << errname(kern)
				     << ", validate_name " << errname(lib);
	}
}

TEST_F(Library, ControlApiReportsKernelErrors)
{
	const std::string n = unique_name("api");
	auto r = shmq::create_queue(n, 64 * 1024);
	ASSERT_TRUE(r.has_value()) << err_str(r.error());
	ASSERT_TRUE(wait_path(dev_path(n), true));
	r = shmq::create_queue(n, 64 * 1024);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EEXIST, r.error().code());
	r = shmq::create_queue(unique_name("api"), 12288);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EINVAL, r.error().code());
	r = shmq::create_queue(unique_name("api"), uint64_t(1) << 62);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EFBIG, r.error().code());
	r = shmq::destroy_queue(n);
	ASSERT_TRUE(r.has_value()) << err_str(r.error());
	r = shmq::destroy_queue(n);
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(ENOENT, r.error().code());
	r = shmq::create_queue(unique_name("api"), 4096, "/nonexistent/control");
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(ENOENT, r.error().code());
	EXPECT_STRNE("", r.error().what());
}

TEST_F(Library, OpenErrors)
{
	auto p = shmq::Producer::open(unique_name("none"));
	ASSERT_FALSE(p);
	EXPECT_EQ(ENOENT, p.error().code());
	make();
	auto p1 = shmq::Producer::open(q_.name());
	ASSERT_TRUE(p1);
	auto p2 = shmq::Producer::open(q_.name());
	ASSERT_FALSE(p2);
	EXPECT_EQ(EBUSY, p2.error().code());
	EXPECT_EQ(64u * 1024, p1->info().capacity);
	EXPECT_EQ(64u * 1024 / 4 - 8, p1->info().max_message);
	EXPECT_EQ(SHMQ_FEATURES_V2, p1->info().features & SHMQ_FEATURES_V2);
	// Another device directory.
	shmq::OpenOptions o;
	o.dev_dir = "/nonexistent";
	auto c = shmq::Consumer::open(q_.name(), o);
	ASSERT_FALSE(c);
	EXPECT_EQ(ENOENT, c.error().code());
}

TEST_F(Library, MessageSizeLimitsAndEmptyMessages)
{
	make(4096);
	auto p = shmq::Producer::open(q_.name());
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(p && c);
	const size_t max = p->info().max_message;
	std::vector<uint8_t> big(max + 1, 0xee), buf(4096);
	auto r = p->try_send(as_bytes(big.data(), max + 1));
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EMSGSIZE, r.error().code());
	ASSERT_TRUE(p->try_send(as_bytes(big.data(), max)).has_value()) << "max_message must fit an empty ring";
	ASSERT_TRUE(p->try_send(as_bytes(big.data(), 0)).has_value()) << "empty message";
	// A buffer too small leaves the message queued.
	auto small = c->try_receive(as_wbytes(buf.data(), max - 1));
	ASSERT_FALSE(small);
	EXPECT_EQ(EMSGSIZE, small.error().code());
	auto got = c->try_receive(as_wbytes(buf.data(), buf.size()));
	ASSERT_TRUE(got) << err_str(got.error());
	EXPECT_EQ(max, *got);
	got = c->try_receive(as_wbytes(buf.data(), buf.size()));
	ASSERT_TRUE(got) << err_str(got.error());
	EXPECT_EQ(0u, *got);
	got = c->try_receive(as_wbytes(buf.data(), buf.size()));
	ASSERT_FALSE(got);
	EXPECT_EQ(EAGAIN, got.error().code());
}

// design.md / abi.md: EPOLLOUT means half the ring is free, and then any
// message (up to max_message = capacity/4 - 8) fits, whatever the tail.
TEST_F(Library, HalfFreeRingTakesMaxMessageAtEveryTail)
{
	make(4096);
	RawEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q_.name(), O_RDONLY));
	for (uint64_t off = 0; off < 4096; off += 8) {
		SCOPED_TRACE("tail offset " + std::to_string(off));
		const uint64_t tail = 3 * 4096 + off;
		{
			RawEnd p; // a previous producer left the tail here
			ASSERT_NO_FATAL_FAILURE(p.open(q_.name(), O_WRONLY));
			p.set_tail(tail);
		}
		c.set_head(tail - 4096 / 2); // exactly half the ring used
		auto p = shmq::Producer::open(q_.name());
		ASSERT_TRUE(p) << err_str(p.error());
		ASSERT_EQ(POLLOUT, poll_one(p->fd(), POLLOUT, 0)) << "half free must be writable";
		std::vector<uint8_t> m(p->info().max_message, 0x5f);
		auto r = p->try_send(as_bytes(m.data(), m.size()));
		ASSERT_TRUE(r.has_value()) << "EPOLLOUT reported but max_message does not fit: " << err_str(r.error());
	}
}

TEST_F(Library, IgnoreHangupWaitsForTheNextProducer)
{
	make();
	shmq::OpenOptions o;
	o.ignore_hangup = true;
	auto c = shmq::Consumer::open(q_.name(), o);
	ASSERT_TRUE(c);
	{
		auto p = shmq::Producer::open(q_.name());
		ASSERT_TRUE(p);
		uint8_t m[8] = {1};
		ASSERT_TRUE(p->try_send(as_bytes(m, sizeof m)).has_value());
	}
	uint8_t buf[64];
	ASSERT_TRUE(c->try_receive(as_wbytes(buf, sizeof buf)));
	auto e = c->try_receive(as_wbytes(buf, sizeof buf));
	ASSERT_FALSE(e);
	EXPECT_EQ(EAGAIN, e.error().code()) << "ignore_hangup: " << err_str(e.error());
	Async<int> w([&] {
		auto r = c->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(std::chrono::seconds(20)));
		return r ? int(*r) : -r.error().code();
	});
	sleep_ms(kBlockMs);
	ASSERT_FALSE(w.done()) << "receive returned " << w.get() << " instead of waiting for a new producer";
	Child s = Child::spawn([&] {
		auto p = shmq::Producer::open(q_.name());
		uint8_t m[5] = {2};
		return p && p->send(as_bytes(m, sizeof m), shmq::Timeout::after(k10s)).has_value() ? 0 : 1;
	});
	ASSERT_TRUE(w.wait(kWakeMs));
	EXPECT_EQ(5, w.get());
	ASSERT_TRUE(s.wait_exit());
	EXPECT_TRUE(s.exited_with(0));
}

TEST_F(Library, BlockedSendAndReceiveEndWithEIDRMOnDestroy)
{
	make(4096);
	auto p = shmq::Producer::open(q_.name());
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(p && c);
	// Fill the ring, so that send blocks.
	std::vector<uint8_t> m(1000, 3);
	while (p->try_send(as_bytes(m.data(), m.size())).has_value()) {
	}
	Async<int> ws([&] {
		auto r = p->send(as_bytes(m.data(), m.size()), shmq::Timeout::after(std::chrono::seconds(20)));
		return r.has_value() ? 0 : r.error().code();
	});
	sleep_ms(kBlockMs);
	ASSERT_FALSE(ws.done()) << errname(ws.get());
	ASSERT_EQ(0, q_.destroy());
	ASSERT_TRUE(ws.wait(kWakeMs)) << "destroy did not end the blocked send";
	EXPECT_EQ(EIDRM, ws.get());
	// The consumer still drains what was committed, then gets EIDRM.
	std::vector<uint8_t> buf(2048);
	int n = 0;
	for (;;) {
		auto r = c->receive(as_wbytes(buf.data(), buf.size()), shmq::Timeout::after(k10s));
		if (!r) {
			EXPECT_EQ(EIDRM, r.error().code()) << err_str(r.error());
			break;
		}
		n++;
	}
	EXPECT_EQ(4, n); // 4 x 1008 bytes fit in 4096
}

TEST_F(Library, BlockedReceiveEndsWithEIDRMOnDestroy)
{
	make();
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c);
	uint8_t buf[64];
	Async<int> w([&] {
		auto r = c->receive(as_wbytes(buf, sizeof buf), shmq::Timeout::after(std::chrono::seconds(20)));
		return r ? 0 : r.error().code();
	});
	sleep_ms(kBlockMs);
	ASSERT_FALSE(w.done()) << errname(w.get());
	ASSERT_EQ(0, q_.destroy());
	ASSERT_TRUE(w.wait(kWakeMs));
	EXPECT_EQ(EIDRM, w.get());
}

TEST_F(Library, SpinningPeersStream)
{
	make(16 * 1024);
	const uint64_t count = scaled<uint64_t>(100000, 20000);
	shmq::OpenOptions o;
	o.spin = 200;
	auto c = shmq::Consumer::open(q_.name(), o);
	ASSERT_TRUE(c);
	Child prod = Child::spawn([&] {
		auto p = shmq::Producer::open(q_.name(), o);
		if (!p)
			return 10;
		Rng rng(3);
		std::vector<uint8_t> m(2000);
		for (uint64_t s = 0; s < count; s++) {
			size_t n = random_size(rng, m.size());
			make_msg(m.data(), n, s, 1);
			if (!p->send(as_bytes(m.data(), n), shmq::Timeout::after(std::chrono::seconds(60))))
				return 11;
		}
		return 0;
	});
	std::vector<uint8_t> buf(4096);
	uint64_t next = 0;
	for (;;) {
		auto r = c->receive(as_wbytes(buf.data(), buf.size()), shmq::Timeout::after(std::chrono::seconds(60)));
		if (!r) {
			ASSERT_EQ(EPIPE, r.error().code()) << err_str(r.error());
			break;
		}
		MsgHdr h{};
		std::string why;
		ASSERT_TRUE(check_msg(buf.data(), *r, &h, &why)) << why;
		ASSERT_EQ(next, h.seq);
		next++;
	}
	ASSERT_TRUE(prod.wait_exit());
	EXPECT_TRUE(prod.exited_with(0)) << prod.describe();
	EXPECT_EQ(count, next);
}

TEST_F(Library, ReservationRulesAgainstTheRealRing)
{
	make(4096);
	auto p = shmq::Producer::open(q_.name());
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(p && c);
	auto r1 = p->try_reserve(100);
	ASSERT_TRUE(r1);
	auto r2 = p->try_reserve(100);
	ASSERT_FALSE(r2);
	EXPECT_EQ(EBUSY, r2.error().code());
	p->abort(std::move(*r1));
	uint8_t buf[256];
	EXPECT_FALSE(c->try_receive(as_wbytes(buf, sizeof buf))) << "aborted reservation delivered";
	auto r3 = p->try_reserve(100);
	ASSERT_TRUE(r3);
	memset(r3->data().data(), 0x44, 100);
	auto bad = p->commit(std::move(*r3), 101);
	EXPECT_FALSE(bad.has_value());
	ASSERT_TRUE(p->commit(std::move(*r3), 40).has_value());
	auto g = c->try_receive(as_wbytes(buf, sizeof buf));
	ASSERT_TRUE(g);
	EXPECT_EQ(40u, *g);
	EXPECT_EQ(0x44, buf[39]);
	// The ring accounts only for the committed 40 bytes.
	std::string used;
	read_file(sysfs_dir(q_.name()) + "/bytes_used", &used);
	EXPECT_EQ("0", trim(used));
	auto rel = c->release();
	EXPECT_FALSE(rel.has_value()) << "release without peek";
}

namespace {
std::atomic<int> g_lib_signals{0};
void lib_on_signal(int) { g_lib_signals++; }
} // namespace

// shmq.hpp: a Timeout is one absolute deadline, so signals neither end a
// blocking call early nor extend it.
TEST_F(Library, SignalsNeitherEndNorExtendABlockedReceive)
{
	make();
	auto c = shmq::Consumer::open(q_.name());
	ASSERT_TRUE(c);
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = lib_on_signal; // no SA_RESTART: the ioctl sees EINTR
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, &old);
	g_lib_signals = 0;
	const auto deadline = shmq::Timeout::after(std::chrono::milliseconds(700));
	uint8_t buf[64];
	Async<int> w([&] {
		auto r = c->receive(as_wbytes(buf, sizeof buf), deadline);
		return r ? 0 : r.error().code();
	});
	for (int i = 0; i < 3; i++) {
		sleep_ms(kBlockMs);
		if (w.done())
			break;
		pthread_kill(w.native(), SIGUSR1);
	}
	const bool ended = w.wait(700 + kWakeMs);
	sigaction(SIGUSR1, &old, nullptr);
	ASSERT_TRUE(ended);
	EXPECT_EQ(ETIMEDOUT, w.get());
	EXPECT_GE(w.end_ns(), deadline.deadline_ns()) << "a signal ended the receive early";
	EXPECT_LT(w.end_ns(), deadline.deadline_ns() + ms_to_ns(kWakeMs)) << "signals extended the deadline";
	EXPECT_EQ(3, g_lib_signals.load());
}
