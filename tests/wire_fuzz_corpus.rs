//! The fuzz targets' logic (`fuzz/src/lib.rs`, shared verbatim) run over a seeded
//! pseudo-random corpus, so that stable CI catches what the fuzzers would, without nightly or
//! libFuzzer. The corpus mixes pure noise with mutations of valid streams, because noise alone
//! rarely gets past the greeting.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use ferromq::Message;
use ferromq::wire::{Command, Greeting, Metadata, WriteBuf};

/// Inputs per target: enough to reach every phase many times, fast enough for `cargo test`.
const CORPUS_INPUTS: usize = 4000;

/// xorshift64*: deterministic, dependency-free, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Between 0 and `max - 1` random bytes.
    fn bytes_below(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
}

/// A valid stream of frames: a few messages and commands of assorted sizes.
fn valid_frames(rng: &mut Rng) -> Vec<u8> {
    let mut out = WriteBuf::new();
    for _ in 0..rng.below(6) {
        let frames: Vec<Vec<u8>> = (0..1 + rng.below(4))
            .map(|_| {
                let len = [0, 1, 255, 256, 1000][rng.below(5)];
                rng.bytes(len)
            })
            .collect();
        out.push_message(&frames.into_iter().collect::<Message>());
    }
    let mut bytes = out.to_bytes().to_vec();
    let mut command = bytes::BytesMut::new();
    match rng.below(4) {
        0 => Command::Ping {
            ttl_deciseconds: rng.next() as u16,
            context: rng.bytes_below(17).into(),
        },
        1 => Command::Subscribe(rng.bytes_below(8).into()),
        2 => Command::Cancel(rng.bytes_below(8).into()),
        _ => Command::Unknown {
            name: "HELLO".into(),
            data: rng.bytes(3).into(),
        },
    }
    .encode(&mut command);
    bytes.extend_from_slice(&command);
    bytes
}

/// Flips, inserts or deletes a few bytes.
fn mutate(rng: &mut Rng, mut data: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.below(4) {
        if data.is_empty() {
            break;
        }
        let at = rng.below(data.len());
        match rng.below(3) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data.insert(at, rng.next() as u8),
            _ => {
                data.remove(at);
            }
        }
    }
    data
}

#[test]
fn frame_target_holds_over_seeded_corpus() {
    let mut rng = Rng(0x00F3_220A_11CE_5EED);
    for _ in 0..CORPUS_INPUTS {
        let mut input = vec![rng.next() as u8, rng.next() as u8];
        let body = if rng.below(2) == 0 {
            rng.bytes_below(600)
        } else {
            let valid = valid_frames(&mut rng);
            mutate(&mut rng, valid)
        };
        input.extend_from_slice(&body);
        targets::frame(&input);
    }
}

#[test]
fn handshake_target_holds_over_seeded_corpus() {
    let mut rng = Rng(0x0BAD_C0FF_EE15_600D);
    for _ in 0..CORPUS_INPUTS {
        // Configuration bytes: socket type, max size, timers, heartbeats, prelude.
        let mut input = rng.bytes(5);
        let mut stream = Vec::new();
        match rng.below(3) {
            0 => stream = rng.bytes_below(400),
            1 => {
                // Our own greeting and a READY, as a peer would send them, then traffic.
                stream.extend_from_slice(&Greeting::null().encode());
                let mut meta = Metadata::new();
                let name = [
                    "PUSH", "PULL", "PUB", "SUB", "DEALER", "ROUTER", "PAIR", "BOGUS",
                ];
                meta.insert("Socket-Type", name[rng.below(name.len())]);
                let mut ready = bytes::BytesMut::new();
                Command::Ready(meta).encode(&mut ready);
                stream.extend_from_slice(&ready);
                stream.extend_from_slice(&valid_frames(&mut rng));
                stream = mutate(&mut rng, stream);
            }
            _ => {
                input[4] |= 3; // the target prepends greeting and READY itself
                let valid = valid_frames(&mut rng);
                stream = mutate(&mut rng, valid);
            }
        }
        // Chunk it: [length - 1][bytes][clock tick].
        let mut at = 0;
        while at < stream.len() {
            let n = (1 + rng.below(80)).min(stream.len() - at);
            input.push((n - 1) as u8);
            input.extend_from_slice(&stream[at..at + n]);
            input.push(rng.next() as u8);
            at += n;
        }
        targets::handshake(&input);
    }
}
