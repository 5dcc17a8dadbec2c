//! [`Message`]: one ZeroMQ message, made of one or more frames.

use crate::buffer_pool;
use crate::frame_pool::FrameBuf;
use crate::wire::Metadata;
use crate::wire::frame::WRITE_FLATTEN_THRESHOLD_BYTES;
use bytes::Bytes;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use once_cell::race::OnceBox;

/// A multipart ZeroMQ message: an ordered list of frames, delivered all together or not at all.
///
/// Frames are [`Bytes`], so cloning a message, splitting it or queueing it for several peers
/// never copies a payload. A single-frame message, the common case, is stored without a `Vec`
/// (no heap allocation besides the payload itself). A frame copied from a slice
/// (`Message::from(&[u8])`, `&str`, `&[u8; N]`) is kept in the form a send encodes cheapest:
/// up to 23 bytes inside the message (no heap allocation at all), under 4 KiB in a plain
/// allocation. It becomes a `Bytes` the first time something borrows it as one
/// ([`Message::frames`] and its kin) or clones it; clones of one kept inside the message copy
/// its few bytes instead.
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
// `repr(C)` with the properties first puts the frame's 32-byte `Bytes` (or copy) at offset 16,
// where the compiler's 16-byte copies of a moved message line up with the two stores that
// built it; at offset 8, as the default layout had it, each such load spanned two stores and
// waited for both to reach the cache (spec/performance.md, "A message's frame at offset 16").
#[repr(C)]
pub struct Message {
    /// What the connection it came from knows of its peer, when a security mechanism or an
    /// authenticator ran on it (one shared allocation per connection).
    properties: Option<Arc<Properties>>,
    frames: Frames,
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
        // By content: a copied frame equals the same bytes in a `Bytes`.
        self.frame_slices().eq(other.frame_slices())
    }
}

impl Eq for Message {}

impl Hash for Message {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for frame in self.frame_slices() {
            frame.hash(state);
        }
    }
}

#[derive(Default)]
// A tag as wide as a pointer, so that every variant's fields sit at 8-byte offsets and a
// moved message is copied in whole words (see [`InlineBytes`], and `Error`'s tag).
#[repr(u64)]
enum Frames {
    #[default]
    Empty,
    One(Bytes),
    Inline(InlineFrame),
    Boxed(BoxedFrame),
    Many(Vec<Bytes>),
}

/// The most bytes a frame copied from a slice is stored inside its message rather than in a
/// heap allocation of its own. A copied send of a small payload then allocates nothing (a
/// 16-byte send cost 678 instructions with its allocation and free, about 130 of them the
/// allocator's); libzmq stores bodies up to 33 bytes in its messages for the same reason.
/// 23 and a length byte are three words, beside the lazily made `Bytes`'s pointer: as big as a
/// `Bytes`, so `Message` stays 48 bytes.
const INLINE_FRAME_MAX_BYTES: usize = 23;

/// The one frame of a message, copied from a slice of at most [`INLINE_FRAME_MAX_BYTES`]
/// into the message itself: no allocation.
struct InlineFrame {
    data: InlineBytes,
    /// The frame as `Bytes`, made (and boxed, to keep the message small) the first time a
    /// caller borrows it as one: [`Message::frames`] and its kin return `&Bytes`.
    shared: OnceBox<Bytes>,
}

/// An inline frame's bytes (up to 23) and, in the last byte, its length: three aligned words,
/// written as words. A send moves its message several times on the way to the peer's queue,
/// and the compiler copies it in pieces the shape of its fields. With the bytes at offset 1
/// after a one-byte length, those pieces (4, 2 and 1 bytes, then 8 bytes across the end of
/// the copy of the payload) did not line up with the stores that had just built the message,
/// and each load waited for them to reach the cache: `perf annotate` put a third of the
/// multi-thread 16-byte sender's time in its send loop on two such loads.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct InlineBytes([u8; INLINE_FRAME_MAX_BYTES + 1]);

impl InlineBytes {
    /// `bytes` (at most [`INLINE_FRAME_MAX_BYTES`]) read in at most two loads per word
    /// and stored as whole words, not byte by byte.
    #[inline]
    fn new(bytes: &[u8]) -> InlineBytes {
        let n = bytes.len();
        debug_assert!(n <= INLINE_FRAME_MAX_BYTES);
        let word = |from: usize| load_le(&bytes[from.min(n)..(from + 8).min(n)]);
        let last = word(16) | (n as u64) << 56;
        let mut data = [0; INLINE_FRAME_MAX_BYTES + 1];
        data[..8].copy_from_slice(&word(0).to_le_bytes());
        data[8..16].copy_from_slice(&word(8).to_le_bytes());
        data[16..].copy_from_slice(&last.to_le_bytes());
        InlineBytes(data)
    }

    #[inline]
    fn as_slice(&self) -> &[u8] {
        &self.0[..self.len()]
    }

    #[inline]
    fn len(&self) -> usize {
        usize::from(self.0[INLINE_FRAME_MAX_BYTES])
    }
}

/// Up to 8 bytes as a little-endian word, in at most two loads that may overlap (as `memcpy`
/// copies short lengths), so nothing goes through memory a byte at a time.
#[inline]
fn load_le(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    match n {
        8.. => u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
        4..=7 => {
            let low = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
            let high = u32::from_le_bytes(bytes[n - 4..].try_into().expect("4 bytes"));
            u64::from(low) | u64::from(high) << (8 * (n - 4))
        }
        2..=3 => {
            let low = u16::from_le_bytes(bytes[..2].try_into().expect("2 bytes"));
            let high = u16::from_le_bytes(bytes[n - 2..].try_into().expect("2 bytes"));
            u64::from(low) | u64::from(high) << (8 * (n - 2))
        }
        1 => u64::from(bytes[0]),
        _ => 0,
    }
}

/// The one frame of a message, copied from a slice shorter than
/// [`WRITE_FLATTEN_THRESHOLD_BYTES`] (which the encoder copies again rather than queueing
/// by reference) into a buffer of `frame_pool` (up to 1 KiB) or an allocation of its own,
/// both made and freed in the caller's own build: a stock build does not inline
/// `Bytes::from(Vec<u8>)` (30 instructions and a call per send, and a vtable call to drop
/// it).
struct BoxedFrame {
    data: FrameBuf,
    /// As [`InlineFrame::shared`].
    shared: OnceBox<Bytes>,
}

/// The `Bytes` a copied frame lends out, made from `bytes` on first use.
fn lent<'a>(shared: &'a OnceBox<Bytes>, bytes: &[u8]) -> &'a Bytes {
    shared.get_or_init(|| Box::new(Bytes::copy_from_slice(bytes)))
}

impl InlineFrame {
    #[inline]
    fn as_slice(&self) -> &[u8] {
        self.data.as_slice()
    }

    fn into_bytes(self) -> Bytes {
        match self.shared.get() {
            Some(shared) => shared.clone(),
            None => Bytes::copy_from_slice(self.data.as_slice()),
        }
    }
}

impl BoxedFrame {
    fn into_bytes(self) -> Bytes {
        match self.shared.get() {
            Some(shared) => shared.clone(),
            // No copy: the `Bytes` owns the buffer and returns it to the pool when dropped.
            None => Bytes::from_owner(self.data),
        }
    }
}

impl Frames {
    /// A single frame copied from `bytes`, in the form that fits its size: built in place,
    /// with no `Option` around it to move it through (20 instructions per send).
    #[inline]
    fn copied(bytes: &[u8]) -> Frames {
        if bytes.len() <= INLINE_FRAME_MAX_BYTES {
            Frames::Inline(InlineFrame {
                data: InlineBytes::new(bytes),
                shared: OnceBox::new(),
            })
        } else if bytes.len() < WRITE_FLATTEN_THRESHOLD_BYTES {
            Frames::Boxed(BoxedFrame {
                data: FrameBuf::copy(bytes),
                shared: OnceBox::new(),
            })
        } else {
            // Queued by reference when sent: a `Bytes` from the start, in a buffer that
            // returns to the pool once written (see `buffer_pool`).
            Frames::One(buffer_pool::POOL.copy(bytes))
        }
    }

    /// The bytes of a copied frame.
    #[inline]
    fn copied_bytes(&self) -> Option<&[u8]> {
        match self {
            Frames::Inline(frame) => Some(frame.as_slice()),
            Frames::Boxed(frame) => Some(&frame.data),
            _ => None,
        }
    }

    /// A single frame as one `Bytes` (a copied frame's moved or lent one); other forms are
    /// handed back.
    fn into_one(self) -> Result<Bytes, Frames> {
        match self {
            Frames::One(frame) => Ok(frame),
            Frames::Inline(frame) => Ok(frame.into_bytes()),
            Frames::Boxed(frame) => Ok(frame.into_bytes()),
            other => Err(other),
        }
    }
}

impl Clone for Frames {
    /// Shares `Bytes` frames. A frame copied into the message is copied again; a boxed copy
    /// is made a `Bytes` once instead, which this clone and every later one share.
    fn clone(&self) -> Self {
        match self {
            Frames::Empty => Frames::Empty,
            Frames::One(frame) => Frames::One(frame.clone()),
            Frames::Inline(frame) => Frames::Inline(InlineFrame {
                data: frame.data,
                shared: OnceBox::new(),
            }),
            Frames::Boxed(frame) => Frames::One(lent(&frame.shared, &frame.data).clone()),
            Frames::Many(frames) => Frames::Many(frames.clone()),
        }
    }
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
            Frames::One(_) | Frames::Inline(_) | Frames::Boxed(_) => 1,
            Frames::Many(v) => v.len(),
        }
    }

    /// True when the message has no frames (an empty *frame* still counts as a frame).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frames, in order.
    ///
    /// A frame the message copied from a slice (`Message::from(&[u8])`, `&str`, …) is made a
    /// `Bytes` the first time it is lent: one allocation and a copy, once per message. To read
    /// frames without that, use [`Message::frame_slices`] or [`Message::first_slice`].
    #[inline]
    pub fn frames(&self) -> &[Bytes] {
        match &self.frames {
            Frames::Empty => &[],
            Frames::One(b) => std::slice::from_ref(b),
            Frames::Inline(frame) => std::slice::from_ref(lent(&frame.shared, frame.as_slice())),
            Frames::Boxed(frame) => std::slice::from_ref(lent(&frame.shared, &frame.data)),
            Frames::Many(v) => v,
        }
    }

    /// The one frame of a message copied from a slice (see [`InlineFrame`] and
    /// [`BoxedFrame`]), without making a `Bytes` of it: what encoding it takes.
    #[inline]
    pub(crate) fn copied_frame(&self) -> Option<&[u8]> {
        self.frames.copied_bytes()
    }

    /// The message with a copied frame moved into a `Bytes` of its own (at most one
    /// allocation, where [`Message::frames`] would box that `Bytes` too): for a message about
    /// to be queued behind an envelope, which borrows its frames as `Bytes`.
    #[inline]
    pub(crate) fn into_shared(mut self) -> Message {
        // Other forms leave untouched: moved through `into_one`, a `Bytes` frame cost an
        // inproc send 68 instructions back when every inproc message passed here.
        if let Frames::Inline(_) | Frames::Boxed(_) = self.frames
            && let Ok(frame) = std::mem::take(&mut self.frames).into_one()
        {
            self.frames = Frames::One(frame);
        }
        self
    }

    /// A clone whose frames are all `Bytes`: a copied frame is made one once, and every such
    /// clone shares it. For a fan-out's inproc receivers, which borrow frames as `Bytes`.
    pub(crate) fn shared_clone(&self) -> Message {
        match &self.frames {
            Frames::Inline(_) | Frames::Boxed(_) => Message {
                frames: Frames::One(self.frames()[0].clone()),
                properties: self.properties.clone(),
            },
            _ => self.clone(),
        }
    }

    /// The frames as byte slices, in order. Unlike [`Message::frames`], this never makes a
    /// `Bytes` of a frame the message copied from a slice, so reading a received message
    /// this way costs no allocation, whatever transport and form it came in.
    ///
    /// ```
    /// use ferromq::Message;
    ///
    /// let mut message = Message::from("topic");
    /// message.push_back(vec![1u8, 2, 3]);
    /// let frames: Vec<&[u8]> = message.frame_slices().collect();
    /// assert_eq!(frames, [&b"topic"[..], &[1, 2, 3][..]]);
    /// ```
    #[inline]
    pub fn frame_slices(&self) -> impl Iterator<Item = &[u8]> {
        let copied = self.frames.copied_bytes();
        let shared = if copied.is_some() { &[] } else { self.frames() };
        copied
            .into_iter()
            .chain(shared.iter().map(|frame| &frame[..]))
    }

    /// The first frame as a byte slice (a topic, a request), if any: like
    /// [`Message::first`] without making a `Bytes` of a copied frame (see
    /// [`Message::frame_slices`]).
    ///
    /// ```
    /// use ferromq::Message;
    ///
    /// assert_eq!(Message::from(&[7u8; 64][..]).first_slice(), Some(&[7u8; 64][..]));
    /// assert_eq!(Message::new().first_slice(), None);
    /// ```
    #[inline]
    pub fn first_slice(&self) -> Option<&[u8]> {
        match self.frames.copied_bytes() {
            Some(bytes) => Some(bytes),
            None => self.frames().first().map(|frame| &frame[..]),
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
        // The one-frame cases without a loop: the engine asks two or three times per message.
        match &self.frames {
            Frames::Empty => 0,
            Frames::One(frame) => frame.len(),
            Frames::Inline(frame) => frame.data.len(),
            Frames::Boxed(frame) => frame.data.len(),
            Frames::Many(frames) => frames.iter().map(Bytes::len).sum(),
        }
    }

    /// Appends a frame at the end.
    pub fn push_back(&mut self, frame: impl Into<Bytes>) {
        let frame = frame.into();
        self.frames = match std::mem::take(&mut self.frames).into_one() {
            Ok(first) => Frames::Many(vec![first, frame]),
            Err(Frames::Many(mut v)) => {
                v.push(frame);
                Frames::Many(v)
            }
            Err(_empty) => Frames::One(frame),
        };
    }

    /// Inserts a frame at the front (used for routing envelopes).
    pub fn push_front(&mut self, frame: impl Into<Bytes>) {
        let frame = frame.into();
        self.frames = match std::mem::take(&mut self.frames).into_one() {
            Ok(only) => Frames::Many(vec![frame, only]),
            Err(Frames::Many(mut v)) => {
                v.insert(0, frame);
                Frames::Many(v)
            }
            Err(_empty) => Frames::One(frame),
        };
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        match std::mem::take(&mut self.frames).into_one() {
            Ok(only) => Some(only),
            Err(Frames::Many(mut v)) => {
                let first = if v.is_empty() {
                    None
                } else {
                    Some(v.remove(0))
                };
                self.frames = Self::from_vec(v).frames;
                first
            }
            Err(_empty) => None,
        }
    }

    /// Removes and returns the last frame.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        match std::mem::take(&mut self.frames).into_one() {
            Ok(only) => Some(only),
            Err(Frames::Many(mut v)) => {
                let last = v.pop();
                self.frames = Self::from_vec(v).frames;
                last
            }
            Err(_empty) => None,
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
        match self.frames.into_one() {
            Ok(only) => vec![only],
            Err(Frames::Many(v)) => v,
            Err(_empty) => Vec::new(),
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
    /// Copies the bytes: into the message itself up to 23 bytes, under 4 KiB into a plain
    /// allocation, else into a `Bytes` whose buffer ferromq keeps for a later copy once the
    /// message is written and dropped (at most 4 MiB of such buffers in a process).
    #[inline]
    fn from(frame: &[u8]) -> Self {
        Message {
            frames: Frames::copied(frame),
            properties: None,
        }
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

    fn hash_of(message: &Message) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        message.hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn a_copied_frame_equals_the_same_bytes_as_a_frame_whatever_its_form() {
        // No zero byte: a byte an inline frame's word-wise copy missed would show.
        let bytes: Vec<u8> = (1..=255u8)
            .cycle()
            .take(WRITE_FLATTEN_THRESHOLD_BYTES)
            .collect();
        assert!(Message::from(&bytes[..]).copied_frame().is_none());
        // Every inline size (each takes its own mix of loads), then boxed copies at the edges
        // of the pooled sizes (a full buffer of a class, one byte into the next, the largest
        // pooled, the smallest not pooled) and the largest boxed one.
        let sizes = (0..=INLINE_FRAME_MAX_BYTES + 1).chain([
            64,
            65,
            300,
            1024,
            1025,
            WRITE_FLATTEN_THRESHOLD_BYTES - 1,
        ]);
        for size in sizes {
            let copied = Message::from(&bytes[..size]);
            let shared = Message::from(Bytes::copy_from_slice(&bytes[..size]));
            assert_eq!(copied.copied_frame(), Some(&bytes[..size]), "{size} bytes");
            assert_eq!(copied, shared, "{size} bytes");
            assert_eq!(hash_of(&copied), hash_of(&shared), "{size} bytes");
            assert_eq!((copied.len(), copied.byte_len()), (1, size));
            assert_eq!(copied.first_slice(), Some(&bytes[..size]));
            assert_eq!(copied.frame_slices().count(), 1);
            let clone = copied.clone();
            assert_eq!(clone, shared, "{size} bytes");
            assert_eq!(clone.clone(), shared, "{size} bytes");
            // Borrowed as `Bytes`, it is the same frame, and stays one.
            assert_eq!(copied.frames(), shared.frames());
            assert_eq!(copied.first(), shared.first());
            assert_eq!(copied.copied_frame(), Some(&bytes[..size]));
            assert_eq!(copied.into_shared().into_frames(), shared.into_frames());
            // Taken out without being borrowed first (a pooled buffer moves into the `Bytes`).
            let taken = Message::from(&bytes[..size]).into_frames();
            assert_eq!(
                taken,
                [Bytes::copy_from_slice(&bytes[..size])],
                "{size} bytes"
            );
        }
        assert_ne!(Message::from("ab"), Message::from("abc"));
        assert_ne!(
            Message::from("ab"),
            ["a", "b"].into_iter().collect::<Message>()
        );
    }

    #[test]
    fn clones_of_a_boxed_copy_share_one_bytes() {
        let copied = Message::from(&[3u8; 100][..]);
        let (a, b) = (copied.clone(), copied.clone());
        assert_eq!(a.frames()[0].as_ptr(), b.frames()[0].as_ptr());
        assert_eq!(a.frames()[0].as_ptr(), copied.frames()[0].as_ptr());
    }

    #[test]
    fn a_copied_frame_keeps_its_bytes_through_every_change_of_shape() {
        let mut m = Message::from("mid");
        m.push_front("head");
        assert_eq!(m.frames(), &[Bytes::from("head"), Bytes::from("mid")]);
        let mut m = Message::from("mid");
        m.push_back("tail");
        assert_eq!(m.frames(), &[Bytes::from("mid"), Bytes::from("tail")]);
        let mut m = Message::from("only");
        let _ = m.frames();
        assert_eq!(m.pop_front(), Some(Bytes::from("only")));
        assert!(m.is_empty());
        assert_eq!(Message::from("x").pop_back(), Some(Bytes::from("x")));
        assert_eq!(Message::from("x").into_frames(), vec![Bytes::from("x")]);
        let owned = Message::from("own").into_shared();
        assert!(owned.copied_frame().is_none());
        assert_eq!(owned, Message::from("own"));
        let mut boxed = Message::from(&[9u8; 40][..]);
        boxed.push_back("more");
        assert_eq!(
            boxed.frames(),
            &[Bytes::from(vec![9u8; 40]), Bytes::from("more")]
        );
        assert_eq!(format!("{:?}", Message::from("dbg")), r#"[b"dbg"]"#);
    }

    #[test]
    fn a_message_stays_48_bytes() {
        assert!(std::mem::size_of::<Message>() <= 48);
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
