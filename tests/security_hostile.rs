//! Hostile CURVE and PLAIN handshakes against ferromq servers, at the socket level: each
//! closes only its own connection (with an ERROR where the protocol allows one), within the
//! handshake interval when it stalls, while an honest client on the same socket keeps
//! sending. Also what a server's authenticator is told and how a client takes its answers. The byte-level faults (forged and replayed boxes, wrong keys, truncated
//! commands) are unit tests in src/wire/mechanism/tests.rs; memory is in memory_budget.rs.

mod common;
mod raw_peer;

use common::Transport;
use ferromq::internals::wire::frame::FLAG_COMMAND;
use ferromq::internals::wire::{Command, Greeting, SocketType};
use ferromq::security::{AuthPolicy, CurveKeyPair, Zap, ZapReply, ZapRequest, ZapStatus};
use ferromq::{Pull, Push, SocketOptions};
use raw_peer::{CurvePeer, RawPeer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The servers' handshake interval: a stalled client is dropped after it.
const HANDSHAKE_IVL: Duration = Duration::from_millis(300);
const HONEST_MSGS: usize = 500;

struct Server {
    pull: Pull,
    addr: SocketAddr,
    endpoint: String,
    keys: CurveKeyPair,
}

fn curve_server() -> Server {
    let keys = CurveKeyPair::generate();
    let mut options = SocketOptions::default().curve_server_with(keys.secret);
    options.handshake_ivl = Some(HANDSHAKE_IVL);
    let pull = Pull::with_options(options).unwrap();
    let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap().to_string();
    let addr = endpoint["tcp://".len()..].parse().unwrap();
    Server {
        pull,
        addr,
        endpoint,
        keys,
    }
}

/// An honest CURVE client sends [`HONEST_MSGS`] messages through `server`, all of which
/// arrive, while whatever the test set up goes on.
async fn honest_traffic_flows(server: &Server) {
    let push = Push::with_options(
        SocketOptions::default().curve_client_with(server.keys.public, &CurveKeyPair::generate()),
    )
    .unwrap();
    push.connect(server.endpoint.as_str()).unwrap();
    for i in 0..HONEST_MSGS {
        push.send(format!("m{i}")).await.unwrap();
    }
    for i in 0..HONEST_MSGS {
        assert_eq!(
            server.pull.recv().await.unwrap().frames()[0],
            format!("m{i}")
        );
    }
}

fn curve_greeting() -> Vec<u8> {
    let mut greeting = Greeting::null();
    greeting.mechanism = ferromq::internals::wire::mechanism::CURVE;
    greeting.encode().to_vec()
}

fn command_frame(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    ferromq::internals::wire::frame::encode_header(&mut frame, FLAG_COMMAND, body.len());
    frame.extend_from_slice(body);
    frame
}

/// Reads frames until the server closes; returns the ERROR reason it sent, if any.
async fn error_then_close(peer: &mut RawPeer) -> Option<String> {
    let mut greeting = [0u8; 64];
    peer.stream.read_exact(&mut greeting).await.ok()?;
    let mut reason = None;
    while let Some((_, body)) = peer.read_frame().await {
        if let Ok(Command::Error { reason: r }) = Command::decode(body.into()) {
            reason = Some(String::from_utf8_lossy(&r).into_owned());
        }
    }
    reason
}

#[tokio::test]
async fn a_client_that_stops_mid_handshake_is_dropped_after_the_handshake_interval() {
    timeout(TEST_TIMEOUT, async {
        let server = curve_server();
        // A valid HELLO, then nothing: the server answers WELCOME and waits for INITIATE.
        let mut stalled = RawPeer::connect(
            server.addr,
            &CurvePeer::hello(SocketType::Push, server.keys.public),
        )
        .await;
        // Half a HELLO, then nothing.
        let mut half = curve_greeting();
        half.extend_from_slice(&command_frame(&[0u8; 200])[..100]);
        let mut truncated = RawPeer::connect(server.addr, &half).await;
        let started = tokio::time::Instant::now();
        honest_traffic_flows(&server).await;
        let (a, b) = tokio::join!(
            error_then_close(&mut stalled),
            error_then_close(&mut truncated)
        );
        assert!(started.elapsed() >= HANDSHAKE_IVL);
        assert!(a.unwrap().contains("handshake did not complete"));
        assert!(b.unwrap().contains("handshake did not complete"));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn malformed_and_forged_hellos_close_only_their_connection() {
    timeout(TEST_TIMEOUT, async {
        let server = curve_server();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("short HELLO", command_frame(b"\x05HELLO\x01\x00")),
            ("wrong version", {
                let mut body = b"\x05HELLO\x02\x00".to_vec();
                body.resize(200, 0);
                command_frame(&body)
            }),
            ("forged signature box", {
                let mut body = b"\x05HELLO\x01\x00".to_vec();
                body.resize(200, 7);
                body[8..80].fill(0);
                command_frame(&body)
            }),
            (
                "INITIATE before HELLO",
                command_frame(&[&b"\x08INITIATE"[..], &[0u8; 300]].concat()),
            ),
            ("a message frame", vec![0, 2, b'h', b'i']),
        ];
        let mut peers = Vec::new();
        for (what, frame) in &cases {
            let mut bytes = curve_greeting();
            bytes.extend_from_slice(frame);
            peers.push((*what, RawPeer::connect(server.addr, &bytes).await));
        }
        honest_traffic_flows(&server).await;
        for (what, mut peer) in peers {
            let reason = error_then_close(&mut peer).await;
            assert!(reason.is_some(), "{what}: no ERROR before the close");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_null_peer_at_a_curve_server_is_told_the_mechanism_mismatch() {
    timeout(TEST_TIMEOUT, async {
        let server = curve_server();
        let mut peer = RawPeer::connect(server.addr, &raw_peer::handshake("PUSH")).await;
        let reason = error_then_close(&mut peer).await.unwrap();
        assert!(reason.contains("mechanism mismatch"), "{reason}");
        honest_traffic_flows(&server).await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_oversized_initiate_is_refused_from_its_header() {
    timeout(TEST_TIMEOUT, async {
        let server = curve_server();
        let mut bytes = CurvePeer::hello(SocketType::Push, server.keys.public);
        // A 1 GiB INITIATE announced; none of its body is ever sent.
        bytes.extend_from_slice(&raw_peer::long_command_header(1 << 30));
        let mut peer = RawPeer::connect(server.addr, &bytes).await;
        let reason = error_then_close(&mut peer).await.unwrap();
        assert!(reason.contains("handshake frames are at most"), "{reason}");
        honest_traffic_flows(&server).await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_refused_plain_client_never_joins_nor_retries_and_the_server_serves_others() {
    timeout(TEST_TIMEOUT, async {
        let zap = Zap::new(AuthPolicy::new().allow_user("admin", "secret"));
        let pull = Pull::with_options(SocketOptions::default().plain_server_with(zap)).unwrap();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let wrong = Push::with_options(SocketOptions::default().plain_client_with("admin", "nope"))
            .unwrap();
        wrong.connect(&endpoint).unwrap();
        let right =
            Push::with_options(SocketOptions::default().plain_client_with("admin", "secret"))
                .unwrap();
        right.connect(&endpoint).unwrap();
        right.send("in").await.unwrap();
        let m = pull.recv().await.unwrap();
        assert_eq!(m.frames()[0], "in");
        assert_eq!(m.user_id().unwrap(), "admin");
        // The refused client never gets a peer, and does not retry. Its endpoint stays
        // routable, as libzmq's PUSH's (`immediate` off): a send queues, nobody takes it, and
        // close drops it rather than wait for a connector that stopped.
        wrong.try_send("x").unwrap();
        assert_eq!(wrong.peer_count(), 0);
        assert_eq!(pull.peer_count(), 1);
        timeout(Duration::from_secs(2), wrong.close())
            .await
            .expect("close waited for a peer that refused us");
    })
    .await
    .unwrap();
}

/// ZAP status 300 is a temporary failure (RFC 27): the server closes without an ERROR, and a
/// ferromq client, unlike after a 400, reconnects after its interval and gets in once the
/// authenticator allows it (spec/security.md §3.3).
#[tokio::test]
async fn a_temporary_zap_failure_makes_the_client_reconnect_and_get_in() {
    timeout(TEST_TIMEOUT, async {
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let zap = Zap::new(
            move |_: &ZapRequest| match counter.fetch_add(1, Ordering::SeqCst) {
                0 => ZapReply::refuse(ZapStatus::TemporaryFailure, "try later"),
                _ => ZapReply::allow("admin"),
            },
        );
        let pull = Pull::with_options(SocketOptions::default().plain_server_with(zap)).unwrap();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let mut options = SocketOptions::default().plain_client_with("admin", "secret");
        options.reconnect_ivl = Some(Duration::from_millis(20));
        let push = Push::with_options(options).unwrap();
        push.connect(endpoint).unwrap();
        push.send("after a retry").await.unwrap();
        let message = pull.recv().await.unwrap();
        assert_eq!(message.frames()[0], "after a retry");
        assert_eq!(message.user_id().as_deref(), Some(&b"admin"[..]));
        assert_eq!(
            asked.load(Ordering::SeqCst),
            2,
            "one ZAP request per connection"
        );
    })
    .await
    .unwrap();
}

/// The authenticator is told the client's address as the server's socket sees it: an IPv6
/// address in its canonical text form, and nothing over IPC, where peers have no address;
/// messages carry the same `Peer-Address`.
#[tokio::test]
async fn the_authenticator_sees_ipv6_addresses_canonically_and_none_over_ipc() {
    timeout(TEST_TIMEOUT, async {
        let mut endpoints = vec![(Transport::Ipc.bind_addr(), "")];
        match std::net::TcpListener::bind("[::1]:0") {
            Ok(_) => endpoints.push(("tcp://[::1]:0".to_owned(), "::1")),
            Err(_) => eprintln!("IPv6 part skipped: this machine has no IPv6 loopback"),
        }
        for (endpoint, expected) in endpoints {
            let (seen, mut addresses) = tokio::sync::mpsc::unbounded_channel();
            let zap = Zap::new(move |request: &ZapRequest| {
                let _ = seen.send(request.address.clone());
                ZapReply::allow("admin")
            });
            let pull = Pull::with_options(SocketOptions::default().plain_server_with(zap)).unwrap();
            let bound = pull.bind(endpoint.as_str()).unwrap();
            let push =
                Push::with_options(SocketOptions::default().plain_client_with("admin", "secret"))
                    .unwrap();
            push.connect(bound).unwrap();
            push.send("m").await.unwrap();
            let message = pull.recv().await.unwrap();
            assert_eq!(addresses.recv().await.unwrap(), expected, "{endpoint}");
            assert_eq!(message.peer_address(), Some(expected), "{endpoint}");
        }
    })
    .await
    .unwrap();
}

/// CURVE between ferromq sockets over IPC: the server's authenticator is asked with the
/// client's key and an empty address, and boxed traffic flows both ways (REQ/REP). Requests
/// and replies keep their connection's properties once REP and REQ strip the envelope.
#[tokio::test]
async fn curve_between_ferromq_sockets_over_ipc() {
    timeout(TEST_TIMEOUT, async {
        let ipc = Transport::Ipc.bind_addr();
        let server_keys = CurveKeyPair::generate();
        let client_keys = CurveKeyPair::generate();
        let mut options = SocketOptions::default().curve_server_with(server_keys.secret);
        options.zap = Some(Zap::new(
            AuthPolicy::new().allow_curve_key(client_keys.public),
        ));
        let rep = ferromq::Rep::with_options(options).unwrap();
        let bound = rep.bind(ipc.as_str()).unwrap();
        let req = ferromq::Req::with_options(
            SocketOptions::default().curve_client_with(server_keys.public, &client_keys),
        )
        .unwrap();
        req.connect(bound).unwrap();
        for i in 0..50 {
            req.send(format!("q{i}")).await.unwrap();
            let request = rep.recv().await.unwrap();
            assert_eq!(request.frames()[0], format!("q{i}"));
            assert_eq!(
                request.user_id().unwrap(),
                client_keys.public.to_z85().as_str()
            );
            assert_eq!(request.peer_address(), Some(""));
            rep.send(format!("a{i}")).await.unwrap();
            let reply = req.recv().await.unwrap();
            assert_eq!(reply.frames()[0], format!("a{i}"));
            assert_eq!(reply.property("Socket-Type").unwrap(), "REP");
            assert_eq!(reply.peer_address(), Some(""));
        }
    })
    .await
    .unwrap();
}
