//! PUB/SUB fan-out at scale, ferromq against libzmq in the same run: one publisher, 1, 10, 100
//! and 1,000 subscribers over TCP loopback, 64-byte messages, default high-water marks.
//!
//! ```text
//! cargo build --release --example fanout_compare
//! ulimit -n 4096   # 1,000 libzmq subscribers need ~2,000 descriptors in one process
//! target/release/examples/fanout_compare [--subs 1,10,100,1000] [--messages N] [--reps R]
//! ```
//!
//! **Processes.** For every run the harness (this binary without a role) starts two children,
//! both this binary again:
//!
//! - `fanout_compare pub <ferromq|libzmq> <messages>` binds a PUB socket to
//!   `tcp://127.0.0.1:0` and prints the endpoint as its first line;
//! - `fanout_compare sub <ferromq|libzmq> <endpoint> <subscribers>` hosts every SUB socket,
//!   each subscribed to `A` and connected to that endpoint.
//!
//! **Synchronisation**, the same for both implementations. Until it is told to start, the
//! publisher sends an `AWARM` marker every `MARKER_INTERVAL` (20 ms). The subscriber process
//! prints `ready` once every one of its sockets has received a message (necessarily a
//! marker): then every connection is up and every subscription has reached the publisher's
//! filter. The harness then writes `go` to the publisher's stdin, and the publisher sends
//! `messages` 64-byte messages (first byte `A`) back to back, then an `AEND` marker every
//! `MARKER_INTERVAL` until the harness closes its stdin. A subscriber is done at its first
//! `AEND`; repeating the marker means a subscriber whose queue was full when one was dropped
//! still gets a later one. Once all are done the subscriber process prints its report and
//! exits; the harness then closes the publisher's stdin and it prints its own. (ferromq's
//! `Pub::wait_for_subscribers` would do for ferromq alone, but the markers work for both and
//! also tell the subscriber process when to take its "connected" RSS.)
//!
//! **Tuning.** Default options on both sides: a send and a receive HWM of 1,000 messages per
//! connection, so a publisher faster than its subscribers drops messages; drops are counted,
//! not prevented. ferromq: multi-thread tokio runtime with default workers in both processes
//! (`Builder::new_multi_thread().enable_all()`, what `#[tokio::main]` gives), the publisher's
//! loop in `block_on` awaiting `Pub::send` per message, one spawned task per `Sub` awaiting
//! `recv`. libzmq (the `zmq` crate): one context with its default single I/O thread per
//! process; the subscriber process serves all its sockets from ONE application thread with
//! `zmq_poll`, draining each readable socket without waiting (a thread per socket would
//! measure the scheduler at 1,000 subscribers). Both publishers copy the payload into a new
//! message for every send.
//!
//! **Figures**, per subscriber count and implementation, each the median over `--reps` runs
//! that alternate libzmq and ferromq:
//!
//! - *publish*: messages sent divided by the publisher's sending loop time;
//! - *per sub*: the median over subscribers of what it received divided by the time from its
//!   first real (non-marker) message to its last (timing to `AEND` instead would add up to a
//!   marker interval to every run);
//! - *total*: the messages all subscribers received divided by the time from the earliest
//!   first message to the latest last message;
//! - both rates count a subscriber's messages up to the last one it timed: subscribers read
//!   the clock at their first real message and every [`TIME_EVERY`]th after it, not for
//!   every message (one clock read per message was 11 % of a ferromq subscriber process's
//!   CPU at 100 subscribers, a cost of the measurement that both implementations paid);
//! - *lost*: messages sent minus received, summed over subscribers, and as a share of all
//!   (sent × subscribers) deliveries; *pub drops*: ferromq's own count of messages it dropped
//!   at a full subscriber queue while sending (`Pub::dropped_messages`; libzmq does not count);
//! - *RSS/sub*: the subscriber process's VmRSS once all are connected (before the publisher
//!   starts) and once all are done, minus its VmRSS before the first socket was created,
//!   divided by the subscriber count (at 1 subscriber this is dominated by one-off costs
//!   such as libzmq starting its I/O thread); *pub peak*: the publisher's VmHWM.
//!
//! A run's publisher sends `--messages` (default 4,000,000) to up to 10 subscribers, and
//! `--messages × 10 / N` to N > 10, so every run offers at most 10 × `--messages` deliveries
//! and stays a few seconds long. Every child is killed when a run exceeds `RUN_TIMEOUT`, and
//! the exit status is non-zero when any run failed.

#[path = "common/mod.rs"]
mod common;

use common::{Failures, machine, median, si};
use ferromq::{Pub, Sub};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Subscriber counts measured when `--subs` is not given.
const DEFAULT_SUBS: [usize; 4] = [1, 10, 100, 1000];
/// Messages a run publishes when `--messages` is not given: about a second of sending to one
/// subscriber for either publisher here (4-7 M msg/s).
const DEFAULT_MESSAGES: u64 = 4_000_000;
/// Runs per implementation and subscriber count when `--reps` is not given.
const DEFAULT_REPS: usize = 3;
/// Up to this many subscribers a run publishes `--messages`; with more, proportionally fewer,
/// so that every run offers the same deliveries (messages × subscribers) as this many and
/// stays a few seconds long.
const FULL_COUNT_SUBS: usize = 10;
/// Bytes per published message, topic byte included.
const MESSAGE_BYTES: usize = 64;
/// The prefix every subscriber subscribes to and every message starts with.
const TOPIC: &[u8] = b"A";
/// Sent before `go`: tells a subscriber it is connected and subscribed.
const WARM: &[u8] = b"AWARM";
/// Sent after the last message: the subscriber is done.
const END: &[u8] = b"AEND";
/// How often the publisher repeats a marker. Each marker goes to every subscriber, so a short
/// interval is a load of its own: at 1 ms, 1,000 libzmq subscribers mean a million pipe
/// wake-ups a second, which saturated libzmq's publisher and stalled its connection set-up.
/// The interval only delays the start and the end of a run, never the figures.
const MARKER_INTERVAL: Duration = Duration::from_millis(20);
/// A subscriber reads the clock at its first real message and at every this many after it;
/// the rates count the messages up to its last reading, so they are exact for those.
const TIME_EVERY: u64 = 16;
/// How long one run (both children) may take before they are killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Most messages taken from one libzmq socket per poll, so a busy socket cannot starve the
/// others: its receive HWM, what it can hold.
const DRAIN_BATCH: usize = 1000;
/// Open descriptors a process needs besides two per subscriber (libzmq: a TCP connection and
/// a mailbox per SUB socket).
const SPARE_DESCRIPTORS: usize = 64;
/// What the subscriber process prints once every socket is connected.
const READY_LINE: &str = "ready";
/// What the harness writes to the publisher's stdin to start the run.
const GO_LINE: &str = "go";

const USAGE: &str = "usage: fanout_compare [--subs 1,10,100,1000] [--messages N] [--reps R]\n\
                     children: fanout_compare pub <ferromq|libzmq> <messages>\n\
                     \x20         fanout_compare sub <ferromq|libzmq> <endpoint> <subscribers>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let role = match args.first().map(String::as_str) {
        Some("pub") => Some(publisher_role(&args[1..])),
        Some("sub") => Some(subscriber_role(&args[1..])),
        _ => None,
    };
    match role {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("fanout_compare {}: {}", args[0], with_fd_hint(e));
            ExitCode::FAILURE
        }
        None => match Harness::from_args(&args) {
            Ok(harness) => harness.run(),
            Err(e) => {
                eprintln!("fanout_compare: {e}\n{USAGE}");
                ExitCode::from(2)
            }
        },
    }
}

/// The order runs alternate in, and the rows of the table.
const ORDER: [Implementation; 2] = [Implementation::Libzmq, Implementation::Ferromq];

#[derive(Clone, Copy)]
enum Implementation {
    Ferromq,
    Libzmq,
}

impl Implementation {
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "ferromq" => Ok(Implementation::Ferromq),
            "libzmq" => Ok(Implementation::Libzmq),
            other => Err(format!("unknown implementation {other:?}")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Implementation::Ferromq => "ferromq",
            Implementation::Libzmq => "libzmq",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Harness

struct Harness {
    subs: Vec<usize>,
    messages: u64,
    reps: usize,
}

/// What one run measured; see the header for each figure.
struct RunResult {
    per_sub_rate: f64,
    total_rate: f64,
    publish_rate: f64,
    lost: u64,
    publisher_dropped: Option<u64>,
    connected_rss_per_sub: f64,
    end_rss_per_sub: f64,
    publisher_peak_kib: u64,
}

impl Harness {
    fn from_args(args: &[String]) -> Result<Self, String> {
        let mut harness = Harness {
            subs: DEFAULT_SUBS.to_vec(),
            messages: DEFAULT_MESSAGES,
            reps: DEFAULT_REPS,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err("help requested".to_owned());
            }
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            let bad = || format!("{flag}: bad value {value:?}");
            let positive = |text: &str| text.trim().parse().ok().filter(|&n: &usize| n > 0);
            match flag.as_str() {
                "--subs" => {
                    harness.subs = value
                        .split(',')
                        .map(|n| positive(n).ok_or_else(bad))
                        .collect::<Result<_, _>>()?;
                }
                "--messages" => {
                    harness.messages = value.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?;
                }
                "--reps" => harness.reps = positive(value).ok_or_else(bad)?,
                _ => return Err(format!("unknown argument {flag:?}")),
            }
        }
        Ok(harness)
    }

    /// Messages a run with `subs` subscribers publishes.
    fn messages_for(&self, subs: usize) -> u64 {
        (self.messages * FULL_COUNT_SUBS as u64 / subs.max(FULL_COUNT_SUBS) as u64).max(1)
    }

    fn run(&self) -> ExitCode {
        let mut failures = Failures::default();
        // Medians per subscriber count, in `ORDER`.
        let mut rows: Vec<(usize, [Option<RunResult>; 2])> = Vec::new();
        for &subs in &self.subs {
            let messages = self.messages_for(subs);
            if let Err(e) = check_descriptor_limit(subs) {
                failures.record(&format!("{subs} subscribers"), &e);
                rows.push((subs, [None, None]));
                continue;
            }
            let mut runs: [Vec<RunResult>; 2] = [Vec::new(), Vec::new()];
            for rep in 1..=self.reps {
                for (slot, implementation) in ORDER.into_iter().enumerate() {
                    let what = format!("{subs} subscribers, {} rep {rep}", implementation.name());
                    match run_once(implementation, subs, messages) {
                        Ok(result) => {
                            eprintln!(
                                "  {what}: {} msg/s total, {} msg/s per sub, lost {}",
                                si(result.total_rate),
                                si(result.per_sub_rate),
                                result.lost
                            );
                            runs[slot].push(result);
                        }
                        Err(e) => failures.record(&what, &e),
                    }
                }
            }
            rows.push((subs, runs.map(|r| median_result(&r))));
        }
        self.print_tables(&rows);
        failures.print();
        failures.exit_code()
    }

    fn print_tables(&self, rows: &[(usize, [Option<RunResult>; 2])]) {
        println!(
            "## PUB/SUB fan-out at scale: one PUB process, N SUB sockets in another, tcp \
             loopback, {MESSAGE_BYTES} B"
        );
        println!();
        println!(
            "Default HWM (1,000) on both sides, drops counted; ferromq: multi-thread tokio \
             runtime (default workers), one task per SUB; libzmq: one I/O thread per process, \
             all SUBs polled by one thread. Median of {} runs alternating libzmq and ferromq; \
             {} messages published per run, × {FULL_COUNT_SUBS}/N above {FULL_COUNT_SUBS} \
             subscribers. {}.",
            self.reps,
            self.messages,
            machine()
        );
        println!();
        println!(
            "| subs | impl | sent | publish msg/s | per sub msg/s | total msg/s | lost | lost % \
             | pub drops | RSS/sub connected | RSS/sub end | pub peak RSS |"
        );
        println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (subs, results) in rows {
            let sent = self.messages_for(*subs);
            for (implementation, result) in ORDER.map(Implementation::name).iter().zip(results) {
                let Some(r) = result else {
                    println!(
                        "| {subs} | {implementation} | {sent} |{}",
                        " FAILED |".repeat(9)
                    );
                    continue;
                };
                let deliveries = sent as f64 * *subs as f64;
                println!(
                    "| {subs} | {implementation} | {sent} | {} | {} | {} | {} | {:.1} % | {} | \
                     {:.1} KiB | {:.1} KiB | {} KiB |",
                    si(r.publish_rate),
                    si(r.per_sub_rate),
                    si(r.total_rate),
                    r.lost,
                    100.0 * r.lost as f64 / deliveries,
                    r.publisher_dropped
                        .map_or("-".to_owned(), |n| n.to_string()),
                    r.connected_rss_per_sub,
                    r.end_rss_per_sub,
                    r.publisher_peak_kib
                );
            }
        }
        println!();
        println!("| subs | total delivered ferromq/libzmq | per sub ferromq/libzmq |");
        println!("|---:|---:|---:|");
        for (subs, [libzmq, ferromq]) in rows {
            let ratio = |rate: fn(&RunResult) -> f64| match (libzmq, ferromq) {
                (Some(l), Some(f)) => format!("{:.2}", rate(f) / rate(l)),
                _ => "FAILED".to_owned(),
            };
            println!(
                "| {subs} | {} | {} |",
                ratio(|r| r.total_rate),
                ratio(|r| r.per_sub_rate)
            );
        }
    }
}

/// One run: publisher and subscriber processes for `implementation`, both killed if it takes
/// longer than `RUN_TIMEOUT`.
fn run_once(
    implementation: Implementation,
    subs: usize,
    messages: u64,
) -> Result<RunResult, String> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    let name = implementation.name();
    let mut publisher = Role::spawn("publisher", &["pub", name, &messages.to_string()])?;
    let endpoint = publisher
        .line(deadline)?
        .ok_or("the publisher exited before printing its endpoint")?;
    let mut subscribers = Role::spawn(
        "subscriber process",
        &["sub", name, &endpoint, &subs.to_string()],
    )?;
    match subscribers.line(deadline)? {
        Some(line) if line == READY_LINE => {}
        other => {
            return Err(format!(
                "expected {READY_LINE:?} from the subscribers, got {other:?}"
            ));
        }
    }
    publisher.tell(GO_LINE)?;
    let subscriber_report =
        SubscriberReport::parse(&subscribers.finish(deadline)?, subs, messages)?;
    let publisher_report = PublisherReport::parse(&publisher.finish(deadline)?)?;
    Ok(subscriber_report.result(messages, publisher_report))
}

/// The median of each figure over the runs that succeeded; `None` when none did.
fn median_result(runs: &[RunResult]) -> Option<RunResult> {
    if runs.is_empty() {
        return None;
    }
    let of =
        |figure: fn(&RunResult) -> f64| median(&mut runs.iter().map(figure).collect::<Vec<_>>());
    let mut dropped: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.publisher_dropped.map(|n| n as f64))
        .collect();
    Some(RunResult {
        per_sub_rate: of(|r| r.per_sub_rate),
        total_rate: of(|r| r.total_rate),
        publish_rate: of(|r| r.publish_rate),
        lost: of(|r| r.lost as f64) as u64,
        publisher_dropped: (!dropped.is_empty()).then(|| median(&mut dropped) as u64),
        connected_rss_per_sub: of(|r| r.connected_rss_per_sub),
        end_rss_per_sub: of(|r| r.end_rss_per_sub),
        publisher_peak_kib: of(|r| r.publisher_peak_kib as f64) as u64,
    })
}

/// Fails, with the fix, when the open-file limit cannot hold `subs` subscribers.
fn check_descriptor_limit(subs: usize) -> Result<(), String> {
    let soft = common::open_file_soft_limit()?;
    let needed = 2 * subs + SPARE_DESCRIPTORS;
    match soft {
        Some(limit) if limit < needed => Err(format!(
            "the open-file limit {limit} is below the {needed} needed; run `ulimit -n 4096` \
             (or more) in this shell first"
        )),
        _ => Ok(()),
    }
}

/// Adds the fix to an error caused by the open-file limit.
fn with_fd_hint(error: String) -> String {
    if error.contains("Too many open files") || error.contains("os error 24") {
        format!("{error}\n  (raise the open-file limit: `ulimit -n 4096` before running)")
    } else {
        error
    }
}

/// A child process in a role, killed if dropped while it still runs.
struct Role {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its stdout lines, read by a thread so that waiting for them can time out.
    lines: mpsc::Receiver<String>,
}

impl Role {
    /// Starts this binary with `args`; its stderr goes to ours.
    fn spawn(name: &'static str, args: &[&str]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find own path: {e}"))?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {name}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Role {
            name,
            child,
            stdin,
            lines,
        })
    }

    /// The next stdout line; `None` once the child closed its stdout.
    fn line(&mut self, deadline: Instant) -> Result<Option<String>, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => Ok(Some(line)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "the {} timed out after {} s; killed",
                self.name,
                RUN_TIMEOUT.as_secs()
            )),
        }
    }

    fn tell(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().expect("stdin is open until finish");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to the {}: {e}", self.name))
    }

    /// Closes the child's stdin, then returns the rest of its stdout once it exited
    /// successfully.
    fn finish(&mut self, deadline: Instant) -> Result<String, String> {
        drop(self.stdin.take());
        let mut output = String::new();
        while let Some(line) = self.line(deadline)? {
            output.push_str(&line);
            output.push('\n');
        }
        loop {
            match self.child.try_wait().map_err(|e| e.to_string())? {
                Some(status) if status.success() => return Ok(output),
                Some(status) => {
                    return Err(format!(
                        "the {} exited with {status} (its error is above)",
                        self.name
                    ));
                }
                None if Instant::now() >= deadline => {
                    return Err(format!("the {} did not exit; killed", self.name));
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Already exited is fine: kill only fails then.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The publisher's stdout after its endpoint line.
struct PublisherReport {
    /// ferromq's count; libzmq prints `-`.
    dropped: Option<u64>,
    send_seconds: f64,
    peak_rss_kib: u64,
}

impl PublisherReport {
    fn parse(output: &str) -> Result<Self, String> {
        let field = |name: &str| {
            output
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .ok_or_else(|| format!("no {name:?} line in the publisher's output {output:?}"))
        };
        let number = |name: &str| {
            field(name)?
                .parse::<f64>()
                .map_err(|_| format!("bad {name:?} in the publisher's output {output:?}"))
        };
        Ok(PublisherReport {
            dropped: field("dropped")?.parse().ok(),
            send_seconds: number("send_seconds")?,
            peak_rss_kib: number("peak_rss_kib")? as u64,
        })
    }
}

/// The subscriber process's stdout after its `ready` line.
struct SubscriberReport {
    /// VmRSS in KiB before any socket, once all were connected, once all were done.
    rss_kib: [u64; 3],
    /// Per subscriber: messages received, those up to its last timed one, and seconds from
    /// `ready` to its first and to its last timed message.
    subscribers: Vec<(u64, u64, f64, f64)>,
}

impl SubscriberReport {
    /// Checks that there is a line for each of `subs` and none received more than `sent`.
    fn parse(output: &str, subs: usize, sent: u64) -> Result<Self, String> {
        let bad = || format!("bad subscriber output {output:?}");
        let mut rss_kib = None;
        let mut subscribers = Vec::with_capacity(subs);
        for line in output.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[..] {
                ["rss_kib", baseline, connected, end] => {
                    let parse = |n: &str| n.parse::<u64>().map_err(|_| bad());
                    rss_kib = Some([parse(baseline)?, parse(connected)?, parse(end)?]);
                }
                ["sub", _, received, timed, first, last] => subscribers.push((
                    received.parse().map_err(|_| bad())?,
                    timed.parse().map_err(|_| bad())?,
                    first.parse().map_err(|_| bad())?,
                    last.parse().map_err(|_| bad())?,
                )),
                _ => return Err(bad()),
            }
        }
        if subscribers.len() != subs {
            return Err(format!(
                "{} subscribers reported, expected {subs}",
                subscribers.len()
            ));
        }
        if let Some(&(received, ..)) = subscribers.iter().find(|s| s.0 > sent) {
            return Err(format!(
                "a subscriber received {received} of {sent} messages"
            ));
        }
        Ok(SubscriberReport {
            rss_kib: rss_kib.ok_or_else(bad)?,
            subscribers,
        })
    }

    fn result(&self, sent: u64, publisher: PublisherReport) -> RunResult {
        let subs = self.subscribers.len() as f64;
        let mut per_sub: Vec<f64> = self
            .subscribers
            .iter()
            .map(|&(_, timed, first, last)| match last - first {
                span if span > 0.0 => timed as f64 / span,
                _ => 0.0,
            })
            .collect();
        let received: u64 = self.subscribers.iter().map(|s| s.0).sum();
        let timed: u64 = self.subscribers.iter().map(|s| s.1).sum();
        let (mut first, mut last) = (f64::INFINITY, 0.0_f64);
        for &(_, _, their_first, their_last) in self.subscribers.iter().filter(|s| s.0 > 0) {
            first = first.min(their_first);
            last = last.max(their_last);
        }
        let [baseline, connected, end] = self.rss_kib.map(|kib| kib as f64);
        RunResult {
            per_sub_rate: median(&mut per_sub),
            total_rate: match last - first {
                span if span > 0.0 => timed as f64 / span,
                _ => 0.0,
            },
            publish_rate: sent as f64 / publisher.send_seconds,
            lost: sent * self.subscribers.len() as u64 - received,
            publisher_dropped: publisher.dropped,
            connected_rss_per_sub: (connected - baseline) / subs,
            end_rss_per_sub: (end - baseline) / subs,
            publisher_peak_kib: publisher.peak_rss_kib,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Publisher process

/// `pub <implementation> <messages>`.
fn publisher_role(args: &[String]) -> Result<(), String> {
    let [implementation, messages] = args else {
        return Err(USAGE.to_owned());
    };
    let messages: u64 = messages.parse().map_err(|_| "messages must be a number")?;
    let control = Control::watch_stdin();
    let (dropped, sending) = match Implementation::parse(implementation)? {
        Implementation::Ferromq => publish_ferromq(messages, &control)?,
        Implementation::Libzmq => publish_libzmq(messages, &control)?,
    };
    let dropped = dropped.map_or("-".to_owned(), |n| n.to_string());
    announce(&format!(
        "dropped {dropped}\nsend_seconds {}\npeak_rss_kib {}",
        sending.as_secs_f64(),
        common::proc_status_kib("self", "VmHWM")?
    ))
}

/// The message every publisher sends `messages` of.
fn payload() -> Vec<u8> {
    let mut body = vec![b'.'; MESSAGE_BYTES];
    body[..TOPIC.len()].copy_from_slice(TOPIC);
    body
}

/// What the harness said on the publisher's stdin.
struct Control {
    go: AtomicBool,
    closed: AtomicBool,
}

impl Control {
    /// Starts a thread that notes `go` and the end of stdin.
    fn watch_stdin() -> Arc<Self> {
        let control = Arc::new(Control {
            go: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let watched = Arc::clone(&control);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if line == GO_LINE {
                    watched.go.store(true, Ordering::Release);
                }
            }
            watched.closed.store(true, Ordering::Release);
        });
        control
    }

    /// Whether to keep warming up; fails if the harness went away before `go`.
    fn warming(&self) -> Result<bool, String> {
        if self.closed.load(Ordering::Acquire) && !self.go.load(Ordering::Acquire) {
            return Err("stdin closed before go".to_owned());
        }
        Ok(!self.go.load(Ordering::Acquire))
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Publishes on ferromq; returns the messages dropped while sending and the sending time.
fn publish_ferromq(messages: u64, control: &Control) -> Result<(Option<u64>, Duration), String> {
    multi_thread_runtime()?.block_on(async {
        let publisher = Pub::new();
        let endpoint = publisher
            .bind("tcp://127.0.0.1:0")
            .map_err(|e| format!("bind: {e}"))?;
        announce(&endpoint.to_string())?;
        while control.warming()? {
            send_ferromq(&publisher, WARM).await?;
            tokio::time::sleep(MARKER_INTERVAL).await;
        }
        let payload = payload();
        let dropped_before = publisher.dropped_messages();
        let start = Instant::now();
        for _ in 0..messages {
            send_ferromq(&publisher, &payload).await?;
        }
        let sending = start.elapsed();
        let dropped = publisher.dropped_messages() - dropped_before;
        while !control.closed() {
            send_ferromq(&publisher, END).await?;
            tokio::time::sleep(MARKER_INTERVAL).await;
        }
        Ok((Some(dropped), sending))
    })
}

/// Sends a copy of `body`, as libzmq's `zmq_send` copies it into a new message.
async fn send_ferromq(publisher: &Pub, body: &[u8]) -> Result<(), String> {
    publisher.send(body).await.map_err(|e| format!("send: {e}"))
}

/// Publishes on libzmq; returns the sending time (libzmq does not count drops).
fn publish_libzmq(messages: u64, control: &Control) -> Result<(Option<u64>, Duration), String> {
    let context = zmq::Context::new();
    let publisher = context
        .socket(zmq::PUB)
        .map_err(|e| format!("socket: {e}"))?;
    // Nothing is worth delivering once the harness closed our stdin.
    publisher
        .set_linger(0)
        .map_err(|e| format!("linger: {e}"))?;
    publisher
        .bind("tcp://127.0.0.1:0")
        .map_err(|e| format!("bind: {e}"))?;
    let endpoint = publisher
        .get_last_endpoint()
        .map_err(|e| format!("endpoint: {e}"))?
        .map_err(|_| "endpoint is not UTF-8")?;
    announce(&endpoint)?;
    let send = |message: &[u8]| publisher.send(message, 0).map_err(|e| format!("send: {e}"));
    while control.warming()? {
        send(WARM)?;
        std::thread::sleep(MARKER_INTERVAL);
    }
    let payload = payload();
    let start = Instant::now();
    for _ in 0..messages {
        send(&payload)?;
    }
    let sending = start.elapsed();
    while !control.closed() {
        send(END)?;
        std::thread::sleep(MARKER_INTERVAL);
    }
    Ok((None, sending))
}

// ---------------------------------------------------------------------------------------------
// Subscriber process

/// `sub <implementation> <endpoint> <subscribers>`: prints `ready` once all are connected,
/// then, once all are done, `rss_kib <baseline> <connected> <end>` and a
/// `sub <i> <received> <timed> <first-seconds> <last-seconds>` line per subscriber (`timed`:
/// its messages up to the last it timed; the seconds to its first real message and to that
/// one, counted from `ready`).
fn subscriber_role(args: &[String]) -> Result<(), String> {
    let [implementation, endpoint, subs] = args else {
        return Err(USAGE.to_owned());
    };
    let subs: usize = subs
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or("subscribers must be a positive number")?;
    let outcome = match Implementation::parse(implementation)? {
        Implementation::Ferromq => subscribe_ferromq(endpoint, subs)?,
        Implementation::Libzmq => subscribe_libzmq(endpoint, subs)?,
    };
    let [baseline, connected, end] = outcome.rss_kib;
    let mut report = format!("rss_kib {baseline} {connected} {end}");
    for (i, tally) in outcome.tallies.iter().enumerate() {
        let (first, last) = tally.seconds_since(outcome.ready);
        report.push_str(&format!(
            "\nsub {i} {} {} {first} {last}",
            tally.received, tally.timed
        ));
    }
    announce(&report)
}

/// What a subscriber process measured.
struct SubscriberOutcome {
    /// VmRSS in KiB before any socket, once all were connected, once all were done.
    rss_kib: [u64; 3],
    /// When every subscriber was connected and `ready` was printed.
    ready: Instant,
    tallies: Vec<Tally>,
}

/// The moment every subscriber is connected: the process's VmRSS in KiB then, and the instant
/// `ready` was printed for the harness.
struct Ready {
    rss_kib: u64,
    at: Instant,
}

impl Ready {
    /// Measures, then tells the harness.
    fn announce() -> Result<Ready, String> {
        let rss_kib = common::proc_status_kib("self", "VmRSS")?;
        let at = Instant::now();
        announce(READY_LINE)?;
        Ok(Ready { rss_kib, at })
    }
}

impl SubscriberOutcome {
    /// Once every subscriber is done: the VmRSS then, with the earlier measures.
    fn finish(baseline_kib: u64, ready: Ready, tallies: Vec<Tally>) -> Result<Self, String> {
        Ok(SubscriberOutcome {
            rss_kib: [
                baseline_kib,
                ready.rss_kib,
                common::proc_status_kib("self", "VmRSS")?,
            ],
            ready: ready.at,
            tallies,
        })
    }
}

/// One subscriber's record.
#[derive(Clone, Default)]
struct Tally {
    /// Some message (before `go`, a marker) arrived: connected and subscribed.
    connected: bool,
    /// `AEND` arrived.
    done: bool,
    /// Real messages, markers excluded.
    received: u64,
    /// Real messages up to the last one timed (see [`TIME_EVERY`]).
    timed: u64,
    /// When the first and the last timed real message arrived.
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Tally {
    /// Notes a received message.
    fn take(&mut self, body: &[u8]) {
        self.connected = true;
        match body {
            _ if self.done => {}
            WARM => {}
            END => self.done = true,
            _ => {
                self.received += 1;
                if (self.received - 1).is_multiple_of(TIME_EVERY) {
                    let now = Instant::now();
                    self.first.get_or_insert(now);
                    self.last = Some(now);
                    self.timed = self.received;
                }
            }
        }
    }

    /// Seconds from `origin` to the first and to the last real message (0 when none came).
    fn seconds_since(&self, origin: Instant) -> (f64, f64) {
        let since = |t: Option<Instant>| {
            t.map_or(0.0, |t| t.saturating_duration_since(origin).as_secs_f64())
        };
        (since(self.first), since(self.last))
    }
}

/// ferromq SUB sockets, one task each.
fn subscribe_ferromq(endpoint: &str, subs: usize) -> Result<SubscriberOutcome, String> {
    let runtime = multi_thread_runtime()?;
    let baseline = common::proc_status_kib("self", "VmRSS")?;
    runtime.block_on(async {
        let (connected_tx, mut connected_rx) = tokio::sync::mpsc::channel::<()>(subs);
        let mut tasks = Vec::with_capacity(subs);
        for _ in 0..subs {
            let sub = Sub::new();
            sub.subscribe(TOPIC);
            sub.connect(endpoint).map_err(|e| format!("connect: {e}"))?;
            let connected = connected_tx.clone();
            tasks.push(tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut connected = Some(connected);
                while !tally.done {
                    let message = sub.recv().await.map_err(|e| format!("recv: {e}"))?;
                    tally.take(&message.frames()[0]);
                    if let Some(connected) = connected.take() {
                        // The process stops waiting only when a subscriber failed.
                        let _ = connected.send(()).await;
                    }
                }
                Ok::<_, String>(tally)
            }));
        }
        drop(connected_tx);
        for _ in 0..subs {
            connected_rx
                .recv()
                .await
                .ok_or("a subscriber failed before it connected")?;
        }
        let ready = Ready::announce()?;
        let mut tallies = Vec::with_capacity(subs);
        for task in tasks {
            tallies.push(task.await.map_err(|e| format!("subscriber task: {e}"))??);
        }
        SubscriberOutcome::finish(baseline, ready, tallies)
    })
}

/// libzmq SUB sockets, all served by this thread.
fn subscribe_libzmq(endpoint: &str, subs: usize) -> Result<SubscriberOutcome, String> {
    let context = zmq::Context::new();
    let baseline = common::proc_status_kib("self", "VmRSS")?;
    let sockets = (0..subs)
        .map(|_| {
            let sub = context.socket(zmq::SUB)?;
            sub.set_subscribe(TOPIC)?;
            sub.connect(endpoint)?;
            Ok(sub)
        })
        .collect::<Result<Vec<_>, zmq::Error>>()
        .map_err(|e| format!("creating subscribers: {e}"))?;
    let mut tallies = vec![Tally::default(); subs];
    serve_libzmq(&sockets, &mut tallies, |tally| tally.connected)?;
    let ready = Ready::announce()?;
    serve_libzmq(&sockets, &mut tallies, |tally| tally.done)?;
    SubscriberOutcome::finish(baseline, ready, tallies)
}

/// Receives on every socket whose tally is not yet `finished`, until all are.
fn serve_libzmq(
    sockets: &[zmq::Socket],
    tallies: &mut [Tally],
    finished: impl Fn(&Tally) -> bool,
) -> Result<(), String> {
    let mut message = zmq::Message::new();
    let mut active: Vec<usize> = (0..sockets.len()).collect();
    while !active.is_empty() {
        let mut items: Vec<_> = active
            .iter()
            .map(|&i| sockets[i].as_poll_item(zmq::POLLIN))
            .collect();
        zmq::poll(&mut items, -1).map_err(|e| format!("poll: {e}"))?;
        for (item, &i) in items.iter().zip(&active) {
            if !item.is_readable() {
                continue;
            }
            for _ in 0..DRAIN_BATCH {
                match sockets[i].recv(&mut message, zmq::DONTWAIT) {
                    Ok(()) => tallies[i].take(&message),
                    Err(zmq::Error::EAGAIN) => break,
                    Err(e) => return Err(format!("recv: {e}")),
                }
                if finished(&tallies[i]) {
                    break;
                }
            }
        }
        active.retain(|&i| !finished(&tallies[i]));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Shared by the child processes

fn multi_thread_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}

/// Prints `text` and flushes, so the harness sees it at once.
fn announce(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}
