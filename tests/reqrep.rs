//! REQ, REP, DEALER and ROUTER between ferromq sockets: alternation errors, envelopes,
//! routing ids, relaxed/correlated REQ, timeouts.

use bytes::Bytes;
use ferromq::{Dealer, Error, Message, Pair, Pull, Push, Rep, Req, Router, SocketOptions};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::timeout;

/// `base` with `change` applied (`SocketOptions` is non-exhaustive: no struct literals).
fn tweak(mut base: SocketOptions, change: impl FnOnce(&mut SocketOptions)) -> SocketOptions {
    change(&mut base);
    base
}

const TEST_TIMEOUT: Duration = Duration::from_secs(20);

async fn bounded<F: Future>(f: F) -> F::Output {
    timeout(TEST_TIMEOUT, f).await.expect("test timed out")
}

fn msg(frames: &[&str]) -> Message {
    frames
        .iter()
        .map(|f| Bytes::copy_from_slice(f.as_bytes()))
        .collect()
}

fn with_id(id: &str) -> SocketOptions {
    tweak(SocketOptions::default(), |o| {
        o.routing_id = Some(Bytes::copy_from_slice(id.as_bytes()));
    })
}

fn ipc_endpoint() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("ipc:///tmp/ferromq-reqrep-{}-{n}.sock", std::process::id())
}

/// Waits (bounded by the test timeout) until `done` holds, checking every millisecond.
async fn until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn req_rep_roundtrips_over_tcp_and_ipc() {
    bounded(async {
        for endpoint in ["tcp://127.0.0.1:0".to_string(), ipc_endpoint()] {
            let rep = Rep::new();
            let bound = rep.bind(endpoint.as_str()).unwrap();
            let req = Req::new();
            req.connect(&bound).unwrap();
            for i in 0..100u32 {
                let request = msg(&["part", &i.to_string()]);
                req.send(request.clone()).await.unwrap();
                assert_eq!(rep.recv().await.unwrap(), request);
                rep.send(msg(&["re", &i.to_string()])).await.unwrap();
                assert_eq!(req.recv().await.unwrap(), msg(&["re", &i.to_string()]));
            }
        }
    })
    .await;
}

#[tokio::test]
async fn req_wrong_calls_are_typed_errors_not_hangs() {
    bounded(async {
        let rep = Rep::new();
        let req = Req::new();
        req.connect(rep.bind("tcp://127.0.0.1:0").unwrap()).unwrap();
        assert!(matches!(req.recv().await, Err(Error::WrongState { .. })));
        req.send("first").await.unwrap();
        let refused = req.send("second").await.unwrap_err();
        assert!(matches!(refused.error, Error::WrongState { .. }));
        assert_eq!(refused.message, Message::from("second"));
        assert!(matches!(
            req.try_send("third").unwrap_err().error,
            Error::WrongState { .. }
        ));
        assert_eq!(rep.recv().await.unwrap(), Message::from("first"));
        rep.send("reply").await.unwrap();
        assert_eq!(req.recv().await.unwrap(), Message::from("reply"));
        assert!(matches!(req.try_recv(), Err(Error::WrongState { .. })));
    })
    .await;
}

#[tokio::test]
async fn rep_wrong_calls_are_typed_errors() {
    bounded(async {
        let rep = Rep::new();
        let req = Req::new();
        req.connect(rep.bind("tcp://127.0.0.1:0").unwrap()).unwrap();
        let refused = rep.send("unasked").await.unwrap_err();
        assert!(matches!(refused.error, Error::WrongState { .. }));
        assert_eq!(refused.message, Message::from("unasked"));
        req.send("q").await.unwrap();
        rep.recv().await.unwrap();
        assert!(matches!(rep.recv().await, Err(Error::WrongState { .. })));
        assert!(matches!(rep.try_recv(), Err(Error::WrongState { .. })));
        rep.send("a").await.unwrap();
        assert!(matches!(
            rep.send("again").await.unwrap_err().error,
            Error::WrongState { .. }
        ));
    })
    .await;
}

#[tokio::test]
async fn req_recv_timeout_fires_and_keeps_strict_state() {
    bounded(async {
        let rep = Rep::new();
        let options = tweak(SocketOptions::default(), |o| {
            o.recv_timeout = Some(Duration::from_millis(50));
        });
        let req = Req::with_options(options).unwrap();
        req.connect(rep.bind("tcp://127.0.0.1:0").unwrap()).unwrap();
        req.send("never answered").await.unwrap();
        assert!(matches!(req.recv().await, Err(Error::Timeout(_))));
        // Still waiting for that reply: strict REQ refuses a new request.
        assert!(matches!(
            req.send("x").await.unwrap_err().error,
            Error::WrongState { .. }
        ));
        // The reply, when it comes, is still taken.
        rep.recv().await.unwrap();
        rep.send("late but valid").await.unwrap();
        assert_eq!(req.recv().await.unwrap(), Message::from("late but valid"));
    })
    .await;
}

#[tokio::test]
async fn req_round_robins_requests_over_reps() {
    bounded(async {
        let reps = [Rep::new(), Rep::new()];
        let req = Req::new();
        for rep in &reps {
            req.connect(rep.bind("tcp://127.0.0.1:0").unwrap()).unwrap();
        }
        until(|| req.peer_count() == 2).await;
        let mut served = [0; 2];
        for i in 0..6 {
            req.send(i.to_string()).await.unwrap();
            // Exactly one REP has it; find which.
            let which = loop {
                if let Some(w) = reps.iter().position(|r| r.try_recv().is_ok()) {
                    break w;
                }
                tokio::task::yield_now().await;
            };
            served[which] += 1;
            reps[which].send("ok").await.unwrap();
            req.recv().await.unwrap();
        }
        assert_eq!(served, [3, 3]);
    })
    .await;
}

#[tokio::test]
async fn rep_routes_replies_to_the_right_requester() {
    bounded(async {
        let rep = Rep::new();
        let endpoint = rep.bind("tcp://127.0.0.1:0").unwrap();
        let clients: Vec<Req> = (0..5).map(|_| Req::new()).collect();
        for c in &clients {
            c.connect(&endpoint).unwrap();
        }
        let server = async {
            for _ in 0..5 * 10 {
                let request = rep.recv().await.unwrap();
                let mut reply = request.clone();
                reply.push_front("re");
                rep.send(reply).await.unwrap();
            }
        };
        let requesters =
            futures::future::join_all(clients.iter().enumerate().map(|(i, c)| async move {
                for j in 0..10 {
                    let body = format!("client {i} request {j}");
                    c.send(body.clone()).await.unwrap();
                    assert_eq!(c.recv().await.unwrap(), msg(&["re", &body]));
                }
            }));
        tokio::join!(server, requesters);
    })
    .await;
}

#[tokio::test]
async fn rep_keeps_multi_hop_envelope_and_drops_requests_without_delimiter() {
    bounded(async {
        let rep = Rep::new();
        let dealer = Dealer::new();
        dealer
            .connect(rep.bind("tcp://127.0.0.1:0").unwrap())
            .unwrap();
        dealer.send("no delimiter").await.unwrap();
        dealer.send(msg(&["only-envelope", ""])).await.unwrap();
        dealer
            .send(msg(&["hop1", "hop2", "", "body", "", "tail"]))
            .await
            .unwrap();
        assert_eq!(rep.recv().await.unwrap(), msg(&["body", "", "tail"]));
        rep.send("reply").await.unwrap();
        assert_eq!(
            dealer.recv().await.unwrap(),
            msg(&["hop1", "hop2", "", "reply"])
        );
    })
    .await;
}

#[tokio::test]
async fn req_drops_malformed_and_foreign_replies() {
    bounded(async {
        let router = Router::new();
        let req = Req::with_options(with_id("me")).unwrap();
        req.connect(router.bind("tcp://127.0.0.1:0").unwrap())
            .unwrap();
        req.send("q").await.unwrap();
        assert_eq!(router.recv().await.unwrap(), msg(&["me", "", "q"]));
        router.send(msg(&["me", "no delimiter"])).await.unwrap();
        router.send(msg(&["me", ""])).await.unwrap();
        router.send(msg(&["me", "", "the reply"])).await.unwrap();
        router
            .send(msg(&["me", "", "a second reply"]))
            .await
            .unwrap();
        assert_eq!(req.recv().await.unwrap(), Message::from("the reply"));
        // The extra reply is discarded when the next request goes out.
        req.send("q2").await.unwrap();
        assert_eq!(router.recv().await.unwrap(), msg(&["me", "", "q2"]));
        router.send(msg(&["me", "", "reply 2"])).await.unwrap();
        assert_eq!(req.recv().await.unwrap(), Message::from("reply 2"));
    })
    .await;
}

#[tokio::test]
async fn req_correlate_tags_requests_and_drops_stale_replies() {
    bounded(async {
        let router = Router::new();
        let options = tweak(with_id("c"), |o| {
            o.req_relaxed = true;
            o.req_correlate = true;
        });
        let req = Req::with_options(options).unwrap();
        req.connect(router.bind("tcp://127.0.0.1:0").unwrap())
            .unwrap();
        req.send("first").await.unwrap();
        let first = router.recv().await.unwrap();
        assert_eq!(first.len(), 4);
        assert_eq!(first.frames()[0], "c");
        assert_eq!(first.frames()[1].len(), 4);
        assert!(first.frames()[2].is_empty());
        // Relaxed: a new request without waiting for the first reply.
        req.send("second").await.unwrap();
        let second = router.recv().await.unwrap();
        assert_ne!(first.frames()[1], second.frames()[1]);
        let reply = |request: &Message, body: &str| -> Message {
            let mut r = request.clone();
            r.pop_back();
            r.push_back(Bytes::copy_from_slice(body.as_bytes()));
            r
        };
        router.send(reply(&first, "late reply")).await.unwrap();
        router.send(msg(&["c", "", "untagged"])).await.unwrap();
        router.send(reply(&second, "current reply")).await.unwrap();
        assert_eq!(req.recv().await.unwrap(), Message::from("current reply"));
    })
    .await;
}

#[tokio::test]
async fn req_relaxed_resends_to_another_peer_and_ignores_the_first() {
    bounded(async {
        let options = tweak(SocketOptions::default(), |o| {
            o.req_relaxed = true;
        });
        let req = Req::with_options(options).unwrap();
        let routers = [Router::new(), Router::new()];
        for r in &routers {
            req.connect(r.bind("tcp://127.0.0.1:0").unwrap()).unwrap();
        }
        until(|| req.peer_count() == 2).await;
        req.send("a").await.unwrap();
        req.send("b").await.unwrap();
        let mut requests = Vec::new();
        for r in &routers {
            requests.push(r.recv().await.unwrap());
        }
        // Whichever router got "a" answers late; only the answer to "b" is taken.
        let (old, new) = if requests[0].last().unwrap() == "a" {
            (0, 1)
        } else {
            (1, 0)
        };
        let mut late = requests[old].clone();
        late.pop_back();
        late.push_back("reply to a");
        routers[old].send(late).await.unwrap();
        let mut current = requests[new].clone();
        current.pop_back();
        current.push_back("reply to b");
        routers[new].send(current).await.unwrap();
        assert_eq!(req.recv().await.unwrap(), Message::from("reply to b"));
    })
    .await;
}

#[tokio::test]
async fn dealer_round_robins_out_and_fair_queues_in() {
    bounded(async {
        let dealer = Dealer::new();
        let reps = [Rep::new(), Rep::new()];
        for r in &reps {
            dealer
                .connect(r.bind("tcp://127.0.0.1:0").unwrap())
                .unwrap();
        }
        until(|| dealer.peer_count() == 2).await;
        dealer.send(msg(&["", "one"])).await.unwrap();
        dealer.send(msg(&["", "two"])).await.unwrap();
        let mut got = Vec::new();
        for r in &reps {
            let request = r.recv().await.unwrap();
            r.send(request.clone()).await.unwrap();
            got.push(request);
        }
        got.sort_by(|a, b| a.frames().cmp(b.frames()));
        assert_eq!(got, vec![Message::from("one"), Message::from("two")]);
        let mut replies = vec![dealer.recv().await.unwrap(), dealer.recv().await.unwrap()];
        replies.sort_by(|a, b| a.frames().cmp(b.frames()));
        assert_eq!(replies, vec![msg(&["", "one"]), msg(&["", "two"])]);
    })
    .await;
}

/// RFC 37: only a ROUTER reads the identity a peer announces; every other receiver delivers
/// the message exactly as sent, with no routing-id frame added.
#[tokio::test]
async fn identity_is_ignored_by_every_receiver_but_router() {
    bounded(async {
        let sent = msg(&["a", "b"]);
        // Binds `receiver`, connects `sender` (which announces an identity), sends one message.
        macro_rules! arrives_unchanged {
            ($receiver:expr, $sender:expr) => {{
                let (receiver, sender) = ($receiver, $sender.unwrap());
                sender
                    .connect(receiver.bind("tcp://127.0.0.1:0").unwrap())
                    .unwrap();
                sender.send(sent.clone()).await.unwrap();
                assert_eq!(receiver.recv().await.unwrap(), sent);
            }};
        }
        arrives_unchanged!(Pull::new(), Push::with_options(with_id("pusher")));
        arrives_unchanged!(Pair::new(), Pair::with_options(with_id("pair")));
        arrives_unchanged!(Dealer::new(), Dealer::with_options(with_id("dealer")));
        // REP strips only the envelope the REQ put there; the identity adds nothing to it.
        arrives_unchanged!(Rep::new(), Req::with_options(with_id("requester")));
    })
    .await;
}

#[tokio::test]
async fn router_generates_libzmq_style_ids_and_routes_by_them() {
    bounded(async {
        let router = Router::new();
        let endpoint = router.bind("tcp://127.0.0.1:0").unwrap();
        let dealers = [Dealer::new(), Dealer::new()];
        for (i, d) in dealers.iter().enumerate() {
            d.connect(&endpoint).unwrap();
            d.send(format!("hello from {i}")).await.unwrap();
        }
        let mut ids = Vec::new();
        for _ in 0..2 {
            let m = router.recv().await.unwrap();
            let id = m.frames()[0].clone();
            assert_eq!(id.len(), 5);
            assert_eq!(id[0], 0);
            ids.push((id, m.frames()[1].clone()));
        }
        assert_ne!(ids[0].0, ids[1].0);
        for (id, body) in &ids {
            let mut reply = Message::new();
            reply.push_back(id.clone());
            reply.push_back(body.clone());
            router.send(reply).await.unwrap();
        }
        for (i, d) in dealers.iter().enumerate() {
            assert_eq!(
                d.recv().await.unwrap(),
                Message::from(format!("hello from {i}"))
            );
        }
    })
    .await;
}

#[tokio::test]
async fn router_unroutable_is_dropped_or_returned_with_mandatory() {
    bounded(async {
        let quiet = Router::new();
        quiet.send(msg(&["nobody", "x"])).await.unwrap();
        let options = tweak(SocketOptions::default(), |o| {
            o.router_mandatory = true;
        });
        let strict = Router::with_options(options).unwrap();
        let err = strict.send(msg(&["nobody", "x"])).await.unwrap_err();
        assert!(matches!(&err.error, Error::HostUnreachable(id) if id == "nobody"));
        assert_eq!(err.message, msg(&["nobody", "x"]));
        let err = strict.send(msg(&["only-an-id"])).await.unwrap_err();
        assert!(matches!(err.error, Error::MalformedMessage(_)));
        assert_eq!(err.message, msg(&["only-an-id"]));
    })
    .await;
}

#[tokio::test]
async fn router_refuses_duplicate_identity_without_handover() {
    bounded(async {
        let router = Router::new();
        let endpoint = router.bind("tcp://127.0.0.1:0").unwrap();
        let first = Dealer::with_options(with_id("dup")).unwrap();
        first.connect(&endpoint).unwrap();
        first.send("from first").await.unwrap();
        assert_eq!(router.recv().await.unwrap(), msg(&["dup", "from first"]));
        let second = Dealer::with_options(tweak(with_id("dup"), |o| {
            o.reconnect_ivl = None;
        }))
        .unwrap();
        second.connect(&endpoint).unwrap();
        // The send completes once the second dealer's handshake did; the ROUTER then closes
        // that connection without delivering anything from it.
        second.send("from second").await.unwrap();
        until(|| second.peer_count() == 0).await;
        first.send("first again").await.unwrap();
        assert_eq!(router.recv().await.unwrap(), msg(&["dup", "first again"]));
        router.send(msg(&["dup", "to first"])).await.unwrap();
        assert_eq!(first.recv().await.unwrap(), Message::from("to first"));
        assert_eq!(router.peer_count(), 1);
    })
    .await;
}

#[tokio::test]
async fn router_handover_moves_identity_to_new_connection() {
    bounded(async {
        let router = Router::with_options(tweak(SocketOptions::default(), |o| {
            o.router_handover = true;
        }))
        .unwrap();
        let endpoint = router.bind("tcp://127.0.0.1:0").unwrap();
        let old = Dealer::with_options(with_id("h")).unwrap();
        old.connect(&endpoint).unwrap();
        old.send("old").await.unwrap();
        assert_eq!(router.recv().await.unwrap(), msg(&["h", "old"]));
        let new = Dealer::with_options(with_id("h")).unwrap();
        new.connect(&endpoint).unwrap();
        new.send("new").await.unwrap();
        assert_eq!(router.recv().await.unwrap(), msg(&["h", "new"]));
        router.send(msg(&["h", "to new"])).await.unwrap();
        assert_eq!(new.recv().await.unwrap(), Message::from("to new"));
    })
    .await;
}
