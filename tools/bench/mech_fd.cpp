// SPDX-License-Identifier: MIT
// Kernel-copy mechanisms on file descriptors: pipe, Unix domain sockets
// (SOCK_STREAM and SOCK_SEQPACKET).
//
// Byte streams (pipe, SOCK_STREAM) need framing: the receiver reads the
// message header for the length, as any real protocol on a byte stream would,
// through a buffered reader (one read() can bring in many messages, like the
// shared-memory consumers that see many messages per look at the tail;
// messages of 16 KiB or more are read exactly, header then body). The
// sender writes each message with one write(); in the batch workload it
// writes the whole batch with one write(). SOCK_SEQPACKET keeps boundaries:
// one send()/recv() per message, sendmmsg() for a batch.
//
// Fan-in (unix-seqpacket only): a server with a client per producer. The
// parent binds and listens on an abstract AF_UNIX address; each producer
// connects (its own connection and socket buffers, as a lane has its own
// ring); the receiver accepts them all and serves them round robin, one
// message from the next connection that has one (poll() when none has),
// as a server loop would. A client that has sent its last message and
// closed is dropped from the set.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench.hpp"

namespace shmq_bench {

namespace {

void write_all(int fd, const std::byte *p, size_t n)
{
	while (n) {
		const ssize_t r = ::write(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail_errno("write");
		}
		p += r;
		n -= static_cast<size_t>(r);
	}
}

void close_fd(int &fd)
{
	if (fd >= 0)
		::close(fd);
	fd = -1;
}

// Sender on a byte stream: one write() per message, or per batch.
class StreamTx final : public Tx {
public:
	StreamTx(int fd, const ChannelConfig &cfg) : fd_(fd), buf_(cfg.msg_size * cfg.batch) {}
	~StreamTx() override { ::close(fd_); }
	std::byte *begin(size_t n) override
	{
		if (used_ + n > buf_.size())
			flush();
		return buf_.data() + used_;
	}
	void commit(size_t n, bool more) override
	{
		used_ += n;
		if (!more)
			flush();
	}

private:
	void flush()
	{
		write_all(fd_, buf_.data(), used_);
		used_ = 0;
	}
	int fd_;
	Buffer buf_;
	size_t used_ = 0;
};

// Receiver on a byte stream: buffered reads, messages framed by their header.
class StreamRx final : public Rx {
public:
	StreamRx(int fd, const ChannelConfig &cfg)
		: fd_(fd), max_(cfg.msg_size), exact_(cfg.msg_size >= (16 << 10)),
		  buf_(std::max<size_t>(2 * cfg.msg_size, 64 << 10))
	{
	}
	~StreamRx() override { ::close(fd_); }
	std::span<const std::byte> receive() override
	{
		ensure(sizeof(MsgHeader));
		const size_t len = header_len(buf_.data() + beg_);
		if (len < sizeof(MsgHeader) || len > max_)
			throw Failure("byte stream: bad length " + std::to_string(len) +
				      " in a message header (framing lost)");
		ensure(len);
		cur_ = len;
		return {buf_.data() + beg_, len};
	}
	void release() override
	{
		beg_ += cur_;
		cur_ = 0;
		if (beg_ == end_)
			beg_ = end_ = 0;
	}

private:
	// Small messages: read as much as fits (many messages per read()).
	// Large ones: read exactly the header, then exactly the rest, so that a
	// message never straddles the buffer end and is never moved.
	void ensure(size_t n)
	{
		if (end_ - beg_ >= n)
			return;
		if (beg_ + n > buf_.size()) {
			std::memmove(buf_.data(), buf_.data() + beg_, end_ - beg_);
			end_ -= beg_;
			beg_ = 0;
		}
		while (end_ - beg_ < n) {
			const size_t want = exact_ ? n - (end_ - beg_) : buf_.size() - end_;
			const ssize_t r = ::read(fd_, buf_.data() + end_, want);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				fail_errno("read");
			}
			if (r == 0)
				throw Failure("byte stream: end of file (the sender has gone)");
			end_ += static_cast<size_t>(r);
		}
	}
	int fd_;
	size_t max_;
	bool exact_;
	Buffer buf_;
	size_t beg_ = 0, end_ = 0, cur_ = 0;
};

// SOCK_SEQPACKET sender: send() per message, sendmmsg() per batch.
class PacketTx final : public Tx {
public:
	PacketTx(int fd, const ChannelConfig &cfg)
		: fd_(fd), buf_(cfg.msg_size * cfg.batch), iov_(cfg.batch), msgs_(cfg.batch)
	{
	}
	~PacketTx() override { ::close(fd_); }
	std::byte *begin(size_t n) override
	{
		if (count_ == iov_.size() || used_ + n > buf_.size())
			flush();
		return buf_.data() + used_;
	}
	void commit(size_t n, bool more) override
	{
		iov_[count_] = {buf_.data() + used_, n};
		++count_;
		used_ += n;
		if (!more)
			flush();
	}

private:
	void flush()
	{
		if (count_ == 1) {
			for (;;) {
				const ssize_t r = ::send(fd_, iov_[0].iov_base, iov_[0].iov_len, 0);
				if (r >= 0)
					break;
				if (errno != EINTR)
					fail_errno("send");
			}
		} else if (count_ > 1) {
			for (size_t i = 0; i < count_; ++i) {
				msgs_[i] = {};
				msgs_[i].msg_hdr.msg_iov = &iov_[i];
				msgs_[i].msg_hdr.msg_iovlen = 1;
			}
			size_t done = 0;
			while (done < count_) {
				const int r = ::sendmmsg(fd_, msgs_.data() + done,
							 static_cast<unsigned>(count_ - done), 0);
				if (r < 0) {
					if (errno == EINTR)
						continue;
					fail_errno("sendmmsg");
				}
				done += static_cast<size_t>(r);
			}
		}
		count_ = 0;
		used_ = 0;
	}
	int fd_;
	Buffer buf_;
	std::vector<struct iovec> iov_;
	std::vector<struct mmsghdr> msgs_;
	size_t count_ = 0, used_ = 0;
};

class PacketRx final : public Rx {
public:
	PacketRx(int fd, const ChannelConfig &cfg) : fd_(fd), buf_(cfg.msg_size + 64) {}
	~PacketRx() override { ::close(fd_); }
	std::span<const std::byte> receive() override
	{
		for (;;) {
			const ssize_t r = ::recv(fd_, buf_.data(), buf_.size(), 0);
			if (r > 0)
				return {buf_.data(), static_cast<size_t>(r)};
			if (r == 0)
				throw Failure("seqpacket: end of file (the sender has gone)");
			if (errno != EINTR)
				fail_errno("recv");
		}
	}
	void release() override {}

private:
	int fd_;
	Buffer buf_;
};

// Sets SO_SNDBUF/SO_RCVBUF of @fd to about @capacity (the *FORCE variants,
// CAP_NET_ADMIN, ignore net.core.[rw]mem_max; the kernel doubles the value
// asked for, so ask for half). Returns false when not forced.
bool size_socket_buffers(int fd, size_t capacity)
{
	const int want = static_cast<int>(std::min<size_t>(capacity, 1u << 30) / 2);
	bool forced = true;
	if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) < 0) {
		forced = false;
		(void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
	}
	if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) < 0)
		(void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
	return forced;
}

// The effective send buffer of @fd; throws Skip when a packet of @msg_size
// can never be sent through it.
size_t packet_send_buffer(int fd, size_t msg_size)
{
	int got = 0;
	socklen_t len = sizeof got;
	if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &len) < 0)
		return 0;
	const size_t buffer = static_cast<size_t>(got);
	if (msg_size + 4096 > buffer)
		throw Skip("message larger than the socket send buffer (" + std::to_string(buffer) +
			   " bytes)");
	return buffer;
}

// The fan-in server's receiver: the accepted connections, served round
// robin (see the top comment).
class PacketServerRx final : public Rx {
public:
	PacketServerRx(std::vector<int> fds, const ChannelConfig &cfg) : buf_(cfg.msg_size + 64)
	{
		for (int fd : fds)
			fds_.push_back({fd, POLLIN, 0});
	}
	~PacketServerRx() override
	{
		for (auto &p : fds_)
			::close(p.fd);
	}
	std::span<const std::byte> receive() override
	{
		for (;;) {
			if (fds_.empty())
				throw Failure("seqpacket server: every client has gone");
			// One pass over the connections, starting after the one
			// served last.
			for (size_t k = 0; k < fds_.size(); ++k) {
				const size_t i = (next_ + k) % fds_.size();
				const ssize_t r = ::recv(fds_[i].fd, buf_.data(), buf_.size(), MSG_DONTWAIT);
				if (r > 0) {
					next_ = i + 1;
					return {buf_.data(), static_cast<size_t>(r)};
				}
				if (r == 0) { // that client is done and closed
					::close(fds_[i].fd);
					fds_.erase(fds_.begin() + static_cast<std::ptrdiff_t>(i));
					next_ = i;
					k = static_cast<size_t>(-1); // the pass starts over
					if (fds_.empty())
						break;
					continue;
				}
				if (errno != EAGAIN && errno != EINTR)
					fail_errno("recv");
			}
			if (!fds_.empty() && ::poll(fds_.data(), fds_.size(), -1) < 0 && errno != EINTR)
				fail_errno("poll");
		}
	}
	void release() override {}

private:
	std::vector<struct pollfd> fds_;
	size_t next_ = 0;
	Buffer buf_;
};

// Fan-in over SOCK_SEQPACKET: the listening socket is made in the parent.
class PacketServerChannel final : public Channel {
public:
	explicit PacketServerChannel(const ChannelConfig &cfg) : cfg_(cfg)
	{
		const std::string name = "shmq-bench-seqpacket-" + cfg.tag;
		addr_.sun_family = AF_UNIX;
		// abstract address: sun_path[0] == 0, nothing to unlink
		std::memcpy(addr_.sun_path + 1, name.data(), std::min(name.size(), sizeof addr_.sun_path - 2));
		addr_len_ = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 1 +
						   std::min(name.size(), sizeof addr_.sun_path - 2));
		listen_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (listen_ < 0)
			fail_errno("socket");
		if (::bind(listen_, reinterpret_cast<const struct sockaddr *>(&addr_), addr_len_) < 0)
			fail_errno("bind");
		if (::listen(listen_, static_cast<int>(cfg.producers)) < 0)
			fail_errno("listen");
		buffer = cfg.capacity;
		note = std::to_string(cfg.producers) + " connections";
	}
	~PacketServerChannel() override { close_fd(listen_); }
	std::unique_ptr<Tx> open_tx() override
	{
		close_fd(listen_);
		const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0)
			fail_errno("socket");
		if (!size_socket_buffers(fd, cfg_.capacity))
			note = "socket buffers limited by net.core.wmem_max";
		(void)packet_send_buffer(fd, cfg_.msg_size);
		if (::connect(fd, reinterpret_cast<const struct sockaddr *>(&addr_), addr_len_) < 0)
			fail_errno("connect");
		return std::make_unique<PacketTx>(fd, cfg_);
	}
	std::unique_ptr<Rx> open_rx() override
	{
		std::vector<int> fds;
		while (fds.size() < cfg_.producers) {
			const int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
			if (fd < 0) {
				if (errno == EINTR)
					continue;
				fail_errno("accept4");
			}
			size_socket_buffers(fd, cfg_.capacity);
			fds.push_back(fd);
		}
		close_fd(listen_);
		return std::make_unique<PacketServerRx>(std::move(fds), cfg_);
	}

private:
	ChannelConfig cfg_;
	struct sockaddr_un addr_ = {};
	socklen_t addr_len_ = 0;
	int listen_ = -1;
};

// fds[0]: the sending end, fds[1]: the receiving end. Each child closes the
// end it does not use; the parent closes both when the run is over.
class FdChannel final : public Channel {
public:
	enum Kind { Pipe, Stream, Packet };
	FdChannel(Kind k, const ChannelConfig &cfg) : kind_(k), cfg_(cfg)
	{
		if (k == Pipe) {
			int p[2];
			if (::pipe2(p, O_CLOEXEC) < 0)
				fail_errno("pipe2");
			fds_[0] = p[1];
			fds_[1] = p[0];
			size_pipe();
		} else {
			int sv[2];
			if (::socketpair(AF_UNIX, (k == Stream ? SOCK_STREAM : SOCK_SEQPACKET) |
							  SOCK_CLOEXEC,
					 0, sv) < 0)
				fail_errno("socketpair");
			fds_[0] = sv[0];
			fds_[1] = sv[1];
			size_socket();
		}
	}
	~FdChannel() override
	{
		close_fd(fds_[0]);
		close_fd(fds_[1]);
	}
	std::unique_ptr<Tx> open_tx() override
	{
		close_fd(fds_[1]);
		const int fd = std::exchange(fds_[0], -1);
		if (kind_ == Packet)
			return std::make_unique<PacketTx>(fd, cfg_);
		return std::make_unique<StreamTx>(fd, cfg_);
	}
	std::unique_ptr<Rx> open_rx() override
	{
		close_fd(fds_[0]);
		const int fd = std::exchange(fds_[1], -1);
		if (kind_ == Packet)
			return std::make_unique<PacketRx>(fd, cfg_);
		return std::make_unique<StreamRx>(fd, cfg_);
	}

private:
	void size_pipe()
	{
		// Root (CAP_SYS_RESOURCE) may exceed /proc/sys/fs/pipe-max-size.
		const int want = static_cast<int>(std::min<size_t>(cfg_.capacity, 1u << 30));
		if (::fcntl(fds_[0], F_SETPIPE_SZ, want) < 0) {
			const long long max = read_proc_number("/proc/sys/fs/pipe-max-size");
			if (max > 0 && max < want && ::fcntl(fds_[0], F_SETPIPE_SZ, int(max)) >= 0)
				note = "pipe size capped at pipe-max-size";
			else
				note = "pipe size left at default";
		}
		const int got = ::fcntl(fds_[0], F_GETPIPE_SZ);
		buffer = got > 0 ? static_cast<size_t>(got) : 0;
	}
	void size_socket()
	{
		// For AF_UNIX the sender's SO_SNDBUF bounds what is in flight.
		bool forced = true;
		for (int fd : fds_)
			forced &= size_socket_buffers(fd, cfg_.capacity);
		if (!forced)
			note = "socket buffers limited by net.core.wmem_max";
		if (kind_ == Packet) // a packet larger than the send buffer can never be sent
			buffer = packet_send_buffer(fds_[0], cfg_.msg_size);
		else {
			int got = 0;
			socklen_t len = sizeof got;
			if (::getsockopt(fds_[0], SOL_SOCKET, SO_SNDBUF, &got, &len) == 0)
				buffer = static_cast<size_t>(got);
		}
	}
	Kind kind_;
	ChannelConfig cfg_;
	int fds_[2] = {-1, -1};
};

template <FdChannel::Kind K> class FdMechanism final : public Mechanism {
public:
	FdMechanism(const char *name, const char *desc) : name_(name), desc_(desc) {}
	const char *name() const override { return name_; }
	const char *describe() const override { return desc_; }
	// Fan-in: SOCK_SEQPACKET as a server with a client per producer.
	bool applies(Workload w) const override { return w != Workload::FanIn || K == FdChannel::Packet; }
	std::unique_ptr<Channel> make_channel(const ChannelConfig &cfg) override
	{
		if (cfg.producers > 1)
			return std::make_unique<PacketServerChannel>(cfg);
		return std::make_unique<FdChannel>(K, cfg);
	}

private:
	const char *name_, *desc_;
};

const Registration reg_pipe(100, "pipe", [] {
	return std::unique_ptr<Mechanism>(new FdMechanism<FdChannel::Pipe>(
		"pipe", "pipe(2); write per message (per batch), buffered framed reads"));
});
const Registration reg_stream(110, "unix-stream", [] {
	return std::unique_ptr<Mechanism>(new FdMechanism<FdChannel::Stream>(
		"unix-stream", "AF_UNIX SOCK_STREAM socketpair; like pipe"));
});
const Registration reg_packet(120, "unix-seqpacket", [] {
	return std::unique_ptr<Mechanism>(new FdMechanism<FdChannel::Packet>(
		"unix-seqpacket", "AF_UNIX SOCK_SEQPACKET socketpair; send/recv per message, "
				  "sendmmsg per batch; fan-in: a server with a client per producer"));
});

} // namespace

} // namespace shmq_bench
