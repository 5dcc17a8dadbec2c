//! Throughput sender, argument-compatible with libzmq's `perf/remote_thr`:
//! `remote_thr <connect-to> <message-size> <message-count>`. PUSH connects and sends
//! `message-count` messages of `message-size` bytes (a fresh copy each, as libzmq's
//! `zmq_msg_init_size` per send), then closes and waits until all are written or linger ends.

use ferromq::{Message, Push};
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: remote_thr <connect-to> <message-size> <message-count>");
        return ExitCode::from(2);
    }
    let (Ok(size), Ok(count)) = (args[2].parse::<usize>(), args[3].parse::<u64>()) else {
        eprintln!("remote_thr: message-size and message-count must be whole numbers");
        return ExitCode::from(2);
    };
    match run(&args[1], size, count).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("remote_thr: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(connect_to: &str, size: usize, count: u64) -> ferromq::Result<()> {
    let push = Push::new();
    push.connect(connect_to)?;
    let payload = vec![0u8; size];
    for _ in 0..count {
        push.send(Message::from(&payload[..])).await?;
    }
    push.close().await;
    Ok(())
}
