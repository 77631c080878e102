// SPDX-License-Identifier: MIT
// ZeroMQ (libzmq 4.3) over the ipc:// transport (a Unix domain stream socket
// underneath, driven by libzmq's I/O thread).
//
// Pattern: PUSH/PULL for every channel. The harness's channels are one-way,
// and PUSH/PULL is the pattern a user writes for a one-way pipeline between
// two processes: it blocks the sender at the high-water mark instead of
// dropping (PUB/SUB drops when the subscriber is slow, which would be a fast
// wrong answer), and unlike PAIR it is meant for ipc:// and tcp:// (PAIR is
// documented for inproc:// and has no reconnection). Ping-pong runs over two
// PUSH/PULL pipes, one per direction: a message takes the same path as with
// REQ/REP (application thread -> I/O thread -> socket -> I/O thread ->
// application thread on each side); REQ/REP would only add its empty envelope
// frame and its strict send/receive state machine, which the ping-pong
// workload obeys anyway.
//
// Zero-copy where the API allows: the sender fills the message in the
// zmq_msg_t's own buffer (zmq_msg_init_size, then zmq_msg_send hands it to
// libzmq without a copy); the receiver checks it in the zmq_msg_t that
// zmq_msg_recv filled and closes it on release. libzmq's encoder writes bodies
// larger than its 8 KiB batch straight from that buffer and its decoder reads
// large bodies straight into the message, so a 1 MiB message is copied only
// by the kernel (into and out of the socket buffer); small messages are
// batched through libzmq's 8 KiB buffers (one write() for many). No batch API
// either: in the batch workload every message is its own zmq_msg_send; the
// I/O thread batches by itself whatever is queued.
//
// High-water marks: ZMQ_SNDHWM and ZMQ_RCVHWM count messages (default 1000
// each). They are set so that libzmq's own queues hold about the buffer every
// mechanism is given: capacity / size messages, half on each side (at least
// 1). The kernel socket buffer (default size, ~200 KiB) comes on top of that.
//
// libzmq state must not cross fork(): the parent only picks the endpoint
// (/tmp/shmq-bench-zmq-<tag>), each child creates its own context (one I/O
// thread) and socket; PULL binds, PUSH connects (retrying every 10 ms until
// the other side has bound; messages are queued meanwhile).
//
// End of stream: ZMQ_LINGER only covers messages still in the socket's pipe.
// What libzmq's I/O thread has already taken into its output batch but could
// not write yet (the receiver is behind, the Unix socket is full) is dropped
// when the sender closes and exits: measured here, a 64-byte stream with HWM
// 128 lost its last ~240 messages (zmq_ctx_term returned after 140 us despite
// a 30 s linger) and the receiver waited forever. PUSH has no delivery
// confirmation, so, as a real pipeline must, the receiver acknowledges the
// end of the stream on a second PUSH/PULL pair (<endpoint>-ack) and the
// sender waits for that before it closes (untimed; a receiver that fails
// never acknowledges, and then the harness kills both).
//
// Fan-in: PUSH x producers -> one PULL, the pipeline pattern's fan-in (PULL
// fair-queues its peers); each producer's HWMs are those of a stream sender
// (libzmq keeps a pipe per peer). Producer i waits for its own acknowledgment
// on <endpoint>-ack-<i>, to which the receiver connects one PUSH each.
#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>
#include <zmq.h>

#include "bench.hpp"

namespace shmq_bench {

namespace {

[[noreturn]] void fail_zmq(const std::string &what)
{
	throw Failure(what + ": " + zmq_strerror(zmq_errno()));
}

// One libzmq context per child process, shared by its sockets.
class Context {
public:
	Context()
	{
		ctx_ = zmq_ctx_new();
		if (!ctx_)
			fail_zmq("zmq_ctx_new");
	}
	~Context()
	{
		while (zmq_ctx_term(ctx_) < 0 && zmq_errno() == EINTR) {
		}
	}
	void *get() const { return ctx_; }
	static std::shared_ptr<Context> instance()
	{
		static std::weak_ptr<Context> cur;
		auto c = cur.lock();
		if (!c) {
			c = std::make_shared<Context>();
			cur = c;
		}
		return c;
	}

private:
	void *ctx_ = nullptr;
};

class Socket {
public:
	Socket(int type, const char *what) : ctx_(Context::instance()), what_(what)
	{
		s_ = zmq_socket(ctx_->get(), type);
		if (!s_)
			fail_zmq(std::string("zmq_socket ") + what);
	}
	~Socket() { zmq_close(s_); } // before ctx_ is released
	void set(int opt, int v)
	{
		if (zmq_setsockopt(s_, opt, &v, sizeof v) < 0)
			fail_zmq(std::string("zmq_setsockopt ") + what_);
	}
	void *get() const { return s_; }

private:
	std::shared_ptr<Context> ctx_;
	void *s_ = nullptr;
	const char *what_;
};

// The endpoint on which sender @i waits for the end-of-stream acknowledgment.
std::string ack_endpoint(const std::string &ep, unsigned i)
{
	return i == 0 ? ep + "-ack" : ep + "-ack-" + std::to_string(i);
}

class ZmqTx final : public Tx {
public:
	ZmqTx(const std::string &ep, int hwm, const std::string &ack_ep)
		: s_(ZMQ_PUSH, "PUSH"), ack_(ZMQ_PULL, "PULL (ack)")
	{
		s_.set(ZMQ_SNDHWM, hwm);
		s_.set(ZMQ_RECONNECT_IVL, 10);
		s_.set(ZMQ_LINGER, 30000);
		if (zmq_connect(s_.get(), ep.c_str()) < 0)
			fail_zmq("zmq_connect " + ep);
		ack_.set(ZMQ_RCVTIMEO, 30000);
		ack_.set(ZMQ_LINGER, 0);
		if (zmq_bind(ack_.get(), ack_ep.c_str()) < 0)
			fail_zmq("zmq_bind " + ack_ep);
	}
	~ZmqTx() override
	{
		if (open_)
			zmq_msg_close(&msg_);
		// Wait for the end-of-stream acknowledgment (see the top
		// comment): closing now could lose what the I/O thread holds.
		char c;
		while (zmq_recv(ack_.get(), &c, sizeof c, 0) < 0 && zmq_errno() == EINTR) {
		}
	}
	std::byte *begin(size_t n) override
	{
		if (zmq_msg_init_size(&msg_, n) < 0)
			fail_zmq("zmq_msg_init_size");
		open_ = true;
		return static_cast<std::byte *>(zmq_msg_data(&msg_));
	}
	void commit(size_t, bool) override
	{
		while (zmq_msg_send(&msg_, s_.get(), 0) < 0)
			if (zmq_errno() != EINTR)
				fail_zmq("zmq_msg_send");
		open_ = false; // libzmq owns it now
	}

private:
	Socket s_, ack_;
	zmq_msg_t msg_;
	bool open_ = false;
};

class ZmqRx final : public Rx {
public:
	ZmqRx(const std::string &ep, int hwm, unsigned senders) : s_(ZMQ_PULL, "PULL")
	{
		s_.set(ZMQ_RCVHWM, hwm);
		s_.set(ZMQ_LINGER, 0);
		if (zmq_bind(s_.get(), ep.c_str()) < 0)
			fail_zmq("zmq_bind " + ep);
		for (unsigned i = 0; i < senders; ++i) {
			auto &a = *acks_.emplace_back(std::make_unique<Socket>(ZMQ_PUSH, "PUSH (ack)"));
			a.set(ZMQ_RECONNECT_IVL, 10);
			a.set(ZMQ_LINGER, 30000);
			if (zmq_connect(a.get(), ack_endpoint(ep, i).c_str()) < 0)
				fail_zmq("zmq_connect " + ack_endpoint(ep, i));
		}
		zmq_msg_init(&msg_);
	}
	~ZmqRx() override
	{
		zmq_msg_close(&msg_);
		// Reached only after the last message was received and checked:
		// a failing receiver leaves with _exit() and never acknowledges.
		const char c = 0;
		for (auto &a : acks_)
			while (zmq_send(a->get(), &c, 1, 0) < 0 && zmq_errno() == EINTR) {
			}
	}
	std::span<const std::byte> receive() override
	{
		while (zmq_msg_recv(&msg_, s_.get(), 0) < 0)
			if (zmq_errno() != EINTR)
				fail_zmq("zmq_msg_recv");
		if (zmq_msg_more(&msg_))
			throw Failure("zmq: unexpected multi-part message");
		return {static_cast<const std::byte *>(zmq_msg_data(&msg_)), zmq_msg_size(&msg_)};
	}
	void release() override
	{
		// Frees the body; the next zmq_msg_recv reuses the zmq_msg_t.
		zmq_msg_close(&msg_);
		zmq_msg_init(&msg_);
	}

private:
	Socket s_;
	std::vector<std::unique_ptr<Socket>> acks_; // one per sender
	zmq_msg_t msg_;
};

class ZmqChannel final : public Channel {
public:
	explicit ZmqChannel(const ChannelConfig &cfg)
		: path_("/tmp/shmq-bench-zmq-" + cfg.tag), senders_(cfg.producers),
		  hwm_(static_cast<int>(std::clamp<size_t>(cfg.capacity / cfg.msg_size / 2, 1, 1 << 20)))
	{
		unlink_both();
		buffer = 2 * static_cast<size_t>(hwm_) * cfg.msg_size;
		note = "hwm " + std::to_string(hwm_) + "+" + std::to_string(hwm_);
	}
	~ZmqChannel() override { unlink_both(); } // bound by the children
	std::unique_ptr<Tx> open_tx() override { return open_producer(0); }
	std::unique_ptr<Tx> open_producer(unsigned i) override
	{
		return std::make_unique<ZmqTx>("ipc://" + path_, hwm_, ack_endpoint("ipc://" + path_, i));
	}
	std::unique_ptr<Rx> open_rx() override
	{
		return std::make_unique<ZmqRx>("ipc://" + path_, hwm_, senders_);
	}

private:
	void unlink_both()
	{
		::unlink(path_.c_str());
		for (unsigned i = 0; i < senders_; ++i)
			::unlink(ack_endpoint(path_, i).c_str());
	}
	std::string path_;
	unsigned senders_;
	int hwm_;
};

class ZmqMechanism final : public Mechanism {
public:
	const char *name() const override { return "zmq-ipc"; }
	const char *describe() const override
	{
		return "ZeroMQ PUSH/PULL over ipc:// (zmq_msg zero-copy API, HWM = buffer / size)";
	}
	bool applies(Workload) const override { return true; } // fan-in: PUSH x N -> PULL
	std::unique_ptr<Channel> make_channel(const ChannelConfig &cfg) override
	{
		return std::make_unique<ZmqChannel>(cfg);
	}
};

const Registration reg(150, "zmq-ipc", [] { return std::unique_ptr<Mechanism>(new ZmqMechanism); });

} // namespace

} // namespace shmq_bench
