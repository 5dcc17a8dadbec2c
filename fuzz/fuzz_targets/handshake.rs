//! Arbitrarily chunked bytes and clock ticks into a server-side `Connection`. See `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferromq_fuzz::handshake(data));
