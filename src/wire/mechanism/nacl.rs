//! NaCl's `crypto_box` and `crypto_secretbox`, as CurveZMQ uses them, assembled from
//! maintained primitives: X25519 from `curve25519-dalek`, HSalsa20 and XSalsa20 from
//! RustCrypto's `salsa20`, Poly1305 from orion (short messages) and RustCrypto's `poly1305`
//! (long ones). Nothing here implements a primitive; this file wires them as NaCl does
//! (`crypto_box_beforenm` = HSalsa20 of the X25519 shared secret; `crypto_secretbox` =
//! XSalsa20, whose first 32 keystream bytes key a one-time Poly1305 over the ciphertext) and
//! lays boxes out as the wire carries them (tag first).
//!
//! Why two Poly1305s: RustCrypto's `poly1305` picks its AVX2 backend at run time, which costs
//! about 1.5 µs of setup per tag — 15x orion's scalar code on a 64-byte message — and wins only
//! on long messages (2.5x orion at 64 KiB). CURVE computes one tag per frame, so the choice is
//! made per frame, at [`LONG_TAG_BYTES`]. Both are checked against each other in the tests,
//! and against libsodium by every interop test.
//!
//! With the `sodium` feature, the boxes and `crypto_box_beforenm` come from libsodium instead
//! (the `backend` below is then `super::sodium`); the types and functions here keep one
//! interface, so `cipher.rs` and `curve.rs` do not know which code runs. Key pairs, HSalsa20
//! for [`PrefixedKey`], nonces and randomness stay in Rust either way. The pure-Rust backend is
//! still compiled, and the tests check the two against each other.

use crate::wire::ProtocolError;
use curve25519_dalek::MontgomeryPoint;
use salsa20::cipher::consts::U10;
use salsa20::cipher::generic_array::GenericArray;
use zeroize::Zeroizing;

/// Messages at least this long get their Poly1305 tag from RustCrypto's `poly1305` (AVX2
/// when the CPU has it); shorter ones from orion's scalar code. Measured here: orion 118 ns
/// and `poly1305` 1.6 µs at 65 bytes, 1.2 µs against 1.9 µs at 1 KiB, 61 µs against 23 µs at
/// 64 KiB.
const LONG_TAG_BYTES: usize = 4096;

/// A 24-byte nonce.
pub(super) type Nonce = [u8; 24];

/// An XSalsa20-Poly1305 key: precomputed for a pair of Curve25519 keys
/// (`crypto_box_beforenm`), or a secretbox key (the cookie key).
pub(super) struct BoxKey(Zeroizing<[u8; 32]>);

impl BoxKey {
    /// Encrypts `buffer` in place and returns its tag (`crypto_secretbox_detached`).
    pub(super) fn seal_in_place(&self, nonce: &Nonce, buffer: &mut [u8]) -> [u8; 16] {
        backend::seal(&self.0, nonce, buffer)
    }

    /// Checks `tag` over `buffer` and decrypts it in place (`crypto_secretbox_open_detached`);
    /// on a bad tag the buffer is left as it was.
    pub(super) fn open_in_place(
        &self,
        nonce: &Nonce,
        buffer: &mut [u8],
        expected: &[u8],
    ) -> Result<(), ()> {
        backend::open(&self.0, nonce, buffer, expected)
    }

    /// This key for nonces that all start with `prefix` (CurveZMQ's MESSAGE boxes): see
    /// [`PrefixedKey`].
    pub(super) fn prefixed(&self, prefix: &[u8; 16]) -> PrefixedKey {
        let subkey = salsa20::hsalsa::<U10>(
            GenericArray::from_slice(&self.0[..]),
            GenericArray::from_slice(prefix),
        );
        PrefixedKey(Zeroizing::new(subkey.into()))
    }
}

/// A box key for nonces whose first 16 bytes never change, as each direction's MESSAGE
/// nonces (`CurveZMQMESSAGEC`/`S` then a counter). XSalsa20 under a 24-byte nonce is Salsa20
/// under HSalsa20(key, the nonce's first 16 bytes) and its last 8; with the 16 fixed, that
/// subkey is computed once per connection instead of once per frame (libsodium recomputes
/// it: 13 % of a 64-byte frame's cost here).
pub(super) struct PrefixedKey(Zeroizing<[u8; 32]>);

impl PrefixedKey {
    /// [`BoxKey::seal_in_place`] for the nonce `prefix ‖ short` (big-endian).
    pub(super) fn seal_in_place(&self, short: u64, buffer: &mut [u8]) -> [u8; 16] {
        backend::seal_prefixed(&self.0, short, buffer)
    }

    /// [`BoxKey::open_in_place`] for the nonce `prefix ‖ short` (big-endian).
    pub(super) fn open_in_place(
        &self,
        short: u64,
        buffer: &mut [u8],
        expected: &[u8],
    ) -> Result<(), ()> {
        backend::open_prefixed(&self.0, short, buffer, expected)
    }
}

/// Which code computes the boxes: libsodium with the `sodium` feature, else `pure`. Both
/// offer `seal`/`open` (full nonce, for `BoxKey`) and `seal_prefixed`/`open_prefixed`
/// (HSalsa20 subkey and short nonce, for `PrefixedKey`), with the same contracts.
#[cfg(feature = "sodium")]
use super::sodium as backend;
#[cfg(not(feature = "sodium"))]
use pure as backend;

/// The pure-Rust backend: RustCrypto's XSalsa20/Salsa20 and the two Poly1305s. Compiled with
/// the `sodium` feature too, where the tests check each backend against the other.
#[cfg_attr(all(feature = "sodium", not(test)), allow(dead_code))]
mod pure {
    use super::{GenericArray, LONG_TAG_BYTES, Nonce, Zeroizing};
    use salsa20::cipher::{KeyIvInit, StreamCipher};
    use salsa20::{Salsa20, XSalsa20};
    use subtle::ConstantTimeEq;

    pub(super) fn seal(key: &[u8; 32], nonce: &Nonce, buffer: &mut [u8]) -> [u8; 16] {
        seal_with(xsalsa20(key, nonce), buffer)
    }

    pub(super) fn open(
        key: &[u8; 32],
        nonce: &Nonce,
        buffer: &mut [u8],
        expected: &[u8],
    ) -> Result<(), ()> {
        open_with(xsalsa20(key, nonce), buffer, expected)
    }

    pub(super) fn seal_prefixed(subkey: &[u8; 32], short: u64, buffer: &mut [u8]) -> [u8; 16] {
        seal_with(salsa20(subkey, short), buffer)
    }

    pub(super) fn open_prefixed(
        subkey: &[u8; 32],
        short: u64,
        buffer: &mut [u8],
        expected: &[u8],
    ) -> Result<(), ()> {
        open_with(salsa20(subkey, short), buffer, expected)
    }

    fn xsalsa20(key: &[u8; 32], nonce: &Nonce) -> XSalsa20 {
        XSalsa20::new(
            GenericArray::from_slice(key),
            GenericArray::from_slice(nonce),
        )
    }

    /// XSalsa20 under `prefix ‖ short` is Salsa20 under the prefix's subkey and `short`.
    fn salsa20(subkey: &[u8; 32], short: u64) -> Salsa20 {
        Salsa20::new(
            GenericArray::from_slice(subkey),
            GenericArray::from_slice(&short.to_be_bytes()),
        )
    }

    /// The one-time Poly1305 key: the first 32 bytes of the keystream.
    fn mac_key(cipher: &mut impl StreamCipher) -> Zeroizing<[u8; 32]> {
        let mut key = Zeroizing::new([0u8; 32]);
        cipher.apply_keystream(&mut key[..]);
        key
    }

    /// `crypto_secretbox`: the rest of the keystream encrypts, the one-time key tags.
    fn seal_with(mut cipher: impl StreamCipher, buffer: &mut [u8]) -> [u8; 16] {
        let key = mac_key(&mut cipher);
        cipher.apply_keystream(buffer);
        tag(&key, buffer)
    }

    /// `crypto_secretbox_open`: the tag is checked (in constant time) before anything
    /// decrypts.
    fn open_with(
        mut cipher: impl StreamCipher,
        buffer: &mut [u8],
        expected: &[u8],
    ) -> Result<(), ()> {
        let key = mac_key(&mut cipher);
        if !bool::from(tag(&key, buffer).ct_eq(expected)) {
            return Err(());
        }
        cipher.apply_keystream(buffer);
        Ok(())
    }

    /// Poly1305 of `data` under a one-time key.
    pub(super) fn tag(key: &[u8; 32], data: &[u8]) -> [u8; 16] {
        if data.len() >= LONG_TAG_BYTES {
            use poly1305::universal_hash::KeyInit;
            let mac = poly1305::Poly1305::new(GenericArray::from_slice(key));
            return mac.compute_unpadded(data).into();
        }
        use orion::hazardous::mac::poly1305::{OneTimeKey, Poly1305};
        let key = OneTimeKey::try_from(key).expect("32-byte key");
        let tag = Poly1305::poly1305(&key, data).expect("any length is accepted");
        tag.unprotected_as_ref().try_into().expect("16-byte tag")
    }
}

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
/// libsodium refuses it. With the `sodium` feature libsodium computes it (about twice as fast
/// as `curve25519-dalek`'s X25519 here; a handshake makes three on each side).
pub(super) fn box_key(secret: &[u8; 32], public: &[u8; 32]) -> Result<BoxKey, ProtocolError> {
    #[cfg(feature = "sodium")]
    let key = super::sodium::box_key(secret, public);
    #[cfg(not(feature = "sodium"))]
    let key = pure_box_key(secret, public);
    key.map(BoxKey).ok_or(ProtocolError::Crypto {
        what: "the peer's key is of low order (its shared secret would be zero)",
    })
}

/// [`box_key`] from `curve25519-dalek` and RustCrypto's HSalsa20; `None` for a low-order key.
#[cfg_attr(all(feature = "sodium", not(test)), allow(dead_code))]
fn pure_box_key(secret: &[u8; 32], public: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
    let shared = Zeroizing::new(MontgomeryPoint(*public).mul_clamped(*secret).to_bytes());
    if shared.iter().all(|&b| b == 0) {
        return None;
    }
    let key = salsa20::hsalsa::<U10>(
        GenericArray::from_slice(&shared[..]),
        &GenericArray::default(),
    );
    Some(Zeroizing::new(key.into()))
}

/// A secretbox key (the cookie key).
pub(super) fn secret_key(key: &[u8; 32]) -> BoxKey {
    BoxKey(Zeroizing::new(*key))
}

/// A 24-byte nonce: `prefix` then `rest`.
pub(super) fn nonce(prefix: &[u8], rest: &[u8]) -> Nonce {
    let mut n = [0u8; 24];
    n[..prefix.len()].copy_from_slice(prefix);
    n[prefix.len()..].copy_from_slice(rest);
    n
}

/// `N` bytes from the operating system's random source.
pub(super) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source");
    bytes
}

/// Box\[plaintext\] as the wire carries it: tag, then ciphertext.
pub(super) fn seal(key: &BoxKey, nonce: &Nonce, plaintext: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 16 + plaintext.len()];
    out[16..].copy_from_slice(plaintext);
    let tag = key.seal_in_place(nonce, &mut out[16..]);
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
    let mut text = Zeroizing::new(boxed[16..].to_vec());
    key.open_in_place(nonce, &mut text, &boxed[..16])
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

    #[test]
    fn a_prefixed_key_boxes_as_the_full_nonce_does() {
        let a = Transient::generate();
        let b = Transient::generate();
        let key = box_key(a.secret(), b.public()).unwrap();
        let prefixed = key.prefixed(b"CurveZMQMESSAGEC");
        for short in [1u64, 2, 0x0102_0304_0506_0708, u64::MAX] {
            let full = nonce(b"CurveZMQMESSAGEC", &short.to_be_bytes());
            let mut one = *b"the same plaintext, boxed twice";
            let mut two = one;
            assert_eq!(
                key.seal_in_place(&full, &mut one),
                prefixed.seal_in_place(short, &mut two)
            );
            assert_eq!(one, two);
        }
    }

    #[test]
    fn both_poly1305s_give_the_same_tag_around_the_switch() {
        use poly1305::universal_hash::KeyInit;
        let key = random::<32>();
        for len in [
            0,
            1,
            15,
            16,
            17,
            64,
            65,
            LONG_TAG_BYTES - 1,
            LONG_TAG_BYTES,
            70_000,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let rustcrypto: [u8; 16] = poly1305::Poly1305::new(GenericArray::from_slice(&key))
                .compute_unpadded(&data)
                .into();
            assert_eq!(pure::tag(&key, &data), rustcrypto, "{len} bytes");
        }
    }

    /// NaCl's secretbox test vector (the "Alice and Bob" box from the NaCl distribution's
    /// tests, as libsodium ships it): key, nonce and the first bytes of the 131-byte message
    /// and of its box.
    #[test]
    fn secretbox_matches_nacls_test_vector() {
        let key = BoxKey(Zeroizing::new([
            0x1b, 0x27, 0x55, 0x64, 0x73, 0xe9, 0x85, 0xd4, 0x62, 0xcd, 0x51, 0x19, 0x7a, 0x9a,
            0x46, 0xc7, 0x60, 0x09, 0x54, 0x9e, 0xac, 0x64, 0x74, 0xf2, 0x06, 0xc4, 0xee, 0x08,
            0x44, 0xf6, 0x83, 0x89,
        ]));
        let nonce: Nonce = [
            0x69, 0x69, 0x6e, 0xe9, 0x55, 0xb6, 0x2b, 0x73, 0xcd, 0x62, 0xbd, 0xa8, 0x75, 0xfc,
            0x73, 0xd6, 0x82, 0x19, 0xe0, 0x03, 0x6b, 0x7a, 0x0b, 0x37,
        ];
        let message = [
            0xbe, 0x07, 0x5f, 0xc5, 0x3c, 0x81, 0xf2, 0xd5, 0xcf, 0x14, 0x13, 0x16, 0xeb, 0xeb,
            0x0c, 0x7b, 0x52, 0x28, 0xc5, 0x2a, 0x4c, 0x62, 0xcb, 0xd4, 0x4b, 0x66, 0x84, 0x9b,
            0x64, 0x24, 0x4f, 0xfc, 0xe5, 0xec, 0xba, 0xaf, 0x33, 0xbd, 0x75, 0x1a, 0x1a, 0xc7,
            0x28, 0xd4, 0x5e, 0x6c, 0x61, 0x29, 0x6c, 0xdc, 0x3c, 0x01, 0x23, 0x35, 0x61, 0xf4,
            0x1d, 0xb6, 0x6c, 0xce, 0x31, 0x4a, 0xdb, 0x31, 0x0e, 0x3b, 0xe8, 0x25, 0x0c, 0x46,
            0xf0, 0x6d, 0xce, 0xea, 0x3a, 0x7f, 0xa1, 0x34, 0x80, 0x57, 0xe2, 0xf6, 0x55, 0x6a,
            0xd6, 0xb1, 0x31, 0x8a, 0x02, 0x4a, 0x83, 0x8f, 0x21, 0xaf, 0x1f, 0xde, 0x04, 0x89,
            0x77, 0xeb, 0x48, 0xf5, 0x9f, 0xfd, 0x49, 0x24, 0xca, 0x1c, 0x60, 0x90, 0x2e, 0x52,
            0xf0, 0xa0, 0x89, 0xbc, 0x76, 0x89, 0x70, 0x40, 0xe0, 0x82, 0xf9, 0x37, 0x76, 0x38,
            0x48, 0x64, 0x5e, 0x07, 0x05,
        ];
        let boxed = seal(&key, &nonce, &message);
        // Tag, then ciphertext.
        assert_eq!(
            boxed[..16],
            [
                0xf3, 0xff, 0xc7, 0x70, 0x3f, 0x94, 0x00, 0xe5, 0x2a, 0x7d, 0xfb, 0x4b, 0x3d, 0x33,
                0x05, 0xd9
            ]
        );
        assert_eq!(boxed[16..20], [0x8e, 0x99, 0x3b, 0x9f]);
        assert_eq!(&open(&key, &nonce, &boxed, "x").unwrap()[..], &message[..]);
    }
}

/// With the `sodium` feature, libsodium against the pure-Rust code: whatever one seals the
/// other opens, byte for byte the same box, on random sizes around every block and tag
/// boundary up to past 64 KiB.
#[cfg(all(test, feature = "sodium"))]
mod sodium_tests {
    use super::super::sodium;
    use super::*;

    /// 200 random lengths below 70,000, and the edges: empty, one byte, the 32 bytes
    /// encrypted by the first keystream block, a block, the long-tag switch, 64 KiB.
    fn lengths() -> Vec<usize> {
        let mut lengths = vec![0, 1, 31, 32, 33, 63, 64, 65, 4095, 4096, 65_536, 69_999];
        for _ in 0..200 {
            lengths.push(u32::from_le_bytes(random::<4>()) as usize % 70_000);
        }
        lengths
    }

    fn plaintext(len: usize) -> Vec<u8> {
        let mut text = vec![0u8; len];
        getrandom::getrandom(&mut text).unwrap();
        text
    }

    #[test]
    fn libsodium_and_the_pure_rust_boxes_open_each_others() {
        let key = random::<32>();
        for len in lengths() {
            let nonce = random::<24>();
            let text = plaintext(len);
            let (mut by_pure, mut by_sodium) = (text.clone(), text.clone());
            let pure_tag = pure::seal(&key, &nonce, &mut by_pure);
            let sodium_tag = sodium::seal(&key, &nonce, &mut by_sodium);
            assert_eq!(pure_tag, sodium_tag, "{len} bytes");
            assert_eq!(by_pure, by_sodium, "{len} bytes");
            sodium::open(&key, &nonce, &mut by_pure, &pure_tag).expect("sodium opens pure");
            pure::open(&key, &nonce, &mut by_sodium, &sodium_tag).expect("pure opens sodium");
            assert_eq!(by_pure, text, "{len} bytes");
            assert_eq!(by_sodium, text, "{len} bytes");
        }
    }

    #[test]
    fn libsodium_and_the_pure_rust_prefixed_boxes_open_each_others() {
        let key = BoxKey(Zeroizing::new(random::<32>()));
        let subkey = key.prefixed(b"CurveZMQMESSAGEC");
        for len in lengths() {
            let short = u64::from_le_bytes(random::<8>());
            let text = plaintext(len);
            let (mut by_pure, mut by_sodium) = (text.clone(), text.clone());
            let pure_tag = pure::seal_prefixed(&subkey.0, short, &mut by_pure);
            let sodium_tag = sodium::seal_prefixed(&subkey.0, short, &mut by_sodium);
            assert_eq!(pure_tag, sodium_tag, "{len} bytes");
            assert_eq!(by_pure, by_sodium, "{len} bytes");
            sodium::open_prefixed(&subkey.0, short, &mut by_pure, &pure_tag)
                .expect("sodium opens pure");
            pure::open_prefixed(&subkey.0, short, &mut by_sodium, &sodium_tag)
                .expect("pure opens sodium");
            assert_eq!(by_pure, text, "{len} bytes");
            assert_eq!(by_sodium, text, "{len} bytes");
        }
    }

    /// Any 32 bytes as the public key (points on the twist, the top bit set, ...): the same
    /// key from both, or a refusal from both.
    #[test]
    fn libsodium_and_the_pure_rust_box_keys_agree() {
        let mut publics: Vec<[u8; 32]> = (0..100).map(|_| random::<32>()).collect();
        publics.push([0; 32]);
        publics.push({
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        });
        for public in publics {
            let secret = random::<32>();
            assert_eq!(
                sodium::box_key(&secret, &public).as_deref(),
                pure_box_key(&secret, &public).as_deref(),
                "public key {public:02x?}"
            );
        }
    }

    #[test]
    fn libsodium_refuses_a_bad_tag_and_leaves_the_box_as_it_was() {
        let key = random::<32>();
        let nonce = random::<24>();
        let subkey = random::<32>();
        for len in [0, 1, 33, 100, 5000] {
            let mut boxed = plaintext(len);
            let mut tag = sodium::seal(&key, &nonce, &mut boxed);
            let mut prefixed = boxed.clone();
            let mut prefixed_tag = sodium::seal_prefixed(&subkey, 9, &mut prefixed);
            tag[len % 16] ^= 1;
            prefixed_tag[len % 16] ^= 1;
            let (before, prefixed_before) = (boxed.clone(), prefixed.clone());
            assert!(sodium::open(&key, &nonce, &mut boxed, &tag).is_err());
            assert!(sodium::open_prefixed(&subkey, 9, &mut prefixed, &prefixed_tag).is_err());
            assert!(sodium::open(&key, &nonce, &mut boxed, &tag[..15]).is_err());
            assert_eq!((boxed, prefixed), (before, prefixed_before), "{len} bytes");
        }
    }

    /// Not a test: per-box times of each backend, `cargo test --release --features sodium
    /// --lib -- --ignored --nocapture box_timings`.
    #[test]
    #[ignore]
    fn box_timings() {
        #[allow(clippy::disallowed_methods)]
        fn time(mut f: impl FnMut()) -> f64 {
            let reps = 20_000;
            let start = std::time::Instant::now();
            for _ in 0..reps {
                f();
            }
            start.elapsed().as_nanos() as f64 / reps as f64
        }
        let key = BoxKey(Zeroizing::new(random::<32>()));
        let prefixed = key.prefixed(b"CurveZMQMESSAGEC");
        for len in [65usize, 1025, 65_537] {
            let mut buf = plaintext(len);
            let full = nonce(b"CurveZMQMESSAGEC", &7u64.to_be_bytes());
            let p = time(|| {
                std::hint::black_box(pure::seal_prefixed(&prefixed.0, 7, &mut buf));
            });
            let sf = time(|| {
                std::hint::black_box(sodium::seal(&key.0, &full, &mut buf));
            });
            let sp = time(|| {
                std::hint::black_box(sodium::seal_prefixed(&prefixed.0, 7, &mut buf));
            });
            println!(
                "{len:>6} B: pure prefixed {p:>9.0} ns, sodium full nonce {sf:>9.0} ns, sodium prefixed {sp:>9.0} ns"
            );
        }
        let (a, b) = (Transient::generate(), Transient::generate());
        let dalek = time(|| {
            std::hint::black_box(pure_box_key(a.secret(), b.public()).unwrap());
        });
        let libsodium = time(|| {
            std::hint::black_box(sodium::box_key(a.secret(), b.public()).unwrap());
        });
        println!("box_key: dalek+hsalsa {dalek:.0} ns, crypto_box_beforenm {libsodium:.0} ns");
    }
}
