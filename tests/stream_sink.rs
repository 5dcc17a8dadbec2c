//! Sockets as `futures::Stream` and `futures::Sink`, and receiving that survives
//! cancellation: `pull.next().await`, `SinkExt::send(&mut push, m).await`, every pattern.

use ferromq::{Dealer, Error, Message, Pub, Pull, Push, Rep, Req, Router, Sub};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn pull_is_a_stream_and_push_a_sink_in_order() {
    timeout(TEST_TIMEOUT, async {
        let mut pull = Pull::new();
        let mut push = Push::new();
        push.connect(pull.bind("tcp://127.0.0.1:0").unwrap())
            .unwrap();
        SinkExt::send(&mut push, Message::from("first"))
            .await
            .unwrap();
        let mut rest = futures::stream::iter((0..100).map(|i| Ok(Message::from(i.to_string()))));
        push.send_all(&mut rest).await.unwrap();
        assert_eq!(pull.next().await.unwrap().unwrap().frames(), ["first"]);
        for i in 0..100 {
            let message = pull.next().await.unwrap().unwrap();
            assert_eq!(message.frames()[0], i.to_string());
        }
        // A closed socket ends its stream.
        pull.close().await;
        assert!(pull.next().await.is_none());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn router_and_dealer_stream_and_sink_both_ways() {
    timeout(TEST_TIMEOUT, async {
        let mut router = Router::new();
        let mut dealer = Dealer::new();
        dealer
            .connect(router.bind("tcp://127.0.0.1:0").unwrap())
            .unwrap();
        SinkExt::send(&mut dealer, Message::from("ping"))
            .await
            .unwrap();
        let request = router.next().await.unwrap().unwrap();
        assert_eq!(request.frames()[1], "ping");
        let reply: Message = [request.frames()[0].clone(), "pong".into()]
            .into_iter()
            .collect();
        SinkExt::send(&mut router, reply).await.unwrap();
        assert_eq!(dealer.next().await.unwrap().unwrap().frames(), ["pong"]);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn pub_sink_and_sub_stream() {
    timeout(TEST_TIMEOUT, async {
        let mut publisher = Pub::new();
        let mut subscriber = Sub::new();
        subscriber.subscribe("a");
        subscriber
            .connect(publisher.bind("tcp://127.0.0.1:0").unwrap())
            .unwrap();
        publisher.wait_for_subscribers(1).await.unwrap();
        SinkExt::send(&mut publisher, Message::from("b-filtered"))
            .await
            .unwrap();
        SinkExt::send(&mut publisher, Message::from("a-kept"))
            .await
            .unwrap();
        assert_eq!(
            subscriber.next().await.unwrap().unwrap().frames(),
            ["a-kept"]
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn req_and_rep_as_sink_and_stream() {
    timeout(TEST_TIMEOUT, async {
        let mut rep = Rep::new();
        let mut req = Req::new();
        req.connect(rep.bind("tcp://127.0.0.1:0").unwrap()).unwrap();
        SinkExt::send(&mut req, Message::from("question"))
            .await
            .unwrap();
        let question = rep.next().await.unwrap().unwrap();
        assert_eq!(question.frames(), ["question"]);
        SinkExt::send(&mut rep, Message::from("answer"))
            .await
            .unwrap();
        assert_eq!(req.next().await.unwrap().unwrap().frames(), ["answer"]);
    })
    .await
    .unwrap();
}

/// A sink that cannot send hands the message back inside the error, as `send` does.
#[tokio::test]
async fn a_refused_sink_send_gives_the_message_back() {
    let mut req = Req::new();
    let failed = SinkExt::send(&mut req, Message::default())
        .await
        .expect_err("a message without frames cannot be sent");
    assert!(matches!(failed.error, Error::MalformedMessage(_)));
    assert!(failed.message.is_empty());
}

/// `recv` and `next` are cancel-safe: a call that `select!` drops before it completes takes
/// nothing with it, so every message still arrives, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receives_cancelled_by_select_lose_no_message() {
    const MESSAGES: u32 = 2_000;
    timeout(TEST_TIMEOUT, async {
        let mut pull = Pull::new();
        let push = Push::new();
        push.connect(pull.bind("tcp://127.0.0.1:0").unwrap())
            .unwrap();
        let sender = tokio::spawn(async move {
            for i in 0..MESSAGES {
                push.send(Message::from(i.to_string())).await.unwrap();
                if i % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            push
        });
        let (mut received, mut cancelled) = (0, 0u32);
        while received < MESSAGES {
            // Alternate the async method and the stream; the other branch is always ready
            // soon, so many receives are dropped half-way.
            let outcome = if received % 2 == 0 {
                tokio::select! {
                    message = pull.recv() => Some(message.unwrap()),
                    _ = tokio::task::yield_now() => None,
                }
            } else {
                tokio::select! {
                    message = pull.next() => Some(message.unwrap().unwrap()),
                    _ = tokio::task::yield_now() => None,
                }
            };
            match outcome {
                Some(message) => {
                    assert_eq!(message.frames()[0], received.to_string());
                    received += 1;
                }
                None => cancelled += 1,
            }
        }
        assert!(
            cancelled > 0,
            "no receive was cancelled: the test proved nothing"
        );
        sender.await.unwrap().close().await;
    })
    .await
    .unwrap();
}
