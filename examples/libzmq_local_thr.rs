//! libzmq's `perf/local_thr`, rebuilt on the `zmq` crate so `compare` can run the reference
//! implementation side by side with ferromq: same arguments
//! (`libzmq_local_thr <bind-to> <message-size> <message-count> [--work NS]`) and the same four
//! output lines as ferromq's `local_thr`. `--work NS`, as `local_thr`'s, spends NS nanoseconds
//! of CPU on each message received.
//!
//! Tuning, stated because a comparison means nothing without it: one libzmq I/O thread
//! (ZMQ_IO_THREADS 1, libzmq's default), default receive HWM (1000) and OS-default kernel
//! buffers. Every message is received into one reused `zmq::Message`, as libzmq's tool does.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let work = match args.get(4..) {
        Some([]) => Some(Duration::ZERO),
        Some([flag, nanos]) if flag == "--work" => nanos.parse().ok().map(Duration::from_nanos),
        _ => None,
    };
    let Some(work) = work else {
        eprintln!("usage: libzmq_local_thr <bind-to> <message-size> <message-count> [--work NS]");
        return ExitCode::from(2);
    };
    let (Ok(size), Ok(count)) = (args[2].parse::<usize>(), args[3].parse::<u64>()) else {
        eprintln!("libzmq_local_thr: message-size and message-count must be whole numbers");
        return ExitCode::from(2);
    };
    match run(&args[1], size, count, work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("libzmq_local_thr: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(bind_to: &str, size: usize, count: u64, work: Duration) -> Result<(), String> {
    let context = zmq::Context::new();
    context
        .set_io_threads(1)
        .map_err(|e| format!("io threads: {e}"))?;
    let pull = context
        .socket(zmq::PULL)
        .map_err(|e| format!("socket: {e}"))?;
    pull.bind(bind_to)
        .map_err(|e| format!("bind {bind_to}: {e}"))?;
    let mut message = zmq::Message::new();
    receive_sized(&pull, &mut message, size)?;
    // Like libzmq's tool, the clock starts at the first message, so connection set-up is
    // not measured.
    let start = Instant::now();
    for _ in 1..count {
        receive_sized(&pull, &mut message, size)?;
        if !work.is_zero() {
            common::busy_for(work);
        }
    }
    common::print_throughput(size, count, start.elapsed().as_secs_f64());
    Ok(())
}

fn receive_sized(
    pull: &zmq::Socket,
    message: &mut zmq::Message,
    size: usize,
) -> Result<(), String> {
    pull.recv(message, 0).map_err(|e| format!("recv: {e}"))?;
    if message.len() != size {
        return Err(format!(
            "message of {} bytes, expected {size}",
            message.len()
        ));
    }
    Ok(())
}
