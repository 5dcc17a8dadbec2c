//! Side-by-side PUSH/PULL throughput: ferromq, libzmq and the raw TCP ceiling, in one run.
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/compare [--quick] [--reps N] [--sizes 16,64,1k,16k,64k] [--transports tcp,ipc]
//! ```
//! For every transport and message size it runs receiver and sender as two separate
//! processes — ferromq (`local_thr` ← `remote_thr`), libzmq (`libzmq_local_thr` ←
//! `libzmq_remote_thr`) and the ceiling (`raw_tcp_ceiling`) — alternating A B C A B C, over
//! tcp and then ipc within each repetition, so slow drift of the shared machine hits all three
//! and both transports alike, keeps the median of each and prints a
//! markdown table with ratios. It then checks both cross-implementation directions (ferromq
//! receiving from libzmq and the reverse), where every message must be counted.
//!
//! This is an example, not a criterion benchmark, because the measurement is two processes
//! talking over a real socket, timed by the receiver as libzmq's perf tools do, against an
//! external reference implementation; criterion's model of timing a closure in-process many
//! times does not fit that.
//!
//! Message counts are calibrated: a short first run per implementation and size measures the
//! rate, and the measured runs then use a count that takes about one second (a third with
//! `--quick`). Every child process has a timeout and is killed when it expires; any failed,
//! hung or short run is reported loudly and makes the exit status non-zero.

#[path = "common/mod.rs"]
mod common;

use common::{Failures, RunSettings, cell, human_size, median, si};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

/// Sizes measured when `--sizes` is not given.
const DEFAULT_SIZES: [usize; 5] = [16, 64, 1024, 16 * 1024, 64 * 1024];
/// How long any one run may take before both its processes are killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// Every binary this harness starts, all built by `cargo build --release --examples`.
const REQUIRED_BINARIES: [&str; 5] = [
    "local_thr",
    "remote_thr",
    "libzmq_local_thr",
    "libzmq_remote_thr",
    "raw_tcp_ceiling",
];

fn main() -> ExitCode {
    let settings = match Settings::from_args(std::env::args().skip(1)) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("compare: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let binaries = match locate_binaries() {
        Ok(dir) => dir,
        Err(message) => {
            eprintln!("compare: {message}");
            return ExitCode::from(2);
        }
    };
    let mut harness = Harness {
        binaries,
        settings,
        failures: Failures::default(),
        endpoint_counter: 0,
    };
    harness.run_all()
}

const USAGE: &str =
    "usage: compare [--quick] [--reps N] [--sizes 16,64,1k,16k,64k] [--transports tcp,ipc]
  --quick        one repetition of short runs (a validation pass, not a measurement)
  --reps N       measured repetitions per implementation and size (default 5; median kept)
  --sizes LIST   message sizes in bytes, k = KiB (default 16,64,1k,16k,64k)
  --transports   tcp, ipc or both (default tcp,ipc)";

/// What to measure, from the command line.
struct Settings {
    run: RunSettings,
    transports: Vec<Transport>,
}

impl Settings {
    fn from_args(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut transports = vec![Transport::Tcp, Transport::Ipc];
        let run = RunSettings::from_args(args, &DEFAULT_SIZES, |flag, value| {
            if flag != "--transports" {
                return Ok(false);
            }
            transports = value()?
                .split(',')
                .map(|name| match name.trim() {
                    "tcp" => Ok(Transport::Tcp),
                    "ipc" => Ok(Transport::Ipc),
                    other => Err(format!("unknown transport {other:?}")),
                })
                .collect::<Result<_, _>>()?;
            Ok(true)
        })?;
        Ok(Settings { run, transports })
    }
}

/// The directory holding this binary and its sibling examples, checked to contain them all.
fn locate_binaries() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own path: {e}"))?;
    let dir = exe
        .parent()
        .ok_or("own path has no directory")?
        .to_path_buf();
    let missing: Vec<&str> = REQUIRED_BINARIES
        .iter()
        .copied()
        .filter(|name| !dir.join(name).is_file())
        .collect();
    if missing.is_empty() {
        Ok(dir)
    } else {
        Err(format!(
            "missing {} in {}.\nBuild them first with: cargo build --release --examples",
            missing.join(", "),
            dir.display()
        ))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Transport {
    Tcp,
    Ipc,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ipc => "ipc",
        }
    }
}

/// One process of a pair: a binary and, for `raw_tcp_ceiling`, its role argument.
#[derive(Clone, Copy)]
struct Program {
    binary: &'static str,
    role: Option<&'static str>,
}

/// A receiver and a sender measured together.
#[derive(Clone, Copy)]
struct Pairing {
    label: &'static str,
    receiver: Program,
    sender: Program,
}

const FERROMQ: Pairing = Pairing {
    label: "ferromq",
    receiver: Program {
        binary: "local_thr",
        role: None,
    },
    sender: Program {
        binary: "remote_thr",
        role: None,
    },
};
const LIBZMQ: Pairing = Pairing {
    label: "libzmq",
    receiver: Program {
        binary: "libzmq_local_thr",
        role: None,
    },
    sender: Program {
        binary: "libzmq_remote_thr",
        role: None,
    },
};
const RAW: Pairing = Pairing {
    label: "raw",
    receiver: Program {
        binary: "raw_tcp_ceiling",
        role: Some("local"),
    },
    sender: Program {
        binary: "raw_tcp_ceiling",
        role: Some("remote"),
    },
};
const CROSS: [Pairing; 2] = [
    Pairing {
        label: "ferromq local_thr <- libzmq remote_thr",
        receiver: FERROMQ.receiver,
        sender: LIBZMQ.sender,
    },
    Pairing {
        label: "libzmq local_thr <- ferromq remote_thr",
        receiver: LIBZMQ.receiver,
        sender: FERROMQ.sender,
    },
];

impl Pairing {
    /// A rough rate to size the calibration run; the calibration measures the real one.
    fn guessed_rate(self, size: usize) -> f64 {
        let (messages_per_sec, bytes_per_sec) = match self.label {
            "raw" => (40e6, 3e9),
            _ => (3e6, 1.5e9),
        };
        f64::min(messages_per_sec, bytes_per_sec / size.max(1) as f64)
    }
}

/// Median throughput of each implementation for one transport and size.
#[derive(Default)]
struct Row {
    medians: HashMap<&'static str, f64>,
}

struct Harness {
    binaries: PathBuf,
    settings: Settings,
    /// Every failed run, described for the final summary.
    failures: Failures,
    /// Makes every IPC path unique within this run.
    endpoint_counter: u64,
}

impl Harness {
    fn run_all(&mut self) -> ExitCode {
        let mut rows: Vec<(Transport, usize, Row)> = Vec::new();
        let mut cross_rows: Vec<(Transport, usize, &'static str, Result<f64, String>)> = Vec::new();
        // Sizes outside, transports inside: every repetition runs each implementation over
        // each transport back to back, so the machine's drift hits tcp and ipc alike too.
        let transports = self.settings.transports.clone();
        let pairings = [FERROMQ, LIBZMQ, RAW];
        for size in self.settings.run.sizes.clone() {
            let counts: Vec<Vec<Option<u64>>> = transports
                .iter()
                .map(|&transport| {
                    pairings
                        .iter()
                        .map(|&pairing| self.calibrate(pairing, transport, size))
                        .collect()
                })
                .collect();
            let mut samples: Vec<HashMap<&'static str, Vec<f64>>> =
                vec![HashMap::new(); transports.len()];
            for rep in 1..=self.settings.run.reps {
                for (t, &transport) in transports.iter().enumerate() {
                    for (pairing, count) in pairings.iter().zip(&counts[t]) {
                        let Some(count) = *count else { continue };
                        let what =
                            format!("{} {size} B {} rep {rep}", transport.name(), pairing.label);
                        if let Some(rate) = self.measure(*pairing, transport, size, count, &what) {
                            samples[t].entry(pairing.label).or_default().push(rate);
                        }
                    }
                }
            }
            for (t, &transport) in transports.iter().enumerate() {
                let mut row = Row::default();
                for (label, rates) in &mut samples[t] {
                    row.medians.insert(label, median(rates));
                }
                // Cross runs use the smaller of the two calibrated counts so neither side
                // makes the run long.
                let cross_count = match (counts[t][0], counts[t][1]) {
                    (Some(a), Some(b)) => a.min(b),
                    (Some(n), None) | (None, Some(n)) => n,
                    (None, None) => self.guess_count(FERROMQ, size, self.settings.run.target_run),
                };
                for pairing in CROSS {
                    let what = format!("{} {size} B {}", transport.name(), pairing.label);
                    let outcome = self.run_pair(pairing, transport, size, cross_count);
                    match &outcome {
                        Ok(rate) => {
                            eprintln!("  {what}: {} msg/s, all {cross_count} counted", si(*rate))
                        }
                        Err(reason) => self.fail(&what, reason),
                    }
                    cross_rows.push((transport, size, pairing.label, outcome));
                }
                rows.push((transport, size, row));
            }
        }
        // Report grouped by transport, as before.
        let order = |transport: &Transport| transports.iter().position(|t| t == transport);
        rows.sort_by_key(|(transport, size, _)| (order(transport), *size));
        cross_rows.sort_by_key(|(transport, size, _, _)| (order(transport), *size));
        self.print_report(&rows, &cross_rows);
        self.failures.exit_code()
    }

    /// A message count that makes one run of `pairing` take about `target_run`, from a short
    /// calibration run; `None` (and a recorded failure) when the calibration run fails.
    fn calibrate(&mut self, pairing: Pairing, transport: Transport, size: usize) -> Option<u64> {
        let what = format!(
            "{} {size} B {} calibration",
            transport.name(),
            pairing.label
        );
        let probe = self.guess_count(pairing, size, self.settings.run.calibration_run);
        match self.run_pair(pairing, transport, size, probe) {
            Ok(rate) => {
                let count = self.settings.run.calibrated_count(rate, 1_000);
                eprintln!("  {what}: {} msg/s -> {count} messages per run", si(rate));
                Some(count)
            }
            Err(reason) => {
                self.fail(&what, &reason);
                None
            }
        }
    }

    fn guess_count(&self, pairing: Pairing, size: usize, duration: Duration) -> u64 {
        ((pairing.guessed_rate(size) * duration.as_secs_f64()) as u64).max(1_000)
    }

    /// One measured run; logs it and records a failure.
    fn measure(
        &mut self,
        pairing: Pairing,
        transport: Transport,
        size: usize,
        count: u64,
        what: &str,
    ) -> Option<f64> {
        match self.run_pair(pairing, transport, size, count) {
            Ok(rate) => {
                eprintln!(
                    "  {what}: {} msg/s, {:.0} MB/s",
                    si(rate),
                    rate * size as f64 / 1e6
                );
                Some(rate)
            }
            Err(reason) => {
                self.fail(what, &reason);
                None
            }
        }
    }

    fn fail(&mut self, what: &str, reason: &str) {
        self.failures.record(what, reason);
    }

    /// A fresh endpoint: a TCP port that was free a moment ago, or a new IPC path.
    fn fresh_endpoint(&mut self, transport: Transport) -> Result<String, String> {
        match transport {
            Transport::Tcp => common::free_tcp_endpoint(),
            Transport::Ipc => {
                self.endpoint_counter += 1;
                Ok(format!(
                    "ipc:///tmp/ferromq-compare-{}-{}.sock",
                    std::process::id(),
                    self.endpoint_counter
                ))
            }
        }
    }

    /// Runs one receiver/sender pair to completion and returns the receiver's msg/s.
    fn run_pair(
        &mut self,
        pairing: Pairing,
        transport: Transport,
        size: usize,
        count: u64,
    ) -> Result<f64, String> {
        let stdout = common::retry_in_use(|| {
            let endpoint = self.fresh_endpoint(transport)?;
            let outcome = run_processes(&self.binaries, pairing, &endpoint, size, count);
            if let Some(path) = endpoint.strip_prefix("ipc://") {
                let _ = std::fs::remove_file(path);
            }
            outcome
        })?;
        common::THROUGHPUT.parse(&stdout, count)
    }

    fn print_report(
        &self,
        rows: &[(Transport, usize, Row)],
        cross_rows: &[(Transport, usize, &'static str, Result<f64, String>)],
    ) {
        println!();
        println!(
            "## PUSH/PULL throughput, median of {} alternating run(s) per cell",
            self.settings.run.reps
        );
        println!();
        println!(
            "machine: {}; receiver and sender in separate processes",
            common::machine()
        );
        println!(
            "tuning: ferromq one current-thread tokio runtime per process; libzmq ZMQ_IO_THREADS=1; \
             send/receive HWM 1000 (default) both; kernel socket buffers OS default both over tcp; \
             over ipc ferromq's default 4 MiB (libzmq has no IPC buffer option: OS default); \
             every send copies the payload into a fresh message (all three); raw = plain \
             socket writer/reader moving the same ZMTP frames in 64 KiB writes"
        );
        println!();
        println!(
            "| transport | size | ferromq msg/s | ferromq MB/s | libzmq msg/s | libzmq MB/s | ferromq/libzmq | raw MB/s | ferromq/raw |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (transport, size, row) in rows {
            let get = |label: &str| row.medians.get(label).copied();
            let megabytes = |rate: Option<f64>| rate.map(|r| r * *size as f64 / 1e6);
            let (ferromq, libzmq, raw) = (get("ferromq"), get("libzmq"), get("raw"));
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "FAILED".to_owned(),
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                transport.name(),
                human_size(*size),
                cell(ferromq, si),
                cell(megabytes(ferromq), |m| format!("{m:.0}")),
                cell(libzmq, si),
                cell(megabytes(libzmq), |m| format!("{m:.0}")),
                ratio(ferromq, libzmq),
                cell(megabytes(raw), |m| format!("{m:.0}")),
                ratio(ferromq, raw),
            );
        }
        println!();
        println!("### Cross-implementation runs (every message must be counted)");
        println!();
        println!("| transport | size | receiver <- sender | msg/s | status |");
        println!("|---|---:|---|---:|---|");
        for (transport, size, label, outcome) in cross_rows {
            let (rate, status) = match outcome {
                Ok(rate) => (si(*rate), "ok".to_owned()),
                Err(reason) => ("-".to_owned(), format!("**FAILED**: {reason}")),
            };
            println!(
                "| {} | {} | {label} | {rate} | {status} |",
                transport.name(),
                human_size(*size)
            );
        }
        self.failures.print();
    }
}

/// Starts receiver then sender, waits for both under `RUN_TIMEOUT`, and returns the
/// receiver's stdout; kills both when either fails or the time runs out.
fn run_processes(
    binaries: &Path,
    pairing: Pairing,
    endpoint: &str,
    size: usize,
    count: u64,
) -> Result<String, String> {
    let command = |program: Program| {
        let mut command = Command::new(binaries.join(program.binary));
        command.args(program.role);
        command
            .arg(endpoint)
            .arg(size.to_string())
            .arg(count.to_string());
        (program.binary, command)
    };
    common::run_processes(
        vec![command(pairing.receiver), command(pairing.sender)],
        RUN_TIMEOUT,
    )
}
