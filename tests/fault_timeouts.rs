//! Timers and back-pressure: the handshake timeout, heartbeats both ways (against libzmq and
//! against a raw peer that checks the PONG bytes or never answers), and the send high-water
//! mark (`try_send` → `WouldBlock`, `send` → `Timeout`, the message handed back each time).

use bytes::BytesMut;
use ferromq::internals::wire::{Connection, ConnectionConfig, Event, SocketType};
use ferromq::{Endpoint, Error, Message, Pull, Push, SocketOptions};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const GREETING_LEN: usize = 64;

async fn connect_raw(endpoint: &Endpoint) -> TcpStream {
    TcpStream::connect(endpoint.to_string().trim_start_matches("tcp://"))
        .await
        .unwrap()
}

/// Completes a NULL handshake as `our_type` over a raw stream, using ferromq's sans-IO wire
/// layer for our side only; returns bytes received past the peer's READY.
async fn raw_handshake(stream: &mut TcpStream, our_type: SocketType) -> BytesMut {
    let mut conn = Connection::new(ConnectionConfig::new(our_type), Instant::now());
    stream
        .write_all(&conn.take_transmit().unwrap())
        .await
        .unwrap();
    let mut input = BytesMut::new();
    loop {
        assert_ne!(
            stream.read_buf(&mut input).await.unwrap(),
            0,
            "EOF in handshake"
        );
        conn.handle_input(&mut input, Instant::now()).unwrap();
        if let Some(bytes) = conn.take_transmit() {
            stream.write_all(&bytes).await.unwrap();
        }
        if let Some(Event::Ready(_)) = conn.poll_event() {
            return input;
        }
    }
}

/// Reads until the peer closes the connection; returns everything read.
async fn read_to_eof(stream: &mut TcpStream, mut buf: BytesMut) -> BytesMut {
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) => return buf,
            Ok(_) => {}
            // A reset after our unread data is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return buf,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Splits raw bytes into (flags, body) frames; panics on a truncated frame.
fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let flags = bytes[0];
        let (len, header) = if flags & 0x02 != 0 {
            let len = u64::from_be_bytes(bytes[1..9].try_into().unwrap());
            (usize::try_from(len).unwrap(), 9)
        } else {
            (usize::from(bytes[1]), 2)
        };
        out.push((flags, bytes[header..header + len].to_vec()));
        bytes = &bytes[header + len..];
    }
    out
}

fn is_command(frame: &(u8, Vec<u8>), name: &[u8]) -> bool {
    frame.0 & 0x04 != 0
        && frame.1.get(1..1 + name.len()) == Some(name)
        && frame.1[0] as usize == name.len()
}

fn pull_with(configure: impl FnOnce(&mut SocketOptions)) -> Pull {
    let mut options = SocketOptions::default();
    configure(&mut options);
    Pull::with_options(options).unwrap()
}

fn push_with(configure: impl FnOnce(&mut SocketOptions)) -> Push {
    let mut options = SocketOptions::default();
    configure(&mut options);
    Push::with_options(options).unwrap()
}

const HANDSHAKE_IVL: Duration = Duration::from_millis(200);

#[tokio::test]
async fn silent_peer_is_dropped_after_the_handshake_interval() {
    timeout(TEST_TIMEOUT, async {
        let pull = pull_with(|o| o.handshake_ivl = Some(HANDSHAKE_IVL));
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let started = Instant::now();
        let mut raw = connect_raw(&endpoint).await;
        let received = read_to_eof(&mut raw, BytesMut::new()).await;
        assert!(started.elapsed() >= HANDSHAKE_IVL, "dropped early");
        // We never sent a greeting: all we got is ferromq's.
        assert_eq!(received.len(), GREETING_LEN);
        assert_eq!(pull.peer_count(), 0);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn peer_that_never_sends_ready_gets_an_error_command_and_is_dropped() {
    timeout(TEST_TIMEOUT, async {
        let pull = pull_with(|o| o.handshake_ivl = Some(HANDSHAKE_IVL));
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let started = Instant::now();
        let mut raw = connect_raw(&endpoint).await;
        // A valid greeting, then nothing: the handshake starts but never completes.
        let greeting = Connection::new(ConnectionConfig::new(SocketType::Push), started)
            .take_transmit()
            .unwrap();
        raw.write_all(&greeting).await.unwrap();
        let received = read_to_eof(&mut raw, BytesMut::new()).await;
        assert!(started.elapsed() >= HANDSHAKE_IVL, "dropped early");
        let frames = frames(&received[GREETING_LEN..]);
        assert_eq!(frames.len(), 2, "READY then ERROR: {frames:?}");
        assert!(is_command(&frames[0], b"READY"));
        assert!(is_command(&frames[1], b"ERROR"));
        let reason = &frames[1].1[7..];
        assert_eq!(reason, b"handshake did not complete in time");
    })
    .await
    .unwrap();
}

/// Reads libzmq monitor events that are already queued, without waiting.
fn drain_monitor(monitor: &zmq::Socket) -> Vec<zmq::SocketEvent> {
    let mut events = Vec::new();
    while let Ok(frames) = monitor.recv_multipart(zmq::DONTWAIT) {
        events.push(zmq::SocketEvent::from_raw(u16::from_le_bytes([
            frames[0][0],
            frames[0][1],
        ])));
    }
    events
}

/// A libzmq socket with a monitor attached (all events).
fn monitored(ctx: &zmq::Context, kind: zmq::SocketType, name: &str) -> (zmq::Socket, zmq::Socket) {
    let socket = ctx.socket(kind).unwrap();
    socket.set_rcvtimeo(10_000).unwrap();
    socket.set_sndtimeo(10_000).unwrap();
    socket.set_linger(0).unwrap();
    let address = format!("inproc://{name}");
    socket
        .monitor(&address, zmq::SocketEvent::ALL as i32)
        .unwrap();
    let monitor = ctx.socket(zmq::PAIR).unwrap();
    monitor.connect(&address).unwrap();
    (socket, monitor)
}

const HEARTBEAT_IVL: Duration = Duration::from_millis(100);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(300);
/// How long heartbeating connections are watched: many intervals and timeouts.
const WATCH: Duration = Duration::from_millis(1_200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_heartbeats_are_answered_and_the_connection_stays_up() {
    timeout(TEST_TIMEOUT, async {
        let ctx = zmq::Context::new();
        let pull = Pull::new();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let (push, monitor) = monitored(&ctx, zmq::PUSH, "libzmq-heartbeats");
        push.set_heartbeat_ivl(HEARTBEAT_IVL.as_millis() as i32)
            .unwrap();
        push.set_heartbeat_timeout(HEARTBEAT_TIMEOUT.as_millis() as i32)
            .unwrap();
        push.connect(&endpoint.to_string()).unwrap();
        push.send("before", 0).unwrap();
        assert_eq!(pull.recv().await.unwrap().frames()[0], "before");

        // libzmq PINGs every interval and drops the connection if no traffic (our PONGs, as a
        // PULL sends nothing else) arrives within its timeout.
        tokio::time::sleep(WATCH).await;
        push.send("after", 0).unwrap();
        assert_eq!(pull.recv().await.unwrap().frames()[0], "after");
        let events = drain_monitor(&monitor);
        assert!(
            !events.contains(&zmq::SocketEvent::DISCONNECTED),
            "libzmq dropped the connection: {events:?}"
        );
        let handshakes = events
            .iter()
            .filter(|e| **e == zmq::SocketEvent::HANDSHAKE_SUCCEEDED)
            .count();
        assert_eq!(handshakes, 1, "{events:?}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferromq_heartbeats_keep_a_libzmq_peer_connected() {
    timeout(TEST_TIMEOUT, async {
        let ctx = zmq::Context::new();
        let (pull, monitor) = monitored(&ctx, zmq::PULL, "ferromq-heartbeats");
        pull.bind("tcp://127.0.0.1:0").unwrap();
        let endpoint = pull.get_last_endpoint().unwrap().unwrap();
        let push = push_with(|o| {
            o.heartbeat_ivl = Some(HEARTBEAT_IVL);
            o.heartbeat_timeout = Some(HEARTBEAT_TIMEOUT);
        });
        push.connect(endpoint).unwrap();
        push.send("before").await.unwrap();
        let pull = tokio::task::spawn_blocking(move || {
            assert_eq!(pull.recv_bytes(0).unwrap(), b"before");
            pull
        })
        .await
        .unwrap();

        // We PING, libzmq answers PONG; without the answers we would drop the peer.
        tokio::time::sleep(WATCH).await;
        assert_eq!(push.peer_count(), 1);
        push.send("after").await.unwrap();
        let pull = tokio::task::spawn_blocking(move || {
            assert_eq!(pull.recv_bytes(0).unwrap(), b"after");
            pull
        })
        .await
        .unwrap();
        let events = drain_monitor(&monitor);
        assert!(
            !events.contains(&zmq::SocketEvent::DISCONNECTED),
            "the connection dropped: {events:?}"
        );
        let accepted = events
            .iter()
            .filter(|e| **e == zmq::SocketEvent::ACCEPTED)
            .count();
        assert_eq!(accepted, 1, "{events:?}");
        drop(pull);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn ping_is_answered_with_pong_echoing_the_context() {
    timeout(TEST_TIMEOUT, async {
        let pull = Pull::new();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let mut raw = connect_raw(&endpoint).await;
        let leftover = raw_handshake(&mut raw, SocketType::Push).await;
        assert!(leftover.is_empty());
        // PING: command flag, 11 bytes: name "PING", TTL 0, context "ctx1".
        raw.write_all(b"\x04\x0b\x04PING\x00\x00ctx1")
            .await
            .unwrap();
        let mut pong = [0u8; 11];
        raw.read_exact(&mut pong).await.unwrap();
        assert_eq!(&pong, b"\x04\x09\x04PONGctx1");
    })
    .await
    .unwrap();
}

/// Checks what a peer that was never answered saw before the heartbeating side hung up: at
/// least one PING (TTL 0 as no `heartbeat_ttl` is set, empty context), nothing else, and the
/// drop no sooner than a PING could time out.
fn assert_only_pings_until_the_timeout(ready_at: Instant, received: &[u8]) {
    assert!(
        ready_at.elapsed() >= HEARTBEAT_IVL + HEARTBEAT_TIMEOUT,
        "dropped before the first PING could time out"
    );
    let frames = frames(received);
    assert!(!frames.is_empty(), "no PING before the drop");
    for frame in &frames {
        assert_eq!(frame, &(0x04, b"\x04PING\x00\x00".to_vec()));
    }
}

#[tokio::test]
async fn silent_peer_is_dropped_after_the_heartbeat_timeout() {
    timeout(TEST_TIMEOUT, async {
        let pull = pull_with(|o| {
            o.heartbeat_ivl = Some(HEARTBEAT_IVL);
            o.heartbeat_timeout = Some(HEARTBEAT_TIMEOUT);
        });
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let mut raw = connect_raw(&endpoint).await;
        let leftover = raw_handshake(&mut raw, SocketType::Push).await;
        let ready_at = Instant::now();
        // Never answer: not even PONG.
        let received = read_to_eof(&mut raw, leftover).await;
        assert_only_pings_until_the_timeout(ready_at, &received);
        assert_eq!(pull.peer_count(), 0);
    })
    .await
    .unwrap();
}

/// RFC 37: a connecting socket whose peer stops answering PINGs drops the connection after
/// the heartbeat timeout and then reconnects, as libzmq does.
#[tokio::test]
async fn connecting_side_reconnects_after_its_heartbeat_times_out() {
    timeout(TEST_TIMEOUT, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("tcp://{}", listener.local_addr().unwrap());
        let push = push_with(|o| {
            o.heartbeat_ivl = Some(HEARTBEAT_IVL);
            o.heartbeat_timeout = Some(HEARTBEAT_TIMEOUT);
            o.reconnect_ivl = Some(Duration::from_millis(10));
        });
        push.connect(endpoint.as_str()).unwrap();

        let (mut first, _) = listener.accept().await.unwrap();
        let leftover = raw_handshake(&mut first, SocketType::Pull).await;
        let ready_at = Instant::now();
        // Never answer the PINGs: the PUSH must give up on this connection...
        let received = read_to_eof(&mut first, leftover).await;
        assert_only_pings_until_the_timeout(ready_at, &received);
        // ...and come back on its own, completing a new handshake.
        let (mut second, _) = listener.accept().await.unwrap();
        raw_handshake(&mut second, SocketType::Pull).await;
    })
    .await
    .unwrap();
}

const SNDHWM: usize = 10;
const BIG_MSG_BYTES: usize = 64 * 1024;
/// More 64 KiB messages than kernel socket buffers can absorb (several MiB) plus the HWM: if
/// the PUSH accepted this many, its queue is not bounded.
const MAX_ACCEPTED_MSGS: usize = 2_000;

/// Connects `push` to a raw PULL that completes the handshake and then never reads, and sends
/// until the HWM stops the PUSH; returns how many messages were accepted and the raw stream
/// (keep it open).
async fn fill_until_would_block(push: &Push) -> (usize, TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    push.connect(Endpoint::from_socket_addr(listener.local_addr().unwrap()))
        .unwrap();
    let (mut raw, _) = listener.accept().await.unwrap();
    raw_handshake(&mut raw, SocketType::Pull).await;
    let payload = bytes::Bytes::from(vec![7u8; BIG_MSG_BYTES]);
    let mut accepted = 0;
    loop {
        match push.try_send(payload.clone()) {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert!(matches!(e.error, Error::WouldBlock), "{e}");
                assert_eq!(e.message, Message::from(payload), "message handed back");
                return (accepted, raw);
            }
        }
        assert!(
            accepted <= MAX_ACCEPTED_MSGS,
            "the PUSH never pushed back on a peer that does not read"
        );
        // Let the connection task move what it can into the kernel.
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn try_send_at_hwm_would_block_and_hands_the_message_back() {
    timeout(TEST_TIMEOUT, async {
        let push = push_with(|o| o.sndhwm = SNDHWM);
        let (accepted, _raw) = fill_until_would_block(&push).await;
        assert!(accepted >= SNDHWM, "blocked after {accepted} messages");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn send_at_hwm_times_out_and_hands_the_message_back() {
    timeout(TEST_TIMEOUT, async {
        let send_timeout = Duration::from_millis(200);
        let push = push_with(|o| {
            o.sndhwm = SNDHWM;
            o.send_timeout = Some(send_timeout);
        });
        let (_, _raw) = fill_until_would_block(&push).await;
        let started = Instant::now();
        let err = push.send("one too many").await.unwrap_err();
        assert!(
            matches!(err.error, Error::Timeout(t) if t == send_timeout),
            "{err}"
        );
        assert!(started.elapsed() >= send_timeout);
        assert_eq!(err.into_message(), Message::from("one too many"));
    })
    .await
    .unwrap();
}
