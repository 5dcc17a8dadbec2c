//! The blocking API (`ferromq::blocking`) from plain threads, with no tokio runtime in the
//! test threads: every socket type round-trips, timeouts, the `Poller`, blocking calls made
//! inside a tokio runtime, sockets shared by several threads, interop with libzmq both ways,
//! and the blocking Guide examples.
//!
//! Every wait is bounded by a socket timeout ([`WAIT`]) and nothing sleeps to synchronise.

mod common;

use common::libzmq_socket;
use ferromq::blocking::{
    Dealer, Interest, Pair, Poller, Pub, Pull, Push, Rep, Req, Router, Sub, XPub, XSub,
};
use ferromq::{Error, Message, SendError, SocketOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../examples/hwserver.rs"]
mod hwserver;

#[allow(dead_code)]
#[path = "../examples/hwclient.rs"]
mod hwclient;

#[allow(dead_code)]
#[path = "../examples/mspoller.rs"]
mod mspoller;

/// The bound on every wait that is expected to succeed.
const WAIT: Duration = Duration::from_secs(20);
/// The timeout of calls that are expected to time out.
const SHORT: Duration = Duration::from_millis(50);
const LOCAL: &str = "tcp://127.0.0.1:0";

/// Options with [`WAIT`] as send and receive timeout and linger.
fn bounded() -> SocketOptions {
    timeouts(WAIT)
}

fn timeouts(t: Duration) -> SocketOptions {
    let mut options = SocketOptions::default();
    options.send_timeout = Some(t);
    options.recv_timeout = Some(t);
    options.linger = Some(WAIT);
    options
}

fn text(message: &Message) -> String {
    message
        .frames()
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect::<Vec<_>>()
        .join("|")
}

// ---------------------------------------------------------------------------------------------
// Every socket type

#[test]
fn push_pull_round_trip() {
    let pull = Pull::with_options(bounded()).unwrap();
    let push = Push::with_options(bounded()).unwrap();
    push.connect(pull.bind(LOCAL).unwrap()).unwrap();
    for i in 0..10 {
        push.send(format!("m{i}")).unwrap();
    }
    for i in 0..10 {
        assert_eq!(text(&pull.recv().unwrap()), format!("m{i}"));
    }
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn pub_sub_delivers_only_subscribed_topics() {
    let publisher = Pub::with_options(bounded()).unwrap();
    let subscriber = Sub::with_options(bounded()).unwrap();
    subscriber.subscribe("weather/");
    subscriber.connect(publisher.bind(LOCAL).unwrap()).unwrap();
    publisher.wait_for_subscribers(1, Some(WAIT)).unwrap();
    publisher.send("sports/final").unwrap();
    publisher
        .send(Message::from_iter(["weather/paris", "sunny"]))
        .unwrap();
    assert_eq!(text(&subscriber.recv().unwrap()), "weather/paris|sunny");
    assert_eq!(publisher.subscriber_count(), 1);
}

#[test]
fn xpub_xsub_round_trip_with_subscription_notifications() {
    let xpub = XPub::with_options(bounded()).unwrap();
    let xsub = XSub::with_options(bounded()).unwrap();
    xsub.connect(xpub.bind(LOCAL).unwrap()).unwrap();
    xsub.send(b"\x01news".to_vec()).unwrap();
    assert_eq!(&xpub.recv().unwrap().frames()[0][..], b"\x01news");
    xpub.send("news: hello").unwrap();
    xpub.send("other: dropped").unwrap();
    assert_eq!(text(&xsub.recv().unwrap()), "news: hello");
}

#[test]
fn req_rep_round_trips_in_lock_step() {
    let rep = Rep::with_options(bounded()).unwrap();
    let req = Req::with_options(bounded()).unwrap();
    req.connect(rep.bind(LOCAL).unwrap()).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..5 {
                let request = rep.recv().unwrap();
                rep.send(format!("re: {}", text(&request))).unwrap();
            }
        });
        for i in 0..5 {
            req.send(format!("q{i}")).unwrap();
            assert!(matches!(
                req.send("again"),
                Err(SendError {
                    error: Error::WrongState { .. },
                    ..
                })
            ));
            assert_eq!(text(&req.recv().unwrap()), format!("re: q{i}"));
        }
    });
}

#[test]
fn dealer_router_round_trip_by_routing_id() {
    let router = Router::with_options(bounded()).unwrap();
    let dealer = Dealer::with_options(bounded()).unwrap();
    dealer.connect(router.bind(LOCAL).unwrap()).unwrap();
    dealer.send("job").unwrap();
    let mut job = router.recv().unwrap();
    assert_eq!(job.len(), 2);
    assert_eq!(router.routing_ids(), vec![job.frames()[0].clone()]);
    job.pop_back();
    job.push_back("done");
    router.send(job).unwrap();
    assert_eq!(text(&dealer.recv().unwrap()), "done");
}

#[test]
fn pair_round_trip_both_ways() {
    let a = Pair::with_options(bounded()).unwrap();
    let b = Pair::with_options(bounded()).unwrap();
    b.connect(a.bind(LOCAL).unwrap()).unwrap();
    b.send("ping").unwrap();
    assert_eq!(text(&a.recv().unwrap()), "ping");
    a.send("pong").unwrap();
    assert_eq!(text(&b.recv().unwrap()), "pong");
}

// ---------------------------------------------------------------------------------------------
// Timeouts and close

#[test]
fn recv_times_out_with_the_socket_timeout() {
    let pull = Pull::with_options(timeouts(SHORT)).unwrap();
    pull.bind(LOCAL).unwrap();
    let started = Instant::now();
    assert!(matches!(pull.recv(), Err(Error::Timeout(t)) if t == SHORT));
    assert!(started.elapsed() >= SHORT);
}

#[test]
fn send_times_out_and_hands_the_message_back() {
    let push = Push::with_options(timeouts(SHORT)).unwrap();
    push.bind(LOCAL).unwrap(); // no peer: nowhere to send
    let message = Message::from_iter(["a", "b"]);
    match push.send(message.clone()) {
        Err(SendError {
            error: Error::Timeout(t),
            message: back,
        }) => {
            assert_eq!(t, SHORT);
            assert_eq!(back, message);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let req = Req::with_options(timeouts(SHORT)).unwrap();
    req.bind(LOCAL).unwrap();
    assert_eq!(
        req.send("q").unwrap_err().into_message(),
        Message::from("q")
    );
}

#[test]
fn close_waits_for_queued_messages_to_be_written() {
    let pull = Pull::with_options(bounded()).unwrap();
    let push = Push::with_options(bounded()).unwrap();
    push.connect(pull.bind(LOCAL).unwrap()).unwrap();
    for i in 0..100 {
        push.send(format!("m{i}")).unwrap();
    }
    push.close().unwrap();
    assert!(matches!(
        push.send("late"),
        Err(SendError {
            error: Error::Closed,
            ..
        })
    ));
    for i in 0..100 {
        assert_eq!(text(&pull.recv().unwrap()), format!("m{i}"));
    }
}

#[test]
fn close_from_another_thread_wakes_a_blocked_recv() {
    let pull = Pull::with_options(bounded()).unwrap();
    pull.bind(LOCAL).unwrap();
    let mut poller = Poller::new();
    poller.add(&pull, Interest::READABLE);
    std::thread::scope(|s| {
        let waiting = s.spawn(|| pull.recv());
        // The receiver may or may not be parked yet: either way it must end with Closed.
        pull.close().unwrap();
        assert!(matches!(waiting.join().unwrap(), Err(Error::Closed)));
    });
    // A closed socket is ready: its call fails at once.
    let events = poller.poll(Some(WAIT)).unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].readable);
}

// ---------------------------------------------------------------------------------------------
// Poller

#[test]
fn poller_reports_every_readable_socket_without_taking_messages() {
    let pulls: Vec<Pull> = (0..3)
        .map(|_| Pull::with_options(bounded()).unwrap())
        .collect();
    let pushes: Vec<Push> = pulls
        .iter()
        .map(|pull| {
            let push = Push::with_options(bounded()).unwrap();
            push.connect(pull.bind(LOCAL).unwrap()).unwrap();
            push
        })
        .collect();
    let quiet = Sub::with_options(bounded()).unwrap();
    quiet.bind(LOCAL).unwrap();

    let mut poller = Poller::new();
    let indexes: Vec<usize> = pulls
        .iter()
        .map(|p| poller.add(p, Interest::READABLE))
        .collect();
    let quiet_index = poller.add(&quiet, Interest::READABLE);
    assert_eq!(indexes, [0, 1, 2]);
    assert_eq!(quiet_index, 3);
    assert!(poller.poll(Some(Duration::ZERO)).unwrap().is_empty());

    pushes[0].send("zero").unwrap();
    pushes[2].send("two").unwrap();
    // Both become readable, perhaps not in the same poll.
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 2 {
        let events = poller.poll(Some(WAIT)).unwrap();
        assert!(!events.is_empty(), "poll timed out");
        for event in events {
            assert!(event.readable && !event.writable);
            seen.insert(event.index);
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [0, 2]);
    // Polling again reports them again: nothing was consumed.
    let again: Vec<usize> = poller
        .poll(Some(Duration::ZERO))
        .unwrap()
        .iter()
        .map(|e| e.index)
        .collect();
    assert_eq!(again, [0, 2]);
    assert_eq!(text(&pulls[0].try_recv().unwrap()), "zero");
    assert_eq!(text(&pulls[2].try_recv().unwrap()), "two");
    assert!(poller.poll(Some(Duration::ZERO)).unwrap().is_empty());
}

#[test]
fn poller_times_out_with_no_events() {
    let pull = Pull::with_options(bounded()).unwrap();
    let sub = Sub::with_options(bounded()).unwrap();
    pull.bind(LOCAL).unwrap();
    sub.bind(LOCAL).unwrap();
    let mut poller = Poller::new();
    poller.add(&pull, Interest::READABLE);
    poller.add(&sub, Interest::READABLE);
    let started = Instant::now();
    assert!(poller.poll(Some(SHORT)).unwrap().is_empty());
    assert!(started.elapsed() >= SHORT);
    let mut empty = Poller::new();
    assert!(empty.poll(Some(SHORT)).unwrap().is_empty());
}

#[test]
fn poller_writable_follows_peers_and_the_req_state_machine() {
    let push = Push::with_options(bounded()).unwrap();
    let req = Req::with_options(bounded()).unwrap();
    let publisher = Pub::with_options(bounded()).unwrap();
    let mut poller = Poller::new();
    let p = poller.add(&push, Interest::WRITABLE);
    let r = poller.add(&req, Interest::BOTH);
    let pb = poller.add(&publisher, Interest::WRITABLE | Interest::READABLE);
    // No peers: only the PUB (which never waits) is writable; it never is readable.
    let events = poller.poll(Some(Duration::ZERO)).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].index, events[0].readable, events[0].writable),
        (pb, false, true)
    );

    let pull = Pull::with_options(bounded()).unwrap();
    let rep = Rep::with_options(bounded()).unwrap();
    push.connect(pull.bind(LOCAL).unwrap()).unwrap();
    req.connect(rep.bind(LOCAL).unwrap()).unwrap();
    let mut rep_poller = Poller::new();
    rep_poller.add(&rep, Interest::BOTH);
    // Both get writable once their peer's handshake is done.
    let mut writable = std::collections::BTreeSet::new();
    while writable.len() < 2 {
        for event in poller.poll(Some(WAIT)).unwrap() {
            if event.index != pb {
                assert!(event.writable && !event.readable);
                writable.insert(event.index);
            }
        }
    }
    assert_eq!(writable.into_iter().collect::<Vec<_>>(), [p, r]);

    // A REP is neither readable nor writable until a request comes.
    assert!(rep_poller.poll(Some(Duration::ZERO)).unwrap().is_empty());
    req.send("q").unwrap();
    // The REQ now owes a receive: not writable, readable once the reply is here.
    let events = rep_poller.poll(Some(WAIT)).unwrap();
    assert_eq!((events[0].readable, events[0].writable), (true, false));
    assert_eq!(text(&rep.recv().unwrap()), "q");
    let events = rep_poller.poll(Some(Duration::ZERO)).unwrap();
    assert_eq!((events[0].readable, events[0].writable), (false, true));
    let req_events = |poller: &mut Poller, timeout| {
        poller
            .poll(timeout)
            .unwrap()
            .into_iter()
            .find(|e| e.index == r)
    };
    assert_eq!(req_events(&mut poller, Some(Duration::ZERO)), None);
    rep.send("a").unwrap();
    let event = req_events(&mut poller, Some(WAIT));
    let event = match event {
        Some(e) => e,
        // The PUB, always writable, may answer first: wait on the REQ alone.
        None => {
            let mut only_req = Poller::new();
            only_req.add(&req, Interest::BOTH);
            only_req.poll(Some(WAIT)).unwrap()[0]
        }
    };
    assert!(event.readable && !event.writable);
    assert_eq!(text(&req.recv().unwrap()), "a");
}

#[test]
fn poller_skips_sub_messages_no_longer_subscribed() {
    let publisher = Pub::with_options(bounded()).unwrap();
    let sub = Sub::with_options(bounded()).unwrap();
    sub.subscribe("a");
    sub.subscribe("b");
    sub.connect(publisher.bind(LOCAL).unwrap()).unwrap();
    publisher.wait_for_subscriptions(2, Some(WAIT)).unwrap();
    publisher.send("a1").unwrap();
    publisher.send("b1").unwrap();
    let mut poller = Poller::new();
    poller.add(&sub, Interest::READABLE);
    // Wait until both are queued: "b1" follows "a1" on one connection.
    assert_eq!(poller.poll(Some(WAIT)).unwrap().len(), 1);
    assert_eq!(text(&sub.recv().unwrap()), "a1");
    assert_eq!(poller.poll(Some(WAIT)).unwrap().len(), 1);
    sub.unsubscribe("b");
    // "b1" is queued but recv would discard it: not readable.
    assert!(poller.poll(Some(Duration::ZERO)).unwrap().is_empty());
    assert!(matches!(sub.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn poller_reports_what_an_inverted_sub_would_receive() {
    let mut options = bounded();
    options.invert_matching = true;
    let publisher = Pub::with_options(options.clone()).unwrap();
    let sub = Sub::with_options(options).unwrap();
    sub.subscribe("a");
    sub.connect(publisher.bind(LOCAL).unwrap()).unwrap();
    publisher.wait_for_subscriptions(1, Some(WAIT)).unwrap();
    // The inverted PUB sends only what does not match "a"; the inverted SUB receives it.
    publisher.send("a1").unwrap();
    publisher.send("b1").unwrap();
    let mut poller = Poller::new();
    poller.add(&sub, Interest::READABLE);
    assert_eq!(poller.poll(Some(WAIT)).unwrap().len(), 1);
    assert_eq!(text(&sub.recv().unwrap()), "b1");
}

// ---------------------------------------------------------------------------------------------
// Inside a tokio runtime

#[test]
fn blocking_calls_in_a_current_thread_runtime_fail_with_blocking_in_runtime() {
    let pull = Pull::with_options(bounded()).unwrap();
    let push = Push::with_options(bounded()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Calls that never wait work here.
        let endpoint = pull.bind(LOCAL).unwrap();
        push.connect(&endpoint).unwrap();
        assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
        let mut poller = Poller::new();
        poller.add(&pull, Interest::READABLE);
        assert!(poller.poll(Some(Duration::ZERO)).unwrap().is_empty());
        // Calls that may wait refuse, handing a message back.
        assert!(matches!(pull.recv(), Err(Error::BlockingInRuntime)));
        let refused = push.send("kept").unwrap_err();
        assert!(matches!(refused.error, Error::BlockingInRuntime));
        assert_eq!(refused.message, Message::from("kept"));
        assert!(matches!(
            poller.poll(Some(SHORT)),
            Err(Error::BlockingInRuntime)
        ));
    });
    // Outside the runtime the same sockets block as usual.
    push.send("after").unwrap();
    assert_eq!(text(&pull.recv().unwrap()), "after");
}

#[test]
fn blocking_calls_in_a_multi_thread_runtime_block_in_place() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pull = Pull::with_options(bounded()).unwrap();
    let endpoint = pull.bind(LOCAL).unwrap();
    runtime.block_on(async {
        // An async PUSH living in this runtime keeps running while the blocking PULL waits
        // on this runtime's block_on thread and on one of its workers.
        let push = ferromq::Push::new();
        push.connect(&endpoint).unwrap();
        push.send("one").await.unwrap();
        assert_eq!(text(&pull.recv().unwrap()), "one");
        let pull = std::sync::Arc::new(pull);
        let on_worker = {
            let pull = pull.clone();
            tokio::spawn(async move { pull.recv().map(|m| text(&m)) })
        };
        push.send("two").await.unwrap();
        assert_eq!(on_worker.await.unwrap().unwrap(), "two");
        let in_blocking_pool = {
            let pull = pull.clone();
            tokio::task::spawn_blocking(move || pull.recv().map(|m| text(&m)))
        };
        push.send("three").await.unwrap();
        assert_eq!(in_blocking_pool.await.unwrap().unwrap(), "three");
    });
}

// ---------------------------------------------------------------------------------------------
// Several threads

#[test]
fn one_socket_is_used_from_several_threads_at_once() {
    const SENDERS: usize = 4;
    const RECEIVERS: usize = 2;
    const EACH: usize = 200;
    let pull = Pull::with_options(bounded()).unwrap();
    let push = Push::with_options(bounded()).unwrap();
    push.connect(pull.bind(LOCAL).unwrap()).unwrap();
    let received = AtomicUsize::new(0);
    let mut all: Vec<String> = std::thread::scope(|s| {
        for t in 0..SENDERS {
            let push = &push;
            s.spawn(move || {
                for i in 0..EACH {
                    push.send(format!("{t}-{i:03}")).unwrap();
                }
            });
        }
        let receivers: Vec<_> = (0..RECEIVERS)
            .map(|_| {
                s.spawn(|| {
                    let mut got = Vec::new();
                    for _ in 0..SENDERS * EACH / RECEIVERS {
                        got.push(text(&pull.recv().unwrap()));
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    got
                })
            })
            .collect();
        receivers
            .into_iter()
            .flat_map(|r| r.join().unwrap())
            .collect()
    });
    assert_eq!(received.load(Ordering::Relaxed), SENDERS * EACH);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), SENDERS * EACH, "every message exactly once");
}

// ---------------------------------------------------------------------------------------------
// libzmq interop

#[test]
fn blocking_req_against_libzmq_rep() {
    let ctx = zmq::Context::new();
    let rep = libzmq_socket(&ctx, zmq::REP);
    rep.bind(LOCAL).unwrap();
    let endpoint = rep.get_last_endpoint().unwrap().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..3 {
                let request = rep.recv_multipart(0).unwrap();
                let mut reply = request.clone();
                reply.push(b"from libzmq".to_vec());
                rep.send_multipart(reply, 0).unwrap();
            }
        });
        let req = Req::with_options(bounded()).unwrap();
        req.connect(endpoint.as_str()).unwrap();
        for i in 0..3 {
            req.send(format!("q{i}")).unwrap();
            assert_eq!(text(&req.recv().unwrap()), format!("q{i}|from libzmq"));
        }
    });
}

#[test]
fn libzmq_req_against_blocking_rep() {
    let rep = Rep::with_options(bounded()).unwrap();
    let endpoint = rep.bind(LOCAL).unwrap().to_string();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..3 {
                let mut reply = rep.recv().unwrap();
                reply.push_back("from ferromq");
                rep.send(reply).unwrap();
            }
        });
        let ctx = zmq::Context::new();
        let req = libzmq_socket(&ctx, zmq::REQ);
        req.connect(&endpoint).unwrap();
        for i in 0..3 {
            req.send(format!("q{i}").as_str(), 0).unwrap();
            let reply = req.recv_multipart(0).unwrap();
            assert_eq!(
                reply,
                [format!("q{i}").into_bytes(), b"from ferromq".to_vec()]
            );
        }
    });
}

#[test]
fn blocking_push_binds_to_libzmq_pull() {
    let push = Push::with_options(bounded()).unwrap();
    let endpoint = push.bind(LOCAL).unwrap().to_string();
    let ctx = zmq::Context::new();
    let pull = libzmq_socket(&ctx, zmq::PULL);
    pull.connect(&endpoint).unwrap();
    for i in 0..100 {
        push.send(Message::from_iter([format!("m{i}"), "tail".into()]))
            .unwrap();
    }
    for i in 0..100 {
        let message = pull.recv_multipart(0).unwrap();
        assert_eq!(message, [format!("m{i}").into_bytes(), b"tail".to_vec()]);
    }
}

#[test]
fn libzmq_push_binds_to_blocking_pull_with_poller() {
    let ctx = zmq::Context::new();
    let push = libzmq_socket(&ctx, zmq::PUSH);
    push.bind(LOCAL).unwrap();
    let endpoint = push.get_last_endpoint().unwrap().unwrap();
    let pull = Pull::with_options(bounded()).unwrap();
    pull.connect(endpoint.as_str()).unwrap();
    for i in 0..100 {
        push.send(format!("m{i}").as_str(), 0).unwrap();
    }
    let mut poller = Poller::new();
    poller.add(&pull, Interest::READABLE);
    for i in 0..100 {
        assert_eq!(poller.poll(Some(WAIT)).unwrap().len(), 1);
        assert_eq!(text(&pull.try_recv().unwrap()), format!("m{i}"));
    }
}

// ---------------------------------------------------------------------------------------------
// The blocking Guide examples

#[test]
fn hwserver_demo_answers_ten_hellos() {
    assert_eq!(hwserver::demo().unwrap(), vec!["World"; 10]);
}

#[test]
fn hwclient_demo_gets_ten_worlds() {
    assert_eq!(hwclient::demo().unwrap(), vec!["World"; 10]);
}

#[test]
fn mspoller_demo_reads_both_sockets() {
    let received = mspoller::demo().unwrap();
    let tasks: Vec<String> = (0..20).map(|n| format!("task {n}")).collect();
    assert_eq!(received.tasks, tasks);
    assert_eq!(received.updates.len(), 20);
    assert!(received.updates.iter().all(|u| u.starts_with("10001 ")));
}
