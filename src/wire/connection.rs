//! The per-peer ZMTP state machine: greeting, NULL handshake, traffic and heartbeats.
//!
//! # Call order
//! 1. [`Connection::new`] queues our greeting; send it ([`Connection::take_transmit`]).
//! 2. Whenever bytes arrive, append them to a buffer and call [`Connection::handle_input`];
//!    then drain [`Connection::poll_event`] and send [`Connection::take_transmit`].
//! 3. Arm a timer for [`Connection::poll_timeout`]; when it fires, call
//!    [`Connection::handle_timeout`] and send what it queued.
//!
//! Any error is fatal and sticky: every later `handle_*` call returns it again. Before failing
//! on a handshake fault the machine queues an ERROR command saying why, so flush the transmit
//! buffer once more before closing.
//!
//! Data messages are encoded by the caller straight into its own [`WriteBuf`](super::WriteBuf)
//! once [`Event::Ready`] has been seen (the format does not depend on connection state); the
//! connection only produces the bytes that do depend on it: greeting, commands, heartbeats and
//! the version-dependent form of subscriptions.

use super::ProtocolError;
use super::command::{Command, Metadata};
use super::frame::{FrameDecoder, WriteBuf};
use super::greeting::{Greeting, Mechanism, OUR_VERSION};
use super::socket_type::SocketType;
use crate::Message;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most frames one multipart message may have. libzmq has no limit; without one, a peer
/// sending endless empty MORE frames would grow our memory without bound at ~16x the bytes it
/// sends, whatever the maximum message size.
pub const MAX_FRAMES_PER_MESSAGE: usize = 1 << 16;

/// Heartbeat settings (ZMTP 3.1 PING/PONG), as libzmq's `ZMQ_HEARTBEAT_*` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Send a PING after this long (`None`: no heartbeats, libzmq's default).
    pub interval: Option<Duration>,
    /// Drop the peer if nothing arrives this long after a PING (`None`: the interval).
    pub timeout: Option<Duration>,
    /// Ask the peer to drop us if it hears nothing from us for this long (sent in PING).
    pub ttl: Option<Duration>,
}

/// What a connection needs to know about our side.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Our socket type, announced in READY and checked against the peer's.
    pub socket_type: SocketType,
    /// Our routing id, announced as `Identity` by REQ, DEALER and ROUTER (empty: none).
    pub routing_id: Bytes,
    /// Largest frame and message accepted (`None`: unlimited, libzmq's default).
    pub max_msg_size: Option<u64>,
    /// Fail if the handshake has not completed this long after [`Connection::new`].
    pub handshake_timeout: Option<Duration>,
    /// Heartbeats.
    pub heartbeat: HeartbeatConfig,
}

impl ConnectionConfig {
    /// Defaults for `socket_type`: no identity, no limits, no heartbeats.
    pub fn new(socket_type: SocketType) -> Self {
        ConnectionConfig {
            socket_type,
            routing_id: Bytes::new(),
            max_msg_size: None,
            handshake_timeout: None,
            heartbeat: HeartbeatConfig::default(),
        }
    }
}

/// What we learnt about the peer from its greeting and READY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's socket type.
    pub socket_type: SocketType,
    /// The peer's `Identity` property, when it sent a non-empty one.
    pub identity: Option<Bytes>,
    /// Every property of the peer's READY.
    pub metadata: Metadata,
    /// The negotiated protocol version (major, minor).
    pub version: (u8, u8),
}

/// Something the connection learnt from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed; traffic may flow.
    Ready(PeerInfo),
    /// A complete multipart message.
    Message(Message),
    /// The peer subscribed to a prefix (command, or the 3.0 data form, seen by PUB/XPUB).
    Subscribe(Bytes),
    /// The peer cancelled a subscription.
    Cancel(Bytes),
    /// A command ferromq does not interpret.
    Command(Command),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Greeting,
    Handshake,
    Traffic,
    Failed(ProtocolError),
}

/// One peer's ZMTP session, sans-IO. See the module docs for the call order.
#[derive(Debug)]
pub struct Connection {
    config: ConnectionConfig,
    phase: Phase,
    version: (u8, u8),
    decoder: FrameDecoder,
    out: BytesMut,
    events: VecDeque<Event>,
    partial: Message,
    partial_bytes: u64,
    handshake_deadline: Option<Instant>,
    next_ping: Option<Instant>,
    ping_timeout_deadline: Option<Instant>,
    peer_ttl_deadline: Option<Instant>,
}

impl Connection {
    /// Starts a session at time `now`, queueing our greeting.
    pub fn new(config: ConnectionConfig, now: Instant) -> Self {
        let mut out = BytesMut::with_capacity(128);
        out.put_slice(&Greeting::null().encode());
        Connection {
            decoder: FrameDecoder::new(config.max_msg_size),
            handshake_deadline: config.handshake_timeout.map(|t| now + t),
            config,
            phase: Phase::Greeting,
            version: OUR_VERSION,
            out,
            events: VecDeque::new(),
            partial: Message::new(),
            partial_bytes: 0,
            next_ping: None,
            ping_timeout_deadline: None,
            peer_ttl_deadline: None,
        }
    }

    /// Whether the handshake has completed and the connection is healthy.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Traffic
    }

    /// The fatal error, if one occurred.
    pub fn error(&self) -> Option<&ProtocolError> {
        match &self.phase {
            Phase::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The negotiated version; ours (3.1) until the peer's greeting arrived.
    pub fn version(&self) -> (u8, u8) {
        self.version
    }

    /// Consumes as much of `buf` as forms complete greeting, frames and messages.
    ///
    /// Partial frames stay in `buf` (or in the decoder); call again when more bytes arrive.
    /// Message bodies are split off `buf` without copying.
    pub fn handle_input(&mut self, buf: &mut BytesMut, now: Instant) -> Result<(), ProtocolError> {
        match self.process_input(buf, now) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn process_input(&mut self, buf: &mut BytesMut, now: Instant) -> Result<(), ProtocolError> {
        if let Phase::Failed(e) = &self.phase {
            return Err(e.clone());
        }
        if self.phase == Phase::Greeting {
            let Some(greeting) = Greeting::decode(buf)? else {
                return Ok(());
            };
            self.on_greeting(greeting)?;
        }
        while let Some(frame) = self.decoder.decode(buf)? {
            // Any traffic proves the peer alive (libzmq cancels both timers on any frame).
            self.ping_timeout_deadline = None;
            self.peer_ttl_deadline = None;
            if frame.command {
                self.on_command(Command::decode(frame.body)?, now)?;
                continue;
            }
            if self.phase != Phase::Traffic {
                return Err(ProtocolError::MessageBeforeReady);
            }
            self.on_data_frame(frame.body, frame.more)?;
        }
        Ok(())
    }

    fn on_greeting(&mut self, greeting: Greeting) -> Result<(), ProtocolError> {
        if greeting.mechanism != Mechanism::NULL {
            return Err(ProtocolError::MechanismMismatch {
                ours: Mechanism::NULL,
                theirs: greeting.mechanism,
            });
        }
        self.version = Greeting::negotiate(OUR_VERSION, greeting.version);
        self.phase = Phase::Handshake;
        let mut meta = Metadata::new();
        meta.insert("Socket-Type", self.config.socket_type.as_str());
        if self.config.socket_type.sends_identity() {
            meta.insert("Identity", self.config.routing_id.clone());
        }
        Command::Ready(meta).encode(&mut self.out);
        Ok(())
    }

    fn on_command(&mut self, command: Command, now: Instant) -> Result<(), ProtocolError> {
        if let Command::Error { reason } = &command {
            return Err(ProtocolError::PeerError {
                reason: String::from_utf8_lossy(reason).into_owned(),
            });
        }
        if self.phase == Phase::Handshake {
            let Command::Ready(metadata) = command else {
                return Err(ProtocolError::UnexpectedCommand {
                    command: command.label(),
                });
            };
            return self.on_ready(metadata, now);
        }
        match command {
            Command::Ready(_) => return Err(ProtocolError::DuplicateReady),
            Command::Ping {
                ttl_deciseconds,
                context,
            } => {
                Command::Pong { context }.encode(&mut self.out);
                if ttl_deciseconds > 0 && self.peer_ttl_deadline.is_none() {
                    self.peer_ttl_deadline =
                        Some(now + Duration::from_millis(u64::from(ttl_deciseconds) * 100));
                }
            }
            Command::Pong { .. } => {}
            Command::Subscribe(prefix) => self.events.push_back(Event::Subscribe(prefix)),
            Command::Cancel(prefix) => self.events.push_back(Event::Cancel(prefix)),
            other => self.events.push_back(Event::Command(other)),
        }
        Ok(())
    }

    fn on_ready(&mut self, metadata: Metadata, now: Instant) -> Result<(), ProtocolError> {
        let ours = self.config.socket_type;
        let theirs = match metadata.get("Socket-Type") {
            None => return Err(ProtocolError::MissingSocketType),
            Some(name) => SocketType::from_wire(name)
                .ok_or_else(|| ProtocolError::UnknownSocketType(name.clone()))?,
        };
        if !ours.is_compatible_with(theirs) {
            return Err(ProtocolError::IncompatibleSocketType { ours, theirs });
        }
        let identity = metadata
            .get("Identity")
            .filter(|id| !id.is_empty())
            .cloned();
        self.phase = Phase::Traffic;
        self.handshake_deadline = None;
        self.next_ping = self.config.heartbeat.interval.map(|ivl| now + ivl);
        self.events.push_back(Event::Ready(PeerInfo {
            socket_type: theirs,
            identity,
            metadata,
            version: self.version,
        }));
        Ok(())
    }

    fn on_data_frame(&mut self, body: Bytes, more: bool) -> Result<(), ProtocolError> {
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
        self.partial.push_back(body);
        if more {
            return Ok(());
        }
        let message = std::mem::take(&mut self.partial);
        self.partial_bytes = 0;
        let event = match self.subscription_in(&message) {
            Some(event) => event,
            None => Event::Message(message),
        };
        self.events.push_back(event);
        Ok(())
    }

    /// Publishers read single-frame data messages starting with 1 or 0 as subscribe and
    /// cancel: the ZMTP 3.0 form, which libzmq's subscribers still send to 3.1 peers.
    fn subscription_in(&self, message: &Message) -> Option<Event> {
        if !self.config.socket_type.is_publisher() || message.len() != 1 {
            return None;
        }
        let frame = message.first()?;
        match frame.first() {
            Some(1) => Some(Event::Subscribe(frame.slice(1..))),
            Some(0) => Some(Event::Cancel(frame.slice(1..))),
            _ => None,
        }
    }

    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        if self.phase == Phase::Handshake {
            // Tell the peer why before closing (RFC 23 ERROR), as far as the phase allows.
            Command::Error {
                reason: Bytes::from(error.to_string()),
            }
            .encode(&mut self.out);
        }
        self.phase = Phase::Failed(error.clone());
        error
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Queues a subscription in the form the negotiated version needs: a SUBSCRIBE command
    /// with ZMTP 3.1 peers, a data message `0x01 prefix` with 3.0 peers.
    pub fn send_subscribe(&mut self, prefix: &[u8]) {
        self.send_subscription(true, prefix);
    }

    /// Queues a cancellation, in the form the negotiated version needs.
    pub fn send_cancel(&mut self, prefix: &[u8]) {
        self.send_subscription(false, prefix);
    }

    fn send_subscription(&mut self, subscribe: bool, prefix: &[u8]) {
        if self.version >= (3, 1) {
            let prefix = Bytes::copy_from_slice(prefix);
            let command = if subscribe {
                Command::Subscribe(prefix)
            } else {
                Command::Cancel(prefix)
            };
            command.encode(&mut self.out);
        } else {
            let mut body = BytesMut::with_capacity(1 + prefix.len());
            body.put_u8(u8::from(subscribe));
            body.put_slice(prefix);
            let mut buf = WriteBuf::new();
            buf.push_message(&Message::from(body.freeze()));
            self.out.put_slice(&buf.to_bytes());
        }
    }

    /// Queues a data message (encoded by copy; the engine's hot path encodes into its own
    /// [`WriteBuf`] instead).
    pub fn send_message(&mut self, message: &Message) {
        let mut buf = WriteBuf::new();
        buf.push_message(message);
        self.out.put_slice(&buf.to_bytes());
    }

    /// Takes every byte queued for the peer.
    pub fn take_transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// Whether bytes are queued for the peer.
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// When [`Connection::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.phase, Phase::Failed(_)) {
            return None;
        }
        [
            self.handshake_deadline,
            self.next_ping,
            self.ping_timeout_deadline,
            self.peer_ttl_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Advances timers to `now`: fails an overdue handshake or a silent peer, sends PINGs.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ProtocolError> {
        if let Phase::Failed(e) = &self.phase {
            return Err(e.clone());
        }
        if self.handshake_deadline.is_some_and(|d| d <= now) {
            return Err(self.fail(ProtocolError::HandshakeTimeout));
        }
        let expired = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        if expired(self.ping_timeout_deadline) || expired(self.peer_ttl_deadline) {
            return Err(self.fail(ProtocolError::HeartbeatTimeout));
        }
        if let (Some(at), Some(interval)) = (self.next_ping, self.config.heartbeat.interval)
            && at <= now
        {
            let ttl_deciseconds = self.config.heartbeat.ttl.map_or(0, |ttl| {
                (ttl.as_millis() / 100).min(u128::from(u16::MAX)) as u16
            });
            Command::Ping {
                ttl_deciseconds,
                context: Bytes::new(),
            }
            .encode(&mut self.out);
            self.next_ping = Some(now + interval);
            if self.ping_timeout_deadline.is_none() {
                let timeout = self.config.heartbeat.timeout.unwrap_or(interval);
                self.ping_timeout_deadline = Some(now + timeout);
            }
        }
        Ok(())
    }
}
