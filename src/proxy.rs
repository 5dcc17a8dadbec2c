//! The built-in proxy: libzmq's `zmq_proxy` and `zmq_proxy_steerable`.
//!
//! [`proxy()`] moves messages between a frontend and a backend socket in both directions until
//! one of them fails or closes, optionally sending a copy of every message to a capture
//! socket. [`proxy_steerable`] adds a control socket that takes libzmq's commands (`PAUSE`,
//! `RESUME`, `TERMINATE`, `STATISTICS`); [`Steering`] does the same from inside the process,
//! without a socket.
//!
//! Which sockets may be passed is checked by the compiler: the frontend must be able to
//! receive ([`RecvSocket`]) and the backend to send ([`SendSocket`]). When the frontend can
//! also send and the backend also receive (ROUTER/DEALER, XSUB/XPUB, PAIR/PAIR, …) messages
//! flow both ways; otherwise (PULL/PUSH, SUB/PUB) only from frontend to backend, as in
//! libzmq. Both traits are sealed: every ferromq socket that receives or sends implements
//! them, nothing else can.
//!
//! # How messages move
//!
//! Each direction takes up to [`MAX_BATCH_MSGS`] queued messages from its source under one
//! lock of the source socket and places as many of them as the destination has room for under
//! one lock of the destination; messages are moved, never copied, and a capture copy is a
//! reference-count increment per frame. The proxy takes more from a source only once
//! everything it took before is placed (and captured), so a destination at its high-water
//! mark stops the proxy from reading the source, and the source's peers then feel the
//! back-pressure as they would from a slow application. The most a proxy ever holds is
//! [`MAX_BATCH_MSGS`] messages per direction.
//!
//! spec/proxy.md in the repository lists what is and is not like libzmq.

use crate::engine::{PollState, State};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::wire::SocketType;
use bytes::Bytes;
use futures::task::AtomicWaker;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};

/// Most messages the proxy takes from a socket under one lock, and so the most it holds per
/// direction while the destination has no room. 256 small messages are one wake-up's worth
/// of a fast TCP peer (a 120 KiB read holds about 1,800 of 64 B) split into a few locks, and
/// hold little memory when the destination is full.
pub const MAX_BATCH_MSGS: usize = 256;

/// Batches moved in one poll before the proxy yields to the runtime, so that on a
/// current-thread runtime the connection tasks get to write what it queued.
const MAX_BATCHES_PER_POLL: usize = 16;

/// What the proxy needs of a socket, hidden from the public API (the traits are sealed).
pub(crate) mod sealed {
    use super::*;

    /// One waiting call of the proxy on one socket (a receive, a send): the key under which
    /// its wakers are registered.
    #[derive(Debug, Default)]
    pub struct Wait(pub(crate) PollState);

    /// What one lock of a socket moved.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Moved {
        pub messages: u64,
        pub bytes: u64,
        /// A receiving peer's queue is long (PUB/XPUB): the proxy should let the connection
        /// tasks run before sending more.
        pub congested: bool,
    }

    /// Every ferromq socket the proxy can use. The defaults are for a direction the socket
    /// does not have.
    pub trait Proxied: Send + Sync {
        /// The socket's type.
        fn socket_type(&self) -> SocketType;

        /// Whether [`Proxied::poll_take`] works.
        fn receives(&self) -> bool {
            false
        }

        /// Whether [`Proxied::poll_put`] works.
        fn sends(&self) -> bool {
            false
        }

        /// Moves up to `max` queued messages into `out` under one lock; `Pending` (with the
        /// waker registered) when none is queued.
        fn poll_take(
            &self,
            wait: &mut Wait,
            cx: &mut Context<'_>,
            out: &mut VecDeque<Message>,
            max: usize,
        ) -> Poll<Result<Moved>> {
            let _ = (wait, cx, out, max);
            Poll::Ready(Err(Error::WrongState {
                socket: self.socket_type(),
                reason: "this socket type cannot receive",
            }))
        }

        /// Places messages from the front of `queue` under one lock, as many as there is room
        /// for; `Pending` (with the waker registered) when none could be placed.
        fn poll_put(
            &self,
            wait: &mut Wait,
            cx: &mut Context<'_>,
            queue: &mut VecDeque<Message>,
        ) -> Poll<Result<Moved>> {
            let _ = (wait, cx, queue);
            Poll::Ready(Err(Error::WrongState {
                socket: self.socket_type(),
                reason: "this socket type cannot send",
            }))
        }

        /// Forgets the wakers `wait` registered (the proxy ended or was dropped).
        fn forget(&self, wait: &mut Wait);
    }
}

use sealed::{Moved, Proxied, Wait};

/// A socket the proxy can receive from: PULL, SUB, XSUB, XPUB (subscriptions), DEALER,
/// ROUTER, PAIR, REQ and REP. Sealed.
pub trait RecvSocket: Proxied {}

/// A socket the proxy can send to: PUSH, PUB, XPUB, XSUB (subscriptions), DEALER, ROUTER,
/// PAIR, REQ and REP. Sealed; usable as `&dyn SendSocket` (the capture socket).
pub trait SendSocket: Proxied {}

/// A reference to a proxy socket is one too, so that sockets chosen at run time can be passed
/// as `&dyn RecvSocket` and `&dyn SendSocket` (the `ferromq proxy` command does).
impl<T: Proxied + ?Sized> Proxied for &T {
    fn socket_type(&self) -> SocketType {
        (**self).socket_type()
    }

    fn receives(&self) -> bool {
        (**self).receives()
    }

    fn sends(&self) -> bool {
        (**self).sends()
    }

    fn poll_take(
        &self,
        wait: &mut Wait,
        cx: &mut Context<'_>,
        out: &mut VecDeque<Message>,
        max: usize,
    ) -> Poll<Result<Moved>> {
        (**self).poll_take(wait, cx, out, max)
    }

    fn poll_put(
        &self,
        wait: &mut Wait,
        cx: &mut Context<'_>,
        queue: &mut VecDeque<Message>,
    ) -> Poll<Result<Moved>> {
        (**self).poll_put(wait, cx, queue)
    }

    fn forget(&self, wait: &mut Wait) {
        (**self).forget(wait)
    }
}

impl<T: RecvSocket + ?Sized> RecvSocket for &T {}

impl<T: SendSocket + ?Sized> SendSocket for &T {}

/// Implements the proxy traits for a socket type from its receive and send attempts (the
/// functions its `recv` and `send` run under the lock).
macro_rules! proxied {
    (@common $ty:ident, $kind:expr) => {
        fn socket_type(&self) -> $crate::SocketType {
            $kind
        }

        fn forget(&self, wait: &mut $crate::proxy::sealed::Wait) {
            self.core.forget_poll(&mut wait.0)
        }
    };
    (@take $take:expr) => {
        fn receives(&self) -> bool {
            true
        }

        fn poll_take(
            &self,
            wait: &mut $crate::proxy::sealed::Wait,
            cx: &mut std::task::Context<'_>,
            out: &mut std::collections::VecDeque<$crate::Message>,
            max: usize,
        ) -> std::task::Poll<$crate::Result<$crate::proxy::sealed::Moved>> {
            self.core.poll_with(&mut wait.0, cx, |state, cx| {
                $crate::proxy::take_batch(state, cx, out, max, $take)
            })
        }
    };
    (@put $put:expr) => {
        fn sends(&self) -> bool {
            true
        }

        fn poll_put(
            &self,
            wait: &mut $crate::proxy::sealed::Wait,
            cx: &mut std::task::Context<'_>,
            queue: &mut std::collections::VecDeque<$crate::Message>,
        ) -> std::task::Poll<$crate::Result<$crate::proxy::sealed::Moved>> {
            self.core.poll_with(&mut wait.0, cx, |state, cx| {
                $crate::proxy::put_batch(state, cx, queue, $put)
            })
        }
    };
    ($ty:ident, $kind:expr, recv: $take:expr) => {
        impl $crate::proxy::sealed::Proxied for $ty {
            $crate::proxy::proxied!(@common $ty, $kind);
            $crate::proxy::proxied!(@take $take);
        }
        impl $crate::proxy::RecvSocket for $ty {}
    };
    ($ty:ident, $kind:expr, send: $put:expr) => {
        impl $crate::proxy::sealed::Proxied for $ty {
            $crate::proxy::proxied!(@common $ty, $kind);
            $crate::proxy::proxied!(@put $put);
        }
        impl $crate::proxy::SendSocket for $ty {}
    };
    ($ty:ident, $kind:expr, recv: $take:expr, send: $put:expr) => {
        impl $crate::proxy::sealed::Proxied for $ty {
            $crate::proxy::proxied!(@common $ty, $kind);
            $crate::proxy::proxied!(@take $take);
            $crate::proxy::proxied!(@put $put);
        }
        impl $crate::proxy::RecvSocket for $ty {}
        impl $crate::proxy::SendSocket for $ty {}
    };
}
pub(crate) use proxied;

/// What a socket's send attempt did with the message in its slot, for [`put_batch`].
pub(crate) enum Placed {
    /// Placed (or dropped by the socket's own rule, as a ROUTER drops for an unknown id).
    Yes,
    /// Placed, and some receiving peer's queue is long: stop the batch here.
    Congested,
}

/// Runs a receive attempt up to `max` times under one lock (see [`Proxied::poll_take`]).
/// An error after some messages were taken is left for the next call (a closed socket stays
/// closed), so nothing taken is lost.
pub(crate) fn take_batch<P>(
    state: &mut State<P>,
    cx: &mut Context<'_>,
    out: &mut VecDeque<Message>,
    max: usize,
    mut attempt: impl FnMut(&mut State<P>, &mut Context<'_>) -> Poll<Result<Message>>,
) -> Poll<Result<Moved>> {
    let mut moved = Moved::default();
    while (moved.messages as usize) < max {
        match attempt(state, cx) {
            Poll::Ready(Ok(message)) => {
                moved.messages += 1;
                moved.bytes += message.byte_len() as u64;
                out.push_back(message);
            }
            Poll::Ready(Err(e)) if moved.messages == 0 => return Poll::Ready(Err(e)),
            Poll::Ready(Err(_)) | Poll::Pending => break,
        }
    }
    if moved.messages == 0 {
        Poll::Pending
    } else {
        Poll::Ready(Ok(moved))
    }
}

/// Runs a send attempt for each message at the front of `queue` under one lock until one
/// must wait (see [`Proxied::poll_put`]). A message a socket refuses as malformed (a ROUTER
/// given one frame) is dropped and counted as sent, as libzmq's proxy does; any other error
/// ends the proxy, with the message still at the front of `queue`.
pub(crate) fn put_batch<P>(
    state: &mut State<P>,
    cx: &mut Context<'_>,
    queue: &mut VecDeque<Message>,
    mut attempt: impl FnMut(
        &mut State<P>,
        &mut Option<Message>,
        &mut Context<'_>,
    ) -> Poll<Result<Placed>>,
) -> Poll<Result<Moved>> {
    if state.core.is_closing() {
        return Poll::Ready(Err(Error::Closed));
    }
    let mut moved = Moved::default();
    while let Some(message) = queue.pop_front() {
        let bytes = message.byte_len() as u64;
        let mut slot = Some(message);
        match attempt(state, &mut slot, cx) {
            Poll::Ready(Ok(placed)) => {
                moved.messages += 1;
                moved.bytes += bytes;
                if let Placed::Congested = placed {
                    moved.congested = true;
                    break;
                }
            }
            Poll::Ready(Err(Error::MalformedMessage(_))) => {
                moved.messages += 1;
                moved.bytes += bytes;
            }
            Poll::Ready(Err(e)) => {
                if let Some(message) = slot {
                    queue.push_front(message);
                }
                return match moved.messages {
                    0 => Poll::Ready(Err(e)),
                    _ => Poll::Ready(Ok(moved)),
                };
            }
            Poll::Pending => {
                if let Some(message) = slot {
                    queue.push_front(message);
                }
                break;
            }
        }
    }
    if moved.messages == 0 {
        Poll::Pending
    } else {
        Poll::Ready(Ok(moved))
    }
}

/// A send attempt (`SendAttempt`) as [`put_batch`] takes it: placed or waiting.
pub(crate) fn placing<P>(
    mut attempt: impl FnMut(&mut State<P>, &mut Option<Message>, &mut Context<'_>) -> Poll<Result<()>>,
) -> impl FnMut(&mut State<P>, &mut Option<Message>, &mut Context<'_>) -> Poll<Result<Placed>> {
    move |state, slot, cx| attempt(state, slot, cx).map(|r| r.map(|()| Placed::Yes))
}

// ---------------------------------------------------------------------------------------------
// Commands and statistics

/// A command of libzmq's steerable proxy, as its control socket receives it: a single frame
/// holding the command's name in capitals.
///
/// ```
/// use ferromq::{Message, proxy::Command};
///
/// assert_eq!(Message::from(Command::Pause).frames()[0], "PAUSE");
/// assert_eq!(Command::parse(b"STATISTICS"), Some(Command::Statistics));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Stop moving messages (they wait in the sockets' queues) until `RESUME`.
    Pause,
    /// Move messages again after `PAUSE`.
    Resume,
    /// End the proxy: [`proxy_steerable`] returns `Ok(())`.
    Terminate,
    /// Reply with the [`Statistics`] (eight frames).
    Statistics,
}

impl Command {
    /// The command's name as sent on the wire.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Command::Pause => b"PAUSE",
            Command::Resume => b"RESUME",
            Command::Terminate => b"TERMINATE",
            Command::Statistics => b"STATISTICS",
        }
    }

    /// The command a frame names, if any (exact, case-sensitive, as libzmq).
    pub fn parse(frame: &[u8]) -> Option<Command> {
        [
            Command::Pause,
            Command::Resume,
            Command::Terminate,
            Command::Statistics,
        ]
        .into_iter()
        .find(|c| c.as_bytes() == frame)
    }
}

impl From<Command> for Message {
    fn from(command: Command) -> Message {
        Message::from(Bytes::from_static(command.as_bytes()))
    }
}

/// What the proxy counted for one of its two sockets. A multipart message counts once, with
/// the bytes of all its frames (libzmq 4.3.4's rule).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SocketStatistics {
    /// Messages received from this socket.
    pub messages_in: u64,
    /// Bytes of the messages received from this socket.
    pub bytes_in: u64,
    /// Messages sent to this socket.
    pub messages_out: u64,
    /// Bytes of the messages sent to this socket.
    pub bytes_out: u64,
}

/// The proxy's counters, as libzmq's `STATISTICS` command returns them.
///
/// On the wire (the reply to `STATISTICS`) they are eight frames of 8 bytes each, one
/// native-endian `u64` per frame, in this order: frontend messages in, bytes in, messages
/// out, bytes out, then the same four for the backend.
///
/// ```
/// use ferromq::proxy::{SocketStatistics, Statistics};
///
/// let statistics = Statistics {
///     frontend: SocketStatistics { messages_in: 2, bytes_in: 10, ..Default::default() },
///     backend: SocketStatistics { messages_out: 2, bytes_out: 10, ..Default::default() },
/// };
/// let reply = statistics.to_message();
/// assert_eq!(reply.len(), 8);
/// assert_eq!(reply.frames()[0][..], 2u64.to_ne_bytes());
/// assert_eq!(Statistics::from_message(&reply), Some(statistics));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Statistics {
    /// The frontend's counters.
    pub frontend: SocketStatistics,
    /// The backend's counters.
    pub backend: SocketStatistics,
}

impl Statistics {
    fn values(&self) -> [u64; 8] {
        let (f, b) = (&self.frontend, &self.backend);
        [
            f.messages_in,
            f.bytes_in,
            f.messages_out,
            f.bytes_out,
            b.messages_in,
            b.bytes_in,
            b.messages_out,
            b.bytes_out,
        ]
    }

    fn from_values(v: [u64; 8]) -> Self {
        Statistics {
            frontend: SocketStatistics {
                messages_in: v[0],
                bytes_in: v[1],
                messages_out: v[2],
                bytes_out: v[3],
            },
            backend: SocketStatistics {
                messages_in: v[4],
                bytes_in: v[5],
                messages_out: v[6],
                bytes_out: v[7],
            },
        }
    }

    /// The reply to `STATISTICS`: eight frames of native-endian `u64`.
    pub fn to_message(&self) -> Message {
        self.values()
            .into_iter()
            .map(|v| Bytes::copy_from_slice(&v.to_ne_bytes()))
            .collect()
    }

    /// Reads a reply to `STATISTICS` (from ferromq's proxy or libzmq's); `None` unless it is
    /// eight frames of eight bytes.
    pub fn from_message(message: &Message) -> Option<Self> {
        let frames = message.frames();
        if frames.len() != 8 {
            return None;
        }
        let mut values = [0u64; 8];
        for (value, frame) in values.iter_mut().zip(frames) {
            *value = u64::from_ne_bytes(frame[..].try_into().ok()?);
        }
        Some(Self::from_values(values))
    }
}

// ---------------------------------------------------------------------------------------------
// Steering

const ACTIVE: u8 = 0;
const PAUSED: u8 = 1;
const TERMINATED: u8 = 2;

/// Counter indices, in the order of [`Statistics::to_message`].
const FRONTEND_IN: usize = 0;
const FRONTEND_OUT: usize = 2;
const BACKEND_IN: usize = 4;
const BACKEND_OUT: usize = 6;

#[derive(Debug, Default)]
struct SteeringState {
    mode: AtomicU8,
    /// The running proxy's task.
    waker: AtomicWaker,
    /// Messages and bytes, in the order of [`Statistics::to_message`].
    counters: [AtomicU64; 8],
}

impl SteeringState {
    fn set(&self, mode: u8) {
        if mode == TERMINATED {
            self.mode.store(TERMINATED, Ordering::Release);
        } else {
            // Terminated is final.
            let _ = self
                .mode
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| {
                    (m != TERMINATED).then_some(mode)
                });
        }
        self.waker.wake();
    }

    fn mode(&self) -> u8 {
        self.mode.load(Ordering::Acquire)
    }

    fn count(&self, index: usize, moved: Moved) {
        self.counters[index].fetch_add(moved.messages, Ordering::Relaxed);
        self.counters[index + 1].fetch_add(moved.bytes, Ordering::Relaxed);
    }

    fn statistics(&self) -> Statistics {
        Statistics::from_values(std::array::from_fn(|i| {
            self.counters[i].load(Ordering::Relaxed)
        }))
    }

    fn apply(&self, command: Command) {
        match command {
            Command::Pause => self.set(PAUSED),
            Command::Resume => self.set(ACTIVE),
            Command::Terminate => self.set(TERMINATED),
            Command::Statistics => {}
        }
    }
}

/// Steers a proxy from inside the process: pause, resume, terminate and read its counters,
/// without a control socket. A cheap handle (clone it into the tasks that steer); one proxy
/// at a time runs with it ([`Steering::run`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Pull, Push, proxy::Steering};
///
/// let (frontend, backend) = (Pull::new(), Push::new());
/// let (producer, consumer) = (Push::new(), Pull::new());
/// producer.connect(frontend.bind("tcp://127.0.0.1:0")?)?;
/// backend.connect(consumer.bind("tcp://127.0.0.1:0")?)?;
///
/// let steering = Steering::new();
/// let run = steering.run(&frontend, &backend, None);
/// let work = async {
///     producer.send("job").await?;
///     assert_eq!(consumer.recv().await?.frames()[0], "job");
///     assert_eq!(steering.statistics().backend.messages_out, 1);
///     steering.terminate();
///     Ok::<(), ferromq::Error>(())
/// };
/// let (ran, worked) = tokio::join!(run, work);
/// ran?;
/// worked?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Steering {
    state: Arc<SteeringState>,
}

impl Steering {
    /// A handle for a proxy not yet started: active, counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the proxy moving messages; they wait in the sockets' queues (and, once those
    /// are full, in the peers'). Takes effect at the proxy's next poll.
    pub fn pause(&self) {
        self.state.set(PAUSED);
    }

    /// Moves messages again after [`Steering::pause`]. Does nothing once terminated.
    pub fn resume(&self) {
        self.state.set(ACTIVE);
    }

    /// Ends the proxy: [`Steering::run`] returns `Ok(())` at its next poll. Final.
    pub fn terminate(&self) {
        self.state.set(TERMINATED);
    }

    /// Whether the proxy is paused.
    pub fn is_paused(&self) -> bool {
        self.state.mode() == PAUSED
    }

    /// Whether [`Steering::terminate`] (or a `TERMINATE` command) was given.
    pub fn is_terminated(&self) -> bool {
        self.state.mode() == TERMINATED
    }

    /// The counters so far (what `STATISTICS` returns).
    pub fn statistics(&self) -> Statistics {
        self.state.statistics()
    }

    /// Runs a proxy steered by this handle: as [`proxy()`], but it pauses, resumes and
    /// returns `Ok(())` when told. Errors and cancellation are as for [`proxy()`].
    pub async fn run<F, B>(
        &self,
        frontend: &F,
        backend: &B,
        capture: Option<&dyn SendSocket>,
    ) -> Result<()>
    where
        F: RecvSocket,
        B: SendSocket,
    {
        run(frontend, backend, capture, None, &self.state).await
    }
}

// ---------------------------------------------------------------------------------------------
// The proxy

/// Moves messages between `frontend` and `backend` until one of them fails or is closed, and
/// returns that error (libzmq's `zmq_proxy`).
///
/// Messages go from the frontend to the backend and, when the frontend can send and the
/// backend receive, back the other way: ROUTER/DEALER (a shared queue: REQ clients on the
/// ROUTER, REP workers on the DEALER), XSUB/XPUB (a pub/sub forwarder: data down,
/// subscriptions up), PULL/PUSH (a streamer, one way), and any other pair. Multipart messages
/// stay whole. With `capture`, every message moved in either direction is also sent there
/// (a PUB, a PUSH, a PAIR, …; a reference-counted copy, not a copy of the payload); a capture
/// socket at its high-water mark holds the proxy up, as in libzmq, unless its send never
/// waits (PUB).
///
/// Back-pressure: the proxy takes messages from a socket only once what it took before is
/// placed, so a full backend stops it reading the frontend. It holds at most
/// [`MAX_BATCH_MSGS`] messages per direction.
///
/// Cancel safety: dropping the future loses the messages it had taken but not yet placed
/// (none while the destinations have room; at most [`MAX_BATCH_MSGS`] per direction when
/// they are full). To stop a proxy without loss, use [`proxy_steerable`] or [`Steering`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Dealer, Rep, Req, Router};
/// use std::convert::Infallible;
///
/// // A shared queue: clients connect to the ROUTER, workers to the DEALER.
/// let frontend = Router::new();
/// let backend = Dealer::new();
/// let clients = frontend.bind("tcp://127.0.0.1:0")?;
/// let workers = backend.bind("tcp://127.0.0.1:0")?;
///
/// let worker = Rep::new();
/// worker.connect(&workers)?;
/// let client = Req::new();
/// client.connect(&clients)?;
///
/// async fn serve(worker: &Rep) -> ferromq::Result<Infallible> {
///     loop {
///         let request = worker.recv().await?;
///         worker.send(format!("re: {}", String::from_utf8_lossy(&request.frames()[0]))).await?;
///     }
/// }
/// let ask = async {
///     client.send("hello").await?;
///     client.recv().await
/// };
/// let reply = tokio::select! {
///     Err(e) = ferromq::proxy(&frontend, &backend, None) => Err(e),
///     Err(e) = serve(&worker) => Err(e),
///     reply = ask => reply,
/// }?;
/// assert_eq!(reply.frames()[0], "re: hello");
/// # Ok(())
/// # }
/// ```
pub async fn proxy<F, B>(
    frontend: &F,
    backend: &B,
    capture: Option<&dyn SendSocket>,
) -> Result<Infallible>
where
    F: RecvSocket,
    B: SendSocket,
{
    let steering = SteeringState::default();
    run(frontend, backend, capture, None, &steering).await?;
    unreachable!("nothing terminates a proxy without steering")
}

/// [`proxy()`] steered by commands received on `control` (libzmq's `zmq_proxy_steerable`):
/// single-frame messages `PAUSE`, `RESUME`, `TERMINATE` and `STATISTICS` (see [`Command`]).
/// Returns `Ok(())` after `TERMINATE`, or the error that ended it.
///
/// `STATISTICS` is answered on `control` with the eight-frame [`Statistics`] reply, when the
/// control socket can send (a REP, PAIR, DEALER, ROUTER…; a SUB or PULL control socket only
/// takes the other commands). A REP control socket also gets an empty one-frame reply to every
/// other command, as libzmq 4.3.5 sends (4.3.4 sends none, which leaves a REP control socket
/// unable to take another command); other socket types get no reply to them. A message that
/// is not a command is ignored (libzmq 4.3.4 aborts the process).
///
/// While paused, nothing moves in either direction; messages wait in the sockets' queues and
/// nothing is lost. Cancel safety as for [`proxy()`].
pub async fn proxy_steerable<F, B, C>(
    frontend: &F,
    backend: &B,
    capture: Option<&dyn SendSocket>,
    control: &C,
) -> Result<()>
where
    F: RecvSocket,
    B: SendSocket,
    C: RecvSocket,
{
    let steering = SteeringState::default();
    run(frontend, backend, capture, Some(control), &steering).await
}

/// One waiting call of the proxy on one socket; forgets its wakers when dropped.
struct Call<'a> {
    socket: &'a dyn Proxied,
    wait: Wait,
}

impl<'a> Call<'a> {
    fn new(socket: &'a dyn Proxied) -> Self {
        Call {
            socket,
            wait: Wait::default(),
        }
    }

    fn take(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut VecDeque<Message>,
        max: usize,
    ) -> Poll<Result<Moved>> {
        self.socket.poll_take(&mut self.wait, cx, out, max)
    }

    fn put(&mut self, cx: &mut Context<'_>, queue: &mut VecDeque<Message>) -> Poll<Result<Moved>> {
        self.socket.poll_put(&mut self.wait, cx, queue)
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        self.socket.forget(&mut self.wait);
    }
}

/// Messages waiting for a socket, and the call that places them.
struct Outbox<'a> {
    call: Call<'a>,
    queue: VecDeque<Message>,
}

impl<'a> Outbox<'a> {
    fn new(socket: &'a dyn Proxied) -> Self {
        Outbox {
            call: Call::new(socket),
            queue: VecDeque::new(),
        }
    }

    /// Places what it can; `Ok(None)` when nothing was placed (or nothing waits).
    fn flush(&mut self, cx: &mut Context<'_>) -> Result<Option<Moved>> {
        if self.queue.is_empty() {
            return Ok(None);
        }
        match self.call.put(cx, &mut self.queue) {
            Poll::Ready(Ok(moved)) => Ok(Some(moved)),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(None),
        }
    }
}

/// One direction: a source, a destination, and the counters it feeds.
struct Leg<'a> {
    from: Call<'a>,
    to: Outbox<'a>,
    counted_in: usize,
    counted_out: usize,
}

/// What one turn of the loop did.
#[derive(Default)]
struct Progress {
    moved: bool,
    congested: bool,
}

impl Leg<'_> {
    /// Places what the leg holds, then, once everything is placed and captured, takes the
    /// next batch and places it.
    fn pump(
        &mut self,
        cx: &mut Context<'_>,
        capture: &mut Option<Outbox<'_>>,
        steering: &SteeringState,
        progress: &mut Progress,
    ) -> Result<()> {
        self.flush(cx, steering, progress)?;
        let captured = capture.as_ref().is_none_or(|c| c.queue.is_empty());
        if !self.to.queue.is_empty() || !captured {
            return Ok(());
        }
        let before = self.to.queue.len();
        match self.from.take(cx, &mut self.to.queue, MAX_BATCH_MSGS) {
            Poll::Ready(Ok(moved)) => {
                steering.count(self.counted_in, moved);
                progress.moved = true;
                if let Some(capture) = capture {
                    capture
                        .queue
                        .extend(self.to.queue.iter().skip(before).cloned());
                }
            }
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok(()),
        }
        self.flush(cx, steering, progress)
    }

    fn flush(
        &mut self,
        cx: &mut Context<'_>,
        steering: &SteeringState,
        progress: &mut Progress,
    ) -> Result<()> {
        if let Some(moved) = self.to.flush(cx)? {
            steering.count(self.counted_out, moved);
            progress.moved = true;
            progress.congested |= moved.congested;
        }
        Ok(())
    }
}

/// The control socket: the command being answered, if any.
struct Control<'a> {
    take: Call<'a>,
    reply: Outbox<'a>,
    received: VecDeque<Message>,
    is_rep: bool,
    sends: bool,
}

impl Control<'_> {
    fn pump(
        &mut self,
        cx: &mut Context<'_>,
        steering: &SteeringState,
        progress: &mut Progress,
    ) -> Result<()> {
        if self.reply.flush(cx)?.is_some() {
            progress.moved = true;
        }
        if !self.reply.queue.is_empty() {
            return Ok(());
        }
        match self.take.take(cx, &mut self.received, 1) {
            Poll::Ready(Ok(_)) => progress.moved = true,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok(()),
        }
        let Some(message) = self.received.pop_front() else {
            return Ok(());
        };
        let command = match message.frames() {
            [frame] => Command::parse(frame),
            _ => None,
        };
        match command {
            Some(Command::Statistics) if self.sends => {
                self.reply
                    .queue
                    .push_back(steering.statistics().to_message());
            }
            Some(command) => {
                steering.apply(command);
                if self.is_rep {
                    self.reply.queue.push_back(Message::from(Bytes::new()));
                }
            }
            None => {
                tracing::warn!(
                    frames = message.len(),
                    "proxy: ignored a control message that is not a command"
                );
                if self.is_rep {
                    self.reply.queue.push_back(Message::from(Bytes::new()));
                }
            }
        }
        self.reply.flush(cx)?;
        Ok(())
    }
}

/// The proxy loop shared by every entry point.
async fn run(
    frontend: &dyn Proxied,
    backend: &dyn Proxied,
    capture: Option<&dyn SendSocket>,
    control: Option<&dyn Proxied>,
    steering: &SteeringState,
) -> Result<()> {
    let same = std::ptr::addr_eq(frontend, backend);
    let mut forward = Leg {
        from: Call::new(frontend),
        to: Outbox::new(backend),
        counted_in: FRONTEND_IN,
        counted_out: BACKEND_OUT,
    };
    let mut backward = (!same && frontend.sends() && backend.receives()).then(|| Leg {
        from: Call::new(backend),
        to: Outbox::new(frontend),
        counted_in: BACKEND_IN,
        counted_out: FRONTEND_OUT,
    });
    let mut capture = capture.map(|c| Outbox::new(c as &dyn Proxied));
    let mut control = control.map(|c| Control {
        take: Call::new(c),
        reply: Outbox::new(c),
        received: VecDeque::new(),
        is_rep: c.socket_type() == SocketType::Rep,
        sends: c.sends(),
    });
    poll_fn(|cx| {
        steering.waker.register(cx.waker());
        for _ in 0..MAX_BATCHES_PER_POLL {
            let mut progress = Progress::default();
            if let Some(control) = &mut control {
                control.pump(cx, steering, &mut progress)?;
            }
            match steering.mode() {
                TERMINATED => {
                    // Places what the legs still hold if there is room; what does not fit
                    // now is dropped with the proxy (see `proxy`'s cancel safety).
                    let mut last = Progress::default();
                    forward.flush(cx, steering, &mut last)?;
                    if let Some(backward) = &mut backward {
                        backward.flush(cx, steering, &mut last)?;
                    }
                    return Poll::Ready(Ok(()));
                }
                PAUSED => {}
                _ => {
                    if let Some(capture) = &mut capture {
                        progress.moved |= capture.flush(cx)?.is_some();
                    }
                    forward.pump(cx, &mut capture, steering, &mut progress)?;
                    if let Some(backward) = &mut backward {
                        backward.pump(cx, &mut capture, steering, &mut progress)?;
                    }
                }
            }
            if !progress.moved {
                return Poll::Pending;
            }
            if progress.congested {
                break;
            }
        }
        // Let the connection tasks write what was queued, then carry on.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}
