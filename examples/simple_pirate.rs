//! The Guide's Simple Pirate pattern ("spqueue", "spworker"): Lazy Pirate clients in front
//! of a load-balancing queue, with REQ workers behind it that may die. The queue is the
//! load-balancing broker (`lb_broker`) with the Guide's one-byte READY signal; the
//! reliability is all in the client, which resends a request that got no reply in time, and
//! the queue sends the retry to another idle worker.
//!
//! ```text
//! cargo run --example simple_pirate                                          # demo, exits 0
//! cargo run --example simple_pirate -- queue tcp://*:5555 tcp://*:5556
//! cargo run --example simple_pirate -- worker tcp://localhost:5556 [crash-after]
//! cargo run --example simple_pirate -- client tcp://localhost:5555
//! ```
//!
//! A worker given `crash-after` dies (closes its socket without answering) on that request,
//! like the Guide's, which crashes at random. Requests are `"<client> <n>"`, replies echo
//! them. The queue cannot tell a dead worker from a slow one: a worker that dies while idle
//! still gets a request, which is lost until the client's retry. `paranoid_pirate` fixes that
//! with heartbeats.

/// The Lazy Pirate client's reliable request, shared rather than written again.
#[allow(dead_code)]
#[path = "lazy_pirate.rs"]
mod lazy_pirate;
/// The load-balancing broker, which is the Simple Pirate queue unchanged.
#[allow(dead_code)]
#[path = "lb_broker.rs"]
mod lb_broker;
use ferromq::{Req, Router};
use futures::future::try_join_all;
use std::convert::Infallible;
use std::time::Duration;

/// A worker's first message: the Guide's `"\x01"`, so the Guide's C workers can join.
pub const READY: &[u8] = b"\x01";
/// How long a client waits for a reply before sending the request again.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// Attempts per request beyond the first before the client gives up.
pub const MAX_RETRIES: usize = 5;

/// A REQ worker: says READY, then echoes requests; on request number `crash_after` (if
/// any) it dies without answering and returns how many it answered.
pub async fn worker(backend: &str, crash_after: Option<usize>) -> ferromq::Result<usize> {
    let req = Req::new();
    req.connect(backend)?;
    req.send(READY).await?;
    for cycle in 1.. {
        // [client, "", request]
        let request = req.recv().await?;
        if crash_after == Some(cycle) {
            println!("I: simulating a crash");
            req.close().await;
            return Ok(cycle - 1);
        }
        req.send(request).await?;
    }
    unreachable!("a worker answers fewer than usize::MAX requests")
}

/// A Lazy Pirate client: `requests` requests, each sent again after [`REQUEST_TIMEOUT`]
/// without a reply, up to [`MAX_RETRIES`] times. Returns the replies and the retries.
pub async fn client(
    frontend: &str,
    name: &str,
    requests: usize,
) -> ferromq::Result<(Vec<String>, usize)> {
    let req = lazy_pirate::connect_req(frontend, REQUEST_TIMEOUT)?;
    let (mut replies, mut retries) = (Vec::with_capacity(requests), 0);
    for n in 1..=requests {
        let request = format!("{name} {n}");
        retries += lazy_pirate::request_reliably(&req, &request, MAX_RETRIES, true).await?;
        replies.push(request);
    }
    Ok((replies, retries))
}

/// What a demo run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Each client's replies, in order.
    pub replies: Vec<Vec<String>>,
    /// Requests sent again, over all clients.
    pub retries: usize,
}

/// The queue, three workers (one of which dies on its `crash_after`th request) and
/// `clients` clients of `requests` requests each.
pub async fn demo(clients: usize, requests: usize, crash_after: usize) -> ferromq::Result<Report> {
    let frontend = Router::new();
    let frontend_endpoint = frontend.bind("tcp://127.0.0.1:0")?.to_string();
    let backend = Router::new();
    let backend_endpoint = backend.bind("tcp://127.0.0.1:0")?.to_string();
    let names: Vec<String> = (0..clients).map(|c| format!("client-{c}")).collect();
    let clients = try_join_all(
        names
            .iter()
            .map(|name| client(&frontend_endpoint, name, requests)),
    );
    let crashing = async {
        worker(&backend_endpoint, Some(crash_after)).await?;
        std::future::pending::<ferromq::Result<Infallible>>().await
    };
    let done = tokio::select! {
        Err(e) = lb_broker::broker(&frontend, &backend) => Err(e),
        Err(e) = crashing => Err(e),
        Err(e) = worker(&backend_endpoint, None) => Err(e),
        Err(e) = worker(&backend_endpoint, None) => Err(e),
        done = clients => done,
    }?;
    let retries = done.iter().map(|(_, r)| r).sum();
    let replies = done.into_iter().map(|(replies, _)| replies).collect();
    Ok(Report { replies, retries })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ferromq::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {
            let report = demo(2, 10, 3).await?;
            println!("I: all replies in, after {} retries", report.retries);
        }
        ["queue", frontend_endpoint, backend_endpoint] => {
            let frontend = Router::new();
            frontend.bind(*frontend_endpoint)?;
            let backend = Router::new();
            backend.bind(*backend_endpoint)?;
            let never = lb_broker::broker(&frontend, &backend).await?;
            match never {}
        }
        ["worker", backend, rest @ ..] if rest.len() <= 1 => {
            let crash_after = rest.first().and_then(|c| c.parse().ok());
            worker(backend, crash_after).await?;
        }
        ["client", frontend] => {
            client(frontend, &format!("client-{}", std::process::id()), 10).await?;
        }
        _ => {
            eprintln!(
                "usage: simple_pirate [queue <frontend> <backend> | worker <backend> [crash-after] \
                 | client <frontend>]"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}
