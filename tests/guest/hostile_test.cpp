// SPDX-License-Identifier: MIT
// Hostile*: a peer that writes garbage into the memory it may write
// (docs/security.md). The kernel must neither crash, hang nor block forever;
// libshmq must answer EBADMSG and never read out of bounds.
#include "shmq_test.hpp"

using namespace shmqt;

namespace {

constexpr uint64_t kCap = 4096;

class Hostile : public testing::Test {
protected:
	void SetUp() override { SHMQT_REQUIRE_ROOT(); }
};

std::string sysfs_used(const std::string &q)
{
	std::string s;
	read_file(sysfs_dir(q) + "/bytes_used", &s);
	return trim(s);
}

// A consumer's library call on a ring whose producer wrote @setup.
int library_receive_error(const std::string &name)
{
	auto c = shmq::Consumer::open(name);
	if (!c)
		return -c.error().code();
	uint8_t buf[8192];
	auto r = c->try_receive(as_wbytes(buf, sizeof buf));
	if (r)
		return 0;
	auto m = c->try_peek();
	if (m || m.error().code() != r.error().code())
		return -1000; // inconsistent answers
	return r.error().code();
}

} // namespace

TEST_F(Hostile, ImpossibleTailIsReadableAndEBADMSG)
{
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kCap, "hostile"));
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	for (uint64_t bad : {kCap + 8, kCap * 4, uint64_t(1) << 63, ~uint64_t(7)}) {
		p.set_tail(bad);
		EXPECT_EQ(0, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, deadline_in_ms(5000))) << "tail " << bad;
		EXPECT_EQ(POLLIN, poll_one(c.fd(), POLLIN, 0) & POLLIN);
		uint64_t used = ~uint64_t(0);
		EXPECT_TRUE(parse_size(sysfs_used(q.name()), &used));
		EXPECT_LE(used, kCap) << "bytes_used not clamped to the capacity";
		// Never writable for the producer.
		EXPECT_EQ(0, poll_one(p.fd(), POLLOUT, 0) & POLLOUT);
		EXPECT_EQ(ETIMEDOUT, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 1, deadline_in_ms(20)));
	}
	c.close();
	EXPECT_EQ(EBADMSG, library_receive_error(q.name()));
}

TEST_F(Hostile, HeadAheadOfTailIsNotWritableAndEBADMSG)
{
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kCap, "hostile"));
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	p.publish(100);
	c.set_head(p.tail() + 8);
	EXPECT_EQ("0", sysfs_used(q.name())) << "negative use not clamped to 0";
	EXPECT_EQ(0, poll_one(p.fd(), POLLOUT, 0) & POLLOUT);
	const uint64_t deadline = deadline_in_ms(100);
	EXPECT_EQ(ETIMEDOUT, raw_wait(p.fd(), SHMQ_WAIT_WRITABLE, 1, deadline));
	EXPECT_GE(now_ns(), deadline);
	// Readable for the consumer (so that its library reports the problem).
	EXPECT_EQ(0, raw_wait(c.fd(), SHMQ_WAIT_READABLE, 0, 0));
	p.close();
	auto lib = shmq::Producer::open(q.name());
	ASSERT_TRUE(lib) << err_str(lib.error());
	uint8_t m[16] = {};
	auto r = lib->try_send(as_bytes(m, sizeof m));
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(EBADMSG, r.error().code()) << err_str(r.error());
	auto s = lib->send(as_bytes(m, sizeof m), shmq::Timeout::after(std::chrono::milliseconds(100)));
	ASSERT_FALSE(s.ok());
	EXPECT_EQ(EBADMSG, s.error().code()) << err_str(s.error());
}

TEST_F(Hostile, CorruptRecordsGiveEBADMSG)
{
	struct Case {
		const char *what;
		std::function<void(RawEnd &)> write;
	};
	auto hdr = [](RawEnd &p, uint64_t off, uint32_t len, uint32_t type) {
		shmq_record h{len, type};
		memcpy(p.data.bytes() + off, &h, sizeof h);
	};
	const std::vector<Case> cases = {
		{"unknown record type", [&](RawEnd &p) { hdr(p, 0, 8, 0x12345678); p.set_tail(16); }},
		{"length beyond tail", [&](RawEnd &p) { hdr(p, 0, 64, SHMQ_REC_MSG); p.set_tail(16); }},
		{"length beyond the ring end", [&](RawEnd &p) { hdr(p, 0, 0xfffffff0u, SHMQ_REC_MSG); p.set_tail(kCap); }},
		{"message crossing the ring end", [&](RawEnd &p) {
			 // Four valid records first (3 x 1024 + 1008 bytes, each
			 // within max_message = 1016), consumed below, so that
			 // head sits 16 bytes before the ring end.
			 hdr(p, 0, 1016, SHMQ_REC_MSG);
			 hdr(p, 1024, 1016, SHMQ_REC_MSG);
			 hdr(p, 2048, 1016, SHMQ_REC_MSG);
			 hdr(p, 3072, 1000, SHMQ_REC_MSG);
			 p.set_tail(kCap - 16);
		 }},
		{"PAD not ending at the ring end", [&](RawEnd &p) { hdr(p, 0, 64, SHMQ_REC_PAD); p.set_tail(kCap); }},
		{"PAD beyond tail", [&](RawEnd &p) { hdr(p, 0, kCap - 8, SHMQ_REC_PAD); p.set_tail(64); }},
		{"misaligned tail", [&](RawEnd &p) { hdr(p, 0, 0, SHMQ_REC_MSG); p.set_tail(4); }},
		{"tail a record short of the header", [&](RawEnd &p) { hdr(p, 0, 0, SHMQ_REC_MSG); p.set_tail(1); }},
	};
	for (const Case &k : cases) {
		SCOPED_TRACE(k.what);
		TestQueue q;
		ASSERT_NO_FATAL_FAILURE(q.create(kCap, "hostile"));
		RawEnd p;
		ASSERT_NO_FATAL_FAILURE(p.open(q.name(), O_WRONLY));
		k.write(p);
		if (std::string(k.what) == "message crossing the ring end") {
			auto c = shmq::Consumer::open(q.name());
			ASSERT_TRUE(c);
			std::vector<uint8_t> buf(kCap);
			for (int i = 0; i < 4; i++) {
				auto r = c->try_receive(as_wbytes(buf.data(), buf.size()));
				ASSERT_TRUE(r) << err_str(r.error());
			}
			// Now a 64-byte message where only 16 bytes are left.
			hdr(p, kCap - 16, 64, SHMQ_REC_MSG);
			p.set_tail(kCap - 16 + 72);
			auto bad = c->try_receive(as_wbytes(buf.data(), buf.size()));
			ASSERT_FALSE(bad);
			EXPECT_EQ(EBADMSG, bad.error().code()) << err_str(bad.error());
			continue;
		}
		EXPECT_EQ(EBADMSG, library_receive_error(q.name()));
	}
}

TEST_F(Hostile, MisalignedTailLeftByPreviousProducerRefusedOnOpen)
{
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kCap, "hostile"));
	{
		RawEnd p;
		ASSERT_NO_FATAL_FAILURE(p.open(q.name(), O_WRONLY));
		p.set_tail(13);
	}
	auto lib = shmq::Producer::open(q.name());
	ASSERT_FALSE(lib);
	EXPECT_EQ(EBADMSG, lib.error().code()) << err_str(lib.error());
	// The refused open detached again.
	Fd p(open_queue(q.name(), O_WRONLY));
	EXPECT_TRUE(p.ok()) << errname(-p.get());
}

TEST_F(Hostile, CountersFlippingUnderASleeperDoNotHangIt)
{
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kCap, "hostile"));
	RawEnd p, c;
	ASSERT_NO_FATAL_FAILURE(p.open(q.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	p.publish(2040);
	p.publish(2040); // full
	const uint64_t deadline = deadline_in_ms(600);
	WaitThread w(p.fd(), SHMQ_WAIT_WRITABLE, kCap, deadline);
	// The consumer scribbles over head and keeps waking the producer.
	Rng rng(1);
	while (!w.done() && now_ns() < deadline) {
		c.set_head(rng.next() | 1); // never a valid position
		xioctl_val(c.fd(), SHMQ_IOC_WAKE, 0);
		sleep_ms(5);
	}
	ASSERT_TRUE(w.wait(2000 + 600)) << "producer wait hung on garbage counters";
	EXPECT_TRUE(w.result() == ETIMEDOUT || w.result() == 0) << errname(w.result());
}
