//! Reconnection: a peer that goes away mid-stream and comes back on the same address gets the
//! stream again, and the reconnect interval (and its backoff) is honoured.

use ferromq::{Endpoint, Pull, Push, SocketOptions};
use std::net::TcpListener;
use std::time::{Duration, Instant};
use tokio::task::spawn_blocking;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// libzmq's receive timeout, so a libzmq thread can never hang the test.
const LIBZMQ_TIMEOUT_MS: i32 = 10_000;
/// Messages per phase of the stream.
const PHASE_MSGS: u32 = 1_000;
const RECONNECT_IVL: Duration = Duration::from_millis(20);

/// Polls `condition` every few milliseconds until it holds; panics after 10 s.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn push_with_reconnect_ivl(ivl: Duration, max: Option<Duration>) -> Push {
    let mut options = SocketOptions::default();
    options.reconnect_ivl = Some(ivl);
    options.reconnect_ivl_max = max;
    Push::with_options(options).unwrap()
}

fn tagged(phase: &str, i: u32) -> String {
    format!("{phase}-{i}")
}

/// Binds a libzmq PULL at `endpoint` and receives `PHASE_MSGS` messages of `phase` in order.
fn libzmq_pull_phase(ctx: zmq::Context, endpoint: String, phase: &'static str) {
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.set_rcvtimeo(LIBZMQ_TIMEOUT_MS).unwrap();
    pull.set_linger(0).unwrap();
    pull.bind(&endpoint).unwrap();
    for i in 0..PHASE_MSGS {
        let message = pull.recv_string(0).unwrap().unwrap();
        assert_eq!(message, tagged(phase, i));
    }
    // Dropping the socket closes it: the peer goes away.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferromq_push_reconnects_to_a_libzmq_pull_that_comes_back() {
    timeout(TEST_TIMEOUT, async {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("tcp://127.0.0.1:{port}");
        let ctx = zmq::Context::new();
        let push = push_with_reconnect_ivl(RECONNECT_IVL, None);
        push.connect(endpoint.as_str()).unwrap();

        for phase in ["before", "after"] {
            let receiver = spawn_blocking({
                let (ctx, endpoint) = (ctx.clone(), endpoint.clone());
                move || libzmq_pull_phase(ctx, endpoint, phase)
            });
            for i in 0..PHASE_MSGS {
                push.send(tagged(phase, i)).await.unwrap();
            }
            receiver.await.unwrap();
            // The PULL is gone. Wait until the PUSH has noticed, so the next phase's first
            // message cannot be written into the dead connection (libzmq would lose it
            // too).
            wait_until("the PUSH to see its peer go", || push.peer_count() == 0).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferromq_push_reconnects_to_a_ferromq_pull_rebound_on_the_same_port() {
    timeout(TEST_TIMEOUT, async {
        let first = Pull::new();
        let endpoint: Endpoint = first.bind("tcp://127.0.0.1:0").unwrap();
        let push = push_with_reconnect_ivl(RECONNECT_IVL, None);
        push.connect(&endpoint).unwrap();

        for i in 0..PHASE_MSGS {
            push.send(tagged("before", i)).await.unwrap();
        }
        for i in 0..PHASE_MSGS {
            assert_eq!(first.recv().await.unwrap().frames()[0], tagged("before", i));
        }
        first.close().await;
        wait_until("the PUSH to see its peer go", || push.peer_count() == 0).await;

        // A new socket on the same port: the PUSH finds it on its next attempt.
        let second = Pull::new();
        second.bind(&endpoint).unwrap();
        for i in 0..PHASE_MSGS {
            push.send(tagged("after", i)).await.unwrap();
        }
        for i in 0..PHASE_MSGS {
            assert_eq!(second.recv().await.unwrap().frames()[0], tagged("after", i));
        }
    })
    .await
    .unwrap();
}

/// Accepts `attempts` connections on a raw listener, closing each at once (so the handshake
/// never completes and backoff is never reset), and returns when each arrived.
fn accept_and_drop(listener: TcpListener, attempts: usize) -> Vec<Instant> {
    (0..attempts)
        .map(|_| {
            let (stream, _) = listener.accept().unwrap();
            let at = Instant::now();
            drop(stream);
            at
        })
        .collect()
}

/// Gaps between consecutive connection attempts from a PUSH with these reconnect settings.
async fn reconnect_gaps(ivl: Duration, max: Option<Duration>, attempts: usize) -> Vec<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = Endpoint::from_socket_addr(listener.local_addr().unwrap());
    let acceptor = spawn_blocking(move || accept_and_drop(listener, attempts));
    let push = push_with_reconnect_ivl(ivl, max);
    push.connect(&endpoint).unwrap();
    let times = acceptor.await.unwrap();
    push.close().await;
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_interval_is_honoured() {
    timeout(TEST_TIMEOUT, async {
        let ivl = Duration::from_millis(50);
        let gaps = reconnect_gaps(ivl, None, 5).await;
        // Each retry waits at least the interval (plus up to one interval of jitter); without
        // a maximum there is no backoff.
        for gap in &gaps {
            assert!(
                *gap >= ivl,
                "retried after {gap:?}, interval is {ivl:?}: {gaps:?}"
            );
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_backs_off_up_to_the_maximum() {
    timeout(TEST_TIMEOUT, async {
        let ivl = Duration::from_millis(25);
        let max = Duration::from_millis(200);
        let gaps = reconnect_gaps(ivl, Some(max), 6).await;
        // Waits double from the interval and stop growing at the maximum: 25, 50, 100, 200,
        // 200 ms, each plus jitter below that wait.
        let floors = [25, 50, 100, 200, 200].map(Duration::from_millis);
        for (gap, floor) in gaps.iter().zip(floors) {
            assert!(
                *gap >= floor,
                "gaps {gaps:?} below backoff floors {floors:?}"
            );
        }
    })
    .await
    .unwrap();
}

/// RFC 23: an ERROR command is fatal and the connecting side must not reconnect. A raw peer
/// completes the greeting, sends ERROR and closes; ferromq must not come back, although any
/// other disconnect makes it retry within `RECONNECT_IVL` plus jitter.
#[tokio::test]
async fn peer_error_command_stops_reconnection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    timeout(TEST_TIMEOUT, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = Endpoint::from_socket_addr(listener.local_addr().unwrap());
        let push = push_with_reconnect_ivl(RECONNECT_IVL, None);
        push.connect(&endpoint).unwrap();

        let (mut stream, _) = listener.accept().await.unwrap();
        let mut greeting = [0u8; 64];
        stream.read_exact(&mut greeting).await.unwrap();
        assert_eq!(
            &greeting[12..16],
            b"NULL",
            "expected ferromq's NULL greeting"
        );
        // Our greeting: the same one back (NULL, 3.1), then ERROR "go away" and close.
        stream.write_all(&greeting).await.unwrap();
        stream
            .write_all(b"\x04\x0e\x05ERROR\x07go away")
            .await
            .unwrap();
        stream.shutdown().await.unwrap();
        drop(stream);

        // Ten reconnect intervals without a new connection: a retry would have come by then.
        let retry = timeout(RECONNECT_IVL * 10, listener.accept()).await;
        assert!(retry.is_err(), "ferromq reconnected after the peer's ERROR");
        push.close().await;
    })
    .await
    .unwrap();
}
