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

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Sizes measured when `--sizes` is not given.
const DEFAULT_SIZES: [usize; 5] = [16, 64, 1024, 16 * 1024, 64 * 1024];
/// How long any one run may take before both its processes are killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a running pair is checked for exit.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Attempts for a run whose receiver lost its free port to another process.
const BIND_ATTEMPTS: usize = 3;
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
        failures: Vec::new(),
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
    sizes: Vec<usize>,
    reps: usize,
    transports: Vec<Transport>,
    /// Wall time one measured run should take.
    target_run: Duration,
    /// Wall time of the calibration run.
    calibration_run: Duration,
}

impl Settings {
    fn from_args(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut settings = Settings {
            sizes: DEFAULT_SIZES.to_vec(),
            reps: 5,
            transports: vec![Transport::Tcp, Transport::Ipc],
            target_run: Duration::from_millis(1000),
            calibration_run: Duration::from_millis(200),
        };
        let mut reps_given = false;
        let mut args = args.peekable();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--quick" => {
                    settings.target_run = Duration::from_millis(300);
                    settings.calibration_run = Duration::from_millis(100);
                    if !reps_given {
                        settings.reps = 1;
                    }
                }
                "--reps" => {
                    settings.reps = value()?
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or("--reps needs a positive whole number")?;
                    reps_given = true;
                }
                "--sizes" => {
                    settings.sizes = value()?
                        .split(',')
                        .map(parse_size)
                        .collect::<Result<_, _>>()?;
                }
                "--transports" => {
                    settings.transports = value()?
                        .split(',')
                        .map(|name| match name.trim() {
                            "tcp" => Ok(Transport::Tcp),
                            "ipc" => Ok(Transport::Ipc),
                            other => Err(format!("unknown transport {other:?}")),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--help" | "-h" => return Err("help requested".to_owned()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(settings)
    }
}

/// `64`, `1k`, `16K`, `64KiB` → bytes.
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let (digits, scale) = match lower
        .strip_suffix("kib")
        .or_else(|| lower.strip_suffix('k'))
    {
        Some(digits) => (digits, 1024),
        None => (lower.as_str(), 1),
    };
    digits
        .parse::<usize>()
        .map(|n| n * scale)
        .map_err(|_| format!("bad size {text:?}"))
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
    failures: Vec<String>,
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
        for size in self.settings.sizes.clone() {
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
            for rep in 1..=self.settings.reps {
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
                    (None, None) => self.guess_count(FERROMQ, size, self.settings.target_run),
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
        if self.failures.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// A message count that makes one run of `pairing` take about `target_run`, from a short
    /// calibration run; `None` (and a recorded failure) when the calibration run fails.
    fn calibrate(&mut self, pairing: Pairing, transport: Transport, size: usize) -> Option<u64> {
        let what = format!(
            "{} {size} B {} calibration",
            transport.name(),
            pairing.label
        );
        let probe = self.guess_count(pairing, size, self.settings.calibration_run);
        match self.run_pair(pairing, transport, size, probe) {
            Ok(rate) => {
                let count = (rate * self.settings.target_run.as_secs_f64()) as u64;
                let count = count.clamp(1_000, 500_000_000);
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
        eprintln!("  !!! FAILED: {what}: {reason}");
        self.failures.push(format!("{what}: {reason}"));
    }

    /// A fresh endpoint: a TCP port that was free a moment ago, or a new IPC path.
    fn fresh_endpoint(&mut self, transport: Transport) -> Result<String, String> {
        match transport {
            Transport::Tcp => {
                let listener = std::net::TcpListener::bind("127.0.0.1:0")
                    .map_err(|e| format!("cannot find a free port: {e}"))?;
                let port = listener
                    .local_addr()
                    .map_err(|e| format!("cannot read the free port: {e}"))?
                    .port();
                Ok(format!("tcp://127.0.0.1:{port}"))
            }
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
        for attempt in 1..=BIND_ATTEMPTS {
            let endpoint = self.fresh_endpoint(transport)?;
            let outcome = run_processes(&self.binaries, pairing, &endpoint, size, count);
            if let Some(path) = endpoint.strip_prefix("ipc://") {
                let _ = std::fs::remove_file(path);
            }
            match outcome {
                // Another process took the port between our probe and the receiver's bind.
                Err(reason) if reason.contains("in use") && attempt < BIND_ATTEMPTS => continue,
                Err(reason) => return Err(reason),
                Ok(stdout) => return parse_receiver_output(&stdout, count),
            }
        }
        unreachable!("the last attempt returns")
    }

    fn print_report(
        &self,
        rows: &[(Transport, usize, Row)],
        cross_rows: &[(Transport, usize, &'static str, Result<f64, String>)],
    ) {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        println!();
        println!(
            "## PUSH/PULL throughput, median of {} alternating run(s) per cell",
            self.settings.reps
        );
        println!();
        println!(
            "machine: {cpus} CPUs, Linux {}; receiver and sender in separate processes",
            kernel.trim()
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
        if !self.failures.is_empty() {
            println!();
            println!("### !!! {} FAILED RUN(S) !!!", self.failures.len());
            for failure in &self.failures {
                println!("- {failure}");
            }
        }
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
    let mut receiver = spawn(binaries, pairing.receiver, endpoint, size, count)?;
    let mut sender = match spawn(binaries, pairing.sender, endpoint, size, count) {
        Ok(sender) => sender,
        Err(reason) => {
            kill(&mut receiver);
            return Err(reason);
        }
    };
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut receiver_status = None;
    let mut sender_status = None;
    while receiver_status.is_none() || sender_status.is_none() {
        if receiver_status.is_none() {
            receiver_status = receiver.try_wait().map_err(|e| e.to_string())?;
        }
        if sender_status.is_none() {
            sender_status = sender.try_wait().map_err(|e| e.to_string())?;
        }
        let receiver_failed = receiver_status.is_some_and(|s| !s.success());
        let sender_failed = sender_status.is_some_and(|s| !s.success());
        if receiver_failed || sender_failed {
            // The other side would wait forever for its peer.
            kill(&mut receiver);
            kill(&mut sender);
            let who = if receiver_failed {
                &mut receiver
            } else {
                &mut sender
            };
            let program = if receiver_failed {
                pairing.receiver.binary
            } else {
                pairing.sender.binary
            };
            return Err(format!("{program} failed: {}", stderr_of(who).trim()));
        }
        if Instant::now() >= deadline {
            kill(&mut receiver);
            kill(&mut sender);
            let hung: Vec<&str> = [
                (receiver_status.is_none(), pairing.receiver.binary),
                (sender_status.is_none(), pairing.sender.binary),
            ]
            .iter()
            .filter(|(running, _)| *running)
            .map(|(_, name)| *name)
            .collect();
            return Err(format!(
                "timed out after {}s ({} still running; killed)",
                RUN_TIMEOUT.as_secs(),
                hung.join(" and ")
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let mut stdout = String::new();
    if let Some(mut out) = receiver.stdout.take() {
        out.read_to_string(&mut stdout)
            .map_err(|e| format!("reading receiver output: {e}"))?;
    }
    Ok(stdout)
}

fn spawn(
    binaries: &Path,
    program: Program,
    endpoint: &str,
    size: usize,
    count: u64,
) -> Result<Child, String> {
    let mut command = Command::new(binaries.join(program.binary));
    command.args(program.role);
    command
        .arg(endpoint)
        .arg(size.to_string())
        .arg(count.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.binary))
}

fn kill(child: &mut Child) {
    // Already exited is fine: kill only fails then.
    let _ = child.kill();
    let _ = child.wait();
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

/// Checks the receiver counted exactly `count` messages and returns its msg/s figure.
fn parse_receiver_output(stdout: &str, count: u64) -> Result<f64, String> {
    let counted = stdout
        .lines()
        .find_map(|line| line.strip_prefix("message count: "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    if counted != Some(count) {
        return Err(format!(
            "receiver counted {counted:?} messages, expected {count}; output: {stdout:?}"
        ));
    }
    stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("mean throughput: ")?
                .strip_suffix(" [msg/s]")
        })
        .and_then(|n| n.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no 'mean throughput: N [msg/s]' line in {stdout:?}"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn cell(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "FAILED".to_owned(), format)
}

/// 2_712_345.0 → "2.71 M"; 45_000.0 → "45.0 k".
fn si(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

fn human_size(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}
