//! The ZMTP 3.1 wire protocol, sans-IO: bytes in, events and bytes out.
//!
//! Nothing in this module touches a socket, a runtime or a clock. Callers feed received bytes
//! to a [`Connection`] and pass the current time in; the connection answers with [`Event`]s
//! and with bytes to send. That is what makes the protocol testable with byte vectors,
//! property tests and fuzzers (RFC 23 ZMTP 3.0, RFC 37 ZMTP 3.1).
//!
//! * [`greeting`]: the 64-byte greeting.
//! * [`frame`]: the frame header codec, the incremental [`FrameDecoder`] and the batching
//!   [`WriteBuf`] encoder.
//! * [`command`]: READY, ERROR, SUBSCRIBE, CANCEL, PING, PONG bodies and metadata.
//! * [`mechanism`]: the security handshakes (NULL, PLAIN, CURVE) behind one interface, and
//!   CURVE's per-frame boxes.
//! * [`connection`]: the per-peer state machine (greeting → mechanism handshake → traffic,
//!   heartbeats).

pub mod command;
pub mod connection;
pub mod frame;
pub mod greeting;
pub mod mechanism;
mod socket_type;

pub use command::{Command, Metadata};
pub use connection::{Connection, ConnectionConfig, Event, HeartbeatConfig, PeerInfo, Received};
pub use frame::{Frame, FrameDecoder, WriteBuf};
pub use greeting::{Greeting, Mechanism};
pub use mechanism::Security;
pub use socket_type::SocketType;

use bytes::Bytes;

/// A fault in what a peer sent (or failed to send) on the wire.
///
/// Every variant names what was wrong so that logs explain why a connection was closed.
/// Faults are sticky: after a [`Connection`] reports one, every later call reports it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The first ten bytes were not a ZMTP 3 signature (0xFF, 8 padding bytes, 0x7F).
    #[error("bad greeting signature: byte {offset} is {found:#04x}, expected {expected:#04x}")]
    BadSignature {
        /// Offset of the offending byte in the greeting.
        offset: u8,
        /// The byte the peer sent.
        found: u8,
        /// The byte the signature requires.
        expected: u8,
    },
    /// The peer speaks a ZMTP version older than 3.0.
    #[error("unsupported ZMTP version {major}.{minor}: ferromq speaks 3.0 and 3.1")]
    UnsupportedVersion {
        /// Peer's major version.
        major: u8,
        /// Peer's minor version.
        minor: u8,
    },
    /// The peer asked for a security mechanism other than ours.
    #[error("security mechanism mismatch: we use {ours}, the peer asked for {theirs}")]
    MechanismMismatch {
        /// Our mechanism.
        ours: Mechanism,
        /// The peer's mechanism.
        theirs: Mechanism,
    },
    /// The frame flags byte had bits other than MORE, LONG and COMMAND set.
    #[error("reserved bits set in frame flags {flags:#04x}")]
    ReservedFlags {
        /// The whole flags byte.
        flags: u8,
    },
    /// A command frame had the MORE flag set.
    #[error("command frame with the MORE flag set")]
    CommandWithMore,
    /// A frame or message is larger than the configured maximum message size.
    #[error("message of {len} bytes exceeds the maximum message size of {max} bytes")]
    MessageTooLarge {
        /// The announced or accumulated size.
        len: u64,
        /// The configured maximum.
        max: u64,
    },
    /// A frame before the end of the handshake is larger than any handshake command needs
    /// (see [`connection::MAX_HANDSHAKE_FRAME_BYTES`]).
    #[error("{len}-byte frame during the handshake: handshake frames are at most {max} bytes")]
    HandshakeFrameTooLarge {
        /// The announced size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A multipart message has more frames than ferromq accepts.
    #[error("message has more than {max} frames")]
    TooManyFrames {
        /// The frame limit.
        max: usize,
    },
    /// A command body could not be parsed.
    #[error("malformed {command} command: {reason}")]
    MalformedCommand {
        /// The command name, or `"?"` when even the name was unreadable.
        command: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// The peer's READY did not carry a Socket-Type property.
    #[error("READY command without a Socket-Type property")]
    MissingSocketType,
    /// The peer's Socket-Type property names no ZeroMQ socket type.
    #[error("unknown socket type {0:?} in READY")]
    UnknownSocketType(Bytes),
    /// The peer's socket type cannot talk to ours (RFC 23 / 37 compatibility matrix).
    #[error("incompatible socket types: we are {ours}, the peer is {theirs}")]
    IncompatibleSocketType {
        /// Our socket type.
        ours: SocketType,
        /// The peer's socket type.
        theirs: SocketType,
    },
    /// A second READY arrived after the handshake had completed.
    #[error("second READY command after the handshake completed")]
    DuplicateReady,
    /// The peer sent a data frame before the handshake completed.
    #[error("message frame before the handshake completed")]
    MessageBeforeReady,
    /// The peer sent a command other than READY or ERROR during the handshake.
    #[error("unexpected {command} command during the handshake")]
    UnexpectedCommand {
        /// The command name.
        command: &'static str,
    },
    /// The peer sent an ERROR command and is closing the connection.
    #[error("peer reported an error: {reason}")]
    PeerError {
        /// The peer's reason text (lossily decoded).
        reason: String,
    },
    /// The handshake did not complete within the handshake interval.
    #[error("handshake did not complete in time")]
    HandshakeTimeout,
    /// No traffic arrived from the peer within the heartbeat timeout or its announced TTL.
    #[error("peer sent nothing within the heartbeat timeout")]
    HeartbeatTimeout,
    /// Our authenticator refused the peer (RFC 27 status 300, 400 or 500). The peer is told
    /// the status in an ERROR, except for 300, which closes silently.
    #[error("authentication refused the peer with status {status}: {reason}")]
    AuthenticationFailed {
        /// The ZAP status code.
        status: u16,
        /// The authenticator's status text.
        reason: String,
    },
    /// The peer refused us: its ERROR carried a ZAP status code (wrong password, key not
    /// allowed, address denied). Not retried, as RFC 26 asks.
    #[error("the peer refused our credentials (status {status})")]
    Unauthorized {
        /// The status code in the peer's ERROR (400 or 500).
        status: u16,
    },
    /// A box did not open or held the wrong keys: a wrong server key, a forged or corrupted
    /// command, a replayed cookie.
    #[error("CURVE: {what}")]
    Crypto {
        /// What failed, and its likely cause.
        what: &'static str,
    },
    /// A CURVE short nonce did not count up: a replayed, reordered or duplicated command.
    #[error("CURVE nonce {nonce} is not above the peer's last nonce {last}: replayed or reordered")]
    NonceNotIncreasing {
        /// The nonce received.
        nonce: u64,
        /// The last nonce the peer used.
        last: u64,
    },
    /// After a CURVE handshake, a frame that is not a MESSAGE box: the peer sent traffic in
    /// clear.
    #[error("CURVE: a frame after the handshake is not a MESSAGE box")]
    ExpectedMessageBox,
}
