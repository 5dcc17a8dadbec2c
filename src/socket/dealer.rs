//! [`Dealer`]: asynchronous request–reply (RFC 28), without REQ's lock-step.

use crate::engine::{Core, Pattern, SocketCore};
use crate::error::{Result, SendError};
use crate::message::Message;
use crate::options::SocketOptions;
use crate::pattern::PeerId;
use crate::wire::SocketType;

/// Sends round-robin to peers with room and receives fair-queued from all peers, any number
/// of messages in any order. Nothing is added to or removed from messages: talking to a REP,
/// put the empty delimiter frame in front yourself.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Dealer, Message, Router};
///
/// let router = Router::new();
/// let dealer = Dealer::new();
/// dealer.connect(router.bind("tcp://127.0.0.1:0")?)?;
/// dealer.send("job").await?;
/// let mut job = router.recv().await?; // [routing id, "job"]
/// job.pop_back();
/// job.push_back("done");
/// router.send(job).await?;
/// assert_eq!(dealer.recv().await?.frames()[0], "done");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Dealer {
    core: SocketCore<DealerPattern>,
    poll: super::Streaming,
}

#[derive(Debug)]
pub(crate) struct DealerPattern;

impl DealerPattern {
    fn new(_: &SocketOptions) -> Self {
        DealerPattern
    }
}

impl Pattern for DealerPattern {
    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool {
        core.lb.add_peer(peer);
        core.inbox.add_peer(peer);
        true
    }

    fn detach(&mut self, core: &mut Core, peer: PeerId) {
        core.lb.remove_peer(peer);
    }
}

super::socket_common!(Dealer, DealerPattern, SocketType::Dealer);
super::socket_stream!(Dealer, super::fair_attempt);
super::socket_sink!(Dealer, Ok, super::round_robin_attempt);
super::socket_readiness!(Dealer, DealerPattern, readable: super::inbox_ready, writable: super::round_robin_ready);
crate::proxy::proxied!(
    Dealer,
    SocketType::Dealer,
    recv: super::fair_attempt,
    send: crate::proxy::placing(super::round_robin_attempt)
);

impl Dealer {
    /// Sends a message to the next peer with room, waiting while none has (or until the send
    /// timeout).
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

    /// Sends without waiting: [`Error::WouldBlock`](crate::Error::WouldBlock) with the
    /// message when no peer has room.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = super::non_empty(message.into())?;
        self.core.try_send_with(message, super::round_robin_attempt)
    }

    /// Receives the next message from any peer, waiting for one (or until the receive
    /// timeout).
    ///
    /// Cancel-safe: dropped before it completes (by `select!` or a timeout), it has taken no
    /// message, and the next receive gets it.
    pub async fn recv(&self) -> Result<Message> {
        self.core.recv_with(super::fair_attempt).await
    }

    /// Receives without waiting ([`Error::WouldBlock`](crate::Error::WouldBlock) when nothing
    /// is queued).
    pub fn try_recv(&self) -> Result<Message> {
        self.core.try_recv_with(super::fair_attempt)
    }
}
