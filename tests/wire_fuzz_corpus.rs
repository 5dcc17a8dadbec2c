//! The fuzz targets' logic (`fuzz/src/lib.rs`, shared verbatim) run over a seeded
//! pseudo-random corpus, so that stable CI catches what the fuzzers would, without nightly or
//! libFuzzer. The corpus mixes pure noise with mutations of valid streams, because noise alone
//! rarely gets past the greeting.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use ferromq::Message;
use ferromq::internals::wire::{Command, Greeting, Metadata, WriteBuf};

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

// ---- the structure-aware targets ----
//
// These build their input with `arbitrary::Unstructured` from the bytes, so plain seeded
// noise already decodes to well-formed scripts, commands, messages and operation lists.

/// Inputs per structure-aware target. The handshake and codec targets can expand a few bytes
/// into megabytes of frames, so they get fewer, shorter inputs in an unoptimised test build.
const STRUCTURED_INPUTS: usize = 1500;
const EXPANDING_INPUTS: usize = 300;

fn seeded_noise(seed: u64, inputs: usize, max_len: usize, target: Target) {
    let mut rng = Rng(seed);
    for _ in 0..inputs {
        let input = rng.bytes_below(max_len);
        target(&input);
    }
}

#[test]
fn handshake_structured_target_holds_over_seeded_corpus() {
    seeded_noise(
        0x5EED_0001_4A4D_5348,
        EXPANDING_INPUTS,
        300,
        targets::handshake_structured,
    );
}

#[test]
fn commands_target_holds_over_seeded_corpus() {
    seeded_noise(
        0x5EED_0002_C0DE_C0DE,
        STRUCTURED_INPUTS,
        400,
        targets::commands,
    );
}

#[test]
fn codec_roundtrip_target_holds_over_seeded_corpus() {
    seeded_noise(
        0x5EED_0003_F4A3_E5E5,
        EXPANDING_INPUTS,
        200,
        targets::codec_roundtrip,
    );
}

#[test]
fn pattern_ops_target_holds_over_seeded_corpus() {
    seeded_noise(
        0x5EED_0004_9A77_E4A5,
        STRUCTURED_INPUTS,
        600,
        targets::pattern_ops,
    );
}

/// Inputs for the security handshake targets: CURVE costs a few scalar multiplications per
/// input, slow in an unoptimised test build.
const SECURE_INPUTS: usize = 200;

#[test]
fn plain_handshake_target_holds_over_seeded_corpus() {
    seeded_noise(
        0x5EED_0005_91A1_4E11,
        SECURE_INPUTS,
        600,
        targets::plain_handshake,
    );
}

#[test]
fn curve_handshake_target_holds_over_seeded_corpus() {
    seeded_noise(
        0x5EED_0006_C0E7_E5A1,
        SECURE_INPUTS,
        600,
        targets::curve_handshake,
    );
}

/// A fuzz target's logic: one input, panics on a broken invariant.
type Target = fn(&[u8]);

/// Every target by its cargo-fuzz name.
const TARGETS: [(&str, Target); 8] = [
    ("frame", targets::frame),
    ("handshake", targets::handshake),
    ("handshake_structured", targets::handshake_structured),
    ("commands", targets::commands),
    ("codec_roundtrip", targets::codec_roundtrip),
    ("pattern_ops", targets::pattern_ops),
    ("plain_handshake", targets::plain_handshake),
    ("curve_handshake", targets::curve_handshake),
];

/// Runs every file under `tests/fixtures/<dir>/<target>/` through its target; returns how
/// many inputs ran.
fn replay_fixtures(dir: &str) -> usize {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut ran = 0;
    for (name, target) in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        let mut paths: Vec<_> = entries
            .map(|e| e.expect("readable fixture dir").path())
            .collect();
        paths.sort();
        for path in paths {
            let input = std::fs::read(&path).expect("readable fixture");
            eprintln!("replaying {}", path.display());
            let outcome = std::panic::catch_unwind(|| target(&input));
            if let Err(panic) = outcome {
                // The script the bytes describe, to triage without the fuzzer.
                match name {
                    "handshake_structured" => {
                        eprintln!("{}", targets::describe_handshake_script(&input))
                    }
                    "plain_handshake" => eprintln!("{}", targets::describe_plain_script(&input)),
                    "curve_handshake" => eprintln!("{}", targets::describe_curve_script(&input)),
                    _ => {}
                }
                std::panic::resume_unwind(panic);
            }
            ran += 1;
        }
    }
    ran
}

/// Fuzzer findings that are fixed, and inputs the fuzzers found that reach rare paths
/// (each ProtocolError variant, PING/PONG, TTL expiry, ZMTP 3.0 peers, frames past 1 MiB):
/// regression inputs, replayed on every `cargo test`.
#[test]
fn fuzz_fixtures_replay() {
    assert!(replay_fixtures("fuzz") > 0, "no fuzz fixtures found");
}

/// The `handshake_structured` fixtures reach every fault the byte-level `handshake` target
/// never reached, and the heartbeat, peer TTL, ZMTP 3.0 and past-1-MiB paths: a guard that
/// the fixture set keeps exercising them.
#[test]
fn structured_handshake_fixtures_reach_rare_paths() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz/handshake_structured");
    let mut reached = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("fixture dir") {
        let input = std::fs::read(entry.expect("fixture").path()).expect("readable fixture");
        let report = targets::handshake_structured_report(&input);
        if let Some(fault) = &report.fault {
            let name = format!("{fault:?}");
            let variant = name.split([' ', '(', '{']).next().unwrap_or_default();
            reached.insert(variant.to_string());
            if matches!(
                fault,
                ferromq::internals::wire::ProtocolError::HeartbeatTimeout
            ) && report.pings_sent == 0
            {
                reached.insert("peer TTL expired".into());
            }
        }
        if report.pongs_sent > 0 {
            reached.insert("PONG sent".into());
        }
        if report.pings_sent > 0 {
            reached.insert("PING sent".into());
        }
        if report.version == Some((3, 0)) && report.events > 1 {
            reached.insert("ZMTP 3.0 traffic".into());
        }
        if report.largest_frame >= 1 << 20 {
            reached.insert("frame of 1 MiB delivered".into());
        }
    }
    for want in [
        "TooManyFrames",
        "MissingSocketType",
        "UnknownSocketType",
        "IncompatibleSocketType",
        "DuplicateReady",
        "PeerError",
        "HeartbeatTimeout",
        "HandshakeTimeout",
        "MessageTooLarge",
        "peer TTL expired",
        "PONG sent",
        "PING sent",
        "ZMTP 3.0 traffic",
        "frame of 1 MiB delivered",
    ] {
        assert!(
            reached.contains(want),
            "no fixture reaches {want}; reached: {reached:?}"
        );
    }
}

/// The `codec_roundtrip` fixtures round-trip a frame past 1 MiB and see a frame over the
/// maximum refused.
#[test]
fn codec_fixtures_reach_large_frames_and_refusal() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz/codec_roundtrip");
    let (mut large, mut refused) = (false, false);
    for entry in std::fs::read_dir(dir).expect("fixture dir") {
        let input = std::fs::read(entry.expect("fixture").path()).expect("readable fixture");
        let Some(report) = targets::codec_roundtrip_report(&input) else {
            continue;
        };
        assert!(report.decoded <= report.frames);
        large |= report.largest_frame >= 1 << 20 && report.decoded == report.frames;
        refused |= report.refused;
    }
    assert!(large, "no fixture round-trips a frame of 1 MiB");
    assert!(refused, "no fixture has a frame refused as too large");
}

/// What the `plain_handshake` or `curve_handshake` fixtures of one directory reach.
fn secure_fixtures_reach(dir: &str, report: fn(&[u8]) -> targets::SecureReport) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(dir);
    let mut reached = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("fixture dir") {
        let input = std::fs::read(entry.expect("fixture").path()).expect("readable fixture");
        let report = report(&input);
        assert!(report.parsed, "a fixture that describes no script");
        let role = if report.target_is_server {
            "server"
        } else {
            "client"
        };
        if report.ready {
            reached.insert(format!("{role} ready"));
        }
        if report.ready && report.undisturbed {
            reached.insert(format!("{role} ready undisturbed"));
        }
        if report.messages > 0 {
            reached.insert("message delivered".to_string());
        }
        if report.peer_messages > 0 {
            reached.insert("message sent".to_string());
        }
        if report.forgery_refused {
            reached.insert("forgery refused".to_string());
        }
        if let Some(ferromq::internals::wire::ProtocolError::Crypto { what }) = &report.fault
            && what.contains("vouch")
        {
            reached.insert("vouch refused".to_string());
        }
        if let Some(fault) = &report.fault {
            let name = format!("{fault:?}");
            let variant = name.split([' ', '(', '{']).next().unwrap_or_default();
            reached.insert(variant.to_string());
        }
    }
    reached.into_iter().collect()
}

/// Every outcome in `wants` is reached by some fixture of `dir`.
fn assert_fixtures_reach(dir: &str, report: fn(&[u8]) -> targets::SecureReport, wants: &[&str]) {
    let reached = secure_fixtures_reach(dir, report);
    for want in wants {
        assert!(
            reached.iter().any(|r| r == want),
            "no {dir} fixture reaches {want}; reached: {reached:?}"
        );
    }
}

/// The PLAIN fixtures complete the handshake in both roles (undisturbed and with the script
/// interfering), carry messages both ways, and reach the authentication faults.
#[test]
fn plain_handshake_fixtures_reach_both_roles_and_auth_faults() {
    assert_fixtures_reach(
        "plain_handshake",
        targets::plain_handshake_report,
        &[
            "server ready undisturbed",
            "client ready undisturbed",
            "message delivered",
            "message sent",
            "AuthenticationFailed",
            "Unauthorized",
        ],
    );
}

/// The CURVE fixtures complete the handshake in both roles, carry boxed messages both ways,
/// see a replayed or forged box refused with each fault that may refuse one, and reach the
/// vouch check (a HELLO whose transient key differs only in the bit X25519 ignores opens
/// every box; only the vouch tells it apart).
#[test]
fn curve_handshake_fixtures_reach_both_roles_and_refuse_forgeries() {
    assert_fixtures_reach(
        "curve_handshake",
        targets::curve_handshake_report,
        &[
            "server ready undisturbed",
            "client ready undisturbed",
            "message delivered",
            "message sent",
            "forgery refused",
            "vouch refused",
            "NonceNotIncreasing",
            "Crypto",
            "ExpectedMessageBox",
            "AuthenticationFailed",
            "Unauthorized",
        ],
    );
}
