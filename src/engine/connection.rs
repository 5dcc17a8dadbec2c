//! The per-connection task: drives one [`wire::Connection`] over one stream.
//!
//! One hand-written poll loop instead of `select!`: each wake-up (1) fires due timers,
//! (2) hands every decoded event to the socket under one lock, (3) reads one large chunk and
//! decodes all of it, (4) swaps the peer's whole outbound buffer out under the lock and writes
//! it with vectored writes until the kernel pushes back. No per-message flush, no per-message
//! wake-up, no lock held across an await.
//!
//! [`wire::Connection`]: crate::wire::Connection

use super::help::{Help, Route};
use super::transport::Stream;
use super::{DirectWrite, EndpointId, Handshake, Pattern, Peer, Shared, State, WaitKey, now};
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::monitor::MonitorEventKind;
use crate::pattern::PeerId;
use crate::wire::ProtocolError;
use crate::wire::frame::MAX_WRITEV_IOVECS;
use crate::wire::{self, ConnectionConfig, Event, HeartbeatConfig, SocketType, WriteBuf};
use bytes::BytesMut;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, TryLockError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::ReadBuf;
use tokio::time::Sleep;

/// Read buffer allocation. One read carries thousands of small messages, and several 64 KiB
/// frames share one allocation, so the partial frame at a buffer's end is copied rarely.
const READ_BUF_BYTES: usize = 120 * 1024;
/// How long a connection holding read buffers that a trickle would not have released keeps
/// them without reading anything: a stream's buffers, and any large-frame buffers. A
/// stream's reads can be short (a fast reader takes a 64 KiB message in pieces as the
/// sender's write lands) or none at all (a wake-up for room in the inbox finds the kernel
/// empty for the moment), so one short read does not tell a pause from the end; releasing
/// on it freed and faulted in 4 MiB of 512 KiB buffers again every few messages of a 64 KiB
/// stream. 100 ms keeps them across the gaps of a stream of ten messages a second and
/// more, and returns them soon after it ends.
const READ_BUF_IDLE: Duration = Duration::from_millis(100);
/// How long a connection that has written messages keeps its write buffers (the one it
/// writes and the one senders fill, swapped at each batch) after its last write. A writer
/// that keeps up with a stream of small messages takes them one or two at a time, so a short
/// batch does not tell a pause from the end either: releasing the buffers after each such
/// batch made the senders grow a new one from nothing for every batch, and glibc trimmed and
/// faulted in its heap all the while (a multi-thread TCP 1 KiB sender took 40,000 page
/// faults a second and lost a tenth of its rate). As for reads, 100 ms. PUB and XPUB are the
/// exception (see `Driver::fans_out`).
const WRITE_BUF_IDLE: Duration = Duration::from_millis(100);
/// A frame body at least this large that does not fit the read buffer moves to a buffer of
/// [`LARGE_READ_BUF_BYTES`] (or its own size, if larger) and is read into it directly, so
/// most of a large body is never copied in user space; the frames after it follow it there.
const LARGE_FRAME_BYTES: usize = 32 * 1024;
/// Read buffer for large frames: eight 64 KiB messages per allocation, so the partial frame
/// moved along when the buffer fills is a small share of what was read.
const LARGE_READ_BUF_BYTES: usize = 512 * 1024;
/// Largest buffer allocated on a frame header's word before its bytes arrive (bounded anyway
/// by `max_msg_size` when set); larger bodies grow with the data.
const MAX_EXACT_FRAME_ALLOC_BYTES: usize = 8 * 1024 * 1024;
/// Read again without reallocating while at least this much room is left.
const MIN_READ_ROOM_BYTES: usize = 16 * 1024;
/// Read buffers kept for reuse once the application has dropped every message sliced from
/// them. Reusing them keeps a streaming connection's memory out of the allocator: freeing and
/// reallocating a buffer per 64 KiB message made glibc trim and regrow its heap, and the page
/// faults that followed cost as much as the copies themselves. With the inbox capped at
/// [`super::INBOX_SOFT_LIMIT_BYTES`], a few buffers are in the application's hands at once.
/// Only large-frame streams keep them: 4 MiB of [`LARGE_READ_BUF_BYTES`] buffers, more when
/// single frames are larger than that.
const MAX_RETIRED_READ_BUFS: usize = 8;
/// Used-up read buffers kept while small frames stream: as many as the inbox's
/// [`super::peer::INBOX_SOFT_LIMIT_BYTES`] of messages can be sliced from, plus the one being
/// filled, since the application on another thread may hold messages of each (1 KiB messages
/// at the default HWM: nine). Kept only two, every buffer beyond them was freed on the
/// application's thread and a new one allocated and faulted in: a multi-thread TCP 1 KiB
/// receiver took 50,000 page faults a second. While messages sliced from them wait in the
/// inbox they are memory the inbox holds anyway; once the stream ends, the idle release
/// returns them.
const MAX_RETIRED_SMALL_READ_BUFS: usize =
    super::peer::INBOX_SOFT_LIMIT_BYTES.div_ceil(READ_BUF_BYTES) + 1;
/// A read shorter than this means traffic trickles rather than streams: the emptied buffer is
/// then released, so idle connections pin no memory. Streaming connections keep theirs, which
/// the allocator would otherwise hand back and fault in again on every wake.
const TRICKLE_BYTES: usize = 4 * 1024;
/// Loop rounds per wake-up before yielding, so one busy peer cannot starve other tasks on the
/// same runtime thread.
const MAX_ROUNDS_PER_WAKE: usize = 16;
/// How long a connection whose reading a receiving call took over (see [`super::help`]) waits
/// for that call to come back before its task reads again on its own. The call stops polling
/// when the inbox is full and its reads are then not registered with the runtime; without
/// this, a peer's disconnect would go unnoticed until the application received again. 1 ms
/// is tokio's timer tick: an application that keeps receiving always comes back sooner.
const APP_LEASE: Duration = Duration::from_millis(1);

/// Where a connection came from, for its peer slot and its monitor events.
pub(super) struct Link {
    /// The bound or connected endpoint.
    pub id: EndpointId,
    /// That endpoint, as bound or as given to connect.
    pub endpoint: Endpoint,
    /// The peer's `ip:port` (TCP only).
    pub peer: Option<String>,
    /// Connections from this endpoint before this one (a connector's reconnects).
    pub reconnects: u64,
    /// The endpoint's persistent peer slot to adopt (`immediate` off).
    pub slot: Option<PeerId>,
}

/// Runs a connection from `link` until the peer goes away, a fault, or the socket closes or
/// the endpoint is removed (after linger).
pub(super) async fn run<P: Pattern>(shared: Arc<Shared<P>>, stream: Stream, link: Link) -> Ended {
    let endpoint = link.id;
    let link = Arc::new(link);
    let stream = Arc::new(stream);
    let id = {
        let mut state = shared.lock();
        // A removed endpoint's slot that still holds messages takes connections until they
        // are written (see `Core::keeps_connecting`).
        let drains = link.slot.and_then(|slot| state.core.peers.get(slot));
        if !drains.is_some_and(Peer::drains)
            && (state.core.is_closing() || !state.core.has_endpoint(endpoint))
        {
            return Ended::default();
        }
        let adopted = link.slot.filter(|&slot| {
            state.core.peers.get_mut(slot).is_some_and(|peer| {
                if !peer.persistent || peer.alive {
                    return false;
                }
                peer.alive = true;
                peer.address = link.peer.clone();
                peer.reconnects = link.reconnects;
                true
            })
        });
        match adopted {
            Some(slot) => slot,
            None => state.core.peers.insert(Peer {
                alive: true,
                endpoint,
                address: link.peer.clone(),
                reconnects: link.reconnects,
                ..Peer::default()
            }),
        }
    };
    let guard = PeerGuard {
        shared: &shared,
        id,
    };
    // Options as they are now: changes on the live socket apply to the next connection.
    let config = {
        let options = shared.options();
        ConnectionConfig {
            socket_type: shared.socket_type,
            routing_id: options.routing_id.clone().unwrap_or_default(),
            max_msg_size: options.max_msg_size,
            handshake_timeout: options.handshake_ivl,
            heartbeat: HeartbeatConfig {
                interval: options.heartbeat_ivl,
                timeout: options.heartbeat_timeout,
                ttl: options.heartbeat_ttl,
            },
            security: shared.security.clone(),
            zap: options.zap.clone(),
            zap_domain: options.zap_domain.clone().unwrap_or_default(),
            peer_address: stream.peer_ip(),
        }
    };
    let driver = |me: &Weak<Cell<P>>| Driver {
        shared: shared.clone(),
        link: link.clone(),
        me: me.clone(),
        id,
        conn: wire::Connection::new(config, now()),
        stream,
        read_buf: BytesMut::new(),
        retired_read_bufs: VecDeque::new(),
        read_buf_size: READ_BUF_BYTES,
        out: WriteBuf::new(),
        sealing: WriteBuf::new(),
        stash: None,
        sleep: None,
        ready: false,
        last_wake_read: 0,
        read_this_poll: false,
        last_read: now(),
        last_write: now(),
        closing: None,
        release_at: None,
        last_batch: 0,
        failure: None,
        receiver: WaitKey::NOBODY,
        lease: None,
        finished: None,
        parked: false,
    };
    let cell = Arc::new_cyclic(|me| {
        let route = Arc::new(Route::default());
        Cell {
            driver: Mutex::new(driver(me)),
            waker: Waker::from(route.clone()),
            route,
            runtime: tokio::runtime::Handle::current(),
        }
    });
    let result = poll_fn(|cx| cell.poll_task(cx)).await;
    let ready = cell.lock().ready;
    let ended = Ended {
        handshake_done: ready,
        peer_error: matches!(
            result,
            Err(Error::Protocol(
                ProtocolError::PeerError { .. } | ProtocolError::Unauthorized { .. }
            ))
        ),
    };
    // Our own close, unbind or disconnect ended it: nothing to report.
    let local = shared.lock().core.closing_for(id).is_some();
    if !local {
        let emit = |kind| {
            let peer = link.peer.as_deref();
            shared.monitors.emit(kind, &link.endpoint, peer);
        };
        if !ready {
            emit(handshake_failure(result.as_ref().err()));
        }
        emit(MonitorEventKind::Disconnected);
    }
    // The `peer{address}` span the task runs in names the peer.
    match result {
        Ok(()) => tracing::debug!("connection closed"),
        Err(Error::Io(e)) if is_disconnect(&e) => tracing::debug!("peer disconnected"),
        Err(e) => tracing::warn!(error = %e, "connection dropped"),
    }
    drop(cell);
    drop(guard);
    ended
}

/// A connection's driver, polled by its task and, while it waits for a message, by a
/// receiving call of the application (see [`super::help`]).
struct Cell<P: Pattern> {
    driver: Mutex<Driver<P>>,
    route: Arc<Route>,
    /// `route` as the waker every poll of the driver registers.
    waker: Waker,
    /// The connection's runtime, entered by a receiving call that polls the driver from
    /// another thread (its timers belong to this runtime).
    runtime: tokio::runtime::Handle,
}

impl<P: Pattern> Cell<P> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Driver<P>> {
        self.driver.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection task's poll: its result once the driver finished, under whichever poll.
    fn poll_task(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.route.set_task(cx.waker());
        let mut driver = self.lock();
        if let Some(result) = driver.finished.take() {
            return Poll::Ready(result);
        }
        let result = self.poll_driver(&mut driver, None);
        if result.is_ready() {
            // Nobody polls it again: a receiving call that gets here finds it finished.
            driver.finished = Some(Ok(()));
        }
        result
    }

    /// One poll of `driver` (this cell's, locked), by the receiving call `receiver` if any (a
    /// send that writes for the connection polls as the task does), with the route told when
    /// it began and whether it parked.
    fn poll_driver(
        &self,
        driver: &mut Driver<P>,
        receiver: Option<WaitKey>,
    ) -> Poll<Result<(), Error>> {
        self.route.poll_begins();
        let result = driver.poll(&mut Context::from_waker(&self.waker), receiver);
        self.route.poll_ended(driver.parked);
        result
    }
}

impl<P: Pattern> Help for Cell<P> {
    fn help(&self, app: &Waker, receiver: Option<WaitKey>) -> bool {
        let owed = self.route.app_drives(app);
        if !owed && self.route.driver_idle() {
            return false;
        }
        let mut driver = match self.driver.try_lock() {
            Ok(driver) => driver,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                // The task is polling it. A wake-up routed to this call may be one the task
                // counts on (its own yield, tokio's budget running out in its poll): hand it
                // over, and leave the driver to the task.
                self.route.app_leaves();
                if owed {
                    self.route.wake_task();
                }
                return false;
            }
        };
        if driver.finished.is_some() {
            return false;
        }
        let _runtime = self.runtime.enter();
        if let Poll::Ready(result) = self.poll_driver(&mut driver, receiver) {
            driver.finished = Some(result);
            drop(driver);
            self.route.wake_task();
        }
        true
    }

    fn stop(&self) {
        self.route.app_leaves();
    }
}

/// The monitor event for a connection that ended before its handshake completed, with
/// `error` (`None`: the peer closed), classified as libzmq does.
fn handshake_failure(error: Option<&Error>) -> MonitorEventKind {
    let Some(error) = error else {
        return MonitorEventKind::HandshakeFailedNoDetail {
            error: "the peer closed the connection".to_owned(),
        };
    };
    match error {
        Error::Protocol(
            ProtocolError::AuthenticationFailed { status, .. }
            | ProtocolError::Unauthorized { status },
        ) => MonitorEventKind::HandshakeFailedAuth { status: *status },
        // A timeout is no fault of the protocol's: libzmq reports it with no detail.
        Error::Protocol(ProtocolError::HandshakeTimeout) => {
            MonitorEventKind::HandshakeFailedNoDetail {
                error: ProtocolError::HandshakeTimeout.to_string(),
            }
        }
        Error::Protocol(fault) => MonitorEventKind::HandshakeFailedProtocol {
            fault: fault.clone(),
        },
        e => MonitorEventKind::HandshakeFailedNoDetail {
            error: e.to_string(),
        },
    }
}

/// How a connection ended, for the connector's reconnect decision.
#[derive(Debug, Default)]
pub(super) struct Ended {
    /// The handshake completed (the connector resets its backoff).
    pub handshake_done: bool,
    /// The peer closed with an ERROR command, which RFC 23 makes fatal: do not reconnect.
    pub peer_error: bool,
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
    )
}

/// Removes the peer from the socket however the task ends (including abort on unbind).
struct PeerGuard<'a, P: Pattern> {
    shared: &'a Shared<P>,
    id: PeerId,
}

impl<P: Pattern> Drop for PeerGuard<'_, P> {
    fn drop(&mut self) {
        self.shared.lock().connection_ended(self.id);
    }
}

enum ReadOutcome {
    /// Bytes were read and decoded.
    Data,
    /// The peer closed its side.
    Eof,
}

struct Driver<P: Pattern> {
    shared: Arc<Shared<P>>,
    link: Arc<Link>,
    /// The cell this driver is in, for the peer slot (see [`super::help`]).
    me: Weak<Cell<P>>,
    id: PeerId,
    conn: wire::Connection,
    stream: Arc<Stream>,
    read_buf: BytesMut,
    /// Used-up read buffers, oldest first, whose messages the application may still hold.
    retired_read_bufs: VecDeque<BytesMut>,
    /// Size of the next read buffer: [`READ_BUF_BYTES`], or [`LARGE_READ_BUF_BYTES`] once
    /// large frames arrive (until the connection goes quiet).
    read_buf_size: usize,
    /// Bytes being written: swapped out of the peer's queue, plus our own commands.
    out: WriteBuf,
    /// A batch swapped out of the peer's queue to be boxed into `out` (CURVE), then empty
    /// with its memory until the next swap.
    sealing: WriteBuf,
    /// An event the socket could not take yet (its inbox was full).
    stash: Option<Event>,
    sleep: Option<Pin<Box<Sleep>>>,
    ready: bool,
    /// Bytes read by the last poll that read anything: a stream reads far more than a
    /// trickle, even when its last read before going idle was short. A poll that reads
    /// nothing (woken for room in the inbox, a timer, a write) leaves it as it was: the
    /// stream is not idle because the kernel had nothing more at that instant.
    last_wake_read: usize,
    /// This poll has read something (the next read starts a new [`Self::last_wake_read`]
    /// otherwise).
    read_this_poll: bool,
    /// When the last read returned bytes.
    last_read: Instant,
    /// When the last write accepted bytes.
    last_write: Instant,
    /// Whether this connection must finish, and by when, as [`Self::gather_output`] last saw
    /// it under the socket lock: the timers read it from here rather than take the lock
    /// again each round, which the sender, on another thread, holds for every message.
    closing: Option<Option<Instant>>,
    /// When the buffers still held are released if nothing is read or written until then
    /// (see [`READ_BUF_IDLE`] and [`WRITE_BUF_IDLE`]).
    release_at: Option<Instant>,
    /// Size of the last batch taken for writing; 0 until one is taken (a batch is never
    /// empty), while the connection has written only its own commands (handshake,
    /// heartbeats).
    last_batch: usize,
    /// A fatal fault waiting for its ERROR command to be flushed.
    failure: Option<Error>,
    /// The receiving call polling this driver now ([`WaitKey::NOBODY`]: the task, or a send
    /// that writes for the connection).
    receiver: WaitKey,
    /// Until when a receiving call that left this connection's inbox full is expected back
    /// (see [`APP_LEASE`]).
    lease: Option<Instant>,
    /// The result, once a poll returned it: for the task when a receiving call's poll ended
    /// the connection, and so that nobody polls it again.
    finished: Option<Result<(), Error>>,
    /// The last poll ended waiting for a wake-up with nothing decoded left to hand over.
    parked: bool,
}

impl<P: Pattern> Driver<P> {
    /// The socket fans each message out to its peers (PUB, XPUB): a batch under
    /// [`TRICKLE_BYTES`] releases the write buffers at once, as it does on every socket before
    /// any message. Kept instead, as other sockets keep them until [`WRITE_BUF_IDLE`], they
    /// cost a publisher 3–7 % of its fan-out to 100 subscribers (spec/performance.md).
    fn fans_out(&self) -> bool {
        matches!(self.shared.socket_type, SocketType::Pub | SocketType::XPub)
    }

    /// This poll is a receiving call's, not the task's (a receiving call always has a key).
    fn by_app(&self) -> bool {
        self.receiver != WaitKey::NOBODY
    }

    /// One poll: by the receiving call `receiver` instead of the task, if any.
    fn poll(&mut self, cx: &mut Context<'_>, receiver: Option<WaitKey>) -> Poll<Result<(), Error>> {
        self.receiver = receiver.unwrap_or(WaitKey::NOBODY);
        self.parked = false;
        self.read_this_poll = false;
        for _ in 0..MAX_ROUNDS_PER_WAKE {
            let now = now();
            if self.failure.is_none() {
                if let Err(e) = self.poll_timers(cx, now) {
                    self.failure = Some(e);
                }
            }
            let delivered_all = match self.deliver_events(cx) {
                Ok(all) => all,
                Err(e) => return Poll::Ready(Err(e)),
            };
            let mut progressed = false;
            if delivered_all && self.failure.is_none() {
                match self.read(cx, now) {
                    Poll::Ready(Ok(ReadOutcome::Data)) => progressed = true,
                    Poll::Ready(Ok(ReadOutcome::Eof)) => return Poll::Ready(Ok(())),
                    Poll::Ready(Err(e)) => self.failure = Some(e),
                    Poll::Pending => {}
                }
            }
            let closing = self.gather_output(cx);
            if closing != self.closing {
                // Closing began (the socket's, or this endpoint's removal, which wakes this
                // task): the sleep takes its linger deadline from now on.
                self.closing = closing;
                self.rearm_timers(cx, now);
            }
            match self.write(cx) {
                Poll::Ready(Ok(wrote)) => {
                    if wrote {
                        self.last_write = now;
                    }
                    progressed |= wrote;
                }
                // A peer that sent ERROR and closed makes our last write fail too; the fault
                // it reported is the cause worth returning (it decides whether to reconnect).
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.failure.take().unwrap_or(e))),
                Poll::Pending => {}
            }
            if let Some(e) = self.failure.take() {
                return Poll::Ready(Err(e));
            }
            if let Some(deadline) = closing {
                // Done once nothing is left to write; before the handshake, once nothing
                // waits for it (only a persistent slot, `immediate` off, queues that early: its
                // handshake goes on within the linger period, as libzmq's).
                let queue_empty = self.peer_queue_empty();
                if queue_empty && (!self.ready || self.out.is_empty()) {
                    return Poll::Ready(Ok(()));
                }
                if deadline.is_some_and(|d| d <= now) {
                    return Poll::Ready(Ok(()));
                }
            }
            if !progressed {
                if self.read_buf.len() < TRICKLE_BYTES
                    && self.last_wake_read < TRICKLE_BYTES
                    && self.read_buf_size < LARGE_READ_BUF_BYTES
                {
                    // Messages trickle: the buffers go now.
                    self.release_read_bufs();
                }
                if self.last_batch == 0 || (self.fans_out() && self.last_batch < TRICKLE_BYTES) {
                    // Only our own commands written so far, or a trickle to one of a
                    // publisher's peers (see `fans_out`): the buffers go now.
                    self.out.shrink_if_empty();
                    self.sealing.shrink_if_empty();
                }
                self.arm_buf_release(cx, now);
                self.parked = self.stash.is_none();
                self.arm_lease(cx);
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        self.arm_lease(cx);
        Poll::Pending
    }

    /// Idle connections pin no read buffer: a partial frame waits in a buffer of its own size
    /// (a stalled handshake holds what it sent, not 120 KiB).
    fn release_read_bufs(&mut self) {
        self.read_buf = match self.read_buf.is_empty() {
            true => BytesMut::new(),
            false => BytesMut::from(&self.read_buf[..]),
        };
        self.retired_read_bufs = VecDeque::new();
        self.read_buf_size = READ_BUF_BYTES;
        self.release_at = None;
    }

    /// Releases the write buffers, the peer queue's too when it is empty: the last step of
    /// going idle after writing messages, so an idle connection pins none.
    fn release_write_bufs(&mut self) {
        self.out.shrink_if_empty();
        self.sealing.shrink_if_empty();
        let mut state = self.shared.lock();
        if let Some(peer) = state.core.peers.get_mut(self.id) {
            peer.out.shrink_if_empty();
        }
    }

    /// When the buffers this connection holds are released if it neither reads nor writes
    /// until then: [`READ_BUF_IDLE`] after the last read for read buffers (those a trickle
    /// would not have released: a stream's, or large frames'), [`WRITE_BUF_IDLE`] after the
    /// last write for write buffers. `None` when it holds none.
    fn buf_release_deadline(&self) -> Option<Instant> {
        let reads = self.read_buf.capacity() > 0 || !self.retired_read_bufs.is_empty();
        let writes = self.out.holds_memory() || self.sealing.holds_memory();
        let read = reads.then_some(self.last_read + READ_BUF_IDLE);
        let write = writes.then_some(self.last_write + WRITE_BUF_IDLE);
        read.into_iter().chain(write).min()
    }

    /// On going idle holding buffers: makes sure a timer releases them (see
    /// [`Self::buf_release_deadline`] and [`Self::release_if_idle`]). Armed once per idle
    /// period, not per wake-up.
    fn arm_buf_release(&mut self, cx: &mut Context<'_>, now: Instant) {
        if self.release_at.is_some() {
            return;
        }
        let Some(at) = self.buf_release_deadline() else {
            return;
        };
        self.release_at = Some(at);
        self.rearm_timers(cx, now);
    }

    /// Re-arms the sleep after a deadline changed outside the round's own timer pass. A
    /// timer that fails (a handshake or heartbeat timeout) ends the connection: at this
    /// round's fault check, or at the poll its wake-up brings.
    fn rearm_timers(&mut self, cx: &mut Context<'_>, now: Instant) {
        if let Err(e) = self.poll_timers(cx, now) {
            self.failure = Some(e);
            cx.waker().wake_by_ref();
        }
    }

    /// The buffer timer ran out: releases the read buffers if nothing was read for
    /// [`READ_BUF_IDLE`], unless a partial frame of a trickle's size or more waits in them,
    /// and the write buffers if nothing was written for [`WRITE_BUF_IDLE`], unless bytes wait
    /// in them (the next park arms the timer again for those). It then waits again for
    /// buffers whose connection read or wrote since it was armed.
    fn release_if_idle(&mut self, now: Instant) {
        if self.last_read + READ_BUF_IDLE <= now && self.read_buf.len() < TRICKLE_BYTES {
            self.release_read_bufs();
        }
        if self.last_write + WRITE_BUF_IDLE <= now && self.out.is_empty() {
            self.release_write_bufs();
        }
        self.release_at = self.buf_release_deadline().filter(|&at| at > now);
    }

    /// After a receiving call's poll that left an event it could not deliver (the inbox is
    /// full, and reading is paused without waiting for room: that call takes it up again
    /// once the inbox is empty), makes the task poll once [`APP_LEASE`] passed without it.
    fn arm_lease(&mut self, cx: &mut Context<'_>) {
        if !self.by_app() || self.stash.is_none() {
            return;
        }
        let now = now();
        self.lease = Some(now + APP_LEASE);
        self.rearm_timers(cx, now);
    }

    /// When this connection must be gone once the socket closes or its endpoint is removed
    /// (`None`: not closing, or lingering forever), as the last batch taken saw it.
    fn linger_deadline(&self) -> Option<Instant> {
        self.closing.flatten()
    }

    fn peer_queue_empty(&self) -> bool {
        let state = self.shared.lock();
        state
            .core
            .peers
            .get(self.id)
            .is_none_or(|p| p.out.is_empty())
    }

    /// Fires due handshake, heartbeat and linger timers and re-arms the sleep.
    fn poll_timers(&mut self, cx: &mut Context<'_>, mut now: Instant) -> Result<(), Error> {
        let linger = self.linger_deadline();
        loop {
            // A lease that ran out has done its work: this poll is the task's.
            self.lease = self.lease.filter(|&l| l > now);
            if self.release_at.is_some_and(|at| at <= now) {
                self.release_if_idle(now);
            }
            let deadline = [
                self.conn.poll_timeout(),
                linger,
                self.lease,
                self.release_at,
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(deadline) = deadline else {
                return Ok(());
            };
            if deadline <= now {
                self.conn.handle_timeout(now)?;
                if linger.is_some_and(|l| l <= now) {
                    return Ok(());
                }
                continue;
            }
            if super::poll_sleep_until(&mut self.sleep, deadline, cx).is_pending() {
                return Ok(());
            }
            // The sleep ran out after `now` was read.
            now = now.max(super::now());
        }
    }

    /// Hands decoded events to the socket. Returns false when the socket's inbox for this
    /// peer is full (the leftover event is stashed and reading pauses).
    fn deliver_events(&mut self, cx: &mut Context<'_>) -> Result<bool, Error> {
        if self.stash.is_none() {
            match self.conn.poll_event() {
                None => return Ok(true),
                Some(ev) => self.stash = Some(ev),
            }
        }
        let mut state = self.shared.lock();
        let State { core, pattern } = &mut *state;
        let mut delivered = false;
        let mut all = true;
        let mut refused = None;
        while let Some(event) = self.stash.take().or_else(|| self.conn.poll_event()) {
            match event {
                Event::Ready(info) => {
                    let peer_type = info.socket_type;
                    match core.handshake_completed(pattern, self.id, *info) {
                        Handshake::Gone => continue,
                        Handshake::Leaving => {
                            // Its endpoint went away during the handshake. What a persistent
                            // slot queued before it goes out within the linger.
                            self.ready = core.peers.get(self.id).is_some_and(|p| !p.out.is_empty());
                            continue;
                        }
                        Handshake::Refused => {
                            tracing::debug!(%peer_type, "handshake complete");
                            return Err(Error::PeerRefused);
                        }
                        Handshake::Attached => {}
                    }
                    tracing::debug!(%peer_type, "handshake complete");
                    if let Some(peer) = core.peers.get_mut(self.id) {
                        peer.helper = Some(self.me.clone() as Weak<dyn Help>);
                    }
                    if core.direct_write != DirectWrite::Never
                        && let Some(peer) = core.peers.get_mut(self.id)
                    {
                        peer.stream = Some(self.stream.clone());
                        peer.writer_waits_for_sender = tokio::runtime::Handle::current()
                            .runtime_flavor()
                            == tokio::runtime::RuntimeFlavor::CurrentThread;
                    }
                    self.ready = true;
                    let kind = MonitorEventKind::HandshakeSucceeded;
                    let peer = self.link.peer.as_deref();
                    self.shared.monitors.emit(kind, &self.link.endpoint, peer);
                }
                Event::Message(message) => match pattern.deliver(core, self.id, message) {
                    Ok(()) => delivered = true,
                    Err(message) => refused = Some(Event::Message(message)),
                },
                Event::Subscribe(prefix) => {
                    if let Err(prefix) = pattern.subscription(core, self.id, true, prefix) {
                        refused = Some(Event::Subscribe(prefix));
                    }
                }
                Event::Cancel(prefix) => {
                    if let Err(prefix) = pattern.subscription(core, self.id, false, prefix) {
                        refused = Some(Event::Cancel(prefix));
                    }
                }
                Event::Command(command) => {
                    tracing::debug!(command = ?command.name(), "ignoring unknown command")
                }
            }
            if let Some(event) = refused.take() {
                // No room for what this event would queue: keep it and stop reading.
                self.stash = Some(event);
                if let Some(peer) = core.peers.get_mut(self.id) {
                    peer.wants_room = true;
                    // Register before the lock is released: a reader that frees room in
                    // between would otherwise find no waker (this task was woken and has not
                    // re-registered yet) and the connection would stall.
                    peer.task = Some(cx.waker().clone());
                }
                all = false;
                break;
            }
        }
        let received = self.conn.take_received();
        if received.messages > 0
            && let Some(peer) = core.peers.get_mut(self.id)
        {
            peer.traffic.messages_in += received.messages;
            peer.traffic.bytes_in += received.bytes;
        }
        if delivered {
            // Not the receiving call polling this driver: it tries again when the poll ends.
            core.recv_wakers.wake_all_but(self.receiver);
        }
        Ok(all)
    }

    /// One read and decode (or the decode of what an earlier one left at the event limit).
    fn read(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<Result<ReadOutcome, Error>> {
        if self.conn.has_pending_input() {
            self.decode(now)?;
            return Poll::Ready(Ok(ReadOutcome::Data));
        }
        loop {
            match self.stream.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Ready(Ok(())) => {}
            }
            let unbuffered = self.read_buf.capacity() == 0
                && self
                    .conn
                    .pending_frame_len()
                    .is_none_or(|len| len < LARGE_FRAME_BYTES);
            let read = match unbuffered {
                // No buffer held (a trickle, or nothing read yet): read onto the stack, so a
                // request or a heartbeat allocates and frees no read buffer; a full read
                // starts a stream, which gets one. A large frame's body is read in place
                // ([`Self::make_read_room`]).
                true => self.read_unbuffered(now),
                false => {
                    self.make_read_room();
                    self.stream
                        .try_read_buf(&mut self.read_buf)
                        .map_err(Error::from)
                        .and_then(|n| self.decode(now).map(|()| n))
                }
            };
            match read {
                Ok(0) => return Poll::Ready(Ok(ReadOutcome::Eof)),
                Ok(n) => {
                    if !std::mem::replace(&mut self.read_this_poll, true) {
                        self.last_wake_read = 0;
                    }
                    self.last_wake_read += n;
                    self.last_read = now;
                    if let Some(rtt) = self.conn.take_heartbeat_rtt() {
                        self.record_heartbeat_rtt(rtt);
                    }
                    return Poll::Ready(Ok(ReadOutcome::Data));
                }
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// One read into a stack buffer of [`TRICKLE_BYTES`] and its decode, for a connection
    /// that holds no read buffer: a short read is a trickle, decoded from an exact-size copy
    /// as [`Self::decode`] decodes one; a full one moves into a read buffer of its own, which
    /// takes what else the kernel holds before the decode. The bytes read, 0 at the end of
    /// the stream.
    fn read_unbuffered(&mut self, now: Instant) -> Result<usize, Error> {
        let mut storage = [MaybeUninit::<u8>::uninit(); TRICKLE_BYTES];
        let mut first = ReadBuf::uninit(&mut storage);
        let n = self.stream.try_read_into(&mut first)?;
        if n < TRICKLE_BYTES {
            if n > 0 {
                self.decode_exact(BytesMut::from(first.filled()), now)?;
            }
            return Ok(n);
        }
        // The rest is read before anything is decoded, as if the buffer had been there: a
        // large frame that arrived whole is then decoded whole, not taken for a large-frame
        // stream from its first 4 KiB.
        self.read_buf = self.reusable_read_buf(self.read_buf_size);
        self.read_buf.extend_from_slice(first.filled());
        let more = match self.stream.try_read_buf(&mut self.read_buf) {
            Ok(more) => more,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e.into()),
        };
        self.decode(now)?;
        Ok(n + more)
    }

    /// Keeps the last heartbeat round trip for the socket's stats.
    fn record_heartbeat_rtt(&self, rtt: Duration) {
        if let Some(peer) = self.shared.lock().core.peers.get_mut(self.id) {
            peer.heartbeat_rtt = Some(rtt);
        }
    }

    /// Decodes what the read buffer holds. A few buffered bytes (a trickle: one request, a
    /// heartbeat) are decoded from an exact-size copy instead, so the messages they hold pin
    /// what they weigh rather than the whole read buffer: 1,000 one-byte messages read one at
    /// a time pinned a 120 KiB buffer each. The buffer itself is then reused in place.
    fn decode(&mut self, now: Instant) -> Result<(), Error> {
        if self.read_buf.len() >= TRICKLE_BYTES {
            self.conn.handle_input(&mut self.read_buf, now)?;
            return Ok(());
        }
        let exact = BytesMut::from(&self.read_buf[..]);
        self.read_buf.clear();
        self.decode_exact(exact, now)
    }

    /// Decodes a trickle's exact-size copy; a partial frame at its end goes back to the read
    /// buffer to wait for its rest.
    fn decode_exact(&mut self, mut exact: BytesMut, now: Instant) -> Result<(), Error> {
        self.conn.handle_input(&mut exact, now)?;
        self.read_buf.extend_from_slice(&exact);
        Ok(())
    }

    /// Makes room to read into, reusing the current allocation when the messages split off it
    /// have all been consumed (it is then ours alone again), else a retired buffer that is
    /// free again, else a new allocation.
    fn make_read_room(&mut self) {
        let buffered = self.read_buf.len();
        let room = self.read_buf.capacity() - buffered;
        if let Some(len) = self.conn.pending_frame_len()
            && len >= LARGE_FRAME_BYTES
        {
            self.read_buf_size = LARGE_READ_BUF_BYTES;
            let missing = len - buffered;
            if missing <= room {
                // The rest fits: read it in place, however little room that leaves after it.
                return;
            }
            if len <= MAX_EXACT_FRAME_ALLOC_BYTES {
                // Move the start of the body where all of it fits, so the rest is read
                // straight to where the message will keep it.
                if !self.read_buf.try_reclaim(missing) {
                    self.replace_read_buf(len.max(LARGE_READ_BUF_BYTES));
                }
            } else {
                // A huge body grows with the bytes that arrive (at least doubling, so the
                // copies stay linear): a peer's claim alone allocates nothing big.
                self.read_buf
                    .reserve(missing.min(buffered.max(LARGE_READ_BUF_BYTES)));
            }
            return;
        }
        if room < MIN_READ_ROOM_BYTES && !self.read_buf.try_reclaim(self.read_buf_size / 2) {
            self.replace_read_buf(self.read_buf_size);
        }
    }

    /// Moves the unread bytes into a reusable or new buffer of at least `capacity` bytes and
    /// retires the current one.
    fn replace_read_buf(&mut self, capacity: usize) {
        let mut next = self.reusable_read_buf(capacity);
        next.extend_from_slice(&self.read_buf);
        let used = std::mem::replace(&mut self.read_buf, next);
        self.retire_read_buf(used);
    }

    /// An empty buffer with room for `capacity` bytes: the oldest retired buffer that the
    /// application has dropped all messages of and that is large enough, else a new one.
    fn reusable_read_buf(&mut self, capacity: usize) -> BytesMut {
        let free = self
            .retired_read_bufs
            .iter_mut()
            .position(|buf| buf.try_reclaim(capacity));
        match free.and_then(|i| self.retired_read_bufs.remove(i)) {
            Some(buf) => buf,
            None => BytesMut::with_capacity(capacity),
        }
    }

    /// Keeps a used-up read buffer for [`Self::reusable_read_buf`]: up to
    /// [`MAX_RETIRED_READ_BUFS`] while large frames flow, [`MAX_RETIRED_SMALL_READ_BUFS`]
    /// while small ones do. A small-message buffer is usually reused in place
    /// (`try_reclaim`), but not when the application, on another thread, still holds a
    /// message sliced from it; dropped, it would be freed on that thread when the message
    /// goes and a fresh one allocated and faulted in here.
    fn retire_read_buf(&mut self, mut used: BytesMut) {
        let keep = match self.read_buf_size < LARGE_READ_BUF_BYTES {
            true => MAX_RETIRED_SMALL_READ_BUFS,
            false => MAX_RETIRED_READ_BUFS,
        };
        used.clear();
        while self.retired_read_bufs.len() >= keep {
            self.retired_read_bufs.pop_front();
        }
        self.retired_read_bufs.push_back(used);
    }

    /// Moves the connection's own output and the peer's queued messages into `out`, and
    /// registers this task to be woken when more is queued. Returns the closing state.
    fn gather_output(&mut self, cx: &mut Context<'_>) -> Option<Option<Instant>> {
        // Take new output only once the last is written: while the kernel pushes back,
        // messages stay in the peer's queue, where the HWM counts (and caps) them, and our own
        // commands stay in the connection, where heartbeat answers coalesce.
        let idle = self.out.is_empty();
        let mut to_seal = false;
        let closing = {
            let mut state = self.shared.lock();
            let core = &mut state.core;
            let closing = core.closing_for(self.id);
            if let Some(peer) = core.peers.get_mut(self.id) {
                let mut freed = false;
                if self.ready && idle && !peer.out.is_empty() {
                    self.last_batch = peer.out.len();
                    // Swap buffers: the sender refills the one this task just wrote out (or,
                    // when boxing, emptied), capacity and all, instead of growing a new one
                    // that this task then frees on another thread.
                    to_seal = self.conn.encrypts();
                    match to_seal {
                        true => std::mem::swap(&mut peer.out, &mut self.sealing),
                        false => std::mem::swap(&mut peer.out, &mut self.out),
                    }
                    let taken = std::mem::take(&mut peer.out_msgs);
                    freed = taken > 0;
                    peer.dense = taken > 1;
                    peer.partial = 0;
                }
                peer.app_reads = self.by_app();
                // From here until the next call, only this task writes to the stream: it holds
                // bytes now if it held some before or has just taken a batch.
                peer.writer_busy = !self.out.is_empty() || to_seal || self.conn.has_transmit();
                match &peer.task {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => peer.task = Some(cx.waker().clone()),
                }
                if freed {
                    core.send_wakers.wake_all();
                }
            }
            closing
        };
        // The batch goes before our own commands, as its front may be the rest of a message
        // a sender started writing directly. Boxing (CURVE) happens here, outside the lock.
        if to_seal {
            self.conn.seal_batch(&mut self.sealing, &mut self.out);
        }
        if idle && let Some(bytes) = self.conn.take_transmit() {
            self.out.push_bytes(&bytes);
        }
        closing
    }

    /// Writes until `out` is empty or the kernel pushes back. `Ready(Ok(wrote_anything))`.
    fn write(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Error>> {
        let mut wrote = false;
        while !self.out.is_empty() {
            match self.stream.poll_write_ready(cx) {
                Poll::Pending => {
                    return if wrote {
                        Poll::Ready(Ok(true))
                    } else {
                        Poll::Pending
                    };
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Ready(Ok(())) => {}
            }
            let mut slices = [IoSlice::new(&[]); MAX_WRITEV_IOVECS];
            let n = self.out.chunks_vectored(&mut slices);
            match self.stream.try_write_vectored(&slices[..n]) {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
                }
                Ok(written) => {
                    self.out.advance(written);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        Poll::Ready(Ok(wrote))
    }
}
