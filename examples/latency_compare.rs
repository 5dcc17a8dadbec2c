//! Side-by-side REQ/REP latency in one run: ferromq and omq-tokio (the fastest Rust port, via
//! `tools/omq-peer`) each on tokio's multi-thread runtime (`mt`, what `#[tokio::main]` gives)
//! and on a current-thread runtime (`ct`), libzmq (the `zmq` crate) and the raw TCP floor,
//! alternating, 64-byte messages over TCP loopback, each server in its own process. Reports
//! one-way p50/p99 (half a round trip) per repetition, the medians over repetitions, and the
//! ratios to libzmq and to the raw floor. The same ping-pong written on tokio (`tokio-mt`,
//! `tokio-ct`: a `TcpStream` read and written from the loop in `block_on`) is the floor of
//! each runtime's shape: what any tokio program pays for a round trip before any library
//! work. omq is skipped, with a note, when `tools/omq-peer`
//! is not built (`cargo build --release --manifest-path tools/omq-peer/Cargo.toml`).
//!
//! ```text
//! latency_compare [roundtrips] [repetitions] [kinds]   (defaults 20000, 3, all)
//! ```
//!
//! `kinds` picks some of the kinds, comma-separated (`ferromq-mt,tokio-mt`); libzmq and raw
//! always run, as the ratios' references.
//!
//! The measuring client runs in this process; each server is this same binary re-invoked
//! as `latency_compare serve <kind> <roundtrips>`, which prints its endpoint on its first
//! stdout line; omq's client and server are `omq-peer lat-client` and `omq-peer lat-serve`.
//! Both sides of a ferromq or omq kind use the same runtime, the loop running in `block_on`;
//! libzmq sides use libzmq's defaults (one I/O thread per context besides the caller's); the
//! raw floor uses blocking std sockets with TCP_NODELAY. The first `WARMUP_ROUNDTRIPS` of each
//! run are not measured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// Message body size, bytes.
const MESSAGE_BYTES: usize = 64;
/// Round trips before measuring (connection set-up, caches, allocator warm-up).
const WARMUP_ROUNDTRIPS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FerromqMt,
    FerromqCt,
    OmqMt,
    OmqCt,
    Libzmq,
    Raw,
    TokioMt,
    TokioCt,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::FerromqMt,
        Kind::FerromqCt,
        Kind::OmqMt,
        Kind::OmqCt,
        Kind::Libzmq,
        Kind::Raw,
        Kind::TokioMt,
        Kind::TokioCt,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::FerromqMt => "ferromq-mt",
            Kind::FerromqCt => "ferromq-ct",
            Kind::OmqMt => "omq-mt",
            Kind::OmqCt => "omq-ct",
            Kind::Libzmq => "libzmq",
            Kind::Raw => "raw",
            Kind::TokioMt => "tokio-mt",
            Kind::TokioCt => "tokio-ct",
        }
    }

    /// omq's `--runtime` flag, for the omq kinds.
    fn omq_runtime(self) -> Option<&'static str> {
        match self {
            Kind::OmqMt => Some("mt"),
            Kind::OmqCt => Some("ct"),
            _ => None,
        }
    }

    fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Comma-separated names, with libzmq and raw added (the ratios need them).
    fn parse_list(names: &str) -> Option<Vec<Kind>> {
        let mut kinds = names
            .split(',')
            .map(Kind::parse)
            .collect::<Option<Vec<_>>>()?;
        for reference in [Kind::Libzmq, Kind::Raw] {
            if !kinds.contains(&reference) {
                kinds.push(reference);
            }
        }
        Some(kinds)
    }
}

type BoxError = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("serve") => match (args.get(2).and_then(|k| Kind::parse(k)), args.get(3)) {
            (Some(kind), Some(n)) => match n.parse() {
                Ok(n) => serve(kind, n),
                Err(e) => Err(e.into()),
            },
            _ => Err("usage: latency_compare serve \
                 <ferromq-mt|ferromq-ct|libzmq|raw|tokio-mt|tokio-ct> <roundtrips>"
                .into()),
        },
        _ => {
            let arg = |i: usize, default: usize| {
                args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
            };
            let (roundtrips, repetitions) = (arg(1, 20_000).max(1), arg(2, 3).max(1));
            match args.get(3).map(|names| Kind::parse_list(names)) {
                Some(None) => Err(format!("unknown kind in {}", args[3]).into()),
                Some(Some(kinds)) => compare(roundtrips, repetitions, &kinds),
                None => compare(roundtrips, repetitions, &Kind::ALL),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latency_compare: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One run's one-way latencies, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Figures {
    p50: f64,
    p99: f64,
}

fn figures(mut one_way_us: Vec<f64>) -> Figures {
    one_way_us.sort_by(f64::total_cmp);
    let n = one_way_us.len();
    let at = |p: f64| one_way_us[((n as f64 * p) as usize).min(n - 1)];
    Figures {
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn compare(roundtrips: usize, repetitions: usize, kinds: &[Kind]) -> Result<(), BoxError> {
    println!(
        "REQ/REP one-way latency, {MESSAGE_BYTES} B over TCP loopback, {roundtrips} round trips \
         x {repetitions} repetitions (after {WARMUP_ROUNDTRIPS} warm-up)"
    );
    let omq = omq_peer();
    if !omq.is_file() {
        eprintln!(
            "note: {} not built; omq is skipped (cargo build --release --manifest-path \
             tools/omq-peer/Cargo.toml)",
            omq.display()
        );
    }
    let mut results: Vec<(Kind, Vec<Figures>)> = kinds
        .iter()
        .filter(|kind| kind.omq_runtime().is_none() || omq.is_file())
        .map(|&k| (k, Vec::new()))
        .collect();
    for repetition in 1..=repetitions {
        for (kind, runs) in &mut results {
            let run = figures(run_once(*kind, roundtrips)?);
            println!(
                "rep {repetition} {:<8} p50 {:>8.3} [us]  p99 {:>8.3} [us]",
                kind.name(),
                run.p50,
                run.p99
            );
            runs.push(run);
        }
    }
    println!("median over repetitions:");
    let mut medians = Vec::new();
    for (kind, runs) in &results {
        let p50 = median(runs.iter().map(|f| f.p50).collect());
        let p99 = median(runs.iter().map(|f| f.p99).collect());
        medians.push((*kind, Figures { p50, p99 }));
    }
    let of = |kind: Kind| medians.iter().find(|(k, _)| *k == kind).map(|(_, f)| *f);
    let (Some(libzmq), Some(raw)) = (of(Kind::Libzmq), of(Kind::Raw)) else {
        return Err("libzmq or raw produced no figures".into());
    };
    println!();
    println!("| kind | p50 us | p99 us | p50 / libzmq | p99 / libzmq | p50 / raw |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (kind, f) in &medians {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            kind.name(),
            f.p50,
            f.p99,
            f.p50 / libzmq.p50,
            f.p99 / libzmq.p99,
            f.p50 / raw.p50
        );
    }
    for (ours, theirs) in [
        (Kind::FerromqMt, Kind::OmqMt),
        (Kind::FerromqCt, Kind::OmqCt),
        (Kind::FerromqMt, Kind::TokioMt),
        (Kind::FerromqCt, Kind::TokioCt),
    ] {
        if let (Some(a), Some(b)) = (of(ours), of(theirs)) {
            println!(
                "{}/{}: p50 {:.2}  p99 {:.2}",
                ours.name(),
                theirs.name(),
                a.p50 / b.p50,
                a.p99 / b.p99
            );
        }
    }
    Ok(())
}

/// `tools/omq-peer/target/release/omq-peer`, found from this binary's path
/// (`target/release/examples`).
fn omq_peer() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let repository = exe.ancestors().nth(4).unwrap_or(std::path::Path::new("."));
    repository.join("tools/omq-peer/target/release/omq-peer")
}

/// Starts a server process of `kind`, measures `roundtrips` round trips against it.
fn run_once(kind: Kind, roundtrips: usize) -> Result<Vec<f64>, BoxError> {
    let total = WARMUP_ROUNDTRIPS + roundtrips;
    let mut server = match kind.omq_runtime() {
        Some(runtime) => Command::new(omq_peer())
            .args(["lat-serve", &total.to_string(), "--runtime", runtime])
            .stdout(Stdio::piped())
            .spawn()?,
        None => Command::new(std::env::current_exe()?)
            .args(["serve", kind.name(), &total.to_string()])
            .stdout(Stdio::piped())
            .spawn()?,
    };
    let mut endpoint = String::new();
    BufReader::new(server.stdout.take().ok_or("no server stdout")?).read_line(&mut endpoint)?;
    let endpoint = endpoint.trim();
    let samples = match kind {
        Kind::FerromqMt => ferromq_client(runtime(true)?, endpoint, roundtrips),
        Kind::FerromqCt => ferromq_client(runtime(false)?, endpoint, roundtrips),
        Kind::OmqMt | Kind::OmqCt => omq_client(kind, endpoint, roundtrips),
        Kind::Libzmq => libzmq_client(endpoint, roundtrips),
        Kind::Raw => raw_client(endpoint, roundtrips),
        Kind::TokioMt => tokio_client(runtime(true)?, endpoint, roundtrips),
        Kind::TokioCt => tokio_client(runtime(false)?, endpoint, roundtrips),
    };
    let status = server.wait()?;
    let samples = samples?;
    if !status.success() {
        return Err(format!("{} server failed: {status}", kind.name()).into());
    }
    Ok(samples)
}

/// Times `roundtrips` calls of `roundtrip` after the warm-up; one-way microseconds.
fn timed(
    roundtrips: usize,
    mut roundtrip: impl FnMut() -> Result<(), BoxError>,
) -> Result<Vec<f64>, BoxError> {
    for _ in 0..WARMUP_ROUNDTRIPS {
        roundtrip()?;
    }
    let mut one_way_us = Vec::with_capacity(roundtrips);
    for _ in 0..roundtrips {
        let sent = Instant::now();
        roundtrip()?;
        one_way_us.push(sent.elapsed().as_secs_f64() * 1e6 / 2.0);
    }
    Ok(one_way_us)
}

/// As [`timed`], for a round trip awaited in the client's `block_on`.
async fn timed_async(
    roundtrips: usize,
    mut roundtrip: impl AsyncFnMut() -> Result<(), BoxError>,
) -> Result<Vec<f64>, BoxError> {
    for _ in 0..WARMUP_ROUNDTRIPS {
        roundtrip().await?;
    }
    let mut one_way_us = Vec::with_capacity(roundtrips);
    for _ in 0..roundtrips {
        let sent = Instant::now();
        roundtrip().await?;
        one_way_us.push(sent.elapsed().as_secs_f64() * 1e6 / 2.0);
    }
    Ok(one_way_us)
}

/// The multi-thread runtime `#[tokio::main]` builds, or a current-thread one.
fn runtime(multi_thread: bool) -> std::io::Result<tokio::runtime::Runtime> {
    match multi_thread {
        true => tokio::runtime::Builder::new_multi_thread(),
        false => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build()
}

fn ferromq_client(
    runtime: tokio::runtime::Runtime,
    endpoint: &str,
    roundtrips: usize,
) -> Result<Vec<f64>, BoxError> {
    runtime.block_on(async {
        let req = ferromq::Req::new();
        req.connect(endpoint)?;
        let request = ferromq::Message::from(vec![0u8; MESSAGE_BYTES]);
        let one_way_us = timed_async(roundtrips, async || {
            req.send(request.clone()).await?;
            req.recv().await?;
            Ok(())
        })
        .await?;
        req.close().await;
        Ok(one_way_us)
    })
}

/// Runs `omq-peer lat-client`, which prints one one-way latency in microseconds per line.
fn omq_client(kind: Kind, endpoint: &str, roundtrips: usize) -> Result<Vec<f64>, BoxError> {
    let output = Command::new(omq_peer())
        .args([
            "lat-client",
            endpoint,
            &MESSAGE_BYTES.to_string(),
            &roundtrips.to_string(),
            &WARMUP_ROUNDTRIPS.to_string(),
            "--runtime",
            kind.omq_runtime().unwrap_or("mt"),
        ])
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("omq-peer lat-client failed: {}", output.status).into());
    }
    let samples = String::from_utf8(output.stdout)?
        .lines()
        .map(str::parse::<f64>)
        .collect::<Result<Vec<_>, _>>()?;
    if samples.len() != roundtrips {
        return Err(format!(
            "omq-peer reported {} round trips of {roundtrips}",
            samples.len()
        )
        .into());
    }
    Ok(samples)
}

fn libzmq_client(endpoint: &str, roundtrips: usize) -> Result<Vec<f64>, BoxError> {
    let ctx = zmq::Context::new();
    let req = ctx.socket(zmq::REQ)?;
    req.connect(endpoint)?;
    let request = [0u8; MESSAGE_BYTES];
    let mut reply = zmq::Message::new();
    timed(roundtrips, || {
        req.send(&request[..], 0)?;
        req.recv(&mut reply, 0)?;
        Ok(())
    })
}

/// The bytes of a ferromq/libzmq REQ request on the wire: empty delimiter, body frame.
fn framed_request() -> Vec<u8> {
    let mut wire = vec![0x01, 0x00, 0x00, MESSAGE_BYTES as u8];
    wire.resize(wire.len() + MESSAGE_BYTES, 0);
    wire
}

fn raw_client(endpoint: &str, roundtrips: usize) -> Result<Vec<f64>, BoxError> {
    let mut stream = TcpStream::connect(endpoint.trim_start_matches("tcp://"))?;
    stream.set_nodelay(true)?;
    let request = framed_request();
    let mut reply = vec![0; request.len()];
    timed(roundtrips, || {
        stream.write_all(&request)?;
        stream.read_exact(&mut reply)?;
        Ok(())
    })
}

/// The raw ping-pong on tokio, the loop in `block_on` as `ferromq_client`'s.
fn tokio_client(
    runtime: tokio::runtime::Runtime,
    endpoint: &str,
    roundtrips: usize,
) -> Result<Vec<f64>, BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    runtime.block_on(async {
        let mut stream =
            tokio::net::TcpStream::connect(endpoint.trim_start_matches("tcp://")).await?;
        stream.set_nodelay(true)?;
        let request = framed_request();
        let mut reply = vec![0; request.len()];
        timed_async(roundtrips, async || {
            stream.write_all(&request).await?;
            stream.read_exact(&mut reply).await?;
            Ok(())
        })
        .await
    })
}

/// Server role: prints the bound endpoint, echoes `total` round trips, exits.
fn serve(kind: Kind, total: usize) -> Result<(), BoxError> {
    match kind {
        Kind::FerromqMt | Kind::FerromqCt => runtime(kind == Kind::FerromqMt)?.block_on(async {
            let rep = ferromq::Rep::new();
            let endpoint = rep.bind("tcp://127.0.0.1:0")?;
            announce(&endpoint.to_string())?;
            for _ in 0..total {
                let request = rep.recv().await?;
                rep.send(request).await?;
            }
            rep.close().await;
            Ok(())
        }),
        Kind::Libzmq => {
            let ctx = zmq::Context::new();
            let rep = ctx.socket(zmq::REP)?;
            rep.bind("tcp://127.0.0.1:*")?;
            let endpoint = rep.get_last_endpoint()?.map_err(|_| "endpoint not UTF-8")?;
            announce(&endpoint)?;
            let mut request = zmq::Message::new();
            for _ in 0..total {
                rep.recv(&mut request, 0)?;
                rep.send(&request[..], 0)?;
            }
            Ok(())
        }
        Kind::OmqMt | Kind::OmqCt => Err("omq servers run as omq-peer lat-serve".into()),
        Kind::TokioMt | Kind::TokioCt => runtime(kind == Kind::TokioMt)?.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            announce(&format!("tcp://{}", listener.local_addr()?))?;
            let (mut stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let mut buf = framed_request();
            for _ in 0..total {
                stream.read_exact(&mut buf).await?;
                stream.write_all(&buf).await?;
            }
            Ok(())
        }),
        Kind::Raw => {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            announce(&format!("tcp://{}", listener.local_addr()?))?;
            let (mut stream, _) = listener.accept()?;
            stream.set_nodelay(true)?;
            let mut buf = framed_request();
            for _ in 0..total {
                stream.read_exact(&mut buf)?;
                stream.write_all(&buf)?;
            }
            Ok(())
        }
    }
}

fn announce(endpoint: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{endpoint}")?;
    out.flush()
}
