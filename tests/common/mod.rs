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
            Transport::Ipc => {
                let n = COUNTER.fetch_add(1, Ordering::Relaxed);
                ipc_endpoint(&format!("ferromq-interop-{}-{n}", std::process::id()))
            }
        }
    }
}

/// `ipc:///tmp/<name>.sock`, a path removed when the test process exits.
///
/// libzmq 4.3 leaves the socket file of an ipc path it bound when it closes the socket
/// (it unlinks only paths it made up itself for `ipc://*`), so without this every test run
/// where libzmq or a Python peer binds would leave files behind in `/tmp`.
pub fn ipc_endpoint(name: &str) -> String {
    let path = format!("/tmp/{name}.sock");
    remove_at_exit(&path);
    format!("ipc://{path}")
}

/// Paths to remove when the process exits.
static REMOVE_AT_EXIT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn remove_at_exit(path: &str) {
    unsafe extern "C" {
        /// C's `atexit`: the test harness's `main` returns, and `exit` runs the handler.
        fn atexit(handler: extern "C" fn()) -> std::ffi::c_int;
    }
    extern "C" fn remove_all() {
        let paths = REMOVE_AT_EXIT.lock().map(|p| p.clone()).unwrap_or_default();
        for path in paths {
            // Gone already when a ferromq socket bound it: it unlinks its own path on close.
            let _ = std::fs::remove_file(path);
        }
    }
    static REGISTER: std::sync::Once = std::sync::Once::new();
    // SAFETY: `remove_all` is a plain function that does not unwind out of the handler
    // (`lock` failing and `remove_file` failing are both handled).
    REGISTER.call_once(|| assert_eq!(unsafe { atexit(remove_all) }, 0));
    REMOVE_AT_EXIT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path.to_owned());
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
