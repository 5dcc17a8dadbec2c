//! Security: CURVE keys and Z85 (RFC 32), and in-process authentication after ZAP (RFC 27).
//!
//! A socket picks its mechanism through [`crate::SocketOptions`], with libzmq's option names:
//!
//! | role | options |
//! |---|---|
//! | NULL (default) | nothing; [`SocketOptions::zap`](crate::SocketOptions::zap) may still filter by address |
//! | PLAIN server | `plain_server = true` and a [`Zap`] that checks passwords |
//! | PLAIN client | `plain_username`, `plain_password` |
//! | CURVE server | `curve_server = true`, `curve_secretkey` (and optionally a [`Zap`]) |
//! | CURVE client | `curve_serverkey`, and `curve_secretkey`/`curve_publickey` (generated if unset) |
//!
//! The handshakes themselves are sans-IO state machines in the crate's wire layer; the
//! cryptography (X25519, XSalsa20, Poly1305) comes from `curve25519-dalek`, RustCrypto's
//! `salsa20` and `poly1305`, and orion. spec/security.md has the threat model.

mod keys;
mod policy;
pub mod z85;
mod zap;

pub use keys::{CurveKey, CurveKeyPair, KEY_BYTES, KEY_Z85_CHARS};
pub use policy::AuthPolicy;
pub use zap::{Authenticator, Credentials, Zap, ZapMechanism, ZapReply, ZapRequest, ZapStatus};
