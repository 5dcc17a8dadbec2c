//! examples/metrics.rs runs here as a test, as tests/guide_patterns.rs runs the Guide
//! examples: the example file is compiled into this test as a module, so `cargo test` drives
//! exactly the code `cargo run --example metrics` runs — sockets, traffic, the HTTP server,
//! a scrape over real HTTP and the example's own check of it.

use std::time::Duration;
use tokio::time::timeout;

#[allow(dead_code)]
#[path = "../examples/metrics.rs"]
mod metrics;

const TEST_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn metrics_example_serves_per_socket_and_per_peer_series_and_the_histogram() {
    let scrape = timeout(
        TEST_TIMEOUT,
        metrics::self_test("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .expect("timed out")
    .expect("self test");
    let checked = metrics::check(&scrape)
        .unwrap_or_else(|missing| panic!("the scrape lacks {missing}\n--- scrape ---\n{scrape}"));
    assert!(checked > 0);
    // Queue length against its HWM, exactly: the sink leaves the backlog unread.
    let backlog = format!(" {}", metrics::PIPELINE_BACKLOG);
    assert!(
        scrape.lines().any(
            |l| l.starts_with("ferromq_peer_queued_in_messages{socket=\"sink\"")
                && l.ends_with(&backlog)
        ),
        "{scrape}"
    );
}

#[test]
fn check_names_what_a_scrape_lacks() {
    let missing = metrics::check("# EOF\n").unwrap_err();
    assert!(
        missing.contains("ferromq_req_round_trip_seconds_count"),
        "{missing}"
    );
    assert!(metrics::check("no end marker").is_err());
}
