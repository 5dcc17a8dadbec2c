//! The `sodium` feature's backend for [`nacl`](super::nacl): the same boxes, computed by
//! libsodium (through `libsodium-sys-stable`, which builds the libsodium source it bundles).
//!
//! Why a C library in a pure-Rust crate: CURVE's cost on long frames is XSalsa20, and no
//! maintained Rust crate has a SIMD XSalsa20 (RustCrypto's `salsa20` is scalar only), while
//! libsodium picks SSE2/AVX2 code at run time. Hand-writing one is out of the question, so the
//! feature borrows libsodium's. It is off by default; without it nothing here is compiled.
//!
//! This is the only module of the crate allowed `unsafe`, and only to call libsodium: every
//! call takes pointers from Rust slices and arrays whose lengths are passed beside them or
//! fixed by the function's contract. libsodium is initialised once, before its first use.

use super::nacl::Nonce;
use libsodium_sys as ffi;
use std::sync::Once;
use zeroize::Zeroizing;

/// `sodium_init`, once per process (libsodium picks its SIMD implementations there).
fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: `sodium_init` takes no arguments and is safe to call from any thread, any
        // number of times; `Once` makes it one here.
        let status = unsafe { ffi::sodium_init() };
        // 0: initialised now, 1: already was (by another user in this process), -1: failed.
        assert!(status >= 0, "libsodium failed to initialise ({status})");
    });
}

/// `crypto_secretbox_detached`: encrypts `buffer` in place under `key` and `nonce` and
/// returns the tag.
pub(super) fn seal(key: &[u8; 32], nonce: &Nonce, buffer: &mut [u8]) -> [u8; 16] {
    init();
    let mut tag = [0u8; 16];
    let len = buffer.len() as u64;
    let text = buffer.as_mut_ptr();
    // SAFETY: `text` points at `len` writable bytes that nothing else borrows; libsodium
    // allows the ciphertext and the message to be the same buffer (it reads each block before
    // writing it). `tag` has the 16 bytes, `nonce` the 24 and `key` the 32 it reads.
    let status = unsafe {
        ffi::crypto_secretbox_detached(
            text,
            tag.as_mut_ptr(),
            text,
            len,
            nonce.as_ptr(),
            key.as_ptr(),
        )
    };
    assert_eq!(status, 0, "crypto_secretbox_detached cannot fail");
    tag
}

/// `crypto_secretbox_open_detached`: checks `expected` over `buffer` and decrypts it in
/// place; on a bad tag (or one that is not 16 bytes) the buffer is left as it was.
pub(super) fn open(
    key: &[u8; 32],
    nonce: &Nonce,
    buffer: &mut [u8],
    expected: &[u8],
) -> Result<(), ()> {
    init();
    let expected: &[u8; 16] = expected.try_into().map_err(|_| ())?;
    let len = buffer.len() as u64;
    let text = buffer.as_mut_ptr();
    // SAFETY: as in `seal`; libsodium checks the tag (in constant time) before it writes
    // anything, and writes nothing when it fails.
    let status = unsafe {
        ffi::crypto_secretbox_open_detached(
            text,
            text,
            expected.as_ptr(),
            len,
            nonce.as_ptr(),
            key.as_ptr(),
        )
    };
    match status {
        0 => Ok(()),
        _ => Err(()),
    }
}

/// [`seal`] for a nonce `prefix ‖ short` whose HSalsa20 subkey `subkey` the caller computed
/// once (see `nacl::PrefixedKey`): what `crypto_secretbox_detached` does after its HSalsa20
/// step, from the same libsodium functions.
pub(super) fn seal_prefixed(subkey: &[u8; 32], short: u64, buffer: &mut [u8]) -> [u8; 16] {
    init();
    let short = short.to_be_bytes();
    let block = first_block(subkey, &short);
    xor_keystream(&block, subkey, &short, buffer);
    let mut tag = [0u8; 16];
    // SAFETY: `tag` has the 16 bytes libsodium writes, `buffer` the `len` it reads, `block`
    // the 32-byte one-time key at its start.
    let status = unsafe {
        ffi::crypto_onetimeauth_poly1305(
            tag.as_mut_ptr(),
            buffer.as_ptr(),
            buffer.len() as u64,
            block.as_ptr(),
        )
    };
    assert_eq!(status, 0, "crypto_onetimeauth_poly1305 cannot fail");
    tag
}

/// [`open`] for a nonce `prefix ‖ short`, as [`seal_prefixed`].
pub(super) fn open_prefixed(
    subkey: &[u8; 32],
    short: u64,
    buffer: &mut [u8],
    expected: &[u8],
) -> Result<(), ()> {
    init();
    let expected: &[u8; 16] = expected.try_into().map_err(|_| ())?;
    let short = short.to_be_bytes();
    let block = first_block(subkey, &short);
    // SAFETY: `expected` has the 16 bytes libsodium reads, `buffer` the `len`, `block` the
    // 32-byte one-time key at its start. The comparison is constant-time (`crypto_verify_16`).
    let status = unsafe {
        ffi::crypto_onetimeauth_poly1305_verify(
            expected.as_ptr(),
            buffer.as_ptr(),
            buffer.len() as u64,
            block.as_ptr(),
        )
    };
    if status != 0 {
        return Err(());
    }
    xor_keystream(&block, subkey, &short, buffer);
    Ok(())
}

/// Salsa20's first 64-byte keystream block under `subkey` and the 8-byte `nonce`: NaCl's
/// secretbox keys Poly1305 with its first 32 bytes and encrypts with everything after them.
fn first_block(subkey: &[u8; 32], nonce: &[u8; 8]) -> Zeroizing<[u8; 64]> {
    let mut block = Zeroizing::new([0u8; 64]);
    // SAFETY: `block` has the 64 writable bytes asked for, `nonce` the 8 and `subkey` the 32
    // that `crypto_stream_salsa20` reads.
    let status = unsafe {
        ffi::crypto_stream_salsa20(block.as_mut_ptr(), 64, nonce.as_ptr(), subkey.as_ptr())
    };
    assert_eq!(status, 0, "crypto_stream_salsa20 cannot fail");
    block
}

/// XORs `buffer` with the keystream from its byte 32 on: the rest of `block`, then blocks
/// 1, 2, ... (as `crypto_secretbox_detached` does).
fn xor_keystream(block: &[u8; 64], subkey: &[u8; 32], nonce: &[u8; 8], buffer: &mut [u8]) {
    let (head, rest) = buffer.split_at_mut(buffer.len().min(32));
    for (byte, key) in head.iter_mut().zip(&block[32..]) {
        *byte ^= key;
    }
    if rest.is_empty() {
        return;
    }
    let text = rest.as_mut_ptr();
    // SAFETY: `text` points at `rest.len()` writable bytes that nothing else borrows; the
    // in-place use (output = input) is the one `crypto_secretbox_detached` itself makes of
    // this function. `nonce` has 8 bytes and `subkey` 32.
    let status = unsafe {
        ffi::crypto_stream_salsa20_xor_ic(
            text,
            text,
            rest.len() as u64,
            nonce.as_ptr(),
            1,
            subkey.as_ptr(),
        )
    };
    assert_eq!(status, 0, "crypto_stream_salsa20_xor_ic cannot fail");
}

/// `crypto_box_beforenm`: the box key between `secret` and `public`, or `None` when libsodium
/// refuses `public` (a key of low order, whose shared secret would be all zeros).
pub(super) fn box_key(secret: &[u8; 32], public: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
    init();
    let mut key = Zeroizing::new([0u8; 32]);
    // SAFETY: `key` has the 32 writable bytes libsodium writes, `public` and `secret` the 32
    // each that it reads.
    let status =
        unsafe { ffi::crypto_box_beforenm(key.as_mut_ptr(), public.as_ptr(), secret.as_ptr()) };
    (status == 0).then_some(key)
}
