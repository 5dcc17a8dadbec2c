//! Multipart messages through WriteBuf and back through FrameDecoder. See `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferromq_fuzz::codec_roundtrip(data));
