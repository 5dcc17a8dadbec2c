//! [`Pair`]: an exclusive connection between two sockets (RFC 31).

use crate::engine::{Core, Pattern, SocketCore};
use crate::error::{Result, SendError};
use crate::message::Message;
use crate::options::SocketOptions;
use crate::pattern::PeerId;
use crate::wire::SocketType;

/// Talks to exactly one PAIR peer, both ways. A second peer that connects while the first is
/// there is refused, as libzmq does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::Pair;
///
/// let a = Pair::new();
/// let b = Pair::new();
/// b.connect(a.bind("tcp://127.0.0.1:0")?)?;
/// b.send("ping").await?;
/// assert_eq!(a.recv().await?.frames()[0], "ping");
/// a.send("pong").await?;
/// assert_eq!(b.recv().await?.frames()[0], "pong");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Pair {
    core: SocketCore<PairPattern>,
    poll: super::Streaming,
}

#[derive(Debug)]
pub(crate) struct PairPattern {
    peer: Option<PeerId>,
}

impl PairPattern {
    fn new(_: &SocketOptions) -> Self {
        PairPattern { peer: None }
    }
}

impl Pattern for PairPattern {
    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool {
        if self.peer.is_some() {
            return false;
        }
        self.peer = Some(peer);
        core.lb.add_peer(peer);
        core.inbox.add_peer(peer);
        true
    }

    fn detach(&mut self, core: &mut Core, peer: PeerId) {
        if self.peer == Some(peer) {
            self.peer = None;
            core.lb.remove_peer(peer);
        }
    }
}

super::socket_common!(Pair, PairPattern, SocketType::Pair);
super::socket_stream!(Pair, super::fair_attempt);
super::socket_sink!(Pair, Ok, super::round_robin_attempt);
super::socket_readiness!(Pair, PairPattern, readable: super::inbox_ready, writable: super::round_robin_ready);
crate::proxy::proxied!(
    Pair,
    SocketType::Pair,
    recv: super::fair_attempt,
    send: crate::proxy::placing(super::round_robin_attempt)
);

impl Pair {
    /// Sends a message to the peer, waiting while it is absent or at the high-water mark.
    ///
    /// Cancel safety: dropped before the message is queued (while it waits for room), it
    /// drops the message unsent; once queued, the message is sent. To keep the message, use
    /// `try_send`, which hands it back, or the `Sink` implementation, which holds it.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = super::non_empty(message.into())?;
        self.core
            .send_with(message, super::round_robin_attempt)
            .await
    }

    /// Sends without waiting ([`Error::WouldBlock`](crate::Error::WouldBlock) with the message
    /// when the peer has no room).
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = super::non_empty(message.into())?;
        self.core.try_send_with(message, super::round_robin_attempt)
    }

    /// Receives the next message from the peer.
    ///
    /// Cancel-safe: dropped before it completes (by `select!` or a timeout), it has taken no
    /// message, and the next receive gets it.
    pub async fn recv(&self) -> Result<Message> {
        self.core.recv_with(super::fair_attempt).await
    }

    /// Receives without waiting.
    pub fn try_recv(&self) -> Result<Message> {
        self.core.try_recv_with(super::fair_attempt)
    }
}
