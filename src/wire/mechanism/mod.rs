//! Security mechanisms (RFC 23 NULL, RFC 24 PLAIN, RFC 25/26 CURVE) as sans-IO handshake
//! state machines behind one interface, `Handshake`.
//!
//! The [`Connection`](super::Connection) owns the greeting, the ERROR command, the
//! Socket-Type check and traffic; a mechanism owns only the commands between the greeting and
//! the first message, and says when the handshake is done with `Established`. CURVE also
//! hands over a `Cipher` that boxes and opens every frame afterwards.
//!
//! Authentication (RFC 27 ZAP) is a call to the socket's [`Zap`] from the server side of the
//! handshake (and from either NULL peer that has one).

mod cipher;
mod curve;
mod nacl;
mod null;
mod plain;
#[cfg(feature = "sodium")]
#[allow(unsafe_code)]
mod sodium;

pub(crate) use cipher::Cipher;

use super::ProtocolError;
use super::command::Metadata;
use super::greeting::Mechanism;
use crate::security::{Credentials, CurveKey, CurveKeyPair, Zap, ZapReply, ZapRequest, ZapStatus};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// The PLAIN mechanism's greeting name.
pub const PLAIN: Mechanism = Mechanism::from_static("PLAIN");
/// The CURVE mechanism's greeting name.
pub const CURVE: Mechanism = Mechanism::from_static("CURVE");

/// Our side of the security handshake, chosen from the socket options.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Security {
    /// NULL (RFC 23): no authentication, no encryption.
    #[default]
    Null,
    /// PLAIN client (RFC 24): sends a user name and password in clear text.
    PlainClient {
        /// The user name (at most 255 bytes).
        username: Bytes,
        /// The password (at most 255 bytes).
        password: Bytes,
    },
    /// PLAIN server: checks the client's credentials with the socket's [`Zap`].
    PlainServer,
    /// CURVE client (RFC 25/26): authenticates the server by its public key.
    CurveClient {
        /// Our long-term key pair.
        keypair: CurveKeyPair,
        /// The server's long-term public key.
        server_key: CurveKey,
    },
    /// CURVE server: proves it holds `keypair`'s secret key.
    CurveServer {
        /// Our long-term key pair.
        keypair: CurveKeyPair,
    },
}

impl Security {
    /// The mechanism name sent in the greeting.
    pub fn mechanism(&self) -> Mechanism {
        match self {
            Security::Null => Mechanism::NULL,
            Security::PlainClient { .. } | Security::PlainServer => PLAIN,
            Security::CurveClient { .. } | Security::CurveServer { .. } => CURVE,
        }
    }

    /// The greeting's as-server flag.
    pub fn is_server(&self) -> bool {
        matches!(self, Security::PlainServer | Security::CurveServer { .. })
    }

    /// A fresh handshake machine for one connection.
    pub(crate) fn handshake(&self) -> Box<dyn Handshake> {
        match self {
            Security::Null => Box::new(null::NullHandshake::default()),
            Security::PlainClient { username, password } => {
                Box::new(plain::PlainClient::new(username.clone(), password.clone()))
            }
            Security::PlainServer => Box::new(plain::PlainServer::default()),
            Security::CurveClient {
                keypair,
                server_key,
            } => Box::new(curve::CurveClient::new(keypair.clone(), *server_key)),
            Security::CurveServer { keypair } => Box::new(curve::CurveServer::new(keypair.clone())),
        }
    }
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Security::Null => f.write_str("Null"),
            Security::PlainClient { username, .. } => f
                .debug_struct("PlainClient")
                .field("username", username)
                .finish_non_exhaustive(),
            Security::PlainServer => f.write_str("PlainServer"),
            Security::CurveClient {
                keypair,
                server_key,
            } => f
                .debug_struct("CurveClient")
                .field("public", &keypair.public.to_z85())
                .field("server_key", &server_key.to_z85())
                .finish_non_exhaustive(),
            Security::CurveServer { keypair } => f
                .debug_struct("CurveServer")
                .field("public", &keypair.public.to_z85())
                .finish_non_exhaustive(),
        }
    }
}

/// What a mechanism needs from the connection: our READY properties and how to authenticate.
pub(crate) struct Context<'a> {
    /// Our properties (Socket-Type, Identity), sent in READY or INITIATE.
    pub properties: &'a Metadata,
    /// The socket's authenticator, if any.
    pub zap: Option<&'a Zap>,
    /// The ZAP domain.
    pub zap_domain: &'a Bytes,
    /// The peer's IP address ("" over IPC).
    pub peer_address: &'a str,
    /// Our routing id (RFC 27's identity frame, as libzmq fills it).
    pub routing_id: &'a Bytes,
}

impl Context<'_> {
    /// Asks the authenticator about the peer. `Ok(None)`: no authenticator is set.
    pub fn authenticate(
        &self,
        credentials: Credentials,
    ) -> Result<Option<ZapReply>, ProtocolError> {
        let Some(zap) = self.zap else {
            return Ok(None);
        };
        let request = ZapRequest {
            domain: self.zap_domain.clone(),
            address: self.peer_address.to_owned(),
            routing_id: self.routing_id.clone(),
            mechanism: credentials.mechanism(),
            credentials,
        };
        let reply = zap.authenticate(&request);
        if reply.status != ZapStatus::Allowed {
            return Err(ProtocolError::AuthenticationFailed {
                status: reply.status.code(),
                reason: reply.status_text,
            });
        }
        Ok(Some(reply))
    }
}

/// The next step of a handshake.
#[derive(Debug)]
pub(crate) enum Step {
    /// Waiting for the peer's next command.
    Continue,
    /// The handshake completed.
    Done(Established),
}

/// What a completed handshake learnt.
#[derive(Debug, Default)]
pub(crate) struct Established {
    /// The peer's properties (READY, or INITIATE on a server).
    pub properties: Metadata,
    /// The authenticator's answer, when one was asked.
    pub zap: Option<ZapReply>,
    /// Boxes and opens traffic (CURVE), when the mechanism encrypts.
    pub cipher: Option<Box<Cipher>>,
}

/// A mechanism's handshake: the commands between the greeting and traffic, sans-IO.
///
/// The connection calls [`Handshake::start`] once both greetings are in, then
/// [`Handshake::command`] for every command frame the peer sends until one returns
/// [`Step::Done`]. ERROR commands never reach a mechanism. Commands to send go to `out`,
/// encoded as frames.
pub(crate) trait Handshake: Send + fmt::Debug {
    /// Queues what we send first (NULL: READY; clients: HELLO). Servers send nothing first:
    /// they wait for HELLO.
    fn start(&mut self, _cx: &Context<'_>, _out: &mut BytesMut) -> Result<Step, ProtocolError> {
        Ok(Step::Continue)
    }

    /// Handles one command from the peer: `name` and the data after it.
    fn command(
        &mut self,
        name: &[u8],
        data: Bytes,
        cx: &Context<'_>,
        out: &mut BytesMut,
    ) -> Result<Step, ProtocolError>;
}

/// Encodes a handshake command frame: `name` then the parts of its data.
fn put_command(out: &mut BytesMut, name: &[u8], parts: &[&[u8]]) {
    let len = 1 + name.len() + parts.iter().map(|p| p.len()).sum::<usize>();
    super::frame::encode_header(out, super::frame::FLAG_COMMAND, len);
    out.put_u8(name.len() as u8);
    out.put_slice(name);
    for part in parts {
        out.put_slice(part);
    }
}

/// The error for a command that is not the one the handshake expects now.
fn unexpected(name: &[u8]) -> ProtocolError {
    ProtocolError::UnexpectedCommand {
        command: super::command::label_of(name),
    }
}

#[cfg(test)]
mod tests;
