//! Socket statistics: what [`Socket::stats`](crate::Socket::stats) returns, a snapshot of
//! what a socket and each of its peers carried, queued and dropped.
//!
//! The counters are kept as messages pass, under the lock they take anyway, and cost a few
//! additions per message; a snapshot walks the peers once under that lock. Totals include
//! peers that have since gone, so they never go down.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ferromq::Result<()> {
//! use ferromq::{Pull, Push};
//!
//! let pull = Pull::new();
//! let push = Push::new();
//! push.connect(pull.bind("tcp://127.0.0.1:0")?)?;
//! push.send("hello").await?;
//! pull.recv().await?;
//!
//! let stats = pull.stats();
//! assert_eq!((stats.messages_in, stats.bytes_in), (1, 5));
//! let peer = &stats.peers[0];
//! assert_eq!(peer.messages_in, 1);
//! assert!(peer.address.as_deref().unwrap().starts_with("127.0.0.1:"));
//! # Ok(())
//! # }
//! ```

use crate::endpoint::Endpoint;
use crate::wire::SocketType;
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// A snapshot of one socket's counters and of each connected peer's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketStats {
    /// The socket's type.
    pub socket_type: SocketType,
    /// Messages received from peers since the socket was created (a multipart message counts
    /// once).
    pub messages_in: u64,
    /// Messages queued for peers.
    pub messages_out: u64,
    /// Payload bytes received (frame bodies, without ZMTP framing).
    pub bytes_in: u64,
    /// Payload bytes queued for peers.
    pub bytes_out: u64,
    /// Messages dropped because their peer was at its send HWM (PUB, XPUB, ROUTER and REP
    /// drop rather than wait), or because their ROUTER route did not exist.
    pub dropped: u64,
    /// Received messages waiting for the application, over all peers.
    pub queued_in: usize,
    /// The peers connected now with a completed handshake.
    pub peers: Vec<PeerStats>,
}

/// One connected peer's counters, in a [`SocketStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStats {
    /// The endpoint the connection came from: as bound, or as given to connect.
    pub endpoint: Endpoint,
    /// The peer's `ip:port` (TCP only).
    pub address: Option<String>,
    /// The routing id the peer announced in its handshake, if any.
    pub routing_id: Option<Bytes>,
    /// The peer's socket type.
    pub socket_type: SocketType,
    /// Messages received from this peer.
    pub messages_in: u64,
    /// Messages queued for this peer.
    pub messages_out: u64,
    /// Payload bytes received from this peer.
    pub bytes_in: u64,
    /// Payload bytes queued for this peer.
    pub bytes_out: u64,
    /// Messages for this peer dropped at its send HWM.
    pub dropped: u64,
    /// Messages from this peer waiting for the application.
    pub queued_in: usize,
    /// The receive HWM that `queued_in` counts against (0: none).
    pub rcvhwm: usize,
    /// Messages waiting for this peer's connection to write them.
    pub queued_out: usize,
    /// The send HWM that `queued_out` counts against (0: none).
    pub sndhwm: usize,
    /// Connections to this connected endpoint before this one (0 for accepted peers).
    pub reconnects: u64,
    /// When the handshake completed.
    pub connected_since: SystemTime,
    /// The round trip of the last heartbeat PING the peer answered (`None` without
    /// heartbeats or before the first answer).
    pub heartbeat_rtt: Option<Duration>,
}

/// What one connection carried, kept in the engine's peer slot.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Traffic {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub dropped: u64,
}

impl Traffic {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Traffic) {
        self.messages_in += other.messages_in;
        self.messages_out += other.messages_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.dropped += other.dropped;
    }
}
