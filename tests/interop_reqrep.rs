//! Request–reply interop with libzmq 4.3 (the `zmq` crate): REQ, REP, DEALER and ROUTER in
//! every pairing, each over TCP and IPC with ferromq binding and with libzmq binding.
//!
//! libzmq sockets run on blocking threads with receive/send timeouts so nothing can hang;
//! every test is also bounded by `tokio::time::timeout`.

mod common;

use bytes::Bytes;
use ferromq::{Dealer, Error, Message, Rep, Req, Router, SocketOptions};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::task::spawn_blocking;
use tokio::time::timeout;

/// `base` with `change` applied (`SocketOptions` is non-exhaustive: no struct literals).
fn tweak(mut base: SocketOptions, change: impl FnOnce(&mut SocketOptions)) -> SocketOptions {
    change(&mut base);
    base
}

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// libzmq send/receive timeout, in milliseconds.
const ZMQ_TIMEOUT_MS: i32 = 5_000;

#[derive(Debug, Clone, Copy)]
enum Transport {
    Tcp,
    Ipc,
}

#[derive(Debug, Clone, Copy)]
enum Binder {
    Ferromq,
    Libzmq,
}

/// Every transport with each side binding once.
const CASES: [(Transport, Binder); 4] = [
    (Transport::Tcp, Binder::Ferromq),
    (Transport::Tcp, Binder::Libzmq),
    (Transport::Ipc, Binder::Ferromq),
    (Transport::Ipc, Binder::Libzmq),
];

/// Connects every REQ to `endpoint`, then has all of them send `ROUNDS` requests at once
/// (request `i` of client `c` is `body(c, i)`), each expecting its own body back behind "re ".
async fn converse_concurrently(
    clients: &[Req],
    endpoint: &str,
    body: impl Fn(usize, usize) -> String + Copy,
) {
    for c in clients {
        c.connect(endpoint).unwrap();
    }
    futures::future::join_all(clients.iter().enumerate().map(|(c, req)| async move {
        for i in 0..ROUNDS {
            let body = body(c, i);
            req.send(body.clone()).await.unwrap();
            assert_eq!(
                req.recv().await.unwrap(),
                Message::from(format!("re {body}"))
            );
        }
    }))
    .await;
}

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(TEST_TIMEOUT, f).await.expect("test timed out")
}

fn local_endpoint(transport: Transport, binder: Binder) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    match (transport, binder) {
        (Transport::Tcp, Binder::Ferromq) => "tcp://127.0.0.1:0".into(),
        (Transport::Tcp, Binder::Libzmq) => "tcp://127.0.0.1:*".into(),
        (Transport::Ipc, _) => common::ipc_endpoint(&format!(
            "ferromq-interop-rr-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )),
    }
}

/// Binds one side and connects the other to it.
macro_rules! link {
    ($ours:expr, $theirs:expr, $case:expr) => {{
        let (transport, binder) = $case;
        let endpoint = local_endpoint(transport, binder);
        match binder {
            Binder::Ferromq => {
                let bound = $ours.bind(endpoint.as_str()).unwrap();
                $theirs.connect(&bound.to_string()).unwrap();
            }
            Binder::Libzmq => {
                $theirs.bind(&endpoint).unwrap();
                let bound = $theirs.get_last_endpoint().unwrap().unwrap();
                $ours.connect(bound.as_str()).unwrap();
            }
        }
    }};
}

fn zmq_socket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let socket = ctx.socket(kind).unwrap();
    socket.set_rcvtimeo(ZMQ_TIMEOUT_MS).unwrap();
    socket.set_sndtimeo(ZMQ_TIMEOUT_MS).unwrap();
    socket.set_linger(1_000).unwrap();
    socket
}

fn with_id(id: &str) -> SocketOptions {
    tweak(SocketOptions::default(), |o| {
        o.routing_id = Some(Bytes::copy_from_slice(id.as_bytes()));
    })
}

fn msg(frames: &[&[u8]]) -> Message {
    frames.iter().map(|f| Bytes::copy_from_slice(f)).collect()
}

fn frames_of(message: &Message) -> Vec<Vec<u8>> {
    message.iter().map(|f| f.to_vec()).collect()
}

/// Sends on a libzmq ROUTER with ROUTER_MANDATORY, retrying while the peer's handshake has
/// not completed yet (EHOSTUNREACH), for at most the libzmq timeout.
fn zmq_send_when_routable(socket: &zmq::Socket, frames: &[&[u8]]) {
    for _ in 0..ZMQ_TIMEOUT_MS {
        match socket.send_multipart(frames, 0) {
            Ok(()) => return,
            Err(zmq::Error::EHOSTUNREACH) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("libzmq send failed: {e}"),
        }
    }
    panic!("peer never became routable");
}

/// Sends on a ferromq ROUTER with `router_mandatory`, retrying while the peer is not
/// routable yet.
async fn send_when_routable(router: &Router, message: Message) {
    let mut message = message;
    loop {
        match router.send(message).await {
            Ok(()) => return,
            Err(e) if matches!(e.error, Error::HostUnreachable(_)) => {
                message = e.message;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) => panic!("send failed: {e}"),
        }
    }
}

const ROUNDS: usize = 3;

#[tokio::test]
async fn ferromq_req_with_libzmq_rep() {
    bounded(async {
        let ctx = zmq::Context::new();
        for case in CASES {
            let req = Req::new();
            let rep = zmq_socket(&ctx, zmq::REP);
            link!(req, rep, case);
            let server = spawn_blocking(move || {
                for _ in 0..ROUNDS {
                    let mut request = rep.recv_multipart(0).unwrap();
                    request.insert(0, b"re".to_vec());
                    rep.send_multipart(request, 0).unwrap();
                }
            });
            for i in 0..ROUNDS {
                let body = format!("{case:?} {i}");
                req.send(msg(&[body.as_bytes(), b""])).await.unwrap();
                let reply = req.recv().await.unwrap();
                assert_eq!(reply, msg(&[b"re", body.as_bytes(), b""]));
            }
            server.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn libzmq_req_with_ferromq_rep() {
    bounded(async {
        let ctx = zmq::Context::new();
        for case in CASES {
            let rep = Rep::new();
            let req = zmq_socket(&ctx, zmq::REQ);
            link!(rep, req, case);
            let client = spawn_blocking(move || {
                for i in 0..ROUNDS {
                    let body = format!("{i}");
                    req.send_multipart([body.as_bytes(), b"x"], 0).unwrap();
                    let reply = req.recv_multipart(0).unwrap();
                    assert_eq!(
                        reply,
                        vec![b"re".to_vec(), body.into_bytes(), b"x".to_vec()]
                    );
                }
            });
            for _ in 0..ROUNDS {
                let mut request = rep.recv().await.unwrap();
                request.push_front("re");
                rep.send(request).await.unwrap();
            }
            client.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn ferromq_req_with_libzmq_router_sees_our_identity_and_delimiter() {
    bounded(async {
        let ctx = zmq::Context::new();
        for case in CASES {
            let req = Req::with_options(with_id("ferro-req")).unwrap();
            let router = zmq_socket(&ctx, zmq::ROUTER);
            link!(req, router, case);
            let server = spawn_blocking(move || {
                for _ in 0..ROUNDS {
                    let request = router.recv_multipart(0).unwrap();
                    assert_eq!(request.len(), 3);
                    assert_eq!(request[0], b"ferro-req");
                    assert!(request[1].is_empty());
                    let reply = [&request[0][..], b"", b"re", &request[2][..]];
                    router.send_multipart(reply, 0).unwrap();
                }
            });
            for i in 0..ROUNDS {
                let body = i.to_string();
                req.send(body.clone()).await.unwrap();
                assert_eq!(req.recv().await.unwrap(), msg(&[b"re", body.as_bytes()]));
            }
            server.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn libzmq_req_with_ferromq_router_sees_their_identity() {
    bounded(async {
        let ctx = zmq::Context::new();
        for case in CASES {
            let router = Router::new();
            let req = zmq_socket(&ctx, zmq::REQ);
            req.set_identity(b"zmq-req").unwrap();
            link!(router, req, case);
            let client = spawn_blocking(move || {
                for i in 0..ROUNDS {
                    req.send(i.to_string().as_bytes(), 0).unwrap();
                    let reply = req.recv_multipart(0).unwrap();
                    assert_eq!(reply, vec![format!("re {i}").into_bytes()]);
                }
            });
            for i in 0..ROUNDS {
                let request = router.recv().await.unwrap();
                let body = i.to_string();
                assert_eq!(
                    frames_of(&request),
                    vec![b"zmq-req".to_vec(), vec![], body.clone().into_bytes()]
                );
                let reply = format!("re {body}");
                router
                    .send(msg(&[b"zmq-req", b"", reply.as_bytes()]))
                    .await
                    .unwrap();
            }
            client.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn ferromq_dealer_with_libzmq_rep() {
    bounded(async {
        let ctx = zmq::Context::new();
        for case in CASES {
            let dealer = Dealer::new();
            let rep = zmq_socket(&ctx, zmq::REP);
            link!(dealer, rep, case);
            let server = spawn_blocking(move || {
                for _ in 0..ROUNDS {
                    let request = rep.recv_multipart(0).unwrap();
                    rep.send_multipart([&b"re"[..], &request[0]], 0).unwrap();
                }
            });
            for i in 0..ROUNDS {
                let body = i.to_string();
                dealer.send(msg(&[b"", body.as_bytes()])).await.unwrap();
                assert_eq!(
                    dealer.recv().await.unwrap(),
                    msg(&[b"", b"re", body.as_bytes()])
                );
            }
            server.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn libzmq_dealer_with_ferromq_rep() {
    bounded(async {
        let ctx = zmq::Context::new();
        for case in CASES {
            let rep = Rep::new();
            let dealer = zmq_socket(&ctx, zmq::DEALER);
            link!(rep, dealer, case);
            let client = spawn_blocking(move || {
                for i in 0..ROUNDS {
                    let body = i.to_string();
                    dealer
                        .send_multipart([&b"hop"[..], b"", body.as_bytes()], 0)
                        .unwrap();
                    let reply = dealer.recv_multipart(0).unwrap();
                    assert_eq!(
                        reply,
                        vec![b"hop".to_vec(), vec![], format!("re {body}").into_bytes()]
                    );
                }
            });
            for _ in 0..ROUNDS {
                let request = rep.recv().await.unwrap();
                let body = String::from_utf8(request.frames()[0].to_vec()).unwrap();
                rep.send(format!("re {body}")).await.unwrap();
            }
            client.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn ferromq_dealer_with_libzmq_router() {
    bounded(async {
        let ctx = zmq::Context::new();
        for case in CASES {
            let dealer = Dealer::with_options(with_id("ferro-dealer")).unwrap();
            let router = zmq_socket(&ctx, zmq::ROUTER);
            link!(dealer, router, case);
            let server = spawn_blocking(move || {
                for _ in 0..ROUNDS {
                    let request = router.recv_multipart(0).unwrap();
                    assert_eq!(request[0], b"ferro-dealer");
                    router
                        .send_multipart([&request[0][..], b"re", &request[1]], 0)
                        .unwrap();
                }
            });
            for i in 0..ROUNDS {
                let body = i.to_string();
                dealer.send(body.clone()).await.unwrap();
                assert_eq!(dealer.recv().await.unwrap(), msg(&[b"re", body.as_bytes()]));
            }
            server.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn libzmq_dealer_with_ferromq_router() {
    bounded(async {
        let ctx = zmq::Context::new();
        for case in CASES {
            let router = Router::new();
            let dealer = zmq_socket(&ctx, zmq::DEALER);
            dealer.set_identity(b"zmq-dealer").unwrap();
            link!(router, dealer, case);
            let client = spawn_blocking(move || {
                for i in 0..ROUNDS {
                    dealer.send(i.to_string().as_bytes(), 0).unwrap();
                    let reply = dealer.recv_multipart(0).unwrap();
                    assert_eq!(reply, vec![b"re".to_vec(), i.to_string().into_bytes()]);
                }
            });
            for _ in 0..ROUNDS {
                let request = router.recv().await.unwrap();
                assert_eq!(request.frames()[0], "zmq-dealer");
                let reply: Message = [
                    request.frames()[0].clone(),
                    Bytes::from_static(b"re"),
                    request.frames()[1].clone(),
                ]
                .into_iter()
                .collect();
                router.send(reply).await.unwrap();
            }
            client.await.unwrap();
        }
    })
    .await;
}

/// ROUTER_NOTIFY: a libzmq DEALER's connection and departure reach the application as
/// `[routing id, ""]` around what it sent, and `routing_ids` lists it while it is there.
#[tokio::test]
async fn ferromq_router_reports_a_libzmq_dealer_connecting_and_leaving() {
    bounded(async {
        let ctx = zmq::Context::new();
        for case in CASES {
            let router = Router::with_options(tweak(SocketOptions::default(), |o| {
                o.router_notify = ferromq::options::RouterNotify::BOTH;
            }))
            .unwrap();
            let dealer = zmq_socket(&ctx, zmq::DEALER);
            dealer.set_identity(b"zmq-dealer").unwrap();
            link!(router, dealer, case);
            let connected = router.recv().await.unwrap();
            assert_eq!(connected.frames(), ["zmq-dealer", ""], "{case:?}");
            assert_eq!(router.routing_ids(), ["zmq-dealer"], "{case:?}");
            let dealer = spawn_blocking(move || {
                dealer.send("hello", 0).unwrap();
                dealer
            })
            .await
            .unwrap();
            let hello = router.recv().await.unwrap();
            assert_eq!(hello.frames(), ["zmq-dealer", "hello"], "{case:?}");
            drop(dealer);
            let left = router.recv().await.unwrap();
            assert_eq!(left.frames(), ["zmq-dealer", ""], "{case:?}");
            assert!(router.routing_ids().is_empty(), "{case:?}");
            router.close().await;
        }
    })
    .await;
}

/// Without ROUTER_NOTIFY (libzmq's default) nothing but the peer's own messages arrives.
#[tokio::test]
async fn ferromq_router_without_notify_reports_nothing() {
    bounded(async {
        let ctx = zmq::Context::new();
        let router = Router::new();
        let dealer = zmq_socket(&ctx, zmq::DEALER);
        dealer.set_identity(b"quiet").unwrap();
        link!(router, dealer, (Transport::Tcp, Binder::Ferromq));
        let dealer = spawn_blocking(move || {
            dealer.send("one", 0).unwrap();
            dealer
        })
        .await
        .unwrap();
        assert_eq!(router.recv().await.unwrap().frames(), ["quiet", "one"]);
        drop(dealer);
        while !router.routing_ids().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(matches!(router.try_recv(), Err(Error::WouldBlock)));
    })
    .await;
}

#[tokio::test]
async fn router_router_with_explicit_identities_both_ways() {
    bounded(async {
        let ctx = zmq::Context::new();
        for case in CASES {
            let options = tweak(with_id("ferro-router"), |o| {
                o.router_mandatory = true;
            });
            let ours = Router::with_options(options).unwrap();
            let theirs = zmq_socket(&ctx, zmq::ROUTER);
            theirs.set_identity(b"zmq-router").unwrap();
            theirs.set_router_mandatory(true).unwrap();
            link!(ours, theirs, case);
            // libzmq speaks first, then ferromq answers; then ferromq speaks first.
            let peer = spawn_blocking(move || {
                zmq_send_when_routable(&theirs, &[b"ferro-router", b"from zmq"]);
                let reply = theirs.recv_multipart(0).unwrap();
                assert_eq!(
                    reply,
                    vec![b"ferro-router".to_vec(), b"re from zmq".to_vec()]
                );
                let request = theirs.recv_multipart(0).unwrap();
                assert_eq!(
                    request,
                    vec![b"ferro-router".to_vec(), b"from ferro".to_vec()]
                );
                theirs
                    .send_multipart([&b"ferro-router"[..], b"re from ferro"], 0)
                    .unwrap();
            });
            let first = ours.recv().await.unwrap();
            assert_eq!(first, msg(&[b"zmq-router", b"from zmq"]));
            ours.send(msg(&[b"zmq-router", b"re from zmq"]))
                .await
                .unwrap();
            send_when_routable(&ours, msg(&[b"zmq-router", b"from ferro"])).await;
            assert_eq!(
                ours.recv().await.unwrap(),
                msg(&[b"zmq-router", b"re from ferro"])
            );
            peer.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn ferromq_router_connecting_first_to_libzmq_router() {
    bounded(async {
        let ctx = zmq::Context::new();
        let theirs = zmq_socket(&ctx, zmq::ROUTER);
        theirs.set_identity(b"server").unwrap();
        theirs.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = theirs.get_last_endpoint().unwrap().unwrap();
        let ours = Router::with_options(tweak(with_id("client"), |o| {
            o.router_mandatory = true;
        }))
        .unwrap();
        ours.connect(endpoint.as_str()).unwrap();
        let peer = spawn_blocking(move || {
            let request = theirs.recv_multipart(0).unwrap();
            assert_eq!(request, vec![b"client".to_vec(), b"hello".to_vec()]);
            theirs
                .send_multipart([&b"client"[..], b"world"], 0)
                .unwrap();
        });
        send_when_routable(&ours, msg(&[b"server", b"hello"])).await;
        assert_eq!(ours.recv().await.unwrap(), msg(&[b"server", b"world"]));
        peer.await.unwrap();
    })
    .await;
}

const REQUESTERS: usize = 3;

#[tokio::test]
async fn ferromq_rep_answers_each_of_several_libzmq_reqs() {
    bounded(async {
        let ctx = zmq::Context::new();
        for binder in [Binder::Ferromq, Binder::Libzmq] {
            let rep = Rep::new();
            let mut clients = Vec::new();
            for c in 0..REQUESTERS {
                let req = zmq_socket(&ctx, zmq::REQ);
                link!(rep, req, (Transport::Tcp, binder));
                clients.push(spawn_blocking(move || {
                    for i in 0..ROUNDS {
                        let body = format!("client {c} request {i}");
                        req.send(body.as_bytes(), 0).unwrap();
                        let reply = req.recv_bytes(0).unwrap();
                        assert_eq!(reply, format!("re {body}").into_bytes());
                    }
                }));
            }
            for _ in 0..REQUESTERS * ROUNDS {
                let request = rep.recv().await.unwrap();
                let body = String::from_utf8(request.frames()[0].to_vec()).unwrap();
                rep.send(format!("re {body}")).await.unwrap();
            }
            for c in clients {
                c.await.unwrap();
            }
        }
    })
    .await;
}

#[tokio::test]
async fn libzmq_rep_answers_each_of_several_ferromq_reqs() {
    bounded(async {
        let ctx = zmq::Context::new();
        let rep = zmq_socket(&ctx, zmq::REP);
        rep.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = rep.get_last_endpoint().unwrap().unwrap();
        let server = spawn_blocking(move || {
            for _ in 0..REQUESTERS * ROUNDS {
                let request = rep.recv_bytes(0).unwrap();
                let mut reply = b"re ".to_vec();
                reply.extend_from_slice(&request);
                rep.send(reply, 0).unwrap();
            }
        });
        let clients: Vec<Req> = (0..REQUESTERS).map(|_| Req::new()).collect();
        converse_concurrently(&clients, &endpoint, |c, i| {
            format!("client {c} request {i}")
        })
        .await;
        server.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn ferromq_router_routes_to_each_of_several_libzmq_reqs() {
    bounded(async {
        let ctx = zmq::Context::new();
        let router = Router::new();
        let endpoint = router.bind("tcp://127.0.0.1:0").unwrap().to_string();
        let clients: Vec<_> = (0..REQUESTERS)
            .map(|c| {
                let req = zmq_socket(&ctx, zmq::REQ);
                req.set_identity(format!("req-{c}").as_bytes()).unwrap();
                req.connect(&endpoint).unwrap();
                spawn_blocking(move || {
                    for i in 0..ROUNDS {
                        let body = format!("{c}:{i}");
                        req.send(body.as_bytes(), 0).unwrap();
                        assert_eq!(
                            req.recv_bytes(0).unwrap(),
                            format!("for req-{c} {body}").into_bytes()
                        );
                    }
                })
            })
            .collect();
        for _ in 0..REQUESTERS * ROUNDS {
            let request = router.recv().await.unwrap();
            let id = String::from_utf8(request.frames()[0].to_vec()).unwrap();
            let body = String::from_utf8(request.frames()[2].to_vec()).unwrap();
            assert!(body.starts_with(&id["req-".len()..]));
            let reply = format!("for {id} {body}");
            router
                .send(msg(&[id.as_bytes(), b"", reply.as_bytes()]))
                .await
                .unwrap();
        }
        for c in clients {
            c.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn libzmq_router_routes_to_each_of_several_ferromq_reqs() {
    bounded(async {
        let ctx = zmq::Context::new();
        let router = zmq_socket(&ctx, zmq::ROUTER);
        router.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = router.get_last_endpoint().unwrap().unwrap();
        let server = spawn_blocking(move || {
            for _ in 0..REQUESTERS * ROUNDS {
                let request = router.recv_multipart(0).unwrap();
                let mut reply = b"re ".to_vec();
                reply.extend_from_slice(&request[2]);
                router
                    .send_multipart([&request[0][..], b"", &reply], 0)
                    .unwrap();
            }
        });
        let clients: Vec<Req> = (0..REQUESTERS)
            .map(|c| Req::with_options(with_id(&format!("ferro-{c}"))).unwrap())
            .collect();
        converse_concurrently(&clients, &endpoint, |c, i| format!("ferro-{c} {i}")).await;
        server.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn ferromq_correlated_req_with_libzmq_router_and_rep() {
    bounded(async {
        let ctx = zmq::Context::new();
        let options = tweak(with_id("corr"), |o| {
            o.req_correlate = true;
            o.req_relaxed = true;
        });
        // Against a ROUTER: the request id frame is libzmq's 4 bytes, before the delimiter;
        // a reply with another id is dropped.
        let req = Req::with_options(options.clone()).unwrap();
        let router = zmq_socket(&ctx, zmq::ROUTER);
        link!(req, router, (Transport::Tcp, Binder::Libzmq));
        let server = spawn_blocking(move || {
            let request = router.recv_multipart(0).unwrap();
            assert_eq!(request.len(), 4);
            assert_eq!(request[0], b"corr");
            assert_eq!(request[1].len(), 4);
            assert!(request[2].is_empty());
            let mut wrong = request[1].clone();
            wrong[0] ^= 0xff;
            router
                .send_multipart([&request[0][..], &wrong, b"", b"wrong id"], 0)
                .unwrap();
            router
                .send_multipart([&request[0][..], &request[1], b"", b"right id"], 0)
                .unwrap();
        });
        req.send("q").await.unwrap();
        assert_eq!(req.recv().await.unwrap(), Message::from("right id"));
        server.await.unwrap();

        // Against a REP that answers the first request late, after a relaxed resend.
        let req = Req::with_options(options).unwrap();
        let rep = zmq_socket(&ctx, zmq::REP);
        link!(req, rep, (Transport::Tcp, Binder::Ferromq));
        let (got_first, first_seen) = tokio::sync::oneshot::channel();
        let (resent, wait_resent) = std::sync::mpsc::channel();
        let server = spawn_blocking(move || {
            let first = rep.recv_bytes(0).unwrap();
            got_first.send(first).unwrap();
            wait_resent.recv().unwrap();
            rep.send(&b"late reply"[..], 0).unwrap();
            let second = rep.recv_bytes(0).unwrap();
            assert_eq!(second, b"second");
            rep.send(&b"reply to second"[..], 0).unwrap();
        });
        req.send("first").await.unwrap();
        assert_eq!(first_seen.await.unwrap(), b"first");
        req.send("second").await.unwrap();
        resent.send(()).unwrap();
        assert_eq!(req.recv().await.unwrap(), Message::from("reply to second"));
        server.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn libzmq_correlated_req_with_ferromq_rep() {
    bounded(async {
        let ctx = zmq::Context::new();
        let rep = Rep::new();
        let req = zmq_socket(&ctx, zmq::REQ);
        req.set_req_correlate(true).unwrap();
        req.set_req_relaxed(true).unwrap();
        link!(rep, req, (Transport::Tcp, Binder::Ferromq));
        let (go_resend, wait_go) = std::sync::mpsc::channel();
        let (resent, wait_resent) = tokio::sync::oneshot::channel();
        let client = spawn_blocking(move || {
            req.send(&b"first"[..], 0).unwrap();
            wait_go.recv().unwrap();
            req.send(&b"second"[..], 0).unwrap();
            resent.send(()).unwrap();
            assert_eq!(req.recv_bytes(0).unwrap(), b"reply to second");
        });
        assert_eq!(rep.recv().await.unwrap(), Message::from("first"));
        go_resend.send(()).unwrap();
        wait_resent.await.unwrap();
        // The late reply carries the first request's id: libzmq's REQ must drop it.
        rep.send("late reply").await.unwrap();
        assert_eq!(rep.recv().await.unwrap(), Message::from("second"));
        rep.send("reply to second").await.unwrap();
        client.await.unwrap();
    })
    .await;
}
