//! The ZeroMQ Guide's request–reply broker ("rrbroker"), in one process: REQ clients talk to
//! a ROUTER frontend, REP workers to a DEALER backend, and the broker — [`ferromq::proxy`] —
//! shuttles messages between the two. The ROUTER adds each client's routing id on the way in and strips it on
//! the way out, the DEALER spreads requests over workers and collects replies from all of
//! them; the REQ/REP envelopes pass through untouched, so no side knows the broker exists.
//!
//! Usage: `rr_broker [clients] [workers] [requests-per-client]` (defaults 3, 2, 5).
//! Runs on a current-thread runtime. `tests/guide_patterns.rs` runs [`run`] too.

use ferromq::{Dealer, Message, Rep, Req, Router};
use futures::future::{select_all, try_join_all};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ferromq::Result<()> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    for (client, replies) in run(arg(1, 3), arg(2, 2).max(1), arg(3, 5)).await? {
        for reply in replies {
            let text: Vec<_> = reply.iter().map(|f| String::from_utf8_lossy(f)).collect();
            println!("{client}: {}", text.join(" | "));
        }
    }
    Ok(())
}

/// A REP worker: answers every request with the request plus a line naming itself.
pub async fn worker(backend: &str, name: &str) -> ferromq::Result<Infallible> {
    let rep = Rep::new();
    rep.connect(backend)?;
    loop {
        let mut reply = rep.recv().await?;
        reply.push_back(format!("served by {name}"));
        rep.send(reply).await?;
    }
}

/// A REQ client: sends `requests` requests one after the other, returns the replies.
pub async fn client(frontend: &str, name: &str, requests: usize) -> ferromq::Result<Vec<Message>> {
    let req = Req::new();
    req.connect(frontend)?;
    let mut replies = Vec::with_capacity(requests);
    for i in 0..requests {
        req.send(format!("{name} request {i}")).await?;
        replies.push(req.recv().await?);
    }
    Ok(replies)
}

/// Runs broker, workers and clients until every client has its replies; returns them per
/// client name.
///
/// # Panics
/// When `workers` is 0.
pub async fn run(
    clients: usize,
    workers: usize,
    requests: usize,
) -> ferromq::Result<Vec<(String, Vec<Message>)>> {
    let frontend = Router::new();
    let frontend_endpoint = frontend.bind("tcp://127.0.0.1:0")?.to_string();
    let backend = Dealer::new();
    let backend_endpoint = backend.bind("tcp://127.0.0.1:0")?.to_string();
    let worker_names: Vec<String> = (0..workers).map(|w| format!("worker-{w}")).collect();
    let workers: Vec<Pin<Box<dyn Future<Output = _>>>> = worker_names
        .iter()
        .map(|name| Box::pin(worker(&backend_endpoint, name)) as Pin<Box<dyn Future<Output = _>>>)
        .collect();
    let clients = try_join_all((0..clients).map(|c| {
        let frontend_endpoint = &frontend_endpoint;
        async move {
            let name = format!("client-{c}");
            let replies = client(frontend_endpoint, &name, requests).await?;
            Ok::<_, ferromq::Error>((name, replies))
        }
    }));
    tokio::select! {
        Err(e) = ferromq::proxy(&frontend, &backend, None) => Err(e),
        (Err(e), _, _) = select_all(workers) => Err(e),
        replies = clients => replies,
    }
}
