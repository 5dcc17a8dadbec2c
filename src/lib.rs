//! ferromq: brokerless ZeroMQ messaging in native Rust.
//!
//! Typed sockets — PUSH/PULL, PUB/SUB, XPUB/XSUB, REQ/REP, DEALER/ROUTER and PAIR — that talk
//! to each other and to libzmq, pyzmq, JeroMQ or NetMQ peers over the ZMTP 3.1 wire protocol,
//! on TCP and IPC, with no broker in between. Each socket does its own load balancing,
//! fair-queueing and subscription filtering.
//!
//! # Quick start
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ferromq::Result<()> {
//! use ferromq::{Pull, Push};
//!
//! let sink = Pull::new();
//! let endpoint = sink.bind("tcp://127.0.0.1:0")?; // port 0: the OS picks one
//!
//! let source = Push::new();
//! source.connect(&endpoint)?; // returns at once; connects and reconnects in the background
//! source.send("hello").await?;
//!
//! let message = sink.recv().await?;
//! assert_eq!(message.frames()[0], "hello");
//! # Ok(())
//! # }
//! ```
//!
//! # Request–reply, with a timeout
//!
//! A REQ sends a request and waits for its reply; a REP answers each request in turn.
//! `recv_timeout` (libzmq's `ZMQ_RCVTIMEO`) bounds the wait: a server that never answers
//! gives [`Error::Timeout`] instead of a hang.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ferromq::Result<()> {
//! use ferromq::{Error, Rep, Req, SocketOptions};
//! use std::time::Duration;
//!
//! let server = Rep::new();
//! let endpoint = server.bind("tcp://127.0.0.1:0")?;
//! tokio::spawn(async move {
//!     while let Ok(request) = server.recv().await {
//!         let name = String::from_utf8_lossy(&request.frames()[0]).into_owned();
//!         server.send(format!("Hello, {name}")).await?;
//!     }
//!     Ok::<_, ferromq::SendError>(())
//! });
//!
//! let mut options = SocketOptions::default();
//! options.recv_timeout = Some(Duration::from_secs(5));
//! let client = Req::with_options(options)?;
//! client.connect(&endpoint)?;
//! client.send("world").await?;
//! assert_eq!(client.recv().await?.frames()[0], "Hello, world");
//!
//! // A server that takes requests but never answers: the wait ends with a typed error.
//! let mute = Rep::new();
//! let mut options = SocketOptions::default();
//! options.recv_timeout = Some(Duration::from_millis(50));
//! let impatient = Req::with_options(options)?;
//! impatient.connect(mute.bind("tcp://127.0.0.1:0")?)?;
//! impatient.send("anyone?").await?;
//! assert!(matches!(impatient.recv().await, Err(Error::Timeout(_))));
//! # Ok(())
//! # }
//! ```
//!
//! # Publish–subscribe
//!
//! A PUB sends each message to the subscribers whose subscription prefixes match its first
//! frame, and never waits for them. A subscriber that connects late misses what was sent
//! before its subscription arrived (the Guide's "slow joiner"); a publisher that must not
//! start too early waits for its subscriptions.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ferromq::Result<()> {
//! use ferromq::{Pub, Sub};
//!
//! let publisher = Pub::new();
//! let endpoint = publisher.bind("tcp://127.0.0.1:0")?;
//! let subscriber = Sub::new();
//! subscriber.subscribe("weather/");
//! subscriber.connect(&endpoint)?;
//!
//! publisher.wait_for_subscriptions(1).await?;
//! publisher.send("sports/ 3-1").await?;           // nobody subscribed: dropped at the PUB
//! publisher.send("weather/ sunny").await?;
//! assert_eq!(subscriber.recv().await?.frames()[0], "weather/ sunny");
//! # Ok(())
//! # }
//! ```
//!
//! # Inside one process: inproc
//!
//! `inproc://name` links sockets of one process, on any runtime or thread, with the same
//! rules as tcp and without the kernel: a message's frames are handed over as they are, not
//! copied or encoded. Bind and connect in either order.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ferromq::Result<()> {
//! use bytes::Bytes;
//! use ferromq::{Pull, Push};
//!
//! let push = Push::new();
//! push.connect("inproc://jobs")?;                 // nobody has bound it yet
//! let pull = Pull::new();
//! pull.bind("inproc://jobs")?;
//!
//! let job = Bytes::from(vec![7u8; 4096]);
//! push.send(job.clone()).await?;
//! let received = pull.recv().await?;
//! assert_eq!(received.frames()[0].as_ptr(), job.as_ptr()); // the same bytes, not a copy
//! # Ok(())
//! # }
//! ```
//!
//! # Several sockets at once
//!
//! In async code, `tokio::select!` waits on several sockets; `recv` is cancel-safe, so the
//! branch that loses loses no message. [`proxy()`] moves messages between two sockets for you.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ferromq::Result<()> {
//! use ferromq::{Pull, Push};
//!
//! let (tasks, control) = (Pull::new(), Pull::new());
//! let (task_source, control_source) = (Push::new(), Push::new());
//! task_source.connect(tasks.bind("tcp://127.0.0.1:0")?)?;
//! control_source.connect(control.bind("tcp://127.0.0.1:0")?)?;
//! task_source.send("task 1").await?;
//! control_source.send("stop").await?;
//!
//! let mut done = 0;
//! loop {
//!     tokio::select! {
//!         task = tasks.recv() => { task?; done += 1; }
//!         _ = control.recv(), if done == 1 => break,
//!     }
//! }
//! assert_eq!(done, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Without an async runtime
//!
//! [`blocking`] has the same socket types for plain threads (the library runs a small
//! runtime of its own) and a [`blocking::Poller`] over several sockets, like `zmq_poll`:
//!
//! ```
//! use ferromq::blocking::{Interest, Poller, Pull, Push};
//! use std::time::Duration;
//!
//! # fn main() -> ferromq::Result<()> {
//! let (a, b) = (Pull::new(), Pull::new());
//! let push = Push::new();
//! push.connect(b.bind("tcp://127.0.0.1:0")?)?;
//! a.bind("tcp://127.0.0.1:0")?;
//! push.send("to b")?;
//!
//! let mut poller = Poller::new();
//! poller.add(&a, Interest::READABLE);
//! let b_index = poller.add(&b, Interest::READABLE);
//! let ready = poller.poll(Some(Duration::from_secs(10)))?;
//! assert_eq!(ready[0].index, b_index);
//! assert_eq!(b.recv()?.frames()[0], "to b");
//! # Ok(())
//! # }
//! ```
//!
//! # Watching a socket
//!
//! [`Socket::monitor`] streams libzmq's connection events (see [`monitor`]) and
//! [`Socket::stats`] counts what each peer sent, received, queued and dropped (see
//! [`stats`]).
//!
//! # Streams and sinks
//!
//! Receiving sockets are [`futures::Stream`]s of `Result<Message>` and sending sockets
//! [`futures::Sink`]s of [`Message`], with no queue of their own in between:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ferromq::Result<()> {
//! use futures::{SinkExt, StreamExt};
//! use ferromq::{Message, Pull, Push};
//!
//! let mut sink = Pull::new();
//! let mut source = Push::new();
//! source.connect(sink.bind("tcp://127.0.0.1:0")?)?;
//! let mut lines = futures::stream::iter(["one", "two"].map(|s| Ok(Message::from(s))));
//! source.send_all(&mut lines).await?;
//! let received: Vec<Message> = sink.by_ref().take(2).map(|m| m.unwrap()).collect().await;
//! assert_eq!(received[1].frames()[0], "two");
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! * `wire` (internal): the ZMTP 3.1 protocol, sans-IO — greeting, frames, commands and the
//!   per-peer connection state machine, driven by bytes and a caller-supplied clock.
//! * `pattern` (internal): the routing rules as plain data — round-robin, fair queue,
//!   subscription trie, routing-id table.
//! * `engine` (private): the tokio side — listeners, connectors with reconnect, one task per
//!   connection with batched reads and writes, heartbeats, linger.
//! * the socket types ([`Push`], [`Pull`], [`Pair`], …): thin typed front ends.
//! * [`Message`], [`Endpoint`], [`SocketOptions`], [`Error`]: the vocabulary shared by all.
//!
//! ```text
//!   your task ──send──► socket ──encode into peer buffer──► connection task ──writev──► TCP/IPC
//!   your task ◄──recv── socket ◄──batch of decoded msgs──── connection task ◄──read──── TCP/IPC
//! ```
//!
//! Semantics follow libzmq 4.3; every deliberate difference is listed in the repository's
//! `spec/` directory.

#![warn(missing_docs)]
// No `unsafe` anywhere, except with the `sodium` feature in the one module that calls
// libsodium (src/wire/mechanism/sodium.rs); `forbid` could not be lifted for it.
#![cfg_attr(not(feature = "sodium"), forbid(unsafe_code))]
#![cfg_attr(feature = "sodium", deny(unsafe_code))]

pub mod blocking;
mod buffer_pool;
pub mod endpoint;
mod engine;
pub mod error;
mod frame_pool;
pub mod message;
pub mod monitor;
pub mod options;
pub mod proxy;
pub mod security;
mod socket;
pub mod stats;

#[doc(hidden)]
pub mod internals;
pub(crate) use internals::{pattern, wire};
pub use wire::{ProtocolError, SocketType};

pub use endpoint::Endpoint;
pub use error::{Error, Result, SendError};
pub use message::Message;
pub use monitor::{Monitor, MonitorEvent};
pub use options::{SocketOptions, SocketOptionsBuilder};
pub use proxy::proxy;
pub use socket::{Dealer, Pair, Pub, Pull, Push, Rep, Req, Router, Socket, Sub, XPub, XSub};
