//! libzmq's `perf/remote_thr`, rebuilt on the `zmq` crate so `compare` can run the reference
//! implementation side by side with ferromq: same arguments
//! (`libzmq_remote_thr <connect-to> <message-size> <message-count>`).
//!
//! PUSH connects and sends `message-count` fresh messages of `message-size` bytes. Each is a
//! new `zmq::Message` with the payload copied in (`zmq_msg_init_size` plus a copy), the same
//! per-message work as ferromq's `remote_thr`. One I/O thread, default send HWM (1000),
//! OS-default kernel buffers. Closing waits without limit (ZMQ_LINGER -1) until every message
//! is written, so the receiver counts them all; `compare` bounds the wait with its own timeout.
//!
//! One departure from libzmq's tool: after the last send it waits (up to
//! `RECEIVER_PATIENCE_MS`) for the receiver to disconnect before closing. A libzmq 4.3 PULL over
//! IPC loses the unread tail of the stream when its peer closes while the PULL is stalled at
//! its HWM (the Unix socket reports hang-up, libzmq stops reading and drops what the kernel
//! still holds; seen with strace: every byte written, the receiver closes after EAGAIN short
//! of the total). The receiver's clock stops at its last message, so this wait does not change
//! the figure; it only keeps the libzmq-to-libzmq IPC run from hanging.

use std::process::ExitCode;

/// Longest wait, after the last send, for the receiver to disconnect.
const RECEIVER_PATIENCE_MS: i32 = 60_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: libzmq_remote_thr <connect-to> <message-size> <message-count>");
        return ExitCode::from(2);
    }
    let (Ok(size), Ok(count)) = (args[2].parse::<usize>(), args[3].parse::<u64>()) else {
        eprintln!("libzmq_remote_thr: message-size and message-count must be whole numbers");
        return ExitCode::from(2);
    };
    match run(&args[1], size, count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("libzmq_remote_thr: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(connect_to: &str, size: usize, count: u64) -> Result<(), String> {
    let context = zmq::Context::new();
    context
        .set_io_threads(1)
        .map_err(|e| format!("io threads: {e}"))?;
    let push = context
        .socket(zmq::PUSH)
        .map_err(|e| format!("socket: {e}"))?;
    push.set_linger(-1).map_err(|e| format!("linger: {e}"))?;
    let monitor_endpoint = "inproc://libzmq-remote-thr-monitor";
    push.monitor(monitor_endpoint, zmq::SocketEvent::DISCONNECTED as i32)
        .map_err(|e| format!("monitor: {e}"))?;
    let disconnects = context
        .socket(zmq::PAIR)
        .map_err(|e| format!("monitor socket: {e}"))?;
    disconnects
        .connect(monitor_endpoint)
        .map_err(|e| format!("monitor connect: {e}"))?;
    disconnects
        .set_rcvtimeo(RECEIVER_PATIENCE_MS)
        .map_err(|e| format!("rcvtimeo: {e}"))?;
    push.connect(connect_to)
        .map_err(|e| format!("connect {connect_to}: {e}"))?;
    let payload = vec![0u8; size];
    for _ in 0..count {
        push.send(zmq::Message::from(&payload[..]), 0)
            .map_err(|e| format!("send: {e}"))?;
    }
    // Either the receiver disconnected (done) or the patience ran out; close either way.
    let _ = disconnects.recv_multipart(0);
    drop(disconnects);
    // Dropping the socket and then the context (zmq_ctx_term) blocks until the linger ends,
    // i.e. until everything queued has been written.
    drop(push);
    drop(context);
    Ok(())
}
