//! Linger: what happens to messages still queued when a socket closes. `close().await` with
//! the default (wait forever) delivers them to a peer that only starts reading afterwards;
//! `linger: Some(ZERO)` drops them; dropping the socket without `close` still delivers them
//! in the background while the runtime lives.

use ferromq::{Error, Push, SocketOptions};
use std::sync::mpsc;
use std::time::Duration;
use tokio::task::{JoinHandle, spawn_blocking};
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const MSG_BYTES: usize = 16 * 1024;
/// Small kernel buffers on both ends, so most of what is queued stays in ferromq's queue
/// instead of disappearing into the kernel at the first write.
const KERNEL_BUF_BYTES: usize = 16 * 1024;
/// How long the libzmq reader waits for one more message before deciding the stream ended.
const END_OF_STREAM_MS: i32 = 500;

/// A libzmq PULL that has accepted the handshake but reads nothing until told to go; then it
/// counts the messages it gets (checking their order) until the stream goes quiet.
struct SlowPeer {
    endpoint: String,
    go: mpsc::Sender<()>,
    received: JoinHandle<usize>,
}

fn slow_peer() -> SlowPeer {
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.set_rcvhwm(1).unwrap();
    pull.set_rcvbuf(KERNEL_BUF_BYTES as i32).unwrap();
    pull.set_linger(0).unwrap();
    pull.bind("tcp://127.0.0.1:0").unwrap();
    let endpoint = pull.get_last_endpoint().unwrap().unwrap();
    let (go, wait) = mpsc::channel();
    let received = spawn_blocking(move || {
        wait.recv().unwrap();
        pull.set_rcvtimeo(END_OF_STREAM_MS).unwrap();
        let mut count = 0usize;
        while let Ok(message) = pull.recv_bytes(0) {
            assert_eq!(message[..8], (count as u64).to_be_bytes(), "out of order");
            count += 1;
        }
        drop(ctx);
        count
    });
    SlowPeer {
        endpoint,
        go,
        received,
    }
}

fn message(index: usize) -> Vec<u8> {
    let mut body = vec![0u8; MSG_BYTES];
    body[..8].copy_from_slice(&(index as u64).to_be_bytes());
    body
}

/// A PUSH connected to a fresh slow peer, with as many messages queued as the socket takes
/// without waiting (nothing has been written yet: the connection task has not run since, and
/// may not even have connected: with `immediate` off, the default, the endpoint takes
/// messages from `connect` on; the close then keeps connecting for them, as libzmq does).
async fn push_with_queue(linger: Option<Duration>) -> (Push, SlowPeer, usize) {
    let peer = slow_peer();
    let mut options = SocketOptions::default();
    options.linger = linger;
    options.sndbuf = Some(KERNEL_BUF_BYTES);
    let push = Push::with_options(options).unwrap();
    push.connect(peer.endpoint.as_str()).unwrap();
    // These queue until the PUSH pushes back (HWM or bytes queued).
    push.send(message(0)).await.unwrap();
    let mut queued = 1;
    loop {
        match push.try_send(message(queued)) {
            Ok(()) => queued += 1,
            Err(e) if matches!(e.error, Error::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        queued * MSG_BYTES > 4 * KERNEL_BUF_BYTES,
        "only {queued} messages queued: too few to outgrow the kernel buffers"
    );
    (push, peer, queued)
}

#[tokio::test]
async fn close_waits_until_a_slow_peer_has_everything() {
    timeout(TEST_TIMEOUT, async {
        let (push, peer, queued) = push_with_queue(None).await;
        let closing = tokio::spawn(async move { push.close().await });
        // The peer starts reading only once the close has begun.
        tokio::task::yield_now().await;
        peer.go.send(()).unwrap();
        closing.await.unwrap();
        assert_eq!(peer.received.await.unwrap(), queued);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn zero_linger_drops_queued_messages() {
    timeout(TEST_TIMEOUT, async {
        let (push, peer, queued) = push_with_queue(Some(Duration::ZERO)).await;
        // Returns even though the peer reads nothing.
        push.close().await;
        peer.go.send(()).unwrap();
        let received = peer.received.await.unwrap();
        assert!(
            received < queued,
            "all {queued} messages arrived despite zero linger"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn dropped_socket_still_delivers_in_the_background() {
    timeout(TEST_TIMEOUT, async {
        let (push, peer, queued) = push_with_queue(None).await;
        drop(push);
        peer.go.send(()).unwrap();
        // The runtime keeps running the connection task while we wait for the reader.
        assert_eq!(peer.received.await.unwrap(), queued);
    })
    .await
    .unwrap();
}
