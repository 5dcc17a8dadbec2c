//! `curve_handshake`: a hostile CURVE peer (RFC 25/26) against a real `Connection` in the
//! server or the client role, with an honest CURVE `Connection` alongside whose frames the
//! script delivers, changes, replays or replaces, so that it gets past the cryptography and
//! then attacks the boxes. The harness and its invariants are in `secure_handshake.rs`; this
//! file chooses the long-term keys, whether the client knows the right server key, and the
//! server's authenticator.
//!
//! Long-term keys come from a fixed table the input picks from, so a run is reproducible up
//! to the transient keys, cookies and nonces the mechanisms draw from the OS (which no
//! script could predict anyway).

use super::secure_handshake::{Common, Kind, PEER_ADDRESS, SecureReport, Setup, refusing_zap, run};
use super::*;
use ferromq::internals::wire::Security;
use ferromq::security::{AuthPolicy, CurveKey, CurveKeyPair, Zap, ZapStatus};
use std::sync::OnceLock;

/// Long-term key pairs, derived once: deriving them in every run would cost two scalar
/// multiplications per input (the mechanisms' own transient keys cost what they cost).
fn key_pairs() -> &'static [CurveKeyPair; 4] {
    static PAIRS: OnceLock<[CurveKeyPair; 4]> = OnceLock::new();
    PAIRS.get_or_init(|| {
        // The first is libzmq's zmq_curve(7) example server key.
        let first: CurveKey = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
            .parse()
            .expect("valid Z85");
        let secrets = [*first.as_bytes(), [1; 32], [0x5A; 32], [0xFF; 32]];
        secrets.map(|s| CurveKeyPair::from_secret(CurveKey::from_bytes(s)))
    })
}

/// The server key the client is given, when not the right one.
#[derive(Arbitrary, Debug)]
enum WrongKey {
    /// Another pair's public key.
    Other(u8),
    /// The right key with bit 255 flipped: X25519 ignores that bit, so every box opens, and
    /// only the vouch (which names the key the client was given) tells them apart.
    HighBitFlipped,
    /// Zero: a key of low order.
    Zero,
    Bytes([u8; 32]),
}

/// The server's authenticator.
#[derive(Arbitrary, Debug)]
enum CurveZap {
    /// None: any client that knows the server key gets in, with no user id.
    Missing,
    AllowClient,
    AllowAny,
    /// Allows one pair's key (perhaps the client's).
    AllowKey(u8),
    DenyAll,
    DenyAddress,
    TemporaryFailure,
    InternalError,
}

/// The hostile peer's script.
#[derive(Arbitrary, Debug)]
pub struct CurveScript {
    target_is_server: bool,
    /// Indices into the key pairs (they may be the same pair).
    server_pair: u8,
    client_pair: u8,
    wrong_server_key: Option<WrongKey>,
    zap: CurveZap,
    common: Common,
}

/// `curve_handshake` target: see [`curve_handshake_report`].
pub fn curve_handshake(data: &[u8]) {
    curve_handshake_report(data);
}

/// Runs the script `data` describes; see `secure_handshake.rs` for what is checked.
pub fn curve_handshake_report(data: &[u8]) -> SecureReport {
    let Some(script) = structured::<CurveScript>(data) else {
        return SecureReport::default();
    };
    let pairs = key_pairs();
    let pair = |i: u8| pairs[usize::from(i) % pairs.len()].clone();
    let (server, client) = (pair(script.server_pair), pair(script.client_pair));
    let server_key = match &script.wrong_server_key {
        None => server.public,
        Some(WrongKey::Other(i)) => pair(*i).public,
        Some(WrongKey::HighBitFlipped) => {
            let mut key = *server.public.as_bytes();
            key[31] ^= 0x80;
            CurveKey::from_bytes(key)
        }
        Some(WrongKey::Zero) => CurveKey::from_bytes([0; 32]),
        Some(WrongKey::Bytes(key)) => CurveKey::from_bytes(*key),
    };
    // Compared byte for byte: a key that differs only in bits X25519 ignores still fails,
    // at the vouch, which names the server key the client was given.
    let key_right = server_key == server.public;
    let client_id = Some(Bytes::from(client.public.to_z85()));
    let (zap, server_user_ids, allows_client) = match &script.zap {
        CurveZap::Missing => (None, vec![None], true),
        CurveZap::AllowClient => (
            Some(Zap::new(AuthPolicy::new().allow_curve_key(client.public))),
            vec![client_id.clone()],
            true,
        ),
        CurveZap::AllowAny => (
            Some(Zap::new(AuthPolicy::new().allow_any_curve_key())),
            vec![client_id.clone()],
            true,
        ),
        CurveZap::AllowKey(i) => {
            let key = pair(*i).public;
            (
                Some(Zap::new(AuthPolicy::new().allow_curve_key(key))),
                vec![Some(Bytes::from(key.to_z85()))],
                key == client.public,
            )
        }
        CurveZap::DenyAll => (Some(Zap::new(AuthPolicy::new())), Vec::new(), false),
        CurveZap::DenyAddress => (
            Some(Zap::new(
                AuthPolicy::new()
                    .allow_any_curve_key()
                    .deny_ip(PEER_ADDRESS),
            )),
            Vec::new(),
            false,
        ),
        CurveZap::TemporaryFailure => (
            Some(refusing_zap(ZapStatus::TemporaryFailure)),
            Vec::new(),
            false,
        ),
        CurveZap::InternalError => (
            Some(refusing_zap(ZapStatus::InternalError)),
            Vec::new(),
            false,
        ),
    };
    let expected_user_id = match script.zap {
        CurveZap::Missing => None,
        _ => client_id,
    };
    let server_security = Security::CurveServer { keypair: server };
    let client_security = Security::CurveClient {
        keypair: client,
        server_key,
    };
    let (target_security, peer_security, target_zap, peer_zap) = match script.target_is_server {
        true => (server_security, client_security, zap, None),
        false => (client_security, server_security, None, zap),
    };
    let setup = Setup {
        kind: Kind::Curve,
        target_is_server: script.target_is_server,
        target_security,
        peer_security,
        target_zap,
        peer_zap,
        auth_ok: key_right && allows_client,
        server_user_ids,
        expected_user_id,
        // With another server key, the honest server fails to open the target's boxes, or the
        // honest client refuses its own key (of low order) or the server's WELCOME.
        peer_may_fail_crypto: !key_right,
    };
    run(setup, &script.common)
}

/// The `curve_handshake` script an input describes, for triaging a failing input.
pub fn describe_curve_script(data: &[u8]) -> String {
    format!("{:#?}", structured::<CurveScript>(data))
}
