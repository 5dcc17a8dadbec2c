//! Socket monitors: a stream of what happens to a socket's endpoints and connections, with
//! libzmq's `zmq_socket_monitor` events.
//!
//! [`Socket::monitor`](crate::Socket::monitor) hands out a [`Monitor`], a
//! [`futures::Stream`] of [`MonitorEvent`]s. Each event names the endpoint it concerns (as
//! bound, with its real port, or as given to connect) and, for connection events, the peer's
//! address. A socket may have several monitors; each receives every event from its creation
//! on. A monitor holds at most [`MONITOR_QUEUE_EVENTS`] unread events: past that, new events
//! are counted in [`Monitor::missed`] instead of queued, so a monitor nobody reads costs a
//! bounded amount of memory. The stream ends after [`MonitorEventKind::MonitorStopped`], which
//! the socket sends when it closes.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ferromq::Result<()> {
//! use ferromq::monitor::MonitorEventKind;
//! use ferromq::{Pull, Push, Socket};
//! use futures::StreamExt;
//!
//! let pull = Pull::new();
//! let mut events = pull.monitor();
//! let endpoint = pull.bind("tcp://127.0.0.1:0")?;
//! let push = Push::new();
//! push.connect(&endpoint)?;
//!
//! let listening = events.next().await.unwrap();
//! assert_eq!(listening.kind, MonitorEventKind::Listening);
//! assert_eq!(listening.endpoint, Some(endpoint));
//! let accepted = events.next().await.unwrap();
//! assert_eq!(accepted.kind, MonitorEventKind::Accepted);
//! println!("{accepted}"); // accepted tcp://127.0.0.1:… 127.0.0.1:…
//! # Ok(())
//! # }
//! ```

use crate::endpoint::Endpoint;
use crate::wire::ProtocolError;
use futures::Stream;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Unread events one monitor keeps. Connection events come a few per connection, so this
/// holds a reconnect storm of a few hundred peers; at about 150 bytes an event it bounds an
/// unread monitor at roughly 150 KiB.
pub const MONITOR_QUEUE_EVENTS: usize = 1024;

/// What happened, as libzmq's `ZMQ_EVENT_*` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorEventKind {
    /// A bind succeeded: the endpoint listens.
    Listening,
    /// A bind failed.
    BindFailed {
        /// Why, as the operating system said.
        error: String,
    },
    /// A connection was accepted on a bound endpoint.
    Accepted,
    /// Accepting a connection failed (usually too many open files); the listener retries.
    AcceptFailed {
        /// Why, as the operating system said.
        error: String,
    },
    /// A connect attempt reached the peer.
    Connected,
    /// A TCP connect attempt started. libzmq reports one per attempt (its non-blocking
    /// connect returns `EINPROGRESS`), and so does ferromq, before `connected` or `closed`.
    ConnectDelayed,
    /// A connect attempt failed or a connection ended; the next attempt starts after
    /// `interval`.
    ConnectRetried {
        /// The reconnect interval before the next attempt, jitter included.
        interval: Duration,
    },
    /// A listening socket was closed (unbind or close), or a failed connect attempt's socket.
    Closed,
    /// A connection ended from the peer's side or through a fault (not by this socket's own
    /// close, unbind or disconnect).
    Disconnected,
    /// The ZMTP handshake (greeting, security mechanism, READY) completed: the peer is
    /// routable.
    HandshakeSucceeded,
    /// The handshake failed without a protocol fault: the peer closed, the connection broke or
    /// the handshake interval passed.
    HandshakeFailedNoDetail {
        /// What ended it.
        error: String,
    },
    /// The peer broke the protocol during the handshake.
    HandshakeFailedProtocol {
        /// The fault.
        fault: ProtocolError,
    },
    /// Authentication failed: our authenticator refused the peer, or the peer refused our
    /// credentials.
    HandshakeFailedAuth {
        /// The ZAP status code (300, 400 or 500).
        status: u16,
    },
    /// The monitor stopped because the socket closed; the last event of every monitor.
    MonitorStopped,
}

impl MonitorEventKind {
    /// libzmq's event name in lower case without its `ZMQ_EVENT_` prefix: `accepted`,
    /// `handshake_failed_protocol`, ….
    pub fn name(&self) -> &'static str {
        match self {
            MonitorEventKind::Listening => "listening",
            MonitorEventKind::BindFailed { .. } => "bind_failed",
            MonitorEventKind::Accepted => "accepted",
            MonitorEventKind::AcceptFailed { .. } => "accept_failed",
            MonitorEventKind::Connected => "connected",
            MonitorEventKind::ConnectDelayed => "connect_delayed",
            MonitorEventKind::ConnectRetried { .. } => "connect_retried",
            MonitorEventKind::Closed => "closed",
            MonitorEventKind::Disconnected => "disconnected",
            MonitorEventKind::HandshakeSucceeded => "handshake_succeeded",
            MonitorEventKind::HandshakeFailedNoDetail { .. } => "handshake_failed_no_detail",
            MonitorEventKind::HandshakeFailedProtocol { .. } => "handshake_failed_protocol",
            MonitorEventKind::HandshakeFailedAuth { .. } => "handshake_failed_auth",
            MonitorEventKind::MonitorStopped => "monitor_stopped",
        }
    }

    /// The event's value, when it has one: the error, the fault, the status code, or the
    /// reconnect interval in milliseconds.
    pub fn detail(&self) -> Option<String> {
        match self {
            MonitorEventKind::BindFailed { error }
            | MonitorEventKind::AcceptFailed { error }
            | MonitorEventKind::HandshakeFailedNoDetail { error } => Some(error.clone()),
            MonitorEventKind::ConnectRetried { interval } => {
                Some(format!("{}ms", interval.as_millis()))
            }
            MonitorEventKind::HandshakeFailedProtocol { fault } => Some(fault.to_string()),
            MonitorEventKind::HandshakeFailedAuth { status } => Some(status.to_string()),
            _ => None,
        }
    }
}

/// One monitor event: what happened, on which endpoint, with which peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MonitorEvent {
    /// What happened.
    pub kind: MonitorEventKind,
    /// The endpoint: as bound (with the port the system chose) for listeners and accepted
    /// connections, as given to `connect` for connected ones; `None` only for
    /// [`MonitorEventKind::MonitorStopped`].
    pub endpoint: Option<Endpoint>,
    /// The peer's address (`ip:port`) for events of one TCP connection; `None` for endpoint
    /// events and IPC connections.
    pub peer: Option<String>,
}

impl fmt::Display for MonitorEvent {
    /// `<event> <endpoint> [<peer address>] [<detail>]`, as the CLI's `--events` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        if let Some(endpoint) = &self.endpoint {
            write!(f, " {endpoint}")?;
        }
        if let Some(peer) = &self.peer {
            write!(f, " {peer}")?;
        }
        if let Some(detail) = self.kind.detail() {
            write!(f, " {detail}")?;
        }
        Ok(())
    }
}

/// A stream of a socket's [`MonitorEvent`]s; see the [module docs](self).
///
/// Dropping it stops its events; the socket is unaffected.
#[derive(Debug)]
pub struct Monitor {
    queue: Arc<Mutex<Queue>>,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<MonitorEvent>,
    missed: u64,
    stopped: bool,
    waker: Option<Waker>,
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Monitor {
    /// Events dropped so far because this monitor held [`MONITOR_QUEUE_EVENTS`] unread ones.
    pub fn missed(&self) -> u64 {
        lock(&self.queue).missed
    }

    /// The next event if one is queued, without waiting (`None` also once the stream ended).
    pub fn try_next(&mut self) -> Option<MonitorEvent> {
        lock(&self.queue).events.pop_front()
    }
}

impl Stream for Monitor {
    type Item = MonitorEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<MonitorEvent>> {
        let mut queue = lock(&self.queue);
        if let Some(event) = queue.events.pop_front() {
            return Poll::Ready(Some(event));
        }
        if queue.stopped {
            return Poll::Ready(None);
        }
        match &queue.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => queue.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// The monitors of one socket, for the engine to emit to. Holds them weakly: a dropped
/// [`Monitor`] leaves the list at the next event.
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    list: Mutex<Vec<Weak<Mutex<Queue>>>>,
}

impl Monitors {
    /// A new monitor of this socket; if the socket has `stopped` (closed), one that yields
    /// only [`MonitorEventKind::MonitorStopped`].
    pub fn add(&self, stopped: bool) -> Monitor {
        let queue = Arc::new(Mutex::new(Queue::default()));
        match stopped {
            true => push(&queue, STOPPED, true),
            false => self.lock().push(Arc::downgrade(&queue)),
        }
        Monitor { queue }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Weak<Mutex<Queue>>>> {
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends an event to every live monitor.
    pub fn emit(&self, kind: MonitorEventKind, endpoint: &Endpoint, peer: Option<&str>) {
        let mut list = self.lock();
        if list.is_empty() {
            return;
        }
        let event = MonitorEvent {
            kind,
            endpoint: Some(endpoint.clone()),
            peer: peer.map(str::to_owned),
        };
        list.retain(|weak| match weak.upgrade() {
            Some(queue) => {
                push(&queue, event.clone(), false);
                true
            }
            None => false,
        });
    }

    /// Sends [`MonitorEventKind::MonitorStopped`] to every monitor and forgets them all.
    pub fn stop(&self) {
        for weak in std::mem::take(&mut *self.lock()) {
            if let Some(queue) = weak.upgrade() {
                push(&queue, STOPPED, true);
            }
        }
    }
}

const STOPPED: MonitorEvent = MonitorEvent {
    kind: MonitorEventKind::MonitorStopped,
    endpoint: None,
    peer: None,
};

/// Queues `event` unless the queue is full (then counts it as missed); `last` always queues
/// (the one event past the bound is the stream's end) and ends the stream after it.
fn push(queue: &Mutex<Queue>, event: MonitorEvent, last: bool) {
    let mut queue = lock(queue);
    if queue.stopped {
        return;
    }
    if last || queue.events.len() < MONITOR_QUEUE_EVENTS {
        queue.events.push_back(event);
    } else {
        queue.missed += 1;
    }
    queue.stopped = last;
    if let Some(waker) = queue.waker.take() {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn endpoint() -> Endpoint {
        "tcp://127.0.0.1:5555".parse().unwrap()
    }

    #[test]
    fn an_unread_monitor_keeps_a_bounded_queue_and_counts_what_it_missed() {
        let monitors = Monitors::default();
        let mut monitor = monitors.add(false);
        for _ in 0..MONITOR_QUEUE_EVENTS + 10 {
            monitors.emit(MonitorEventKind::Accepted, &endpoint(), Some("127.0.0.1:1"));
        }
        assert_eq!(monitor.missed(), 10);
        monitors.stop();
        let events: Vec<_> = futures::executor::block_on(monitor.by_ref().collect());
        assert_eq!(events.len(), MONITOR_QUEUE_EVENTS + 1);
        assert_eq!(
            events.last().unwrap().kind,
            MonitorEventKind::MonitorStopped
        );
    }

    #[test]
    fn every_monitor_gets_every_event_and_a_dropped_one_leaves_the_list() {
        let monitors = Monitors::default();
        let mut a = monitors.add(false);
        let mut b = monitors.add(false);
        let c = monitors.add(false);
        drop(c);
        monitors.emit(MonitorEventKind::Listening, &endpoint(), None);
        assert_eq!(monitors.lock().len(), 2);
        assert_eq!(a.try_next().unwrap().kind, MonitorEventKind::Listening);
        assert_eq!(b.try_next().unwrap().kind, MonitorEventKind::Listening);
    }

    #[test]
    fn a_monitor_of_a_stopped_socket_yields_only_monitor_stopped() {
        let monitors = Monitors::default();
        let monitor = monitors.add(true);
        let events: Vec<_> = futures::executor::block_on(monitor.collect());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, MonitorEventKind::MonitorStopped);
    }

    #[test]
    fn events_print_name_endpoint_peer_and_detail() {
        let event = MonitorEvent {
            kind: MonitorEventKind::ConnectRetried {
                interval: Duration::from_millis(150),
            },
            endpoint: Some(endpoint()),
            peer: None,
        };
        assert_eq!(
            event.to_string(),
            "connect_retried tcp://127.0.0.1:5555 150ms"
        );
        let event = MonitorEvent {
            kind: MonitorEventKind::HandshakeFailedAuth { status: 400 },
            endpoint: Some(endpoint()),
            peer: Some("127.0.0.1:40312".into()),
        };
        assert_eq!(
            event.to_string(),
            "handshake_failed_auth tcp://127.0.0.1:5555 127.0.0.1:40312 400"
        );
    }
}
