//! The Guide patterns in `examples/` run here as tests: each example file is compiled into
//! this test as a module, so the test drives exactly the code the example runs.

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
