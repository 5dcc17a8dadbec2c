//! [`Pull`]: the receiving end of a pipeline (RFC 30).

use crate::engine::{Core, Pattern, SocketCore};
use crate::error::Result;
use crate::message::Message;
use crate::options::SocketOptions;
use crate::pattern::PeerId;
use crate::wire::SocketType;

/// Receives messages fair-queued from connected PUSH peers: one message from each peer with
/// something queued in turn, so no peer is starved.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Pull, Push};
///
/// let pull = Pull::new();
/// let push = Push::new();
/// push.connect(pull.bind("tcp://127.0.0.1:0")?)?;
/// push.send(vec![1u8, 2, 3]).await?;
/// let message = pull.recv().await?;
/// assert_eq!(&message.frames()[0][..], &[1, 2, 3]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Pull {
    core: SocketCore<PullPattern>,
    poll: super::Streaming,
}

#[derive(Debug)]
pub(crate) struct PullPattern;

impl PullPattern {
    fn new(_: &SocketOptions) -> Self {
        PullPattern
    }
}

impl Pattern for PullPattern {
    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool {
        core.inbox.add_peer(peer);
        true
    }

    fn detach(&mut self, _: &mut Core, _: PeerId) {}
}

super::socket_common!(Pull, PullPattern, SocketType::Pull);
super::socket_stream!(Pull, super::fair_attempt);
super::socket_readiness!(Pull, PullPattern, readable: super::inbox_ready, writable: super::never);
crate::proxy::proxied!(Pull, SocketType::Pull, recv: super::fair_attempt);

impl Pull {
    /// Receives the next message, waiting until one arrives (or the receive timeout).
    ///
    /// Cancel-safe: dropped before it completes (by `select!` or a timeout), it has taken no
    /// message, and the next receive gets it.
    pub async fn recv(&self) -> Result<Message> {
        self.core.recv_with(super::fair_attempt).await
    }

    /// Receives without waiting: [`Error::WouldBlock`](crate::Error::WouldBlock) when nothing
    /// is queued.
    pub fn try_recv(&self) -> Result<Message> {
        self.core.try_recv_with(super::fair_attempt)
    }

    /// Waits for at least one message, then moves up to `max` queued messages into `out`
    /// under one lock; returns how many. Amortises the per-call cost for high-rate readers.
    /// `max == 0` asks for nothing and returns 0 at once.
    ///
    /// Cancel-safe: dropped before it completes, it has moved no message into `out`.
    pub async fn recv_many(&self, out: &mut Vec<Message>, max: usize) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        self.core
            .recv_with(|state, cx| {
                let (_, first) = match state.core.recv_fair(cx) {
                    std::task::Poll::Ready(Ok(item)) => item,
                    std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                    std::task::Poll::Pending => return std::task::Poll::Pending,
                };
                out.push(first);
                let mut n = 1;
                while n < max {
                    match state.core.pop_inbox() {
                        Some((_, m)) => out.push(m),
                        None => break,
                    }
                    n += 1;
                }
                std::task::Poll::Ready(Ok(n))
            })
            .await
    }
}
