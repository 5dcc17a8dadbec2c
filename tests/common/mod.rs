//! Helpers shared by the libzmq interop tests: the transport under test and libzmq sockets
//! that can never hang a test.
//!
//! Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// libzmq's send/receive timeout and linger, so a libzmq thread can never hang the test.
pub const LIBZMQ_TIMEOUT_MS: i32 = 20_000;

/// The transport a test runs over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transport {
    Tcp,
    Ipc,
}

impl Transport {
    /// An address to bind: an ephemeral TCP port or a fresh ipc path (unique per process and
    /// call).
    pub fn bind_addr(self) -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        match self {
            Transport::Tcp => "tcp://127.0.0.1:0".to_owned(),
            Transport::Ipc => format!(
                "ipc:///tmp/ferromq-interop-{}-{}.sock",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }
}

/// A libzmq socket with [`LIBZMQ_TIMEOUT_MS`] as its send and receive timeout and linger.
pub fn libzmq_socket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let socket = ctx.socket(kind).unwrap();
    socket.set_rcvtimeo(LIBZMQ_TIMEOUT_MS).unwrap();
    socket.set_sndtimeo(LIBZMQ_TIMEOUT_MS).unwrap();
    socket.set_linger(LIBZMQ_TIMEOUT_MS).unwrap();
    socket
}
