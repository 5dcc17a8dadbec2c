//! A hand-driven ZMTP peer for hostile-peer and memory tests: it speaks exactly the bytes a
//! test gives it, built with ferromq's own public encoders, and reads only when told to.

#![allow(dead_code)] // Each test binary uses the part it needs.

use bytes::{BufMut, Bytes, BytesMut};
use ferromq::Message;
use ferromq::internals::wire::frame::{FLAG_COMMAND, FLAG_LONG};
use ferromq::internals::wire::{
    Command, Connection, ConnectionConfig, Greeting, Metadata, Security, SocketType, WriteBuf,
};
use ferromq::security::{CurveKey, CurveKeyPair};
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Our greeting (NULL, ZMTP 3.1) followed by a READY for `socket_type` (e.g. "PUSH").
pub fn handshake(socket_type: &str) -> Vec<u8> {
    let mut bytes = Greeting::null().encode().to_vec();
    let mut meta = Metadata::new();
    meta.insert(
        "Socket-Type",
        Bytes::copy_from_slice(socket_type.as_bytes()),
    );
    bytes.extend_from_slice(&command(&Command::Ready(meta)));
    bytes
}

/// One encoded command frame.
pub fn command(command: &Command) -> Vec<u8> {
    let mut buf = BytesMut::new();
    command.encode(&mut buf);
    buf.to_vec()
}

/// A PING with no TTL and an empty context.
pub fn ping() -> Vec<u8> {
    command(&Command::Ping {
        ttl_deciseconds: 0,
        context: Bytes::new(),
    })
}

/// One encoded data message.
pub fn message(message: &Message) -> Vec<u8> {
    let mut buf = WriteBuf::new();
    buf.push_message(message);
    buf.to_bytes().to_vec()
}

/// The header of a long command frame announcing `len` body bytes.
pub fn long_command_header(len: u64) -> Vec<u8> {
    let mut header = vec![FLAG_COMMAND | FLAG_LONG];
    header.put_u64(len);
    header
}

/// A connected raw peer.
pub struct RawPeer {
    pub stream: TcpStream,
}

impl RawPeer {
    /// Connects and sends `bytes` (usually [`handshake`]) without reading anything.
    pub async fn connect(addr: SocketAddr, bytes: &[u8]) -> RawPeer {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(bytes).await.expect("write handshake");
        RawPeer { stream }
    }

    /// Connects as `socket_type` and reads the server's greeting and READY. The server may
    /// not have read our READY yet when this returns: wait on its peer count for that.
    pub async fn handshaken(addr: SocketAddr, socket_type: &str) -> RawPeer {
        let mut peer = RawPeer::connect(addr, &handshake(socket_type)).await;
        let mut greeting = [0u8; 64];
        peer.stream
            .read_exact(&mut greeting)
            .await
            .expect("server greeting");
        peer.read_frame().await.expect("server READY");
        peer
    }

    /// Reads one frame's flags and body; `None` at end of stream.
    pub async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let flags = self.stream.read_u8().await.ok()?;
        let len = if flags & FLAG_LONG != 0 {
            self.stream.read_u64().await.ok()? as usize
        } else {
            usize::from(self.stream.read_u8().await.ok()?)
        };
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await.ok()?;
        Some((flags, body))
    }

    /// Reads until the server closes the connection, discarding what arrives.
    pub async fn wait_closed(&mut self) {
        let mut sink = [0u8; 4096];
        while matches!(self.stream.read(&mut sink).await, Ok(n) if n > 0) {}
    }

    /// Writes all of `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }
}

/// A CURVE client built from ferromq's own sans-IO [`Connection`], driven by hand: it
/// completes the handshake, then boxes whatever a test wants to send and never reads again.
pub struct CurvePeer {
    pub stream: TcpStream,
    conn: Connection,
}

fn curve_client(socket_type: SocketType, server_key: CurveKey) -> ConnectionConfig {
    let mut config = ConnectionConfig::new(socket_type);
    config.security = Security::CurveClient {
        keypair: CurveKeyPair::generate(),
        server_key,
    };
    config
}

impl CurvePeer {
    /// Our CURVE greeting and a valid HELLO for `server_key`, as a client that then stalls
    /// would send them.
    pub fn hello(socket_type: SocketType, server_key: CurveKey) -> Vec<u8> {
        let now = Instant::now();
        let mut conn = Connection::new(curve_client(socket_type, server_key), now);
        let mut bytes = conn.take_transmit().expect("greeting").to_vec();
        let server = Greeting {
            version: (3, 1),
            mechanism: Security::CurveServer {
                keypair: CurveKeyPair::generate(),
            }
            .mechanism(),
            as_server: true,
        };
        conn.handle_input(&mut BytesMut::from(&server.encode()[..]), now)
            .expect("server greeting");
        bytes.extend_from_slice(&conn.take_transmit().expect("HELLO"));
        bytes
    }

    /// Connects as a CURVE client of `server_key` and completes the handshake.
    pub async fn handshaken(
        addr: SocketAddr,
        socket_type: SocketType,
        server_key: CurveKey,
    ) -> CurvePeer {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut conn = Connection::new(curve_client(socket_type, server_key), Instant::now());
        let mut input = BytesMut::new();
        while !conn.is_ready() {
            if let Some(bytes) = conn.take_transmit() {
                stream.write_all(&bytes).await.expect("write handshake");
            }
            if stream.read_buf(&mut input).await.expect("read handshake") == 0 {
                panic!("server closed during the CURVE handshake");
            }
            conn.handle_input(&mut input, Instant::now())
                .expect("CURVE handshake");
        }
        if let Some(bytes) = conn.take_transmit() {
            stream.write_all(&bytes).await.expect("write handshake");
        }
        CurvePeer { stream, conn }
    }

    /// The wire bytes of `messages`, boxed in order (each call continues the nonces).
    pub fn seal(&mut self, messages: &[Message]) -> Vec<u8> {
        let mut batch = WriteBuf::new();
        for m in messages {
            batch.push_message(m);
        }
        let mut out = WriteBuf::new();
        self.conn.seal_batch(&mut batch, &mut out);
        out.to_bytes().to_vec()
    }
}
