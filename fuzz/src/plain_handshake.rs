//! `plain_handshake`: a hostile PLAIN peer (RFC 24) against a real `Connection` in the server
//! or the client role, with an honest PLAIN `Connection` alongside whose frames the script
//! delivers, changes, replays or replaces. The harness and its invariants are in
//! `secure_handshake.rs`; this file chooses the credentials and the server's authenticator.

use super::secure_handshake::{Common, Kind, PEER_ADDRESS, SecureReport, Setup, refusing_zap, run};
use super::*;
use ferromq::internals::wire::Security;
use ferromq::security::{AuthPolicy, Zap, ZapStatus};

/// The one user the policy authenticator knows.
const USER: &[u8] = b"u";
const PASSWORD: &[u8] = b"p";

#[derive(Arbitrary, Debug)]
enum Credentials {
    Valid,
    WrongPassword,
    UnknownUser,
    Empty,
    Custom(Vec<u8>, Vec<u8>),
}

/// The server's authenticator.
#[derive(Arbitrary, Debug)]
enum PlainZap {
    /// Knows `u`/`p`.
    Policy,
    /// None: a PLAIN server then refuses everyone.
    Missing,
    /// Knows `u`/`p`, but denies the peer's address.
    DenyAddress,
    /// Knows `u`/`p`, but allows another address only.
    AllowOtherAddress,
    TemporaryFailure,
    InternalError,
}

/// The hostile peer's script.
#[derive(Arbitrary, Debug)]
pub struct PlainScript {
    target_is_server: bool,
    credentials: Credentials,
    zap: PlainZap,
    common: Common,
}

/// `plain_handshake` target: see [`plain_handshake_report`].
pub fn plain_handshake(data: &[u8]) {
    plain_handshake_report(data);
}

/// Runs the script `data` describes; see `secure_handshake.rs` for what is checked.
pub fn plain_handshake_report(data: &[u8]) -> SecureReport {
    let Some(script) = structured::<PlainScript>(data) else {
        return SecureReport::default();
    };
    let cut = |v: &[u8]| Bytes::copy_from_slice(&v[..v.len().min(255)]);
    let (username, password) = match &script.credentials {
        Credentials::Valid => (cut(USER), cut(PASSWORD)),
        Credentials::WrongPassword => (cut(USER), cut(b"guess")),
        Credentials::UnknownUser => (cut(b"mallory"), cut(PASSWORD)),
        Credentials::Empty => (Bytes::new(), Bytes::new()),
        Credentials::Custom(u, p) => (cut(u), cut(p)),
    };
    let valid = username == USER && password == PASSWORD;
    let policy = || AuthPolicy::new().allow_user(USER, PASSWORD);
    let (zap, accepts_someone, allows_client) = match script.zap {
        PlainZap::Policy => (Some(Zap::new(policy())), true, valid),
        PlainZap::Missing => (None, false, false),
        PlainZap::DenyAddress => (Some(Zap::new(policy().deny_ip(PEER_ADDRESS))), false, false),
        PlainZap::AllowOtherAddress => (
            Some(Zap::new(policy().allow_ip("198.51.100.1"))),
            false,
            false,
        ),
        PlainZap::TemporaryFailure => (
            Some(refusing_zap(ZapStatus::TemporaryFailure)),
            false,
            false,
        ),
        PlainZap::InternalError => (Some(refusing_zap(ZapStatus::InternalError)), false, false),
    };
    let client = Security::PlainClient { username, password };
    let (target_security, peer_security, target_zap, peer_zap) = match script.target_is_server {
        true => (Security::PlainServer, client, zap, None),
        false => (client, Security::PlainServer, None, zap),
    };
    let setup = Setup {
        kind: Kind::Plain,
        target_is_server: script.target_is_server,
        target_security,
        peer_security,
        target_zap,
        peer_zap,
        auth_ok: allows_client,
        server_user_ids: match accepts_someone {
            true => vec![Some(Bytes::from_static(USER))],
            false => Vec::new(),
        },
        expected_user_id: Some(Bytes::from_static(USER)),
        peer_may_fail_crypto: false,
    };
    run(setup, &script.common)
}

/// The `plain_handshake` script an input describes, for triaging a failing input.
pub fn describe_plain_script(data: &[u8]) -> String {
    format!("{:#?}", structured::<PlainScript>(data))
}
