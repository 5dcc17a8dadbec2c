//! Errors: [`Error`] for everything a call can fail with, [`SendError`] to give an unsent
//! message back.
//!
//! Each error prints its cause in its own message and does not also return it from
//! [`source`](std::error::Error::source), so a reporter that walks the chain (anyhow, eyre,
//! tracing) prints every cause once.

use crate::Message;
use crate::wire::{ProtocolError, SocketType};
use std::io;
use std::time::Duration;

/// Result alias for ferromq calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a ferromq call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
// A tag as wide as a pointer keeps every variant's fields, and the `Message` of an
// `Ok(message)` that shares this tag's spare values, at 8-byte offsets. With the default
// one-byte tag, a variant's small field could sit at offset 1, and the compiler copied each
// received `Poll<Result<Message>>` as 55 bytes from offset 1, loads straddling the stores
// that had just written the message: the receive call stalled on every message (`cargo bench
// --bench calls`: a SUB receive of a queued message went from 146–158 to 74–128 ns).
#[repr(u64)]
pub enum Error {
    /// The peer broke the ZMTP protocol.
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(io::Error),
    /// An endpoint string could not be parsed.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An endpoint names a transport ferromq does not support.
    #[error(
        "unsupported transport {transport:?} in endpoint {endpoint:?} (use tcp, ipc or inproc)"
    )]
    UnsupportedTransport {
        /// The transport part.
        transport: String,
        /// The endpoint as given.
        endpoint: String,
    },
    /// `unbind`/`disconnect` named an endpoint that is not bound or connected.
    #[error("endpoint {0:?} is not bound or connected on this socket")]
    EndpointNotFound(String),
    /// A host name did not resolve to any address.
    #[error("could not resolve host of endpoint {0:?}")]
    Unresolvable(String),
    /// A CURVE key is neither 32 bytes nor 40 valid Z85 characters.
    #[error("invalid CURVE key: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: String,
    },
    /// An option value is out of range.
    #[error("invalid value for option {option}: {reason}")]
    InvalidOption {
        /// The option name.
        option: &'static str,
        /// Why the value was refused.
        reason: &'static str,
    },
    /// A non-blocking call could not complete now (libzmq's EAGAIN).
    #[error("operation would block")]
    WouldBlock,
    /// bind/connect was called outside a tokio runtime.
    #[error("no tokio runtime: call bind/connect from within a tokio runtime")]
    NoRuntime,
    /// A [`blocking`](crate::blocking) call that would wait was made on a thread driving a
    /// current-thread tokio runtime (or a `LocalSet`), where waiting would stall every task of
    /// that runtime, perhaps the very peer being waited for. Call it from a plain thread, or
    /// use the async socket.
    #[error(
        "blocking ferromq call inside a current-thread tokio runtime: use the async socket or a plain thread"
    )]
    BlockingInRuntime,
    /// The socket refused a peer that completed its handshake (a PAIR that already has its
    /// peer, a ROUTER peer whose routing id is taken).
    #[error("peer refused by the socket")]
    PeerRefused,
    /// The socket is closed.
    #[error("socket is closed")]
    Closed,
    /// A send or receive did not complete within the socket's timeout.
    #[error("operation timed out after {0:?}")]
    Timeout(Duration),
    /// The call is not allowed in the socket's current state (e.g. REQ sending twice).
    #[error("{socket} cannot do that now: {reason}")]
    WrongState {
        /// The socket type.
        socket: SocketType,
        /// What the state machine requires.
        reason: &'static str,
    },
    /// A message had to be routed to a peer that is not connected (ROUTER_MANDATORY).
    #[error("no connected peer has routing id {0:?}")]
    HostUnreachable(bytes::Bytes),
    /// A message does not have the shape the socket needs (e.g. a ROUTER message without a
    /// routing-id frame).
    #[error("malformed message: {0}")]
    MalformedMessage(&'static str),
    /// The message is larger than the peer it had to go to accepts (the `max_msg_size` that
    /// peer announced; for PUSH, DEALER, REQ and PAIR: larger than every peer accepts). Sent,
    /// it would have made the peer drop the connection.
    #[error("message of {size} bytes is larger than the {limit} bytes the peer accepts")]
    MessageTooLarge {
        /// The message's payload bytes (all frames).
        size: u64,
        /// The largest the peer accepts.
        limit: u64,
    },
}

/// A failed send: the reason and the message, handed back to the caller untouched.
#[derive(Debug, thiserror::Error)]
#[error("send failed: {error}")]
pub struct SendError {
    /// Why the send failed (printed in the message, so not also a `source`).
    pub error: Error,
    /// The message that was not sent.
    pub message: Message,
}

impl SendError {
    /// Pairs an error with the message it kept from being sent.
    pub fn new(error: Error, message: Message) -> Self {
        SendError { error, message }
    }

    /// Takes the unsent message back.
    pub fn into_message(self) -> Message {
        self.message
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        e.error
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a chain-walking reporter prints: the error, then each `source` in turn.
    fn report(error: &dyn std::error::Error) -> Vec<String> {
        let mut lines = vec![error.to_string()];
        let mut cause = error.source();
        while let Some(e) = cause {
            lines.push(e.to_string());
            cause = e.source();
        }
        lines
    }

    #[test]
    fn every_cause_is_printed_once_through_the_source_chain() {
        let wrapped = io::Error::other(ProtocolError::HandshakeTimeout);
        let errors: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(Error::from(io::Error::other("disk on fire"))),
            Box::new(Error::from(wrapped)),
            Box::new(Error::from(ProtocolError::HeartbeatTimeout)),
            Box::new(SendError::new(
                Error::from(io::Error::other("pipe burst")),
                Message::default(),
            )),
        ];
        for error in &errors {
            let lines = report(error.as_ref());
            for (i, line) in lines.iter().enumerate() {
                for later in &lines[i + 1..] {
                    assert!(
                        !line.contains(later.as_str()),
                        "{later:?} printed twice in {lines:?}"
                    );
                }
            }
        }
    }
}
