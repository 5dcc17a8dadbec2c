//! `commands`: `Command` and `Metadata` encode–decode round trips, and raw bytes into the
//! decoders.

use super::*;

#[derive(Arbitrary, Debug)]
enum ArbCommand {
    Ready(Vec<(Vec<u8>, Vec<u8>)>),
    Error(Vec<u8>),
    Subscribe(Vec<u8>),
    Cancel(Vec<u8>),
    Ping {
        ttl_deciseconds: u16,
        context: Vec<u8>,
    },
    Pong(Vec<u8>),
    Unknown {
        name: Vec<u8>,
        data: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
struct CommandsInput {
    commands: Vec<ArbCommand>,
    lookups: Vec<Vec<u8>>,
    /// Fed raw to `Command::decode` and `Metadata::decode`.
    raw: Vec<u8>,
}

/// The whole encoded command frame, checked to be exactly one well-formed command frame in
/// the shortest header form; returns its body.
fn encode_command(command: &Command) -> Bytes {
    let mut out = BytesMut::new();
    command.encode(&mut out);
    let total = out.len();
    let mut decoder = FrameDecoder::new(None);
    let frame = decoder
        .decode(&mut out)
        .expect("encoded command frame is valid")
        .expect("encoded command frame is complete");
    assert!(out.is_empty(), "command encoded past its frame");
    assert!(frame.command && !frame.more, "command frame flags");
    let header = if frame.body.len() <= 255 { 2 } else { 9 };
    assert_eq!(
        total,
        header + frame.body.len(),
        "header not in the shortest form"
    );
    frame.body
}

/// `commands` target: every command encodes to one frame that decodes back to it (with the
/// limits the encoder applies: metadata names and ERROR reasons truncated to 255 bytes; PING
/// and PONG contexts over 16 bytes refused by the decoder); metadata lookups are by first
/// case-insensitive match; and arbitrary bytes into `Command::decode` and `Metadata::decode`
/// never panic, and whatever they accept re-encodes to exactly the same bytes.
pub fn commands(data: &[u8]) {
    let Some(input) = structured::<CommandsInput>(data) else {
        return;
    };
    for arb in &input.commands {
        let (command, expect) = match arb {
            ArbCommand::Ready(props) => {
                let mut meta = Metadata::new();
                for (name, value) in props {
                    meta.insert(Bytes::copy_from_slice(name), Bytes::copy_from_slice(value));
                }
                assert_eq!(meta.len(), props.len());
                assert_eq!(meta.is_empty(), props.is_empty());
                for ((name, value), (n, v)) in meta.iter().zip(props) {
                    assert_eq!(&name[..], &n[..n.len().min(255)]);
                    assert_eq!(&value[..], &v[..]);
                }
                for key in &input.lookups {
                    let Ok(key) = std::str::from_utf8(key) else {
                        continue;
                    };
                    let want = props
                        .iter()
                        .find(|(n, _)| n[..n.len().min(255)].eq_ignore_ascii_case(key.as_bytes()))
                        .map(|(_, v)| &v[..]);
                    assert_eq!(
                        meta.get(key).map(|v| v.to_vec()),
                        want.map(<[u8]>::to_vec),
                        "lookup of {key:?}"
                    );
                }
                let expect = if props.iter().any(|(n, _)| n.is_empty()) {
                    Err(malformed("READY", "empty property name"))
                } else {
                    Ok(Command::Ready(meta.clone()))
                };
                (Command::Ready(meta), expect)
            }
            ArbCommand::Error(reason) => {
                let reason = Bytes::copy_from_slice(reason);
                let cut = reason.slice(..reason.len().min(255));
                (
                    Command::Error { reason },
                    Ok(Command::Error { reason: cut }),
                )
            }
            ArbCommand::Subscribe(p) => {
                let c = Command::Subscribe(Bytes::copy_from_slice(p));
                (c.clone(), Ok(c))
            }
            ArbCommand::Cancel(p) => {
                let c = Command::Cancel(Bytes::copy_from_slice(p));
                (c.clone(), Ok(c))
            }
            ArbCommand::Ping {
                ttl_deciseconds,
                context,
            } => {
                let c = Command::Ping {
                    ttl_deciseconds: *ttl_deciseconds,
                    context: Bytes::copy_from_slice(context),
                };
                if context.len() > MAX_PING_CONTEXT_BYTES {
                    (c, Err(malformed("PING", "context longer than 16 bytes")))
                } else {
                    (c.clone(), Ok(c))
                }
            }
            ArbCommand::Pong(context) => {
                let c = Command::Pong {
                    context: Bytes::copy_from_slice(context),
                };
                if context.len() > MAX_PING_CONTEXT_BYTES {
                    (c, Err(malformed("PONG", "context longer than 16 bytes")))
                } else {
                    (c.clone(), Ok(c))
                }
            }
            ArbCommand::Unknown { name, data } => {
                // The wire carries a name of at most 255 bytes, and a known name is that
                // command, not an unknown one: both are the caller's to avoid.
                if name.len() > 255 || KNOWN_COMMANDS.contains(&&name[..]) {
                    continue;
                }
                let c = Command::Unknown {
                    name: Bytes::copy_from_slice(name),
                    data: Bytes::copy_from_slice(data),
                };
                if name.is_empty() {
                    (c, Err(malformed("?", "command name is empty or truncated")))
                } else {
                    (c.clone(), Ok(c))
                }
            }
        };
        let body = encode_command(&command);
        assert_eq!(&body[1..1 + usize::from(body[0])], command.name());
        let decoded = Command::decode(body);
        assert_eq!(decoded, expect, "round trip of {command:?}");
        if let Ok(decoded) = decoded {
            assert_eq!(decoded.label(), command.label());
        }
    }

    // Raw bytes: never a panic; whatever decodes re-encodes to the same bytes.
    let raw = Bytes::copy_from_slice(&input.raw);
    if let Ok(command) = Command::decode(raw.clone()) {
        assert_eq!(encode_command(&command), raw, "re-encoding {command:?}");
    }
    if let Ok(meta) = Metadata::decode(raw.clone()) {
        let body = encode_command(&Command::Ready(meta));
        assert_eq!(&body[6..], &raw[..], "re-encoding metadata");
    }
}
