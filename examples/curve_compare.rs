//! CURVE PUSH→PULL throughput and CURVE handshake rate over TCP: ferromq beside libzmq 4.3.5's
//! CURVE (libsodium), in one run (issue #12, item 8).
//!
//! ```text
//! cargo build --release --example curve_compare
//! target/release/examples/curve_compare [--quick] [--reps N] [--sizes 64,1k,64k] [--no-current-thread]
//! ```
//!
//! The reference side is `benches/curve/curve_thr.c`, a small C program on libzmq's C API,
//! which this example compiles with `gcc` into `<target>/curve-bench/curve_thr`, linked by path
//! against the libzmq that pyzmq 27's wheel bundles (`<target>/pyzmq-27/pyzmq.libs/`, created
//! by `cargo test --test pyzmq_harness`; `FERROMQ_CURVE_LIBZMQ=/path/libzmq.so` overrides).
//! The `zmq` crate's libzmq has no CURVE, so it cannot serve. Without gcc or that libzmq the
//! libzmq columns are skipped, saying why, and ferromq is still measured.
//!
//! Shapes, the same for both implementations:
//! - throughput: receiver and sender are two processes (this binary re-runs itself as a
//!   `child` for ferromq). PULL binds as the CURVE server, PUSH connects as a client with a
//!   freshly generated key pair, and sends `count` messages, each a fresh copy of the payload;
//!   the receiver takes them with one `recv` per message (`zmq_msg_recv`, `Pull::recv().await`
//!   — no `recv_many`) and times them from the first one on, as libzmq's perf tools do.
//! - handshake rate: one process; a CURVE server PULL is bound, then `count` times in a row a
//!   new PUSH client socket connects, sends one 1-byte message, the server receives it and the
//!   client is closed. connections/s = count / elapsed.
//!
//! ferromq runs on a multi-thread tokio runtime (what `#[tokio::main]` gives a user, one
//! worker per CPU) and, as a second column, on a current-thread runtime; libzmq on one I/O
//! thread (its default) plus the application thread. Every implementation is run in turn
//! (A B C A B C …) for each size so drift of the shared machine hits all alike; each cell is
//! the median of `--reps` runs. Message counts are calibrated by a short first run to take
//! about one second. A NULL-mechanism row at 64 B (and a NULL handshake row) shows what CURVE
//! costs each implementation, as extra ns per message.
//!
//! The settings, the process handling and the table formats are shared with `compare` through
//! `examples/common/mod.rs`. Where the time goes inside ferromq's CURVE is a question for a
//! profiler (`perf record -g` on the receiver; see spec/performance.md): its XSalsa20-Poly1305
//! lives in the private `wire::mechanism::nacl`, which an example cannot call on its own.

#[path = "common/mod.rs"]
mod common;

use common::{Failures, RunSettings, cell, human_size, median, si};
use ferromq::security::{CurveKey, CurveKeyPair};
use ferromq::{Message, Pull, Push, SocketOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime};

const DEFAULT_SIZES: [usize; 3] = [64, 1024, 64 * 1024];
/// The size of the NULL-mechanism reference row.
const NULL_SIZE: usize = 64;
/// How long any one run may take before its processes are killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Targets from the issue: ferromq/libzmq at 64 B and at 64 KiB.
const TARGET_SMALL: f64 = 1.5;
const TARGET_LARGE: f64 = 1.0;
const C_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/curve/curve_thr.c");
const C_HEADER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/curve/zmq_min.h");

const USAGE: &str =
    "usage: curve_compare [--quick] [--reps N] [--sizes 64,1k,64k] [--no-current-thread]
  --quick              one repetition of short runs (a validation pass, not a measurement)
  --reps N             measured repetitions per implementation and size (default 5; median kept)
  --sizes LIST         message sizes in bytes, k = KiB (default 64,1k,64k)
  --no-current-thread  skip the ferromq current-thread column";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        return child_main(&args[1..]);
    }
    let settings = match Settings::from_args(args.into_iter()) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("curve_compare: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let own = match std::env::current_exe() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("curve_compare: cannot find own path: {e}");
            return ExitCode::from(2);
        }
    };
    let libzmq = match build_reference(&own) {
        Ok(path) => Some(path),
        Err(reason) => {
            eprintln!("curve_compare: SKIPPING the libzmq columns: {reason}");
            None
        }
    };
    let server = CurveKeyPair::generate();
    let mut harness = Harness {
        own,
        libzmq,
        settings,
        keys: (server.public.to_z85(), server.secret.to_z85()),
        failures: Failures::default(),
    };
    harness.run_all()
}

// ---------------------------------------------------------------------------------------------
// Settings

struct Settings {
    run: RunSettings,
    current_thread: bool,
}

impl Settings {
    fn from_args(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut current_thread = true;
        let run = RunSettings::from_args(args, &DEFAULT_SIZES, |flag, _| {
            let known = flag == "--no-current-thread";
            if known {
                current_thread = false;
            }
            Ok(known)
        })?;
        Ok(Settings {
            run,
            current_thread,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Building the libzmq side

/// `<target>` from `<target>/<profile>/examples/curve_compare`.
fn target_dir(own: &Path) -> Option<PathBuf> {
    Some(own.parent()?.parent()?.parent()?.to_path_buf())
}

/// pyzmq's bundled libzmq (which has CURVE), or the one `FERROMQ_CURVE_LIBZMQ` names.
fn find_libzmq(target: &Path) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("FERROMQ_CURVE_LIBZMQ") {
        let path = PathBuf::from(path);
        return match path.is_file() {
            true => Ok(path),
            false => Err(format!(
                "FERROMQ_CURVE_LIBZMQ={} is not a file",
                path.display()
            )),
        };
    }
    // This build's target directory, then the crate's own (for builds with another
    // CARGO_TARGET_DIR).
    let crate_target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let dirs = [target.to_path_buf(), crate_target];
    for dir in &dirs {
        if let Ok(path) = find_in(&dir.join("pyzmq-27").join("pyzmq.libs"), "libzmq") {
            return Ok(path);
        }
    }
    Err(format!(
        "no pyzmq libzmq under {}/pyzmq-27/pyzmq.libs; run `cargo test --test pyzmq_harness` \
         once to install pyzmq 27 there, or set FERROMQ_CURVE_LIBZMQ",
        dirs[0].display()
    ))
}

/// The first `<prefix>*.so*` in `dir`.
fn find_in(dir: &Path, prefix: &str) -> Result<PathBuf, String> {
    std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.contains(".so"))
        })
        .ok_or_else(|| format!("no {prefix}*.so* in {}", dir.display()))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Compiles `benches/curve/curve_thr.c` (when missing or older than its source) and checks
/// the library it links has CURVE; returns the program's path.
fn build_reference(own: &Path) -> Result<PathBuf, String> {
    let target = target_dir(own).ok_or("cannot work out the target directory")?;
    let libzmq = find_libzmq(&target)?;
    let out_dir = target.join("curve-bench");
    let program = out_dir.join("curve_thr");
    let source_time = [C_SOURCE, C_HEADER]
        .iter()
        .filter_map(|p| modified(Path::new(p)))
        .max();
    let fresh = matches!((modified(&program), source_time), (Some(b), Some(s)) if b >= s);
    if !fresh {
        std::fs::create_dir_all(&out_dir)
            .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
        let lib_dir = libzmq.parent().ok_or("libzmq path has no directory")?;
        let output = Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&program)
            .arg(C_SOURCE)
            .arg(&libzmq)
            .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
            .output()
            .map_err(|e| format!("cannot run gcc ({e}); install gcc to measure libzmq"))?;
        if !output.status.success() {
            return Err(format!(
                "gcc failed to build {C_SOURCE}:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        eprintln!("  built {} against {}", program.display(), libzmq.display());
    }
    let output = Command::new(&program)
        .arg("keypair")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let banner = text.lines().next().unwrap_or_default().to_owned();
    if !output.status.success() || !banner.contains("curve: 1") {
        return Err(format!(
            "{} does not report CURVE support ({banner:?})",
            program.display()
        ));
    }
    eprintln!("  reference: {banner} ({})", libzmq.display());
    Ok(program)
}

// ---------------------------------------------------------------------------------------------
// What is measured

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Mechanism {
    Curve,
    Null,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Implementation {
    Libzmq,
    /// ferromq on a multi-thread runtime.
    FerromqMt,
    /// ferromq on a current-thread runtime.
    FerromqCt,
}

impl Implementation {
    fn label(self) -> &'static str {
        match self {
            Implementation::Libzmq => "libzmq",
            Implementation::FerromqMt => "ferromq-mt",
            Implementation::FerromqCt => "ferromq-ct",
        }
    }

    fn flavor(self) -> &'static str {
        match self {
            Implementation::FerromqCt => "ct",
            _ => "mt",
        }
    }
}

/// One cell of a table: which implementation, mechanism and size (0 for handshakes).
type Key = (Implementation, Mechanism, usize);

struct Harness {
    own: PathBuf,
    libzmq: Option<PathBuf>,
    settings: Settings,
    /// The server key pair (public, secret) in Z85.
    keys: (String, String),
    failures: Failures,
}

impl Harness {
    fn implementations(&self) -> Vec<Implementation> {
        let mut all = Vec::new();
        if self.libzmq.is_some() {
            all.push(Implementation::Libzmq);
        }
        all.push(Implementation::FerromqMt);
        if self.settings.current_thread {
            all.push(Implementation::FerromqCt);
        }
        all
    }

    /// The throughput table's rows: CURVE at every size, then the NULL reference.
    fn throughput_rows(&self) -> Vec<(Mechanism, usize)> {
        let mut rows: Vec<(Mechanism, usize)> = self
            .settings
            .run
            .sizes
            .iter()
            .map(|&size| (Mechanism::Curve, size))
            .collect();
        rows.push((Mechanism::Null, NULL_SIZE));
        rows
    }

    fn run_all(&mut self) -> ExitCode {
        let load_before = load_average();
        let started = Instant::now();
        let mut medians: HashMap<Key, f64> = HashMap::new();
        let implementations = self.implementations();
        // Throughput: sizes outside; every repetition runs each implementation in turn.
        for (mechanism, size) in self.throughput_rows() {
            self.measure_group(&implementations, mechanism, Some(size), &mut medians);
        }
        for mechanism in [Mechanism::Curve, Mechanism::Null] {
            self.measure_group(&implementations, mechanism, None, &mut medians);
        }
        self.print_report(&medians, load_before, started.elapsed());
        self.failures.exit_code()
    }

    /// Calibrates, then runs `reps` alternating repetitions of every implementation for one
    /// throughput size (`Some`) or the handshake rate (`None`), and records the medians.
    fn measure_group(
        &mut self,
        implementations: &[Implementation],
        mechanism: Mechanism,
        size: Option<usize>,
        medians: &mut HashMap<Key, f64>,
    ) {
        let what_group = match size {
            Some(size) => format!("{mechanism:?} {size} B"),
            None => format!("{mechanism:?} handshake"),
        };
        let counts: Vec<Option<u64>> = implementations
            .iter()
            .map(|&imp| {
                let what = format!("{what_group} {} calibration", imp.label());
                let probe = guess_count(size, self.settings.run.calibration_run);
                match self.run(imp, mechanism, size, probe) {
                    Ok(rate) => {
                        let floor = if size.is_some() { 1_000 } else { 100 };
                        let count = self.settings.run.calibrated_count(rate, floor);
                        eprintln!("  {what}: {} /s -> {count} per run", si(rate));
                        Some(count)
                    }
                    Err(reason) => {
                        self.fail(&what, &reason);
                        None
                    }
                }
            })
            .collect();
        let mut samples: HashMap<Implementation, Vec<f64>> = HashMap::new();
        for rep in 1..=self.settings.run.reps {
            for (&imp, count) in implementations.iter().zip(&counts) {
                let Some(count) = *count else { continue };
                let what = format!("{what_group} {} rep {rep}", imp.label());
                match self.run(imp, mechanism, size, count) {
                    Ok(rate) => {
                        eprintln!("  {what}: {} /s", si(rate));
                        samples.entry(imp).or_default().push(rate);
                    }
                    Err(reason) => self.fail(&what, &reason),
                }
            }
        }
        for (imp, mut rates) in samples {
            medians.insert((imp, mechanism, size.unwrap_or(0)), median(&mut rates));
        }
    }

    fn fail(&mut self, what: &str, reason: &str) {
        self.failures.record(what, reason);
    }

    fn keys(&self, mechanism: Mechanism) -> [String; 2] {
        match mechanism {
            Mechanism::Curve => [self.keys.0.clone(), self.keys.1.clone()],
            Mechanism::Null => ["-".to_owned(), "-".to_owned()],
        }
    }

    /// The command for one role: `pull`, `push` or `handshake`.
    fn command(&self, imp: Implementation, role: &str) -> Command {
        match imp {
            Implementation::Libzmq => {
                let mut command = Command::new(self.libzmq.as_ref().expect("libzmq present"));
                command.arg(role);
                command
            }
            _ => {
                let mut command = Command::new(&self.own);
                command.args(["child", imp.flavor(), role]);
                command
            }
        }
    }

    /// One run: msg/s for a throughput size, connections/s for `None`.
    fn run(
        &mut self,
        imp: Implementation,
        mechanism: Mechanism,
        size: Option<usize>,
        count: u64,
    ) -> Result<f64, String> {
        let keys = self.keys(mechanism);
        let name = |role: &str| format!("{} {role}", imp.label());
        let Some(size) = size else {
            let mut command = self.command(imp, "handshake");
            command
                .arg("tcp://127.0.0.1:0")
                .arg(count.to_string())
                .args(&keys);
            let name = name("handshake");
            let stdout = common::run_processes(vec![(&name, command)], RUN_TIMEOUT)?;
            return HANDSHAKES.parse(&stdout, count);
        };
        let names = [name("receiver"), name("sender")];
        let stdout = common::retry_in_use(|| {
            let endpoint = common::free_tcp_endpoint()?;
            let mut pair = [self.command(imp, "pull"), self.command(imp, "push")];
            for command in &mut pair {
                command
                    .arg(&endpoint)
                    .arg(size.to_string())
                    .arg(count.to_string())
                    .args(&keys);
            }
            let [receiver, sender] = pair;
            common::run_processes(
                vec![(&names[0], receiver), (&names[1], sender)],
                RUN_TIMEOUT,
            )
        })?;
        common::THROUGHPUT.parse(&stdout, count)
    }

    fn print_report(&self, medians: &HashMap<Key, f64>, load_before: String, took: Duration) {
        let get = |imp, mechanism, size| medians.get(&(imp, mechanism, size)).copied();
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".to_owned(),
        };
        let mb = |rate: Option<f64>, size: usize| {
            cell(rate.map(|r| r * size as f64 / 1e6), |m| format!("{m:.0}"))
        };
        let ct = self.settings.current_thread;
        let skipped = self.libzmq.is_none();
        let libzmq_cell = |text: String| match skipped {
            true => "skipped".to_owned(),
            false => text,
        };
        println!();
        println!(
            "## CURVE PUSH→PULL over TCP, median of {} alternating run(s) per cell",
            self.settings.run.reps
        );
        println!();
        println!(
            "machine: {}; load average before {load_before}, after {}; run took {:.0} s",
            common::machine(),
            load_average(),
            took.as_secs_f64()
        );
        println!(
            "shape: receiver and sender in separate processes, one recv per message, each send a \
             fresh copy; PULL binds as CURVE server, PUSH connects as client. libzmq 4.3.5 \
             (pyzmq 27 wheel, libsodium) with 1 I/O thread; ferromq-mt = multi-thread tokio \
             runtime (default workers), ferromq-ct = current-thread runtime; HWM 1000 and OS \
             socket buffers for all"
        );
        println!();
        let mut numbers = vec![
            "size",
            "libzmq msg/s",
            "libzmq MB/s",
            "ferromq-mt msg/s",
            "ferromq-mt MB/s",
            "mt/libzmq",
        ];
        if ct {
            numbers.extend(["ferromq-ct msg/s", "ferromq-ct MB/s", "ct/libzmq"]);
        }
        print_head("mechanism", &numbers, Some("target"));
        for (mechanism, size) in self.throughput_rows() {
            let libzmq = get(Implementation::Libzmq, mechanism, size);
            let mt = get(Implementation::FerromqMt, mechanism, size);
            let ferromq_ct = get(Implementation::FerromqCt, mechanism, size);
            let mut line = format!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                mechanism_name(mechanism),
                human_size(size),
                libzmq_cell(cell(libzmq, si)),
                libzmq_cell(mb(libzmq, size)),
                cell(mt, si),
                mb(mt, size),
                ratio(mt, libzmq),
            );
            if ct {
                line.push_str(&format!(
                    " {} | {} | {} |",
                    cell(ferromq_ct, si),
                    mb(ferromq_ct, size),
                    ratio(ferromq_ct, libzmq)
                ));
            }
            let target = match (mechanism, size) {
                (Mechanism::Curve, 64) => Some(TARGET_SMALL),
                (Mechanism::Curve, 65536) => Some(TARGET_LARGE),
                _ => None,
            };
            let verdict = match (target, mt, libzmq) {
                (Some(t), Some(f), Some(l)) if l > 0.0 => {
                    let best = f.max(ferromq_ct.unwrap_or(0.0)) / l;
                    format!(
                        "≥ {t:.1}: {} (mt {:.2}, best {best:.2})",
                        if f / l >= t { "met" } else { "**missed**" },
                        f / l
                    )
                }
                (Some(t), ..) => format!("≥ {t:.1}"),
                (None, ..) => String::new(),
            };
            line.push_str(&format!(" {verdict} |"));
            println!("{line}");
        }
        println!();
        println!("### What CURVE costs (CURVE / NULL msg/s at {NULL_SIZE} B)");
        println!();
        print_head(
            "implementation",
            &[
                "NULL msg/s",
                "CURVE msg/s",
                "CURVE/NULL",
                "extra ns per message",
            ],
            None,
        );
        for imp in self.implementations() {
            let null = get(imp, Mechanism::Null, NULL_SIZE);
            let curve = get(imp, Mechanism::Curve, NULL_SIZE);
            let extra = match (null, curve) {
                (Some(n), Some(c)) if n > 0.0 && c > 0.0 => format!("{:.0}", 1e9 / c - 1e9 / n),
                _ => "-".to_owned(),
            };
            println!(
                "| {} | {} | {} | {} | {extra} |",
                imp.label(),
                cell(null, si),
                cell(curve, si),
                ratio(curve, null)
            );
        }
        println!();
        println!(
            "### Handshake rate (one process: sequential connect + 1 message + close), connections/s"
        );
        println!();
        let mut numbers = vec!["libzmq conn/s", "ferromq-mt conn/s", "mt/libzmq"];
        if ct {
            numbers.extend(["ferromq-ct conn/s", "ct/libzmq"]);
        }
        print_head("mechanism", &numbers, None);
        for mechanism in [Mechanism::Curve, Mechanism::Null] {
            let libzmq = get(Implementation::Libzmq, mechanism, 0);
            let mt = get(Implementation::FerromqMt, mechanism, 0);
            let mut line = format!(
                "| {} | {} | {} | {} |",
                mechanism_name(mechanism),
                libzmq_cell(cell(libzmq, si)),
                cell(mt, si),
                ratio(mt, libzmq)
            );
            if ct {
                let ferromq_ct = get(Implementation::FerromqCt, mechanism, 0);
                line.push_str(&format!(
                    " {} | {} |",
                    cell(ferromq_ct, si),
                    ratio(ferromq_ct, libzmq)
                ));
            }
            println!("{line}");
        }
        if self.libzmq.is_none() {
            println!();
            println!("libzmq columns skipped: see the message at the start of the run.");
        }
        self.failures.print();
    }
}

/// A markdown table's head: `first` and `last` (if any) left-aligned, `numbers` between them
/// right-aligned.
fn print_head(first: &str, numbers: &[&str], last: Option<&str>) {
    let mut header = format!("| {first} |");
    let mut rule = "|---|".to_owned();
    for column in numbers {
        header.push_str(&format!(" {column} |"));
        rule.push_str("---:|");
    }
    if let Some(column) = last {
        header.push_str(&format!(" {column} |"));
        rule.push_str("---|");
    }
    println!("{header}");
    println!("{rule}");
}

fn mechanism_name(mechanism: Mechanism) -> &'static str {
    match mechanism {
        Mechanism::Curve => "CURVE",
        Mechanism::Null => "NULL",
    }
}

/// A count that takes about `duration` at a rough guess of the rate.
fn guess_count(size: Option<usize>, duration: Duration) -> u64 {
    let rate = match size {
        Some(size) => f64::min(1e6, 5e8 / size.max(1) as f64),
        None => 1_000.0,
    };
    ((rate * duration.as_secs_f64()) as u64).max(100)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".to_owned())
}

/// The report of a handshake run, `curve_thr handshake` and `curve_compare child … handshake`.
const HANDSHAKES: common::Report = common::Report {
    count_line: "connection count: ",
    counted: "connections",
    rate_line: "handshake rate: ",
    unit: " [conn/s]",
};

// ---------------------------------------------------------------------------------------------
// The ferromq child processes:
//   curve_compare child mt|ct pull|push ENDPOINT SIZE COUNT SERVER_PUBLIC SERVER_SECRET
//   curve_compare child mt|ct handshake ENDPOINT COUNT SERVER_PUBLIC SERVER_SECRET
// with the same output lines as curve_thr.c; '-' '-' for the keys runs the NULL mechanism.

fn child_main(args: &[String]) -> ExitCode {
    let runtime = match args.first().map(String::as_str) {
        Some("mt") => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        Some("ct") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => {
            eprintln!("curve_compare child: first argument is mt or ct");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("curve_compare child: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(child(&args[1..])) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("curve_compare child: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The server's key pair (public, secret); `None` runs the NULL mechanism.
type ServerKeys = Option<(CurveKey, CurveKey)>;

/// Server key pair from the two key arguments; `None` for NULL.
fn child_keys(public: &str, secret: &str) -> Result<ServerKeys, String> {
    if public == "-" && secret == "-" {
        return Ok(None);
    }
    let public: CurveKey = public.parse().map_err(|e| format!("public key: {e}"))?;
    let secret: CurveKey = secret.parse().map_err(|e| format!("secret key: {e}"))?;
    Ok(Some((public, secret)))
}

fn server_options(keys: ServerKeys) -> SocketOptions {
    match keys {
        Some((_, secret)) => SocketOptions::default().curve_server_with(secret),
        None => SocketOptions::default(),
    }
}

fn client_options(keys: ServerKeys, pair: &CurveKeyPair) -> SocketOptions {
    match keys {
        Some((public, _)) => SocketOptions::default().curve_client_with(public, pair),
        None => SocketOptions::default(),
    }
}

async fn child(args: &[String]) -> Result<(), String> {
    let number = |text: &String| {
        text.parse::<u64>()
            .map_err(|_| format!("{text:?} is not a whole number"))
    };
    match args {
        [role, endpoint, size, count, public, secret] if role == "pull" || role == "push" => {
            let (size, count) = (number(size)? as usize, number(count)?);
            let keys = child_keys(public, secret)?;
            if role == "pull" {
                child_pull(endpoint, size, count, keys).await
            } else {
                child_push(endpoint, size, count, keys).await
            }
            .map_err(|e| e.to_string())
        }
        [role, endpoint, count, public, secret] if role == "handshake" => {
            let keys = child_keys(public, secret)?;
            child_handshake(endpoint, number(count)?, keys)
                .await
                .map_err(|e| e.to_string())
        }
        _ => Err(format!("bad arguments {args:?}")),
    }
}

fn check_size(message: &Message, size: usize) -> ferromq::Result<()> {
    match message.byte_len() == size {
        true => Ok(()),
        false => Err(ferromq::Error::MalformedMessage(
            "message of the wrong size",
        )),
    }
}

async fn child_pull(
    endpoint: &str,
    size: usize,
    count: u64,
    keys: ServerKeys,
) -> ferromq::Result<()> {
    let pull = Pull::with_options(server_options(keys))?;
    pull.bind(endpoint)?;
    check_size(&pull.recv().await?, size)?;
    let start = Instant::now();
    for _ in 1..count {
        // One receive per message, as zmq_msg_recv on the libzmq side.
        check_size(&pull.recv().await?, size)?;
    }
    common::print_throughput(size, count, start.elapsed().as_secs_f64());
    pull.close().await;
    Ok(())
}

async fn child_push(
    endpoint: &str,
    size: usize,
    count: u64,
    keys: ServerKeys,
) -> ferromq::Result<()> {
    let push = Push::with_options(client_options(keys, &CurveKeyPair::generate()))?;
    push.connect(endpoint)?;
    let payload = vec![0u8; size];
    for _ in 0..count {
        push.send(Message::from(&payload[..])).await?;
    }
    // Default linger: close returns once everything queued is written.
    push.close().await;
    Ok(())
}

async fn child_handshake(endpoint: &str, count: u64, keys: ServerKeys) -> ferromq::Result<()> {
    let server = Pull::with_options(server_options(keys))?;
    let bound = server.bind(endpoint)?;
    // The client key pair is made before the clock starts, as libzmq's side does.
    let mut options = client_options(keys, &CurveKeyPair::generate());
    options.linger = Some(Duration::ZERO);
    let start = Instant::now();
    for _ in 0..count {
        let client = Push::with_options(options.clone())?;
        client.connect(&bound)?;
        client.send(Message::from(&b"x"[..])).await?;
        server.recv().await?;
        client.close().await;
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    println!("connection count: {count}");
    println!("handshake rate: {:.0} [conn/s]", count as f64 / elapsed);
    server.close().await;
    Ok(())
}
