//! Command and Metadata encode/decode round trips; raw bytes into Command::decode. See `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferromq_fuzz::commands(data));
