//! The NULL handshake byte for byte: what libzmq 4.3 sends (captured live by a raw TCP
//! listener and stored in tests/fixtures/), what ferromq's wire layer sends for the same
//! socket type, and whether ferromq's decoder reads libzmq's READY.
//!
//! Set `FERROMQ_CAPTURE_FIXTURES=1` to rewrite the fixture files from a live capture
//! (tests/fixtures/README.md).

use bytes::BytesMut;
use ferromq::internals::wire::{Connection, ConnectionConfig, Event, SocketType};
use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a capture may wait for libzmq to connect or send.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(10);
/// Greeting length (RFC 23).
const GREETING_LEN: usize = 64;
/// The signature libzmq sends before waiting for ours: 0xFF, 8 padding bytes, 0x7F.
const SIGNATURE_LEN: usize = 10;
/// Offset of the last padding byte, where libzmq writes its routing-id length plus one.
const PADDING_LAST_BYTE: usize = 8;

const PUSH_FIXTURE: &str = "libzmq-4.3-push-null-handshake.bin";
const DEALER_FIXTURE: &str = "libzmq-4.3-dealer-identity-null-handshake.bin";
const DEALER_IDENTITY: &[u8] = b"worker-1";

/// Accepts one connection from a libzmq socket of `kind` and records its greeting and READY.
///
/// libzmq sends its 10-byte signature, waits for ours, then sends the rest of its greeting
/// and its READY without waiting for our READY; we answer with ferromq's greeting for
/// `our_type` and never send READY, so the capture holds exactly libzmq's opening bytes.
fn capture_libzmq_handshake(
    kind: zmq::SocketType,
    identity: Option<&[u8]>,
    our_type: SocketType,
) -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ctx = zmq::Context::new();
    let socket = ctx.socket(kind).unwrap();
    socket.set_linger(0).unwrap();
    if let Some(id) = identity {
        socket.set_identity(id).unwrap();
    }
    socket.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();

    let mut stream = accept_within(&listener, CAPTURE_TIMEOUT);
    stream.set_read_timeout(Some(CAPTURE_TIMEOUT)).unwrap();
    let mut captured = vec![0u8; SIGNATURE_LEN];
    stream.read_exact(&mut captured).unwrap();

    let mut ours = Connection::new(ConnectionConfig::new(our_type), Instant::now());
    let greeting = ours.take_transmit().unwrap();
    std::io::Write::write_all(&mut stream, &greeting).unwrap();

    let mut rest = vec![0u8; GREETING_LEN - SIGNATURE_LEN];
    stream.read_exact(&mut rest).unwrap();
    captured.extend_from_slice(&rest);
    captured.extend_from_slice(&read_frame(&mut stream));
    captured
}

/// Polls a non-blocking accept until a peer arrives or `limit` passes.
fn accept_within(listener: &TcpListener, limit: Duration) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return stream;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "libzmq never connected");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("accept failed: {e}"),
        }
    }
}

/// Reads one whole ZMTP frame (header and body) as raw bytes.
fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut frame = vec![0u8; 2];
    stream.read_exact(&mut frame).unwrap();
    let body_len = if frame[0] & 0x02 != 0 {
        let mut long = [0u8; 8];
        long[0] = frame[1];
        stream.read_exact(&mut long[1..]).unwrap();
        frame.extend_from_slice(&long[1..]);
        usize::try_from(u64::from_be_bytes(long)).unwrap()
    } else {
        usize::from(frame[1])
    };
    let start = frame.len();
    frame.resize(start + body_len, 0);
    stream.read_exact(&mut frame[start..]).unwrap();
    frame
}

fn fixture_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Compares a live capture with its stored fixture, or rewrites the fixture on request.
fn check_against_fixture(name: &str, captured: &[u8]) {
    if std::env::var_os("FERROMQ_CAPTURE_FIXTURES").is_some() {
        std::fs::write(fixture_path(name), captured).unwrap();
        return;
    }
    assert_eq!(
        captured,
        load_fixture(name),
        "libzmq's handshake differs from {name}"
    );
}

/// What ferromq's wire layer sends for `config`, given libzmq's greeting: our greeting, then
/// our READY.
fn ferromq_handshake(config: ConnectionConfig, libzmq_greeting: &[u8]) -> Vec<u8> {
    let now = Instant::now();
    let mut conn = Connection::new(config, now);
    let mut sent = conn.take_transmit().unwrap().to_vec();
    assert_eq!(
        sent.len(),
        GREETING_LEN,
        "nothing but the greeting comes first"
    );
    let mut input = BytesMut::from(libzmq_greeting);
    conn.handle_input(&mut input, now).unwrap();
    assert!(input.is_empty());
    sent.extend_from_slice(&conn.take_transmit().unwrap());
    sent
}

/// Feeds a captured handshake to a ferromq connection of `our_type` and returns the peer it
/// describes.
fn parse_with_ferromq(our_type: SocketType, captured: &[u8]) -> ferromq::internals::wire::PeerInfo {
    let now = Instant::now();
    let mut conn = Connection::new(ConnectionConfig::new(our_type), now);
    let mut input = BytesMut::from(captured);
    conn.handle_input(&mut input, now).unwrap();
    assert!(input.is_empty(), "bytes left over after READY");
    match conn.poll_event() {
        Some(Event::Ready(info)) => {
            assert_eq!(conn.poll_event(), None);
            *info
        }
        other => panic!("expected READY, got {other:?}"),
    }
}

#[test]
fn linked_libzmq_is_4_3() {
    let (major, minor, _) = zmq::version();
    assert_eq!((major, minor), (4, 3), "fixtures are from libzmq 4.3");
}

#[test]
fn libzmq_push_handshake_matches_the_fixture() {
    let captured = capture_libzmq_handshake(zmq::PUSH, None, SocketType::Pull);
    check_against_fixture(PUSH_FIXTURE, &captured);
}

#[test]
fn libzmq_dealer_handshake_matches_the_fixture() {
    let captured = capture_libzmq_handshake(zmq::DEALER, Some(DEALER_IDENTITY), SocketType::Router);
    check_against_fixture(DEALER_FIXTURE, &captured);
}

#[test]
fn ferromq_push_sends_exactly_what_libzmq_push_sends() {
    let libzmq = load_fixture(PUSH_FIXTURE);
    let ours = ferromq_handshake(
        ConnectionConfig::new(SocketType::Push),
        &libzmq[..GREETING_LEN],
    );
    assert_eq!(ours, libzmq);
}

#[test]
fn ferromq_dealer_matches_libzmq_dealer_except_the_greeting_padding() {
    let libzmq = load_fixture(DEALER_FIXTURE);
    let mut config = ConnectionConfig::new(SocketType::Dealer);
    config.routing_id = DEALER_IDENTITY.into();
    let ours = ferromq_handshake(config, &libzmq[..GREETING_LEN]);
    assert_eq!(ours.len(), libzmq.len());
    // libzmq writes its routing-id length + 1 into the last padding byte (a ZMTP 1.0
    // identity-frame length); ferromq always writes 1. RFC 23 tells receivers to ignore the
    // padding, and libzmq does: see spec/sockets.md, "Deviations".
    assert_eq!(libzmq[PADDING_LAST_BYTE], DEALER_IDENTITY.len() as u8 + 1);
    assert_eq!(ours[PADDING_LAST_BYTE], 1);
    let differing: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != libzmq[i]).collect();
    assert_eq!(
        differing,
        [PADDING_LAST_BYTE],
        "greeting and READY otherwise identical"
    );
}

#[test]
fn libzmq_push_ready_parses_with_ferromq() {
    let info = parse_with_ferromq(SocketType::Pull, &load_fixture(PUSH_FIXTURE));
    assert_eq!(info.socket_type, SocketType::Push);
    assert_eq!(info.identity, None);
    assert_eq!(info.version, (3, 1));
    assert_eq!(
        info.metadata.len(),
        1,
        "PUSH announces only its socket type"
    );
    assert_eq!(info.metadata.get("Socket-Type").unwrap(), "PUSH");
}

#[test]
fn libzmq_dealer_ready_parses_with_ferromq() {
    let info = parse_with_ferromq(SocketType::Router, &load_fixture(DEALER_FIXTURE));
    assert_eq!(info.socket_type, SocketType::Dealer);
    assert_eq!(info.identity.as_deref(), Some(DEALER_IDENTITY));
    assert_eq!(info.metadata.len(), 2);
    assert_eq!(info.metadata.get("Socket-Type").unwrap(), "DEALER");
    assert_eq!(info.metadata.get("Identity").unwrap(), DEALER_IDENTITY);
}
