//! The ZeroMQ Guide's parallel pipeline ("Divide and Conquer"), in one process over TCP
//! loopback:
//!
//! ```text
//!                 ventilator (PUSH, binds)
//!              ┌────────┬────────┬────────┐     round-robin
//!           worker 0 worker 1 worker 2 worker 3  (PULL in, PUSH out)
//!              └────────┴────────┴────────┘     fair-queued
//!                    sink (PULL, binds)
//! ```
//!
//! The ventilator sends `TASKS` small tasks, each carrying a workload number; every worker
//! "does" its tasks (sums their workloads) and reports each result to the sink. The output
//! shows the load balancing (tasks per worker), the fair-queueing (results per worker as the
//! sink saw them) and the throughput.
//!
//! Run with `cargo run --release --example quickstart`.

use ferromq::{Message, Pull, Push};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const TASKS: u64 = 100_000;
const WORKERS: usize = 4;

#[tokio::main]
async fn main() -> ferromq::Result<()> {
    let ventilator = Push::new();
    let tasks_endpoint = ventilator.bind("tcp://127.0.0.1:0")?;
    let sink = Pull::new();
    let results_endpoint = sink.bind("tcp://127.0.0.1:0")?;
    println!("ventilator on {tasks_endpoint}, sink on {results_endpoint}, {WORKERS} workers");

    let (stop, stopped) = watch::channel(false);
    let workers: Vec<_> = (0..WORKERS)
        .map(|id| {
            let tasks = Pull::new();
            let results = Push::new();
            let connected = tasks
                .connect(&tasks_endpoint)
                .and_then(|()| results.connect(&results_endpoint));
            let stopped = stopped.clone();
            tokio::spawn(async move {
                connected?;
                worker(id as u8, tasks, results, stopped).await
            })
        })
        .collect();

    // Round-robin spreads work over the peers connected *now*: wait until every worker is
    // there, or the first one to connect would get everything.
    while ventilator.peer_count() < WORKERS || sink.peer_count() < WORKERS {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    let started = Instant::now();
    let sending = async {
        for task in 0..TASKS {
            let workload = task % 100 + 1;
            let mut message = Message::new();
            message.push_back(task.to_be_bytes().to_vec());
            message.push_back(workload.to_be_bytes().to_vec());
            if let Err(e) = ventilator.send(message).await {
                return Err(e.error);
            }
        }
        Ok(())
    };
    let collecting = async {
        let mut per_worker = [0u64; WORKERS];
        for _ in 0..TASKS {
            let result = sink.recv().await?;
            per_worker[usize::from(result.frames()[0][0])] += 1;
        }
        Ok::<_, ferromq::Error>(per_worker)
    };
    let (sent, seen_by_sink) = tokio::join!(sending, collecting);
    sent?;
    let seen_by_sink = seen_by_sink?;
    let elapsed = started.elapsed();

    stop.send_replace(true);
    // Round-robin skips a worker whose queue is at its high-water mark, so a worker that
    // falls behind gets fewer tasks: load balancing, not a blind equal split.
    println!("worker  tasks done  workload sum  results at sink");
    for (id, handle) in workers.into_iter().enumerate() {
        let (done, workload) = handle.await.expect("worker panicked")?;
        println!(
            "{id:>6}  {done:>10}  {workload:>12}  {:>15}",
            seen_by_sink[id]
        );
    }
    // Each task crosses two hops: ventilator → worker, worker → sink.
    let messages = 2 * TASKS;
    println!(
        "{TASKS} tasks, {messages} messages in {:.3} s: {:.0} msg/s",
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Receives tasks until told to stop; returns how many it did and the sum of their workloads.
async fn worker(
    id: u8,
    tasks: Pull,
    results: Push,
    mut stopped: watch::Receiver<bool>,
) -> ferromq::Result<(u64, u64)> {
    let (mut done, mut workload_sum) = (0u64, 0u64);
    loop {
        let task = tokio::select! {
            task = tasks.recv() => task?,
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let workload =
            u64::from_be_bytes(task.frames()[1][..].try_into().expect("8-byte workload"));
        workload_sum += workload;
        done += 1;
        let mut result = Message::new();
        result.push_back(vec![id]);
        result.push_back(task.frames()[0].clone());
        results.send(result).await.map_err(|e| e.error)?;
    }
    results.close().await;
    Ok((done, workload_sum))
}
