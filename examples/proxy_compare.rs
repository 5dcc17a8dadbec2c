//! Proxy throughput, libzmq's `zmq_proxy` against `ferromq::proxy`, side by side in one run:
//! PUSH → [PULL | proxy | PUSH] → PULL over TCP, producer, proxy and consumer in three
//! processes, the consumer taking one message per call.
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/proxy_compare [--quick] [--reps N] [--sizes 64,1k] [--peers ferromq|libzmq]
//! ```
//!
//! For each size and repetition it runs, alternating within each repetition so the drift of
//! the shared machine hits them alike:
//!
//! - `libzmq` — `zmq::proxy_steerable` (the `zmq` crate, one I/O thread, libzmq's default);
//! - `ferromq mt` — `ferromq::proxy` on tokio's multi-thread runtime with default workers,
//!   as `#[tokio::main]` gives it;
//! - `ferromq ct` — the same on a current-thread runtime.
//!
//! The producer and consumer are the same for every proxy: by default ferromq's `remote_thr`
//! and `local_thr` on current-thread runtimes (the fastest of the perf tools here, so that
//! they are not what is measured); `--peers libzmq` uses `libzmq_remote_thr` and
//! `libzmq_local_thr` instead. The consumer binds, the proxy binds its PULL and connects its
//! PUSH to the consumer, the producer connects to the proxy. The consumer times the messages
//! from the first as libzmq's `local_thr` does, and must count every one. The proxy process
//! ends by itself once the consumer has disconnected (ferromq: its PUSH has no peer left;
//! libzmq: a monitor event, then `TERMINATE` on an inproc control socket).
//!
//! It prints the median of each and its ratio to libzmq. Message counts come from one short
//! calibration run of libzmq's proxy per size, the same count for all three. On a 2-core
//! machine, three processes share two cores: note the load average beside the figures.

#[path = "common/mod.rs"]
mod common;
#[path = "common/shape.rs"]
mod shape;

use common::{Failures, RunSettings, cell, human_size, median, si};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

/// Sizes measured when `--sizes` is not given.
const DEFAULT_SIZES: [usize; 2] = [64, 1024];
/// How long any one run may take before its processes are killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a proxy process checks whether the consumer is gone.
const CONSUMER_POLL: Duration = Duration::from_millis(5);

const USAGE: &str =
    "usage: proxy_compare [--quick] [--reps N] [--sizes 64,1k] [--peers ferromq|libzmq]
  --quick        one repetition of short runs (a validation pass, not a measurement)
  --reps N       measured repetitions per proxy and size (default 5; median kept)
  --sizes LIST   message sizes in bytes, k = KiB (default 64,1k)
  --peers        the producer and consumer: ferromq (remote_thr/local_thr --runtime ct,
                 the default) or libzmq (libzmq_remote_thr/libzmq_local_thr)
child processes (run by the harness):
  proxy_compare proxy libzmq <frontend-bind> <backend-connect>
  proxy_compare proxy ferromq <frontend-bind> <backend-connect> [--runtime mt|ct]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("proxy") {
        return proxy_child(&args[1..]);
    }
    let mut libzmq_peers = false;
    let settings = RunSettings::from_args(args.into_iter(), &DEFAULT_SIZES, |flag, value| {
        if flag != "--peers" {
            return Ok(false);
        }
        libzmq_peers = match value()?.as_str() {
            "ferromq" => false,
            "libzmq" => true,
            other => return Err(format!("--peers takes ferromq or libzmq, not {other:?}")),
        };
        Ok(true)
    });
    let settings = match settings {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("proxy_compare: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let harness = match Harness::new(settings, libzmq_peers) {
        Ok(harness) => harness,
        Err(message) => {
            eprintln!("proxy_compare: {message}");
            return ExitCode::from(2);
        }
    };
    harness.run_all()
}

// ---------------------------------------------------------------------------------------------
// The proxy processes

fn proxy_child(args: &[String]) -> ExitCode {
    let outcome = match args {
        [kind, frontend, backend, rest @ ..] if kind == "libzmq" && rest.is_empty() => {
            libzmq_proxy(frontend, backend)
        }
        [kind, frontend, backend, rest @ ..] if kind == "ferromq" => {
            match shape::Shape::from_args(rest.iter().cloned()) {
                Ok(shape) if shape.positional.is_empty() => {
                    let program = ferromq_proxy(frontend.clone(), backend.clone());
                    return shape.exit_status("proxy_compare proxy ferromq", program);
                }
                _ => Err("bad proxy flags".to_owned()),
            }
        }
        _ => Err(format!("bad proxy arguments {args:?}\n\n{USAGE}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxy_compare proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `ferromq::proxy` from a PULL bound at `frontend` to a PUSH connected to `backend`, until
/// the consumer has come and gone.
async fn ferromq_proxy(frontend_at: String, backend_at: String) -> ferromq::Result<()> {
    let frontend = ferromq::Pull::new();
    frontend.bind(frontend_at.as_str())?;
    let backend = ferromq::Push::new();
    backend.connect(backend_at.as_str())?;
    let steering = ferromq::proxy::Steering::new();
    let watch = async {
        while backend.peer_count() == 0 {
            tokio::time::sleep(CONSUMER_POLL).await;
        }
        while backend.peer_count() > 0 {
            tokio::time::sleep(CONSUMER_POLL).await;
        }
        steering.terminate();
    };
    let (proxied, ()) = tokio::join!(steering.run(&frontend, &backend, None), watch);
    proxied
}

/// libzmq's proxy between the same two sockets, ended by `TERMINATE` once a monitor on the
/// backend reports the consumer's disconnection.
fn libzmq_proxy(frontend_at: &str, backend_at: &str) -> Result<(), String> {
    fn e(what: &'static str) -> impl Fn(zmq::Error) -> String {
        move |error| format!("{what}: {error}")
    }
    let context = zmq::Context::new();
    context.set_io_threads(1).map_err(e("io threads"))?;
    let mut frontend = context.socket(zmq::PULL).map_err(e("socket"))?;
    frontend.bind(frontend_at).map_err(e("bind"))?;
    let mut backend = context.socket(zmq::PUSH).map_err(e("socket"))?;
    backend.connect(backend_at).map_err(e("connect"))?;
    backend
        .monitor(
            "inproc://backend-monitor",
            (zmq::SocketEvent::CONNECTED.to_raw() | zmq::SocketEvent::DISCONNECTED.to_raw()) as i32,
        )
        .map_err(e("monitor"))?;
    let mut control = context.socket(zmq::PAIR).map_err(e("socket"))?;
    control.bind("inproc://control").map_err(e("bind"))?;
    let events = context.socket(zmq::PAIR).map_err(e("socket"))?;
    events
        .connect("inproc://backend-monitor")
        .map_err(e("connect"))?;
    let steer = context.socket(zmq::PAIR).map_err(e("socket"))?;
    steer.connect("inproc://control").map_err(e("connect"))?;
    let watcher = std::thread::spawn(move || -> Result<(), String> {
        loop {
            let event = events.recv_multipart(0).map_err(e("monitor recv"))?;
            let raw = event
                .first()
                .and_then(|frame| frame.get(..2))
                .map(|b| u16::from_ne_bytes([b[0], b[1]]));
            if raw == Some(zmq::SocketEvent::DISCONNECTED.to_raw()) {
                return steer.send("TERMINATE", 0).map_err(e("terminate"));
            }
        }
    });
    zmq::proxy_steerable(&mut frontend, &mut backend, &mut control).map_err(e("proxy"))?;
    watcher.join().map_err(|_| "watcher panicked".to_owned())?
}

// ---------------------------------------------------------------------------------------------
// The harness

#[derive(Clone, Copy)]
struct ProxyKind {
    label: &'static str,
    args: &'static [&'static str],
}

const LIBZMQ: ProxyKind = ProxyKind {
    label: "libzmq",
    args: &["libzmq"],
};
const FERROMQ_MT: ProxyKind = ProxyKind {
    label: "ferromq mt",
    args: &["ferromq", "--runtime", "mt"],
};
const FERROMQ_CT: ProxyKind = ProxyKind {
    label: "ferromq ct",
    args: &["ferromq", "--runtime", "ct"],
};
/// Every proxy measured, in the order each repetition runs them.
const PROXIES: [ProxyKind; 3] = [LIBZMQ, FERROMQ_MT, FERROMQ_CT];

struct Harness {
    settings: RunSettings,
    /// This binary, which is also the proxy process.
    exe: PathBuf,
    /// `(consumer, producer, extra flags)` binaries, in `exe`'s directory.
    peers: (PathBuf, PathBuf, &'static [&'static str]),
    peers_label: &'static str,
    failures: Failures,
}

impl Harness {
    fn new(settings: RunSettings, libzmq_peers: bool) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find own path: {e}"))?;
        let dir = exe.parent().ok_or("own path has no directory")?;
        let (consumer, producer, flags, label): (_, _, &'static [&'static str], _) = if libzmq_peers
        {
            (
                "libzmq_local_thr",
                "libzmq_remote_thr",
                &[],
                "libzmq_remote_thr -> proxy -> libzmq_local_thr",
            )
        } else {
            (
                "local_thr",
                "remote_thr",
                &["--runtime", "ct"],
                "ferromq remote_thr --runtime ct -> proxy -> local_thr --runtime ct",
            )
        };
        let (consumer, producer) = (dir.join(consumer), dir.join(producer));
        for binary in [&consumer, &producer] {
            if !binary.is_file() {
                return Err(format!(
                    "missing {}.\nBuild it first with: cargo build --release --examples",
                    binary.display()
                ));
            }
        }
        Ok(Harness {
            settings,
            peers: (consumer, producer, flags),
            peers_label: label,
            exe,
            failures: Failures::default(),
        })
    }

    fn run_all(mut self) -> ExitCode {
        let mut rows = Vec::new();
        for size in self.settings.sizes.clone() {
            let what = format!("{size} B libzmq calibration");
            let probe = 200_000u64.min(
                (self.settings.calibration_run.as_secs_f64() * 2e6 / (size as f64 / 64.0).max(1.0))
                    as u64,
            );
            let count = match self.run(LIBZMQ, size, probe.max(1_000)) {
                Ok(rate) => {
                    let count = self.settings.calibrated_count(rate, 1_000);
                    eprintln!("  {what}: {} msg/s -> {count} messages per run", si(rate));
                    count
                }
                Err(reason) => {
                    self.failures.record(&what, &reason);
                    continue;
                }
            };
            let mut samples: Vec<Vec<f64>> = vec![Vec::new(); PROXIES.len()];
            for rep in 1..=self.settings.reps {
                for (proxy, rates) in PROXIES.iter().zip(&mut samples) {
                    let what = format!("{size} B {} rep {rep}", proxy.label);
                    match self.run(*proxy, size, count) {
                        Ok(rate) => {
                            eprintln!("  {what}: {} msg/s", si(rate));
                            rates.push(rate);
                        }
                        Err(reason) => self.failures.record(&what, &reason),
                    }
                }
            }
            let medians: Vec<Option<f64>> = samples
                .iter_mut()
                .map(|rates| (!rates.is_empty()).then(|| median(rates)))
                .collect();
            rows.push((size, medians));
        }
        self.print_report(&rows);
        self.failures.exit_code()
    }

    /// One run through `proxy`; the consumer's msg/s.
    fn run(&self, proxy: ProxyKind, size: usize, count: u64) -> Result<f64, String> {
        let (consumer, producer, flags) = &self.peers;
        let stdout = common::retry_in_use(|| {
            let frontend = common::free_tcp_endpoint()?;
            let backend = common::free_tcp_endpoint()?;
            let peer = |binary: &PathBuf, endpoint: &str| {
                let mut command = Command::new(binary);
                command
                    .arg(endpoint)
                    .arg(size.to_string())
                    .arg(count.to_string())
                    .args(*flags);
                command
            };
            let mut proxy_command = Command::new(&self.exe);
            proxy_command
                .arg("proxy")
                .arg(proxy.args[0])
                .arg(&frontend)
                .arg(&backend)
                .args(&proxy.args[1..]);
            common::run_processes(
                vec![
                    ("consumer", peer(consumer, &backend)),
                    ("proxy", proxy_command),
                    ("producer", peer(producer, &frontend)),
                ],
                RUN_TIMEOUT,
            )
        })?;
        common::THROUGHPUT.parse(&stdout, count)
    }

    fn print_report(&self, rows: &[(usize, Vec<Option<f64>>)]) {
        println!();
        println!(
            "## Proxy throughput (PUSH -> [PULL | proxy | PUSH] -> PULL, tcp), median of {} alternating run(s)",
            self.settings.reps
        );
        println!();
        println!(
            "machine: {}; load average at the end: {}",
            common::machine(),
            load_average()
        );
        println!(
            "producer, proxy and consumer in three processes; peers: {}; libzmq proxy: \
             zmq_proxy_steerable, ZMQ_IO_THREADS=1; ferromq mt: multi-thread runtime, default \
             workers; ferromq ct: current-thread runtime; HWM 1000 everywhere",
            self.peers_label
        );
        println!();
        println!(
            "| size | libzmq msg/s | ferromq mt msg/s | **mt / libzmq** | ferromq ct msg/s | **ct / libzmq** |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        for (size, medians) in rows {
            let ratio = |i: usize| match (medians[i], medians[0]) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            };
            println!(
                "| {} | {} | {} | **{}** | {} | **{}** |",
                human_size(*size),
                cell(medians[0], si),
                cell(medians[1], si),
                cell(ratio(1), |r| format!("{r:.2}")),
                cell(medians[2], si),
                cell(ratio(2), |r| format!("{r:.2}")),
            );
        }
        self.failures.print();
    }
}

/// `/proc/loadavg`'s three figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
