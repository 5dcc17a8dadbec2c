//! `ferromq proxy`: libzmq's `zmq_proxy` between a frontend and a backend socket given on the
//! command line (CZMQ's `TYPE@ENDPOINT` binds, `TYPE>ENDPOINT` connects), with an optional
//! capture socket and an optional control socket (`zmq_proxy_steerable`'s commands).

use crate::observe::Observed;
use crate::{Failure, SocketKind};
use ferromq::proxy::{RecvSocket, SendSocket};
use ferromq::{
    Dealer, Endpoint, Pair, Pub, Pull, Push, Rep, Req, Router, Socket, SocketOptions, Sub, XPub,
    XSub,
};
use std::time::Duration;

/// One socket of the proxy, as given: `TYPE@ENDPOINT` (bind) or `TYPE>ENDPOINT` (connect).
#[derive(Debug, Clone)]
pub struct Attach {
    pub kind: SocketKind,
    pub bind: bool,
    pub endpoint: Endpoint,
}

impl Attach {
    /// Parses `TYPE@ENDPOINT` or `TYPE>ENDPOINT`: the first `@` or `>` separates them (socket
    /// type names have neither, endpoints may: `ipc://@name`).
    pub fn parse(text: &str) -> Result<Attach, String> {
        let at = text.find(['@', '>']).ok_or_else(|| {
            format!("{text:?}: expected TYPE@ENDPOINT (bind) or TYPE>ENDPOINT (connect)")
        })?;
        let (kind, rest) = text.split_at(at);
        let kind = <SocketKind as clap::ValueEnum>::from_str(kind, true)
            .ok()
            .filter(|k| !matches!(k, SocketKind::Keygen | SocketKind::Proxy))
            .ok_or_else(|| format!("{text:?}: {kind:?} is not a socket type"))?;
        let endpoint = rest[1..]
            .parse::<Endpoint>()
            .map_err(|e| format!("{text:?}: {e}"))?;
        Ok(Attach {
            kind,
            bind: rest.starts_with('@'),
            endpoint,
        })
    }
}

/// The sockets and settings of one proxy run.
#[derive(Debug)]
pub struct ProxyConfig {
    pub frontend: Attach,
    pub backend: Attach,
    pub capture: Option<Attach>,
    pub control: Option<Attach>,
}

impl ProxyConfig {
    /// Checks that each socket can play its role: the frontend and the control socket must
    /// receive, the backend and the capture socket must send.
    pub fn check(&self) -> Result<(), String> {
        use SocketKind::*;
        let receives = |kind| !matches!(kind, Push | Pub);
        let sends = |kind| !matches!(kind, Pull | Sub);
        let role = |flag: &str, attach: Option<&Attach>, ok: bool, needs: &str| match attach {
            Some(a) if !ok => Err(format!("{flag}: a {} socket cannot {needs}", name(a.kind))),
            _ => Ok(()),
        };
        let front = Some(&self.frontend);
        role("--frontend", front, receives(self.frontend.kind), "receive")?;
        let back = Some(&self.backend);
        role("--backend", back, sends(self.backend.kind), "send")?;
        let capture = self.capture.as_ref();
        role(
            "--capture",
            capture,
            capture.is_none_or(|a| sends(a.kind)),
            "send",
        )?;
        let control = self.control.as_ref();
        role(
            "--control",
            control,
            control.is_none_or(|a| receives(a.kind)),
            "receive",
        )
    }
}

/// The type's name as typed on the command line.
fn name(kind: SocketKind) -> String {
    clap::ValueEnum::to_possible_value(&kind).map_or_else(String::new, |v| v.get_name().to_owned())
}

/// A socket of any type, watched as `--events` and `--stats` ask.
macro_rules! any_socket {
    ($($kind:ident: $ty:ty),* $(,)?) => {
        enum AnySocket {
            $($kind(Observed<$ty>),)*
        }

        impl AnySocket {
            /// Opens a socket of `attach`'s type, starts watching it, and binds or connects.
            fn open(
                attach: &Attach,
                options: &SocketOptions,
                events: bool,
                stats: Option<Duration>,
                label: &'static str,
            ) -> Result<AnySocket, Failure> {
                let failed = |e: ferromq::Error| Failure::Runtime(format!("{label}: {e}"));
                let socket = match attach.kind {
                    $(SocketKind::$kind => {
                        let socket = <$ty>::with_options(options.clone()).map_err(failed)?;
                        AnySocket::$kind(Observed::new(socket, events, stats, Some(label)))
                    })*
                    SocketKind::Keygen | SocketKind::Proxy => {
                        unreachable!("Attach::parse takes socket types only")
                    }
                };
                match &socket {
                    $(AnySocket::$kind(s) => attach_to(&**s, attach).map_err(failed)?,)*
                }
                Ok(socket)
            }

            async fn finish(self, close: bool) {
                match self {
                    $(AnySocket::$kind(s) => s.finish(close).await,)*
                }
            }
        }
    };
}

any_socket!(
    Push: Push,
    Pull: Pull,
    Pub: Pub,
    Sub: Sub,
    Xpub: XPub,
    Xsub: XSub,
    Req: Req,
    Rep: Rep,
    Dealer: Dealer,
    Router: Router,
    Pair: Pair,
);

impl AnySocket {
    /// The socket as a proxy source; `None` for the types that cannot receive.
    fn as_recv(&self) -> Option<&dyn RecvSocket> {
        Some(match self {
            AnySocket::Push(_) | AnySocket::Pub(_) => return None,
            AnySocket::Pull(s) => &**s,
            AnySocket::Sub(s) => &**s,
            AnySocket::Xpub(s) => &**s,
            AnySocket::Xsub(s) => &**s,
            AnySocket::Req(s) => &**s,
            AnySocket::Rep(s) => &**s,
            AnySocket::Dealer(s) => &**s,
            AnySocket::Router(s) => &**s,
            AnySocket::Pair(s) => &**s,
        })
    }

    /// The socket as a proxy destination; `None` for the types that cannot send.
    fn as_send(&self) -> Option<&dyn SendSocket> {
        Some(match self {
            AnySocket::Pull(_) | AnySocket::Sub(_) => return None,
            AnySocket::Push(s) => &**s,
            AnySocket::Pub(s) => &**s,
            AnySocket::Xpub(s) => &**s,
            AnySocket::Xsub(s) => &**s,
            AnySocket::Req(s) => &**s,
            AnySocket::Rep(s) => &**s,
            AnySocket::Dealer(s) => &**s,
            AnySocket::Router(s) => &**s,
            AnySocket::Pair(s) => &**s,
        })
    }
}

fn attach_to(socket: &impl Socket, attach: &Attach) -> ferromq::Result<()> {
    if attach.bind {
        let bound = socket.bind(&attach.endpoint)?;
        tracing::info!("bound {bound}");
    } else {
        socket.connect(&attach.endpoint)?;
        tracing::info!("connecting to {}", attach.endpoint);
    }
    Ok(())
}

/// Runs the proxy until a socket fails, or until TERMINATE arrives on the control socket
/// (then exit 0).
pub async fn run(
    proxy: &ProxyConfig,
    options: &SocketOptions,
    events: bool,
    stats: Option<Duration>,
) -> Result<(), Failure> {
    let open = |attach: &Attach, label| AnySocket::open(attach, options, events, stats, label);
    let frontend = open(&proxy.frontend, "frontend")?;
    if let AnySocket::Sub(sub) = &frontend {
        // A SUB frontend forwards everything; an XSUB frontend forwards what the backend's
        // subscribers ask for.
        sub.subscribe(b"");
    }
    let backend = open(&proxy.backend, "backend")?;
    let capture = proxy
        .capture
        .as_ref()
        .map(|a| open(a, "capture"))
        .transpose()?;
    let control = proxy
        .control
        .as_ref()
        .map(|a| open(a, "control"))
        .transpose()?;
    // `check` made sure every role's socket can play it.
    let role = "checked by ProxyConfig::check";
    let from = frontend.as_recv().expect(role);
    let to = backend.as_send().expect(role);
    let copy = capture.as_ref().map(|c| c.as_send().expect(role));
    let result = match &control {
        None => ferromq::proxy(&from, &to, copy)
            .await
            .map(|never| match never {}),
        Some(control) => {
            let control = control.as_recv().expect(role);
            ferromq::proxy::proxy_steerable(&from, &to, copy, &control).await
        }
    };
    let result = result.map_err(|e| Failure::Runtime(format!("proxy stopped: {e}")));
    let close = result.is_ok();
    for socket in [Some(frontend), Some(backend), capture, control]
        .into_iter()
        .flatten()
    {
        socket.finish(close).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_binds_and_angle_connects_and_an_abstract_ipc_name_keeps_its_at() {
        let front = Attach::parse("xsub@tcp://*:5555").unwrap();
        assert_eq!((front.kind, front.bind), (SocketKind::Xsub, true));
        let back = Attach::parse("XPUB>ipc://@feed").unwrap();
        assert_eq!((back.kind, back.bind), (SocketKind::Xpub, false));
        assert_eq!(back.endpoint.to_string(), "ipc://@feed");
        assert!(Attach::parse("tcp://*:5555").is_err());
        assert!(Attach::parse("keygen@tcp://*:5555").is_err());
        assert!(Attach::parse("pull@nowhere").is_err());
    }

    #[test]
    fn each_role_needs_a_socket_that_can_play_it() {
        let attach = |text| Attach::parse(text).unwrap();
        let config = |front, back| ProxyConfig {
            frontend: attach(front),
            backend: attach(back),
            capture: None,
            control: None,
        };
        assert!(config("pull@tcp://*:1", "push@tcp://*:2").check().is_ok());
        let err = config("push@tcp://*:1", "push@tcp://*:2")
            .check()
            .unwrap_err();
        assert!(err.contains("--frontend"), "{err}");
        let err = config("pull@tcp://*:1", "sub@tcp://*:2")
            .check()
            .unwrap_err();
        assert!(err.contains("--backend"), "{err}");
    }
}
