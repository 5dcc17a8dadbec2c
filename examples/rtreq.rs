//! The Guide's ROUTER-to-REQ example ("rtreq"): a ROUTER hands work to REQ workers in
//! least-recently-used order. A REQ worker asks for work by sending a request; the ROUTER
//! sees `[worker, "", request]`, so it knows who asked, and answers that worker with
//! `[worker, "", workload]` — whichever worker asked first gets the next piece of work.
//! When the work runs out, each worker's next request is answered with "Fired!".
//!
//! ```text
//! cargo run --example rtreq                                      # demo, exits 0
//! cargo run --example rtreq -- broker tcp://*:5671 10 100        # 10 workers, 100 tasks
//! cargo run --example rtreq -- worker tcp://localhost:5671       # × 10
//! ```
//!
//! `rtdealer` is the same with DEALER workers, which must write the empty delimiter frame
//! that REQ adds and removes by itself.

use bytes::Bytes;
use ferromq::{Message, Req, Router};
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

/// A REQ worker: asks for work until fired; returns how many tasks it did.
pub async fn worker(endpoint: &str) -> ferromq::Result<usize> {
    let req = Req::new();
    req.connect(endpoint)?;
    let mut done = 0;
    loop {
        req.send("Hi Boss").await?;
        let workload = req.recv().await?;
        if workload.frames()[0] == FIRED {
            return Ok(done);
        }
        tokio::task::yield_now().await; // the "work"
        done += 1;
    }
}

/// The broker and `workers` workers on a fresh port, `tasks` tasks; returns each worker's
/// count of tasks done.
pub async fn demo(workers: usize, tasks: usize) -> ferromq::Result<Vec<usize>> {
    demo_with(workers, tasks, worker).await
}

/// [`demo`] with another kind of `worker` (rtdealer's), against the same broker.
pub async fn demo_with(
    workers: usize,
    tasks: usize,
    worker: impl AsyncFn(&str) -> ferromq::Result<usize>,
) -> ferromq::Result<Vec<usize>> {
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

/// The command line of `name` (rtreq, rtdealer): the demo, the broker, or one `worker`.
pub async fn run_command_line(
    name: &str,
    worker: impl AsyncFn(&str) -> ferromq::Result<usize>,
) -> ferromq::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {
            demo_with(10, 100, worker).await?;
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
            eprintln!("usage: {name} [broker <endpoint> <workers> <tasks> | worker <endpoint>]");
            std::process::exit(2);
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ferromq::Result<()> {
    run_command_line("rtreq", worker).await
}
