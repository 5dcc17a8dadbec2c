//! Proves the pyzmq harness (`tests/pyzmq/`): libzmq 4.3 peers with CURVE, PLAIN and a ZAP
//! handler, talking to each other (no ferromq socket involved yet).

mod pyzmq;

use pyzmq::{PeerConfig, PyPeer, ZapConfig, keypair, python};
use std::time::Duration;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn python_env_has_curve_capable_libzmq_43() {
    let env = python();
    assert!(env.libzmq_version.starts_with("4.3"), "{env:?}");
    assert!(env.pyzmq_version.starts_with("27."), "{env:?}");
    let (public, secret) = keypair();
    assert_eq!((public.len(), secret.len()), (40, 40));
    assert_ne!(public, secret);
}

/// A CURVE PUSH server whose ZAP handler allows exactly `allowed`.
async fn curve_push_server(server_secret: &str, allowed: &str, sndtimeo: Option<i32>) -> PyPeer {
    let mut config = PeerConfig::bind("PUSH", "tcp://127.0.0.1:0")
        .with_curve_server(server_secret)
        .with_zap(ZapConfig {
            curve_keys: Some(vec![allowed.to_owned()]),
            ..Default::default()
        })
        .with_monitor();
    config.sndtimeo = sndtimeo;
    PyPeer::start(&config).await
}

#[tokio::test]
async fn curve_push_pull_with_zap_allowed_key() {
    timeout(TEST_TIMEOUT, async {
        let server_keys = keypair();
        let client_keys = keypair();
        let server = curve_push_server(&server_keys.1, &client_keys.0, None).await;
        assert!(server.endpoint().starts_with("tcp://127.0.0.1:"));
        let client = PyPeer::start(
            &PeerConfig::connect("PULL", server.endpoint())
                .with_curve_client(&server_keys.0, &client_keys)
                .with_monitor(),
        )
        .await;

        let zap = server.next_zap().await.expect("ZAP decision");
        assert_eq!(zap.status_code, "200", "{zap:?}");
        assert_eq!(zap.user_id.as_deref(), Some(client_keys.0.as_str()));
        let (value, endpoint) = client
            .next_event("HANDSHAKE_SUCCEEDED")
            .await
            .expect("client handshake succeeded");
        assert_eq!((value, endpoint.as_str()), (0, server.endpoint()));

        server.send_n(1000, 64).await;
        client.recv_n(1000).await.expect("1000 numbered messages");

        client.quit().await;
        server.quit().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn curve_client_with_unknown_key_is_denied() {
    timeout(TEST_TIMEOUT, async {
        let server_keys = keypair();
        let allowed_keys = keypair();
        let other_keys = keypair();
        let server = curve_push_server(&server_keys.1, &allowed_keys.0, Some(500)).await;
        let client = PyPeer::start(
            &PeerConfig::connect("PULL", server.endpoint())
                .with_curve_client(&server_keys.0, &other_keys)
                .with_monitor()
                .with_rcvtimeo(1000),
        )
        .await;

        let zap = server.next_zap().await.expect("ZAP decision");
        assert_eq!(zap.status_code, "400", "{zap:?}");
        assert_eq!(zap.user_id, None);
        assert_eq!(zap.status_text, "Unknown key");
        let (value, endpoint) = client
            .next_event("HANDSHAKE_FAILED_AUTH")
            .await
            .expect("client sees the ZAP refusal");
        assert_eq!((value, endpoint.as_str()), (400, server.endpoint()));
        let (value, _) = server
            .next_event("HANDSHAKE_FAILED_AUTH")
            .await
            .expect("server reports the refusal too");
        assert_eq!(value, 400);

        // No pipe was attached on either side.
        assert_eq!(client.recv().await, None);
        assert!(!server.try_send(&[b"never delivered"]).await);

        client.quit().await;
        server.quit().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn plain_req_rep_with_zap_password_table() {
    timeout(TEST_TIMEOUT, async {
        let rep = PyPeer::start(
            &PeerConfig::bind("REP", "tcp://127.0.0.1:0")
                .with_plain_server()
                .with_zap(ZapConfig {
                    plain: vec![("alice".to_owned(), "s3cret pass".to_owned())],
                    ..Default::default()
                })
                .with_monitor(),
        )
        .await;
        let req = PyPeer::start(
            &PeerConfig::connect("REQ", rep.endpoint()).with_plain_client("alice", "s3cret pass"),
        )
        .await;

        req.send(&[b"hello"]).await;
        let (frames, user_id) = rep.recv_meta("User-Id").await;
        assert_eq!(frames, vec![b"hello".to_vec()]);
        assert_eq!(user_id.as_deref(), Some("alice"));
        rep.send(&[b"world"]).await;
        assert_eq!(req.recv().await, Some(vec![b"world".to_vec()]));

        req.send(&[b"", b"x"]).await;
        let (frames, peer_address) = rep.recv_meta("Peer-Address").await;
        assert_eq!(frames, vec![Vec::new(), b"x".to_vec()]);
        assert_eq!(peer_address.as_deref(), Some("127.0.0.1"));
        rep.send(&[b"y"]).await;
        assert_eq!(req.recv().await, Some(vec![b"y".to_vec()]));

        req.send(&[b"z"]).await;
        let (_, socket_type) = rep.recv_meta("Socket-Type").await;
        assert_eq!(socket_type.as_deref(), Some("REQ"));
        rep.send(&[b"z"]).await;
        assert_eq!(req.recv().await, Some(vec![b"z".to_vec()]));

        req.send(&[b"w"]).await;
        let (_, missing) = rep.recv_meta("X-No-Such-Property").await;
        assert_eq!(missing, None);
        rep.send(&[b"w"]).await;
        assert_eq!(req.recv().await, Some(vec![b"w".to_vec()]));

        let zap = rep.next_zap().await.expect("ZAP decision");
        assert_eq!(
            (zap.status_code.as_str(), zap.user_id.as_deref()),
            ("200", Some("alice"))
        );

        // A wrong password is refused with 400.
        let intruder = PyPeer::start(
            &PeerConfig::connect("REQ", rep.endpoint())
                .with_plain_client("alice", "wrong")
                .with_monitor(),
        )
        .await;
        let zap = rep.next_zap().await.expect("ZAP decision");
        assert_eq!(zap.status_code, "400", "{zap:?}");
        assert_eq!(zap.status_text, "Invalid password");
        let (value, _) = intruder
            .next_event("HANDSHAKE_FAILED_AUTH")
            .await
            .expect("intruder refused");
        assert_eq!(value, 400);

        intruder.quit().await;
        req.quit().await;
        rep.quit().await;
    })
    .await
    .expect("test timed out");
}

/// A Python exception in the peer fails the test with the peer's `ERROR` line and traceback.
#[tokio::test]
#[should_panic(expected = "ERROR ValueError: unknown socket type 'STREAM'")]
async fn peer_errors_panic_with_the_error_line() {
    PyPeer::start(&PeerConfig::bind("STREAM", "tcp://127.0.0.1:0")).await;
}
