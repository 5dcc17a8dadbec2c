//! Helpers shared by the tests: the transport under test, libzmq sockets that can never hang
//! a test, and bounded waits for monitor events.
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

/// How long a test waits for one monitor event.
pub const EVENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The next monitor event, failing the test if none comes within [`EVENT_TIMEOUT`].
pub async fn next_event(monitor: &mut ferromq::Monitor) -> ferromq::MonitorEvent {
    use futures::StreamExt;
    tokio::time::timeout(EVENT_TIMEOUT, monitor.next())
        .await
        .expect("timed out waiting for a monitor event")
        .expect("the monitor ended")
}

/// Skips monitor events until one named `name` arrives; returns it and the names skipped.
pub async fn until_event(
    monitor: &mut ferromq::Monitor,
    name: &str,
) -> (ferromq::MonitorEvent, Vec<&'static str>) {
    let mut skipped = Vec::new();
    loop {
        let event = next_event(monitor).await;
        if event.kind.name() == name {
            return (event, skipped);
        }
        skipped.push(event.kind.name());
    }
}
