//! [`Router`]: addresses peers by routing id (RFC 28).

use crate::engine::{Core, Pattern, SocketCore, State, random_u64};
use crate::error::{Error, Result, SendError};
use crate::message::Message;
use crate::options::{RouterNotify, SocketOptions};
use crate::pattern::{PeerId, PeerMap, RoutingTable};
use crate::wire::SocketType;
use bytes::Bytes;
use std::task::{Context, Poll, ready};

/// Receives fair-queued from all peers, each message prefixed with the sender's routing id;
/// sends each message to the peer named by its first frame, which is stripped.
///
/// A peer's routing id is the one it announced (its `routing_id` option, libzmq's
/// `ZMQ_ROUTING_ID`), else one generated in libzmq's form (a zero byte and four more). A
/// second peer announcing an id in use is refused, unless
/// [`SocketOptions::router_handover`] is set, in which case it takes the id over.
///
/// By default a message for an unknown routing id, or for a peer at its send high-water
/// mark, is dropped silently (the latter counted in [`Router::dropped_messages`]), as in
/// libzmq. With [`SocketOptions::router_mandatory`] an unknown id fails with
/// [`Error::HostUnreachable`] and the message back, and a full peer makes `send` wait (or
/// `try_send` fail with [`Error::WouldBlock`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Message, Req, Router, SocketOptions};
///
/// let router = Router::new();
/// let mut options = SocketOptions::default();
/// options.routing_id = Some("client-1".into());
/// let req = Req::with_options(options)?;
/// req.connect(router.bind("tcp://127.0.0.1:0")?)?;
/// req.send("hello").await?;
/// let request = router.recv().await?;
/// assert_eq!(request.frames(), ["client-1", "", "hello"]);
/// let reply: Message = ["client-1", "", "world"].into_iter().collect();
/// router.send(reply).await?;
/// assert_eq!(req.recv().await?.frames()[0], "world");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Router {
    core: SocketCore<RouterPattern>,
    poll: super::Streaming,
}

#[derive(Debug)]
pub(crate) struct RouterPattern {
    routes: RoutingTable,
    /// Routing ids of peers no longer routable (gone, or displaced by a handover) whose
    /// queued messages are still to be read, so those still carry the right id.
    departed: PeerMap<Bytes>,
    mandatory: bool,
    handover: bool,
    notify: RouterNotify,
}

impl RouterPattern {
    fn new(options: &SocketOptions) -> Self {
        RouterPattern {
            routes: RoutingTable::new(random_u64() as u32),
            departed: PeerMap::new(),
            mandatory: options.router_mandatory,
            handover: options.router_handover,
            notify: options.router_notify,
        }
    }

    /// Remembers `peer`'s id for its queued messages once it stops being routable.
    fn retire(&mut self, core: &Core, peer: PeerId, id: Bytes) {
        if core.inbox.queued(peer) > 0 {
            self.departed.insert(peer, id);
        }
    }

    fn send_attempt(
        state: &mut State<Self>,
        slot: &mut Option<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<()>> {
        let State { core, pattern } = state;
        let Some(message) = slot.as_ref() else {
            return Poll::Ready(Ok(()));
        };
        if message.len() < 2 {
            return Poll::Ready(Err(Error::MalformedMessage(
                "a ROUTER message needs a routing-id frame and at least one more frame",
            )));
        }
        let frames = message.frames();
        let Some(peer) = pattern.routes.lookup(&frames[0]) else {
            if pattern.mandatory {
                return Poll::Ready(Err(Error::HostUnreachable(frames[0].clone())));
            }
            *slot = None;
            return Poll::Ready(Ok(()));
        };
        let hwm = core.sndhwm;
        let Some(target) = core.peers.get(peer) else {
            return Poll::Ready(Err(Error::HostUnreachable(frames[0].clone())));
        };
        let size = frames[1..].iter().map(|f| f.len() as u64).sum();
        if let Err(error) = target.check_size(size) {
            return Poll::Ready(Err(error));
        }
        if pattern.mandatory {
            if !target.can_accept(hwm) {
                core.park_send(cx);
                return Poll::Pending;
            }
        } else if !target.has_room(hwm) {
            core.count_drop(peer);
            *slot = None;
            return Poll::Ready(Ok(()));
        }
        core.enqueue_parts(peer, &[], &frames[1..]);
        *slot = None;
        Poll::Ready(Ok(()))
    }

    fn recv_attempt(state: &mut State<Self>, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        let State { core, pattern } = state;
        loop {
            let (peer, mut message) = ready!(core.recv_fair(cx))?;
            let id = match pattern.routes.id_of(peer) {
                Some(id) => id.clone(),
                None => {
                    let id = if core.inbox.queued(peer) == 0 {
                        pattern.departed.remove(peer)
                    } else {
                        pattern.departed.get(peer).cloned()
                    };
                    // A message with no known sender cannot be answered: skip it.
                    let Some(id) = id else { continue };
                    id
                }
            };
            message.push_front(id);
            return Poll::Ready(Ok(message));
        }
    }
}

impl Pattern for RouterPattern {
    fn options_changed(&mut self, _: &mut Core, options: &SocketOptions) {
        self.mandatory = options.router_mandatory;
        self.handover = options.router_handover;
        self.notify = options.router_notify;
    }

    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool {
        let announced = core
            .peers
            .get(peer)
            .and_then(|p| p.info.as_ref())
            .and_then(|info| info.identity.clone());
        match self.routes.attach(peer, announced, self.handover) {
            Err(_) => false,
            Ok((id, displaced)) => {
                if let Some(old) = displaced {
                    // libzmq closes the displaced connection; here it just stops being
                    // routable and what it sends from now on is dropped.
                    self.retire(core, old, id);
                }
                core.inbox.add_peer(peer);
                if self.notify.connect {
                    notify(core, peer);
                }
                true
            }
        }
    }

    fn detach(&mut self, core: &mut Core, peer: PeerId) {
        if let Some(id) = self.routes.remove_peer(peer) {
            if self.notify.disconnect && !core.is_closing() {
                // Queued behind what the peer sent.
                notify(core, peer);
            }
            self.retire(core, peer, id);
        }
    }

    /// Drops what a displaced peer sends after a handover; queues the rest.
    fn deliver(&mut self, core: &mut Core, peer: PeerId, message: Message) -> Result<(), Message> {
        if self.routes.id_of(peer).is_none() {
            return Ok(());
        }
        core.push_inbox(peer, message)
    }
}

/// Queues a connect or disconnect report from `peer` (one empty frame; `recv` puts the
/// routing id before it) and wakes waiting receivers. Dropped, as libzmq's, when that peer's
/// share of the inbox is full (it never is for a peer that has just arrived).
fn notify(core: &mut Core, peer: PeerId) {
    if core.push_inbox(peer, Message::from(Bytes::new())).is_ok() {
        core.recv_wakers.wake_all();
    }
}

super::socket_common!(Router, RouterPattern, SocketType::Router);
super::socket_stream!(Router, RouterPattern::recv_attempt);
super::socket_sink!(Router, Ok, RouterPattern::send_attempt);
// ROUTER is always writable, as in libzmq; with ROUTER_MANDATORY only while some peer has room
// (whether a send then waits depends on the routing id it names).
super::socket_readiness!(
    Router,
    RouterPattern,
    readable: super::inbox_ready,
    writable: |state| {
        let hwm = state.core.sndhwm;
        !state.pattern.mandatory || state.core.peers.iter().any(|(_, p)| p.can_accept(hwm))
    }
);
crate::proxy::proxied!(
    Router,
    SocketType::Router,
    recv: RouterPattern::recv_attempt,
    send: crate::proxy::placing(RouterPattern::send_attempt)
);

impl Router {
    super::live_setters! {
        /// Sets `router_mandatory` (ZMQ_ROUTER_MANDATORY) on the live socket, from the next
        /// send.
        set_router_mandatory => router_mandatory: bool,
        /// Sets `router_handover` (ZMQ_ROUTER_HANDOVER) on the live socket, from the next
        /// peer.
        set_router_handover => router_handover: bool,
    }

    /// Sends `[routing id, frames…]` to the peer with that routing id, without the id frame.
    /// See the type docs for unknown ids and full peers.
    ///
    /// Cancel safety: dropped before the message is queued (while it waits for room), it
    /// drops the message unsent; once queued, the message is sent. To keep the message, use
    /// `try_send`, which hands it back, or the `Sink` implementation, which holds it.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = message.into();
        self.core
            .send_with(message, RouterPattern::send_attempt)
            .await
    }

    /// Sends without waiting: with `router_mandatory`, [`Error::WouldBlock`] and the message
    /// when the peer is at its high-water mark.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.core
            .try_send_with(message.into(), RouterPattern::send_attempt)
    }

    /// Receives the next message, fair-queued across peers, prefixed with the sender's
    /// routing id; waits for one (or until the receive timeout).
    ///
    /// Cancel-safe: dropped before it completes (by `select!` or a timeout), it has taken no
    /// message, and the next receive gets it.
    pub async fn recv(&self) -> Result<Message> {
        self.core.recv_with(RouterPattern::recv_attempt).await
    }

    /// Receives without waiting ([`Error::WouldBlock`] when nothing is queued).
    pub fn try_recv(&self) -> Result<Message> {
        self.core.try_recv_with(RouterPattern::recv_attempt)
    }

    /// Messages dropped because their peer was at its send high-water mark (without
    /// `router_mandatory`).
    pub fn dropped_messages(&self) -> u64 {
        self.core.dropped_messages()
    }

    /// The routing ids of the peers a message can be sent to now (connected, handshake
    /// done), sorted.
    pub fn routing_ids(&self) -> Vec<Bytes> {
        let mut ids: Vec<Bytes> = self.core.lock().pattern.routes.ids().cloned().collect();
        ids.sort();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ROUTER with one attached peer named "p" that already has `queued` messages waiting
    /// (HWM 1), without any network: the HWM rules are hard to reach over loopback.
    fn router_with_peer(mandatory: bool, queued: usize) -> (SocketCore<RouterPattern>, PeerId) {
        let options = SocketOptions {
            router_mandatory: mandatory,
            sndhwm: 1,
            ..SocketOptions::default()
        };
        let pattern = RouterPattern::new(&options);
        let socket = SocketCore::new(SocketType::Router, options, pattern).expect("valid");
        let peer =
            socket.attach_test_peer(SocketType::Dealer, Some(Bytes::from_static(b"p")), queued);
        (socket, peer)
    }

    fn to_p() -> Message {
        ["p", "body"].into_iter().collect()
    }

    #[test]
    fn router_strips_routing_id_when_encoding() {
        let (socket, peer) = router_with_peer(false, 0);
        socket
            .try_send_with(to_p(), RouterPattern::send_attempt)
            .expect("room");
        let state = socket.lock();
        let queued = state.core.peers.get(peer).expect("peer");
        assert_eq!(queued.out_msgs, 1);
        assert_eq!(&queued.out.to_bytes()[..], b"\x00\x04body");
    }

    #[test]
    fn router_drops_and_counts_message_for_full_peer_by_default() {
        let (socket, _) = router_with_peer(false, 1);
        socket
            .try_send_with(to_p(), RouterPattern::send_attempt)
            .expect("dropped silently");
        assert_eq!(socket.dropped_messages(), 1);
    }

    #[test]
    fn router_mandatory_full_peer_would_block_with_message_back() {
        let (socket, _) = router_with_peer(true, 1);
        let err = socket
            .try_send_with(to_p(), RouterPattern::send_attempt)
            .expect_err("full");
        assert!(matches!(err.error, Error::WouldBlock));
        assert_eq!(err.message, to_p());
        assert_eq!(socket.dropped_messages(), 0);
    }

    #[test]
    fn router_departed_peer_messages_keep_their_id() {
        let (socket, peer) = router_with_peer(true, 0);
        {
            let mut state = socket.lock();
            let State { core, pattern } = &mut *state;
            pattern
                .deliver(core, peer, Message::from("last words"))
                .expect("room");
            pattern.detach(core, peer);
        }
        let err = socket
            .try_send_with(to_p(), RouterPattern::send_attempt)
            .expect_err("gone");
        assert!(matches!(err.error, Error::HostUnreachable(_)));
        let got = socket
            .try_recv_with(RouterPattern::recv_attempt)
            .expect("queued");
        assert_eq!(got, ["p", "last words"].into_iter().collect::<Message>());
    }
}
