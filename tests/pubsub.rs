//! PUB/SUB and XPUB/XSUB between ferromq sockets: prefix filtering, counted subscriptions,
//! replay after a reconnect, a stalled subscriber that must not slow the publisher, XPUB's
//! options, the XSUB→XPUB proxy, and (with a raw ZMTP peer built on the sans-IO
//! `wire::Connection`) proof that filtering happens at the publisher, for ferromq's PUB and
//! libzmq's.

use bytes::BytesMut;
use ferromq::internals::wire::{Connection, ConnectionConfig, Event, SocketType};
use ferromq::{Message, Pub, SocketOptions, Sub, XPub, XSub};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a raw peer's blocking read may wait before the test fails.
const RAW_READ_TIMEOUT: Duration = Duration::from_secs(10);

fn text(message: &Message) -> String {
    message
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect::<Vec<_>>()
        .join("|")
}

fn tcp_addr(endpoint: &ferromq::Endpoint) -> SocketAddr {
    endpoint
        .to_string()
        .trim_start_matches("tcp://")
        .parse()
        .unwrap()
}

/// A subscriber speaking ZMTP through `wire::Connection` over a blocking std socket, so a
/// test sees exactly what a publisher puts on the wire and can stop reading at will.
struct RawSubscriber {
    stream: TcpStream,
    conn: Connection,
    buf: BytesMut,
    /// Bytes read since the handshake completed.
    bytes_after_handshake: usize,
}

impl RawSubscriber {
    /// Connects (with a small kernel receive buffer if asked) and completes the handshake.
    fn connect(addr: SocketAddr, rcvbuf: Option<usize>) -> Self {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        socket.connect(&addr.into()).expect("connect");
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(RAW_READ_TIMEOUT)).unwrap();
        let conn = Connection::new(ConnectionConfig::new(SocketType::Sub), Instant::now());
        let mut raw = RawSubscriber {
            stream,
            conn,
            buf: BytesMut::new(),
            bytes_after_handshake: 0,
        };
        raw.flush();
        loop {
            raw.read_some();
            match raw.conn.poll_event() {
                Some(Event::Ready(info)) => {
                    assert!(info.socket_type.is_publisher());
                    // A publisher sends nothing after READY until it sees a subscription.
                    assert!(raw.buf.is_empty() && raw.conn.poll_event().is_none());
                    raw.bytes_after_handshake = 0;
                    return raw;
                }
                Some(other) => panic!("unexpected event before READY: {other:?}"),
                None => {}
            }
        }
    }

    fn flush(&mut self) {
        if let Some(bytes) = self.conn.take_transmit() {
            self.stream.write_all(&bytes).unwrap();
        }
    }

    fn subscribe(&mut self, prefix: &[u8]) {
        self.conn.send_subscribe(prefix);
        self.flush();
    }

    /// One blocking read, decoded.
    fn read_some(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).expect("raw read");
        assert!(n > 0, "publisher closed the connection");
        self.bytes_after_handshake += n;
        self.buf.extend_from_slice(&chunk[..n]);
        self.conn
            .handle_input(&mut self.buf, Instant::now())
            .unwrap();
        self.flush();
    }

    fn next_message(&mut self) -> Message {
        loop {
            match self.conn.poll_event() {
                Some(Event::Message(message)) => return message,
                Some(other) => panic!("unexpected event: {other:?}"),
                None => self.read_some(),
            }
        }
    }
}

/// libzmq's defaults with some changes.
fn options_with(change: impl FnOnce(&mut SocketOptions)) -> SocketOptions {
    let mut options = SocketOptions::default();
    change(&mut options);
    options
}

/// Polls `condition` every few milliseconds until it holds (the test timeout bounds it).
async fn eventually(mut condition: impl FnMut() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn sub_receives_only_matching_prefixes_once_each() {
    timeout(TEST_TIMEOUT, async {
        let publisher = Pub::new();
        let endpoint = publisher.bind("tcp://127.0.0.1:0").unwrap();
        let subscriber = Sub::new();
        subscriber.connect(&endpoint).unwrap();
        subscriber.subscribe("A");
        subscriber.subscribe("AB");
        subscriber.subscribe("C");
        publisher
            .wait_for_subscribers(1)
            .await
            .expect("the publisher is open");
        assert_eq!(publisher.subscriber_count(), 1);
        for topic in ["A1", "B1", "AB2", "C3", "D4", "ABC5", "a6"] {
            publisher.send(topic).await.unwrap();
        }
        let multipart: Message = ["C", "", "part"].into_iter().collect();
        publisher.send(multipart.clone()).await.unwrap();
        publisher.send("B-skipped").await.unwrap();
        publisher.send("C-end").await.unwrap();
        // One connection delivers in order, so had a non-matching message been delivered,
        // it would show up before C-end.
        let mut got = Vec::new();
        loop {
            let message = subscriber.recv().await.unwrap();
            got.push(text(&message));
            if message.frames()[0] == "C-end" {
                break;
            }
        }
        assert_eq!(got, ["A1", "AB2", "C3", "ABC5", "C||part", "C-end"]);
        assert_eq!(publisher.dropped_messages(), 0);
    })
    .await
    .unwrap();
}

/// What an XPUB sees of a SUB's subscriptions: each prefix once on connect, every later
/// subscribe, and a cancel only when the last subscription to a prefix goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counted_subscriptions_and_the_empty_prefix_over_ipc() {
    timeout(TEST_TIMEOUT, async {
        let path = format!(
            "ipc:///tmp/ferromq-pubsub-{}-counted.sock",
            std::process::id()
        );
        let subscriber = Sub::new();
        subscriber.bind(path.as_str()).unwrap();
        subscriber.subscribe("x");
        subscriber.subscribe("x");
        subscriber.subscribe("");
        let publisher = XPub::new();
        publisher.connect(path.as_str()).unwrap();
        let next = || async { publisher.recv().await.unwrap().frames()[0].clone() };
        // Replayed on connect: each prefix once, in byte order.
        assert_eq!(&next().await[..], b"\x01");
        assert_eq!(&next().await[..], b"\x01x");
        publisher.send("anything").await.unwrap();
        assert_eq!(text(&subscriber.recv().await.unwrap()), "anything");
        subscriber.unsubscribe("");
        assert_eq!(&next().await[..], b"\x00");
        // One of two subscriptions to "x" goes: nothing is sent upstream. Unsubscribing from a
        // prefix never subscribed to sends nothing either.
        subscriber.unsubscribe("x");
        subscriber.unsubscribe("never");
        subscriber.subscribe("end");
        assert_eq!(&next().await[..], b"\x01end");
        publisher.send("other").await.unwrap();
        publisher.send("x1").await.unwrap();
        assert_eq!(text(&subscriber.recv().await.unwrap()), "x1");
        subscriber.unsubscribe("x");
        assert_eq!(&next().await[..], b"\x00x");
        publisher.send("x2").await.unwrap();
        publisher.send("end").await.unwrap();
        assert_eq!(text(&subscriber.recv().await.unwrap()), "end");
    })
    .await
    .unwrap();
}

/// A message published after the subscriber cancelled but before the publisher heard of it
/// is not returned: SUB checks its subscriptions again on receipt. On a current-thread
/// runtime the publisher cannot have processed the cancel when it sends `a2` (no task ran in
/// between), so `a2` really is on the wire.
#[tokio::test(flavor = "current_thread")]
async fn sub_discards_messages_in_flight_when_it_cancelled() {
    timeout(TEST_TIMEOUT, async {
        let publisher = Pub::new();
        let endpoint = publisher.bind("tcp://127.0.0.1:0").unwrap();
        let subscriber = Sub::new();
        subscriber.subscribe("a");
        subscriber.subscribe("b");
        subscriber.connect(&endpoint).unwrap();
        publisher
            .wait_for_subscribers(1)
            .await
            .expect("the publisher is open");
        publisher.send("a1").await.unwrap();
        assert_eq!(text(&subscriber.recv().await.unwrap()), "a1");
        subscriber.unsubscribe("a");
        publisher.send("a2").await.unwrap();
        publisher.send("b2").await.unwrap();
        assert_eq!(text(&subscriber.recv().await.unwrap()), "b2");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn subscriptions_are_replayed_to_a_restarted_publisher() {
    timeout(TEST_TIMEOUT, async {
        let first = Pub::new();
        let endpoint = first.bind("tcp://127.0.0.1:0").unwrap();
        let subscriber = Sub::new();
        subscriber.subscribe("news");
        subscriber.subscribe("news");
        subscriber.subscribe("sport");
        subscriber.connect(&endpoint).unwrap();
        first
            .wait_for_subscribers(1)
            .await
            .expect("the publisher is open");
        first.send("news 1").await.unwrap();
        assert_eq!(text(&subscriber.recv().await.unwrap()), "news 1");
        first.close().await;

        // Same address, new socket: the subscriber reconnects and replays both prefixes.
        let second = XPub::new();
        second.bind(&endpoint).unwrap();
        let mut notes = [second.recv().await.unwrap(), second.recv().await.unwrap()];
        notes.sort_by(|a, b| a.frames()[0].cmp(&b.frames()[0]));
        assert_eq!(&notes[0].frames()[0][..], b"\x01news");
        assert_eq!(&notes[1].frames()[0][..], b"\x01sport");
        second.send("weather").await.unwrap();
        second.send("sport 2").await.unwrap();
        assert_eq!(text(&subscriber.recv().await.unwrap()), "sport 2");
        assert!(matches!(
            subscriber.try_recv(),
            Err(ferromq::Error::WouldBlock)
        ));
    })
    .await
    .unwrap();
}

/// A raw subscriber to "A" must receive the A messages' bytes and not one byte more.
fn assert_only_matching_bytes_arrive(addr: SocketAddr, send_all: impl FnOnce()) {
    const A_MSGS: usize = 10;
    let mut raw = RawSubscriber::connect(addr, None);
    raw.subscribe(b"A");
    send_all();
    let mut expected_bytes = 0;
    for i in 0..A_MSGS {
        let message = raw.next_message();
        assert_eq!(text(&message), format!("A{i}"));
        expected_bytes += 2 + message.frames()[0].len();
    }
    assert_eq!(raw.bytes_after_handshake, expected_bytes);
    assert!(raw.buf.is_empty() && raw.conn.poll_event().is_none());
}

const B_MSGS: usize = 20_000;

#[tokio::test]
async fn ferromq_pub_filters_before_the_wire() {
    timeout(TEST_TIMEOUT, async {
        let publisher = Pub::new();
        let addr = tcp_addr(&publisher.bind("tcp://127.0.0.1:0").unwrap());
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let (sent_tx, sent_rx) = std::sync::mpsc::channel();
        let raw = tokio::task::spawn_blocking(move || {
            assert_only_matching_bytes_arrive(addr, || {
                subscribed_tx.send(()).unwrap();
                sent_rx.recv().unwrap()
            })
        });
        subscribed_rx.await.unwrap();
        publisher
            .wait_for_subscribers(1)
            .await
            .expect("the publisher is open");
        for i in 0..B_MSGS {
            publisher.send(format!("B{i}")).await.unwrap();
        }
        for i in 0..10 {
            publisher.send(format!("A{i}")).await.unwrap();
        }
        sent_tx.send(()).unwrap();
        raw.await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn libzmq_xpub_filters_before_the_wire_and_takes_our_subscribe_command() {
    timeout(TEST_TIMEOUT, async {
        let ctx = zmq::Context::new();
        let xpub = ctx.socket(zmq::XPUB).unwrap();
        xpub.set_rcvtimeo(10_000).unwrap();
        xpub.set_sndtimeo(10_000).unwrap();
        xpub.set_sndhwm(0).unwrap();
        xpub.bind("tcp://127.0.0.1:0").unwrap();
        let endpoint = xpub.get_last_endpoint().unwrap().unwrap();
        let addr = endpoint.trim_start_matches("tcp://").parse().unwrap();
        let libzmq = std::thread::spawn(move || {
            // Our raw peer speaks ZMTP 3.1, so this arrives as a SUBSCRIBE command.
            assert_eq!(xpub.recv_bytes(0).unwrap(), b"\x01A");
            for i in 0..B_MSGS {
                xpub.send(format!("B{i}").as_bytes(), 0).unwrap();
            }
            for i in 0..10 {
                xpub.send(format!("A{i}").as_bytes(), 0).unwrap();
            }
            xpub
        });
        tokio::task::spawn_blocking(move || assert_only_matching_bytes_arrive(addr, || {}))
            .await
            .unwrap();
        drop(libzmq.join().unwrap());
    })
    .await
    .unwrap();
}

/// A publisher with send HWM `hwm` on a fresh port, and a raw subscriber to everything that
/// completed its handshake, with a 4 KiB receive buffer, and will not read until told.
async fn publisher_and_stalled_subscriber(hwm: usize) -> (Pub, ferromq::Endpoint, RawSubscriber) {
    let publisher = Pub::with_options(options_with(|o| o.sndhwm = hwm)).unwrap();
    let endpoint = publisher.bind("tcp://127.0.0.1:0").unwrap();
    let addr = tcp_addr(&endpoint);
    let stalled = tokio::task::spawn_blocking(move || {
        let mut raw = RawSubscriber::connect(addr, Some(4096));
        raw.subscribe(b"");
        raw
    })
    .await
    .unwrap();
    (publisher, endpoint, stalled)
}

/// Message `i` of a numbered stream: the index as 8 big-endian bytes, then `payload`.
fn indexed(i: u64, payload: &bytes::Bytes) -> Message {
    let index = bytes::Bytes::copy_from_slice(&i.to_be_bytes());
    [index, payload.clone()].into_iter().collect()
}

/// Sends "end" and checks it is the next message the (drained) raw subscriber reads.
async fn end_arrives_next(publisher: &Pub, stalled: RawSubscriber) {
    publisher.send("end").await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut stalled = stalled;
        assert_eq!(text(&stalled.next_message()), "end");
    })
    .await
    .unwrap();
}

/// One fast subscriber, one that completes the handshake and then never reads. The publisher
/// must finish at its own pace, the fast one must get everything, and every message the
/// stalled one misses must be counted: once it reads, received + dropped == sent exactly.
/// Since the stalled peer never reads, its kernel buffers fill, then its queue fills to the
/// HWM, and from the first drop on nothing more may be queued for it: every later message
/// must be dropped too (an unbounded queue anywhere would let some through).
#[tokio::test(flavor = "current_thread")]
async fn stalled_subscriber_loses_counted_messages_and_never_slows_the_publisher() {
    const MSGS: u64 = 30_000;
    const HWM: usize = 50;
    const PAYLOAD: usize = 500;
    timeout(TEST_TIMEOUT, async {
        let (publisher, endpoint, stalled) = publisher_and_stalled_subscriber(HWM).await;
        let fast = Sub::new();
        fast.subscribe("");
        fast.connect(&endpoint).unwrap();
        publisher
            .wait_for_subscribers(2)
            .await
            .expect("the publisher is open");

        let fast_reader = tokio::spawn(async move {
            for i in 0..MSGS {
                let message = fast.recv().await.unwrap();
                assert_eq!(message.frames()[0][..], i.to_be_bytes());
                assert_eq!(message.frames()[1].len(), PAYLOAD);
            }
        });
        let payload = bytes::Bytes::from(vec![7u8; PAYLOAD]);
        let mut first_drop = None;
        for i in 0..MSGS {
            publisher.send(indexed(i, &payload)).await.unwrap();
            if first_drop.is_none() && publisher.dropped_messages() > 0 {
                first_drop = Some(i);
            }
        }
        fast_reader.await.unwrap();
        let first_drop = first_drop.expect("the stalled subscriber lost nothing");
        let dropped = publisher.dropped_messages();
        assert!(
            first_drop >= HWM as u64,
            "dropped before the HWM was reached"
        );
        assert_eq!(
            dropped,
            MSGS - first_drop,
            "messages got through after the first drop"
        );

        // Now the stalled subscriber reads: exactly what was not dropped arrives, whole and in
        // order, then a final message sent once its queue has drained.
        let stalled = tokio::task::spawn_blocking(move || {
            let mut stalled = stalled;
            for i in 0..first_drop {
                let message = stalled.next_message();
                assert_eq!(message.len(), 2);
                assert_eq!(message.frames()[0][..], i.to_be_bytes());
                assert_eq!(message.frames()[1].len(), PAYLOAD);
            }
            stalled
        })
        .await
        .unwrap();
        end_arrives_next(&publisher, stalled).await;
        assert_eq!(publisher.dropped_messages(), dropped);
    })
    .await
    .unwrap();
}

/// The same rule on tokio's multi-thread runtime, the publisher looping in `block_on` as under
/// `#[tokio::main]`: its connection tasks run on the workers beside it, and a publisher that
/// outruns a subscriber drops at the HWM exactly as on a current-thread runtime (and as
/// libzmq): it never waits, and every message is either delivered, in order, or counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_on_a_multi_thread_runtime_drops_at_the_hwm_and_counts_every_drop() {
    const MSGS: u64 = 30_000;
    const HWM: usize = 50;
    const PAYLOAD: usize = 500;
    timeout(TEST_TIMEOUT, async {
        let (publisher, _, stalled) = publisher_and_stalled_subscriber(HWM).await;
        publisher
            .wait_for_subscribers(1)
            .await
            .expect("the publisher is open");
        let payload = bytes::Bytes::from(vec![7u8; PAYLOAD]);
        for i in 0..MSGS {
            publisher.send(indexed(i, &payload)).await.unwrap();
        }
        let dropped = publisher.dropped_messages();
        assert!(dropped > 0, "a subscriber that never read lost nothing");
        assert!(
            dropped <= MSGS - HWM as u64,
            "dropped {dropped} of {MSGS} with a queue of {HWM}"
        );
        // What was not dropped arrives whole and in order, and nothing else before "end".
        let stalled = tokio::task::spawn_blocking(move || {
            let mut stalled = stalled;
            let mut last = None;
            for _ in 0..MSGS - dropped {
                let message = stalled.next_message();
                assert_eq!(message.len(), 2);
                assert_eq!(message.frames()[1].len(), PAYLOAD);
                let index = u64::from_be_bytes(message.frames()[0][..].try_into().unwrap());
                assert!(
                    last.is_none_or(|l| index > l),
                    "out of order: {index} after {last:?}"
                );
                last = Some(index);
            }
            stalled
        })
        .await
        .unwrap();
        end_arrives_next(&publisher, stalled).await;
        assert_eq!(publisher.dropped_messages(), dropped);
    })
    .await
    .unwrap();
}

/// On a current-thread runtime a publisher that never waits must still let a subscriber that
/// keeps up receive everything, at the default HWM.
#[tokio::test(flavor = "current_thread")]
async fn subscriber_that_keeps_up_loses_nothing_on_a_current_thread_runtime() {
    const MSGS: u32 = 200_000;
    timeout(TEST_TIMEOUT, async {
        let publisher = Pub::new();
        let endpoint = publisher.bind("tcp://127.0.0.1:0").unwrap();
        let subscriber = Sub::new();
        subscriber.subscribe("");
        subscriber.connect(&endpoint).unwrap();
        publisher
            .wait_for_subscribers(1)
            .await
            .expect("the publisher is open");
        let reader = tokio::spawn(async move {
            for i in 0..MSGS {
                let message = subscriber.recv().await.unwrap();
                assert_eq!(message.frames()[0][..4], i.to_be_bytes());
            }
        });
        for i in 0..MSGS {
            let mut body = i.to_be_bytes().to_vec();
            body.resize(64, 0);
            publisher.send(body).await.unwrap();
        }
        reader.await.unwrap();
        assert_eq!(publisher.dropped_messages(), 0);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn xpub_notifies_first_subscribe_and_last_cancel_including_disconnects() {
    timeout(TEST_TIMEOUT, async {
        let xpub = XPub::new();
        let endpoint = xpub.bind("tcp://127.0.0.1:0").unwrap();
        let one = Sub::new();
        let two = Sub::new();
        one.connect(&endpoint).unwrap();
        two.connect(&endpoint).unwrap();
        one.subscribe("x");
        assert_eq!(&xpub.recv().await.unwrap().frames()[0][..], b"\x01x");
        two.subscribe("x");
        two.subscribe("x");
        // Not verbose: repeated subscribes to a held prefix are not shown.
        two.subscribe("y");
        assert_eq!(&xpub.recv().await.unwrap().frames()[0][..], b"\x01y");
        eventually(|| xpub.subscriber_count() == 2).await;
        one.close().await;
        eventually(|| xpub.subscriber_count() == 1).await;
        // "x" is still held by `two`, so the disconnect cancelled nothing.
        assert!(matches!(xpub.try_recv(), Err(ferromq::Error::WouldBlock)));
        two.unsubscribe("x");
        two.unsubscribe("x");
        assert_eq!(&xpub.recv().await.unwrap().frames()[0][..], b"\x00x");
        two.close().await;
        // The last holder of "y" went away: XPUB reports the cancel itself.
        assert_eq!(&xpub.recv().await.unwrap().frames()[0][..], b"\x00y");
        assert_eq!(xpub.subscriber_count(), 0);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn xpub_verbose_shows_every_subscribe() {
    timeout(TEST_TIMEOUT, async {
        let xpub = XPub::with_options(options_with(|o| o.xpub_verbose = true)).unwrap();
        let endpoint = xpub.bind("tcp://127.0.0.1:0").unwrap();
        let one = Sub::new();
        let two = Sub::new();
        one.connect(&endpoint).unwrap();
        two.connect(&endpoint).unwrap();
        one.subscribe("v");
        two.subscribe("v");
        for _ in 0..2 {
            assert_eq!(&xpub.recv().await.unwrap().frames()[0][..], b"\x01v");
        }
        // Both are connected now (their subscriptions arrived), so a repeat goes out too.
        one.subscribe("v");
        assert_eq!(&xpub.recv().await.unwrap().frames()[0][..], b"\x01v");
        // Cancels are still shown only when the last holder goes.
        one.unsubscribe("v");
        one.unsubscribe("v");
        two.unsubscribe("v");
        assert_eq!(&xpub.recv().await.unwrap().frames()[0][..], b"\x00v");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn xpub_manual_filters_on_what_the_application_chooses() {
    timeout(TEST_TIMEOUT, async {
        let automatic = XPub::new();
        assert!(matches!(
            automatic.subscribe("x"),
            Err(ferromq::Error::WrongState { .. })
        ));
        let xpub = XPub::with_options(options_with(|o| o.xpub_manual = true)).unwrap();
        let endpoint = xpub.bind("tcp://127.0.0.1:0").unwrap();
        let subscriber = Sub::new();
        subscriber.connect(&endpoint).unwrap();
        subscriber.subscribe("");
        // The request is shown, but nothing is subscribed until the application says so.
        assert_eq!(&xpub.recv().await.unwrap().frames()[0][..], b"\x01");
        assert_eq!(xpub.subscriber_count(), 0);
        xpub.subscribe("y").unwrap();
        assert_eq!(xpub.subscriber_count(), 1);
        xpub.send("x1").await.unwrap();
        xpub.send("y1").await.unwrap();
        assert_eq!(text(&subscriber.recv().await.unwrap()), "y1");
        xpub.unsubscribe("y").unwrap();
        assert_eq!(xpub.subscriber_count(), 0);
        subscriber.close().await;
        // The peer's own request is cancelled on disconnect, as in libzmq.
        assert_eq!(&xpub.recv().await.unwrap().frames()[0][..], b"\x00");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn xpub_welcome_message_reaches_each_new_subscriber() {
    timeout(TEST_TIMEOUT, async {
        let xpub = XPub::with_options(options_with(|o| {
            o.xpub_welcome_msg = Some(bytes::Bytes::from_static(b"welcome!"));
        }))
        .unwrap();
        let endpoint = xpub.bind("tcp://127.0.0.1:0").unwrap();
        for _ in 0..2 {
            let subscriber = Sub::new();
            subscriber.subscribe("welcome");
            subscriber.connect(&endpoint).unwrap();
            assert_eq!(text(&subscriber.recv().await.unwrap()), "welcome!");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn xsub_subscribes_by_message_and_sends_other_messages_upstream() {
    timeout(TEST_TIMEOUT, async {
        let xpub = XPub::new();
        let endpoint = xpub.bind("tcp://127.0.0.1:0").unwrap();
        let xsub = XSub::new();
        xsub.connect(&endpoint).unwrap();
        xsub.send(&b"\x01t"[..]).await.unwrap();
        assert_eq!(&xpub.recv().await.unwrap().frames()[0][..], b"\x01t");
        // The publisher is attached now: upstream messages reach it, multipart intact.
        xsub.send(Message::from_iter(["up", "stream"]))
            .await
            .unwrap();
        assert_eq!(text(&xpub.recv().await.unwrap()), "up|stream");
        xpub.send("t1").await.unwrap();
        xpub.send("u1").await.unwrap();
        xpub.send("t2").await.unwrap();
        assert_eq!(text(&xsub.recv().await.unwrap()), "t1");
        assert_eq!(text(&xsub.recv().await.unwrap()), "t2");
        xsub.send(&b"\x00t"[..]).await.unwrap();
        assert_eq!(&xpub.recv().await.unwrap().frames()[0][..], b"\x00t");
        assert_eq!(xsub.dropped_messages(), 0);
    })
    .await
    .unwrap();
}

/// The Guide's XSUB→XPUB forwarder, as in examples/pubsub_proxy.rs: data flows down,
/// subscriptions (and anything else subscribers send) flow up.
async fn forward(frontend: &XSub, backend: &XPub) -> ferromq::Result<()> {
    loop {
        tokio::select! {
            message = frontend.recv() => backend.send(message?).await?,
            message = backend.recv() => frontend.send(message?).await?,
        }
    }
}

#[tokio::test]
async fn proxy_forwards_data_down_and_subscriptions_up() {
    timeout(TEST_TIMEOUT, async {
        // An XPUB upstream, so the test sees the subscriptions arrive through the proxy.
        let upstream = XPub::new();
        let upstream_endpoint = upstream.bind("tcp://127.0.0.1:0").unwrap();
        let frontend = XSub::new();
        frontend.connect(&upstream_endpoint).unwrap();
        let backend = XPub::new();
        let backend_endpoint = backend.bind("tcp://127.0.0.1:0").unwrap();
        let subscribers = [Sub::new(), Sub::new()];
        subscribers[0].subscribe("p");
        subscribers[1].subscribe("q");
        for subscriber in &subscribers {
            subscriber.connect(&backend_endpoint).unwrap();
        }
        let body = async {
            let mut seen = [
                upstream.recv().await.unwrap(),
                upstream.recv().await.unwrap(),
            ];
            seen.sort_by(|a, b| a.frames()[0].cmp(&b.frames()[0]));
            assert_eq!(&seen[0].frames()[0][..], b"\x01p");
            assert_eq!(&seen[1].frames()[0][..], b"\x01q");
            for topic in ["p1", "q1", "r1", "p2"] {
                upstream.send(topic).await.unwrap();
            }
            assert_eq!(text(&subscribers[0].recv().await.unwrap()), "p1");
            assert_eq!(text(&subscribers[0].recv().await.unwrap()), "p2");
            assert_eq!(text(&subscribers[1].recv().await.unwrap()), "q1");
        };
        tokio::select! {
            result = forward(&frontend, &backend) => panic!("proxy stopped: {result:?}"),
            () = body => {}
        }
    })
    .await
    .unwrap();
}
