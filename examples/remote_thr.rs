//! Throughput sender, argument-compatible with libzmq's `perf/remote_thr`:
//! `remote_thr <connect-to> <message-size> <message-count> [--runtime mt|ct] [--tasks N] [--spawn]`. PUSH connects
//! and sends `message-count` messages of `message-size` bytes (a fresh copy each, as libzmq's
//! `zmq_msg_init_size` per send), one `send().await` each, then closes and waits until all are
//! written or linger ends. It runs on the multi-thread runtime unless told `--runtime ct`;
//! `--tasks N` splits the sends among N tasks sharing the socket, and `--spawn` runs the loop
//! in a spawned task (see `common/shape.rs`).
//!
//! Like this repository's `libzmq_remote_thr`, it departs from libzmq's tool in one way: after
//! the last send it waits (up to `RECEIVER_PATIENCE`) for the receiver to disconnect before
//! closing. A libzmq 4.3 PULL over IPC that is stalled at its receive HWM when its peer closes
//! stops reading and loses the unread tail (spec/performance.md); the receiver's clock stops
//! at its last message, so the wait changes no figure.

#[path = "common/shape.rs"]
mod shape;

use ferromq::{Message, Push};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Longest wait, after the last send, for the receiver to disconnect.
const RECEIVER_PATIENCE: Duration = Duration::from_secs(60);
/// How often the wait checks whether the receiver is gone.
const DISCONNECT_POLL: Duration = Duration::from_millis(1);

fn main() -> ExitCode {
    let usage =
        "<connect-to> <message-size> <message-count> [--runtime mt|ct] [--tasks N] [--spawn]";
    let (shape, args) = match shape::Shape::perf_tool("remote_thr", usage) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    let program = run(args.endpoint, args.size, args.count, shape.tasks);
    shape.exit_status("remote_thr", program)
}

async fn run(connect_to: String, size: usize, count: u64, tasks: usize) -> ferromq::Result<()> {
    let push = Arc::new(Push::new());
    push.connect(connect_to.as_str())?;
    if tasks == 1 {
        send(&push, size, count).await?;
    } else {
        let senders: Vec<_> = shape::task_shares(count, tasks)
            .map(|n| {
                let push = push.clone();
                tokio::spawn(async move { send(&push, size, n).await })
            })
            .collect();
        for sender in senders {
            sender
                .await
                .map_err(|e| ferromq::Error::Io(std::io::Error::other(e)))??;
        }
    }
    let patience = tokio::time::Instant::now() + RECEIVER_PATIENCE;
    while push.peer_count() > 0 && tokio::time::Instant::now() < patience {
        tokio::time::sleep(DISCONNECT_POLL).await;
    }
    push.close().await;
    Ok(())
}

/// Sends `count` messages of `size` bytes, a fresh copy each.
async fn send(push: &Push, size: usize, count: u64) -> ferromq::Result<()> {
    let payload = vec![0u8; size];
    for _ in 0..count {
        push.send(Message::from(&payload[..])).await?;
    }
    Ok(())
}
