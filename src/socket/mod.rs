//! The typed socket API: one type per ZeroMQ socket type, each exposing only the verbs that
//! make sense for it (a [`Push`] cannot receive, a [`Pull`] cannot send).
//!
//! Every socket:
//! * is created with [`SocketOptions`](crate::SocketOptions) (libzmq's defaults when made
//!   with `new()`);
//! * binds and connects any number of endpoints (`bind` returns the endpoint actually bound,
//!   with the real port for `tcp://…:0`);
//! * takes `&self` for sending and receiving, so one task can send while another receives
//!   (share the socket with an `Arc`);
//! * closes on drop, letting queued messages flush in the background for the linger period;
//!   `close().await` does the same and waits for it, which a program must do before its
//!   runtime shuts down if the last messages matter. `close` takes `&self`: any task holding
//!   the socket can close it, and every task waiting in it then gets `Error::Closed`.
//! * `unbind` and `disconnect` take effect before they return: the port or ipc path is free,
//!   and no later send can choose a peer of that endpoint (what was already queued for it is
//!   written within the linger period, as libzmq does).

mod dealer;
mod pair;
mod pubsub;
mod pull;
mod push;
mod reqrep;
mod router;

pub use dealer::Dealer;
pub use pair::Pair;
pub use pubsub::{Pub, Sub, XPub, XSub};
pub use pull::Pull;
pub use push::Push;
pub use reqrep::{Rep, Req};
pub use router::Router;

use crate::engine::State;
use crate::error::{Error, Result, SendError};
use crate::message::Message;
use std::task::{Context, Poll};

/// Refuses a message with no frames (it has nothing to put on the wire), handing it back.
pub(crate) fn non_empty(message: Message) -> Result<Message, SendError> {
    if message.is_empty() {
        Err(SendError::new(
            Error::MalformedMessage("a message needs at least one frame"),
            message,
        ))
    } else {
        Ok(message)
    }
}

/// One attempt of a round-robin send (PUSH, PAIR, DEALER).
pub(crate) fn round_robin_attempt<P>(
    state: &mut State<P>,
    slot: &mut Option<Message>,
    cx: &mut Context<'_>,
) -> Poll<Result<()>> {
    state.core.send_round_robin(slot, cx).map(|r| r.map(drop))
}

/// One attempt of a fair-queued receive, dropping the peer id (PULL, PAIR, DEALER).
pub(crate) fn fair_attempt<P>(state: &mut State<P>, cx: &mut Context<'_>) -> Poll<Result<Message>> {
    state.core.recv_fair(cx).map(|r| r.map(|(_, m)| m))
}

/// Methods every socket type shares, delegated to its `SocketCore`.
macro_rules! socket_common {
    ($ty:ident, $pattern:ty, $socket_type:expr) => {
        impl $ty {
            /// A socket with libzmq's default options.
            pub fn new() -> Self {
                Self::with_options($crate::options::SocketOptions::default())
                    .expect("default options are valid")
            }

            /// A socket with the given options; fails naming the first invalid one.
            pub fn with_options(options: $crate::options::SocketOptions) -> $crate::Result<Self> {
                let pattern = <$pattern>::new(&options);
                Ok($ty {
                    core: $crate::engine::SocketCore::new($socket_type, options, pattern)?,
                })
            }

            /// Binds to an endpoint and starts accepting peers; returns the endpoint actually
            /// bound (with the real port for `tcp://…:0`). Must be called within a tokio
            /// runtime.
            pub fn bind(
                &self,
                endpoint: impl $crate::endpoint::ToEndpoint,
            ) -> $crate::Result<$crate::Endpoint> {
                self.core.bind(endpoint)
            }

            /// Connects to an endpoint in the background: returns at once, connects when the
            /// peer is there and reconnects whenever the connection is lost. Must be called
            /// within a tokio runtime.
            pub fn connect(
                &self,
                endpoint: impl $crate::endpoint::ToEndpoint,
            ) -> $crate::Result<()> {
                self.core.connect(endpoint)
            }

            /// Stops listening on a bound endpoint and closes the connections accepted there.
            pub fn unbind(
                &self,
                endpoint: impl $crate::endpoint::ToEndpoint,
            ) -> $crate::Result<()> {
                self.core.unbind(endpoint)
            }

            /// Closes a connected endpoint and stops reconnecting to it.
            pub fn disconnect(
                &self,
                endpoint: impl $crate::endpoint::ToEndpoint,
            ) -> $crate::Result<()> {
                self.core.disconnect(endpoint)
            }

            /// The last endpoint bound or connected (libzmq's ZMQ_LAST_ENDPOINT).
            pub fn last_endpoint(&self) -> Option<$crate::Endpoint> {
                self.core.last_endpoint()
            }

            /// Peers connected with a completed handshake.
            pub fn peer_count(&self) -> usize {
                self.core.peer_count()
            }

            /// The options the socket was created with.
            pub fn options(&self) -> &$crate::options::SocketOptions {
                self.core.options()
            }

            /// Closes the socket: stops accepting and connecting (the listening sockets are
            /// closed at once), writes what is queued for up to the linger period, then
            /// returns. Works through a shared reference, so a socket shared with an `Arc`
            /// can be closed from any task: calls waiting on it, and every later call, return
            /// [`Error::Closed`](crate::Error::Closed). Closing again waits again.
            pub async fn close(&self) {
                self.core.close().await
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}
pub(crate) use socket_common;
