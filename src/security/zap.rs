//! Authentication in process, after ZAP (RFC 27): the socket asks an [`Authenticator`] about
//! every connecting peer, with what RFC 27's request carries, and gets RFC 27's reply.
//!
//! RFC 27 passes these requests over an inproc REQ/REP pair bound at
//! `inproc://zeromq.zap.01`, one handler per process. ferromq calls the socket's
//! authenticator directly instead (spec/security.md, "Departures"): no hidden socket, no
//! process-wide handler, a different policy per socket if the application wants one.

use super::keys::CurveKey;
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

/// The security mechanism a peer is being authenticated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZapMechanism {
    /// No credentials: filtering by address only.
    Null,
    /// User name and password (RFC 24).
    Plain,
    /// The client's long-term public key (RFC 25/26).
    Curve,
}

impl ZapMechanism {
    /// The name RFC 27 gives it ("NULL", "PLAIN", "CURVE").
    pub const fn as_str(self) -> &'static str {
        match self {
            ZapMechanism::Null => "NULL",
            ZapMechanism::Plain => "PLAIN",
            ZapMechanism::Curve => "CURVE",
        }
    }
}

impl fmt::Display for ZapMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the peer proved itself with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// NULL: nothing.
    Null,
    /// PLAIN: the user name and password from the client's HELLO.
    Plain {
        /// The user name.
        username: Bytes,
        /// The password.
        password: Bytes,
    },
    /// CURVE: the client's long-term public key, proven by its vouch.
    Curve {
        /// The client's public key.
        client_key: CurveKey,
    },
}

impl Credentials {
    /// The mechanism these credentials belong to.
    pub fn mechanism(&self) -> ZapMechanism {
        match self {
            Credentials::Null => ZapMechanism::Null,
            Credentials::Plain { .. } => ZapMechanism::Plain,
            Credentials::Curve { .. } => ZapMechanism::Curve,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Null => f.write_str("Null"),
            Credentials::Plain { username, .. } => f
                .debug_struct("Plain")
                .field("username", username)
                .finish_non_exhaustive(),
            Credentials::Curve { client_key } => f
                .debug_struct("Curve")
                .field("client_key", &client_key.to_z85())
                .finish(),
        }
    }
}

/// One authentication request: RFC 27's request frames.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZapRequest {
    /// The socket's `zap_domain` (empty when unset).
    pub domain: Bytes,
    /// The peer's IP address (dotted IPv4 or canonical IPv6); empty over IPC.
    pub address: String,
    /// Our socket's routing id, as libzmq fills RFC 27's identity frame (empty when unset).
    pub routing_id: Bytes,
    /// The mechanism.
    pub mechanism: ZapMechanism,
    /// The peer's credentials.
    pub credentials: Credentials,
}

/// RFC 27's status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZapStatus {
    /// 200: the peer is allowed.
    Allowed,
    /// 300: a temporary failure. The server closes without telling the client why, so it
    /// reconnects later (libzmq's and CurveZMQ's rule).
    TemporaryFailure,
    /// 400: authentication failed. The client gets an ERROR "400" and does not reconnect.
    Denied,
    /// 500: an internal error. The client gets an ERROR "500" and does not reconnect.
    InternalError,
}

impl ZapStatus {
    /// The numeric code: 200, 300, 400 or 500.
    pub const fn code(self) -> u16 {
        match self {
            ZapStatus::Allowed => 200,
            ZapStatus::TemporaryFailure => 300,
            ZapStatus::Denied => 400,
            ZapStatus::InternalError => 500,
        }
    }
}

/// The answer to a [`ZapRequest`]: RFC 27's reply frames.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZapReply {
    /// Allowed or why not.
    pub status: ZapStatus,
    /// A few words on the status, for logs (not sent to the peer).
    pub status_text: String,
    /// Who the peer is, for the application: messages from it carry it as `User-Id`.
    pub user_id: Bytes,
    /// Extra properties messages from this peer carry (RFC 27's metadata).
    pub metadata: Vec<(String, Bytes)>,
}

impl ZapReply {
    /// Status 200, with the user id messages from this peer will carry.
    pub fn allow(user_id: impl Into<Bytes>) -> Self {
        ZapReply {
            status: ZapStatus::Allowed,
            status_text: "OK".into(),
            user_id: user_id.into(),
            metadata: Vec::new(),
        }
    }

    /// Status 400 (authentication failed), saying why in the log.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self::refuse(ZapStatus::Denied, reason)
    }

    /// Any refusal: 300, 400 or 500 (a 200 here carries no user id).
    pub fn refuse(status: ZapStatus, reason: impl Into<String>) -> Self {
        ZapReply {
            status,
            status_text: reason.into(),
            user_id: Bytes::new(),
            metadata: Vec::new(),
        }
    }

    /// Adds a property that messages from this peer will carry.
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.metadata.push((name.into(), value.into()));
        self
    }
}

/// Decides whether a peer may connect: the in-process ZAP handler.
///
/// It runs on the connection's task during the handshake, so it should answer quickly (look
/// up tables in memory; do slow work ahead of time). Closures work:
///
/// ```
/// use ferromq::security::{Credentials, ZapReply, ZapRequest, Zap};
///
/// let zap = Zap::new(|request: &ZapRequest| match &request.credentials {
///     Credentials::Plain { username, password } if password == "secret" => {
///         ZapReply::allow(username.clone())
///     }
///     _ => ZapReply::deny("bad password"),
/// });
/// # let _ = zap;
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// Answers one request.
    fn authenticate(&self, request: &ZapRequest) -> ZapReply;
}

impl<F> Authenticator for F
where
    F: Fn(&ZapRequest) -> ZapReply + Send + Sync + 'static,
{
    fn authenticate(&self, request: &ZapRequest) -> ZapReply {
        self(request)
    }
}

/// A shareable handle to an [`Authenticator`], as [`crate::SocketOptions::zap`] holds it.
/// Two handles are equal when they share the same authenticator.
#[derive(Clone)]
pub struct Zap(Arc<dyn Authenticator>);

impl Zap {
    /// Wraps an authenticator.
    pub fn new(authenticator: impl Authenticator) -> Self {
        Zap(Arc::new(authenticator))
    }

    /// Asks the authenticator about `request`.
    pub fn authenticate(&self, request: &ZapRequest) -> ZapReply {
        self.0.authenticate(request)
    }
}

impl From<Arc<dyn Authenticator>> for Zap {
    fn from(authenticator: Arc<dyn Authenticator>) -> Self {
        Zap(authenticator)
    }
}

impl PartialEq for Zap {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Zap {}

impl fmt::Debug for Zap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Zap(..)")
    }
}
