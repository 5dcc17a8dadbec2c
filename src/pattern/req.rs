//! Request–reply envelopes: the REQ and REP state machines (RFC 28).
//!
//! A request travels as `[request-id]? "" body…`: REQ puts an empty *delimiter* frame in
//! front of the body (and, with `req_correlate`, a 4-byte request id before that), every
//! ROUTER on the way pushes the routing id of the hop it came from in front, and REP strips
//! everything up to and including the first empty frame as the *envelope*, keeps it, and
//! puts it back in front of the reply. The reply then retraces the path hop by hop.
//!
//! [`ReqState`] and [`RepState`] hold just the alternation and the envelopes, keyed by
//! [`PeerId`]; the socket layer asks them whether a call is allowed now and what to put on or
//! take off the wire. No IO, no clock.
//!
//! Call order for a REQ socket: [`ReqState::check_send`], pick a peer,
//! [`ReqState::request_sent`] (which gives the envelope to encode before the body); for each
//! message arriving, [`ReqState::accept_reply`] (drop it when it returns `None`); on receive,
//! [`ReqState::check_recv`] then [`ReqState::reply_taken`] once the reply was handed out.
//!
//! Call order for a REP socket: [`RepState::check_recv`], then
//! [`RepState::request_received`] for each queued request until one is well formed; on send,
//! [`RepState::check_send`] then [`RepState::reply_sent`]; [`RepState::peer_detached`] when a
//! peer leaves.

use std::fmt;

use bytes::Bytes;

use super::peer::PeerId;
use crate::message::Message;

/// Size of a `req_correlate` request id frame (libzmq's `uint32_t`, in host byte order).
pub const REQUEST_ID_BYTES: usize = 4;

/// A call that the request–reply alternation does not allow now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// REQ: a request is outstanding; receive its reply first (or set `req_relaxed`).
    ReplyPending,
    /// REQ: there is nothing to receive before a request was sent.
    NoRequest,
    /// REP: a request was received; send its reply first.
    ReplyOwed,
    /// REP: there is no request to reply to.
    NoRequestToAnswer,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for StateError {}

impl StateError {
    /// A short, static description (for `Error::WrongState`).
    pub fn reason(self) -> &'static str {
        match self {
            StateError::ReplyPending => "a request is outstanding: receive its reply first",
            StateError::NoRequest => "no request was sent: send one first",
            StateError::ReplyOwed => "a request was received: send its reply first",
            StateError::NoRequestToAnswer => "no request to reply to: receive one first",
        }
    }
}

/// Where a REQ socket is in its send/receive cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqPhase {
    /// Free to send a request.
    Idle,
    /// A request went to `peer`; only its reply (carrying `id` when correlating) is taken.
    Awaiting { peer: PeerId, id: u32 },
    /// The reply arrived and waits to be received; further messages are dropped.
    ReplyQueued,
}

/// The envelope a REQ puts in front of a request body: `[request-id]? ""`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestEnvelope {
    frames: [Bytes; 2],
    len: usize,
}

impl RequestEnvelope {
    /// The envelope frames, in wire order.
    pub fn frames(&self) -> &[Bytes] {
        &self.frames[2 - self.len..]
    }
}

/// REQ: strict send/receive alternation, replies taken only from the peer asked.
///
/// ```
/// use ferromq::internals::pattern::{PeerSlab, ReqState};
/// use ferromq::Message;
///
/// let mut peers = PeerSlab::new();
/// let (a, b) = (peers.insert(()), peers.insert(()));
/// let mut req = ReqState::new(false, false, 0);
/// req.check_send().unwrap();
/// let envelope = req.request_sent(a);
/// assert_eq!(envelope.frames(), &[bytes::Bytes::new()]);
/// assert!(req.check_send().is_err()); // strict: wait for the reply
///
/// let reply: Message = ["", "world"].into_iter().collect();
/// assert_eq!(req.accept_reply(b, reply.clone()), None); // not the peer we asked
/// assert_eq!(req.accept_reply(a, reply), Some(Message::from("world")));
/// req.check_recv().unwrap();
/// req.reply_taken();
/// assert!(req.check_send().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct ReqState {
    relaxed: bool,
    correlate: bool,
    phase: ReqPhase,
    /// The id of the last request sent (incremented before each request).
    last_id: u32,
}

impl ReqState {
    /// A REQ state machine. `relaxed` allows a new request while a reply is outstanding
    /// (`ZMQ_REQ_RELAXED`); `correlate` tags requests with an id (`ZMQ_REQ_CORRELATE`),
    /// starting after `id_seed`.
    pub fn new(relaxed: bool, correlate: bool, id_seed: u32) -> Self {
        ReqState {
            relaxed,
            correlate,
            phase: ReqPhase::Idle,
            last_id: id_seed,
        }
    }

    /// Changes `relaxed` and `correlate` (options changed on a live socket): they apply from
    /// the next request or reply.
    pub fn set_flags(&mut self, relaxed: bool, correlate: bool) {
        self.relaxed = relaxed;
        self.correlate = correlate;
    }

    /// Bytes the envelope adds to a request's payload (the request id with `req_correlate`;
    /// the delimiter is empty).
    pub fn envelope_bytes(&self) -> usize {
        if self.correlate { REQUEST_ID_BYTES } else { 0 }
    }

    /// Whether a request may be sent now.
    pub fn check_send(&self) -> Result<(), StateError> {
        match self.phase {
            ReqPhase::Idle => Ok(()),
            _ if self.relaxed => Ok(()),
            _ => Err(StateError::ReplyPending),
        }
    }

    /// Records that a request went to `peer` and returns the envelope to encode before its
    /// body. Any reply to an earlier request is now stale: the caller drops what it queued.
    pub fn request_sent(&mut self, peer: PeerId) -> RequestEnvelope {
        self.last_id = self.last_id.wrapping_add(1);
        self.phase = ReqPhase::Awaiting {
            peer,
            id: self.last_id,
        };
        if self.correlate {
            RequestEnvelope {
                frames: [
                    Bytes::copy_from_slice(&self.last_id.to_ne_bytes()),
                    Bytes::new(),
                ],
                len: 2,
            }
        } else {
            RequestEnvelope {
                frames: [Bytes::new(), Bytes::new()],
                len: 1,
            }
        }
    }

    /// Whether a receive is allowed now (a request is outstanding or its reply queued).
    pub fn check_recv(&self) -> Result<(), StateError> {
        match self.phase {
            ReqPhase::Idle => Err(StateError::NoRequest),
            _ => Ok(()),
        }
    }

    /// Checks a message that arrived from `peer`: the reply body (envelope stripped) when it
    /// answers the outstanding request, `None` to drop it (wrong peer, wrong or missing
    /// request id, no delimiter, or no request outstanding). Accepting a reply makes every
    /// later message a drop until the next request.
    pub fn accept_reply(&mut self, peer: PeerId, message: Message) -> Option<Message> {
        let ReqPhase::Awaiting { peer: asked, id } = self.phase else {
            return None;
        };
        if peer != asked {
            return None;
        }
        let frames = message.frames();
        let mut at = 0;
        if self.correlate {
            let tag = frames.first()?;
            if tag.as_ref() != id.to_ne_bytes() {
                return None;
            }
            at = 1;
        }
        // The delimiter must be followed by at least one body frame, as in libzmq.
        if frames.len() < at + 2 || !frames[at].is_empty() {
            return None;
        }
        self.phase = ReqPhase::ReplyQueued;
        Some(message.without_front(at + 1))
    }

    /// Records that the reply was handed to the application: the next call must be a send.
    pub fn reply_taken(&mut self) {
        self.phase = ReqPhase::Idle;
    }

    /// The peer the outstanding request went to, if a reply is still awaited.
    pub fn awaited_peer(&self) -> Option<PeerId> {
        match self.phase {
            ReqPhase::Awaiting { peer, .. } => Some(peer),
            _ => None,
        }
    }
}

/// Where a REP socket is in its receive/send cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RepPhase {
    /// Free to receive a request.
    Idle,
    /// A request from `peer` (`None` once that peer left) awaits its reply.
    Replying { peer: Option<PeerId> },
}

/// REP: receive a request, send its reply, in strict alternation; the envelope of each
/// request is kept and restored on the reply.
///
/// ```
/// use ferromq::internals::pattern::{PeerSlab, RepState};
/// use ferromq::Message;
///
/// let mut peers = PeerSlab::new();
/// let client = peers.insert(());
/// let mut rep = RepState::new();
/// rep.check_recv().unwrap();
/// let request: Message = ["hop", "", "hello"].into_iter().collect();
/// assert_eq!(rep.request_received(client, request), Some(Message::from("hello")));
/// let (to, envelope) = rep.check_send().unwrap();
/// assert_eq!(to, Some(client));
/// assert_eq!(envelope, &["hop", ""]);
/// rep.reply_sent();
/// assert!(rep.check_send().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct RepState {
    phase: RepPhase,
    /// The saved envelope of the request being answered (reused between requests).
    envelope: Vec<Bytes>,
}

impl Default for RepState {
    fn default() -> Self {
        Self::new()
    }
}

impl RepState {
    /// A REP state machine waiting for its first request.
    pub fn new() -> Self {
        RepState {
            phase: RepPhase::Idle,
            envelope: Vec::new(),
        }
    }

    /// Whether a receive is allowed now.
    pub fn check_recv(&self) -> Result<(), StateError> {
        match self.phase {
            RepPhase::Idle => Ok(()),
            RepPhase::Replying { .. } => Err(StateError::ReplyOwed),
        }
    }

    /// Takes a request from `peer`: saves its envelope (every frame up to and including the
    /// first empty one) and returns the body. A request without a delimiter followed by a
    /// body is malformed: `None`, nothing saved, the caller drops it (as libzmq does).
    pub fn request_received(&mut self, peer: PeerId, message: Message) -> Option<Message> {
        if !Self::is_request(&message) {
            return None;
        }
        let frames = message.frames();
        let delimiter = frames.iter().position(Bytes::is_empty)?;
        self.envelope.clear();
        self.envelope.extend_from_slice(&frames[..=delimiter]);
        self.phase = RepPhase::Replying { peer: Some(peer) };
        Some(message.without_front(delimiter + 1))
    }

    /// Whether `message` is a well-formed request: an envelope ending in an empty delimiter,
    /// then a body of at least one frame ([`RepState::request_received`] drops the rest).
    pub fn is_request(message: &Message) -> bool {
        let frames = message.frames();
        frames
            .iter()
            .position(Bytes::is_empty)
            .is_some_and(|delimiter| delimiter + 1 < frames.len())
    }

    /// Whether a reply may be sent now, and if so where: the requesting peer (`None` when it
    /// has gone, so the reply is dropped) and the envelope to put in front of the body.
    pub fn check_send(&self) -> Result<(Option<PeerId>, &[Bytes]), StateError> {
        match self.phase {
            RepPhase::Replying { peer } => Ok((peer, &self.envelope)),
            RepPhase::Idle => Err(StateError::NoRequestToAnswer),
        }
    }

    /// Records that the reply was sent (or dropped): the next call must be a receive.
    pub fn reply_sent(&mut self) {
        self.phase = RepPhase::Idle;
        self.envelope.clear();
    }

    /// A peer left: if its request is being answered, the reply will be dropped.
    pub fn peer_detached(&mut self, gone: PeerId) {
        if let RepPhase::Replying { peer } = &mut self.phase
            && *peer == Some(gone)
        {
            *peer = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::peer::test_peer_ids as ids;

    fn msg(frames: &[&'static str]) -> Message {
        frames
            .iter()
            .map(|f| Bytes::from_static(f.as_bytes()))
            .collect()
    }

    #[test]
    fn req_strict_alternation_refuses_second_send_and_early_recv() {
        let p = ids(1);
        let mut req = ReqState::new(false, false, 0);
        assert_eq!(req.check_recv(), Err(StateError::NoRequest));
        req.check_send().expect("idle");
        req.request_sent(p[0]);
        assert_eq!(req.check_send(), Err(StateError::ReplyPending));
        assert_eq!(req.check_recv(), Ok(()));
        assert_eq!(req.accept_reply(p[0], msg(&["", "r"])), Some(msg(&["r"])));
        assert_eq!(req.check_send(), Err(StateError::ReplyPending));
        req.reply_taken();
        assert_eq!(req.check_send(), Ok(()));
        assert_eq!(req.check_recv(), Err(StateError::NoRequest));
    }

    #[test]
    fn req_plain_envelope_is_one_empty_delimiter() {
        let p = ids(1);
        let mut req = ReqState::new(false, false, 0);
        assert_eq!(req.request_sent(p[0]).frames(), &[Bytes::new()]);
    }

    #[test]
    fn req_drops_reply_from_other_peer() {
        let p = ids(2);
        let mut req = ReqState::new(false, false, 0);
        req.request_sent(p[0]);
        assert_eq!(req.accept_reply(p[1], msg(&["", "x"])), None);
        assert_eq!(req.awaited_peer(), Some(p[0]));
    }

    #[test]
    fn req_drops_reply_without_delimiter_or_body() {
        let p = ids(1);
        let mut req = ReqState::new(false, false, 0);
        req.request_sent(p[0]);
        assert_eq!(req.accept_reply(p[0], msg(&["x"])), None);
        assert_eq!(req.accept_reply(p[0], msg(&["x", "", "y"])), None);
        assert_eq!(req.accept_reply(p[0], msg(&[""])), None);
        assert_eq!(
            req.accept_reply(p[0], msg(&["", "a", "b"])),
            Some(msg(&["a", "b"]))
        );
    }

    #[test]
    fn req_accepts_only_one_reply_per_request() {
        let p = ids(1);
        let mut req = ReqState::new(false, false, 0);
        req.request_sent(p[0]);
        assert!(req.accept_reply(p[0], msg(&["", "1"])).is_some());
        assert_eq!(req.accept_reply(p[0], msg(&["", "2"])), None);
    }

    #[test]
    fn req_drops_everything_while_idle() {
        let p = ids(1);
        let mut req = ReqState::new(true, true, 0);
        assert_eq!(req.accept_reply(p[0], msg(&["", "x"])), None);
    }

    #[test]
    fn req_relaxed_allows_resend_and_moves_to_new_peer() {
        let p = ids(2);
        let mut req = ReqState::new(true, false, 0);
        req.request_sent(p[0]);
        assert_eq!(req.check_send(), Ok(()));
        req.request_sent(p[1]);
        assert_eq!(req.accept_reply(p[0], msg(&["", "late"])), None);
        assert_eq!(
            req.accept_reply(p[1], msg(&["", "new"])),
            Some(msg(&["new"]))
        );
    }

    #[test]
    fn req_correlate_prefixes_native_endian_id_and_increments_it() {
        let p = ids(1);
        let mut req = ReqState::new(true, true, 41);
        let first = req.request_sent(p[0]);
        assert_eq!(
            first.frames(),
            &[Bytes::copy_from_slice(&42u32.to_ne_bytes()), Bytes::new()]
        );
        let second = req.request_sent(p[0]);
        assert_eq!(
            second.frames()[0],
            Bytes::copy_from_slice(&43u32.to_ne_bytes())
        );
    }

    #[test]
    fn req_correlate_drops_reply_to_old_request_from_same_peer() {
        let p = ids(1);
        let mut req = ReqState::new(true, true, u32::MAX);
        let old = req.request_sent(p[0]).frames()[0].clone();
        let new = req.request_sent(p[0]).frames()[0].clone();
        let reply = |id: &Bytes| -> Message {
            [id.clone(), Bytes::new(), Bytes::from_static(b"r")]
                .into_iter()
                .collect()
        };
        assert_eq!(req.accept_reply(p[0], reply(&old)), None);
        assert_eq!(req.accept_reply(p[0], msg(&["", "r"])), None);
        assert_eq!(req.accept_reply(p[0], reply(&new)), Some(msg(&["r"])));
    }

    #[test]
    fn req_correlate_id_wraps() {
        let p = ids(1);
        let mut req = ReqState::new(false, true, u32::MAX);
        let envelope = req.request_sent(p[0]);
        assert_eq!(envelope.frames()[0], Bytes::copy_from_slice(&[0, 0, 0, 0]));
    }

    #[test]
    fn rep_saves_envelope_up_to_first_delimiter() {
        let p = ids(1);
        let mut rep = RepState::new();
        let body = rep.request_received(p[0], msg(&["id1", "id2", "", "a", "", "b"]));
        assert_eq!(body, Some(msg(&["a", "", "b"])));
        let (peer, envelope) = rep.check_send().expect("replying");
        assert_eq!(peer, Some(p[0]));
        assert_eq!(envelope, &msg(&["id1", "id2", ""]).into_frames()[..]);
    }

    #[test]
    fn rep_drops_malformed_request_and_stays_idle() {
        let p = ids(1);
        let mut rep = RepState::new();
        assert_eq!(rep.request_received(p[0], msg(&["no", "delimiter"])), None);
        assert_eq!(rep.request_received(p[0], msg(&["id", ""])), None);
        assert_eq!(rep.check_recv(), Ok(()));
        assert_eq!(rep.check_send(), Err(StateError::NoRequestToAnswer));
    }

    #[test]
    fn rep_strict_alternation() {
        let p = ids(1);
        let mut rep = RepState::new();
        assert_eq!(rep.check_send(), Err(StateError::NoRequestToAnswer));
        assert!(rep.request_received(p[0], msg(&["", "q"])).is_some());
        assert_eq!(rep.check_recv(), Err(StateError::ReplyOwed));
        rep.reply_sent();
        assert_eq!(rep.check_recv(), Ok(()));
        assert_eq!(rep.check_send(), Err(StateError::NoRequestToAnswer));
    }

    #[test]
    fn rep_reply_to_departed_peer_has_no_destination() {
        let p = ids(2);
        let mut rep = RepState::new();
        rep.request_received(p[0], msg(&["", "q"]));
        rep.peer_detached(p[1]);
        assert_eq!(rep.check_send().map(|(to, _)| to), Ok(Some(p[0])));
        rep.peer_detached(p[0]);
        assert_eq!(rep.check_send().map(|(to, _)| to), Ok(None));
    }

    #[test]
    fn state_error_displays_its_reason() {
        assert_eq!(
            StateError::ReplyPending.to_string(),
            "a request is outstanding: receive its reply first"
        );
    }
}
