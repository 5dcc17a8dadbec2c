//! Frames: the flags byte, the short and long size forms, an incremental zero-copy decoder and
//! a batching encoder (RFC 23 §"Framing").
//!
//! ```text
//! flags (1 byte): MORE 0x01 | LONG 0x02 | COMMAND 0x04, other bits reserved (must be zero)
//! size:           1 byte (short form) or 8 bytes big-endian (LONG set)
//! body:           size bytes
//! ```

use super::ProtocolError;
use super::command::Command;
use crate::Message;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;

/// More frames of the same message follow.
pub const FLAG_MORE: u8 = 0x01;
/// The size is 8 bytes (long form) instead of 1.
pub const FLAG_LONG: u8 = 0x02;
/// The frame is a command, not message data.
pub const FLAG_COMMAND: u8 = 0x04;
const RESERVED_FLAGS: u8 = !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND);

/// Largest body the short form can describe.
pub const SHORT_FRAME_MAX_BYTES: usize = u8::MAX as usize;
/// Largest frame header: flags plus an 8-byte size.
pub const MAX_HEADER_BYTES: usize = 9;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Whether more frames of the same message follow (never set on commands).
    pub more: bool,
    /// Whether this is a command frame.
    pub command: bool,
    /// The body: a zero-copy slice of the receive buffer.
    pub body: Bytes,
}

/// A decoded frame whose body is still a unique, writable view of the receive buffer: for a
/// mechanism that opens boxes in place (CURVE) instead of copying each one out first.
#[derive(Debug)]
pub struct FrameMut {
    /// Whether more frames of the same message follow (never set on commands).
    pub more: bool,
    /// Whether this is a command frame.
    pub command: bool,
    /// The body, split off the receive buffer without copying.
    pub body: BytesMut,
}

impl FrameMut {
    /// The frame, its body now shared and read-only.
    #[inline]
    pub fn freeze(self) -> Frame {
        Frame {
            more: self.more,
            command: self.command,
            body: self.body.freeze(),
        }
    }
}

/// Largest frame any decoder accepts, whatever the maximum message size: no allocation can
/// hold more. 2⁴⁷ bytes (128 TiB) is the whole user address space of a 64-bit Linux process
/// with 4-level page tables, and on 32-bit targets `isize::MAX` bounds every allocation. A
/// header announcing more is a protocol fault at once, as libzmq drops a peer whose frame it
/// cannot allocate, instead of a connection left waiting for bytes it could never hold.
pub const MAX_FRAME_BYTES: u64 = if usize::BITS >= 64 {
    1 << 47
} else {
    isize::MAX as u64
};

/// Incremental frame decoder.
///
/// Feed it the receive buffer as bytes arrive; every split of the stream decodes to the same
/// frames. Bodies are split off the buffer without copying. A frame whose header announces
/// more than the maximum size is rejected from the header alone, before anything is reserved.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_bytes: Option<u64>,
    /// Header of the frame whose body is still arriving: (flags, body length).
    pending: Option<(u8, usize)>,
}

impl FrameDecoder {
    /// A decoder that rejects frames larger than `max_frame_bytes` (`None`: unlimited, as
    /// libzmq's default MAXMSGSIZE of -1).
    pub fn new(max_frame_bytes: Option<u64>) -> Self {
        FrameDecoder {
            max_frame_bytes,
            pending: None,
        }
    }

    /// Whether the decoder is between frames (no partial header or body consumed).
    pub fn is_idle(&self) -> bool {
        self.pending.is_none()
    }

    /// Body length of the frame whose header was decoded but whose body is still arriving.
    /// The decoder never grows the caller's buffer itself; the engine uses this to give a
    /// large body a buffer it fits in and read the rest straight into it.
    pub fn pending_body_len(&self) -> Option<usize> {
        self.pending.map(|(_, len)| len)
    }

    /// Decodes the next complete frame from the front of `buf`, consuming it.
    ///
    /// Returns `Ok(None)` when more bytes are needed; the header of a partially received frame
    /// is consumed and remembered, so call again with the same buffer once more bytes arrive.
    #[inline]
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        Ok(self.decode_mut(buf)?.map(FrameMut::freeze))
    }

    /// [`FrameDecoder::decode`], leaving the body writable.
    #[inline]
    pub fn decode_mut(&mut self, buf: &mut BytesMut) -> Result<Option<FrameMut>, ProtocolError> {
        // Fast path for the common case of a valid short frame already entirely in the
        // buffer: one split for header and body, no pending state. Anything else, including
        // every fault, takes the general path below, which re-checks from scratch.
        if self.pending.is_none()
            && let [flags, len, ..] = buf[..]
        {
            let len = usize::from(len);
            if flags & (RESERVED_FLAGS | FLAG_LONG) == 0
                && flags & (FLAG_COMMAND | FLAG_MORE) != FLAG_COMMAND | FLAG_MORE
                && buf.len() >= 2 + len
                && self.max_frame_bytes.is_none_or(|max| len as u64 <= max)
            {
                let mut body = buf.split_to(2 + len);
                body.advance(2);
                return Ok(Some(FrameMut {
                    more: flags & FLAG_MORE != 0,
                    command: flags & FLAG_COMMAND != 0,
                    body,
                }));
            }
        }
        self.decode_general(buf)
    }

    /// Splits off the front of `buf`, as one `Bytes`, the run of whole frames (at most
    /// `max_frames`) whose headers need no fault reported: flags and size within the limits.
    /// Take them out with [`FrameDecoder::next_whole_frame`]; what stops the run (a partial
    /// frame, a fault) stays in `buf` for [`FrameDecoder::decode_mut`]. Empty while a frame's
    /// body is pending.
    ///
    /// Each body is then a slice of that one `Bytes`: one reference count per frame, where
    /// `decode_mut` splits the `BytesMut` twice (for frames whose body is not decrypted in
    /// place, that is, without CURVE).
    pub fn split_whole_frames(&self, buf: &mut BytesMut, max_frames: usize) -> Bytes {
        if self.pending.is_some() {
            return Bytes::new();
        }
        let mut end = 0;
        for _ in 0..max_frames {
            let rest = &buf[end..];
            let Some((header, len)) = self.sound_header(rest) else {
                break;
            };
            if rest.len() - header < len {
                break;
            }
            end += header + len;
        }
        buf.split_to(end).freeze()
    }

    /// The header and body lengths of the frame `bytes` starts with, if its whole header is
    /// there and sound (`decode_header` reports the faults).
    fn sound_header(&self, bytes: &[u8]) -> Option<(usize, usize)> {
        let (_, header, len) = self.parse_header(bytes).ok()??;
        Some((header, len))
    }

    /// The next frame of a run split off by [`FrameDecoder::split_whole_frames`], its body a
    /// slice of `run`.
    #[inline]
    pub fn next_whole_frame(run: &mut Bytes) -> Option<Frame> {
        let (header, len) = frame_extent(run)?;
        let flags = run[0];
        run.advance(header);
        Some(Frame {
            more: flags & FLAG_MORE != 0,
            command: flags & FLAG_COMMAND != 0,
            body: run.split_to(len),
        })
    }

    fn decode_general(&mut self, buf: &mut BytesMut) -> Result<Option<FrameMut>, ProtocolError> {
        let (flags, len) = match self.pending {
            Some(header) => header,
            None => match self.decode_header(buf)? {
                Some(header) => header,
                None => return Ok(None),
            },
        };
        if buf.len() < len {
            // Room for the rest is the caller's to make (see `pending_body_len`): the engine
            // picks or reuses a buffer that fits, and nothing a peer claims allocates here.
            self.pending = Some((flags, len));
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(FrameMut {
            more: flags & FLAG_MORE != 0,
            command: flags & FLAG_COMMAND != 0,
            body: buf.split_to(len),
        }))
    }

    fn decode_header(&self, buf: &mut BytesMut) -> Result<Option<(u8, usize)>, ProtocolError> {
        let Some((flags, header_len, len)) = self.parse_header(buf)? else {
            return Ok(None);
        };
        buf.advance(header_len);
        Ok(Some((flags, len)))
    }

    /// The flags, header length and body length of the frame `bytes` starts with, once its
    /// whole header is there; the fault, if its flags or its size are not allowed.
    fn parse_header(&self, bytes: &[u8]) -> Result<Option<(u8, usize, usize)>, ProtocolError> {
        let Some(&flags) = bytes.first() else {
            return Ok(None);
        };
        if flags & RESERVED_FLAGS != 0 {
            return Err(ProtocolError::ReservedFlags { flags });
        }
        if flags & FLAG_COMMAND != 0 && flags & FLAG_MORE != 0 {
            return Err(ProtocolError::CommandWithMore);
        }
        let (header_len, len) = if flags & FLAG_LONG != 0 {
            let Some(size) = bytes.get(1..MAX_HEADER_BYTES) else {
                return Ok(None);
            };
            let size = u64::from_be_bytes(size.try_into().expect("8 bytes"));
            (MAX_HEADER_BYTES, size)
        } else {
            match bytes.get(1) {
                Some(&size) => (2, u64::from(size)),
                None => return Ok(None),
            }
        };
        if let Some(max) = self.max_frame_bytes
            && len > max
        {
            return Err(ProtocolError::MessageTooLarge { len, max });
        }
        if len > MAX_FRAME_BYTES {
            return Err(ProtocolError::MessageTooLarge {
                len,
                max: MAX_FRAME_BYTES,
            });
        }
        Ok(Some((flags, header_len, len as usize)))
    }
}

/// The header length and body length of the frame that `bytes` starts with, once its whole
/// header is there (frames this side encoded: nothing is checked).
fn frame_extent(bytes: &[u8]) -> Option<(usize, usize)> {
    let flags = *bytes.first()?;
    if flags & FLAG_LONG == 0 {
        return Some((2, usize::from(*bytes.get(1)?)));
    }
    let size = bytes.get(1..MAX_HEADER_BYTES)?;
    let size = u64::from_be_bytes(size.try_into().expect("8 bytes"));
    Some((MAX_HEADER_BYTES, size as usize))
}

/// Writes a frame header for a body of `len` bytes: the short form up to 255 bytes.
///
/// `inline(always)`: a plain `#[inline]` left it a call on every frame queued (13
/// instructions per 16 B message, `tools/count-instructions`), depending on how the crate
/// was split into codegen units, and in the thin-LTO build too.
#[inline(always)]
pub fn encode_header(dst: &mut impl BufMut, flags: u8, len: usize) {
    if len <= SHORT_FRAME_MAX_BYTES {
        dst.put_u8(flags);
        dst.put_u8(len as u8);
    } else {
        dst.put_u8(flags | FLAG_LONG);
        dst.put_u64(len as u64);
    }
}

/// Bodies at least this large are sent from the caller's `Bytes` by vectored write instead of
/// being copied into the contiguous buffer: below it a copy is cheaper than an extra iovec
/// (libzmq copies up to 8 KiB; measured here, 4 KiB is where the two cross).
pub const WRITE_FLATTEN_THRESHOLD_BYTES: usize = 4096;

/// Most iovecs handed to one vectored write; Linux accepts 1024, past a few dozen the gain is
/// nil.
pub const MAX_WRITEV_IOVECS: usize = 64;

/// A message encoded once and copied to each peer that gets it (PUB's fan-out), when all of
/// its frames are small; large frames are cheaper queued by reference per peer.
#[derive(Debug, Default)]
pub struct EncodedMessage {
    bytes: BytesMut,
    /// Payload bytes of the encoded message (frame bodies).
    payload: u64,
}

impl EncodedMessage {
    /// An empty encoding buffer, reused from message to message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes `message` if every frame is below [`WRITE_FLATTEN_THRESHOLD_BYTES`];
    /// otherwise leaves the encoding empty, and [`WriteBuf::push_encoded`] then declines it.
    pub fn encode(&mut self, message: &Message) {
        self.bytes.clear();
        if message
            .frame_slices()
            .any(|frame| frame.len() >= WRITE_FLATTEN_THRESHOLD_BYTES)
        {
            return;
        }
        let last = message.len().saturating_sub(1);
        for (i, frame) in message.frame_slices().enumerate() {
            let flags = if i < last { FLAG_MORE } else { 0 };
            encode_header(&mut self.bytes, flags, frame.len());
            self.bytes.extend_from_slice(frame);
        }
        // Once per message fanned out, not per subscriber.
        self.payload = message.byte_len() as u64;
    }
}

/// An outgoing byte queue that batches many encoded frames into few writes.
///
/// Small frames are copied, header and body, into one contiguous tail buffer; large bodies are
/// queued as their own `Bytes` so they leave by vectored write without a copy. The engine
/// drains it with [`WriteBuf::chunks_vectored`] and [`WriteBuf::advance`].
#[derive(Debug, Default)]
pub struct WriteBuf {
    /// Sealed chunks, in order, before `tail`.
    chunks: VecDeque<Bytes>,
    /// Where small frames are being appended.
    tail: BytesMut,
    len: usize,
    /// Payload bytes (frame bodies) of every message frame queued here so far, never reset:
    /// the difference across one queueing is what statistics count, at one addition per
    /// frame.
    payload_queued: u64,
}

impl WriteBuf {
    /// An empty buffer. Nothing is allocated until the first frame is queued.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops everything queued (a conflating socket replacing its queued message).
    pub fn discard(&mut self) {
        self.chunks.clear();
        self.tail.clear();
        self.len = 0;
    }

    /// Bytes queued and not yet written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Payload bytes of the message frames queued so far (see the field); commands and raw
    /// bytes do not count.
    pub fn payload_queued(&self) -> u64 {
        self.payload_queued
    }

    /// Encodes every frame of `message` (MORE on all but the last).
    #[inline]
    pub fn push_message(&mut self, message: &Message) {
        if let Some(body) = message.copied_frame() {
            self.push_copied_frame(0, body);
            return;
        }
        let frames = message.frames();
        let last = frames.len().saturating_sub(1);
        for (i, frame) in frames.iter().enumerate() {
            let flags = if i < last { FLAG_MORE } else { 0 };
            self.push_frame(flags, frame);
        }
    }

    #[inline]
    fn reserve_header(&mut self) {
        if self.tail.capacity() - self.tail.len() < MAX_HEADER_BYTES {
            self.tail
                .reserve(MAX_HEADER_BYTES.max(WRITE_FLATTEN_THRESHOLD_BYTES));
        }
    }

    /// Encodes the header of a frame of `len` body bytes (LONG is added when needed) and
    /// counts the whole frame; its body follows, copied or by reference.
    #[inline]
    fn push_header(&mut self, flags: u8, len: usize) {
        self.payload_queued += len as u64;
        self.reserve_header();
        encode_header(&mut self.tail, flags, len);
        let header = if len <= SHORT_FRAME_MAX_BYTES {
            2
        } else {
            MAX_HEADER_BYTES
        };
        self.len += header + len;
    }

    /// Encodes a frame below [`WRITE_FLATTEN_THRESHOLD_BYTES`], copying its body in.
    #[inline]
    fn push_copied_frame(&mut self, flags: u8, body: &[u8]) {
        debug_assert!(body.len() < WRITE_FLATTEN_THRESHOLD_BYTES);
        self.push_header(flags, body.len());
        self.tail.extend_from_slice(body);
    }

    /// Encodes one frame with the given flags: copied in below
    /// [`WRITE_FLATTEN_THRESHOLD_BYTES`], else queued by reference.
    #[inline]
    pub fn push_frame(&mut self, flags: u8, body: &Bytes) {
        if body.len() < WRITE_FLATTEN_THRESHOLD_BYTES {
            self.push_copied_frame(flags, body);
            return;
        }
        self.push_header(flags, body.len());
        self.seal_tail();
        self.chunks.push_back(body.clone());
    }

    /// Encodes `head` then `body` as one message (an envelope before a body: REQ's
    /// delimiter, REP's saved envelope, ROUTER's body after its routing-id frame).
    pub fn push_parts(&mut self, head: &[Bytes], body: &[Bytes]) {
        let Some(last) = (head.len() + body.len()).checked_sub(1) else {
            return;
        };
        for (i, frame) in head.iter().chain(body).enumerate() {
            let flags = if i < last { FLAG_MORE } else { 0 };
            self.push_frame(flags, frame);
        }
    }

    /// Queues a message encoded once for many peers; false (nothing queued) when it was not
    /// encoded because a frame is large (queue it with [`WriteBuf::push_message`]).
    pub fn push_encoded(&mut self, message: &EncodedMessage) -> bool {
        if message.bytes.is_empty() {
            return false;
        }
        self.push_bytes(&message.bytes);
        self.payload_queued += message.payload;
        true
    }

    /// Queues a subscription (`subscribe`) or cancellation of `prefix` in the form a peer
    /// speaking `version` understands: the SUBSCRIBE/CANCEL command for ZMTP 3.1, the data
    /// message `0x01`/`0x00 prefix` for 3.0 (RFC 29). libzmq 4.3's PUB and XPUB accept both.
    pub fn push_subscription(&mut self, version: (u8, u8), subscribe: bool, prefix: &[u8]) {
        let before = self.tail.len();
        if version >= (3, 1) {
            let prefix = Bytes::copy_from_slice(prefix);
            let command = if subscribe {
                Command::Subscribe(prefix)
            } else {
                Command::Cancel(prefix)
            };
            command.encode(&mut self.tail);
        } else {
            encode_header(&mut self.tail, 0, 1 + prefix.len());
            self.tail.put_u8(u8::from(subscribe));
            self.tail.put_slice(prefix);
        }
        self.len += self.tail.len() - before;
    }

    /// Queues raw bytes (an already-encoded greeting or command).
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Queues bytes already in a buffer of their own, without copying them.
    pub fn push_chunk(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.seal_tail();
        self.len += chunk.len();
        self.chunks.push_back(chunk);
    }

    /// Empties this buffer, handing each queued frame to `each` in order as its flags byte and
    /// body. Bodies are read where they are queued (a large one in the `Bytes` it was queued
    /// by, a small one in the chunk it was copied into); only a frame cut by a chunk boundary,
    /// which this buffer's own encoding never makes, is copied whole first. For a mechanism
    /// that boxes each frame (CURVE), so the batch is not flattened into one copy before it.
    pub fn drain_frames(&mut self, mut each: impl FnMut(u8, &[u8])) {
        self.seal_tail();
        self.len = 0;
        // The start of a frame cut by the end of a chunk.
        let mut carry = BytesMut::new();
        for chunk in self.chunks.drain(..) {
            let mut rest = &chunk[..];
            while !carry.is_empty() && !rest.is_empty() {
                let Some((header, len)) = frame_extent(&carry) else {
                    // Only the rest of the header: the frame may end right after it.
                    let header = match carry[0] & FLAG_LONG {
                        0 => 2,
                        _ => MAX_HEADER_BYTES,
                    };
                    let take = (header - carry.len()).min(rest.len());
                    carry.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    continue;
                };
                if carry.len() == header && rest.len() >= len {
                    // A header, then its body queued by reference: the usual large frame.
                    each(carry[0], &rest[..len]);
                    rest = &rest[len..];
                    carry.clear();
                    continue;
                }
                let take = (header + len - carry.len()).min(rest.len());
                carry.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if carry.len() == header + len {
                    each(carry[0], &carry[header..]);
                    carry.clear();
                }
            }
            while let Some((header, len)) = frame_extent(rest)
                && rest.len() >= header + len
            {
                each(rest[0], &rest[header..header + len]);
                rest = &rest[header + len..];
            }
            carry.extend_from_slice(rest);
        }
        debug_assert!(carry.is_empty(), "a write buffer holds whole frames");
    }

    /// Moves everything queued onto the end of `dst` (one copy) and empties this buffer.
    pub fn drain_into(&mut self, dst: &mut BytesMut) {
        dst.reserve(self.len);
        for chunk in self.chunks.drain(..) {
            dst.extend_from_slice(&chunk);
        }
        dst.extend_from_slice(&self.tail);
        self.tail.clear();
        self.len = 0;
    }

    /// Moves everything queued in `other` to the end of this buffer.
    pub fn append(&mut self, other: &mut WriteBuf) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            std::mem::swap(self, other);
            return;
        }
        self.seal_tail();
        self.chunks.extend(other.chunks.drain(..));
        if !other.tail.is_empty() {
            self.chunks.push_back(other.tail.split().freeze());
        }
        self.len += other.len;
        other.len = 0;
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
    }

    /// Fills `dst` with slices of the queued bytes, in order; returns how many were filled.
    pub fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for chunk in self.chunks.iter().map(|c| &c[..]).chain([&self.tail[..]]) {
            if n == dst.len() {
                break;
            }
            if !chunk.is_empty() {
                dst[n] = IoSlice::new(chunk);
                n += 1;
            }
        }
        n
    }

    /// Drops the first `n` bytes, after a write accepted them.
    ///
    /// # Panics
    /// When `n` exceeds [`WriteBuf::len`].
    pub fn advance(&mut self, mut n: usize) {
        assert!(n <= self.len, "advance past the end of the write buffer");
        self.len -= n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(chunk) if chunk.len() <= n => {
                    n -= chunk.len();
                    self.chunks.pop_front();
                }
                Some(chunk) => {
                    chunk.advance(n);
                    n = 0;
                }
                None => {
                    self.tail.advance(n);
                    n = 0;
                }
            }
        }
        if self.len == 0 {
            // Reuse the tail's allocation from its start instead of creeping forward: without
            // the reclaim, the written bytes' room stays in front of the tail, and the next
            // batch, once it reaches the end, is copied back to the start (a copy of every
            // batch). Asking for one byte more than is left makes the reclaim go back to the
            // start when it can; it never allocates.
            self.tail.clear();
            let _ = self.tail.try_reclaim(self.tail.capacity() + 1);
        }
    }

    /// Whether this buffer holds an allocation (empty or not).
    pub fn holds_memory(&self) -> bool {
        self.tail.capacity() > 0 || self.chunks.capacity() > 0
    }

    /// Releases the memory held while empty, so idle connections pin no buffers.
    pub fn shrink_if_empty(&mut self) {
        if self.is_empty() {
            self.chunks = VecDeque::new();
            self.tail = BytesMut::new();
        }
    }

    /// Copies everything queued into one `Bytes` (tests and small command output).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(&self.tail);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut FrameDecoder, buf: &mut BytesMut) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(frame) = decoder.decode(buf).unwrap() {
            out.push(frame);
        }
        out
    }

    /// Frames of every header form, then `tail` (the bytes that must stop a run).
    fn frames_then(tail: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        encode_header(&mut buf, FLAG_MORE, 3);
        buf.extend_from_slice(b"abc");
        encode_header(&mut buf, 0, 300);
        buf.extend_from_slice(&[9u8; 300]);
        encode_header(&mut buf, FLAG_COMMAND, 5);
        buf.extend_from_slice(b"\x04PING");
        encode_header(&mut buf, 0, 0);
        buf.extend_from_slice(tail);
        buf
    }

    #[test]
    fn a_run_of_whole_frames_decodes_as_frame_by_frame_and_leaves_what_stops_it() {
        let stoppers: [(&str, &[u8]); 5] = [
            ("nothing", b""),
            ("a partial body", &[0, 4, 1, 2]),
            ("a partial long header", &[FLAG_LONG, 0, 0]),
            ("reserved flags", &[0x10, 1, 7]),
            ("a command with more", &[FLAG_COMMAND | FLAG_MORE, 0]),
        ];
        for (what, tail) in stoppers {
            let mut expected = frames_then(tail);
            let mut reference = FrameDecoder::new(None);
            let frames: Vec<Frame> =
                std::iter::from_fn(|| reference.decode(&mut expected).ok()?).collect();
            assert_eq!(frames.len(), 4, "{what}");
            let mut buf = frames_then(tail);
            let mut run = FrameDecoder::new(None).split_whole_frames(&mut buf, usize::MAX);
            let got: Vec<Frame> =
                std::iter::from_fn(|| FrameDecoder::next_whole_frame(&mut run)).collect();
            assert_eq!(got, frames, "{what}");
            assert_eq!(&buf[..], tail, "{what}: the rest stays for the decoder");
        }
    }

    #[test]
    fn a_run_stops_at_its_frame_count_at_the_size_limit_and_while_a_body_is_pending() {
        let mut buf = frames_then(b"");
        let all = buf.len();
        let run = FrameDecoder::new(None).split_whole_frames(&mut buf, 1);
        assert_eq!(run.len(), 5);
        assert_eq!(buf.len(), all - 5);
        // The 300-byte frame is over a 100-byte limit: decode_mut reports it.
        let limited = FrameDecoder::new(Some(100));
        let mut rest = limited.split_whole_frames(&mut buf, usize::MAX);
        assert!(rest.is_empty() && FrameDecoder::next_whole_frame(&mut rest).is_none());
        assert_eq!(buf.len(), all - 5);
        let mut pending = FrameDecoder::new(None);
        let mut partial = BytesMut::from(&[0u8, 4, 1][..]);
        assert!(pending.decode(&mut partial).unwrap().is_none());
        partial.extend_from_slice(&[2, 3, 4, 0, 0]);
        assert!(
            pending
                .split_whole_frames(&mut partial, usize::MAX)
                .is_empty()
        );
    }

    #[test]
    fn a_written_out_buffer_takes_the_next_batch_from_the_start_of_its_allocation() {
        let mut buf = WriteBuf::new();
        let body = Bytes::from_static(&[7u8; 16]);
        for _ in 0..100 {
            buf.push_frame(0, &body);
        }
        let room = buf.tail.capacity();
        let start = buf.tail.as_ptr();
        let half = buf.len() / 2;
        buf.advance(half);
        assert_eq!(buf.tail.as_ptr(), start.wrapping_add(half));
        buf.advance(buf.len());
        // Back at the start with all its room: the next batch is not copied there later.
        assert_eq!(buf.tail.as_ptr(), start);
        assert_eq!(buf.tail.capacity(), room);
        buf.push_frame(0, &body);
        assert_eq!(buf.tail.as_ptr(), start);
    }

    #[test]
    fn short_frame_bytes_match_rfc() {
        let mut out = WriteBuf::new();
        out.push_message(&Message::from("Hello"));
        assert_eq!(&out.to_bytes()[..], b"\x00\x05Hello");
    }

    #[test]
    fn a_frame_copied_from_a_slice_encodes_as_the_same_frame_in_bytes() {
        for size in [0, 1, 22, 23, 255, 256, WRITE_FLATTEN_THRESHOLD_BYTES - 1] {
            let body = vec![5u8; size];
            let copied = Message::from(&body[..]);
            assert!(copied.copied_frame().is_some());
            let shared = Message::from(Bytes::from(body));
            let (mut a, mut b) = (WriteBuf::new(), WriteBuf::new());
            a.push_message(&copied);
            b.push_message(&shared);
            assert_eq!(a.to_bytes(), b.to_bytes(), "{size} bytes");
            assert_eq!((a.len, a.payload_queued), (b.len, b.payload_queued));
            let (mut a, mut b) = (EncodedMessage::default(), EncodedMessage::default());
            a.encode(&copied);
            b.encode(&shared);
            assert_eq!((a.bytes, a.payload), (b.bytes, b.payload), "{size} bytes");
        }
    }

    #[test]
    fn multipart_sets_more_on_all_but_last() {
        let mut out = WriteBuf::new();
        out.push_message(&["a", "", "bc"].into_iter().collect());
        assert_eq!(&out.to_bytes()[..], b"\x01\x01a\x01\x00\x00\x02bc");
    }

    #[test]
    fn long_form_above_255_bytes() {
        let body = Bytes::from(vec![7u8; 256]);
        let mut out = WriteBuf::new();
        out.push_frame(0, &body);
        let bytes = out.to_bytes();
        assert_eq!(&bytes[..9], &[0x02, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(bytes.len(), 9 + 256);
        let mut at_255 = WriteBuf::new();
        at_255.push_frame(FLAG_MORE, &Bytes::from(vec![1u8; 255]));
        assert_eq!(&at_255.to_bytes()[..2], &[0x01, 0xFF]);
    }

    #[test]
    fn decodes_short_long_and_command_frames() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"\x01\x02hi");
        buf.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 0, 0, 3]);
        buf.extend_from_slice(b"abc");
        buf.extend_from_slice(b"\x04\x05\x04PING");
        let frames = decode_all(&mut FrameDecoder::new(None), &mut buf);
        assert_eq!(
            frames,
            vec![
                Frame {
                    more: true,
                    command: false,
                    body: Bytes::from("hi")
                },
                Frame {
                    more: false,
                    command: false,
                    body: Bytes::from("abc")
                },
                Frame {
                    more: false,
                    command: true,
                    body: Bytes::from("\x04PING")
                },
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn long_command_frame_decodes() {
        let mut buf = BytesMut::from(&[0x06, 0, 0, 0, 0, 0, 0, 0, 1, b'x'][..]);
        let frame = FrameDecoder::new(None).decode(&mut buf).unwrap().unwrap();
        assert!(frame.command && !frame.more);
    }

    #[test]
    fn decode_same_frames_at_every_split() {
        let mut out = WriteBuf::new();
        out.push_message(&["x", "", "yz"].into_iter().collect());
        out.push_message(&Message::from(vec![9u8; 300]));
        let bytes = out.to_bytes();
        let expected = decode_all(
            &mut FrameDecoder::new(None),
            &mut BytesMut::from(&bytes[..]),
        );
        for split in 0..bytes.len() {
            let mut decoder = FrameDecoder::new(None);
            let mut buf = BytesMut::from(&bytes[..split]);
            let mut got = decode_all(&mut decoder, &mut buf);
            buf.extend_from_slice(&bytes[split..]);
            got.extend(decode_all(&mut decoder, &mut buf));
            assert_eq!(got, expected, "split at {split}");
        }
    }

    #[test]
    fn decode_rejects_reserved_flag_bits() {
        for flags in [0x08u8, 0x10, 0x80, 0xFF] {
            let mut buf = BytesMut::from(&[flags, 0][..]);
            assert_eq!(
                FrameDecoder::new(None).decode(&mut buf),
                Err(ProtocolError::ReservedFlags { flags })
            );
        }
    }

    #[test]
    fn decode_rejects_command_with_more() {
        let mut buf = BytesMut::from(&[0x05, 0][..]);
        assert_eq!(
            FrameDecoder::new(None).decode(&mut buf),
            Err(ProtocolError::CommandWithMore)
        );
    }

    #[test]
    fn decode_rejects_long_frame_over_max_msg_size_before_reserving() {
        let mut buf = BytesMut::from(&[0x02, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF][..]);
        let capacity = buf.capacity();
        assert_eq!(
            FrameDecoder::new(Some(1024)).decode(&mut buf),
            Err(ProtocolError::MessageTooLarge {
                len: i64::MAX as u64,
                max: 1024
            })
        );
        assert_eq!(buf.capacity(), capacity);
    }

    #[test]
    fn large_announced_length_allocates_nothing() {
        // 2^40 bytes: possible in principle, so the body is awaited, but nothing is reserved.
        let mut buf = BytesMut::from(&[0x02, 0, 0, 0x01, 0, 0, 0, 0, 0][..]);
        let capacity = buf.capacity();
        let mut decoder = FrameDecoder::new(None);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= capacity);
        assert_eq!(decoder.pending_body_len(), Some(1 << 40));
        assert!(!decoder.is_idle());
    }

    #[test]
    fn impossible_announced_length_is_a_fault_at_once() {
        // 2^62 bytes: more than any address space can hold, even with no maximum size set.
        let mut buf = BytesMut::from(&[0x02, 0x40, 0, 0, 0, 0, 0, 0, 0][..]);
        assert_eq!(
            FrameDecoder::new(None).decode(&mut buf),
            Err(ProtocolError::MessageTooLarge {
                len: 1 << 62,
                max: MAX_FRAME_BYTES
            })
        );
        let mut just_possible = BytesMut::from(&[0x02, 0, 0, 0x80, 0, 0, 0, 0, 0][..]);
        assert_eq!(FrameDecoder::new(None).decode(&mut just_possible), Ok(None));
    }

    #[test]
    fn short_frame_at_max_is_accepted() {
        let mut buf = BytesMut::from(&[0x00, 4, 1, 2, 3, 4][..]);
        let frame = FrameDecoder::new(Some(4))
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(frame.body.len(), 4);
        let mut over = BytesMut::from(&[0x00, 5][..]);
        assert!(FrameDecoder::new(Some(4)).decode(&mut over).is_err());
    }

    #[test]
    fn large_bodies_are_chained_not_copied() {
        let body = Bytes::from(vec![3u8; WRITE_FLATTEN_THRESHOLD_BYTES]);
        let mut out = WriteBuf::new();
        out.push_message(&["small"].into_iter().collect());
        out.push_frame(0, &body);
        out.push_message(&Message::from("after"));
        let mut slices = [IoSlice::new(&[]); 8];
        let n = out.chunks_vectored(&mut slices);
        assert_eq!(n, 3);
        assert_eq!(slices[1].as_ptr(), body.as_ptr(), "large body not copied");
        let total: usize = slices[..n].iter().map(|s| s.len()).sum();
        assert_eq!(total, out.len());
        out.advance(10);
        assert_eq!(out.len(), total - 10);
        out.advance(total - 10);
        assert!(out.is_empty());
    }

    #[test]
    fn append_keeps_order() {
        let mut a = WriteBuf::new();
        a.push_bytes(b"ab");
        let mut b = WriteBuf::new();
        b.push_bytes(b"cd");
        a.append(&mut b);
        a.push_bytes(b"ef");
        assert!(b.is_empty());
        assert_eq!(&a.to_bytes()[..], b"abcdef");
    }

    /// Frames as (flags, body) by decoding `bytes` whole.
    fn frames_of(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut buf = BytesMut::from(bytes);
        decode_all(&mut FrameDecoder::new(None), &mut buf)
            .into_iter()
            .map(|f| {
                let flags = (u8::from(f.more) * FLAG_MORE) | (u8::from(f.command) * FLAG_COMMAND);
                (flags, f.body.to_vec())
            })
            .collect()
    }

    fn drained(buf: &mut WriteBuf) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        buf.drain_frames(|flags, body| frames.push((flags & !FLAG_LONG, body.to_vec())));
        frames
    }

    #[test]
    fn drain_frames_hands_out_every_frame_and_large_bodies_in_place() {
        let large = Bytes::from(vec![7u8; WRITE_FLATTEN_THRESHOLD_BYTES + 1]);
        let mut out = WriteBuf::new();
        out.push_message(&["a", "bc"].into_iter().collect());
        out.push_frame(FLAG_MORE, &Bytes::from(vec![1u8; 300]));
        out.push_frame(0, &large);
        out.push_message(&Message::from("after"));
        let expected = frames_of(&out.to_bytes());
        let mut pointers = Vec::new();
        out.drain_frames(|_, body| pointers.push(body.as_ptr()));
        assert!(out.is_empty());
        assert!(pointers.contains(&large.as_ptr()), "large body copied");
        assert_eq!(pointers.len(), expected.len());
    }

    #[test]
    fn drain_frames_reassembles_frames_cut_at_any_chunk_boundary() {
        let mut encoded = WriteBuf::new();
        encoded.push_message(&["x", "yz"].into_iter().collect());
        encoded.push_frame(0, &Bytes::from(vec![5u8; 300]));
        encoded.push_message(&Message::from("tail"));
        let bytes = encoded.to_bytes();
        let expected = frames_of(&bytes);
        for cut in 1..bytes.len() {
            for second in [cut + 1, cut + 7, cut + 300] {
                let second = second.min(bytes.len());
                let mut buf = WriteBuf::new();
                buf.push_chunk(bytes.slice(..cut));
                buf.push_chunk(bytes.slice(cut..second));
                buf.push_chunk(bytes.slice(second..));
                assert_eq!(drained(&mut buf), expected, "cut at {cut} and {second}");
                assert!(buf.is_empty());
            }
        }
    }
}
