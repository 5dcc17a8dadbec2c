//! ZMTP commands (RFC 23 §"Commands", RFC 37): READY with its metadata, ERROR, SUBSCRIBE,
//! CANCEL, PING and PONG.
//!
//! A command frame's body is a 1-byte name length, the name, then command data. Unknown
//! commands are returned as [`Command::Unknown`], not rejected: RFC 37 lets peers add commands.

use super::ProtocolError;
use super::frame::{FLAG_COMMAND, encode_header};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Longest PING context RFC 37 allows.
pub const MAX_PING_CONTEXT_BYTES: usize = 16;

/// A command frame's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Ends the NULL handshake, carrying the sender's metadata.
    Ready(Metadata),
    /// A fatal error; the sender closes the connection after it.
    Error {
        /// Why, in human-readable text (at most 255 bytes).
        reason: Bytes,
    },
    /// ZMTP 3.1 subscription to a topic prefix.
    Subscribe(Bytes),
    /// ZMTP 3.1 cancellation of a subscription.
    Cancel(Bytes),
    /// ZMTP 3.1 heartbeat.
    Ping {
        /// How long the peer may wait for traffic before timing us out, in deciseconds
        /// (0: no limit).
        ttl_deciseconds: u16,
        /// Opaque bytes to echo in the PONG (at most 16).
        context: Bytes,
    },
    /// Answer to a PING, echoing its context.
    Pong {
        /// The PING's context.
        context: Bytes,
    },
    /// A command this implementation does not know; passed up, not fatal.
    Unknown {
        /// The command name.
        name: Bytes,
        /// The command data after the name.
        data: Bytes,
    },
}

impl Command {
    /// The command name as sent on the wire.
    pub fn name(&self) -> &[u8] {
        match self {
            Command::Ready(_) => b"READY",
            Command::Error { .. } => b"ERROR",
            Command::Subscribe(_) => b"SUBSCRIBE",
            Command::Cancel(_) => b"CANCEL",
            Command::Ping { .. } => b"PING",
            Command::Pong { .. } => b"PONG",
            Command::Unknown { name, .. } => name,
        }
    }

    /// A short static label for errors and logs.
    pub fn label(&self) -> &'static str {
        label_of(self.name())
    }

    /// Splits a command frame body into its name and the data after it.
    pub fn split_name(mut body: Bytes) -> Result<(Bytes, Bytes), ProtocolError> {
        let malformed = |reason| ProtocolError::MalformedCommand {
            command: "?",
            reason,
        };
        let Some(&name_len) = body.first() else {
            return Err(malformed("empty command frame"));
        };
        let name_len = usize::from(name_len);
        if name_len == 0 || body.len() < 1 + name_len {
            return Err(malformed("command name is empty or truncated"));
        }
        body.advance(1);
        let name = body.split_to(name_len);
        Ok((name, body))
    }

    /// Parses a command frame body.
    pub fn decode(body: Bytes) -> Result<Command, ProtocolError> {
        let malformed = |command, reason| ProtocolError::MalformedCommand { command, reason };
        let (name, mut data) = Self::split_name(body)?;
        let command = match &name[..] {
            b"READY" => Command::Ready(Metadata::decode(data)?),
            b"ERROR" => {
                let Some(&len) = data.first() else {
                    return Err(malformed("ERROR", "missing reason length"));
                };
                if data.len() != 1 + usize::from(len) {
                    return Err(malformed("ERROR", "reason length does not match the frame"));
                }
                data.advance(1);
                Command::Error { reason: data }
            }
            b"SUBSCRIBE" => Command::Subscribe(data),
            b"CANCEL" => Command::Cancel(data),
            b"PING" => {
                if data.len() < 2 {
                    return Err(malformed("PING", "missing TTL"));
                }
                let ttl_deciseconds = data.get_u16();
                if data.len() > MAX_PING_CONTEXT_BYTES {
                    return Err(malformed("PING", "context longer than 16 bytes"));
                }
                Command::Ping {
                    ttl_deciseconds,
                    context: data,
                }
            }
            b"PONG" => {
                if data.len() > MAX_PING_CONTEXT_BYTES {
                    return Err(malformed("PONG", "context longer than 16 bytes"));
                }
                Command::Pong { context: data }
            }
            _ => Command::Unknown { name, data },
        };
        Ok(command)
    }

    fn body_len(&self) -> usize {
        let name_len = self.name().len().min(255);
        let data_len = match self {
            Command::Ready(meta) => meta.encoded_len(),
            Command::Error { reason } => 1 + reason.len().min(255),
            Command::Subscribe(p) | Command::Cancel(p) => p.len(),
            Command::Ping { context, .. } => 2 + context.len(),
            Command::Pong { context } => context.len(),
            Command::Unknown { data, .. } => data.len(),
        };
        1 + name_len + data_len
    }

    /// Encodes the whole command frame (header included) onto `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        // A name is at most 255 bytes on the wire: a longer `Unknown` name is truncated, as
        // metadata names and ERROR reasons are.
        let name = &self.name()[..self.name().len().min(255)];
        let body_len = self.body_len();
        dst.reserve(9 + body_len);
        encode_header(dst, FLAG_COMMAND, body_len);
        dst.put_u8(name.len() as u8);
        dst.put_slice(name);
        match self {
            Command::Ready(meta) => meta.encode(dst),
            Command::Error { reason } => {
                let reason = &reason[..reason.len().min(255)];
                dst.put_u8(reason.len() as u8);
                dst.put_slice(reason);
            }
            Command::Subscribe(p) | Command::Cancel(p) => dst.put_slice(p),
            Command::Ping {
                ttl_deciseconds,
                context,
            } => {
                dst.put_u16(*ttl_deciseconds);
                dst.put_slice(context);
            }
            Command::Pong { context } => dst.put_slice(context),
            Command::Unknown { data, .. } => dst.put_slice(data),
        }
    }
}

/// A static label for the command called `name`: its name when ZMTP or a security mechanism
/// defines it, else "unknown".
pub fn label_of(name: &[u8]) -> &'static str {
    match name {
        b"READY" => "READY",
        b"ERROR" => "ERROR",
        b"SUBSCRIBE" => "SUBSCRIBE",
        b"CANCEL" => "CANCEL",
        b"PING" => "PING",
        b"PONG" => "PONG",
        b"HELLO" => "HELLO",
        b"WELCOME" => "WELCOME",
        b"INITIATE" => "INITIATE",
        b"MESSAGE" => "MESSAGE",
        _ => "unknown",
    }
}

/// Metadata properties of a READY command: ordered name/value pairs.
///
/// Names are 1–255 bytes and compared case-insensitively (RFC 23); values are up to 2³¹−1
/// bytes. The properties are kept in their wire encoding, validated once when decoded and
/// read in place, so a peer's metadata costs what it weighs on the wire: a 16 MiB READY of
/// 6-byte properties held 276 MiB when each property was an entry of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The encoded property list: `name-len name value-len(4, BE) value`, repeated.
    encoded: Bytes,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a property. Names longer than 255 bytes are truncated, as the wire cannot carry
    /// them.
    pub fn insert(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) {
        let name = name.into();
        let name = &name[..name.len().min(255)];
        let value = value.into();
        let mut encoded =
            BytesMut::with_capacity(self.encoded.len() + 5 + name.len() + value.len());
        encoded.put_slice(&self.encoded);
        encoded.put_u8(name.len() as u8);
        encoded.put_slice(name);
        encoded.put_u32(value.len() as u32);
        encoded.put_slice(&value);
        self.encoded = encoded.freeze();
    }

    /// The value of the first property called `name` (ASCII case-insensitive), as a slice
    /// of the metadata (no copy).
    pub fn get(&self, name: &str) -> Option<Bytes> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// All properties in the order received, as slices of the metadata (no copy).
    pub fn iter(&self) -> impl Iterator<Item = (Bytes, Bytes)> + '_ {
        let mut rest = self.encoded.clone();
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            // The encoding was validated when it was built or decoded.
            let name_len = usize::from(rest.get_u8());
            let name = rest.split_to(name_len);
            let value_len = rest.get_u32() as usize;
            Some((name, rest.split_to(value_len)))
        })
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }

    fn encoded_len(&self) -> usize {
        self.encoded.len()
    }

    /// The property list in its wire encoding (what READY and INITIATE carry).
    pub fn as_encoded(&self) -> &[u8] {
        &self.encoded
    }

    fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.encoded);
    }

    /// Validates the property list of a READY body and keeps a copy of it: metadata lives as
    /// long as the connection, and a slice would pin the whole read buffer it arrived in.
    pub fn decode(data: Bytes) -> Result<Metadata, ProtocolError> {
        Self::decode_for("READY", data)
    }

    /// [`Metadata::decode`] for the property list of `command` (READY, or a PLAIN or CURVE
    /// INITIATE), which faults name.
    pub fn decode_for(command: &'static str, data: Bytes) -> Result<Metadata, ProtocolError> {
        let malformed = |reason| ProtocolError::MalformedCommand { command, reason };
        let mut rest = &data[..];
        while let Some((&name_len, after)) = rest.split_first() {
            let name_len = usize::from(name_len);
            if name_len == 0 {
                return Err(malformed("empty property name"));
            }
            if after.len() < name_len {
                return Err(malformed("property name runs past the end"));
            }
            let after = &after[name_len..];
            let Some((value_len, after)) = after.split_first_chunk::<4>() else {
                return Err(malformed("property value length runs past the end"));
            };
            let value_len = u32::from_be_bytes(*value_len) as usize;
            if after.len() < value_len {
                return Err(malformed("property value runs past the end"));
            }
            rest = &after[value_len..];
        }
        Ok(Metadata {
            encoded: Bytes::copy_from_slice(&data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::FrameDecoder;

    fn encoded(cmd: &Command) -> Vec<u8> {
        let mut buf = BytesMut::new();
        cmd.encode(&mut buf);
        buf.to_vec()
    }

    fn roundtrip(cmd: Command) {
        let mut buf = BytesMut::from(&encoded(&cmd)[..]);
        let frame = FrameDecoder::new(None).decode(&mut buf).unwrap().unwrap();
        assert!(frame.command);
        assert_eq!(Command::decode(frame.body).unwrap(), cmd);
    }

    #[test]
    fn unknown_command_name_past_255_bytes_is_truncated() {
        let cmd = Command::Unknown {
            name: Bytes::from(vec![b'N'; 300]),
            data: Bytes::from("d"),
        };
        let mut buf = BytesMut::from(&encoded(&cmd)[..]);
        let frame = FrameDecoder::new(None).decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            Command::decode(frame.body).unwrap(),
            Command::Unknown {
                name: Bytes::from(vec![b'N'; 255]),
                data: Bytes::from("d"),
            }
        );
    }

    #[test]
    fn ready_bytes_match_rfc() {
        let mut meta = Metadata::new();
        meta.insert("Socket-Type", "PUSH");
        let bytes = encoded(&Command::Ready(meta));
        let mut expected = vec![0x04, 26, 5];
        expected.extend_from_slice(b"READY");
        expected.push(11);
        expected.extend_from_slice(b"Socket-Type");
        expected.extend_from_slice(&[0, 0, 0, 4]);
        expected.extend_from_slice(b"PUSH");
        assert_eq!(bytes, expected);
    }

    #[test]
    fn every_command_roundtrips() {
        let mut meta = Metadata::new();
        meta.insert("Socket-Type", "DEALER");
        meta.insert("Identity", "");
        roundtrip(Command::Ready(meta));
        roundtrip(Command::Error {
            reason: Bytes::from("bad"),
        });
        roundtrip(Command::Subscribe(Bytes::from("topic")));
        roundtrip(Command::Subscribe(Bytes::new()));
        roundtrip(Command::Cancel(Bytes::from("topic")));
        roundtrip(Command::Ping {
            ttl_deciseconds: 300,
            context: Bytes::from("ctx"),
        });
        roundtrip(Command::Pong {
            context: Bytes::from("ctx"),
        });
        roundtrip(Command::Unknown {
            name: Bytes::from("HELLO"),
            data: Bytes::from("x"),
        });
    }

    #[test]
    fn ping_bytes_match_rfc() {
        let bytes = encoded(&Command::Ping {
            ttl_deciseconds: 0x0102,
            context: Bytes::from("ab"),
        });
        assert_eq!(bytes, b"\x04\x09\x04PING\x01\x02ab");
        assert_eq!(
            encoded(&Command::Subscribe(Bytes::from("A"))),
            b"\x04\x0b\x09SUBSCRIBEA"
        );
        assert_eq!(
            encoded(&Command::Error {
                reason: Bytes::from("no")
            }),
            b"\x04\x09\x05ERROR\x02no"
        );
    }

    #[test]
    fn metadata_lookup_is_case_insensitive() {
        let mut meta = Metadata::new();
        meta.insert("Socket-Type", "REQ");
        assert_eq!(meta.get("socket-type").as_deref(), Some(&b"REQ"[..]));
        assert_eq!(meta.get("Identity"), None);
    }

    #[test]
    fn rejects_truncated_metadata() {
        let cases: [&[u8]; 4] = [
            b"\x05READY\x0bSocket",
            b"\x05READY\x0bSocket-Type\x00\x00",
            b"\x05READY\x0bSocket-Type\x00\x00\x00\x05PUSH",
            b"\x05READY\x00\x00\x00\x00\x00",
        ];
        for body in cases {
            assert!(
                matches!(
                    Command::decode(Bytes::from_static(body)),
                    Err(ProtocolError::MalformedCommand {
                        command: "READY",
                        ..
                    })
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn rejects_overlong_metadata_value() {
        let body = b"\x05READY\x04Name\xff\xff\xff\xffvalue";
        assert_eq!(
            Command::decode(Bytes::from_static(body)),
            Err(ProtocolError::MalformedCommand {
                command: "READY",
                reason: "property value runs past the end"
            })
        );
    }

    #[test]
    fn rejects_malformed_ping_and_names() {
        assert!(Command::decode(Bytes::from_static(b"\x04PING\x00")).is_err());
        assert!(
            Command::decode(Bytes::from_static(b"\x04PING\x00\x00012345678901234567")).is_err()
        );
        assert!(Command::decode(Bytes::from_static(b"")).is_err());
        assert!(Command::decode(Bytes::from_static(b"\x09PING")).is_err());
        assert!(Command::decode(Bytes::from_static(b"\x05ERROR\x05no")).is_err());
    }
}
