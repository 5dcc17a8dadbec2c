//! Lifecycle calls take effect before they return: after `disconnect` or `unbind` no send
//! picks the endpoint's peers, the port is free and the ipc path belongs to whoever binds it
//! next; a socket shared through `Arc` can be closed and wakes every task waiting in it;
//! cancelled calls leave nothing behind; zero intervals mean "off"; a frame no machine could
//! hold ends the connection at once.

mod raw_peer;

use ferromq::{Error, Pull, Push, SocketOptions};
use raw_peer::RawPeer;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::Duration;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Rounds of bind–release–rebind: the old races lost about one round in a few.
const REBIND_ROUNDS: usize = 50;

fn ipc_path(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "/tmp/ferromq-lifecycle-{tag}-{}-{n}.sock",
        std::process::id()
    )
}

/// Sends a probe from `push` and receives it on `pull`: afterwards `push` has `pull`'s
/// connection attached.
async fn probe(push: &Push, pull: &Pull) {
    push.send("probe").await.expect("send probe");
    assert_eq!(pull.recv().await.expect("probe").frames()[0], "probe");
}

fn would_block(push: &Push) -> bool {
    matches!(
        push.try_send("after"),
        Err(ferromq::SendError {
            error: Error::WouldBlock,
            ..
        })
    )
}

#[tokio::test]
async fn send_after_disconnect_never_picks_the_disconnected_peer() {
    timeout(TEST_TIMEOUT, async {
        let pull = Pull::new();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let push = Push::new();
        push.connect(&endpoint).unwrap();
        probe(&push, &pull).await;
        push.disconnect(&endpoint).unwrap();
        assert!(would_block(&push), "a send chose the disconnected peer");
        assert_eq!(push.peer_count(), 0);
    })
    .await
    .expect("timed out");
}

#[tokio::test]
async fn send_after_unbind_never_picks_a_peer_of_that_endpoint() {
    timeout(TEST_TIMEOUT, async {
        let push = Push::new();
        let endpoint = push.bind("tcp://127.0.0.1:0").unwrap();
        let pull = Pull::new();
        pull.connect(&endpoint).unwrap();
        probe(&push, &pull).await;
        push.unbind(&endpoint).unwrap();
        assert!(
            would_block(&push),
            "a send chose a peer of the unbound endpoint"
        );
    })
    .await
    .expect("timed out");
}

#[tokio::test]
async fn sends_after_disconnect_go_to_the_remaining_peer_and_queued_ones_still_arrive() {
    timeout(TEST_TIMEOUT, async {
        let (gone, stays) = (Pull::new(), Pull::new());
        let gone_ep = gone.bind("tcp://127.0.0.1:0").unwrap();
        let stays_ep = stays.bind("tcp://127.0.0.1:0").unwrap();
        let push = Push::new();
        push.connect(&gone_ep).unwrap();
        probe(&push, &gone).await;
        push.connect(&stays_ep).unwrap();
        // Round robin now alternates; wait until the second peer has one.
        loop {
            push.send("probe").await.unwrap();
            if timeout(Duration::from_millis(50), stays.recv())
                .await
                .is_ok()
            {
                break;
            }
            gone.recv().await.unwrap();
        }
        // Whatever was queued for `gone` before the disconnect is still written (linger).
        push.send("queued").await.unwrap();
        push.send("queued").await.unwrap();
        push.disconnect(&gone_ep).unwrap();
        for i in 0..100 {
            push.send(format!("after {i}")).await.unwrap();
        }
        let mut to_gone = Vec::new();
        while let Ok(m) = gone.try_recv() {
            to_gone.push(m);
        }
        let mut after = 0;
        while after < 100 {
            let m = stays.recv().await.unwrap();
            if m.frames()[0].starts_with(b"after") {
                after += 1;
            }
        }
        while let Ok(m) = gone.try_recv() {
            to_gone.push(m);
        }
        assert!(
            to_gone.iter().all(|m| !m.frames()[0].starts_with(b"after")),
            "a message sent after disconnect went to the disconnected peer"
        );
    })
    .await
    .expect("timed out");
}

/// Closes, drops or unbinds a bound PULL and binds a new one on the same ipc path at once:
/// the new one must be reachable every time.
async fn rebind_ipc_reaches_the_new_server(release: impl AsyncFn(Pull, &str)) {
    for _ in 0..REBIND_ROUNDS {
        let path = format!("ipc://{}", ipc_path("rebind"));
        let old = Pull::new();
        old.bind(&path).unwrap();
        release(old, &path).await;
        let new = Pull::new();
        new.bind(&path).unwrap();
        let push = Push::new();
        push.connect(&path).unwrap();
        push.send("to the new server").await.unwrap();
        let got = timeout(Duration::from_secs(5), new.recv()).await;
        assert!(got.is_ok(), "the new server on {path} is unreachable");
        new.close().await;
        push.close().await;
    }
}

#[tokio::test]
async fn ipc_path_rebound_after_close_reaches_the_new_server() {
    timeout(
        TEST_TIMEOUT,
        rebind_ipc_reaches_the_new_server(async |old, _| old.close().await),
    )
    .await
    .expect("timed out");
}

#[tokio::test]
async fn ipc_path_rebound_after_drop_reaches_the_new_server() {
    timeout(
        TEST_TIMEOUT,
        rebind_ipc_reaches_the_new_server(async |old, _| drop(old)),
    )
    .await
    .expect("timed out");
}

#[tokio::test]
async fn ipc_path_rebound_after_unbind_reaches_the_new_server() {
    timeout(
        TEST_TIMEOUT,
        rebind_ipc_reaches_the_new_server(async |old, path| old.unbind(path).unwrap()),
    )
    .await
    .expect("timed out");
}

#[tokio::test]
async fn unbind_frees_the_ipc_path_before_returning() {
    let path = ipc_path("unbind");
    let pull = Pull::new();
    pull.bind(format!("ipc://{path}")).unwrap();
    assert!(std::path::Path::new(&path).exists());
    pull.unbind(format!("ipc://{path}")).unwrap();
    assert!(
        !std::path::Path::new(&path).exists(),
        "socket file left behind"
    );
}

/// Binds a port, releases it with `release`, and binds the same port again at once.
async fn port_is_free_after(release: impl AsyncFn(Pull, &str)) {
    for _ in 0..REBIND_ROUNDS {
        let first = Pull::new();
        let endpoint = first.bind("tcp://127.0.0.1:0").unwrap().to_string();
        release(first, &endpoint).await;
        let second = Pull::new();
        second
            .bind(&endpoint)
            .unwrap_or_else(|e| panic!("{endpoint} still taken after release: {e}"));
    }
}

#[tokio::test]
async fn port_is_free_when_close_returns() {
    timeout(
        TEST_TIMEOUT,
        port_is_free_after(async |s, _| s.close().await),
    )
    .await
    .expect("timed out");
}

#[tokio::test]
async fn port_is_free_when_unbind_returns() {
    timeout(
        TEST_TIMEOUT,
        port_is_free_after(async |s, ep| s.unbind(ep).unwrap()),
    )
    .await
    .expect("timed out");
}

#[tokio::test]
async fn port_is_free_when_drop_returns() {
    timeout(TEST_TIMEOUT, port_is_free_after(async |s, _| drop(s)))
        .await
        .expect("timed out");
}

#[tokio::test]
async fn close_through_a_shared_reference_wakes_blocked_receivers() {
    timeout(TEST_TIMEOUT, async {
        let pull = Arc::new(Pull::new());
        pull.bind("tcp://127.0.0.1:0").unwrap();
        let receivers: Vec<_> = (0..4)
            .map(|_| {
                let pull = pull.clone();
                tokio::spawn(async move { pull.recv().await })
            })
            .collect();
        // Every receiver is parked before the close (a current-thread runtime runs them to
        // their first await when this task yields).
        tokio::task::yield_now().await;
        pull.close().await;
        for receiver in receivers {
            assert!(matches!(receiver.await.unwrap(), Err(Error::Closed)));
        }
        assert!(matches!(pull.recv().await, Err(Error::Closed)));
        assert!(matches!(pull.try_recv(), Err(Error::Closed)));
    })
    .await
    .expect("timed out");
}

#[tokio::test]
async fn close_through_a_shared_reference_fails_later_sends_with_the_message_back() {
    let push = Arc::new(Push::new());
    let closer = push.clone();
    tokio::spawn(async move { closer.close().await })
        .await
        .unwrap();
    let err = push.send("late").await.expect_err("closed");
    assert!(matches!(err.error, Error::Closed));
    assert_eq!(err.message.frames()[0], "late");
}

/// A waker that counts how many of its kind are alive.
struct CountedWaker(Arc<AtomicUsize>);

impl CountedWaker {
    fn waker(live: &Arc<AtomicUsize>) -> Waker {
        live.fetch_add(1, Ordering::SeqCst);
        Waker::from(Arc::new(CountedWaker(live.clone())))
    }
}

impl Wake for CountedWaker {
    fn wake(self: Arc<Self>) {}
}

impl Drop for CountedWaker {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn cancelled_receives_leave_no_waker_behind() {
    const CANCELLED_CALLS: usize = 10_000;
    let pull = Pull::new();
    let live = Arc::new(AtomicUsize::new(0));
    for _ in 0..CANCELLED_CALLS {
        let waker = CountedWaker::waker(&live);
        let mut recv = Box::pin(pull.recv());
        assert!(
            recv.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        // The call is cancelled, as by select! or a timeout.
    }
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "cancelled receives left their wakers in the socket"
    );
}

#[tokio::test]
async fn cancelled_sends_leave_no_waker_behind() {
    const CANCELLED_CALLS: usize = 10_000;
    let push = Push::new();
    let live = Arc::new(AtomicUsize::new(0));
    for _ in 0..CANCELLED_CALLS {
        let waker = CountedWaker::waker(&live);
        let mut send = Box::pin(push.send("no peer"));
        assert!(
            send.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
    }
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn recv_many_of_zero_returns_zero_at_once() {
    let pull = Pull::new();
    let mut out = Vec::new();
    let n = timeout(Duration::from_secs(5), pull.recv_many(&mut out, 0))
        .await
        .expect("recv_many(0) waited for a message")
        .unwrap();
    assert_eq!((n, out.len()), (0, 0));
}

/// A PUSH/PULL pair with `options` on both sides exchanges messages.
async fn pair_exchanges_messages(options: SocketOptions) {
    let pull = Pull::with_options(options.clone()).unwrap();
    let push = Push::with_options(options).unwrap();
    push.connect(pull.bind("tcp://127.0.0.1:0").unwrap())
        .unwrap();
    for i in 0..10 {
        push.send(format!("m{i}")).await.unwrap();
        assert_eq!(pull.recv().await.unwrap().frames()[0], format!("m{i}"));
    }
}

#[tokio::test]
async fn zero_handshake_interval_means_no_handshake_timeout() {
    let mut options = SocketOptions::default();
    options.handshake_ivl = Some(Duration::ZERO);
    timeout(TEST_TIMEOUT, pair_exchanges_messages(options))
        .await
        .expect("timed out: a zero handshake interval failed the handshake");
}

#[tokio::test]
async fn zero_heartbeat_interval_means_no_heartbeats() {
    let mut options = SocketOptions::default();
    options.heartbeat_ivl = Some(Duration::ZERO);
    options.heartbeat_timeout = Some(Duration::ZERO);
    options.heartbeat_ttl = Some(Duration::ZERO);
    timeout(TEST_TIMEOUT, pair_exchanges_messages(options))
        .await
        .expect("timed out");
}

#[tokio::test]
async fn zero_receive_timeout_fails_at_once() {
    let mut options = SocketOptions::default();
    options.recv_timeout = Some(Duration::ZERO);
    let pull = Pull::with_options(options).unwrap();
    assert!(matches!(
        pull.recv().await,
        Err(Error::Timeout(Duration::ZERO))
    ));
}

#[tokio::test]
async fn frame_longer_than_any_address_space_closes_the_connection_at_once() {
    timeout(TEST_TIMEOUT, async {
        let pull = Pull::new();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let addr = endpoint.to_string()["tcp://".len()..].parse().unwrap();
        let mut peer = RawPeer::handshaken(addr, "PUSH").await;
        // A data frame announcing 2^62 bytes, with a few of them.
        let mut frame = vec![0x02];
        frame.extend_from_slice(&(1u64 << 62).to_be_bytes());
        frame.extend_from_slice(b"some of it");
        peer.send(&frame).await.unwrap();
        peer.wait_closed().await;
    })
    .await
    .expect("the connection stayed open waiting for 2^62 bytes");
}

#[tokio::test]
async fn close_wakes_a_publisher_waiting_for_subscribers() {
    timeout(TEST_TIMEOUT, async {
        let publisher = Arc::new(ferromq::Pub::new());
        publisher.bind("tcp://127.0.0.1:0").unwrap();
        let waiter = publisher.clone();
        let waiting = tokio::spawn(async move { waiter.wait_for_subscribers(1).await });
        tokio::task::yield_now().await;
        publisher.close().await;
        assert!(matches!(waiting.await.unwrap(), Err(Error::Closed)));
    })
    .await
    .expect("timed out");
}
