//! PLAIN (RFC 24): the client sends a user name and password in clear text, the server
//! checks them with its authenticator.
//!
//! ```text
//! client                         server
//! HELLO username password   →
//!                           ←    WELCOME              (or ERROR "400")
//! INITIATE metadata         →
//!                           ←    READY metadata
//! ```

use super::{Context, Established, Handshake, Step, put_command, unexpected};
use crate::security::{Credentials, ZapReply};
use crate::wire::ProtocolError;
use crate::wire::command::Metadata;
use bytes::{Bytes, BytesMut};

fn malformed_hello(reason: &'static str) -> ProtocolError {
    ProtocolError::MalformedCommand {
        command: "HELLO",
        reason,
    }
}

#[derive(Debug)]
pub(super) struct PlainClient {
    username: Bytes,
    password: Bytes,
    welcomed: bool,
}

impl PlainClient {
    pub(super) fn new(username: Bytes, password: Bytes) -> Self {
        PlainClient {
            username,
            password,
            welcomed: false,
        }
    }
}

impl Handshake for PlainClient {
    fn start(&mut self, _cx: &Context<'_>, out: &mut BytesMut) -> Result<Step, ProtocolError> {
        // Longer values cannot be sent; the options refuse them before we get here.
        let username = &self.username[..self.username.len().min(255)];
        let password = &self.password[..self.password.len().min(255)];
        put_command(
            out,
            b"HELLO",
            &[
                &[username.len() as u8],
                username,
                &[password.len() as u8],
                password,
            ],
        );
        Ok(Step::Continue)
    }

    fn command(
        &mut self,
        name: &[u8],
        data: Bytes,
        cx: &Context<'_>,
        out: &mut BytesMut,
    ) -> Result<Step, ProtocolError> {
        match (self.welcomed, name) {
            (false, b"WELCOME") => {
                if !data.is_empty() {
                    return Err(ProtocolError::MalformedCommand {
                        command: "WELCOME",
                        reason: "PLAIN WELCOME carries no data",
                    });
                }
                self.welcomed = true;
                put_command(out, b"INITIATE", &[cx.properties.as_encoded()]);
                Ok(Step::Continue)
            }
            (true, b"READY") => Ok(Step::Done(Established {
                properties: Metadata::decode_for("READY", data)?,
                zap: None,
                cipher: None,
            })),
            _ => Err(unexpected(name)),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct PlainServer {
    /// The authenticator's answer once HELLO passed.
    zap: Option<ZapReply>,
}

impl Handshake for PlainServer {
    fn command(
        &mut self,
        name: &[u8],
        data: Bytes,
        cx: &Context<'_>,
        out: &mut BytesMut,
    ) -> Result<Step, ProtocolError> {
        match (self.zap.is_some(), name) {
            (false, b"HELLO") => {
                let (username, password) = parse_hello(data)?;
                let reply = cx.authenticate(Credentials::Plain { username, password })?;
                // A PLAIN server without an authenticator would let anyone in: libzmq refuses
                // every client then, and so do we (the options refuse the setting earlier).
                let reply = reply.ok_or(ProtocolError::AuthenticationFailed {
                    status: 400,
                    reason: "PLAIN server has no authenticator".into(),
                })?;
                self.zap = Some(reply);
                put_command(out, b"WELCOME", &[]);
                Ok(Step::Continue)
            }
            (true, b"INITIATE") => {
                let properties = Metadata::decode_for("INITIATE", data)?;
                put_command(out, b"READY", &[cx.properties.as_encoded()]);
                Ok(Step::Done(Established {
                    properties,
                    zap: self.zap.take(),
                    cipher: None,
                }))
            }
            _ => Err(unexpected(name)),
        }
    }
}

/// Splits HELLO's data into user name and password, each a length byte then its bytes, with
/// nothing after (libzmq refuses extra bytes too).
fn parse_hello(data: Bytes) -> Result<(Bytes, Bytes), ProtocolError> {
    let mut rest = data;
    let mut field = |what| {
        let Some(&len) = rest.first() else {
            return Err(malformed_hello(what));
        };
        let len = usize::from(len);
        if rest.len() < 1 + len {
            return Err(malformed_hello(what));
        }
        let value = rest.slice(1..1 + len);
        rest = rest.slice(1 + len..);
        Ok(value)
    };
    let username = field("user name is missing or truncated")?;
    let password = field("password is missing or truncated")?;
    if !rest.is_empty() {
        return Err(malformed_hello("bytes after the password"));
    }
    // Copied: credentials must not pin the read buffer they arrived in.
    Ok((
        Bytes::copy_from_slice(&username),
        Bytes::copy_from_slice(&password),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_fields_are_length_prefixed_with_nothing_after() {
        let (user, pass) = parse_hello(Bytes::from_static(b"\x05admin\x06secret")).unwrap();
        assert_eq!((&user[..], &pass[..]), (&b"admin"[..], &b"secret"[..]));
        assert_eq!(parse_hello(Bytes::from_static(b"\x00\x00")).unwrap().0, "");
        for bad in [
            &b""[..],
            b"\x05adm",
            b"\x05admin",
            b"\x05admin\x06sec",
            b"\x01a\x01bX",
        ] {
            assert!(matches!(
                parse_hello(Bytes::copy_from_slice(bad)),
                Err(ProtocolError::MalformedCommand {
                    command: "HELLO",
                    ..
                })
            ));
        }
    }
}
