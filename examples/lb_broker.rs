//! The ZeroMQ Guide's load-balancing broker ("lbbroker"), in one process. Clients (REQ) talk
//! to a ROUTER frontend; workers (REQ too) connect to a ROUTER backend and announce
//! themselves with "READY". The broker keeps a queue of idle workers and reads from clients
//! only while one is idle, so each request goes to a worker that is free, never queued behind
//! a busy one. A worker's reply doubles as its next "ready".
//!
//! Messages on the backend: `[worker, "", "READY"]` or `[worker, "", client, "", reply]`;
//! the broker sends `[worker, "", client, "", request]`.
//!
//! Usage: `lb_broker [clients] [workers] [requests-per-client]` (defaults 4, 2, 5).
//! Runs on a current-thread runtime. `tests/guide_patterns.rs` runs [`run`] too.

use bytes::Bytes;
use ferromq::{Message, Req, Router, SocketOptions};
use futures::future::{select_all, try_join_all};
use std::collections::VecDeque;
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
    for (client, replies) in run(arg(1, 4), arg(2, 2).max(1), arg(3, 5)).await? {
        for reply in replies {
            println!("{client}: {}", String::from_utf8_lossy(&reply));
        }
    }
    Ok(())
}

/// The worker's first message, telling the broker it is idle.
pub const READY: &str = "READY";

enum Event {
    FromWorker(ferromq::Result<Message>),
    FromClient(ferromq::Result<Message>),
}

/// Routes each client request to the longest-idle worker and each reply back to its client.
pub async fn broker(frontend: &Router, backend: &Router) -> ferromq::Result<Infallible> {
    let mut idle: VecDeque<Bytes> = VecDeque::new();
    loop {
        let event = if idle.is_empty() {
            Event::FromWorker(backend.recv().await)
        } else {
            tokio::select! {
                m = backend.recv() => Event::FromWorker(m),
                m = frontend.recv() => Event::FromClient(m),
            }
        };
        match event {
            Event::FromWorker(message) => {
                let mut frames = message?.into_frames();
                if frames.len() < 3 {
                    continue; // not from a REQ worker: ignore
                }
                idle.push_back(frames[0].clone());
                // [worker, "", signal] only says the worker is idle: this broker's READY, or
                // the Guide's one-byte "\x01" of the Simple Pirate workers, which use this
                // broker as their queue.
                if frames.len() > 3 {
                    // [worker, "", client, "", reply] → [client, "", reply]
                    frontend.send(Message::from(frames.split_off(2))).await?;
                }
            }
            Event::FromClient(message) => {
                let mut request = message?;
                let worker = idle
                    .pop_front()
                    .expect("read clients only with an idle worker");
                request.push_front(Bytes::new());
                request.push_front(worker);
                backend.send(request).await?;
            }
        }
    }
}

/// A REQ worker named `name`: announces itself, then answers each request.
pub async fn worker(backend: &str, name: &str) -> ferromq::Result<Infallible> {
    let mut options = SocketOptions::default();
    options.routing_id = Some(Bytes::copy_from_slice(name.as_bytes()));
    let req = Req::with_options(options)?;
    req.connect(backend)?;
    req.send(READY).await?;
    loop {
        // [client, "", request]
        let mut work = req.recv().await?;
        let request = work.pop_back().unwrap_or_default();
        let reply = format!("{} handled by {name}", String::from_utf8_lossy(&request));
        work.push_back(reply);
        req.send(work).await?;
    }
}

/// A REQ client: sends `requests` requests one after the other, returns the reply bodies.
pub async fn client(frontend: &str, name: &str, requests: usize) -> ferromq::Result<Vec<Bytes>> {
    let req = Req::new();
    req.connect(frontend)?;
    let mut replies = Vec::with_capacity(requests);
    for i in 0..requests {
        req.send(format!("{name} request {i}")).await?;
        let reply = req.recv().await?;
        replies.push(reply.first().cloned().unwrap_or_default());
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
) -> ferromq::Result<Vec<(String, Vec<Bytes>)>> {
    let frontend = Router::new();
    let frontend_endpoint = frontend.bind("tcp://127.0.0.1:0")?.to_string();
    let backend = Router::new();
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
        Err(e) = broker(&frontend, &backend) => Err(e),
        (Err(e), _, _) = select_all(workers) => Err(e),
        replies = clients => replies,
    }
}
