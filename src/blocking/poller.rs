//! [`Poller`]: wait on several blocking sockets at once, as `zmq_poll` does.

use super::runtime;
use crate::engine::PollState;
use crate::error::Result;
use std::future::{Future, poll_fn};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// What to wait for on a socket registered with a [`Poller`]: `zmq_poll`'s `ZMQ_POLLIN` and
/// `ZMQ_POLLOUT`. Combine with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest {
    readable: bool,
    writable: bool,
}

impl Interest {
    /// A `recv` would not wait (`ZMQ_POLLIN`).
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// A `send` would not wait (`ZMQ_POLLOUT`).
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Either.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };

    /// Whether readability is asked for.
    pub fn is_readable(self) -> bool {
        self.readable
    }

    /// Whether writability is asked for.
    pub fn is_writable(self) -> bool {
        self.writable
    }
}

impl std::ops::BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        Interest {
            readable: self.readable || other.readable,
            writable: self.writable || other.writable,
        }
    }
}

/// One registered socket found ready by [`Poller::poll`] (`zmq_poll`'s `revents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    /// The socket's index: what [`Poller::add`] returned for it (the order of registration).
    pub index: usize,
    /// A `recv` would not wait: a message is queued (or the socket is closed and `recv`
    /// returns [`Error::Closed`](crate::Error::Closed) at once). Only if asked for.
    pub readable: bool,
    /// A `send` would not wait: a peer has room (or the socket is closed). Only if asked for.
    pub writable: bool,
}

/// A blocking socket a [`Poller`] can wait on: every type in [`crate::blocking`]. Sealed.
pub trait Pollable: sealed::Readiness {}

pub(crate) mod sealed {
    use super::*;

    /// One registration's waker key (see [`crate::engine::PollState`]).
    #[derive(Debug, Default)]
    pub struct Wait(pub(crate) PollState);

    /// The readiness checks of the async socket inside a blocking one.
    pub trait Readiness {
        /// Which of readable and writable, among those asked for, hold now; `Pending` with
        /// the waker registered under `wait` otherwise.
        fn poll_readiness(
            &self,
            wait: &mut Wait,
            cx: &mut Context<'_>,
            interest: Interest,
        ) -> Poll<(bool, bool)>;

        /// Forgets the wakers registered under `wait`.
        fn forget_readiness(&self, wait: &mut Wait);
    }
}

/// One registered socket.
struct Item<'a> {
    socket: &'a dyn Pollable,
    interest: Interest,
    wait: sealed::Wait,
}

/// Waits until at least one of several blocking sockets can receive (readable) or send
/// (writable) without waiting, or a timeout passes: libzmq's `zmq_poll` for ferromq sockets.
///
/// Register sockets with [`add`](Poller::add), then call [`poll`](Poller::poll) as often as
/// needed; it returns the ready sockets by index and consumes nothing, so the caller then
/// `recv`s (or `send`s) on them. The poller borrows the sockets, which stay usable meanwhile.
///
/// * A socket is readable when a `recv` would return at once with a message: something is
///   queued that this socket's `recv` would return (a SUB only counts messages matching a
///   current subscription, a REQ only the awaited reply, a REP only a request when it may
///   receive; messages `recv` would discard are discarded by `poll` too).
/// * A socket is writable when a `send` would not wait: a peer has room (PUSH, DEALER, PAIR,
///   REQ when it may send), always for PUB, XPUB, XSUB and ROUTER (without
///   `router_mandatory`), and for REP only while it owes a reply.
/// * A closed socket is ready for what it was registered for: the call returns
///   [`Error::Closed`](crate::Error::Closed) at once.
///
/// `poll` waits inside the shared runtime, so the rules of [`crate::blocking`] apply:
/// `poll(Some(Duration::ZERO))` never waits and works anywhere, any other timeout fails with
/// [`Error::BlockingInRuntime`](crate::Error::BlockingInRuntime) on a current-thread
/// runtime's thread.
///
/// ```
/// use ferromq::blocking::{Interest, Poller, Pull, Push};
/// use std::time::Duration;
///
/// # fn main() -> ferromq::Result<()> {
/// let (tasks, control) = (Pull::new(), Pull::new());
/// let tasks_in = Push::new();
/// tasks_in.connect(tasks.bind("tcp://127.0.0.1:0")?)?;
/// control.bind("tcp://127.0.0.1:0")?;
///
/// let mut poller = Poller::new();
/// let t = poller.add(&tasks, Interest::READABLE);
/// let c = poller.add(&control, Interest::READABLE);
///
/// tasks_in.send("work")?;
/// let ready = poller.poll(Some(Duration::from_secs(10)))?;
/// assert_eq!(ready.len(), 1);
/// assert_eq!((ready[0].index, ready[0].readable), (t, true));
/// assert_eq!(tasks.recv()?.frames()[0], "work");
///
/// // Nothing more: a poll with a timeout returns no events once it has passed.
/// assert!(poller.poll(Some(Duration::from_millis(10)))?.is_empty());
/// # let _ = c;
/// # Ok(())
/// # }
/// ```
pub struct Poller<'a> {
    items: Vec<Item<'a>>,
}

impl std::fmt::Debug for Poller<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field(
                "interests",
                &self.items.iter().map(|i| i.interest).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Poller<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Poller<'a> {
    /// A poller with no sockets.
    pub fn new() -> Self {
        Poller { items: Vec::new() }
    }

    /// Registers `socket` for `interest`; returns its index (0, 1, … in order of
    /// registration), which the [`Event`]s of [`Poller::poll`] name it by. A socket may be
    /// registered more than once.
    pub fn add(&mut self, socket: &'a dyn Pollable, interest: Interest) -> usize {
        self.items.push(Item {
            socket,
            interest,
            wait: sealed::Wait::default(),
        });
        self.items.len() - 1
    }

    /// Registered sockets.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no socket is registered.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Waits until at least one registered socket is ready for what it was registered for,
    /// or `timeout` passes (`None`: no limit; `Some(Duration::ZERO)`: check once and return).
    /// Returns the ready sockets in index order, or no events on timeout. Takes and sends
    /// nothing.
    ///
    /// With no socket registered it waits for the timeout (forever for `None`), as
    /// `zmq_poll` with no items does.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<Vec<Event>> {
        if timeout == Some(Duration::ZERO) {
            let mut cx = Context::from_waker(Waker::noop());
            let mut events = Vec::new();
            self.check(&mut cx, &mut events);
            self.forget();
            return Ok(events);
        }
        let waiter = runtime::waiter()?;
        let events = waiter.block_on(async {
            let mut sleep = timeout.map(|t| Box::pin(tokio::time::sleep(t)));
            poll_fn(|cx| {
                let mut events = Vec::new();
                self.check(cx, &mut events);
                if !events.is_empty() {
                    return Poll::Ready(events);
                }
                match sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => Poll::Ready(events),
                    _ => Poll::Pending,
                }
            })
            .await
        });
        self.forget();
        Ok(events)
    }

    /// One check of every socket, parking `cx`'s waker on those not ready.
    fn check(&mut self, cx: &mut Context<'_>, events: &mut Vec<Event>) {
        for (index, item) in self.items.iter_mut().enumerate() {
            let ready = item
                .socket
                .poll_readiness(&mut item.wait, cx, item.interest);
            if let Poll::Ready((readable, writable)) = ready {
                events.push(Event {
                    index,
                    readable,
                    writable,
                });
            }
        }
    }

    /// Forgets every waker the last poll left parked.
    fn forget(&mut self) {
        for item in &mut self.items {
            item.socket.forget_readiness(&mut item.wait);
        }
    }
}

impl Drop for Poller<'_> {
    fn drop(&mut self) {
        self.forget();
    }
}
