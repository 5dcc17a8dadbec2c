//! Every socket's [`stats`](ferromq::Socket::stats) as Prometheus metrics over HTTP, in the
//! OpenMetrics text format, built with the `prometheus-client` crate.
//!
//! ```text
//!   client_a (REQ) ─┐                                    ┌─ worker_0 (REP)
//!                   ├─► broker_frontend (ROUTER) ═proxy═ broker_backend (DEALER) ─┤
//!   client_b (REQ) ─┘                                    └─ worker_1 (REP)
//!
//!   ventilator (PUSH) ──► sink (PULL)            GET /metrics ──► OpenMetrics text
//! ```
//!
//! A [`SocketCollector`] holds the sockets the program registered, each under a name, and
//! takes a `stats()` snapshot of each one only when `/metrics` is scraped: no per-message work
//! is added and nothing is counted twice, since the counters are the socket's own. Per socket
//! (label `socket`) and per connected peer (labels `socket`, `endpoint`, `peer`) it exports
//! messages and bytes in and out as counters (throughput is `rate()` of them), drops,
//! reconnects, the queue lengths in and out with their high-water marks, the connected peers,
//! when each peer connected, and each peer's heartbeat round trip. The response time is the
//! clients' own measurement: each REQ client times every request → reply round trip into a
//! `Histogram` labelled with its name and the endpoint it connected to.
//!
//! The HTTP side is a minimal hand-written HTTP/1.1 server on tokio's `TcpListener`:
//! `GET /metrics` answers 200 with the exposition, anything else 404.
//!
//! Run with `cargo run --example metrics`: it runs a fixed amount of traffic, scrapes its own
//! `/metrics` over HTTP, prints the scrape, checks that the per-socket and per-peer series and
//! the histogram are there with non-zero values, and exits 0 (1 naming what is missing).
//! With `cargo run --example metrics -- --serve [--listen 127.0.0.1:9100]` it keeps traffic
//! flowing and serves until Ctrl-C; then `curl http://127.0.0.1:9100/metrics`, or point a
//! Prometheus scrape job at it and graph e.g.
//! `rate(ferromq_peer_received_messages_total[1m])` or
//! `histogram_quantile(0.99, rate(ferromq_req_round_trip_seconds_bucket[1m]))`.
//!
//! Runs on a current-thread runtime. `tests/metrics_example.rs` runs [`self_test`] too.

use ferromq::stats::{PeerStats, SocketStats};
use ferromq::{Dealer, Pull, Push, Rep, Req, Router, Socket, SocketOptions};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What the server answers `GET /metrics` with: the OpenMetrics text format, which
/// `prometheus_client::encoding::text::encode` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The default `--listen` address: loopback, a port the OS picks.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";
/// Request–reply round trips each client makes in the self-test.
pub const REQUESTS_PER_CLIENT: u64 = 200;
/// Messages the ventilator pushes in the self-test.
pub const PIPELINE_MESSAGES: u64 = 1500;
/// Of those, how many the sink leaves unread, so the scrape shows a non-empty queue (kept
/// below the default receive HWM of 1000 so the ventilator never waits).
pub const PIPELINE_BACKLOG: u64 = 250;
/// Heartbeat interval on every socket, so each peer reports a heartbeat round trip soon.
pub const HEARTBEAT_IVL: Duration = Duration::from_millis(50);
/// How long the self-test waits for peers to connect, traffic to finish and heartbeats to be
/// answered before it gives up.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest a client may take to send an HTTP request head, and its most bytes; a slow or
/// oversized request is dropped rather than holding a task.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;

/// An error from the demo: a socket, I/O, encoding, or a failed check.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut serve = false;
    let mut listen = DEFAULT_LISTEN.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.len()) {
            ("--serve", _) => serve = true,
            ("--listen", 1..) => listen = args.next().expect("counted"),
            _ => {
                eprintln!("usage: metrics [--serve] [--listen ADDR]   (default {DEFAULT_LISTEN})");
                return ExitCode::from(2);
            }
        }
    }
    let listen: SocketAddr = match listen.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("metrics: --listen {listen}: {e}");
            return ExitCode::from(2);
        }
    };

    let outcome = if serve {
        serve_forever(listen).await.map(|()| ExitCode::SUCCESS)
    } else {
        self_test(listen).await.map(|scrape| {
            print!("{scrape}");
            match check(&scrape) {
                Ok(series) => {
                    eprintln!("metrics: {series} expected series present with their values");
                    ExitCode::SUCCESS
                }
                Err(missing) => {
                    eprintln!("metrics: the scrape lacks {missing}");
                    ExitCode::FAILURE
                }
            }
        })
    };
    outcome.unwrap_or_else(|e| {
        eprintln!("metrics: {e}");
        ExitCode::FAILURE
    })
}

/// Runs the demo with a fixed amount of traffic and returns one scrape of its `/metrics`,
/// fetched over HTTP from the server listening on `listen`.
pub async fn self_test(listen: SocketAddr) -> Result<String, BoxError> {
    let demo = Demo::start(listen).await?;
    within(SETTLE_TIMEOUT, "traffic", demo.fixed_traffic()).await??;
    within(SETTLE_TIMEOUT, "settling", demo.settled()).await?;
    scrape(demo.addr).await
}

/// Serves `/metrics` on `listen` with traffic flowing until Ctrl-C.
async fn serve_forever(listen: SocketAddr) -> Result<(), BoxError> {
    let mut demo = Demo::start(listen).await?;
    println!("serving http://{}/metrics (Ctrl-C to stop)", demo.addr);
    demo.spawn_steady_traffic();
    tokio::signal::ctrl_c().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The collector: socket stats at scrape time.

/// The sockets to export, each under a name, snapshotted at every scrape.
///
/// Registered in a [`Registry`] (through an `Arc`, so sockets can still be added after),
/// it emits one metric family per counter or gauge, with one series per socket or per peer.
/// Names must be unique, or two sockets would write the same series. It keeps only weak
/// references: a socket that is dropped leaves the scrape.
#[derive(Default)]
pub struct SocketCollector {
    sockets: Mutex<Vec<Watched>>,
}

/// One registered socket.
struct Watched {
    name: String,
    /// Its stats, while it is alive.
    stats: Box<dyn Fn() -> Option<SocketStats> + Send + Sync>,
}

impl SocketCollector {
    /// Exports `socket`'s stats under the label `socket="{name}"`.
    pub fn register<S: Socket>(&self, name: impl Into<String>, socket: &Arc<S>) {
        let socket: Weak<S> = Arc::downgrade(socket);
        let watched = Watched {
            name: name.into(),
            stats: Box::new(move || socket.upgrade().map(|s| s.stats())),
        };
        self.sockets.lock().expect("collector lock").push(watched);
    }

    /// A snapshot of every live socket, in registration order; forgets the dropped ones.
    fn snapshot(&self) -> Vec<Snapshot> {
        let mut sockets = self.sockets.lock().expect("collector lock");
        let mut snapshots = Vec::with_capacity(sockets.len());
        sockets.retain(|watched| match (watched.stats)() {
            Some(stats) => {
                snapshots.push(Snapshot::new(watched.name.clone(), stats));
                true
            }
            None => false,
        });
        snapshots
    }
}

impl fmt::Debug for SocketCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sockets = self.sockets.lock().expect("collector lock");
        f.debug_list()
            .entries(sockets.iter().map(|watched| &watched.name))
            .finish()
    }
}

/// One socket's stats with the label values of it and its peers, made once per scrape.
struct Snapshot {
    name: String,
    stats: SocketStats,
    /// Per peer, in `stats.peers` order: `(endpoint, peer)`.
    peer_labels: Vec<(String, String)>,
}

impl Snapshot {
    fn new(name: String, stats: SocketStats) -> Self {
        let peer_labels = stats
            .peers
            .iter()
            .enumerate()
            .map(|(i, peer)| (peer.endpoint.to_string(), peer_name(peer, i)))
            .collect();
        Snapshot {
            name,
            stats,
            peer_labels,
        }
    }

    /// The labels of the socket's own series.
    fn labels(&self) -> [(&str, &str); 2] {
        [
            ("socket", &self.name),
            ("socket_type", self.stats.socket_type.as_str()),
        ]
    }

    /// Each peer with the labels of its series.
    fn peers(&self) -> impl Iterator<Item = ([(&str, &str); 4], &PeerStats)> {
        self.stats
            .peers
            .iter()
            .zip(&self.peer_labels)
            .map(|(peer, (endpoint, name))| {
                let labels = [
                    ("socket", self.name.as_str()),
                    ("endpoint", endpoint.as_str()),
                    ("peer", name.as_str()),
                    ("peer_type", peer.socket_type.as_str()),
                ];
                (labels, peer)
            })
    }
}

/// How a peer is named in the `peer` label: its `ip:port`, else its routing id (as text when
/// printable, else hex), else its place among the socket's peers (IPC peers without an id).
fn peer_name(peer: &PeerStats, index: usize) -> String {
    if let Some(address) = &peer.address {
        return address.clone();
    }
    match &peer.routing_id {
        Some(id) if !id.is_empty() && id.iter().all(u8::is_ascii_graphic) => {
            String::from_utf8_lossy(id).into_owned()
        }
        Some(id) if !id.is_empty() => {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
        _ => format!("#{index}"),
    }
}

/// How a metric reads its value from a socket's or a peer's stats.
enum Read<T> {
    /// A counter; the encoder adds `_total` to the name.
    Counter(fn(&T) -> u64),
    /// A gauge in whole units.
    Gauge(fn(&T) -> usize),
    /// A gauge in seconds; `None` leaves the series out.
    Seconds(fn(&T) -> Option<f64>),
}

/// One metric family taken from the stats.
struct Metric<T> {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    read: Read<T>,
}

/// Shorthand for a table row.
fn metric<T>(
    name: &'static str,
    unit: Option<Unit>,
    read: Read<T>,
    help: &'static str,
) -> Metric<T> {
    Metric {
        name,
        help,
        unit,
        read,
    }
}

/// The per-socket families, labelled `socket` and `socket_type`. Totals include peers that
/// have gone, so they never go down.
#[rustfmt::skip]
fn socket_metrics() -> [Metric<SocketStats>; 7] {
    use Read::*;
    [
        metric("socket_received_messages", None, Counter(|s| s.messages_in), "Messages received (a multipart message counts once)."),
        metric("socket_sent_messages", None, Counter(|s| s.messages_out), "Messages queued for peers."),
        metric("socket_received", Some(Unit::Bytes), Counter(|s| s.bytes_in), "Payload bytes received."),
        metric("socket_sent", Some(Unit::Bytes), Counter(|s| s.bytes_out), "Payload bytes queued for peers."),
        metric("socket_dropped_messages", None, Counter(|s| s.dropped), "Messages dropped at a peer's send HWM or for want of a route."),
        metric("socket_queued_in_messages", None, Gauge(|s| s.queued_in), "Received messages waiting for the application."),
        metric("socket_peers", None, Gauge(|s| s.peers.len()), "Peers connected with a completed handshake."),
    ]
}

/// The per-peer families, labelled `socket`, `endpoint`, `peer` and `peer_type`.
#[rustfmt::skip]
fn peer_metrics() -> [Metric<PeerStats>; 12] {
    use Read::*;
    [
        metric("peer_received_messages", None, Counter(|p| p.messages_in), "Messages received from this peer."),
        metric("peer_sent_messages", None, Counter(|p| p.messages_out), "Messages queued for this peer."),
        metric("peer_received", Some(Unit::Bytes), Counter(|p| p.bytes_in), "Payload bytes received from this peer."),
        metric("peer_sent", Some(Unit::Bytes), Counter(|p| p.bytes_out), "Payload bytes queued for this peer."),
        metric("peer_dropped_messages", None, Counter(|p| p.dropped), "Messages for this peer dropped at its send HWM."),
        metric("peer_queued_in_messages", None, Gauge(|p| p.queued_in), "Messages from this peer waiting for the application."),
        metric("peer_rcvhwm_messages", None, Gauge(|p| p.rcvhwm), "The receive HWM that peer_queued_in_messages counts against (0: none)."),
        metric("peer_queued_out_messages", None, Gauge(|p| p.queued_out), "Messages waiting for this peer's connection to write them."),
        metric("peer_sndhwm_messages", None, Gauge(|p| p.sndhwm), "The send HWM that peer_queued_out_messages counts against (0: none)."),
        metric("peer_reconnects", None, Counter(|p| p.reconnects), "Connections to this connected endpoint before this one."),
        metric("peer_connected_since", Some(Unit::Seconds), Seconds(|p| Some(unix_seconds(p.connected_since))), "When the handshake completed, as a Unix time."),
        metric("peer_heartbeat_rtt", Some(Unit::Seconds), Seconds(|p| Some(p.heartbeat_rtt?.as_secs_f64())), "Round trip of the last heartbeat PING the peer answered."),
    ]
}

impl Collector for SocketCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let sockets = self.snapshot();
        for metric in socket_metrics() {
            let series = sockets.iter().map(|s| (s.labels(), &s.stats));
            encode_family(&mut encoder, &metric, series)?;
        }
        for metric in peer_metrics() {
            let series = sockets.iter().flat_map(Snapshot::peers);
            encode_family(&mut encoder, &metric, series)?;
        }
        Ok(())
    }
}

/// Writes one metric family with a series per `(labels, stats)`.
fn encode_family<'a, T: 'a, L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    metric: &Metric<T>,
    series: impl Iterator<Item = (L, &'a T)>,
) -> fmt::Result {
    let metric_type = match metric.read {
        Read::Counter(_) => MetricType::Counter,
        Read::Gauge(_) | Read::Seconds(_) => MetricType::Gauge,
    };
    let mut family =
        encoder.encode_descriptor(metric.name, metric.help, metric.unit.as_ref(), metric_type)?;
    for (labels, stats) in series {
        match metric.read {
            Read::Counter(read) => {
                ConstCounter::new(read(stats)).encode(family.encode_family(&labels)?)?
            }
            Read::Gauge(read) => {
                ConstGauge::new(read(stats)).encode(family.encode_family(&labels)?)?
            }
            Read::Seconds(read) => {
                if let Some(seconds) = read(stats) {
                    ConstGauge::new(seconds).encode(family.encode_family(&labels)?)?;
                }
            }
        }
    }
    Ok(())
}
/// Seconds since the Unix epoch (0 for a time before it).
fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// Response time: measured by the clients.

/// The labels of a client's round-trip histogram: the client's name and the endpoint it
/// connected to (with one endpoint per client, that is the peer that answered).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RoundTripLabels {
    /// The client socket's name, as in the collector's `socket` label.
    pub socket: String,
    /// The endpoint the client connected to.
    pub endpoint: String,
}

/// Request → reply round trips per client, in seconds.
pub type RoundTrips = Family<RoundTripLabels, Histogram>;

/// A histogram from 25 µs to about 0.8 s, doubling: loopback round trips sit near the bottom,
/// a stalled broker near the top.
fn round_trip_histogram() -> Histogram {
    Histogram::new(exponential_buckets(25e-6, 2.0, 16))
}

/// A REQ client: sends `requests` requests (without end for `None`), waiting `pause` after
/// each reply, and records each request → reply round trip in `round_trips`.
pub async fn client(
    req: &Req,
    labels: &RoundTripLabels,
    round_trips: &RoundTrips,
    requests: Option<u64>,
    pause: Duration,
) -> ferromq::Result<()> {
    let histogram = round_trips.get_or_create_owned(labels);
    let mut sent = 0u64;
    while requests.is_none_or(|n| sent < n) {
        let started = Instant::now();
        req.send(format!("{} request {sent}", labels.socket))
            .await?;
        req.recv().await?;
        histogram.observe(started.elapsed().as_secs_f64());
        sent += 1;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(())
}

/// A REP worker: answers every request with the request plus a line naming itself.
pub async fn worker(rep: &Rep, name: &str) -> ferromq::Result<Infallible> {
    loop {
        let mut reply = rep.recv().await?;
        reply.push_back(format!("served by {name}"));
        rep.send(reply).await?;
    }
}

/// The ventilator of `--serve`: bursts of 100 messages ten times a second, for ever.
async fn ventilate(push: &Push) -> ferromq::Result<Infallible> {
    let mut sent = 0u64;
    loop {
        for _ in 0..100 {
            push.send(format!("task {sent}")).await?;
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sink of `--serve`: reads everything, for ever.
async fn drain(pull: &Pull) -> ferromq::Result<Infallible> {
    loop {
        pull.recv().await?;
    }
}

// ---------------------------------------------------------------------------------------------
// The demo: sockets, traffic and the HTTP server.

/// Every socket of the demo, registered with the collector, and the HTTP server.
/// Dropping it stops the broker, the workers, the server and any steady traffic.
pub struct Demo {
    /// Where `/metrics` is served.
    pub addr: SocketAddr,
    round_trips: RoundTrips,
    frontend: Arc<Router>,
    backend: Arc<Dealer>,
    clients: Vec<(Arc<Req>, RoundTripLabels)>,
    ventilator: Arc<Push>,
    sink: Arc<Pull>,
    /// The broker, the workers, the HTTP server and steady traffic; aborted on drop.
    tasks: JoinSet<()>,
}

impl Demo {
    /// Binds and connects every socket, registers each with a [`SocketCollector`], starts
    /// the broker and the workers, and serves `/metrics` on `listen`.
    pub async fn start(listen: SocketAddr) -> Result<Demo, BoxError> {
        let collector = Arc::new(SocketCollector::default());
        let mut registry = Registry::with_prefix("ferromq");
        registry.register_collector(Box::new(collector.clone()));
        let round_trips = RoundTrips::new_with_constructor(round_trip_histogram);
        registry.register_with_unit(
            "req_round_trip",
            "Request to reply round trip, timed by the REQ client",
            Unit::Seconds,
            round_trips.clone(),
        );
        let mut tasks = JoinSet::new();

        // Request–reply through a broker.
        let frontend = Arc::new(Router::with_options(options())?);
        let frontend_endpoint = frontend.bind("tcp://127.0.0.1:0")?.to_string();
        let backend = Arc::new(Dealer::with_options(options())?);
        let backend_endpoint = backend.bind("tcp://127.0.0.1:0")?;
        collector.register("broker_frontend", &frontend);
        collector.register("broker_backend", &backend);
        tasks.spawn(report_failure("broker", {
            let (frontend, backend) = (frontend.clone(), backend.clone());
            async move { ferromq::proxy(&*frontend, &*backend, None).await }
        }));
        for w in 0..2 {
            let name = format!("worker_{w}");
            let rep = Arc::new(Rep::with_options(options())?);
            rep.connect(&backend_endpoint)?;
            collector.register(&name, &rep);
            tasks.spawn(report_failure("worker", async move {
                worker(&rep, &name).await
            }));
        }
        let mut clients = Vec::new();
        for name in ["client_a", "client_b"] {
            let req = Arc::new(Req::with_options(options())?);
            req.connect(frontend_endpoint.as_str())?;
            collector.register(name, &req);
            let labels = RoundTripLabels {
                socket: name.to_owned(),
                endpoint: frontend_endpoint.clone(),
            };
            clients.push((req, labels));
        }

        // A pipeline.
        let ventilator = Arc::new(Push::with_options(options())?);
        let pipeline_endpoint = ventilator.bind("tcp://127.0.0.1:0")?;
        let sink = Arc::new(Pull::with_options(options())?);
        sink.connect(&pipeline_endpoint)?;
        collector.register("ventilator", &ventilator);
        collector.register("sink", &sink);

        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        tasks.spawn(report_failure(
            "http server",
            serve(listener, Arc::new(registry)),
        ));

        Ok(Demo {
            addr,
            round_trips,
            frontend,
            backend,
            clients,
            ventilator,
            sink,
            tasks,
        })
    }

    /// Waits until every peer is connected (so both workers and both clients take part),
    /// then runs [`REQUESTS_PER_CLIENT`] round trips per client and pushes
    /// [`PIPELINE_MESSAGES`], of which the sink reads all but [`PIPELINE_BACKLOG`].
    pub async fn fixed_traffic(&self) -> ferromq::Result<()> {
        self.connected().await;
        let requests = futures::future::try_join_all(self.clients.iter().map(|(req, labels)| {
            client(
                req,
                labels,
                &self.round_trips,
                Some(REQUESTS_PER_CLIENT),
                Duration::ZERO,
            )
        }));
        let pushing = async {
            for i in 0..PIPELINE_MESSAGES {
                self.ventilator.send(format!("task {i}")).await?;
            }
            Ok(())
        };
        let pulling = async {
            for _ in 0..PIPELINE_MESSAGES - PIPELINE_BACKLOG {
                self.sink.recv().await?;
            }
            Ok(())
        };
        tokio::try_join!(requests, pushing, pulling).map(drop)
    }

    /// Keeps traffic flowing until the demo is dropped: about 100 round trips a second per
    /// client, and bursts of 100 pipeline messages ten times a second.
    pub fn spawn_steady_traffic(&mut self) {
        for (req, labels) in &self.clients {
            let (req, labels, round_trips) =
                (req.clone(), labels.clone(), self.round_trips.clone());
            self.tasks.spawn(report_failure("client", async move {
                client(&req, &labels, &round_trips, None, Duration::from_millis(10)).await
            }));
        }
        let ventilator = self.ventilator.clone();
        self.tasks.spawn(report_failure("ventilator", async move {
            ventilate(&ventilator).await
        }));
        let sink = self.sink.clone();
        self.tasks
            .spawn(report_failure("sink", async move { drain(&sink).await }));
    }

    /// Waits until both clients and both workers are connected to the broker and the
    /// pipeline is connected.
    async fn connected(&self) {
        wait_until(|| {
            self.frontend.peer_count() == self.clients.len()
                && self.backend.peer_count() == 2
                && self.clients.iter().all(|(req, _)| req.peer_count() == 1)
                && self.ventilator.peer_count() == 1
                && self.sink.peer_count() == 1
        })
        .await
    }

    /// Waits until the sink holds the whole backlog and every peer of the broker, the
    /// clients and the pipeline has answered a heartbeat, so one scrape shows them all.
    async fn settled(&self) {
        let heartbeats_answered = |stats: SocketStats| {
            !stats.peers.is_empty() && stats.peers.iter().all(|p| p.heartbeat_rtt.is_some())
        };
        wait_until(|| {
            self.sink.stats().messages_in == PIPELINE_MESSAGES
                && heartbeats_answered(self.frontend.stats())
                && heartbeats_answered(self.backend.stats())
                && heartbeats_answered(self.ventilator.stats())
                && heartbeats_answered(self.sink.stats())
                && self
                    .clients
                    .iter()
                    .all(|(req, _)| heartbeats_answered(req.stats()))
        })
        .await
    }
}

/// The options of every demo socket: libzmq's defaults plus heartbeats.
fn options() -> SocketOptions {
    let mut options = SocketOptions::default();
    options.heartbeat_ivl = Some(HEARTBEAT_IVL);
    options
}

/// Polls `done` every few milliseconds until it holds.
async fn wait_until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `future`, or an error naming `what` after `limit`.
async fn within<T>(
    limit: Duration,
    what: &str,
    future: impl Future<Output = T>,
) -> Result<T, BoxError> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| format!("{what} did not finish within {limit:?}").into())
}

/// Runs a task that ends only on error, printing the error.
async fn report_failure<T, E: fmt::Display>(what: &str, task: impl Future<Output = Result<T, E>>) {
    if let Err(e) = task.await {
        eprintln!("metrics: {what} failed: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP: a minimal server and the self-test's client.

/// Answers HTTP/1.1 requests on `listener`, one task per connection, one request per
/// connection: `GET /metrics` with `registry` encoded, anything else with 404.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) -> std::io::Result<Infallible> {
    loop {
        let (stream, _) = listener.accept().await?;
        let registry = registry.clone();
        tokio::spawn(async move {
            // A client that goes away mid-request is its own problem.
            let _ = answer(stream, &registry).await;
        });
    }
}

/// Reads one request head and writes the response.
async fn answer(mut stream: TcpStream, registry: &Registry) -> Result<(), BoxError> {
    let head = within(REQUEST_HEAD_TIMEOUT, "request head", read_head(&mut stream)).await??;
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split_ascii_whitespace();
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split('?').next().unwrap_or(t));
    let (status, content_type, body) = if (method, path) == (Some("GET"), Some("/metrics")) {
        let mut body = String::new();
        match encode(&mut body, registry) {
            Ok(()) => ("200 OK", CONTENT_TYPE, body),
            Err(_) => (
                "500 Internal Server Error",
                "text/plain; charset=utf-8",
                "encoding failed\n".into(),
            ),
        }
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only GET /metrics is here\n".into(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

/// Reads up to the blank line that ends an HTTP request head.
async fn read_head(stream: &mut TcpStream) -> Result<String, BoxError> {
    let mut head = Vec::with_capacity(1024);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_REQUEST_HEAD_BYTES {
            return Err("request head too long".into());
        }
        // A byte at a time is fine for a scrape every few seconds, and never reads into a body.
        if stream.read_u8().await.map(|b| head.push(b)).is_err() {
            return Err("connection closed inside the request head".into());
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Fetches `http://{addr}/metrics` and returns the body; fails on a status other than 200 or
/// another content type.
pub async fn scrape(addr: SocketAddr) -> Result<String, BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {CONTENT_TYPE}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    within(
        SETTLE_TIMEOUT,
        "scrape",
        stream.read_to_string(&mut response),
    )
    .await??;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("the response has no end of head")?;
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    if status != "HTTP/1.1 200 OK" {
        return Err(format!("GET /metrics answered {status:?}").into());
    }
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.trim());
    if content_type != Some(CONTENT_TYPE) {
        return Err(format!("GET /metrics answered content type {content_type:?}").into());
    }
    Ok(body.to_owned())
}

// ---------------------------------------------------------------------------------------------
// The self-test's check of a scrape.

/// The series every scrape of the self-test shows: `(metric, socket, series, at_least)` —
/// at least `series` series of `ferromq_{metric}` labelled `socket="{socket}"` with values of
/// at least `at_least` (0: present, [`NON_ZERO`]: positive).
const EXPECTED: &[(&str, &str, usize, f64)] = &[
    // Per socket: throughput, drops, queue, peers.
    (
        "socket_received_messages_total",
        "broker_frontend",
        1,
        (2 * REQUESTS_PER_CLIENT) as f64,
    ),
    (
        "socket_sent_messages_total",
        "ventilator",
        1,
        PIPELINE_MESSAGES as f64,
    ),
    ("socket_received_bytes_total", "sink", 1, NON_ZERO),
    ("socket_sent_bytes_total", "worker_0", 1, NON_ZERO),
    ("socket_dropped_messages_total", "broker_frontend", 1, 0.0),
    (
        "socket_queued_in_messages",
        "sink",
        1,
        PIPELINE_BACKLOG as f64,
    ),
    ("socket_peers", "broker_frontend", 1, 2.0),
    // Per peer: each client at the frontend, each worker at the backend, the pipeline.
    (
        "peer_received_messages_total",
        "broker_frontend",
        2,
        NON_ZERO,
    ),
    ("peer_sent_messages_total", "broker_backend", 2, NON_ZERO),
    ("peer_received_bytes_total", "client_a", 1, NON_ZERO),
    ("peer_sent_bytes_total", "ventilator", 1, NON_ZERO),
    ("peer_dropped_messages_total", "ventilator", 1, 0.0),
    (
        "peer_queued_in_messages",
        "sink",
        1,
        PIPELINE_BACKLOG as f64,
    ),
    ("peer_rcvhwm_messages", "sink", 1, NON_ZERO),
    ("peer_queued_out_messages", "ventilator", 1, 0.0),
    ("peer_sndhwm_messages", "ventilator", 1, NON_ZERO),
    ("peer_reconnects_total", "sink", 1, 0.0),
    ("peer_connected_since_seconds", "sink", 1, NON_ZERO),
    ("peer_heartbeat_rtt_seconds", "broker_frontend", 2, NON_ZERO),
    ("peer_heartbeat_rtt_seconds", "client_b", 1, NON_ZERO),
    // Response time, per client: every round trip counted, the +Inf bucket holds them all.
    (
        "req_round_trip_seconds_count",
        "client_a",
        1,
        REQUESTS_PER_CLIENT as f64,
    ),
    (
        "req_round_trip_seconds_count",
        "client_b",
        1,
        REQUESTS_PER_CLIENT as f64,
    ),
    ("req_round_trip_seconds_sum", "client_a", 1, NON_ZERO),
    (
        "req_round_trip_seconds_bucket",
        "client_b",
        1,
        REQUESTS_PER_CLIENT as f64,
    ),
];

/// Any positive value.
const NON_ZERO: f64 = f64::MIN_POSITIVE;

/// Checks a scrape of the self-test against [`EXPECTED`]; returns how many series it looked
/// at, or what is missing or too small.
pub fn check(scrape: &str) -> Result<usize, String> {
    if !scrape.ends_with("# EOF\n") {
        return Err("the OpenMetrics end marker `# EOF`".into());
    }
    let samples: Vec<(&str, f64)> = scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series, value.parse().ok()?))
        })
        .collect();
    let mut checked = 0;
    let mut missing = Vec::new();
    for &(metric, socket, series, at_least) in EXPECTED {
        let (prefix, label) = (
            format!("ferromq_{metric}{{"),
            format!("socket=\"{socket}\""),
        );
        let matching = samples
            .iter()
            .filter(|(s, value)| s.starts_with(&prefix) && s.contains(&label) && *value >= at_least)
            .count();
        if matching < series {
            missing.push(format!(
                "{prefix}{label}}} >= {at_least} ({matching} of {series} series)"
            ));
        }
        checked += matching;
    }
    if missing.is_empty() {
        Ok(checked)
    } else {
        Err(missing.join(", "))
    }
}
