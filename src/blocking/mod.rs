//! Blocking sockets for programs without an async runtime: the same socket types, verbs and
//! options as the async API, called from plain threads, plus a [`Poller`] over several
//! sockets like `zmq_poll`.
//!
//! ```
//! use ferromq::blocking::{Rep, Req};
//! use ferromq::SocketOptions;
//! use std::time::Duration;
//!
//! # fn main() -> ferromq::Result<()> {
//! let mut options = SocketOptions::default();
//! options.recv_timeout = Some(Duration::from_secs(10));
//! let server = Rep::with_options(options.clone())?;
//! let endpoint = server.bind("tcp://127.0.0.1:0")?;
//! let worker = std::thread::spawn(move || -> ferromq::Result<()> {
//!     let request = server.recv()?;
//!     assert_eq!(request.frames()[0], "Hello");
//!     server.send("World")?;
//!     Ok(())
//! });
//!
//! let client = Req::with_options(options)?;
//! client.connect(&endpoint)?;
//! client.send("Hello")?;
//! assert_eq!(client.recv()?.frames()[0], "World");
//! worker.join().unwrap()?;
//! # Ok(())
//! # }
//! ```
//!
//! # The shared runtime
//!
//! Each blocking socket wraps the async socket of the same name (reachable with `as_async`).
//! Their connections run on one tokio runtime for the whole process: multi-threaded, with
//! one or two worker threads named `ferromq-io` (two when the machine has two cores or
//! more), started by the first blocking socket that binds, connects or waits, and never
//! stopped. A blocking call waits on the calling thread while those threads move the bytes;
//! `send_timeout` and `recv_timeout` from [`SocketOptions`](crate::SocketOptions) bound the
//! wait and fail with [`Error::Timeout`] (a failed send hands the
//! message back in its [`SendError`]). The sockets are `Send + Sync`:
//! several threads may use one socket at once (share it with an `Arc` or scoped threads).
//!
//! Dropping a socket closes it and lets its queued messages go out in the background, within
//! the linger period, as for async sockets. The runtime is never shut down, so a process that
//! exits right after its last send may exit before that message left: call `close()`, which
//! blocks until the queues are written or the linger period passed.
//!
//! # Inside an async runtime
//!
//! Calls that never wait (`bind`, `connect`, `try_send`, `try_recv`, the sends of PUB, XPUB,
//! XSUB and REP, `subscribe`, `Poller::poll` with a zero timeout) work anywhere. A call that
//! may wait, made on a thread that drives a tokio runtime:
//! * of the multi-thread flavour (`#[tokio::main]`'s default): waits inside
//!   `tokio::task::block_in_place`, so that runtime's other tasks go on on its other workers;
//! * of the current-thread flavour (`#[tokio::test]`'s default, or a `LocalSet`): fails at
//!   once with [`Error::BlockingInRuntime`] rather than stall
//!   that runtime's only thread (and with it, possibly, the peer being waited for); a send
//!   hands the message back. tokio does not tell this runtime's `spawn_blocking` threads
//!   apart from its own, so they get the error too: use a `std::thread` there, or the async
//!   sockets.
//!
//! See `spec/blocking.md` for the design and how it is tested.

mod poller;
mod runtime;

pub use poller::{Event, Interest, Pollable, Poller};

use crate::error::{Error, Result, SendError};
use crate::message::Message;

/// Sends `message` with `send`, waiting on the calling thread; if this thread may not wait,
/// hands the message back with the reason.
fn block_on_send<F, Fut>(message: Message, send: F) -> Result<(), SendError>
where
    F: FnOnce(Message) -> Fut,
    Fut: std::future::Future<Output = Result<(), SendError>>,
{
    match runtime::waiter() {
        Ok(waiter) => waiter.block_on(send(message)),
        Err(error) => Err(SendError::new(error, message)),
    }
}

/// Sends with an async send that queues at its first poll (PUB, XPUB, XSUB): one poll, no
/// waiting, so it works on any thread. The async send may then only yield (see `Pub::send`);
/// the message is queued by then.
fn send_now(
    send: impl std::future::Future<Output = Result<(), SendError>>,
) -> Result<(), SendError> {
    use futures::FutureExt;
    send.now_or_never().unwrap_or(Ok(()))
}

/// Waits for `wait` on the calling thread, failing with [`Error::Timeout`] after `timeout`.
fn block_on_with_timeout(
    wait: impl std::future::Future<Output = Result<()>>,
    timeout: Option<std::time::Duration>,
) -> Result<()> {
    runtime::block_on(async {
        match timeout {
            Some(t) => tokio::time::timeout(t, wait)
                .await
                .unwrap_or(Err(Error::Timeout(t))),
            None => wait.await,
        }
    })?
}

/// The type, constructors, lifecycle and introspection every blocking socket shares.
macro_rules! blocking_socket {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        pub struct $ty {
            inner: crate::$ty,
        }

        impl $ty {
            /// A socket with libzmq's default options.
            pub fn new() -> Self {
                $ty { inner: crate::$ty::new() }
            }

            /// A socket with the given options (timeouts included); fails naming the first
            /// invalid one.
            pub fn with_options(options: crate::SocketOptions) -> Result<Self> {
                Ok($ty { inner: crate::$ty::with_options(options)? })
            }

            /// Binds to an endpoint and starts accepting peers in the shared runtime (started
            /// if need be); returns the endpoint actually bound (with the real port for
            /// `tcp://…:0`). Never waits.
            pub fn bind(&self, endpoint: impl crate::endpoint::ToEndpoint) -> Result<crate::Endpoint> {
                let _runtime = runtime::handle()?.enter();
                self.inner.bind(endpoint)
            }

            /// Connects to an endpoint in the background, in the shared runtime: returns at
            /// once, connects when the peer is there and reconnects whenever the connection
            /// is lost.
            pub fn connect(&self, endpoint: impl crate::endpoint::ToEndpoint) -> Result<()> {
                let _runtime = runtime::handle()?.enter();
                self.inner.connect(endpoint)
            }

            /// Stops listening on a bound endpoint and closes the connections accepted there.
            pub fn unbind(&self, endpoint: impl crate::endpoint::ToEndpoint) -> Result<()> {
                self.inner.unbind(endpoint)
            }

            /// Closes a connected endpoint and stops reconnecting to it.
            pub fn disconnect(&self, endpoint: impl crate::endpoint::ToEndpoint) -> Result<()> {
                self.inner.disconnect(endpoint)
            }

            /// The last endpoint bound or connected (libzmq's ZMQ_LAST_ENDPOINT).
            pub fn last_endpoint(&self) -> Option<crate::Endpoint> {
                self.inner.last_endpoint()
            }

            /// Peers connected with a completed handshake.
            pub fn peer_count(&self) -> usize {
                self.inner.peer_count()
            }

            /// The options in force now (a copy).
            pub fn options(&self) -> crate::SocketOptions {
                self.inner.options()
            }

            /// Changes options on the live socket, as the async socket's `update_options`
            /// does (what takes effect when is in its documentation).
            pub fn update_options(
                &self,
                change: impl FnOnce(&mut crate::SocketOptions),
            ) -> crate::Result<()> {
                self.inner.update_options(change)
            }

            /// A new stream of this socket's endpoint and connection events, from now on;
            /// read it without waiting with [`Monitor::try_next`](crate::Monitor::try_next).
            pub fn monitor(&self) -> crate::Monitor {
                self.inner.monitor()
            }

            /// A snapshot of what the socket and each connected peer carried, queued and
            /// dropped (see [`crate::stats`]).
            pub fn stats(&self) -> crate::stats::SocketStats {
                self.inner.stats()
            }

            /// Closes the socket: stops accepting and connecting at once, then blocks until
            /// what is queued is written or the linger period has passed (forever with no
            /// linger limit). Calls waiting on the socket in other threads, and every later
            /// call, fail with [`Error::Closed`].
            ///
            /// On a thread that may not wait (see the [module docs](self)) the socket is
            /// closed, its queues flush in the background, and this returns
            /// [`Error::BlockingInRuntime`] without waiting.
            pub fn close(&self) -> Result<()> {
                match runtime::waiter() {
                    Ok(waiter) => {
                        waiter.block_on(self.inner.close());
                        Ok(())
                    }
                    Err(error) => {
                        // The first poll closes the socket.
                        let _ = futures::FutureExt::now_or_never(self.inner.close());
                        Err(error)
                    }
                }
            }

            /// The async socket inside: for what only the async API has. Its connections run
            /// in the shared runtime whichever runtime awaits its methods.
            pub fn as_async(&self) -> &crate::$ty {
                &self.inner
            }
        }

        impl poller::sealed::Readiness for $ty {
            fn poll_readiness(
                &self,
                wait: &mut poller::sealed::Wait,
                cx: &mut std::task::Context<'_>,
                interest: Interest,
            ) -> std::task::Poll<(bool, bool)> {
                self.inner.poll_readiness(
                    &mut wait.0,
                    cx,
                    interest.is_readable(),
                    interest.is_writable(),
                )
            }

            fn forget_readiness(&self, wait: &mut poller::sealed::Wait) {
                self.inner.forget_readiness(&mut wait.0)
            }
        }

        impl Pollable for $ty {}
    };
}

/// `recv` and `try_recv`.
macro_rules! blocking_recv {
    ($ty:ident, $what:literal) => {
        impl $ty {
            #[doc = concat!("Receives ", $what, ", blocking until there is one or the receive")]
            /// timeout passes ([`Error::Timeout`]). Fails with
            /// [`Error::BlockingInRuntime`] on a thread that may not wait (see the
            /// [module docs](self)).
            pub fn recv(&self) -> Result<Message> {
                runtime::block_on(self.inner.recv())?
            }

            #[doc = concat!("Receives ", $what, " if one is queued, without waiting")]
            /// ([`Error::WouldBlock`] otherwise). Works on any thread.
            pub fn try_recv(&self) -> Result<Message> {
                self.inner.try_recv()
            }
        }
    };
}

/// `send` (which may wait for room) and `try_send`.
macro_rules! blocking_send {
    ($ty:ident, $what:literal) => {
        impl $ty {
            #[doc = concat!("Sends a message ", $what, ", blocking while no peer has room, up to")]
            /// the send timeout ([`Error::Timeout`]). A failed send
            /// hands the message back in the [`SendError`]; on a thread that may not wait
            /// (see the [module docs](self)) it fails at once with
            /// [`Error::BlockingInRuntime`].
            pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
                block_on_send(message.into(), |m| self.inner.send(m))
            }

            /// Sends without waiting: [`Error::WouldBlock`] with the
            /// message when no peer has room. Works on any thread.
            pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
                self.inner.try_send(message)
            }
        }
    };
}

blocking_socket!(
    /// The sending end of a pipeline, blocking (see [`crate::Push`]).
    Push
);
blocking_send!(Push, "to the next peer with room");

blocking_socket!(
    /// The receiving end of a pipeline, blocking (see [`crate::Pull`]).
    Pull
);
blocking_recv!(Pull, "the next message from any PUSH peer");

blocking_socket!(
    /// Publishes to subscribers, blocking API (see [`crate::Pub`]); sending never waits.
    Pub
);

blocking_socket!(
    /// Receives what matches its subscriptions, blocking (see [`crate::Sub`]).
    Sub
);
blocking_recv!(Sub, "the next message matching a subscription");

blocking_socket!(
    /// A publisher that also receives its subscribers' subscriptions, blocking (see
    /// [`crate::XPub`]); sending never waits.
    XPub
);
blocking_recv!(
    XPub,
    "the next subscription notification (`1`/`0` then the prefix) or upstream message"
);

blocking_socket!(
    /// A subscriber driven by messages, blocking (see [`crate::XSub`]); sending never waits.
    XSub
);
blocking_recv!(XSub, "the next message from the publishers");

blocking_socket!(
    /// Sends requests and receives their replies, strictly alternating, blocking (see
    /// [`crate::Req`]). Sending twice, or receiving before sending, fails with
    /// [`Error::WrongState`].
    Req
);
blocking_send!(Req, "as the next request, to the next peer with room");
blocking_recv!(Req, "the reply to the last request");

blocking_socket!(
    /// Receives requests and sends their replies, strictly alternating, blocking (see
    /// [`crate::Rep`]); sending never waits.
    Rep
);
blocking_recv!(Rep, "the next request body");

blocking_socket!(
    /// Asynchronous request–reply without REQ's lock-step, blocking (see
    /// [`crate::Dealer`]).
    Dealer
);
blocking_send!(Dealer, "to the next peer with room");
blocking_recv!(Dealer, "the next message from any peer");

blocking_socket!(
    /// Routes by routing id, blocking (see [`crate::Router`]): received messages start with
    /// the sender's routing id, sent ones with the receiver's.
    Router
);
blocking_send!(
    Router,
    "to the peer named by its first frame (waiting only with `router_mandatory`)"
);
blocking_recv!(Router, "the next message, its sender's routing id in front");

blocking_socket!(
    /// An exclusive connection between two sockets, blocking (see [`crate::Pair`]).
    Pair
);
blocking_send!(Pair, "to the peer");
blocking_recv!(Pair, "the next message from the peer");

/// The publishing half shared by [`Pub`] and [`XPub`].
macro_rules! blocking_publisher {
    ($ty:ident) => {
        impl $ty {
            /// Publishes a message to every subscriber with a matching subscription. Never
            /// waits (a subscriber at its high-water mark misses it), so it works on any
            /// thread; it only fails for a message without frames.
            pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
                send_now(self.inner.send(message))
            }

            /// Messages not delivered because a subscriber was at its send HWM.
            pub fn dropped_messages(&self) -> u64 {
                self.inner.dropped_messages()
            }

            /// Connected peers holding at least one subscription.
            pub fn subscriber_count(&self) -> usize {
                self.inner.subscriber_count()
            }

            /// Subscriptions held, one per (peer, prefix).
            pub fn subscription_count(&self) -> usize {
                self.inner.subscription_count()
            }

            /// Blocks until at least `n` peers hold a subscription (the cure for the slow
            /// joiner when the number of subscribers is known), or `timeout` passes
            /// ([`Error::Timeout`]; `None`: no limit). Fails with [`Error::Closed`] once the
            /// socket closes.
            pub fn wait_for_subscribers(
                &self,
                n: usize,
                timeout: Option<std::time::Duration>,
            ) -> Result<()> {
                block_on_with_timeout(self.inner.wait_for_subscribers(n), timeout)
            }

            /// Blocks until at least `n` subscriptions are held (one per peer and prefix),
            /// or `timeout` passes ([`Error::Timeout`]; `None`: no limit). Fails with
            /// [`Error::Closed`] once the socket closes.
            pub fn wait_for_subscriptions(
                &self,
                n: usize,
                timeout: Option<std::time::Duration>,
            ) -> Result<()> {
                block_on_with_timeout(self.inner.wait_for_subscriptions(n), timeout)
            }
        }
    };
}

blocking_publisher!(Pub);
blocking_publisher!(XPub);

impl Sub {
    /// Subscribes to messages whose first frame starts with `prefix` (`""`: every message).
    pub fn subscribe(&self, prefix: impl AsRef<[u8]>) {
        self.inner.subscribe(prefix)
    }

    /// Removes one subscription to `prefix`.
    pub fn unsubscribe(&self, prefix: impl AsRef<[u8]>) {
        self.inner.unsubscribe(prefix)
    }
}

impl XPub {
    /// With `xpub_manual`: subscribes the peer whose notification was received last to
    /// `prefix`; fails without `xpub_manual`.
    pub fn subscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.inner.subscribe(prefix)
    }

    /// With `xpub_manual`: removes `prefix` from the peer whose notification was received
    /// last; fails without `xpub_manual`.
    pub fn unsubscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.inner.unsubscribe(prefix)
    }
}

impl XSub {
    /// Sends a subscription (`1` + prefix), a cancellation (`0` + prefix) or an upstream
    /// message. Never waits, so it works on any thread.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        send_now(self.inner.send(message))
    }

    /// Upstream messages not delivered because a publisher was at its send HWM.
    pub fn dropped_messages(&self) -> u64 {
        self.inner.dropped_messages()
    }
}

impl Rep {
    /// Sends the reply to the last request received. Never waits (a reply to a departed or
    /// full requester is dropped), so it works on any thread; fails with
    /// [`Error::WrongState`] when there is no request to answer.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.inner.try_send(message)
    }

    /// Same as [`Rep::send`], which never waits.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.inner.try_send(message)
    }

    /// Replies dropped because the requester was at its send high-water mark.
    pub fn dropped_messages(&self) -> u64 {
        self.inner.dropped_messages()
    }
}

impl Router {
    /// Messages dropped because their peer was at its send high-water mark (without
    /// `router_mandatory`).
    pub fn dropped_messages(&self) -> u64 {
        self.inner.dropped_messages()
    }

    /// The routing ids of the peers a message can be sent to now (connected, handshake
    /// done), sorted.
    pub fn routing_ids(&self) -> Vec<bytes::Bytes> {
        self.inner.routing_ids()
    }
}
