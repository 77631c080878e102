// SPDX-License-Identifier: MIT
// Lane queues (SHMQ_IOC_CREATE2) through the raw ABI: creation limits, one
// lane per producer, the mappings each role may make, the directory, the
// credentials of SHMQ_IOC_LANE_INFO in the caller's namespaces, draining,
// dropping a corrupt lane, waiting over every lane, and many producers
// streaming to one consumer (LanesRace*, also run with 2 vCPUs).
//
// The consumer side here is a plain scan written with the ring core of
// <shmq/ring.hpp> (one detail::Ring per lane), independent of the
// library's consumer, so that these tests pin the kernel's part.
#include "shmq_test.hpp"

#include <shmq/ring.hpp>

#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/uio.h>

using namespace shmqt;
namespace d = shmq::detail;

namespace {

// ---------------------------------------------------------------------------
// Creation

shmq_create2_args create2_args(const std::string &name, uint64_t lane_size, uint32_t producers)
{
	shmq_create2_args a;
	memset(&a, 0, sizeof a);
	a.lane_size = lane_size;
	a.max_producers = producers;
	a.gid = uint32_t(-1);
	set_name(a.name, name);
	return a;
}

int raw_create2(const shmq_create2_args &a)
{
	Fd ctl(control_open());
	if (!ctl.ok())
		return -ctl.get();
	return xioctl(ctl.get(), SHMQ_IOC_CREATE2, &a);
}

// A lane queue for one test, destroyed at its end.
class LaneQueue {
public:
	LaneQueue() = default;
	LaneQueue(const LaneQueue &) = delete;
	LaneQueue &operator=(const LaneQueue &) = delete;
	~LaneQueue()
	{
		if (created_)
			destroy_queue_now(name_);
	}
	void create(uint64_t lane_size, uint32_t producers, const char *tag = "lq")
	{
		name_ = unique_name(tag);
		int e = raw_create2(create2_args(name_, lane_size, producers));
		ASSERT_EQ(0, e) << "SHMQ_IOC_CREATE2 " << name_ << ": " << errname(e);
		created_ = true;
		ASSERT_TRUE(wait_path(dev_path(name_), true)) << dev_path(name_) << " did not appear";
	}
	const std::string &name() const { return name_; }

private:
	std::string name_;
	bool created_ = false;
};

// ---------------------------------------------------------------------------
// One end of a lane queue, mapped as SHMQ_IOC_LAYOUT2 describes it.

int get_layout2(int fd, shmq_layout2 *l, std::vector<shmq_region2> *regions)
{
	memset(l, 0, sizeof *l);
	regions->assign(SHMQ_MAX_PRODUCERS + 2, shmq_region2{});
	l->regions = uint64_t(uintptr_t(regions->data()));
	l->regions_cap = uint32_t(regions->size());
	int e = xioctl(fd, SHMQ_IOC_LAYOUT2, l);
	if (!e)
		regions->resize(l->regions_count);
	return e;
}

struct LaneEnd {
	Fd qfd, rfd;
	shmq_layout2 L{};
	std::vector<shmq_region2> regions;
	Map status, cons, lanes; // lanes: the caller's lane (producer) or all (consumer)
	bool producer = false;

	void open(const std::string &name, int flags)
	{
		producer = (flags & O_ACCMODE) == O_WRONLY;
		int fd = open_queue(name, flags);
		ASSERT_GE(fd, 0) << "open " << dev_path(name) << ": " << errname(-fd);
		qfd.reset(fd);
		int e = get_layout2(fd, &L, &regions);
		ASSERT_EQ(0, e) << "SHMQ_IOC_LAYOUT2: " << errname(e);
		rfd.reset(ring_fd(fd));
		ASSERT_TRUE(rfd.ok()) << "SHMQ_IOC_RING_FD: " << errname(-rfd.get());
		const int rw = PROT_READ | PROT_WRITE;
		e = map_region(rfd.get(), regions[0].offset, regions[0].size, PROT_READ, &status);
		ASSERT_EQ(0, e) << "mmap status: " << errname(e);
		e = map_region(rfd.get(), regions[1].offset, regions[1].size,
			       producer ? PROT_READ : rw, &cons);
		ASSERT_EQ(0, e) << "mmap consumer region: " << errname(e);
		const uint64_t first = regions[2].offset;
		const size_t len = producer ? size_t(L.lane_stride)
					    : size_t(L.lane_stride * L.max_producers);
		e = map_region(rfd.get(), first, len, producer ? rw : PROT_READ, &lanes);
		ASSERT_EQ(0, e) << "mmap lanes: " << errname(e);
	}
	int fd() const { return qfd.get(); }
	uint32_t lane() const { return L.slot; }
	uint8_t *lane_base(uint32_t j) const
	{
		return lanes.bytes() + (producer ? 0 : size_t(j) * L.lane_stride);
	}
	uint32_t dir_gen() const { return load_acquire<uint32_t>(status.get(), L.dir_gen_off); }
	shmq_lane_dir dir(uint32_t j) const
	{
		shmq_lane_dir e;
		memcpy(&e, status.bytes() + L.dir_off + size_t(j) * L.dir_stride, sizeof e);
		return e;
	}
	// The ring of lane @j as the ring core sees it.
	d::Ring ring(uint32_t j) const
	{
		d::Ring r;
		uint8_t *lb = lane_base(j);
		uint8_t *de = status.bytes() + L.dir_off + size_t(j) * L.dir_stride;
		r.tail = reinterpret_cast<uint64_t *>(lb + L.tail_off);
		r.write_armed = reinterpret_cast<uint32_t *>(lb + L.write_armed_off);
		r.head = reinterpret_cast<uint64_t *>(cons.bytes() + L.head_off +
						      size_t(j) * L.head_stride);
		r.read_armed = reinterpret_cast<uint32_t *>(cons.bytes() + L.read_armed_off);
		r.read_wake = reinterpret_cast<uint32_t *>(status.bytes() + L.read_wake_off);
		r.write_wake = reinterpret_cast<uint32_t *>(de + offsetof(shmq_lane_dir, write_wake));
		r.write_need = reinterpret_cast<uint64_t *>(de + offsetof(shmq_lane_dir, write_need));
		r.state = reinterpret_cast<uint32_t *>(status.bytes() + L.state_off);
		r.data = reinterpret_cast<std::byte *>(lb + L.data_off);
		r.capacity = L.lane_size;
		r.max_message = L.max_message;
		return r;
	}
};

// Producer: copies @msg into its lane and publishes it, waiting for room
// and waking the consumer as the library does. 0, or an errno.
int lane_send(const d::Ring &r, int fd, uint64_t &tail, uint64_t &cached_head, const void *msg,
	      uint32_t len, unsigned timeout_ms = 20000)
{
	const uint64_t end = deadline_in_ms(timeout_ms);
	for (;;) {
		d::Reserved res;
		int e = d::try_reserve(r, tail, cached_head, len, res);
		if (e == 0) {
			memcpy(d::payload_at(r, res.pos), msg, len);
			const uint64_t old = tail;
			tail = d::commit(r, res.pos, len);
			if (d::publish(r, old, tail))
				::ioctl(fd, SHMQ_IOC_WAKE, 0);
			return 0;
		}
		if (e != EAGAIN)
			return e;
		e = raw_wait(fd, SHMQ_WAIT_WRITABLE, res.need, end, SHMQ_WAIT_IGNORE_HUP);
		if (e)
			return e;
	}
}

// Consumer: one pass over the lanes in index order, round robin from after
// @cursor. Copies one message into @buf, releases it and returns its lane
// (>= 0); -EAGAIN when every visible lane is empty, -EBADMSG - lane when
// lane is corrupt (encoded as -(1000 + lane)).
struct ScanState {
	std::vector<uint64_t> cached_tail;
	uint32_t cursor = 0;
};

int lane_take(const LaneEnd &c, ScanState &st, std::vector<uint8_t> &buf, size_t *len)
{
	const uint32_t n = c.L.max_producers;
	st.cached_tail.resize(n, 0);
	for (uint32_t k = 1; k <= n; k++) {
		const uint32_t j = (st.cursor + k) % n;
		const shmq_lane_dir de = c.dir(j);
		if (de.state == SHMQ_LANE_FREE)
			continue;
		const d::Ring r = c.ring(j);
		uint64_t head = d::load_relaxed(r.head);
		uint64_t &ct = st.cached_tail[j];
		if (ct - head > r.capacity)
			ct = head;
		for (;;) {
			d::Peeked p;
			int e = d::try_peek(r, head, ct, p);
			if (e == EAGAIN && p.end != head) { // PAD at the ring end
				(void)d::release(r, head, p.end);
				head = p.end;
				continue;
			}
			if (e == EAGAIN)
				break;
			if (e)
				return -(1000 + int(j));
			buf.assign(reinterpret_cast<const uint8_t *>(r.data + p.payload),
				   reinterpret_cast<const uint8_t *>(r.data + p.payload) + p.len);
			*len = p.len;
			if (d::release(r, head, p.end))
				::ioctl(c.fd(), SHMQ_IOC_WAKE, j + 1);
			st.cursor = j;
			return int(j);
		}
	}
	return -EAGAIN;
}

// Waits until some lane is readable or the directory changes; 0 or errno.
int lane_wait(const LaneEnd &c, uint32_t seen_gen, unsigned timeout_ms)
{
	shmq_wait_args w;
	memset(&w, 0, sizeof w);
	w.timeout_ns = deadline_in_ms(timeout_ms);
	w.cond = SHMQ_WAIT_READABLE;
	w.flags = SHMQ_WAIT_IGNORE_HUP | SHMQ_WAIT_DIR_GEN;
	w.reserved[0] = seen_gen;
	return xioctl(c.fd(), SHMQ_IOC_WAIT, &w);
}

int lane_info(int fd, uint32_t lane, shmq_lane_info *info)
{
	memset(info, 0, sizeof *info);
	info->lane = lane;
	return xioctl(fd, SHMQ_IOC_LANE_INFO, info);
}

int lane_drop(int fd, uint32_t lane, uint32_t gen)
{
	shmq_lane_ref ref;
	memset(&ref, 0, sizeof ref);
	ref.lane = lane;
	ref.generation = gen;
	return xioctl(fd, SHMQ_IOC_LANE_DROP, &ref);
}

std::string sysfs_attr(const std::string &q, const char *attr)
{
	std::string s;
	read_file(sysfs_dir(q) + "/" + attr, &s);
	return s;
}

// Lanes in use in /sys/class/shmq/NAME/lanes.
size_t sysfs_lane_lines(const std::string &q)
{
	const std::string s = lanes_in_use(sysfs_attr(q, "lanes"));
	return size_t(std::count(s.begin(), s.end(), '\n'));
}

constexpr uint64_t kLane = 16 * 1024;

// Lets every user open the queue's node once udev has applied its rules
// (it would otherwise set its own mode after ours).
void open_to_all(const std::string &name)
{
	ASSERT_TRUE(wait_node_settled(dev_path(name))) << "udev did not settle " << dev_path(name);
	ASSERT_EQ(0, ::chmod(dev_path(name).c_str(), 0666)) << strerror(errno);
}

} // namespace

// ---------------------------------------------------------------------------

TEST(Lanes, CreateArgumentsOutOfRangeAreEINVAL)
{
	SHMQT_REQUIRE_ROOT();
	const std::string n = unique_name("lc");
	struct Case {
		const char *what;
		std::function<void(shmq_create2_args &)> set;
	};
	const std::vector<Case> cases = {
		{"max_producers 1025", [](auto &a) { a.max_producers = SHMQ_MAX_PRODUCERS + 1; }},
		{"max_producers 2^32-1", [](auto &a) { a.max_producers = UINT32_MAX; }},
		{"lane_size 3 pages", [](auto &a) { a.lane_size = 3 * page_size(); }},
		{"lane_size 2048", [](auto &a) { a.lane_size = 2048; }},
		{"lane_size 0", [](auto &a) { a.lane_size = 0; }},
		{"max_consumers 2 (fan-out not offered)", [](auto &a) { a.max_consumers = 2; }},
		{"overflow fail (not offered)", [](auto &a) { a.overflow = SHMQ_OVERFLOW_FAIL; }},
		{"overflow 99", [](auto &a) { a.overflow = 99; }},
		{"lag_limit", [](auto &a) { a.lag_limit = 1 << 20; }},
		{"mode 0640 (ownership not offered)", [](auto &a) { a.mode = 0640; }},
		{"gid 0", [](auto &a) { a.gid = 0; }},
		{"flags 1 (ORDERED reserved)", [](auto &a) { a.flags = 1; }},
		{"reserved[3]", [](auto &a) { a.reserved[3] = 1; }},
	};
	for (const Case &c : cases) {
		shmq_create2_args a = create2_args(n, kLane, 4);
		c.set(a);
		EXPECT_EQ(EINVAL, raw_create2(a)) << c.what;
		EXPECT_FALSE(path_exists(dev_path(n))) << c.what;
	}
	// The module parameter lowers the ceiling.
	{
		ParamOverride p("max_producers", "8");
		EXPECT_EQ(EINVAL, raw_create2(create2_args(n, kLane, 9))) << "above max_producers=8";
	}
	EXPECT_EQ(EINVAL, write_file(param_path("max_producers"), "0"));
	EXPECT_EQ(EINVAL, write_file(param_path("max_producers"), "1025"));
	report_figure("lane_create_bad_args", cases.size() + 3, "CREATE2 cases refused with EINVAL");
}

TEST(Lanes, DefaultIs64LanesAndTheLimitIsChargedForAllOfThem)
{
	SHMQT_REQUIRE_ROOT();
	uint64_t before = 0;
	std::string s;
	ASSERT_TRUE(read_file("/sys/module/shmq/usage/memory_bytes", &s));
	before = std::stoull(s);
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 0));
	EXPECT_EQ("64", trim(sysfs_attr(q.name(), "max_producers")));
	ASSERT_TRUE(read_file("/sys/module/shmq/usage/memory_bytes", &s));
	const uint64_t ps = page_size();
	const uint64_t tables = 2 * ((65 * 64 + ps - 1) / ps) * ps;
	EXPECT_EQ(before + 64 * (kLane + ps) + tables + ps, std::stoull(s))
		<< "worst case: 64 lanes of data + producer page, two tables, the zero page";
	// Over max_total_memory with the worst case: ENOSPC although no lane exists.
	ParamOverride p("max_total_memory", std::to_string(before + 8 * kLane));
	EXPECT_EQ(ENOSPC, raw_create2(create2_args(unique_name("big"), kLane, 64)));
}

TEST(Lanes, EachProducerHasItsOwnLaneAndOneMoreIsEBUSY)
{
	SHMQT_REQUIRE_ROOT();
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 4));
	std::vector<std::unique_ptr<LaneEnd>> p;
	for (int i = 0; i < 4; i++) {
		p.push_back(std::make_unique<LaneEnd>());
		ASSERT_NO_FATAL_FAILURE(p.back()->open(q.name(), O_WRONLY));
		EXPECT_EQ(uint32_t(i), p.back()->lane()) << "the lowest free lane";
		EXPECT_EQ(3u, p.back()->regions.size()) << "status, consumer, its own lane only";
		EXPECT_EQ(SHMQ_QUEUE_LANES, p.back()->L.queue_features);
		EXPECT_EQ(4u, p.back()->L.max_producers);
	}
	EXPECT_EQ(-EBUSY, open_queue(q.name(), O_WRONLY)) << "the 5th producer";
	EXPECT_EQ("4", trim(sysfs_attr(q.name(), "producers")));
	EXPECT_EQ(4u, sysfs_lane_lines(q.name()));
	// Lane 1 goes with nothing queued: freed at once, and taken again.
	const uint32_t gen1 = p[1]->dir(1).generation;
	p[1].reset();
	EXPECT_EQ(3u, sysfs_lane_lines(q.name()));
	LaneEnd again;
	ASSERT_NO_FATAL_FAILURE(again.open(q.name(), O_WRONLY));
	EXPECT_EQ(1u, again.lane());
	EXPECT_NE(gen1, again.dir(1).generation) << "a new generation for a new producer";
	EXPECT_NE(0u, again.dir(1).generation);
}

// What is wrong with line @j of the lanes attribute, which starts at @p and
// has kSysfsLaneLine bytes; "" if nothing. @producer: the pid every lane in
// use must show (this process opened them all, and sent nothing).
std::string lane_line_fault(const char *p, uint32_t j, pid_t producer)
{
	const std::string l(p, kSysfsLaneLine);
	if (l.back() != '\n' || l.find('\n') != kSysfsLaneLine - 1)
		return "not one line of " + std::to_string(kSysfsLaneLine) + " bytes";
	std::istringstream in(l);
	uint64_t lane = 0, gen = 0, queued = 0;
	int64_t pid = -1, uid = -1, gid = -1;
	std::string state, extra;
	if (!(in >> lane >> state >> gen >> pid >> uid >> gid >> queued) || (in >> extra))
		return "not seven words";
	if (lane != j)
		return "lane " + std::to_string(lane) + " on line " + std::to_string(j);
	if (state == "free")
		return pid == 0 && uid == 4294967295 && gid == 4294967295 && queued == 0
			       ? "" : "a free lane with a producer's words";
	// draining: closed a moment ago, not reaped yet (nothing queued)
	if (state != "attached" && state != "draining")
		return "state " + state;
	return (pid == producer || (pid == 0 && state == "draining")) && uid == int64_t(geteuid()) &&
			       gid == int64_t(getegid()) && queued == 0
		       ? "" : "not this process's lane";
}

TEST(Lanes, TheLanesFileHasALineOfFixedSizeForEveryLaneWhateverTheReadSize)
{
	SHMQT_REQUIRE_ROOT();
	const uint32_t kLanes = 40; // 5120 bytes: more than one page
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, kLanes));
	std::vector<Fd> p;
	for (int i = 0; i < 3; i++) {
		p.emplace_back(open_queue(q.name(), O_WRONLY));
		ASSERT_TRUE(p.back().ok()) << errname(-p.back().get());
	}
	p[1] = Fd(); // lane 1 free again
	Fd f(::open((sysfs_dir(q.name()) + "/lanes").c_str(), O_RDONLY | O_CLOEXEC));
	ASSERT_TRUE(f.ok()) << strerror(errno);
	// Read as cat does: kernfs hands a binary attribute out a page at a
	// time, so every read below ends at a page (and a line's) end.
	std::string whole;
	std::vector<char> buf(3 * page_size());
	for (off_t at = 0;;) {
		const ssize_t n = ::pread(f.get(), buf.data(), buf.size(), at);
		ASSERT_LE(0, n) << strerror(errno);
		if (n == 0)
			break;
		EXPECT_GE(ssize_t(page_size()), n);
		whole.append(buf.data(), size_t(n));
		at += n;
	}
	ASSERT_EQ(size_t(kLanes) * kSysfsLaneLine, whole.size());
	for (uint32_t j = 0; j < kLanes; j++) {
		const char *l = whole.data() + size_t(j) * kSysfsLaneLine;
		EXPECT_EQ("", lane_line_fault(l, j, getpid())) << std::string(l, kSysfsLaneLine);
		const bool used = j == 0 || j == 2;
		EXPECT_EQ(used, std::string(l, kSysfsLaneLine).find(" free ") == std::string::npos)
			<< std::string(l, kSysfsLaneLine);
	}
	EXPECT_EQ(2u, sysfs_lane_lines(q.name()));
	// Any read size, any offset: the same bytes.
	for (size_t chunk : {size_t(1), size_t(7), size_t(100), size_t(129), size_t(4095)}) {
		std::string again;
		for (off_t at = 0;;) {
			const ssize_t n = ::pread(f.get(), buf.data(), chunk, at);
			ASSERT_LE(0, n) << strerror(errno);
			if (n == 0)
				break;
			again.append(buf.data(), size_t(n));
			at += n;
		}
		EXPECT_EQ(whole, again) << "read " << chunk << " bytes at a time";
	}
	char c;
	EXPECT_EQ(0, ::pread(f.get(), &c, 1, off_t(whole.size()))) << "the end";
	EXPECT_EQ(0, ::pread(f.get(), &c, 1, off_t(whole.size()) * 4)) << "beyond the end";
}

TEST(Lanes, AProducerCannotMapAnotherLaneNorWriteWhatItReads)
{
	SHMQT_REQUIRE_ROOT();
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 4));
	LaneEnd p0, p1, c;
	ASSERT_NO_FATAL_FAILURE(p0.open(q.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(p1.open(q.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	const uint64_t stride = p0.L.lane_stride, lane0 = p0.regions[2].offset;
	const uint64_t ps = page_size();
	Map m;
	unsigned cases = 0;
	auto expect_map = [&](int want, LaneEnd &e, uint64_t off, size_t len, int prot,
			      const char *what) {
		EXPECT_EQ(want, map_region(e.rfd.get(), off, len, prot, &m)) << what;
		m.reset();
		cases++;
	};
	expect_map(EACCES, p0, lane0 + stride, stride, PROT_READ, "lane 1 by lane 0's producer");
	expect_map(EACCES, p0, lane0 + stride + ps, ps, PROT_READ, "lane 1's data by lane 0");
	expect_map(EACCES, p1, lane0, ps, PROT_READ, "lane 0 by lane 1's producer");
	expect_map(EACCES, p0, lane0 + 2 * stride, ps, PROT_READ, "a free lane by a producer");
	expect_map(EINVAL, p0, lane0, 2 * stride, PROT_READ, "beyond its own lane");
	expect_map(EINVAL, p0, lane0 + 2 * ps, ps, PROT_READ, "inside its lane's data");
	expect_map(EACCES, p0, p0.regions[1].offset, ps, PROT_READ | PROT_WRITE,
		   "the consumer region writable by a producer");
	expect_map(EACCES, p0, 0, ps, PROT_READ | PROT_WRITE, "the status region writable");
	expect_map(EACCES, c, lane0, stride * 4, PROT_READ | PROT_WRITE,
		   "the lanes writable by the consumer");
	expect_map(0, p0, lane0, stride, PROT_READ | PROT_WRITE, "its own lane");
	expect_map(0, c, lane0 + stride, stride * 3, PROT_READ, "lanes 1..3 by the consumer");

	// Read-only is for good: mprotect, /proc/self/mem, process_vm_writev.
	EXPECT_NE(0, ::mprotect(c.lanes.get(), c.lanes.size(), PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_NE(0, ::mprotect(p0.cons.get(), p0.cons.size(), PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	cases += 2;
	Fd mem(::open("/proc/self/mem", O_RDWR));
	ASSERT_TRUE(mem.ok());
	const uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	for (void *target : {(void *)c.lanes.get(), (void *)p0.cons.get(), (void *)p0.status.get()}) {
		EXPECT_LT(::pwrite(mem.get(), junk, sizeof junk, off_t(uintptr_t(target))), 0)
			<< "/proc/self/mem wrote a read-only shmq mapping";
		cases++;
	}
	Child child = Child::spawn([&] {
		::sleep(30);
		return 0;
	});
	for (void *target : {(void *)c.lanes.get(), (void *)p0.cons.get()}) {
		struct iovec local = {(void *)junk, sizeof junk}, remote = {target, sizeof junk};
		EXPECT_LT(process_vm_writev(child.pid(), &local, 1, &remote, 1, 0), 0)
			<< "process_vm_writev into a read-only shmq mapping of a child";
		cases++;
	}
	// What the consumer reads of lane 0 stays what the producer wrote.
	EXPECT_EQ(0u, load_acquire<uint64_t>(c.lane_base(0), c.L.tail_off));
	report_figure("lane_map_cases", cases, "lane mmap/mprotect/proc-mem/vm_writev cases refused or allowed exactly");
}

TEST(Lanes, EveryLanesMessagesArriveAndAWaitOverAllLanesWakes)
{
	SHMQT_REQUIRE_ROOT();
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 8));
	LaneEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	std::vector<std::unique_ptr<LaneEnd>> p(3);
	for (auto &e : p) {
		e = std::make_unique<LaneEnd>();
		ASSERT_NO_FATAL_FAILURE(e->open(q.name(), O_WRONLY));
	}
	std::vector<uint64_t> tail(3, 0), ch(3, 0);
	for (int i = 0; i < 3; i++) {
		const uint32_t v = 100 + i;
		ASSERT_EQ(0, lane_send(p[i]->ring(0), p[i]->fd(), tail[i], ch[i], &v, sizeof v));
	}
	ScanState st;
	std::vector<uint8_t> buf;
	size_t len = 0;
	std::vector<int> got;
	for (int k = 0; k < 3; k++) {
		int lane = lane_take(c, st, buf, &len);
		ASSERT_GE(lane, 0);
		uint32_t v;
		memcpy(&v, buf.data(), 4);
		EXPECT_EQ(uint32_t(100 + lane), v);
		got.push_back(lane);
	}
	std::sort(got.begin(), got.end());
	EXPECT_EQ((std::vector<int>{0, 1, 2}), got);
	EXPECT_EQ(-EAGAIN, lane_take(c, st, buf, &len));

	// Asleep with every lane empty; the producer of lane 2 sends.
	const uint32_t gen = c.dir_gen();
	Async<int> waiter([&] { return lane_wait(c, gen, 20000); });
	sleep_ms(100);
	const uint32_t v = 7;
	const uint64_t t0 = now_ns();
	ASSERT_EQ(0, lane_send(p[2]->ring(0), p[2]->fd(), tail[2], ch[2], &v, sizeof v));
	EXPECT_EQ(0, waiter.get());
	EXPECT_LT(ns_to_ms(now_ns() - t0), wake_bound_ms());
	EXPECT_EQ(2, lane_take(c, st, buf, &len));
	// poll reports EPOLLIN for any lane.
	EXPECT_EQ(0, poll_one(c.fd(), POLLIN, 0));
	ASSERT_EQ(0, lane_send(p[1]->ring(0), p[1]->fd(), tail[1], ch[1], &v, sizeof v));
	EXPECT_EQ(POLLIN, poll_one(c.fd(), POLLIN, 1000));
}

TEST(Lanes, ADirectoryChangeEndsAWaitWithDirGen)
{
	SHMQT_REQUIRE_ROOT();
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 4));
	LaneEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	const uint32_t gen = c.dir_gen();
	EXPECT_EQ(0, lane_wait(c, gen + 1, 5000)) << "a stale dir_gen returns at once";
	EXPECT_EQ(ETIMEDOUT, lane_wait(c, gen, 50));
	Async<int> waiter([&] { return lane_wait(c, gen, 20000); });
	sleep_ms(100);
	LaneEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q.name(), O_WRONLY));
	EXPECT_EQ(0, waiter.get()) << "a producer's arrival wakes the consumer";
	EXPECT_NE(gen, c.dir_gen());
	EXPECT_EQ(uint32_t(SHMQ_LANE_ATTACHED), c.dir(0).state);

	// SHMQ_WAIT_DIR_GEN is for consumers of lane queues only.
	shmq_wait_args w;
	memset(&w, 0, sizeof w);
	w.timeout_ns = deadline_in_ms(10);
	w.cond = SHMQ_WAIT_WRITABLE;
	w.min_bytes = 8;
	w.flags = SHMQ_WAIT_DIR_GEN;
	EXPECT_EQ(EINVAL, xioctl(p.fd(), SHMQ_IOC_WAIT, &w));
	TestQueue spsc;
	ASSERT_NO_FATAL_FAILURE(spsc.create(kLane));
	Fd sc(open_queue(spsc.name(), O_RDONLY));
	w.cond = SHMQ_WAIT_READABLE;
	w.min_bytes = 0;
	EXPECT_EQ(EINVAL, xioctl(sc.get(), SHMQ_IOC_WAIT, &w)) << "on a SHMQ_IOC_CREATE queue";
	w.flags = 0;
	w.reserved[0] = 1;
	EXPECT_EQ(EINVAL, xioctl(c.fd(), SHMQ_IOC_WAIT, &w)) << "reserved[0] without the flag";
	EXPECT_EQ(EINVAL, xioctl_val(p.fd(), SHMQ_IOC_WAKE, 1)) << "a producer's wake takes no lane";
	EXPECT_EQ(EINVAL, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 5)) << "lane 4 of 4";
	EXPECT_EQ(0, xioctl_val(c.fd(), SHMQ_IOC_WAKE, 4));
}

TEST(Lanes, LaneInfoNamesTheOpenerInTheCallersNamespaces)
{
	SHMQT_REQUIRE_ROOT();
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 4));
	ASSERT_NO_FATAL_FAILURE(open_to_all(q.name()));
	LaneEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	Pipe opened, done;
	// A producer opened by uid 2001 / gid 2002, then kept open.
	Child prod = Child::spawn([&] {
		if (setgroups(0, nullptr) || setresgid(2002, 2002, 2002) ||
		    setresuid(2001, 2001, 2001))
			return 2;
		int fd = open_queue(q.name(), O_WRONLY);
		if (fd < 0)
			return 3;
		opened.send();
		done.recv(30000);
		return 0;
	});
	ASSERT_TRUE(opened.recv(10000) >= 0) << "the uid 2001 producer could not open (mode of the node?)";
	LaneEnd mine;
	ASSERT_NO_FATAL_FAILURE(mine.open(q.name(), O_WRONLY)); // root, lane 1

	shmq_lane_info info;
	ASSERT_EQ(0, lane_info(c.fd(), 0, &info));
	EXPECT_EQ(uint32_t(SHMQ_LANE_ATTACHED), info.state);
	EXPECT_EQ(2001u, info.uid);
	EXPECT_EQ(2002u, info.gid);
	EXPECT_EQ(prod.pid(), info.pid);
	EXPECT_EQ(c.dir(0).generation, info.generation);
	ASSERT_EQ(0, lane_info(c.fd(), 1, &info));
	EXPECT_EQ(0u, info.uid);
	EXPECT_EQ(getpid(), info.pid);
	EXPECT_EQ(ENOENT, lane_info(c.fd(), 2, &info)) << "a free lane";
	EXPECT_EQ(EINVAL, lane_info(c.fd(), 4, &info)) << "beyond max_producers";
	EXPECT_EQ(EACCES, lane_info(mine.fd(), 0, &info)) << "a producer asks";
	memset(&info, 0, sizeof info);
	info.reserved[2] = 1;
	EXPECT_EQ(EINVAL, xioctl(c.fd(), SHMQ_IOC_LANE_INFO, &info));

	// The same consumer fd asked from a user namespace where root is 100
	// and uid 2001 is not mapped, and from a child pid namespace.
	Shared<shmq_lane_info> seen[2];
	// Kernels without CONFIG_USER_NS (the debug kernel) check the pid
	// namespace alone: the child then exits with 20.
	Child ns = Child::spawn([&] {
		bool userns = true;
		if (unshare(CLONE_NEWUSER | CLONE_NEWPID)) {
			if (errno != EINVAL || unshare(CLONE_NEWPID))
				return 2;
			userns = false;
		}
		if (userns && (write_file("/proc/self/setgroups", "deny") ||
			       write_file("/proc/self/uid_map", "100 0 1") ||
			       write_file("/proc/self/gid_map", "100 0 1")))
			return 3;
		// The pid namespace applies to children.
		pid_t k = fork();
		if (k == 0) {
			if (lane_info(c.fd(), 0, &*seen[0]) || lane_info(c.fd(), 1, &*seen[1]))
				_exit(4);
			_exit(0);
		}
		int st = 0;
		waitpid(k, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			return WIFEXITED(st) ? WEXITSTATUS(st) : 5;
		return userns ? 0 : 20;
	});
	ASSERT_TRUE(ns.wait_exit(10000));
	ASSERT_TRUE(ns.exited_with(0) || ns.exited_with(20)) << ns.describe();
	EXPECT_EQ(0, seen[0]->pid) << "the producer is not in that pid namespace";
	EXPECT_EQ(0, seen[1]->pid);
	if (ns.exited_with(20)) {
		printf("note: no user namespaces in this kernel (CONFIG_USER_NS); pid namespace checked alone\n");
		EXPECT_EQ(2001u, seen[0]->uid);
	} else {
		EXPECT_EQ(uint32_t(-1), seen[0]->uid) << "uid 2001 is not mapped there";
		EXPECT_EQ(uint32_t(-1), seen[0]->gid);
		EXPECT_EQ(100u, seen[1]->uid) << "root is 100 there";
		EXPECT_EQ(100u, seen[1]->gid);
	}
	done.send();
	ASSERT_TRUE(prod.wait_exit(10000));
}

TEST(Lanes, AGoneProducersMessagesAreDeliveredThenItsLaneIsFreed)
{
	SHMQT_REQUIRE_ROOT();
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 2));
	LaneEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	{
		LaneEnd p;
		ASSERT_NO_FATAL_FAILURE(p.open(q.name(), O_WRONLY));
		uint64_t t = 0, h = 0;
		for (uint32_t i = 0; i < 5; i++)
			ASSERT_EQ(0, lane_send(p.ring(0), p.fd(), t, h, &i, sizeof i));
	}
	EXPECT_EQ(uint32_t(SHMQ_LANE_DRAINING), c.dir(0).state);
	EXPECT_NE(std::string::npos, sysfs_attr(q.name(), "lanes").find("0 draining"));
	EXPECT_EQ(5 * record_bytes(4), std::stoull(sysfs_attr(q.name(), "bytes_used")));
	shmq_lane_info info;
	ASSERT_EQ(0, lane_info(c.fd(), 0, &info));
	EXPECT_EQ(uint32_t(SHMQ_LANE_DRAINING), info.state);
	EXPECT_EQ(5 * record_bytes(4), info.bytes_queued);
	// Both lanes can still be taken meanwhile: the draining one is not free.
	LaneEnd p2;
	ASSERT_NO_FATAL_FAILURE(p2.open(q.name(), O_WRONLY));
	EXPECT_EQ(1u, p2.lane());
	EXPECT_EQ(-EBUSY, open_queue(q.name(), O_WRONLY)) << "lane 0 drains, lane 1 is taken";

	ScanState st;
	std::vector<uint8_t> buf;
	size_t len;
	for (uint32_t i = 0; i < 5; i++) {
		ASSERT_EQ(0, lane_take(c, st, buf, &len));
		uint32_t v;
		memcpy(&v, buf.data(), 4);
		EXPECT_EQ(i, v);
	}
	// The consumer's next system call notices the drained lane: the
	// directory changes under its wait, which returns at once.
	const uint32_t gen = c.dir_gen();
	EXPECT_EQ(0, lane_wait(c, gen, 5000));
	EXPECT_NE(gen, c.dir_gen());
	EXPECT_EQ(uint32_t(SHMQ_LANE_FREE), c.dir(0).state);
	EXPECT_EQ(ENOENT, lane_info(c.fd(), 0, &info));
	EXPECT_EQ(1u, sysfs_lane_lines(q.name()));
	// The lane is free again, and it continues where the consumer's head is.
	LaneEnd p3;
	ASSERT_NO_FATAL_FAILURE(p3.open(q.name(), O_WRONLY));
	EXPECT_EQ(0u, p3.lane());
	EXPECT_EQ(load_acquire<uint64_t>(c.cons.bytes(), c.L.head_off),
		  load_acquire<uint64_t>(p3.lane_base(0), p3.L.tail_off));
	uint64_t t = load_acquire<uint64_t>(p3.lane_base(0), p3.L.tail_off), h = t;
	const uint32_t v = 42;
	ASSERT_EQ(0, lane_send(p3.ring(0), p3.fd(), t, h, &v, sizeof v));
	int lane = -1;
	ASSERT_TRUE(eventually(5000, [&] { return (lane = lane_take(c, st, buf, &len)) >= 0; }));
	EXPECT_EQ(0, lane) << "the consumer's old mapping shows the new lane's pages";
	uint32_t got;
	memcpy(&got, buf.data(), 4);
	EXPECT_EQ(42u, got);
}

TEST(Lanes, AConsumerDropsACorruptLaneAndTheOthersFlow)
{
	SHMQT_REQUIRE_ROOT();
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 4));
	LaneEnd c, bad, good;
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	ASSERT_NO_FATAL_FAILURE(bad.open(q.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(good.open(q.name(), O_WRONLY));
	// Garbage header, published.
	memset(bad.lane_base(0) + bad.L.data_off, 0xee, 64);
	store_release<uint64_t>(bad.lane_base(0), bad.L.tail_off, 64);
	uint64_t t = 0, h = 0;
	const uint32_t v = 9;
	ASSERT_EQ(0, lane_send(good.ring(0), good.fd(), t, h, &v, sizeof v));

	ScanState st;
	std::vector<uint8_t> buf;
	size_t len;
	int r = lane_take(c, st, buf, &len);
	const bool good_first = r == 1;
	if (good_first)
		r = lane_take(c, st, buf, &len);
	EXPECT_EQ(-1000, r) << "lane 0 reported corrupt";
	const uint32_t gen = c.dir(0).generation;
	EXPECT_EQ(ESTALE, lane_drop(c.fd(), 0, gen + 1));
	EXPECT_EQ(EACCES, lane_drop(bad.fd(), 0, gen)) << "a producer cannot drop";
	EXPECT_EQ(EINVAL, lane_drop(c.fd(), 4, gen));
	EXPECT_EQ(ENOENT, lane_drop(c.fd(), 3, 0)) << "a free lane";
	ASSERT_EQ(0, lane_drop(c.fd(), 0, gen));
	EXPECT_EQ(uint32_t(SHMQ_LANE_FREE), c.dir(0).state) << "gone from the directory";
	EXPECT_EQ(ENOENT, lane_drop(c.fd(), 0, gen)) << "already dropped";
	// The producer learns it at its next system call; its memory stays.
	EXPECT_EQ(ECONNRESET, xioctl_val(bad.fd(), SHMQ_IOC_WAKE, 0));
	EXPECT_EQ(ECONNRESET, raw_wait(bad.fd(), SHMQ_WAIT_WRITABLE, 8, deadline_in_ms(1000)));
	EXPECT_EQ(POLLERR | POLLHUP, poll_one(bad.fd(), POLLOUT, 0) & (POLLERR | POLLHUP));
	EXPECT_EQ(64u, load_acquire<uint64_t>(bad.lane_base(0), bad.L.tail_off));
	EXPECT_EQ(0xee, bad.lane_base(0)[bad.L.data_off]);
	// The consumer's mapping of it reads zeros now.
	EXPECT_EQ(0u, load_acquire<uint64_t>(c.lane_base(0), c.L.tail_off));
	// The other lane keeps flowing.
	if (!good_first) {
		ASSERT_EQ(1, lane_take(c, st, buf, &len));
	}
	ASSERT_EQ(0, lane_send(good.ring(0), good.fd(), t, h, &v, sizeof v));
	EXPECT_EQ(1, lane_take(c, st, buf, &len));
	// The dropped lane is freed when its producer goes, and taken again.
	bad.qfd.reset();
	bad.rfd.reset();
	bad.lanes.reset();
	bad.cons.reset();
	bad.status.reset();
	LaneEnd again1, again2;
	ASSERT_NO_FATAL_FAILURE(again1.open(q.name(), O_WRONLY));
	ASSERT_NO_FATAL_FAILURE(again2.open(q.name(), O_WRONLY));
	std::vector<uint32_t> lanes = {again1.lane(), again2.lane()};
	std::sort(lanes.begin(), lanes.end());
	EXPECT_EQ(0u, lanes[0]) << "the dropped lane was freed when its producer closed";
}

// Mounts cgroup v2 (once) and makes a child group with memory.max @max;
// returns its path, or "" with @why set.
std::string make_memcg(const char *name, uint64_t max, std::string *why)
{
	const std::string root = "/sys/fs/cgroup";
	std::string s;
	if (!read_file(root + "/cgroup.controllers", &s)) {
		::mkdir(root.c_str(), 0755);
		if (::mount("none", root.c_str(), "cgroup2", 0, nullptr) != 0) {
			*why = "mount cgroup2: " + errname(errno);
			return "";
		}
		read_file(root + "/cgroup.controllers", &s);
	}
	if (s.find("memory") == std::string::npos) {
		*why = "no memory controller: " + s;
		return "";
	}
	int e = write_file(root + "/cgroup.subtree_control", "+memory");
	if (e) {
		*why = "enable +memory: " + errname(e);
		return "";
	}
	const std::string g = root + "/" + name;
	::mkdir(g.c_str(), 0755);
	e = write_file(g + "/memory.max", std::to_string(max));
	if (e) {
		*why = "memory.max: " + errname(e);
		return "";
	}
	return g;
}

TEST(Lanes, ALanesPagesAreChargedToItsProducersMemoryCgroup)
{
	SHMQT_REQUIRE_ROOT();
	std::string why;
	const std::string g = make_memcg("shmq-lanes", 2u << 20, &why);
	if (g.empty() && getenv("SHMQ_DEBUG_KERNEL"))
		GTEST_SKIP() << "the debug kernel has no memory cgroups (CONFIG_MEMCG): " << why;
	ASSERT_NE("", g) << why;
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(8u << 20, 2)); // lanes of 8 MiB
	// A producer in a 2 MiB cgroup cannot get an 8 MiB lane: ENOMEM for
	// it, nobody else is killed, the lane stays free.
	Child small = Child::spawn([&] {
		if (write_file(g + "/cgroup.procs", std::to_string(getpid())))
			return 2;
		int fd = open_queue(q.name(), O_WRONLY);
		return fd == -ENOMEM ? 0 : (fd < 0 ? 10 + -fd % 100 : 3);
	});
	ASSERT_TRUE(small.wait_exit(60000));
	EXPECT_TRUE(small.exited_with(0)) << small.describe()
					  << " (0: ENOMEM, 3: the open succeeded, 1x: other errno)";
	EXPECT_EQ(0u, sysfs_lane_lines(q.name())) << "the failed open left a lane behind";
	// Outside that cgroup the same open works, and what it charged is the
	// opener's: the group's usage did not move.
	std::string before;
	read_file(g + "/memory.current", &before);
	LaneEnd p;
	ASSERT_NO_FATAL_FAILURE(p.open(q.name(), O_WRONLY));
	std::string after;
	read_file(g + "/memory.current", &after);
	EXPECT_EQ(trim(before), trim(after));
	// A producer in a group big enough: its lane is charged there.
	ASSERT_EQ(0, write_file(g + "/memory.max", std::to_string(64u << 20)));
	Shared<uint64_t> charged;
	Child big = Child::spawn([&] {
		if (write_file(g + "/cgroup.procs", std::to_string(getpid())))
			return 2;
		std::string a, b;
		read_file(g + "/memory.current", &a);
		int fd = open_queue(q.name(), O_WRONLY);
		if (fd < 0)
			return 3;
		read_file(g + "/memory.current", &b);
		*charged = std::stoull(trim(b)) - std::stoull(trim(a));
		return 0;
	});
	ASSERT_TRUE(big.wait_exit(60000));
	EXPECT_TRUE(big.exited_with(0)) << big.describe();
	EXPECT_GE(*charged, uint64_t(8u << 20)) << "the 8 MiB lane was charged to the producer's group";
}

TEST(Lanes, AQueueOfCreateStaysOneLaneThatEveryProducerTakesOver)
{
	SHMQT_REQUIRE_ROOT();
	TestQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane));
	Fd p(open_queue(q.name(), O_WRONLY));
	ASSERT_TRUE(p.ok());
	shmq_layout2 l;
	std::vector<shmq_region2> regions;
	ASSERT_EQ(0, get_layout2(p.get(), &l, &regions));
	EXPECT_EQ(SHMQ_QUEUE_SPSC, l.queue_features);
	EXPECT_EQ(1u, l.max_producers);
	EXPECT_EQ(-EBUSY, open_queue(q.name(), O_WRONLY));
	Fd c(open_queue(q.name(), O_RDONLY));
	ASSERT_TRUE(c.ok());
	shmq_lane_info info;
	ASSERT_EQ(0, lane_info(c.get(), 0, &info));
	EXPECT_EQ(getpid(), info.pid);
	EXPECT_EQ(EINVAL, xioctl_val(c.get(), SHMQ_IOC_WAKE, 1)) << "no lane argument on SPSC";
	// The layout of SHMQ_IOC_LAYOUT and of LAYOUT2 agree.
	shmq_layout old;
	ASSERT_EQ(0, get_layout(p.get(), &old));
	EXPECT_EQ(regions[2].offset, old.producer.offset);
	EXPECT_EQ(regions[2].offset + l.data_off, old.data.offset);
	EXPECT_EQ(l.lane_size, old.capacity);
}

// ---------------------------------------------------------------------------
// Many producers at once (also run with 2 vCPUs).

namespace {

struct StreamBoard {
	std::atomic<uint64_t> committed[16]; // per producer index: messages published
	std::atomic<uint32_t> failures;
	std::atomic<bool> stop; // producers end after their current message
	char why[256];
};

// A producer child: opens, optionally as @uid, sends @count messages of
// random sizes stamped (seq, stream = index) into its lane.
int stream_producer(const std::string &name, int index, uid_t uid, uint64_t count, uint64_t seed,
		    StreamBoard *board)
{
	if (uid && (setgroups(0, nullptr) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)))
		return 2;
	int fd = open_queue(name, O_WRONLY);
	if (fd < 0)
		return 3;
	shmq_layout2 l;
	std::vector<shmq_region2> regions;
	if (get_layout2(fd, &l, &regions))
		return 4;
	int rfd = ring_fd(fd);
	void *st = ::mmap(nullptr, regions[0].size, PROT_READ, MAP_SHARED, rfd, 0);
	void *cons = ::mmap(nullptr, regions[1].size, PROT_READ, MAP_SHARED, rfd,
			    off_t(regions[1].offset));
	void *lane = ::mmap(nullptr, l.lane_stride, PROT_READ | PROT_WRITE, MAP_SHARED, rfd,
			    off_t(regions[2].offset));
	if (st == MAP_FAILED || cons == MAP_FAILED || lane == MAP_FAILED)
		return 5;
	d::Ring r;
	auto *sb = static_cast<uint8_t *>(st), *lb = static_cast<uint8_t *>(lane);
	uint8_t *de = sb + l.dir_off + size_t(l.slot) * l.dir_stride;
	r.tail = reinterpret_cast<uint64_t *>(lb + l.tail_off);
	r.write_armed = reinterpret_cast<uint32_t *>(lb + l.write_armed_off);
	r.head = reinterpret_cast<uint64_t *>(static_cast<uint8_t *>(cons) + l.head_off +
					      size_t(l.slot) * l.head_stride);
	r.read_armed = reinterpret_cast<uint32_t *>(static_cast<uint8_t *>(cons) + l.read_armed_off);
	r.read_wake = reinterpret_cast<uint32_t *>(sb + l.read_wake_off);
	r.write_wake = reinterpret_cast<uint32_t *>(de + offsetof(shmq_lane_dir, write_wake));
	r.write_need = reinterpret_cast<uint64_t *>(de + offsetof(shmq_lane_dir, write_need));
	r.state = reinterpret_cast<uint32_t *>(sb + l.state_off);
	r.data = reinterpret_cast<std::byte *>(lb + l.data_off);
	r.capacity = l.lane_size;
	r.max_message = l.max_message;
	uint64_t tail = d::load_relaxed(r.tail), ch = tail;
	Rng rng(seed);
	std::vector<uint8_t> msg(512);
	for (uint64_t s = 0; s < count && !board->stop.load(); s++) {
		const size_t n = kMinMsg + random_size(rng, 200);
		make_msg(msg.data(), n, s, uint64_t(index));
		if (lane_send(r, fd, tail, ch, msg.data(), uint32_t(n), 60000))
			return 6;
		board->committed[index].store(s + 1, std::memory_order_release);
	}
	return 0;
}

// The consumer: takes from every lane until @total messages arrived (or
// @stop says every producer is done and all lanes are empty), checking
// per-producer order and checksums, and each lane's sender against
// @expect_uid (by producer index). Returns messages received per index.
std::vector<uint64_t> stream_consume(const LaneEnd &c, size_t producers, uint64_t total,
				     const std::vector<uid_t> &expect_uid, std::string *err,
				     const std::function<bool()> &all_done)
{
	std::vector<uint64_t> next(producers, 0);
	std::vector<uint32_t> lane_gen(c.L.max_producers, 0);
	ScanState st;
	std::vector<uint8_t> buf;
	size_t len = 0;
	uint64_t got = 0;
	const uint64_t end = deadline_in_ms(240000);
	while (got < total && err->empty()) {
		const uint32_t gen = c.dir_gen();
		int lane = lane_take(c, st, buf, &len);
		bool done = false;
		if (lane == -EAGAIN) {
			// Every producer done? Then one more look takes what they
			// published before saying so; a message it finds is
			// checked below like any other (it once was dropped here).
			done = all_done();
			lane = lane_take(c, st, buf, &len);
		}
		if (lane == -EAGAIN) {
			if (done)
				break;
			if (now_ns() > end) {
				*err = "consumer timed out";
				break;
			}
			int e = lane_wait(c, gen, 200);
			if (e && e != ETIMEDOUT)
				*err = "wait: " + errname(e);
			continue;
		}
		if (lane < 0) {
			*err = strprintf("lane %d corrupt", -lane - 1000);
			break;
		}
		MsgHdr h;
		std::string why;
		if (!check_msg(buf.data(), len, &h, &why)) {
			*err = why;
			break;
		}
		if (h.stream >= producers || h.seq != next[h.stream]) {
			*err = strprintf("producer %llu: seq %llu, expected %llu (lane %d)",
					 (unsigned long long)h.stream, (unsigned long long)h.seq,
					 (unsigned long long)next[h.stream % producers], lane);
			break;
		}
		// The sender, once per lane generation.
		const uint32_t g = c.dir(uint32_t(lane)).generation;
		if (lane_gen[lane] != g && !expect_uid.empty()) {
			shmq_lane_info info;
			if (lane_info(c.fd(), uint32_t(lane), &info) == 0 &&
			    info.uid != expect_uid[h.stream]) {
				*err = strprintf("lane %d: sender uid %u, producer %llu is uid %u",
						 lane, info.uid, (unsigned long long)h.stream,
						 expect_uid[h.stream]);
				break;
			}
			lane_gen[lane] = g;
		}
		next[h.stream]++;
		got++;
	}
	return next;
}

} // namespace

// Lanes come and go between the page-sized reads kernfs splits a read of
// the lanes file into; before every lane had its fixed line, lines moved
// between the reads and came out torn or twice.
TEST(LanesRace, TheLanesFileIsNeverTornWhileProducersComeAndGo)
{
	SHMQT_REQUIRE_ROOT();
	const uint32_t kLanes = 256; // 8 pages of lines
	const unsigned rounds = scaled(400u, 60u);
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, kLanes));
	std::vector<Fd> p;
	for (uint32_t i = 0; i < kLanes - 16; i++) {
		p.emplace_back(open_queue(q.name(), O_WRONLY));
		ASSERT_TRUE(p.back().ok()) << "producer " << i << ": " << errname(-p.back().get());
	}
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> churned{0};
	std::thread churn([&] {
		uint32_t x = 12345;
		while (!stop.load(std::memory_order_relaxed)) {
			x = x * 1103515245u + 12345u;
			Fd &f = p[(x >> 8) % p.size()];
			f.reset();
			f = Fd(open_queue(q.name(), O_WRONLY)); // another free lane, maybe
			churned.fetch_add(1, std::memory_order_relaxed);
		}
	});
	const std::string path = sysfs_dir(q.name()) + "/lanes";
	std::vector<char> buf(page_size());
	std::string first_fault;
	uint64_t faults = 0, lines = 0;
	for (unsigned r = 0; r < rounds; r++) {
		Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
		ASSERT_TRUE(f.ok()) << strerror(errno);
		std::string text;
		ssize_t n;
		while ((n = ::read(f.get(), buf.data(), buf.size())) > 0)
			text.append(buf.data(), size_t(n));
		ASSERT_EQ(0, n) << strerror(errno);
		ASSERT_EQ(size_t(kLanes) * kSysfsLaneLine, text.size()) << "round " << r;
		for (uint32_t j = 0; j < kLanes; j++, lines++) {
			const std::string why =
				lane_line_fault(text.data() + size_t(j) * kSysfsLaneLine, j, getpid());
			if (!why.empty() && faults++ == 0)
				first_fault = "round " + std::to_string(r) + ", line " + std::to_string(j) +
					      ": " + why + ": " + text.substr(size_t(j) * kSysfsLaneLine,
									  kSysfsLaneLine);
		}
	}
	stop = true;
	churn.join();
	EXPECT_EQ(0u, faults) << first_fault;
	EXPECT_LT(uint64_t(rounds), churned.load()) << "the producers hardly changed: the test proves little";
	p.clear();
	EXPECT_EQ(0u, sysfs_lane_lines(q.name()));
	report_figure("lanes_file_lines_checked", lines, "lines of the lanes file checked while producers churned");
}

TEST(LanesRace, EightProducersAsFourUsersStreamEveryMessageOnceInOrder)
{
	SHMQT_REQUIRE_ROOT();
	const size_t kProducers = 8;
	const uint64_t per = scaled<uint64_t>(100000, 5000);
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 8));
	ASSERT_NO_FATAL_FAILURE(open_to_all(q.name()));
	LaneEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	Shared<StreamBoard> board;
	std::vector<uid_t> uids;
	std::vector<Child> kids;
	for (size_t i = 0; i < kProducers; i++) {
		const uid_t uid = 3001 + uid_t(i % 4);
		uids.push_back(uid);
		kids.push_back(Child::spawn([&, i, uid] {
			return stream_producer(q.name(), int(i), uid, per, test_seed() + i, &*board);
		}));
	}
	std::string err;
	auto done = [&] {
		for (size_t i = 0; i < kProducers; i++)
			if (board->committed[i].load() < per)
				return false;
		return true;
	};
	std::vector<uint64_t> got = stream_consume(c, kProducers, kProducers * per, uids, &err, done);
	EXPECT_EQ("", err);
	for (size_t i = 0; i < kProducers; i++) {
		ASSERT_TRUE(kids[i].wait_exit(60000));
		EXPECT_TRUE(kids[i].exited_with(0)) << "producer " << i << ": " << kids[i].describe();
		EXPECT_EQ(per, got[i]) << "producer " << i;
	}
	// Every lane drained and freed once the consumer looks again.
	lane_wait(c, c.dir_gen(), 10);
	EXPECT_EQ(0u, sysfs_lane_lines(q.name()));
	report_figure("lane_messages_checked", kProducers * per,
		      "messages from 8 producers (4 users) checked by sequence, checksum and sender");
}

TEST(LanesRace, ProducersKilledAtRandomLoseNothingCommittedAndLeakNoLane)
{
	SHMQT_REQUIRE_ROOT();
	const int kRounds = scaled(60, 12);
	const size_t kProducers = 4;
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 8));
	LaneEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	Rng rng(test_seed());
	unsigned kills = 0;
	uint64_t checked = 0;
	for (int round = 0; round < kRounds; round++) {
		Shared<StreamBoard> board;
		std::vector<Child> kids;
		for (size_t i = 0; i < kProducers; i++)
			kids.push_back(Child::spawn([&, i] {
				return stream_producer(q.name(), int(i), 0, 1u << 30,
						       test_seed() + round * 16 + i, &*board);
			}));
		// Consume while they stream; kill each at a random point.
		std::vector<uint64_t> next(kProducers, 0);
		std::string err;
		ScanState st;
		std::vector<uint8_t> buf;
		size_t len;
		std::vector<uint64_t> kill_at(kProducers);
		for (auto &k : kill_at)
			k = 20 + rng.next() % 400;
		size_t alive = kProducers;
		const uint64_t end = deadline_in_ms(120000);
		while (err.empty() && now_ns() < end) {
			for (size_t i = 0; i < kProducers; i++) {
				if (kids[i].running() && next[i] >= kill_at[i]) {
					kids[i].kill_and_reap();
					kills++;
					alive--;
				}
			}
			const uint32_t gen = c.dir_gen();
			int lane = lane_take(c, st, buf, &len);
			if (lane == -EAGAIN) {
				if (!alive)
					break;
				lane_wait(c, gen, 100);
				continue;
			}
			MsgHdr h;
			if (lane < 0 || !check_msg(buf.data(), len, &h, &err) || h.stream >= kProducers ||
			    h.seq != next[h.stream]) {
				if (err.empty())
					err = strprintf("round %d: lane %d out of order or corrupt", round,
							lane);
				break;
			}
			next[h.stream]++;
			checked++;
		}
		ASSERT_EQ("", err);
		for (size_t i = 0; i < kProducers; i++)
			EXPECT_GE(next[i], board->committed[i].load())
				<< "round " << round << " producer " << i << ": committed messages lost";
	}
	// Every lane drained: freed at the consumer's next look.
	lane_wait(c, c.dir_gen(), 10);
	EXPECT_EQ(0u, sysfs_lane_lines(q.name())) << sysfs_attr(q.name(), "lanes");
	EXPECT_EQ("0", trim(sysfs_attr(q.name(), "producers")));
	report_figure("lane_producers_killed", kills, "producers SIGKILLed at random points while streaming");
	report_figure("lane_kill_messages_checked", checked, "messages checked across producer kills");
}

TEST(LanesRace, AHostileProducerScribblingItsLaneDisturbsNobodyElse)
{
	SHMQT_REQUIRE_ROOT();
	const size_t kGood = 7;
	const uint64_t per = scaled<uint64_t>(20000, 1500);
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 8));
	LaneEnd c;
	ASSERT_NO_FATAL_FAILURE(c.open(q.name(), O_RDONLY));
	Shared<StreamBoard> board;
	Pipe stop;
	// The hostile one: lane 0, random tails and garbage records, wakes.
	LaneEnd bad;
	ASSERT_NO_FATAL_FAILURE(bad.open(q.name(), O_WRONLY));
	ASSERT_EQ(0u, bad.lane());
	Child hostile = Child::spawn([&] {
		Rng r(test_seed() ^ 0xbad);
		uint8_t *lb = bad.lane_base(0);
		while (!stop.readable(0)) {
			for (int i = 0; i < 64; i++)
				lb[bad.L.data_off + r.next() % bad.L.lane_size] = uint8_t(r.next());
			store_release<uint64_t>(lb, bad.L.tail_off, r.next());
			store_release<uint32_t>(lb, bad.L.write_armed_off, uint32_t(r.next()));
			::ioctl(bad.fd(), SHMQ_IOC_WAKE, 0);
			raw_wait(bad.fd(), SHMQ_WAIT_WRITABLE, 1 + r.next() % kLane, deadline_in_ms(1));
		}
		return 0;
	});
	std::vector<Child> kids;
	for (size_t i = 0; i < kGood; i++)
		kids.push_back(Child::spawn([&, i] {
			return stream_producer(q.name(), int(i), 0, per, test_seed() + i, &*board);
		}));
	// The consumer skips lane 0 (it would drop it; here it just never
	// reads it) and must get every good message.
	std::vector<uint64_t> next(kGood, 0);
	std::string err;
	std::vector<uint8_t> buf;
	uint64_t got = 0;
	const uint64_t end = deadline_in_ms(240000);
	std::vector<uint64_t> ct(8, 0);
	while (got < kGood * per && err.empty() && now_ns() < end) {
		bool any = false;
		for (uint32_t j = 1; j < 8; j++) {
			if (c.dir(j).state == SHMQ_LANE_FREE)
				continue;
			const d::Ring r = c.ring(j);
			uint64_t head = d::load_relaxed(r.head);
			d::Peeked p;
			int e = d::try_peek(r, head, ct[j], p);
			if (e == EAGAIN && p.end != head) {
				(void)d::release(r, head, p.end);
				any = true;
				continue;
			}
			if (e == EAGAIN)
				continue;
			MsgHdr h;
			if (e || !check_msg(reinterpret_cast<const uint8_t *>(r.data + p.payload), p.len,
					    &h, &err) ||
			    h.stream >= kGood || h.seq != next[h.stream]) {
				if (err.empty())
					err = strprintf("lane %u: corrupt or out of order (e=%d)", j, e);
				break;
			}
			next[h.stream]++;
			got++;
			any = true;
			if (d::release(r, head, p.end))
				::ioctl(c.fd(), SHMQ_IOC_WAKE, j + 1);
		}
		if (!any)
			lane_wait(c, c.dir_gen(), 50);
	}
	stop.send();
	EXPECT_EQ("", err);
	EXPECT_EQ(kGood * per, got);
	for (auto &k : kids) {
		ASSERT_TRUE(k.wait_exit(60000));
		EXPECT_TRUE(k.exited_with(0)) << k.describe();
	}
	ASSERT_TRUE(hostile.wait_exit(10000));
	report_figure("lane_hostile_messages_checked", got,
		      "good producers' messages intact beside a producer scribbling its lane");
}

TEST(LanesRace, ConsumersKilledAtRandomLoseNothingCommittedWhileFourProducersStream)
{
	SHMQT_REQUIRE_ROOT();
	const size_t kProducers = 4;
	const int kKills = scaled(100, 25);
	const uint64_t per = uint64_t(1) << 40; // until told to stop
	LaneQueue q;
	ASSERT_NO_FATAL_FAILURE(q.create(kLane, 8));
	Shared<StreamBoard> board;
	// next[i]: the sequence the consumers expect next from producer i,
	// advanced before the release (at-least-once: a consumer killed in
	// between leaves the message to its successor, which sees it again).
	struct Progress {
		std::atomic<uint64_t> next[4];
		std::atomic<uint64_t> redelivered;
		std::atomic<uint32_t> bad;
		char why[200];
	};
	Shared<Progress> prog;
	std::vector<Child> kids;
	for (size_t i = 0; i < kProducers; i++)
		kids.push_back(Child::spawn([&, i] {
			return stream_producer(q.name(), int(i), 0, per, test_seed() + 77 + i, &*board);
		}));
	auto consumer = [&] {
		LaneEnd c;
		c.open(q.name(), O_RDONLY);
		if (!c.qfd.ok() || !c.lanes.ok())
			return 2;
		std::vector<uint64_t> ct(c.L.max_producers, 0);
		for (;;) {
			bool any = false;
			for (uint32_t j = 0; j < c.L.max_producers; j++) {
				if (c.dir(j).state == SHMQ_LANE_FREE)
					continue;
				const d::Ring r = c.ring(j);
				const uint64_t head = d::load_relaxed(r.head);
				if (ct[j] - head > r.capacity)
					ct[j] = head;
				d::Peeked p;
				int e = d::try_peek(r, head, ct[j], p);
				if (e == EAGAIN && p.end != head) {
					(void)d::release(r, head, p.end);
					any = true;
					continue;
				}
				if (e == EAGAIN)
					continue;
				MsgHdr h;
				std::string why;
				if (e || !check_msg(reinterpret_cast<const uint8_t *>(r.data + p.payload),
						    p.len, &h, &why) || h.stream >= kProducers) {
					snprintf(prog->why, sizeof prog->why, "lane %u: %s", j, why.c_str());
					prog->bad = 1;
					return 3;
				}
				const uint64_t want = prog->next[h.stream].load();
				if (h.seq + 1 == want) {
					prog->redelivered++;
				} else if (h.seq != want) {
					snprintf(prog->why, sizeof prog->why,
						 "producer %llu: seq %llu, expected %llu",
						 (unsigned long long)h.stream, (unsigned long long)h.seq,
						 (unsigned long long)want);
					prog->bad = 1;
					return 4;
				} else {
					prog->next[h.stream] = want + 1;
				}
				if (d::release(r, head, p.end))
					::ioctl(c.fd(), SHMQ_IOC_WAKE, j + 1);
				any = true;
			}
			if (!any)
				lane_wait(c, c.dir_gen(), 100);
		}
	};
	Rng rng(test_seed() ^ 0xc0);
	int kills = 0;
	// Kill consumers at random points while the producers stream, then
	// stop the producers and let one consumer take the rest.
	const uint64_t end = deadline_in_ms(240000);
	while (kills < kKills && !prog->bad && now_ns() < end) {
		Child c = Child::spawn(consumer);
		sleep_ms(unsigned(rng.next() % 20));
		c.kill_and_reap();
		kills++;
	}
	board->stop = true;
	auto all_in = [&] {
		for (size_t i = 0; i < kProducers; i++)
			if (prog->next[i].load() < board->committed[i].load())
				return false;
		return true;
	};
	{
		// The last consumer: the producers finish their current send,
		// then it takes everything they committed.
		Child last = Child::spawn(consumer);
		for (size_t i = 0; i < kProducers; i++)
			ASSERT_TRUE(kids[i].wait_exit(120000)) << "producer " << i << " did not finish";
		EXPECT_TRUE(eventually(120000, [&] { return all_in() || prog->bad.load() != 0; }));
	}
	EXPECT_EQ(0u, prog->bad.load()) << prog->why;
	uint64_t total = 0;
	for (size_t i = 0; i < kProducers; i++) {
		EXPECT_EQ(board->committed[i].load(), prog->next[i].load())
			<< "producer " << i << ": every committed message, in order";
		EXPECT_TRUE(kids[i].exited_with(0)) << "producer " << i << ": " << kids[i].describe();
		total += prog->next[i].load();
	}
	EXPECT_EQ(kKills, kills);
	report_figure("lane_consumers_killed", unsigned(kills),
		      "consumers SIGKILLed at random points while 4 producers streamed");
	report_figure("lane_consumer_kill_messages", total,
		      strprintf("messages delivered at least once across consumer kills (%llu seen twice)",
				(unsigned long long)prog->redelivered.load()));
}
