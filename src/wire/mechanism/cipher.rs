//! CURVE traffic (RFC 26 MESSAGE): every frame after the handshake travels in a box, under a
//! nonce that counts up on each side.
//!
//! ```text
//! MESSAGE frame body: "\x07MESSAGE" | short nonce (8, big-endian) | tag (16) | box
//! box plaintext:      flags (1: MORE 0x01, COMMAND 0x02) | payload
//! full nonce:         "CurveZMQMESSAGEC" (client) or "...S" (server) | short nonce
//! ```
//!
//! libzmq sends the MESSAGE as a data frame without MORE (its boxed message replaces the
//! original and keeps none of its flags), and reads any frame as a MESSAGE after the
//! handshake; ferromq sends what libzmq sends and accepts a MESSAGE in a command frame too.

use super::nacl::{BoxKey, PrefixedKey};
use crate::wire::ProtocolError;
use crate::wire::frame::{
    FLAG_COMMAND, FLAG_MORE, Frame, FrameDecoder, FrameMut, WriteBuf, encode_header,
};
use bytes::{Buf, BufMut, BytesMut};
use std::fmt;

/// "\x07MESSAGE".
const MESSAGE_NAME: &[u8] = b"\x07MESSAGE";
/// Name, short nonce and tag before the box's ciphertext.
const MESSAGE_HEADER_BYTES: usize = MESSAGE_NAME.len() + 8 + 16;
/// Inner flags: more frames of this message follow.
const INNER_MORE: u8 = 0x01;
/// Inner flags: the payload is a command (ZMTP 3.1, as libzmq boxes PING, SUBSCRIBE, ...).
const INNER_COMMAND: u8 = 0x02;

/// Boxes outgoing frames and opens incoming ones for one CURVE connection.
pub(crate) struct Cipher {
    /// The session key for our boxes and for the peer's, each with its direction's nonce
    /// prefix applied once.
    ours: PrefixedKey,
    theirs: PrefixedKey,
    /// Our next short nonce.
    next: u64,
    /// The peer's last short nonce (from its last handshake command or MESSAGE).
    peer_last: u64,
    /// The boxes of a batch: kept from batch to batch, so a streaming connection reuses
    /// their memory once the previous batch is written.
    sealed: BytesMut,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("next", &self.next)
            .field("peer_last", &self.peer_last)
            .finish_non_exhaustive()
    }
}

impl Cipher {
    /// A cipher for the client (`is_server` false) or server side, whose next short nonce is
    /// `next` and whose peer last used `peer_last`.
    pub(super) fn new(key: BoxKey, is_server: bool, next: u64, peer_last: u64) -> Self {
        let (ours, theirs) = match is_server {
            true => (b"CurveZMQMESSAGES", b"CurveZMQMESSAGEC"),
            false => (b"CurveZMQMESSAGEC", b"CurveZMQMESSAGES"),
        };
        Cipher {
            ours: key.prefixed(ours),
            theirs: key.prefixed(theirs),
            next,
            peer_last,
            sealed: BytesMut::new(),
        }
    }

    /// Boxes every frame of `batch` (frames we encoded ourselves) onto `out`, in order,
    /// leaving `batch` empty with its memory for the next batch.
    pub fn seal_batch(&mut self, batch: &mut WriteBuf, out: &mut WriteBuf) {
        let mut sealed = std::mem::take(&mut self.sealed);
        // Boxes add 33 bytes a frame: twice the clear size covers frames of 35 bytes and up.
        sealed.reserve(2 * batch.len());
        batch.drain_frames(|flags, body| {
            let more = flags & FLAG_MORE != 0;
            let command = flags & FLAG_COMMAND != 0;
            self.seal(more, command, body, &mut sealed);
        });
        out.push_chunk(sealed.split().freeze());
        self.sealed = sealed;
    }

    /// Boxes every frame of `plain` (frames we encoded ourselves) onto `out`.
    pub fn seal_frames(&mut self, plain: &mut BytesMut, out: &mut BytesMut) {
        let mut decoder = FrameDecoder::new(None);
        while let Ok(Some(Frame {
            more,
            command,
            body,
        })) = decoder.decode(plain)
        {
            self.seal(more, command, &body, out);
        }
        debug_assert!(plain.is_empty(), "our own frames always decode whole");
    }

    /// Boxes one frame (`more`/`command` as the plaintext frame had them) onto `out`.
    pub fn seal(&mut self, more: bool, command: bool, payload: &[u8], out: &mut BytesMut) {
        let short = self.next;
        // 2^64 - 1 commands are more than any connection sends (RFC 26 forbids more).
        self.next += 1;
        let body_len = MESSAGE_HEADER_BYTES + 1 + payload.len();
        out.reserve(9 + body_len);
        encode_header(out, 0, body_len);
        out.put_slice(MESSAGE_NAME);
        out.put_u64(short);
        let tag_at = out.len();
        out.put_bytes(0, 16);
        let text_at = out.len();
        let more = if more { INNER_MORE } else { 0 };
        let command = if command { INNER_COMMAND } else { 0 };
        out.put_u8(more | command);
        out.put_slice(payload);
        let tag = self.ours.seal_in_place(short, &mut out[text_at..]);
        out[tag_at..text_at].copy_from_slice(&tag);
    }

    /// Opens one MESSAGE frame from the peer, in place, into the frame it carried: the
    /// payload stays where it arrived in the receive buffer, as an unencrypted one does.
    pub fn open(&mut self, frame: FrameMut) -> Result<Frame, ProtocolError> {
        let malformed = |reason| ProtocolError::MalformedCommand {
            command: "MESSAGE",
            reason,
        };
        let mut body = frame.body;
        if !body.starts_with(MESSAGE_NAME) {
            return Err(ProtocolError::ExpectedMessageBox);
        }
        if frame.more {
            return Err(malformed("MESSAGE frame has the MORE flag"));
        }
        if body.len() < MESSAGE_HEADER_BYTES + 1 {
            return Err(malformed("shorter than 33 bytes"));
        }
        let short = u64::from_be_bytes(body[8..16].try_into().expect("8 bytes"));
        if short <= self.peer_last {
            return Err(ProtocolError::NonceNotIncreasing {
                nonce: short,
                last: self.peer_last,
            });
        }
        let (header, text) = body.split_at_mut(MESSAGE_HEADER_BYTES);
        self.theirs
            .open_in_place(short, text, &header[16..32])
            .map_err(|_| ProtocolError::Crypto {
                what: "a MESSAGE box does not open: forged, corrupted or from another session",
            })?;
        self.peer_last = short;
        let flags = text[0];
        if flags & !(INNER_MORE | INNER_COMMAND) != 0 {
            return Err(malformed("reserved flag bits set in the box"));
        }
        body.advance(MESSAGE_HEADER_BYTES + 1);
        Ok(Frame {
            more: flags & INNER_MORE != 0,
            command: flags & INNER_COMMAND != 0,
            body: body.freeze(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::mechanism::nacl::{Transient, box_key};

    /// A client and a server cipher sharing one session key.
    fn pair() -> (Cipher, Cipher) {
        let c = Transient::generate();
        let s = Transient::generate();
        let client = Cipher::new(box_key(c.secret(), s.public()).unwrap(), false, 3, 1);
        let server = Cipher::new(box_key(s.secret(), c.public()).unwrap(), true, 2, 2);
        (client, server)
    }

    fn frame(body: &[u8], more: bool, command: bool) -> FrameMut {
        FrameMut {
            more,
            command,
            body: BytesMut::from(body),
        }
    }

    /// The body of the one frame `seal` wrote.
    fn sealed_body(cipher: &mut Cipher, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        cipher.seal(true, false, payload, &mut out);
        out[2..].to_vec()
    }

    #[test]
    fn a_box_in_a_command_frame_opens_too() {
        let (mut client, mut server) = pair();
        let body = sealed_body(&mut client, b"hi");
        let opened = server.open(frame(&body, false, true)).unwrap();
        assert_eq!(
            (opened.more, opened.command, &opened.body[..]),
            (true, false, &b"hi"[..])
        );
    }

    #[test]
    fn short_boxes_and_outer_more_are_malformed() {
        let (mut client, mut server) = pair();
        let body = sealed_body(&mut client, b"");
        assert!(matches!(
            server.open(frame(&body[..32], false, false)),
            Err(ProtocolError::MalformedCommand {
                command: "MESSAGE",
                ..
            })
        ));
        assert!(matches!(
            server.open(frame(&body, true, false)),
            Err(ProtocolError::MalformedCommand {
                command: "MESSAGE",
                ..
            })
        ));
    }

    #[test]
    fn reserved_inner_flag_bits_are_refused() {
        let (client, mut server) = pair();
        // Box a plaintext whose flags byte has bit 2 set, as `seal` never would.
        let short = client.next;
        let mut text = vec![0x04, b'x'];
        let tag = client.ours.seal_in_place(short, &mut text);
        let mut body = MESSAGE_NAME.to_vec();
        body.extend_from_slice(&short.to_be_bytes());
        body.extend_from_slice(&tag);
        body.extend_from_slice(&text);
        assert!(matches!(
            server.open(frame(&body, false, false)),
            Err(ProtocolError::MalformedCommand {
                command: "MESSAGE",
                ..
            })
        ));
    }
}
