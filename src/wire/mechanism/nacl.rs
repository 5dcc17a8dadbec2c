//! NaCl's `crypto_box` and `crypto_secretbox`, as CurveZMQ uses them, assembled from
//! RustCrypto parts: X25519 from `curve25519-dalek`, HSalsa20 and XSalsa20-Poly1305 from
//! `crypto_secretbox`. Nothing here implements a primitive; it only wires them as NaCl does
//! (`crypto_box_beforenm` = HSalsa20 of the X25519 shared secret) and lays boxes out as
//! the wire carries them (tag first).

use crate::wire::ProtocolError;
use crypto_secretbox::aead::generic_array::GenericArray;
use crypto_secretbox::aead::rand_core::RngCore;
use crypto_secretbox::aead::{AeadInPlace, KeyInit, OsRng};
use crypto_secretbox::{Kdf, XSalsa20Poly1305};
use curve25519_dalek::MontgomeryPoint;
use zeroize::Zeroizing;

/// A box key: precomputed for a pair of Curve25519 keys, or a secretbox key (the cookie).
pub(super) type BoxKey = XSalsa20Poly1305;
/// A 24-byte nonce.
pub(super) type Nonce = crypto_secretbox::Nonce;

/// A Curve25519 key pair made for one connection and dropped with it.
pub(super) struct Transient {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl Transient {
    pub(super) fn generate() -> Self {
        let secret = Zeroizing::new(random::<32>());
        let public = MontgomeryPoint::mul_base_clamped(*secret).to_bytes();
        Transient { secret, public }
    }

    pub(super) fn public(&self) -> &[u8; 32] {
        &self.public
    }

    pub(super) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

/// The box key between `secret` and `public` (`crypto_box_beforenm`). A public key of low
/// order makes the shared secret all zeros, a key anyone could compute: refused, as
/// libsodium refuses it.
pub(super) fn box_key(secret: &[u8; 32], public: &[u8; 32]) -> Result<BoxKey, ProtocolError> {
    let shared = Zeroizing::new(MontgomeryPoint(*public).mul_clamped(*secret).to_bytes());
    if shared.iter().all(|&b| b == 0) {
        return Err(ProtocolError::Crypto {
            what: "the peer's key is of low order (its shared secret would be zero)",
        });
    }
    let key = Zeroizing::new(XSalsa20Poly1305::kdf(
        GenericArray::from_slice(&shared[..]),
        &GenericArray::default(),
    ));
    Ok(XSalsa20Poly1305::new(&key))
}

/// A secretbox key (the cookie key).
pub(super) fn secret_key(key: &[u8; 32]) -> BoxKey {
    XSalsa20Poly1305::new(GenericArray::from_slice(key))
}

/// A 24-byte nonce: `prefix` then `rest`.
pub(super) fn nonce(prefix: &[u8], rest: &[u8]) -> Nonce {
    let mut n = [0u8; 24];
    n[..prefix.len()].copy_from_slice(prefix);
    n[prefix.len()..].copy_from_slice(rest);
    n.into()
}

/// `N` bytes from the operating system's random source.
pub(super) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// Box[plaintext] as the wire carries it: tag, then ciphertext.
pub(super) fn seal(key: &BoxKey, nonce: &Nonce, plaintext: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 16 + plaintext.len()];
    out[16..].copy_from_slice(plaintext);
    let tag = key
        .encrypt_in_place_detached(nonce, b"", &mut out[16..])
        .expect("handshake boxes are small");
    out[..16].copy_from_slice(&tag);
    out
}

/// Opens a box (tag then ciphertext), or fails with `what`.
pub(super) fn open(
    key: &BoxKey,
    nonce: &Nonce,
    boxed: &[u8],
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    let fail = || ProtocolError::Crypto { what };
    if boxed.len() < 16 {
        return Err(fail());
    }
    let tag = GenericArray::clone_from_slice(&boxed[..16]);
    let mut text = Zeroizing::new(boxed[16..].to_vec());
    key.decrypt_in_place_detached(nonce, b"", &mut text, &tag)
        .map_err(|_| fail())?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (Agreement with libsodium is what tests/interop_security.rs proves, on every box.)
    #[test]
    fn boxes_open_both_ways_and_low_order_keys_are_refused() {
        let a = Transient::generate();
        let b = Transient::generate();
        let ab = box_key(a.secret(), b.public()).unwrap();
        let ba = box_key(b.secret(), a.public()).unwrap();
        let n = nonce(b"prefix", &[7; 18]);
        let boxed = seal(&ab, &n, b"hello");
        assert_eq!(&open(&ba, &n, &boxed, "x").unwrap()[..], b"hello");
        assert!(open(&ba, &nonce(b"prefiy", &[7; 18]), &boxed, "x").is_err());
        // u = 0 (order 2) and u = 1 (order 4).
        for low in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            assert!(matches!(
                box_key(a.secret(), &low),
                Err(ProtocolError::Crypto { .. })
            ));
        }
    }
}
