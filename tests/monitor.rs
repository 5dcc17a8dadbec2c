//! Socket monitors: every libzmq event, with its endpoint and peer address, produced by a real
//! bind, connect, handshake, fault or close.

mod common;

use common::{next_event, until_event};
use ferromq::monitor::MonitorEventKind;
use ferromq::security::{AuthPolicy, Zap};
use ferromq::{Endpoint, ProtocolError, Pull, Push, SocketOptions};
use futures::StreamExt;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(20);
const RECONNECT_IVL: Duration = Duration::from_millis(50);

fn tcp_addr(endpoint: &Endpoint) -> String {
    endpoint.to_string()["tcp://".len()..].to_owned()
}

#[tokio::test]
async fn bind_reports_listening_unbind_and_close_report_closed_then_monitor_stopped() {
    let pull = Pull::new();
    let mut monitor = pull.monitor();
    let first = pull.bind("tcp://127.0.0.1:0").unwrap();
    let second = pull.bind("tcp://127.0.0.1:0").unwrap();
    for endpoint in [&first, &second] {
        let event = next_event(&mut monitor).await;
        assert_eq!(event.kind, MonitorEventKind::Listening);
        assert_eq!(event.endpoint.as_ref(), Some(endpoint));
        assert_eq!(event.peer, None);
    }
    pull.unbind(&first).unwrap();
    let event = next_event(&mut monitor).await;
    assert_eq!(event.kind, MonitorEventKind::Closed);
    assert_eq!(event.endpoint, Some(first));

    timeout(TEST_TIMEOUT, pull.close()).await.unwrap();
    let event = next_event(&mut monitor).await;
    assert_eq!(event.kind, MonitorEventKind::Closed);
    assert_eq!(event.endpoint, Some(second));
    assert_eq!(
        next_event(&mut monitor).await.kind,
        MonitorEventKind::MonitorStopped
    );
    assert_eq!(
        monitor.next().await,
        None,
        "the stream ends after monitor_stopped"
    );
    let mut late = pull.monitor();
    assert_eq!(
        next_event(&mut late).await.kind,
        MonitorEventKind::MonitorStopped
    );
}

#[tokio::test]
async fn a_bind_to_a_taken_port_reports_bind_failed_with_the_reason() {
    let holder = Pull::new();
    let endpoint = holder.bind("tcp://127.0.0.1:0").unwrap();
    let pull = Pull::new();
    let mut monitor = pull.monitor();
    assert!(pull.bind(&endpoint).is_err());
    let event = next_event(&mut monitor).await;
    let MonitorEventKind::BindFailed { error } = &event.kind else {
        panic!("expected bind_failed, got {event}");
    };
    assert!(error.contains("in use"), "{error}");
    assert_eq!(event.endpoint, Some(endpoint));
}

#[tokio::test]
async fn an_accepted_peer_reports_accepted_handshake_succeeded_then_disconnected_with_its_address()
{
    let pull = Pull::new();
    let mut monitor = pull.monitor();
    let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
    assert_eq!(
        next_event(&mut monitor).await.kind,
        MonitorEventKind::Listening
    );
    let push = Push::new();
    push.connect(&endpoint).unwrap();

    let accepted = next_event(&mut monitor).await;
    assert_eq!(accepted.kind, MonitorEventKind::Accepted);
    assert_eq!(accepted.endpoint.as_ref(), Some(&endpoint));
    let peer = accepted.peer.clone().expect("a TCP peer has an address");
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    assert_ne!(peer, tcp_addr(&endpoint), "the peer's address, not ours");
    assert_eq!(
        accepted.to_string(),
        format!("accepted {endpoint} {peer}"),
        "the CLI's line"
    );
    let handshake = next_event(&mut monitor).await;
    assert_eq!(handshake.kind, MonitorEventKind::HandshakeSucceeded);
    assert_eq!(handshake.peer.as_ref(), Some(&peer));

    timeout(TEST_TIMEOUT, push.close()).await.unwrap();
    let gone = next_event(&mut monitor).await;
    assert_eq!(gone.kind, MonitorEventKind::Disconnected);
    assert_eq!(gone.peer, Some(peer));
    assert_eq!(gone.endpoint, Some(endpoint));
}

#[tokio::test]
async fn a_connecting_socket_reports_each_failed_attempt_its_retry_interval_and_the_connection() {
    // A port nothing listens on, until the PULL below binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint: Endpoint = format!("tcp://127.0.0.1:{port}").parse().unwrap();
    let mut options = SocketOptions::default();
    options.reconnect_ivl = Some(RECONNECT_IVL);
    let push = Push::with_options(options).unwrap();
    let mut monitor = push.monitor();
    push.connect(&endpoint).unwrap();

    let (closed, before) = until_event(&mut monitor, "closed").await;
    assert_eq!(before, ["connect_delayed"]);
    assert_eq!(closed.endpoint.as_ref(), Some(&endpoint));
    let retried = next_event(&mut monitor).await;
    let MonitorEventKind::ConnectRetried { interval } = retried.kind else {
        panic!("expected connect_retried after a refused attempt, got {retried}");
    };
    assert!(
        interval >= RECONNECT_IVL && interval < 2 * RECONNECT_IVL,
        "the reconnect interval plus jitter: {interval:?}"
    );

    let pull = Pull::new();
    pull.bind(&endpoint).unwrap();
    let (connected, before) = until_event(&mut monitor, "connected").await;
    assert_eq!(
        before.last(),
        Some(&"connect_delayed"),
        "each TCP connect attempt is reported as it starts: {before:?}"
    );
    assert_eq!(connected.endpoint.as_ref(), Some(&endpoint));
    assert_eq!(connected.peer, Some(tcp_addr(&endpoint)));
    assert_eq!(
        next_event(&mut monitor).await.kind,
        MonitorEventKind::HandshakeSucceeded
    );

    // The peer goes away: disconnected, then a retry is scheduled.
    timeout(TEST_TIMEOUT, pull.close()).await.unwrap();
    assert_eq!(
        next_event(&mut monitor).await.kind,
        MonitorEventKind::Disconnected
    );
    let retried = next_event(&mut monitor).await;
    assert!(
        matches!(retried.kind, MonitorEventKind::ConnectRetried { .. }),
        "{retried}"
    );
}

#[tokio::test]
async fn a_peer_that_breaks_the_greeting_reports_handshake_failed_protocol_with_the_fault() {
    let pull = Pull::new();
    let mut monitor = pull.monitor();
    let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
    let mut raw = TcpStream::connect(tcp_addr(&endpoint)).await.unwrap();
    raw.write_all(&[0x42; 64]).await.unwrap();

    let (failed, before) = until_event(&mut monitor, "handshake_failed_protocol").await;
    assert_eq!(before, ["listening", "accepted"]);
    let MonitorEventKind::HandshakeFailedProtocol { fault } = &failed.kind else {
        unreachable!()
    };
    assert!(
        matches!(fault, ProtocolError::BadSignature { .. }),
        "{fault:?}"
    );
    assert_eq!(failed.peer, Some(raw.local_addr().unwrap().to_string()));
    assert_eq!(
        next_event(&mut monitor).await.kind,
        MonitorEventKind::Disconnected
    );
}

#[tokio::test]
async fn a_peer_that_closes_mid_handshake_reports_handshake_failed_no_detail() {
    let pull = Pull::new();
    let mut monitor = pull.monitor();
    let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
    let mut raw = TcpStream::connect(tcp_addr(&endpoint)).await.unwrap();
    // The first ten bytes of a valid greeting, then nothing more.
    raw.write_all(&[0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f])
        .await
        .unwrap();
    let (accepted, _) = until_event(&mut monitor, "accepted").await;
    drop(raw);

    let failed = next_event(&mut monitor).await;
    assert!(
        matches!(
            failed.kind,
            MonitorEventKind::HandshakeFailedNoDetail { .. }
        ),
        "{failed}"
    );
    assert_eq!(failed.peer, accepted.peer);
    assert_eq!(
        next_event(&mut monitor).await.kind,
        MonitorEventKind::Disconnected
    );
}

#[tokio::test]
async fn a_refused_plain_client_reports_handshake_failed_auth_with_the_status_on_both_sides() {
    let policy = AuthPolicy::new().allow_user("admin", "secret");
    let server_options = SocketOptions::default().plain_server_with(Zap::new(policy));
    let pull = Pull::with_options(server_options).unwrap();
    let mut server = pull.monitor();
    let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push =
        Push::with_options(SocketOptions::default().plain_client_with("admin", "guess")).unwrap();
    let mut client = push.monitor();
    push.connect(&endpoint).unwrap();

    for monitor in [&mut server, &mut client] {
        let (failed, _) = until_event(monitor, "handshake_failed_auth").await;
        assert_eq!(
            failed.kind,
            MonitorEventKind::HandshakeFailedAuth { status: 400 }
        );
        assert_eq!(
            next_event(monitor).await.kind,
            MonitorEventKind::Disconnected
        );
    }
    // Refused credentials are not retried (RFC 26): the client schedules no reconnect.
    timeout(TEST_TIMEOUT, push.close()).await.unwrap();
    let rest: Vec<_> = client.map(|e| e.kind.name()).collect().await;
    assert_eq!(rest, ["monitor_stopped"]);
}

#[tokio::test]
async fn several_monitors_each_see_every_event_and_a_dropped_one_costs_nothing() {
    let pull = Pull::new();
    let mut first = pull.monitor();
    let dropped = pull.monitor();
    let mut second = pull.monitor();
    drop(dropped);
    let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = Push::new();
    push.connect(&endpoint).unwrap();
    for monitor in [&mut first, &mut second] {
        until_event(monitor, "handshake_succeeded").await;
    }
    assert_eq!(first.missed(), 0);
}

/// Runs in a child process with a low open-file limit (see the test below): fills the
/// descriptor table with client connections while the accept loop cannot run, so its next
/// accept fails with EMFILE; then frees them and sees accepting recover.
#[tokio::test(flavor = "current_thread")]
#[ignore = "run by an_accept_that_runs_out_of_descriptors_…, under its open-file limit"]
async fn accept_failed_child() {
    let pull = Pull::new();
    let mut monitor = pull.monitor();
    let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
    let mut clients = Vec::new();
    // Blocking connects on the runtime's only thread: the accept loop does not run meanwhile.
    loop {
        match std::net::TcpStream::connect(tcp_addr(&endpoint)) {
            Ok(stream) => clients.push(stream),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(24), "EMFILE: {e}");
                break;
            }
        }
    }
    let (failed, _) = until_event(&mut monitor, "accept_failed").await;
    println!("{failed}");
    drop(clients);
    until_event(&mut monitor, "accepted").await;
}

#[test]
fn an_accept_that_runs_out_of_descriptors_reports_accept_failed_and_recovers() {
    let this_test = std::env::current_exe().unwrap();
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 48 && exec "$0" --exact accept_failed_child --ignored --nocapture"#)
        .arg(this_test)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("accept_failed "))
        .unwrap_or_else(|| panic!("no accept_failed line in:\n{stdout}"));
    assert!(line.contains("Too many open files"), "{line}");
}
