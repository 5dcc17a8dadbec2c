//! One-way latency of PUSH→PULL for a sender that computes between its sends:
//!
//! ```text
//! oneway_lat recv <bind-to> <message-count> [--runtime mt|ct]
//! oneway_lat send <connect-to> <message-count> <gap-ns> [--runtime mt|ct]
//! ```
//!
//! The sender spins for `gap-ns` nanoseconds before each send, without yielding (an
//! application computing the next message), and puts the wall-clock time of the send in the
//! first 8 bytes of each 64-byte message. The receiver takes the difference to its own clock
//! on arrival (both processes on one host read the same clock) and prints the p50, p99 and
//! largest delay in microseconds. On a current-thread runtime this shows whether a message
//! leaves while its sender computes or waits until the sender gives the thread up
//! (spec/sockets.md, "Direct writes of sparse messages").

#[path = "common/shape.rs"]
mod shape;

use ferromq::{Message, Pull, Push};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bytes per message: the send time, then padding.
const MESSAGE_BYTES: usize = 64;
/// How often the sender checks for its peer before the first send, and the receiver's peer
/// for its leaving after the last.
const PEER_POLL: Duration = Duration::from_millis(5);

fn main() -> ExitCode {
    let usage = "recv <bind-to> <message-count> | send <connect-to> <message-count> <gap-ns>, \
                 then [--runtime mt|ct]";
    let shape = match shape::Shape::from_args(std::env::args().skip(1)) {
        Ok(shape) => shape,
        Err(fault) => {
            eprintln!("oneway_lat: {fault}\nusage: oneway_lat {usage}");
            return ExitCode::from(2);
        }
    };
    let numbers: Vec<u64> = shape
        .positional
        .iter()
        .skip(2)
        .filter_map(|n| n.parse().ok())
        .collect();
    let positional: Vec<&str> = shape.positional.iter().map(String::as_str).collect();
    let program = match (positional.as_slice(), numbers.as_slice()) {
        (["recv", endpoint, _], [count]) => Box::pin(receive(endpoint.to_string(), *count))
            as std::pin::Pin<Box<dyn Future<Output = ferromq::Result<()>> + Send>>,
        (["send", endpoint, _, _], [count, gap]) => Box::pin(send(
            endpoint.to_string(),
            *count,
            Duration::from_nanos(*gap),
        )),
        _ => {
            eprintln!("usage: oneway_lat {usage}");
            return ExitCode::from(2);
        }
    };
    shape.exit_status("oneway_lat", program)
}

/// Nanoseconds since the Unix epoch: the clock both processes share.
fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

async fn receive(bind_to: String, count: u64) -> ferromq::Result<()> {
    let pull = Pull::new();
    pull.bind(bind_to.as_str())?;
    let mut delays = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let message = pull.recv().await?;
        let stamp = message
            .frames()
            .first()
            .and_then(|frame| frame.get(..8))
            .and_then(|bytes| bytes.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or(ferromq::Error::MalformedMessage(
                "a message shorter than its 8-byte send time",
            ))?;
        delays.push(wall_clock_ns().saturating_sub(stamp));
    }
    delays.sort_unstable();
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    println!(
        "one-way latency: p50 {:.1} us, p99 {:.1} us, max {:.1} us over {count} messages",
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}

async fn send(connect_to: String, count: u64, gap: Duration) -> ferromq::Result<()> {
    let push = Push::new();
    push.connect(connect_to.as_str())?;
    while push.peer_count() == 0 {
        tokio::time::sleep(PEER_POLL).await;
    }
    for _ in 0..count {
        let start = Instant::now();
        while start.elapsed() < gap {
            std::hint::spin_loop();
        }
        let mut payload = vec![0u8; MESSAGE_BYTES];
        payload[..8].copy_from_slice(&wall_clock_ns().to_le_bytes());
        push.send(Message::from(payload)).await?;
    }
    while push.peer_count() > 0 {
        tokio::time::sleep(PEER_POLL).await;
    }
    Ok(())
}
