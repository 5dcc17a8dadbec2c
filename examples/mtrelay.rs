//! The Guide's multithreaded relay ("mtrelay"): three steps of a job, each on its own
//! thread, signal each other in a chain over PAIR sockets — step 1 tells step 2 it is ready,
//! step 2 tells step 3 — so that step 3 goes on only when the steps before it are done.
//! PAIR connects exactly two peers, which makes it the socket for such a private line.
//!
//! ```text
//! cargo run --example mtrelay        # demo, exits 0
//! ```
//!
//! As in the Guide, the PAIRs talk over `inproc` endpoints (no kernel, no encoding), with
//! names unique to the process and step. The threads use the blocking API. It is a single
//! program, as in the Guide; there are no roles to run apart.

use ferromq::SocketOptions;
use ferromq::blocking::Pair;
use std::time::Duration;

/// Bounds every wait.
const TIMEOUT: Duration = Duration::from_secs(10);

fn pair() -> ferromq::Result<Pair> {
    let mut options = SocketOptions::default();
    options.recv_timeout = Some(TIMEOUT);
    options.send_timeout = Some(TIMEOUT);
    Pair::with_options(options)
}

/// A fresh inproc endpoint for one link of the chain (unique, so that two demos running in
/// one process, as the tests do, never share a name).
fn endpoint(link: &str) -> String {
    static DEMOS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let demo = DEMOS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("inproc://mtrelay-{link}-{demo}")
}

/// Step 1: does its part, then signals step 2.
fn step1(to_step2: &str) -> ferromq::Result<()> {
    let xmitter = pair()?;
    xmitter.connect(to_step2)?;
    println!("Step 1 ready, signaling step 2");
    xmitter.send("READY")?;
    xmitter.close()
}

/// Step 2: starts step 1, waits for its signal, then signals step 3.
fn step2(to_step3: &str) -> ferromq::Result<()> {
    let receiver = pair()?;
    let from_step1 = endpoint("step2");
    receiver.bind(from_step1.as_str())?;
    std::thread::scope(|scope| {
        let step1 = scope.spawn(|| step1(&from_step1));
        receiver.recv()?;
        step1.join().expect("step 1 panicked")?;
        let xmitter = pair()?;
        xmitter.connect(to_step3)?;
        println!("Step 2 ready, signaling step 3");
        xmitter.send("READY")?;
        xmitter.close()
    })
}

/// Step 3: starts step 2 and waits for its signal. Returns the signal.
pub fn demo() -> ferromq::Result<String> {
    let receiver = pair()?;
    let from_step2 = endpoint("step3");
    receiver.bind(from_step2.as_str())?;
    std::thread::scope(|scope| {
        let step2 = scope.spawn(|| step2(&from_step2));
        let signal = receiver.recv()?;
        step2.join().expect("step 2 panicked")?;
        println!("Test successful!");
        Ok(String::from_utf8_lossy(&signal.frames()[0]).into_owned())
    })
}

fn main() -> ferromq::Result<()> {
    demo()?;
    Ok(())
}
