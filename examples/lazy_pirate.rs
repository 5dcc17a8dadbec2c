//! The ZeroMQ Guide's Lazy Pirate pattern: reliable request–reply on the client side only.
//! The client (REQ) waits for each reply at most a receive timeout; when none comes it sends
//! the request again, up to a number of retries, then gives up.
//!
//! The Guide's client closes and reopens its socket to get out of REQ's lock-step; this one
//! uses `req_relaxed` (send again without the reply) with `req_correlate` (a reply to an
//! abandoned request is recognised and dropped), which does the same without reconnecting.
//!
//! The server (REP) "crashes" on every `crash-every`th request it receives: it closes its
//! socket without answering and binds a fresh one on the same endpoint, so that request is
//! lost and the client's reconnection and retry are exercised.
//!
//! Usage: `lazy_pirate [requests] [crash-every]` (defaults 10, 3).
//! Runs on a current-thread runtime. `tests/guide_patterns.rs` runs [`run`] too.

use ferromq::{Error, Rep, Req, SocketOptions};
use std::convert::Infallible;
use std::time::Duration;

/// How long the client waits for a reply before sending the request again.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(250);
/// Attempts per request beyond the first before the client gives up.
pub const MAX_RETRIES: usize = 5;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ferromq::Result<()> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let report = run(arg(1, 10), arg(2, 3).max(1), true).await?;
    println!(
        "I: {} replies, {} retries, server dropped {} requests",
        report.replies, report.retries, report.dropped
    );
    Ok(())
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Requests answered correctly.
    pub replies: usize,
    /// Requests sent again after a timeout.
    pub retries: usize,
    /// Requests the server dropped by "crashing".
    pub dropped: usize,
}

/// Binds a REP on `endpoint`, retrying briefly while the previous incarnation's listener is
/// still being torn down.
async fn bind_rep(endpoint: &str) -> ferromq::Result<Rep> {
    let mut attempts = 0;
    loop {
        let rep = Rep::new();
        match rep.bind(endpoint) {
            Ok(_) => return Ok(rep),
            Err(_) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// An echo server that drops every `crash_every`th request by closing its socket unanswered
/// and binding a new one. Counts the drops in `dropped`.
pub async fn server(
    endpoint: &str,
    crash_every: usize,
    dropped: &mut usize,
) -> ferromq::Result<Infallible> {
    let mut rep = bind_rep(endpoint).await?;
    let mut received = 0;
    loop {
        let request = rep.recv().await?;
        received += 1;
        if received % crash_every == 0 {
            *dropped += 1;
            rep.close().await;
            rep = bind_rep(endpoint).await?;
            continue;
        }
        rep.send(request).await?;
    }
}

/// The Lazy Pirate client: `requests` numbered requests, each retried on timeout; every
/// reply must echo the request it answers. Returns (replies, retries).
pub async fn client(
    endpoint: &str,
    requests: usize,
    verbose: bool,
) -> ferromq::Result<(usize, usize)> {
    let req = connect_req(endpoint, REQUEST_TIMEOUT)?;
    let mut retries = 0;
    for sequence in 1..=requests {
        retries += request_reliably(&req, &sequence.to_string(), MAX_RETRIES, verbose).await?;
    }
    Ok((requests, retries))
}

/// A REQ connected to `endpoint` as every Pirate client uses it: it may send again without a
/// reply (`req_relaxed`), a late reply to an earlier send is dropped (`req_correlate`), and
/// a receive gives up after `request_timeout`.
pub fn connect_req(endpoint: &str, request_timeout: Duration) -> ferromq::Result<Req> {
    let mut options = SocketOptions::default();
    options.recv_timeout = Some(request_timeout);
    options.req_relaxed = true; // may send again without a reply…
    options.req_correlate = true; // …and a late reply to the earlier send is dropped
    let req = Req::with_options(options)?;
    req.connect(endpoint)?;
    Ok(req)
}

/// Sends `request` on `req` (made by [`connect_req`])
/// until a reply echoes it, sending it again after each timeout, at most `max_retries` times.
/// Returns how many times it was sent again. The Lazy Pirate client's step, which the Simple
/// and Paranoid Pirate clients take too.
pub async fn request_reliably(
    req: &Req,
    request: &str,
    max_retries: usize,
    verbose: bool,
) -> ferromq::Result<usize> {
    let mut retries = 0;
    loop {
        req.send(request).await?;
        match req.recv().await {
            Ok(reply) if reply.first().is_some_and(|f| *f == request) => {
                if verbose {
                    println!("I: server replied OK ({request})");
                }
                return Ok(retries);
            }
            Ok(_) => return Err(Error::MalformedMessage("reply does not echo the request")),
            Err(Error::Timeout(_)) if retries < max_retries => {
                retries += 1;
                if verbose {
                    println!("W: no response from server, retrying ({request})");
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs server and client in this process until the client is done.
pub async fn run(requests: usize, crash_every: usize, verbose: bool) -> ferromq::Result<Report> {
    // Find a free port once; the server rebinds that same endpoint after each crash.
    let endpoint = {
        let probe = Rep::new();
        let endpoint = probe.bind("tcp://127.0.0.1:0")?.to_string();
        probe.close().await;
        endpoint
    };
    let mut dropped = 0;
    let outcome = tokio::select! {
        Err(e) = server(&endpoint, crash_every, &mut dropped) => Err(e),
        done = client(&endpoint, requests, verbose) => done,
    };
    let (replies, retries) = outcome?;
    Ok(Report {
        replies,
        retries,
        dropped,
    })
}
