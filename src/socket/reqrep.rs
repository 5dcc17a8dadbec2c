//! [`Req`] and [`Rep`]: the two ends of synchronous request–reply (RFC 28).

use crate::engine::{Core, Pattern, SocketCore, State, random_u64};
use crate::error::{Error, Result, SendError};
use crate::message::Message;
use crate::options::SocketOptions;
use crate::pattern::{PeerId, RepState, ReqState, StateError};
use crate::wire::SocketType;
use std::task::{Context, Poll, ready};

fn wrong_state(socket: SocketType, e: StateError) -> Error {
    Error::WrongState {
        socket,
        reason: e.reason(),
    }
}

/// Sends requests and receives their replies, strictly alternating.
///
/// Each request goes to the next connected REP/ROUTER peer with room (round-robin), with an
/// empty delimiter frame in front on the wire; only the reply from that peer is taken, its
/// delimiter stripped. Sending twice, or receiving before sending, fails at once with
/// [`Error::WrongState`] instead of hanging.
///
/// A lost peer never answers: set a receive timeout
/// ([`SocketOptions::recv_timeout`]) and either recreate the socket or set
/// [`SocketOptions::req_relaxed`] to send again (with [`SocketOptions::req_correlate`] so a
/// late reply to the earlier request cannot be mistaken for the new one).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Rep, Req};
///
/// let rep = Rep::new();
/// let req = Req::new();
/// req.connect(rep.bind("tcp://127.0.0.1:0")?)?;
/// req.send("hello").await?;
/// let request = rep.recv().await?;
/// assert_eq!(request.frames()[0], "hello");
/// rep.send("world").await?;
/// assert_eq!(req.recv().await?.frames()[0], "world");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Req {
    core: SocketCore<ReqPattern>,
    poll: super::Streaming,
}

#[derive(Debug)]
pub(crate) struct ReqPattern {
    state: ReqState,
}

impl ReqPattern {
    fn new(options: &SocketOptions) -> Self {
        // A random first request id, as libzmq, so a restarted client's ids do not repeat
        // the previous run's.
        let seed = random_u64() as u32;
        ReqPattern {
            state: ReqState::new(options.req_relaxed, options.req_correlate, seed),
        }
    }

    fn send_attempt(
        state: &mut State<Self>,
        slot: &mut Option<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<()>> {
        let State { core, pattern } = state;
        if let Err(e) = pattern.state.check_send() {
            return Poll::Ready(Err(wrong_state(SocketType::Req, e)));
        }
        let body = slot.as_ref().map_or(0, |m| m.byte_len());
        let size = (body + pattern.state.envelope_bytes()) as u64;
        let peer = ready!(core.pick_round_robin(size, cx))?;
        // Replies to earlier requests are stale now (libzmq drains them the same way).
        while core.pop_inbox().is_some() {}
        let envelope = pattern.state.request_sent(peer);
        if let Some(message) = slot.take() {
            let message = message.into_shared();
            core.enqueue_parts(peer, envelope.frames(), message.frames());
        }
        Poll::Ready(Ok(()))
    }

    fn recv_attempt(state: &mut State<Self>, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        let State { core, pattern } = state;
        if let Err(e) = pattern.state.check_recv() {
            return Poll::Ready(Err(wrong_state(SocketType::Req, e)));
        }
        let (_, reply) = ready!(core.recv_fair(cx))?;
        pattern.state.reply_taken();
        Poll::Ready(Ok(reply))
    }
}

impl Pattern for ReqPattern {
    fn options_changed(&mut self, _: &mut Core, options: &SocketOptions) {
        self.state
            .set_flags(options.req_relaxed, options.req_correlate);
    }

    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool {
        core.lb.add_peer(peer);
        core.inbox.add_peer(peer);
        true
    }

    fn detach(&mut self, core: &mut Core, peer: PeerId) {
        core.lb.remove_peer(peer);
    }

    /// Queues only the reply to the outstanding request, envelope stripped; drops the rest.
    fn deliver(&mut self, core: &mut Core, peer: PeerId, message: Message) -> Result<(), Message> {
        if let Some(body) = self.state.accept_reply(peer, message) {
            // At most one reply is queued per request and stale ones are purged on send, so
            // the inbox always has room; were it full, dropping is the only safe choice.
            let _ = core.push_inbox(peer, body);
        }
        Ok(())
    }
}

super::socket_common!(Req, ReqPattern, SocketType::Req);
super::socket_stream!(Req, ReqPattern::recv_attempt);
super::socket_sink!(Req, super::non_empty, ReqPattern::send_attempt);
// A REQ is readable only with the awaited reply queued, writable only when it may send.
super::socket_readiness!(
    Req,
    ReqPattern,
    readable: |state| state.pattern.state.check_recv().is_ok() && super::inbox_ready(state),
    writable: |state| state.pattern.state.check_send().is_ok() && super::round_robin_ready(state)
);
// In a proxy, a REQ waits (rather than fails) for its turn to send or receive: the proxy's
// other direction gives it that turn.
crate::proxy::proxied!(
    Req,
    SocketType::Req,
    recv: |state, cx| match state.pattern.state.check_recv() {
        Ok(()) => ReqPattern::recv_attempt(state, cx),
        Err(_) => Poll::Pending,
    },
    send: crate::proxy::placing(|state: &mut State<ReqPattern>, slot, cx| {
        match state.pattern.state.check_send() {
            Ok(()) => ReqPattern::send_attempt(state, slot, cx),
            Err(_) => Poll::Pending,
        }
    })
);

impl Req {
    super::live_setters! {
        /// Sets `req_relaxed` (ZMQ_REQ_RELAXED) on the live socket, from the next send.
        set_req_relaxed => req_relaxed: bool,
        /// Sets `req_correlate` (ZMQ_REQ_CORRELATE) on the live socket, from the next request.
        set_req_correlate => req_correlate: bool,
    }

    /// Sends a request to the next peer with room, waiting while none has (or until the
    /// send timeout). Fails with [`Error::WrongState`] while a reply is outstanding, unless
    /// `req_relaxed` is set.
    ///
    /// Cancel safety: dropped before the message is queued (while it waits for room), it
    /// drops the message unsent; once queued, the message is sent. To keep the message, use
    /// `try_send`, which hands it back, or the `Sink` implementation, which holds it.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = super::non_empty(message.into())?;
        self.core.send_with(message, ReqPattern::send_attempt).await
    }

    /// Sends without waiting: [`Error::WouldBlock`] with the message when no peer has room.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = super::non_empty(message.into())?;
        self.core.try_send_with(message, ReqPattern::send_attempt)
    }

    /// Receives the reply to the last request, waiting for it (or until the receive
    /// timeout: [`Error::Timeout`]). Fails with [`Error::WrongState`] when no request is
    /// outstanding.
    ///
    /// Cancel-safe: dropped before it completes (by `select!` or a timeout), it has taken no
    /// message, and the next receive gets it.
    pub async fn recv(&self) -> Result<Message> {
        self.core.recv_with(ReqPattern::recv_attempt).await
    }

    /// Receives the reply if it is already here ([`Error::WouldBlock`] otherwise).
    pub fn try_recv(&self) -> Result<Message> {
        self.core.try_recv_with(ReqPattern::recv_attempt)
    }
}

/// Receives requests and sends their replies, strictly alternating.
///
/// Requests are fair-queued from all connected REQ/DEALER peers. `recv` strips the envelope
/// (every frame up to and including the first empty delimiter) and returns the body; `send`
/// puts that envelope back and routes the reply to the peer the request came from. A reply
/// whose requester has left, or whose requester is at its send high-water mark, is dropped
/// silently, as in libzmq; requests without a delimiter are dropped too.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Dealer, Message, Rep};
///
/// let rep = Rep::new();
/// let dealer = Dealer::new();
/// dealer.connect(rep.bind("tcp://127.0.0.1:0")?)?;
/// // A DEALER writes the envelope itself: here just the empty delimiter.
/// dealer.send(["", "ping"].into_iter().collect::<Message>()).await?;
/// assert_eq!(rep.recv().await?.frames()[0], "ping");
/// rep.send("pong").await?;
/// assert_eq!(dealer.recv().await?.frames(), ["", "pong"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Rep {
    core: SocketCore<RepPattern>,
    poll: super::Streaming,
}

#[derive(Debug)]
pub(crate) struct RepPattern {
    state: RepState,
}

impl RepPattern {
    fn new(_: &SocketOptions) -> Self {
        RepPattern {
            state: RepState::new(),
        }
    }

    fn send_attempt(
        state: &mut State<Self>,
        slot: &mut Option<Message>,
        _: &mut Context<'_>,
    ) -> Poll<Result<()>> {
        let State { core, pattern } = state;
        let (to, envelope) = match pattern.state.check_send() {
            Ok(target) => target,
            Err(e) => return Poll::Ready(Err(wrong_state(SocketType::Rep, e))),
        };
        let Some(message) = slot.take() else {
            return Poll::Ready(Ok(()));
        };
        if let Some(peer) = to {
            let hwm = core.sndhwm;
            if let Some(Err(error)) = core
                .peers
                .get(peer)
                .map(|p| p.check_size(message.byte_len() as u64))
            {
                // The reply is still owed: the caller may send a smaller one.
                *slot = Some(message);
                return Poll::Ready(Err(error));
            }
            if core.peers.get(peer).is_some_and(|p| p.has_room(hwm)) {
                core.enqueue_parts(peer, envelope, message.into_shared().frames());
            } else {
                core.count_drop(peer);
            }
        }
        pattern.state.reply_sent();
        Poll::Ready(Ok(()))
    }

    fn recv_attempt(state: &mut State<Self>, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        let State { core, pattern } = state;
        if let Err(e) = pattern.state.check_recv() {
            return Poll::Ready(Err(wrong_state(SocketType::Rep, e)));
        }
        loop {
            let (peer, request) = ready!(core.recv_fair(cx))?;
            if let Some(body) = pattern.state.request_received(peer, request) {
                return Poll::Ready(Ok(body));
            }
        }
    }
}

impl Pattern for RepPattern {
    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool {
        core.inbox.add_peer(peer);
        true
    }

    fn detach(&mut self, _: &mut Core, peer: PeerId) {
        self.state.peer_detached(peer);
    }
}

super::socket_common!(Rep, RepPattern, SocketType::Rep);
super::socket_stream!(Rep, RepPattern::recv_attempt);
super::immediate_sink!(Rep, |rep, message| rep.try_send(message));
// A REP is readable only when it may receive and a well-formed request is queued (malformed
// ones, which `recv` would drop, are dropped here), writable only with a request to answer.
super::socket_readiness!(
    Rep,
    RepPattern,
    readable: |state| {
        if state.pattern.state.check_recv().is_err() {
            return false;
        }
        while let Some((_, request)) = state.core.inbox.peek() {
            if RepState::is_request(request) {
                return true;
            }
            state.core.pop_inbox();
        }
        false
    },
    writable: |state| state.pattern.state.check_send().is_ok()
);
// As REQ's: in a proxy a REP waits for its turn instead of failing.
crate::proxy::proxied!(
    Rep,
    SocketType::Rep,
    recv: |state, cx| match state.pattern.state.check_recv() {
        Ok(()) => RepPattern::recv_attempt(state, cx),
        Err(_) => Poll::Pending,
    },
    send: crate::proxy::placing(|state: &mut State<RepPattern>, slot, cx| {
        match state.pattern.state.check_send() {
            Ok(_) => RepPattern::send_attempt(state, slot, cx),
            Err(_) => Poll::Pending,
        }
    })
);

impl Rep {
    /// Receives the next request body, waiting for one (or until the receive timeout).
    /// Fails with [`Error::WrongState`] while the last request is unanswered.
    ///
    /// Cancel-safe: dropped before it completes (by `select!` or a timeout), it has taken no
    /// message, and the next receive gets it.
    pub async fn recv(&self) -> Result<Message> {
        self.core.recv_with(RepPattern::recv_attempt).await
    }

    /// Receives a request if one is queued ([`Error::WouldBlock`] otherwise).
    pub fn try_recv(&self) -> Result<Message> {
        self.core.try_recv_with(RepPattern::recv_attempt)
    }

    /// Sends the reply to the last request received. Never waits: a reply to a departed
    /// peer, or to one at its high-water mark, is dropped (counted in
    /// [`Rep::dropped_messages`] for the latter). Fails with [`Error::WrongState`] when there
    /// is no request to answer.
    ///
    /// Cancel-safe: it never waits, so the reply is queued at the first poll.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.try_send(message)
    }

    /// Same as [`Rep::send`], which never waits; provided for symmetry with other sockets.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = super::non_empty(message.into())?;
        self.core.try_send_with(message, RepPattern::send_attempt)
    }

    /// Replies dropped because the requester was at its send high-water mark.
    pub fn dropped_messages(&self) -> u64 {
        self.core.dropped_messages()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// A REP with one attached REQ peer holding `queued` unsent messages (HWM 1) whose
    /// request is being answered.
    fn rep_answering(queued: usize) -> (SocketCore<RepPattern>, PeerId) {
        let options = SocketOptions {
            sndhwm: 1,
            ..SocketOptions::default()
        };
        let pattern = RepPattern::new(&options);
        let socket = SocketCore::new(SocketType::Rep, options, pattern).expect("ok");
        let peer = {
            let id = socket.attach_test_peer(SocketType::Req, None, queued);
            let mut state = socket.lock();
            let pattern = &mut state.pattern;
            // Straight into the state machine: the test peer is not a live connection, and
            // the inbox releases a dead peer's slot once its last message is read.
            let request: Message = ["", "q"].into_iter().collect();
            let body = pattern.state.request_received(id, request);
            assert_eq!(body, Some(Message::from("q")));
            id
        };
        (socket, peer)
    }

    #[test]
    fn rep_reply_restores_envelope_on_the_wire() {
        let (socket, peer) = rep_answering(0);
        socket
            .try_send_with(Message::from("a"), RepPattern::send_attempt)
            .expect("sent");
        let state = socket.lock();
        let out = &state.core.peers.get(peer).expect("peer").out;
        assert_eq!(out.to_bytes(), Bytes::from_static(b"\x01\x00\x00\x01a"));
    }

    #[test]
    fn rep_reply_to_full_peer_is_dropped_and_counted() {
        let (socket, _) = rep_answering(1);
        socket
            .try_send_with(Message::from("a"), RepPattern::send_attempt)
            .expect("dropped silently");
        assert_eq!(socket.dropped_messages(), 1);
        // The cycle moved on: the next call must be a receive.
        assert!(matches!(
            socket.try_send_with(Message::from("b"), RepPattern::send_attempt),
            Err(SendError {
                error: Error::WrongState { .. },
                ..
            })
        ));
    }

    #[test]
    fn rep_reply_to_departed_peer_is_dropped_silently() {
        let (socket, peer) = rep_answering(0);
        {
            let mut state = socket.lock();
            let State { core, pattern } = &mut *state;
            pattern.detach(core, peer);
        }
        socket
            .try_send_with(Message::from("a"), RepPattern::send_attempt)
            .expect("dropped silently");
        let state = socket.lock();
        assert!(state.core.peers.get(peer).expect("slot").out.is_empty());
        assert_eq!(state.core.dropped_msgs, 0);
    }

    #[test]
    fn req_encodes_delimiter_before_body() {
        let options = SocketOptions::default();
        let pattern = ReqPattern::new(&options);
        let socket = SocketCore::new(SocketType::Req, options, pattern).expect("ok");
        let peer = socket.attach_test_peer(SocketType::Rep, None, 0);
        socket
            .try_send_with(Message::from("q"), ReqPattern::send_attempt)
            .expect("sent");
        let state = socket.lock();
        let out = &state.core.peers.get(peer).expect("peer").out;
        assert_eq!(out.to_bytes(), Bytes::from_static(b"\x01\x00\x00\x01q"));
    }
}
