//! [`Endpoint`]: where a socket binds or connects, parsed from libzmq's address syntax.

use crate::error::{Error, Result};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A transport address in libzmq's syntax.
///
/// | form | meaning |
/// |---|---|
/// | `tcp://127.0.0.1:5555`, `tcp://[::1]:5555` | an IP address and port |
/// | `tcp://localhost:5555` | a host name, resolved when binding or connecting |
/// | `tcp://*:5555` | every IPv4 interface (bind only) |
/// | `tcp://127.0.0.1:0`, `tcp://*:*` | an ephemeral port chosen by the OS (bind only) |
/// | `ipc:///tmp/feed.sock` | a Unix domain socket at that path |
/// | `ipc://@feed` | a Linux abstract-namespace Unix socket |
/// | `inproc://feed` | sockets of this process, without the kernel (any runtime or thread) |
///
/// ```
/// use ferromq::Endpoint;
///
/// let ep: Endpoint = "tcp://127.0.0.1:5555".parse()?;
/// assert_eq!(ep.to_string(), "tcp://127.0.0.1:5555");
/// assert!("udp://x:1".parse::<Endpoint>().is_err());
/// # Ok::<(), ferromq::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// TCP to or on a host and port.
    Tcp {
        /// An IP literal, a host name, or `*` for every interface.
        host: Host,
        /// The port (0: ephemeral).
        port: u16,
    },
    /// A Unix domain socket at a filesystem path.
    Ipc(PathBuf),
    /// A Linux abstract-namespace Unix socket (`ipc://@name`).
    IpcAbstract(String),
    /// Sockets of this process (`inproc://name`): messages pass as [`bytes::Bytes`] from
    /// socket to socket, with no kernel, no copy and no encoding.
    Inproc(String),
}

/// The host part of a TCP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP literal.
    Ip(std::net::IpAddr),
    /// A name to resolve.
    Name(String),
    /// `*`: every IPv4 interface (every interface, dual-stack, with the `ipv6` option).
    Any,
}

impl Endpoint {
    /// A TCP endpoint for an already-known address.
    pub fn from_socket_addr(addr: SocketAddr) -> Self {
        Endpoint::Tcp {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        }
    }

    /// The endpoint's transport name (`"tcp"`, `"ipc"` or `"inproc"`).
    pub fn transport(&self) -> &'static str {
        match self {
            Endpoint::Tcp { .. } => "tcp",
            Endpoint::Ipc(_) | Endpoint::IpcAbstract(_) => "ipc",
            Endpoint::Inproc(_) => "inproc",
        }
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Endpoint> {
        let invalid = |reason| Error::InvalidEndpoint {
            endpoint: s.to_owned(),
            reason,
        };
        let Some((transport, rest)) = s.split_once("://") else {
            return Err(invalid("expected TRANSPORT://ADDRESS"));
        };
        match transport {
            "tcp" => parse_tcp(rest).map_err(invalid),
            "ipc" => {
                if let Some(name) = rest.strip_prefix('@') {
                    if name.is_empty() {
                        return Err(invalid("abstract socket name is empty"));
                    }
                    if name.len() > 106 {
                        return Err(invalid("abstract socket name longer than 106 bytes"));
                    }
                    Ok(Endpoint::IpcAbstract(name.to_owned()))
                } else if rest.is_empty() {
                    Err(invalid("ipc path is empty"))
                } else if rest.len() > 107 {
                    Err(invalid("ipc path longer than 107 bytes (sun_path limit)"))
                } else {
                    Ok(Endpoint::Ipc(PathBuf::from(rest)))
                }
            }
            "inproc" if rest.is_empty() => Err(invalid("inproc name is empty")),
            "inproc" => Ok(Endpoint::Inproc(rest.to_owned())),
            _ => Err(Error::UnsupportedTransport {
                transport: transport.to_owned(),
                endpoint: s.to_owned(),
            }),
        }
    }
}

fn parse_tcp(rest: &str) -> std::result::Result<Endpoint, &'static str> {
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let (ip, tail) = after
            .split_once(']')
            .ok_or("unclosed '[' in IPv6 address")?;
        let port = tail.strip_prefix(':').ok_or("missing ':PORT'")?;
        let ip = ip.parse().map_err(|_| "invalid IPv6 address")?;
        (Host::Ip(ip), port)
    } else {
        let (host, port) = rest.rsplit_once(':').ok_or("missing ':PORT'")?;
        let host = match host {
            "" => return Err("missing host"),
            "*" => Host::Any,
            h => match h.parse() {
                Ok(ip) => Host::Ip(ip),
                Err(_) if h.contains(':') => return Err("IPv6 addresses must be in [brackets]"),
                Err(_) if valid_host_name(h) => Host::Name(h.to_owned()),
                Err(_) => return Err("invalid host name"),
            },
        };
        (host, port)
    };
    let port = match port {
        "*" => 0,
        p => p.parse::<u16>().map_err(|_| "port must be 0-65535 or *")?,
    };
    Ok(Endpoint::Tcp { host, port })
}

fn valid_host_name(h: &str) -> bool {
    h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => match host {
                Host::Ip(std::net::IpAddr::V6(ip)) => write!(f, "tcp://[{ip}]:{port}"),
                Host::Ip(ip) => write!(f, "tcp://{ip}:{port}"),
                Host::Name(name) => write!(f, "tcp://{name}:{port}"),
                Host::Any => write!(f, "tcp://*:{port}"),
            },
            Endpoint::Ipc(path) => write!(f, "ipc://{}", path.display()),
            Endpoint::IpcAbstract(name) => write!(f, "ipc://@{name}"),
            Endpoint::Inproc(name) => write!(f, "inproc://{name}"),
        }
    }
}

/// Anything that names an endpoint: a string in libzmq syntax or a parsed [`Endpoint`].
pub trait ToEndpoint {
    /// Parses or clones into an [`Endpoint`].
    fn to_endpoint(&self) -> Result<Endpoint>;
}

impl ToEndpoint for Endpoint {
    fn to_endpoint(&self) -> Result<Endpoint> {
        Ok(self.clone())
    }
}

impl ToEndpoint for str {
    fn to_endpoint(&self) -> Result<Endpoint> {
        self.parse()
    }
}

impl ToEndpoint for String {
    fn to_endpoint(&self) -> Result<Endpoint> {
        self.parse()
    }
}

impl<T: ToEndpoint + ?Sized> ToEndpoint for &T {
    fn to_endpoint(&self) -> Result<Endpoint> {
        (**self).to_endpoint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(s: &str) {
        let ep: Endpoint = s.parse().unwrap();
        assert_eq!(ep.to_string(), s);
    }

    #[test]
    fn parses_every_form() {
        roundtrip("tcp://127.0.0.1:5555");
        roundtrip("tcp://[::1]:5555");
        roundtrip("tcp://localhost:80");
        roundtrip("tcp://*:0");
        roundtrip("ipc:///tmp/x.sock");
        roundtrip("ipc://@name");
        roundtrip("inproc://feed");
        // Like libzmq, an unbracketed IPv6 literal is accepted: the port follows the last ':'.
        assert_eq!(
            "tcp://::1:5".parse::<Endpoint>().unwrap().to_string(),
            "tcp://[::1]:5"
        );
        assert_eq!(
            "tcp://*:*".parse::<Endpoint>().unwrap(),
            Endpoint::Tcp {
                host: Host::Any,
                port: 0
            }
        );
    }

    #[test]
    fn rejects_malformed_endpoints_naming_the_input() {
        for bad in [
            "tcp://127.0.0.1",
            "tcp://:5",
            "tcp://1.2.3.4:99999",
            "tcp://::1::5",
            "tcp://[::1:5",
            "tcp://bad_host!:5",
            "ipc://",
            "ipc://@",
            "inproc://",
            "nothing",
        ] {
            let err = bad.parse::<Endpoint>().unwrap_err();
            assert!(matches!(err, Error::InvalidEndpoint { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert!(matches!(
            "udp://1.2.3.4:5".parse::<Endpoint>(),
            Err(Error::UnsupportedTransport { .. })
        ));
    }
}
