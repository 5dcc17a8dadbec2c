//! `--events` and `--stats`: a socket's monitor events and stats snapshots, one line each on
//! stderr (spec/cli.md, "Watching a socket").

use ferromq::Socket;
use ferromq::stats::{PeerStats, SocketStats};
use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;

/// A socket with the tasks that watch it.
pub struct Observed<S> {
    socket: Arc<S>,
    /// Prints monitor events until the monitor stops.
    events: Option<JoinHandle<()>>,
    /// Prints a stats line every interval, until aborted.
    stats: Option<JoinHandle<()>>,
    /// The `"socket"` key of the stats lines (the proxy's role names), if any.
    label: Option<&'static str>,
}

impl<S: Socket> Observed<S> {
    /// Starts watching `socket` as asked (nothing when both are off). Call before bind and
    /// connect, so no event is missed.
    pub fn new(
        socket: S,
        events: bool,
        stats_every: Option<Duration>,
        label: Option<&'static str>,
    ) -> Self {
        let socket = Arc::new(socket);
        let events = events.then(|| {
            let mut monitor = socket.monitor();
            tokio::spawn(async move {
                use futures::StreamExt;
                while let Some(event) = monitor.next().await {
                    eprint_line(&event.to_string());
                }
            })
        });
        let stats = stats_every.map(|every| {
            let watched = Arc::downgrade(&socket);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                // The first tick is immediate: the first line comes after one interval.
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    let Some(socket) = watched.upgrade() else {
                        return;
                    };
                    eprint_line(&stats_json(&socket.stats(), label));
                }
            })
        });
        Observed {
            socket,
            events,
            stats,
            label,
        }
    }

    /// Prints the last stats line (while the peers are still there), closes the socket (when
    /// `close`; a failed run exits without waiting for linger), then prints the events up to
    /// `monitor_stopped`.
    pub async fn finish(self, close: bool) {
        if let Some(stats) = self.stats {
            stats.abort();
            eprint_line(&stats_json(&self.socket.stats(), self.label));
        }
        if close {
            Socket::close(&*self.socket).await;
        }
        if let Some(events) = self.events {
            if close {
                // The monitor ends with monitor_stopped, which close sent.
                let _ = events.await;
            } else {
                events.abort();
            }
        }
    }
}

impl<S> Deref for Observed<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.socket
    }
}

/// One line on stderr, written whole (lines of concurrent tasks do not interleave).
fn eprint_line(line: &str) {
    let mut stderr = std::io::stderr().lock();
    // Nothing useful can be done if stderr is gone.
    let _ = writeln!(stderr, "{line}");
}

/// A stats snapshot as one JSON object: the socket's totals and a `peers` array with each
/// peer's counters (spec/cli.md lists the keys).
pub fn stats_json(stats: &SocketStats, label: Option<&str>) -> String {
    let mut out = String::from("{");
    if let Some(label) = label {
        field(&mut out, "socket", &json_string(label));
    }
    field(
        &mut out,
        "socket_type",
        &json_string(stats.socket_type.as_str()),
    );
    field(&mut out, "messages_in", &stats.messages_in.to_string());
    field(&mut out, "messages_out", &stats.messages_out.to_string());
    field(&mut out, "bytes_in", &stats.bytes_in.to_string());
    field(&mut out, "bytes_out", &stats.bytes_out.to_string());
    field(&mut out, "dropped", &stats.dropped.to_string());
    field(&mut out, "queued_in", &stats.queued_in.to_string());
    let peers: Vec<String> = stats.peers.iter().map(peer_json).collect();
    field(&mut out, "peers", &format!("[{}]", peers.join(",")));
    out.push('}');
    out
}

fn peer_json(peer: &PeerStats) -> String {
    let mut out = String::from("{");
    field(
        &mut out,
        "endpoint",
        &json_string(&peer.endpoint.to_string()),
    );
    let address = peer.address.as_deref().map_or("null".into(), json_string);
    field(&mut out, "address", &address);
    let routing_id = peer.routing_id.as_ref().map_or("null".into(), |id| {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        json_string(&format!("0x{hex}"))
    });
    field(&mut out, "routing_id", &routing_id);
    field(
        &mut out,
        "socket_type",
        &json_string(peer.socket_type.as_str()),
    );
    field(&mut out, "messages_in", &peer.messages_in.to_string());
    field(&mut out, "messages_out", &peer.messages_out.to_string());
    field(&mut out, "bytes_in", &peer.bytes_in.to_string());
    field(&mut out, "bytes_out", &peer.bytes_out.to_string());
    field(&mut out, "dropped", &peer.dropped.to_string());
    field(&mut out, "queued_in", &peer.queued_in.to_string());
    field(&mut out, "rcvhwm", &peer.rcvhwm.to_string());
    field(&mut out, "queued_out", &peer.queued_out.to_string());
    field(&mut out, "sndhwm", &peer.sndhwm.to_string());
    field(&mut out, "reconnects", &peer.reconnects.to_string());
    let since = peer
        .connected_since
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    field(
        &mut out,
        "connected_since_ms",
        &since.as_millis().to_string(),
    );
    let rtt = peer
        .heartbeat_rtt
        .map_or("null".into(), |rtt| rtt.as_micros().to_string());
    field(&mut out, "heartbeat_rtt_us", &rtt);
    out.push('}');
    out
}

/// Appends `"key":value` to an object being written, with a comma after the first.
fn field(out: &mut String, key: &str, value: &str) {
    if !out.ends_with('{') {
        out.push(',');
    }
    let _ = write!(out, "\"{key}\":{value}");
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_control_characters() {
        assert_eq!(json_string("a\"b\\c\nd"), r#""a\"b\\c\u000ad""#);
    }
}
