//! inproc://: sockets of one process linked without the kernel. Bind and connect in either
//! order, every socket type, the same HWM and pattern rules as tcp, frames passed without a
//! copy, across runtimes and threads.

use bytes::Bytes;
use ferromq::{
    Dealer, Error, Message, Pair, Pub, Pull, Push, Rep, Req, Router, SendError, SocketOptions, Sub,
    XPub, XSub,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A name no other test of this process uses.
fn name(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("inproc://{tag}-{n}")
}

fn options() -> ferromq::SocketOptionsBuilder {
    SocketOptions::builder()
}

async fn bounded<T>(test: impl std::future::Future<Output = T>) -> T {
    timeout(TEST_TIMEOUT, test).await.expect("timed out")
}

/// Lets every task that is ready run (the tests run on a current-thread runtime, so the
/// connection's task runs exactly when the test yields).
async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn push_pull_bind_then_connect_passes_the_frames_themselves() {
    bounded(async {
        let endpoint = name("bind-first");
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        let push = Push::new();
        push.connect(&endpoint).unwrap();
        assert_eq!(push.peer_count(), 1, "an inproc connect links at once");
        let payload = Bytes::from(vec![7u8; 4096]);
        push.send(payload.clone()).await.unwrap();
        let got = pull.recv().await.unwrap();
        assert_eq!(got.frames()[0], payload);
        assert_eq!(
            got.frames()[0].as_ptr(),
            payload.as_ptr(),
            "the frame was copied"
        );
        assert_eq!(
            got.peer_address(),
            None,
            "inproc messages carry no properties"
        );
    })
    .await;
}

#[tokio::test]
async fn connect_before_bind_links_when_the_name_is_bound() {
    bounded(async {
        let endpoint = name("connect-first");
        let push = Push::new();
        push.connect(&endpoint).unwrap();
        assert_eq!(push.peer_count(), 0);
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        assert_eq!(push.peer_count(), 1);
        push.send("late bind").await.unwrap();
        assert_eq!(pull.recv().await.unwrap().frames()[0], "late bind");
    })
    .await;
}

#[tokio::test]
async fn immediate_off_queues_before_the_name_is_bound() {
    bounded(async {
        let endpoint = name("queued");
        let push = Push::with_options(options().immediate(false).build().unwrap()).unwrap();
        push.connect(&endpoint).unwrap();
        for i in 0..3 {
            push.try_send(format!("m{i}"))
                .expect("queued for the pending peer");
        }
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        for i in 0..3 {
            assert_eq!(pull.recv().await.unwrap().frames()[0], format!("m{i}"));
        }
    })
    .await;
}

#[tokio::test]
async fn multipart_messages_arrive_whole_and_in_order() {
    bounded(async {
        let endpoint = name("multipart");
        let push = Push::new();
        push.bind(&endpoint).unwrap();
        let pull = Pull::new();
        pull.connect(&endpoint).unwrap();
        for i in 0..1000u32 {
            let message: Message = [Bytes::from(i.to_be_bytes().to_vec()), Bytes::new()]
                .into_iter()
                .collect();
            push.send(message).await.unwrap();
        }
        for i in 0..1000u32 {
            let got = pull.recv().await.unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got.frames()[0], i.to_be_bytes()[..]);
        }
    })
    .await;
}

#[tokio::test]
async fn req_rep_round_trips_both_binding_directions() {
    bounded(async {
        for rep_binds in [true, false] {
            let endpoint = name("reqrep");
            let (req, rep) = (Req::new(), Rep::new());
            if rep_binds {
                rep.bind(&endpoint).unwrap();
                req.connect(&endpoint).unwrap();
            } else {
                req.bind(&endpoint).unwrap();
                rep.connect(&endpoint).unwrap();
            }
            for i in 0..100 {
                req.send(format!("q{i}")).await.unwrap();
                let q = rep.recv().await.unwrap();
                assert_eq!(q.frames(), [format!("q{i}")]);
                rep.send(format!("a{i}")).await.unwrap();
                assert_eq!(req.recv().await.unwrap().frames(), [format!("a{i}")]);
            }
        }
    })
    .await;
}

#[tokio::test]
async fn router_routes_by_the_dealers_routing_id() {
    bounded(async {
        let endpoint = name("router");
        let router = Router::new();
        router.bind(&endpoint).unwrap();
        let dealer = Dealer::with_options(
            options()
                .routing_id(Bytes::from_static(b"worker-1"))
                .build()
                .unwrap(),
        )
        .unwrap();
        dealer.connect(&endpoint).unwrap();
        dealer.send("ready").await.unwrap();
        let got = router.recv().await.unwrap();
        assert_eq!(got.frames(), [&b"worker-1"[..], b"ready"]);
        router
            .send(Message::from_iter(["worker-1", "job"]))
            .await
            .unwrap();
        assert_eq!(dealer.recv().await.unwrap().frames(), ["job"]);
        assert!(
            router
                .routing_ids()
                .contains(&Bytes::from_static(b"worker-1"))
        );
    })
    .await;
}

#[tokio::test]
async fn sub_receives_only_what_it_subscribed_to() {
    bounded(async {
        let endpoint = name("pubsub");
        let publisher = Pub::new();
        publisher.bind(&endpoint).unwrap();
        let sub = Sub::new();
        sub.connect(&endpoint).unwrap();
        sub.subscribe("a");
        // The subscription reaches the publisher through the connection's task.
        settle().await;
        for topic in ["b1", "a1", "b2", "a2"] {
            publisher.send(topic).await.unwrap();
        }
        assert_eq!(sub.recv().await.unwrap().frames(), ["a1"]);
        assert_eq!(sub.recv().await.unwrap().frames(), ["a2"]);
        assert!(matches!(sub.try_recv(), Err(Error::WouldBlock)));
    })
    .await;
}

#[tokio::test]
async fn xpub_sees_subscriptions_and_cancellations() {
    bounded(async {
        let endpoint = name("xpub");
        let xpub = XPub::new();
        xpub.bind(&endpoint).unwrap();
        let xsub = XSub::new();
        xsub.connect(&endpoint).unwrap();
        xsub.send(&b"\x01news"[..]).await.unwrap();
        assert_eq!(xpub.recv().await.unwrap().frames(), [&b"\x01news"[..]]);
        xpub.send("news!").await.unwrap();
        assert_eq!(xsub.recv().await.unwrap().frames(), ["news!"]);
        xsub.send(&b"\x00news"[..]).await.unwrap();
        assert_eq!(xpub.recv().await.unwrap().frames(), [&b"\x00news"[..]]);
    })
    .await;
}

#[tokio::test]
async fn pair_takes_one_peer_only() {
    bounded(async {
        let endpoint = name("pair");
        let (a, b, c) = (Pair::new(), Pair::new(), Pair::new());
        a.bind(&endpoint).unwrap();
        b.connect(&endpoint).unwrap();
        c.connect(&endpoint).unwrap();
        assert_eq!(a.peer_count(), 1);
        assert_eq!(c.peer_count(), 0, "a second PAIR peer was linked");
        b.send("ping").await.unwrap();
        assert_eq!(a.recv().await.unwrap().frames(), ["ping"]);
        a.send("pong").await.unwrap();
        assert_eq!(b.recv().await.unwrap().frames(), ["pong"]);
    })
    .await;
}

#[tokio::test]
async fn incompatible_socket_types_are_not_linked() {
    bounded(async {
        let endpoint = name("incompatible");
        let publisher = Pub::new();
        publisher.bind(&endpoint).unwrap();
        let push = Push::new();
        push.connect(&endpoint).unwrap();
        assert_eq!(push.peer_count(), 0);
        assert_eq!(publisher.peer_count(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_connection_holds_the_senders_sndhwm_plus_the_receivers_rcvhwm() {
    bounded(async {
        let endpoint = name("hwm");
        let pull = Pull::with_options(options().rcvhwm(6).build().unwrap()).unwrap();
        pull.bind(&endpoint).unwrap();
        let push = Push::with_options(options().sndhwm(4).build().unwrap()).unwrap();
        push.connect(&endpoint).unwrap();
        let mut sent = 0;
        loop {
            while push.try_send(format!("{sent}")).is_ok() {
                sent += 1;
            }
            settle().await;
            match push.try_send(format!("{sent}")) {
                Ok(()) => sent += 1,
                Err(SendError {
                    error: Error::WouldBlock,
                    ..
                }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(sent, 4 + 6);
        for i in 0..sent {
            assert_eq!(pull.recv().await.unwrap().frames(), [format!("{i}")]);
        }
    })
    .await;
}

#[tokio::test]
async fn a_new_bind_of_the_name_relinks_the_connectors() {
    bounded(async {
        let endpoint = name("rebind");
        let push = Push::new();
        push.connect(&endpoint).unwrap();
        let first = Pull::new();
        first.bind(&endpoint).unwrap();
        push.send("one").await.unwrap();
        assert_eq!(first.recv().await.unwrap().frames(), ["one"]);
        first.close().await;
        // Bound once again while the old connection may still be ending: the name is free.
        let second = Pull::new();
        second.bind(&endpoint).unwrap();
        settle().await;
        push.send("two").await.unwrap();
        assert_eq!(second.recv().await.unwrap().frames(), ["two"]);
    })
    .await;
}

#[tokio::test]
async fn binding_a_bound_name_fails_until_it_is_unbound() {
    bounded(async {
        let endpoint = name("in-use");
        let (first, second) = (Pull::new(), Pull::new());
        first.bind(&endpoint).unwrap();
        match second.bind(&endpoint) {
            Err(Error::Io(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
                assert!(e.to_string().contains(&endpoint), "{e}");
            }
            other => panic!("expected AddrInUse, got {other:?}"),
        }
        first.unbind(&endpoint).unwrap();
        second.bind(&endpoint).unwrap();
    })
    .await;
}

#[tokio::test]
async fn close_delivers_what_the_sender_queued_within_the_linger() {
    bounded(async {
        let endpoint = name("linger");
        let pull = Pull::with_options(options().rcvhwm(2).build().unwrap()).unwrap();
        pull.bind(&endpoint).unwrap();
        let push = Push::new();
        push.connect(&endpoint).unwrap();
        for i in 0..50 {
            push.send(format!("{i}")).await.unwrap();
        }
        let closing = tokio::spawn(async move { push.close().await });
        for i in 0..50 {
            assert_eq!(pull.recv().await.unwrap().frames(), [format!("{i}")]);
        }
        closing.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_closed_receiver_unlinks_the_sender() {
    bounded(async {
        let endpoint = name("receiver-gone");
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        // `immediate` on: with it off the connected endpoint keeps a slot that queues for
        // the next bind of the name (`immediate_off_queues_before_the_name_is_bound`).
        let options = options()
            .immediate(true)
            .send_timeout(Duration::from_millis(50))
            .build()
            .unwrap();
        let push = Push::with_options(options).unwrap();
        push.connect(&endpoint).unwrap();
        pull.close().await;
        while push.peer_count() > 0 {
            tokio::task::yield_now().await;
        }
        let failed = push.send("nobody").await.unwrap_err();
        assert!(matches!(failed.error, Error::Timeout(_)), "{failed:?}");
        assert_eq!(failed.message.frames(), ["nobody"]);
    })
    .await;
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sockets_on_different_runtimes_and_threads_talk() {
    let endpoint = name("threads");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let receiver = {
        let endpoint = endpoint.clone();
        std::thread::spawn(move || {
            let rt = current_thread_runtime();
            rt.block_on(bounded(async {
                let pull = Pull::new();
                pull.bind(&endpoint).unwrap();
                ready_tx.send(()).unwrap();
                for i in 0..10_000u32 {
                    let got = pull.recv().await.unwrap();
                    assert_eq!(got.frames()[0], i.to_be_bytes()[..]);
                }
            }));
        })
    };
    ready_rx.recv().unwrap();
    let rt = multi_thread_runtime();
    rt.block_on(bounded(async {
        let push = Push::new();
        push.connect(&endpoint).unwrap();
        for i in 0..10_000u32 {
            push.send(i.to_be_bytes().to_vec()).await.unwrap();
        }
        push.close().await;
    }));
    receiver.join().unwrap();
}

#[test]
fn blocking_sockets_talk_over_inproc() {
    let endpoint = name("blocking");
    let rep = ferromq::blocking::Rep::new();
    rep.bind(&endpoint).unwrap();
    let req = ferromq::blocking::Req::new();
    req.connect(&endpoint).unwrap();
    let server = std::thread::spawn(move || {
        let q = rep.recv().unwrap();
        rep.send(q).unwrap();
    });
    req.send("echo").unwrap();
    assert_eq!(req.recv().unwrap().frames(), ["echo"]);
    server.join().unwrap();
}

#[tokio::test]
async fn stats_count_inproc_traffic() {
    bounded(async {
        let endpoint = name("stats");
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        let push = Push::new();
        push.connect(&endpoint).unwrap();
        for _ in 0..10 {
            push.send(vec![0u8; 100]).await.unwrap();
        }
        for _ in 0..10 {
            pull.recv().await.unwrap();
        }
        let (sent, received) = (push.stats(), pull.stats());
        assert_eq!((sent.messages_out, sent.bytes_out), (10, 1000));
        assert_eq!((received.messages_in, received.bytes_in), (10, 1000));
        assert_eq!(received.peers.len(), 1);
        assert_eq!(received.peers[0].endpoint.to_string(), endpoint);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_closing_sender_gives_up_on_a_full_receiver_when_the_linger_ends() {
    bounded(async {
        let endpoint = name("linger-ends");
        let pull = Pull::with_options(options().rcvhwm(2).build().unwrap()).unwrap();
        pull.bind(&endpoint).unwrap();
        let push = Push::with_options(
            options()
                .sndhwm(10)
                .linger(Some(Duration::from_secs(5)))
                .build()
                .unwrap(),
        )
        .unwrap();
        push.connect(&endpoint).unwrap();
        for i in 0..12 {
            push.try_send(format!("{i}"))
                .expect("room for SNDHWM + RCVHWM");
        }
        let started = tokio::time::Instant::now();
        // Nobody reads: the connection's task holds on for the linger period, then ends.
        push.close().await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        for i in 0..2 {
            assert_eq!(pull.recv().await.unwrap().frames(), [format!("{i}")]);
        }
        assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
    })
    .await;
}

/// A blocking PULL bound to a fresh name and a PUSH connected to it.
fn blocking_push_pull(tag: &str) -> (ferromq::blocking::Pull, ferromq::blocking::Push) {
    let endpoint = name(tag);
    let pull = ferromq::blocking::Pull::new();
    pull.bind(&endpoint).unwrap();
    let push = ferromq::blocking::Push::new();
    push.connect(&endpoint).unwrap();
    (pull, push)
}

#[test]
fn a_blocking_poller_wakes_for_inproc_messages() {
    use ferromq::blocking::{Interest, Poller};
    let (pull, push) = blocking_push_pull("poller");
    let mut poller = Poller::new();
    poller.add(&pull, Interest::READABLE);
    assert!(poller.poll(Some(Duration::ZERO)).unwrap().is_empty());
    let sender = std::thread::spawn(move || push.send("wake").unwrap());
    let events = poller.poll(Some(TEST_TIMEOUT)).unwrap();
    assert_eq!(events.len(), 1, "the poll timed out");
    assert!(events[0].readable);
    assert_eq!(pull.try_recv().unwrap().frames(), ["wake"]);
    sender.join().unwrap();
}

#[tokio::test]
async fn close_delivers_to_a_name_bound_within_the_linger() {
    bounded(async {
        let endpoint = name("bound-after-close");
        let push = Push::with_options(
            options()
                .linger(Some(Duration::from_secs(20)))
                .build()
                .unwrap(),
        )
        .unwrap();
        push.connect(&endpoint).unwrap();
        for i in 0..3 {
            push.try_send(format!("{i}")).expect("queued for the name");
        }
        let closing = tokio::spawn(async move { push.close().await });
        settle().await;
        assert!(!closing.is_finished(), "close dropped what was queued");
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        for i in 0..3 {
            assert_eq!(pull.recv().await.unwrap().frames(), [format!("{i}")]);
        }
        closing.await.unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn close_gives_up_on_a_name_nobody_binds_when_the_linger_ends() {
    bounded(async {
        let endpoint = name("never-bound");
        let push = Push::with_options(
            options()
                .linger(Some(Duration::from_secs(5)))
                .build()
                .unwrap(),
        )
        .unwrap();
        push.connect(&endpoint).unwrap();
        push.try_send("lost").unwrap();
        let started = tokio::time::Instant::now();
        push.close().await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        // The name, bound now, links nothing that could still deliver.
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        assert_eq!(pull.peer_count(), 0);
        assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
    })
    .await;
}

#[tokio::test]
async fn close_with_zero_linger_drops_what_waits_for_an_unbound_name() {
    bounded(async {
        let endpoint = name("zero-linger");
        let push =
            Push::with_options(options().linger(Some(Duration::ZERO)).build().unwrap()).unwrap();
        push.connect(&endpoint).unwrap();
        push.try_send("dropped").unwrap();
        push.close().await;
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        assert_eq!(pull.peer_count(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_receiver_holding_messages_takes_what_follows_its_last_in_one_step() {
    bounded(async {
        let endpoint = name("batch");
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        let push = Push::new();
        push.connect(&endpoint).unwrap();
        let delivered = |pull: &Pull| pull.stats().messages_in;
        let queued_at_sender = |push: &Push| push.stats().peers[0].queued_out;
        // Nothing else runs on this current-thread runtime while the test does not yield.
        push.send("0").await.unwrap();
        assert_eq!(
            delivered(&pull),
            1,
            "a hungry receiver takes a message at once"
        );
        for i in 1..5 {
            push.send(format!("{i}")).await.unwrap();
        }
        assert_eq!(
            (delivered(&pull), queued_at_sender(&push)),
            (2, 3),
            "once the receiver holds two, sends only queue"
        );
        for i in 0..2 {
            assert_eq!(pull.recv().await.unwrap().frames(), [format!("{i}")]);
        }
        assert_eq!(
            delivered(&pull),
            2,
            "nothing moved while the receiver held some"
        );
        assert_eq!(pull.recv().await.unwrap().frames(), ["2"]);
        assert_eq!(
            (delivered(&pull), queued_at_sender(&push)),
            (5, 0),
            "the receive after the last held message took the whole queue"
        );
        for i in 3..5 {
            assert_eq!(pull.recv().await.unwrap().frames(), [format!("{i}")]);
        }
        push.send("5").await.unwrap();
        assert_eq!(delivered(&pull), 6, "hungry again once all was read");
        assert_eq!(pull.recv().await.unwrap().frames(), ["5"]);
    })
    .await;
}

#[test]
fn a_poller_sees_what_was_queued_behind_the_last_message_read() {
    use ferromq::blocking::{Interest, Poller};
    let (pull, push) = blocking_push_pull("poll-queued");
    for i in 0..3 {
        push.send(format!("{i}")).unwrap();
    }
    let mut poller = Poller::new();
    poller.add(&pull, Interest::READABLE);
    for i in 0..3 {
        let events = poller.poll(Some(TEST_TIMEOUT)).unwrap();
        assert_eq!(events.len(), 1, "the poll timed out before message {i}");
        assert_eq!(pull.try_recv().unwrap().frames(), [format!("{i}")]);
    }
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
}

/// Bursts of every length from 1 to 40 between threads, each answered before the next, so
/// that the receiver runs dry and waits, and the sender finds it waiting or still busy, at
/// every point of a hand-over: a missed wake-up hangs the test.
#[test]
fn bursts_between_threads_never_strand_a_message() {
    const ROUNDS: usize = 400;
    let (data, acks) = (name("bursts"), name("bursts-ack"));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let receiver = {
        let (data, acks) = (data.clone(), acks.clone());
        std::thread::spawn(move || {
            let rt = current_thread_runtime();
            rt.block_on(bounded(async {
                let pull = Pull::new();
                pull.bind(&data).unwrap();
                let ack = Push::new();
                ack.bind(&acks).unwrap();
                ready_tx.send(()).unwrap();
                for round in 0..ROUNDS {
                    for i in 0..=round % 40 {
                        let got = pull.recv().await.unwrap();
                        assert_eq!(got.frames(), [format!("{round}.{i}")]);
                    }
                    ack.send(format!("{round}")).await.unwrap();
                }
            }));
        })
    };
    ready_rx.recv().unwrap();
    let rt = multi_thread_runtime();
    rt.block_on(bounded(async {
        let push = Push::new();
        push.connect(&data).unwrap();
        let acked = Pull::new();
        acked.connect(&acks).unwrap();
        for round in 0..ROUNDS {
            for i in 0..=round % 40 {
                push.send(format!("{round}.{i}")).await.unwrap();
            }
            assert_eq!(acked.recv().await.unwrap().frames(), [format!("{round}")]);
        }
    }));
    receiver.join().unwrap();
}
