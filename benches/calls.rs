//! What one socket call costs on its own thread, with nothing to wait for: a `recv` that
//! finds its message queued (PULL, and SUB with a matching subscription, over inproc so no
//! kernel copy or wake-up is timed), and a `send` that queues its message for a TCP
//! connection (copy, routing and encoding; the write happens untimed, while the receiver
//! drains). These are the per-message costs the throughput examples pay on every call, and
//! unlike a two-process run they do not move with where the scheduler puts the threads.
//!
//! Run: `cargo bench --bench calls -- --warm-up-time 1 --measurement-time 3`.

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, Throughput, black_box, criterion_group, criterion_main,
};
use ferromq::{Message, Pub, Pull, Push, Sub};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Messages queued, then taken, per round: under the default HWM of 1,000, so no send waits.
const ROUND_MSGS: u64 = 500;

/// The payload every send copies.
const BODY: [u8; 64] = [b'A'; 64];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs rounds until `iters` calls were timed; each `round` makes [`ROUND_MSGS`] calls and
/// returns how long those calls took, leaving out what it did untimed around them.
fn rounds<F>(rt: &Runtime, iters: u64, mut round: impl FnMut() -> F) -> Duration
where
    F: Future<Output = Duration>,
{
    rt.block_on(async {
        let mut total = Duration::ZERO;
        let mut done = 0;
        while done < iters {
            total += round().await;
            done += ROUND_MSGS;
        }
        total.mul_f64(iters as f64 / done as f64)
    })
}

/// Times `calls`, a future making [`ROUND_MSGS`] calls.
async fn timed(calls: impl Future<Output = ()>) -> Duration {
    let start = Instant::now();
    calls.await;
    start.elapsed()
}

/// Benchmarks `name`: each round queues [`ROUND_MSGS`] messages with `send`, untimed, then
/// times as many `recv` calls taking them.
fn queued_recv<S, R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    send: impl Fn() -> S,
    recv: impl Fn() -> R,
) where
    S: Future<Output = ()>,
    R: Future<Output = ()>,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rounds(rt, iters, || async {
                for _ in 0..ROUND_MSGS {
                    send().await;
                }
                timed(async {
                    for _ in 0..ROUND_MSGS {
                        recv().await;
                    }
                })
                .await
            })
        })
    });
}

fn calls(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("calls");
    group.throughput(Throughput::Elements(1));

    let (publisher, subscriber) = rt.block_on(async {
        let publisher = Pub::new();
        publisher.bind("inproc://bench-calls-pub").expect("bind");
        let subscriber = Sub::new();
        subscriber.subscribe("A");
        subscriber
            .connect("inproc://bench-calls-pub")
            .expect("connect");
        publisher.wait_for_subscribers(1).await.expect("subscriber");
        (publisher, subscriber)
    });
    queued_recv(
        &mut group,
        &rt,
        "sub_recv_queued/64B",
        || async { publisher.send(&BODY[..]).await.expect("send") },
        || async {
            black_box(subscriber.recv().await.expect("recv"));
        },
    );

    let (push, pull) = rt.block_on(async {
        let push = Push::new();
        push.bind("inproc://bench-calls-push").expect("bind");
        let pull = Pull::new();
        pull.connect("inproc://bench-calls-push").expect("connect");
        (push, pull)
    });
    queued_recv(
        &mut group,
        &rt,
        "pull_recv_queued/64B",
        || async { push.send(&BODY[..]).await.expect("send") },
        || async {
            black_box(pull.recv().await.expect("recv"));
        },
    );

    let (push, pull) = rt.block_on(async {
        let push = Push::new();
        let endpoint = push.bind("tcp://127.0.0.1:0").expect("bind");
        let pull = Pull::new();
        pull.connect(endpoint).expect("connect");
        push.send("ready").await.expect("send");
        pull.recv().await.expect("recv");
        (push, pull)
    });
    group.bench_function("tcp_push_send/16B", |b| {
        b.iter_custom(|iters| {
            rounds(&rt, iters, || async {
                let took = timed(async {
                    for _ in 0..ROUND_MSGS {
                        push.send(Message::from(&BODY[..16])).await.expect("send");
                    }
                })
                .await;
                for _ in 0..ROUND_MSGS {
                    black_box(pull.recv().await.expect("recv"));
                }
                took
            })
        })
    });
    group.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);
