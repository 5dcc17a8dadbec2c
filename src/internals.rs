//! The sans-IO layers, reachable for ferromq's own tests, benchmarks and fuzz targets but not
//! part of the API (hidden from the documentation): they change without notice.
//! Applications use the socket types.
//!
//! * `wire`: the ZMTP 3.1 protocol — greeting, frames, commands, the security handshakes and
//!   the per-peer connection state machine, driven by bytes and a caller-supplied clock.
//! * `pattern`: the routing rules as plain data — round-robin, fair queue, subscription trie,
//!   routing-id table.

// No clock and no tokio in here (the methods and types are listed in clippy.toml); time and
// bytes are passed in by the engine.
#[deny(clippy::disallowed_methods, clippy::disallowed_types)]
#[path = "pattern/mod.rs"]
pub mod pattern;
#[deny(clippy::disallowed_methods, clippy::disallowed_types)]
#[path = "wire/mod.rs"]
pub mod wire;
