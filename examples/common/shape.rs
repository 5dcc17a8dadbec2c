//! The shape a measured program runs in, from its optional flags: which tokio runtime drives
//! it and whether the receiver takes one message per call or batches.
//!
//! `local_thr` and `remote_thr` keep libzmq's three positional arguments (endpoint, message
//! size, message count; [`Shape::perf_tool`] parses them) and accept these flags after them:
//!
//! - `--runtime mt` (the default): tokio's multi-thread runtime with its default worker count,
//!   the program's loop running in `block_on` — exactly what `#[tokio::main]` gives an
//!   application;
//! - `--runtime ct`: a current-thread runtime (`#[tokio::main(flavor = "current_thread")]`);
//! - `--batch`: receivers take up to 1,024 queued messages per call (`recv_many`) instead of
//!   one `recv().await` per message;
//! - `--tasks N`: N tasks share the one socket (an `Arc`), each sending or receiving its share
//!   of the messages ([`task_shares`]);
//! - `--spawn`: the program's loop runs in a spawned task (on a runtime worker) instead of in
//!   `block_on` (on the main thread);
//! - `--work NS`: a receiver taking one message per call spends NS nanoseconds of CPU on each
//!   message, as an application that does something with it: a reader slower than the stream.
//!
//! Each measured example includes it with `#[path = "common/shape.rs"] mod shape;`.

// Not every example reads every field.
#![allow(dead_code)]

use std::process::ExitCode;

/// How `count` messages split among `tasks` tasks (`--tasks`): an equal share each, the first
/// task also taking what does not divide evenly.
pub fn task_shares(count: u64, tasks: usize) -> impl Iterator<Item = u64> {
    let tasks = tasks as u64;
    let share = count / tasks;
    (0..tasks).map(move |i| share + if i == 0 { count % tasks } else { 0 })
}

/// The positional arguments of libzmq's throughput tools.
pub struct PerfArgs {
    pub endpoint: String,
    pub size: usize,
    pub count: u64,
}

/// A parsed command line: the positional arguments and the shape.
pub struct Shape {
    pub positional: Vec<String>,
    pub multi_thread: bool,
    pub batch: bool,
    pub tasks: usize,
    pub spawn: bool,
    pub work: std::time::Duration,
}

impl Shape {
    /// Splits the process arguments (without the program name) into positional arguments and
    /// the shape flags.
    pub fn from_args(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut shape = Shape {
            positional: Vec::new(),
            multi_thread: true,
            batch: false,
            tasks: 1,
            spawn: false,
            work: std::time::Duration::ZERO,
        };
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--runtime" => match args.next().as_deref() {
                    Some("mt") => shape.multi_thread = true,
                    Some("ct") => shape.multi_thread = false,
                    other => return Err(format!("--runtime takes mt or ct, not {other:?}")),
                },
                "--batch" => shape.batch = true,
                "--spawn" => shape.spawn = true,
                "--work" => {
                    let nanos = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .ok_or("--work takes nanoseconds, a whole number")?;
                    shape.work = std::time::Duration::from_nanos(nanos);
                }
                "--tasks" => {
                    shape.tasks = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|&n| n > 0)
                        .ok_or("--tasks takes a positive whole number")?
                }
                _ => shape.positional.push(arg),
            }
        }
        Ok(shape)
    }

    /// Parses a throughput tool's command line (`<endpoint> <message-size> <message-count>`
    /// then the shape flags); on a bad one prints `usage` or the fault and gives exit code 2.
    pub fn perf_tool(tool: &str, usage: &str) -> Result<(Shape, PerfArgs), ExitCode> {
        let shape = match Shape::from_args(std::env::args().skip(1)) {
            Ok(shape) if shape.positional.len() == 3 => shape,
            Ok(_) | Err(_) => {
                eprintln!("usage: {tool} {usage}");
                return Err(ExitCode::from(2));
            }
        };
        let p = &shape.positional;
        let (Ok(size), Ok(count)) = (p[1].parse::<usize>(), p[2].parse::<u64>()) else {
            eprintln!("{tool}: message-size and message-count must be whole numbers");
            return Err(ExitCode::from(2));
        };
        let endpoint = p[0].clone();
        Ok((
            shape,
            PerfArgs {
                endpoint,
                size,
                count,
            },
        ))
    }

    /// Runs `program` in this shape ([`Shape::run`]) and turns its outcome into the tool's
    /// exit status, printing a failure as `<tool>: <error>`.
    pub fn exit_status<F>(&self, tool: &str, program: F) -> ExitCode
    where
        F: std::future::Future<Output = ferromq::Result<()>> + Send + 'static,
    {
        match self
            .run(program)
            .map_err(ferromq::Error::Io)
            .and_then(|outcome| outcome)
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{tool}: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// Runs `program` on the runtime this shape names, built as `#[tokio::main]` builds it:
    /// in `block_on`, or in a task spawned on it with `--spawn`.
    pub fn run<F>(&self, program: F) -> std::io::Result<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send,
    {
        let runtime = if self.multi_thread {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        };
        if self.spawn {
            runtime
                .block_on(runtime.spawn(program))
                .map_err(std::io::Error::other)
        } else {
            Ok(runtime.block_on(program))
        }
    }
}
