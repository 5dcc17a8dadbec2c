//! The 64-byte ZMTP greeting (RFC 23 §"Greeting", RFC 37).
//!
//! ```text
//! signature  0xFF, 8 padding bytes, 0x7F            bytes 0..10
//! version    major, minor                           bytes 10..12
//! mechanism  20 bytes, ASCII name, NUL-padded        bytes 12..32
//! as-server  0 or 1                                  byte  32
//! filler     31 zero bytes                           bytes 33..64
//! ```
//!
//! libzmq sends the greeting in pieces (signature first, then the rest once it has seen the
//! peer's signature), so the decoder checks each byte as soon as it is available and only
//! consumes the greeting once all 64 bytes are in.

use super::ProtocolError;
use bytes::{Buf, BytesMut};
use std::fmt;

/// Length of a ZMTP 3.x greeting in bytes.
pub const GREETING_LEN: usize = 64;
/// Offset of the version bytes: everything before is the signature.
const VERSION_OFFSET: usize = 10;
const MECHANISM_OFFSET: usize = 12;
const MECHANISM_LEN: usize = 20;
const AS_SERVER_OFFSET: usize = 32;

/// The highest protocol version ferromq speaks: ZMTP 3.1.
pub const OUR_VERSION: (u8, u8) = (3, 1);

/// A security mechanism name as carried in the greeting: up to 20 ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mechanism([u8; MECHANISM_LEN]);

impl Mechanism {
    /// The NULL mechanism (RFC 23): no authentication, no encryption.
    pub const NULL: Mechanism = Mechanism::from_static("NULL");

    /// A mechanism from its name. Names longer than 20 bytes are truncated.
    pub const fn from_static(name: &str) -> Mechanism {
        let bytes = name.as_bytes();
        let mut out = [0u8; MECHANISM_LEN];
        let mut i = 0;
        while i < bytes.len() && i < MECHANISM_LEN {
            out[i] = bytes[i];
            i += 1;
        }
        Mechanism(out)
    }

    /// The name without its NUL padding.
    pub fn name(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(MECHANISM_LEN);
        &self.0[..end]
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.name()))
    }
}

impl fmt::Debug for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mechanism({self})")
    }
}

/// A decoded or to-be-sent greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Greeting {
    /// Protocol version (major, minor).
    pub version: (u8, u8),
    /// Security mechanism.
    pub mechanism: Mechanism,
    /// Whether the sender is the server for the mechanism's handshake.
    pub as_server: bool,
}

impl Greeting {
    /// Our greeting for the NULL mechanism, as libzmq 4.3 sends it.
    pub const fn null() -> Greeting {
        Greeting {
            version: OUR_VERSION,
            mechanism: Mechanism::NULL,
            as_server: false,
        }
    }

    /// Encodes the full 64-byte greeting.
    ///
    /// The 8 padding bytes carry `1` in the last one, as libzmq sends them: a ZMTP 1.0 peer
    /// reads them as the length of an empty identity frame, which keeps old peers from
    /// misparsing the greeting.
    pub fn encode(&self) -> [u8; GREETING_LEN] {
        let mut out = [0u8; GREETING_LEN];
        out[0] = 0xFF;
        out[8] = 0x01;
        out[9] = 0x7F;
        out[VERSION_OFFSET] = self.version.0;
        out[VERSION_OFFSET + 1] = self.version.1;
        out[MECHANISM_OFFSET..MECHANISM_OFFSET + MECHANISM_LEN].copy_from_slice(&self.mechanism.0);
        out[AS_SERVER_OFFSET] = u8::from(self.as_server);
        out
    }

    /// Decodes a greeting from the front of `buf`.
    ///
    /// Returns `Ok(None)` while fewer than 64 bytes are available, after checking every byte
    /// that is there (so a bad signature fails on its first byte, not after 64). On success the
    /// 64 bytes are consumed from `buf`.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Greeting>, ProtocolError> {
        Self::check_prefix(buf)?;
        if buf.len() < GREETING_LEN {
            return Ok(None);
        }
        let mut mechanism = [0u8; MECHANISM_LEN];
        mechanism.copy_from_slice(&buf[MECHANISM_OFFSET..MECHANISM_OFFSET + MECHANISM_LEN]);
        let greeting = Greeting {
            version: (buf[VERSION_OFFSET], buf[VERSION_OFFSET + 1]),
            mechanism: Mechanism(mechanism),
            as_server: buf[AS_SERVER_OFFSET] != 0,
        };
        buf.advance(GREETING_LEN);
        Ok(Some(greeting))
    }

    /// Checks the signature and major version among the bytes received so far.
    fn check_prefix(buf: &[u8]) -> Result<(), ProtocolError> {
        let signature = [(0usize, 0xFFu8), (9, 0x7F)];
        for (offset, expected) in signature {
            if let Some(&found) = buf.get(offset)
                && found != expected
            {
                return Err(ProtocolError::BadSignature {
                    offset: offset as u8,
                    found,
                    expected,
                });
            }
        }
        // Judged once both version bytes are in, so the fault reads the same however the
        // stream was split.
        if let Some(&[major, minor]) = buf.get(VERSION_OFFSET..VERSION_OFFSET + 2)
            && major < 3
        {
            return Err(ProtocolError::UnsupportedVersion { major, minor });
        }
        Ok(())
    }

    /// The version both sides speak: the lower of ours and the peer's (a peer announcing a
    /// future 4.x is spoken to in 3.1, as RFC 23 asks of implementations).
    pub fn negotiate(ours: (u8, u8), theirs: (u8, u8)) -> (u8, u8) {
        ours.min(theirs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The greeting libzmq 4.3 sends with the NULL mechanism.
    pub(crate) const LIBZMQ_NULL_GREETING: [u8; 64] = {
        let mut g = [0u8; 64];
        g[0] = 0xFF;
        g[8] = 0x01;
        g[9] = 0x7F;
        g[10] = 3;
        g[11] = 1;
        g[12] = b'N';
        g[13] = b'U';
        g[14] = b'L';
        g[15] = b'L';
        g
    };

    #[test]
    fn encodes_null_greeting_like_libzmq() {
        assert_eq!(Greeting::null().encode(), LIBZMQ_NULL_GREETING);
    }

    #[test]
    fn decodes_every_field() {
        let mut bytes = Greeting::null().encode();
        bytes[11] = 0;
        bytes[32] = 1;
        bytes[12..32].copy_from_slice(b"PLAIN\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        let mut buf = BytesMut::from(&bytes[..]);
        buf.extend_from_slice(b"rest");
        let g = Greeting::decode(&mut buf).unwrap().unwrap();
        assert_eq!(g.version, (3, 0));
        assert_eq!(g.mechanism.name(), b"PLAIN");
        assert!(g.as_server);
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn decodes_at_every_split() {
        let bytes = Greeting::null().encode();
        for split in 0..GREETING_LEN {
            let mut buf = BytesMut::from(&bytes[..split]);
            assert_eq!(Greeting::decode(&mut buf), Ok(None));
            assert_eq!(buf.len(), split, "nothing consumed before all 64 bytes");
            buf.extend_from_slice(&bytes[split..]);
            assert_eq!(Greeting::decode(&mut buf), Ok(Some(Greeting::null())));
        }
    }

    #[test]
    fn rejects_bad_signature_on_first_byte() {
        let mut buf = BytesMut::from(&b"G"[..]);
        assert_eq!(
            Greeting::decode(&mut buf),
            Err(ProtocolError::BadSignature {
                offset: 0,
                found: b'G',
                expected: 0xFF
            })
        );
    }

    #[test]
    fn rejects_bad_signature_tail() {
        let mut bytes = Greeting::null().encode();
        bytes[9] = 0x7E;
        let mut buf = BytesMut::from(&bytes[..10]);
        assert!(matches!(
            Greeting::decode(&mut buf),
            Err(ProtocolError::BadSignature { offset: 9, .. })
        ));
    }

    #[test]
    fn rejects_zmtp_2_peer() {
        let mut bytes = Greeting::null().encode();
        bytes[10] = 1;
        bytes[11] = 0;
        let mut buf = BytesMut::from(&bytes[..12]);
        assert_eq!(
            Greeting::decode(&mut buf),
            Err(ProtocolError::UnsupportedVersion { major: 1, minor: 0 })
        );
    }

    #[test]
    fn old_version_fault_is_the_same_however_the_stream_is_split() {
        let mut bytes = Greeting::null().encode();
        bytes[10] = 1;
        bytes[11] = 8;
        let mut buf = BytesMut::from(&bytes[..11]);
        assert_eq!(
            Greeting::decode(&mut buf),
            Ok(None),
            "judged before the minor arrived"
        );
        buf.extend_from_slice(&bytes[11..12]);
        assert_eq!(
            Greeting::decode(&mut buf),
            Err(ProtocolError::UnsupportedVersion { major: 1, minor: 8 })
        );
    }

    #[test]
    fn negotiates_lower_version() {
        assert_eq!(Greeting::negotiate((3, 1), (3, 0)), (3, 0));
        assert_eq!(Greeting::negotiate((3, 1), (3, 1)), (3, 1));
        assert_eq!(Greeting::negotiate((3, 1), (4, 0)), (3, 1));
    }
}
