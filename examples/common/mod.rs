//! What the two-process throughput harnesses `compare` and `curve_compare` share: their common
//! command-line settings, running a receiver and a sender as child processes under a timeout,
//! reading the receiver's report, the record of failed runs, medians and the number formats of
//! their tables.
//!
//! Each example includes it with `#[path = "common/mod.rs"] mod common;`. Cargo does not build
//! it as an example of its own (a subdirectory without a `main.rs`).

// Each example uses only part of this module.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often running processes are checked for exit.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Attempts for a run whose receiver lost its free port to another process.
const BIND_ATTEMPTS: usize = 3;
/// The largest calibrated message count.
const MAX_COUNT: u64 = 500_000_000;

// ---------------------------------------------------------------------------------------------
// Settings

/// The settings every harness takes: `--quick`, `--reps N`, `--sizes LIST`.
pub struct RunSettings {
    pub sizes: Vec<usize>,
    pub reps: usize,
    /// Wall time one measured run should take.
    pub target_run: Duration,
    /// Wall time of the calibration run.
    pub calibration_run: Duration,
}

impl RunSettings {
    /// Parses the shared flags; every other flag goes to `extra` with a way to take its value,
    /// and `extra` returns `Ok(false)` for a flag it does not know either.
    pub fn from_args(
        args: impl Iterator<Item = String>,
        default_sizes: &[usize],
        mut extra: impl FnMut(&str, &mut dyn FnMut() -> Result<String, String>) -> Result<bool, String>,
    ) -> Result<Self, String> {
        let mut settings = RunSettings {
            sizes: default_sizes.to_vec(),
            reps: 5,
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
                "--help" | "-h" => return Err("help requested".to_owned()),
                other => {
                    if !extra(other, &mut value)? {
                        return Err(format!("unknown argument {other:?}"));
                    }
                }
            }
        }
        Ok(settings)
    }

    /// A message count that makes one run take about `target_run`, from the rate a
    /// calibration run measured; at least `floor`.
    pub fn calibrated_count(&self, rate: f64, floor: u64) -> u64 {
        ((rate * self.target_run.as_secs_f64()) as u64).clamp(floor, MAX_COUNT)
    }
}

/// `64`, `1k`, `16K`, `64KiB` → bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
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

// ---------------------------------------------------------------------------------------------
// Running processes

/// A TCP endpoint on a port that was free a moment ago.
pub fn free_tcp_endpoint() -> Result<String, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot read the free port: {e}"))?
        .port();
    Ok(format!("tcp://127.0.0.1:{port}"))
}

/// Runs `attempt` again, up to `BIND_ATTEMPTS` times in all, while it fails because another
/// process took the port between our probe and the receiver's bind.
pub fn retry_in_use(mut attempt: impl FnMut() -> Result<String, String>) -> Result<String, String> {
    for n in 1..=BIND_ATTEMPTS {
        match attempt() {
            Err(reason) if reason.contains("in use") && n < BIND_ATTEMPTS => continue,
            outcome => return outcome,
        }
    }
    unreachable!("the last attempt returns")
}

/// Starts the processes in order (the receiver first), each named for messages, waits for all
/// under `timeout`, and returns the first one's stdout; kills them all when any fails or the
/// time runs out, since the others would wait forever for their peer.
pub fn run_processes(processes: Vec<(&str, Command)>, timeout: Duration) -> Result<String, String> {
    let mut children: Vec<(&str, Child)> = Vec::with_capacity(processes.len());
    for (name, mut command) in processes {
        let spawned = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            Ok(child) => children.push((name, child)),
            Err(e) => {
                kill_all(&mut children);
                return Err(format!("cannot start {name}: {e}"));
            }
        }
    }
    let deadline = Instant::now() + timeout;
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; children.len()];
    while statuses.iter().any(Option::is_none) {
        for ((_, child), status) in children.iter_mut().zip(&mut statuses) {
            if status.is_none() {
                *status = child.try_wait().map_err(|e| e.to_string())?;
            }
        }
        if let Some(failed) = statuses
            .iter()
            .position(|status| status.is_some_and(|s| !s.success()))
        {
            kill_all(&mut children);
            let (name, child) = &mut children[failed];
            return Err(format!("{name} failed: {}", stderr_of(child).trim()));
        }
        if Instant::now() >= deadline {
            kill_all(&mut children);
            let hung: Vec<&str> = children
                .iter()
                .zip(&statuses)
                .filter(|(_, status)| status.is_none())
                .map(|((name, _), _)| *name)
                .collect();
            return Err(format!(
                "timed out after {}s ({} still running; killed)",
                timeout.as_secs(),
                hung.join(" and ")
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let mut stdout = String::new();
    if let Some(mut out) = children[0].1.stdout.take() {
        out.read_to_string(&mut stdout)
            .map_err(|e| format!("reading receiver output: {e}"))?;
    }
    Ok(stdout)
}

fn kill_all(children: &mut [(&str, Child)]) {
    for (_, child) in children {
        // Already exited is fine: kill only fails then.
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

/// The two lines a run's report is checked by: how many it counted, and the rate.
pub struct Report {
    /// `message count: ` — followed by the number counted.
    pub count_line: &'static str,
    /// What was counted, for the error message.
    pub counted: &'static str,
    /// `mean throughput: ` — followed by the rate, then `unit`.
    pub rate_line: &'static str,
    pub unit: &'static str,
}

/// libzmq's perf/local_thr report, which every throughput receiver prints
/// ([`print_throughput`]).
pub const THROUGHPUT: Report = Report {
    count_line: "message count: ",
    counted: "messages",
    rate_line: "mean throughput: ",
    unit: " [msg/s]",
};

/// Keeps this thread busy for `work`, as an application working on a message does (the
/// receivers' `--work NS`).
pub fn busy_for(work: Duration) {
    let start = Instant::now();
    while start.elapsed() < work {
        std::hint::spin_loop();
    }
}

/// Prints libzmq's perf/local_thr report for `count` messages of `size` bytes received in
/// `elapsed_secs` (the clock started at the first message): the four lines [`THROUGHPUT`]
/// reads.
pub fn print_throughput(size: usize, count: u64, elapsed_secs: f64) {
    let throughput = count as f64 / elapsed_secs.max(1e-9);
    let megabits = throughput * size as f64 * 8.0 / 1_000_000.0;
    println!("message size: {size} [B]");
    println!("message count: {count}");
    println!("mean throughput: {throughput:.0} [msg/s]");
    println!("mean throughput: {megabits:.3} [Mb/s]");
}

impl Report {
    /// Checks the run counted exactly `count` and returns its rate.
    pub fn parse(&self, stdout: &str, count: u64) -> Result<f64, String> {
        let counted = stdout
            .lines()
            .find_map(|line| line.strip_prefix(self.count_line))
            .and_then(|n| n.trim().parse::<u64>().ok());
        if counted != Some(count) {
            return Err(format!(
                "receiver counted {counted:?} {}, expected {count}; output: {stdout:?}",
                self.counted
            ));
        }
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(self.rate_line)?.strip_suffix(self.unit))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("no '{}N{}' line in {stdout:?}", self.rate_line, self.unit))
    }
}

/// Every failed run, reported as it happens and again at the end.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    pub fn record(&mut self, what: &str, reason: &str) {
        eprintln!("  !!! FAILED: {what}: {reason}");
        self.0.push(format!("{what}: {reason}"));
    }

    /// The final summary, loud; nothing when every run succeeded.
    pub fn print(&self) {
        if self.0.is_empty() {
            return;
        }
        println!();
        println!("### !!! {} FAILED RUN(S) !!!", self.0.len());
        for failure in &self.0 {
            println!("- {failure}");
        }
    }

    /// Non-zero when any run failed.
    pub fn exit_code(&self) -> ExitCode {
        match self.0.is_empty() {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A process's memory and limits (Linux /proc)

/// `field` (`VmRSS`, `VmHWM`, …) of `/proc/<process>/status` in KiB; `process` is a pid or
/// `self`.
pub fn proc_status_kib(process: &str, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{process}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in {path}"))
}

/// This process's soft limit on open files (`None`: unlimited or not a number).
pub fn open_file_soft_limit() -> Result<Option<usize>, String> {
    let limits = std::fs::read_to_string("/proc/self/limits")
        .map_err(|e| format!("/proc/self/limits: {e}"))?;
    Ok(limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok()))
}

// ---------------------------------------------------------------------------------------------
// Numbers and tables

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

pub fn cell(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "FAILED".to_owned(), format)
}

/// 2_712_345.0 → "2.71 M"; 45_000.0 → "45.0 k".
pub fn si(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

pub fn human_size(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// `2 CPUs, Linux 6.1.0`, for the line under a table's title.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs, Linux {}", kernel.trim())
}
