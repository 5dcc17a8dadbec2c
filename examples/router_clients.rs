//! Many clients, one server socket: REQ clients doing round trips against one ROUTER that
//! echoes, on tokio's multi-thread runtime (what `#[tokio::main]` gives), 64-byte requests
//! over TCP loopback, server and clients in separate processes.
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/router_clients [--clients 1,8,64] [--seconds S] [--reps R]
//! ```
//! For each client count it starts the server (this binary re-invoked as
//! `router_clients serve`, which prints its endpoint), then runs that many REQ sockets, one
//! task each, in this process for `--seconds` (default 2), each timing every round trip. It
//! reports round trips per second in total and the one-way p50/p99 (half a round trip) over
//! all clients, the median of `--reps` runs (default 3), and the total against one client:
//! sharing one ROUTER among many clients should add throughput, not lose it to contention.

use ferromq::{Message, Req, Router};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Request body size, bytes.
const MESSAGE_BYTES: usize = 64;
/// Round trips each client makes before its samples count (connection set-up, warm caches).
const WARMUP_ROUNDTRIPS: usize = 100;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("serve") => serve(),
        _ => Settings::from_args(&args).and_then(compare),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("router_clients: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    clients: Vec<usize>,
    duration: Duration,
    reps: usize,
}

impl Settings {
    fn from_args(args: &[String]) -> Result<Self, BoxError> {
        let mut settings = Settings {
            clients: vec![1, 8, 64],
            duration: Duration::from_secs(2),
            reps: 3,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--clients" => {
                    settings.clients = value
                        .split(',')
                        .map(|n| n.trim().parse())
                        .collect::<Result<_, _>>()?
                }
                "--seconds" => settings.duration = Duration::from_secs_f64(value.parse()?),
                "--reps" => settings.reps = value.parse::<usize>()?.max(1),
                other => {
                    return Err(format!(
                        "unknown argument {other:?}; usage: router_clients [--clients 1,8,64] \
                         [--seconds S] [--reps R]"
                    )
                    .into());
                }
            }
        }
        Ok(settings)
    }
}

/// One run's figures.
#[derive(Clone, Copy)]
struct Figures {
    roundtrips_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

fn compare(settings: Settings) -> Result<(), BoxError> {
    println!(
        "REQ clients -> one ROUTER echo, {MESSAGE_BYTES} B over TCP loopback, multi-thread \
         runtime both sides, {:.1} s per run, median of {} run(s)",
        settings.duration.as_secs_f64(),
        settings.reps
    );
    let mut rows = Vec::new();
    for &clients in &settings.clients {
        let mut runs = Vec::new();
        for rep in 1..=settings.reps {
            let run = run_once(clients, settings.duration)?;
            eprintln!(
                "  {clients} client(s) rep {rep}: {:.0} round trips/s, p50 {:.1} us, p99 {:.1} us",
                run.roundtrips_per_sec, run.p50_us, run.p99_us
            );
            runs.push(run);
        }
        let median = |f: fn(&Figures) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(f).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        rows.push((
            clients,
            Figures {
                roundtrips_per_sec: median(|f| f.roundtrips_per_sec),
                p50_us: median(|f| f.p50_us),
                p99_us: median(|f| f.p99_us),
            },
        ));
    }
    let one = rows
        .iter()
        .find(|(clients, _)| *clients == 1)
        .map(|(_, f)| f.roundtrips_per_sec);
    println!();
    println!("| clients | round trips/s | vs 1 client | one-way p50 us | one-way p99 us |");
    println!("|---:|---:|---:|---:|---:|");
    for (clients, f) in rows {
        let versus = one.map_or("-".to_owned(), |one| {
            format!("{:.2}", f.roundtrips_per_sec / one)
        });
        println!(
            "| {clients} | {:.0} | {versus} | {:.1} | {:.1} |",
            f.roundtrips_per_sec, f.p50_us, f.p99_us
        );
    }
    Ok(())
}

/// Starts a server, runs `clients` clients against it for `duration`, stops the server.
fn run_once(clients: usize, duration: Duration) -> Result<Figures, BoxError> {
    let mut server = Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut endpoint = String::new();
    BufReader::new(server.stdout.take().ok_or("no server stdout")?).read_line(&mut endpoint)?;
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(clients_run(endpoint.trim(), clients, duration));
    // Closing its stdin tells the server to stop.
    drop(server.stdin.take());
    let status = server.wait()?;
    let figures = outcome?;
    if !status.success() {
        return Err(format!("server failed: {status}").into());
    }
    Ok(figures)
}

async fn clients_run(
    endpoint: &str,
    clients: usize,
    duration: Duration,
) -> Result<Figures, BoxError> {
    let endpoint: Arc<str> = endpoint.into();
    let start = Instant::now() + Duration::from_millis(200);
    let stop = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let endpoint = endpoint.clone();
            tokio::spawn(async move { client(&endpoint, start, stop).await })
        })
        .collect();
    let mut one_way_us = Vec::new();
    for task in tasks {
        one_way_us.extend(task.await??);
    }
    let measured = stop.duration_since(start).as_secs_f64();
    let roundtrips_per_sec = one_way_us.len() as f64 / measured;
    one_way_us.sort_by(f64::total_cmp);
    let at = |p: f64| {
        one_way_us
            .get(((one_way_us.len() as f64 * p) as usize).min(one_way_us.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(Figures {
        roundtrips_per_sec,
        p50_us: at(0.50),
        p99_us: at(0.99),
    })
}

/// One REQ client: warms up, then times every round trip that starts in `[start, stop)`.
async fn client(endpoint: &str, start: Instant, stop: Instant) -> Result<Vec<f64>, BoxError> {
    let req = Req::new();
    req.connect(endpoint)?;
    let request = Message::from(vec![0u8; MESSAGE_BYTES]);
    for _ in 0..WARMUP_ROUNDTRIPS {
        req.send(request.clone()).await?;
        req.recv().await?;
    }
    let mut one_way_us = Vec::new();
    loop {
        let sent = Instant::now();
        if sent >= stop {
            break;
        }
        req.send(request.clone()).await?;
        let reply = req.recv().await?;
        if reply.byte_len() != MESSAGE_BYTES {
            return Err("reply of the wrong size".into());
        }
        if sent >= start {
            one_way_us.push(sent.elapsed().as_secs_f64() * 1e6 / 2.0);
        }
    }
    req.close().await;
    Ok(one_way_us)
}

/// Server role: a ROUTER on the multi-thread runtime, echoing every request to its sender from
/// one spawned task, until stdin closes.
fn serve() -> Result<(), BoxError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let router = Arc::new(Router::new());
            let endpoint = router.bind("tcp://127.0.0.1:0")?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{endpoint}")?;
            out.flush()?;
            drop(out);
            let stdin_closed = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
            });
            let echo = {
                let router = router.clone();
                // [routing id, empty delimiter, body] goes back as it came, until the socket
                // closes.
                tokio::spawn(async move {
                    while let Ok(request) = router.recv().await {
                        if router.send(request).await.is_err() {
                            break;
                        }
                    }
                })
            };
            stdin_closed.await?;
            echo.abort();
            router.close().await;
            Ok(())
        })
}
