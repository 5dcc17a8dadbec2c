//! Side-by-side PUSH/PULL throughput in the shapes users run: ferromq, libzmq, the fastest
//! Rust port (omq-tokio) and the raw TCP ceiling, in one run.
//!
//! ```text
//! cargo build --release --examples                            # stock profile, as a dependent crate
//! cargo build --profile release-lto --examples                # optional: the thin-LTO column
//! cargo build --release --manifest-path tools/omq-peer/Cargo.toml   # optional: omq-tokio
//! target/release/examples/compare [--quick] [--reps N] [--sizes 16,64,1k,64k] [--transports tcp,ipc]
//!                                  [--baseline DIR]
//! ```
//! Every ferromq and omq program receives with one `recv().await` per message and copies each
//! payload into a fresh message per send, as libzmq's perf tools do. For every transport and
//! size it runs receiver and sender as two separate processes for each implementation and
//! shape below, alternating all of them within each repetition so the drift of the shared
//! machine hits them alike, keeps the median of each and prints ratios to libzmq:
//!
//! - `ferromq mt` — the multi-thread runtime with default workers, the loop in `block_on`:
//!   what `#[tokio::main]` gives an application (the headline);
//! - `ferromq ct` — a current-thread runtime per process;
//! - `omq mt`, `omq ct` — omq-tokio in the same two shapes (`tools/omq-peer`);
//! - `ferromq mt batch` — the receiver takes up to 1,024 messages per `recv_many` call;
//! - `ferromq mt 8 tasks` — eight tasks send on one shared `Push` and eight receive from one
//!   shared `Pull` (`--tasks 8`), to show that sharing a socket does not collapse under lock
//!   contention (its column is the ratio to `ferromq mt`, one task each side);
//! - `ferromq mt spawn` — the `mt` programs with their loop in a spawned task (`--spawn`), on a
//!   worker thread beside the connection tasks instead of on the main thread;
//! - `ferromq mt lto` — the `mt` programs built with thin LTO and one codegen unit
//!   (`target/release-lto`), to show what the stock build gives up;
//! - `libzmq` (the `zmq` crate, one I/O thread) and `raw` (`raw_tcp_ceiling`);
//! - with `--baseline DIR`, `ferromq mt baseline` and `ferromq ct baseline`: the `local_thr` and
//!   `remote_thr` in DIR (another commit's `target/release/examples`), for an A/B of a change
//!   in the same run, printed as this build over the baseline:
//!   ```text
//!   git worktree add /tmp/base <commit> && (cd /tmp/base && CARGO_TARGET_DIR=$PWD/../base-target cargo build --release --examples)
//!   target/release/examples/compare --baseline /tmp/base-target/release/examples
//!   ```
//!
//! The optional columns (omq, LTO) print "not built" when their binaries are missing. It then
//! checks both cross-implementation directions (ferromq receiving from libzmq and the
//! reverse); every message must arrive, and any failed or hung run makes the exit status
//! non-zero.
//!
//! This is an example, not a criterion benchmark, because the measurement is two processes
//! talking over a real socket, timed by the receiver as libzmq's perf tools do, against
//! external reference implementations; criterion's model of timing a closure in-process many
//! times does not fit that.
//!
//! Message counts are calibrated: a short first run per implementation and size measures the
//! rate, and the measured runs then use a count that takes about one second (a third with
//! `--quick`). Every child process has a timeout and is killed when it expires.

#[path = "common/mod.rs"]
mod common;

use common::{Failures, RunSettings, cell, human_size, median, si};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

/// Sizes measured when `--sizes` is not given.
const DEFAULT_SIZES: [usize; 4] = [16, 64, 1024, 64 * 1024];
/// How long any one run may take before both its processes are killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// Binaries every run needs, all built by `cargo build --release --examples`.
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
    let dirs = match Dirs::locate(settings.baseline.clone()) {
        Ok(dirs) => dirs,
        Err(message) => {
            eprintln!("compare: {message}");
            return ExitCode::from(2);
        }
    };
    let mut harness = Harness {
        dirs,
        settings,
        failures: Failures::default(),
        endpoint_counter: 0,
    };
    harness.run_all()
}

const USAGE: &str =
    "usage: compare [--quick] [--reps N] [--sizes 16,64,1k,64k] [--transports tcp,ipc]
  --quick        one repetition of short runs (a validation pass, not a measurement)
  --reps N       measured repetitions per implementation and size (default 5; median kept)
  --sizes LIST   message sizes in bytes, k = KiB (default 16,64,1k,64k)
  --transports   tcp, ipc or both (default tcp,ipc)
  --baseline DIR  also run the local_thr/remote_thr in DIR (another build) as an A/B column";

/// What to measure, from the command line.
struct Settings {
    run: RunSettings,
    transports: Vec<Transport>,
    /// `--baseline DIR`: another build's examples directory, for an A/B.
    baseline: Option<PathBuf>,
}

impl Settings {
    fn from_args(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut transports = vec![Transport::Tcp, Transport::Ipc];
        let mut baseline = None;
        let run = RunSettings::from_args(args, &DEFAULT_SIZES, |flag, value| {
            if flag == "--baseline" {
                baseline = Some(PathBuf::from(value()?));
                return Ok(true);
            }
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
        Ok(Settings {
            run,
            transports,
            baseline,
        })
    }
}

/// Where each build of the measured programs lives.
struct Dirs {
    /// `target/release/examples`: this binary's own directory, stock release profile.
    release: PathBuf,
    /// `target/release-lto/examples`, when built.
    lto: PathBuf,
    /// `tools/omq-peer/target/release`, when built.
    omq: PathBuf,
    /// `--baseline DIR`, when given.
    baseline: Option<PathBuf>,
}

impl Dirs {
    /// Finds the directories from this binary's path and checks the required binaries.
    fn locate(baseline: Option<PathBuf>) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find own path: {e}"))?;
        let release = exe
            .parent()
            .ok_or("own path has no directory")?
            .to_path_buf();
        let missing: Vec<&str> = REQUIRED_BINARIES
            .iter()
            .copied()
            .filter(|name| !release.join(name).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "missing {} in {}.\nBuild them first with: cargo build --release --examples",
                missing.join(", "),
                release.display()
            ));
        }
        // target/release/examples -> target
        let target = release
            .parent()
            .and_then(Path::parent)
            .ok_or("own path is not under target/release/examples")?;
        let repository = target.parent().unwrap_or(Path::new("."));
        Ok(Dirs {
            lto: target.join("release-lto/examples"),
            omq: repository.join("tools/omq-peer/target/release"),
            release,
            baseline,
        })
    }

    fn of(&self, build: Build) -> &Path {
        match build {
            Build::Release => &self.release,
            Build::Lto => &self.lto,
            Build::Omq => &self.omq,
            // No baseline: a path where nothing is built.
            Build::Baseline => self.baseline.as_deref().unwrap_or(Path::new("")),
        }
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

/// Which build a program comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Build {
    Release,
    Lto,
    Omq,
    Baseline,
}

/// One process of a pair: a binary, the arguments before the three positional ones (a role or
/// subcommand) and after them (the shape flags).
#[derive(Clone, Copy)]
struct Program {
    build: Build,
    binary: &'static str,
    before: &'static [&'static str],
    after: &'static [&'static str],
}

impl Program {
    const fn ferromq(binary: &'static str, after: &'static [&'static str]) -> Self {
        Program {
            build: Build::Release,
            binary,
            before: &[],
            after,
        }
    }

    const fn lto(self) -> Self {
        Program {
            build: Build::Lto,
            ..self
        }
    }

    const fn baseline(self) -> Self {
        Program {
            build: Build::Baseline,
            ..self
        }
    }

    const fn omq(role: &'static [&'static str], after: &'static [&'static str]) -> Self {
        Program {
            build: Build::Omq,
            binary: "omq-peer",
            before: role,
            after,
        }
    }

    const fn plain(binary: &'static str, before: &'static [&'static str]) -> Self {
        Program {
            build: Build::Release,
            binary,
            before,
            after: &[],
        }
    }
}

/// A receiver and a sender measured together.
#[derive(Clone, Copy)]
struct Pairing {
    label: &'static str,
    receiver: Program,
    sender: Program,
}

const MT: &[&str] = &["--runtime", "mt"];
const CT: &[&str] = &["--runtime", "ct"];
const MT_BATCH: &[&str] = &["--runtime", "mt", "--batch"];
const MT_TASKS: &[&str] = &["--runtime", "mt", "--tasks", "8"];
const MT_SPAWN: &[&str] = &["--runtime", "mt", "--spawn"];

const FERROMQ_MT: Pairing = Pairing::ferromq("ferromq mt", MT);
const FERROMQ_CT: Pairing = Pairing::ferromq("ferromq ct", CT);
const FERROMQ_MT_BATCH: Pairing = Pairing {
    label: "ferromq mt batch",
    receiver: Program::ferromq("local_thr", MT_BATCH),
    sender: Program::ferromq("remote_thr", MT),
};
const FERROMQ_MT_TASKS: Pairing = Pairing::ferromq("ferromq mt 8 tasks", MT_TASKS);
const FERROMQ_MT_SPAWN: Pairing = Pairing::ferromq("ferromq mt spawn", MT_SPAWN);
const FERROMQ_MT_LTO: Pairing = Pairing {
    label: "ferromq mt lto",
    receiver: FERROMQ_MT.receiver.lto(),
    sender: FERROMQ_MT.sender.lto(),
};
const FERROMQ_MT_BASELINE: Pairing = Pairing {
    label: "ferromq mt baseline",
    receiver: FERROMQ_MT.receiver.baseline(),
    sender: FERROMQ_MT.sender.baseline(),
};
const FERROMQ_CT_BASELINE: Pairing = Pairing {
    label: "ferromq ct baseline",
    receiver: FERROMQ_CT.receiver.baseline(),
    sender: FERROMQ_CT.sender.baseline(),
};
const OMQ_MT: Pairing = Pairing::omq("omq mt", MT);
const OMQ_CT: Pairing = Pairing::omq("omq ct", CT);
const LIBZMQ: Pairing = Pairing {
    label: "libzmq",
    receiver: Program::plain("libzmq_local_thr", &[]),
    sender: Program::plain("libzmq_remote_thr", &[]),
};
const RAW: Pairing = Pairing {
    label: "raw",
    receiver: Program::plain("raw_tcp_ceiling", &["local"]),
    sender: Program::plain("raw_tcp_ceiling", &["remote"]),
};
/// Everything measured, in the order each repetition runs them.
const MEASURED: [Pairing; 12] = [
    LIBZMQ,
    FERROMQ_MT,
    FERROMQ_MT_BASELINE,
    OMQ_MT,
    FERROMQ_CT,
    FERROMQ_CT_BASELINE,
    OMQ_CT,
    FERROMQ_MT_BATCH,
    FERROMQ_MT_TASKS,
    FERROMQ_MT_SPAWN,
    FERROMQ_MT_LTO,
    RAW,
];
const CROSS: [Pairing; 2] = [
    Pairing {
        label: "ferromq local_thr <- libzmq remote_thr",
        receiver: FERROMQ_MT.receiver,
        sender: LIBZMQ.sender,
    },
    Pairing {
        label: "libzmq local_thr <- ferromq remote_thr",
        receiver: LIBZMQ.receiver,
        sender: FERROMQ_MT.sender,
    },
];

impl Pairing {
    /// ferromq's `local_thr` and `remote_thr`, both with the shape flags `after`.
    const fn ferromq(label: &'static str, after: &'static [&'static str]) -> Self {
        Pairing {
            label,
            receiver: Program::ferromq("local_thr", after),
            sender: Program::ferromq("remote_thr", after),
        }
    }

    /// omq-peer's `local_thr` and `remote_thr`, both with the shape flags `after`.
    const fn omq(label: &'static str, after: &'static [&'static str]) -> Self {
        Pairing {
            label,
            receiver: Program::omq(&["local_thr"], after),
            sender: Program::omq(&["remote_thr"], after),
        }
    }

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

/// A table cell's content when a pairing was not measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Absent {
    NotBuilt,
    Failed,
}

struct Harness {
    dirs: Dirs,
    settings: Settings,
    /// Every failed run, described for the final summary.
    failures: Failures,
    /// Makes every IPC path unique within this run.
    endpoint_counter: u64,
}

impl Harness {
    /// Whether both programs of `pairing` are built.
    fn built(&self, pairing: Pairing) -> bool {
        [pairing.receiver, pairing.sender]
            .iter()
            .all(|p| self.dirs.of(p.build).join(p.binary).is_file())
    }

    fn run_all(&mut self) -> ExitCode {
        let pairings: Vec<Pairing> = MEASURED
            .into_iter()
            .filter(|&pairing| {
                let built = self.built(pairing);
                let hint = match pairing.receiver.build {
                    Build::Lto => "build it with cargo build --profile release-lto --examples",
                    Build::Omq => {
                        "build it with cargo build --release --manifest-path tools/omq-peer/Cargo.toml"
                    }
                    // Only asked for with --baseline.
                    Build::Baseline if self.dirs.baseline.is_none() => return false,
                    _ => "no local_thr/remote_thr in the --baseline directory",
                };
                if !built {
                    eprintln!("note: {} not built; {hint}", pairing.label);
                }
                built
            })
            .collect();
        let mut rows: Vec<(Transport, usize, Row)> = Vec::new();
        let mut cross_rows: Vec<(Transport, usize, &'static str, Result<f64, String>)> = Vec::new();
        // Sizes outside, transports inside: every repetition runs each implementation over
        // each transport back to back, so the machine's drift hits tcp and ipc alike too.
        let transports = self.settings.transports.clone();
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
                let count_of = |label: &str| {
                    pairings
                        .iter()
                        .position(|p| p.label == label)
                        .and_then(|i| counts[t][i])
                };
                let cross_count = match (count_of(FERROMQ_MT.label), count_of(LIBZMQ.label)) {
                    (Some(a), Some(b)) => a.min(b),
                    (Some(n), None) | (None, Some(n)) => n,
                    (None, None) => {
                        self.guess_count(FERROMQ_MT, size, self.settings.run.target_run)
                    }
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
        // Report grouped by transport.
        let order = |transport: &Transport| transports.iter().position(|t| t == transport);
        rows.sort_by_key(|(transport, size, _)| (order(transport), *size));
        cross_rows.sort_by_key(|(transport, size, _, _)| (order(transport), *size));
        let absent = |label: &str| match pairings.iter().any(|p| p.label == label) {
            true => Absent::Failed,
            false => Absent::NotBuilt,
        };
        self.print_report(&rows, &cross_rows, absent);
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
            let outcome = run_processes(&self.dirs, pairing, &endpoint, size, count);
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
        absent: impl Fn(&str) -> Absent,
    ) {
        println!();
        println!(
            "## PUSH/PULL throughput, one call per message, median of {} alternating run(s) per cell",
            self.settings.run.reps
        );
        println!();
        println!(
            "machine: {}; receiver and sender in separate processes",
            common::machine()
        );
        println!(
            "shape: ferromq and omq built with the stock release profile (no LTO, 16 codegen \
             units) unless marked lto; mt = tokio multi-thread runtime, default workers, loop in \
             block_on (#[tokio::main]); ct = current-thread runtime; one recv().await per \
             message unless marked batch (recv_many, up to 1,024 per call); libzmq \
             ZMQ_IO_THREADS=1, one zmq_recvmsg per message; HWM 1000 (default) everywhere; \
             every send copies its payload into a fresh message; raw = plain socket \
             writer/reader moving the same ZMTP frames in 64 KiB writes"
        );
        println!();
        println!(
            "| transport | size | libzmq msg/s | ferromq mt msg/s | **ferromq mt** | omq mt | ferromq/omq mt | ferromq ct | omq ct | ferromq/omq ct | mt batch | 8 tasks / 1 | mt spawn | mt lto | stock/lto | raw MB/s |"
        );
        println!(
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let show = |value: Option<f64>, label: &str, format: &dyn Fn(f64) -> String| match value {
            Some(v) => format(v),
            None if absent(label) == Absent::NotBuilt => "not built".to_owned(),
            None => "FAILED".to_owned(),
        };
        for (transport, size, row) in rows {
            let get = |label: &str| row.medians.get(label).copied();
            let libzmq = get(LIBZMQ.label);
            let ratio = |label: &str, to: Option<f64>| {
                let value = match (get(label), to) {
                    (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                    _ => None,
                };
                show(value, label, &|r| format!("{r:.2}"))
            };
            let versus = |ours: &str, theirs: &str| ratio(ours, get(theirs));
            println!(
                "| {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                transport.name(),
                human_size(*size),
                cell(libzmq, si),
                show(get(FERROMQ_MT.label), FERROMQ_MT.label, &si),
                ratio(FERROMQ_MT.label, libzmq),
                ratio(OMQ_MT.label, libzmq),
                versus(FERROMQ_MT.label, OMQ_MT.label),
                ratio(FERROMQ_CT.label, libzmq),
                ratio(OMQ_CT.label, libzmq),
                versus(FERROMQ_CT.label, OMQ_CT.label),
                ratio(FERROMQ_MT_BATCH.label, libzmq),
                versus(FERROMQ_MT_TASKS.label, FERROMQ_MT.label),
                ratio(FERROMQ_MT_SPAWN.label, libzmq),
                ratio(FERROMQ_MT_LTO.label, libzmq),
                versus(FERROMQ_MT.label, FERROMQ_MT_LTO.label),
                show(
                    get(RAW.label).map(|r| r * *size as f64 / 1e6),
                    RAW.label,
                    &|m| { format!("{m:.0}") }
                ),
            );
        }
        println!();
        println!(
            "Ratios are to libzmq in the same run unless the column says otherwise; 8 tasks / 1 is \
             ferromq mt with eight tasks on each shared socket over one task each; stock/lto is \
             ferromq mt stock over ferromq mt built with thin LTO."
        );
        if self.dirs.baseline.is_some() {
            println!();
            println!(
                "### A/B against the baseline build ({}), same run",
                self.dirs.of(Build::Baseline).display()
            );
            println!();
            println!(
                "| transport | size | mt msg/s | baseline mt msg/s | mt / baseline | ct msg/s | baseline ct msg/s | ct / baseline |"
            );
            println!("|---|---:|---:|---:|---:|---:|---:|---:|");
            for (transport, size, row) in rows {
                let get = |label: &str| row.medians.get(label).copied();
                let ratio = |a: &str, b: &str| match (get(a), get(b)) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.3}", a / b),
                    _ => "-".to_owned(),
                };
                println!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    transport.name(),
                    human_size(*size),
                    cell(get(FERROMQ_MT.label), si),
                    cell(get(FERROMQ_MT_BASELINE.label), si),
                    ratio(FERROMQ_MT.label, FERROMQ_MT_BASELINE.label),
                    cell(get(FERROMQ_CT.label), si),
                    cell(get(FERROMQ_CT_BASELINE.label), si),
                    ratio(FERROMQ_CT.label, FERROMQ_CT_BASELINE.label),
                );
            }
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
    dirs: &Dirs,
    pairing: Pairing,
    endpoint: &str,
    size: usize,
    count: u64,
) -> Result<String, String> {
    let command = |program: Program| {
        let mut command = Command::new(dirs.of(program.build).join(program.binary));
        command
            .args(program.before)
            .arg(endpoint)
            .arg(size.to_string())
            .arg(count.to_string())
            .args(program.after);
        (program.binary, command)
    };
    common::run_processes(
        vec![command(pairing.receiver), command(pairing.sender)],
        RUN_TIMEOUT,
    )
}
