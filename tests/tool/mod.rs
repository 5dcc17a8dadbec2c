//! A child process under test (the `ferromq` tool, or any command): its stdin, and its stdout
//! and stderr as lines read on threads of their own (so a full pipe never blocks the child).
//!
//! Every wait on a child (a line on stdout or stderr, its exit) is bounded by the child's
//! deadline, and a child still running when its handle is dropped — a failed assertion
//! included — is killed with its whole process group.

#![allow(dead_code)] // Each test binary uses the part it needs.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The longest any one child may take, from spawn to exit.
pub const CHILD_DEADLINE: Duration = Duration::from_secs(30);

/// A running child process: its stdin, and its stdout and stderr as lines read on
/// threads of their own (so a full pipe never blocks the child).
pub struct Tool {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    stderr_seen: Vec<String>,
    deadline: Instant,
}

/// How a tool ended.
#[derive(Debug)]
pub struct Exit {
    pub code: Option<i32>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Tool {
    /// Starts `ferromq` with `args`.
    pub fn spawn(args: &[&str]) -> Tool {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferromq"));
        command.args(args);
        Tool::start(format!("ferromq {}", args.join(" ")), command)
    }

    /// Starts `command` (named `name` in failures) in a process group of its own, with
    /// piped stdin, stdout and stderr.
    pub fn start(name: String, mut command: Command) -> Tool {
        let mut child = command
            .env_remove("RUST_LOG")
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = lines_of(child.stdout.take().expect("stdout piped"));
        let stderr = lines_of(child.stderr.take().expect("stderr piped"));
        Tool {
            name,
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            stderr_seen: Vec::new(),
            deadline: Instant::now() + CHILD_DEADLINE,
        }
    }

    /// Lets the child run until `deadline` instead of [`CHILD_DEADLINE`] from its start.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, …) to the child's whole process group (a shell
    /// pipeline included).
    pub fn signal(&self, signal: &str) {
        let group = format!("-{}", self.child.id());
        let status = Command::new("kill")
            .args(["-s", signal, "--", &group])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} {group} failed");
    }

    /// Runs the tool to completion with `input` on stdin.
    pub fn run(args: &[&str], input: &str) -> Exit {
        let mut tool = Tool::spawn(args);
        tool.write(input);
        tool.close_stdin();
        tool.wait()
    }

    pub fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(text.as_bytes()).expect("write to ferromq");
        stdin.flush().expect("flush to ferromq");
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The lines on stdout that arrived so far and were not read yet.
    pub fn stdout_ready(&mut self) -> Vec<String> {
        self.stdout.try_iter().collect()
    }

    /// The lines on stderr that arrived so far and were not read yet (also kept for failure
    /// messages).
    pub fn stderr_ready(&mut self) -> Vec<String> {
        let lines: Vec<String> = self.stderr.try_iter().collect();
        self.stderr_seen.extend(lines.iter().cloned());
        lines
    }

    /// The next line on stdout if one arrives within `wait` (and before the deadline).
    pub fn read_line_within(&mut self, wait: Duration) -> Option<String> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        self.stdout.recv_timeout(wait.min(remaining)).ok()
    }

    /// The next line on stdout.
    pub fn read_line(&mut self) -> String {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        match self.stdout.recv_timeout(remaining) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => self.fail("timed out waiting for a line on stdout"),
            Err(RecvTimeoutError::Disconnected) => self.fail("stdout ended"),
        }
    }

    /// The endpoint from the `bound …` line `--verbose` logs on stderr.
    pub fn bound_endpoint(&mut self) -> String {
        let line = self.stderr_line(|line| line.contains("bound "), "a `bound` line");
        let (_, rest) = line.split_once("bound ").unwrap_or_default();
        rest.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// The next line on stderr that `wanted` accepts (`what` names it in a failure).
    pub fn stderr_line(&mut self, wanted: impl Fn(&str) -> bool, what: &str) -> String {
        loop {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            let line = match self.stderr.recv_timeout(remaining) {
                Ok(line) => line,
                Err(_) => self.fail(&format!("no {what} on stderr")),
            };
            self.stderr_seen.push(line.clone());
            if wanted(&line) {
                return line;
            }
        }
    }

    /// Waits for the process to exit (its stdout and stderr close when it does) and
    /// collects what it still printed.
    pub fn wait(mut self) -> Exit {
        let mut stdout = Vec::new();
        loop {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(remaining) {
                Ok(line) => stdout.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => self.fail("did not exit"),
            }
        }
        loop {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(remaining) {
                Ok(line) => self.stderr_seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => self.fail("did not exit"),
            }
        }
        let status = self.child.wait().expect("wait for ferromq");
        Exit {
            code: status.code(),
            stdout,
            stderr: std::mem::take(&mut self.stderr_seen),
        }
    }

    pub fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let stderr: Vec<String> = self.stderr.try_iter().collect();
        panic!(
            "{}: {what}; stderr so far: {:?} {:?}",
            self.name, self.stderr_seen, stderr
        );
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        // The whole group: a pipeline's processes too. Nothing to do if it already ended.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines of a child's output, sent on a channel by a reader thread that ends at EOF.
fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}
