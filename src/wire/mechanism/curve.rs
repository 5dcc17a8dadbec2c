//! CURVE (RFC 25 ZMTP-CURVE over RFC 26 CurveZMQ), with libzmq 4.3's field layout.
//!
//! ```text
//! client (C, c; transient C', c')              server (S, s; transient S', s'; cookie key K)
//! HELLO    1.0, zeros, C', nonce, Box[64 zeros](C'→S)                          →
//!        ←  WELCOME  long nonce, Box[S', cookie](S→C'),  cookie = n, Box[C', s'](K)
//! INITIATE cookie, nonce, Box[C, vouch, metadata](C'→S'), vouch = n, Box[C', S](C→S')  →
//!        ←  READY    nonce, Box[metadata](S'→C')       (or ERROR "400" when ZAP refuses)
//! ```
//!
//! Every box is NaCl's `crypto_box`/`crypto_secretbox` (X25519, XSalsa20-Poly1305, tag first),
//! assembled from RustCrypto parts in [`super::nacl`]. Short nonces count up from 1 on each
//! side through the handshake and on into traffic; every one from the peer must be larger
//! than the last. The server keeps a fresh cookie key per WELCOME and drops it as soon as the
//! INITIATE that returns the cookie opens.

use super::nacl::{self, BoxKey, Transient, box_key, nonce, open, random, seal};
use super::{Cipher, Context, Established, Handshake, Step, put_command, unexpected};
use crate::security::{Credentials, CurveKey, CurveKeyPair};
use crate::wire::ProtocolError;
use crate::wire::command::Metadata;
use bytes::{Bytes, BytesMut};
use zeroize::Zeroizing;

/// HELLO's data after its name: version, padding, C', short nonce, signature box.
const HELLO_DATA_BYTES: usize = 2 + HELLO_PADDING_BYTES + 32 + 8 + 80;
/// Anti-amplification padding: HELLO is larger than WELCOME (libzmq's 72 zero bytes).
const HELLO_PADDING_BYTES: usize = 72;
/// WELCOME's data: long nonce and Box[S' + cookie].
const WELCOME_DATA_BYTES: usize = 16 + 16 + 32 + COOKIE_BYTES;
/// The cookie: long nonce and Box\[C' + s'\](K).
const COOKIE_BYTES: usize = 16 + 16 + 64;
/// INITIATE's data before its box's metadata: cookie, short nonce, tag, C, vouch nonce, vouch.
const INITIATE_MIN_DATA_BYTES: usize = COOKIE_BYTES + 8 + 16 + 32 + 16 + 80;
/// READY's data before its metadata: short nonce and tag.
const READY_MIN_DATA_BYTES: usize = 8 + 16;

fn key32(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().expect("32-byte key field")
}

fn short_nonce(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("8-byte nonce field"))
}

fn malformed(command: &'static str, reason: &'static str) -> ProtocolError {
    ProtocolError::MalformedCommand { command, reason }
}

#[derive(Debug, PartialEq, Eq)]
enum ClientState {
    ExpectWelcome,
    ExpectReady,
}

/// The client side.
pub(super) struct CurveClient {
    keypair: CurveKeyPair,
    server_key: [u8; 32],
    /// Our transient key pair (C', c').
    transient: Transient,
    /// Box(S, c') from HELLO until WELCOME opens, then the session's Box(S', c').
    key: Option<BoxKey>,
    state: ClientState,
    /// Our next short nonce.
    next: u64,
}

impl std::fmt::Debug for CurveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveClient")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl CurveClient {
    pub(super) fn new(keypair: CurveKeyPair, server_key: CurveKey) -> Self {
        CurveClient {
            keypair,
            server_key: *server_key.as_bytes(),
            transient: Transient::generate(),
            key: None,
            state: ClientState::ExpectWelcome,
            next: 1,
        }
    }

    fn take_nonce(&mut self) -> u64 {
        let n = self.next;
        self.next += 1;
        n
    }

    fn on_welcome(
        &mut self,
        data: &[u8],
        cx: &Context<'_>,
        out: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        if data.len() != WELCOME_DATA_BYTES {
            return Err(malformed("WELCOME", "CURVE WELCOME is not 168 bytes"));
        }
        let hello_key = self.key.take().expect("set by start");
        let welcome = open(
            &hello_key,
            &nonce(b"WELCOME-", &data[..16]),
            &data[16..],
            "the WELCOME box does not open: the server does not hold the secret key of the \
             server key we were given",
        )?;
        let server_transient = key32(&welcome[..32]);
        let cookie = &welcome[32..];
        let session = box_key(self.transient.secret(), &server_transient)?;

        let vouch_nonce: [u8; 16] = random();
        let mut vouch_text = [0u8; 64];
        vouch_text[..32].copy_from_slice(self.transient.public());
        vouch_text[32..].copy_from_slice(&self.server_key);
        let vouch = seal(
            &box_key(self.keypair.secret.as_bytes(), &server_transient)?,
            &nonce(b"VOUCH---", &vouch_nonce),
            &vouch_text,
        );
        let mut text = Zeroizing::new(Vec::with_capacity(128 + cx.properties.as_encoded().len()));
        text.extend_from_slice(self.keypair.public.as_bytes());
        text.extend_from_slice(&vouch_nonce);
        text.extend_from_slice(&vouch);
        text.extend_from_slice(cx.properties.as_encoded());
        let short = self.take_nonce();
        let boxed = seal(
            &session,
            &nonce(b"CurveZMQINITIATE", &short.to_be_bytes()),
            &text,
        );
        put_command(out, b"INITIATE", &[cookie, &short.to_be_bytes(), &boxed]);
        self.key = Some(session);
        self.state = ClientState::ExpectReady;
        Ok(())
    }
}

impl Handshake for CurveClient {
    fn start(&mut self, _cx: &Context<'_>, out: &mut BytesMut) -> Result<Step, ProtocolError> {
        let short = self.take_nonce();
        let hello_key = box_key(self.transient.secret(), &self.server_key)?;
        let signature = seal(
            &hello_key,
            &nonce(b"CurveZMQHELLO---", &short.to_be_bytes()),
            &[0u8; 64],
        );
        self.key = Some(hello_key);
        put_command(
            out,
            b"HELLO",
            &[
                &[1, 0],
                &[0u8; HELLO_PADDING_BYTES],
                self.transient.public(),
                &short.to_be_bytes(),
                &signature,
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
        match (&self.state, name) {
            (ClientState::ExpectWelcome, b"WELCOME") => {
                self.on_welcome(&data, cx, out)?;
                Ok(Step::Continue)
            }
            (ClientState::ExpectReady, b"READY") => {
                if data.len() < READY_MIN_DATA_BYTES {
                    return Err(malformed("READY", "CURVE READY is shorter than 30 bytes"));
                }
                let short = short_nonce(&data[..8]);
                let session = self.key.take().expect("set with ExpectReady");
                let text = open(
                    &session,
                    &nonce(b"CurveZMQREADY---", &data[..8]),
                    &data[8..],
                    "the READY box does not open",
                )?;
                let properties = Metadata::decode_for("READY", Bytes::copy_from_slice(&text))?;
                Ok(Step::Done(Established {
                    properties,
                    zap: None,
                    cipher: Some(Box::new(Cipher::new(session, false, self.next, short))),
                }))
            }
            _ => Err(unexpected(name)),
        }
    }
}

/// What the server keeps between WELCOME and INITIATE.
struct Welcomed {
    /// C', from HELLO.
    client_transient: [u8; 32],
    /// Our transient key pair (S', s').
    transient: Transient,
    /// K, the cookie key: fresh for each WELCOME, dropped once INITIATE opens the cookie.
    cookie_key: Zeroizing<[u8; 32]>,
    /// The client's last short nonce.
    peer_last: u64,
}

/// The server side.
pub(super) struct CurveServer {
    keypair: CurveKeyPair,
    welcomed: Option<Welcomed>,
}

impl std::fmt::Debug for CurveServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveServer")
            .field("welcomed", &self.welcomed.is_some())
            .finish_non_exhaustive()
    }
}

impl CurveServer {
    pub(super) fn new(keypair: CurveKeyPair) -> Self {
        CurveServer {
            keypair,
            welcomed: None,
        }
    }

    fn on_hello(&mut self, data: &[u8], out: &mut BytesMut) -> Result<(), ProtocolError> {
        if data.len() != HELLO_DATA_BYTES {
            return Err(malformed("HELLO", "CURVE HELLO is not 200 bytes"));
        }
        if data[..2] != [1, 0] {
            return Err(malformed("HELLO", "CurveZMQ version is not 1.0"));
        }
        let (padding, rest) = data[2..].split_at(HELLO_PADDING_BYTES);
        if padding.iter().any(|&b| b != 0) {
            return Err(malformed("HELLO", "anti-amplification padding is not zero"));
        }
        let client_transient = key32(&rest[..32]);
        let short = short_nonce(&rest[32..40]);
        // Box(C', s): opens the signature and seals the WELCOME.
        let hello_key = box_key(self.keypair.secret.as_bytes(), &client_transient)?;
        let signature = open(
            &hello_key,
            &nonce(b"CurveZMQHELLO---", &rest[32..40]),
            &rest[40..],
            "the HELLO box does not open: the client used another server key",
        )?;
        if signature.iter().any(|&b| b != 0) {
            return Err(malformed("HELLO", "signature box does not hold 64 zeros"));
        }

        let transient = Transient::generate();
        let cookie_key = Zeroizing::new(random::<32>());
        let cookie_nonce: [u8; 16] = random();
        let mut cookie_text = Zeroizing::new([0u8; 64]);
        cookie_text[..32].copy_from_slice(&client_transient);
        cookie_text[32..].copy_from_slice(transient.secret());
        let cookie_box = seal(
            &nacl::secret_key(&cookie_key),
            &nonce(b"COOKIE--", &cookie_nonce),
            &cookie_text[..],
        );
        let mut welcome_text = Zeroizing::new(Vec::with_capacity(128));
        welcome_text.extend_from_slice(transient.public());
        welcome_text.extend_from_slice(&cookie_nonce);
        welcome_text.extend_from_slice(&cookie_box);
        let welcome_nonce: [u8; 16] = random();
        let welcome_box = seal(
            &hello_key,
            &nonce(b"WELCOME-", &welcome_nonce),
            &welcome_text,
        );
        put_command(out, b"WELCOME", &[&welcome_nonce, &welcome_box]);
        self.welcomed = Some(Welcomed {
            client_transient,
            transient,
            cookie_key,
            peer_last: short,
        });
        Ok(())
    }

    fn on_initiate(
        &mut self,
        data: &[u8],
        cx: &Context<'_>,
        out: &mut BytesMut,
    ) -> Result<Established, ProtocolError> {
        let welcomed = self.welcomed.take().expect("checked by the caller");
        if data.len() < INITIATE_MIN_DATA_BYTES {
            return Err(malformed(
                "INITIATE",
                "CURVE INITIATE is shorter than 257 bytes",
            ));
        }
        let (cookie, rest) = data.split_at(COOKIE_BYTES);
        let cookie_text = open(
            &nacl::secret_key(&welcomed.cookie_key),
            &nonce(b"COOKIE--", &cookie[..16]),
            &cookie[16..],
            "the cookie does not open: it is not the one we sent",
        )?;
        if cookie_text[..32] != welcomed.client_transient
            || cookie_text[32..] != welcomed.transient.secret()[..]
        {
            return Err(ProtocolError::Crypto {
                what: "the cookie belongs to another connection",
            });
        }
        drop(welcomed.cookie_key);
        let short = short_nonce(&rest[..8]);
        if short <= welcomed.peer_last {
            return Err(ProtocolError::NonceNotIncreasing {
                nonce: short,
                last: welcomed.peer_last,
            });
        }
        let session = box_key(welcomed.transient.secret(), &welcomed.client_transient)?;
        let text = open(
            &session,
            &nonce(b"CurveZMQINITIATE", &rest[..8]),
            &rest[8..],
            "the INITIATE box does not open",
        )?;
        let client_key = key32(&text[..32]);
        let vouch = open(
            &box_key(welcomed.transient.secret(), &client_key)?,
            &nonce(b"VOUCH---", &text[32..48]),
            &text[48..128],
            "the vouch does not open: the client does not hold the key it claims",
        )?;
        if vouch[..32] != welcomed.client_transient
            || vouch[32..] != *self.keypair.public.as_bytes()
        {
            return Err(ProtocolError::Crypto {
                what: "the vouch names another transient key or server",
            });
        }
        let properties = Metadata::decode_for("INITIATE", Bytes::copy_from_slice(&text[128..]))?;
        let zap = cx.authenticate(Credentials::Curve {
            client_key: CurveKey::from_bytes(client_key),
        })?;

        let ready_nonce: u64 = 1;
        let boxed = seal(
            &session,
            &nonce(b"CurveZMQREADY---", &ready_nonce.to_be_bytes()),
            cx.properties.as_encoded(),
        );
        put_command(out, b"READY", &[&ready_nonce.to_be_bytes(), &boxed]);
        Ok(Established {
            properties,
            zap,
            cipher: Some(Box::new(Cipher::new(session, true, ready_nonce + 1, short))),
        })
    }
}

impl Handshake for CurveServer {
    fn command(
        &mut self,
        name: &[u8],
        data: Bytes,
        cx: &Context<'_>,
        out: &mut BytesMut,
    ) -> Result<Step, ProtocolError> {
        match (self.welcomed.is_some(), name) {
            (false, b"HELLO") => {
                self.on_hello(&data, out)?;
                Ok(Step::Continue)
            }
            (true, b"INITIATE") => Ok(Step::Done(self.on_initiate(&data, cx, out)?)),
            _ => Err(unexpected(name)),
        }
    }
}
