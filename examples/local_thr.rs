//! Throughput receiver, argument- and output-compatible with libzmq's `perf/local_thr`:
//! `local_thr <bind-to> <message-size> <message-count> [--runtime mt|ct] [--batch] [--tasks N] [--spawn] [--work NS]`. PULL
//! binds, times the arrival of `message-count` messages from the first one on, and prints
//! libzmq's four lines.
//!
//! By default it runs as an application written with `#[tokio::main]` does: the multi-thread
//! runtime, the loop in `block_on`, one `recv().await` per message — the shape libzmq's own
//! tool measures (one `zmq_recvmsg` per message). `--runtime ct` and `--batch` (`recv_many`,
//! up to 1,024 messages per call) measure the other shapes, `--tasks N` has N tasks receive
//! from the one socket at once, `--spawn` runs the loop in a spawned task, and `--work NS`
//! spends NS nanoseconds of CPU on each message (see `common/shape.rs`).

#[path = "common/mod.rs"]
mod common;
#[path = "common/shape.rs"]
mod shape;

use ferromq::{Message, Pull, SocketOptions};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most messages one `recv_many` call takes with `--batch`.
const BATCH: usize = 1024;

fn main() -> ExitCode {
    let usage = "<bind-to> <message-size> <message-count> [--runtime mt|ct] [--batch] [--tasks N] [--spawn] [--work NS]";
    let (shape, args) = match shape::Shape::perf_tool("local_thr", usage) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    let program = run(
        args.endpoint,
        args.size,
        args.count,
        shape.tasks,
        shape.batch,
        shape.work,
    );
    shape.exit_status("local_thr", program)
}

async fn run(
    bind_to: String,
    size: usize,
    count: u64,
    tasks: usize,
    batch: bool,
    work: Duration,
) -> ferromq::Result<()> {
    let pull = Arc::new(Pull::with_options(SocketOptions::default())?);
    pull.bind(bind_to.as_str())?;
    let first = pull.recv().await?;
    check_size(&first, size)?;
    let start = Instant::now();
    if tasks > 1 {
        receive_in_tasks(&pull, size, count, tasks).await?;
    } else if batch {
        let mut messages = Vec::with_capacity(BATCH);
        let mut received = 1;
        while received < count {
            messages.clear();
            let want = (count - received).min(BATCH as u64) as usize;
            pull.recv_many(&mut messages, want).await?;
            for message in &messages {
                check_size(message, size)?;
            }
            received += messages.len() as u64;
        }
    } else {
        for _ in 1..count {
            check_size(&pull.recv().await?, size)?;
            if !work.is_zero() {
                common::busy_for(work);
            }
        }
    }
    common::print_throughput(size, count, start.elapsed().as_secs_f64());
    Ok(())
}

/// `tasks` tasks receive from `pull` at once until `count` messages (the first included) have
/// arrived. Each task takes a share of the count, as `remote_thr --tasks` splits its sends,
/// and stops once it has it; the tasks still receiving get the rest, so the last one ends
/// with the last message. No counter is shared between the tasks: a shared one would make
/// the two workers take turns on one cache line for every message, a cost of the
/// measurement rather than of the socket.
async fn receive_in_tasks(
    pull: &Arc<Pull>,
    size: usize,
    count: u64,
    tasks: usize,
) -> ferromq::Result<()> {
    let mut receivers = tokio::task::JoinSet::new();
    // The first message was received before the clock started.
    for n in shape::task_shares(count - 1, tasks) {
        let pull = pull.clone();
        receivers.spawn(async move {
            for _ in 0..n {
                check_size(&pull.recv().await?, size)?;
            }
            Ok::<_, ferromq::Error>(())
        });
    }
    // The first failure ends the run; dropping the set stops the other tasks.
    while let Some(finished) = receivers.join_next().await {
        finished.map_err(|e| ferromq::Error::Io(std::io::Error::other(e)))??;
    }
    Ok(())
}

fn check_size(message: &Message, size: usize) -> ferromq::Result<()> {
    if message.byte_len() != size {
        return Err(ferromq::Error::MalformedMessage(
            "message of the wrong size",
        ));
    }
    Ok(())
}
