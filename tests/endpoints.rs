//! Endpoints: every address form binds and connects, errors name the bad input, and
//! bind/connect/unbind/disconnect behave as in libzmq.

use ferromq::endpoint::Host;
use ferromq::{Endpoint, Error, Pull, Push, SocketOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for a condition the engine reaches in the background (a connection closing).
const CONDITION_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh ipc path under /tmp, unique per process and call.
fn ipc_path(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "/tmp/ferromq-endpoints-{tag}-{}-{n}.sock",
        std::process::id()
    )
}

/// Polls `condition` every few milliseconds until it holds; panics after `CONDITION_TIMEOUT`.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + CONDITION_TIMEOUT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends one message from `push` and checks `pull` gets it.
async fn assert_flows(push: &Push, pull: &Pull, text: &str) {
    push.send(text).await.unwrap();
    assert_eq!(pull.recv().await.unwrap().frames()[0], text);
}

/// Binds a PULL at `bind`, connects a PUSH to the endpoint it reports, and sends one message.
async fn roundtrip_via(bind: &str) -> Endpoint {
    let pull = Pull::new();
    let bound = pull.bind(bind).unwrap();
    let push = Push::new();
    push.connect(&bound).unwrap();
    assert_flows(&push, &pull, bind).await;
    bound
}

#[tokio::test]
async fn tcp_ipv4_loopback_roundtrip() {
    timeout(TEST_TIMEOUT, async {
        let bound = roundtrip_via("tcp://127.0.0.1:0").await;
        let Endpoint::Tcp { host, port } = bound else {
            panic!("not tcp: {bound}")
        };
        assert_eq!(host, Host::Ip([127, 0, 0, 1].into()));
        assert_ne!(port, 0, "bind reports the real port");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tcp_ipv6_loopback_roundtrip() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    timeout(TEST_TIMEOUT, async {
        let bound = roundtrip_via("tcp://[::1]:0").await;
        assert!(bound.to_string().starts_with("tcp://[::1]:"), "{bound}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tcp_host_name_resolves_for_bind_and_connect() {
    timeout(TEST_TIMEOUT, async {
        // Binding a name binds its first address; the reported endpoint is that address.
        let bound = roundtrip_via("tcp://localhost:0").await;
        assert!(
            matches!(bound, Endpoint::Tcp { host: Host::Ip(ip), .. } if ip.is_loopback()),
            "{bound}"
        );

        // Connecting a name tries each of its addresses until one answers.
        let pull = Pull::new();
        let Endpoint::Tcp { port, .. } = pull.bind("tcp://127.0.0.1:0").unwrap() else {
            unreachable!()
        };
        let push = Push::new();
        push.connect(format!("tcp://localhost:{port}")).unwrap();
        assert_flows(&push, &pull, "by name").await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tcp_wildcard_bind_reports_the_real_port() {
    timeout(TEST_TIMEOUT, async {
        let pull = Pull::new();
        let bound = pull.bind("tcp://*:0").unwrap();
        assert_eq!(pull.last_endpoint().as_ref(), Some(&bound));
        let Endpoint::Tcp {
            host: Host::Any,
            port,
        } = bound
        else {
            panic!("wildcard bind reported {bound}")
        };
        assert_ne!(port, 0);
        let push = Push::new();
        push.connect(format!("tcp://127.0.0.1:{port}")).unwrap();
        assert_flows(&push, &pull, "wildcard").await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn ipc_bind_replaces_a_stale_socket_file() {
    timeout(TEST_TIMEOUT, async {
        let path = ipc_path("stale");
        // A listener that goes away without unlinking leaves its socket file behind, as a
        // crashed process would.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(std::path::Path::new(&path).exists());

        let endpoint = format!("ipc://{path}");
        let pull = Pull::new();
        let bound = pull.bind(endpoint.as_str()).unwrap();
        assert_eq!(bound.to_string(), endpoint);
        let push = Push::new();
        push.connect(endpoint.as_str()).unwrap();
        assert_flows(&push, &pull, "ipc").await;

        // Closing the bound socket unlinks the path again, as libzmq does.
        drop(push);
        pull.close().await;
        assert!(!std::path::Path::new(&path).exists());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn ipc_abstract_namespace_roundtrip() {
    timeout(TEST_TIMEOUT, async {
        let name = format!("ferromq-endpoints-abstract-{}", std::process::id());
        let bound = roundtrip_via(&format!("ipc://@{name}")).await;
        assert_eq!(bound, Endpoint::IpcAbstract(name));
    })
    .await
    .unwrap();
}

/// A host name that does not resolve (`.invalid` never does, RFC 2606) is
/// `Error::Unresolvable` naming the endpoint, not an I/O error of the resolver's.
#[tokio::test]
async fn a_host_that_does_not_resolve_is_unresolvable_naming_the_endpoint() {
    timeout(TEST_TIMEOUT, async {
        let endpoint = "tcp://no-such-host.invalid:5555";
        match Pull::new().bind(endpoint) {
            Err(Error::Unresolvable(named)) => assert_eq!(named, endpoint),
            other => panic!("expected Unresolvable, got {other:?}"),
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn malformed_endpoints_fail_with_a_typed_error_naming_the_input() {
    timeout(TEST_TIMEOUT, async {
        let socket = Pull::new();
        for bad in [
            "tcp://127.0.0.1",
            "tcp://127.0.0.1:70000",
            "tcp://no_such host:1",
            "ipc://",
            "127.0.0.1:5555",
        ] {
            for result in [socket.bind(bad).map(drop), socket.connect(bad)] {
                match result {
                    Err(Error::InvalidEndpoint { endpoint, .. }) => assert_eq!(endpoint, bad),
                    other => panic!("{bad}: expected InvalidEndpoint, got {other:?}"),
                }
            }
        }
        for (bad, transport) in [
            ("udp://127.0.0.1:5", "udp"),
            ("pgm://eth0;239.1.1.1:5", "pgm"),
        ] {
            for result in [socket.bind(bad).map(drop), socket.connect(bad)] {
                match result {
                    Err(Error::UnsupportedTransport {
                        transport: t,
                        endpoint,
                    }) => {
                        assert_eq!((t.as_str(), endpoint.as_str()), (transport, bad));
                    }
                    other => panic!("{bad}: expected UnsupportedTransport, got {other:?}"),
                }
            }
        }
        // Connecting needs a concrete address; the error says which endpoint was refused.
        for bad in ["tcp://*:5555", "tcp://127.0.0.1:0"] {
            match socket.connect(bad) {
                Err(e @ Error::InvalidEndpoint { .. }) => {
                    assert!(e.to_string().contains(bad), "{e}")
                }
                other => panic!("{bad}: expected InvalidEndpoint, got {other:?}"),
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn one_socket_binds_and_connects_several_endpoints() {
    timeout(TEST_TIMEOUT, async {
        let pull = Pull::new();
        let tcp = pull.bind("tcp://127.0.0.1:0").unwrap();
        let ipc = pull.bind(format!("ipc://{}", ipc_path("multi"))).unwrap();
        // The same PULL also connects out to a PUSH that binds.
        let bound_push = Push::new();
        pull.connect(bound_push.bind("tcp://127.0.0.1:0").unwrap())
            .unwrap();

        let tcp_push = Push::new();
        tcp_push.connect(&tcp).unwrap();
        let ipc_push = Push::new();
        ipc_push.connect(&ipc).unwrap();
        tcp_push.send("tcp").await.unwrap();
        ipc_push.send("ipc").await.unwrap();
        bound_push.send("connected").await.unwrap();

        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(pull.recv().await.unwrap().frames()[0].clone());
        }
        got.sort();
        assert_eq!(got, ["connected", "ipc", "tcp"]);
        assert_eq!(pull.peer_count(), 3);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn connect_before_the_peer_binds_works() {
    timeout(TEST_TIMEOUT, async {
        // ipc: the path does not exist yet.
        let path = format!("ipc://{}", ipc_path("early"));
        let push = Push::new();
        push.connect(path.as_str()).unwrap();
        // tcp: a port that was free a moment ago (nothing listens on it now).
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let tcp = format!("tcp://127.0.0.1:{port}");
        push.connect(tcp.as_str()).unwrap();

        // The connector keeps retrying in the background until the peers appear.
        let ipc_pull = Pull::new();
        ipc_pull.bind(path.as_str()).unwrap();
        let tcp_pull = Pull::new();
        tcp_pull.bind(tcp.as_str()).unwrap();
        wait_until("both late binders to connect", || push.peer_count() == 2).await;
        // Round-robin over two peers: one message each.
        push.send("a").await.unwrap();
        push.send("b").await.unwrap();
        ipc_pull.recv().await.unwrap();
        tcp_pull.recv().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn unbind_closes_the_endpoint_and_its_connections() {
    timeout(TEST_TIMEOUT, async {
        let pull = Pull::new();
        let bound = pull.bind("tcp://127.0.0.1:0").unwrap();
        let push = Push::new();
        push.connect(&bound).unwrap();
        assert_flows(&push, &pull, "before unbind").await;

        pull.unbind(&bound).unwrap();
        wait_until("the accepted connection to close", || {
            pull.peer_count() == 0 && push.peer_count() == 0
        })
        .await;
        // The port is free again: another socket can bind it, and the PUSH reconnects there.
        let other = Pull::new();
        other.bind(&bound).unwrap();
        assert_flows(&push, &other, "after rebind").await;

        assert!(matches!(
            pull.unbind(&bound),
            Err(Error::EndpointNotFound(e)) if e == bound.to_string()
        ));
        assert!(matches!(
            pull.unbind("tcp://127.0.0.1:1"),
            Err(Error::EndpointNotFound(e)) if e == "tcp://127.0.0.1:1"
        ));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn disconnect_closes_the_connection_and_stops_reconnecting() {
    timeout(TEST_TIMEOUT, async {
        let pull = Pull::new();
        let bound = pull.bind("tcp://127.0.0.1:0").unwrap();
        let reconnect_ivl = Duration::from_millis(10);
        let mut options = SocketOptions::default();
        options.reconnect_ivl = Some(reconnect_ivl);
        let push = Push::with_options(options).unwrap();
        push.connect(&bound).unwrap();
        assert_flows(&push, &pull, "before disconnect").await;

        push.disconnect(&bound).unwrap();
        wait_until("the connection to close", || {
            pull.peer_count() == 0 && push.peer_count() == 0
        })
        .await;
        // Unlike a lost connection, a disconnected endpoint is not retried: many reconnect
        // intervals later the peer still sees nobody.
        tokio::time::sleep(reconnect_ivl * 20).await;
        assert_eq!(pull.peer_count(), 0);
        let send = push.try_send("nowhere").unwrap_err();
        assert!(matches!(send.error, Error::WouldBlock));

        assert!(matches!(
            push.disconnect(&bound),
            Err(Error::EndpointNotFound(_))
        ));
        // A bound endpoint is not a connected one.
        assert!(matches!(
            pull.disconnect(&bound),
            Err(Error::EndpointNotFound(_))
        ));
    })
    .await
    .unwrap();
}

#[test]
fn bind_and_connect_outside_a_runtime_fail_with_no_runtime() {
    let pull = Pull::new();
    assert!(matches!(
        pull.bind("tcp://127.0.0.1:0"),
        Err(Error::NoRuntime)
    ));
    assert!(matches!(
        pull.connect("tcp://127.0.0.1:5555"),
        Err(Error::NoRuntime)
    ));
    // A bad endpoint is still reported as such, runtime or not.
    assert!(matches!(
        pull.bind("tcp://nowhere"),
        Err(Error::InvalidEndpoint { .. })
    ));
}
