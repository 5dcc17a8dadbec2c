//! inproc PUSH→PULL throughput, side by side in one run: libzmq's inproc, ferromq's inproc
//! and, as the transport it saves, ferromq's ipc — both sockets in one process each time.
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/inproc_compare [--quick] [--reps N] [--sizes 64,1k]
//! ```
//!
//! Every run is a child process of its own. The sender copies the payload into a fresh message
//! per send (`Message::from(&[u8])`, as `remote_thr` does; libzmq's sender likewise copies
//! into a new `zmq_msg_t`) and the receiver takes one message per call, timing from the first
//! message as libzmq's `inproc_thr` does; both keep the default HWMs (1,000). The
//! implementations:
//!
//! - `libzmq inproc` — the `zmq` crate, the sender in a thread of its own;
//! - `ferromq inproc mt` / `ferromq ipc mt` — tokio's multi-thread runtime with default
//!   workers (what `#[tokio::main]` gives), sender and receiver in two tasks;
//! - `ferromq inproc ct` / `ferromq ipc ct` — a current-thread runtime, the two tasks on it.
//!
//! Repetitions alternate the implementations so the drift of the shared machine hits them
//! alike. The table gives medians and the ratios the inproc goals are stated in: ferromq's
//! inproc to its own ipc in the same runtime, and to libzmq's inproc.

#[path = "common/mod.rs"]
mod common;

use common::{Failures, RunSettings, THROUGHPUT, human_size, median, print_throughput, si};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Sizes measured when `--sizes` is not given.
const DEFAULT_SIZES: [usize; 2] = [64, 1024];
/// How long any one run may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Messages of the calibration run that sets each implementation's count.
const PROBE_MESSAGES: u64 = 200_000;
/// The fewest messages a measured run sends.
const MIN_MESSAGES: u64 = 100_000;

const USAGE: &str = "usage: inproc_compare [--quick] [--reps N] [--sizes 64,1k]
  --quick        one repetition of short runs (a validation pass, not a measurement)
  --reps N       measured repetitions per implementation and size (default 5; median kept)
  --sizes LIST   message sizes in bytes, k = KiB (default 64,1k)
child process (run by the harness):
  inproc_compare run IMPLEMENTATION SIZE COUNT";

/// What one run measures.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Implementation {
    Libzmq,
    Ferromq { inproc: bool, multi_thread: bool },
}

const IMPLEMENTATIONS: [(&str, Implementation); 5] = [
    ("libzmq inproc", Implementation::Libzmq),
    (
        "ferromq inproc mt",
        Implementation::Ferromq {
            inproc: true,
            multi_thread: true,
        },
    ),
    (
        "ferromq ipc mt",
        Implementation::Ferromq {
            inproc: false,
            multi_thread: true,
        },
    ),
    (
        "ferromq inproc ct",
        Implementation::Ferromq {
            inproc: true,
            multi_thread: false,
        },
    ),
    (
        "ferromq ipc ct",
        Implementation::Ferromq {
            inproc: false,
            multi_thread: false,
        },
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("run") {
        return match child(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("inproc_compare run: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match RunSettings::from_args(args.into_iter(), &DEFAULT_SIZES, |_, _| Ok(false))
    {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("inproc_compare: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut failures = Failures::default();
    println!(
        "# inproc PUSH→PULL, one recv per message, medians of {}",
        settings.reps
    );
    println!();
    println!(
        "| size | {} | inproc/ipc mt | inproc/ipc ct | inproc mt/libzmq | inproc ct/libzmq |",
        IMPLEMENTATIONS.map(|(name, _)| name).join(" | ")
    );
    println!(
        "|---|{}---:|---:|---:|---:|",
        "---:|".repeat(IMPLEMENTATIONS.len())
    );
    for &size in &settings.sizes {
        let counts: Vec<Option<u64>> = IMPLEMENTATIONS
            .iter()
            .map(|&(name, implementation)| {
                let what = format!("{} {name} calibration", human_size(size));
                let rate = measure(implementation, size, PROBE_MESSAGES, &what, &mut failures)?;
                Some(settings.calibrated_count(rate, MIN_MESSAGES))
            })
            .collect();
        let mut rates = vec![Vec::new(); IMPLEMENTATIONS.len()];
        for rep in 0..settings.reps {
            for (i, &(name, implementation)) in IMPLEMENTATIONS.iter().enumerate() {
                let Some(count) = counts[i] else { continue };
                let what = format!("{} {name} rep {rep}", human_size(size));
                if let Some(rate) = measure(implementation, size, count, &what, &mut failures) {
                    rates[i].push(rate);
                }
            }
        }
        let medians: Vec<Option<f64>> = rates
            .iter_mut()
            .map(|r| (!r.is_empty()).then(|| median(r)))
            .collect();
        let ratio = |a: usize, b: usize| match (medians[a], medians[b]) {
            (Some(a), Some(b)) => format!("{:.2}×", a / b),
            _ => "—".to_owned(),
        };
        let cells: Vec<String> = medians
            .iter()
            .map(|m| m.map_or("—".to_owned(), |rate| format!("{}/s", si(rate))))
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            human_size(size),
            cells.join(" | "),
            ratio(1, 2),
            ratio(3, 4),
            ratio(1, 0),
            ratio(3, 0)
        );
    }
    failures.print();
    failures.exit_code()
}

/// Runs one child and returns its rate, recording a failure.
fn measure(
    implementation: Implementation,
    size: usize,
    count: u64,
    what: &str,
    failures: &mut Failures,
) -> Option<f64> {
    let name = IMPLEMENTATIONS
        .iter()
        .find(|(_, i)| *i == implementation)
        .map(|(name, _)| name.replace(' ', "-"))?;
    let mut command = match std::env::current_exe() {
        Ok(exe) => Command::new(exe),
        Err(e) => {
            failures.record(what, &format!("cannot find this program: {e}"));
            return None;
        }
    };
    command.args(["run", &name, &size.to_string(), &count.to_string()]);
    let outcome = common::run_processes(vec![(what, command)], RUN_TIMEOUT)
        .and_then(|stdout| THROUGHPUT.parse(&stdout, count));
    match outcome {
        Ok(rate) => Some(rate),
        Err(reason) => {
            failures.record(what, &reason);
            None
        }
    }
}

/// `run IMPLEMENTATION SIZE COUNT`: one measured transfer, reported as libzmq's `local_thr`.
fn child(args: &[String]) -> Result<(), String> {
    let [name, size, count] = args else {
        return Err(format!("expected IMPLEMENTATION SIZE COUNT\n{USAGE}"));
    };
    let implementation = IMPLEMENTATIONS
        .iter()
        .find(|(n, _)| n.replace(' ', "-") == *name)
        .map(|&(_, i)| i)
        .ok_or(format!("unknown implementation {name:?}"))?;
    let size: usize = size.parse().map_err(|_| format!("bad size {size:?}"))?;
    let count: u64 = count.parse().map_err(|_| format!("bad count {count:?}"))?;
    let elapsed = match implementation {
        Implementation::Libzmq => libzmq_inproc(size, count),
        Implementation::Ferromq {
            inproc,
            multi_thread,
        } => {
            let runtime = match multi_thread {
                true => tokio::runtime::Builder::new_multi_thread(),
                false => tokio::runtime::Builder::new_current_thread(),
            }
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
            let endpoint = match inproc {
                true => "inproc://thr".to_owned(),
                false => format!(
                    "ipc:///tmp/ferromq-inproc-compare-{}.sock",
                    std::process::id()
                ),
            };
            runtime.block_on(ferromq_transfer(&endpoint, size, count))
        }
    }?;
    print_throughput(size, count, elapsed.as_secs_f64());
    Ok(())
}

/// libzmq: PULL bound in this thread, PUSH in another, one context.
fn libzmq_inproc(size: usize, count: u64) -> Result<Duration, String> {
    let context = zmq::Context::new();
    let pull = context.socket(zmq::PULL).map_err(|e| e.to_string())?;
    pull.bind("inproc://thr").map_err(|e| e.to_string())?;
    let push = context.socket(zmq::PUSH).map_err(|e| e.to_string())?;
    push.connect("inproc://thr").map_err(|e| e.to_string())?;
    let sender = std::thread::spawn(move || {
        let payload = vec![0u8; size];
        for _ in 0..count {
            push.send(&payload[..], 0).expect("libzmq send");
        }
    });
    let mut message = zmq::Message::new();
    pull.recv(&mut message, 0).map_err(|e| e.to_string())?;
    let start = Instant::now();
    for _ in 1..count {
        pull.recv(&mut message, 0).map_err(|e| e.to_string())?;
    }
    let elapsed = start.elapsed();
    sender.join().map_err(|_| "the libzmq sender panicked")?;
    Ok(elapsed)
}

/// ferromq: PULL bound, PUSH connected from a task of its own.
async fn ferromq_transfer(endpoint: &str, size: usize, count: u64) -> Result<Duration, String> {
    let pull = ferromq::Pull::new();
    pull.bind(endpoint).map_err(|e| e.to_string())?;
    let push = ferromq::Push::new();
    push.connect(endpoint).map_err(|e| e.to_string())?;
    let sender = tokio::spawn(async move {
        let payload = vec![0u8; size];
        for _ in 0..count {
            if push
                .send(ferromq::Message::from(&payload[..]))
                .await
                .is_err()
            {
                return;
            }
        }
        push.close().await;
    });
    pull.recv().await.map_err(|e| e.to_string())?;
    let start = Instant::now();
    for _ in 1..count {
        pull.recv().await.map_err(|e| e.to_string())?;
    }
    let elapsed = start.elapsed();
    sender.await.map_err(|e| e.to_string())?;
    Ok(elapsed)
}
