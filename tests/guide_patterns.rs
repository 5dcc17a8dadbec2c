//! The Guide patterns in `examples/` run here as tests: each example file is compiled into
//! this test as a module, so the test drives exactly the code the example runs.

// Some examples include another's file for what they share, as standalone programs must
// (the Pirates take lazy_pirate.rs's reliable request, rtdealer takes rtreq.rs's broker);
// compiled together here, those files are loaded more than once, which is harmless.
#![allow(clippy::duplicate_mod)]

use std::collections::HashSet;
use std::time::Duration;
use tokio::time::timeout;

#[allow(dead_code)]
#[path = "../examples/rr_broker.rs"]
mod rr_broker;

#[allow(dead_code)]
#[path = "../examples/lb_broker.rs"]
mod lb_broker;

#[allow(dead_code)]
#[path = "../examples/lazy_pirate.rs"]
mod lazy_pirate;

#[allow(dead_code)]
#[path = "../examples/weather.rs"]
mod weather;

#[allow(dead_code)]
#[path = "../examples/taskvent.rs"]
mod taskvent;

#[allow(dead_code)]
#[path = "../examples/rrclient.rs"]
mod rrclient;

#[allow(dead_code)]
#[path = "../examples/msgqueue.rs"]
mod msgqueue;

#[allow(dead_code)]
#[path = "../examples/psenv.rs"]
mod psenv;

#[allow(dead_code)]
#[path = "../examples/syncpub.rs"]
mod syncpub;

#[allow(dead_code)]
#[path = "../examples/rtreq.rs"]
mod rtreq;

#[allow(dead_code)]
#[path = "../examples/rtdealer.rs"]
mod rtdealer;

#[allow(dead_code)]
#[path = "../examples/asyncsrv.rs"]
mod asyncsrv;

#[allow(dead_code)]
#[path = "../examples/simple_pirate.rs"]
mod simple_pirate;

#[allow(dead_code)]
#[path = "../examples/paranoid_pirate.rs"]
mod paranoid_pirate;

#[allow(dead_code)]
#[path = "../examples/identity.rs"]
mod identity;

#[allow(dead_code)]
#[path = "../examples/mtrelay.rs"]
mod mtrelay;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn rr_broker_routes_every_reply_to_its_client() {
    let results = timeout(TEST_TIMEOUT, rr_broker::run(3, 2, 5))
        .await
        .expect("timed out")
        .expect("run");
    assert_eq!(results.len(), 3);
    let mut workers = HashSet::new();
    for (client, replies) in results {
        assert_eq!(replies.len(), 5);
        for (i, reply) in replies.iter().enumerate() {
            assert_eq!(reply.len(), 2, "request and worker line");
            assert_eq!(reply.frames()[0], format!("{client} request {i}"));
            workers.insert(reply.frames()[1].clone());
        }
    }
    assert!(workers.iter().all(|w| w.starts_with(b"served by worker-")));
}

#[tokio::test]
async fn lb_broker_sends_each_request_to_an_idle_worker_and_back() {
    let results = timeout(TEST_TIMEOUT, lb_broker::run(4, 2, 5))
        .await
        .expect("timed out")
        .expect("run");
    assert_eq!(results.len(), 4);
    for (client, replies) in results {
        assert_eq!(replies.len(), 5);
        for (i, reply) in replies.iter().enumerate() {
            let text = String::from_utf8_lossy(reply);
            let prefix = format!("{client} request {i} handled by worker-");
            assert!(text.starts_with(&prefix), "{text}");
        }
    }
}

#[tokio::test]
async fn lazy_pirate_client_survives_a_server_that_drops_requests() {
    let report = timeout(TEST_TIMEOUT, lazy_pirate::run(7, 3, false))
        .await
        .expect("timed out")
        .expect("run");
    assert_eq!(report.replies, 7);
    // The server dropped requests (the 3rd and 6th it saw at least), and each drop cost the
    // client at least one retry.
    assert!(report.dropped >= 2, "{report:?}");
    assert!(report.retries >= report.dropped, "{report:?}");
}

/// Runs a blocking demo on its own thread and fails the test if it takes over
/// [`TEST_TIMEOUT`].
fn run_blocking<T: Send + 'static>(demo: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(demo()));
    result.recv_timeout(TEST_TIMEOUT).expect("timed out")
}

#[test]
fn weather_client_receives_only_its_zip_code() {
    let updates = run_blocking(|| weather::demo(20)).expect("demo");
    assert_eq!(updates.len(), 20);
    assert!(
        updates.iter().all(|u| u.starts_with("10001 ")),
        "{updates:?}"
    );
}

#[tokio::test]
async fn taskvent_pipeline_does_each_task_exactly_once_then_kills_the_workers() {
    let batch = timeout(TEST_TIMEOUT, taskvent::demo(3, 30, 5))
        .await
        .expect("timed out")
        .expect("demo");
    assert_eq!(batch.done_by.len(), 30);
    for number in 0..30 {
        assert_eq!(batch.done_by[&number].len(), 1, "task {number}: {batch:?}");
    }
    // Every worker was killed at the end, and their own counts add up.
    assert_eq!(batch.per_worker.len(), 3);
    assert_eq!(batch.per_worker.iter().sum::<usize>(), 30, "{batch:?}");
}

#[tokio::test]
async fn rrclient_gets_a_world_for_every_hello_through_the_broker() {
    let replies = timeout(TEST_TIMEOUT, rrclient::demo(3, 4))
        .await
        .expect("timed out")
        .expect("demo");
    assert_eq!(replies, vec![vec!["World".to_owned(); 4]; 3]);
}

#[tokio::test]
async fn msgqueue_returns_each_reply_to_the_client_that_asked() {
    let replies = timeout(TEST_TIMEOUT, msgqueue::demo(3, 5))
        .await
        .expect("timed out")
        .expect("demo");
    assert_eq!(replies.len(), 3);
    for (c, replies) in replies.iter().enumerate() {
        assert_eq!(replies.len(), 5);
        for (i, reply) in replies.iter().enumerate() {
            assert!(
                reply.starts_with(&format!("client-{c}/{i} by worker-")),
                "{reply}"
            );
        }
    }
}

#[tokio::test]
async fn psenv_subscriber_gets_only_its_key_with_the_data_frame() {
    let updates = timeout(TEST_TIMEOUT, psenv::demo(6))
        .await
        .expect("timed out")
        .expect("demo");
    let expected: Vec<(String, String)> = (0..6)
        .map(|i| ("B".to_owned(), format!("We would like to see this ({i})")))
        .collect();
    assert_eq!(updates, expected);
}

#[test]
fn syncpub_publishes_only_once_every_subscriber_is_there() {
    let received = run_blocking(|| syncpub::demo(3, 2_000)).expect("demo");
    // Started after every subscriber had synced and subscribed: none misses an update.
    assert_eq!(received, vec![2_000; 3]);
}

#[tokio::test]
async fn rtreq_hands_out_every_task_once_and_fires_every_worker() {
    let done = timeout(TEST_TIMEOUT, rtreq::demo(4, 40))
        .await
        .expect("timed out")
        .expect("demo");
    assert_eq!(done.len(), 4, "every worker was fired");
    assert_eq!(done.iter().sum::<usize>(), 40, "{done:?}");
}

#[tokio::test]
async fn rtdealer_workers_write_the_delimiter_and_get_every_task_once() {
    let done = timeout(TEST_TIMEOUT, rtdealer::demo(4, 40))
        .await
        .expect("timed out")
        .expect("demo");
    assert_eq!(done.len(), 4, "every worker was fired");
    assert_eq!(done.iter().sum::<usize>(), 40, "{done:?}");
}

#[tokio::test]
async fn asyncsrv_clients_get_all_their_replies_and_only_theirs() {
    let replies = timeout(TEST_TIMEOUT, asyncsrv::demo(3, 8))
        .await
        .expect("timed out")
        .expect("demo");
    assert_eq!(replies.len(), 3);
    for (c, replies) in replies.into_iter().enumerate() {
        let mut replies = replies;
        replies.sort();
        let mut expected: Vec<String> = (0..8)
            .flat_map(|n| {
                (0..asyncsrv::replies_for(n))
                    .map(move |k| format!("reply {k} to request #{n} from client-{c}"))
            })
            .collect();
        expected.sort();
        assert_eq!(replies, expected);
    }
}

/// `requests` requests per client, each answered once and in order.
fn pirate_replies(clients: usize, requests: usize) -> Vec<Vec<String>> {
    (0..clients)
        .map(|c| (1..=requests).map(|n| format!("client-{c} {n}")).collect())
        .collect()
}

#[tokio::test]
async fn simple_pirate_clients_get_every_reply_despite_a_worker_crash() {
    let report = timeout(TEST_TIMEOUT, simple_pirate::demo(2, 10, 3))
        .await
        .expect("timed out")
        .expect("demo");
    assert_eq!(report.replies, pirate_replies(2, 10));
    // The crashed worker took a request with it: its client had to resend.
    assert!(report.retries >= 1, "{report:?}");
}

#[tokio::test]
async fn paranoid_pirate_workers_reconnect_to_a_restarted_queue() {
    let report = timeout(TEST_TIMEOUT, paranoid_pirate::demo(2, 3, 10, 5))
        .await
        .expect("timed out")
        .expect("demo");
    assert_eq!(report.replies, pirate_replies(2, 10));
    assert_eq!(report.first_queue.forwarded, 5, "{report:?}");
    // The request in flight when the queue died was lost and resent; the new queue knew no
    // worker until one, hearing no heartbeats, reconnected and said READY.
    assert!(report.retries >= 1, "{report:?}");
    assert!(report.reconnects >= 1, "{report:?}");
}

#[tokio::test]
async fn identity_router_sees_generated_and_chosen_routing_ids() {
    let (anonymous, identified) = timeout(TEST_TIMEOUT, identity::demo())
        .await
        .expect("timed out")
        .expect("demo");
    let generated = &anonymous.frames()[0];
    assert_eq!(generated.len(), 5, "{anonymous:?}");
    assert_eq!(generated[0], 0, "libzmq's form: a zero byte, then four");
    assert_eq!(
        &anonymous.frames()[1..],
        ["", "ROUTER uses a generated 5 byte identity"]
    );
    assert_eq!(
        identified.frames(),
        ["PEER2", "", "ROUTER uses REQ's socket identity"]
    );
}

#[test]
fn mtrelay_signal_passes_down_the_pair_chain() {
    assert_eq!(run_blocking(mtrelay::demo).expect("demo"), "READY");
}
