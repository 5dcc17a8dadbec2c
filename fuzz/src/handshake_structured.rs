//! `handshake_structured`: an `Arbitrary` peer script (greeting, READY, commands, data,
//! clock advances) against a `Connection`, checked step by step against a model of the
//! documented behaviour.

use super::*;
use std::collections::VecDeque;

#[derive(Arbitrary, Debug)]
enum VersionChoice {
    V30,
    V31,
    Other(u8, u8),
}

#[derive(Arbitrary, Debug)]
enum MechanismChoice {
    Null,
    Plain,
    Curve,
    LowerNull,
    Long,
}

impl MechanismChoice {
    fn mechanism(&self) -> Mechanism {
        match self {
            MechanismChoice::Null => Mechanism::NULL,
            MechanismChoice::Plain => Mechanism::from_static("PLAIN"),
            MechanismChoice::Curve => Mechanism::from_static("CURVE"),
            MechanismChoice::LowerNull => Mechanism::from_static("null"),
            MechanismChoice::Long => Mechanism::from_static("NULL-BUT-MUCH-TOO-LONG-FOR-IT"),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct GreetingChoice {
    version: VersionChoice,
    mechanism: MechanismChoice,
    as_server: bool,
    /// Flip bits of one byte: (offset % 64, xor mask).
    corrupt: Option<(u8, u8)>,
}

#[derive(Arbitrary, Debug)]
enum SocketTypeName {
    /// A type compatible with ours (the `u8` picks among them).
    Compatible(u8),
    /// Any valid type name, compatible or not.
    Any(u8),
    /// A valid name in lower case (unknown: names compare exactly).
    Lowercase(u8),
    Bogus(Vec<u8>),
    Missing,
}

#[derive(Arbitrary, Debug)]
enum PropName {
    SocketTypeLowercase,
    Identity,
    Resource,
    Empty,
    Any(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct ReadyChoice {
    socket_type: SocketTypeName,
    identity: Option<Vec<u8>>,
    extra: Vec<(PropName, Vec<u8>)>,
    socket_type_position: u8,
}

#[derive(Arbitrary, Debug)]
enum ReadyPlan {
    Compatible,
    Custom(ReadyChoice),
    Skip,
}

#[derive(Arbitrary, Debug)]
enum CommandName {
    Hello,
    Initiate,
    Any(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Step {
    Subscribe(Vec<u8>),
    Cancel(Vec<u8>),
    Ping {
        ttl_deciseconds: u16,
        context: Vec<u8>,
    },
    Pong(Vec<u8>),
    Error(Vec<u8>),
    Ready(ReadyChoice),
    Unknown {
        name: CommandName,
        data: Vec<u8>,
    },
    Data {
        more: bool,
        size: Size,
        seed: u8,
        long_form: bool,
    },
    /// `count % (MAX_FRAMES_PER_MESSAGE + 4)` empty frames with MORE set.
    ManyMore {
        count: u32,
    },
    AdvanceMillis(u16),
    AdvanceSeconds(u8),
}

#[derive(Arbitrary, Debug)]
struct ConfigChoice {
    our_type: u8,
    routing_id: Vec<u8>,
    max_msg_size: Option<MaxSize>,
    handshake_timeout_ms: Option<u16>,
    heartbeat_interval_ms: Option<u16>,
    heartbeat_timeout_ms: Option<u16>,
    heartbeat_ttl_ms: Option<u32>,
}

/// The peer's side of one connection, as a script of wire items and clock advances.
#[derive(Arbitrary, Debug)]
pub struct HandshakeScript {
    config: ConfigChoice,
    /// `None`: the standard 3.1 NULL greeting.
    greeting: Option<GreetingChoice>,
    ready: ReadyPlan,
    steps: Vec<Step>,
    chunks: Vec<u16>,
    /// Unstructured bytes fed after the script (checked only for the generic invariants).
    trailer: Vec<u8>,
}

/// What the model expects a command frame to decode to.
#[derive(Debug, Clone)]
enum Expect {
    Greeting(Vec<u8>),
    Command(Result<Command, ProtocolError>),
    Data { more: bool, body: Bytes },
    ManyMore(usize),
    Advance(Duration),
}

/// One piece of the script: bytes (with the model's view of them) or a clock advance.
struct Item {
    bytes: Vec<u8>,
    /// Body length of the frame (0 for the greeting, clock advances and `ManyMore`).
    body_len: u64,
    expect: Expect,
}

fn command_item(command: Command, expect: Result<Command, ProtocolError>) -> Item {
    let mut bytes = BytesMut::new();
    command.encode(&mut bytes);
    let header = if bytes[0] & FLAG_LONG != 0 { 9 } else { 2 };
    Item {
        body_len: (bytes.len() - header) as u64,
        bytes: bytes.to_vec(),
        expect: Expect::Command(expect),
    }
}

fn compatible_peers(ours: SocketType) -> Vec<SocketType> {
    SocketType::ALL
        .into_iter()
        .filter(|p| ours.is_compatible_with(*p))
        .collect()
}

/// The READY command for `choice`, and what decoding it must give.
fn ready_item(ours: SocketType, choice: Option<&ReadyChoice>) -> Item {
    let mut props: Vec<(Bytes, Bytes)> = Vec::new();
    let Some(choice) = choice else {
        let mut meta = Metadata::new();
        meta.insert("Socket-Type", compatible_peers(ours)[0].as_str());
        return command_item(Command::Ready(meta.clone()), Ok(Command::Ready(meta)));
    };
    for (name, value) in &choice.extra {
        let name: Bytes = match name {
            PropName::SocketTypeLowercase => "socket-type".into(),
            PropName::Identity => "Identity".into(),
            PropName::Resource => "Resource".into(),
            PropName::Empty => Bytes::new(),
            PropName::Any(n) => Bytes::copy_from_slice(&n[..n.len().min(255)]),
        };
        props.push((name, Bytes::copy_from_slice(value)));
    }
    let all = SocketType::ALL;
    let type_value: Option<Bytes> = match &choice.socket_type {
        SocketTypeName::Compatible(i) => {
            let peers = compatible_peers(ours);
            Some(peers[usize::from(*i) % peers.len()].as_str().into())
        }
        SocketTypeName::Any(i) => Some(all[usize::from(*i) % all.len()].as_str().into()),
        SocketTypeName::Lowercase(i) => Some(
            all[usize::from(*i) % all.len()]
                .as_str()
                .to_ascii_lowercase()
                .into(),
        ),
        SocketTypeName::Bogus(b) => Some(Bytes::copy_from_slice(b)),
        SocketTypeName::Missing => None,
    };
    if let Some(value) = type_value {
        let at = usize::from(choice.socket_type_position) % (props.len() + 1);
        props.insert(at, ("Socket-Type".into(), value));
    }
    if let Some(id) = &choice.identity {
        props.push(("Identity".into(), Bytes::copy_from_slice(id)));
    }
    let mut meta = Metadata::new();
    for (name, value) in &props {
        meta.insert(name.clone(), value.clone());
    }
    let expect = if props.iter().any(|(n, _)| n.is_empty()) {
        Err(malformed("READY", "empty property name"))
    } else {
        Ok(Command::Ready(meta.clone()))
    };
    command_item(Command::Ready(meta), expect)
}

/// The greeting bytes for `choice` (the standard one for `None`).
fn greeting_bytes(choice: Option<&GreetingChoice>) -> Vec<u8> {
    let Some(choice) = choice else {
        return Greeting::null().encode().to_vec();
    };
    let version = match choice.version {
        VersionChoice::V30 => (3, 0),
        VersionChoice::V31 => (3, 1),
        VersionChoice::Other(major, minor) => (major, minor),
    };
    let mut bytes = Greeting {
        version,
        mechanism: choice.mechanism.mechanism(),
        as_server: choice.as_server,
    }
    .encode()
    .to_vec();
    if let Some((offset, mask)) = choice.corrupt {
        bytes[usize::from(offset) % GREETING_LEN] ^= mask;
    }
    bytes
}

/// Turns a script into wire items, capped at [`MAX_SCRIPT_STREAM_BYTES`].
fn script_items(script: &HandshakeScript, ours: SocketType) -> Vec<Item> {
    let mut items = vec![Item {
        bytes: greeting_bytes(script.greeting.as_ref()),
        body_len: 0,
        expect: Expect::Greeting(greeting_bytes(script.greeting.as_ref())),
    }];
    match &script.ready {
        ReadyPlan::Compatible => items.push(ready_item(ours, None)),
        ReadyPlan::Custom(choice) => items.push(ready_item(ours, Some(choice))),
        ReadyPlan::Skip => {}
    }
    let mut total: usize = items.iter().map(|i| i.bytes.len()).sum();
    for step in &script.steps {
        let item = match step {
            Step::Subscribe(p) => {
                let c = Command::Subscribe(Bytes::copy_from_slice(p));
                command_item(c.clone(), Ok(c))
            }
            Step::Cancel(p) => {
                let c = Command::Cancel(Bytes::copy_from_slice(p));
                command_item(c.clone(), Ok(c))
            }
            Step::Ping {
                ttl_deciseconds,
                context,
            } => {
                let c = Command::Ping {
                    ttl_deciseconds: *ttl_deciseconds,
                    context: Bytes::copy_from_slice(&context[..context.len().min(20)]),
                };
                let expect = if context.len().min(20) > MAX_PING_CONTEXT_BYTES {
                    Err(malformed("PING", "context longer than 16 bytes"))
                } else {
                    Ok(c.clone())
                };
                command_item(c, expect)
            }
            Step::Pong(context) => {
                let c = Command::Pong {
                    context: Bytes::copy_from_slice(&context[..context.len().min(20)]),
                };
                let expect = if context.len().min(20) > MAX_PING_CONTEXT_BYTES {
                    Err(malformed("PONG", "context longer than 16 bytes"))
                } else {
                    Ok(c.clone())
                };
                command_item(c, expect)
            }
            Step::Error(reason) => {
                let reason = Bytes::copy_from_slice(reason);
                let truncated = reason.slice(..reason.len().min(255));
                command_item(
                    Command::Error { reason },
                    Ok(Command::Error { reason: truncated }),
                )
            }
            Step::Ready(choice) => ready_item(ours, Some(choice)),
            Step::Unknown { name, data } => {
                let mut name: Vec<u8> = match name {
                    CommandName::Hello => b"HELLO".to_vec(),
                    CommandName::Initiate => b"INITIATE".to_vec(),
                    CommandName::Any(n) => n[..n.len().min(255)].to_vec(),
                };
                if KNOWN_COMMANDS.contains(&&name[..]) {
                    name.insert(0, b'X');
                }
                let c = Command::Unknown {
                    name: name.clone().into(),
                    data: Bytes::copy_from_slice(data),
                };
                let expect = if name.is_empty() {
                    Err(malformed("?", "command name is empty or truncated"))
                } else {
                    Ok(c.clone())
                };
                command_item(c, expect)
            }
            Step::Data {
                more,
                size,
                seed,
                long_form,
            } => {
                let body = pattern_body(size.len(), *seed);
                let flags = if *more { FLAG_MORE } else { 0 };
                let mut bytes = Vec::with_capacity(body.len() + MAX_HEADER_BYTES);
                if *long_form {
                    // The long form is legal for any size, not only past 255 bytes.
                    bytes.push(flags | FLAG_LONG);
                    bytes.extend_from_slice(&(body.len() as u64).to_be_bytes());
                    bytes.extend_from_slice(&body);
                } else {
                    let mut out = WriteBuf::new();
                    out.push_frame(flags, &body);
                    bytes.extend_from_slice(&out.to_bytes());
                }
                Item {
                    bytes,
                    body_len: body.len() as u64,
                    expect: Expect::Data { more: *more, body },
                }
            }
            Step::ManyMore { count } => {
                let n = *count as usize % (MAX_FRAMES_PER_MESSAGE + 4);
                Item {
                    bytes: [FLAG_MORE, 0].repeat(n),
                    body_len: 0,
                    expect: Expect::ManyMore(n),
                }
            }
            Step::AdvanceMillis(ms) => Item {
                bytes: Vec::new(),
                body_len: 0,
                expect: Expect::Advance(Duration::from_millis(u64::from(*ms))),
            },
            Step::AdvanceSeconds(s) => Item {
                bytes: Vec::new(),
                body_len: 0,
                expect: Expect::Advance(Duration::from_secs(u64::from(*s))),
            },
        };
        total += item.bytes.len();
        if total > MAX_SCRIPT_STREAM_BYTES {
            break;
        }
        items.push(item);
    }
    items
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelPhase {
    Greeting,
    Handshake,
    Traffic,
}

/// What the connection must have done, computed from the script alone.
#[derive(Debug)]
struct Model {
    ours: SocketType,
    config: ConnectionConfig,
    phase: ModelPhase,
    fault: Option<ProtocolError>,
    version: (u8, u8),
    partial: Vec<Bytes>,
    partial_bytes: u64,
    events: Vec<Event>,
    /// Commands we must have sent after our greeting (taken for transmission).
    sent: Vec<Command>,
    /// Commands queued, not yet taken.
    out: Vec<Command>,
    /// The newest PING's context, answered at the next take (PONGs coalesce).
    pong_due: Option<Bytes>,
    /// Our PING's TTL, sent at the next take (coalesced alike).
    ping_due: Option<u16>,
    handshake_deadline: Option<Instant>,
    next_ping: Option<Instant>,
    ping_deadline: Option<Instant>,
    ttl_deadline: Option<Instant>,
}

impl Model {
    fn new(mut config: ConnectionConfig, now: Instant) -> Model {
        // Zero intervals mean "off", as in libzmq (documented on `Connection::new`).
        let positive = |d: Option<Duration>| d.filter(|d| !d.is_zero());
        config.handshake_timeout = positive(config.handshake_timeout);
        config.heartbeat.interval = positive(config.heartbeat.interval);
        Model {
            ours: config.socket_type,
            handshake_deadline: config.handshake_timeout.map(|t| now + t),
            config,
            phase: ModelPhase::Greeting,
            fault: None,
            version: (3, 1),
            partial: Vec::new(),
            partial_bytes: 0,
            events: Vec::new(),
            sent: Vec::new(),
            out: Vec::new(),
            pong_due: None,
            ping_due: None,
            next_ping: None,
            ping_deadline: None,
            ttl_deadline: None,
        }
    }

    fn fail(&mut self, error: ProtocolError) {
        if self.phase == ModelPhase::Handshake
            && !matches!(
                error,
                ProtocolError::PeerError { .. } | ProtocolError::Unauthorized { .. }
            )
        {
            self.out.push(Command::Error {
                reason: Bytes::from(error.to_string()),
            });
        }
        self.fault = Some(error);
    }

    fn item(&mut self, item: &Item, now: Instant) {
        if self.fault.is_some() {
            return;
        }
        if let Err(e) = self.process(item, now) {
            self.fail(e);
        }
    }

    fn process(&mut self, item: &Item, now: Instant) -> Result<(), ProtocolError> {
        match &item.expect {
            Expect::Greeting(g) => self.greeting(g),
            Expect::Command(decoded) => {
                self.frame_header(item.body_len)?;
                // During the handshake the mechanism reads a command's name alone: one it does
                // not expect is unexpected whatever its body holds, as libzmq's mechanisms
                // judge it (a PONG whose context is too long included).
                if self.phase == ModelPhase::Handshake
                    && let Err(ProtocolError::MalformedCommand { command, .. }) = decoded
                    && !matches!(*command, "?" | "READY" | "ERROR")
                {
                    return Err(ProtocolError::UnexpectedCommand { command });
                }
                self.command(decoded.clone()?, now)
            }
            Expect::Data { more, body } => {
                self.frame_header(item.body_len)?;
                self.data(*more, body.clone())
            }
            Expect::ManyMore(n) => {
                for _ in 0..*n {
                    self.frame_header(0)?;
                    self.data(true, Bytes::new())?;
                }
                Ok(())
            }
            Expect::Advance(_) => Ok(()),
        }
    }

    fn greeting(&mut self, g: &[u8]) -> Result<(), ProtocolError> {
        for (offset, expected) in [(0u8, 0xFFu8), (9, 0x7F)] {
            let found = g[usize::from(offset)];
            if found != expected {
                return Err(ProtocolError::BadSignature {
                    offset,
                    found,
                    expected,
                });
            }
        }
        if g[10] < 3 {
            return Err(ProtocolError::UnsupportedVersion {
                major: g[10],
                minor: g[11],
            });
        }
        // Both greetings are out: from here faults are told with ERROR, a mismatch included.
        self.phase = ModelPhase::Handshake;
        let mechanism = &g[12..32];
        if mechanism != Mechanism::NULL.encode_padded() {
            // The greeting decoder keeps the name's raw bytes, as the fault shows them.
            let theirs = Greeting::decode(&mut BytesMut::from(g))
                .ok()
                .flatten()
                .map_or(Mechanism::from_static("?"), |g| g.mechanism);
            return Err(ProtocolError::MechanismMismatch {
                ours: Mechanism::NULL,
                theirs,
            });
        }
        self.version = (3, 1).min((g[10], g[11]));
        let mut meta = Metadata::new();
        meta.insert("Socket-Type", self.ours.as_str());
        if self.ours.sends_identity() {
            meta.insert("Identity", self.config.routing_id.clone());
        }
        if let Some(max) = self.config.max_msg_size {
            meta.insert("X-Max-Msg-Size", max.to_string());
        }
        self.out.push(Command::Ready(meta));
        Ok(())
    }

    fn frame_header(&mut self, body_len: u64) -> Result<(), ProtocolError> {
        if let Some(max) = self.config.max_msg_size
            && body_len > max
        {
            return Err(ProtocolError::MessageTooLarge { len: body_len, max });
        }
        // Before the handshake completes, frames are small or refused from their header.
        if self.phase != ModelPhase::Traffic && body_len > MAX_HANDSHAKE_FRAME_BYTES as u64 {
            return Err(ProtocolError::HandshakeFrameTooLarge {
                len: body_len as usize,
                max: MAX_HANDSHAKE_FRAME_BYTES,
            });
        }
        // Any frame proves the peer alive.
        self.ping_deadline = None;
        self.ttl_deadline = None;
        Ok(())
    }

    fn command(&mut self, command: Command, now: Instant) -> Result<(), ProtocolError> {
        if let Command::Error { reason } = &command {
            // During the handshake, a ZAP status code ("300", "400", "500") means the peer
            // refused our credentials.
            if self.phase == ModelPhase::Handshake
                && let [d @ b'3'..=b'5', b'0', b'0'] = reason[..]
            {
                return Err(ProtocolError::Unauthorized {
                    status: u16::from(d - b'0') * 100,
                });
            }
            return Err(ProtocolError::PeerError {
                reason: String::from_utf8_lossy(reason).into_owned(),
            });
        }
        if self.phase == ModelPhase::Handshake {
            let Command::Ready(meta) = command else {
                return Err(ProtocolError::UnexpectedCommand {
                    command: command.label(),
                });
            };
            return self.ready(meta, now);
        }
        match command {
            Command::Ready(_) => return Err(ProtocolError::DuplicateReady),
            Command::Ping {
                ttl_deciseconds,
                context,
            } => {
                self.pong_due = Some(context);
                if ttl_deciseconds > 0 {
                    self.ttl_deadline =
                        Some(now + Duration::from_millis(u64::from(ttl_deciseconds) * 100));
                }
            }
            Command::Pong { .. } => {}
            Command::Subscribe(p) => self.events.push(Event::Subscribe(p)),
            Command::Cancel(p) => self.events.push(Event::Cancel(p)),
            other => self.events.push(Event::Command(Box::new(other))),
        }
        Ok(())
    }

    fn ready(&mut self, meta: Metadata, now: Instant) -> Result<(), ProtocolError> {
        let first = |name: &str| {
            meta.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| v.clone())
        };
        let name = first("Socket-Type").ok_or(ProtocolError::MissingSocketType)?;
        let theirs = SocketType::ALL
            .into_iter()
            .find(|t| t.as_str().as_bytes() == &name[..])
            .ok_or_else(|| ProtocolError::UnknownSocketType(name.clone()))?;
        if !self.ours.is_compatible_with(theirs) {
            return Err(ProtocolError::IncompatibleSocketType {
                ours: self.ours,
                theirs,
            });
        }
        self.phase = ModelPhase::Traffic;
        self.handshake_deadline = None;
        if self.version >= (3, 1) {
            self.next_ping = self.config.heartbeat.interval.map(|i| now + i);
        }
        let identity = first("Identity").filter(|id| !id.is_empty());
        let max_msg_size =
            first("X-Max-Msg-Size").and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok());
        self.events
            .push(Event::Ready(Box::new(ferromq::internals::wire::PeerInfo {
                socket_type: theirs,
                identity,
                metadata: meta,
                version: self.version,
                // These scripts run NULL security with no authenticator: no user id.
                mechanism: Mechanism::NULL,
                user_id: None,
                max_msg_size,
            })));
        Ok(())
    }

    fn data(&mut self, more: bool, body: Bytes) -> Result<(), ProtocolError> {
        if self.phase != ModelPhase::Traffic {
            return Err(ProtocolError::MessageBeforeReady);
        }
        self.partial_bytes += body.len() as u64;
        if let Some(max) = self.config.max_msg_size
            && self.partial_bytes > max
        {
            return Err(ProtocolError::MessageTooLarge {
                len: self.partial_bytes,
                max,
            });
        }
        if more && self.partial.len() + 1 >= MAX_FRAMES_PER_MESSAGE {
            return Err(ProtocolError::TooManyFrames {
                max: MAX_FRAMES_PER_MESSAGE,
            });
        }
        self.partial.push(body);
        if more {
            return Ok(());
        }
        let frames = std::mem::take(&mut self.partial);
        self.partial_bytes = 0;
        let event = match (self.ours.is_publisher(), &frames[..]) {
            (true, [one]) if one.first() == Some(&1) => Event::Subscribe(one.slice(1..)),
            (true, [one]) if one.first() == Some(&0) => Event::Cancel(one.slice(1..)),
            _ => Event::Message(frames.into_iter().collect()),
        };
        self.events.push(event);
        Ok(())
    }

    /// What `take_transmit` hands out: queued commands, then the due PONG and PING.
    fn take_transmit(&mut self) {
        self.sent.append(&mut self.out);
        if let Some(context) = self.pong_due.take() {
            self.sent.push(Command::Pong { context });
        }
        if let Some(ttl_deciseconds) = self.ping_due.take() {
            self.sent.push(Command::Ping {
                ttl_deciseconds,
                context: Bytes::new(),
            });
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.fault.is_some() {
            return None;
        }
        [
            self.handshake_deadline,
            self.next_ping,
            self.ping_deadline,
            self.ttl_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn timeout(&mut self, now: Instant) {
        if self.fault.is_some() {
            return;
        }
        if self.handshake_deadline.is_some_and(|d| d <= now) {
            return self.fail(ProtocolError::HandshakeTimeout);
        }
        if [self.ping_deadline, self.ttl_deadline]
            .into_iter()
            .flatten()
            .any(|d| d <= now)
        {
            return self.fail(ProtocolError::HeartbeatTimeout);
        }
        let heartbeat = self.config.heartbeat;
        if let (Some(at), Some(interval)) = (self.next_ping, heartbeat.interval)
            && at <= now
        {
            let ttl_deciseconds = heartbeat.ttl.map_or(0, |t| {
                (t.as_millis() / 100).min(u128::from(u16::MAX)) as u16
            });
            self.ping_due = Some(ttl_deciseconds);
            self.next_ping = Some(now + interval);
            // A zero heartbeat timeout: no deadline after a PING.
            let timeout = heartbeat.timeout.unwrap_or(interval);
            if self.ping_deadline.is_none() && !timeout.is_zero() {
                self.ping_deadline = Some(now + timeout);
            }
        }
    }
}

/// A mechanism's 20 padded bytes, as the greeting carries them.
trait Padded {
    fn encode_padded(&self) -> [u8; 20];
}

impl Padded for Mechanism {
    fn encode_padded(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out[..self.name().len()].copy_from_slice(self.name());
        out
    }
}

/// Faults compare exactly, except a mechanism mismatch, which compares by name.
fn same_fault(a: &ProtocolError, b: &ProtocolError) -> bool {
    match (a, b) {
        (
            ProtocolError::MechanismMismatch { ours: oa, .. },
            ProtocolError::MechanismMismatch { ours: ob, .. },
        ) => oa == ob,
        // The minor version is reported as 0 when the major byte arrived without it (the
        // fault is raised from a partial greeting): compared by major only.
        (
            ProtocolError::UnsupportedVersion { major: ma, .. },
            ProtocolError::UnsupportedVersion { major: mb, .. },
        ) => ma == mb,
        _ => a == b,
    }
}

/// Events compare exactly, messages by their frames (not their internal representation).
fn same_event(a: &Event, b: &Event) -> bool {
    match (a, b) {
        (Event::Message(x), Event::Message(y)) => x.frames() == y.frames(),
        _ => a == b,
    }
}

/// What a `handshake_structured` run reached, for coverage statistics.
#[derive(Debug, Default, Clone)]
pub struct HandshakeReport {
    /// The connection's fault, if any (`None` for a healthy end or an undecodable input).
    pub fault: Option<ProtocolError>,
    /// Negotiated version, if the greeting was accepted.
    pub version: Option<(u8, u8)>,
    /// PONGs we sent in answer to PINGs.
    pub pongs_sent: usize,
    /// PINGs we sent on our heartbeat timer.
    pub pings_sent: usize,
    /// Largest data frame delivered in a message event.
    pub largest_frame: usize,
    /// Events delivered.
    pub events: usize,
    /// Whether the input described a script at all.
    pub parsed: bool,
}

/// `handshake_structured` target: see [`handshake_structured_report`].
pub fn handshake_structured(data: &[u8]) {
    handshake_structured_report(data);
}

/// Runs an input-chosen peer script against a `Connection` of an input-chosen type and
/// config, fed in input-chosen chunks, and checks it against [`Model`], kept in lockstep
/// chunk by chunk: the same events, the same fault at the same point, the same commands sent
/// back (our READY; one PONG per `take_transmit` echoing the newest PING, as PONGs
/// coalesce; heartbeat PINGs; ERROR on a handshake fault). Also: faults are sticky, a failed
/// connection reads nothing and arms no timer, the receive buffer never holds more than one
/// partial frame, and a pending frame is never larger than the maximum message size.
pub fn handshake_structured_report(data: &[u8]) -> HandshakeReport {
    let mut report = HandshakeReport::default();
    let Some(script) = structured::<HandshakeScript>(data) else {
        return report;
    };
    report.parsed = true;
    let choice = &script.config;
    let ours = SocketType::ALL[usize::from(choice.our_type) % SocketType::ALL.len()];
    let mut config = ConnectionConfig::new(ours);
    config.routing_id = Bytes::copy_from_slice(&choice.routing_id);
    config.max_msg_size = choice.max_msg_size.as_ref().map(|m| match *m {
        MaxSize::Pow(p) => 1u64 << (p % 24),
        MaxSize::Exact(n) => u64::from(n),
    });
    let ms = |v: u16| Duration::from_millis(u64::from(v));
    config.handshake_timeout = choice.handshake_timeout_ms.map(ms);
    config.heartbeat = HeartbeatConfig {
        interval: choice.heartbeat_interval_ms.map(ms),
        timeout: choice.heartbeat_timeout_ms.map(ms),
        ttl: choice
            .heartbeat_ttl_ms
            .map(|t| Duration::from_millis(u64::from(t))),
    };

    let items = script_items(&script, ours);
    let stream_len: usize = items.iter().map(|i| i.bytes.len()).sum();
    // The harness plays the engine here: it owns the clock, and only adds to this origin.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut run = Run {
        conn: Connection::new(config.clone(), now),
        model: Model::new(config.clone(), now),
        max: config.max_msg_size,
        fault: None,
        events: Vec::new(),
        sent: BytesMut::new(),
        buf: BytesMut::new(),
        pending: Vec::new(),
        queue: VecDeque::new(),
        chunker: Chunker::new(script.chunks.clone(), stream_len),
        now,
    };

    for item in &items {
        if run.fault.is_some() {
            break;
        }
        match item.expect {
            Expect::Advance(by) => {
                run.feed();
                run.compare();
                if run.fault.is_some() {
                    break;
                }
                run.advance(by);
            }
            _ => {
                run.pending.extend_from_slice(&item.bytes);
                run.queue.push_back((run.pending.len(), item));
            }
        }
    }
    run.feed();
    run.compare();
    if run.fault.is_some() {
        // The fault is reported once more, by every entry point.
        let now = run.now;
        check_sticky(&mut run.fault, run.conn.handle_timeout(now));
    }
    check_sent(&run.sent, &run.model.sent);

    // Unstructured trailer: only the generic invariants hold from here.
    if run.fault.is_none() && !script.trailer.is_empty() {
        let before = run.events.len();
        run.pending.extend_from_slice(&script.trailer);
        run.feed_unmodelled();
        let mut seen_ready = run.events[..before]
            .iter()
            .any(|e| matches!(e, Event::Ready(_)));
        for event in &run.events[before..] {
            if matches!(event, Event::Ready(_)) {
                assert!(!seen_ready, "second Ready event");
                seen_ready = true;
            } else {
                assert!(seen_ready, "event before Ready: {event:?}");
            }
        }
    }

    let model = &run.model;
    report.fault = run.fault.clone();
    report.version = (model.phase != ModelPhase::Greeting).then_some(model.version);
    report.pongs_sent = model
        .sent
        .iter()
        .filter(|c| matches!(c, Command::Pong { .. }))
        .count();
    report.pings_sent = model
        .sent
        .iter()
        .filter(|c| matches!(c, Command::Ping { .. }))
        .count();
    report.largest_frame = run
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => m.iter().map(Bytes::len).max(),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    report.events = run.events.len();
    report
}

/// A connection and its model, driven together.
struct Run<'a> {
    conn: Connection,
    model: Model,
    max: Option<u64>,
    fault: Option<ProtocolError>,
    events: Vec<Event>,
    sent: BytesMut,
    buf: BytesMut,
    /// Script bytes not yet fed.
    pending: Vec<u8>,
    /// Items in `pending` the model has not processed, with their end offset in `pending`.
    queue: VecDeque<(usize, &'a Item)>,
    chunker: Chunker,
    now: Instant,
}

impl Run<'_> {
    /// Drains events and transmit bytes from both the connection and the model.
    fn drain(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.events.push(event);
        }
        if let Some(bytes) = self.conn.take_transmit() {
            self.sent.extend_from_slice(&bytes);
        }
        self.model.take_transmit();
    }

    /// Feeds `pending` in chunks, moving the model past every item whose last byte went in;
    /// stops at the first fault (then the model runs to its own first fault).
    fn feed(&mut self) {
        let mut at = 0;
        while at < self.pending.len() && self.fault.is_none() {
            let n = self.chunker.next().min(self.pending.len() - at);
            self.buf.extend_from_slice(&self.pending[at..at + n]);
            at += n;
            check_sticky(
                &mut self.fault,
                self.conn.handle_input(&mut self.buf, self.now),
            );
            while let Some(&(end, item)) = self.queue.front() {
                if end > at && self.fault.is_none() {
                    break;
                }
                self.model.item(item, self.now);
                self.queue.pop_front();
            }
            self.drain();
            if self.fault.is_none() {
                check_buffer_bound(&self.conn, &self.buf, self.max);
            }
        }
        self.pending.clear();
        self.queue.clear();
        if self.fault.is_some() {
            self.check_failed();
        }
    }

    /// Feeds `pending` with no model: generic invariants only.
    fn feed_unmodelled(&mut self) {
        let mut at = 0;
        while at < self.pending.len() && self.fault.is_none() {
            let n = self.chunker.next().min(self.pending.len() - at);
            self.buf.extend_from_slice(&self.pending[at..at + n]);
            at += n;
            check_sticky(
                &mut self.fault,
                self.conn.handle_input(&mut self.buf, self.now),
            );
            while let Some(event) = self.conn.poll_event() {
                self.events.push(event);
            }
            self.conn.take_transmit();
            if self.fault.is_none() {
                check_buffer_bound(&self.conn, &self.buf, self.max);
            }
        }
        self.pending.clear();
        if self.fault.is_some() {
            self.check_failed();
        }
    }

    /// A failed connection reads nothing more, arms no timer, and repeats its fault.
    fn check_failed(&mut self) {
        self.buf.extend_from_slice(b"\x00\x01x");
        let before = self.buf.len();
        check_sticky(
            &mut self.fault,
            self.conn.handle_input(&mut self.buf, self.now),
        );
        assert_eq!(self.buf.len(), before, "failed connection consumed input");
        let later = self.now + Duration::from_secs(3600);
        check_sticky(&mut self.fault, self.conn.handle_timeout(later));
        assert_eq!(
            self.conn.poll_timeout(),
            None,
            "failed connection armed a timer"
        );
        self.buf.clear();
    }

    /// Moves the clock and fires due timers as an event loop would, a bounded number of
    /// times (a zero interval is due again at once).
    fn advance(&mut self, by: Duration) {
        self.now += by;
        for _ in 0..4 {
            assert_eq!(
                self.conn.poll_timeout(),
                self.model.poll_timeout(),
                "timers differ"
            );
            if self.conn.poll_timeout().is_none_or(|t| t > self.now) {
                break;
            }
            check_sticky(&mut self.fault, self.conn.handle_timeout(self.now));
            self.model.timeout(self.now);
            self.drain();
            self.compare();
            if self.fault.is_some() {
                break;
            }
        }
    }

    /// The connection's fault and events equal the model's.
    fn compare(&self) {
        match (&self.model.fault, &self.fault) {
            (None, None) => {}
            (Some(a), Some(b)) => assert!(same_fault(a, b), "fault {b:?}, model says {a:?}"),
            (a, b) => panic!("fault {b:?}, model says {a:?}"),
        }
        assert_eq!(
            self.events.len(),
            self.model.events.len(),
            "event count differs from the model"
        );
        for (i, (a, b)) in self.events.iter().zip(&self.model.events).enumerate() {
            assert!(same_event(a, b), "event {i}: {a:?}, model says {b:?}");
        }
    }
}

/// After a successful `handle_input`, `buf` holds at most one partial frame: fewer bytes than
/// a greeting or header, or fewer than the pending body, which is within the maximum.
fn check_buffer_bound(conn: &Connection, buf: &BytesMut, max: Option<u64>) {
    match conn.pending_frame_len() {
        None => assert!(
            buf.len() < GREETING_LEN,
            "{} bytes left unconsumed with no frame pending",
            buf.len()
        ),
        Some(len) => {
            assert!(
                buf.len() < len.max(1),
                "a whole pending body left unconsumed"
            );
            assert!(
                max.is_none_or(|m| len as u64 <= m),
                "pending frame of {len} bytes past the maximum {max:?}"
            );
        }
    }
}

/// Everything we sent: our greeting, then exactly the model's commands, well framed.
fn check_sent(sent: &BytesMut, expected: &[Command]) {
    let mut buf = sent.clone();
    let greeting = Greeting::decode(&mut buf)
        .expect("our greeting is valid")
        .expect("our greeting is always sent");
    assert_eq!(greeting, Greeting::null());
    let mut decoder = FrameDecoder::new(None);
    let mut commands = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).expect("we send valid frames") {
        assert!(frame.command, "data frame sent by the connection itself");
        commands.push(Command::decode(frame.body).expect("we send valid commands"));
    }
    assert!(buf.is_empty(), "partial frame sent");
    assert_eq!(
        commands.len(),
        expected.len(),
        "sent {commands:?}, model says {expected:?}"
    );
    for (a, b) in commands.iter().zip(expected) {
        match (a, b) {
            // Our ERROR reason is truncated to 255 bytes on the wire.
            (Command::Error { reason: ra }, Command::Error { reason: rb }) => {
                assert_eq!(ra[..], rb[..rb.len().min(255)]);
            }
            _ => assert_eq!(a, b, "sent command differs from the model"),
        }
    }
}

/// The `handshake_structured` script an input describes, for triaging a failing input.
pub fn describe_handshake_script(data: &[u8]) -> String {
    format!("{:#?}", structured::<HandshakeScript>(data))
}
