// SPDX-License-Identifier: MIT
// Lane queues through libshmq, on the real module: senders proven per
// message, the fairness rule, lane events (attached, ended, corrupt,
// dropped), waiting and epoll over every lane, queue semantics when the
// consumer goes. LanesLibRace* also run with 2 vCPUs.
#include "shmq_test.hpp"

#include <shmq/shmq.hpp>

#include <grp.h>
#include <sys/epoll.h>

#include <map>

using namespace shmqt;

namespace {

constexpr uint64_t kLaneSize = 16384;

// A lane queue made with the library, destroyed at the end of the test and
// open to every user (the tests send as several uids).
class LibLaneQueue {
public:
	LibLaneQueue() = default;
	LibLaneQueue(const LibLaneQueue &) = delete;
	LibLaneQueue &operator=(const LibLaneQueue &) = delete;
	~LibLaneQueue()
	{
		if (created_)
			destroy_queue_now(name_);
	}
	void create(uint32_t producers, uint64_t lane_size = kLaneSize)
	{
		name_ = unique_name("ll");
		shmq::CreateOptions o;
		o.capacity = lane_size;
		o.max_producers = producers;
		auto r = shmq::create_queue(name_, o);
		ASSERT_TRUE(r) << r.error().message();
		created_ = true;
		ASSERT_TRUE(wait_node_settled(dev_path(name_))) << dev_path(name_);
		ASSERT_EQ(0, ::chmod(dev_path(name_).c_str(), 0666)) << strerror(errno);
	}
	const std::string &name() const { return name_; }

private:
	std::string name_;
	bool created_ = false;
};

std::string text(const shmq::Message &m)
{
	return std::string(reinterpret_cast<const char *>(m.data().data()), m.size());
}

bool send_str(shmq::Producer &p, const std::string &s)
{
	return p.send(std::as_bytes(std::span(s.data(), s.size())),
		      shmq::Timeout::after(std::chrono::seconds(60)))
		.has_value();
}

int become(uid_t uid)
{
	if (uid && (setgroups(0, nullptr) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)))
		return -1;
	return 0;
}

struct Gate {
	std::atomic<uint32_t> go{0};
	std::atomic<uint32_t> opened{0};
	std::atomic<uint32_t> fail{0};
};

} // namespace

TEST(LanesLib, ALaneQueueIsCreatedAndOpenedByTheLibrary)
{
	SHMQT_REQUIRE_ROOT();
	LibLaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(4));
	auto c = shmq::Consumer::open(q.name());
	ASSERT_TRUE(c) << c.error().message();
	EXPECT_TRUE(c->info().lanes);
	EXPECT_EQ(4u, c->info().max_producers);
	EXPECT_EQ(kLaneSize, c->info().capacity);
	std::vector<shmq::Producer> ps;
	for (uint32_t i = 0; i < 4; i++) {
		auto p = shmq::Producer::open(q.name());
		ASSERT_TRUE(p) << p.error().message();
		EXPECT_EQ(i, p->info().lane);
		EXPECT_TRUE(p->info().lanes);
		ps.push_back(std::move(*p));
	}
	auto fifth = shmq::Producer::open(q.name());
	ASSERT_FALSE(fifth);
	EXPECT_EQ(EBUSY, fifth.error().code()) << fifth.error().message();
	// Bad create options: exact errnos.
	shmq::CreateOptions o;
	o.max_producers = 1025;
	auto r = shmq::create_queue(unique_name("bad"), o);
	ASSERT_FALSE(r);
	EXPECT_EQ(EINVAL, r.error().code());
	o.max_producers = 2;
	o.capacity = 12288;
	r = shmq::create_queue(unique_name("bad"), o);
	ASSERT_FALSE(r);
	EXPECT_EQ(EINVAL, r.error().code());
	auto again = shmq::Consumer::open(q.name());
	ASSERT_FALSE(again);
	EXPECT_EQ(EBUSY, again.error().code());
}

// Every message names its sender, as the kernel saw it at the producer's
// open: uid, gid, pid, whatever the producers write.
TEST(LanesLib, EveryMessageCarriesItsSendersCredentials)
{
	SHMQT_REQUIRE_ROOT();
	const int kProducers = 4;
	const uint64_t per = scaled<uint64_t>(20000, 2000);
	LibLaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kProducers));
	auto c = shmq::Consumer::open(q.name());
	ASSERT_TRUE(c) << c.error().message();
	std::vector<Child> kids;
	std::map<pid_t, uid_t> uid_of;
	for (int i = 0; i < kProducers; i++) {
		const uid_t uid = 3101 + uid_t(i % 2);
		kids.push_back(Child::spawn([&, i, uid] {
			if (become(uid))
				return 2;
			auto p = shmq::Producer::open(q.name());
			if (!p)
				return 3;
			for (uint64_t s = 0; s < per; s++)
				if (!send_str(*p, std::to_string(i) + ":" + std::to_string(s)))
					return 4;
			return 0;
		}));
		uid_of[kids.back().pid()] = uid;
	}
	std::vector<uint64_t> next(kProducers, 0);
	std::map<uint32_t, pid_t> pid_of_lane;
	uint64_t got = 0, bad = 0;
	char buf[256];
	while (got < per * kProducers && bad == 0) {
		auto m = c->peek(shmq::Timeout::after(std::chrono::seconds(60)));
		ASSERT_TRUE(m) << m.error().message() << " after " << got;
		const std::string s = text(*m);
		const int i = std::stoi(s.substr(0, s.find(':')));
		const uint64_t seq = std::stoull(s.substr(s.find(':') + 1));
		const shmq::Sender snd = m->sender();
		if (i < 0 || i >= kProducers || seq != next[i] || snd.pid != kids[i].pid() ||
		    snd.uid != uid_of[kids[i].pid()] || snd.gid != snd.uid) {
			ADD_FAILURE() << "message '" << s << "' from uid " << snd.uid << " gid " << snd.gid
				      << " pid " << snd.pid << " (lane " << m->lane() << ")";
			bad++;
		}
		if (i >= 0 && i < kProducers)
			next[i] = seq + 1;
		got++;
		ASSERT_TRUE(c->release());
		(void)buf;
	}
	EXPECT_EQ(per * kProducers, got);
	for (auto &k : kids) {
		ASSERT_TRUE(k.wait_exit(60000));
		EXPECT_TRUE(k.exited_with(0)) << k.describe();
	}
	// Four attached, then four ended once each lane was drained.
	std::vector<shmq::LaneEvent> ev(64);
	size_t attached = 0, ended = 0;
	const uint64_t end = deadline_in_ms(20000);
	while (ended < size_t(kProducers) && now_ns() < end) {
		auto m = c->try_peek();
		ASSERT_FALSE(m);
		const size_t n = c->events(ev);
		for (size_t k = 0; k < n; k++) {
			attached += ev[k].kind == shmq::LaneEvent::Kind::attached;
			if (ev[k].kind == shmq::LaneEvent::Kind::ended) {
				ended++;
				EXPECT_EQ(uid_of[ev[k].sender.pid], ev[k].sender.uid);
			}
		}
		sleep_ms(5);
	}
	EXPECT_EQ(size_t(kProducers), attached);
	EXPECT_EQ(size_t(kProducers), ended);
	report_figure("lanes_lib_senders_checked", per * kProducers,
		      "messages whose sender (uid, gid, pid) the library reported right");
}

// The fairness rule on the real module: a producer with a full lane gets
// one message per round.
TEST(LanesLib, AFloodingProducerCannotStarveTheOthers)
{
	SHMQT_REQUIRE_ROOT();
	LibLaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(3));
	auto flood = shmq::Producer::open(q.name());
	auto a = shmq::Producer::open(q.name());
	auto b = shmq::Producer::open(q.name());
	ASSERT_TRUE(flood && a && b);
	int flooded = 0;
	while (flood->try_send(std::as_bytes(std::span("flood", 5))))
		flooded++;
	ASSERT_GT(flooded, 100);
	for (int i = 0; i < 3; i++) {
		ASSERT_TRUE(send_str(*a, "a" + std::to_string(i)));
		ASSERT_TRUE(send_str(*b, "b" + std::to_string(i)));
	}
	auto c = shmq::Consumer::open(q.name());
	ASSERT_TRUE(c) << c.error().message();
	std::string seq;
	for (int i = 0; i < 12; i++) {
		auto m = c->try_peek();
		ASSERT_TRUE(m) << m.error().message();
		seq += text(*m).substr(0, 1);
		ASSERT_TRUE(c->release());
	}
	EXPECT_EQ("fabfabfabfff", seq);
}

// A consumer asleep in receive wakes when a producer that was not there
// when it went to sleep opens and sends (SHMQ_WAIT_DIR_GEN); epoll too.
TEST(LanesLib, AReceiveAndAnEpollWakeForAProducerThatArrivesLater)
{
	SHMQT_REQUIRE_ROOT();
	LibLaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(8));
	shmq::OpenOptions oo;
	oo.ignore_hangup = true;
	auto c = shmq::Consumer::open(q.name(), oo);
	ASSERT_TRUE(c) << c.error().message();
	for (int round = 0; round < 3; round++) {
		Child k = Child::spawn([&] {
			sleep_ms(50);
			auto p = shmq::Producer::open(q.name());
			if (!p)
				return 3;
			return send_str(*p, "late" + std::to_string(round)) ? 0 : 4;
		});
		auto m = c->peek(shmq::Timeout::after(std::chrono::seconds(30)));
		ASSERT_TRUE(m) << m.error().message();
		EXPECT_EQ("late" + std::to_string(round), text(*m));
		EXPECT_EQ(k.pid(), m->sender().pid);
		ASSERT_TRUE(c->release());
		ASSERT_TRUE(k.wait_exit(30000));
		EXPECT_TRUE(k.exited_with(0)) << k.describe();
	}
	// Edge-triggered epoll: EAGAIN arms, a new producer's message wakes.
	auto e = c->try_peek();
	ASSERT_FALSE(e);
	ASSERT_EQ(EAGAIN, e.error().code());
	Fd ep(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event ee = {};
	ee.events = EPOLLIN | EPOLLET;
	ASSERT_EQ(0, epoll_ctl(ep.get(), EPOLL_CTL_ADD, c->fd(), &ee));
	// Not readable yet (EPOLLHUP may be reported: no producer is attached).
	struct epoll_event out;
	if (epoll_wait(ep.get(), &out, 1, 0) == 1)
		EXPECT_FALSE(out.events & EPOLLIN) << std::hex << out.events;
	Child k = Child::spawn([&] {
		auto p = shmq::Producer::open(q.name());
		return p && send_str(*p, "polled") ? 0 : 3;
	});
	bool in = false;
	const uint64_t until = deadline_in_ms(wake_bound_ms() * 5);
	while (!in && now_ns() < until)
		if (epoll_wait(ep.get(), &out, 1, int(wake_bound_ms()) * 5) == 1)
			in = out.events & EPOLLIN;
	EXPECT_TRUE(in);
	auto m = c->try_peek();
	ASSERT_TRUE(m) << m.error().message();
	EXPECT_EQ("polled", text(*m));
	ASSERT_TRUE(c->release());
	ASSERT_TRUE(k.wait_exit(30000));
}

// A producer that writes garbage into its own lane is reported once with
// its lane and identity; the others keep flowing; dropping it cuts it off
// (ECONNRESET at its next system call).
TEST(LanesLib, ACorruptLaneIsReportedWithItsSenderAndDropped)
{
	SHMQT_REQUIRE_ROOT();
	LibLaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(3, 4096));
	auto good = shmq::Producer::open(q.name());
	auto evil = shmq::Producer::open(q.name());
	ASSERT_TRUE(good && evil);
	const uint32_t evil_lane = evil->info().lane;
	ASSERT_TRUE(send_str(*evil, "soon garbage"));
	// The evil producer rewrites the header it published: it owns the page.
	{
		auto r = evil->try_reserve(8);
		ASSERT_TRUE(r);
		auto *hdr = reinterpret_cast<uint64_t *>(r->data().data() - 8 - 24);
		*hdr = 0xdeadbeefdeadbeefull;
		evil->abort(std::move(*r));
	}
	for (int i = 0; i < 5; i++)
		ASSERT_TRUE(send_str(*good, "g" + std::to_string(i)));
	auto c = shmq::Consumer::open(q.name());
	ASSERT_TRUE(c) << c.error().message();
	int corrupt = 0;
	std::string got;
	for (int i = 0; i < 10; i++) {
		auto m = c->try_peek();
		if (!m && m.error().code() == EBADMSG) {
			EXPECT_EQ(int32_t(evil_lane), m.error().lane());
			corrupt++;
			continue;
		}
		if (!m)
			break;
		got += text(*m);
		ASSERT_TRUE(c->release());
	}
	EXPECT_EQ(1, corrupt);
	EXPECT_EQ("g0g1g2g3g4", got);
	std::vector<shmq::LaneEvent> ev(16);
	const size_t n = c->events(ev);
	bool saw_corrupt = false, saw_dropped = false;
	for (size_t k = 0; k < n; k++) {
		if (ev[k].kind == shmq::LaneEvent::Kind::corrupt) {
			saw_corrupt = true;
			EXPECT_EQ(evil_lane, ev[k].lane);
			EXPECT_EQ(getpid(), ev[k].sender.pid);
			EXPECT_EQ(0u, ev[k].sender.uid);
		}
		saw_dropped |= ev[k].kind == shmq::LaneEvent::Kind::dropped;
	}
	EXPECT_TRUE(saw_corrupt);
	// Nothing else to read: the library dropped the lane (else every wait
	// would end at once on its data).
	EXPECT_TRUE(saw_dropped);
	auto d = c->drop_lane(evil_lane);
	ASSERT_FALSE(d);
	EXPECT_EQ(ENOENT, d.error().code()) << d.error().message();
	// The dropped producer learns it at its next system call.
	int e = 0;
	for (int i = 0; i < 4096 && !e; i++) {
		auto s = evil->send(std::as_bytes(std::span("after", 5)),
				    shmq::Timeout::after(std::chrono::milliseconds(100)));
		if (!s)
			e = s.error().code();
	}
	EXPECT_EQ(ECONNRESET, e);
	// The good producer was never disturbed.
	ASSERT_TRUE(send_str(*good, "g5"));
	auto m = c->try_peek();
	ASSERT_TRUE(m) << m.error().message();
	EXPECT_EQ("g5", text(*m));
}

// Queue semantics: with ignore_hangup a producer whose consumer was killed
// keeps going, blocks when its lane is full, and continues when a new
// consumer drains; nothing committed is lost.
TEST(LanesLibRace, ProducersOutliveAKilledConsumer)
{
	SHMQT_REQUIRE_ROOT();
	const int kProducers = 3;
	const uint64_t per = scaled<uint64_t>(3000, 500);
	LibLaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kProducers, 4096));
	std::vector<Child> kids;
	for (int i = 0; i < kProducers; i++)
		kids.push_back(Child::spawn([&, i] {
			shmq::OpenOptions oo;
			oo.ignore_hangup = true;
			auto p = shmq::Producer::open(q.name(), oo);
			if (!p)
				return 3;
			for (uint64_t s = 0; s < per; s++)
				if (!send_str(*p, std::to_string(i) + ":" + std::to_string(s)))
					return 4;
			return 0;
		}));
	// A first consumer takes some messages and is killed mid-stream. It
	// notes each message's sequence before releasing it, so that a gap
	// (a message lost) would show below.
	struct Seen {
		std::atomic<int64_t> last[kProducers];
		std::atomic<uint64_t> taken;
	};
	Shared<Seen> seen;
	for (int i = 0; i < kProducers; i++)
		seen->last[i].store(-1);
	Child first = Child::spawn([&] {
		auto c = shmq::Consumer::open(q.name());
		if (!c)
			return 3;
		for (;;) {
			auto m = c->peek(shmq::Timeout::after(std::chrono::seconds(30)));
			if (!m)
				return 4;
			const std::string s = text(*m);
			const int i = std::stoi(s.substr(0, s.find(':')));
			if (i < 0 || i >= kProducers)
				return 5;
			seen->last[i].store(int64_t(std::stoull(s.substr(s.find(':') + 1))));
			if (!c->release())
				return 6;
			seen->taken.fetch_add(1);
		}
	});
	const uint64_t until = deadline_in_ms(30000);
	while (seen->taken.load() < per / 2 && now_ns() < until)
		sleep_ms(2);
	first.kill_and_reap();
	ASSERT_GT(seen->taken.load(), 0u);
	sleep_ms(100); // the producers fill their lanes and block
	shmq::OpenOptions oo;
	oo.ignore_hangup = true;
	auto c = shmq::Consumer::open(q.name(), oo);
	ASSERT_TRUE(c) << c.error().message();
	std::vector<uint64_t> next(kProducers, 0);
	bool first_of[kProducers] = {true, true, true};
	uint64_t got = 0;
	for (;;) {
		bool all = true;
		for (int i = 0; i < kProducers; i++)
			all &= next[i] == per;
		if (all)
			break;
		auto m = c->peek(shmq::Timeout::after(std::chrono::seconds(60)));
		ASSERT_TRUE(m) << m.error().message();
		const std::string s = text(*m);
		const int i = std::stoi(s.substr(0, s.find(':')));
		const uint64_t seq = std::stoull(s.substr(s.find(':') + 1));
		ASSERT_TRUE(i >= 0 && i < kProducers) << s;
		// The first of a lane may repeat what the killed one had taken
		// (at least once), never skip past it; then strictly in order.
		if (first_of[i])
			EXPECT_LE(int64_t(seq), seen->last[i].load() + 1) << s;
		else
			EXPECT_EQ(next[i], seq) << s;
		first_of[i] = false;
		next[i] = seq + 1;
		got++;
		ASSERT_TRUE(c->release());
	}
	for (auto &k : kids) {
		ASSERT_TRUE(k.wait_exit(60000));
		EXPECT_TRUE(k.exited_with(0)) << k.describe();
	}
	report_figure("lanes_lib_consumer_kill_messages", got,
		      "messages delivered to a second consumer after the first was SIGKILLed");
}
