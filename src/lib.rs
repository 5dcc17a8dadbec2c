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
#![forbid(unsafe_code)]

pub mod endpoint;
mod engine;
pub mod error;
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
