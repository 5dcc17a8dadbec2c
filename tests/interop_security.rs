//! PLAIN, CURVE and ZAP against libzmq 4.3 (pyzmq's CURVE-capable build, driven by
//! `tests/pyzmq/peer.py`): each mechanism both ways and in both roles, ZAP denial both ways,
//! and every socket pattern at least once. Over TCP, as ZAP sees IP addresses; one test runs
//! both mechanisms over IPC.

mod common;
mod pyzmq;

use common::Transport;
use ferromq::security::{AuthPolicy, CurveKey, CurveKeyPair, Zap};
use ferromq::{Dealer, Message, Pair, Pull, Push, Rep, Req, Router, SocketOptions, Sub, XPub};
use pyzmq::{PeerConfig, PyPeer, ZapConfig, check_numbered, keypair, numbered};
use std::time::Duration;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// Messages per stream: enough to cross many boxes and batches.
const STREAM_MSGS: u32 = 2000;
const LOCAL: &str = "tcp://127.0.0.1:0";
/// libzmq's monitor value for a command it did not expect (zmq.h).
const ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND: i64 = 0x1000_0001;

fn key(z85: &str) -> CurveKey {
    z85.parse().expect("pyzmq prints Z85 keys")
}

/// Options of a ferromq CURVE client of `server_public` proving `keys`.
fn curve_client(server_public: &str, keys: &CurveKeyPair) -> SocketOptions {
    SocketOptions::default().curve_client_with(key(server_public), keys)
}

fn zap_keys(keys: &[&str]) -> ZapConfig {
    ZapConfig {
        curve_keys: Some(keys.iter().map(|k| k.to_string()).collect()),
        ..Default::default()
    }
}

fn zap_users(users: &[(&str, &str)]) -> ZapConfig {
    ZapConfig {
        plain: users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn ferromq_curve_push_client_to_libzmq_curve_pull_server() {
    timeout(TEST_TIMEOUT, async {
        let server = keypair();
        let client = CurveKeyPair::generate();
        let pull = PyPeer::start(
            &PeerConfig::bind("PULL", LOCAL)
                .with_curve_server(&server.1)
                .with_zap(zap_keys(&[&client.public.to_z85()])),
        )
        .await;
        let push = Push::with_options(curve_client(&server.0, &client)).unwrap();
        push.connect(pull.endpoint()).unwrap();
        for i in 0..STREAM_MSGS {
            push.send(numbered(i, 64)).await.unwrap();
        }
        pull.recv_n(STREAM_MSGS as usize).await.unwrap();
        let zap = pull.next_zap().await.unwrap();
        assert_eq!(zap.status_code, "200");
        assert_eq!(zap.user_id, Some(client.public.to_z85()));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn libzmq_curve_push_client_to_ferromq_curve_pull_server() {
    timeout(TEST_TIMEOUT, async {
        let server = CurveKeyPair::generate();
        let client = keypair();
        let mut options = SocketOptions::default().curve_server_with(server.secret);
        options.zap = Some(Zap::new(AuthPolicy::new().allow_curve_key(key(&client.0))));
        let pull = Pull::with_options(options).unwrap();
        let endpoint = pull.bind(LOCAL).unwrap();
        let push = PyPeer::start(
            &PeerConfig::connect("PUSH", &endpoint.to_string())
                .with_curve_client(&server.public.to_z85(), &client),
        )
        .await;
        push.send_n(STREAM_MSGS as usize, 1024).await;
        for i in 0..STREAM_MSGS {
            let m = pull.recv().await.unwrap();
            check_numbered(i, &m.frames()[0]).unwrap();
            if i == 0 {
                assert_eq!(m.user_id().unwrap(), client.0.as_str());
                assert_eq!(m.peer_address(), Some("127.0.0.1"));
                assert_eq!(m.property("Socket-Type").unwrap(), "PUSH");
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn curve_req_rep_both_ways_with_large_and_multipart_messages() {
    timeout(TEST_TIMEOUT, async {
        // ferromq REQ client -> libzmq REP server (echo).
        let server = keypair();
        let rep = PyPeer::start(&PeerConfig::bind("REP", LOCAL).with_curve_server(&server.1)).await;
        let req = Req::with_options(curve_client(&server.0, &CurveKeyPair::generate())).unwrap();
        req.connect(rep.endpoint()).unwrap();
        let echo = rep.echo(3);
        let exchange = async {
            for size in [0usize, 5, 70_000] {
                let mut m = Message::new();
                m.push_back("head");
                m.push_back(vec![9u8; size]);
                req.send(m.clone()).await.unwrap();
                assert_eq!(req.recv().await.unwrap(), m);
            }
        };
        tokio::join!(echo, exchange);

        // libzmq REQ client -> ferromq REP server.
        let server = CurveKeyPair::generate();
        let rep =
            Rep::with_options(SocketOptions::default().curve_server_with(server.secret)).unwrap();
        let endpoint = rep.bind(LOCAL).unwrap();
        let req = PyPeer::start(
            &PeerConfig::connect("REQ", &endpoint.to_string())
                .with_curve_client(&server.public.to_z85(), &keypair()),
        )
        .await;
        for i in 0..50u32 {
            req.send(&[&numbered(i, 32)]).await;
            let request = rep.recv().await.unwrap();
            rep.send(request).await.unwrap();
            let reply = req.recv().await.unwrap();
            check_numbered(i, &reply[0]).unwrap();
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn curve_pub_sub_and_pair_with_libzmq() {
    timeout(TEST_TIMEOUT, async {
        // libzmq PUB (CURVE server) -> ferromq SUB: the subscription travels boxed.
        let server = keypair();
        let publisher =
            PyPeer::start(&PeerConfig::bind("XPUB", LOCAL).with_curve_server(&server.1)).await;
        let sub = Sub::with_options(curve_client(&server.0, &CurveKeyPair::generate())).unwrap();
        sub.subscribe("weather");
        sub.connect(publisher.endpoint()).unwrap();
        let notification = publisher.recv().await.expect("subscription reached libzmq");
        assert_eq!(notification, [b"\x01weather".to_vec()]);
        publisher.send(&[b"news", b"no"]).await;
        publisher.send(&[b"weather", b"sunny"]).await;
        let m = sub.recv().await.unwrap();
        assert_eq!(m.frames(), ["weather", "sunny"]);

        // ferromq PAIR (CURVE server) <-> libzmq PAIR client.
        let server = CurveKeyPair::generate();
        let pair =
            Pair::with_options(SocketOptions::default().curve_server_with(server.secret)).unwrap();
        let endpoint = pair.bind(LOCAL).unwrap();
        let peer = PyPeer::start(
            &PeerConfig::connect("PAIR", &endpoint.to_string())
                .with_curve_client(&server.public.to_z85(), &keypair()),
        )
        .await;
        peer.send(&[b"ping"]).await;
        assert_eq!(pair.recv().await.unwrap().frames(), ["ping"]);
        pair.send("pong").await.unwrap();
        assert_eq!(peer.recv().await.unwrap(), [b"pong".to_vec()]);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn plain_both_ways_with_dealer_router_and_push_pull() {
    timeout(TEST_TIMEOUT, async {
        // ferromq DEALER (PLAIN client) -> libzmq ROUTER (PLAIN server with a ZAP table).
        let router = PyPeer::start(
            &PeerConfig::bind("ROUTER", LOCAL)
                .with_plain_server()
                .with_zap(zap_users(&[("admin", "secret")])),
        )
        .await;
        let dealer =
            Dealer::with_options(SocketOptions::default().plain_client_with("admin", "secret"))
                .unwrap();
        dealer.connect(router.endpoint()).unwrap();
        dealer.send("hello").await.unwrap();
        let (frames, user_id) = router.recv_meta("User-Id").await;
        assert_eq!(frames[1], b"hello");
        assert_eq!(user_id.as_deref(), Some("admin"));
        router.send(&[&frames[0], b"world"]).await;
        assert_eq!(dealer.recv().await.unwrap().frames(), ["world"]);

        // libzmq DEALER (PLAIN client) -> ferromq ROUTER (PLAIN server, AuthPolicy).
        let router = Router::with_options(
            SocketOptions::default()
                .plain_server_with(Zap::new(AuthPolicy::new().allow_user("admin", "secret"))),
        )
        .unwrap();
        let endpoint = router.bind(LOCAL).unwrap();
        let dealer = PyPeer::start(
            &PeerConfig::connect("DEALER", &endpoint.to_string())
                .with_plain_client("admin", "secret"),
        )
        .await;
        dealer.send(&[b"hi"]).await;
        let m = router.recv().await.unwrap();
        assert_eq!(m.frames()[1], "hi");
        assert_eq!(m.user_id().unwrap(), "admin");
        let mut reply = Message::new();
        reply.push_back(m.frames()[0].clone());
        reply.push_back("there");
        router.send(reply).await.unwrap();
        assert_eq!(dealer.recv().await.unwrap(), [b"there".to_vec()]);

        // ferromq PUSH (PLAIN client) -> libzmq PULL (PLAIN server): a stream.
        let pull = PyPeer::start(
            &PeerConfig::bind("PULL", LOCAL)
                .with_plain_server()
                .with_zap(zap_users(&[("u", "p")])),
        )
        .await;
        let push =
            Push::with_options(SocketOptions::default().plain_client_with("u", "p")).unwrap();
        push.connect(pull.endpoint()).unwrap();
        for i in 0..STREAM_MSGS {
            push.send(numbered(i, 16)).await.unwrap();
        }
        pull.recv_n(STREAM_MSGS as usize).await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn libzmq_denies_ferromq_once_and_ferromq_does_not_retry() {
    timeout(TEST_TIMEOUT, async {
        // CURVE: a key the libzmq server's ZAP handler does not list.
        let server = keypair();
        let pull = PyPeer::start(
            &PeerConfig::bind("PULL", LOCAL)
                .with_curve_server(&server.1)
                .with_zap(zap_keys(&[&keypair().0]))
                .with_monitor(),
        )
        .await;
        let push = Push::with_options(curve_client(&server.0, &CurveKeyPair::generate())).unwrap();
        push.connect(pull.endpoint()).unwrap();
        assert_eq!(pull.next_zap().await.unwrap().status_code, "400");
        // RFC 26: the client must not retry with the same credentials. Past several
        // reconnect intervals (100 ms), no second request reached the handler.
        assert_eq!(
            pull.next_zap_within(Duration::from_millis(1500)).await,
            None
        );
        // As libzmq's PUSH (`immediate` off) after a refusal: the endpoint stays routable, so
        // a send queues though nothing will take it, and close drops it rather than wait
        // for a connector that stopped.
        push.try_send("x").unwrap();
        assert_eq!(push.peer_count(), 0);
        timeout(Duration::from_secs(2), push.close())
            .await
            .expect("close waited for a peer that refused us");

        // PLAIN: a wrong password.
        let pull = PyPeer::start(
            &PeerConfig::bind("PULL", LOCAL)
                .with_plain_server()
                .with_zap(zap_users(&[("admin", "secret")])),
        )
        .await;
        let push = Push::with_options(SocketOptions::default().plain_client_with("admin", "guess"))
            .unwrap();
        push.connect(pull.endpoint()).unwrap();
        assert_eq!(pull.next_zap().await.unwrap().status_code, "400");
        assert_eq!(
            pull.next_zap_within(Duration::from_millis(1500)).await,
            None
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn ferromq_denies_libzmq_and_libzmq_reports_status_400() {
    timeout(TEST_TIMEOUT, async {
        // CURVE: an unlisted client key.
        let server = CurveKeyPair::generate();
        let mut options = SocketOptions::default().curve_server_with(server.secret);
        options.zap = Some(Zap::new(
            AuthPolicy::new().allow_curve_key(CurveKeyPair::generate().public),
        ));
        let pull = Pull::with_options(options).unwrap();
        let endpoint = pull.bind(LOCAL).unwrap();
        let push = PyPeer::start(
            &PeerConfig::connect("PUSH", &endpoint.to_string())
                .with_curve_client(&server.public.to_z85(), &keypair())
                .with_monitor(),
        )
        .await;
        let (status, _) = push.next_event("HANDSHAKE_FAILED_AUTH").await.unwrap();
        assert_eq!(status, 400);

        // PLAIN: a wrong password, and an address outside the allow list with NULL.
        let rep = Rep::with_options(
            SocketOptions::default()
                .plain_server_with(Zap::new(AuthPolicy::new().allow_user("admin", "secret"))),
        )
        .unwrap();
        let endpoint = rep.bind(LOCAL).unwrap();
        let req = PyPeer::start(
            &PeerConfig::connect("REQ", &endpoint.to_string())
                .with_plain_client("admin", "wrong")
                .with_monitor(),
        )
        .await;
        // libzmq's PLAIN client recognises only its own misspelt ERROR (spec/security.md), so
        // it reports our RFC-form ERROR "400" as an unexpected command; either way it stops.
        let (code, _) = req.next_event("HANDSHAKE_FAILED_PROTOCOL").await.unwrap();
        assert_eq!(code, ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND);
        assert_eq!(
            req.next_event_within("CONNECTED", Duration::from_millis(1500))
                .await,
            None,
            "libzmq reconnected after being refused"
        );

        let mut options = SocketOptions::default();
        options.zap = Some(Zap::new(AuthPolicy::new().allow_ip("192.0.2.1")));
        let pull = Pull::with_options(options).unwrap();
        let endpoint = pull.bind(LOCAL).unwrap();
        let mut config = PeerConfig::connect("PUSH", &endpoint.to_string()).with_monitor();
        config.zap_domain = Some("global".into());
        let push = PyPeer::start(&config).await;
        let (status, _) = push.next_event("HANDSHAKE_FAILED_AUTH").await.unwrap();
        assert_eq!(status, 400);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn wrong_server_key_never_completes_a_handshake_with_libzmq() {
    timeout(TEST_TIMEOUT, async {
        let server = keypair();
        let pull = PyPeer::start(
            &PeerConfig::bind("PULL", LOCAL)
                .with_curve_server(&server.1)
                .with_monitor(),
        )
        .await;
        let wrong = keypair();
        let push = Push::with_options(curve_client(&wrong.0, &CurveKeyPair::generate())).unwrap();
        push.connect(pull.endpoint()).unwrap();
        let (_, _) = pull
            .next_event("HANDSHAKE_FAILED_PROTOCOL")
            .await
            .expect("libzmq could not open our HELLO");
        assert_eq!(push.peer_count(), 0);
    })
    .await
    .unwrap();
}

/// The mechanisms do not depend on the transport: CURVE from a ferromq client to a libzmq
/// server and PLAIN from a libzmq client to a ferromq server, over IPC, where a message's
/// `Peer-Address` is empty.
#[tokio::test]
async fn curve_and_plain_over_ipc_both_ways() {
    timeout(TEST_TIMEOUT, async {
        const MSGS: u32 = 200;
        let server = keypair();
        let client = CurveKeyPair::generate();
        let pull = PyPeer::start(
            &PeerConfig::bind("PULL", &Transport::Ipc.bind_addr())
                .with_curve_server(&server.1)
                .with_zap(zap_keys(&[&client.public.to_z85()])),
        )
        .await;
        let push = Push::with_options(curve_client(&server.0, &client)).unwrap();
        push.connect(pull.endpoint()).unwrap();
        for i in 0..MSGS {
            push.send(numbered(i, 64)).await.unwrap();
        }
        pull.recv_n(MSGS as usize).await.unwrap();
        assert_eq!(pull.next_zap().await.unwrap().status_code, "200");

        let policy = AuthPolicy::new().allow_user("admin", "secret");
        let pull = Pull::with_options(SocketOptions::default().plain_server_with(Zap::new(policy)))
            .unwrap();
        let endpoint = pull.bind(Transport::Ipc.bind_addr()).unwrap();
        let push = PyPeer::start(
            &PeerConfig::connect("PUSH", &endpoint.to_string())
                .with_plain_client("admin", "secret"),
        )
        .await;
        push.send_n(MSGS as usize, 64).await;
        for i in 0..MSGS {
            let m = pull.recv().await.unwrap();
            check_numbered(i, &m.frames()[0]).unwrap();
            if i == 0 {
                assert_eq!(m.user_id().unwrap(), "admin");
                assert_eq!(m.peer_address(), Some(""));
            }
        }
    })
    .await
    .unwrap();
}

/// DEALER and ROUTER under CURVE both ways, with the ROUTER as server each time and the
/// client's key as its user id; then a ferromq XPUB as CURVE server for a libzmq SUB.
#[tokio::test]
async fn curve_dealer_router_both_ways_and_a_ferromq_xpub_server() {
    timeout(TEST_TIMEOUT, async {
        // ferromq DEALER (CURVE client) -> libzmq ROUTER (CURVE server, ZAP key list).
        let server = keypair();
        let client = CurveKeyPair::generate();
        let router = PyPeer::start(
            &PeerConfig::bind("ROUTER", LOCAL)
                .with_curve_server(&server.1)
                .with_zap(zap_keys(&[&client.public.to_z85()])),
        )
        .await;
        let dealer = Dealer::with_options(curve_client(&server.0, &client)).unwrap();
        dealer.connect(router.endpoint()).unwrap();
        dealer.send("hello").await.unwrap();
        let (frames, user_id) = router.recv_meta("User-Id").await;
        assert_eq!(frames[1], b"hello");
        assert_eq!(user_id, Some(client.public.to_z85()));
        router.send(&[&frames[0], b"world"]).await;
        assert_eq!(dealer.recv().await.unwrap().frames(), ["world"]);

        // libzmq DEALER (CURVE client) -> ferromq ROUTER (CURVE server, AuthPolicy).
        let server = CurveKeyPair::generate();
        let client = keypair();
        let mut options = SocketOptions::default().curve_server_with(server.secret);
        options.zap = Some(Zap::new(AuthPolicy::new().allow_curve_key(key(&client.0))));
        let router = Router::with_options(options).unwrap();
        let endpoint = router.bind(LOCAL).unwrap();
        let dealer = PyPeer::start(
            &PeerConfig::connect("DEALER", &endpoint.to_string())
                .with_curve_client(&server.public.to_z85(), &client),
        )
        .await;
        dealer.send(&[b"hi"]).await;
        let m = router.recv().await.unwrap();
        assert_eq!(m.frames()[1], "hi");
        assert_eq!(m.user_id().unwrap(), client.0.as_str());
        let mut reply = Message::new();
        reply.push_back(m.frames()[0].clone());
        reply.push_back("there");
        router.send(reply).await.unwrap();
        assert_eq!(dealer.recv().await.unwrap(), [b"there".to_vec()]);

        // ferromq XPUB (CURVE server) -> libzmq SUB (CURVE client): the subscription arrives
        // boxed, and only the matching message is delivered.
        let server = CurveKeyPair::generate();
        let xpub =
            XPub::with_options(SocketOptions::default().curve_server_with(server.secret)).unwrap();
        let endpoint = xpub.bind(LOCAL).unwrap();
        let mut config = PeerConfig::connect("SUB", &endpoint.to_string())
            .with_curve_client(&server.public.to_z85(), &keypair());
        config.subscribe = vec!["weather".to_owned()];
        let sub = PyPeer::start(&config).await;
        assert_eq!(xpub.recv().await.unwrap().frames(), ["\x01weather"]);
        let mut news = Message::new();
        news.push_back("news");
        news.push_back("no");
        xpub.send(news).await.unwrap();
        let mut weather = Message::new();
        weather.push_back("weather");
        weather.push_back("sunny");
        xpub.send(weather).await.unwrap();
        assert_eq!(
            sub.recv().await.unwrap(),
            [b"weather".to_vec(), b"sunny".to_vec()]
        );
    })
    .await
    .unwrap();
}
