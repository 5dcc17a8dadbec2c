//! PUB/SUB fan-out, ferromq against libzmq in the same run: one publisher, 1 and 10
//! subscribers on TCP loopback, 64-byte messages, half of them on topic "A" (which every
//! subscriber subscribes to) and half on "B" (filtered out at the publisher).
//!
//! ```text
//! cargo run --release --example fanout_compare -- [messages-per-run]
//! ```
//!
//! Prints delivered messages per second per subscriber (the "A" messages a subscriber received
//! divided by the time from the first send to its last receipt, averaged over subscribers),
//! the median of 3 runs alternating ferromq and libzmq, and the ratio. Same tuning on both
//! sides: HWM unlimited (so nothing is dropped and every run moves the same messages);
//! ferromq on a 2-worker tokio runtime, libzmq with its default single I/O thread plus one
//! application thread per socket.

use ferromq::{Message, Pub, SocketOptions, Sub};
use std::time::{Duration, Instant};

const MESSAGE_BYTES: usize = 64;
const RUNS: usize = 3;

fn payload(topic: u8) -> Vec<u8> {
    let mut body = vec![b'.'; MESSAGE_BYTES];
    body[0] = topic;
    body
}

fn unlimited() -> SocketOptions {
    let mut options = SocketOptions::default();
    options.sndhwm = 0;
    options.rcvhwm = 0;
    options
}

/// Mean per-subscriber delivery rate, given each subscriber's finishing time.
fn rate(per_subscriber: u64, start: Instant, finished: &[Instant]) -> f64 {
    let total: f64 = finished
        .iter()
        .map(|t| per_subscriber as f64 / t.duration_since(start).as_secs_f64().max(1e-9))
        .sum();
    total / finished.len() as f64
}

fn ferromq_run(runtime: &tokio::runtime::Runtime, subscribers: usize, messages: u64) -> f64 {
    runtime.block_on(async {
        let publisher = Pub::with_options(unlimited()).unwrap();
        let endpoint = publisher.bind("tcp://127.0.0.1:0").unwrap();
        let per_subscriber = messages / 2;
        let mut tasks = Vec::new();
        for _ in 0..subscribers {
            let sub = Sub::with_options(unlimited()).unwrap();
            sub.subscribe("A");
            sub.connect(&endpoint).unwrap();
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_subscriber {
                    sub.recv().await.unwrap();
                }
                Instant::now()
            }));
        }
        publisher
            .wait_for_subscribers(subscribers)
            .await
            .expect("the publisher is open");
        let a = Message::from(payload(b'A'));
        let b = Message::from(payload(b'B'));
        let start = Instant::now();
        for i in 0..messages {
            let message = if i % 2 == 0 { a.clone() } else { b.clone() };
            publisher.send(message).await.unwrap();
        }
        let mut finished = Vec::new();
        for task in tasks {
            finished.push(task.await.unwrap());
        }
        rate(per_subscriber, start, &finished)
    })
}

fn libzmq_run(subscribers: usize, messages: u64) -> f64 {
    let ctx = zmq::Context::new();
    let publisher = ctx.socket(zmq::XPUB).unwrap();
    publisher.set_sndhwm(0).unwrap();
    publisher.set_xpub_verbose(true).unwrap();
    publisher.bind("tcp://127.0.0.1:0").unwrap();
    let endpoint = publisher.get_last_endpoint().unwrap().unwrap();
    let per_subscriber = messages / 2;
    let threads: Vec<_> = (0..subscribers)
        .map(|_| {
            let sub = ctx.socket(zmq::SUB).unwrap();
            sub.set_rcvhwm(0).unwrap();
            sub.set_subscribe(b"A").unwrap();
            sub.connect(&endpoint).unwrap();
            std::thread::spawn(move || {
                let mut message = zmq::Message::new();
                for _ in 0..per_subscriber {
                    sub.recv(&mut message, 0).unwrap();
                }
                Instant::now()
            })
        })
        .collect();
    // Verbose XPUB shows each subscriber's subscription: the slow-joiner wait.
    for _ in 0..subscribers {
        publisher.recv_bytes(0).unwrap();
    }
    let a = payload(b'A');
    let b = payload(b'B');
    let start = Instant::now();
    for i in 0..messages {
        publisher
            .send(if i % 2 == 0 { &a[..] } else { &b[..] }, 0)
            .unwrap();
    }
    let finished: Vec<Instant> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    rate(per_subscriber, start, &finished)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let messages: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("messages-per-run must be a whole number"))
        .unwrap_or(200_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "PUB/SUB fan-out, tcp loopback, {MESSAGE_BYTES} B messages, {messages} published per \
         run (half match), median of {RUNS}"
    );
    for subscribers in [1, 10] {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..RUNS {
            ours.push(ferromq_run(&runtime, subscribers, messages));
            theirs.push(libzmq_run(subscribers, messages));
            // Let the previous run's connections close before the next one starts.
            std::thread::sleep(Duration::from_millis(50));
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "{subscribers:>2} subscriber(s): ferromq {ours:>12.0} msg/s/sub   libzmq {theirs:>12.0} \
             msg/s/sub   ratio {:.2}",
            ours / theirs
        );
    }
}
