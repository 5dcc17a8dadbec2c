//! ferromq: brokerless ZeroMQ messaging in native Rust.

#![warn(missing_docs)]

pub mod error;
pub mod message;
pub mod wire;

pub use error::{Error, Result, SendError};
pub use message::Message;
