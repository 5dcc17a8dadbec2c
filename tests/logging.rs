//! Logs name their socket: every event of a socket's tasks sits in the spans
//! `socket{kind, id} > bind{endpoint} | connect{endpoint} > peer{address}`, so two sockets of
//! one process can be told apart, and nothing is logged per message.

use ferromq::{Pull, Push};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::timeout;
use tracing_subscriber::fmt::MakeWriter;

const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Everything the subscriber writes, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// The lines that mention `needle`.
fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|line| line.contains(needle)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sockets_log_their_kind_id_endpoint_and_peer_and_nothing_per_message() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_env_filter("ferromq=debug")
        .with_ansi(false)
        .finish();
    // This binary's only test: the global subscriber is ours alone.
    tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");

    const MESSAGES: usize = 100;
    let endpoints = timeout(TEST_TIMEOUT, async {
        let mut endpoints = Vec::new();
        for _ in 0..2 {
            let pull = Pull::new();
            let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
            let push = Push::new();
            push.connect(&endpoint).unwrap();
            for i in 0..MESSAGES {
                push.send(i.to_string()).await.unwrap();
            }
            for _ in 0..MESSAGES {
                pull.recv().await.unwrap();
            }
            push.close().await;
            pull.close().await;
            endpoints.push(endpoint.to_string());
        }
        endpoints
    })
    .await
    .expect("the sockets finish");

    let log = captured.text();
    let mut pull_ids = Vec::new();
    for endpoint in &endpoints {
        // The listener's events: socket{kind=PULL id=N}:bind{endpoint=...}.
        let bind = format!(":bind{{endpoint={endpoint}}}");
        let listening = lines_with(&log, &bind);
        assert!(
            listening.iter().any(|l| l.contains("listening")),
            "no listening event for {endpoint}:\n{log}"
        );
        let accepted: Vec<&str> = listening
            .iter()
            .copied()
            .filter(|l| l.contains(":peer{address=tcp://127.0.0.1:") && l.contains("accepted"))
            .collect();
        assert_eq!(
            accepted.len(),
            1,
            "one accepted peer for {endpoint}:\n{log}"
        );
        let line = accepted[0];
        let id = line
            .split("socket{kind=PULL id=")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .unwrap_or_else(|| panic!("no socket span on {line:?}"));
        pull_ids.push(id.to_owned());
        // The handshake completes in the same spans, on both sides.
        assert!(
            listening.iter().any(|l| l.contains("handshake complete")),
            "no handshake event under the PULL's bind span:\n{log}"
        );
        let connected: Vec<&str> = lines_with(&log, &format!(":connect{{endpoint={endpoint}}}"))
            .into_iter()
            .filter(|l| l.contains("socket{kind=PUSH id=") && l.contains("connected"))
            .collect();
        assert_eq!(
            connected.len(),
            1,
            "one connected event for {endpoint}:\n{log}"
        );
    }
    assert_ne!(pull_ids[0], pull_ids[1], "two sockets, one id:\n{log}");
    // Nothing per message: 200 messages moved, far fewer lines were written.
    assert!(
        log.lines().count() < MESSAGES,
        "{} lines for {} messages:\n{log}",
        log.lines().count(),
        2 * MESSAGES
    );
}
