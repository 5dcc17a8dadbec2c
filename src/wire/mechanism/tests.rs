//! The mechanisms driven through two [`Connection`]s wired back to back: handshakes, boxed
//! traffic, authentication, and the faults a hostile peer can cause.

use super::nacl::{Transient, box_key, nonce, open, random, seal};
use super::*;
use crate::Message;
use crate::security::{AuthPolicy, CurveKeyPair, ZapStatus};
use crate::wire::frame::FrameDecoder;
use crate::wire::{Command, Connection, ConnectionConfig, Event, SocketType};
use std::time::{Duration, Instant};

/// The fake clock's origin: tests only add durations to it.
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

/// Rounds of shuttling before two connections must be quiet (a CURVE handshake takes four).
const MAX_ROUNDS: usize = 16;

struct Link {
    now: Instant,
    a: Connection,
    b: Connection,
    a_events: Vec<Event>,
    b_events: Vec<Event>,
    a_result: Result<(), ProtocolError>,
    b_result: Result<(), ProtocolError>,
}

impl Link {
    fn new(a: ConnectionConfig, b: ConnectionConfig) -> Link {
        let now = t0();
        let mut link = Link {
            now,
            a: Connection::new(a, now),
            b: Connection::new(b, now),
            a_events: Vec::new(),
            b_events: Vec::new(),
            a_result: Ok(()),
            b_result: Ok(()),
        };
        link.drive();
        link
    }

    /// Shuttles bytes both ways until neither side has anything to send.
    fn drive(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let to_b = self.a.take_transmit();
            let to_a = self.b.take_transmit();
            if to_a.is_none() && to_b.is_none() {
                return;
            }
            if let Some(bytes) = to_b {
                self.feed_b(&bytes);
            }
            if let Some(bytes) = to_a {
                self.feed_a(&bytes);
            }
        }
        panic!("the two sides never went quiet");
    }

    fn feed_a(&mut self, bytes: &[u8]) {
        if self.a_result.is_ok() {
            self.a_result = self.a.handle_input(&mut BytesMut::from(bytes), self.now);
        }
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
    }

    fn feed_b(&mut self, bytes: &[u8]) {
        if self.b_result.is_ok() {
            self.b_result = self.b.handle_input(&mut BytesMut::from(bytes), self.now);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
    }

    fn ready(&self) -> bool {
        self.a.is_ready() && self.b.is_ready()
    }

    fn b_messages(&self) -> Vec<&Message> {
        self.b_events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// What `a` sends for `message` once the handshake is done.
    fn wire_bytes_of(&mut self, message: &Message) -> Vec<u8> {
        let mut batch = WriteBuf::new();
        batch.push_message(message);
        let mut out = WriteBuf::new();
        self.a.seal_batch(&mut batch, &mut out);
        out.to_bytes().to_vec()
    }
}

use crate::wire::WriteBuf;

fn config(socket_type: SocketType, security: Security) -> ConnectionConfig {
    let mut c = ConnectionConfig::new(socket_type);
    c.security = security;
    c.peer_address = "192.0.2.7".into();
    c
}

fn curve_pair() -> (
    ConnectionConfig,
    ConnectionConfig,
    CurveKeyPair,
    CurveKeyPair,
) {
    let server = CurveKeyPair::generate();
    let client = CurveKeyPair::generate();
    let client_config = config(
        SocketType::Push,
        Security::CurveClient {
            keypair: client.clone(),
            server_key: server.public,
        },
    );
    let server_config = config(
        SocketType::Pull,
        Security::CurveServer {
            keypair: server.clone(),
        },
    );
    (client_config, server_config, client, server)
}

fn plain_pair(user: &str, pass: &str) -> (ConnectionConfig, ConnectionConfig) {
    let client = config(
        SocketType::Req,
        Security::PlainClient {
            username: Bytes::copy_from_slice(user.as_bytes()),
            password: Bytes::copy_from_slice(pass.as_bytes()),
        },
    );
    let mut server = config(SocketType::Rep, Security::PlainServer);
    server.zap = Some(Zap::new(AuthPolicy::new().allow_user("admin", "secret")));
    (client, server)
}

/// Our greeting for `mechanism`, as a peer would send it, then one command frame of `body`.
fn greeting_then_command(mechanism: crate::wire::Mechanism, body: &[u8]) -> BytesMut {
    let mut greeting = crate::wire::Greeting::null();
    greeting.mechanism = mechanism;
    let mut input = BytesMut::from(&greeting.encode()[..]);
    crate::wire::frame::encode_header(&mut input, crate::wire::frame::FLAG_COMMAND, body.len());
    input.extend_from_slice(body);
    input
}

/// A CURVE HELLO body from the client transient key `transient` to `server_key`, with short
/// nonce 1 and the given version, padding byte and signature box contents.
fn curve_hello(
    transient: &Transient,
    server_key: &CurveKey,
    version: [u8; 2],
    padding: u8,
    signature: [u8; 64],
) -> Vec<u8> {
    let key = box_key(transient.secret(), server_key.as_bytes()).unwrap();
    let boxed = seal(
        &key,
        &nonce(b"CurveZMQHELLO---", &1u64.to_be_bytes()),
        &signature,
    );
    let mut body = b"\x05HELLO".to_vec();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[padding; 72]);
    body.extend_from_slice(transient.public());
    body.extend_from_slice(&1u64.to_be_bytes());
    body.extend_from_slice(&boxed);
    body
}

/// The server (`b`) refused the client with `status`, and the client read it from ERROR.
fn assert_refused(link: &Link, status: u16) {
    assert!(
        matches!(&link.b_result, Err(ProtocolError::AuthenticationFailed { status: s, .. }) if *s == status),
        "{:?}",
        link.b_result
    );
    assert_eq!(link.a_result, Err(ProtocolError::Unauthorized { status }));
}

#[test]
fn curve_handshake_completes_and_messages_arrive_boxed() {
    let (client, mut server, client_keys, _) = curve_pair();
    server.zap = Some(Zap::new(
        AuthPolicy::new().allow_curve_key(client_keys.public),
    ));
    let mut link = Link::new(client, server);
    assert!(link.ready(), "{:?} {:?}", link.a_result, link.b_result);

    let secret = Message::from("attack at dawn");
    let wire = link.wire_bytes_of(&secret);
    assert!(
        !wire.windows(6).any(|w| w == b"attack"),
        "plaintext on the wire"
    );
    assert!(wire.windows(8).any(|w| w == b"\x07MESSAGE"));
    link.feed_b(&wire);
    let mut two = Message::new();
    two.push_back("a");
    two.push_back(vec![7u8; 70_000]);
    let wire = link.wire_bytes_of(&two);
    link.feed_b(&wire);
    link.b_result.clone().unwrap();
    let got = link.b_messages();
    assert_eq!(got, [&secret, &two]);
    assert_eq!(got[0].user_id().unwrap(), client_keys.public.to_z85());
    assert_eq!(got[0].peer_address(), Some("192.0.2.7"));
    assert_eq!(got[0].property("socket-type").unwrap(), "PUSH");
}

#[test]
fn curve_server_without_authenticator_accepts_any_client_key() {
    let (client, server, _, _) = curve_pair();
    let link = Link::new(client, server);
    assert!(link.ready());
}

#[test]
fn curve_handshake_bytes_have_libzmqs_sizes() {
    let (client, server, _, _) = curve_pair();
    let now = t0();
    let mut c = Connection::new(client, now);
    let mut s = Connection::new(server, now);
    let mut frames = Vec::new();
    let mut to_s = BytesMut::from(&c.take_transmit().unwrap()[..]);
    let mut to_c = BytesMut::from(&s.take_transmit().unwrap()[..]);
    // Greetings: CURVE, as-server set on the server only.
    assert_eq!(&to_s[12..17], b"CURVE");
    assert_eq!((to_s[32], to_c[32]), (0, 1));
    s.handle_input(&mut to_s, now).unwrap();
    c.handle_input(&mut to_c, now).unwrap();
    let mut record = |from: &mut Connection, to: &mut Connection| {
        if let Some(bytes) = from.take_transmit() {
            let mut decoder = FrameDecoder::new(None);
            let mut copy = BytesMut::from(&bytes[..]);
            while let Some(f) = decoder.decode(&mut copy).unwrap() {
                frames.push(f.body.len());
            }
            to.handle_input(&mut BytesMut::from(&bytes[..]), now)
                .unwrap();
        }
    };
    for _ in 0..3 {
        record(&mut c, &mut s);
        record(&mut s, &mut c);
    }
    // HELLO 200, WELCOME 168, INITIATE 257 + metadata, READY 30 + metadata (RFC 26).
    assert_eq!(frames[0], 200);
    assert_eq!(frames[1], 168);
    assert!(frames[2] > 257 && frames[3] > 30, "{frames:?}");
    assert!(c.is_ready() && s.is_ready());
}

#[test]
fn wrong_server_key_fails_the_hello_box() {
    let (mut client, server, client_keys, _) = curve_pair();
    client.security = Security::CurveClient {
        keypair: client_keys,
        server_key: CurveKeyPair::generate().public,
    };
    let link = Link::new(client, server);
    assert!(matches!(link.b_result, Err(ProtocolError::Crypto { .. })));
    assert!(!link.a.is_ready());
}

#[test]
fn replayed_reordered_and_forged_boxes_close_the_connection() {
    let (client, server, _, _) = curve_pair();
    let mut link = Link::new(client, server);
    // The client's HELLO and INITIATE used nonces 1 and 2: its first message is 3.
    let first = link.wire_bytes_of(&Message::from("one"));
    link.feed_b(&first);
    link.feed_b(&first);
    assert!(matches!(
        link.b_result,
        Err(ProtocolError::NonceNotIncreasing { nonce: 3, last: 3 })
    ));

    let (client, server, _, _) = curve_pair();
    let mut link = Link::new(client, server);
    let first = link.wire_bytes_of(&Message::from("one"));
    let second_again = link.wire_bytes_of(&Message::from("two"));
    link.feed_b(&second_again);
    link.feed_b(&first);
    assert!(matches!(
        link.b_result,
        Err(ProtocolError::NonceNotIncreasing { .. })
    ));

    let (client, server, _, _) = curve_pair();
    let mut link = Link::new(client, server);
    let mut forged = link.wire_bytes_of(&Message::from("one"));
    let last = forged.len() - 1;
    forged[last] ^= 1;
    link.feed_b(&forged);
    assert!(matches!(link.b_result, Err(ProtocolError::Crypto { .. })));
}

#[test]
fn cleartext_traffic_after_a_curve_handshake_is_refused() {
    let (client, server, _, _) = curve_pair();
    let mut link = Link::new(client, server);
    let mut plain = WriteBuf::new();
    plain.push_message(&Message::from("in clear"));
    link.feed_b(&plain.to_bytes());
    assert_eq!(link.b_result, Err(ProtocolError::ExpectedMessageBox));
}

#[test]
fn denied_curve_client_gets_error_400_and_is_unauthorized() {
    let (client, mut server, _, _) = curve_pair();
    server.zap = Some(Zap::new(AuthPolicy::new()));
    let link = Link::new(client, server);
    assert_refused(&link, 400);
}

#[test]
fn temporary_failure_closes_without_telling_the_client() {
    let (client, mut server, _, _) = curve_pair();
    server.zap = Some(Zap::new(|_: &ZapRequest| {
        ZapReply::refuse(ZapStatus::TemporaryFailure, "try later")
    }));
    let link = Link::new(client, server);
    assert!(matches!(
        link.b_result,
        Err(ProtocolError::AuthenticationFailed { status: 300, .. })
    ));
    assert_eq!(link.a_result, Ok(()), "no ERROR reached the client");
    assert!(!link.a.is_ready());
}

#[test]
fn plain_handshake_passes_the_user_name_as_user_id() {
    let (client, server) = plain_pair("admin", "secret");
    let mut link = Link::new(client, server);
    assert!(link.ready());
    let wire = link.wire_bytes_of(&Message::from("hi"));
    link.feed_b(&wire);
    assert_eq!(link.b_messages()[0].user_id().unwrap(), "admin");
}

#[test]
fn plain_wrong_password_is_refused_with_400() {
    let (client, server) = plain_pair("admin", "guess");
    let link = Link::new(client, server);
    assert_refused(&link, 400);
}

#[test]
fn null_peer_refused_by_address() {
    let client = config(SocketType::Push, Security::Null);
    let mut server = config(SocketType::Pull, Security::Null);
    server.zap = Some(Zap::new(AuthPolicy::new().deny_ip("192.0.2.7")));
    let link = Link::new(client, server);
    assert_refused(&link, 400);
}

#[test]
fn mechanism_mismatch_fails_at_the_greeting_and_two_clients_on_hello() {
    let (client, _, _, _) = curve_pair();
    let link = Link::new(client, config(SocketType::Pull, Security::Null));
    assert!(matches!(
        link.b_result,
        Err(ProtocolError::MechanismMismatch { .. })
    ));
    // libzmq never sets the greeting's as-server flag, so roles are not compared there; two
    // clients each refuse the other's HELLO.
    let (client, _, _, _) = curve_pair();
    let (client2, _, _, _) = curve_pair();
    let link = Link::new(client, client2);
    assert_eq!(
        link.a_result,
        Err(ProtocolError::UnexpectedCommand { command: "HELLO" })
    );
}

#[test]
fn truncated_hellos_are_malformed() {
    let now = t0();
    for (security, body) in [
        (
            Security::CurveServer {
                keypair: CurveKeyPair::generate(),
            },
            &b"\x05HELLO\x01\x00"[..],
        ),
        (Security::PlainServer, &b"\x05HELLO\x05adm"[..]),
    ] {
        let mut server = Connection::new(config(SocketType::Pull, security.clone()), now);
        let mut input = greeting_then_command(security.mechanism(), body);
        assert!(matches!(
            server.handle_input(&mut input, now),
            Err(ProtocolError::MalformedCommand {
                command: "HELLO",
                ..
            })
        ));
    }
}

#[test]
fn heartbeats_and_subscriptions_travel_boxed() {
    let server = CurveKeyPair::generate();
    let mut sub = config(
        SocketType::Sub,
        Security::CurveClient {
            keypair: CurveKeyPair::generate(),
            server_key: server.public,
        },
    );
    sub.heartbeat.interval = Some(Duration::from_millis(10));
    let publisher = config(SocketType::Pub, Security::CurveServer { keypair: server });
    let mut link = Link::new(sub, publisher);
    assert!(link.ready());
    link.a.send_subscribe(b"topic");
    link.now += Duration::from_millis(20);
    link.a.handle_timeout(link.now).unwrap();
    link.drive();
    assert!(
        link.b_events
            .iter()
            .any(|e| matches!(e, Event::Subscribe(p) if p == "topic"))
    );
    link.b_result.clone().unwrap();
    link.a_result.clone().unwrap();
    // The PING was answered: the sub's timeout was cleared by the boxed PONG.
    assert!(link.a.poll_timeout().unwrap() > link.now);
}

#[test]
fn a_command_in_a_box_is_decoded_as_a_command() {
    let (client, server, _, _) = curve_pair();
    let mut link = Link::new(client, server);
    let mut batch = WriteBuf::new();
    let mut encoded = BytesMut::new();
    Command::Unknown {
        name: Bytes::from_static(b"HELLO2"),
        data: Bytes::new(),
    }
    .encode(&mut encoded);
    batch.push_bytes(&encoded);
    let mut out = WriteBuf::new();
    link.a.seal_batch(&mut batch, &mut out);
    link.feed_b(&out.to_bytes());
    link.b_result.clone().unwrap();
    assert!(matches!(link.b_events.last(), Some(Event::Command(_))));
}

#[test]
fn libzmqs_misspelt_plain_error_is_read_as_error() {
    // libzmq's PLAIN server sends "\x5eRROR" (its C string "\x05ERROR" read as 0x5E).
    let now = t0();
    let (client, _) = plain_pair("admin", "guess");
    let mut conn = Connection::new(client, now);
    let mut input = greeting_then_command(PLAIN, b"^RROR\x03400");
    assert_eq!(
        conn.handle_input(&mut input, now),
        Err(ProtocolError::Unauthorized { status: 400 })
    );
}

/// Runs the handshake step by step and hands each command frame `to_server` (or from the
/// server, `to_client`) to `tamper` before delivering it; returns both results.
fn tampered_curve(
    mut tamper_to_server: impl FnMut(usize, &mut Vec<u8>),
    mut tamper_to_client: impl FnMut(usize, &mut Vec<u8>),
) -> (
    Result<(), ProtocolError>,
    Result<(), ProtocolError>,
    Connection,
    Connection,
) {
    let (client, server, _, _) = curve_pair();
    let now = t0();
    let mut c = Connection::new(client, now);
    let mut s = Connection::new(server, now);
    let (mut c_result, mut s_result) = (Ok(()), Ok(()));
    let (mut to_s_count, mut to_c_count) = (0, 0);
    for _ in 0..MAX_ROUNDS {
        let to_s = c.take_transmit();
        let to_c = s.take_transmit();
        if to_s.is_none() && to_c.is_none() {
            break;
        }
        if let Some(bytes) = to_s
            && s_result.is_ok()
        {
            let mut bytes = bytes.to_vec();
            tamper_to_server(to_s_count, &mut bytes);
            to_s_count += 1;
            s_result = s.handle_input(&mut BytesMut::from(&bytes[..]), now);
        }
        if let Some(bytes) = to_c
            && c_result.is_ok()
        {
            let mut bytes = bytes.to_vec();
            tamper_to_client(to_c_count, &mut bytes);
            to_c_count += 1;
            c_result = c.handle_input(&mut BytesMut::from(&bytes[..]), now);
        }
    }
    (c_result, s_result, c, s)
}

#[test]
fn initiate_whose_nonce_does_not_count_up_from_hello_is_refused() {
    // The client sends its greeting, HELLO, then INITIATE, whose short nonce follows the
    // name and the cookie (body offset 105).
    let (_, s, _, _) = tampered_curve(
        |n, bytes| {
            if n == 2 {
                let header = if bytes[0] & crate::wire::frame::FLAG_LONG != 0 {
                    9
                } else {
                    2
                };
                let nonce_at = header + 105;
                bytes[nonce_at..nonce_at + 8].copy_from_slice(&1u64.to_be_bytes());
            }
        },
        |_, _| {},
    );
    assert_eq!(
        s,
        Err(ProtocolError::NonceNotIncreasing { nonce: 1, last: 1 })
    );
}

#[test]
fn forged_or_short_welcome_and_ready_fail_the_client_which_sends_no_error() {
    for (step, cut) in [(1, false), (1, true), (2, false), (2, true)] {
        let (c, _, mut client, _) = tampered_curve(
            |_, _| {},
            |n, bytes| {
                if n == step {
                    if cut {
                        // WELCOME below 168 bytes, READY below 30 (both short frames).
                        bytes.truncate(bytes.len() - 30);
                        bytes[1] -= 30;
                    } else {
                        let last = bytes.len() - 1;
                        bytes[last] ^= 0x40;
                    }
                }
            },
        );
        let err = c.unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Crypto { .. } | ProtocolError::MalformedCommand { .. }
            ),
            "step {step} cut {cut}: {err:?}"
        );
        // RFC 26: a client never answers with ERROR.
        assert_eq!(client.take_transmit(), None, "step {step} cut {cut}");
    }
}

#[test]
fn replayed_server_message_and_faults_after_the_handshake_send_no_error() {
    let (client, server, _, _) = curve_pair();
    // Swap roles: `a` is the server here, so its boxes reach the client.
    let mut link = Link::new(server, client);
    let one = link.wire_bytes_of(&Message::from("one"));
    link.feed_b(&one);
    link.feed_b(&one);
    assert!(matches!(
        link.b_result,
        Err(ProtocolError::NonceNotIncreasing { .. })
    ));
    assert_eq!(link.b.take_transmit(), None);
    // And the server, fed a forged box, closes without ERROR (RFC 26).
    let (client, server, _, _) = curve_pair();
    let mut link = Link::new(client, server);
    let mut forged = link.wire_bytes_of(&Message::from("x"));
    forged[20] ^= 1;
    link.feed_b(&forged);
    assert!(link.b_result.is_err());
    assert_eq!(link.b.take_transmit(), None);
}

#[test]
fn hello_with_wrong_version_padding_or_signature_is_malformed() {
    let server = CurveKeyPair::generate();
    let transient = Transient::generate();
    let hello = |version: [u8; 2], padding: u8, signature: [u8; 64]| {
        curve_hello(&transient, &server.public, version, padding, signature)
    };
    for (body, reason) in [
        (hello([2, 0], 0, [0; 64]), "CurveZMQ version is not 1.0"),
        (
            hello([1, 0], 9, [0; 64]),
            "anti-amplification padding is not zero",
        ),
        (
            hello([1, 0], 0, [1; 64]),
            "signature box does not hold 64 zeros",
        ),
    ] {
        let now = t0();
        let mut conn = Connection::new(
            config(
                SocketType::Pull,
                Security::CurveServer {
                    keypair: server.clone(),
                },
            ),
            now,
        );
        let mut input = greeting_then_command(CURVE, &body);
        assert_eq!(
            conn.handle_input(&mut input, now),
            Err(ProtocolError::MalformedCommand {
                command: "HELLO",
                reason
            })
        );
    }
}

#[test]
fn plain_welcome_with_data_and_malformed_initiate_are_refused() {
    // WELCOME with data, fed to a PLAIN client.
    let now = t0();
    let (client, _) = plain_pair("admin", "secret");
    let mut conn = Connection::new(client, now);
    let mut input = greeting_then_command(PLAIN, b"\x07WELCOMEx");
    assert!(matches!(
        conn.handle_input(&mut input, now),
        Err(ProtocolError::MalformedCommand {
            command: "WELCOME",
            ..
        })
    ));
    // An INITIATE whose metadata runs past its end, fed to a PLAIN server after HELLO.
    let (_, server) = plain_pair("admin", "secret");
    let mut conn = Connection::new(server, now);
    let mut input = greeting_then_command(PLAIN, b"\x05HELLO\x05admin\x06secret");
    input.extend_from_slice(b"\x04\x0b\x08INITIATE\x05S");
    assert!(matches!(
        conn.handle_input(&mut input, now),
        Err(ProtocolError::MalformedCommand {
            command: "INITIATE",
            ..
        })
    ));
}

#[test]
fn status_500_is_sent_as_error_500() {
    let (curve_client, curve_server, _, _) = curve_pair();
    let (plain_client, plain_server) = plain_pair("admin", "secret");
    let null_client = config(SocketType::Push, Security::Null);
    let null_server = config(SocketType::Pull, Security::Null);
    for (client, mut server) in [
        (plain_client, plain_server),
        (curve_client, curve_server),
        (null_client, null_server),
    ] {
        let mechanism = server.security.mechanism();
        server.zap = Some(Zap::new(|_: &ZapRequest| {
            ZapReply::refuse(ZapStatus::InternalError, "database down")
        }));
        let link = Link::new(client, server);
        assert_refused(&link, 500);
        assert!(
            matches!(&link.b_result, Err(e) if e.to_string().contains("database down")),
            "{mechanism:?}: {:?}",
            link.b_result
        );
    }
}

#[test]
fn the_authenticator_sees_rfc_27_fields_and_its_metadata_reaches_messages() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let (mut client, mut server) = plain_pair("admin", "secret");
    client.routing_id = Bytes::from_static(b"client-id");
    server.routing_id = Bytes::from_static(b"server-id");
    server.zap_domain = Bytes::from_static(b"global");
    server.zap = Some(Zap::new(move |request: &ZapRequest| {
        *record.lock().unwrap() = Some(request.clone());
        ZapReply::allow("admin").with_property("X-Role", "operator")
    }));
    let mut link = Link::new(client, server);
    assert!(link.ready());
    let request = seen.lock().unwrap().take().unwrap();
    assert_eq!(request.domain, "global");
    assert_eq!(request.address, "192.0.2.7");
    assert_eq!(request.routing_id, "server-id");
    assert_eq!(request.mechanism, crate::security::ZapMechanism::Plain);
    let wire = link.wire_bytes_of(&Message::from("m"));
    link.feed_b(&wire);
    let m = link.b_messages()[0];
    assert_eq!(m.property("x-role").unwrap(), "operator");
    assert_eq!(m.user_id().unwrap(), "admin");
}

#[test]
fn curve_servers_wait_at_most_the_cookie_lifetime() {
    let lifetime = crate::wire::connection::MAX_CURVE_COOKIE_LIFETIME;
    let now = t0();
    // No handshake timeout, and one longer than the cookie's lifetime: both capped.
    for timeout in [None, Some(lifetime * 2)] {
        let (_, mut server, _, _) = curve_pair();
        server.handshake_timeout = timeout;
        let conn = Connection::new(server, now);
        assert_eq!(conn.poll_timeout(), Some(now + lifetime), "{timeout:?}");
    }
    // A shorter one is kept.
    let (_, mut server, _, _) = curve_pair();
    server.handshake_timeout = Some(lifetime / 2);
    let conn = Connection::new(server, now);
    assert_eq!(conn.poll_timeout(), Some(now + lifetime / 2));
}

#[test]
fn a_low_order_transient_key_in_hello_is_refused() {
    let now = t0();
    let mut conn = Connection::new(
        config(
            SocketType::Pull,
            Security::CurveServer {
                keypair: CurveKeyPair::generate(),
            },
        ),
        now,
    );
    let mut body = b"\x05HELLO\x01\x00".to_vec();
    body.resize(200, 0); // C' = 0: the point of order 2.
    let mut input = greeting_then_command(CURVE, &body);
    assert!(matches!(
        conn.handle_input(&mut input, now),
        Err(ProtocolError::Crypto { what }) if what.contains("low order")
    ));
}

#[test]
fn each_connection_makes_its_own_transient_key() {
    let server = CurveKeyPair::generate();
    let keys = CurveKeyPair::generate();
    let transient_key = || {
        let now = t0();
        let mut conn = Connection::new(
            config(
                SocketType::Push,
                Security::CurveClient {
                    keypair: keys.clone(),
                    server_key: server.public,
                },
            ),
            now,
        );
        conn.take_transmit();
        let mut greeting = crate::wire::Greeting::null();
        greeting.mechanism = CURVE;
        greeting.as_server = true;
        conn.handle_input(&mut BytesMut::from(&greeting.encode()[..]), now)
            .unwrap();
        let hello = conn.take_transmit().unwrap();
        // A 200-byte HELLO in a short frame: C' follows name, version and padding.
        hello[2 + 80..2 + 112].to_vec()
    };
    assert_ne!(transient_key(), transient_key());
}

// Hand-made peers: one side of a CURVE handshake written out field by field against a real
// `Connection` on the other side, so that each field a hostile peer controls can be forged.

/// Feeds `conn` one command frame of `body`.
fn send_command(conn: &mut Connection, body: &[u8], now: Instant) -> Result<(), ProtocolError> {
    let mut input = BytesMut::new();
    crate::wire::frame::encode_header(&mut input, crate::wire::frame::FLAG_COMMAND, body.len());
    input.extend_from_slice(body);
    conn.handle_input(&mut input, now)
}

/// The bodies of the frames `conn` queued for its peer (its greeting already taken).
fn sent_frames(conn: &mut Connection) -> Vec<Bytes> {
    let Some(bytes) = conn.take_transmit() else {
        return Vec::new();
    };
    let mut buf = BytesMut::from(&bytes[..]);
    let mut decoder = FrameDecoder::new(None);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
        frames.push(frame.body);
    }
    assert!(buf.is_empty(), "a partial frame queued");
    frames
}

/// `conn` failed with `err` and queued one ERROR, which carries the error's text.
fn assert_told(conn: &mut Connection, err: &ProtocolError) {
    let frames = sent_frames(conn);
    assert_eq!(frames.len(), 1, "one ERROR and nothing else: {frames:?}");
    let Command::Error { reason } = Command::decode(frames[0].clone()).unwrap() else {
        panic!("expected ERROR, got {:?}", frames[0]);
    };
    assert_eq!(reason, err.to_string());
}

/// Encoded metadata of `properties`.
fn metadata(properties: &[(&str, &str)]) -> Vec<u8> {
    let mut m = Metadata::new();
    for (name, value) in properties {
        m.insert(name.to_string(), value.to_string());
    }
    m.as_encoded().to_vec()
}

/// Metadata whose second property's name runs past the end.
const TRUNCATED_METADATA: &[u8] = b"\x0bSocket-Type\x00\x00\x00\x04PUSH\x05S";

/// The four metadata faults of a `command` (INITIATE or READY) received by a socket of type
/// `ours`, each with the fault it must raise: truncated metadata, no Socket-Type, an unknown
/// one (`unknown`), and one incompatible with ours (`theirs`).
fn metadata_faults(
    command: &'static str,
    ours: SocketType,
    unknown: &'static str,
    theirs: SocketType,
) -> [(Vec<u8>, ProtocolError); 4] {
    [
        (
            TRUNCATED_METADATA.to_vec(),
            ProtocolError::MalformedCommand {
                command,
                reason: "property name runs past the end",
            },
        ),
        (
            metadata(&[("Identity", "x")]),
            ProtocolError::MissingSocketType,
        ),
        (
            metadata(&[("Socket-Type", unknown)]),
            ProtocolError::UnknownSocketType(Bytes::from_static(unknown.as_bytes())),
        ),
        (
            metadata(&[("Socket-Type", theirs.as_str())]),
            ProtocolError::IncompatibleSocketType { ours, theirs },
        ),
    ]
}

/// A CURVE client made by hand against a real PULL server. `new` has sent the greeting and a
/// valid HELLO (short nonce 1) and opened the server's WELCOME.
struct HandMadeClient {
    now: Instant,
    server: Connection,
    server_key: CurveKey,
    keys: CurveKeyPair,
    /// C', c'.
    transient: Transient,
    /// S', from WELCOME.
    server_transient: [u8; 32],
    /// The cookie from WELCOME, as the server sent it.
    cookie: Vec<u8>,
}

impl HandMadeClient {
    fn new() -> HandMadeClient {
        HandMadeClient::against(CurveKeyPair::generate())
    }

    /// A client against a new connection of a server with `server_keys`.
    fn against(server_keys: CurveKeyPair) -> HandMadeClient {
        let now = t0();
        let mut server = Connection::new(
            config(
                SocketType::Pull,
                Security::CurveServer {
                    keypair: server_keys.clone(),
                },
            ),
            now,
        );
        server.take_transmit(); // its greeting
        let transient = Transient::generate();
        let hello = curve_hello(&transient, &server_keys.public, [1, 0], 0, [0; 64]);
        server
            .handle_input(&mut greeting_then_command(CURVE, &hello), now)
            .unwrap();
        let frames = sent_frames(&mut server);
        let welcome = frames[0].strip_prefix(b"\x07WELCOME").unwrap();
        let text = open(
            &box_key(transient.secret(), server_keys.public.as_bytes()).unwrap(),
            &nonce(b"WELCOME-", &welcome[..16]),
            &welcome[16..],
            "WELCOME",
        )
        .unwrap();
        HandMadeClient {
            now,
            server,
            server_key: server_keys.public,
            keys: CurveKeyPair::generate(),
            transient,
            server_transient: text[..32].try_into().unwrap(),
            cookie: text[32..].to_vec(),
        }
    }

    /// The INITIATE box's contents: `client_key` (C), a vouch sealed with `signer` (c, when
    /// honest) naming `names` (C' and S, when honest), then `metadata`.
    fn initiate_text(
        &self,
        client_key: &[u8; 32],
        signer: &[u8; 32],
        names: [&[u8; 32]; 2],
        metadata: &[u8],
    ) -> Vec<u8> {
        let vouch_nonce: [u8; 16] = random();
        let vouch = seal(
            &box_key(signer, &self.server_transient).unwrap(),
            &nonce(b"VOUCH---", &vouch_nonce),
            &[&names[0][..], &names[1][..]].concat(),
        );
        [&client_key[..], &vouch_nonce, &vouch, metadata].concat()
    }

    /// The honest INITIATE box's contents, with `metadata`.
    fn honest_text(&self, metadata: &[u8]) -> Vec<u8> {
        self.initiate_text(
            self.keys.public.as_bytes(),
            self.keys.secret.as_bytes(),
            [self.transient.public(), self.server_key.as_bytes()],
            metadata,
        )
    }

    /// An INITIATE body: name, `cookie`, short nonce 2, and `text` boxed from C' to S'.
    fn initiate(&self, cookie: &[u8], text: &[u8]) -> Vec<u8> {
        let session = box_key(self.transient.secret(), &self.server_transient).unwrap();
        let short = 2u64.to_be_bytes();
        let boxed = seal(&session, &nonce(b"CurveZMQINITIATE", &short), text);
        [&b"\x08INITIATE"[..], cookie, &short, &boxed].concat()
    }

    /// The INITIATE an honest PUSH client sends.
    fn honest_initiate(&self) -> Vec<u8> {
        self.initiate(
            &self.cookie,
            &self.honest_text(&metadata(&[("Socket-Type", "PUSH")])),
        )
    }

    fn send(&mut self, body: &[u8]) -> Result<(), ProtocolError> {
        send_command(&mut self.server, body, self.now)
    }

    /// Sends `body`, which the server must refuse with `expected`, telling us with ERROR.
    fn assert_refused_with_error(&mut self, body: &[u8], expected: ProtocolError) {
        assert_eq!(self.send(body), Err(expected.clone()));
        assert!(!self.server.is_ready());
        assert_told(&mut self.server, &expected);
    }
}

#[test]
fn a_hand_made_initiate_completes_the_handshake() {
    // The control for the forged INITIATEs below: unforged, the hand-made client gets in.
    let mut client = HandMadeClient::new();
    let initiate = client.honest_initiate();
    client.send(&initiate).unwrap();
    assert!(client.server.is_ready());
    let frames = sent_frames(&mut client.server);
    assert!(frames[0].starts_with(b"\x05READY"), "{frames:?}");
}

#[test]
fn initiate_under_257_bytes_is_malformed() {
    // With no metadata an INITIATE is exactly 257 bytes: that passes the size check (and
    // fails for want of a Socket-Type); one byte less is malformed.
    let mut client = HandMadeClient::new();
    let initiate = client.initiate(&client.cookie, &client.honest_text(b""));
    assert_eq!(initiate.len(), 257);
    client.assert_refused_with_error(&initiate, ProtocolError::MissingSocketType);
    let mut client = HandMadeClient::new();
    let initiate = client.initiate(&client.cookie, &client.honest_text(b""));
    client.assert_refused_with_error(
        &initiate[..256],
        ProtocolError::MalformedCommand {
            command: "INITIATE",
            reason: "CURVE INITIATE is shorter than 257 bytes",
        },
    );
}

#[test]
fn a_forged_cookie_or_one_from_another_connection_does_not_open() {
    let expected = ProtocolError::Crypto {
        what: "the cookie does not open: it is not the one we sent",
    };
    // An honest INITIATE but for its cookie (bytes 9..105, after the name): the cookie's
    // nonce, tag or ciphertext changed.
    for place in [0, 16, 95] {
        let mut client = HandMadeClient::new();
        let mut initiate = client.honest_initiate();
        initiate[9 + place] ^= 1;
        client.assert_refused_with_error(&initiate, expected.clone());
    }
    // A genuine cookie, from another connection's WELCOME (each has its own cookie key).
    let mut client = HandMadeClient::new();
    let other = HandMadeClient::new();
    let mut initiate = client.honest_initiate();
    initiate[9..9 + 96].copy_from_slice(&other.cookie);
    client.assert_refused_with_error(&initiate, expected);
}

#[test]
fn an_initiate_box_that_does_not_open_is_refused() {
    let expected = ProtocolError::Crypto {
        what: "the INITIATE box does not open",
    };
    // Corrupted: the last ciphertext byte changed.
    let mut client = HandMadeClient::new();
    let mut initiate = client.honest_initiate();
    *initiate.last_mut().unwrap() ^= 1;
    client.assert_refused_with_error(&initiate, expected.clone());
    // Boxed under another key: from C' to our long-term S instead of to S'.
    let mut client = HandMadeClient::new();
    let mut initiate = client.honest_initiate();
    let text = client.honest_text(&metadata(&[("Socket-Type", "PUSH")]));
    let wrong = box_key(client.transient.secret(), client.server_key.as_bytes()).unwrap();
    let boxed = seal(
        &wrong,
        &nonce(b"CurveZMQINITIATE", &2u64.to_be_bytes()),
        &text,
    );
    initiate.truncate(9 + 96 + 8);
    initiate.extend_from_slice(&boxed);
    client.assert_refused_with_error(&initiate, expected);
}

#[test]
fn a_vouch_that_does_not_open_or_names_other_keys_is_refused() {
    let push = metadata(&[("Socket-Type", "PUSH")]);
    let stranger = CurveKeyPair::generate();
    // Claims our key but seals the vouch with another secret key: the client does not hold
    // the key it claims.
    let mut client = HandMadeClient::new();
    let text = client.initiate_text(
        client.keys.public.as_bytes(),
        stranger.secret.as_bytes(),
        [client.transient.public(), client.server_key.as_bytes()],
        &push,
    );
    client.assert_refused_with_error(
        &client.initiate(&client.cookie, &text),
        ProtocolError::Crypto {
            what: "the vouch does not open: the client does not hold the key it claims",
        },
    );
    let names_others = ProtocolError::Crypto {
        what: "the vouch names another transient key or server",
    };
    // Opens, but vouches for another transient key (as a vouch lifted from another session
    // would).
    let mut client = HandMadeClient::new();
    let text = client.initiate_text(
        client.keys.public.as_bytes(),
        client.keys.secret.as_bytes(),
        [Transient::generate().public(), client.server_key.as_bytes()],
        &push,
    );
    client.assert_refused_with_error(
        &client.initiate(&client.cookie, &text),
        names_others.clone(),
    );
    // Opens, but vouches for another server (libzmq compares only C').
    let mut client = HandMadeClient::new();
    let text = client.initiate_text(
        client.keys.public.as_bytes(),
        client.keys.secret.as_bytes(),
        [client.transient.public(), stranger.public.as_bytes()],
        &push,
    );
    client.assert_refused_with_error(&client.initiate(&client.cookie, &text), names_others);
}

#[test]
fn a_low_order_client_key_in_initiate_is_refused() {
    let mut client = HandMadeClient::new();
    // C = 0, the point of order 2: the vouch's box key would be all zeros.
    let text = client.initiate_text(
        &[0; 32],
        client.keys.secret.as_bytes(),
        [client.transient.public(), client.server_key.as_bytes()],
        &metadata(&[("Socket-Type", "PUSH")]),
    );
    client.assert_refused_with_error(
        &client.initiate(&client.cookie, &text),
        ProtocolError::Crypto {
            what: "the peer's key is of low order (its shared secret would be zero)",
        },
    );
}

#[test]
fn bad_initiate_metadata_and_socket_types_are_refused() {
    for (metadata, expected) in
        metadata_faults("INITIATE", SocketType::Pull, "PUSHY", SocketType::Pull)
    {
        let mut client = HandMadeClient::new();
        let initiate = client.initiate(&client.cookie, &client.honest_text(&metadata));
        client.assert_refused_with_error(&initiate, expected);
    }
}

/// A CURVE server made by hand against a real PUSH client. `new` has sent the greeting and
/// read the client's HELLO.
struct HandMadeServer {
    now: Instant,
    client: Connection,
    keys: CurveKeyPair,
    /// S', s'.
    transient: Transient,
    /// C', from HELLO.
    client_transient: [u8; 32],
}

impl HandMadeServer {
    fn new() -> HandMadeServer {
        let now = t0();
        let keys = CurveKeyPair::generate();
        let mut client = Connection::new(
            config(
                SocketType::Push,
                Security::CurveClient {
                    keypair: CurveKeyPair::generate(),
                    server_key: keys.public,
                },
            ),
            now,
        );
        client.take_transmit(); // its greeting
        let mut greeting = crate::wire::Greeting::null();
        greeting.mechanism = CURVE;
        greeting.as_server = true;
        client
            .handle_input(&mut BytesMut::from(&greeting.encode()[..]), now)
            .unwrap();
        let frames = sent_frames(&mut client);
        // C' follows the name, the version and the padding.
        let client_transient = frames[0][6 + 2 + 72..6 + 2 + 72 + 32].try_into().unwrap();
        HandMadeServer {
            now,
            client,
            keys,
            transient: Transient::generate(),
            client_transient,
        }
    }

    /// A WELCOME body offering `server_transient` as S' (and a cookie the client cannot
    /// read), boxed from our long-term key to C'.
    fn welcome(&self, server_transient: &[u8; 32]) -> Vec<u8> {
        let long_nonce: [u8; 16] = random();
        let text = [&server_transient[..], &random::<96>()].concat();
        let boxed = seal(
            &box_key(self.keys.secret.as_bytes(), &self.client_transient).unwrap(),
            &nonce(b"WELCOME-", &long_nonce),
            &text,
        );
        [&b"\x07WELCOME"[..], &long_nonce, &boxed].concat()
    }

    /// Sends an honest WELCOME; the client must answer with INITIATE.
    fn welcome_honestly(&mut self) {
        let welcome = self.welcome(self.transient.public());
        self.send(&welcome).unwrap();
        let frames = sent_frames(&mut self.client);
        assert!(frames[0].starts_with(b"\x08INITIATE"), "{frames:?}");
    }

    /// A READY body: short nonce 1, then `metadata` boxed from S' to C'.
    fn ready(&self, metadata: &[u8]) -> Vec<u8> {
        let session = box_key(self.transient.secret(), &self.client_transient).unwrap();
        let short = 1u64.to_be_bytes();
        let boxed = seal(&session, &nonce(b"CurveZMQREADY---", &short), metadata);
        [&b"\x05READY"[..], &short, &boxed].concat()
    }

    fn send(&mut self, body: &[u8]) -> Result<(), ProtocolError> {
        send_command(&mut self.client, body, self.now)
    }

    /// Sends `body`, which the client must refuse with `expected`, telling us nothing.
    fn assert_refused_silently(&mut self, body: &[u8], expected: ProtocolError) {
        assert_eq!(self.send(body), Err(expected));
        assert!(!self.client.is_ready());
        assert_eq!(self.client.take_transmit(), None, "RFC 26: no ERROR");
    }
}

#[test]
fn a_hand_made_ready_completes_the_handshake() {
    // The control for the forged WELCOMEs and READYs below.
    let mut server = HandMadeServer::new();
    server.welcome_honestly();
    let ready = server.ready(&metadata(&[("Socket-Type", "PULL")]));
    server.send(&ready).unwrap();
    assert!(server.client.is_ready());
}

#[test]
fn a_low_order_server_transient_key_in_welcome_fails_the_client_silently() {
    let mut server = HandMadeServer::new();
    // S' = 0, the point of order 2: the session key would be all zeros.
    let welcome = server.welcome(&[0; 32]);
    server.assert_refused_silently(
        &welcome,
        ProtocolError::Crypto {
            what: "the peer's key is of low order (its shared secret would be zero)",
        },
    );
}

#[test]
fn ready_under_30_bytes_is_malformed_and_the_client_sends_nothing() {
    // With no metadata a READY is exactly 30 bytes: that passes the size check (and fails
    // for want of a Socket-Type); one byte less is malformed.
    let mut server = HandMadeServer::new();
    server.welcome_honestly();
    let ready = server.ready(b"");
    assert_eq!(ready.len(), 30);
    server.assert_refused_silently(&ready, ProtocolError::MissingSocketType);
    let mut server = HandMadeServer::new();
    server.welcome_honestly();
    let ready = server.ready(b"");
    server.assert_refused_silently(
        &ready[..29],
        ProtocolError::MalformedCommand {
            command: "READY",
            reason: "CURVE READY is shorter than 30 bytes",
        },
    );
}

#[test]
fn bad_ready_metadata_and_socket_types_fail_the_client_silently() {
    for (metadata, expected) in
        metadata_faults("READY", SocketType::Push, "PULLY", SocketType::Push)
    {
        let mut server = HandMadeServer::new();
        server.welcome_honestly();
        let ready = server.ready(&metadata);
        server.assert_refused_silently(&ready, expected);
    }
}

#[test]
fn out_of_turn_commands_to_a_curve_server_are_refused_with_error() {
    // Before HELLO: READY, WELCOME (INITIATE: `security_hostile`).
    let now = t0();
    for (body, command) in [
        (&b"\x05READY"[..], "READY"),
        (&b"\x07WELCOME"[..], "WELCOME"),
    ] {
        let (_, server, _, _) = curve_pair();
        let mut server = Connection::new(server, now);
        server.take_transmit();
        let expected = ProtocolError::UnexpectedCommand { command };
        assert_eq!(
            server.handle_input(&mut greeting_then_command(CURVE, body), now),
            Err(expected.clone())
        );
        assert_told(&mut server, &expected);
    }
    // After WELCOME: the same HELLO again, READY.
    let mut client = HandMadeClient::new();
    let hello = curve_hello(&client.transient, &client.server_key, [1, 0], 0, [0; 64]);
    client.assert_refused_with_error(
        &hello,
        ProtocolError::UnexpectedCommand { command: "HELLO" },
    );
    let mut client = HandMadeClient::new();
    client.assert_refused_with_error(
        b"\x05READY",
        ProtocolError::UnexpectedCommand { command: "READY" },
    );
}

#[test]
fn out_of_turn_commands_to_a_curve_client_fail_it_silently() {
    // Before WELCOME: READY, INITIATE.
    for (body, command) in [
        (&b"\x05READY"[..], "READY"),
        (&b"\x08INITIATE"[..], "INITIATE"),
    ] {
        let mut server = HandMadeServer::new();
        server.assert_refused_silently(body, ProtocolError::UnexpectedCommand { command });
    }
    // After WELCOME: a second WELCOME.
    let mut server = HandMadeServer::new();
    server.welcome_honestly();
    let welcome = server.welcome(server.transient.public());
    server.assert_refused_silently(
        &welcome,
        ProtocolError::UnexpectedCommand { command: "WELCOME" },
    );
}

#[test]
fn out_of_turn_plain_commands_are_refused() {
    let now = t0();
    let hello = b"\x05HELLO\x05admin\x06secret";
    // To the server, before HELLO: INITIATE, WELCOME, READY; after HELLO, a second HELLO.
    for (body, command, after_hello) in [
        (
            &b"\x08INITIATE\x0bSocket-Type\x00\x00\x00\x03REQ"[..],
            "INITIATE",
            false,
        ),
        (b"\x07WELCOME", "WELCOME", false),
        (b"\x05READY", "READY", false),
        (hello, "HELLO", true),
    ] {
        let (_, server) = plain_pair("admin", "secret");
        let mut server = Connection::new(server, now);
        server.take_transmit();
        let mut greeting = crate::wire::Greeting::null();
        greeting.mechanism = PLAIN;
        server
            .handle_input(&mut BytesMut::from(&greeting.encode()[..]), now)
            .unwrap();
        if after_hello {
            send_command(&mut server, hello, now).unwrap();
            assert!(sent_frames(&mut server)[0].starts_with(b"\x07WELCOME"));
        }
        let expected = ProtocolError::UnexpectedCommand { command };
        assert_eq!(send_command(&mut server, body, now), Err(expected.clone()));
        assert_told(&mut server, &expected);
    }
    // To the client, before WELCOME: READY, HELLO; after WELCOME, a second WELCOME.
    for (body, command, after_welcome) in [
        (
            &b"\x05READY\x0bSocket-Type\x00\x00\x00\x03REP"[..],
            "READY",
            false,
        ),
        (hello, "HELLO", false),
        (b"\x07WELCOME", "WELCOME", true),
    ] {
        let (client, _) = plain_pair("admin", "secret");
        let mut client = Connection::new(client, now);
        client.take_transmit();
        let mut greeting = crate::wire::Greeting::null();
        greeting.mechanism = PLAIN;
        greeting.as_server = true;
        client
            .handle_input(&mut BytesMut::from(&greeting.encode()[..]), now)
            .unwrap();
        assert!(sent_frames(&mut client)[0].starts_with(b"\x05HELLO"));
        if after_welcome {
            send_command(&mut client, b"\x07WELCOME", now).unwrap();
            assert!(sent_frames(&mut client)[0].starts_with(b"\x08INITIATE"));
        }
        assert_eq!(
            send_command(&mut client, body, now),
            Err(ProtocolError::UnexpectedCommand { command })
        );
        assert_eq!(
            client.take_transmit(),
            None,
            "a PLAIN client sends no ERROR"
        );
    }
}

#[test]
fn two_servers_wait_until_the_handshake_timeout_and_each_sends_error() {
    let plain_server = || {
        let (_, mut server) = plain_pair("admin", "secret");
        server.handshake_timeout = Some(Duration::from_secs(5));
        server
    };
    let curve_server = || {
        let (_, mut server, _, _) = curve_pair();
        server.handshake_timeout = Some(Duration::from_secs(5));
        server
    };
    for (a, b) in [
        (plain_server(), plain_server()),
        (curve_server(), curve_server()),
    ] {
        let mut link = Link::new(a, b);
        // Both greetings crossed; each server waits for a HELLO that never comes.
        assert!(link.a_result.is_ok() && link.b_result.is_ok());
        assert_eq!(link.a.take_transmit(), None);
        assert_eq!(link.b.take_transmit(), None);
        let late = link.now + Duration::from_secs(5);
        for server in [&mut link.a, &mut link.b] {
            assert_eq!(
                server.handle_timeout(late),
                Err(ProtocolError::HandshakeTimeout)
            );
            assert_told(server, &ProtocolError::HandshakeTimeout);
        }
    }
}

#[test]
fn a_boxed_command_with_more_closes_the_connection_silently() {
    let (client, server, _, _) = curve_pair();
    let mut link = Link::new(client, server);
    // A PING whose frame carries MORE, boxed: the flags travel inside the box.
    let mut ping = BytesMut::new();
    Command::Ping {
        ttl_deciseconds: 0,
        context: Bytes::new(),
    }
    .encode(&mut ping);
    ping[0] |= crate::wire::frame::FLAG_MORE;
    let mut batch = WriteBuf::new();
    batch.push_bytes(&ping);
    let mut out = WriteBuf::new();
    link.a.seal_batch(&mut batch, &mut out);
    link.feed_b(&out.to_bytes());
    assert_eq!(link.b_result, Err(ProtocolError::CommandWithMore));
    assert_eq!(
        link.b.take_transmit(),
        None,
        "RFC 26: no ERROR after the handshake"
    );
}

#[test]
fn a_boxed_frame_over_max_msg_size_is_refused() {
    const MAX: u64 = 1000;
    let curve_link = || {
        let (client, mut server, _, _) = curve_pair();
        server.max_msg_size = Some(MAX);
        Link::new(client, server)
    };
    // The box adds 33 bytes: a 967-byte frame makes a 1000-byte box and arrives...
    let mut link = curve_link();
    let fits = Message::from(vec![1u8; MAX as usize - 33]);
    let wire = link.wire_bytes_of(&fits);
    link.feed_b(&wire);
    link.b_result.clone().unwrap();
    assert_eq!(link.b_messages(), [&fits]);
    // ...one byte more is refused from the box's header.
    let mut link = curve_link();
    let wire = link.wire_bytes_of(&Message::from(vec![1u8; MAX as usize - 32]));
    link.feed_b(&wire[..9]);
    assert_eq!(
        link.b_result,
        Err(ProtocolError::MessageTooLarge {
            len: MAX + 1,
            max: MAX
        })
    );
    assert_eq!(
        link.b.take_transmit(),
        None,
        "RFC 26: no ERROR after the handshake"
    );
    // Frames that each fit, in a message that does not: refused on the opened payloads.
    let mut link = curve_link();
    let mut two = Message::new();
    two.push_back(vec![1u8; 600]);
    two.push_back(vec![2u8; 600]);
    let wire = link.wire_bytes_of(&two);
    link.feed_b(&wire);
    assert_eq!(
        link.b_result,
        Err(ProtocolError::MessageTooLarge {
            len: 1200,
            max: MAX
        })
    );
    assert!(link.b_messages().is_empty());
}

#[test]
fn bad_plain_metadata_and_socket_types_are_refused() {
    let now = t0();
    // The server, after a good HELLO, refuses the INITIATE with ERROR alone (no READY first).
    for (metadata, expected) in
        metadata_faults("INITIATE", SocketType::Rep, "REQY", SocketType::Push)
    {
        let initiate = [&b"\x08INITIATE"[..], &metadata].concat();
        let (_, server) = plain_pair("admin", "secret");
        let mut server = Connection::new(server, now);
        server.take_transmit();
        let mut input = greeting_then_command(PLAIN, b"\x05HELLO\x05admin\x06secret");
        server.handle_input(&mut input, now).unwrap();
        assert!(sent_frames(&mut server)[0].starts_with(b"\x07WELCOME"));
        assert_eq!(
            send_command(&mut server, &initiate, now),
            Err(expected.clone())
        );
        assert_told(&mut server, &expected);
    }
    // The client, after WELCOME, refuses the READY and sends nothing.
    for (metadata, expected) in metadata_faults("READY", SocketType::Req, "REPLY", SocketType::Req)
    {
        let ready = [&b"\x05READY"[..], &metadata].concat();
        let (client, _) = plain_pair("admin", "secret");
        let mut client = Connection::new(client, now);
        client.take_transmit();
        let mut input = greeting_then_command(PLAIN, b"\x07WELCOME");
        client.handle_input(&mut input, now).unwrap();
        let frames = sent_frames(&mut client);
        assert!(frames[0].starts_with(b"\x05HELLO") && frames[1].starts_with(b"\x08INITIATE"));
        assert_eq!(send_command(&mut client, &ready, now), Err(expected));
        assert_eq!(
            client.take_transmit(),
            None,
            "a PLAIN client sends no ERROR"
        );
    }
}

#[test]
fn debug_never_prints_a_password_or_secret_key() {
    let keys = CurveKeyPair::generate();
    let secret = keys.secret.to_z85();
    let printed = [
        format!(
            "{:?}",
            Security::PlainClient {
                username: Bytes::from("admin"),
                password: Bytes::from("hunter2"),
            }
        ),
        format!(
            "{:?}",
            crate::security::Credentials::Plain {
                username: Bytes::from("admin"),
                password: Bytes::from("hunter2"),
            }
        ),
        format!(
            "{:?}",
            Security::CurveClient {
                keypair: keys.clone(),
                server_key: keys.public,
            }
        ),
        format!("{:?}", Security::CurveServer { keypair: keys }),
    ];
    for text in &printed {
        assert!(!text.contains("hunter2"), "password printed: {text}");
        assert!(!text.contains(&secret), "secret key printed: {text}");
    }
    // What they do print: the user name and the public keys.
    assert!(printed[0].contains("admin") && printed[1].contains("admin"));
    assert!(printed[3].contains("public"));
}

#[test]
fn each_server_connection_makes_its_own_transient_key() {
    let server_keys = CurveKeyPair::generate();
    let first = HandMadeClient::against(server_keys.clone());
    let second = HandMadeClient::against(server_keys);
    assert_ne!(first.server_transient, second.server_transient);
    assert_ne!(first.cookie, second.cookie);
}
