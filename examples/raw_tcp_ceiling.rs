//! The physical ceiling for `local_thr`/`remote_thr`: the same ZMTP-framed bytes moved by a
//! plain TCP (or Unix-socket) writer and reader with no messaging library in between.
//!
//! ```text
//! raw_tcp_ceiling local  <bind-to>    <message-size> <message-count>
//! raw_tcp_ceiling remote <connect-to> <message-size> <message-count>
//! ```
//! Endpoints are `tcp://host:port` or `ipc:///path`. `local` prints the same four lines as
//! `local_thr`, so `compare` parses all three implementations alike.
//!
//! * The writer frames each message as ZMTP 3.1 does (2-byte short header up to 255 bytes,
//!   9-byte long header above), copies the payload into a buffer per message (the work every
//!   library does when it copies a message on send), and writes whenever the buffer holds
//!   64 KiB or more. There is no greeting or handshake: only the data phase is measured.
//! * The reader reads 256 KiB at a time and walks every frame header, checking each message
//!   size, without allocating per message. The clock starts when the first message is
//!   complete, as in `local_thr`.

#[path = "common/mod.rs"]
mod common;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The writer flushes once its buffer holds this many bytes.
const WRITE_CHUNK: usize = 64 * 1024;
/// The reader's buffer; one `read` fills at most this much.
const READ_CHUNK: usize = 256 * 1024;
/// ZMTP flag bit: the frame uses the 8-byte length form.
const FLAG_LONG: u8 = 0x02;
/// ZMTP flag bits that must be clear on a single-frame data message (MORE, COMMAND).
const FLAG_MORE_OR_COMMAND: u8 = 0x01 | 0x04;
/// How long the writer keeps retrying to connect while the reader starts up.
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: raw_tcp_ceiling local|remote <endpoint> <message-size> <message-count>";
    if args.len() != 5 {
        eprintln!("{usage}");
        return ExitCode::from(2);
    }
    let (Ok(size), Ok(count)) = (args[3].parse::<usize>(), args[4].parse::<u64>()) else {
        eprintln!("raw_tcp_ceiling: message-size and message-count must be whole numbers");
        return ExitCode::from(2);
    };
    let result = match args[1].as_str() {
        "local" => accept(&args[2]).and_then(|stream| read_all(stream, size, count)),
        "remote" => connect(&args[2]).and_then(|stream| write_all(stream, size, count)),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raw_tcp_ceiling: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A connected byte stream of either transport.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf),
            Stream::Unix(s) => s.write_all(buf),
        }
    }
}

/// Splits `tcp://addr` / `ipc:///path` into the transport and its address.
fn parse_endpoint(endpoint: &str) -> io::Result<(bool, &str)> {
    if let Some(addr) = endpoint.strip_prefix("tcp://") {
        Ok((true, addr))
    } else if let Some(path) = endpoint.strip_prefix("ipc://") {
        Ok((false, path))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("endpoint {endpoint}: expected tcp://host:port or ipc:///path"),
        ))
    }
}

fn accept(endpoint: &str) -> io::Result<Stream> {
    let (is_tcp, addr) = parse_endpoint(endpoint)?;
    if is_tcp {
        let listener = TcpListener::bind(addr)?;
        let (stream, _) = listener.accept()?;
        // Same as every ZeroMQ implementation: no Nagle delay.
        stream.set_nodelay(true)?;
        Ok(Stream::Tcp(stream))
    } else {
        // A stale socket file from an earlier run would make bind fail.
        let _ = std::fs::remove_file(addr);
        let listener = UnixListener::bind(addr)?;
        let (stream, _) = listener.accept()?;
        let _ = std::fs::remove_file(addr);
        Ok(Stream::Unix(stream))
    }
}

fn connect(endpoint: &str) -> io::Result<Stream> {
    let (is_tcp, addr) = parse_endpoint(endpoint)?;
    let deadline = Instant::now() + CONNECT_PATIENCE;
    loop {
        let attempt = if is_tcp {
            TcpStream::connect(addr).and_then(|stream| {
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            })
        } else {
            UnixStream::connect(addr).map(Stream::Unix)
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            // The reader may not be listening yet; ZeroMQ's connect retries the same way.
            Err(e) if Instant::now() < deadline => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                ) {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Appends one ZMTP data frame header for a final frame of `size` bytes.
fn push_header(buf: &mut Vec<u8>, size: usize) {
    if size <= 255 {
        buf.extend_from_slice(&[0, size as u8]);
    } else {
        buf.push(FLAG_LONG);
        buf.extend_from_slice(&(size as u64).to_be_bytes());
    }
}

fn write_all(mut stream: Stream, size: usize, count: u64) -> io::Result<()> {
    let payload = vec![0u8; size];
    let mut buf = Vec::with_capacity(WRITE_CHUNK + size + 9);
    for _ in 0..count {
        push_header(&mut buf, size);
        buf.extend_from_slice(&payload);
        if buf.len() >= WRITE_CHUNK {
            stream.write_all(&buf)?;
            buf.clear();
        }
    }
    stream.write_all(&buf)?;
    // Closing after the last write still delivers everything queued in the kernel.
    Ok(())
}

/// Where the reader is inside the frame stream between two reads.
struct FrameWalker {
    /// Body bytes of the current frame not yet read.
    body_left: u64,
    /// Messages completely read.
    messages: u64,
    /// When the first message completed.
    start: Option<Instant>,
}

impl FrameWalker {
    /// Walks `data`, returning how many leading bytes were consumed; the rest is the start of
    /// a header split across reads.
    fn walk(&mut self, data: &[u8], size: usize) -> io::Result<usize> {
        let mut pos = 0;
        loop {
            if self.body_left > 0 {
                let take = self.body_left.min((data.len() - pos) as u64);
                pos += take as usize;
                self.body_left -= take;
                if self.body_left > 0 {
                    return Ok(pos);
                }
                self.complete();
            }
            let Some(&flags) = data.get(pos) else {
                return Ok(pos);
            };
            let (header_len, body_len) = if flags & FLAG_LONG == 0 {
                let Some(&len) = data.get(pos + 1) else {
                    return Ok(pos);
                };
                (2, u64::from(len))
            } else {
                let Some(len) = data.get(pos + 1..pos + 9) else {
                    return Ok(pos);
                };
                (9, u64::from_be_bytes(len.try_into().expect("8 bytes")))
            };
            if flags & FLAG_MORE_OR_COMMAND != 0 || body_len != size as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("frame with flags {flags:#x} and {body_len} bytes, expected {size}"),
                ));
            }
            pos += header_len;
            self.body_left = body_len;
            if body_len == 0 {
                self.complete();
            }
        }
    }

    fn complete(&mut self) {
        self.messages += 1;
        if self.start.is_none() {
            self.start = Some(Instant::now());
        }
    }
}

fn read_all(mut stream: Stream, size: usize, count: u64) -> io::Result<()> {
    let mut buf = vec![0u8; READ_CHUNK];
    // Bytes of a split header carried to the front of `buf` from the previous read.
    let mut carried = 0;
    let mut walker = FrameWalker {
        body_left: 0,
        messages: 0,
        start: None,
    };
    while walker.messages < count {
        let n = stream.read(&mut buf[carried..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "sender closed after {} of {count} messages",
                    walker.messages
                ),
            ));
        }
        let filled = carried + n;
        let consumed = walker.walk(&buf[..filled], size)?;
        buf.copy_within(consumed..filled, 0);
        carried = filled - consumed;
    }
    let elapsed = walker
        .start
        .map_or(0.0, |start| start.elapsed().as_secs_f64());
    common::print_throughput(size, count, elapsed);
    Ok(())
}
