//! [`Message`]: one ZeroMQ message, made of one or more frames.

use bytes::Bytes;
use std::fmt;

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
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Message {
    frames: Frames,
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
        }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        match &self.frames {
            Frames::Empty => 0,
            Frames::One(_) => 1,
            Frames::Many(v) => v.len(),
        }
    }

    /// True when the message has no frames (an empty *frame* still counts as a frame).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frames, in order.
    pub fn frames(&self) -> &[Bytes] {
        match &self.frames {
            Frames::Empty => &[],
            Frames::One(b) => std::slice::from_ref(b),
            Frames::Many(v) => v,
        }
    }

    /// Frame `index`, if there is one.
    pub fn frame(&self, index: usize) -> Option<&Bytes> {
        self.frames().get(index)
    }

    /// The first frame, if any.
    pub fn first(&self) -> Option<&Bytes> {
        self.frames().first()
    }

    /// The last frame, if any.
    pub fn last(&self) -> Option<&Bytes> {
        self.frames().last()
    }

    /// Iterates over the frames.
    pub fn iter(&self) -> std::slice::Iter<'_, Bytes> {
        self.frames().iter()
    }

    /// Sum of the frame sizes in bytes.
    pub fn byte_len(&self) -> usize {
        self.frames().iter().map(Bytes::len).sum()
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
        let mut all = std::mem::take(self).into_frames();
        let tail = all.split_off(index);
        *self = Self::from_vec(all);
        Self::from_vec(tail)
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
        Message { frames }
    }
}

impl From<Bytes> for Message {
    fn from(frame: Bytes) -> Self {
        Message {
            frames: Frames::One(frame),
        }
    }
}

impl From<Vec<u8>> for Message {
    fn from(frame: Vec<u8>) -> Self {
        Bytes::from(frame).into()
    }
}

impl From<&[u8]> for Message {
    fn from(frame: &[u8]) -> Self {
        Bytes::copy_from_slice(frame).into()
    }
}

impl<const N: usize> From<&[u8; N]> for Message {
    fn from(frame: &[u8; N]) -> Self {
        Bytes::copy_from_slice(frame).into()
    }
}

impl From<&str> for Message {
    fn from(frame: &str) -> Self {
        Bytes::copy_from_slice(frame.as_bytes()).into()
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
