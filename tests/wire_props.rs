//! Property tests for the wire layer: encode → decode round trips for arbitrary multipart
//! messages under arbitrary stream splits, through the bare codec and through a full
//! `Connection` pair, and arbitrary input never panicking or growing memory past the limit.

use bytes::{Bytes, BytesMut};
use ferromq::Message;
use ferromq::internals::wire::{
    Command, Connection, ConnectionConfig, Event, FrameDecoder, Greeting, Metadata, ProtocolError,
    SocketType, WriteBuf,
};
use proptest::prelude::*;
use std::io::IoSlice;
use std::time::{Duration, Instant};

/// A frame body of a size in one of the three classes that matter to the codec: empty, short
/// form (1..=255), long form (256..70000, past the 64 KiB mark), filled with a cheap pattern.
fn frame_body() -> impl Strategy<Value = Bytes> {
    let size = prop_oneof![
        1 => Just(0usize),
        4 => 1..256usize,
        1 => 256..70_000usize,
    ];
    (size, any::<u8>()).prop_map(|(n, seed)| {
        Bytes::from(
            (0..n)
                .map(|i| seed.wrapping_add((i as u8).wrapping_mul(31)))
                .collect::<Vec<u8>>(),
        )
    })
}

/// A message of 1 to 8 frames (a message always has at least one frame).
fn message() -> impl Strategy<Value = Message> {
    prop::collection::vec(frame_body(), 1..=8).prop_map(Message::from)
}

/// A small message (frames of up to 600 bytes) for byte-at-a-time tests.
fn small_message() -> impl Strategy<Value = Message> {
    let body = (0..600usize, any::<u8>()).prop_map(|(n, b)| Bytes::from(vec![b; n]));
    prop::collection::vec(body, 1..=8).prop_map(Message::from)
}

/// Chunk sizes to cut a stream into, used cyclically.
fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..4096usize, 1..32)
}

fn encode(messages: &[Message]) -> Bytes {
    let mut out = WriteBuf::new();
    for message in messages {
        out.push_message(message);
    }
    out.to_bytes()
}

/// Splits `stream` into chunks of the given sizes (cycled) and hands each to `feed`.
fn for_each_chunk(stream: &[u8], sizes: &[usize], mut feed: impl FnMut(&[u8])) {
    let mut at = 0;
    for &size in sizes.iter().cycle() {
        if at == stream.len() {
            break;
        }
        let end = (at + size).min(stream.len());
        feed(&stream[at..end]);
        at = end;
    }
}

/// Decodes `stream` fed in chunks, regrouping frames into messages by their MORE flag.
fn decode_messages(stream: &[u8], sizes: &[usize]) -> Vec<Message> {
    let mut decoder = FrameDecoder::new(None);
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    let mut partial = Message::new();
    for_each_chunk(stream, sizes, |chunk| {
        buf.extend_from_slice(chunk);
        while let Some(frame) = decoder.decode(&mut buf).expect("valid stream") {
            assert!(!frame.command);
            partial.push_back(frame.body);
            if !frame.more {
                messages.push(std::mem::take(&mut partial));
            }
        }
    });
    assert!(buf.is_empty() && decoder.is_idle() && partial.is_empty());
    messages
}

/// Drains a `WriteBuf` as a socket would: vectored writes that accept `accept` bytes at most.
fn drain_vectored(mut out: WriteBuf, accepts: &[usize]) -> Vec<u8> {
    let mut written = Vec::new();
    for &accept in accepts.iter().cycle() {
        if out.is_empty() {
            break;
        }
        let mut slices = [IoSlice::new(&[]); 8];
        let n = out.chunks_vectored(&mut slices);
        let mut budget = accept;
        for slice in &slices[..n] {
            let take = slice.len().min(budget);
            written.extend_from_slice(&slice[..take]);
            budget -= take;
        }
        let done = accept - budget;
        out.advance(done);
    }
    written
}

/// A PUSH connection ready to send to a PULL peer, and the bytes the PULL peer must read:
/// PUSH's greeting and READY. The PULL side is returned fresh, so the whole stream can be
/// split at arbitrary points, handshake included.
fn push_ready_for_fresh_pull(now: Instant) -> (Connection, Vec<u8>) {
    let mut push = Connection::new(ConnectionConfig::new(SocketType::Push), now);
    let mut pull = Connection::new(ConnectionConfig::new(SocketType::Pull), now);
    let mut stream = push.take_transmit().unwrap().to_vec();
    pull.handle_input(&mut BytesMut::from(&stream[..]), now)
        .unwrap();
    let mut from_pull = BytesMut::from(&pull.take_transmit().unwrap()[..]);
    push.handle_input(&mut from_pull, now).unwrap();
    assert!(push.is_ready());
    stream.extend_from_slice(&push.take_transmit().unwrap());
    (push, stream)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn writebuf_then_decoder_round_trips_any_messages(
        messages in prop::collection::vec(message(), 1..8),
        sizes in chunk_sizes(),
    ) {
        let stream = encode(&messages);
        prop_assert_eq!(decode_messages(&stream, &[stream.len().max(1)]), messages.clone());
        prop_assert_eq!(decode_messages(&stream, &sizes), messages);
    }

    #[test]
    fn vectored_partial_writes_emit_the_same_bytes_as_to_bytes(
        messages in prop::collection::vec(message(), 1..8),
        accepts in prop::collection::vec(1..20_000usize, 1..16),
    ) {
        let mut out = WriteBuf::new();
        for message in &messages {
            out.push_message(message);
        }
        let expected = out.to_bytes();
        prop_assert_eq!(out.len(), expected.len());
        prop_assert_eq!(drain_vectored(out, &accepts), expected.to_vec());
    }

    #[test]
    fn decoder_gives_same_messages_a_byte_at_a_time(
        messages in prop::collection::vec(small_message(), 1..4),
    ) {
        let stream = encode(&messages);
        prop_assert_eq!(decode_messages(&stream, &[1]), messages);
    }

    #[test]
    fn connection_pair_delivers_any_messages_however_split(
        messages in prop::collection::vec(message(), 1..8),
        sizes in chunk_sizes(),
    ) {
        let now = Instant::now();
        let (mut push, mut stream) = push_ready_for_fresh_pull(now);
        for message in &messages {
            push.send_message(message);
        }
        stream.extend_from_slice(&push.take_transmit().unwrap());

        for sizes in [&sizes[..], &[stream.len()]] {
            let mut pull = Connection::new(ConnectionConfig::new(SocketType::Pull), now);
            let mut buf = BytesMut::new();
            let mut events = Vec::new();
            for_each_chunk(&stream, sizes, |chunk| {
                buf.extend_from_slice(chunk);
                pull.handle_input(&mut buf, now).expect("valid stream");
                events.extend(std::iter::from_fn(|| pull.poll_event()));
            });
            prop_assert!(matches!(events.first(), Some(Event::Ready(p)) if p.socket_type == SocketType::Push));
            let received: Vec<_> = events[1..].to_vec();
            let expected: Vec<_> = messages.iter().cloned().map(Event::Message).collect();
            prop_assert_eq!(received, expected);
        }
    }

    #[test]
    fn connection_gives_same_events_a_byte_at_a_time(
        messages in prop::collection::vec(small_message(), 1..4),
    ) {
        let now = Instant::now();
        let (mut push, mut stream) = push_ready_for_fresh_pull(now);
        for message in &messages {
            push.send_message(message);
        }
        stream.extend_from_slice(&push.take_transmit().unwrap());
        let mut pull = Connection::new(ConnectionConfig::new(SocketType::Pull), now);
        let mut buf = BytesMut::new();
        for &byte in &stream {
            buf.extend_from_slice(&[byte]);
            pull.handle_input(&mut buf, now).expect("valid stream");
        }
        let events: Vec<_> = std::iter::from_fn(|| pull.poll_event()).skip(1).collect();
        let expected: Vec<_> = messages.into_iter().map(Event::Message).collect();
        prop_assert_eq!(events, expected);
    }
}

/// What precedes the random bytes: nothing, a valid greeting, or a greeting and a READY,
/// so that the greeting, handshake and traffic phases all meet garbage.
fn prelude(kind: u8, ours: SocketType) -> Vec<u8> {
    let mut out = Vec::new();
    if kind >= 1 {
        out.extend_from_slice(&Greeting::null().encode());
    }
    if kind >= 2 {
        let peer = SocketType::ALL
            .into_iter()
            .find(|p| ours.is_compatible_with(*p))
            .unwrap();
        let mut meta = Metadata::new();
        meta.insert("Socket-Type", peer.as_str());
        let mut ready = BytesMut::new();
        Command::Ready(meta).encode(&mut ready);
        out.extend_from_slice(&ready);
    }
    out
}

/// Frame-shaped garbage: headers with arbitrary flags (valid ones more often) and lengths,
/// bodies shorter or longer than announced, so the decoder sees plausible streams too.
fn frame_shaped_garbage() -> impl Strategy<Value = Vec<u8>> {
    let flags = prop_oneof![4 => 0u8..8, 1 => any::<u8>()];
    let frame = (
        flags,
        any::<u8>(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..300),
    );
    prop::collection::vec(frame, 0..16).prop_map(|frames| {
        let mut out = Vec::new();
        for (flags, short, long, body) in frames {
            out.push(flags);
            if flags & 0x02 != 0 {
                // Mostly small long-form lengths, sometimes huge ones.
                let len = if long % 4 == 0 { long } else { long % 100_000 };
                out.extend_from_slice(&len.to_be_bytes());
            } else {
                out.push(short);
            }
            out.extend_from_slice(&body);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_input_never_panics_and_memory_stays_bounded(
        type_index in 0..SocketType::ALL.len(),
        prelude_kind in 0u8..3,
        garbage in prop_oneof![prop::collection::vec(any::<u8>(), 0..2048), frame_shaped_garbage()],
        max in 0u64..200_000,
        sizes in prop::collection::vec(1..512usize, 1..8),
    ) {
        let ours = SocketType::ALL[type_index];
        let mut config = ConnectionConfig::new(ours);
        config.max_msg_size = Some(max);
        let now = Instant::now();
        let mut conn = Connection::new(config, now);
        let mut input = prelude(prelude_kind, ours);
        input.extend_from_slice(&garbage);

        let mut buf = BytesMut::new();
        let mut fault: Option<ProtocolError> = None;
        let bound = 4 * (max as usize + 512) + 256 * 1024;
        for_each_chunk(&input, &sizes, |chunk| {
            if fault.is_some() {
                return;
            }
            buf.extend_from_slice(chunk);
            fault = conn.handle_input(&mut buf, now).err();
            while conn.poll_event().is_some() {}
            assert!(buf.capacity() <= bound, "capacity {} over {bound}", buf.capacity());
        });
        if let Some(fault) = fault {
            // Sticky: the same fault from input and from timers.
            prop_assert_eq!(conn.handle_input(&mut BytesMut::new(), now), Err(fault.clone()));
            prop_assert_eq!(conn.handle_timeout(now + Duration::from_secs(1)), Err(fault));
        }
    }
}
