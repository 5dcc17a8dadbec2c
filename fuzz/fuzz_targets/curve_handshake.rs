//! A hostile CURVE peer against a Connection, with an honest peer alongside. See `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferromq_fuzz::curve_handshake(data));
