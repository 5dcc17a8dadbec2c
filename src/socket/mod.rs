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
//! * is a `futures::Stream<Item = Result<Message>>` if it receives and a
//!   `futures::Sink<Message>` if it sends (no second queue: a stream takes each item from the
//!   socket's inbox, a sink holds at most the one message it was given), and says in each
//!   async method's documentation whether cancelling it can lose a message.

mod dealer;
mod give_way;
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
    state.core.recv_fair_message(cx, |_| true)
}

/// Readiness for `blocking::Poller`: whether a receive would not wait.
pub(crate) fn inbox_ready<P>(state: &mut State<P>) -> bool {
    !state.core.inbox.is_empty()
}

/// Readiness for `blocking::Poller`: whether a round-robin send would not wait (some peer
/// in the rotation can take a message), without moving the rotation on.
pub(crate) fn round_robin_ready<P>(state: &mut State<P>) -> bool {
    let core = &state.core;
    let hwm = core.sndhwm;
    core.lb
        .peers()
        .iter()
        .any(|&id| core.peers.get(id).is_some_and(|p| p.can_accept(hwm)))
}

/// Readiness for a direction the socket does not have, or for a send that never waits.
pub(crate) fn never<P>(_: &mut State<P>) -> bool {
    false
}

/// See [`never()`].
pub(crate) fn always<P>(_: &mut State<P>) -> bool {
    true
}

/// `poll_readiness` for `blocking::Poller`: which of `recv` (readable) and `send` (writable)
/// would complete now, from the socket type's readiness checks (`fn(&mut State) -> bool`,
/// run under the lock; they take and place nothing a call would return, but may discard what
/// a receive would discard anyway). A closing socket is ready for both: the call returns
/// `Error::Closed` at once. When nothing asked for is ready, the waker is parked on the
/// receive and/or send wake-up lists, under `wait`'s key.
macro_rules! socket_readiness {
    ($ty:ident, $pattern:ty, readable: $readable:expr, writable: $writable:expr) => {
        impl $ty {
            pub(crate) fn poll_readiness(
                &self,
                wait: &mut $crate::engine::PollState,
                cx: &mut std::task::Context<'_>,
                readable: bool,
                writable: bool,
            ) -> std::task::Poll<(bool, bool)> {
                let readable_now: fn(&mut $crate::engine::State<$pattern>) -> bool = $readable;
                let writable_now: fn(&mut $crate::engine::State<$pattern>) -> bool = $writable;
                self.core.poll_with(wait, cx, |state, cx| {
                    let closing = state.core.is_closing();
                    let r = readable && (closing || readable_now(state));
                    let w = writable && (closing || writable_now(state));
                    if r || w {
                        return std::task::Poll::Ready((r, w));
                    }
                    if readable {
                        state.core.park_recv(cx);
                    }
                    if writable {
                        state.core.park_send(cx);
                    }
                    std::task::Poll::Pending
                })
            }

            /// Forgets the wakers `poll_readiness` parked under `wait`'s key.
            pub(crate) fn forget_readiness(&self, wait: &mut $crate::engine::PollState) {
                self.core.forget_poll(wait)
            }
        }
    };
}
pub(crate) use socket_readiness;

/// Methods every socket type shares, delegated to its `SocketCore`.
macro_rules! socket_common {
    // Every socket but PUB keeps `Stream`/`Sink` state in a `poll` field.
    ($ty:ident, $pattern:ty, $socket_type:expr) => {
        super::socket_common!($ty, $pattern, $socket_type, { poll: super::Streaming::default() });
    };
    ($ty:ident, $pattern:ty, $socket_type:expr, { $($field:ident: $value:expr),* }) => {
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
                    $($field: $value),*
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

            /// The options in force now: those the socket was created with, as changed since
            /// by [`update_options`](Self::update_options) and the `set_*` methods.
            pub fn options(&self) -> $crate::options::SocketOptions {
                self.core.options()
            }

            /// Changes options on the live socket (libzmq's `zmq_setsockopt` after creation):
            /// `change` edits a copy of the current options, which is validated and put in
            /// force, or refused with `Error::InvalidOption` leaving every option as it was.
            /// HWMs apply at once, to existing peers too; timeouts to calls that start waiting
            /// afterwards; linger to the next close, unbind or disconnect; socket-type flags
            /// (`router_mandatory`, `req_relaxed`, `xpub_verbose`, …) to the next message;
            /// options about connections (heartbeats, handshake interval, reconnect
            /// intervals, routing id, keepalive, buffers, backlog) to the next connection,
            /// connect attempt or bind, as in libzmq. The security options and `xpub_manual`
            /// are fixed at creation (spec/sockets.md §11).
            ///
            /// ```
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() -> ferromq::Result<()> {
            #[doc = concat!("let socket = ferromq::", stringify!($ty), "::new();")]
            /// socket.update_options(|o| {
            ///     o.sndhwm = 10;
            ///     o.linger = Some(std::time::Duration::ZERO);
            /// })?;
            /// assert_eq!(socket.options().sndhwm, 10);
            /// # Ok(())
            /// # }
            /// ```
            pub fn update_options(
                &self,
                change: impl FnOnce(&mut $crate::options::SocketOptions),
            ) -> $crate::Result<()> {
                self.core.update_options(change)
            }

            super::live_setters! {
                /// Sets the send high-water mark (ZMQ_SNDHWM) on the live socket; it applies
                /// to every peer at once (a peer already holding more keeps its messages).
                set_sndhwm => sndhwm: usize,
                /// Sets the receive high-water mark (ZMQ_RCVHWM) on the live socket; it
                /// applies to every peer at once.
                set_rcvhwm => rcvhwm: usize,
                /// Sets the send timeout (ZMQ_SNDTIMEO) for sends that start waiting from now.
                set_send_timeout => send_timeout: impl Into<Option<std::time::Duration>>,
                /// Sets the receive timeout (ZMQ_RCVTIMEO) for receives that start waiting
                /// from now.
                set_recv_timeout => recv_timeout: impl Into<Option<std::time::Duration>>,
                /// Sets the linger period (ZMQ_LINGER) of the next close, unbind or
                /// disconnect.
                set_linger => linger: impl Into<Option<std::time::Duration>>,
                /// Sets the reconnect interval (ZMQ_RECONNECT_IVL), from the next connect
                /// attempt.
                set_reconnect_ivl => reconnect_ivl: impl Into<Option<std::time::Duration>>,
                /// Sets the reconnect backoff bound (ZMQ_RECONNECT_IVL_MAX), from the next
                /// connect attempt.
                set_reconnect_ivl_max => reconnect_ivl_max: impl Into<Option<std::time::Duration>>,
                /// Sets the heartbeat interval (ZMQ_HEARTBEAT_IVL) of new connections.
                set_heartbeat_ivl => heartbeat_ivl: impl Into<Option<std::time::Duration>>,
                /// Sets the heartbeat timeout (ZMQ_HEARTBEAT_TIMEOUT) of new connections.
                set_heartbeat_timeout => heartbeat_timeout: impl Into<Option<std::time::Duration>>,
                /// Sets the heartbeat TTL (ZMQ_HEARTBEAT_TTL) announced by new connections.
                set_heartbeat_ttl => heartbeat_ttl: impl Into<Option<std::time::Duration>>,
                /// Sets the handshake interval (ZMQ_HANDSHAKE_IVL) of new connections.
                set_handshake_ivl => handshake_ivl: impl Into<Option<std::time::Duration>>,
            }

            /// A new stream of this socket's endpoint and connection events, from now on
            /// (libzmq's `zmq_socket_monitor`; see [`crate::monitor`]).
            pub fn monitor(&self) -> $crate::monitor::Monitor {
                self.core.monitor()
            }

            /// A snapshot of what the socket and each connected peer carried, queued and
            /// dropped (see [`crate::stats`]).
            pub fn stats(&self) -> $crate::stats::SocketStats {
                self.core.stats()
            }

            /// Closes the socket: stops accepting and connecting (the listening sockets are
            /// closed at once), writes what is queued for up to the linger period, then
            /// returns. Works through a shared reference, so a socket shared with an `Arc`
            /// can be closed from any task: calls waiting on it, and every later call, return
            /// [`Error::Closed`](crate::Error::Closed). Closing again waits again.
            ///
            /// Cancel-safe: the socket is closed at the first poll and its queues flush in the
            /// background; dropping the future only stops waiting for that.
            pub async fn close(&self) {
                self.core.close().await
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $crate::Socket for $ty {
            fn with_options(options: $crate::options::SocketOptions) -> $crate::Result<Self> {
                $ty::with_options(options)
            }

            fn bind(
                &self,
                endpoint: impl $crate::endpoint::ToEndpoint,
            ) -> $crate::Result<$crate::Endpoint> {
                self.core.bind(endpoint)
            }

            fn connect(&self, endpoint: impl $crate::endpoint::ToEndpoint) -> $crate::Result<()> {
                self.core.connect(endpoint)
            }

            fn unbind(&self, endpoint: impl $crate::endpoint::ToEndpoint) -> $crate::Result<()> {
                self.core.unbind(endpoint)
            }

            fn disconnect(
                &self,
                endpoint: impl $crate::endpoint::ToEndpoint,
            ) -> $crate::Result<()> {
                self.core.disconnect(endpoint)
            }

            fn last_endpoint(&self) -> Option<$crate::Endpoint> {
                self.core.last_endpoint()
            }

            fn peer_count(&self) -> usize {
                self.core.peer_count()
            }

            fn options(&self) -> $crate::options::SocketOptions {
                self.core.options()
            }

            fn update_options(
                &self,
                change: impl FnOnce(&mut $crate::options::SocketOptions),
            ) -> $crate::Result<()> {
                self.core.update_options(change)
            }

            fn monitor(&self) -> $crate::monitor::Monitor {
                self.core.monitor()
            }

            fn stats(&self) -> $crate::stats::SocketStats {
                self.core.stats()
            }

            fn close(&self) -> impl std::future::Future<Output = ()> + Send {
                self.core.close()
            }
        }
    };
}
pub(crate) use socket_common;

/// `set_*` methods changing one option on a live socket through `update_options`:
/// `method => field: type` (`impl Into<…>` types are converted).
macro_rules! live_setters {
    ($($(#[$doc:meta])* $method:ident => $field:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            ///
            /// Fails with `Error::InvalidOption`, changing nothing, if the value is invalid.
            pub fn $method(&self, value: $ty) -> $crate::Result<()> {
                let value = value.into();
                self.core.update_options(|o| o.$field = value)
            }
        )*
    };
}
pub(crate) use live_setters;

/// What every socket type has, for code generic over socket types (a tool that opens the
/// socket type it is told, a proxy, a test run against every type). Each socket also has
/// these as inherent methods, so calling them on a concrete type needs no import.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Pull, Push, Socket, SocketOptions};
///
/// /// Opens any socket type bound to a fresh local port.
/// fn bound<S: Socket>() -> ferromq::Result<(S, ferromq::Endpoint)> {
///     let socket = S::with_options(SocketOptions::default())?;
///     let endpoint = socket.bind("tcp://127.0.0.1:0")?;
///     Ok((socket, endpoint))
/// }
///
/// let (pull, endpoint): (Pull, _) = bound()?;
/// let push = Push::new();
/// push.connect(&endpoint)?;
/// push.send("generic").await?;
/// assert_eq!(pull.recv().await?.frames()[0], "generic");
/// assert_eq!(Socket::last_endpoint(&pull), Some(endpoint));
/// Socket::close(&push).await;
/// # Ok(())
/// # }
/// ```
pub trait Socket: Sized + Send + Sync + 'static {
    /// A socket with the given options; fails naming the first invalid one.
    fn with_options(options: crate::options::SocketOptions) -> crate::Result<Self>;

    /// Binds to an endpoint; returns the endpoint actually bound (the real port for
    /// `tcp://…:0`).
    fn bind(&self, endpoint: impl crate::endpoint::ToEndpoint) -> crate::Result<crate::Endpoint>;

    /// Connects to an endpoint in the background, reconnecting whenever the connection is
    /// lost.
    fn connect(&self, endpoint: impl crate::endpoint::ToEndpoint) -> crate::Result<()>;

    /// Stops listening on a bound endpoint and closes the connections accepted there.
    fn unbind(&self, endpoint: impl crate::endpoint::ToEndpoint) -> crate::Result<()>;

    /// Closes a connected endpoint and stops reconnecting to it.
    fn disconnect(&self, endpoint: impl crate::endpoint::ToEndpoint) -> crate::Result<()>;

    /// The last endpoint bound or connected (libzmq's ZMQ_LAST_ENDPOINT).
    fn last_endpoint(&self) -> Option<crate::Endpoint>;

    /// Peers connected with a completed handshake.
    fn peer_count(&self) -> usize;

    /// The options in force now.
    fn options(&self) -> crate::options::SocketOptions;

    /// Changes options on the live socket, as each socket's `update_options`.
    fn update_options(
        &self,
        change: impl FnOnce(&mut crate::options::SocketOptions),
    ) -> crate::Result<()>;

    /// A new stream of the socket's endpoint and connection events, from now on (see
    /// [`crate::monitor`]).
    fn monitor(&self) -> crate::monitor::Monitor;

    /// A snapshot of what the socket and each connected peer carried, queued and dropped
    /// (see [`crate::stats`]).
    fn stats(&self) -> crate::stats::SocketStats;

    /// Closes the socket and waits until what is queued is written or the linger period
    /// ends. Cancel-safe, as each socket's `close`.
    fn close(&self) -> impl std::future::Future<Output = ()> + Send;
}

/// What a socket handle keeps for its `Stream` and `Sink` implementations: their waiting
/// calls (so a parked `next()` or `send()` keeps one registration across polls), and the
/// message `Sink::start_send` took until it is placed in a peer's queue.
#[derive(Debug, Default)]
pub(crate) struct Streaming {
    pub recv: crate::engine::PollState,
    pub send: crate::engine::PollState,
    pub pending: Option<Message>,
}

/// `futures::Stream` for a receiving socket: each item is what `recv` would return, with no
/// receive timeout; the stream ends (`None`) once the socket is closed.
macro_rules! socket_stream {
    ($ty:ident, $attempt:expr) => {
        /// Messages as a `Stream`: `socket.next().await` is `socket.recv().await` without the
        /// receive timeout, ending with `None` once the socket is closed. No second queue:
        /// each item is taken from the socket's inbox as it is polled. Cancel-safe, as
        /// [`recv`](Self::recv).
        impl futures::Stream for $ty {
            type Item = $crate::Result<$crate::Message>;

            fn poll_next(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Self::Item>> {
                let this = self.get_mut();
                match this.core.poll_with(&mut this.poll.recv, cx, $attempt) {
                    std::task::Poll::Ready(Err($crate::Error::Closed)) => {
                        std::task::Poll::Ready(None)
                    }
                    std::task::Poll::Ready(result) => std::task::Poll::Ready(Some(result)),
                    std::task::Poll::Pending => std::task::Poll::Pending,
                }
            }
        }
    };
}
pub(crate) use socket_stream;

/// `futures::Sink<Message>` for a socket whose send may wait for room: `start_send` keeps the
/// message in the handle, `poll_ready`/`poll_flush` place it as `send` would (without the
/// send timeout), and an error hands it back inside the `SendError`.
macro_rules! socket_sink {
    ($ty:ident, $prepare:expr, $attempt:expr) => {
        /// Messages as a `Sink`: `SinkExt::send(&mut socket, message).await` is
        /// `socket.send(message).await` without the send timeout. The handle holds at most
        /// the one message `start_send` gave it until a peer's queue takes it (no copy, no
        /// second queue); `poll_flush` and `poll_close` place it, and `poll_close` leaves the
        /// socket open (close it with `close()`, or drop it). A failed send gives the message
        /// back in the `SendError`.
        impl futures::Sink<$crate::Message> for $ty {
            type Error = $crate::SendError;

            fn poll_ready(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.get_mut().poll_place(cx)
            }

            fn start_send(
                self: std::pin::Pin<&mut Self>,
                message: $crate::Message,
            ) -> Result<(), Self::Error> {
                let this = self.get_mut();
                let prepare: fn($crate::Message) -> Result<$crate::Message, $crate::SendError> =
                    $prepare;
                this.poll.pending = Some(prepare(message)?);
                Ok(())
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.get_mut().poll_place(cx)
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.get_mut().poll_place(cx)
            }
        }

        impl $ty {
            /// Places the message `start_send` took, if any.
            fn poll_place(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), $crate::SendError>> {
                if self.poll.pending.is_none() {
                    return std::task::Poll::Ready(Ok(()));
                }
                let placed = self.core.poll_send_with(
                    &mut self.poll.send,
                    &mut self.poll.pending,
                    cx,
                    $attempt,
                );
                match placed {
                    std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(Ok(())),
                    std::task::Poll::Ready(Err(error)) => {
                        let message = self.poll.pending.take().unwrap_or_default();
                        std::task::Poll::Ready(Err($crate::SendError::new(error, message)))
                    }
                    std::task::Poll::Pending => std::task::Poll::Pending,
                }
            }
        }
    };
}
pub(crate) use socket_sink;

/// `futures::Sink<Message>` for a socket whose send never waits (PUB, XPUB, XSUB, REP):
/// `start_send` sends at once.
macro_rules! immediate_sink {
    ($ty:ident, $send_now:expr) => {
        /// Messages as a `Sink`: `start_send` sends at once, as this socket's `send` never
        /// waits (no copy, nothing held in the handle); a failed send gives the message back
        /// in the `SendError`, and `poll_close` leaves the socket open.
        impl futures::Sink<$crate::Message> for $ty {
            type Error = $crate::SendError;

            fn poll_ready(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn start_send(
                self: std::pin::Pin<&mut Self>,
                message: $crate::Message,
            ) -> Result<(), Self::Error> {
                let send_now: fn(&$ty, $crate::Message) -> Result<(), $crate::SendError> =
                    $send_now;
                send_now(self.get_mut(), message)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }
        }
    };
}
pub(crate) use immediate_sink;
