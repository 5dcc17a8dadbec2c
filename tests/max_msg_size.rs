//! A receiver's `max_msg_size` is known to the sender (ferromq announces it in its READY as
//! `X-Max-Msg-Size`; an inproc peer knows it directly): a message the peer would refuse, and
//! drop the connection for, fails at the sender with `Error::MessageTooLarge` and comes back.
//! Peers that announce nothing (libzmq) take any size, as before. (The limits here stay
//! above the size of a READY command, which the limit covers too, as libzmq's does.)

mod common;

use bytes::Bytes;
use ferromq::{Dealer, Error, Message, Pub, Pull, Push, Router, SendError, SocketOptions, Sub};
use std::time::Duration;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);

fn limited(max: u64) -> SocketOptions {
    SocketOptions::builder()
        .max_msg_size(Some(max))
        .build()
        .unwrap()
}

fn too_large(result: Result<(), SendError>) -> (u64, u64, Message) {
    match result {
        Err(SendError {
            error: Error::MessageTooLarge { size, limit },
            message,
        }) => (size, limit, message),
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn push_fails_a_message_larger_than_every_peer_accepts() {
    timeout(TEST_TIMEOUT, async {
        for endpoint in ["tcp://127.0.0.1:0", "inproc://max-size-push"] {
            let pull = Pull::with_options(limited(100)).unwrap();
            let endpoint = pull.bind(endpoint).unwrap();
            let push = Push::new();
            push.connect(&endpoint).unwrap();
            // A message that fits goes (and, over tcp, waits for the handshake).
            push.send(vec![1u8; 100]).await.unwrap();
            assert_eq!(pull.recv().await.unwrap().frames()[0].len(), 100);
            let big = Bytes::from(vec![2u8; 101]);
            let (size, limit, back) = too_large(push.send(big.clone()).await);
            assert_eq!((size, limit), (101, 100), "{endpoint}");
            assert_eq!(back.frames(), [big]);
            // The connection is still up.
            push.send("after").await.unwrap();
            assert_eq!(pull.recv().await.unwrap().frames(), ["after"]);
        }
    })
    .await
    .expect("timed out");
}

#[tokio::test]
async fn round_robin_skips_a_peer_too_small_for_the_message() {
    timeout(TEST_TIMEOUT, async {
        let small = Pull::with_options(limited(64)).unwrap();
        let large = Pull::with_options(limited(1000)).unwrap();
        let push = Push::new();
        let mut monitor = push.monitor();
        for pull in [&small, &large] {
            let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
            push.connect(&endpoint).unwrap();
        }
        for _ in 0..2 {
            common::until_event(&mut monitor, "handshake_succeeded").await;
        }
        for _ in 0..10 {
            push.send(vec![0u8; 500]).await.unwrap();
        }
        for _ in 0..10 {
            assert_eq!(large.recv().await.unwrap().frames()[0].len(), 500);
        }
        push.send("small").await.unwrap();
        push.send("small").await.unwrap();
        assert_eq!(small.recv().await.unwrap().frames(), ["small"]);
    })
    .await
    .expect("timed out");
}

#[tokio::test]
async fn router_fails_a_reply_larger_than_the_dealer_accepts() {
    timeout(TEST_TIMEOUT, async {
        let router = Router::new();
        let endpoint = router.bind("tcp://127.0.0.1:0").unwrap();
        let dealer = Dealer::with_options(limited(64)).unwrap();
        dealer.connect(&endpoint).unwrap();
        dealer.send("hi").await.unwrap();
        let request = router.recv().await.unwrap();
        let id = request.frames()[0].clone();
        let reply: Message = [id.clone(), Bytes::from(vec![0u8; 65])]
            .into_iter()
            .collect();
        let (size, limit, back) = too_large(router.send(reply).await);
        assert_eq!((size, limit), (65, 64));
        assert_eq!(back.frames()[0], id);
        router
            .send(Message::from_iter([id, Bytes::from_static(b"short")]))
            .await
            .unwrap();
        assert_eq!(dealer.recv().await.unwrap().frames(), ["short"]);
    })
    .await
    .expect("timed out");
}

#[tokio::test]
async fn pub_drops_for_a_subscriber_too_small_and_delivers_to_the_rest() {
    timeout(TEST_TIMEOUT, async {
        let publisher = Pub::new();
        let endpoint = publisher.bind("tcp://127.0.0.1:0").unwrap();
        let small = Sub::with_options(limited(64)).unwrap();
        let large = Sub::new();
        for sub in [&small, &large] {
            sub.connect(&endpoint).unwrap();
            sub.subscribe("");
        }
        // Publish until both subscriptions arrived (the slow joiner), then once more.
        loop {
            publisher.send("sync").await.unwrap();
            if publisher.subscriber_count() == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        let big = Bytes::from(vec![b'x'; 100]);
        publisher.send(big.clone()).await.unwrap();
        publisher.send("end").await.unwrap();
        loop {
            let got = large.recv().await.unwrap();
            if got.frames() == std::slice::from_ref(&big) {
                break;
            }
        }
        loop {
            let got = small.recv().await.unwrap();
            assert_ne!(got.frames(), std::slice::from_ref(&big));
            if got.frames() == ["end"] {
                break;
            }
        }
        assert!(publisher.stats().dropped >= 1);
    })
    .await
    .expect("timed out");
}

#[test]
fn a_libzmq_peer_reads_our_ready_with_the_announced_size_and_announces_none() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        timeout(TEST_TIMEOUT, async {
            let context = zmq::Context::new();
            // libzmq sends to our limited PULL: the property in our READY is ignored.
            let pull = Pull::with_options(limited(100)).unwrap();
            let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
            let zmq_push = common::libzmq_socket(&context, zmq::PUSH);
            zmq_push.connect(&endpoint.to_string()).unwrap();
            zmq_push.send("from libzmq", 0).unwrap();
            assert_eq!(pull.recv().await.unwrap().frames(), ["from libzmq"]);
            // A libzmq PULL announces nothing: any size goes to it, as before.
            let zmq_pull = common::libzmq_socket(&context, zmq::PULL);
            zmq_pull.bind("tcp://127.0.0.1:*").unwrap();
            let zmq_endpoint = zmq_pull.get_last_endpoint().unwrap().unwrap();
            let push = Push::new();
            push.connect(&zmq_endpoint).unwrap();
            push.send(vec![3u8; 5000]).await.unwrap();
            let got = tokio::task::spawn_blocking(move || zmq_pull.recv_bytes(0).unwrap())
                .await
                .unwrap();
            assert_eq!(got.len(), 5000);
        })
        .await
        .expect("timed out");
    });
}

#[tokio::test]
async fn req_counts_its_request_id_frame_against_the_limit() {
    timeout(TEST_TIMEOUT, async {
        let rep = ferromq::Rep::with_options(limited(64)).unwrap();
        rep.bind("inproc://max-size-req").unwrap();
        let options = SocketOptions::builder()
            .req_correlate(true)
            .build()
            .unwrap();
        let req = ferromq::Req::with_options(options).unwrap();
        req.connect("inproc://max-size-req").unwrap();
        // 61 bytes of body and the 4-byte request id are 65: one over.
        let (size, limit, _) = too_large(req.send(vec![0u8; 61]).await);
        assert_eq!((size, limit), (65, 64));
        req.send(vec![0u8; 60]).await.unwrap();
        assert_eq!(rep.recv().await.unwrap().frames()[0].len(), 60);
    })
    .await
    .expect("timed out");
}
