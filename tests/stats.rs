//! Socket statistics: per-peer and total counters, queue depths against the HWMs, drops per
//! subscriber, reconnects, connection time and heartbeat round trips, from real traffic.

mod common;

use bytes::Bytes;
use common::until_event;
use ferromq::stats::SocketStats;
use ferromq::{Dealer, Error, Pub, Pull, Push, Router, SocketOptions, Sub};
use std::time::{Duration, SystemTime};
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How often [`stats_until`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(2);

/// Takes snapshots until `done` holds for one (counters move with background tasks, so a
/// test waits for the state it expects), failing after the test timeout.
async fn stats_until(
    stats: impl Fn() -> SocketStats,
    done: impl Fn(&SocketStats) -> bool,
) -> SocketStats {
    timeout(TEST_TIMEOUT, async {
        loop {
            let snapshot = stats();
            if done(&snapshot) {
                return snapshot;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; last snapshot: {:#?}", stats()))
}

#[tokio::test]
async fn messages_and_bytes_are_counted_per_peer_and_in_total_both_ways() {
    let pull = Pull::new();
    let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
    let (a, b) = (Push::new(), Push::new());
    a.connect(&endpoint).unwrap();
    b.connect(&endpoint).unwrap();
    for text in ["one", "two", "three"] {
        a.send(text).await.unwrap();
    }
    b.send(vec![Bytes::from("multi"), Bytes::from("part")])
        .await
        .unwrap();
    for _ in 0..4 {
        timeout(TEST_TIMEOUT, pull.recv()).await.unwrap().unwrap();
    }

    let stats = pull.stats();
    assert_eq!((stats.messages_in, stats.bytes_in), (4, 11 + 9));
    assert_eq!((stats.messages_out, stats.bytes_out), (0, 0));
    let mut per_peer: Vec<_> = stats
        .peers
        .iter()
        .map(|p| (p.messages_in, p.bytes_in))
        .collect();
    per_peer.sort();
    assert_eq!(
        per_peer,
        [(1, 9), (3, 11)],
        "a multipart message counts once"
    );
    let sent = a.stats();
    assert_eq!((sent.messages_out, sent.bytes_out), (3, 11));
    assert_eq!(sent.peers.len(), 1);
    assert_eq!(sent.peers[0].endpoint, endpoint);
    assert_eq!(
        sent.peers[0].address.as_deref(),
        Some(&endpoint.to_string()["tcp://".len()..])
    );
}

#[tokio::test]
async fn totals_keep_the_traffic_of_peers_that_left() {
    let pull = Pull::new();
    let mut monitor = pull.monitor();
    let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = Push::new();
    push.connect(&endpoint).unwrap();
    push.send("bye").await.unwrap();
    timeout(TEST_TIMEOUT, pull.recv()).await.unwrap().unwrap();
    timeout(TEST_TIMEOUT, push.close()).await.unwrap();
    until_event(&mut monitor, "disconnected").await;
    let stats = stats_until(|| pull.stats(), |s| s.peers.is_empty()).await;
    assert_eq!((stats.messages_in, stats.bytes_in), (1, 3));
}

#[tokio::test]
async fn queue_depths_are_reported_against_their_hwms() {
    let mut options = SocketOptions::default();
    options.rcvhwm = 8;
    let pull = Pull::with_options(options).unwrap();
    let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = Push::new();
    push.connect(&endpoint).unwrap();
    for _ in 0..5 {
        push.send("unread").await.unwrap();
    }
    let stats = stats_until(|| pull.stats(), |s| s.queued_in == 5).await;
    assert_eq!((stats.peers[0].queued_in, stats.peers[0].rcvhwm), (5, 8));

    // A peer that stops reading: its queue fills to the send HWM.
    let mut options = SocketOptions::default();
    options.sndhwm = 10;
    let push = Push::with_options(options).unwrap();
    let mut monitor = push.monitor();
    let stuck = Pull::new();
    push.connect(stuck.bind("tcp://127.0.0.1:0").unwrap())
        .unwrap();
    until_event(&mut monitor, "handshake_succeeded").await;
    let big = Bytes::from(vec![7u8; 64 * 1024]);
    loop {
        match push.try_send(big.clone()) {
            Ok(()) => {}
            Err(e) if matches!(e.error, Error::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let peer = &push.stats().peers[0];
    assert_eq!((peer.queued_out, peer.sndhwm), (10, 10));
}

#[tokio::test]
async fn a_publisher_counts_drops_per_subscriber_and_every_message_is_queued_or_dropped() {
    const MESSAGES: u64 = 300;
    let mut options = SocketOptions::default();
    options.sndhwm = 4;
    let publisher = Pub::with_options(options).unwrap();
    let endpoint = publisher.bind("tcp://127.0.0.1:0").unwrap();
    // Two subscribers that never read: each fills, then drops.
    let subscribers: Vec<Sub> = (0..2).map(|_| Sub::new()).collect();
    for sub in &subscribers {
        sub.subscribe("");
        sub.connect(&endpoint).unwrap();
    }
    stats_until(|| publisher.stats(), |_| publisher.subscriber_count() == 2).await;
    let big = Bytes::from(vec![1u8; 64 * 1024]);
    for _ in 0..MESSAGES {
        publisher.send(big.clone()).await.unwrap();
    }

    let stats = publisher.stats();
    assert_eq!(stats.peers.len(), 2);
    for peer in &stats.peers {
        assert_eq!(peer.messages_out + peer.dropped, MESSAGES, "{peer:#?}");
        assert!(peer.dropped > 0, "{peer:#?}");
    }
    let per_peer: u64 = stats.peers.iter().map(|p| p.dropped).sum();
    assert_eq!(stats.dropped, per_peer);
    assert_eq!(stats.dropped, publisher.dropped_messages());
}

#[tokio::test]
async fn a_reconnected_peer_counts_its_reconnects_and_the_time_it_connected() {
    let first = Pull::new();
    let endpoint = first.bind("tcp://127.0.0.1:0").unwrap();
    let mut options = SocketOptions::default();
    options.reconnect_ivl = Some(Duration::from_millis(20));
    let push = Push::with_options(options).unwrap();
    let mut monitor = push.monitor();
    push.connect(&endpoint).unwrap();
    until_event(&mut monitor, "handshake_succeeded").await;
    assert_eq!(push.stats().peers[0].reconnects, 0);

    timeout(TEST_TIMEOUT, first.close()).await.unwrap();
    until_event(&mut monitor, "disconnected").await;
    let before = SystemTime::now();
    let second = Pull::new();
    second.bind(&endpoint).unwrap();
    until_event(&mut monitor, "handshake_succeeded").await;
    let peer = &push.stats().peers[0];
    assert_eq!(peer.reconnects, 1);
    assert!(peer.connected_since >= before && peer.connected_since <= SystemTime::now());
}

#[tokio::test]
async fn heartbeats_report_their_round_trip() {
    let mut options = SocketOptions::default();
    options.heartbeat_ivl = Some(Duration::from_millis(10));
    let push = Push::with_options(options).unwrap();
    let pull = Pull::new();
    push.connect(pull.bind("tcp://127.0.0.1:0").unwrap())
        .unwrap();
    let stats = stats_until(
        || push.stats(),
        |s| s.peers.first().is_some_and(|p| p.heartbeat_rtt.is_some()),
    )
    .await;
    assert!(stats.peers[0].heartbeat_rtt.unwrap() < TEST_TIMEOUT);
    assert_eq!(
        pull.stats().peers[0].heartbeat_rtt,
        None,
        "no heartbeats of its own"
    );
}

#[tokio::test]
async fn a_router_names_each_peer_by_its_routing_id() {
    let router = Router::new();
    let endpoint = router.bind("tcp://127.0.0.1:0").unwrap();
    let mut options = SocketOptions::default();
    options.routing_id = Some(Bytes::from("alpha"));
    let dealer = Dealer::with_options(options).unwrap();
    dealer.connect(&endpoint).unwrap();
    dealer.send("hi").await.unwrap();
    timeout(TEST_TIMEOUT, router.recv()).await.unwrap().unwrap();
    let stats = router.stats();
    assert_eq!(stats.peers[0].routing_id, Some(Bytes::from("alpha")));
    assert_eq!(stats.peers[0].socket_type, ferromq::SocketType::Dealer);
}
