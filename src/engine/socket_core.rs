//! [`SocketCore`]: the engine half of every socket (endpoints, tasks, close) and the plumbing
//! of its calls: one attempt under the lock, waiting with a timeout, and helping the
//! connection read or write while a call waits.

use super::{
    Core, DirectWrite, Pattern, Peer, Shared, State, WaitKey, connector, help, inproc, listener,
    now, runtime, transport,
};
use crate::endpoint::{Endpoint, ToEndpoint};
use crate::error::{Error, Result, SendError};
use crate::message::Message;
use crate::monitor::{Monitor, MonitorEventKind, Monitors};
use crate::options::SocketOptions;
use crate::stats::SocketStats;
use crate::wire::{Security, SocketType};
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The id of the next socket created in this process, for the `socket` span of its logs.
static NEXT_SOCKET_ID: AtomicU64 = AtomicU64::new(1);

/// The largest queue a send stopped at the SNDHWM writes out for its connection (see
/// [`help`]). A queue of small messages (the default 1,000 of up to 100 bytes fit) goes out
/// in one short system call, sooner than the connection task would be scheduled to write it
/// and wake the sender. A larger one is better left to the task, which copies it into the
/// kernel on another core while the sender goes on: writing 1 MiB of 1 KiB messages itself,
/// a multi-thread TCP sender fell from 1.43 to 1.28 M msg/s.
const SEND_HELP_MAX_BYTES: usize = 128 * 1024;

/// One attempt to place a message under the socket lock: a socket type's sending rule
/// (round robin, routing by id, REQ/REP alternation), given to
/// [`SocketCore::send_with`] and [`SocketCore::try_send_with`].
pub(crate) trait SendAttempt<P>:
    FnMut(&mut State<P>, &mut Option<Message>, &mut Context<'_>) -> Poll<Result<()>>
{
}

impl<P, F> SendAttempt<P> for F where
    F: FnMut(&mut State<P>, &mut Option<Message>, &mut Context<'_>) -> Poll<Result<()>>
{
}

/// The engine half of every socket: endpoints, tasks, close, and the send/recv plumbing.
#[derive(Debug)]
pub(crate) struct SocketCore<P: Pattern> {
    pub(super) shared: Arc<Shared<P>>,
}

impl<P: Pattern> SocketCore<P> {
    pub fn new(socket_type: SocketType, options: SocketOptions, pattern: P) -> Result<Self> {
        options.validate()?;
        if options.conflate
            && !matches!(
                socket_type,
                SocketType::Push
                    | SocketType::Pull
                    | SocketType::Pub
                    | SocketType::Sub
                    | SocketType::Dealer
            )
        {
            return Err(Error::InvalidOption {
                option: "conflate",
                reason: "only PUSH, PULL, PUB, SUB and DEALER conflate (as in libzmq)",
            });
        }
        let security = options.security();
        let mut core = Core::new(&options);
        // A direct write puts encoded frames on the stream; boxed traffic must go through
        // the connection task, which numbers the boxes.
        let encrypts = matches!(
            security,
            Security::CurveClient { .. } | Security::CurveServer { .. }
        );
        // Conflating drops whole queued messages, which a message half written directly
        // would not survive.
        core.direct_write = match socket_type {
            _ if encrypts || options.conflate => DirectWrite::Never,
            SocketType::Req | SocketType::Rep => DirectWrite::Always,
            SocketType::Dealer | SocketType::Router | SocketType::Push | SocketType::Pair => {
                DirectWrite::Sparse
            }
            _ => DirectWrite::Never,
        };
        // Spans nest socket{kind, id} > bind{endpoint} or connect{endpoint} > peer{address};
        // their tasks are instrumented when spawned, and nothing is logged per message.
        let span = tracing::info_span!(
            "socket",
            kind = %socket_type,
            id = NEXT_SOCKET_ID.fetch_add(1, Ordering::Relaxed)
        );
        Ok(SocketCore {
            shared: Arc::new(Shared {
                socket_type,
                options: Mutex::new(options),
                security,
                span,
                monitors: Monitors::default(),
                state: Mutex::new(State { core, pattern }),
            }),
        })
    }

    /// A copy of the current options.
    pub fn options(&self) -> SocketOptions {
        self.shared.options().clone()
    }

    /// Changes options on the live socket: `change` edits a copy of the current options,
    /// which is validated and then put in force. Options libzmq applies on a live socket do
    /// so here at once (HWMs, also for existing peers; timeouts, for calls that start waiting
    /// from now on; linger; the pattern's flags); options about connections apply to the
    /// next connection or connect attempt, as in libzmq. The security mechanism and
    /// `xpub_manual` are fixed at creation: changing them is refused, as is any invalid
    /// value, leaving every option as it was.
    pub fn update_options(&self, change: impl FnOnce(&mut SocketOptions)) -> Result<()> {
        let mut state = self.lock();
        let mut options = self.shared.options();
        let mut new = options.clone();
        change(&mut new);
        new.validate()?;
        if let Some(option) = options.fixed_change(&new) {
            return Err(Error::InvalidOption {
                option,
                reason: "is fixed when the socket is created",
            });
        }
        let State { core, pattern } = &mut *state;
        core.set_hwms(&new);
        pattern.options_changed(core, &new);
        *options = new;
        drop(options);
        // A higher HWM may have made room on either side.
        for (_, peer) in core.peers.iter_mut() {
            peer.room_freed();
        }
        core.send_wakers.wake_all();
        Ok(())
    }

    pub fn lock(&self) -> MutexGuard<'_, State<P>> {
        self.shared.lock()
    }

    pub fn bind(&self, endpoint: impl ToEndpoint) -> Result<Endpoint> {
        let endpoint = endpoint.to_endpoint()?;
        let runtime = runtime()?;
        if let Endpoint::Inproc(name) = &endpoint {
            inproc::bind(name, self.shared.clone(), &runtime, || {
                let mut state = self.lock();
                if state.core.is_closing() {
                    return Err(Error::Closed);
                }
                Ok(state.core.add_endpoint(endpoint.clone(), true, None))
            })?;
            return Ok(endpoint);
        }
        let options = self.options();
        let (listener, bound) = match transport::bind(&endpoint, &options) {
            Ok(bound) => bound,
            Err(error) => {
                let kind = MonitorEventKind::BindFailed {
                    error: error.to_string(),
                };
                self.shared.monitors.emit(kind, &endpoint, None);
                return Err(error);
            }
        };
        let mut state = self.lock();
        if state.core.is_closing() {
            return Err(Error::Closed);
        }
        let id = state.core.add_endpoint(bound.clone(), true, Some(listener));
        let span = tracing::info_span!(parent: &self.shared.span, "bind", endpoint = %bound);
        span.in_scope(|| tracing::debug!("listening"));
        self.shared
            .monitors
            .emit(MonitorEventKind::Listening, &bound, None);
        let listen = listener::run(self.shared.clone(), id, bound.clone());
        let task = runtime.spawn(listen.instrument(span));
        state.core.set_task(id, task.abort_handle());
        Ok(bound)
    }

    pub fn connect(&self, endpoint: impl ToEndpoint) -> Result<()> {
        let endpoint = endpoint.to_endpoint()?;
        if let Endpoint::Tcp {
            host: crate::endpoint::Host::Any,
            ..
        }
        | Endpoint::Tcp { port: 0, .. } = &endpoint
        {
            return Err(Error::InvalidEndpoint {
                endpoint: endpoint.to_string(),
                reason: "connect needs a concrete host and port",
            });
        }
        let runtime = runtime()?;
        let mut state = self.lock();
        if state.core.is_closing() {
            return Err(Error::Closed);
        }
        let id = state.core.add_endpoint(endpoint.clone(), false, None);
        let immediate = self.shared.options().immediate;
        let slot = (!immediate && queues_before_handshake(self.shared.socket_type)).then(|| {
            let State { core, pattern } = &mut *state;
            let slot = core.peers.insert(Peer {
                endpoint: id,
                persistent: true,
                attached: true,
                inproc: matches!(endpoint, Endpoint::Inproc(_)).then(inproc::Link::default),
                ..Peer::default()
            });
            pattern.attach(core, slot);
            if let Some(entry) = core.endpoints.last_mut() {
                entry.slot = Some(slot);
            }
            // Senders waiting for a peer may use this one.
            core.send_wakers.wake_all();
            slot
        });
        if let Endpoint::Inproc(name) = &endpoint {
            // The registry's lock comes before any socket's: release ours first.
            drop(state);
            inproc::connect(name, self.shared.clone(), id, &runtime);
            return Ok(());
        }
        let span = tracing::info_span!(parent: &self.shared.span, "connect", endpoint = %endpoint);
        let task =
            runtime.spawn(connector::run(self.shared.clone(), endpoint, id, slot).instrument(span));
        state.core.set_task(id, task.abort_handle());
        Ok(())
    }

    /// Removes the first endpoint equal to `endpoint` that is bound (or connected); see
    /// [`Core::remove_endpoint`].
    fn remove_endpoint(&self, endpoint: impl ToEndpoint, bound: bool) -> Result<()> {
        let endpoint = endpoint.to_endpoint()?;
        let linger = self.linger_deadline();
        let mut state = self.lock();
        let State { core, pattern } = &mut *state;
        let index = core
            .endpoints
            .iter()
            .position(|e| e.is_bound() == bound && e.endpoint == endpoint)
            .ok_or_else(|| Error::EndpointNotFound(endpoint.to_string()))?;
        if let Some(closed) = core.remove_endpoint(pattern, index, linger) {
            let monitors = &self.shared.monitors;
            monitors.emit(MonitorEventKind::Closed, &closed, None);
        }
        inproc::watch_drains(&self.shared, &mut state);
        Ok(())
    }

    /// Stops listening on `endpoint`: the listening socket is closed (its port free, its ipc
    /// path unlinked) and its connections detached when this returns.
    pub fn unbind(&self, endpoint: impl ToEndpoint) -> Result<()> {
        self.remove_endpoint(endpoint, true)
    }

    /// Stops connecting to `endpoint`: its connection is detached when this returns.
    pub fn disconnect(&self, endpoint: impl ToEndpoint) -> Result<()> {
        self.remove_endpoint(endpoint, false)
    }

    /// When a linger period starting now ends (`None`: never).
    fn linger_deadline(&self) -> Option<Instant> {
        self.shared.options().linger.map(|l| now() + l)
    }

    pub fn last_endpoint(&self) -> Option<Endpoint> {
        self.lock().core.last_endpoint.clone()
    }

    /// Number of peers whose handshake completed and that are still connected.
    pub fn peer_count(&self) -> usize {
        self.lock()
            .core
            .peers
            .iter()
            .filter(|(_, p)| p.attached && p.info.is_some())
            .count()
    }

    pub fn dropped_messages(&self) -> u64 {
        self.lock().core.dropped_msgs
    }

    /// A snapshot of the socket's and its peers' counters (see [`crate::stats`]).
    pub fn stats(&self) -> SocketStats {
        let state = self.lock();
        let rcvhwm = state.core.inbox.hwm();
        state.core.stats(self.shared.socket_type, rcvhwm)
    }

    /// One try under the socket lock: `Closed` once the socket is closing, else `attempt`.
    fn attempt_send(
        state: &mut State<P>,
        slot: &mut Option<Message>,
        cx: &mut Context<'_>,
        attempt: &mut impl SendAttempt<P>,
    ) -> Poll<Result<()>> {
        if state.core.is_closing() {
            Poll::Ready(Err(Error::Closed))
        } else {
            attempt(state, slot, cx)
        }
    }

    /// Runs `attempt` until it places the message, honouring the send timeout; on failure the
    /// message comes back inside the error.
    pub async fn send_with(
        &self,
        message: Message,
        mut attempt: impl SendAttempt<P>,
    ) -> Result<(), SendError> {
        let mut slot = Some(message);
        // Most sends find room at once: one attempt without the waiting state and timer of a
        // call that parks (an attempt that is not ready registers nothing here).
        if let Poll::Ready(result) =
            self.attempt_now(|state, cx| Self::attempt_send(state, &mut slot, cx, &mut attempt))
        {
            return result.map_err(|error| SendError::new(error, slot.take().unwrap_or_default()));
        }
        // No room (the SNDHWM): write for the connection rather than wait for its task to be
        // scheduled and wake this call.
        self.wait_helping(
            false,
            |options| options.send_timeout,
            |state, cx| Self::attempt_send(state, &mut slot, cx, &mut attempt),
        )
        .await
        .map_err(|error| SendError::new(error, slot.take().unwrap_or_default()))
    }

    /// One non-blocking attempt: `Error::WouldBlock` with the message when it cannot be
    /// placed now.
    pub fn try_send_with(
        &self,
        message: Message,
        mut attempt: impl SendAttempt<P>,
    ) -> Result<(), SendError> {
        let mut slot = Some(message);
        let result =
            self.attempt_now(|state, cx| Self::attempt_send(state, &mut slot, cx, &mut attempt));
        match result {
            Poll::Ready(Ok(())) => Ok(()),
            Poll::Ready(Err(e)) => Err(SendError::new(e, slot.take().unwrap_or_default())),
            Poll::Pending => Err(SendError::new(
                Error::WouldBlock,
                slot.take().unwrap_or_default(),
            )),
        }
    }

    /// Runs `attempt` until it yields a message, honouring the receive timeout.
    pub async fn recv_with<T>(
        &self,
        mut attempt: impl FnMut(&mut State<P>, &mut Context<'_>) -> Poll<Result<T>>,
    ) -> Result<T> {
        // Most receives on a busy socket find a message waiting (see `send_with`).
        if let Poll::Ready(result) = self.attempt_now(&mut attempt) {
            return result;
        }
        // Nothing queued: read for the connection rather than wait for its task.
        self.wait_helping(true, |options| options.recv_timeout, attempt)
            .await
    }

    /// Polls `attempt` until it is ready or `timeout` (read from the options when the call
    /// first waits) passes. Each time an attempt is not ready, the call polls its socket's
    /// only connection once, to read when `receiving` and to write otherwise (see [`help`]),
    /// and tries once more before it waits.
    async fn wait_helping<T>(
        &self,
        receiving: bool,
        timeout: impl Fn(&SocketOptions) -> Option<Duration>,
        mut attempt: impl FnMut(&mut State<P>, &mut Context<'_>) -> Poll<Result<T>>,
    ) -> Result<T> {
        let mut timer = Timer::default();
        let mut waiting = Waiting::new(self);
        let mut helping = Helping::default();
        poll_fn(|cx| {
            let mut helped = false;
            loop {
                // The connection to help is looked up under the lock the attempt holds.
                let mut helper = None;
                let polled = waiting.poll(cx, |state, cx| {
                    let result = attempt(state, cx);
                    if result.is_pending() && !helped {
                        helper = Helping::candidate(&state.core, receiving);
                    }
                    result
                });
                match polled {
                    Poll::Pending => {}
                    ready => return ready,
                }
                let receiver = receiving.then_some(waiting.state.key);
                if helped || !helping.help(helper, cx, receiver) {
                    break;
                }
                helped = true;
            }
            timer.poll(|| timeout(&self.shared.options()), cx)
        })
        .await
    }

    /// One non-blocking receive attempt (`Error::WouldBlock` when nothing is queued).
    pub fn try_recv_with<T>(
        &self,
        attempt: impl FnMut(&mut State<P>, &mut Context<'_>) -> Poll<Result<T>>,
    ) -> Result<T> {
        match self.attempt_now(attempt) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Error::WouldBlock),
        }
    }

    /// One attempt under the lock by a call that does not wait: polled with a no-op waker
    /// and no waiting call's key, so an attempt that is not ready registers nothing.
    #[inline]
    fn attempt_now<T>(
        &self,
        attempt: impl FnOnce(&mut State<P>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut state = self.lock();
        if !state.core.pull_from.is_empty() {
            inproc::pull(&mut state);
        }
        attempt(&mut state, &mut cx)
    }

    /// Waits, as a socket call that can be cancelled, until `poll` is ready (it registers
    /// its own waker when it is not).
    pub async fn wait_until<T>(
        &self,
        mut poll: impl FnMut(&mut State<P>, &Context<'_>) -> Poll<T>,
    ) -> T {
        let mut waiting = Waiting::new(self);
        poll_fn(|cx| waiting.poll(cx, |state, cx| poll(state, cx))).await
    }

    /// Starts closing: closes every listening socket, stops connecting, wakes every waiting
    /// call (they return [`Error::Closed`]) and lets connection tasks flush for the linger
    /// period. Idempotent.
    fn begin_close(&self) {
        let deadline = self.linger_deadline();
        let mut state = self.lock();
        let State { core, pattern } = &mut *state;
        if core.closing.is_some() {
            return;
        }
        core.closing = Some(deadline);
        let monitors = &self.shared.monitors;
        while !core.endpoints.is_empty() {
            if let Some(closed) = core.remove_endpoint(pattern, 0, deadline) {
                monitors.emit(MonitorEventKind::Closed, &closed, None);
            }
        }
        inproc::watch_drains(&self.shared, &mut state);
        let State { core, pattern } = &mut *state;
        // Under the state lock, so that no monitor added concurrently misses the stop.
        monitors.stop();
        core.wake_all_tasks();
        core.close_wakers.wake_all();
        pattern.closing();
    }

    /// A new [`Monitor`] of this socket's events (see [`crate::monitor`]).
    pub fn monitor(&self) -> Monitor {
        let state = self.lock();
        self.shared.monitors.add(state.core.is_closing())
    }

    /// Closes the socket and waits until every queued message is written or the linger
    /// period has passed. Calls waiting on the socket, and every later call, return
    /// [`Error::Closed`].
    pub async fn close(&self) {
        self.begin_close();
        self.wait_until(|state, cx| {
            let core = &mut state.core;
            if core.live_connections() == 0 {
                Poll::Ready(())
            } else {
                core.close_wakers.register(core.waiter, cx.waker());
                Poll::Pending
            }
        })
        .await
    }
}

/// The timeout half of a waiting socket call. The timeout is read from the options when the
/// call first has to wait (a call that never waits neither reads it nor allocates a timer),
/// so a timeout changed on the live socket applies to calls that start waiting afterwards.
#[derive(Default)]
struct Timer {
    /// `Some` once the call waited: the timeout then in force and its sleep (`None`: none).
    armed: Option<(Option<Duration>, Option<PinnedSleep>)>,
}

type PinnedSleep = std::pin::Pin<Box<tokio::time::Sleep>>;

impl Timer {
    /// `Timeout` once the timeout passed since the call first waited.
    fn poll<T>(
        &mut self,
        timeout: impl FnOnce() -> Option<Duration>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T>> {
        let (timeout, sleep) = self.armed.get_or_insert_with(|| {
            let timeout = timeout();
            (timeout, timeout.map(|t| Box::pin(tokio::time::sleep(t))))
        });
        if *timeout == Some(Duration::ZERO) {
            // libzmq's 0: fail at once rather than after a turn of the timer.
            return Poll::Ready(Err(Error::Timeout(Duration::ZERO)));
        }
        match sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(Error::Timeout(timeout.unwrap_or_default()))),
            _ => Poll::Pending,
        }
    }
}

/// The waiting half of one socket call, kept across its polls: the key its wakers are
/// registered under, and whether some are (see [`SocketCore::poll_with`]).
#[derive(Debug, Default)]
pub(crate) struct PollState {
    key: WaitKey,
    parked: bool,
}

impl<P: Pattern> SocketCore<P> {
    /// One poll of a socket call: runs `attempt` under the lock with the call's key as the
    /// core's current waiter (what `park_*` registers), and forgets the call's wakers once
    /// it completes. The async methods keep `wait` in their future ([`Waiting`]); `Stream`
    /// and `Sink` keep it in the socket handle.
    #[inline]
    pub fn poll_with<T>(
        &self,
        wait: &mut PollState,
        cx: &mut Context<'_>,
        attempt: impl FnOnce(&mut State<P>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let mut state = self.lock();
        if wait.key == WaitKey::NOBODY {
            state.core.last_wait_key += 1;
            wait.key = WaitKey(state.core.last_wait_key);
        }
        state.core.waiter = wait.key;
        if !state.core.pull_from.is_empty() {
            inproc::pull(&mut state);
        }
        let result = attempt(&mut state, cx);
        state.core.waiter = WaitKey::NOBODY;
        if result.is_pending() {
            wait.parked = true;
        } else if std::mem::take(&mut wait.parked) {
            forget(&mut state, wait.key);
        }
        result
    }

    /// Forgets the wakers `wait` registered, if any (a call abandoned while parked).
    pub fn forget_poll(&self, wait: &mut PollState) {
        if std::mem::take(&mut wait.parked) {
            forget(&mut self.lock(), wait.key);
        }
    }

    /// One poll of placing the message in `slot` by `attempt`, as [`SocketCore::send_with`]
    /// does, without its timeout: for `Sink`. The message stays in `slot` until placed.
    pub fn poll_send_with(
        &self,
        wait: &mut PollState,
        slot: &mut Option<Message>,
        cx: &mut Context<'_>,
        mut attempt: impl SendAttempt<P>,
    ) -> Poll<Result<()>> {
        self.poll_with(wait, cx, |state, cx| {
            Self::attempt_send(state, slot, cx, &mut attempt)
        })
    }
}

/// One socket call that may park, as an async method's future holds it: a call dropped while
/// parked (cancelled) removes its wakers.
struct Waiting<'a, P: Pattern> {
    core: &'a SocketCore<P>,
    state: PollState,
}

impl<'a, P: Pattern> Waiting<'a, P> {
    fn new(core: &'a SocketCore<P>) -> Self {
        Waiting {
            core,
            state: PollState::default(),
        }
    }

    fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        attempt: impl FnOnce(&mut State<P>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.core.poll_with(&mut self.state, cx, attempt)
    }
}

impl<P: Pattern> Drop for Waiting<'_, P> {
    fn drop(&mut self) {
        self.core.forget_poll(&mut self.state);
    }
}

/// The connection a waiting call polls, if any (see [`help`]): the socket's only peer's, once
/// its handshake completed. A receive polls it to read; a send stopped at the SNDHWM, to
/// write. Dropped with the call, which hands the connection back to its task.
#[derive(Default)]
struct Helping(Option<Arc<dyn help::Help>>);

impl Helping {
    /// The connection a call that found nothing to do in `core` may poll: the socket's only
    /// peer's, once its handshake completed, and for a send only while its queue holds at
    /// most [`SEND_HELP_MAX_BYTES`].
    fn candidate(core: &Core, receiving: bool) -> Option<Arc<dyn help::Help>> {
        if core.peers.len() != 1 {
            return None;
        }
        let (_, peer) = core.peers.iter().next()?;
        if !receiving && peer.out.len() > SEND_HELP_MAX_BYTES {
            return None;
        }
        peer.helper.as_ref()?.upgrade()
    }

    /// Takes `helper`, the [`Helping::candidate`] found now, over for the waiting call of
    /// `cx`, a receive when `receiving` (see [`help::Help::help`]). False when it did not poll
    /// it: there is none (several peers, inproc, a handshake under way, a send's queue too
    /// large), it is idle, or its task is polling it.
    fn help(
        &mut self,
        helper: Option<Arc<dyn help::Help>>,
        cx: &Context<'_>,
        receiver: Option<WaitKey>,
    ) -> bool {
        // A connection this call polled before and no longer may (a second peer came, or it
        // ended) gets back any wake-up meant for it.
        if let Some(old) = self.0.take()
            && !helper.as_ref().is_some_and(|h| Arc::ptr_eq(h, &old))
        {
            old.stop();
        }
        let Some(helper) = helper else {
            return false;
        };
        self.0 = Some(helper.clone());
        helper.help(cx.waker(), receiver)
    }
}

impl Drop for Helping {
    fn drop(&mut self) {
        if let Some(helper) = self.0.take() {
            helper.stop();
        }
    }
}

fn forget<P: Pattern>(state: &mut State<P>, key: WaitKey) {
    state.core.forget_waiter(key);
    state.pattern.forget_waiter(key);
}

#[cfg(test)]
impl<P: Pattern> SocketCore<P> {
    /// Adds a peer as if its handshake had completed, with `queued` messages already waiting
    /// for it, and attaches it to the pattern: for unit tests of routing rules without a
    /// network.
    pub fn attach_test_peer(
        &self,
        socket_type: SocketType,
        identity: Option<bytes::Bytes>,
        queued: usize,
    ) -> crate::pattern::PeerId {
        let mut state = self.lock();
        let State { core, pattern } = &mut *state;
        let id = core.peers.insert(Peer {
            info: Some(crate::wire::PeerInfo {
                socket_type,
                identity,
                metadata: Default::default(),
                version: (3, 1),
                mechanism: crate::wire::Mechanism::NULL,
                user_id: None,
                max_msg_size: None,
            }),
            out_msgs: queued,
            attached: true,
            ..Peer::default()
        });
        assert!(
            pattern.attach(core, id),
            "the pattern refused the test peer"
        );
        id
    }
}

impl<P: Pattern> Drop for SocketCore<P> {
    fn drop(&mut self) {
        self.begin_close();
    }
}

/// Socket types whose connected endpoints get a peer slot at `connect` when `immediate` is off,
/// so that sends queue for a peer still connecting: the load-balancing senders (libzmq does
/// this for every type; for the others it changes nothing a ferromq socket can observe, or,
/// for PAIR, is not done: spec/sockets.md §10).
fn queues_before_handshake(socket_type: SocketType) -> bool {
    matches!(
        socket_type,
        SocketType::Push | SocketType::Dealer | SocketType::Req
    )
}
