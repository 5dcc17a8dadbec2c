//! Latency echo side, argument-compatible with libzmq's `perf/local_lat`:
//! `local_lat <bind-to> <message-size> <roundtrip-count>`. REP binds, and echoes
//! `roundtrip-count` requests of `message-size` bytes; pair it with `remote_lat` (ferromq's
//! or libzmq's).
//!
//! Runs on a current-thread runtime (`#[tokio::main(flavor = "current_thread")]`): with each
//! side in its own process on a 2-core machine, one thread per process avoids cross-thread
//! wake-ups. The measuring loop runs in a spawned task (see `main`).

use ferromq::{Error, Rep};
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: local_lat <bind-to> <message-size> <roundtrip-count>");
        return ExitCode::from(2);
    }
    let (Ok(size), Ok(count)) = (args[2].parse::<usize>(), args[3].parse::<u64>()) else {
        eprintln!("local_lat: message-size and roundtrip-count must be whole numbers");
        return ExitCode::from(2);
    };
    // The loop runs in a spawned task, not in `block_on`'s own future: when a connection task
    // wakes the `block_on` future, tokio's current-thread scheduler polls the I/O driver once
    // more (an `epoll_wait` syscall) before returning to it; a woken spawned task runs
    // straight from the run queue.
    let endpoint = args[1].clone();
    let outcome = tokio::spawn(async move { run(&endpoint, size, count).await }).await;
    match outcome.unwrap_or_else(|e| Err(Error::Io(std::io::Error::other(e)))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local_lat: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(bind_to: &str, size: usize, count: u64) -> ferromq::Result<()> {
    let rep = Rep::new();
    rep.bind(bind_to)?;
    for _ in 0..count {
        let request = rep.recv().await?;
        if request.byte_len() != size {
            return Err(Error::MalformedMessage("message of the wrong size"));
        }
        rep.send(request).await?;
    }
    // Let the last reply reach the wire before the runtime stops.
    rep.close().await;
    Ok(())
}
