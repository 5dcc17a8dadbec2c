//! Options: built outside the crate with `SocketOptions::builder()`, changed on live sockets,
//! and the options added for issue #15 (spec/sockets.md §11).

mod common;

use common::{Transport, next_event, until_event};
use ferromq::{
    Dealer, Endpoint, Error, Pub, Pull, Push, Rep, Router, SocketOptions, Sub, XPub, XSub,
};
use std::time::Duration;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn builder_makes_options_outside_the_crate_and_sockets_use_them() {
    let options = SocketOptions::builder()
        .sndhwm(7)
        .rcvhwm(0)
        .linger(Duration::ZERO)
        .send_timeout(Duration::from_millis(50))
        .recv_timeout(None)
        .reconnect_ivl(Duration::from_millis(20))
        .routing_id("client-7")
        .max_msg_size(Some(1 << 20))
        .build()
        .unwrap();
    assert_eq!(options.sndhwm, 7);
    assert_eq!(options.rcvhwm, 0);
    assert_eq!(options.linger, Some(Duration::ZERO));
    assert_eq!(options.routing_id.as_deref(), Some(&b"client-7"[..]));
    assert_eq!(options.max_msg_size, Some(1 << 20));
    // Everything not set keeps libzmq's default.
    let defaults = SocketOptions::default();
    assert_eq!(options.heartbeat_ivl, defaults.heartbeat_ivl);
    assert_eq!(options.backlog, defaults.backlog);

    // Starting from existing options keeps them.
    let again = ferromq::SocketOptionsBuilder::from(options.clone())
        .build()
        .unwrap();
    assert_eq!(again, options);

    let push = Push::with_options(options).unwrap();
    assert_eq!(push.options().sndhwm, 7);
    // No peer, 50 ms send timeout: the option is in force.
    let error = timeout(TEST_TIMEOUT, push.send("x"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(error.error, Error::Timeout(_)), "{error:?}");
}

#[test]
fn builder_refuses_bad_values_naming_the_option() {
    let refused = |built: ferromq::Result<SocketOptions>| match built {
        Err(Error::InvalidOption { option, .. }) => option,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refused(
            SocketOptions::builder()
                .reconnect_ivl(Duration::ZERO)
                .build()
        ),
        "reconnect_ivl"
    );
    assert_eq!(
        refused(SocketOptions::builder().routing_id(vec![0u8, 1]).build()),
        "routing_id"
    );
    assert_eq!(
        refused(SocketOptions::builder().backlog(0).build()),
        "backlog"
    );
}

/// Queues with `try_send` until the PUSH refuses; returns how many it took.
fn fill(push: &Push, from: usize) -> usize {
    let mut sent = 0;
    loop {
        match push.try_send(format!("{}", from + sent)) {
            Ok(()) => sent += 1,
            Err(e) => {
                assert!(matches!(e.error, Error::WouldBlock), "{e}");
                return sent;
            }
        }
        assert!(sent < 100, "the HWM never pushed back");
    }
}

// The PUSH connects before anything is bound there: its endpoint's queue is routable at
// once (`immediate` off) and, with no connection, nothing can leave it, so the HWM alone
// decides what fits.
#[tokio::test]
async fn send_hwm_changed_on_a_live_socket_applies_to_the_connected_peer() {
    timeout(TEST_TIMEOUT, async {
        let endpoint = Transport::Ipc.bind_addr();
        let push = Push::with_options(SocketOptions::builder().sndhwm(2).build().unwrap()).unwrap();
        let mut monitor = push.monitor();
        push.connect(endpoint.as_str()).unwrap();
        assert_eq!(fill(&push, 0), 2);
        push.set_sndhwm(5).unwrap();
        assert_eq!(push.options().sndhwm, 5);
        assert_eq!(
            fill(&push, 2),
            3,
            "the raised HWM applies to the existing peer"
        );
        push.set_sndhwm(1).unwrap();
        assert_eq!(fill(&push, 5), 0, "a lowered HWM keeps what is queued");
        let pull = Pull::new();
        pull.bind(endpoint.as_str()).unwrap();
        for i in 0..5 {
            assert_eq!(pull.recv().await.unwrap().frames()[0], format!("{i}"));
        }
        // Drained, and once more with no connection: the lowered HWM now allows one.
        drop(pull);
        until_event(&mut monitor, "disconnected").await;
        assert_eq!(fill(&push, 5), 1);
    })
    .await
    .unwrap();
}

/// Waits until `pull` holds `n` messages in its inbox (polling the counters).
async fn until_queued(pull: &Pull, n: usize) {
    while pull.stats().queued_in != n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn receive_hwm_raised_on_a_live_socket_lets_the_connection_read_on() {
    timeout(TEST_TIMEOUT, async {
        let pull = Pull::with_options(SocketOptions::builder().rcvhwm(1).build().unwrap()).unwrap();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let push = Push::new();
        push.connect(&endpoint).unwrap();
        for i in 0..4 {
            push.send(format!("{i}")).await.unwrap();
        }
        until_queued(&pull, 1).await;
        pull.set_rcvhwm(10).unwrap();
        // The connection was waiting for room: it reads the rest now.
        until_queued(&pull, 4).await;
        for i in 0..4 {
            assert_eq!(pull.recv().await.unwrap().frames()[0], format!("{i}"));
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn timeouts_changed_on_a_live_socket_apply_to_the_next_call() {
    timeout(TEST_TIMEOUT, async {
        let pull = Pull::new();
        pull.set_recv_timeout(Duration::from_millis(30)).unwrap();
        let error = pull.recv().await.unwrap_err();
        assert!(
            matches!(error, Error::Timeout(t) if t == Duration::from_millis(30)),
            "{error:?}"
        );
        pull.set_recv_timeout(Duration::ZERO).unwrap();
        assert!(matches!(
            pull.recv().await,
            Err(Error::Timeout(Duration::ZERO))
        ));

        let push = Push::new();
        push.set_send_timeout(Duration::from_millis(30)).unwrap();
        let error = push.send("nobody").await.unwrap_err();
        assert!(
            matches!(error.error, Error::Timeout(t) if t == Duration::from_millis(30)),
            "{error:?}"
        );
        push.set_send_timeout(None).unwrap();
        assert_eq!(push.options().send_timeout, None);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn linger_changed_on_a_live_socket_applies_to_close() {
    timeout(TEST_TIMEOUT, async {
        // A libzmq PULL that completes the handshake and never reads, with small buffers.
        let ctx = zmq::Context::new();
        let sink = ctx.socket(zmq::PULL).unwrap();
        sink.set_rcvhwm(1).unwrap();
        sink.set_rcvbuf(16 * 1024).unwrap();
        sink.set_linger(0).unwrap();
        sink.bind("tcp://127.0.0.1:0").unwrap();
        let endpoint = sink.get_last_endpoint().unwrap().unwrap();

        let options = SocketOptions::builder()
            .sndbuf(Some(16 * 1024))
            .build()
            .unwrap();
        // Default linger: close would wait forever for a peer that never reads.
        assert_eq!(options.linger, None);
        let push = Push::with_options(options).unwrap();
        push.connect(endpoint.as_str()).unwrap();
        let big = bytes::Bytes::from(vec![0u8; 64 * 1024]);
        push.send(big.clone()).await.unwrap();
        // Fill until the PUSH pushes back: its queue then holds messages no one takes.
        loop {
            match push.try_send(big.clone()) {
                Ok(()) => {}
                Err(e) if matches!(e.error, Error::WouldBlock) => break,
                Err(e) => panic!("{e}"),
            }
            tokio::task::yield_now().await;
        }
        push.set_linger(Duration::ZERO).unwrap();
        push.close().await;
        drop(sink);
    })
    .await
    .expect("close waited although linger was set to zero on the live socket");
}

#[tokio::test]
async fn router_mandatory_changed_on_a_live_socket_applies_to_the_next_send() {
    let to_nobody = || {
        ferromq::Message::from(vec![
            bytes::Bytes::from_static(b"nobody"),
            bytes::Bytes::from_static(b"hello"),
        ])
    };
    let router = Router::new();
    router.send(to_nobody()).await.unwrap();
    router.set_router_mandatory(true).unwrap();
    let error = router.send(to_nobody()).await.unwrap_err();
    assert!(
        matches!(error.error, Error::HostUnreachable(_)),
        "{error:?}"
    );
    router.set_router_mandatory(false).unwrap();
    router.send(to_nobody()).await.unwrap();
}

#[tokio::test]
async fn live_changes_are_validated_and_security_is_fixed() {
    let push = Push::new();
    let before = push.options();
    let error = push.set_reconnect_ivl(Duration::ZERO).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidOption {
                option: "reconnect_ivl",
                ..
            }
        ),
        "{error:?}"
    );
    let error = push
        .update_options(|o| {
            o.sndhwm = 5;
            o.curve_server = true;
            o.curve_secretkey = Some(ferromq::security::CurveKeyPair::generate().secret);
        })
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidOption {
                option: "plain_*/curve_*",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(push.options(), before, "a refused change changes nothing");
    push.update_options(|o| {
        o.sndhwm = 5;
        o.heartbeat_ivl = Some(Duration::from_secs(1));
    })
    .unwrap();
    let after = push.options();
    assert_eq!(
        (after.sndhwm, after.heartbeat_ivl),
        (5, Some(Duration::from_secs(1)))
    );
}

/// A listening TCP socket whose accept queue is full and never drained: the kernel drops
/// further SYNs, so a connect to it hangs until the connecting side gives up.
fn black_hole() -> (
    socket2::Socket,
    Vec<std::net::TcpStream>,
    std::net::SocketAddr,
) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    while let Ok(stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
        fillers.push(stream);
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    (socket, fillers, addr)
}

#[tokio::test]
async fn connect_timeout_fails_a_hanging_attempt_and_retries() {
    timeout(TEST_TIMEOUT, async {
        let (_listener, _fillers, addr) = black_hole();
        let options = SocketOptions::builder()
            .connect_timeout(Duration::from_millis(100))
            .reconnect_ivl(Duration::from_millis(20))
            .build()
            .unwrap();
        let push = Push::with_options(options).unwrap();
        let mut monitor = push.monitor();
        push.connect(Endpoint::from_socket_addr(addr)).unwrap();
        // Without the timeout the first attempt would hang for the kernel's SYN retries
        // (about two minutes); with it each attempt fails and is retried.
        for _ in 0..3 {
            until_event(&mut monitor, "connect_delayed").await;
            let failed = next_event(&mut monitor).await;
            assert_eq!(failed.kind.name(), "closed", "{failed:?}");
            until_event(&mut monitor, "connect_retried").await;
        }
    })
    .await
    .expect("a connect attempt outlived connect_timeout");
}

fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[tokio::test]
async fn ipv6_wildcard_bind_is_dual_stack() {
    if !has_ipv6_loopback() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    timeout(TEST_TIMEOUT, async {
        let pull =
            Pull::with_options(SocketOptions::builder().ipv6(true).build().unwrap()).unwrap();
        let bound = pull.bind("tcp://*:0").unwrap();
        let Endpoint::Tcp { port, .. } = bound else {
            unreachable!()
        };
        let over_v4 = Push::new();
        over_v4.connect(format!("tcp://127.0.0.1:{port}")).unwrap();
        over_v4.send("v4").await.unwrap();
        assert_eq!(pull.recv().await.unwrap().frames()[0], "v4");
        let over_v6 = Push::new();
        over_v6.connect(format!("tcp://[::1]:{port}")).unwrap();
        over_v6.send("v6").await.unwrap();
        assert_eq!(pull.recv().await.unwrap().frames()[0], "v6");

        // Without the option `*` is IPv4 only, as in libzmq.
        let v4_only = Pull::new();
        let Endpoint::Tcp { port, .. } = v4_only.bind("tcp://*:0").unwrap() else {
            unreachable!()
        };
        assert!(std::net::TcpStream::connect(("::1", port)).is_err());
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    })
    .await
    .unwrap();
}

unsafe extern "C" {
    /// libzmq's own setter, for ZMQ_INVERT_MATCHING, which the `zmq` crate does not wrap.
    fn zmq_setsockopt(
        socket: *mut std::ffi::c_void,
        option: std::ffi::c_int,
        value: *const std::ffi::c_void,
        len: usize,
    ) -> std::ffi::c_int;
}
const ZMQ_INVERT_MATCHING: std::ffi::c_int = 74;

#[tokio::test]
async fn invert_matching_pub_sends_what_does_not_match_to_libzmq_and_ferromq_subscribers() {
    timeout(TEST_TIMEOUT, async {
        let publisher = Pub::with_options(
            SocketOptions::builder()
                .invert_matching(true)
                .build()
                .unwrap(),
        )
        .unwrap();
        let endpoint = publisher.bind("tcp://127.0.0.1:0").unwrap();

        // libzmq SUB with the option set, as libzmq requires of an inverted PUB's subscribers.
        let ctx = zmq::Context::new();
        let mut libzmq_sub = ctx.socket(zmq::SUB).unwrap();
        libzmq_invert_matching(&mut libzmq_sub);
        libzmq_sub.set_rcvtimeo(10_000).unwrap();
        libzmq_sub.set_linger(0).unwrap();
        libzmq_sub.set_subscribe(b"a").unwrap();
        libzmq_sub.connect(&endpoint.to_string()).unwrap();

        let sub = inverted_sub_of("a");
        sub.connect(&endpoint).unwrap();
        // XSUB filters nothing itself: what it gets is what the PUB chose to send.
        let xsub = XSub::new();
        xsub.connect(&endpoint).unwrap();
        xsub.send(&b"\x01a"[..]).await.unwrap();

        publisher.wait_for_subscriptions(3).await.unwrap();
        for topic in ["a1", "b1", "ab", "c1"] {
            publisher.send(topic).await.unwrap();
        }
        // The ferromq SUB's own filter is inverted too: without the option it would drop
        // these, which do not match its subscription.
        for expected in ["b1", "c1"] {
            assert_eq!(sub.recv().await.unwrap().frames()[0], expected);
            assert_eq!(xsub.recv().await.unwrap().frames()[0], expected);
        }
        let received = tokio::task::spawn_blocking(move || {
            let received = [
                libzmq_sub.recv_bytes(0).unwrap(),
                libzmq_sub.recv_bytes(0).unwrap(),
            ];
            drop(libzmq_sub);
            drop(ctx);
            received
        })
        .await
        .unwrap();
        assert_eq!(received, [b"b1".to_vec(), b"c1".to_vec()]);
    })
    .await
    .unwrap();
}

/// A SUB with `invert_matching`, subscribed to `prefix`.
fn inverted_sub_of(prefix: &str) -> Sub {
    let options = SocketOptions::builder()
        .invert_matching(true)
        .build()
        .unwrap();
    let sub = Sub::with_options(options).unwrap();
    sub.subscribe(prefix);
    sub
}

/// Sets ZMQ_INVERT_MATCHING on a libzmq socket.
fn libzmq_invert_matching(socket: &mut zmq::Socket) {
    let one: std::ffi::c_int = 1;
    let rc = unsafe {
        zmq_setsockopt(
            socket.as_mut_ptr(),
            ZMQ_INVERT_MATCHING,
            (&one as *const std::ffi::c_int).cast(),
            std::mem::size_of::<std::ffi::c_int>(),
        )
    };
    assert_eq!(rc, 0);
}

#[tokio::test]
async fn invert_matching_sub_receives_what_does_not_match_from_a_libzmq_pub() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    timeout(TEST_TIMEOUT, async {
        for ferromq_binds in [false, true] {
            let sub = inverted_sub_of("a");
            let bound = ferromq_binds.then(|| sub.bind("tcp://127.0.0.1:0").unwrap().to_string());
            let heard = Arc::new(AtomicBool::new(false));
            let libzmq_heard = heard.clone();
            let (endpoint_tx, endpoint_rx) = tokio::sync::oneshot::channel();
            let libzmq = std::thread::spawn(move || {
                let ctx = zmq::Context::new();
                let mut publisher = common::libzmq_socket(&ctx, zmq::PUB);
                libzmq_invert_matching(&mut publisher);
                let endpoint = match bound {
                    Some(endpoint) => {
                        publisher.connect(&endpoint).unwrap();
                        None
                    }
                    None => {
                        publisher.bind("tcp://127.0.0.1:*").unwrap();
                        publisher.get_last_endpoint().unwrap().ok()
                    }
                };
                endpoint_tx.send(endpoint).unwrap();
                // libzmq's PUB cannot tell when its subscriber is there: probe until heard.
                while !libzmq_heard.load(Ordering::SeqCst) {
                    publisher.send("sync", 0).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
                for topic in ["a1", "b1", "ab", "c1", "END"] {
                    publisher.send(topic, 0).unwrap();
                }
            });
            if let Some(endpoint) = endpoint_rx.await.unwrap() {
                sub.connect(endpoint.as_str()).unwrap();
            }
            // "sync" matches no subscription, so an inverted SUB receives it.
            while sub.recv().await.unwrap().frames()[0] != "sync" {}
            heard.store(true, Ordering::SeqCst);
            let mut got = Vec::new();
            loop {
                let message = sub.recv().await.unwrap();
                match &message.frames()[0][..] {
                    b"sync" => continue,
                    b"END" => break,
                    topic => got.push(String::from_utf8_lossy(topic).into_owned()),
                }
            }
            // Whether libzmq's PUB had its subscription yet or not, "a1" and "ab" match "a":
            // the inverted SUB keeps only the rest.
            assert_eq!(got, ["b1", "c1"], "ferromq binds: {ferromq_binds}");
            tokio::task::spawn_blocking(move || libzmq.join().unwrap())
                .await
                .unwrap();
        }
    })
    .await
    .unwrap();
}

// One thread and no await between sends: the connection task cannot drain the queue.
#[tokio::test(flavor = "current_thread")]
async fn xpub_nodrop_waits_at_the_hwm_instead_of_dropping() {
    timeout(TEST_TIMEOUT, async {
        let xpub = XPub::with_options(
            SocketOptions::builder()
                .xpub_nodrop(true)
                .sndhwm(2)
                .build()
                .unwrap(),
        )
        .unwrap();
        let endpoint = xpub.bind("tcp://127.0.0.1:0").unwrap();
        let sub = Sub::new();
        sub.subscribe("");
        sub.connect(&endpoint).unwrap();
        xpub.wait_for_subscribers(1).await.unwrap();
        xpub.try_send("0").unwrap();
        xpub.try_send("1").unwrap();
        let refused = xpub.try_send("2").unwrap_err();
        assert!(matches!(refused.error, Error::WouldBlock), "{refused:?}");
        assert_eq!(refused.message.frames()[0], "2");
        // `send` waits for the connection to take the queue, then sends.
        xpub.send("2").await.unwrap();
        xpub.send("3").await.unwrap();
        for i in 0..4 {
            assert_eq!(sub.recv().await.unwrap().frames()[0], format!("{i}"));
        }
        assert_eq!(xpub.dropped_messages(), 0);
    })
    .await
    .unwrap();
}

/// Waits until `pull` has received `n` messages from the network.
async fn until_received(pull: &Pull, n: u64) {
    while pull.stats().messages_in < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn conflate_keeps_only_the_newest_message() {
    timeout(TEST_TIMEOUT, async {
        let conflate = || SocketOptions::builder().conflate(true).build().unwrap();
        let pull = Pull::with_options(conflate()).unwrap();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let push = Push::new();
        push.connect(&endpoint).unwrap();
        for i in 0..10 {
            push.send(format!("{i}")).await.unwrap();
        }
        until_received(&pull, 10).await;
        assert_eq!(pull.recv().await.unwrap().frames()[0], "9");
        assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));

        // Outbound: a conflating PUSH never waits and sends only the newest queued message.
        let sink = Pull::new();
        let endpoint = sink.bind("tcp://127.0.0.1:0").unwrap();
        let push = Push::with_options(conflate()).unwrap();
        let mut monitor = push.monitor();
        push.connect(&endpoint).unwrap();
        until_event(&mut monitor, "handshake_succeeded").await;
        // No await between them: the connection task has taken nothing yet.
        for i in 0..100 {
            push.try_send(format!("{i}")).unwrap();
        }
        sink.set_recv_timeout(Duration::from_secs(10)).unwrap();
        // One thread: the connection task ran only now, and found the newest alone.
        assert_eq!(sink.recv().await.unwrap().frames()[0], "99");
        assert_eq!(push.stats().dropped, 99);

        // Only where libzmq conflates.
        for refused in [
            Rep::with_options(conflate()).err(),
            Router::with_options(conflate()).err(),
        ] {
            assert!(
                matches!(
                    refused,
                    Some(Error::InvalidOption {
                        option: "conflate",
                        ..
                    })
                ),
                "{refused:?}"
            );
        }
        assert!(Dealer::with_options(conflate()).is_ok());
    })
    .await
    .unwrap();
}

/// A TCP endpoint on a free port where nothing listens (yet).
fn vacant_endpoint() -> Endpoint {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    Endpoint::from_socket_addr(listener.local_addr().unwrap())
}

fn fast_reconnect() -> ferromq::SocketOptionsBuilder {
    SocketOptions::builder().reconnect_ivl(Duration::from_millis(20))
}

/// ZMQ_IMMEDIATE=0, the default (libzmq's), stated.
fn immediate_off() -> ferromq::SocketOptionsBuilder {
    fast_reconnect().immediate(false)
}

#[tokio::test]
async fn immediate_is_off_by_default_so_a_send_queues_for_a_peer_still_connecting() {
    timeout(TEST_TIMEOUT, async {
        assert!(
            !SocketOptions::default().immediate,
            "libzmq's ZMQ_IMMEDIATE=0"
        );
        let push = Push::new();
        push.connect(vacant_endpoint()).unwrap();
        push.try_send("queued").unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn immediate_off_sends_queue_for_a_peer_still_connecting() {
    timeout(TEST_TIMEOUT, async {
        let endpoint = vacant_endpoint();
        let push = Push::with_options(immediate_off().sndhwm(3).build().unwrap()).unwrap();
        push.connect(&endpoint).unwrap();
        // Routable at once: the sends queue for the peer that is not there yet, up to the HWM.
        for i in 0..3 {
            push.try_send(format!("{i}")).unwrap();
        }
        let full = push.try_send("3").unwrap_err();
        assert!(matches!(full.error, Error::WouldBlock), "{full:?}");
        assert_eq!(push.peer_count(), 0, "no handshake yet");
        // The peer comes up: what was queued goes out once the handshake completes.
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        for i in 0..3 {
            assert_eq!(pull.recv().await.unwrap().frames()[0], format!("{i}"));
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn immediate_on_sends_wait_for_a_completed_handshake() {
    timeout(TEST_TIMEOUT, async {
        let push = Push::with_options(fast_reconnect().immediate(true).build().unwrap()).unwrap();
        push.connect(vacant_endpoint()).unwrap();
        let refused = push.try_send("nobody").unwrap_err();
        assert!(matches!(refused.error, Error::WouldBlock), "{refused:?}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn immediate_off_messages_queued_while_reconnecting_survive() {
    timeout(TEST_TIMEOUT, async {
        let first = Pull::new();
        let endpoint = first.bind("tcp://127.0.0.1:0").unwrap();
        let push = Push::with_options(immediate_off().build().unwrap()).unwrap();
        let mut monitor = push.monitor();
        push.connect(&endpoint).unwrap();
        push.send("before").await.unwrap();
        assert_eq!(first.recv().await.unwrap().frames()[0], "before");
        first.close().await;
        drop(first);
        until_event(&mut monitor, "disconnected").await;
        // Queued for the endpoint while no connection is there.
        push.send("while down 1").await.unwrap();
        push.send("while down 2").await.unwrap();
        let second = Pull::new();
        second.bind(&endpoint).unwrap();
        for expected in ["while down 1", "while down 2"] {
            assert_eq!(second.recv().await.unwrap().frames()[0], expected);
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn immediate_off_round_robin_counts_the_peer_still_connecting() {
    timeout(TEST_TIMEOUT, async {
        let up = Pull::new();
        let up_endpoint = up.bind("tcp://127.0.0.1:0").unwrap();
        let down = vacant_endpoint();
        let push = Push::with_options(immediate_off().build().unwrap()).unwrap();
        let mut monitor = push.monitor();
        push.connect(&down).unwrap();
        push.connect(&up_endpoint).unwrap();
        until_event(&mut monitor, "handshake_succeeded").await;
        for i in 0..4 {
            push.send(format!("{i}")).await.unwrap();
        }
        // Strict rotation over both endpoints: half went to the one that is down.
        let late = Pull::new();
        late.bind(&down).unwrap();
        let mut got_up = Vec::new();
        let mut got_late = Vec::new();
        for _ in 0..2 {
            got_up.push(up.recv().await.unwrap().frames()[0].clone());
            got_late.push(late.recv().await.unwrap().frames()[0].clone());
        }
        assert_eq!(got_late, ["0", "2"]);
        assert_eq!(got_up, ["1", "3"]);
    })
    .await
    .unwrap();
}

const QUEUED_MSGS: usize = 5;

/// A PUSH (`immediate` off) connected to a port where nothing listens yet, with
/// [`QUEUED_MSGS`] messages queued for it, and its monitor.
fn push_queued_for_an_absent_peer(linger: Option<Duration>) -> (Push, Endpoint, ferromq::Monitor) {
    let endpoint = vacant_endpoint();
    let push = Push::with_options(immediate_off().linger(linger).build().unwrap()).unwrap();
    let monitor = push.monitor();
    push.connect(&endpoint).unwrap();
    for i in 0..QUEUED_MSGS {
        push.try_send(format!("{i}")).unwrap();
    }
    (push, endpoint, monitor)
}

/// Receives [`QUEUED_MSGS`] messages and checks they are the queued ones, in order.
async fn receive_the_queue(pull: &Pull) {
    for i in 0..QUEUED_MSGS {
        assert_eq!(pull.recv().await.unwrap().frames()[0], format!("{i}"));
    }
}

/// Checks that `endpoint`'s new listener receives nothing from an earlier socket: the first
/// message it gets is one a fresh PUSH sends after it bound.
async fn only_a_later_message_arrives(endpoint: &Endpoint) {
    let pull = Pull::new();
    pull.bind(endpoint).unwrap();
    let later = Push::new();
    later.connect(endpoint).unwrap();
    later.send("later").await.unwrap();
    assert_eq!(pull.recv().await.unwrap().frames()[0], "later");
}

#[tokio::test]
async fn immediate_off_close_delivers_to_a_peer_that_binds_within_the_linger() {
    timeout(TEST_TIMEOUT, async {
        let (push, endpoint, mut monitor) =
            push_queued_for_an_absent_peer(Some(Duration::from_secs(5)));
        let closing = tokio::spawn(async move { push.close().await });
        // The close has begun (it stops the monitors) with no peer there.
        until_event(&mut monitor, "monitor_stopped").await;
        assert!(
            !closing.is_finished(),
            "close gave up on the queued messages"
        );
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        receive_the_queue(&pull).await;
        closing.await.unwrap();
    })
    .await
    .expect("the queue was not delivered, or close did not return once it was");
}

#[tokio::test]
async fn immediate_off_close_gives_up_on_an_absent_peer_when_the_linger_ends() {
    timeout(TEST_TIMEOUT, async {
        let linger = Duration::from_millis(300);
        let (push, endpoint, _monitor) = push_queued_for_an_absent_peer(Some(linger));
        let started = tokio::time::Instant::now();
        push.close().await;
        assert!(
            started.elapsed() >= linger,
            "close returned after {:?}, before the linger ended",
            started.elapsed()
        );
        only_a_later_message_arrives(&endpoint).await;
    })
    .await
    .expect("close waited past the linger period");
}

#[tokio::test]
async fn immediate_off_close_with_zero_linger_drops_what_waits_for_an_absent_peer() {
    timeout(TEST_TIMEOUT, async {
        let (push, endpoint, _monitor) = push_queued_for_an_absent_peer(Some(Duration::ZERO));
        timeout(Duration::from_secs(2), push.close())
            .await
            .expect("close waited despite zero linger");
        only_a_later_message_arrives(&endpoint).await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn immediate_off_close_with_nothing_queued_returns_at_once_whatever_the_linger() {
    timeout(TEST_TIMEOUT, async {
        // Default linger (forever), a peer that never comes, and nothing queued for it.
        let push = Push::with_options(immediate_off().build().unwrap()).unwrap();
        push.connect(vacant_endpoint()).unwrap();
        timeout(Duration::from_secs(2), push.close())
            .await
            .expect("close waited for a peer nothing was queued for");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn immediate_off_disconnect_delivers_to_a_peer_that_binds_within_the_linger() {
    timeout(TEST_TIMEOUT, async {
        let (push, endpoint, _monitor) =
            push_queued_for_an_absent_peer(Some(Duration::from_secs(5)));
        push.disconnect(&endpoint).unwrap();
        // The endpoint takes no more messages, but keeps connecting for those it has.
        let refused = push.try_send("nowhere").unwrap_err();
        assert!(matches!(refused.error, Error::WouldBlock), "{refused:?}");
        let pull = Pull::new();
        pull.bind(&endpoint).unwrap();
        receive_the_queue(&pull).await;
        timeout(Duration::from_secs(2), push.close())
            .await
            .expect("close waited for a delivered queue");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn immediate_off_disconnect_with_zero_linger_drops_what_waits_for_an_absent_peer() {
    timeout(TEST_TIMEOUT, async {
        let (push, endpoint, _monitor) = push_queued_for_an_absent_peer(Some(Duration::ZERO));
        push.disconnect(&endpoint).unwrap();
        let refused = push.try_send("nowhere").unwrap_err();
        assert!(matches!(refused.error, Error::WouldBlock), "{refused:?}");
        only_a_later_message_arrives(&endpoint).await;
        // Connecting again makes a new slot, empty: nothing of the old queue comes back.
        push.connect(&endpoint).unwrap();
        push.send("again").await.unwrap();
        timeout(Duration::from_secs(5), push.close())
            .await
            .expect("close did not return");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn default_push_close_delivers_to_a_libzmq_pull_that_binds_afterwards() {
    timeout(TEST_TIMEOUT, async {
        // Every option at its default (linger forever), as a short-lived sender has them.
        let endpoint = vacant_endpoint();
        let push = Push::new();
        let mut monitor = push.monitor();
        push.connect(&endpoint).unwrap();
        for i in 0..QUEUED_MSGS {
            push.send(format!("{i}")).await.unwrap();
        }
        let closing = tokio::spawn(async move { push.close().await });
        until_event(&mut monitor, "monitor_stopped").await;
        assert!(
            !closing.is_finished(),
            "close gave up on the queued messages"
        );
        let address = endpoint.to_string();
        let received = tokio::task::spawn_blocking(move || {
            let ctx = zmq::Context::new();
            let pull = common::libzmq_socket(&ctx, zmq::PULL);
            pull.bind(&address).unwrap();
            (0..QUEUED_MSGS)
                .map(|_| String::from_utf8(pull.recv_bytes(0).unwrap()).unwrap())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        let expected: Vec<String> = (0..QUEUED_MSGS).map(|i| i.to_string()).collect();
        assert_eq!(received, expected);
        closing.await.unwrap();
    })
    .await
    .expect("libzmq got not every message, or close did not return once it had");
}

#[tokio::test]
async fn immediate_off_close_lets_a_connecting_peer_finish_its_handshake_and_take_the_queue() {
    timeout(TEST_TIMEOUT, async {
        let pull = Pull::new();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let push = Push::with_options(immediate_off().build().unwrap()).unwrap();
        let mut monitor = push.monitor();
        push.connect(&endpoint).unwrap();
        // Connected, handshake not necessarily done: the message waits in the slot.
        until_event(&mut monitor, "connected").await;
        push.try_send("last words").unwrap();
        push.close().await;
        assert_eq!(pull.recv().await.unwrap().frames()[0], "last words");
    })
    .await
    .unwrap();
}
