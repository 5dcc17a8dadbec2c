//! The Guide's Paranoid Pirate pattern ("ppqueue", "ppworker"): Simple Pirate with heartbeats
//! both ways between the queue and its workers. The queue forgets a worker it has not heard
//! from for [`HEARTBEAT_LIVENESS`] heartbeat intervals, so it stops sending requests into the
//! void; a worker that has not heard from the queue for as long assumes the queue died, closes
//! its socket, waits, and connects a fresh one — waiting twice as long after each failure, up
//! to a maximum — and says READY again. Clients are Lazy Pirate clients, resending a request
//! that got no reply in time.
//!
//! ```text
//! cargo run --example paranoid_pirate                                        # demo, exits 0
//! cargo run --example paranoid_pirate -- queue tcp://*:5555 tcp://*:5556
//! cargo run --example paranoid_pirate -- worker tcp://localhost:5556
//! cargo run --example paranoid_pirate -- client tcp://localhost:5555
//! ```
//!
//! The protocol is the Guide's (RFC 6, PPP): a worker's DEALER sends `["\x01"]` (READY) once,
//! `["\x02"]` (HEARTBEAT) every interval, and `[client, "", reply]`; the queue's ROUTER sends
//! `[worker, "\x02"]` every interval and `[worker, client, "", request]`. Unlike the Guide's
//! queue, this one takes only a READY from a worker it does not know — a heartbeat or reply
//! from one it forgot (or from before it restarted) is ignored, so that worker's heartbeats
//! go unanswered and it reconnects and says READY.
//!
//! The demo kills the queue after a few requests and starts a new one on the same endpoints:
//! the request in flight is lost, the clients resend, and every worker, hearing nothing from
//! the new queue, reconnects to it.

/// The Lazy Pirate client's reliable request, shared rather than written again.
#[allow(dead_code)]
#[path = "lazy_pirate.rs"]
mod lazy_pirate;
use bytes::Bytes;
use ferromq::{Dealer, Message, Router, SocketOptions};
use futures::future::try_join_all;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// A worker's first message.
pub const READY: &[u8] = b"\x01";
/// Sent by both sides every heartbeat interval.
pub const HEARTBEAT: &[u8] = b"\x02";
/// Heartbeat intervals without a word before a peer is taken for dead.
pub const HEARTBEAT_LIVENESS: u32 = 3;

/// The pattern's timing.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Between heartbeats, both ways.
    pub heartbeat: Duration,
    /// A worker's first wait before reconnecting; doubled after each failure.
    pub reconnect_initial: Duration,
    /// The longest a worker waits before reconnecting.
    pub reconnect_max: Duration,
    /// How long a client waits for a reply before resending.
    pub request_timeout: Duration,
    /// Resends per request before a client gives up.
    pub max_retries: usize,
}

impl Timing {
    /// The Guide's: 1 s heartbeats, reconnecting after 1 s up to 32 s, 2.5 s request timeout.
    pub const GUIDE: Timing = Timing {
        heartbeat: Duration::from_secs(1),
        reconnect_initial: Duration::from_secs(1),
        reconnect_max: Duration::from_secs(32),
        request_timeout: Duration::from_millis(2500),
        max_retries: 3,
    };

    /// Fast, for the demo and the tests.
    pub const DEMO: Timing = Timing {
        heartbeat: Duration::from_millis(50),
        reconnect_initial: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(800),
        request_timeout: Duration::from_millis(300),
        max_retries: 10,
    };

    fn expiry(&self) -> Duration {
        self.heartbeat * HEARTBEAT_LIVENESS
    }
}

/// What one queue incarnation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueReport {
    /// Requests sent to workers.
    pub forwarded: usize,
    /// Workers forgotten for silence.
    pub expired: usize,
}

/// Binds a ROUTER that drops what it holds when closed (a crash), retrying briefly while a
/// previous incarnation's listener on `endpoint` is being torn down.
async fn bind_router(endpoint: &str) -> ferromq::Result<Router> {
    let mut options = SocketOptions::default();
    options.linger = Some(Duration::ZERO);
    for _ in 0..100 {
        let router = Router::with_options(options.clone())?;
        if router.bind(endpoint).is_ok() {
            return Ok(router);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let router = Router::with_options(options)?;
    router.bind(endpoint)?;
    Ok(router)
}

enum Event {
    FromWorker(ferromq::Result<Message>),
    FromClient(ferromq::Result<Message>),
    Heartbeat,
}

/// The queue on two endpoints: runs until it has forwarded `crash_after` requests (`None`:
/// forever), then drops everything, as a crash would.
pub async fn queue(
    frontend_endpoint: &str,
    backend_endpoint: &str,
    timing: Timing,
    crash_after: Option<usize>,
) -> ferromq::Result<QueueReport> {
    let frontend = bind_router(frontend_endpoint).await?;
    let backend = bind_router(backend_endpoint).await?;
    let mut report = QueueReport::default();
    // Every worker that said READY, with when it expires; the idle ones, longest idle first.
    let mut expiries: HashMap<Bytes, Instant> = HashMap::new();
    let mut idle: VecDeque<Bytes> = VecDeque::new();
    let mut heartbeat_at = Instant::now() + timing.heartbeat;
    while crash_after.is_none_or(|n| report.forwarded < n) {
        let event = tokio::select! {
            m = backend.recv() => Event::FromWorker(m),
            m = frontend.recv(), if !idle.is_empty() => Event::FromClient(m),
            () = tokio::time::sleep_until(heartbeat_at) => Event::Heartbeat,
        };
        match event {
            Event::FromWorker(message) => {
                let mut frames = message?.into_frames();
                let worker = frames[0].clone();
                let known = expiries.contains_key(&worker);
                match &frames[1..] {
                    [signal] if signal == READY => {
                        idle.retain(|w| *w != worker);
                        idle.push_back(worker.clone());
                    }
                    [signal] if signal == HEARTBEAT && known => {}
                    [_client, _, ..] if known => {
                        // [worker, client, "", reply] → [client, "", reply]
                        frontend.send(Message::from(frames.split_off(1))).await?;
                        idle.push_back(worker.clone());
                    }
                    _ => {
                        println!("E: ignoring a message from an unknown worker");
                        continue;
                    }
                }
                expiries.insert(worker, Instant::now() + timing.expiry());
            }
            Event::FromClient(message) => {
                let mut request = message?;
                let worker = idle
                    .pop_front()
                    .expect("clients are read with a worker idle");
                request.push_front(worker);
                backend.send(request).await?;
                report.forwarded += 1;
            }
            Event::Heartbeat => {
                let now = Instant::now();
                expiries.retain(|worker, expiry| {
                    let alive = *expiry > now;
                    if !alive {
                        idle.retain(|w| w != worker);
                        report.expired += 1;
                    }
                    alive
                });
                for worker in expiries.keys() {
                    let heartbeat = Message::from(vec![worker.clone(), Bytes::from(HEARTBEAT)]);
                    backend.send(heartbeat).await?;
                }
                heartbeat_at = now + timing.heartbeat;
            }
        }
    }
    println!("I: queue crashing after {} requests", report.forwarded);
    frontend.close().await;
    backend.close().await;
    Ok(report)
}

/// A DEALER that drops what it holds when closed, connected, having said READY.
async fn connect_worker(backend: &str) -> ferromq::Result<Dealer> {
    let mut options = SocketOptions::default();
    options.linger = Some(Duration::ZERO);
    let dealer = Dealer::with_options(options)?;
    dealer.connect(backend)?;
    dealer.send(READY).await?;
    Ok(dealer)
}

/// A worker: echoes requests, heartbeats, and reconnects with back-off when the queue goes
/// quiet. Counts its reconnections in `reconnects`.
pub async fn worker(
    backend: &str,
    timing: Timing,
    reconnects: &AtomicUsize,
) -> ferromq::Result<Infallible> {
    let mut dealer = connect_worker(backend).await?;
    let mut liveness = HEARTBEAT_LIVENESS;
    let mut reconnect_wait = timing.reconnect_initial;
    let mut heartbeat_at = Instant::now() + timing.heartbeat;
    loop {
        match tokio::time::timeout(timing.heartbeat, dealer.recv()).await {
            Ok(message) => {
                let message = message?;
                match message.frames() {
                    // [client, "", request]: the work is an echo.
                    [_, _, _, ..] => dealer.send(message).await?,
                    [signal] if signal == HEARTBEAT => {}
                    _ => println!("E: invalid message from the queue"),
                }
                liveness = HEARTBEAT_LIVENESS;
                reconnect_wait = timing.reconnect_initial;
            }
            Err(_) => {
                liveness -= 1;
                if liveness == 0 {
                    println!("W: heartbeat failure, can't reach queue");
                    println!("W: reconnecting in {} ms…", reconnect_wait.as_millis());
                    dealer.close().await;
                    tokio::time::sleep(reconnect_wait).await;
                    reconnect_wait = (reconnect_wait * 2).min(timing.reconnect_max);
                    dealer = connect_worker(backend).await?;
                    reconnects.fetch_add(1, Ordering::Relaxed);
                    liveness = HEARTBEAT_LIVENESS;
                }
            }
        }
        if Instant::now() >= heartbeat_at {
            heartbeat_at = Instant::now() + timing.heartbeat;
            dealer.send(HEARTBEAT).await?;
        }
    }
}

/// A Lazy Pirate client: `requests` requests `"<name> <n>"`, each resent after the timing's
/// request timeout without a reply. Returns the replies and the resends.
pub async fn client(
    frontend: &str,
    name: &str,
    requests: usize,
    timing: Timing,
) -> ferromq::Result<(Vec<String>, usize)> {
    let req = lazy_pirate::connect_req(frontend, timing.request_timeout)?;
    let (mut replies, mut retries) = (Vec::with_capacity(requests), 0);
    for n in 1..=requests {
        let request = format!("{name} {n}");
        retries += lazy_pirate::request_reliably(&req, &request, timing.max_retries, true).await?;
        replies.push(request);
    }
    Ok((replies, retries))
}

/// What a demo run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Each client's replies, in order.
    pub replies: Vec<Vec<String>>,
    /// Requests resent, over all clients.
    pub retries: usize,
    /// Worker reconnections, over all workers.
    pub reconnects: usize,
    /// What the queue that crashed did.
    pub first_queue: QueueReport,
}

/// A free port on 127.0.0.1, for endpoints that a restarted queue binds again.
async fn free_endpoint() -> ferromq::Result<String> {
    let probe = Router::new();
    let endpoint = probe.bind("tcp://127.0.0.1:0")?.to_string();
    probe.close().await;
    Ok(endpoint)
}

/// A queue that crashes after forwarding `crash_after` requests and is restarted, `workers`
/// workers and `clients` clients of `requests` requests each, with [`Timing::DEMO`].
pub async fn demo(
    clients: usize,
    workers: usize,
    requests: usize,
    crash_after: usize,
) -> ferromq::Result<Report> {
    let timing = Timing::DEMO;
    let frontend = free_endpoint().await?;
    let backend = free_endpoint().await?;
    let reconnects = AtomicUsize::new(0);
    let mut first_queue = QueueReport::default();
    let queues = async {
        first_queue = queue(&frontend, &backend, timing, Some(crash_after)).await?;
        queue(&frontend, &backend, timing, None).await
    };
    let workers = try_join_all((0..workers).map(|_| worker(&backend, timing, &reconnects)));
    let names: Vec<String> = (0..clients).map(|c| format!("client-{c}")).collect();
    let clients = try_join_all(
        names
            .iter()
            .map(|name| client(&frontend, name, requests, timing)),
    );
    let done = tokio::select! {
        Err(e) = queues => Err(e),
        Err(e) = workers => Err(e),
        done = clients => done,
    }?;
    let retries = done.iter().map(|(_, r)| r).sum();
    let replies = done.into_iter().map(|(replies, _)| replies).collect();
    Ok(Report {
        replies,
        retries,
        reconnects: reconnects.load(Ordering::Relaxed),
        first_queue,
    })
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
            let report = demo(2, 3, 10, 5).await?;
            println!(
                "I: all replies in, after {} retries and {} worker reconnections",
                report.retries, report.reconnects
            );
        }
        ["queue", frontend, backend] => {
            queue(frontend, backend, Timing::GUIDE, None).await?;
        }
        ["worker", backend] => {
            let never = worker(backend, Timing::GUIDE, &AtomicUsize::new(0)).await?;
            match never {}
        }
        ["client", frontend] => {
            let name = format!("client-{}", std::process::id());
            client(frontend, &name, 10, Timing::GUIDE).await?;
        }
        _ => {
            eprintln!(
                "usage: paranoid_pirate [queue <frontend> <backend> | worker <backend> \
                 | client <frontend>]"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}
