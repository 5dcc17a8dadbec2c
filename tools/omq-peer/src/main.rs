//! omq-tokio measured in the shapes ferromq's perf examples measure (see
//! `examples/common/shape.rs`): the same arguments and the same report lines.
//!
//! ```text
//! omq-peer local_thr  <bind-to> <size> <count> [--runtime mt|ct]
//! omq-peer remote_thr <connect-to> <size> <count> [--runtime mt|ct]
//! omq-peer lat-serve  <roundtrips> [--runtime mt|ct]    prints its endpoint, echoes
//! omq-peer lat-client <endpoint> <size> <roundtrips> <warmup> [--runtime mt|ct]
//! ```
//! Every receive is one `recv().await`; every send copies its payload into a fresh message.
//! Senders linger until everything is written (omq's default drops queued messages on close,
//! libzmq's and ferromq's keep them).

// The report every throughput receiver of the comparisons prints, shared with ferromq's.
#[path = "../../../examples/common/mod.rs"]
mod common;

use omq_tokio::{Message, Options, Socket, SocketType};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Longest wait, after the last send, for the receiver to take everything and disconnect.
const RECEIVER_PATIENCE: Duration = Duration::from_secs(60);

type BoxError = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let mut positional = Vec::new();
    let mut multi_thread = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runtime" => match args.next().as_deref() {
                Some("mt") => multi_thread = true,
                Some("ct") => multi_thread = false,
                _ => return usage(),
            },
            _ => positional.push(arg),
        }
    }
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let Ok(runtime) = runtime else {
        eprintln!("omq-peer: cannot start a runtime");
        return ExitCode::FAILURE;
    };
    let number = |i: usize| positional.get(i).and_then(|a| a.parse::<u64>().ok());
    let outcome = match (positional.first().map(String::as_str), positional.len()) {
        (Some("local_thr"), 4) => match (number(2), number(3)) {
            (Some(size), Some(count)) => runtime.block_on(local_thr(&positional[1], size, count)),
            _ => return usage(),
        },
        (Some("remote_thr"), 4) => match (number(2), number(3)) {
            (Some(size), Some(count)) => runtime.block_on(remote_thr(&positional[1], size, count)),
            _ => return usage(),
        },
        (Some("lat-serve"), 2) => match number(1) {
            Some(total) => runtime.block_on(lat_serve(total)),
            None => return usage(),
        },
        (Some("lat-client"), 5) => match (number(2), number(3), number(4)) {
            (Some(size), Some(n), Some(warmup)) => {
                runtime.block_on(lat_client(&positional[1], size, n, warmup))
            }
            _ => return usage(),
        },
        _ => return usage(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("omq-peer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: omq-peer local_thr|remote_thr <endpoint> <size> <count> [--runtime mt|ct]\n       \
         omq-peer lat-serve <roundtrips> [--runtime mt|ct]\n       \
         omq-peer lat-client <endpoint> <size> <roundtrips> <warmup> [--runtime mt|ct]"
    );
    ExitCode::from(2)
}

fn options() -> Options {
    Options::default().linger_forever()
}

async fn local_thr(bind_to: &str, size: u64, count: u64) -> Result<(), BoxError> {
    let pull = Socket::new(SocketType::Pull, options());
    pull.bind(bind_to).await?;
    let first = pull.recv().await?;
    check_size(&first, size)?;
    let start = Instant::now();
    for _ in 1..count {
        check_size(&pull.recv().await?, size)?;
    }
    common::print_throughput(size as usize, count, start.elapsed().as_secs_f64());
    Ok(())
}

fn check_size(message: &Message, size: u64) -> Result<(), BoxError> {
    if message.byte_len() as u64 != size {
        return Err(format!("message of {} B, expected {size}", message.byte_len()).into());
    }
    Ok(())
}

async fn remote_thr(connect_to: &str, size: u64, count: u64) -> Result<(), BoxError> {
    let push = Socket::new(SocketType::Push, options());
    push.connect(connect_to).await?;
    let payload = vec![0u8; size as usize];
    for _ in 0..count {
        push.send(Message::from_slice(&payload)).await?;
    }
    // As ferromq's and libzmq's senders here: wait until the receiver, which exits once it
    // has counted everything, goes away, then close.
    let patience = Instant::now() + RECEIVER_PATIENCE;
    while !push.connections().await?.is_empty() && Instant::now() < patience {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    push.close().await?;
    Ok(())
}

async fn lat_serve(total: u64) -> Result<(), BoxError> {
    let rep = Socket::new(SocketType::Rep, options());
    let endpoint = rep.bind("tcp://127.0.0.1:0").await?;
    println!("{endpoint}");
    for _ in 0..total {
        let request = rep.recv().await?;
        rep.send(request).await?;
    }
    rep.close().await?;
    Ok(())
}

/// Prints one-way microseconds (half a round trip) of every measured round trip, one per line.
async fn lat_client(
    endpoint: &str,
    size: u64,
    roundtrips: u64,
    warmup: u64,
) -> Result<(), BoxError> {
    let req = Socket::new(SocketType::Req, options());
    req.connect(endpoint).await?;
    let payload = vec![0u8; size as usize];
    let mut one_way_us = Vec::with_capacity(roundtrips as usize);
    for i in 0..warmup + roundtrips {
        let sent = Instant::now();
        req.send(Message::from_slice(&payload)).await?;
        req.recv().await?;
        if i >= warmup {
            one_way_us.push(sent.elapsed().as_secs_f64() * 1e6 / 2.0);
        }
    }
    req.close().await?;
    let mut out = String::new();
    for us in one_way_us {
        out.push_str(&format!("{us:.3}\n"));
    }
    print!("{out}");
    Ok(())
}
