//! The engine under tokio's paused clock: connection tasks driven through scripted IO
//! ([`mock_io`](super::mock_io)), so handshake timeouts, heartbeats, linger and reconnect
//! backoff are checked to the virtual millisecond, with no kernel and no real sleep.

use super::mock_io::{self, MockPeer};
use super::transport::Stream;
use super::{Core, DirectWrite, Pattern, SocketCore, State, connection};
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::message::Message;
use crate::monitor::MonitorEventKind;
use crate::options::SocketOptions;
use crate::pattern::PeerId;
use crate::wire::{Command, Greeting, Metadata, SocketType};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// A DEALER-like pattern: every peer is fair-queued in and round-robined out.
#[derive(Debug)]
struct TestPattern;

impl Pattern for TestPattern {
    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool {
        core.inbox.add_peer(peer);
        core.lb.add_peer(peer);
        true
    }

    fn detach(&mut self, core: &mut Core, peer: PeerId) {
        core.lb.remove_peer(peer);
    }
}

fn socket(options: SocketOptions) -> SocketCore<TestPattern> {
    SocketCore::new(SocketType::Dealer, options, TestPattern).unwrap()
}

/// Runs a connection to a scripted peer, as if accepted on a bound endpoint.
fn connect_mock(socket: &SocketCore<TestPattern>) -> MockPeer {
    let (io, peer) = mock_io::pair();
    let shared = socket.shared.clone();
    let endpoint = Endpoint::Ipc("mock".into());
    let id = shared
        .lock()
        .core
        .add_endpoint(endpoint.clone(), false, None);
    let link = connection::Link {
        id,
        endpoint,
        peer: Some("mock peer".into()),
        reconnects: 0,
        slot: None,
    };
    tokio::spawn(connection::run(shared, Stream::Mock(io), link));
    peer
}

fn command(command: &Command) -> Vec<u8> {
    let mut buf = BytesMut::new();
    command.encode(&mut buf);
    buf.to_vec()
}

fn ready(socket_type: &str, identity: Option<&str>) -> Vec<u8> {
    let mut meta = Metadata::new();
    meta.insert(
        "Socket-Type",
        Bytes::copy_from_slice(socket_type.as_bytes()),
    );
    if let Some(id) = identity {
        meta.insert("Identity", Bytes::copy_from_slice(id.as_bytes()));
    }
    command(&Command::Ready(meta))
}

fn ping(ttl_deciseconds: u16, context: &str) -> Vec<u8> {
    command(&Command::Ping {
        ttl_deciseconds,
        context: Bytes::copy_from_slice(context.as_bytes()),
    })
}

fn pong(context: &str) -> Vec<u8> {
    command(&Command::Pong {
        context: Bytes::copy_from_slice(context.as_bytes()),
    })
}

/// Completes the handshake from the peer's side, checking every byte we send.
async fn handshake(peer: &MockPeer) {
    assert_eq!(peer.read_exact(64).await, Greeting::null().encode());
    let mut theirs = Greeting::null().encode().to_vec();
    theirs.extend_from_slice(&ready("DEALER", None));
    peer.send(&theirs);
    let ours = ready("DEALER", Some(""));
    assert_eq!(peer.read_exact(ours.len()).await, ours);
}

async fn send(socket: &SocketCore<TestPattern>, text: &str) {
    socket
        .send_with(Message::from(text.to_owned()), |state, slot, cx| {
            state.core.send_round_robin(slot, cx).map(|r| r.map(drop))
        })
        .await
        .unwrap();
}

async fn recv(socket: &SocketCore<TestPattern>) -> Message {
    socket
        .recv_with(|state: &mut State<TestPattern>, cx: &mut Context<'_>| {
            state.core.recv_fair_message(cx, |_| true)
        })
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn handshake_then_messages_both_ways_byte_for_byte() {
    let socket = socket(SocketOptions::default());
    let peer = connect_mock(&socket);
    handshake(&peer).await;
    send(&socket, "hi").await;
    assert_eq!(peer.read_exact(4).await, b"\x00\x02hi");
    peer.send(b"\x01\x01a\x00\x02bc");
    let message = recv(&socket).await;
    assert_eq!(message.frames(), ["a", "bc"]);
}

#[tokio::test(start_paused = true)]
async fn silent_peer_is_dropped_exactly_at_the_handshake_interval() {
    let options = SocketOptions {
        handshake_ivl: Some(Duration::from_secs(2)),
        ..SocketOptions::default()
    };
    let socket = socket(options);
    let start = Instant::now();
    let peer = connect_mock(&socket);
    peer.closed().await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    // Only our greeting: no ERROR before the peer has even greeted.
    assert_eq!(peer.take_written(), Greeting::null().encode());
}

#[tokio::test(start_paused = true)]
async fn a_handshake_that_times_out_is_reported_with_no_detail_then_disconnected() {
    let options = SocketOptions {
        handshake_ivl: Some(Duration::from_secs(2)),
        ..SocketOptions::default()
    };
    let socket = socket(options);
    let mut monitor = socket.monitor();
    let peer = connect_mock(&socket);
    peer.closed().await;
    let failed = monitor.next().await.unwrap();
    assert_eq!(
        failed.to_string(),
        "handshake_failed_no_detail ipc://mock mock peer handshake did not complete in time"
    );
    let gone = monitor.next().await.unwrap();
    assert_eq!(gone.kind, MonitorEventKind::Disconnected);
    assert!(monitor.try_next().is_none());
}

#[tokio::test(start_paused = true)]
async fn missing_ready_is_told_why_at_the_handshake_interval() {
    let options = SocketOptions {
        handshake_ivl: Some(Duration::from_secs(2)),
        ..SocketOptions::default()
    };
    let socket = socket(options);
    let start = Instant::now();
    let peer = connect_mock(&socket);
    peer.read_exact(64).await;
    peer.send(&Greeting::null().encode());
    let ours = ready("DEALER", Some(""));
    assert_eq!(peer.read_exact(ours.len()).await, ours);
    peer.closed().await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let error = command(&Command::Error {
        reason: Bytes::from("handshake did not complete in time"),
    });
    assert_eq!(peer.take_written(), error);
}

#[tokio::test(start_paused = true)]
async fn heartbeats_ping_each_interval_and_drop_a_silent_peer_after_the_timeout() {
    let options = SocketOptions {
        heartbeat_ivl: Some(Duration::from_secs(1)),
        heartbeat_timeout: Some(Duration::from_secs(3)),
        heartbeat_ttl: Some(Duration::from_millis(2500)),
        ..SocketOptions::default()
    };
    let socket = socket(options);
    let peer = connect_mock(&socket);
    handshake(&peer).await;
    let ready_at = Instant::now();
    // TTL 2.5 s = 25 deciseconds, context empty.
    let expected_ping = ping(25, "");
    for second in 1..=3 {
        assert_eq!(peer.read_exact(expected_ping.len()).await, expected_ping);
        assert_eq!(ready_at.elapsed(), Duration::from_secs(second));
    }
    // The first PING went out at 1 s; nothing came back in the 3 s after it.
    peer.closed().await;
    assert_eq!(ready_at.elapsed(), Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn any_traffic_from_the_peer_resets_the_heartbeat_timeout() {
    let options = SocketOptions {
        heartbeat_ivl: Some(Duration::from_secs(1)),
        heartbeat_timeout: Some(Duration::from_secs(2)),
        ..SocketOptions::default()
    };
    let socket = socket(options);
    let peer = connect_mock(&socket);
    handshake(&peer).await;
    let ready_at = Instant::now();
    let expected_ping = ping(0, "");
    for _ in 0..5 {
        peer.read_exact(expected_ping.len()).await;
        peer.send(&pong(""));
    }
    assert_eq!(ready_at.elapsed(), Duration::from_secs(5));
    assert_eq!(socket.peer_count(), 1, "an answering peer was dropped");
}

#[tokio::test(start_paused = true)]
async fn peer_ttl_drops_the_connection_when_the_peer_goes_quiet() {
    let socket = socket(SocketOptions::default());
    let peer = connect_mock(&socket);
    handshake(&peer).await;
    let pinged_at = Instant::now();
    peer.send(&ping(15, "ctx"));
    assert_eq!(peer.read_exact(pong("ctx").len()).await, pong("ctx"));
    peer.closed().await;
    assert_eq!(pinged_at.elapsed(), Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn pongs_coalesce_while_the_peer_does_not_read() {
    let socket = socket(SocketOptions::default());
    let peer = connect_mock(&socket);
    handshake(&peer).await;
    peer.set_write_room(Some(0));
    for i in 0..10_000 {
        peer.send(&ping(0, &format!("c{i}")));
    }
    // Virtual time only moves once the connection has consumed every PING.
    tokio::time::sleep(Duration::from_millis(1)).await;
    peer.set_write_room(None);
    tokio::time::sleep(Duration::from_millis(1)).await;
    // At most the PONG taken for writing before the peer stopped reading, and one more
    // answering the newest PING: 10,000 PINGs did not queue 10,000 PONGs.
    let written = peer.take_written();
    let last = pong("c9999");
    assert!(written.ends_with(&last), "the newest PING went unanswered");
    assert!(
        written.len() <= 2 * last.len(),
        "{} bytes of PONGs queued",
        written.len()
    );
}

#[tokio::test(start_paused = true)]
async fn peer_end_of_stream_releases_the_peer() {
    let socket = socket(SocketOptions::default());
    let peer = connect_mock(&socket);
    handshake(&peer).await;
    assert_eq!(socket.peer_count(), 1);
    peer.close();
    peer.closed().await;
    assert_eq!(socket.peer_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn close_returns_at_the_linger_deadline_when_the_peer_does_not_read() {
    let options = SocketOptions {
        linger: Some(Duration::from_secs(1)),
        ..SocketOptions::default()
    };
    let socket = socket(options);
    let peer = connect_mock(&socket);
    handshake(&peer).await;
    peer.set_write_room(Some(0));
    send(&socket, "stuck").await;
    let start = Instant::now();
    socket.close().await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    peer.closed().await;
    assert!(peer.take_written().is_empty());
}

#[tokio::test(start_paused = true)]
async fn close_without_linger_limit_waits_until_everything_is_written() {
    let socket = Arc::new(socket(SocketOptions::default()));
    let peer = connect_mock(&socket);
    handshake(&peer).await;
    peer.set_write_room(Some(0));
    send(&socket, "late").await;
    let closer = socket.clone();
    let closing = tokio::spawn(async move { closer.close().await });
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(!closing.is_finished(), "close gave up on a queued message");
    peer.set_write_room(None);
    closing.await.unwrap();
    assert_eq!(peer.take_written(), b"\x00\x04late");
    assert!(matches!(
        socket
            .recv_with(|state, cx| state.core.recv_fair(cx).map(|r| r.map(drop)))
            .await,
        Err(Error::Closed)
    ));
}

/// Virtual times of the connector's failed attempts, from its debug events.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<Instant>>>);

struct MessageText(String);

impl tracing::field::Visit for MessageText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Attempts {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = MessageText(String::new());
        event.record(&mut text);
        if text.0.contains("connect failed") {
            self.0.lock().unwrap().push(Instant::now());
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(start_paused = true)]
async fn reconnect_backs_off_exponentially_with_jitter_up_to_the_maximum() {
    let attempts = Attempts::default();
    let _guard = tracing::subscriber::set_default(attempts.clone());
    let options = SocketOptions {
        reconnect_ivl: Some(Duration::from_millis(100)),
        reconnect_ivl_max: Some(Duration::from_millis(800)),
        ..SocketOptions::default()
    };
    let socket = socket(options);
    let path = format!("/nonexistent-ferromq-dir-{}/peer.sock", std::process::id());
    socket.connect(format!("ipc://{path}")).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let times = attempts.0.lock().unwrap().clone();
    assert!(times.len() >= 8, "only {} attempts in 10 s", times.len());
    for (k, gap) in times.windows(2).map(|w| w[1] - w[0]).enumerate() {
        let ivl = Duration::from_millis(100 << k.min(3));
        assert!(
            gap >= ivl && gap < 2 * ivl,
            "attempt {} came {gap:?} after the one before, outside [{ivl:?}, {:?})",
            k + 1,
            2 * ivl
        );
    }
}

#[tokio::test(start_paused = true)]
async fn disconnect_detaches_at_once_and_the_connection_ends_after_flushing() {
    let socket = socket(SocketOptions::default());
    let peer = connect_mock(&socket);
    handshake(&peer).await;
    peer.set_write_room(Some(0));
    send(&socket, "queued").await;
    let endpoint = Endpoint::Ipc("mock".into());
    socket.disconnect(&endpoint).unwrap();
    assert_eq!(socket.peer_count(), 0);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut slot = Some(Message::from("after"));
    assert!(
        matches!(
            socket.lock().core.send_round_robin(&mut slot, &mut cx),
            Poll::Pending
        ),
        "a send picked the disconnected peer"
    );
    peer.set_write_room(None);
    peer.closed().await;
    assert_eq!(peer.take_written(), b"\x00\x06queued");
}

/// A socket with `options` whose senders write to the stream as `direct_write` says, with a
/// connection to a scripted peer whose handshake completed.
async fn with_direct_write(
    options: SocketOptions,
    direct_write: DirectWrite,
) -> (SocketCore<TestPattern>, MockPeer) {
    let socket = socket(options);
    socket.lock().core.direct_write = direct_write;
    let peer = connect_mock(&socket);
    handshake(&peer).await;
    (socket, peer)
}

/// A sender that writes to the stream itself (REQ, REP) must wait behind what the connection
/// task holds: here the rest of a message whose direct write the kernel cut short, which
/// the task took and is waiting to write when the kernel frees room. A DEALER pipelining
/// requests to a REP gets the next reply at exactly that moment.
#[tokio::test(start_paused = true)]
async fn a_direct_write_never_overtakes_the_rest_the_connection_task_holds() {
    let (socket, peer) = with_direct_write(SocketOptions::default(), DirectWrite::Always).await;
    peer.set_write_room(Some(3));
    send(&socket, "hello").await;
    while socket
        .lock()
        .core
        .peers
        .iter()
        .any(|(_, p)| !p.out.is_empty())
    {
        tokio::task::yield_now().await;
    }
    // Room again; the send below runs before the woken connection task does.
    peer.set_write_room(None);
    send(&socket, "next").await;
    assert_eq!(peer.read_exact(13).await, b"\x00\x05hello\x00\x04next");
}

/// A socket with `options` and a connection to a scripted peer whose handshake completed.
async fn connected(options: SocketOptions) -> (SocketCore<TestPattern>, MockPeer) {
    let socket = socket(options);
    let peer = connect_mock(&socket);
    handshake(&peer).await;
    (socket, peer)
}

/// [`connected`] with `rcvhwm`.
async fn connected_with_rcvhwm(rcvhwm: usize) -> (SocketCore<TestPattern>, MockPeer) {
    connected(SocketOptions {
        rcvhwm,
        ..SocketOptions::default()
    })
    .await
}

/// A connection that stopped reading at the RCVHWM resumes once half of the inbox is free,
/// not as soon as one message was read: a slow reader would otherwise wake its connection
/// task for every message, to hand over one message each time.
#[tokio::test(start_paused = true)]
async fn a_full_inbox_resumes_reading_once_half_of_it_is_free() {
    let (socket, peer) = connected_with_rcvhwm(4).await;
    peer.send(&b"\x00\x01a".repeat(10));
    let queued = || socket.lock().core.inbox.total_queued();
    while queued() < 4 {
        tokio::task::yield_now().await;
    }
    let turns = || async {
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    };
    recv(&socket).await;
    turns().await;
    assert_eq!(queued(), 3, "reading resumed with one slot free");
    recv(&socket).await;
    turns().await;
    assert_eq!(
        queued(),
        4,
        "reading did not resume with half the inbox free"
    );
    for _ in 0..8 {
        recv(&socket).await;
    }
}

/// Whether a receiving call polled the socket's only connection last (see `super::help`).
fn app_reads(socket: &SocketCore<TestPattern>) -> bool {
    let state = socket.lock();
    state
        .core
        .peers
        .iter()
        .next()
        .is_some_and(|(_, p)| p.app_reads)
}

/// Waits, without reading for the connection (as a poller does), until the inbox holds a
/// message.
async fn inbox_not_empty(socket: &SocketCore<TestPattern>) {
    socket
        .wait_until(|state, cx| match state.core.inbox.total_queued() {
            0 => {
                state.core.park_recv(cx);
                Poll::Pending
            }
            _ => Poll::Ready(()),
        })
        .await
}

const TEST_LIMIT: Duration = Duration::from_secs(10);

/// A `recv` that finds nothing queued takes the socket's only connection over: the stream's
/// readiness then wakes that call, not the connection task, and the bytes are read and
/// delivered by the waiting call.
#[tokio::test(start_paused = true)]
async fn a_waiting_receive_reads_for_its_connection() {
    let (socket, peer) = connected(SocketOptions::default()).await;
    let mut waiting = std::pin::pin!(recv(&socket));
    assert!(futures::poll!(&mut waiting).is_pending());
    peer.send(b"\x00\x05hello");
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    let queued = socket.lock().core.inbox.total_queued();
    assert_eq!(
        queued, 0,
        "the connection task was woken and read the bytes"
    );
    let message = tokio::time::timeout(TEST_LIMIT, waiting).await.unwrap();
    assert_eq!(message.frames(), ["hello"]);
    assert!(app_reads(&socket), "the connection task read it instead");
}

/// A `send` that finds its connection's queue at the SNDHWM writes the queue out itself
/// instead of parking until the connection task has run: here the task has not run since
/// the first message woke it, and the send completes on its first poll.
#[tokio::test(start_paused = true)]
async fn a_send_at_the_hwm_writes_for_its_connection() {
    let (socket, peer) = with_direct_write(
        SocketOptions {
            sndhwm: 2,
            ..SocketOptions::default()
        },
        DirectWrite::Never,
    )
    .await;
    send(&socket, "a").await;
    send(&socket, "b").await;
    let mut sending = std::pin::pin!(send(&socket, "c"));
    assert!(
        futures::poll!(&mut sending).is_ready(),
        "the send waited for the connection task"
    );
    assert_eq!(peer.take_written(), b"\x00\x01a\x00\x01b");
    let rest = tokio::time::timeout(TEST_LIMIT, peer.read_exact(3)).await;
    assert_eq!(
        rest.expect("the last message was never written"),
        b"\x00\x01c"
    );
}

/// A fan-out sets aside the connection tasks it gives work to, to wake them once it has
/// released the socket lock: the task does not run before it is woken, and runs then.
#[tokio::test(start_paused = true)]
async fn a_deferred_wake_reaches_the_connection_task_only_when_woken() {
    let (socket, peer) = with_direct_write(SocketOptions::default(), DirectWrite::Never).await;
    let wakes = {
        let mut state = socket.shared.lock();
        let core = &mut state.core;
        let id = core.peers.iter().next().map(|(id, _)| id).expect("a peer");
        core.defer_task_wakes();
        core.enqueue(id, Message::from("a"));
        core.take_deferred_wakes()
    };
    assert_eq!(wakes.len(), 1, "the connection task was not set aside");
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    assert!(
        peer.take_written().is_empty(),
        "the connection task ran before it was woken"
    );
    wakes.into_iter().for_each(std::task::Waker::wake);
    let written = tokio::time::timeout(TEST_LIMIT, peer.read_exact(3)).await;
    assert_eq!(written.expect("the woken task did not write"), b"\x00\x01a");
}

/// A send that took its connection over at the SNDHWM and found the peer not reading, then
/// was dropped (a timeout here), hands writing back: once the peer reads again, the
/// connection task writes what the send had taken and what was queued after it.
#[tokio::test(start_paused = true)]
async fn a_send_cancelled_while_it_writes_for_the_connection_hands_writing_back() {
    let (socket, peer) = with_direct_write(
        SocketOptions {
            sndhwm: 1,
            ..SocketOptions::default()
        },
        DirectWrite::Never,
    )
    .await;
    peer.set_write_room(Some(0));
    send(&socket, "a").await;
    // Takes "a" out of the queue for the stream, which has no room, and queues "b".
    send(&socket, "b").await;
    let cancelled = tokio::time::timeout(Duration::from_millis(5), send(&socket, "c")).await;
    assert!(cancelled.is_err(), "the queue had room for a third message");
    peer.set_write_room(None);
    let written = tokio::time::timeout(TEST_LIMIT, peer.read_exact(6)).await;
    assert_eq!(
        written.expect("nobody wrote once the peer read again"),
        b"\x00\x01a\x00\x01b"
    );
}

/// A receiving call dropped while it waits for the connection it polled hands the
/// connection back to its task: what arrives next is read for a poller that does not read.
#[tokio::test(start_paused = true)]
async fn a_receive_cancelled_while_it_reads_for_the_connection_hands_reading_back() {
    let (socket, peer) = connected(SocketOptions::default()).await;
    let cancelled = tokio::time::timeout(Duration::from_millis(5), recv(&socket)).await;
    assert!(cancelled.is_err());
    peer.send(b"\x00\x05hello");
    tokio::time::timeout(TEST_LIMIT, inbox_not_empty(&socket))
        .await
        .expect("the connection task was never woken for the bytes");
    assert!(!app_reads(&socket));
}

/// A waiting `recv` reads only for a socket's only connection. Once a second peer arrives,
/// a wake-up that reached the call for the first connection goes on to that connection's
/// task, which reads the bytes.
#[tokio::test(start_paused = true)]
async fn a_receive_that_may_no_longer_read_for_its_connection_hands_it_back() {
    let (socket, first) = connected(SocketOptions::default()).await;
    let mut waiting = std::pin::pin!(recv(&socket));
    assert!(futures::poll!(&mut waiting).is_pending());
    let second = connect_mock(&socket);
    handshake(&second).await;
    first.send(b"\x00\x05hello");
    let message = tokio::time::timeout(TEST_LIMIT, waiting)
        .await
        .expect("the wake-up for the first connection was kept by the call");
    assert_eq!(message.frames(), ["hello"]);
}

/// A receiving call that read a batch larger than the inbox leaves the rest for itself, so
/// the room it frees does not wake the connection task. If it does not come back for it,
/// the task takes reading up again within `APP_LEASE`.
#[tokio::test(start_paused = true)]
async fn a_receiver_that_left_the_inbox_full_and_went_away_has_the_rest_read_for_it() {
    let (socket, peer) = connected_with_rcvhwm(4).await;
    // The bytes arrive while the call waits, so they wake it and not the task.
    let mut waiting = std::pin::pin!(recv(&socket));
    assert!(futures::poll!(&mut waiting).is_pending());
    peer.send(&b"\x00\x01a".repeat(10));
    tokio::time::timeout(TEST_LIMIT, waiting).await.unwrap();
    assert!(app_reads(&socket));
    let queued = || socket.lock().core.inbox.total_queued();
    assert_eq!(queued(), 3, "the inbox held 4 and the call took one");
    while queued() > 0 {
        assert!(socket.try_recv_with(|s, cx| s.core.recv_fair(cx)).is_ok());
    }
    let start = Instant::now();
    tokio::time::timeout(TEST_LIMIT, inbox_not_empty(&socket))
        .await
        .expect("nobody read the rest");
    assert!(
        start.elapsed() <= Duration::from_millis(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(queued(), 4);
}

/// On a current-thread runtime the connection task writes only when the sending task gives
/// the thread up, so a DEALER, ROUTER, PUSH or PAIR sender writes a sparse message itself,
/// in the send call; messages closer together than `SPARSE_GAP` go to the connection task,
/// which writes them as a batch.
#[tokio::test(start_paused = true)]
async fn on_a_current_thread_runtime_a_sparse_message_leaves_within_the_send_call() {
    let (socket, peer) = with_direct_write(SocketOptions::default(), DirectWrite::Sparse).await;
    send(&socket, "a").await;
    assert_eq!(
        peer.take_written(),
        b"\x00\x01a",
        "not written in the send call"
    );
    send(&socket, "b").await;
    assert!(
        peer.take_written().is_empty(),
        "a dense message was written directly"
    );
    assert_eq!(peer.read_exact(3).await, b"\x00\x01b");
    tokio::time::advance(super::peer::SPARSE_GAP).await;
    send(&socket, "c").await;
    assert_eq!(
        peer.take_written(),
        b"\x00\x01c",
        "sparse again, not written at once"
    );
}

/// When a connection ends, the rest of a message a direct write left half written is dropped
/// from a persistent slot's queue (it must not start the next connection's stream), and the
/// messages queued behind it stay for the next connection.
#[tokio::test]
async fn a_lost_connection_drops_only_the_rest_of_a_half_written_message() {
    let socket = socket(SocketOptions::default());
    let mut state = socket.lock();
    let id = state.core.peers.insert(super::Peer {
        alive: true,
        persistent: true,
        ..super::Peer::default()
    });
    let peer = state.core.peers.get_mut(id).unwrap();
    peer.out.push_bytes(b"llo");
    peer.out.push_message(&Message::from("next"));
    peer.out_msgs = 2;
    peer.partial = 3;
    state.connection_ended(id);
    let peer = state.core.peers.get(id).expect("a persistent slot stays");
    let mut slices = [std::io::IoSlice::new(&[]); 8];
    let n = peer.out.chunks_vectored(&mut slices);
    let queued: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
    assert_eq!(queued, b"\x00\x04next");
    assert_eq!(peer.out_msgs, 1);
}

/// A current-thread runtime on tokio's paused clock, for one property-test case.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// One step of [`direct_and_task_writes_keep_every_message_whole_and_in_order`].
#[derive(Debug, Clone)]
enum WriteStep {
    /// Send a message of this many bytes (the sender may write it to the stream itself).
    Send(usize),
    /// The kernel's room changes: `None` unlimited, `Some(0)` full.
    Room(Option<usize>),
    /// Let the connection task run this many scheduler turns.
    Run(usize),
}

fn write_step() -> impl proptest::strategy::Strategy<Value = WriteStep> {
    use proptest::prelude::*;
    prop_oneof![
        (1usize..40).prop_map(WriteStep::Send),
        proptest::option::of(0usize..30).prop_map(WriteStep::Room),
        (0usize..4).prop_map(WriteStep::Run),
    ]
}

proptest::proptest! {
    /// Whatever the order of sends, kernel push-back and connection task turns, direct writes
    /// and the connection task's writes share one stream without splitting or reordering a
    /// message: the peer reads every frame whole, in the order sent, and nothing else.
    #[test]
    fn direct_and_task_writes_keep_every_message_whole_and_in_order(
        steps in proptest::collection::vec(write_step(), 1..60)
    ) {
        let runtime = paused_runtime();
        let (written, expected) = runtime.block_on(async {
            let (socket, peer) = with_direct_write(SocketOptions::default(), DirectWrite::Always).await;
            let mut expected = Vec::new();
            for (i, step) in steps.into_iter().enumerate() {
                match step {
                    WriteStep::Send(len) => {
                        let body = vec![i as u8; len];
                        expected.extend_from_slice(&[0, len as u8]);
                        expected.extend_from_slice(&body);
                        let sent = socket.send_with(Message::from(body), |state, slot, cx| {
                            state.core.send_round_robin(slot, cx).map(|r| r.map(drop))
                        });
                        tokio::time::timeout(Duration::from_secs(1), sent)
                            .await
                            .expect("a send under the HWM waited")
                            .unwrap();
                    }
                    WriteStep::Room(room) => peer.set_write_room(room),
                    WriteStep::Run(turns) => {
                        for _ in 0..turns {
                            tokio::task::yield_now().await;
                        }
                    }
                }
            }
            peer.set_write_room(None);
            let written = tokio::time::timeout(
                Duration::from_secs(1),
                peer.read_exact(expected.len()),
            )
            .await
            .expect("queued bytes were never written");
            // Let the task settle: nothing may follow the last message.
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert!(peer.take_written().is_empty(), "bytes after the last message");
            (written, expected)
        });
        proptest::prop_assert_eq!(written, expected);
    }
}

/// One step of [`every_message_arrives_whole_and_in_order_however_the_bytes_are_cut`].
#[derive(Debug, Clone)]
enum ReadStep {
    /// The peer's next this many bytes arrive.
    Arrive(usize),
    /// The application tries to receive without waiting.
    TryRecv,
    /// Let the connection task run this many scheduler turns.
    Run(usize),
}

fn read_step() -> impl proptest::strategy::Strategy<Value = ReadStep> {
    use proptest::prelude::*;
    prop_oneof![
        (1usize..700).prop_map(ReadStep::Arrive),
        Just(ReadStep::TryRecv),
        (0usize..4).prop_map(ReadStep::Run),
    ]
}

/// A message of one or two frames, each of `sizes` bytes filled with the message's number.
fn numbered_message(n: usize, sizes: &[usize]) -> (Message, Vec<u8>) {
    let mut wire = Vec::new();
    let frames: Vec<Bytes> = sizes
        .iter()
        .map(|&len| Bytes::from(vec![n as u8; len]))
        .collect();
    for (i, frame) in frames.iter().enumerate() {
        let more = u8::from(i + 1 < frames.len());
        match u8::try_from(frame.len()) {
            Ok(len) => wire.extend_from_slice(&[more, len]),
            Err(_) => {
                wire.push(more | 0x02);
                wire.extend_from_slice(&(frame.len() as u64).to_be_bytes());
            }
        }
        wire.extend_from_slice(frame);
    }
    (frames.into_iter().collect(), wire)
}

proptest::proptest! {
    /// Whatever the RCVHWM, however the peer's bytes are cut into arrivals and however
    /// receives interleave with them, every message reaches the application whole and in
    /// order: a full inbox pauses reading and room resumes it, with nothing lost, repeated
    /// or stalled.
    #[test]
    fn every_message_arrives_whole_and_in_order_however_the_bytes_are_cut(
        messages in proptest::collection::vec(
            proptest::collection::vec(
                proptest::prop_oneof![8 => 0usize..300, 1 => 4_000usize..9_000],
                1..3,
            ),
            1..40,
        ),
        steps in proptest::collection::vec(read_step(), 0..80),
        rcvhwm in 1usize..6,
    ) {
        let runtime = paused_runtime();
        let (received, expected) = runtime.block_on(async {
            let options = SocketOptions { rcvhwm, ..SocketOptions::default() };
            let socket = socket(options);
            let peer = connect_mock(&socket);
            handshake(&peer).await;
            let mut expected = Vec::new();
            let mut bytes = Vec::new();
            for (n, sizes) in messages.iter().enumerate() {
                let (message, wire) = numbered_message(n, sizes);
                expected.push(message);
                bytes.extend_from_slice(&wire);
            }
            let mut unsent = &bytes[..];
            let mut received = Vec::new();
            let try_recv = |socket: &SocketCore<TestPattern>| {
                socket.try_recv_with(|state: &mut State<TestPattern>, cx: &mut Context<'_>| {
                    state.core.recv_fair_message(cx, |_| true)
                })
            };
            for step in steps {
                match step {
                    ReadStep::Arrive(len) => {
                        let (now, later) = unsent.split_at(len.min(unsent.len()));
                        peer.send(now);
                        unsent = later;
                    }
                    ReadStep::TryRecv => match try_recv(&socket) {
                        Ok(message) => received.push(message),
                        Err(Error::WouldBlock) => {}
                        Err(e) => panic!("try_recv failed: {e}"),
                    },
                    ReadStep::Run(turns) => {
                        for _ in 0..turns {
                            tokio::task::yield_now().await;
                        }
                    }
                }
            }
            peer.send(unsent);
            while received.len() < expected.len() {
                let next = tokio::time::timeout(Duration::from_secs(1), recv(&socket));
                received.push(next.await.expect("a message never arrived"));
            }
            assert!(
                matches!(try_recv(&socket), Err(Error::WouldBlock)),
                "a message more than was sent"
            );
            (received, expected)
        });
        proptest::prop_assert_eq!(received, expected);
    }
}

/// One ZMTP data frame holding `body`, the last of its message.
fn data_frame(body: &[u8]) -> Vec<u8> {
    let mut frame = match u8::try_from(body.len()) {
        Ok(len) => vec![0x00, len],
        Err(_) => [&[0x02][..], &(body.len() as u64).to_be_bytes()].concat(),
    };
    frame.extend_from_slice(body);
    frame
}

/// An idle connection holds no read buffer and reads onto the stack: whatever arrives next,
/// one small message, a message far larger than the stack buffer in one piece, a frame
/// split across two arrivals either side of that buffer's size, or many messages at once,
/// comes out whole and in order.
#[tokio::test(start_paused = true)]
async fn after_a_trickle_every_arrival_is_read_whole_whatever_its_size_or_split() {
    let (socket, peer) = connected(SocketOptions::default()).await;
    let bodies: Vec<Vec<u8>> = [3, 40_000, 5_000, 300, 4_087]
        .iter()
        .enumerate()
        .map(|(i, &len)| vec![b'a' + i as u8; len])
        .collect();
    // One small message: a trickle, read onto the stack.
    let next = async || {
        tokio::time::timeout(TEST_LIMIT, recv(&socket))
            .await
            .unwrap()
    };
    peer.send(&data_frame(&bodies[0]));
    assert_eq!(next().await.frames(), [&bodies[0][..]]);
    // A 40,000-byte message in one piece, after the idle connection released its buffer.
    peer.send(&data_frame(&bodies[1]));
    assert_eq!(next().await.frames(), [&bodies[1][..]]);
    // Frames split across arrivals: the first part fills the stack buffer exactly, then
    // the first part is shorter than it.
    for (body, split) in [(&bodies[2], 4_096), (&bodies[3], 3)] {
        let frame = data_frame(body);
        let mut waiting = std::pin::pin!(recv(&socket));
        peer.send(&frame[..split]);
        assert!(futures::poll!(&mut waiting).is_pending());
        peer.send(&frame[split..]);
        let message = tokio::time::timeout(TEST_LIMIT, waiting).await.unwrap();
        assert_eq!(message.frames(), [&body[..]]);
    }
    // A frame that ends exactly at the stack buffer's size, and the messages behind it.
    let mut burst = data_frame(&bodies[4]);
    assert_eq!(burst.len(), 4_096);
    for body in &bodies[..4] {
        burst.extend_from_slice(&data_frame(body));
    }
    peer.send(&burst);
    for body in [&bodies[4], &bodies[0], &bodies[1], &bodies[2], &bodies[3]] {
        assert_eq!(next().await.frames(), [&body[..]]);
    }
}

/// Counts the wake-ups a task gets.
#[derive(Default)]
struct WakeCount(std::sync::atomic::AtomicUsize);

impl std::task::Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A receive that reads for its connection is woken once, by the readiness, and not again by
/// delivering what it read: it takes the message as its poll ends, and a wake-up of its own
/// would only bring it back for nothing (on a current-thread runtime, one more yield).
#[tokio::test(start_paused = true)]
async fn a_receive_is_not_woken_by_what_its_own_read_delivers() {
    let (socket, peer) = connected(SocketOptions::default()).await;
    let count = Arc::new(WakeCount::default());
    let waker = std::task::Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    let mut waiting = std::pin::pin!(recv(&socket));
    assert!(waiting.as_mut().poll(&mut cx).is_pending());
    peer.send(b"\x00\x05hello");
    let woken = count.0.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(woken, 1, "the readiness wakes the waiting receive");
    let Poll::Ready(message) = waiting.as_mut().poll(&mut cx) else {
        panic!("the receive read its connection and found nothing");
    };
    assert_eq!(message.frames(), ["hello"]);
    assert!(app_reads(&socket), "the connection task read it instead");
    let woken = count.0.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(woken, 1, "the receive was woken by its own delivery");
}
