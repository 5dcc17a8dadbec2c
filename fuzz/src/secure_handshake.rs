//! The harness shared by `plain_handshake` and `curve_handshake`: a hostile peer, driven by an
//! `Arbitrary` script, against a real `Connection` (the *target*) in the server or the client
//! role, with a real honest `Connection` (the *peer*) driven alongside.
//!
//! Everything the target sends goes to the honest peer, whole and in order. Everything the
//! honest peer sends goes into a queue the script picks from: deliver the genuine next frame
//! (so the script gets past the cryptography), a long-form copy of it, a truncated, extended
//! or bit-flipped copy, a replay, a reordering, a reflection of the target's own frames,
//! arbitrary command and data frames, forged MESSAGE boxes, raw bytes; all of it split at
//! script-chosen points, with clock advances in between. After the handshake the honest peer
//! seals messages (`seal_batch`) for the script to deliver, replay or forge, and the target
//! seals messages back, which the honest peer must receive intact.
//!
//! What is checked, at every step:
//! * no panic; a fault is sticky (every later call reports it again), a failed connection
//!   reads nothing more, arms no timer and delivers no event;
//! * one `take_transmit` never hands out more than [`MAX_TRANSMIT_PER_CALL`] bytes, always
//!   whole frames; the receive buffer holds at most one partial frame;
//! * `Ready` comes once, before any other event, and only from a READY (client) or INITIATE
//!   (server) frame;
//! * CURVE: the target becomes ready only if every frame it read in the handshake was the
//!   honest peer's, in order (a tampered, replayed, reflected or invented HELLO, WELCOME,
//!   INITIATE or READY never completes a handshake), and only if the server's authenticator
//!   let the client in;
//! * PLAIN: a server becomes ready only with credentials its authenticator accepts;
//! * after the handshake, while the stream is in sync, a model says what each frame does:
//!   PLAIN frames are read as they are; CURVE frames must be a genuine box whose nonce is
//!   above the last one read (then its content is delivered), and anything else must fail
//!   the connection at that frame: a replay or reordering with `NonceNotIncreasing` (exactly),
//!   a forgery with `NonceNotIncreasing`, `Crypto` or `MalformedCommand`, a frame that is not
//!   a MESSAGE with `ExpectedMessageBox`. Events must equal the model's exactly (genuine
//!   messages in order arrive intact);
//! * CURVE, even out of sync: every message frame delivered was sealed by the honest peer,
//!   each at most once, in order;
//! * the honest peer only ever fails in the ways an honest peer may (the target told it to
//!   go away, or refused it), and receives what the target sent, intact;
//! * timers: a handshake timeout is reported once it has passed, a heartbeat timeout only
//!   after the handshake;
//! * at the end, if the script never disturbed the handshake, delivering the rest of the
//!   honest peer's frames completes it exactly when the credentials, keys and socket types
//!   allow it, and the target's `Ready` then describes the honest peer.

use super::*;
use ferromq::internals::wire::{PeerInfo, Security};
use ferromq::security::Zap;
use ferromq::security::ZapRequest;
use std::collections::VecDeque;

/// Most bytes one `take_transmit` of the target may hand out: a greeting, a handshake command
/// with a 255-byte identity, an ERROR, a PING and a PONG fit many times over.
pub(crate) const MAX_TRANSMIT_PER_CALL: usize = 4096;

/// The peer's address, as the authenticators see it.
pub(crate) const PEER_ADDRESS: &str = "192.0.2.7";

/// Largest frame body a script builds (bodies from the input are cut to this).
const MAX_BODY_BYTES: usize = 2048;

/// Most frames in one message a script has either side send.
const MAX_FRAMES_PER_SEND: usize = 8;

/// Rounds of delivering the honest peer's remaining frames at the end.
const FLUSH_ROUNDS: usize = 8;

/// A CURVE MESSAGE box's body starts with its name.
const MESSAGE_PREFIX: &[u8] = b"\x07MESSAGE";

/// Which mechanism the target and the honest peer run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Plain,
    Curve,
}

impl Kind {
    fn mechanism(self) -> Mechanism {
        match self {
            Kind::Plain => Mechanism::from_static("PLAIN"),
            Kind::Curve => Mechanism::from_static("CURVE"),
        }
    }
}

/// What the mechanism-specific target sets up: both sides' security, and what the
/// credentials allow.
pub(crate) struct Setup {
    pub kind: Kind,
    pub target_is_server: bool,
    pub target_security: Security,
    pub peer_security: Security,
    pub target_zap: Option<Zap>,
    pub peer_zap: Option<Zap>,
    /// Whether an undisturbed handshake completes: the server's authenticator accepts the
    /// client's credentials and the client holds the server's key.
    pub auth_ok: bool,
    /// The user ids a target server may report on `Ready` (empty: it can never be ready).
    pub server_user_ids: Vec<Option<Bytes>>,
    /// The user id a target server reports after an undisturbed handshake.
    pub expected_user_id: Option<Bytes>,
    /// The honest peer may fail with `Crypto`: it is the server, and the target holds
    /// another server key.
    pub peer_may_fail_crypto: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum TypePair {
    /// Target type, and a compatible peer type picked from its compatible peers.
    Compatible(u8, u8),
    /// Any two types.
    Any(u8, u8),
}

impl TypePair {
    fn pick(self) -> (SocketType, SocketType) {
        let all = SocketType::ALL;
        match self {
            TypePair::Compatible(a, b) => {
                let ours = all[usize::from(a) % all.len()];
                let peers: Vec<SocketType> = all
                    .into_iter()
                    .filter(|p| ours.is_compatible_with(*p))
                    .collect();
                (ours, peers[usize::from(b) % peers.len()])
            }
            TypePair::Any(a, b) => (
                all[usize::from(a) % all.len()],
                all[usize::from(b) % all.len()],
            ),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum MechanismChoice {
    Null,
    Plain,
    Curve,
    Other(Vec<u8>),
}

impl MechanismChoice {
    fn padded(&self) -> [u8; 20] {
        let name: &[u8] = match self {
            MechanismChoice::Null => b"NULL",
            MechanismChoice::Plain => b"PLAIN",
            MechanismChoice::Curve => b"CURVE",
            MechanismChoice::Other(name) => name,
        };
        let mut out = [0u8; 20];
        let n = name.len().min(20);
        out[..n].copy_from_slice(&name[..n]);
        out
    }
}

/// The greeting the hostile peer sends: the honest peer's, or a wrong one.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum GreetingPlan {
    Genuine,
    Version(u8, u8),
    Mechanism(MechanismChoice),
    /// The as-server flag of the target's own role (not compared: libzmq never sets it).
    SameRole,
    Flip {
        at: u8,
        mask: u8,
    },
    /// Only the first `n % 64` bytes.
    Truncated(u8),
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum Tamper {
    /// Cut the body to `n % len` bytes.
    Truncate(u16),
    /// Append bytes (one zero byte when empty).
    Extend(Vec<u8>),
    /// XOR one body byte (a zero mask flips the lowest bit).
    FlipBody { at: u16, mask: u8 },
    /// Toggle the MORE and/or COMMAND flag (COMMAND when neither is chosen).
    FlipFlags { more: bool, command: bool },
    /// Overwrite body bytes from `at`, growing the body if needed.
    Overwrite { at: u16, bytes: Vec<u8> },
    /// Flip one bit of one field of a CURVE command (a key, a nonce, a box; see
    /// [`curve_fields`]), or of the whole body for any other frame: reaches single-bit
    /// changes such as bit 255 of a key, which X25519 ignores.
    Field { field: u8, byte: u8, bit: u8 },
}

/// The fields of a CURVE command body, as (offset, length), after its name.
fn curve_fields(body: &[u8]) -> Vec<(usize, usize)> {
    let named =
        |name: &[u8]| body.first() == Some(&(name.len() as u8)) && body[1..].starts_with(name);
    let n = body.len();
    let fields: &[(usize, usize)] = if named(b"HELLO") && n >= 200 {
        // version, padding, C', short nonce, signature box
        &[(6, 2), (8, 72), (80, 32), (112, 8), (120, n - 120)]
    } else if named(b"WELCOME") && n >= 24 {
        // long nonce, box of S' and the cookie
        &[(8, 16), (24, n - 24)]
    } else if named(b"INITIATE") && n >= 113 {
        // cookie nonce, cookie box, short nonce, box of C, vouch and metadata
        &[(9, 16), (25, 80), (105, 8), (113, n - 113)]
    } else if named(b"READY") && n >= 14 {
        // short nonce, box of the metadata
        &[(6, 8), (14, n - 14)]
    } else if named(b"MESSAGE") && n >= 32 {
        // short nonce, tag, ciphertext
        &[(8, 8), (16, 16), (32, n - 32)]
    } else {
        &[(0, n)]
    };
    fields.iter().copied().filter(|&(_, len)| len > 0).collect()
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum CommandName {
    Hello,
    Welcome,
    Initiate,
    Ready,
    Message,
    Error,
    Ping,
    Subscribe,
    Any(Vec<u8>),
}

impl CommandName {
    fn bytes(&self) -> Vec<u8> {
        let name: &[u8] = match self {
            CommandName::Hello => b"HELLO",
            CommandName::Welcome => b"WELCOME",
            CommandName::Initiate => b"INITIATE",
            CommandName::Ready => b"READY",
            CommandName::Message => b"MESSAGE",
            CommandName::Error => b"ERROR",
            CommandName::Ping => b"PING",
            CommandName::Subscribe => b"SUBSCRIBE",
            CommandName::Any(name) => name,
        };
        name[..name.len().min(255)].to_vec()
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum NonceChoice {
    Zero,
    /// The nonce of the last box the target read.
    Last,
    /// One above it: the nonce the next genuine box may carry.
    Next,
    Max,
    Exact(u64),
}

/// A command the honest peer seals after its handshake, behind a message.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum PeerCommand {
    Ping {
        ttl_deciseconds: u16,
        context: Vec<u8>,
    },
    Pong(Vec<u8>),
    Subscribe(Vec<u8>),
    Cancel(Vec<u8>),
    Unknown {
        name: Vec<u8>,
        data: Vec<u8>,
    },
    Ready,
    Error(Vec<u8>),
}

impl PeerCommand {
    fn command(&self) -> Command {
        let cut = |v: &Vec<u8>, n: usize| Bytes::copy_from_slice(&v[..v.len().min(n)]);
        match self {
            PeerCommand::Ping {
                ttl_deciseconds,
                context,
            } => Command::Ping {
                ttl_deciseconds: *ttl_deciseconds,
                context: cut(context, 20),
            },
            PeerCommand::Pong(context) => Command::Pong {
                context: cut(context, 20),
            },
            PeerCommand::Subscribe(p) => Command::Subscribe(cut(p, MAX_BODY_BYTES)),
            PeerCommand::Cancel(p) => Command::Cancel(cut(p, MAX_BODY_BYTES)),
            PeerCommand::Unknown { name, data } => {
                let mut name = name[..name.len().min(255)].to_vec();
                if name.is_empty() {
                    name.push(b'X');
                }
                Command::Unknown {
                    name: name.into(),
                    data: cut(data, MAX_BODY_BYTES),
                }
            }
            PeerCommand::Ready => {
                let mut meta = Metadata::new();
                meta.insert("Socket-Type", "PAIR");
                Command::Ready(meta)
            }
            PeerCommand::Error(reason) => Command::Error {
                reason: cut(reason, 255),
            },
        }
    }
}

/// One move of the hostile peer.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum Step {
    /// The honest peer's next frame, as it is.
    Genuine,
    /// The next `n % 4 + 1` frames in one delivery.
    GenuineBatch(u8),
    /// The next frame, re-encoded in the long form (the same frame).
    GenuineLong,
    /// The next frame, changed (it replaces the genuine one).
    Tampered(Tamper),
    /// Skip the next frame.
    Drop,
    /// Deliver the frame after the next one first.
    Swap,
    /// Deliver again a frame the honest peer sent (index modulo their number).
    Replay(u16),
    /// Send the target one of its own frames back.
    Reflect(u16),
    Command {
        name: CommandName,
        data: Vec<u8>,
    },
    Data {
        more: bool,
        body: Vec<u8>,
    },
    /// libzmq's PLAIN ERROR, whose name its C source misspells as the byte 0x5E then "RROR".
    MisspeltError(Vec<u8>),
    /// A MESSAGE box the honest peer never sealed.
    ForgeBox {
        nonce: NonceChoice,
        more: bool,
        command: bool,
        rest: Vec<u8>,
    },
    /// Unframed bytes (the model stops predicting from here).
    Raw(Vec<u8>),
    /// The honest peer sends a message, then perhaps a command, once its handshake is done.
    PeerSends {
        frames: Vec<Vec<u8>>,
        command: Option<PeerCommand>,
    },
    /// The target sends a message to the honest peer, once its handshake is done.
    TargetSends(Vec<Vec<u8>>),
    /// Keep the last `n` bytes of the next delivery back until the one after.
    HoldBack(u8),
    /// New chunk sizes for splitting what is delivered.
    Chunks(Vec<u16>),
    AdvanceMillis(u16),
    AdvanceSeconds(u8),
}

/// The part of a script both mechanisms share.
#[derive(Arbitrary, Debug)]
pub(crate) struct Common {
    types: TypePair,
    target_routing_id: Vec<u8>,
    peer_routing_id: Vec<u8>,
    handshake_timeout_ms: Option<u16>,
    heartbeat_interval_ms: Option<u16>,
    heartbeat_timeout_ms: Option<u16>,
    heartbeat_ttl_ms: Option<u16>,
    greeting: GreetingPlan,
    chunks: Vec<u16>,
    steps: Vec<Step>,
}

/// What one run reached, for choosing fixtures and for coverage tests.
#[derive(Debug, Default, Clone)]
pub struct SecureReport {
    /// Whether the input described a script at all.
    pub parsed: bool,
    pub target_is_server: bool,
    /// The target's fault at the end.
    pub fault: Option<ProtocolError>,
    /// Whether the target ever became ready.
    pub ready: bool,
    /// Whether the handshake ran undisturbed (only the honest peer's frames, in order).
    pub undisturbed: bool,
    /// Whether the model lost sync with the stream (raw bytes).
    pub desynced: bool,
    /// Message events the target delivered.
    pub messages: usize,
    /// Messages the honest peer received from the target.
    pub peer_messages: usize,
    /// A replayed, reordered or forged frame after the handshake was refused as predicted.
    pub forgery_refused: bool,
    /// The honest peer's fault at the end.
    pub peer_fault: Option<ProtocolError>,
}

/// What the honest peer knows it put in a CURVE box.
#[derive(Debug, Clone)]
enum Inner {
    Frame {
        more: bool,
        command: bool,
        body: Bytes,
    },
    /// Boxed by `take_transmit` after the handshake: a PONG (the honest peer has no
    /// heartbeats of its own), which delivers nothing.
    Pong,
}

/// One frame the honest peer sent.
#[derive(Debug, Clone)]
struct PeerFrame {
    raw: Vec<u8>,
    /// Flags without LONG.
    flags: u8,
    body: Bytes,
    /// CURVE, after the handshake: the box's nonce and content.
    boxed: Option<(u64, Inner)>,
}

/// A piece of the byte stream to the target, as the script made it.
#[derive(Debug, Clone)]
enum AtomKind {
    Greeting,
    Frame { flags: u8, body: Bytes },
    Raw,
}

#[derive(Debug, Clone)]
struct Atom {
    start: usize,
    end: usize,
    kind: AtomKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    Handshake,
    Traffic,
    Failed,
}

/// What the model says the greeting does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GreetingExpect {
    /// Accepted, negotiating this version.
    Accept((u8, u8)),
    MechanismMismatch,
    UnsupportedVersion,
    Unknown,
}

/// What the model says a frame after the handshake does, when it fails the connection.
#[derive(Debug, Clone)]
enum Predicted {
    Exact(ProtocolError),
    /// A box the honest peer never sealed (or sealed with MORE set on the frame).
    Forged,
}

fn is_greeting_fault(e: &ProtocolError) -> bool {
    matches!(
        e,
        ProtocolError::BadSignature { .. }
            | ProtocolError::UnsupportedVersion { .. }
            | ProtocolError::MechanismMismatch { .. }
    )
}

fn is_forgery_fault(e: &ProtocolError) -> bool {
    matches!(
        e,
        ProtocolError::NonceNotIncreasing { .. }
            | ProtocolError::Crypto { .. }
            | ProtocolError::MalformedCommand { .. }
    )
}

/// A frame as the wire carries it: the short form unless `long` or the body needs it.
fn encode_frame(flags: u8, body: &[u8], long: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + MAX_HEADER_BYTES);
    if long || body.len() > 255 {
        out.push(flags | FLAG_LONG);
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        out.push(flags);
        out.push(body.len() as u8);
    }
    out.extend_from_slice(body);
    out
}

/// Takes the complete frames off the front of bytes an honest connection wrote:
/// (raw bytes, flags without LONG, body).
fn take_frames(buf: &mut BytesMut) -> Vec<(Vec<u8>, u8, Bytes)> {
    let mut out = Vec::new();
    while let Some(&flags) = buf.first() {
        assert_eq!(
            flags & !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND),
            0,
            "a connection wrote reserved flag bits"
        );
        let (header, len) = if flags & FLAG_LONG != 0 {
            let Some(size) = buf.get(1..9) else { break };
            (
                9,
                u64::from_be_bytes(size.try_into().expect("8 bytes")) as usize,
            )
        } else {
            let Some(&size) = buf.get(1) else { break };
            (2, usize::from(size))
        };
        if buf.len() < header + len {
            break;
        }
        let raw = buf.split_to(header + len).freeze();
        out.push((raw.to_vec(), flags & !FLAG_LONG, raw.slice(header..)));
    }
    out
}

fn cut(v: &[u8]) -> &[u8] {
    &v[..v.len().min(MAX_BODY_BYTES)]
}

fn message_of(frames: &[Vec<u8>]) -> Message {
    let mut message = Message::new();
    for f in frames.iter().take(MAX_FRAMES_PER_SEND) {
        message.push_back(Bytes::copy_from_slice(cut(f)));
    }
    if message.is_empty() {
        message.push_back(Bytes::new());
    }
    message
}

/// The event a connection of type `ours` delivers for a whole message.
fn message_event(ours: SocketType, message: Message) -> Event {
    match (ours.is_publisher(), message.frames()) {
        (true, [one]) if one.first() == Some(&1) => Event::Subscribe(one.slice(1..)),
        (true, [one]) if one.first() == Some(&0) => Event::Cancel(one.slice(1..)),
        _ => Event::Message(message),
    }
}

/// Whether a frame is a command named `name`, without MORE.
fn is_command_named(flags: u8, body: &[u8], name: &[u8]) -> bool {
    flags & FLAG_COMMAND != 0
        && flags & FLAG_MORE == 0
        && body.first() == Some(&(name.len() as u8))
        && body.get(1..1 + name.len()) == Some(name)
}

struct Harness {
    kind: Kind,
    target_is_server: bool,
    target_type: SocketType,
    peer_type: SocketType,
    peer_routing_id: Bytes,
    auth_ok: bool,
    server_user_ids: Vec<Option<Bytes>>,
    expected_user_id: Option<Bytes>,
    peer_may_fail_crypto: bool,
    start: Instant,
    now: Instant,
    handshake_timeout: Option<Duration>,

    target: Connection,
    fault: Option<ProtocolError>,
    failed_checked: bool,
    t_buf: BytesMut,
    /// What the target sent, not yet split into frames (its greeting first).
    t_out: BytesMut,
    t_greeting_left: usize,
    t_frames: Vec<Vec<u8>>,

    peer: Connection,
    peer_fault: Option<ProtocolError>,
    p_buf: BytesMut,
    p_out: BytesMut,
    p_greeting: Vec<u8>,
    peer_ready: bool,
    /// Events the honest peer must deliver, for what the target sent.
    peer_expected: VecDeque<Event>,
    frames: Vec<PeerFrame>,
    /// Indices into `frames` not yet delivered, skipped or replaced.
    queue: VecDeque<usize>,
    /// CURVE: bodies of the data frames the honest peer sealed, in order.
    sealed_data: Vec<Bytes>,
    sealed_matched: usize,

    /// Bytes the script queued for the target and not yet delivered.
    outbox: Vec<u8>,
    enqueued: usize,
    delivered: usize,
    hold: usize,
    chunker: Chunker,
    atoms: Vec<Atom>,
    next_atom: usize,

    phase: Phase,
    greeting_expect: GreetingExpect,
    desync: bool,
    /// Every handshake frame the target read was the honest peer's next one.
    clean: bool,
    hs_next: usize,
    /// The script did something other than deliver the honest peer's frames in order
    /// before the handshake completed.
    disturbed: bool,
    timed_out: bool,
    ready_seen: bool,
    partial: Vec<Bytes>,
    last_nonce: u64,
    report: SecureReport,
}

/// Runs `common`'s script against a target set up by `setup`. See the module docs.
pub(crate) fn run(setup: Setup, common: &Common) -> SecureReport {
    let mut h = Harness::new(setup, common);
    h.greet(&common.greeting);
    for step in &common.steps {
        if h.fault.is_some() {
            break;
        }
        h.step(step);
    }
    h.finish();
    h.report
}

impl Harness {
    fn new(setup: Setup, common: &Common) -> Harness {
        let (target_type, peer_type) = common.types.pick();
        let ms = |v: u16| Duration::from_millis(u64::from(v));
        let routing_id = |v: &Vec<u8>| Bytes::copy_from_slice(&v[..v.len().min(255)]);

        let mut t_cfg = ConnectionConfig::new(target_type);
        t_cfg.routing_id = routing_id(&common.target_routing_id);
        t_cfg.security = setup.target_security;
        t_cfg.zap = setup.target_zap;
        t_cfg.peer_address = PEER_ADDRESS.into();
        t_cfg.handshake_timeout = common.handshake_timeout_ms.map(ms);
        t_cfg.heartbeat = HeartbeatConfig {
            interval: common.heartbeat_interval_ms.map(ms),
            timeout: common.heartbeat_timeout_ms.map(ms),
            ttl: common.heartbeat_ttl_ms.map(ms),
        };
        let mut handshake_timeout = t_cfg.handshake_timeout.filter(|d| !d.is_zero());
        if matches!(t_cfg.security, Security::CurveServer { .. }) {
            // A CURVE server drops its cookie key, and so the handshake, after this long.
            let cap = ferromq::internals::wire::connection::MAX_CURVE_COOKIE_LIFETIME;
            handshake_timeout = Some(handshake_timeout.map_or(cap, |t| t.min(cap)));
        }

        let peer_routing_id = routing_id(&common.peer_routing_id);
        let mut p_cfg = ConnectionConfig::new(peer_type);
        p_cfg.routing_id = peer_routing_id.clone();
        p_cfg.security = setup.peer_security;
        p_cfg.zap = setup.peer_zap;
        p_cfg.peer_address = PEER_ADDRESS.into();

        // The harness plays the engine: it owns the clock, and only adds to this origin.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let mut h = Harness {
            kind: setup.kind,
            target_is_server: setup.target_is_server,
            target_type,
            peer_type,
            peer_routing_id,
            auth_ok: setup.auth_ok,
            server_user_ids: setup.server_user_ids,
            expected_user_id: setup.expected_user_id,
            peer_may_fail_crypto: setup.peer_may_fail_crypto,
            start,
            now: start,
            handshake_timeout,
            target: Connection::new(t_cfg, start),
            fault: None,
            failed_checked: false,
            t_buf: BytesMut::new(),
            t_out: BytesMut::new(),
            t_greeting_left: GREETING_LEN,
            t_frames: Vec::new(),
            peer: Connection::new(p_cfg, start),
            peer_fault: None,
            p_buf: BytesMut::new(),
            p_out: BytesMut::new(),
            p_greeting: Vec::new(),
            peer_ready: false,
            peer_expected: VecDeque::new(),
            frames: Vec::new(),
            queue: VecDeque::new(),
            sealed_data: Vec::new(),
            sealed_matched: 0,
            outbox: Vec::new(),
            enqueued: 0,
            delivered: 0,
            hold: 0,
            chunker: Chunker::new(common.chunks.clone(), 0),
            atoms: Vec::new(),
            next_atom: 0,
            phase: Phase::Greeting,
            greeting_expect: GreetingExpect::Unknown,
            desync: false,
            clean: true,
            hs_next: 0,
            disturbed: false,
            timed_out: false,
            ready_seen: false,
            partial: Vec::new(),
            last_nonce: 0,
            report: SecureReport {
                parsed: true,
                target_is_server: setup.target_is_server,
                ..SecureReport::default()
            },
        };
        // The honest peer hears the target's greeting and answers with its own (and HELLO).
        h.peer_transmit();
        h.target_transmit();
        assert_eq!(
            h.p_greeting.len(),
            GREETING_LEN,
            "the honest peer sent no greeting"
        );
        h
    }

    // ---- the hostile peer's moves ----

    fn greet(&mut self, plan: &GreetingPlan) {
        let mut g = self.p_greeting.clone();
        let ours = self.kind.mechanism();
        self.greeting_expect = match plan {
            GreetingPlan::Genuine => GreetingExpect::Accept((3, 1)),
            GreetingPlan::Version(major, minor) => {
                g[10] = *major;
                g[11] = *minor;
                if *major < 3 {
                    GreetingExpect::UnsupportedVersion
                } else {
                    GreetingExpect::Accept((3, 1).min((*major, *minor)))
                }
            }
            GreetingPlan::Mechanism(m) => {
                g[12..32].copy_from_slice(&m.padded());
                let mut want = [0u8; 20];
                want[..ours.name().len()].copy_from_slice(ours.name());
                if m.padded() == want {
                    GreetingExpect::Accept((3, 1))
                } else {
                    GreetingExpect::MechanismMismatch
                }
            }
            GreetingPlan::SameRole => {
                // libzmq 4.3 never sets the flag, so it is not compared: two clients fail on
                // each other's HELLO instead, two servers wait.
                g[32] = u8::from(self.target_is_server);
                GreetingExpect::Accept((3, 1))
            }
            GreetingPlan::Flip { at, mask } => {
                g[usize::from(*at) % GREETING_LEN] ^= *mask;
                GreetingExpect::Unknown
            }
            GreetingPlan::Truncated(n) => {
                g.truncate(usize::from(*n) % GREETING_LEN);
                GreetingExpect::Unknown
            }
        };
        if !matches!(plan, GreetingPlan::Genuine | GreetingPlan::Version(3.., _)) {
            self.disturbed = true;
        }
        if g.len() == GREETING_LEN {
            self.enqueue(g, AtomKind::Greeting);
        } else {
            self.enqueue(g, AtomKind::Raw);
        }
        self.pump();
    }

    fn step(&mut self, step: &Step) {
        let handshake = self.phase != Phase::Traffic;
        let delivers = match step {
            Step::Genuine => self.deliver_next(false),
            Step::GenuineBatch(n) => {
                let mut any = false;
                for _ in 0..n % 4 + 1 {
                    any |= self.deliver_next(false);
                }
                any
            }
            Step::GenuineLong => self.deliver_next(true),
            Step::Tampered(tamper) => match self.queue.pop_front() {
                Some(i) => {
                    let (flags, body) = self.tampered(i, tamper);
                    let long = self.frames[i].raw[0] & FLAG_LONG != 0;
                    self.enqueue_frame(flags, body, long);
                    true
                }
                None => false,
            },
            Step::Drop => {
                let dropped = self.queue.pop_front().is_some();
                self.disturbed |= handshake && dropped;
                false
            }
            Step::Swap => match self.queue.len() {
                0 | 1 => false,
                _ => {
                    let i = self.queue.remove(1).expect("two queued");
                    self.enqueue_copy(i, false);
                    true
                }
            },
            Step::Replay(k) => match self.frames.len() {
                0 => false,
                n => {
                    self.enqueue_copy(usize::from(*k) % n, false);
                    true
                }
            },
            Step::Reflect(k) => match self.t_frames.len() {
                0 => false,
                n => {
                    let raw = self.t_frames[usize::from(*k) % n].clone();
                    let mut buf = BytesMut::from(&raw[..]);
                    let (_, flags, body) = take_frames(&mut buf).pop().expect("one whole frame");
                    self.enqueue(raw, AtomKind::Frame { flags, body });
                    true
                }
            },
            Step::Command { name, data } => {
                let name = name.bytes();
                let mut body = vec![name.len() as u8];
                body.extend_from_slice(&name);
                body.extend_from_slice(cut(data));
                self.enqueue_frame(FLAG_COMMAND, body.into(), false);
                true
            }
            Step::MisspeltError(reason) => {
                let reason = &reason[..reason.len().min(255)];
                let mut body = b"^RROR".to_vec();
                body.push(reason.len() as u8);
                body.extend_from_slice(reason);
                self.enqueue_frame(FLAG_COMMAND, body.into(), false);
                true
            }
            Step::Data { more, body } => {
                let flags = if *more { FLAG_MORE } else { 0 };
                self.enqueue_frame(flags, Bytes::copy_from_slice(cut(body)), false);
                true
            }
            Step::ForgeBox {
                nonce,
                more,
                command,
                rest,
            } => {
                let nonce = match nonce {
                    NonceChoice::Zero => 0,
                    NonceChoice::Last => self.last_nonce,
                    NonceChoice::Next => self.last_nonce.wrapping_add(1),
                    NonceChoice::Max => u64::MAX,
                    NonceChoice::Exact(n) => *n,
                };
                let mut body = MESSAGE_PREFIX.to_vec();
                body.extend_from_slice(&nonce.to_be_bytes());
                body.extend_from_slice(cut(rest));
                let flags =
                    if *more { FLAG_MORE } else { 0 } | if *command { FLAG_COMMAND } else { 0 };
                self.enqueue_frame(flags, body.into(), false);
                true
            }
            Step::Raw(bytes) => {
                if bytes.is_empty() {
                    false
                } else {
                    self.enqueue(cut(bytes).to_vec(), AtomKind::Raw);
                    true
                }
            }
            Step::PeerSends { frames, command } => {
                self.peer_sends(frames, command.as_ref());
                false
            }
            Step::TargetSends(frames) => {
                self.target_sends(frames);
                false
            }
            Step::HoldBack(n) => {
                self.hold = usize::from(*n);
                false
            }
            Step::Chunks(sizes) => {
                self.chunker = Chunker::new(sizes.clone(), 0);
                false
            }
            Step::AdvanceMillis(ms) => {
                self.advance(Duration::from_millis(u64::from(*ms)));
                false
            }
            Step::AdvanceSeconds(s) => {
                self.advance(Duration::from_secs(u64::from(*s)));
                false
            }
        };
        let faithful = matches!(
            step,
            Step::Genuine | Step::GenuineBatch(_) | Step::GenuineLong
        );
        if delivers {
            self.disturbed |= handshake && !faithful;
            self.pump();
        }
    }

    /// Queues the honest peer's next frame; false when there is none.
    fn deliver_next(&mut self, long: bool) -> bool {
        match self.queue.pop_front() {
            Some(i) => {
                self.enqueue_copy(i, long);
                true
            }
            None => false,
        }
    }

    fn enqueue(&mut self, bytes: Vec<u8>, kind: AtomKind) {
        if bytes.is_empty() {
            return;
        }
        let start = self.enqueued;
        self.enqueued += bytes.len();
        self.atoms.push(Atom {
            start,
            end: self.enqueued,
            kind,
        });
        self.outbox.extend_from_slice(&bytes);
    }

    fn enqueue_frame(&mut self, flags: u8, body: Bytes, long: bool) {
        let raw = encode_frame(flags, &body, long);
        self.enqueue(raw, AtomKind::Frame { flags, body });
    }

    fn enqueue_copy(&mut self, i: usize, long: bool) {
        let f = &self.frames[i];
        let (flags, body) = (f.flags, f.body.clone());
        let raw = match long {
            true => encode_frame(flags, &body, true),
            false => f.raw.clone(),
        };
        self.enqueue(raw, AtomKind::Frame { flags, body });
    }

    fn tampered(&self, i: usize, tamper: &Tamper) -> (u8, Bytes) {
        let f = &self.frames[i];
        let mut flags = f.flags;
        let mut body = f.body.to_vec();
        match tamper {
            Tamper::Truncate(n) => match body.len() {
                0 => body.push(0),
                len => body.truncate(usize::from(*n) % len),
            },
            Tamper::Extend(more) => {
                if more.is_empty() {
                    body.push(0);
                } else {
                    body.extend_from_slice(cut(more));
                }
            }
            Tamper::FlipBody { at, mask } => {
                let mask = if *mask == 0 { 1 } else { *mask };
                match body.len() {
                    0 => body.push(mask),
                    len => body[usize::from(*at) % len] ^= mask,
                }
            }
            Tamper::FlipFlags { more, command } => {
                if *more {
                    flags ^= FLAG_MORE;
                }
                if *command || !*more {
                    flags ^= FLAG_COMMAND;
                }
            }
            Tamper::Field { field, byte, bit } => {
                let fields = curve_fields(&body);
                match fields.get(usize::from(*field) % fields.len().max(1)) {
                    Some(&(at, len)) => body[at + usize::from(*byte) % len] ^= 1 << (bit % 8),
                    None => body.push(1),
                }
            }
            Tamper::Overwrite { at, bytes } => {
                let at = usize::from(*at) % (body.len() + 1);
                let bytes = cut(bytes);
                if body.len() < at + bytes.len() {
                    body.resize(at + bytes.len(), 0);
                }
                body[at..at + bytes.len()].copy_from_slice(bytes);
            }
        }
        (flags, body.into())
    }

    /// The honest peer seals a message (and perhaps a command) for the script to deliver.
    fn peer_sends(&mut self, frames: &[Vec<u8>], command: Option<&PeerCommand>) {
        if self.peer_fault.is_some() || !self.peer.is_ready() {
            return;
        }
        let message = message_of(frames);
        let mut batch = WriteBuf::new();
        batch.push_message(&message);
        let last = message.len() - 1;
        let mut inners: Vec<Inner> = message
            .iter()
            .enumerate()
            .map(|(i, body)| Inner::Frame {
                more: i < last,
                command: false,
                body: body.clone(),
            })
            .collect();
        if let Some(command) = command {
            let mut encoded = BytesMut::new();
            command.command().encode(&mut encoded);
            batch.push_bytes(&encoded);
            let (_, _, body) = take_frames(&mut encoded).pop().expect("one command frame");
            inners.push(Inner::Frame {
                more: false,
                command: true,
                body,
            });
        }
        let mut out = WriteBuf::new();
        self.peer.seal_batch(&mut batch, &mut out);
        assert!(batch.is_empty(), "seal_batch left frames in the batch");
        let mut bytes = BytesMut::from(&out.to_bytes()[..]);
        let parsed = take_frames(&mut bytes);
        assert!(bytes.is_empty(), "seal_batch wrote a partial frame");
        assert_eq!(
            parsed.len(),
            inners.len(),
            "seal_batch wrote one frame per frame"
        );
        for ((raw, flags, body), inner) in parsed.into_iter().zip(inners) {
            let Inner::Frame {
                more,
                command,
                body: plain,
            } = &inner
            else {
                unreachable!("every batch frame is known")
            };
            let boxed = match self.kind {
                Kind::Curve => {
                    assert!(body.starts_with(MESSAGE_PREFIX), "CURVE traffic not boxed");
                    assert_eq!(flags, 0, "boxes travel as single data frames, as libzmq's");
                    if !command {
                        self.sealed_data.push(plain.clone());
                    }
                    let nonce = u64::from_be_bytes(body[8..16].try_into().expect("8 bytes"));
                    Some((nonce, inner))
                }
                Kind::Plain => {
                    // Without a cipher, a batch passes through unchanged.
                    let want =
                        if *more { FLAG_MORE } else { 0 } | if *command { FLAG_COMMAND } else { 0 };
                    assert_eq!(
                        (flags, &body),
                        (want, plain),
                        "PLAIN seal_batch changed a frame"
                    );
                    None
                }
            };
            self.push_frame(raw, flags, body, boxed);
        }
    }

    fn push_frame(&mut self, raw: Vec<u8>, flags: u8, body: Bytes, boxed: Option<(u64, Inner)>) {
        self.queue.push_back(self.frames.len());
        self.frames.push(PeerFrame {
            raw,
            flags,
            body,
            boxed,
        });
    }

    /// The target sends a message; the honest peer must receive it intact.
    fn target_sends(&mut self, frames: &[Vec<u8>]) {
        if self.fault.is_some() || !self.target.is_ready() || self.peer_fault.is_some() {
            return;
        }
        let message = message_of(frames);
        let mut batch = WriteBuf::new();
        batch.push_message(&message);
        let mut out = WriteBuf::new();
        self.target.seal_batch(&mut batch, &mut out);
        self.peer_expected
            .push_back(message_event(self.peer_type, message));
        self.heard_from_target(&out.to_bytes());
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        for _ in 0..4 {
            if self.fault.is_some() || self.target.poll_timeout().is_none_or(|t| t > self.now) {
                break;
            }
            let was_ready = self.target.is_ready();
            let result = self.target.handle_timeout(self.now);
            check_sticky(&mut self.fault, result);
            assert!(
                self.target.poll_event().is_none(),
                "a timer delivered an event"
            );
            self.target_transmit();
            if let Some(fault) = &self.fault {
                match fault {
                    ProtocolError::HandshakeTimeout => {
                        assert!(!was_ready, "handshake timeout after the handshake")
                    }
                    ProtocolError::HeartbeatTimeout => {
                        assert!(was_ready, "heartbeat timeout before the handshake")
                    }
                    other => panic!("a timer failed the connection with {other:?}"),
                }
                self.timed_out = true;
                self.phase = Phase::Failed;
                self.check_failed();
            }
        }
        if self.fault.is_none()
            && !self.target.is_ready()
            && let Some(timeout) = self.handshake_timeout
        {
            assert!(
                self.now < self.start + timeout,
                "the handshake timeout passed and was not reported"
            );
        }
    }

    // ---- delivery to the target ----

    /// Delivers the outbox to the target in chunks, keeping `hold` bytes back.
    fn pump(&mut self) {
        let send = self
            .outbox
            .len()
            .saturating_sub(std::mem::take(&mut self.hold));
        let mut at = 0;
        while at < send && self.fault.is_none() {
            let n = self.chunker.next().min(send - at);
            self.t_buf.extend_from_slice(&self.outbox[at..at + n]);
            at += n;
            self.delivered += n;
            self.target_input();
        }
        self.outbox.drain(..at);
    }

    fn target_input(&mut self) {
        let mut events = Vec::new();
        loop {
            let result = self.target.handle_input(&mut self.t_buf, self.now);
            check_sticky(&mut self.fault, result);
            while let Some(event) = self.target.poll_event() {
                events.push(event);
            }
            if self.fault.is_some() || !self.target.has_pending_input() {
                break;
            }
        }
        self.target_transmit();
        self.model(events);
        if self.fault.is_some() {
            self.phase = Phase::Failed;
            self.check_failed();
        } else {
            self.check_buffer();
        }
    }

    /// After a successful `handle_input`: at most one partial frame left, and a pending
    /// handshake frame never larger than a handshake frame may be.
    fn check_buffer(&self) {
        match self.target.pending_frame_len() {
            None => assert!(
                self.t_buf.len() < GREETING_LEN,
                "{} bytes left unread with no frame pending",
                self.t_buf.len()
            ),
            Some(len) => {
                assert!(
                    self.t_buf.len() < len.max(1),
                    "a whole pending body left unread"
                );
                if !self.target.is_ready() {
                    assert!(
                        len <= MAX_HANDSHAKE_FRAME_BYTES,
                        "huge frame pending in the handshake"
                    );
                }
            }
        }
    }

    /// A failed target reads nothing more, arms no timer, delivers nothing, repeats its fault.
    fn check_failed(&mut self) {
        if self.failed_checked {
            return;
        }
        self.failed_checked = true;
        self.t_buf.extend_from_slice(b"\x00\x01x");
        let before = self.t_buf.len();
        let result = self.target.handle_input(&mut self.t_buf, self.now);
        check_sticky(&mut self.fault, result);
        assert_eq!(self.t_buf.len(), before, "failed connection consumed input");
        let later = self.now + Duration::from_secs(3600);
        let result = self.target.handle_timeout(later);
        check_sticky(&mut self.fault, result);
        assert_eq!(
            self.target.poll_timeout(),
            None,
            "failed connection armed a timer"
        );
        assert!(
            self.target.poll_event().is_none(),
            "failed connection delivered an event"
        );
        assert!(!self.target.is_ready(), "failed connection reports ready");
        assert_eq!(self.target.error(), self.fault.as_ref());
        self.target_transmit();
        self.t_buf.clear();
    }

    /// Takes what the target queued (bounded, whole frames) and hands it to the honest peer.
    fn target_transmit(&mut self) {
        if let Some(bytes) = self.target.take_transmit() {
            assert!(
                bytes.len() <= MAX_TRANSMIT_PER_CALL,
                "one take_transmit handed out {} bytes",
                bytes.len()
            );
            self.heard_from_target(&bytes);
        }
    }

    fn heard_from_target(&mut self, bytes: &[u8]) {
        self.t_out.extend_from_slice(bytes);
        if self.t_greeting_left > 0 {
            let n = self.t_greeting_left.min(self.t_out.len());
            let _ = self.t_out.split_to(n);
            self.t_greeting_left -= n;
        }
        for (raw, _, _) in take_frames(&mut self.t_out) {
            self.t_frames.push(raw);
        }
        assert!(self.t_out.is_empty(), "the target sent a partial frame");
        self.feed_peer(bytes);
    }

    // ---- the honest peer ----

    fn feed_peer(&mut self, bytes: &[u8]) {
        if self.peer_fault.is_some() {
            return;
        }
        self.p_buf.extend_from_slice(bytes);
        loop {
            let result = self.peer.handle_input(&mut self.p_buf, self.now);
            check_sticky(&mut self.peer_fault, result);
            while let Some(event) = self.peer.poll_event() {
                self.peer_event(event);
            }
            if self.peer_fault.is_some() || !self.peer.has_pending_input() {
                break;
            }
        }
        match &self.peer_fault {
            None
            | Some(
                ProtocolError::PeerError { .. }
                | ProtocolError::Unauthorized { .. }
                | ProtocolError::AuthenticationFailed { .. }
                | ProtocolError::IncompatibleSocketType { .. },
            ) => {}
            Some(ProtocolError::Crypto { .. }) if self.peer_may_fail_crypto => {}
            // The target failed before its READY and says why in clear; a CURVE peer that
            // completed its own handshake reads only boxes by then.
            Some(ProtocolError::ExpectedMessageBox) if self.fault.is_some() => {}
            Some(other) => panic!("the honest peer failed on what the target sent: {other:?}"),
        }
        self.peer_transmit();
    }

    fn peer_event(&mut self, event: Event) {
        match event {
            Event::Ready(info) => {
                assert!(!self.peer_ready, "the honest peer got a second Ready");
                self.peer_ready = true;
                assert_eq!(info.socket_type, self.target_type);
                assert_eq!(info.mechanism, self.kind.mechanism());
            }
            other => {
                assert!(
                    self.peer_ready,
                    "the honest peer got {other:?} before Ready"
                );
                let want = self
                    .peer_expected
                    .pop_front()
                    .unwrap_or_else(|| panic!("the honest peer got {other:?}, sent by nobody"));
                assert_eq!(
                    other, want,
                    "the honest peer got another message than was sent"
                );
                self.report.peer_messages += 1;
            }
        }
    }

    /// Splits what the honest peer sends into its greeting and frames for the queue.
    fn peer_transmit(&mut self) {
        let Some(bytes) = self.peer.take_transmit() else {
            return;
        };
        self.p_out.extend_from_slice(&bytes);
        if self.p_greeting.len() < GREETING_LEN {
            let n = (GREETING_LEN - self.p_greeting.len()).min(self.p_out.len());
            self.p_greeting.extend_from_slice(&self.p_out.split_to(n));
        }
        for (raw, flags, body) in take_frames(&mut self.p_out) {
            let boxed = (self.kind == Kind::Curve && body.starts_with(MESSAGE_PREFIX)).then(|| {
                let nonce = u64::from_be_bytes(body[8..16].try_into().expect("8 bytes"));
                (nonce, Inner::Pong)
            });
            self.push_frame(raw, flags, body, boxed);
        }
        assert!(
            self.p_out.is_empty(),
            "the honest peer sent a partial frame"
        );
    }

    // ---- the model ----

    /// Moves the model past every atom the target has read, and checks the target's events
    /// and fault against it.
    fn model(&mut self, events: Vec<Event>) {
        let mut events = events.into_iter().peekable();
        let ready_now = match events.peek() {
            Some(Event::Ready(_)) => {
                let Some(Event::Ready(info)) = events.next() else {
                    unreachable!()
                };
                assert!(!self.ready_seen, "second Ready");
                self.ready_seen = true;
                self.report.ready = true;
                self.check_ready(&info);
                true
            }
            _ => false,
        };
        let events: Vec<Event> = events.collect();
        for event in &events {
            assert!(
                !matches!(event, Event::Ready(_)),
                "Ready after other events"
            );
            assert!(self.ready_seen, "{event:?} before Ready");
            if let Event::Message(m) = event {
                self.report.messages += 1;
                if self.kind == Kind::Curve {
                    self.check_sealed(m);
                }
            }
        }

        let mut expected = Vec::new();
        let mut predicted: Option<Predicted> = None;
        let mut transitioned = false;
        let desync_before = self.desync;
        while let Some(atom) = self.atoms.get(self.next_atom).cloned() {
            let complete = atom.end <= self.delivered;
            let started = atom.start < self.delivered;
            // Raw bytes act as soon as they arrive, and a COMMAND frame with MORE is refused
            // from its flags byte alone.
            let early = match &atom.kind {
                AtomKind::Raw => true,
                AtomKind::Frame { flags, .. } => {
                    flags & (FLAG_COMMAND | FLAG_MORE) == FLAG_COMMAND | FLAG_MORE
                }
                AtomKind::Greeting => false,
            };
            let raw_started = early && started;
            if self.phase == Phase::Greeting {
                // The first 64 bytes are the greeting, whatever the script meant them to be.
                if atom.end <= GREETING_LEN {
                    if !complete {
                        break;
                    }
                    if !matches!(atom.kind, AtomKind::Greeting) {
                        self.greeting_expect = GreetingExpect::Unknown;
                    }
                    self.next_atom += 1;
                    if atom.end == GREETING_LEN {
                        self.greeting_done();
                    }
                    continue;
                }
                if !(complete || started) {
                    break;
                }
                // Straddles the end of the greeting: the frames after it are out of step.
                self.greeting_expect = GreetingExpect::Unknown;
                self.greeting_done();
                self.desync = true;
                self.clean = false;
                self.next_atom += 1;
                continue;
            }
            if !(complete || raw_started) {
                break;
            }
            self.next_atom += 1;
            if predicted.is_some() || self.phase == Phase::Failed {
                continue;
            }
            match (self.phase, atom.kind) {
                (_, AtomKind::Greeting) => unreachable!("the greeting atom is first"),
                (_, AtomKind::Raw) => {
                    self.desync = true;
                    self.clean = false;
                }
                (Phase::Handshake, AtomKind::Frame { flags, body }) => {
                    let name: &[u8] = if self.target_is_server {
                        b"INITIATE"
                    } else {
                        b"READY"
                    };
                    self.note_handshake_frame(flags, &body);
                    if ready_now
                        && !transitioned
                        && !self.desync
                        && is_command_named(flags, &body, name)
                    {
                        transitioned = true;
                        self.phase = Phase::Traffic;
                        self.report.undisturbed = !self.disturbed;
                        if self.kind == Kind::Curve {
                            assert!(
                                self.clean,
                                "CURVE handshake completed with a frame the honest peer did not send"
                            );
                        }
                    }
                }
                (Phase::Traffic, AtomKind::Frame { flags, body }) => {
                    if self.desync {
                        continue;
                    }
                    let result = match self.kind {
                        Kind::Plain => self.plain_frame(flags, body, &mut expected),
                        Kind::Curve => self.curve_frame(flags, body, &mut expected),
                    };
                    predicted = result.err();
                }
                (Phase::Greeting | Phase::Failed, AtomKind::Frame { .. }) => unreachable!(),
            }
        }

        if self.phase == Phase::Greeting
            && let Some(fault) = &self.fault
        {
            // Failed before the greeting was whole (a bad signature or version byte).
            self.check_greeting_fault(Some(fault));
        }
        if ready_now && !transitioned {
            assert!(
                self.desync,
                "Ready without a READY or INITIATE frame having been read"
            );
            assert!(
                self.kind != Kind::Curve,
                "CURVE handshake completed after bytes the honest peer did not send"
            );
            self.phase = Phase::Traffic;
        }
        if self.phase != Phase::Traffic || self.desync || desync_before {
            return;
        }
        assert_eq!(events, expected, "events differ from the model");
        match (predicted, &self.fault) {
            (None, None) => {}
            (Some(Predicted::Exact(want)), Some(fault)) => {
                assert_eq!(*fault, want, "fault differs from the model");
                self.report.forgery_refused |=
                    is_forgery_fault(fault) || matches!(fault, ProtocolError::ExpectedMessageBox);
            }
            (Some(Predicted::Forged), Some(fault)) => {
                assert!(
                    is_forgery_fault(fault),
                    "a forged box failed the connection with {fault:?}"
                );
                self.report.forgery_refused = true;
            }
            (Some(p), None) => panic!("the target accepted what the model refuses: {p:?}"),
            (None, Some(fault)) => {
                panic!("fault {fault:?} after the handshake, the model saw none")
            }
        }
    }

    fn greeting_done(&mut self) {
        self.check_greeting_fault(self.fault.as_ref());
        if self.fault.as_ref().is_some_and(is_greeting_fault) {
            self.phase = Phase::Failed;
            return;
        }
        if let GreetingExpect::Accept(version) = self.greeting_expect {
            assert_eq!(self.target.version(), version, "negotiated version");
        }
        self.phase = Phase::Handshake;
    }

    fn check_greeting_fault(&self, fault: Option<&ProtocolError>) {
        let greeting_fault = fault.filter(|f| is_greeting_fault(f));
        match self.greeting_expect {
            GreetingExpect::Accept(_) => {
                assert!(
                    greeting_fault.is_none(),
                    "an acceptable greeting refused: {fault:?}"
                )
            }
            GreetingExpect::MechanismMismatch => assert!(
                matches!(
                    greeting_fault,
                    Some(ProtocolError::MechanismMismatch { .. })
                ),
                "another mechanism's greeting gave {fault:?}"
            ),
            GreetingExpect::UnsupportedVersion => assert!(
                matches!(
                    greeting_fault,
                    Some(ProtocolError::UnsupportedVersion { .. })
                ),
                "a ZMTP 1/2 greeting gave {fault:?}"
            ),
            GreetingExpect::Unknown => {}
        }
    }

    /// Keeps track of whether the handshake frames read so far are the honest peer's, in order.
    fn note_handshake_frame(&mut self, flags: u8, body: &Bytes) {
        let genuine = self
            .frames
            .get(self.hs_next)
            .is_some_and(|f| f.flags == flags && f.body == *body);
        if self.clean && genuine {
            self.hs_next += 1;
        } else {
            self.clean = false;
        }
    }

    fn check_ready(&self, info: &PeerInfo) {
        assert_eq!(info.mechanism, self.kind.mechanism());
        assert!(
            self.target_type.is_compatible_with(info.socket_type),
            "ready with an incompatible peer"
        );
        if self.target_is_server {
            assert!(
                self.server_user_ids.contains(&info.user_id),
                "server ready with user id {:?}; its authenticator allows only {:?}",
                info.user_id,
                self.server_user_ids
            );
        } else {
            assert_eq!(info.user_id, None, "a client has no authenticator");
        }
        if self.kind == Kind::Curve {
            assert!(
                self.auth_ok,
                "CURVE handshake completed although the server refuses the client or the \
                 client holds another server key"
            );
        }
        if self.kind == Kind::Curve || !self.disturbed {
            // The properties are the honest peer's own (CURVE: they were in a box).
            assert_eq!(info.socket_type, self.peer_type);
            let identity = (self.peer_type.sends_identity() && !self.peer_routing_id.is_empty())
                .then(|| self.peer_routing_id.clone());
            assert_eq!(info.identity, identity);
        }
        if !self.disturbed {
            assert!(
                self.auth_ok,
                "undisturbed handshake completed without valid credentials"
            );
            if self.target_is_server {
                assert_eq!(info.user_id, self.expected_user_id);
            }
            if let GreetingExpect::Accept(version) = self.greeting_expect {
                assert_eq!(info.version, version);
            }
        }
    }

    /// CURVE: message frames are frames the honest peer sealed, each once, in order.
    fn check_sealed(&mut self, message: &Message) {
        for frame in message.iter() {
            let found = self.sealed_data[self.sealed_matched..]
                .iter()
                .position(|f| f == frame);
            let Some(i) = found else {
                panic!("CURVE delivered a frame the honest peer never sealed (or not in order)");
            };
            self.sealed_matched += i + 1;
        }
    }

    /// A plaintext frame after the handshake (PLAIN's frames, CURVE's box contents).
    fn apply(
        &mut self,
        more: bool,
        command: bool,
        body: Bytes,
        expected: &mut Vec<Event>,
    ) -> Result<(), ProtocolError> {
        if command {
            if more {
                return Err(ProtocolError::CommandWithMore);
            }
            match Command::decode(body)? {
                Command::Error { reason } => {
                    return Err(ProtocolError::PeerError {
                        reason: String::from_utf8_lossy(&reason).into_owned(),
                    });
                }
                Command::Ready(_) => return Err(ProtocolError::DuplicateReady),
                Command::Ping { .. } | Command::Pong { .. } => {}
                Command::Subscribe(p) => expected.push(Event::Subscribe(p)),
                Command::Cancel(p) => expected.push(Event::Cancel(p)),
                other => expected.push(Event::Command(Box::new(other))),
            }
            return Ok(());
        }
        if more && self.partial.len() + 1 >= MAX_FRAMES_PER_MESSAGE {
            return Err(ProtocolError::TooManyFrames {
                max: MAX_FRAMES_PER_MESSAGE,
            });
        }
        self.partial.push(body);
        if !more {
            let message: Message = std::mem::take(&mut self.partial).into_iter().collect();
            expected.push(message_event(self.target_type, message));
        }
        Ok(())
    }

    fn plain_frame(
        &mut self,
        flags: u8,
        body: Bytes,
        expected: &mut Vec<Event>,
    ) -> Result<(), Predicted> {
        self.apply(
            flags & FLAG_MORE != 0,
            flags & FLAG_COMMAND != 0,
            body,
            expected,
        )
        .map_err(Predicted::Exact)
    }

    fn curve_frame(
        &mut self,
        flags: u8,
        body: Bytes,
        expected: &mut Vec<Event>,
    ) -> Result<(), Predicted> {
        let more = flags & FLAG_MORE != 0;
        if flags & FLAG_COMMAND != 0 && more {
            return Err(Predicted::Exact(ProtocolError::CommandWithMore));
        }
        if !body.starts_with(MESSAGE_PREFIX) {
            return Err(Predicted::Exact(ProtocolError::ExpectedMessageBox));
        }
        // libzmq sends boxes in data frames; ferromq reads them from command frames too.
        let genuine = self
            .frames
            .iter()
            .find(|f| f.boxed.is_some() && f.body == body)
            .and_then(|f| f.boxed.clone());
        let Some((nonce, inner)) = genuine.filter(|_| !more) else {
            return Err(Predicted::Forged);
        };
        if nonce <= self.last_nonce {
            return Err(Predicted::Exact(ProtocolError::NonceNotIncreasing {
                nonce,
                last: self.last_nonce,
            }));
        }
        self.last_nonce = nonce;
        match inner {
            Inner::Frame {
                more,
                command,
                body,
            } => self
                .apply(more, command, body, expected)
                .map_err(Predicted::Exact),
            Inner::Pong => Ok(()),
        }
    }

    // ---- the end ----

    fn finish(&mut self) {
        // Whatever was held back, then the rest of the honest peer's frames while in sync.
        if self.fault.is_none() {
            self.hold = 0;
            self.pump();
        }
        for _ in 0..FLUSH_ROUNDS {
            if self.fault.is_some() || self.desync || self.queue.is_empty() {
                break;
            }
            while let Some(i) = self.queue.pop_front() {
                self.enqueue_copy(i, false);
            }
            self.pump();
        }
        let greeting_ok = matches!(self.greeting_expect, GreetingExpect::Accept(_));
        if !self.disturbed && !self.desync && !self.timed_out && greeting_ok {
            let compatible = self.target_type.is_compatible_with(self.peer_type)
                && self.peer_type.is_compatible_with(self.target_type);
            let want = self.auth_ok && compatible;
            assert_eq!(
                self.ready_seen, want,
                "undisturbed handshake: ready {} (fault {:?}, peer fault {:?}), but credentials \
                 allow it: {}, socket types compatible: {compatible}",
                self.ready_seen, self.fault, self.peer_fault, self.auth_ok
            );
        }
        if self.fault.is_none() && self.peer_fault.is_none() && self.peer_ready {
            assert!(
                self.peer_expected.is_empty(),
                "the honest peer never got {:?}",
                self.peer_expected
            );
        }
        if self.ready_seen {
            assert_eq!(
                self.target.encrypts(),
                self.kind == Kind::Curve,
                "CURVE boxes, PLAIN does not"
            );
        }
        self.report.fault = self.fault.clone();
        self.report.peer_fault = self.peer_fault.clone();
        self.report.desynced = self.desync;
    }
}

/// A ZAP handler that answers every request with `status`.
pub(crate) fn refusing_zap(status: ferromq::security::ZapStatus) -> Zap {
    Zap::new(move |_: &ZapRequest| {
        ferromq::security::ZapReply::refuse(status, "refused by the fuzz script")
    })
}
