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

use bytes::Bytes;
use ferromq::{Dealer, Error, Message, Router};
use futures::future::try_join_all;

/// What the broker answers once there is no more work.
pub const FIRED: &str = "Fired!";

/// Hands out `tasks` workloads to whichever worker asks, then fires `workers` workers.
pub async fn broker(router: &Router, workers: usize, tasks: usize) -> ferromq::Result<()> {
    for handed_out in 0..tasks + workers {
        // [worker, "", "Hi Boss"]
        let request = router.recv().await?;
        let worker = request.first().cloned().unwrap_or_default();
        let answer = if handed_out < tasks {
            "Work harder"
        } else {
            FIRED
        };
        router
            .send(Message::from(vec![worker, Bytes::new(), answer.into()]))
            .await?;
    }
    Ok(())
}

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

/// The broker and `workers` workers on a fresh port, `tasks` tasks; returns each worker's
/// count of tasks done.
pub async fn demo(workers: usize, tasks: usize) -> ferromq::Result<Vec<usize>> {
    let router = Router::new();
    let endpoint = router.bind("tcp://127.0.0.1:0")?.to_string();
    let (_, done) = tokio::try_join!(
        broker(&router, workers, tasks),
        try_join_all((0..workers).map(|_| worker(&endpoint))),
    )?;
    for (w, done) in done.iter().enumerate() {
        println!("worker {w}: completed {done} tasks");
    }
    Ok(done)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ferromq::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {
            demo(10, 100).await?;
        }
        ["broker", endpoint, workers, tasks] => {
            let router = Router::new();
            router.bind(*endpoint)?;
            let workers = workers.parse().unwrap_or(10);
            broker(&router, workers, tasks.parse().unwrap_or(100)).await?;
            router.close().await;
        }
        ["worker", endpoint] => {
            println!("Completed: {} tasks", worker(endpoint).await?);
        }
        _ => {
            eprintln!("usage: rtdealer [broker <endpoint> <workers> <tasks> | worker <endpoint>]");
            std::process::exit(2);
        }
    }
    Ok(())
}
