//! ferromq: brokerless ZeroMQ messaging in native Rust.

#![warn(missing_docs)]

pub mod endpoint;
mod engine;
pub mod error;
pub mod message;
pub mod options;
pub mod pattern;
mod socket;
pub mod wire;

pub use endpoint::Endpoint;
pub use error::{Error, Result, SendError};
pub use message::Message;
pub use options::SocketOptions;
pub use socket::{Pair, Pull, Push};
