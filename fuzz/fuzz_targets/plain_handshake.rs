//! A hostile PLAIN peer against a Connection, with an honest peer alongside. See `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferromq_fuzz::plain_handshake(data));
