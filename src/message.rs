//! [`Message`]: one ZeroMQ message, made of one or more frames.

use crate::wire::Metadata;
use bytes::Bytes;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A multipart ZeroMQ message: an ordered list of frames, delivered all together or not at all.
///
/// Frames are [`Bytes`], so cloning a message, splitting it or queueing it for several peers
/// never copies a payload. A single-frame message, the common case, is stored without a `Vec`
/// (no heap allocation besides the payload itself).
///
/// ```
/// use ferromq::Message;
///
/// let single = Message::from("hello");
/// assert_eq!(single.len(), 1);
///
/// let mut multi = Message::new();
/// multi.push_back("topic");
/// multi.push_back(vec![1u8, 2, 3]);
/// assert_eq!(multi.len(), 2);
/// assert_eq!(multi.frame(1).map(|f| f.as_ref()), Some(&[1u8, 2, 3][..]));
/// ```
///
/// A received message may also carry its connection's properties (libzmq's
/// `zmq_msg_gets`): see [`Message::property`]. They take no part in equality or hashing.
#[derive(Clone, Default)]
pub struct Message {
    frames: Frames,
    /// What the connection it came from knows of its peer, when a security mechanism or an
    /// authenticator ran on it (one shared allocation per connection).
    properties: Option<Arc<Properties>>,
}

/// What messages from one peer carry: set once per connection by the handshake.
#[derive(Debug, Clone, Default)]
pub(crate) struct Properties {
    /// The user id the authenticator gave the peer (empty: none).
    pub user_id: Bytes,
    /// The peer's IP address ("" over IPC).
    pub peer_address: String,
    /// The peer's READY (or INITIATE) properties.
    pub metadata: Metadata,
    /// Properties the authenticator added.
    pub zap: Vec<(String, Bytes)>,
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.frames == other.frames
    }
}

impl Eq for Message {}

impl Hash for Message {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.frames.hash(state);
    }
}

#[derive(Clone, Default, PartialEq, Eq, Hash)]
enum Frames {
    #[default]
    Empty,
    One(Bytes),
    Many(Vec<Bytes>),
}

impl Message {
    /// An empty message with no frames yet; add frames with [`Message::push_back`].
    pub const fn new() -> Self {
        Message {
            frames: Frames::Empty,
            properties: None,
        }
    }

    /// A property of the connection this message arrived on, as libzmq's `zmq_msg_gets`
    /// reads it: `"User-Id"` (what the authenticator said), `"Peer-Address"` (the peer's IP
    /// address), any property the authenticator added, or any property of the peer's READY
    /// (`"Socket-Type"`, `"Identity"`, application metadata). Names compare
    /// case-insensitively.
    ///
    /// Messages carry properties when their connection used PLAIN or CURVE or was checked by
    /// an authenticator; on other NULL connections this returns `None` (see
    /// spec/security.md: attaching them costs every message of the fast path).
    pub fn property(&self, name: &str) -> Option<Bytes> {
        let p = self.properties.as_ref()?;
        if name.eq_ignore_ascii_case("User-Id") {
            return (!p.user_id.is_empty()).then(|| p.user_id.clone());
        }
        if name.eq_ignore_ascii_case("Peer-Address") {
            return Some(Bytes::copy_from_slice(p.peer_address.as_bytes()));
        }
        p.zap
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .or_else(|| p.metadata.get(name))
    }

    /// The user id the server's authenticator gave the sending peer (`"User-Id"`).
    pub fn user_id(&self) -> Option<Bytes> {
        self.property("User-Id")
    }

    /// The sending peer's IP address (`"Peer-Address"`; empty over IPC).
    pub fn peer_address(&self) -> Option<&str> {
        self.properties.as_ref().map(|p| p.peer_address.as_str())
    }

    pub(crate) fn set_properties(&mut self, properties: Arc<Properties>) {
        self.properties = Some(properties);
    }

    /// The message without its first `n` frames (a single remaining frame needs no
    /// allocation), still carrying the properties of the connection it arrived on: REQ and
    /// REP strip envelopes this way, and `zmq_msg_gets` answers on the body in libzmq too.
    pub(crate) fn without_front(mut self, n: usize) -> Message {
        let properties = self.properties.take();
        let mut frames = self.into_frames();
        let mut body = if frames.len() == n + 1 {
            Message::from(frames.pop().expect("length checked"))
        } else {
            frames.drain(..n.min(frames.len()));
            Message::from(frames)
        };
        body.properties = properties;
        body
    }

    /// The frames alone: what a connection with no encoding passes on, since the properties
    /// of the connection a message arrived on are not part of it.
    pub(crate) fn without_properties(mut self) -> Message {
        self.properties = None;
        self
    }

    /// Number of frames.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.frames {
            Frames::Empty => 0,
            Frames::One(_) => 1,
            Frames::Many(v) => v.len(),
        }
    }

    /// True when the message has no frames (an empty *frame* still counts as a frame).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frames, in order.
    #[inline]
    pub fn frames(&self) -> &[Bytes] {
        match &self.frames {
            Frames::Empty => &[],
            Frames::One(b) => std::slice::from_ref(b),
            Frames::Many(v) => v,
        }
    }

    /// Frame `index`, if there is one.
    #[inline]
    pub fn frame(&self, index: usize) -> Option<&Bytes> {
        self.frames().get(index)
    }

    /// The first frame, if any.
    #[inline]
    pub fn first(&self) -> Option<&Bytes> {
        self.frames().first()
    }

    /// The last frame, if any.
    #[inline]
    pub fn last(&self) -> Option<&Bytes> {
        self.frames().last()
    }

    /// Iterates over the frames.
    pub fn iter(&self) -> std::slice::Iter<'_, Bytes> {
        self.frames().iter()
    }

    /// Sum of the frame sizes in bytes.
    #[inline]
    pub fn byte_len(&self) -> usize {
        // The one-frame case without a loop: the engine asks once or twice per message.
        match &self.frames {
            Frames::Empty => 0,
            Frames::One(frame) => frame.len(),
            Frames::Many(frames) => frames.iter().map(Bytes::len).sum(),
        }
    }

    /// Appends a frame at the end.
    pub fn push_back(&mut self, frame: impl Into<Bytes>) {
        let frame = frame.into();
        self.frames = match std::mem::take(&mut self.frames) {
            Frames::Empty => Frames::One(frame),
            Frames::One(first) => Frames::Many(vec![first, frame]),
            Frames::Many(mut v) => {
                v.push(frame);
                Frames::Many(v)
            }
        };
    }

    /// Inserts a frame at the front (used for routing envelopes).
    pub fn push_front(&mut self, frame: impl Into<Bytes>) {
        let frame = frame.into();
        self.frames = match std::mem::take(&mut self.frames) {
            Frames::Empty => Frames::One(frame),
            Frames::One(only) => Frames::Many(vec![frame, only]),
            Frames::Many(mut v) => {
                v.insert(0, frame);
                Frames::Many(v)
            }
        };
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        match std::mem::take(&mut self.frames) {
            Frames::Empty => None,
            Frames::One(only) => Some(only),
            Frames::Many(mut v) => {
                let first = if v.is_empty() {
                    None
                } else {
                    Some(v.remove(0))
                };
                self.frames = Self::from_vec(v).frames;
                first
            }
        }
    }

    /// Removes and returns the last frame.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        match std::mem::take(&mut self.frames) {
            Frames::Empty => None,
            Frames::One(only) => Some(only),
            Frames::Many(mut v) => {
                let last = v.pop();
                self.frames = Self::from_vec(v).frames;
                last
            }
        }
    }

    /// Splits the message at `index`: `self` keeps frames `[0, index)`, the returned message
    /// holds `[index, len)`.
    ///
    /// # Panics
    /// When `index > self.len()`.
    pub fn split_off(&mut self, index: usize) -> Message {
        let properties = self.properties.take();
        let mut all = std::mem::take(self).into_frames();
        let tail = all.split_off(index);
        *self = Self::from_vec(all);
        self.properties = properties.clone();
        let mut tail = Self::from_vec(tail);
        tail.properties = properties;
        tail
    }

    /// Consumes the message and returns its frames.
    pub fn into_frames(self) -> Vec<Bytes> {
        match self.frames {
            Frames::Empty => Vec::new(),
            Frames::One(b) => vec![b],
            Frames::Many(v) => v,
        }
    }

    fn from_vec(mut v: Vec<Bytes>) -> Message {
        let frames = match v.len() {
            0 => Frames::Empty,
            1 => Frames::One(v.pop().expect("length checked")),
            _ => Frames::Many(v),
        };
        Message {
            frames,
            properties: None,
        }
    }
}

impl From<Bytes> for Message {
    #[inline]
    fn from(frame: Bytes) -> Self {
        Message {
            frames: Frames::One(frame),
            properties: None,
        }
    }
}

impl From<Vec<u8>> for Message {
    #[inline]
    fn from(frame: Vec<u8>) -> Self {
        Bytes::from(frame).into()
    }
}

impl From<&[u8]> for Message {
    /// Copies the bytes. Written as `to_vec` rather than `Bytes::copy_from_slice`, which is
    /// the same copy behind a call that a dependent crate's stock build does not inline.
    #[inline]
    fn from(frame: &[u8]) -> Self {
        Bytes::from(frame.to_vec()).into()
    }
}

impl<const N: usize> From<&[u8; N]> for Message {
    /// Copies the bytes, like `From<&[u8]>`.
    #[inline]
    fn from(frame: &[u8; N]) -> Self {
        Message::from(&frame[..])
    }
}

impl From<&str> for Message {
    /// Copies the bytes, like `From<&[u8]>`.
    #[inline]
    fn from(frame: &str) -> Self {
        Message::from(frame.as_bytes())
    }
}

impl From<String> for Message {
    fn from(frame: String) -> Self {
        Bytes::from(frame).into()
    }
}

impl From<Vec<Bytes>> for Message {
    fn from(frames: Vec<Bytes>) -> Self {
        Message::from_vec(frames)
    }
}

impl<T: Into<Bytes>> FromIterator<T> for Message {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Message::from_vec(iter.into_iter().map(Into::into).collect())
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Bytes;
    type IntoIter = std::slice::Iter<'a, Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for Message {
    type Item = Bytes;
    type IntoIter = std::vec::IntoIter<Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_frames().into_iter()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.frames()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_cannot_supply_user_id_or_peer_address_through_its_metadata() {
        let mut metadata = Metadata::new();
        metadata.insert("Socket-Type", "PUSH");
        metadata.insert("User-Id", "root");
        metadata.insert("Peer-Address", "6.6.6.6");
        let mut m = Message::from("x");
        m.set_properties(Arc::new(Properties {
            user_id: Bytes::new(),
            peer_address: "10.0.0.7".to_owned(),
            metadata,
            zap: vec![("Tier".to_owned(), Bytes::from("gold"))],
        }));
        // No user id from the authenticator: none at all, whatever the peer's READY said.
        assert_eq!(m.property("user-id"), None);
        assert_eq!(m.user_id(), None);
        assert_eq!(m.property("Peer-Address"), Some(Bytes::from("10.0.0.7")));
        assert_eq!(m.peer_address(), Some("10.0.0.7"));
        // The peer's other properties and the authenticator's still answer.
        assert_eq!(m.property("socket-type"), Some(Bytes::from("PUSH")));
        assert_eq!(m.property("tier"), Some(Bytes::from("gold")));
    }

    #[test]
    fn single_frame_roundtrips_through_push_and_pop() {
        let mut m = Message::new();
        assert!(m.is_empty());
        m.push_back("a");
        assert_eq!(m.len(), 1);
        m.push_front("z");
        m.push_back("b");
        assert_eq!(
            m.frames(),
            &[Bytes::from("z"), Bytes::from("a"), Bytes::from("b")]
        );
        assert_eq!(m.pop_front(), Some(Bytes::from("z")));
        assert_eq!(m.pop_back(), Some(Bytes::from("b")));
        assert_eq!(m.len(), 1);
        assert_eq!(m.pop_back(), Some(Bytes::from("a")));
        assert_eq!(m.pop_back(), None);
        assert!(m.is_empty());
    }

    #[test]
    fn split_off_divides_frames() {
        let mut m: Message = ["id", "", "body"].into_iter().collect();
        let body = m.split_off(2);
        assert_eq!(m.len(), 2);
        assert_eq!(body.frames(), &[Bytes::from("body")]);
        assert_eq!(m.byte_len(), 2);
    }
}
