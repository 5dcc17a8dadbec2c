//! Latency measuring side, argument- and output-compatible with libzmq's `perf/remote_lat`:
//! `remote_lat <connect-to> <message-size> <roundtrip-count>`. REQ connects, sends
//! `roundtrip-count` requests of `message-size` bytes one after the other, and prints
//!
//! ```text
//! message size: 64 [B]
//! roundtrip count: 10000
//! average latency: 36.000 [us]
//! p50 latency: 35.120 [us]
//! p99 latency: 52.310 [us]
//! ```
//!
//! Latencies are one-way, i.e. half a round trip, as libzmq's `remote_lat` reports them;
//! the average spans the whole run like libzmq's, p50/p99 come from each round trip's own
//! timing.
//!
//! Runs on a current-thread runtime (`#[tokio::main(flavor = "current_thread")]`): with each
//! side in its own process on a 2-core machine, one thread per process avoids cross-thread
//! wake-ups. The measuring loop runs in a spawned task (see `main`).

use ferromq::{Error, Message, Req};
use std::process::ExitCode;
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: remote_lat <connect-to> <message-size> <roundtrip-count>");
        return ExitCode::from(2);
    }
    let (Ok(size), Ok(count)) = (args[2].parse::<usize>(), args[3].parse::<usize>()) else {
        eprintln!("remote_lat: message-size and roundtrip-count must be whole numbers");
        return ExitCode::from(2);
    };
    if count == 0 {
        eprintln!("remote_lat: roundtrip-count must be at least 1");
        return ExitCode::from(2);
    }
    // The loop runs in a spawned task, not in `block_on`'s own future: when a connection task
    // wakes the `block_on` future, tokio's current-thread scheduler polls the I/O driver once
    // more (an `epoll_wait` syscall) before returning to it; a woken spawned task runs
    // straight from the run queue.
    let endpoint = args[1].clone();
    let outcome = tokio::spawn(async move { run(&endpoint, size, count).await }).await;
    match outcome.unwrap_or_else(|e| Err(Error::Io(std::io::Error::other(e)))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("remote_lat: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(connect_to: &str, size: usize, count: usize) -> ferromq::Result<()> {
    let req = Req::new();
    req.connect(connect_to)?;
    let request = Message::from(vec![0u8; size]);
    let mut one_way_us = Vec::with_capacity(count);
    let start = Instant::now();
    for _ in 0..count {
        let sent = Instant::now();
        req.send(request.clone()).await?;
        let reply = req.recv().await?;
        one_way_us.push(sent.elapsed().as_secs_f64() * 1e6 / 2.0);
        if reply.byte_len() != size {
            return Err(Error::MalformedMessage("reply of the wrong size"));
        }
    }
    let average = start.elapsed().as_secs_f64() * 1e6 / (count as f64 * 2.0);
    one_way_us.sort_by(f64::total_cmp);
    let percentile = |p: f64| one_way_us[((count as f64 * p) as usize).min(count - 1)];
    println!("message size: {size} [B]");
    println!("roundtrip count: {count}");
    println!("average latency: {average:.3} [us]");
    println!("p50 latency: {:.3} [us]", percentile(0.50));
    println!("p99 latency: {:.3} [us]", percentile(0.99));
    Ok(())
}
