//! [`Push`]: the sending end of a pipeline (RFC 30).

use crate::engine::{Core, Pattern, SocketCore};
use crate::error::SendError;
use crate::message::Message;
use crate::options::SocketOptions;
use crate::pattern::PeerId;
use crate::wire::SocketType;

/// Sends messages round-robin to connected PULL peers that have room.
///
/// `send` waits while no peer has room: each is at its send high-water mark, or there is none
/// yet. A connected endpoint counts as a peer from `connect` on, so sends queue for it while
/// it connects (`immediate` off, libzmq's default; with `immediate` on, only once its
/// handshake completed). After the send timeout, if one is set, `send` fails with the message
/// handed back.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Pull, Push};
///
/// let pull = Pull::new();
/// let endpoint = pull.bind("tcp://127.0.0.1:0")?;
/// let push = Push::new();
/// push.connect(&endpoint)?;
/// push.send("work item").await?;
/// assert_eq!(pull.recv().await?.frames()[0], "work item");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Push {
    core: SocketCore<PushPattern>,
    poll: super::Streaming,
}

#[derive(Debug)]
pub(crate) struct PushPattern;

impl PushPattern {
    fn new(_: &SocketOptions) -> Self {
        PushPattern
    }
}

impl Pattern for PushPattern {
    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool {
        core.lb.add_peer(peer);
        true
    }

    fn detach(&mut self, core: &mut Core, peer: PeerId) {
        core.lb.remove_peer(peer);
    }

    /// PULL peers never send messages; anything that arrives is dropped.
    fn deliver(&mut self, _: &mut Core, _: PeerId, _: Message) -> Result<(), Message> {
        Ok(())
    }
}

super::socket_common!(Push, PushPattern, SocketType::Push);
super::socket_sink!(Push, Ok, super::round_robin_attempt);
super::socket_readiness!(Push, PushPattern, readable: super::never, writable: super::round_robin_ready);
crate::proxy::proxied!(Push, SocketType::Push, send: crate::proxy::placing(super::round_robin_attempt));

impl Push {
    /// Sends a message to the next peer with room, waiting while none has.
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

    /// Sends without waiting: fails with [`Error::WouldBlock`](crate::Error::WouldBlock) and
    /// the message when no peer has room.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = super::non_empty(message.into())?;
        self.core.try_send_with(message, super::round_robin_attempt)
    }
}
