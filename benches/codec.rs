//! Frame codec throughput, no sockets: `WriteBuf::push_message` into a reused buffer, and
//! `FrameDecoder::decode` over a warm buffer of many pre-encoded messages.
//!
//! Two groups measure the same work: `codec_msgs` in messages per second (what small-message
//! workloads are limited by) and `codec_bytes` in payload bytes per second (what large ones
//! are). Payloads are 16 B, 64 B, 1 KiB and 64 KiB per frame, in 1- and 3-frame messages.
//!
//! Run: `cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3`.

use bytes::{Bytes, BytesMut};
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, black_box, criterion_group, criterion_main,
    measurement::WallTime,
};
use ferromq::Message;
use ferromq::internals::wire::{FrameDecoder, WriteBuf};

const FRAME_SIZES_BYTES: [usize; 4] = [16, 64, 1024, 64 * 1024];
const FRAMES_PER_MESSAGE: [usize; 2] = [1, 3];

/// Messages encoded per timed encode iteration: a realistic write batch.
const ENCODE_BATCH_MSGS: usize = 64;

/// About how much encoded data one decode iteration walks: large enough that per-iteration
/// overhead vanishes, small enough to stay in L2/L3 like a 64 KiB-read engine loop would.
const DECODE_BATCH_BYTES: usize = 1 << 20;

fn message(frame_size: usize, frames: usize) -> Message {
    (0..frames)
        .map(|i| Bytes::from(vec![i as u8; frame_size]))
        .collect()
}

/// How many messages one decode iteration holds for this shape.
fn decode_batch_msgs(frame_size: usize, frames: usize) -> usize {
    (DECODE_BATCH_BYTES / ((frame_size + 9) * frames)).clamp(16, 16 * 1024)
}

/// Sets the throughput of one iteration: `msgs` messages, or their payload bytes.
fn throughput(by_bytes: bool, msgs: usize, frame_size: usize, frames: usize) -> Throughput {
    if by_bytes {
        Throughput::Bytes((msgs * frame_size * frames) as u64)
    } else {
        Throughput::Elements(msgs as u64)
    }
}

fn bench_encode(group: &mut BenchmarkGroup<'_, WallTime>, by_bytes: bool) {
    for frames in FRAMES_PER_MESSAGE {
        for size in FRAME_SIZES_BYTES {
            let msg = message(size, frames);
            group.throughput(throughput(by_bytes, ENCODE_BATCH_MSGS, size, frames));
            let mut out = WriteBuf::new();
            group.bench_function(format!("encode/{size}B/{frames}f"), |b| {
                b.iter(|| {
                    for _ in 0..ENCODE_BATCH_MSGS {
                        out.push_message(black_box(&msg));
                    }
                    // As after a full write: the tail's allocation is kept for the next batch.
                    out.advance(out.len());
                });
            });
        }
    }
}

fn bench_decode(group: &mut BenchmarkGroup<'_, WallTime>, by_bytes: bool) {
    for frames in FRAMES_PER_MESSAGE {
        for size in FRAME_SIZES_BYTES {
            let msgs = decode_batch_msgs(size, frames);
            let mut out = WriteBuf::new();
            let msg = message(size, frames);
            for _ in 0..msgs {
                out.push_message(&msg);
            }
            let encoded = out.to_bytes();
            let total_frames = msgs * frames;
            group.throughput(throughput(by_bytes, msgs, size, frames));
            group.bench_function(format!("decode/{size}B/{frames}f"), |b| {
                b.iter_batched_ref(
                    // Untimed: a fresh receive buffer as the engine's read would leave it.
                    || BytesMut::from(&encoded[..]),
                    |buf| {
                        let mut decoder = FrameDecoder::new(None);
                        let mut decoded = 0;
                        while let Some(frame) = decoder.decode(buf).unwrap() {
                            black_box(&frame);
                            decoded += 1;
                        }
                        assert_eq!(decoded, total_frames);
                    },
                    BatchSize::LargeInput,
                );
            });
        }
    }
}

fn codec(c: &mut Criterion) {
    for (name, by_bytes) in [("codec_msgs", false), ("codec_bytes", true)] {
        let mut group = c.benchmark_group(name);
        bench_encode(&mut group, by_bytes);
        bench_decode(&mut group, by_bytes);
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
