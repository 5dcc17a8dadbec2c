//! The logic of ferromq's fuzz targets, kept free of libFuzzer so that the root crate's
//! `tests/wire_fuzz_corpus.rs` can include this file and run the same checks over a seeded
//! corpus on stable Rust, without cargo-fuzz.
//!
//! Every target reads its configuration and its chunking from the input itself, so every
//! run is a pure function of the bytes and a crash reproduces from its artifact alone.
//!
//! * `frame`, `handshake`: raw bytes into a `FrameDecoder` and a server-side `Connection`.
//! * `handshake_structured`: an `Arbitrary` peer script (greeting, READY, commands, data,
//!   clock advances) against a `Connection`, checked step by step against a model.
//! * `commands`: `Command`/`Metadata` encode–decode round trips, and raw bytes into the decoders.
//! * `codec_roundtrip`: multipart messages through `WriteBuf` and back through `FrameDecoder`.
//! * `pattern_ops`: operation sequences on the pattern layer against simple models.
//! * `plain_handshake`, `curve_handshake`: an `Arbitrary` hostile peer against a PLAIN or
//!   CURVE `Connection` in either role, with an honest peer driven alongside so that the
//!   script can deliver, tamper with, replay, reorder or forge real handshake commands and
//!   boxes (harness and invariants in `secure_handshake.rs`).
//!
//! The structure-aware targets take `&[u8]` and build their input with
//! `arbitrary::Unstructured`, so the replay needs the `arbitrary` crate (with `derive`) as a
//! dev-dependency of the root crate.

use bytes::BytesMut;
use ferromq::internals::wire::frame::{FLAG_COMMAND, FLAG_LONG, FLAG_MORE, MAX_FRAME_BYTES};
use ferromq::internals::wire::{
    Connection, ConnectionConfig, FrameDecoder, HeartbeatConfig, SocketType,
};
use std::time::{Duration, Instant};

/// Slack allowed on top of the decoder's own limit when checking buffer memory: the decoder
/// reserves up to 256 KiB ahead, and `BytesMut` may double an allocation when it grows.
const MEMORY_SLACK_BYTES: usize = 512 * 1024;

/// Largest chunk the `handshake` target feeds at once.
const MAX_CHUNK_BYTES: usize = 256;

/// A small cursor over the fuzz input, handing out configuration bytes and chunks.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (&first, rest) = self.data.split_first().unwrap_or((&0, &[]));
        self.data = rest;
        first
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }
}

/// A maximum frame size chosen by one input byte: unlimited, or 1 B to 16 MiB.
fn max_size(selector: u8) -> Option<u64> {
    match selector % 26 {
        25 => None,
        shift => Some(1u64 << shift),
    }
}

/// What an independent, obviously-correct parse says the next frame is:
/// `Some((flags, header_len, body_len))`, or `None` when the header is incomplete or invalid.
fn reference_header(data: &[u8]) -> Option<(u8, usize, u64)> {
    let &flags = data.first()?;
    if flags & !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND) != 0 {
        return None;
    }
    if flags & FLAG_LONG != 0 {
        let size: [u8; 8] = data.get(1..9)?.try_into().ok()?;
        Some((flags, 9, u64::from_be_bytes(size)))
    } else {
        Some((flags, 2, u64::from(*data.get(1)?)))
    }
}

/// `frame` target: decodes the input in one piece and again in input-chosen chunks.
///
/// Checks that both decodes agree with each other and with [`reference_header`], that the
/// bytes consumed plus the bytes left equal the input length, that a frame over the maximum
/// is refused, and that the buffer never grows past the maximum plus slack.
pub fn frame(data: &[u8]) {
    let mut input = Input { data };
    let max = max_size(input.byte());
    let chunk_seed = input.byte();
    let stream = input.data;

    let whole = decode_frames(stream, max, &mut |_| stream.len());
    let mut seed = chunk_seed;
    let chunked = decode_frames(stream, max, &mut |_| {
        // Chunk lengths 1..=64 from a tiny LCG: cheap, deterministic, covers odd splits.
        seed = seed.wrapping_mul(37).wrapping_add(11);
        usize::from(seed % 64) + 1
    });
    assert_eq!(
        whole, chunked,
        "decoding depends on how the stream is split"
    );
}

/// Decoded frames as (flags without LONG, body), and the fault that stopped decoding.
type Decoded = (
    Vec<(u8, Vec<u8>)>,
    Option<ferromq::internals::wire::ProtocolError>,
);

fn decode_frames(
    stream: &[u8],
    max: Option<u64>,
    next_chunk: &mut dyn FnMut(usize) -> usize,
) -> Decoded {
    let mut decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut offset = 0;
    let mut frames = Vec::new();
    while fed < stream.len() {
        let n = next_chunk(fed).min(stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        loop {
            let result = decoder.decode(&mut buf);
            let consumed = fed - buf.len();
            let frame = match result {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    let (flags, _, len) =
                        reference_header(&stream[offset..]).map_or((0, 0, 0), |h| h);
                    let refused = reference_header(&stream[offset..]).is_none()
                        || flags & FLAG_COMMAND != 0 && flags & FLAG_MORE != 0
                        || max.is_some_and(|m| len > m)
                        || len > MAX_FRAME_BYTES;
                    assert!(refused, "decoder refused a valid frame at {offset}: {e}");
                    return (frames, Some(e));
                }
            };
            let (flags, header_len, len) = reference_header(&stream[offset..])
                .expect("decoder produced a frame the reference parser cannot read");
            let end = offset + header_len + len as usize;
            assert_eq!(consumed, end, "consumed + remaining != input length");
            assert_eq!(&frame.body[..], &stream[offset + header_len..end]);
            assert_eq!(frame.more, flags & FLAG_MORE != 0);
            assert_eq!(frame.command, flags & FLAG_COMMAND != 0);
            frames.push((flags & !FLAG_LONG, frame.body.to_vec()));
            offset = end;
        }
        let limit = max.map_or(usize::MAX, |m| 2 * m as usize + MEMORY_SLACK_BYTES);
        assert!(
            buf.capacity() <= limit.max(2 * stream.len() + MEMORY_SLACK_BYTES),
            "buffer capacity {} past the bound for max {max:?}",
            buf.capacity()
        );
    }
    (frames, None)
}

/// The greeting libzmq sends with NULL security, so inputs can skip straight to commands.
fn null_greeting() -> [u8; 64] {
    ferromq::internals::wire::Greeting::null().encode()
}

/// `handshake` target: a server-side connection fed input-chosen chunks and clock ticks.
///
/// The first bytes choose the socket type, limits and heartbeats, and whether a valid greeting
/// and READY are prepended (so the traffic phase is reached often). Then, repeatedly: one byte
/// of chunk length, that many bytes of input, one byte of clock advance in milliseconds.
/// Checks: no panic, faults are sticky, the buffer stays bounded by the maximum message size.
pub fn handshake(data: &[u8]) {
    handshake_fault(data);
}

/// `handshake`, returning the connection's fault (for coverage statistics).
pub fn handshake_fault(data: &[u8]) -> Option<ferromq::internals::wire::ProtocolError> {
    let mut input = Input { data };
    let socket_type = SocketType::ALL[usize::from(input.byte()) % SocketType::ALL.len()];
    let mut config = ConnectionConfig::new(socket_type);
    let max_msg_size = max_size(input.byte());
    config.max_msg_size = max_msg_size;
    let timers = input.byte();
    if timers & 1 != 0 {
        config.handshake_timeout = Some(Duration::from_millis(u64::from(timers >> 1) * 10));
    }
    let heartbeat = input.byte();
    if heartbeat & 1 != 0 {
        config.heartbeat = HeartbeatConfig {
            interval: Some(Duration::from_millis(u64::from(heartbeat >> 1) + 1)),
            timeout: (heartbeat & 2 != 0).then(|| Duration::from_millis(u64::from(heartbeat))),
            ttl: (heartbeat & 4 != 0).then(|| Duration::from_millis(u64::from(heartbeat) * 100)),
        };
    }
    let prelude = input.byte();

    // The harness plays the engine here: it owns the clock, and only adds to this origin.
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut now = start;
    let mut conn = Connection::new(config, now);
    let mut buf = BytesMut::new();
    if prelude & 1 != 0 {
        buf.extend_from_slice(&null_greeting());
        if prelude & 2 != 0 {
            let peer = SocketType::ALL
                .into_iter()
                .find(|p| socket_type.is_compatible_with(*p))
                .expect("every type has a compatible peer");
            let mut ready = BytesMut::new();
            let mut meta = ferromq::internals::wire::Metadata::new();
            meta.insert("Socket-Type", peer.as_str());
            ferromq::internals::wire::Command::Ready(meta).encode(&mut ready);
            buf.extend_from_slice(&ready);
        }
    }

    let mut fault = None;
    let mut first_round = true;
    while first_round || !input.data.is_empty() {
        first_round = false;
        let len = usize::from(input.byte()) % MAX_CHUNK_BYTES + 1;
        buf.extend_from_slice(input.take(len));
        check_sticky(&mut fault, conn.handle_input(&mut buf, now));
        while conn.poll_event().is_some() {}
        conn.take_transmit();

        now += Duration::from_millis(u64::from(input.byte()) * 4);
        if conn.poll_timeout().is_some_and(|t| t <= now) {
            check_sticky(&mut fault, conn.handle_timeout(now));
        }
        match (fault.is_some(), max_msg_size) {
            (false, Some(max)) => assert!(
                buf.capacity() <= 4 * (max as usize + MAX_CHUNK_BYTES) + MEMORY_SLACK_BYTES,
                "receive buffer capacity {} past the bound for max {max}",
                buf.capacity()
            ),
            (false, None) => {}
            (true, _) => {
                // A failed connection reads nothing more; drop what the peer keeps sending.
                let before = buf.len();
                check_sticky(&mut fault, conn.handle_input(&mut buf, now));
                assert_eq!(buf.len(), before, "failed connection consumed input");
                buf.clear();
            }
        }
    }
    fault
}

/// Records the first fault and asserts that every later call reports the same one.
fn check_sticky(
    fault: &mut Option<ferromq::internals::wire::ProtocolError>,
    result: Result<(), ferromq::internals::wire::ProtocolError>,
) {
    match (fault.as_ref(), result) {
        (None, Err(e)) => *fault = Some(e),
        (Some(first), result) => assert_eq!(result.as_ref().err(), Some(first), "fault not sticky"),
        (None, Ok(())) => {}
    }
}

// =====================================================================================
// Structure-aware targets (`handshake_structured`, `commands`, `codec_roundtrip`,
// `pattern_ops`). Each takes raw bytes and builds its `Arbitrary` input itself, so the
// libFuzzer shims and the stable replay in `tests/wire_fuzz_corpus.rs` call the same function.
// =====================================================================================

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use ferromq::Message;
use ferromq::internals::wire::command::MAX_PING_CONTEXT_BYTES;
use ferromq::internals::wire::connection::{MAX_FRAMES_PER_MESSAGE, MAX_HANDSHAKE_FRAME_BYTES};
use ferromq::internals::wire::frame::MAX_HEADER_BYTES;
use ferromq::internals::wire::greeting::GREETING_LEN;
use ferromq::internals::wire::{
    Command, Event, Greeting, Mechanism, Metadata, ProtocolError, WriteBuf,
};

/// Largest stream one structured handshake script may generate (large frames are cheap to
/// describe, so the description is capped by the bytes it expands to instead).
const MAX_SCRIPT_STREAM_BYTES: usize = 8 << 20;

/// Largest single generated frame body: past the 1 MiB that the issue asks large frames reach.
const MAX_GENERATED_FRAME_BYTES: usize = 2 << 20;

/// Builds `T` from the whole input; `None` when the bytes do not describe one (not a bug).
fn structured<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// Deterministic non-constant body bytes, so misordered or misplaced bytes are caught.
fn pattern_body(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| seed.wrapping_add((i as u8).wrapping_mul(31)) ^ (i >> 8) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Chunk length from one input-chosen `u16`: small (1..=512) or large steps of 64 bytes.
fn chunk_len(c: u16) -> usize {
    if c & 0x8000 == 0 {
        usize::from(c % 512) + 1
    } else {
        usize::from(c & 0x7FFF) * 64 + 1
    }
}

/// Hands out chunk lengths cycling over an input-chosen list, never so small that a huge
/// stream takes more than a few thousand calls.
struct Chunker {
    sizes: Vec<u16>,
    at: usize,
    floor: usize,
}

impl Chunker {
    fn new(sizes: Vec<u16>, stream_len: usize) -> Self {
        Chunker {
            sizes,
            at: 0,
            floor: stream_len / 4096,
        }
    }

    fn next(&mut self) -> usize {
        let n = match self.sizes.get(self.at % self.sizes.len().max(1)) {
            Some(&c) => chunk_len(c),
            None => usize::MAX,
        };
        self.at += 1;
        n.max(self.floor).max(1)
    }
}

#[derive(Arbitrary, Debug)]
enum Size {
    Short(u8),
    Medium(u16),
    Large(u32),
}

impl Size {
    fn len(&self) -> usize {
        match *self {
            Size::Short(n) => usize::from(n),
            Size::Medium(n) => usize::from(n),
            Size::Large(n) => n as usize % (MAX_GENERATED_FRAME_BYTES + 1),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum MaxSize {
    Pow(u8),
    Exact(u32),
}

fn malformed(command: &'static str, reason: &'static str) -> ProtocolError {
    ProtocolError::MalformedCommand { command, reason }
}

const KNOWN_COMMANDS: [&[u8]; 6] = [
    b"READY",
    b"ERROR",
    b"SUBSCRIBE",
    b"CANCEL",
    b"PING",
    b"PONG",
];

mod codec_roundtrip;
mod commands;
mod curve_handshake;
mod handshake_structured;
mod pattern_ops;
mod plain_handshake;
mod secure_handshake;

// Each includer (the fuzz crate, the stable replay) uses its own subset.
#[allow(unused_imports)]
pub use self::{
    codec_roundtrip::{CodecReport, codec_roundtrip, codec_roundtrip_report},
    commands::commands,
    curve_handshake::{
        CurveScript, curve_handshake, curve_handshake_report, describe_curve_script,
    },
    handshake_structured::{
        HandshakeReport, HandshakeScript, describe_handshake_script, handshake_structured,
        handshake_structured_report,
    },
    pattern_ops::pattern_ops,
    plain_handshake::{
        PlainScript, describe_plain_script, plain_handshake, plain_handshake_report,
    },
    secure_handshake::SecureReport,
};
