//! Operation sequences on the pattern layer against simple models. See `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferromq_fuzz::pattern_ops(data));
