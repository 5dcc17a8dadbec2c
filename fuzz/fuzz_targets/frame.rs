//! Arbitrary bytes into a `FrameDecoder`, whole and in chunks. See `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferromq_fuzz::frame(data));
