//! The Guide's ROUTER-to-DEALER example ("rtdealer"): `rtreq` with DEALER workers. A DEALER
//! adds no envelope of its own, so the worker writes the empty delimiter frame itself —
//! `["", "Hi Boss"]` — and reads `["", workload]`; the ROUTER sees `[worker, "", "Hi Boss"]`
//! exactly as from a REQ, and the broker does not change at all. Unlike a REQ, a DEALER could
//! ask for several pieces of work before the first arrives.
//!
//! ```text
//! cargo run --example rtdealer                                   # demo, exits 0
//! cargo run --example rtdealer -- broker tcp://*:5671 10 100     # 10 workers, 100 tasks
//! cargo run --example rtdealer -- worker tcp://localhost:5671    # × 10
//! ```

use ferromq::{Dealer, Error, Message};

/// The broker, the demo and the command line are rtreq's: only the worker differs.
#[allow(dead_code)]
#[path = "rtreq.rs"]
mod rtreq;

use rtreq::FIRED;

/// A DEALER worker: asks for work until fired; returns how many tasks it did.
pub async fn worker(endpoint: &str) -> ferromq::Result<usize> {
    let dealer = Dealer::new();
    dealer.connect(endpoint)?;
    let mut done = 0;
    loop {
        dealer.send(Message::from_iter(["", "Hi Boss"])).await?;
        let workload = dealer.recv().await?;
        let [delimiter, workload] = workload.frames() else {
            return Err(Error::MalformedMessage("not a delimiter and a workload"));
        };
        if !delimiter.is_empty() {
            return Err(Error::MalformedMessage("no empty delimiter"));
        }
        if workload == FIRED {
            return Ok(done);
        }
        tokio::task::yield_now().await; // the "work"
        done += 1;
    }
}

/// rtreq's broker and `workers` DEALER workers on a fresh port, `tasks` tasks; returns each
/// worker's count of tasks done.
pub async fn demo(workers: usize, tasks: usize) -> ferromq::Result<Vec<usize>> {
    rtreq::demo_with(workers, tasks, worker).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ferromq::Result<()> {
    rtreq::run_command_line("rtdealer", worker).await
}
