// SPDX-License-Identifier: MIT
// Hostile*: a peer that writes garbage into the memory it may write
// (docs/security.md). The kernel must neither crash, hang nor block forever;
// libshmq must answer EBADMSG and never read out of bounds. The last two
// tests keep a hostile peer scribbling while the victim's library, pollers
// and waiters run, then destroy the queue under a waiter sleeping on garbage.
#include "shmq_test.hpp"
#include "usage.hpp"

#include <map>
#include <sys/epoll.h>

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
	ASSERT_FALSE(r.has_value());
	EXPECT_EQ(EBADMSG, r.error().code()) << err_str(r.error());
	auto s = lib->send(as_bytes(m, sizeof m), shmq::Timeout::after(std::chrono::milliseconds(100)));
	ASSERT_FALSE(s.has_value());
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

// ---------------------------------------------------------------------------
// A hostile peer that keeps writing random values into everything it can
// map (producer: tail and the data area; consumer: head) while the victim's
// library, pollers, epoll and SHMQ_IOC_WAIT callers run. The victim gets
// values or the documented errors, never anything out of range; waiters
// sleeping on garbage end when the queue is destroyed; nothing leaks.


namespace {

// The address range of this process's only mapping of @size bytes of a
// shmq ring file (the library's data region).
bool ring_mapping(size_t size, uintptr_t *lo, uintptr_t *hi)
{
	std::string maps;
	if (!read_file("/proc/self/maps", &maps))
		return false;
	int found = 0;
	size_t pos = 0;
	while (pos < maps.size()) {
		size_t eol = maps.find('\n', pos);
		if (eol == std::string::npos)
			eol = maps.size();
		const std::string line = maps.substr(pos, eol - pos);
		pos = eol + 1;
		if (line.find("[shmq]") == std::string::npos)
			continue;
		unsigned long a = 0, b = 0;
		if (sscanf(line.c_str(), "%lx-%lx", &a, &b) != 2 || b - a != size)
			continue;
		*lo = a;
		*hi = b;
		found++;
	}
	return found == 1;
}

// On one CPU the victim runs only while the hostile peer is preempted or
// asleep, and it blocks (kernel-side) only on counters that look valid: a
// WAIT for room sleeps while head is garbage and is woken once a valid head
// gives room. So a hostile peer that never sleeps can, by timing alone, leave
// the victim reading nothing but valid values. Sleeping now and then right
// after writing garbage makes the victim run while the garbage stands.
static void linger_on_garbage(Rng &rng)
{
	if (rng.chance(3))
		usleep(useconds_t(rng.range(50, 400)));
}

struct ChaosCtl {
	// 0: valid messages only (hostile producer), 1: scribble,
	// 2: park (leave the ring not ready and stay attached), 3: parked
	std::atomic<int> phase;
	std::atomic<uint64_t> writes;
};

// The hostile producer: random tail values, random bytes and plausible but
// wrong record headers in the data area, wake-ups.
int hostile_producer(const std::string &name, ChaosCtl *ctl, uint64_t seed)
{
	RawEnd p;
	p.open(name, O_WRONLY);
	if (testing::Test::HasFailure())
		return 10;
	Rng rng(seed);
	const uint64_t cap = p.capacity();
	while (ctl->phase <= 1) {
		const uint64_t h = p.head();
		switch (ctl->phase == 0 ? 4 + rng.next() % 2 : rng.next() % 6) {
		case 0:
			p.set_tail(rng.next());
			linger_on_garbage(rng);
			break;
		case 1: // near the head, perhaps misaligned or beyond the capacity
			p.set_tail(h + rng.range(0, cap + 64));
			break;
		case 2: { // random bytes
			uint64_t off = rng.range(0, cap - 1), n = rng.range(1, 64);
			for (uint64_t i = 0; i < n && off + i < cap; i++)
				p.data.bytes()[off + i] = uint8_t(rng.next());
			break;
		}
		case 3: { // a plausible header at the head with a wrong length or type
			shmq_record r{uint32_t(rng.chance(50) ? rng.next() : rng.range(0, cap)),
				      uint32_t(rng.chance(70) ? rng.range(SHMQ_REC_MSG, SHMQ_REC_PAD) : rng.next())};
			memcpy(p.data.bytes() + (h & (cap - 1) & ~uint64_t(7)), &r, sizeof r);
			p.set_tail(h + rng.range(1, 64) * 8);
			break;
		}
		case 4: { // a valid message
			if (ctl->phase == 0) { // appended like a real producer, if it fits
				const uint64_t t = p.tail(), n = rng.range(0, 200), rec = record_bytes(n);
				const uint64_t off = t & (cap - 1);
				const uint64_t need = rec + (rec > cap - off ? cap - off : 0);
				if (t - h <= cap && cap - (t - h) >= need)
					p.publish(n, uint8_t(rng.next()));
			} else { // at the head, whatever the tail was
				p.set_tail(p.write_record(rng.range(0, 200), uint8_t(rng.next()), h));
			}
			break;
		}
		default:
			xioctl_val(p.fd(), SHMQ_IOC_WAKE, 0);
			break;
		}
		ctl->writes++;
	}
	p.set_tail(p.head()); // empty: a reader now sleeps
	ctl->phase = 3;
	pause(); // killed by the test
	return 0;
}

// The hostile consumer: random head values, wake-ups.
int hostile_consumer(const std::string &name, ChaosCtl *ctl, uint64_t seed)
{
	RawEnd c;
	c.open(name, O_RDONLY);
	if (testing::Test::HasFailure())
		return 10;
	Rng rng(seed);
	const uint64_t cap = c.capacity();
	while (ctl->phase <= 1) {
		const uint64_t t = c.tail();
		switch (rng.next() % 4) {
		case 0:
			c.set_head(rng.next());
			linger_on_garbage(rng);
			break;
		case 1: // around the tail: behind, ahead, misaligned
			c.set_head(t - cap - 64 + rng.range(0, 2 * cap + 128));
			break;
		case 2:
			c.set_head(t); // everything consumed (a valid value)
			break;
		default:
			xioctl_val(c.fd(), SHMQ_IOC_WAKE, 0);
			break;
		}
		ctl->writes++;
	}
	c.set_head(c.tail() + 8); // ahead of the tail: never writable
	ctl->phase = 3;
	pause();
	return 0;
}

// Pollers, epoll and WAIT callers on the victim's fd until @stop; each
// result checked against @ok_revents / @ok_wait.
struct Bystanders {
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> calls{0};
	std::atomic<int> bad{0};
	std::string why;
	std::vector<std::thread> ts;

	void start(int fd, short events, uint32_t cond, uint64_t cap)
	{
		auto fail = [this](const std::string &w) {
			if (bad.exchange(1) == 0)
				why = w;
		};
		const int ok_rev = events | (events == POLLIN ? POLLRDNORM : POLLWRNORM) | POLLHUP | POLLERR;
		ts.emplace_back([=, this] { // poll
			while (!stop) {
				int r = poll_one(fd, events, 10);
				if (r < 0 || (r & ~ok_rev))
					fail(strprintf("poll: %d", r));
				calls++;
			}
		});
		ts.emplace_back([=, this] { // epoll, edge-triggered
			Fd ep(epoll_create1(EPOLL_CLOEXEC));
			struct epoll_event ev = {};
			ev.events = uint32_t(events == POLLIN ? EPOLLIN : EPOLLOUT) | EPOLLET;
			if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev))
				fail("epoll_ctl: " + errname(errno));
			while (!stop) {
				struct epoll_event out = {};
				int r = epoll_wait(ep.get(), &out, 1, 10);
				if (r < 0 || (r == 1 && (out.events & ~uint32_t(ok_rev))))
					fail(strprintf("epoll_wait: %d events %#x", r, out.events));
				calls++;
			}
		});
		for (int i = 0; i < 2; i++)
			ts.emplace_back([=, this] { // SHMQ_IOC_WAIT, short deadlines
				Rng rng(uint64_t(i) + 99);
				while (!stop) {
					const uint64_t need = cond == SHMQ_WAIT_WRITABLE ? rng.range(1, cap) : 0;
					int r = raw_wait(fd, cond, need, deadline_in_ms(rng.range(0, 20)));
					if (r != 0 && r != ETIMEDOUT && r != EIDRM)
						fail("wait: " + errname(r));
					calls++;
				}
			});
	}
	void join()
	{
		stop = true;
		for (auto &t : ts)
			t.join();
	}
};

} // namespace

TEST_F(Hostile, ProducerScribblingEverythingWhileConsumerSidePollsAndWaits)
{
	const Usage base = read_usage();
	constexpr uint64_t cap = 64 * 1024;
	{
		TestQueue q;
		ASSERT_NO_FATAL_FAILURE(q.create(cap, "hostile"));
		auto c = shmq::Consumer::open(q.name());
		ASSERT_TRUE(c) << err_str(c.error());
		uintptr_t lo = 0, hi = 0;
		ASSERT_TRUE(ring_mapping(cap, &lo, &hi)) << "cannot find the consumer's data mapping";
		const size_t max = c->info().max_message;
		Shared<ChaosCtl> ctl;
		const uint64_t seed = test_seed();
		Child evil = Child::spawn([&] {
			c->close();
			return hostile_producer(q.name(), &*ctl, seed);
		});
		ASSERT_TRUE(eventually(10000, [&] { return ctl->writes > 100; })) << "hostile producer did not start";
		Bystanders by;
		by.start(c->fd(), POLLIN, SHMQ_WAIT_READABLE, cap);
		std::vector<uint8_t> buf(max);
		std::map<int, uint64_t> results;
		const unsigned run_ms = scaled(3000u, 6000u);
		const uint64_t chaos = deadline_in_ms(run_ms / 3), end = deadline_in_ms(run_ms);
		while (now_ns() < end) {
			if (ctl->phase == 0 && now_ns() >= chaos)
				ctl->phase = 1; // (the library's EBADMSG is sticky from then on)
			int e = 0;
			switch (rand() % 4) {
			case 0:
			case 1: {
				auto m = rand() % 2 ? c->try_peek() : c->peek(shmq::Timeout::after(std::chrono::milliseconds(5)));
				if (!m) {
					e = m.error().code();
					break;
				}
				const uintptr_t a = reinterpret_cast<uintptr_t>(m->data().data());
				ASSERT_LE(m->size(), max);
				ASSERT_TRUE(a >= lo && a + m->size() <= hi)
					<< "peek handed out " << m->size() << " bytes at " << (void *)a << ", ring at "
					<< (void *)lo << "-" << (void *)hi;
				volatile uint8_t sink = 0;
				for (size_t i = 0; i < m->size(); i++)
					sink = sink + uint8_t(m->data()[i]);
				ASSERT_TRUE(c->release().has_value());
				break;
			}
			default: {
				auto r = rand() % 2 ? c->try_receive(as_wbytes(buf.data(), buf.size()))
						    : c->receive(as_wbytes(buf.data(), buf.size()),
								 shmq::Timeout::after(std::chrono::milliseconds(5)));
				if (!r)
					e = r.error().code();
				else
					ASSERT_LE(*r, max);
				break;
			}
			}
			results[e]++;
			ASSERT_TRUE(e == 0 || e == EBADMSG || e == EAGAIN || e == ETIMEDOUT)
				<< "consumer library: " << errname(e);
		}
		// Park: the hostile producer leaves the ring empty and stays
		// attached, so a reader with no deadline sleeps until destroy.
		ctl->phase = 2;
		ASSERT_TRUE(eventually(10000, [&] { return ctl->phase == 3; }));
		WaitThread forever(c->fd(), SHMQ_WAIT_READABLE, 0, UINT64_MAX);
		ASSERT_TRUE(forever.blocked_for(100)) << "returned " << (forever.done() ? errname(forever.result()) : "");
		ASSERT_EQ(0, q.destroy());
		ASSERT_TRUE(forever.wait(wake_bound_ms())) << "a reader sleeping on a hostile ring outlived destroy";
		EXPECT_EQ(EIDRM, forever.result());
		by.join();
		EXPECT_EQ(0, by.bad.load()) << by.why;
		EXPECT_GT(results[EBADMSG], 0u) << "the consumer never noticed the garbage";
		EXPECT_GT(results[0], 0u) << "no message was ever handed out: the range checks never ran";
		std::string line;
		for (auto &[err, n] : results)
			line += strprintf(" %s %llu", err ? errname(err).c_str() : "ok", (unsigned long long)n);
		printf("[   INFO   ] %llu hostile writes; consumer calls:%s; %llu poll/epoll/wait calls\n",
		       (unsigned long long)ctl->writes.load(), line.c_str(), (unsigned long long)by.calls.load());
		evil.kill_and_reap();
	}
	Usage now;
	EXPECT_TRUE(usage_back_to(base, &now)) << "leak: before " << base.describe() << ", after " << now.describe();
}

TEST_F(Hostile, ConsumerScribblingHeadWhileProducerSidePollsAndWaits)
{
	const Usage base = read_usage();
	constexpr uint64_t cap = 64 * 1024;
	{
		TestQueue q;
		ASSERT_NO_FATAL_FAILURE(q.create(cap, "hostile"));
		auto p = shmq::Producer::open(q.name());
		ASSERT_TRUE(p) << err_str(p.error());
		uintptr_t lo = 0, hi = 0;
		ASSERT_TRUE(ring_mapping(cap, &lo, &hi)) << "cannot find the producer's data mapping";
		const size_t max = p->info().max_message;
		Shared<ChaosCtl> ctl;
		const uint64_t seed = test_seed();
		Child evil = Child::spawn([&] {
			p->close();
			return hostile_consumer(q.name(), &*ctl, seed);
		});
		ctl->phase = 1;
		ASSERT_TRUE(eventually(10000, [&] { return ctl->writes > 100; })) << "hostile consumer did not start";
		Bystanders by;
		by.start(p->fd(), POLLOUT, SHMQ_WAIT_WRITABLE, cap);
		std::vector<uint8_t> buf(max, 0x33);
		std::map<int, uint64_t> results;
		const uint64_t end = deadline_in_ms(scaled(3000u, 6000u));
		const auto t5 = std::chrono::milliseconds(5);
		while (now_ns() < end) {
			int e = 0;
			const size_t n = size_t(rand()) % (max + 1);
			if (rand() % 2) {
				auto r = rand() % 2 ? p->try_reserve(n) : p->reserve(n, shmq::Timeout::after(t5));
				if (!r) {
					e = r.error().code();
				} else {
					const uintptr_t a = reinterpret_cast<uintptr_t>(r->data().data());
					ASSERT_TRUE(a >= lo && a + n <= hi)
						<< "reserve handed out " << n << " bytes at " << (void *)a << ", ring at "
						<< (void *)lo << "-" << (void *)hi;
					memset(r->data().data(), 0x44, n);
					if (rand() % 2)
						ASSERT_TRUE(p->commit(std::move(*r)).has_value());
					else
						p->abort(std::move(*r));
				}
			} else {
				auto r = rand() % 2 ? p->try_send(as_bytes(buf.data(), n))
						    : p->send(as_bytes(buf.data(), n), shmq::Timeout::after(t5));
				if (!r)
					e = r.error().code();
			}
			results[e]++;
			ASSERT_TRUE(e == 0 || e == EBADMSG || e == EAGAIN || e == ETIMEDOUT)
				<< "producer library: " << errname(e);
		}
		ctl->phase = 2;
		ASSERT_TRUE(eventually(10000, [&] { return ctl->phase == 3; }));
		WaitThread forever(p->fd(), SHMQ_WAIT_WRITABLE, 1, UINT64_MAX);
		ASSERT_TRUE(forever.blocked_for(100)) << "returned " << (forever.done() ? errname(forever.result()) : "");
		ASSERT_EQ(0, q.destroy());
		ASSERT_TRUE(forever.wait(wake_bound_ms())) << "a writer sleeping on a hostile head outlived destroy";
		EXPECT_EQ(EIDRM, forever.result());
		by.join();
		EXPECT_EQ(0, by.bad.load()) << by.why;
		EXPECT_GT(results[EBADMSG], 0u) << "the producer never noticed the garbage";
		EXPECT_GT(results[0], 0u) << "no reservation or send ever succeeded: the range checks never ran";
		std::string line;
		for (auto &[err, cnt] : results)
			line += strprintf(" %s %llu", err ? errname(err).c_str() : "ok", (unsigned long long)cnt);
		printf("[   INFO   ] %llu hostile writes; producer calls:%s; %llu poll/epoll/wait calls\n",
		       (unsigned long long)ctl->writes.load(), line.c_str(), (unsigned long long)by.calls.load());
		evil.kill_and_reap();
	}
	Usage now;
	EXPECT_TRUE(usage_back_to(base, &now)) << "leak: before " << base.describe() << ", after " << now.describe();
}
