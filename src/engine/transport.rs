//! TCP and IPC streams and listeners, with the socket options libzmq sets.
//!
//! [`Stream`] and [`Listener`] are enums rather than trait objects: two variants, no boxing,
//! and the readiness-based calls the connection driver needs (`poll_read_ready`, `try_read_buf`,
//! `try_write_vectored`) are available on both tokio types.

use crate::endpoint::{Endpoint, Host};
use crate::error::{Error, Result};
use crate::options::SocketOptions;
use bytes::{BufMut, BytesMut};
use socket2::{SockRef, TcpKeepalive};
use std::io::{self, IoSlice};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};
use tokio::io::{Interest, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener, UnixStream};

/// A connected byte stream to one peer.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Ipc(UnixStream),
    /// Scripted IO for the engine's own tests.
    #[cfg(test)]
    Mock(super::mock_io::MockIo),
}

impl Stream {
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Ipc(s) => s.poll_read_ready(cx),
            #[cfg(test)]
            Stream::Mock(s) => s.poll_read_ready(cx),
        }
    }

    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_write_ready(cx),
            Stream::Ipc(s) => s.poll_write_ready(cx),
            #[cfg(test)]
            Stream::Mock(s) => s.poll_write_ready(cx),
        }
    }

    /// Reads what the kernel has. After a short read the stream's readiness is cleared, as
    /// tokio's own `poll_read` does, so the next poll waits for epoll instead of issuing a
    /// read that can only fail with EAGAIN: one system call less per message when messages
    /// trickle (request–reply), none when they stream (reads then fill the buffer).
    pub(crate) fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let room = buf.capacity() - buf.len();
        self.try_read_room(buf, room)
    }

    /// As [`Stream::try_read_buf`], into the unfilled part of `buf` (which may be
    /// uninitialised memory: nothing is zeroed first).
    pub(crate) fn try_read_into(&self, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
        let room = buf.remaining();
        self.try_read_room(buf, room)
    }

    /// One read into `buf`, which has `room` bytes free; a shorter read clears readiness.
    fn try_read_room<B: BufMut>(&self, buf: &mut B, room: usize) -> io::Result<usize> {
        let mut read = 0;
        let result = match self {
            Stream::Tcp(s) => s.try_io(Interest::READABLE, || {
                read = s.try_read_buf(buf)?;
                short_read_clears(read, room)
            }),
            Stream::Ipc(s) => s.try_io(Interest::READABLE, || {
                read = s.try_read_buf(buf)?;
                short_read_clears(read, room)
            }),
            #[cfg(test)]
            Stream::Mock(s) => s.try_read_buf(buf, room),
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && read > 0 => Ok(read),
            other => other,
        }
    }

    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write_vectored(bufs),
            Stream::Ipc(s) => s.try_write_vectored(bufs),
            #[cfg(test)]
            Stream::Mock(s) => s.try_write_vectored(bufs),
        }
    }

    /// The peer's IP address as ZAP and `Peer-Address` give it: dotted IPv4 or canonical
    /// IPv6, empty over IPC.
    pub(crate) fn peer_ip(&self) -> String {
        match self {
            Stream::Tcp(s) => s
                .peer_addr()
                .map_or_else(|_| String::new(), |a| a.ip().to_string()),
            Stream::Ipc(_) => String::new(),
            #[cfg(test)]
            Stream::Mock(_) => String::new(),
        }
    }

    /// The peer's `ip:port` for monitor events; `None` over IPC, where peers have no address.
    pub(crate) fn peer_address(&self) -> Option<String> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok().map(|a| a.to_string()),
            _ => None,
        }
    }

    /// The peer's address, for logs.
    pub(crate) fn peer_label(&self) -> String {
        match self {
            Stream::Tcp(s) => s
                .peer_addr()
                .map_or_else(|_| "tcp://?".to_owned(), |a| format!("tcp://{a}")),
            Stream::Ipc(_) => "ipc peer".to_owned(),
            #[cfg(test)]
            Stream::Mock(_) => "mock peer".to_owned(),
        }
    }
}

/// Inside `try_io`, reports a short (but successful) read as `WouldBlock`, which makes tokio
/// clear the readiness flag; the caller then takes the byte count it recorded.
fn short_read_clears(read: usize, room: usize) -> io::Result<usize> {
    if read > 0 && read < room {
        Err(io::ErrorKind::WouldBlock.into())
    } else {
        Ok(read)
    }
}

/// A bound, listening endpoint. Dropping it closes the listening socket at once.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    /// The path, if any, is unlinked when the listener is dropped, as libzmq does.
    Ipc(UnixListener, Option<IpcPath>),
}

/// The file an ipc listener created, identified by device and inode so that only that file
/// is ever unlinked: a newer socket bound to the same path after this one stopped owns a
/// different file, which must survive this listener's cleanup (libzmq #2764).
#[derive(Debug)]
pub(crate) struct IpcPath {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl IpcPath {
    fn of(path: &Path) -> io::Result<IpcPath> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(IpcPath {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Whether the path still names the file we created.
    fn is_ours(&self) -> bool {
        std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.dev() == self.dev && meta.ino() == self.ino)
    }
}

impl Listener {
    /// Accepts one connection, if one is waiting; configure it with [`Stream::configure`].
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Stream>> {
        match self {
            Listener::Tcp(l) => l.poll_accept(cx).map_ok(|(s, _)| Stream::Tcp(s)),
            Listener::Ipc(l, _) => l.poll_accept(cx).map_ok(|(s, _)| Stream::Ipc(s)),
        }
    }
}

impl Stream {
    /// Applies the socket options to an accepted stream.
    pub(crate) fn configure(&self, options: &SocketOptions) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => configure_tcp(s, options),
            Stream::Ipc(s) => configure_ipc(s, options),
            #[cfg(test)]
            Stream::Mock(_) => Ok(()),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Ipc(_, Some(path)) = self
            && path.is_ours()
        {
            let _ = std::fs::remove_file(&path.path);
        }
    }
}

/// Binds and listens; returns the listener and the endpoint actually bound (real port).
pub(crate) fn bind(endpoint: &Endpoint, options: &SocketOptions) -> Result<(Listener, Endpoint)> {
    match endpoint {
        Endpoint::Tcp { host, port } => {
            let addr = match host {
                Host::Ip(ip) => SocketAddr::new(*ip, *port),
                Host::Any if options.ipv6 => SocketAddr::from(([0u16; 8], *port)),
                Host::Any => SocketAddr::from(([0, 0, 0, 0], *port)),
                // A lookup that fails says why only in its text ("failed to lookup address
                // information"), so any failure is reported as the unresolvable endpoint.
                Host::Name(name) => (name.as_str(), *port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|addrs| usable(addrs, options.ipv6).next())
                    .ok_or_else(|| Error::Unresolvable(endpoint.to_string()))?,
            };
            let new_socket = |addr| {
                socket2::Socket::new(
                    socket2::Domain::for_address(addr),
                    socket2::Type::STREAM,
                    Some(socket2::Protocol::TCP),
                )
            };
            let (socket, addr) = match (host, new_socket(addr)) {
                // ZMQ_IPV6 on `*`: both families on one socket (IPV6_V6ONLY off); a host
                // without IPv6 gets IPv4 alone, as with libzmq.
                (Host::Any, Ok(socket)) if addr.is_ipv6() => {
                    socket.set_only_v6(false)?;
                    (socket, addr)
                }
                (Host::Any, Err(_)) if addr.is_ipv6() => {
                    let addr = SocketAddr::from(([0, 0, 0, 0], *port));
                    (new_socket(addr)?, addr)
                }
                (_, socket) => (socket?, addr),
            };
            socket.set_reuse_address(true)?;
            set_buffer_sizes(&SockRef::from(&socket), options)?;
            socket.bind(&addr.into())?;
            socket.listen(options.backlog.min(i32::MAX as u32) as i32)?;
            socket.set_nonblocking(true)?;
            let listener = TcpListener::from_std(socket.into())?;
            let bound = Endpoint::from_socket_addr(listener.local_addr()?);
            let bound = match (host, bound) {
                (Host::Any, Endpoint::Tcp { port, .. }) => Endpoint::Tcp {
                    host: Host::Any,
                    port,
                },
                (_, bound) => bound,
            };
            Ok((Listener::Tcp(listener), bound))
        }
        Endpoint::Ipc(path) => {
            // libzmq replaces a stale socket file left by a process that died.
            if std::fs::symlink_metadata(path).is_ok() {
                std::fs::remove_file(path)?;
            }
            let listener = UnixListener::bind(path)?;
            let owned = IpcPath::of(path)?;
            Ok((Listener::Ipc(listener, Some(owned)), endpoint.clone()))
        }
        Endpoint::IpcAbstract(name) => {
            let addr = abstract_addr(name)?;
            let std_listener = std::os::unix::net::UnixListener::bind_addr(&addr)?;
            std_listener.set_nonblocking(true)?;
            Ok((
                Listener::Ipc(UnixListener::from_std(std_listener)?, None),
                endpoint.clone(),
            ))
        } // The engine links inproc endpoints itself (engine/inproc.rs): no kernel socket.
        Endpoint::Inproc(_) => Err(not_a_kernel_socket(endpoint)),
    }
}

/// The error for an inproc endpoint given to the kernel-socket functions here.
fn not_a_kernel_socket(endpoint: &Endpoint) -> Error {
    Error::UnsupportedTransport {
        transport: endpoint.transport().to_owned(),
        endpoint: endpoint.to_string(),
    }
}

/// The resolved addresses a socket may use: IPv4 only unless `ipv6` is on (ZMQ_IPV6), as
/// libzmq resolves names.
fn usable(addrs: impl Iterator<Item = SocketAddr>, ipv6: bool) -> impl Iterator<Item = SocketAddr> {
    addrs.filter(move |addr| ipv6 || addr.is_ipv4())
}

/// Connects once (no retry; the connector task retries).
pub(crate) async fn connect(endpoint: &Endpoint, options: &SocketOptions) -> Result<Stream> {
    match endpoint {
        Endpoint::Tcp { host, port } => {
            let addrs: Vec<SocketAddr> = match host {
                Host::Ip(ip) => vec![SocketAddr::new(*ip, *port)],
                Host::Name(name) => usable(
                    tokio::net::lookup_host((name.as_str(), *port))
                        .await
                        .map_err(|_| Error::Unresolvable(endpoint.to_string()))?,
                    options.ipv6,
                )
                .collect(),
                Host::Any => {
                    return Err(Error::InvalidEndpoint {
                        endpoint: endpoint.to_string(),
                        reason: "cannot connect to the wildcard host '*'",
                    });
                }
            };
            let mut last_error = None;
            for addr in addrs {
                match connect_tcp(addr, options).await {
                    Ok(stream) => return Ok(Stream::Tcp(stream)),
                    Err(e) => last_error = Some(e),
                }
            }
            Err(last_error.map_or_else(|| Error::Unresolvable(endpoint.to_string()), Error::Io))
        }
        Endpoint::Ipc(path) => {
            let stream = UnixStream::connect(path).await?;
            configure_ipc(&stream, options)?;
            Ok(Stream::Ipc(stream))
        }
        Endpoint::IpcAbstract(name) => {
            let addr = abstract_addr(name)?;
            // Connecting a Unix socket completes or fails at once; no need for a reactor.
            let std_stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
            std_stream.set_nonblocking(true)?;
            let stream = UnixStream::from_std(std_stream)?;
            configure_ipc(&stream, options)?;
            Ok(Stream::Ipc(stream))
        }
        Endpoint::Inproc(_) => Err(not_a_kernel_socket(endpoint)),
    }
}

async fn connect_tcp(addr: SocketAddr, options: &SocketOptions) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    set_buffer_sizes(&SockRef::from(&socket), options)?;
    let stream = match options.connect_timeout.filter(|t| !t.is_zero()) {
        // Dropping the connect future closes the half-open socket.
        Some(limit) => tokio::time::timeout(limit, socket.connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect_timeout passed"))??,
        None => socket.connect(addr).await?,
    };
    configure_tcp(&stream, options)?;
    Ok(stream)
}

fn set_buffer_sizes(socket: &SockRef<'_>, options: &SocketOptions) -> io::Result<()> {
    if let Some(size) = options.sndbuf {
        socket.set_send_buffer_size(size)?;
    }
    if let Some(size) = options.rcvbuf {
        socket.set_recv_buffer_size(size)?;
    }
    Ok(())
}

/// TCP_NODELAY always (ZMTP batches itself; Nagle only adds latency), keepalive as configured.
fn configure_tcp(stream: &TcpStream, options: &SocketOptions) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let socket = SockRef::from(stream);
    set_buffer_sizes(&socket, options)?;
    match options.tcp_keepalive {
        None => {}
        Some(false) => socket.set_keepalive(false)?,
        Some(true) => {
            let mut keepalive = TcpKeepalive::new();
            if let Some(idle) = options.tcp_keepalive_idle {
                keepalive = keepalive.with_time(idle);
            }
            if let Some(interval) = options.tcp_keepalive_intvl {
                keepalive = keepalive.with_interval(interval);
            }
            if let Some(count) = options.tcp_keepalive_cnt {
                keepalive = keepalive.with_retries(count);
            }
            socket.set_tcp_keepalive(&keepalive)?;
        }
    }
    Ok(())
}

/// Kernel buffer size for IPC connections when `sndbuf`/`rcvbuf` are not set. Unix stream
/// sockets start at the OS default (208 KiB here) and never grow, while loopback TCP
/// autotunes up to `tcp_wmem`'s maximum (4 MiB); with the small buffer a streaming writer
/// stalls on every few hundred KiB and IPC ran at half TCP's speed for 1 KiB to 64 KiB
/// messages. The kernel caps the request at `net.core.wmem_max`/`rmem_max`, and the size is a
/// limit, not an allocation: idle connections hold nothing. libzmq leaves IPC buffers at the
/// OS default (spec/sockets.md lists this departure).
const IPC_DEFAULT_BUFFER_BYTES: usize = 4 * 1024 * 1024;

fn configure_ipc(stream: &UnixStream, options: &SocketOptions) -> io::Result<()> {
    let socket = SockRef::from(stream);
    socket.set_send_buffer_size(options.sndbuf.unwrap_or(IPC_DEFAULT_BUFFER_BYTES))?;
    socket.set_recv_buffer_size(options.rcvbuf.unwrap_or(IPC_DEFAULT_BUFFER_BYTES))?;
    Ok(())
}

fn abstract_addr(name: &str) -> io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
}
