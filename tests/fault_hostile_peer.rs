//! Hostile peers: garbage instead of a greeting, reserved flag bits, a 2^63-byte frame
//! length, a flood of empty MORE frames. Each is disconnected with a warning naming the
//! fault, while a well-behaved libzmq PUSH on the same socket keeps streaming and loses
//! nothing.

use ferromq::{Pull, SocketOptions};
use std::fmt::{Debug, Write as _};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::spawn_blocking;
use tokio::time::timeout;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Metadata, Subscriber};

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages from the well-behaved peer while the hostile one attacks.
const GOOD_MSGS: u32 = 10_000;
const MAX_MSG_SIZE: u64 = 1 << 20;
/// A libzmq PUSH's greeting and READY, captured byte for byte (tests/fixtures/README.md):
/// a hostile peer that gets through the handshake before misbehaving.
const PUSH_HANDSHAKE: &[u8] = include_bytes!("fixtures/libzmq-4.3-push-null-handshake.bin");

/// A tracing subscriber that keeps the fields of every WARN and ERROR event as text.
#[derive(Clone, Default)]
struct WarnLog(Arc<Mutex<Vec<String>>>);

impl WarnLog {
    fn contains(&self, text: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(text))
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Renders an event's fields as `name=value` pairs.
struct FieldText(String);

impl Visit for FieldText {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Subscriber for WarnLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = FieldText(format!("{} ", event.metadata().level()));
        event.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Connects, writes `attack`, and reads until the server closes the connection. A write that
/// fails because the server already closed counts as closed too.
async fn attack(addr: SocketAddr, attack: Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(&attack).await;
    let mut sink = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Runs `attack_bytes` against a PULL that a libzmq PUSH streams to, and checks: the attacker
/// is disconnected, a warning containing `expected_warning` was logged, and all of the good
/// peer's messages arrive in order.
async fn hostile_peer_is_dropped(attack_bytes: Vec<u8>, expected_warning: &str) {
    let log = WarnLog::default();
    // The runtime is current-thread, so every engine task logs on this thread.
    let _guard = tracing::subscriber::set_default(log.clone());
    timeout(TEST_TIMEOUT, async {
        let mut options = SocketOptions::default();
        options.max_msg_size = Some(MAX_MSG_SIZE);
        let pull = Pull::with_options(options).unwrap();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let ferromq::Endpoint::Tcp {
            host: ferromq::endpoint::Host::Ip(ip),
            port,
        } = endpoint
        else {
            unreachable!()
        };

        let good = spawn_blocking({
            let endpoint = endpoint.to_string();
            move || {
                let ctx = zmq::Context::new();
                let push = ctx.socket(zmq::PUSH).unwrap();
                push.set_sndtimeo(20_000).unwrap();
                push.set_linger(20_000).unwrap();
                push.connect(&endpoint).unwrap();
                for i in 0..GOOD_MSGS {
                    push.send(&i.to_be_bytes()[..], 0).unwrap();
                }
            }
        });
        // The good peer is streaming before the attack starts, and keeps streaming through it.
        assert_eq!(
            &pull.recv().await.unwrap().frames()[0][..],
            0u32.to_be_bytes()
        );
        let receive_rest = async {
            for i in 1..GOOD_MSGS {
                let message = pull.recv().await.unwrap();
                assert_eq!(
                    &message.frames()[0][..],
                    i.to_be_bytes(),
                    "good message {i}"
                );
            }
        };
        tokio::join!(
            attack(SocketAddr::new(ip, port), attack_bytes),
            receive_rest
        );
        good.await.unwrap();
    })
    .await
    .unwrap();
    assert!(
        log.contains(expected_warning),
        "no warning containing {expected_warning:?}; got {:?}",
        log.lines()
    );
}

fn after_handshake(tail: &[u8]) -> Vec<u8> {
    [PUSH_HANDSHAKE, tail].concat()
}

#[tokio::test]
async fn bad_greeting_is_disconnected() {
    let mut garbage = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n".to_vec();
    garbage.resize(64, b' ');
    hostile_peer_is_dropped(garbage, "bad greeting signature").await;
}

#[tokio::test]
async fn reserved_flag_bits_are_disconnected() {
    // Flags 0x20: a bit RFC 23 reserves, on an otherwise valid 1-byte frame.
    hostile_peer_is_dropped(
        after_handshake(&[0x20, 0x01, b'x']),
        "reserved bits set in frame flags 0x20",
    )
    .await;
}

#[tokio::test]
async fn frame_length_of_2_pow_63_is_disconnected_before_any_allocation() {
    let mut frame = vec![0x02];
    frame.extend_from_slice(&(1u64 << 63).to_be_bytes());
    hostile_peer_is_dropped(
        after_handshake(&frame),
        &format!("exceeds the maximum message size of {MAX_MSG_SIZE} bytes"),
    )
    .await;
}

#[tokio::test]
async fn flood_of_empty_more_frames_is_disconnected() {
    // Empty frames weigh nothing against max_msg_size; the frame-count limit stops them.
    let flood: Vec<u8> = [0x01u8, 0x00].repeat(70_000);
    hostile_peer_is_dropped(
        after_handshake(&flood),
        "message has more than 65536 frames",
    )
    .await;
}
