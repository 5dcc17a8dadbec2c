//! The per-peer ZMTP state machine: greeting, the security mechanism's handshake, traffic and
//! heartbeats.
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
//! Data messages are encoded by the caller straight into its own [`WriteBuf`] once
//! [`Event::Ready`] has been seen; the connection produces the bytes that depend on its state
//! (greeting, handshake commands, heartbeats). When the mechanism encrypts (CURVE), the
//! caller passes every batch through [`Connection::seal_batch`] before writing it.

use super::ProtocolError;
use super::command::{Command, Metadata};
use super::frame::{Frame, FrameDecoder, WriteBuf};
use super::greeting::{Greeting, Mechanism, OUR_VERSION};
use super::mechanism::{Cipher, Context, Established, Handshake, Security, Step};
use super::socket_type::SocketType;
use crate::Message;
use crate::message::Properties;
use crate::security::Zap;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most frames one multipart message may have. libzmq has no limit; without one, a peer
/// sending endless empty MORE frames would grow our memory without bound at ~16x the bytes it
/// sends, whatever the maximum message size.
pub const MAX_FRAMES_PER_MESSAGE: usize = 1 << 16;

/// Largest frame accepted before the handshake completes (greeting, READY, ERROR). A READY
/// carries a socket type, an identity of at most 255 bytes and perhaps a few application
/// properties: a few hundred bytes. libzmq bounds handshake commands only by MAXMSGSIZE
/// (unlimited by default); ferromq fails a larger frame as soon as its header arrives, so that
/// a connection that has not identified itself can make us hold at most this much (1,000 such
/// connections: 64 MiB). See spec/zmtp.md.
pub const MAX_HANDSHAKE_FRAME_BYTES: usize = 64 * 1024;

/// Longest a CURVE server keeps a cookie key, and so waits for the handshake to complete:
/// RFC 26 asks servers to discard it "after a short interval, for example 60 seconds".
pub const MAX_CURVE_COOKIE_LIFETIME: Duration = Duration::from_secs(60);

/// Events decoded before [`Connection::handle_input`] stops and leaves the rest of the
/// buffer for the next call: what a connection holds for its socket is bounded by this, not
/// by how many tiny frames (SUBSCRIBEs, unknown commands) fit in one read.
pub const MAX_PENDING_EVENTS: usize = 1024;

/// Fails a frame of `len` bytes that arrives before the handshake completed and is larger
/// than any handshake command needs to be.
fn check_handshake_frame(len: usize) -> Result<(), ProtocolError> {
    if len > MAX_HANDSHAKE_FRAME_BYTES {
        return Err(ProtocolError::HandshakeFrameTooLarge {
            len,
            max: MAX_HANDSHAKE_FRAME_BYTES,
        });
    }
    Ok(())
}

/// Heartbeat settings (ZMTP 3.1 PING/PONG), as libzmq's `ZMQ_HEARTBEAT_*` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Send a PING after this long (`None` or zero: no heartbeats, libzmq's default).
    pub interval: Option<Duration>,
    /// Drop the peer if nothing arrives this long after a PING (`None`: the interval; zero:
    /// never, as libzmq's 0).
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
    /// The security mechanism and our role in it.
    pub security: Security,
    /// Who decides whether the peer may connect (RFC 27, in process).
    pub zap: Option<Zap>,
    /// The ZAP domain passed to the authenticator.
    pub zap_domain: Bytes,
    /// The peer's IP address as the authenticator and `Peer-Address` see it ("" over IPC).
    pub peer_address: String,
}

impl ConnectionConfig {
    /// Defaults for `socket_type`: NULL, no identity, no limits, no heartbeats.
    pub fn new(socket_type: SocketType) -> Self {
        ConnectionConfig {
            socket_type,
            routing_id: Bytes::new(),
            max_msg_size: None,
            handshake_timeout: None,
            heartbeat: HeartbeatConfig::default(),
            security: Security::Null,
            zap: None,
            zap_domain: Bytes::new(),
            peer_address: String::new(),
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
    /// The security mechanism.
    pub mechanism: Mechanism,
    /// The user id our authenticator gave the peer, if one was asked.
    pub user_id: Option<Bytes>,
    /// The largest message the peer accepts, when it announced one
    /// ([`MAX_MSG_SIZE_PROPERTY`]).
    pub max_msg_size: Option<u64>,
}

/// The READY property in which ferromq announces its `max_msg_size` (decimal bytes), so that
/// a ferromq sender fails a send that the peer would refuse (and drop the connection for)
/// instead of sending it. RFC 23 reserves names starting with `X-` for applications; libzmq
/// keeps the property as metadata and otherwise ignores it.
pub const MAX_MSG_SIZE_PROPERTY: &str = "X-Max-Msg-Size";

/// Something the connection learnt from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed; traffic may flow. Boxed, like [`Event::Command`], so that an
    /// event is small: every message moves through an `Event` twice, and a 136-byte one was a
    /// `memcpy` call each time.
    Ready(Box<PeerInfo>),
    /// A complete multipart message.
    Message(Message),
    /// The peer subscribed to a prefix (command, or the 3.0 data form, seen by PUB/XPUB).
    Subscribe(Bytes),
    /// The peer cancelled a subscription.
    Cancel(Bytes),
    /// A command ferromq does not interpret.
    Command(Box<Command>),
}

/// How libzmq's PLAIN server writes the start of its ERROR command: its C source spells the
/// name `"\x05ERROR"`, which C reads as the byte 0x5E (`\x05E`) then `RROR`. libzmq 4.3's PLAIN
/// clients recognise only this form; ferromq reads it as ERROR during the handshake and sends
/// the RFC form itself (spec/security.md, "libzmq's PLAIN ERROR").
const LIBZMQ_PLAIN_ERROR: &[u8] = b"^RROR";

/// Whether the peer's ERROR reason is a ZAP status code (RFC 27: "300", "400", "500"): the
/// peer refused our credentials.
fn zap_status(reason: &[u8]) -> Option<u16> {
    match reason {
        [d @ b'3'..=b'5', b'0', b'0'] => Some(u16::from(d - b'0') * 100),
        _ => None,
    }
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
    /// Bytes to send as they are: greeting, handshake commands, and everything once the
    /// handshake is done unless the mechanism encrypts.
    out: BytesMut,
    /// Our READY properties (Socket-Type, Identity).
    properties: Metadata,
    /// The mechanism's handshake, until it completes.
    handshake: Option<Box<dyn Handshake>>,
    /// CURVE's boxes, once its handshake completed.
    cipher: Option<Box<Cipher>>,
    /// Our commands after an encrypting handshake, in clear, boxed when taken.
    plain_out: BytesMut,
    /// What messages from this peer carry (`User-Id`, `Peer-Address`, metadata), once a
    /// security mechanism or an authenticator ran.
    message_properties: Option<Arc<Properties>>,
    /// The context of the newest PING not yet answered. Answers coalesce: however many PINGs
    /// a peer sends while we cannot write, one PONG waits (as h2 does), so a peer that pings
    /// and never reads cannot grow our output.
    pong_due: Option<Bytes>,
    /// The TTL field of our own PING, due but not yet taken for sending (coalesced alike).
    ping_due: Option<u16>,
    /// When the oldest PING not yet answered by a PONG was due.
    ping_sent: Option<Instant>,
    /// The round trip of the last PING answered, until taken.
    heartbeat_rtt: Option<Duration>,
    /// Data messages decoded since last taken, for the socket's statistics.
    received: Received,
    /// Decoding stopped at [`MAX_PENDING_EVENTS`] with the rest of the input unread.
    input_paused: bool,
    events: VecDeque<Event>,
    partial: Message,
    partial_bytes: u64,
    handshake_deadline: Option<Instant>,
    next_ping: Option<Instant>,
    ping_timeout_deadline: Option<Instant>,
    peer_ttl_deadline: Option<Instant>,
}

/// Data messages decoded and their payload bytes (see [`Connection::take_received`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Whole messages (a multipart message counts once).
    pub messages: u64,
    /// Payload bytes, without framing.
    pub bytes: u64,
}

impl Connection {
    /// Starts a session at time `now`, queueing our greeting.
    ///
    /// Zero intervals mean "off", as in libzmq: no handshake timeout, no heartbeats, and
    /// with a zero heartbeat timeout no deadline after a PING. A deadline too far ahead for
    /// the clock to represent is never reached.
    pub fn new(mut config: ConnectionConfig, now: Instant) -> Self {
        let positive = |d: Option<Duration>| d.filter(|d| !d.is_zero());
        config.handshake_timeout = positive(config.handshake_timeout);
        config.heartbeat.interval = positive(config.heartbeat.interval);
        if matches!(config.security, Security::CurveServer { .. }) {
            // The cookie key must not outlive a short interval (RFC 26): a CURVE server
            // waits at most this long for INITIATE, whatever the handshake interval.
            config.handshake_timeout = Some(
                config
                    .handshake_timeout
                    .map_or(MAX_CURVE_COOKIE_LIFETIME, |t| {
                        t.min(MAX_CURVE_COOKIE_LIFETIME)
                    }),
            );
        }
        let mut out = BytesMut::with_capacity(128);
        let greeting = Greeting {
            version: OUR_VERSION,
            mechanism: config.security.mechanism(),
            as_server: config.security.is_server(),
        };
        out.put_slice(&greeting.encode());
        let mut properties = Metadata::new();
        properties.insert("Socket-Type", config.socket_type.as_str());
        if config.socket_type.sends_identity() {
            properties.insert("Identity", config.routing_id.clone());
        }
        if let Some(max) = config.max_msg_size {
            properties.insert(MAX_MSG_SIZE_PROPERTY, max.to_string());
        }
        Connection {
            properties,
            handshake: Some(config.security.handshake()),
            cipher: None,
            plain_out: BytesMut::new(),
            message_properties: None,
            decoder: FrameDecoder::new(config.max_msg_size),
            handshake_deadline: config.handshake_timeout.and_then(|t| now.checked_add(t)),
            config,
            phase: Phase::Greeting,
            version: OUR_VERSION,
            out,
            pong_due: None,
            ping_due: None,
            ping_sent: None,
            heartbeat_rtt: None,
            received: Received::default(),
            input_paused: false,
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

    /// Body length of a frame still arriving (its header already decoded), if any. Never
    /// more than the maximum message size, which the header was checked against.
    pub fn pending_frame_len(&self) -> Option<usize> {
        self.decoder.pending_body_len()
    }

    /// Consumes as much of `buf` as forms complete greeting, frames and messages, stopping
    /// early once [`MAX_PENDING_EVENTS`] events wait in [`Connection::poll_event`]: drain
    /// them, then call again with the same buffer even if no byte arrived
    /// ([`Connection::has_pending_input`] says when that is needed).
    ///
    /// Partial frames stay in `buf` (or in the decoder); call again when more bytes arrive.
    /// Room for the rest of a partial frame is the caller's to make (see
    /// [`Connection::pending_frame_len`]); nothing here reserves memory. Message bodies are
    /// split off `buf` without copying.
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
            self.on_greeting(greeting, now)?;
        }
        self.input_paused = false;
        loop {
            if self.events.len() >= MAX_PENDING_EVENTS {
                self.input_paused = true;
                return Ok(());
            }
            if self.phase == Phase::Traffic && self.cipher.is_none() {
                // Plain traffic: the whole frames at the front, split off the buffer at once.
                // At most one frame per event the queue still takes, so it never overfills.
                let room = MAX_PENDING_EVENTS - self.events.len();
                let mut run = self.decoder.split_whole_frames(buf, room);
                while let Some(frame) = FrameDecoder::next_whole_frame(&mut run) {
                    // Per frame: a PING's TTL holds only until the frame after it.
                    self.peer_alive();
                    self.on_frame(frame, now)?;
                }
                if self.events.len() >= MAX_PENDING_EVENTS {
                    continue;
                }
            }
            // One frame the run could not take: the rest of a body whose header came with an
            // earlier read (after it, the loop splits whole frames again), a frame still
            // partial, a header `decode_mut` reports as a fault, or handshake and CURVE
            // frames.
            let Some(frame) = self.decoder.decode_mut(buf)? else {
                break;
            };
            self.peer_alive();
            if self.phase != Phase::Traffic {
                check_handshake_frame(frame.body.len())?;
            }
            let frame = match &mut self.cipher {
                Some(cipher) => cipher.open(frame)?,
                None => frame.freeze(),
            };
            self.on_frame(frame, now)?;
        }
        if self.phase != Phase::Traffic
            && let Some(len) = self.decoder.pending_body_len()
        {
            // Refused from its header alone, before the engine makes room for its body.
            check_handshake_frame(len)?;
        }
        Ok(())
    }

    /// Any frame proves the peer alive (libzmq cancels both timers on any frame).
    fn peer_alive(&mut self) {
        self.ping_timeout_deadline = None;
        self.peer_ttl_deadline = None;
    }

    /// One decoded (and, under CURVE, opened) frame: a handshake or traffic command, or a
    /// message frame once traffic flows.
    fn on_frame(&mut self, frame: Frame, now: Instant) -> Result<(), ProtocolError> {
        if frame.command {
            if frame.more {
                return Err(ProtocolError::CommandWithMore);
            }
            return match self.phase {
                Phase::Handshake => self.on_handshake_command(frame.body, now),
                _ => self.on_command(Command::decode(frame.body)?, now),
            };
        }
        if self.phase != Phase::Traffic {
            return Err(ProtocolError::MessageBeforeReady);
        }
        self.on_data_frame(frame.body, frame.more)
    }

    fn on_greeting(&mut self, greeting: Greeting, now: Instant) -> Result<(), ProtocolError> {
        // Both greetings are out: from here a fault is told to the peer with ERROR.
        self.phase = Phase::Handshake;
        let ours = self.config.security.mechanism();
        if greeting.mechanism != ours {
            return Err(ProtocolError::MechanismMismatch {
                ours,
                theirs: greeting.mechanism,
            });
        }
        // The peer's as-server flag is not checked: libzmq 4.3 always sends it as zero. Two
        // clients fail on each other's HELLO; two servers wait until the handshake timeout.
        self.version = Greeting::negotiate(OUR_VERSION, greeting.version);
        self.run_handshake(now, |handshake, cx, out| handshake.start(cx, out))
    }

    /// Runs one step of the mechanism's handshake with what it needs from us, and finishes
    /// the handshake when the step says it is done.
    fn run_handshake(
        &mut self,
        now: Instant,
        step: impl FnOnce(
            &mut dyn Handshake,
            &Context<'_>,
            &mut BytesMut,
        ) -> Result<Step, ProtocolError>,
    ) -> Result<(), ProtocolError> {
        let Connection {
            config,
            handshake,
            out,
            properties,
            ..
        } = self;
        let Some(handshake) = handshake.as_mut() else {
            return Err(ProtocolError::DuplicateReady);
        };
        let cx = Context {
            properties,
            zap: config.zap.as_ref(),
            zap_domain: &config.zap_domain,
            peer_address: &config.peer_address,
            routing_id: &config.routing_id,
        };
        let sent_before = out.len();
        match step(handshake.as_mut(), &cx, out)? {
            Step::Continue => Ok(()),
            Step::Done(established) => {
                let done = self.on_established(established, now);
                if done.is_err() {
                    // A PLAIN or CURVE server queued its READY in this step: a peer refused
                    // for its Socket-Type gets the ERROR alone, not READY and then an ERROR
                    // that a CURVE client, its handshake done, could not read in clear.
                    self.out.truncate(sent_before);
                }
                done
            }
        }
    }

    /// A command during the handshake: ERROR ends it, anything else is the mechanism's.
    fn on_handshake_command(&mut self, body: Bytes, now: Instant) -> Result<(), ProtocolError> {
        if let Some(reason) = body.strip_prefix(LIBZMQ_PLAIN_ERROR)
            && self.config.security.mechanism() == super::mechanism::PLAIN
        {
            let mut error = BytesMut::from(&b"\x05ERROR"[..]);
            error.extend_from_slice(reason);
            return self.on_command(Command::decode(error.freeze())?, now);
        }
        let (name, data) = Command::split_name(body.clone())?;
        if &name[..] == b"ERROR" {
            return self.on_command(Command::decode(body)?, now);
        }
        self.run_handshake(now, |handshake, cx, out| {
            handshake.command(&name, data, cx, out)
        })
    }

    fn on_command(&mut self, command: Command, now: Instant) -> Result<(), ProtocolError> {
        if let Command::Error { reason } = &command {
            if self.phase == Phase::Handshake
                && let Some(status) = zap_status(reason)
            {
                return Err(ProtocolError::Unauthorized { status });
            }
            return Err(ProtocolError::PeerError {
                reason: String::from_utf8_lossy(reason).into_owned(),
            });
        }
        match command {
            Command::Ready(_) => return Err(ProtocolError::DuplicateReady),
            Command::Ping {
                ttl_deciseconds,
                context,
            } => {
                // The context is at most 16 bytes: copied, so it pins no read buffer.
                self.pong_due = Some(Bytes::copy_from_slice(&context));
                if ttl_deciseconds > 0 && self.peer_ttl_deadline.is_none() {
                    self.peer_ttl_deadline =
                        now.checked_add(Duration::from_millis(u64::from(ttl_deciseconds) * 100));
                }
            }
            Command::Pong { .. } => {
                if let Some(sent) = self.ping_sent.take() {
                    self.heartbeat_rtt = Some(now.saturating_duration_since(sent));
                }
            }
            Command::Subscribe(prefix) => self.events.push_back(Event::Subscribe(prefix)),
            Command::Cancel(prefix) => self.events.push_back(Event::Cancel(prefix)),
            other => self.events.push_back(Event::Command(Box::new(other))),
        }
        Ok(())
    }

    fn on_established(
        &mut self,
        established: Established,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        let Established {
            properties: metadata,
            zap,
            cipher,
        } = established;
        let ours = self.config.socket_type;
        let theirs = match metadata.get("Socket-Type") {
            None => return Err(ProtocolError::MissingSocketType),
            Some(name) => {
                SocketType::from_wire(&name).ok_or(ProtocolError::UnknownSocketType(name))?
            }
        };
        if !ours.is_compatible_with(theirs) {
            return Err(ProtocolError::IncompatibleSocketType { ours, theirs });
        }
        let identity = metadata.get("Identity").filter(|id| !id.is_empty());
        // A value that is not a decimal number announces nothing.
        let max_msg_size = metadata
            .get(MAX_MSG_SIZE_PROPERTY)
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok());
        let mechanism = self.config.security.mechanism();
        if zap.is_some() || mechanism != Mechanism::NULL {
            let (user_id, zap_metadata) = zap
                .as_ref()
                .map(|z| (z.user_id.clone(), z.metadata.clone()))
                .unwrap_or_default();
            self.message_properties = Some(Arc::new(Properties {
                user_id,
                peer_address: self.config.peer_address.clone(),
                metadata: metadata.clone(),
                zap: zap_metadata,
            }));
        }
        self.handshake = None;
        self.cipher = cipher;
        self.phase = Phase::Traffic;
        self.handshake_deadline = None;
        // PING and PONG are ZMTP 3.1 commands: a 3.0 peer would not know them.
        if self.version >= (3, 1) {
            self.next_ping = self
                .config
                .heartbeat
                .interval
                .and_then(|ivl| now.checked_add(ivl));
        }
        self.events.push_back(Event::Ready(Box::new(PeerInfo {
            socket_type: theirs,
            identity,
            metadata,
            version: self.version,
            mechanism,
            user_id: zap.map(|z| z.user_id),
            max_msg_size,
        })));
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
        if more {
            self.partial.push_back(body);
            return Ok(());
        }
        // A single-frame message, the common case, is built straight from its frame.
        let mut message = match self.partial.is_empty() {
            true => Message::from(body),
            false => {
                let mut message = std::mem::take(&mut self.partial);
                message.push_back(body);
                message
            }
        };
        let bytes = std::mem::take(&mut self.partial_bytes);
        if let Some(properties) = &self.message_properties {
            message.set_properties(properties.clone());
        }
        let event = match self.subscription_in(&message) {
            Some(event) => event,
            None => {
                self.received.messages += 1;
                self.received.bytes += bytes;
                Event::Message(message)
            }
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
        // Tell the peer why before closing (RFC 23 ERROR), as far as the phase allows; a peer
        // that sent ERROR itself is already closing and needs no answer. An authentication
        // refusal sends only its status code, as libzmq does (its clients read "400" as a
        // ZAP failure), and a temporary one (300) closes silently so the client retries.
        let client = matches!(
            self.config.security,
            Security::PlainClient { .. } | Security::CurveClient { .. }
        );
        let reason = match &error {
            // RFC 26: a client never sends ERROR (nor, alike, does a PLAIN client).
            _ if client => None,
            ProtocolError::PeerError { .. } | ProtocolError::Unauthorized { .. } => None,
            ProtocolError::AuthenticationFailed { status: 300, .. } => None,
            ProtocolError::AuthenticationFailed { status, .. } => Some(status.to_string()),
            other => Some(other.to_string()),
        };
        if self.phase == Phase::Handshake
            && let Some(reason) = reason
        {
            Command::Error {
                reason: Bytes::from(reason),
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
    ///
    /// Call only after [`Event::Ready`]: before it the version is unknown and the bytes would
    /// go out ahead of our READY.
    pub fn send_subscribe(&mut self, prefix: &[u8]) {
        self.send_subscription(true, prefix);
    }

    /// Queues a cancellation, in the form the negotiated version needs.
    pub fn send_cancel(&mut self, prefix: &[u8]) {
        self.send_subscription(false, prefix);
    }

    fn send_subscription(&mut self, subscribe: bool, prefix: &[u8]) {
        debug_assert!(
            !matches!(self.phase, Phase::Greeting | Phase::Handshake),
            "subscription queued before the handshake completed"
        );
        let mut buf = WriteBuf::new();
        buf.push_subscription(self.version, subscribe, prefix);
        buf.drain_into(self.traffic_out());
    }

    /// Queues a data message (encoded by copy; the engine's hot path encodes into its own
    /// [`WriteBuf`] instead). Call only after [`Event::Ready`], like
    /// [`Connection::send_subscribe`].
    pub fn send_message(&mut self, message: &Message) {
        debug_assert!(
            !matches!(self.phase, Phase::Greeting | Phase::Handshake),
            "message queued before the handshake completed"
        );
        let mut buf = WriteBuf::new();
        buf.push_message(message);
        buf.drain_into(self.traffic_out());
    }

    /// Where frames queued after the handshake go: straight out, or to be boxed first.
    fn traffic_out(&mut self) -> &mut BytesMut {
        match self.cipher {
            Some(_) => &mut self.plain_out,
            None => &mut self.out,
        }
    }

    /// Whether traffic is boxed (CURVE): batches must then pass through
    /// [`Connection::seal_batch`].
    pub fn encrypts(&self) -> bool {
        self.cipher.is_some()
    }

    /// Moves a batch of encoded frames (the socket's queue for this peer) to `out`, boxing
    /// each frame when the mechanism encrypts. Batches and [`Connection::take_transmit`]
    /// must reach the wire in the order they were taken: boxes are numbered.
    pub fn seal_batch(&mut self, batch: &mut WriteBuf, out: &mut WriteBuf) {
        match &mut self.cipher {
            Some(cipher) => cipher.seal_batch(batch, out),
            None => out.append(batch),
        }
    }

    /// Takes every byte queued for the peer, with the PONG and PING that are due.
    ///
    /// Call it only when those bytes can be written soon: while it is not called, heartbeat
    /// answers coalesce here instead of piling up.
    pub fn take_transmit(&mut self) -> Option<Bytes> {
        if let Some(context) = self.pong_due.take() {
            Command::Pong { context }.encode(self.traffic_out());
        }
        if let Some(ttl_deciseconds) = self.ping_due.take() {
            Command::Ping {
                ttl_deciseconds,
                context: Bytes::new(),
            }
            .encode(self.traffic_out());
        }
        if let Some(cipher) = &mut self.cipher
            && !self.plain_out.is_empty()
        {
            cipher.seal_frames(&mut self.plain_out, &mut self.out);
        }
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// Whether the last [`Connection::handle_input`] stopped at the event limit, leaving
    /// complete frames in the buffer: call it again once the events are drained.
    pub fn has_pending_input(&self) -> bool {
        self.input_paused
    }

    /// The round trip of the last PING the peer answered, once per answer: from when the
    /// PING was due to when its PONG was decoded.
    pub fn take_heartbeat_rtt(&mut self) -> Option<Duration> {
        self.heartbeat_rtt.take()
    }

    /// The data messages (and their payload bytes) decoded since the last call: counted here,
    /// where the frame lengths are at hand, so statistics cost the message path two additions.
    pub fn take_received(&mut self) -> Received {
        std::mem::take(&mut self.received)
    }

    /// Whether bytes are queued for the peer.
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
            || !self.plain_out.is_empty()
            || self.pong_due.is_some()
            || self.ping_due.is_some()
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
            self.ping_due = Some(ttl_deciseconds);
            self.ping_sent.get_or_insert(now);
            self.next_ping = now.checked_add(interval);
            let timeout = self.config.heartbeat.timeout.unwrap_or(interval);
            if self.ping_timeout_deadline.is_none() && !timeout.is_zero() {
                self.ping_timeout_deadline = now.checked_add(timeout);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::FLAG_MORE;

    /// Most shuttle rounds a pair may need to go idle; a handshake takes three, so hitting
    /// this means the two sides keep answering each other forever.
    const MAX_DRIVE_ROUNDS: usize = 64;

    /// The fake clock's origin: tests only ever add durations to it.
    #[allow(clippy::disallowed_methods)] // Any instant will do as the origin.
    fn t0() -> Instant {
        Instant::now()
    }

    /// The 64-byte greeting libzmq 4.3 sends with NULL security, written out field by field
    /// (not through `Greeting::encode`, which is what is under test).
    fn libzmq_greeting(minor: u8) -> Vec<u8> {
        let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x7F, 0x03, minor];
        g.extend_from_slice(b"NULL");
        g.extend_from_slice(&[0; 16]);
        g.push(0); // as-server
        g.extend_from_slice(&[0; 31]);
        assert_eq!(g.len(), 64);
        g
    }

    /// A READY command frame with the given properties, written out byte by byte.
    fn ready_frame(properties: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = vec![5];
        body.extend_from_slice(b"READY");
        for (name, value) in properties {
            body.push(name.len() as u8);
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(&(value.len() as u32).to_be_bytes());
            body.extend_from_slice(value);
        }
        command_frame(&body)
    }

    /// A command frame around `body` (name length, name, data), short form.
    fn command_frame(body: &[u8]) -> Vec<u8> {
        assert!(body.len() <= 255);
        let mut frame = vec![0x04, body.len() as u8];
        frame.extend_from_slice(body);
        frame
    }

    /// What libzmq 4.3 sends as READY for `socket_type`: Socket-Type, then Identity (empty when
    /// no routing id is set) for REQ, DEALER and ROUTER.
    fn libzmq_ready(socket_type: SocketType, identity: &[u8]) -> Vec<u8> {
        let name = socket_type.as_str().as_bytes();
        if socket_type.sends_identity() {
            ready_frame(&[("Socket-Type", name), ("Identity", identity)])
        } else {
            ready_frame(&[("Socket-Type", name)])
        }
    }

    fn feed(conn: &mut Connection, bytes: &[u8], now: Instant) -> Result<(), ProtocolError> {
        let mut buf = BytesMut::from(bytes);
        conn.handle_input(&mut buf, now)
    }

    fn events(conn: &mut Connection) -> Vec<Event> {
        std::iter::from_fn(|| conn.poll_event()).collect()
    }

    fn transmit(conn: &mut Connection) -> Vec<u8> {
        conn.take_transmit().map(|b| b.to_vec()).unwrap_or_default()
    }

    /// A connection of type `ours` that has received a libzmq greeting (version 3.`minor`)
    /// and has queued its own greeting and READY, which are discarded.
    fn after_greeting(config: ConnectionConfig, minor: u8, now: Instant) -> Connection {
        let mut conn = Connection::new(config, now);
        feed(&mut conn, &libzmq_greeting(minor), now).unwrap();
        transmit(&mut conn);
        conn
    }

    /// A connection of type `ours` whose handshake with a libzmq peer of type `peer` is done.
    fn ready(config: ConnectionConfig, peer: SocketType, minor: u8, now: Instant) -> Connection {
        let mut conn = after_greeting(config, minor, now);
        feed(&mut conn, &libzmq_ready(peer, b""), now).unwrap();
        assert!(matches!(conn.poll_event(), Some(Event::Ready(_))));
        conn
    }

    fn ready_pull_from_push(now: Instant) -> Connection {
        ready(
            ConnectionConfig::new(SocketType::Pull),
            SocketType::Push,
            1,
            now,
        )
    }

    /// Two connections joined by in-memory byte queues, quinn-`Pair` style.
    struct Pair {
        a: Connection,
        b: Connection,
        a_in: BytesMut,
        b_in: BytesMut,
        a_error: Option<ProtocolError>,
        b_error: Option<ProtocolError>,
        now: Instant,
    }

    impl Pair {
        fn new(a: ConnectionConfig, b: ConnectionConfig) -> Pair {
            let now = t0();
            Pair {
                a: Connection::new(a, now),
                b: Connection::new(b, now),
                a_in: BytesMut::new(),
                b_in: BytesMut::new(),
                a_error: None,
                b_error: None,
                now,
            }
        }

        /// Shuttles transmit output into the other side's input until neither side has
        /// anything to send. A side that failed still flushes (its ERROR must get out) but
        /// reads nothing more.
        fn drive(&mut self) {
            for _ in 0..MAX_DRIVE_ROUNDS {
                let from_a = self.a.take_transmit();
                let from_b = self.b.take_transmit();
                if from_a.is_none() && from_b.is_none() {
                    return;
                }
                if let Some(bytes) = from_a {
                    self.b_in.extend_from_slice(&bytes);
                }
                if let Some(bytes) = from_b {
                    self.a_in.extend_from_slice(&bytes);
                }
                if self.a_error.is_none() {
                    self.a_error = self.a.handle_input(&mut self.a_in, self.now).err();
                }
                if self.b_error.is_none() {
                    self.b_error = self.b.handle_input(&mut self.b_in, self.now).err();
                }
            }
            panic!("pair still busy after {MAX_DRIVE_ROUNDS} rounds: livelock");
        }

        /// Moves the fake clock forward, fires both sides' due timers and drives.
        fn advance(&mut self, by: Duration) {
            self.now += by;
            for (conn, error) in [
                (&mut self.a, &mut self.a_error),
                (&mut self.b, &mut self.b_error),
            ] {
                if error.is_none() && conn.poll_timeout().is_some_and(|t| t <= self.now) {
                    *error = conn.handle_timeout(self.now).err();
                }
            }
            self.drive();
        }
    }

    fn peer_info(conn: &mut Connection) -> PeerInfo {
        match conn.poll_event() {
            Some(Event::Ready(info)) => *info,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    // ---- NULL handshake, byte for byte ----

    #[test]
    fn null_handshake_bytes_match_libzmq_for_push() {
        let now = t0();
        let mut push = Connection::new(ConnectionConfig::new(SocketType::Push), now);
        assert_eq!(transmit(&mut push), libzmq_greeting(1));
        // Nothing more until the peer's greeting: READY must follow the version negotiation.
        assert!(!push.has_transmit());

        feed(&mut push, &libzmq_greeting(1), now).unwrap();
        let mut expected = vec![0x04, 26, 5];
        expected.extend_from_slice(b"READY");
        expected.push(11);
        expected.extend_from_slice(b"Socket-Type");
        expected.extend_from_slice(&[0, 0, 0, 4]);
        expected.extend_from_slice(b"PUSH");
        assert_eq!(transmit(&mut push), expected);
        assert!(!push.is_ready(), "ready only once the peer's READY arrived");

        feed(&mut push, &libzmq_ready(SocketType::Pull, b""), now).unwrap();
        assert!(push.is_ready());
        assert_eq!(peer_info(&mut push).socket_type, SocketType::Pull);
        assert!(!push.has_transmit());
    }

    #[test]
    fn null_handshake_sends_identity_for_req_dealer_and_router_only() {
        let now = t0();
        for ours in SocketType::ALL {
            let mut conn = Connection::new(ConnectionConfig::new(ours), now);
            transmit(&mut conn);
            feed(&mut conn, &libzmq_greeting(1), now).unwrap();
            // libzmq announces an empty Identity when no routing id is set.
            assert_eq!(transmit(&mut conn), libzmq_ready(ours, b""), "{ours}");
        }
        let mut config = ConnectionConfig::new(SocketType::Dealer);
        config.routing_id = Bytes::from_static(b"client-7");
        let mut dealer = Connection::new(config, now);
        transmit(&mut dealer);
        feed(&mut dealer, &libzmq_greeting(1), now).unwrap();
        let ready = transmit(&mut dealer);
        assert_eq!(ready, libzmq_ready(SocketType::Dealer, b"client-7"));
        // The RFC 37 worked example: a DEALER READY with an empty identity is 41 bytes.
        assert_eq!(libzmq_ready(SocketType::Dealer, b"")[1], 41);
    }

    #[test]
    fn ready_exposes_peer_type_identity_and_all_metadata() {
        let now = t0();
        let mut router = after_greeting(ConnectionConfig::new(SocketType::Router), 1, now);
        let ready = ready_frame(&[
            ("Socket-Type", b"DEALER"),
            ("Identity", b"worker-1"),
            ("X-Custom", b"\x00\xffbinary"),
        ]);
        feed(&mut router, &ready, now).unwrap();
        let info = peer_info(&mut router);
        assert_eq!(info.socket_type, SocketType::Dealer);
        assert_eq!(info.identity, Some(Bytes::from_static(b"worker-1")));
        assert_eq!(info.version, (3, 1));
        let props: Vec<_> = info
            .metadata
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(
            props,
            vec![
                (b"Socket-Type".to_vec(), b"DEALER".to_vec()),
                (b"Identity".to_vec(), b"worker-1".to_vec()),
                (b"X-Custom".to_vec(), b"\x00\xffbinary".to_vec()),
            ]
        );
        assert_eq!(
            info.metadata.get("x-custom").as_deref(),
            Some(&b"\x00\xffbinary"[..])
        );
    }

    #[test]
    fn empty_identity_property_means_no_identity() {
        let now = t0();
        let mut router = after_greeting(ConnectionConfig::new(SocketType::Router), 1, now);
        feed(&mut router, &libzmq_ready(SocketType::Req, b""), now).unwrap();
        assert_eq!(peer_info(&mut router).identity, None);
    }

    #[test]
    fn pair_completes_handshake_for_every_compatible_combination() {
        for a in SocketType::ALL {
            for b in SocketType::ALL
                .into_iter()
                .filter(|b| a.is_compatible_with(*b))
            {
                let mut pair = Pair::new(ConnectionConfig::new(a), ConnectionConfig::new(b));
                pair.drive();
                assert_eq!((&pair.a_error, &pair.b_error), (&None, &None), "{a}-{b}");
                assert_eq!(peer_info(&mut pair.a).socket_type, b);
                assert_eq!(peer_info(&mut pair.b).socket_type, a);
                assert_eq!(pair.a.version(), (3, 1));
            }
        }
    }

    #[test]
    fn pair_delivers_messages_both_ways_after_handshake() {
        let mut pair = Pair::new(
            ConnectionConfig::new(SocketType::Dealer),
            ConnectionConfig::new(SocketType::Router),
        );
        pair.drive();
        events(&mut pair.a);
        events(&mut pair.b);
        let request: Message = ["", "hello"].into_iter().collect();
        pair.a.send_message(&request);
        pair.b.send_message(&Message::from(vec![5u8; 300]));
        pair.drive();
        assert_eq!(events(&mut pair.b), vec![Event::Message(request)]);
        assert_eq!(
            events(&mut pair.a),
            vec![Event::Message(Message::from(vec![5u8; 300]))]
        );
    }

    // ---- socket-type validation ----

    #[test]
    fn incompatible_socket_types_queue_error_naming_both_types() {
        let mut pair = Pair::new(
            ConnectionConfig::new(SocketType::Push),
            ConnectionConfig::new(SocketType::Pub),
        );
        let push_pub = ProtocolError::IncompatibleSocketType {
            ours: SocketType::Push,
            theirs: SocketType::Pub,
        };
        let pub_push = ProtocolError::IncompatibleSocketType {
            ours: SocketType::Pub,
            theirs: SocketType::Push,
        };
        pair.drive();
        // Both READYs crossed, so each side rejects the other on its own.
        assert_eq!(pair.a_error, Some(push_pub));
        assert_eq!(pair.b_error, Some(pub_push));
        assert!(events(&mut pair.a).is_empty());

        // Alone against a scripted peer, the ERROR frame is the last thing queued.
        let now = t0();
        let mut push = after_greeting(ConnectionConfig::new(SocketType::Push), 1, now);
        let err = feed(&mut push, &libzmq_ready(SocketType::Pub, b""), now).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::IncompatibleSocketType {
                ours: SocketType::Push,
                theirs: SocketType::Pub
            }
        );
        let mut out = BytesMut::from(&transmit(&mut push)[..]);
        let frame = FrameDecoder::new(None).decode(&mut out).unwrap().unwrap();
        assert!(out.is_empty());
        let Command::Error { reason } = Command::decode(frame.body).unwrap() else {
            panic!("expected ERROR");
        };
        let reason = String::from_utf8(reason.to_vec()).unwrap();
        assert!(
            reason.contains("PUSH") && reason.contains("PUB"),
            "{reason}"
        );
    }

    // ---- versions and subscriptions ----

    #[test]
    fn zmtp_3_0_peer_gets_subscriptions_as_data_messages() {
        let now = t0();
        let mut sub = ready(
            ConnectionConfig::new(SocketType::Sub),
            SocketType::Pub,
            0,
            now,
        );
        assert_eq!(sub.version(), (3, 0));
        sub.send_subscribe(b"topic");
        assert_eq!(transmit(&mut sub), b"\x00\x06\x01topic");
        sub.send_cancel(b"topic");
        assert_eq!(transmit(&mut sub), b"\x00\x06\x00topic");
        sub.send_subscribe(b"");
        assert_eq!(transmit(&mut sub), b"\x00\x01\x01");
    }

    #[test]
    fn zmtp_3_1_peer_gets_subscribe_and_cancel_commands() {
        let now = t0();
        let mut sub = ready(
            ConnectionConfig::new(SocketType::Sub),
            SocketType::XPub,
            1,
            now,
        );
        assert_eq!(sub.version(), (3, 1));
        sub.send_subscribe(b"topic");
        assert_eq!(transmit(&mut sub), b"\x04\x0f\x09SUBSCRIBEtopic");
        sub.send_cancel(b"topic");
        assert_eq!(transmit(&mut sub), b"\x04\x0c\x06CANCELtopic");
    }

    #[test]
    fn greeting_padding_and_as_server_are_not_validated() {
        // RFC 23/37: padding has no significance and must not be validated. The as-server
        // bit must be zero with NULL, but libzmq does not check it either.
        let now = t0();
        let mut greeting = libzmq_greeting(1);
        greeting[1..9].copy_from_slice(&[0xAB; 8]);
        greeting[32] = 1;
        greeting[33..].fill(0x5A);
        let mut pull = Connection::new(ConnectionConfig::new(SocketType::Pull), now);
        feed(&mut pull, &greeting, now).unwrap();
        feed(&mut pull, &libzmq_ready(SocketType::Push, b""), now).unwrap();
        assert!(pull.is_ready());
    }

    #[test]
    fn newer_peer_versions_are_spoken_to_in_3_1() {
        let now = t0();
        for (major, minor) in [(3u8, 2u8), (4, 0), (255, 255)] {
            let mut greeting = libzmq_greeting(minor);
            greeting[10] = major;
            let mut conn = Connection::new(ConnectionConfig::new(SocketType::Pull), now);
            feed(&mut conn, &greeting, now).unwrap();
            assert_eq!(conn.version(), (3, 1), "peer {major}.{minor}");
        }
    }

    #[test]
    fn publishers_surface_subscribe_commands_and_data_form_alike() {
        let now = t0();
        for ours in [SocketType::Pub, SocketType::XPub] {
            let mut publisher = ready(ConnectionConfig::new(ours), SocketType::Sub, 1, now);
            let mut input = command_frame(b"\x09SUBSCRIBEa");
            input.extend_from_slice(&command_frame(b"\x06CANCELa"));
            input.extend_from_slice(b"\x00\x02\x01b");
            input.extend_from_slice(b"\x00\x02\x00b");
            input.extend_from_slice(b"\x00\x01\x01");
            feed(&mut publisher, &input, now).unwrap();
            assert_eq!(
                events(&mut publisher),
                vec![
                    Event::Subscribe(Bytes::from_static(b"a")),
                    Event::Cancel(Bytes::from_static(b"a")),
                    Event::Subscribe(Bytes::from_static(b"b")),
                    Event::Cancel(Bytes::from_static(b"b")),
                    Event::Subscribe(Bytes::new()),
                ],
                "{ours}"
            );
        }
    }

    #[test]
    fn publisher_passes_other_messages_up_as_data() {
        let now = t0();
        let mut xpub = ready(
            ConnectionConfig::new(SocketType::XPub),
            SocketType::XSub,
            1,
            now,
        );
        // Not 0/1-prefixed, empty, or multipart: none of these is a subscription.
        feed(
            &mut xpub,
            b"\x00\x02\x02x\x00\x00\x01\x02\x01a\x00\x01b",
            now,
        )
        .unwrap();
        assert_eq!(
            events(&mut xpub),
            vec![
                Event::Message(Message::from("\x02x")),
                Event::Message(Message::from("")),
                Event::Message(["\x01a", "b"].into_iter().collect()),
            ]
        );
    }

    #[test]
    fn non_publisher_delivers_one_prefixed_message_as_data() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        feed(&mut pull, b"\x00\x02\x01a", now).unwrap();
        assert_eq!(
            events(&mut pull),
            vec![Event::Message(Message::from("\x01a"))]
        );
    }

    #[test]
    fn subscription_round_trips_through_a_pair() {
        let mut pair = Pair::new(
            ConnectionConfig::new(SocketType::Sub),
            ConnectionConfig::new(SocketType::Pub),
        );
        pair.drive();
        events(&mut pair.a);
        events(&mut pair.b);
        pair.a.send_subscribe(b"weather");
        pair.a.send_cancel(b"weather");
        pair.drive();
        assert_eq!(
            events(&mut pair.b),
            vec![
                Event::Subscribe(Bytes::from_static(b"weather")),
                Event::Cancel(Bytes::from_static(b"weather")),
            ]
        );
    }

    // ---- commands in traffic ----

    #[test]
    fn unknown_command_is_passed_up() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        feed(&mut pull, &command_frame(b"\x05HELLOworld"), now).unwrap();
        assert_eq!(
            events(&mut pull),
            vec![Event::Command(Box::new(Command::Unknown {
                name: Bytes::from_static(b"HELLO"),
                data: Bytes::from_static(b"world"),
            }))]
        );
        assert!(pull.is_ready());
    }

    #[test]
    fn pongs_coalesce_until_taken() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        let mut pings = Vec::new();
        for i in 0..1000 {
            pings.extend_from_slice(&command_frame(format!("\x04PING\x00\x00c{i}").as_bytes()));
        }
        feed(&mut pull, &pings, now).unwrap();
        assert_eq!(transmit(&mut pull), command_frame(b"\x04PONGc999"));
        assert!(!pull.has_transmit());
    }

    #[test]
    fn our_due_pings_coalesce_until_taken() {
        let now = t0();
        let mut pull = ready(
            heartbeat_config(100, Some(60_000), None),
            SocketType::Push,
            1,
            now,
        );
        for tick in 1..=50 {
            pull.handle_timeout(now + Duration::from_millis(100 * tick))
                .unwrap();
        }
        assert_eq!(transmit(&mut pull), command_frame(b"\x04PING\x00\x00"));
    }

    #[test]
    fn decoding_pauses_at_the_event_limit() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        let total = MAX_PENDING_EVENTS + 10;
        let mut input = BytesMut::new();
        for _ in 0..total {
            input.extend_from_slice(b"\x00\x01m");
        }
        pull.handle_input(&mut input, now).unwrap();
        assert!(pull.has_pending_input());
        assert_eq!(input.len(), 10 * 3, "decoding went past the limit");
        assert_eq!(events(&mut pull).len(), MAX_PENDING_EVENTS);
        pull.handle_input(&mut input, now).unwrap();
        assert!(!pull.has_pending_input());
        assert!(input.is_empty());
        assert_eq!(events(&mut pull).len(), 10);
    }

    #[test]
    fn decoding_pauses_at_the_event_limit_after_a_body_split_across_reads() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        // A frame's header and the start of its body in one read...
        let mut input = BytesMut::from(&b"\x00\x03ab"[..]);
        pull.handle_input(&mut input, now).unwrap();
        assert!(events(&mut pull).is_empty());
        // ...the rest of it in the next, with more whole frames than the queue takes.
        input.extend_from_slice(b"c");
        for _ in 0..MAX_PENDING_EVENTS + 10 {
            input.extend_from_slice(b"\x00\x01m");
        }
        pull.handle_input(&mut input, now).unwrap();
        assert!(pull.has_pending_input());
        assert_eq!(input.len(), 11 * 3, "decoding went past the limit");
        let first = events(&mut pull);
        assert_eq!(first.len(), MAX_PENDING_EVENTS);
        assert!(matches!(&first[0], Event::Message(m) if m.frames()[0] == "abc"));
        pull.handle_input(&mut input, now).unwrap();
        assert!(!pull.has_pending_input());
        assert!(input.is_empty());
        assert_eq!(events(&mut pull).len(), 11);
    }

    #[test]
    fn oversized_handshake_frame_fails_from_its_header() {
        let now = t0();
        let mut pull = after_greeting(ConnectionConfig::new(SocketType::Pull), 1, now);
        let mut header = vec![0x06];
        header.extend_from_slice(&((MAX_HANDSHAKE_FRAME_BYTES as u64) + 1).to_be_bytes());
        assert_eq!(
            feed(&mut pull, &header, now),
            Err(ProtocolError::HandshakeFrameTooLarge {
                len: MAX_HANDSHAKE_FRAME_BYTES + 1,
                max: MAX_HANDSHAKE_FRAME_BYTES
            })
        );
        // After the handshake, the same size is an ordinary frame.
        let mut push = ready_pull_from_push(now);
        assert_eq!(feed(&mut push, &header, now), Ok(()));
    }

    #[test]
    fn zero_intervals_set_no_timers() {
        let now = t0();
        let config = ConnectionConfig {
            handshake_timeout: Some(Duration::ZERO),
            heartbeat: HeartbeatConfig {
                interval: Some(Duration::ZERO),
                timeout: Some(Duration::ZERO),
                ttl: Some(Duration::ZERO),
            },
            ..ConnectionConfig::new(SocketType::Pull)
        };
        let pull = Connection::new(config.clone(), now);
        assert_eq!(
            pull.poll_timeout(),
            None,
            "a zero handshake interval is always due"
        );
        let pull = ready(config, SocketType::Push, 1, now);
        assert_eq!(
            pull.poll_timeout(),
            None,
            "a zero heartbeat interval is always due"
        );
    }

    #[test]
    fn zero_heartbeat_timeout_never_drops_the_peer() {
        let now = t0();
        let config = ConnectionConfig {
            heartbeat: HeartbeatConfig {
                interval: Some(Duration::from_secs(1)),
                timeout: Some(Duration::ZERO),
                ttl: None,
            },
            ..ConnectionConfig::new(SocketType::Pull)
        };
        let mut pull = ready(config, SocketType::Push, 1, now);
        for second in 1..=100 {
            pull.handle_timeout(now + Duration::from_secs(second))
                .unwrap();
        }
    }

    #[test]
    fn deadlines_past_the_clock_are_never_reached() {
        let now = t0();
        let config = ConnectionConfig {
            handshake_timeout: Some(Duration::MAX),
            heartbeat: HeartbeatConfig {
                interval: Some(Duration::MAX),
                timeout: None,
                ttl: None,
            },
            ..ConnectionConfig::new(SocketType::Pull)
        };
        let pull = Connection::new(config.clone(), now);
        assert_eq!(pull.poll_timeout(), None);
        let pull = ready(config, SocketType::Push, 1, now);
        assert_eq!(pull.poll_timeout(), None);
    }

    #[test]
    fn a_pong_measures_the_round_trip_from_the_oldest_unanswered_ping() {
        let now = t0();
        let config = ConnectionConfig {
            heartbeat: HeartbeatConfig {
                interval: Some(Duration::from_secs(1)),
                timeout: Some(Duration::from_secs(10)),
                ttl: None,
            },
            ..ConnectionConfig::new(SocketType::Pull)
        };
        let mut pull = ready(config, SocketType::Push, 1, now);
        let first_ping = now + Duration::from_secs(1);
        pull.handle_timeout(first_ping).unwrap();
        // A second PING falls due before the first is answered: the round trip still counts
        // from the first.
        pull.handle_timeout(first_ping + Duration::from_secs(1))
            .unwrap();
        assert_eq!(pull.take_heartbeat_rtt(), None);
        let pong_at = first_ping + Duration::from_millis(1250);
        feed(&mut pull, &command_frame(b"\x04PONG"), pong_at).unwrap();
        assert_eq!(pull.take_heartbeat_rtt(), Some(Duration::from_millis(1250)));
        assert_eq!(pull.take_heartbeat_rtt(), None, "taken once");
        feed(&mut pull, &command_frame(b"\x04PONG"), pong_at).unwrap();
        assert_eq!(pull.take_heartbeat_rtt(), None, "a PONG nobody asked for");
    }

    #[test]
    fn ping_is_answered_with_pong_echoing_context() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        feed(
            &mut pull,
            &command_frame(b"\x04PING\x00\x00ctx-16-bytes-xyz"),
            now,
        )
        .unwrap();
        assert_eq!(
            transmit(&mut pull),
            command_frame(b"\x04PONGctx-16-bytes-xyz")
        );
        assert!(events(&mut pull).is_empty(), "PING is handled internally");
        feed(&mut pull, &command_frame(b"\x04PING\x00\x00"), now).unwrap();
        assert_eq!(transmit(&mut pull), command_frame(b"\x04PONG"));
    }

    #[test]
    fn command_between_frames_of_a_multipart_message_is_accepted() {
        // libzmq's heartbeat timer can slip a PING between two frames of a message.
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        let mut input = b"\x01\x01a".to_vec();
        input.extend_from_slice(&command_frame(b"\x04PING\x00\x00"));
        input.extend_from_slice(b"\x00\x01b");
        feed(&mut pull, &input, now).unwrap();
        assert_eq!(
            events(&mut pull),
            vec![Event::Message(["a", "b"].into_iter().collect())]
        );
        assert_eq!(transmit(&mut pull), command_frame(b"\x04PONG"));
    }

    // ---- heartbeats ----

    fn heartbeat_config(interval: u64, timeout: Option<u64>, ttl: Option<u64>) -> ConnectionConfig {
        let mut config = ConnectionConfig::new(SocketType::Pull);
        config.heartbeat = HeartbeatConfig {
            interval: Some(Duration::from_millis(interval)),
            timeout: timeout.map(Duration::from_millis),
            ttl: ttl.map(Duration::from_millis),
        };
        config
    }

    #[test]
    fn heartbeat_sends_ping_at_interval_with_ttl_in_deciseconds() {
        let now = t0();
        let mut pull = ready(
            heartbeat_config(1000, Some(5000), Some(2500)),
            SocketType::Push,
            1,
            now,
        );
        assert_eq!(pull.poll_timeout(), Some(now + Duration::from_secs(1)));
        pull.handle_timeout(now + Duration::from_millis(999))
            .unwrap();
        assert!(!pull.has_transmit(), "no PING before the interval");
        pull.handle_timeout(now + Duration::from_secs(1)).unwrap();
        // TTL 2500 ms is 25 deciseconds.
        assert_eq!(transmit(&mut pull), command_frame(b"\x04PING\x00\x19"));
        // Next PING one interval later; the 5 s timeout runs from the first PING.
        assert_eq!(pull.poll_timeout(), Some(now + Duration::from_secs(2)));
        feed(
            &mut pull,
            &command_frame(b"\x04PONG"),
            now + Duration::from_millis(1500),
        )
        .unwrap();
        pull.handle_timeout(now + Duration::from_secs(2)).unwrap();
        assert_eq!(transmit(&mut pull), command_frame(b"\x04PING\x00\x19"));
    }

    #[test]
    fn silent_peer_past_heartbeat_timeout_fails() {
        let now = t0();
        let mut pull = ready(
            heartbeat_config(1000, Some(3000), None),
            SocketType::Push,
            1,
            now,
        );
        pull.handle_timeout(now + Duration::from_secs(1)).unwrap();
        assert_eq!(transmit(&mut pull), command_frame(b"\x04PING\x00\x00"));
        pull.handle_timeout(now + Duration::from_secs(3)).unwrap();
        assert_eq!(
            pull.handle_timeout(now + Duration::from_secs(4)),
            Err(ProtocolError::HeartbeatTimeout)
        );
    }

    #[test]
    fn heartbeat_timeout_defaults_to_the_interval() {
        let now = t0();
        let mut pull = ready(heartbeat_config(1000, None, None), SocketType::Push, 1, now);
        pull.handle_timeout(now + Duration::from_secs(1)).unwrap();
        assert_eq!(
            pull.handle_timeout(now + Duration::from_secs(2)),
            Err(ProtocolError::HeartbeatTimeout)
        );
    }

    #[test]
    fn any_traffic_resets_heartbeat_timeout() {
        let now = t0();
        let mut pull = ready(
            heartbeat_config(1000, Some(1500), None),
            SocketType::Push,
            1,
            now,
        );
        let at = |ms| now + Duration::from_millis(ms);
        pull.handle_timeout(at(1000)).unwrap();
        // A data message, not a PONG, proves the peer alive (RFC 37).
        feed(&mut pull, b"\x00\x01x", at(2000)).unwrap();
        pull.handle_timeout(at(2000)).unwrap();
        pull.handle_timeout(at(2600)).unwrap();
        assert!(
            pull.error().is_none(),
            "first PING's deadline was cancelled"
        );
        // The second PING (at 2000) re-armed the deadline: silence until 3500 is fatal.
        assert_eq!(
            pull.handle_timeout(at(3500)),
            Err(ProtocolError::HeartbeatTimeout)
        );
    }

    #[test]
    fn pair_with_heartbeats_stays_up_while_both_answer() {
        let mut pair = Pair::new(heartbeat_config(100, Some(300), Some(1000)), {
            let mut c = heartbeat_config(100, Some(300), Some(1000));
            c.socket_type = SocketType::Push;
            c
        });
        pair.drive();
        for _ in 0..50 {
            pair.advance(Duration::from_millis(100));
        }
        assert_eq!((&pair.a_error, &pair.b_error), (&None, &None));
    }

    #[test]
    fn peer_announced_ttl_is_honoured() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        assert_eq!(
            pull.poll_timeout(),
            None,
            "no heartbeats configured locally"
        );
        // PING with TTL 2.0 s.
        feed(&mut pull, &command_frame(b"\x04PING\x00\x14"), now).unwrap();
        assert_eq!(pull.poll_timeout(), Some(now + Duration::from_secs(2)));
        pull.handle_timeout(now + Duration::from_millis(1999))
            .unwrap();
        assert_eq!(
            pull.handle_timeout(now + Duration::from_secs(2)),
            Err(ProtocolError::HeartbeatTimeout)
        );
    }

    #[test]
    fn traffic_after_peer_ping_cancels_its_ttl() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        feed(&mut pull, &command_frame(b"\x04PING\x00\x14"), now).unwrap();
        feed(&mut pull, b"\x00\x00", now + Duration::from_secs(1)).unwrap();
        assert_eq!(pull.poll_timeout(), None);
        pull.handle_timeout(now + Duration::from_secs(10)).unwrap();
    }

    #[test]
    fn a_frame_read_with_the_peer_ping_cancels_its_ttl_too() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        let mut read = command_frame(b"\x04PING\x00\x14");
        read.extend_from_slice(b"\x00\x00");
        feed(&mut pull, &read, now).unwrap();
        assert_eq!(pull.poll_timeout(), None);
        // A PING last in its read keeps its TTL, however many frames came before it.
        let mut read = b"\x00\x00".to_vec();
        read.extend_from_slice(&command_frame(b"\x04PING\x00\x14"));
        feed(&mut pull, &read, now).unwrap();
        assert_eq!(pull.poll_timeout(), Some(now + Duration::from_secs(2)));
    }

    #[test]
    fn zero_ttl_ping_sets_no_deadline() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        feed(&mut pull, &command_frame(b"\x04PING\x00\x00"), now).unwrap();
        assert_eq!(pull.poll_timeout(), None);
    }

    #[test]
    fn no_heartbeats_to_a_zmtp_3_0_peer() {
        let now = t0();
        let mut pull = ready(heartbeat_config(1000, None, None), SocketType::Push, 0, now);
        assert_eq!(pull.poll_timeout(), None);
        pull.handle_timeout(now + Duration::from_secs(60)).unwrap();
        assert!(!pull.has_transmit());
    }

    // ---- handshake timeout and stickiness ----

    fn with_handshake_timeout(ms: u64) -> ConnectionConfig {
        let mut config = ConnectionConfig::new(SocketType::Pull);
        config.handshake_timeout = Some(Duration::from_millis(ms));
        config
    }

    #[test]
    fn handshake_timeout_fails_a_stalled_greeting() {
        let now = t0();
        let mut pull = Connection::new(with_handshake_timeout(500), now);
        assert_eq!(pull.poll_timeout(), Some(now + Duration::from_millis(500)));
        feed(&mut pull, &libzmq_greeting(1)[..20], now).unwrap();
        pull.handle_timeout(now + Duration::from_millis(499))
            .unwrap();
        assert_eq!(
            pull.handle_timeout(now + Duration::from_millis(500)),
            Err(ProtocolError::HandshakeTimeout)
        );
    }

    #[test]
    fn handshake_timeout_fails_a_missing_ready() {
        let now = t0();
        let mut pull = after_greeting(with_handshake_timeout(500), 1, now);
        assert_eq!(
            pull.handle_timeout(now + Duration::from_secs(1)),
            Err(ProtocolError::HandshakeTimeout)
        );
    }

    #[test]
    fn completed_handshake_disarms_handshake_timeout() {
        let now = t0();
        let mut pull = ready(with_handshake_timeout(500), SocketType::Push, 1, now);
        assert_eq!(pull.poll_timeout(), None);
        pull.handle_timeout(now + Duration::from_secs(1)).unwrap();
        assert!(pull.is_ready());
    }

    #[test]
    fn errors_are_sticky() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        let bad = ProtocolError::ReservedFlags { flags: 0x80 };
        assert_eq!(feed(&mut pull, b"\x80\x00", now), Err(bad.clone()));
        assert_eq!(pull.error(), Some(&bad));
        assert!(!pull.is_ready());
        // Valid input, timers and more input all report the first fault again.
        assert_eq!(feed(&mut pull, b"\x00\x01x", now), Err(bad.clone()));
        assert_eq!(
            pull.handle_timeout(now + Duration::from_secs(1)),
            Err(bad.clone())
        );
        assert_eq!(pull.poll_timeout(), None);
        assert!(events(&mut pull).is_empty());
        assert!(!pull.has_transmit(), "no ERROR after the handshake");
    }

    #[test]
    fn failed_connection_consumes_no_more_input() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        feed(&mut pull, b"\x80", now).unwrap_err();
        let mut buf = BytesMut::from(&b"\x00\x01x"[..]);
        pull.handle_input(&mut buf, now).unwrap_err();
        assert_eq!(buf.len(), 3);
    }

    // ---- rejections: one per malformed input ----

    /// Feeds `input` after a completed handshake and returns the fault.
    fn traffic_fault(config: ConnectionConfig, input: &[u8]) -> ProtocolError {
        let now = t0();
        let mut conn = ready(config, SocketType::Push, 1, now);
        feed(&mut conn, input, now).unwrap_err()
    }

    /// Feeds `input` after the greeting, in place of the peer's READY, and returns the fault.
    fn handshake_fault(input: &[u8]) -> ProtocolError {
        let now = t0();
        let mut conn = after_greeting(ConnectionConfig::new(SocketType::Pull), 1, now);
        feed(&mut conn, input, now).unwrap_err()
    }

    fn malformed_ready(reason: &'static str) -> ProtocolError {
        ProtocolError::MalformedCommand {
            command: "READY",
            reason,
        }
    }

    #[test]
    fn rejects_bad_signature() {
        let mut conn = Connection::new(ConnectionConfig::new(SocketType::Pull), t0());
        assert_eq!(
            feed(&mut conn, b"GET / HTTP/1.1\r\n", t0()),
            Err(ProtocolError::BadSignature {
                offset: 0,
                found: b'G',
                expected: 0xFF
            })
        );
        assert!(
            conn.take_transmit().is_some_and(|t| t.len() == 64),
            "only our greeting: no ERROR to a peer that is not speaking ZMTP"
        );
    }

    #[test]
    fn rejects_zmtp_2_peer_as_unsupported_version() {
        // A ZMTP 2.0 greeting: signature, then version 1 and the socket type.
        let mut conn = Connection::new(ConnectionConfig::new(SocketType::Pull), t0());
        assert_eq!(
            feed(&mut conn, b"\xff\0\0\0\0\0\0\0\x01\x7f\x01\x08", t0()),
            Err(ProtocolError::UnsupportedVersion { major: 1, minor: 8 })
        );
    }

    #[test]
    fn rejects_wrong_mechanism() {
        let mut greeting = libzmq_greeting(1);
        greeting[12..17].copy_from_slice(b"CURVE");
        let mut conn = Connection::new(ConnectionConfig::new(SocketType::Pull), t0());
        assert_eq!(
            feed(&mut conn, &greeting, t0()),
            Err(ProtocolError::MechanismMismatch {
                ours: Mechanism::NULL,
                theirs: Mechanism::from_static("CURVE"),
            })
        );
    }

    #[test]
    fn rejects_reserved_flag_bits() {
        let config = ConnectionConfig::new(SocketType::Pull);
        assert_eq!(
            traffic_fault(config, b"\x08\x00"),
            ProtocolError::ReservedFlags { flags: 0x08 }
        );
    }

    #[test]
    fn rejects_command_frame_with_more() {
        assert_eq!(
            traffic_fault(ConnectionConfig::new(SocketType::Pull), b"\x05\x05\x04PING"),
            ProtocolError::CommandWithMore
        );
    }

    #[test]
    fn rejects_truncated_metadata() {
        assert_eq!(
            handshake_fault(&command_frame(b"\x05READY\x0bSocket-Type\x00\x00")),
            malformed_ready("property value length runs past the end")
        );
    }

    #[test]
    fn rejects_over_long_metadata_value_length() {
        assert_eq!(
            handshake_fault(&command_frame(
                b"\x05READY\x0bSocket-Type\x00\x00\x01\x00PULL"
            )),
            malformed_ready("property value runs past the end")
        );
    }

    #[test]
    fn rejects_frame_over_max_msg_size() {
        let mut config = ConnectionConfig::new(SocketType::Pull);
        config.max_msg_size = Some(100);
        assert_eq!(
            traffic_fault(config, b"\x02\x00\x00\x00\x00\x00\x00\x00\x65"),
            ProtocolError::MessageTooLarge { len: 101, max: 100 }
        );
    }

    #[test]
    fn rejects_multipart_message_over_max_msg_size() {
        let mut config = ConnectionConfig::new(SocketType::Pull);
        config.max_msg_size = Some(100);
        // Three 40-byte frames: each is within the limit, the message is not.
        let mut input = Vec::new();
        for flags in [FLAG_MORE, FLAG_MORE, 0] {
            input.extend_from_slice(&[flags, 40]);
            input.extend_from_slice(&[0; 40]);
        }
        assert_eq!(
            traffic_fault(config, &input),
            ProtocolError::MessageTooLarge { len: 120, max: 100 }
        );
    }

    #[test]
    fn message_at_max_msg_size_is_accepted() {
        let now = t0();
        let mut config = ConnectionConfig::new(SocketType::Pull);
        config.max_msg_size = Some(80);
        let mut pull = ready(config, SocketType::Push, 1, now);
        let mut input = vec![FLAG_MORE, 40];
        input.extend_from_slice(&[1; 40]);
        input.extend_from_slice(&[0, 40]);
        input.extend_from_slice(&[2; 40]);
        feed(&mut pull, &input, now).unwrap();
        assert!(matches!(pull.poll_event(), Some(Event::Message(m)) if m.byte_len() == 80));
    }

    #[test]
    fn rejects_message_with_too_many_frames() {
        let input: Vec<u8> = [FLAG_MORE, 0].repeat(MAX_FRAMES_PER_MESSAGE);
        assert_eq!(
            traffic_fault(ConnectionConfig::new(SocketType::Pull), &input),
            ProtocolError::TooManyFrames {
                max: MAX_FRAMES_PER_MESSAGE
            }
        );
    }

    #[test]
    fn message_with_max_frames_is_accepted() {
        let now = t0();
        let mut pull = ready_pull_from_push(now);
        let mut input: Vec<u8> = [FLAG_MORE, 0].repeat(MAX_FRAMES_PER_MESSAGE - 1);
        input.extend_from_slice(&[0, 0]);
        feed(&mut pull, &input, now).unwrap();
        assert!(
            matches!(pull.poll_event(), Some(Event::Message(m)) if m.len() == MAX_FRAMES_PER_MESSAGE)
        );
    }

    #[test]
    fn rejects_ready_without_socket_type() {
        assert_eq!(
            handshake_fault(&ready_frame(&[("Identity", b"x")])),
            ProtocolError::MissingSocketType
        );
    }

    #[test]
    fn rejects_unknown_socket_type() {
        assert_eq!(
            handshake_fault(&ready_frame(&[("Socket-Type", b"CLIENT")])),
            ProtocolError::UnknownSocketType(Bytes::from_static(b"CLIENT"))
        );
    }

    #[test]
    fn rejects_second_ready() {
        assert_eq!(
            traffic_fault(
                ConnectionConfig::new(SocketType::Pull),
                &libzmq_ready(SocketType::Push, b"")
            ),
            ProtocolError::DuplicateReady
        );
    }

    #[test]
    fn rejects_data_before_ready() {
        assert_eq!(
            handshake_fault(b"\x00\x01x"),
            ProtocolError::MessageBeforeReady
        );
    }

    #[test]
    fn rejects_non_ready_command_during_handshake() {
        assert_eq!(
            handshake_fault(&command_frame(b"\x04PING\x00\x00")),
            ProtocolError::UnexpectedCommand { command: "PING" }
        );
    }

    #[test]
    fn rejects_error_from_peer_during_handshake_without_answering_it() {
        let now = t0();
        let mut conn = after_greeting(ConnectionConfig::new(SocketType::Pull), 1, now);
        assert_eq!(
            feed(&mut conn, &command_frame(b"\x05ERROR\x06denied"), now),
            Err(ProtocolError::PeerError {
                reason: "denied".into()
            })
        );
        assert!(!conn.has_transmit());
    }

    #[test]
    fn rejects_error_from_peer_after_handshake() {
        assert_eq!(
            traffic_fault(
                ConnectionConfig::new(SocketType::Pull),
                &command_frame(b"\x05ERROR\x00")
            ),
            ProtocolError::PeerError {
                reason: String::new()
            }
        );
    }

    #[test]
    fn handshake_fault_queues_error_command_for_the_peer() {
        let now = t0();
        let mut conn = after_greeting(ConnectionConfig::new(SocketType::Pull), 1, now);
        feed(&mut conn, b"\x00\x01x", now).unwrap_err();
        let reason = ProtocolError::MessageBeforeReady.to_string();
        let mut body = b"\x05ERROR".to_vec();
        body.push(reason.len() as u8);
        body.extend_from_slice(reason.as_bytes());
        assert_eq!(transmit(&mut conn), command_frame(&body));
    }
}
