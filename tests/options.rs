//! Options: built outside the crate with `SocketOptions::builder()`, changed on live sockets,
//! and the options added for issue #15 (spec/sockets.md §11).

use ferromq::monitor::{Monitor, MonitorEvent};
use ferromq::{Error, Push, SocketOptions};
use futures::StreamExt;
use std::time::Duration;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(20);

#[allow(dead_code)]
/// The next event, failing the test if none comes in time.
async fn next(monitor: &mut Monitor) -> MonitorEvent {
    timeout(TEST_TIMEOUT, monitor.next())
        .await
        .expect("timed out waiting for a monitor event")
        .expect("the monitor ended")
}

#[allow(dead_code)]
/// Skips events until one named `name` arrives.
async fn until(monitor: &mut Monitor, name: &str) -> MonitorEvent {
    loop {
        let event = next(monitor).await;
        if event.kind.name() == name {
            return event;
        }
    }
}

#[tokio::test]
async fn builder_makes_options_outside_the_crate_and_sockets_use_them() {
    let options = SocketOptions::builder()
        .sndhwm(7)
        .rcvhwm(0)
        .linger(Duration::ZERO)
        .send_timeout(Duration::from_millis(50))
        .recv_timeout(None)
        .reconnect_ivl(Duration::from_millis(20))
        .routing_id("client-7")
        .max_msg_size(Some(1 << 20))
        .build()
        .unwrap();
    assert_eq!(options.sndhwm, 7);
    assert_eq!(options.rcvhwm, 0);
    assert_eq!(options.linger, Some(Duration::ZERO));
    assert_eq!(options.routing_id.as_deref(), Some(&b"client-7"[..]));
    assert_eq!(options.max_msg_size, Some(1 << 20));
    // Everything not set keeps libzmq's default.
    let defaults = SocketOptions::default();
    assert_eq!(options.heartbeat_ivl, defaults.heartbeat_ivl);
    assert_eq!(options.backlog, defaults.backlog);

    // Starting from existing options keeps them.
    let again = ferromq::SocketOptionsBuilder::from(options.clone())
        .build()
        .unwrap();
    assert_eq!(again, options);

    let push = Push::with_options(options).unwrap();
    assert_eq!(push.options().sndhwm, 7);
    // No peer, 50 ms send timeout: the option is in force.
    let error = timeout(TEST_TIMEOUT, push.send("x"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(error.error, Error::Timeout(_)), "{error:?}");
}

#[test]
fn builder_refuses_bad_values_naming_the_option() {
    let refused = |built: ferromq::Result<SocketOptions>| match built {
        Err(Error::InvalidOption { option, .. }) => option,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refused(
            SocketOptions::builder()
                .reconnect_ivl(Duration::ZERO)
                .build()
        ),
        "reconnect_ivl"
    );
    assert_eq!(
        refused(SocketOptions::builder().routing_id(vec![0u8, 1]).build()),
        "routing_id"
    );
    assert_eq!(
        refused(SocketOptions::builder().backlog(0).build()),
        "backlog"
    );
}
