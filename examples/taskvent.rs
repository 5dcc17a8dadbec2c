//! The Guide's parallel pipeline ("taskvent", "taskwork", "tasksink", and "taskwork2",
//! "tasksink2" with the kill signal): a ventilator hands out tasks on a PUSH socket, any
//! number of workers PULL them, work, and PUSH results to a sink that PULLs them all in. PUSH
//! load-balances the tasks over the workers connected to it and PULL fair-queues the results
//! from all of them, so adding workers is all it takes to go faster. Given a controller
//! endpoint, the sink PUBlishes "KILL" once the batch is done and the workers, SUBscribed to
//! it, stop.
//!
//! ```text
//! cargo run --example taskvent                                                 # demo, exits 0
//! cargo run --example taskvent -- sink tcp://*:5558 [tcp://*:5559]             # 1: the sink
//! cargo run --example taskvent -- work tcp://localhost:5557 tcp://localhost:5558 \
//!                                      [tcp://localhost:5559]                  # 2: workers
//! cargo run --example taskvent -- vent tcp://*:5557 tcp://localhost:5558       # 3: go
//! ```
//!
//! A task is `"<number> <milliseconds of work>"`, a result `"<number> <worker name>"`. The
//! ventilator first tells the sink how many tasks the batch has, then, in the demo, waits for
//! every worker to connect (from its socket's monitor) before sending any, so that the first
//! worker to connect does not get them all. From the command line it waits for Enter, as the
//! Guide's does. The demo's sink also waits until every worker has subscribed to its
//! controller, so no worker misses the KILL.

use ferromq::{Error, Pub, Pull, Push, Socket, Sub};
use futures::StreamExt;
use futures::future::try_join_all;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Bounds the demo's waits for workers.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Tasks in the Guide's batch.
const TASKS: usize = 100;

/// A small xorshift generator, so the example needs no `rand`.
fn workloads(tasks: usize, max_ms: u64) -> impl Iterator<Item = u64> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..tasks).map(move |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        1 + state % max_ms
    })
}

/// Tells the sink a batch of `tasks` is coming, then sends the tasks with random workloads
/// of up to `max_ms` milliseconds each; returns the total expected work.
pub async fn vent(sender: &Push, sink: &Push, tasks: usize, max_ms: u64) -> ferromq::Result<u64> {
    sink.send(tasks.to_string()).await?;
    let mut total_ms = 0;
    for (number, workload) in workloads(tasks, max_ms).enumerate() {
        total_ms += workload;
        sender.send(format!("{number} {workload}")).await?;
    }
    Ok(total_ms)
}

/// The sink's signal to the workers that the batch is done.
pub const KILL: &str = "KILL";

/// A worker: does each task (sleeps its workload) and sends the result to the sink. Stops
/// on "KILL" from `controller` (if any), returning how many tasks it did.
pub async fn work(
    ventilator: &str,
    sink: &str,
    controller: Option<&str>,
    name: &str,
) -> ferromq::Result<usize> {
    let receiver = Pull::new();
    receiver.connect(ventilator)?;
    let sender = Push::new();
    sender.connect(sink)?;
    let control = Sub::new();
    control.subscribe("");
    if let Some(controller) = controller {
        control.connect(controller)?;
    }
    for done in 0.. {
        let task = tokio::select! {
            task = receiver.recv() => task?,
            _ = control.recv() => return Ok(done), // KILL
        };
        let text = String::from_utf8_lossy(&task.frames()[0]).into_owned();
        let (number, workload) = text
            .split_once(' ')
            .and_then(|(n, w)| Some((n.to_owned(), w.parse::<u64>().ok()?)))
            .ok_or(Error::MalformedMessage("not a task"))?;
        tokio::time::sleep(Duration::from_millis(workload)).await; // the "work"
        sender.send(format!("{number} {name}")).await?;
    }
    unreachable!("a worker does fewer than usize::MAX tasks")
}

/// What the sink saw: how many tasks each worker did, by task number.
#[derive(Debug, Default)]
pub struct Batch {
    /// The worker that did each task, indexed by task number.
    pub done_by: HashMap<usize, Vec<String>>,
    /// From the batch announcement to the last result.
    pub elapsed: Duration,
    /// Tasks each worker did, by its own count, when killed (the demo fills this in).
    pub per_worker: Vec<usize>,
}

/// Waits for a batch announcement, then collects that many results; then sends "KILL" on
/// `controller`, if given.
pub async fn sink(receiver: &Pull, controller: Option<&Pub>) -> ferromq::Result<Batch> {
    let announcement = receiver.recv().await?;
    let tasks: usize = String::from_utf8_lossy(&announcement.frames()[0])
        .parse()
        .map_err(|_| Error::MalformedMessage("not a batch announcement"))?;
    let start = Instant::now();
    let mut batch = Batch::default();
    for _ in 0..tasks {
        let result = receiver.recv().await?;
        let text = String::from_utf8_lossy(&result.frames()[0]).into_owned();
        let (number, worker) = text
            .split_once(' ')
            .and_then(|(n, w)| Some((n.parse().ok()?, w.to_owned())))
            .ok_or(Error::MalformedMessage("not a result"))?;
        batch.done_by.entry(number).or_default().push(worker);
    }
    batch.elapsed = start.elapsed();
    if let Some(controller) = controller {
        controller.send(KILL).await?;
    }
    Ok(batch)
}

/// Waits until `socket` has `peers` connected peers, waking on its monitor's events.
pub async fn wait_for_peers(socket: &impl Socket, peers: usize) -> ferromq::Result<()> {
    let mut events = socket.monitor();
    let wait = async {
        while socket.peer_count() < peers {
            if events.next().await.is_none() {
                return Err(Error::Closed);
            }
        }
        Ok(())
    };
    tokio::time::timeout(TIMEOUT, wait)
        .await
        .map_err(|_| Error::Timeout(TIMEOUT))?
}

/// Sink, ventilator and `workers` workers on fresh ports, one batch of `tasks` tasks of up
/// to `max_ms` milliseconds each, after which the sink kills the workers; returns what the
/// sink saw and what each worker did.
pub async fn demo(workers: usize, tasks: usize, max_ms: u64) -> ferromq::Result<Batch> {
    let receiver = Pull::new();
    let sink_endpoint = receiver.bind("tcp://127.0.0.1:0")?.to_string();
    let controller = Pub::new();
    let control_endpoint = controller.bind("tcp://127.0.0.1:0")?.to_string();
    let sender = Push::new();
    let vent_endpoint = sender.bind("tcp://127.0.0.1:0")?.to_string();
    let to_sink = Push::new();
    to_sink.connect(&sink_endpoint)?;

    let names: Vec<String> = (0..workers).map(|w| format!("worker-{w}")).collect();
    let working = try_join_all(names.iter().map(|name| {
        work(
            &vent_endpoint,
            &sink_endpoint,
            Some(&control_endpoint),
            name,
        )
    }));
    let batch = async {
        wait_for_peers(&sender, workers).await?;
        tokio::time::timeout(TIMEOUT, controller.wait_for_subscribers(workers))
            .await
            .map_err(|_| Error::Timeout(TIMEOUT))??;
        let (batch, total_ms) = tokio::try_join!(
            sink(&receiver, Some(&controller)),
            vent(&sender, &to_sink, tasks, max_ms)
        )?;
        println!(
            "{tasks} tasks, {total_ms} ms of work, done by {workers} workers in {} ms",
            batch.elapsed.as_millis()
        );
        Ok(batch)
    };
    let (mut batch, per_worker) = tokio::try_join!(batch, working)?;
    batch.per_worker = per_worker;
    Ok(batch)
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
            demo(4, TASKS, 20).await?;
        }
        ["vent", bind, sink_endpoint] => {
            let sender = Push::new();
            sender.bind(*bind)?;
            let to_sink = Push::new();
            to_sink.connect(*sink_endpoint)?;
            println!("Press Enter when the workers are ready: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            println!("Sending tasks to workers…");
            let total_ms = vent(&sender, &to_sink, TASKS, 100).await?;
            println!("Total expected cost: {total_ms} msec");
            sender.close().await; // lingers until the tasks are out
            to_sink.close().await;
        }
        ["work", ventilator, sink_endpoint, controller @ ..] if controller.len() <= 1 => {
            let name = format!("worker-{}", std::process::id());
            let done = work(
                ventilator,
                sink_endpoint,
                controller.first().copied(),
                &name,
            )
            .await?;
            println!("{name}: killed after {done} tasks");
        }
        ["sink", bind, controller @ ..] if controller.len() <= 1 => {
            let receiver = Pull::new();
            receiver.bind(*bind)?;
            let publisher = Pub::new();
            if let Some(controller) = controller.first() {
                publisher.bind(*controller)?;
            }
            let batch = sink(&receiver, controller.first().map(|_| &publisher)).await?;
            println!("Total elapsed time: {} msec", batch.elapsed.as_millis());
            publisher.close().await; // lingers until KILL is out
        }
        _ => {
            eprintln!(
                "usage: taskvent [vent <bind> <sink> | work <ventilator> <sink> [<controller>] \
                 | sink <bind> [<controller-bind>]]"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}
