//! Throughput receiver, argument- and output-compatible with libzmq's `perf/local_thr`:
//! `local_thr <bind-to> <message-size> <message-count>`. PULL binds, times the arrival of
//! `message-count` messages from the first one on, and prints libzmq's four lines.
//!
//! Runs on a current-thread runtime: with sender and receiver in separate processes on a
//! 2-core machine, one thread per process avoids cross-thread wake-ups.

use ferromq::{Pull, SocketOptions};
use std::process::ExitCode;
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: local_thr <bind-to> <message-size> <message-count>");
        return ExitCode::from(2);
    }
    let (Ok(size), Ok(count)) = (args[2].parse::<usize>(), args[3].parse::<u64>()) else {
        eprintln!("local_thr: message-size and message-count must be whole numbers");
        return ExitCode::from(2);
    };
    match run(&args[1], size, count).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local_thr: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(bind_to: &str, size: usize, count: u64) -> ferromq::Result<()> {
    let pull = Pull::with_options(SocketOptions::default())?;
    pull.bind(bind_to)?;
    let first = pull.recv().await?;
    check_size(&first, size)?;
    let start = Instant::now();
    let mut batch = Vec::with_capacity(1024);
    let mut received = 1;
    while received < count {
        batch.clear();
        let want = (count - received).min(1024) as usize;
        pull.recv_many(&mut batch, want).await?;
        for message in &batch {
            check_size(message, size)?;
        }
        received += batch.len() as u64;
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    let throughput = count as f64 / elapsed;
    let megabits = throughput * size as f64 * 8.0 / 1_000_000.0;
    println!("message size: {size} [B]");
    println!("message count: {count}");
    println!("mean throughput: {throughput:.0} [msg/s]");
    println!("mean throughput: {megabits:.3} [Mb/s]");
    Ok(())
}

fn check_size(message: &ferromq::Message, size: usize) -> ferromq::Result<()> {
    if message.byte_len() != size {
        return Err(ferromq::Error::MalformedMessage(
            "message of the wrong size",
        ));
    }
    Ok(())
}
