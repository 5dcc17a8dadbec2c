//! NULL (RFC 23): each side sends READY with its properties; no credentials. An
//! authenticator, when the socket has one, can still refuse the peer by address.

use super::{Context, Established, Handshake, Step, put_command, unexpected};
use crate::security::{Credentials, ZapReply};
use crate::wire::ProtocolError;
use crate::wire::command::Metadata;
use bytes::{Bytes, BytesMut};

#[derive(Debug, Default)]
pub(super) struct NullHandshake {
    zap: Option<ZapReply>,
}

impl Handshake for NullHandshake {
    fn start(&mut self, cx: &Context<'_>, out: &mut BytesMut) -> Result<Step, ProtocolError> {
        self.zap = cx.authenticate(Credentials::Null)?;
        put_command(out, b"READY", &[cx.properties.as_encoded()]);
        Ok(Step::Continue)
    }

    fn command(
        &mut self,
        name: &[u8],
        data: Bytes,
        _cx: &Context<'_>,
        _out: &mut BytesMut,
    ) -> Result<Step, ProtocolError> {
        if name != b"READY" {
            return Err(unexpected(name));
        }
        Ok(Step::Done(Established {
            properties: Metadata::decode_for("READY", data)?,
            zap: self.zap.take(),
            cipher: None,
        }))
    }
}
