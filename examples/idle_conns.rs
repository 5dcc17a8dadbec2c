//! Memory per idle connection and fan-in throughput, ferromq beside libzmq.
//!
//! ```text
//! cargo build --release --examples
//! ulimit -n 4096   # 1,000 peers need ~2,100 descriptors in the sending process
//! target/release/examples/idle_conns [--peers 1000] [--messages 2000000] [--reps 3]
//! ```
//! **Idle memory.** A child process binds one PULL socket; another child connects `--peers`
//! PUSH sockets to it and leaves them idle. Once every handshake has completed (ferromq:
//! `Pull::peer_count`; libzmq: ZMQ_EVENT_HANDSHAKE_SUCCEEDED events from a socket monitor),
//! the PULL process's VmRSS from `/proc/<pid>/status` is compared with its value after
//! binding. Only the PULL side lives in the measured process, so the figure is what an idle
//! accepted peer costs a server.
//!
//! **Fan-in.** 1, 8 and 64 PUSH sockets in one sender process send 64-byte messages into one
//! PULL (`local_thr` / `libzmq_local_thr`, which time from the first message to the last);
//! alternating ferromq and libzmq, median of `--reps`. ferromq's senders are tasks on one
//! current-thread runtime; libzmq's are one application thread per socket sharing one I/O
//! thread.
//!
//! The same binary plays the child roles (`pull-ferromq`, `push-libzmq`, `senders-ferromq`,
//! ...), so no other tool is needed. Every child has a timeout and is killed when it expires.

#[path = "common/mod.rs"]
mod common;

use ferromq::{Message, Pull, Push};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the PULL side may wait for all handshakes.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one fan-in run may take before its processes are killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Fan-in sender counts measured.
const FAN_IN_SENDERS: [usize; 3] = [1, 8, 64];
/// Fan-in message size in bytes.
const FAN_IN_SIZE: usize = 64;
/// Line a PULL child prints once bound.
const BOUND_LINE: &str = "bound";
/// Line a PULL child prints once every peer completed its handshake.
const CONNECTED_LINE: &str = "connected";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("pull-ferromq") => child_args(&args).and_then(|(ep, n)| pull_ferromq(&ep, n)),
        Some("pull-libzmq") => child_args(&args).and_then(|(ep, n)| pull_libzmq(&ep, n)),
        Some("push-ferromq") => child_args(&args).and_then(|(ep, n)| push_ferromq(&ep, n)),
        Some("push-libzmq") => child_args(&args).and_then(|(ep, n)| push_libzmq(&ep, n)),
        Some("senders-ferromq") => {
            sender_args(&args).and_then(|(ep, k, each)| senders_ferromq(&ep, k, each))
        }
        Some("senders-libzmq") => {
            sender_args(&args).and_then(|(ep, k, each)| senders_libzmq(&ep, k, each))
        }
        _ => Driver::from_args(&args).and_then(|driver| driver.run()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idle_conns: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `<role> <endpoint> <peers>`.
fn child_args(args: &[String]) -> Result<(String, usize), String> {
    match args {
        [_, endpoint, peers] => Ok((
            endpoint.clone(),
            peers.parse().map_err(|_| "peers must be a number")?,
        )),
        _ => Err(format!("usage: idle_conns {} <endpoint> <peers>", args[0])),
    }
}

/// `<role> <endpoint> <senders> <messages-each>`.
fn sender_args(args: &[String]) -> Result<(String, usize, u64), String> {
    match args {
        [_, endpoint, senders, each] => Ok((
            endpoint.clone(),
            senders.parse().map_err(|_| "senders must be a number")?,
            each.parse().map_err(|_| "messages-each must be a number")?,
        )),
        _ => Err(format!(
            "usage: idle_conns {} <endpoint> <senders> <messages-each>",
            args[0]
        )),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}

/// Blocks until the driver closes our stdin (its way of saying "measured, you may exit").
fn wait_for_stdin_eof() {
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

fn announce(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

fn pull_ferromq(endpoint: &str, peers: usize) -> Result<(), String> {
    let runtime = runtime()?;
    let _guard = runtime.enter();
    let pull = Pull::new();
    pull.bind(endpoint).map_err(|e| format!("bind: {e}"))?;
    announce(BOUND_LINE)?;
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
        while pull.peer_count() < peers {
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "only {} of {peers} handshakes after {}s",
                    pull.peer_count(),
                    HANDSHAKE_TIMEOUT.as_secs()
                ));
            }
            // peer_count has no change notification; a short poll costs nothing measurable.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    })?;
    announce(CONNECTED_LINE)?;
    // Keep the runtime driving the idle connections while the driver reads our RSS.
    runtime.block_on(async {
        tokio::task::spawn_blocking(wait_for_stdin_eof)
            .await
            .map_err(|e| format!("stdin wait: {e}"))
    })
}

fn pull_libzmq(endpoint: &str, peers: usize) -> Result<(), String> {
    let context = zmq::Context::new();
    context
        .set_io_threads(1)
        .map_err(|e| format!("io threads: {e}"))?;
    let pull = context
        .socket(zmq::PULL)
        .map_err(|e| format!("socket: {e}"))?;
    let monitor_endpoint = "inproc://idle-conns-monitor";
    pull.monitor(
        monitor_endpoint,
        zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32,
    )
    .map_err(|e| format!("monitor: {e}"))?;
    let events = context
        .socket(zmq::PAIR)
        .map_err(|e| format!("monitor socket: {e}"))?;
    events
        .connect(monitor_endpoint)
        .map_err(|e| format!("monitor connect: {e}"))?;
    events
        .set_rcvtimeo(HANDSHAKE_TIMEOUT.as_millis() as i32)
        .map_err(|e| format!("rcvtimeo: {e}"))?;
    pull.bind(endpoint).map_err(|e| format!("bind: {e}"))?;
    announce(BOUND_LINE)?;
    let mut handshakes = 0;
    while handshakes < peers {
        // An event is two frames: 6 bytes (u16 event id, u32 value), then the endpoint.
        let frames = events
            .recv_multipart(0)
            .map_err(|e| format!("after {handshakes} of {peers} handshakes: {e}"))?;
        let id = frames
            .first()
            .and_then(|f| f.get(..2))
            .map(|b| u16::from_ne_bytes([b[0], b[1]]));
        if id == Some(zmq::SocketEvent::HANDSHAKE_SUCCEEDED as u16) {
            handshakes += 1;
        }
    }
    announce(CONNECTED_LINE)?;
    wait_for_stdin_eof();
    Ok(())
}

fn push_ferromq(endpoint: &str, peers: usize) -> Result<(), String> {
    let runtime = runtime()?;
    let _guard = runtime.enter();
    let pushes = (0..peers)
        .map(|_| {
            let push = Push::new();
            push.connect(endpoint).map(|()| push)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("connect: {e}"))?;
    runtime.block_on(async {
        tokio::task::spawn_blocking(wait_for_stdin_eof)
            .await
            .map_err(|e| format!("stdin wait: {e}"))
    })?;
    drop(pushes);
    Ok(())
}

fn push_libzmq(endpoint: &str, peers: usize) -> Result<(), String> {
    let context = zmq::Context::new();
    context
        .set_io_threads(1)
        .map_err(|e| format!("io threads: {e}"))?;
    let mut pushes = Vec::with_capacity(peers);
    for _ in 0..peers {
        let push = context
            .socket(zmq::PUSH)
            .map_err(|e| format!("socket {}: {e}", pushes.len()))?;
        push.set_linger(0).map_err(|e| format!("linger: {e}"))?;
        push.connect(endpoint)
            .map_err(|e| format!("connect: {e}"))?;
        pushes.push(push);
    }
    wait_for_stdin_eof();
    drop(pushes);
    Ok(())
}

fn senders_ferromq(endpoint: &str, senders: usize, each: u64) -> Result<(), String> {
    runtime()?.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..senders {
            let push = Push::new();
            push.connect(endpoint)
                .map_err(|e| format!("connect: {e}"))?;
            tasks.spawn(async move {
                let payload = [0u8; FAN_IN_SIZE];
                for _ in 0..each {
                    push.send(Message::from(&payload[..]))
                        .await
                        .map_err(|e| format!("send: {e}"))?;
                }
                push.close().await;
                Ok::<(), String>(())
            });
        }
        while let Some(outcome) = tasks.join_next().await {
            outcome.map_err(|e| format!("sender task: {e}"))??;
        }
        Ok(())
    })
}

fn senders_libzmq(endpoint: &str, senders: usize, each: u64) -> Result<(), String> {
    let context = zmq::Context::new();
    context
        .set_io_threads(1)
        .map_err(|e| format!("io threads: {e}"))?;
    let threads: Vec<_> = (0..senders)
        .map(|_| {
            let context = context.clone();
            let endpoint = endpoint.to_owned();
            std::thread::spawn(move || -> Result<(), String> {
                let push = context
                    .socket(zmq::PUSH)
                    .map_err(|e| format!("socket: {e}"))?;
                push.set_linger(-1).map_err(|e| format!("linger: {e}"))?;
                push.connect(&endpoint)
                    .map_err(|e| format!("connect: {e}"))?;
                let payload = [0u8; FAN_IN_SIZE];
                for _ in 0..each {
                    push.send(zmq::Message::from(&payload[..]), 0)
                        .map_err(|e| format!("send: {e}"))?;
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "sender thread panicked")??;
    }
    // Terminating the context waits for every socket's linger: all messages written.
    drop(context);
    Ok(())
}

/// The measuring process: starts children, reads their memory, prints the tables.
struct Driver {
    peers: usize,
    messages: u64,
    reps: usize,
    binaries: PathBuf,
}

impl Driver {
    fn from_args(args: &[String]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let binaries = exe
            .parent()
            .ok_or("own path has no directory")?
            .to_path_buf();
        let mut driver = Driver {
            peers: 1000,
            messages: 2_000_000,
            reps: 3,
            binaries,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            let bad = || format!("{flag}: bad value {value:?}");
            match flag.as_str() {
                "--peers" => driver.peers = value.parse().map_err(|_| bad())?,
                "--messages" => driver.messages = value.parse().map_err(|_| bad())?,
                "--reps" => driver.reps = value.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?,
                _ => {
                    return Err(format!(
                        "unknown argument {flag:?}\nusage: idle_conns [--peers N] [--messages N] [--reps N]"
                    ));
                }
            }
        }
        for name in ["local_thr", "libzmq_local_thr"] {
            if !driver.binaries.join(name).is_file() {
                return Err(format!(
                    "missing {name} in {}: run `cargo build --release --examples` first",
                    driver.binaries.display()
                ));
            }
        }
        Ok(driver)
    }

    fn run(&self) -> Result<(), String> {
        check_descriptor_limit(self.peers)?;
        let mut failures = Vec::new();
        println!(
            "## Idle connections: one PULL process, {} idle PUSH peers in another",
            self.peers
        );
        println!();
        println!("| implementation | RSS before | RSS with peers | per connection |");
        println!("|---|---:|---:|---:|");
        for implementation in ["ferromq", "libzmq"] {
            match self.idle_memory(implementation) {
                Ok((before, after)) => println!(
                    "| {implementation} | {before} KiB | {after} KiB | {:.1} KiB |",
                    (after as f64 - before as f64) / self.peers as f64
                ),
                Err(e) => {
                    println!("| {implementation} | FAILED | FAILED | FAILED |");
                    failures.push(format!("idle {implementation}: {e}"));
                }
            }
        }
        println!();
        println!(
            "## Fan-in: N PUSH senders (one process) into one PULL, {FAN_IN_SIZE} B messages, \
             {} per run, median of {}",
            self.messages, self.reps
        );
        println!();
        println!("| senders | ferromq msg/s | libzmq msg/s | ferromq/libzmq |");
        println!("|---:|---:|---:|---:|");
        for senders in FAN_IN_SENDERS {
            let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for rep in 1..=self.reps {
                for (slot, implementation) in ["ferromq", "libzmq"].into_iter().enumerate() {
                    match self.fan_in(implementation, senders) {
                        Ok(rate) => {
                            eprintln!(
                                "  fan-in {senders} {implementation} rep {rep}: {rate:.0} msg/s"
                            );
                            rates[slot].push(rate);
                        }
                        Err(e) => {
                            eprintln!("  !!! FAILED fan-in {senders} {implementation}: {e}");
                            failures.push(format!("fan-in {senders} {implementation}: {e}"));
                        }
                    }
                }
            }
            let [ferromq, libzmq] = rates.map(|mut r| median(&mut r));
            let show = |rate: Option<f64>| rate.map_or("FAILED".to_owned(), |r| format!("{r:.0}"));
            let ratio = match (ferromq, libzmq) {
                (Some(f), Some(l)) => format!("{:.2}", f / l),
                _ => "FAILED".to_owned(),
            };
            println!(
                "| {senders} | {} | {} | {ratio} |",
                show(ferromq),
                show(libzmq)
            );
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} failed run(s):\n  {}",
                failures.len(),
                failures.join("\n  ")
            ))
        }
    }

    /// VmRSS (KiB) of the PULL process after binding and after all peers' handshakes.
    fn idle_memory(&self, implementation: &str) -> Result<(u64, u64), String> {
        let endpoint = free_tcp_endpoint()?;
        let peers = self.peers.to_string();
        let mut pull =
            ChildGuard::spawn(self.own(&format!("pull-{implementation}"), &[&endpoint, &peers]))?;
        let lines = pull.lines()?;
        expect_line(&lines, BOUND_LINE, &mut pull)?;
        let before = common::proc_status_kib(&pull.id().to_string(), "VmRSS")?;
        let mut push =
            ChildGuard::spawn(self.own(&format!("push-{implementation}"), &[&endpoint, &peers]))?;
        expect_line(&lines, CONNECTED_LINE, &mut pull)?;
        let after = common::proc_status_kib(&pull.id().to_string(), "VmRSS")?;
        push.finish(Duration::from_secs(10))?;
        pull.finish(Duration::from_secs(10))?;
        Ok((before, after))
    }

    /// One fan-in run; returns the receiver's msg/s.
    fn fan_in(&self, implementation: &str, senders: usize) -> Result<f64, String> {
        let endpoint = free_tcp_endpoint()?;
        let each = (self.messages / senders as u64).max(1);
        let total = each * senders as u64;
        let receiver_binary = match implementation {
            "ferromq" => "local_thr",
            _ => "libzmq_local_thr",
        };
        let mut receiver_command = Command::new(self.binaries.join(receiver_binary));
        receiver_command.args([
            endpoint.as_str(),
            &FAN_IN_SIZE.to_string(),
            &total.to_string(),
        ]);
        let mut receiver = ChildGuard::spawn(receiver_command)?;
        let mut sender = ChildGuard::spawn(self.own(
            &format!("senders-{implementation}"),
            &[&endpoint, &senders.to_string(), &each.to_string()],
        ))?;
        let output = receiver.finish(RUN_TIMEOUT)?;
        sender.finish(RUN_TIMEOUT)?;
        let counted = output
            .lines()
            .find_map(|l| l.strip_prefix("message count: "))
            .and_then(|n| n.trim().parse::<u64>().ok());
        if counted != Some(total) {
            return Err(format!("receiver counted {counted:?}, expected {total}"));
        }
        output
            .lines()
            .find_map(|l| {
                l.strip_prefix("mean throughput: ")?
                    .strip_suffix(" [msg/s]")
            })
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("no throughput line in {output:?}"))
    }

    /// A command running this binary in a child role.
    fn own(&self, role: &str, args: &[&str]) -> Command {
        let mut command = Command::new(std::env::current_exe().expect("checked at start"));
        command.arg(role).args(args);
        command
    }
}

/// A child process that is killed if dropped before it finished.
struct ChildGuard {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ChildGuard {
    fn spawn(mut command: Command) -> Result<Self, String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let stdin = child.stdin.take();
        Ok(ChildGuard { child, stdin })
    }

    fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdout lines, delivered by a reader thread so waits can time out.
    fn lines(&mut self) -> Result<mpsc::Receiver<String>, String> {
        let stdout = self.child.stdout.take().ok_or("stdout already taken")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }

    /// Closes the child's stdin (telling role processes to exit), waits up to `timeout` for it
    /// to exit successfully and returns what remained of its stdout.
    fn finish(&mut self, timeout: Duration) -> Result<String, String> {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait().map_err(|e| e.to_string())? {
                Some(status) if status.success() => break,
                Some(status) => return Err(format!("child exited with {status}")),
                None if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!(
                        "child still running after {}s; killed",
                        timeout.as_secs()
                    ));
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        let mut output = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout
                .read_to_string(&mut output)
                .map_err(|e| format!("child output: {e}"))?;
        }
        Ok(output)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn expect_line(
    lines: &mpsc::Receiver<String>,
    want: &str,
    child: &mut ChildGuard,
) -> Result<(), String> {
    match lines.recv_timeout(HANDSHAKE_TIMEOUT + Duration::from_secs(5)) {
        Ok(line) if line == want => Ok(()),
        Ok(line) => Err(format!(
            "expected {want:?} from the PULL child, got {line:?}"
        )),
        Err(_) => {
            let status = child.child.try_wait().ok().flatten();
            Err(format!(
                "no {want:?} from the PULL child (exit status {status:?})"
            ))
        }
    }
}

/// A TCP endpoint on a port that was free a moment ago.
fn free_tcp_endpoint() -> Result<String, String> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("free port: {e}"))?
        .port();
    Ok(format!("tcp://127.0.0.1:{port}"))
}

/// Fails early, with the fix, when the open-file limit cannot hold `peers` connections
/// (the libzmq sender needs a socket and a mailbox descriptor per peer).
fn check_descriptor_limit(peers: usize) -> Result<(), String> {
    let soft = common::open_file_soft_limit()?;
    let needed = peers * 2 + 100;
    match soft {
        Some(limit) if limit < needed => Err(format!(
            "open-file limit {limit} is below the {needed} needed for {peers} peers; \
             run `ulimit -n 4096` (or more) in this shell first"
        )),
        _ => Ok(()),
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 0 => Some((values[mid - 1] + values[mid]) / 2.0),
        _ => Some(values[mid]),
    }
}
