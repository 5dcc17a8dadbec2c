//! CURVE keys: 32-byte Curve25519 keys, written as 40 Z85 characters (RFC 32).

use super::z85;
use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// Length of a CURVE key in bytes.
pub const KEY_BYTES: usize = 32;
/// Length of a CURVE key in Z85 text.
pub const KEY_Z85_CHARS: usize = 40;

/// A 32-byte CURVE key, public or secret.
///
/// Built from 32 raw bytes or 40 Z85 characters, as libzmq's `ZMQ_CURVE_*KEY` options take
/// them. `Debug` never prints the bytes (a secret key must not reach a log by accident);
/// [`CurveKey::to_z85`] does, on purpose.
///
/// ```
/// use ferromq::security::CurveKey;
///
/// let key: CurveKey = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7".parse().unwrap();
/// assert_eq!(key.to_z85(), "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
/// assert_eq!(CurveKey::from_slice(key.as_bytes()).unwrap(), key);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurveKey([u8; KEY_BYTES]);

impl CurveKey {
    /// A key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        CurveKey(bytes)
    }

    /// A key from 32 raw bytes or 40 Z85 characters (what libzmq's options accept).
    pub fn from_slice(key: &[u8]) -> Result<Self> {
        match key.len() {
            KEY_BYTES => {
                let mut bytes = [0; KEY_BYTES];
                bytes.copy_from_slice(key);
                Ok(CurveKey(bytes))
            }
            KEY_Z85_CHARS => {
                let text = std::str::from_utf8(key).map_err(|_| Error::InvalidKey {
                    reason: "40-byte key is not Z85 text".into(),
                })?;
                text.parse()
            }
            n => Err(Error::InvalidKey {
                reason: format!("a CURVE key is 32 bytes or 40 Z85 characters, got {n} bytes"),
            }),
        }
    }

    /// The key's 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// The key as 40 Z85 characters.
    pub fn to_z85(&self) -> String {
        z85::encode(&self.0).expect("32 is a multiple of 4")
    }

    /// The public key that goes with this secret key (libzmq's `zmq_curve_public`).
    pub fn public_from_secret(&self) -> CurveKey {
        CurveKey(curve25519_dalek::MontgomeryPoint::mul_base_clamped(self.0).to_bytes())
    }
}

impl FromStr for CurveKey {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        if text.len() != KEY_Z85_CHARS {
            return Err(Error::InvalidKey {
                reason: format!(
                    "a Z85 CURVE key is 40 characters, got {} characters",
                    text.len()
                ),
            });
        }
        let bytes = z85::decode(text).map_err(|e| Error::InvalidKey {
            reason: e.to_string(),
        })?;
        let mut key = [0; KEY_BYTES];
        key.copy_from_slice(&bytes);
        Ok(CurveKey(key))
    }
}

impl fmt::Debug for CurveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurveKey(..)")
    }
}

/// A long-term CURVE key pair.
///
/// ```
/// use ferromq::security::CurveKeyPair;
///
/// let pair = CurveKeyPair::generate();
/// assert_eq!(pair.public, pair.secret.public_from_secret());
/// assert_eq!(CurveKeyPair::from_secret(pair.secret).public, pair.public);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CurveKeyPair {
    /// The public key, given to peers.
    pub public: CurveKey,
    /// The secret key, kept.
    pub secret: CurveKey,
}

impl CurveKeyPair {
    /// A fresh key pair from the operating system's random source (libzmq's
    /// `zmq_curve_keypair`).
    pub fn generate() -> Self {
        let mut secret = [0u8; KEY_BYTES];
        getrandom::getrandom(&mut secret).expect("the operating system's random source");
        Self::from_secret(CurveKey(secret))
    }

    /// The pair whose secret key is `secret`.
    pub fn from_secret(secret: CurveKey) -> Self {
        CurveKeyPair {
            public: secret.public_from_secret(),
            secret,
        }
    }
}

impl fmt::Debug for CurveKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveKeyPair")
            .field("public", &self.public.to_z85())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server key pair printed in libzmq's zmq_curve(7) manual page.
    const SERVER_PUBLIC: &str = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    const SERVER_SECRET: &str = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

    #[test]
    fn public_key_is_derived_from_the_secret_as_libzmq_does() {
        let secret: CurveKey = SERVER_SECRET.parse().unwrap();
        assert_eq!(secret.public_from_secret().to_z85(), SERVER_PUBLIC);
    }

    #[test]
    fn keys_are_32_raw_bytes_or_40_z85_characters() {
        let key: CurveKey = SERVER_PUBLIC.parse().unwrap();
        assert_eq!(CurveKey::from_slice(SERVER_PUBLIC.as_bytes()).unwrap(), key);
        assert_eq!(CurveKey::from_slice(key.as_bytes()).unwrap(), key);
        assert!(CurveKey::from_slice(&[0; 31]).is_err());
        assert!("short".parse::<CurveKey>().is_err());
        assert!(CurveKey::from_slice(&[0xFF; 40]).is_err());
    }

    #[test]
    fn debug_never_prints_a_key() {
        let pair = CurveKeyPair::generate();
        let shown = format!("{:?} {:?}", pair.secret, pair);
        assert!(!shown.contains(&pair.secret.to_z85()));
    }

    #[test]
    fn generated_pairs_differ() {
        assert_ne!(
            CurveKeyPair::generate().secret,
            CurveKeyPair::generate().secret
        );
    }
}
