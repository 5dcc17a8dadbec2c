//! Structure-aware peer scripts against a Connection checked by a model. See `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferromq_fuzz::handshake_structured(data));
