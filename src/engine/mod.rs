//! The tokio engine: the only layer that spawns tasks or reads the clock.
//!
//! # Task topology
//! ```text
//!  user task ── send ──► [Mutex<State>: per-peer WriteBuf] ──wake──► connection task ──► kernel
//!  user task ◄── recv ── [Mutex<State>: FairQueue inbox]  ◄──batch── connection task ◄── kernel
//! ```
//! * One **connection task** per peer owns the stream and the [`wire::Connection`]. It reads
//!   up to 120 KiB at a time (512 KiB once large frames flow, into buffers reused when the
//!   application has dropped their messages), decodes every complete frame and hands the
//!   whole batch to the socket under one lock; it takes everything queued for its peer in
//!   one swap and writes it with vectored writes.
//! * REQ and REP senders write to an idle peer's stream themselves, and so do DEALER, ROUTER,
//!   PUSH and PAIR senders on a current-thread runtime while their messages are sparse (see
//!   [`DirectWrite`]).
//! * An **inproc** peer has no stream and no connection task: its slot queues whole messages
//!   and the sender hands them to the other socket's inbox itself when that socket's lock is
//!   free; a small mover task per connection does the rest (see `inproc.rs`).
//! * A **listener task** per bound endpoint accepts and spawns connection tasks; the
//!   listening socket itself sits in the socket state, so `unbind` and `close` close it before
//!   they return (see `listener.rs`). A **connector task** per connected endpoint connects,
//!   waits for the connection task and reconnects with backoff when it ends, unless the peer
//!   closed with an ERROR command (RFC 23: fatal, do not reconnect).
//! * Lifecycle calls are synchronous in effect: `disconnect` and `unbind` detach the
//!   endpoint's peers from the routing structures under the lock before returning, so no later
//!   send can choose them; their connection tasks then write what was already queued for them
//!   (up to the linger period, as libzmq's terminating pipes do) and end. A connected
//!   endpoint's persistent slot (below) that still holds messages keeps its connector
//!   connecting until they are written or the linger period is over.
//! * The socket's state sits behind one `std::sync::Mutex` held only for short, non-async
//!   critical sections. Sending encodes the message straight into the chosen peer's
//!   [`WriteBuf`] (so the connection task never re-encodes, and small messages cost no
//!   allocation) and wakes the connection task only when that buffer goes from empty to
//!   non-empty. This departs from ARCHITECTURE.md's per-peer message pipes: the "pipe" *is*
//!   the encoded byte buffer, with the HWM counted in messages.
//! * A connection joins the socket's routing structures once its handshake completed (like
//!   libzmq with `ZMQ_IMMEDIATE=1`), except that with `immediate` off (the default, as in
//!   libzmq) a PUSH, DEALER or REQ `connect` creates a persistent peer slot at once, routable
//!   before any connection, which each connection to that endpoint adopts and which outlives
//!   them (see `Peer::persistent` and spec/sockets.md §4).
//!
//! [`wire::Connection`]: crate::wire::Connection

mod connection;
mod connector;
mod help;
mod inproc;
mod listener;
#[cfg(test)]
mod mock_io;
#[cfg(test)]
mod tests;
pub(crate) mod transport;
mod waker;

use crate::endpoint::{Endpoint, ToEndpoint};
use crate::error::{Error, Result, SendError};
use crate::message::Message;
use crate::monitor::{Monitor, MonitorEventKind, Monitors};
use crate::options::SocketOptions;
use crate::pattern::{FairQueue, LoadBalancer, PeerId, PeerSlab};
use crate::stats::{PeerStats, SocketStats, Traffic};
use crate::wire::frame::EncodedMessage;
use crate::wire::frame::MAX_WRITEV_IOVECS;
use crate::wire::{PeerInfo, Security, SocketType, WriteBuf};
use bytes::Bytes;
use std::future::{Future, poll_fn};
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant, SystemTime};
use tokio::task::AbortHandle;
use tokio::time::Sleep;
use tracing::Instrument;
use transport::Stream;
pub(crate) use waker::{WaitKey, WakerList};

/// The id of the next socket created in this process, for the `socket` span of its logs.
static NEXT_SOCKET_ID: AtomicU64 = AtomicU64::new(1);

/// Socket-type behaviour the engine calls into, under the socket lock.
pub(crate) trait Pattern: Send + 'static {
    /// A peer completed its handshake. Return false to refuse it (the connection closes).
    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool;
    /// A ready peer went away (its queued inbound messages stay readable).
    fn detach(&mut self, core: &mut Core, peer: PeerId);
    /// The options changed on the live socket (already validated, and stored once this
    /// returns): take up what the pattern keeps of them.
    fn options_changed(&mut self, _core: &mut Core, _options: &SocketOptions) {}
    /// A message arrived. `Err` hands it back when the peer's inbox is full: the connection
    /// stops reading until there is room.
    #[inline]
    fn deliver(&mut self, core: &mut Core, peer: PeerId, message: Message) -> Result<(), Message> {
        core.push_inbox(peer, message)
    }
    /// A subscription or cancellation arrived (publishers act on it; others ignore it).
    /// `Err` hands the prefix back when the pattern cannot queue what it would tell the
    /// application (XPUB's notifications, at the RCVHWM): the connection stops reading until
    /// [`Core::room_freed`] is called for the peer.
    fn subscription(
        &mut self,
        _core: &mut Core,
        _peer: PeerId,
        _subscribe: bool,
        _prefix: Bytes,
    ) -> Result<(), Bytes> {
        Ok(())
    }
    /// A call waiting on a wake-up list of the pattern's own ended: forget its waker.
    fn forget_waiter(&mut self, _key: WaitKey) {}
    /// The socket started closing: wake the calls waiting on the pattern's own lists (they
    /// then return `Error::Closed`).
    fn closing(&mut self) {}
}

/// One connection's slot in the socket state.
#[derive(Debug, Default)]
pub(crate) struct Peer {
    /// Encoded messages waiting for the connection task.
    pub out: WriteBuf,
    /// Messages in `out` (the send HWM counts these).
    pub out_msgs: usize,
    /// The connection task, to wake when `out` gains bytes, inbox room frees or we close.
    task: Option<Waker>,
    /// Set once the handshake completed.
    pub info: Option<PeerInfo>,
    /// False once the connection ended; the slot lingers while inbound messages remain.
    alive: bool,
    /// The connection task is waiting for room in this peer's inbox queue.
    wants_room: bool,
    /// Bytes of this peer's messages in the inbox (see [`INBOX_SOFT_LIMIT_BYTES`]).
    inbox_bytes: usize,
    /// The stream, shared with the connection task, for sockets that write directly.
    stream: Option<Arc<Stream>>,
    /// The connection task runs on a current-thread runtime: it writes only when the task
    /// that sends gives the thread up (see [`DirectWrite::Sparse`]).
    writer_waits_for_sender: bool,
    /// The connection task's last batch held more than one message: messages come faster
    /// than it takes them, so [`DirectWrite::Sparse`] senders leave the writing to it.
    dense: bool,
    /// When a [`DirectWrite::Sparse`] sender last wrote to the stream itself.
    last_direct_write: Option<Instant>,
    /// The connection task owns the stream's write side (it has bytes in flight); nobody else
    /// may write until it gives it back under the lock.
    writer_busy: bool,
    /// The bound or connected endpoint this connection came from.
    endpoint: EndpointId,
    /// The pattern knows this peer (attached after the handshake, until detached).
    attached: bool,
    /// `Some(linger deadline)` once its endpoint was unbound or disconnected: the peer is
    /// detached, and its task writes what is queued (the inner `None` lingers forever) and
    /// ends.
    leaving: Option<Option<Instant>>,
    /// What this connection carried and dropped.
    traffic: Traffic,
    /// The peer's `ip:port` (TCP only).
    address: Option<String>,
    /// Connections to this peer's endpoint before this one.
    reconnects: u64,
    /// When the handshake completed.
    connected_since: Option<SystemTime>,
    /// The round trip of the last heartbeat the peer answered.
    heartbeat_rtt: Option<Duration>,
    /// The slot of a connected endpoint with `immediate` off: created at `connect`, routable
    /// at once, adopted by each connection to that endpoint and kept between them with its
    /// queue, until the endpoint is disconnected or the socket closes (libzmq's pipe of a
    /// connecting session, with `ZMQ_IMMEDIATE=0`). If it still holds messages then, it
    /// stays, detached and `leaving`, while its connector tries to deliver them within the
    /// linger period (see [`Peer::drains`]).
    persistent: bool,
    /// Bytes at the front of `out` that are the rest of a message a sender's direct write
    /// started on the stream: if the connection ends now, they must not start the next
    /// connection's stream (the messages queued behind them may).
    partial: usize,
    /// An inproc peer's queue and link to the other socket, used instead of `out` and the
    /// stream (see [`inproc`]).
    inproc: Option<inproc::Link>,
    /// The connection's driver, for a receiving call to poll (see [`help`]); set once the
    /// handshake completed.
    helper: Option<std::sync::Weak<dyn help::Help>>,
    /// A receiving call polled the connection last: it takes reading up again once the inbox
    /// is empty, so room freed in the inbox does not wake the task.
    app_reads: bool,
}

/// Encoded bytes queued for one peer beyond which blocking senders wait for the connection
/// task to take the batch, even under the HWM. Without it a current-thread sender would queue
/// up to HWM messages (64 MiB of 64 KiB messages) before the writer runs: a working set far
/// past the caches, and page faults as the allocator returns and refetches that memory. 1 MiB
/// still fits the caches and makes each write big enough that the per-write cost (syscall,
/// waking the reader) stays small: against 256 KiB it measured 25-35 % faster at 64 KiB
/// messages and no slower for small ones.
pub(crate) const QUEUE_SOFT_LIMIT_BYTES: usize = 1024 * 1024;

/// Bytes of one peer's messages the inbox takes before that peer's connection stops reading,
/// even under the RCVHWM (which counts messages). The receiving side of
/// [`QUEUE_SOFT_LIMIT_BYTES`]: 1,000 queued 64 KiB messages are 64 MiB that the allocator
/// hands out, takes back and faults in again each time a slow reader catches up, and once
/// a reader falls behind that churn keeps it behind (64 KiB PUSH/PULL ran at half speed in
/// about half the runs). Capped by bytes, the queue stays in the caches and the kernel's
/// socket buffer does the rest of the buffering, pushing back on the sender as flow control.
pub(crate) const INBOX_SOFT_LIMIT_BYTES: usize = 1024 * 1024;

impl Peer {
    /// Whether the HWM (in messages; 0: unlimited) leaves room for one more message: a peer
    /// takes messages once its handshake completed, or at once if it is a `persistent` slot.
    #[inline]
    pub fn has_room(&self, hwm: usize) -> bool {
        (self.info.is_some() || self.persistent) && (hwm == 0 || self.out_msgs < hwm)
    }

    /// Whether a blocking sender may queue now: under the HWM and the soft byte limit.
    #[inline]
    pub fn can_accept(&self, hwm: usize) -> bool {
        self.has_room(hwm) && self.out.len() < QUEUE_SOFT_LIMIT_BYTES
    }

    /// Whether a message of `size` payload bytes is within what the peer announced it
    /// accepts (its `max_msg_size`); a peer that announced nothing takes any size.
    #[inline]
    pub fn fits(&self, size: u64) -> bool {
        self.check_size(size).is_ok()
    }

    /// [`Error::MessageTooLarge`] unless a message of `size` bytes [fits](Peer::fits).
    #[inline]
    pub fn check_size(&self, size: u64) -> Result<()> {
        match self.info.as_ref().and_then(|info| info.max_msg_size) {
            Some(limit) if size > limit => Err(Error::MessageTooLarge { size, limit }),
            _ => Ok(()),
        }
    }

    /// Whether messages wait in this peer's queue (not yet taken by a connection task).
    fn holds_messages(&self) -> bool {
        self.out_msgs > 0 || !self.out.is_empty()
    }

    /// Whether this is a persistent slot whose endpoint was removed while it held messages:
    /// its connector keeps connecting to deliver them, within the linger period.
    fn drains(&self) -> bool {
        self.persistent && self.leaving.is_some()
    }

    /// The negotiated ZMTP version.
    pub fn version(&self) -> (u8, u8) {
        self.info.as_ref().map_or((3, 1), |i| i.version)
    }

    fn wake_task(&mut self) {
        if let Some(w) = self.task.take() {
            w.wake();
        }
    }

    /// Wakes the connection task if it stopped reading for want of room in what the
    /// application has not received yet.
    fn room_freed(&mut self) {
        if std::mem::take(&mut self.wants_room) {
            self.wake_task();
        }
    }

    /// After a message was queued: if the queue was empty, either write it to the stream right
    /// here (direct-write sockets, when the connection task has nothing in flight) or return
    /// the connection task, for the caller to wake.
    #[inline]
    fn kick(&mut self, was_empty: bool, direct_write: DirectWrite) -> Option<Waker> {
        if !was_empty {
            return None;
        }
        if self.may_write_now(direct_write) && self.write_now() {
            return None;
        }
        self.task.take()
    }

    /// Whether the sender may write the queue to the stream itself (see [`DirectWrite`]).
    fn may_write_now(&mut self, direct_write: DirectWrite) -> bool {
        if self.writer_busy || self.stream.is_none() {
            return false;
        }
        match direct_write {
            DirectWrite::Never => false,
            DirectWrite::Always => true,
            DirectWrite::Sparse if self.dense || !self.writer_waits_for_sender => false,
            DirectWrite::Sparse => {
                let now = now();
                let recent = self
                    .last_direct_write
                    .is_some_and(|last| now.saturating_duration_since(last) < SPARSE_GAP);
                if recent {
                    // A stream, not a trickle: one system call per message would cost more
                    // than waking the connection task once per batch.
                    self.dense = true;
                    return false;
                }
                self.last_direct_write = Some(now);
                true
            }
        }
    }

    /// Writes the queue straight to the stream from the sending task, skipping the hop to
    /// the connection task: for request–reply, where each message waits on the previous
    /// reply, that hop is a task wake-up and a scheduler pass on the latency path. Returns
    /// true when everything went; otherwise what is left stays queued, in order, for the
    /// connection task (which takes the queue only after its own bytes are out).
    fn write_now(&mut self) -> bool {
        let Peer {
            stream,
            out,
            out_msgs,
            partial,
            ..
        } = self;
        let Some(stream) = stream.as_deref() else {
            return false;
        };
        loop {
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_WRITEV_IOVECS];
                let n = out.chunks_vectored(&mut slices);
                match stream.try_write_vectored(&slices[..n]) {
                    Ok(0) | Err(_) => return false,
                    Ok(written) => written,
                }
            };
            out.advance(written);
            // A direct write starts on an empty queue, so what is left is that one message's.
            *partial = out.len();
            if out.is_empty() {
                *out_msgs = 0;
                return true;
            }
        }
    }
}

/// When a sender writes its message to the peer's stream itself, skipping the hop to the
/// connection task (a wake-up, and on the multi-thread runtime another thread's turn). Only
/// for an idle stream (the connection task has nothing in flight) and never with CURVE, whose
/// boxes the connection task numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectWrite {
    /// The connection task writes everything (PUB and XPUB, whose one send would otherwise
    /// make a system call per subscriber; SUB and XSUB; CURVE; a conflating socket).
    Never,
    /// On a current-thread runtime, sparse messages go out at once and a stream through the
    /// connection task (DEALER, ROUTER, PUSH, PAIR). There the connection task runs only when
    /// the sending task gives the thread up: a task that computes between sends without
    /// waiting would otherwise hold every message until the SNDHWM filled (a message every
    /// 100 µs waited 53 ms at the median). Messages are sparse while the task's last batch
    /// held one message and the last direct write was at least [`SPARSE_GAP`] ago. On the
    /// multi-thread runtime the connection task writes at once anyway, and senders writing
    /// under the socket lock slowed a busy ROUTER (spec/performance.md).
    Sparse,
    /// Every message to an idle stream (REQ and REP, where each message waits on the one
    /// before).
    Always,
}

/// The largest queue a send stopped at the SNDHWM writes out for its connection (see
/// [`help`]). A queue of small messages (the default 1,000 of up to 100 bytes fit) goes out
/// in one short system call, sooner than the connection task would be scheduled to write it
/// and wake the sender. A larger one is better left to the task, which copies it into the
/// kernel on another core while the sender goes on: writing 1 MiB of 1 KiB messages itself,
/// a multi-thread TCP sender fell from 1.43 to 1.28 M msg/s.
const SEND_HELP_MAX_BYTES: usize = 128 * 1024;

/// The shortest time between two direct writes of a [`DirectWrite::Sparse`] sender. A write
/// on a loopback stream costs about 2 µs of system call; messages closer than 10 times that
/// go through the connection task, which writes them in batches.
const SPARSE_GAP: Duration = Duration::from_micros(20);

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

/// The socket-type independent part of the socket state.
#[derive(Debug)]
pub(crate) struct Core {
    pub sndhwm: usize,
    pub peers: PeerSlab<Peer>,
    pub lb: LoadBalancer,
    pub inbox: FairQueue<Message>,
    pub recv_wakers: WakerList,
    /// Inproc peers whose last held message was read while the other side had more
    /// queued: the next socket call takes those first ([`inproc::pull`]).
    pull_from: Vec<PeerId>,
    pub send_wakers: WakerList,
    close_wakers: WakerList,
    /// The call being polled under the lock, whose waker `park_*` registers.
    waiter: WaitKey,
    /// The last key handed to a waiting call.
    last_wait_key: u64,
    /// `Some(deadline)` once closing; the inner `None` lingers forever.
    closing: Option<Option<Instant>>,
    endpoints: Vec<BoundOrConnected>,
    /// The last id handed to an endpoint.
    last_endpoint_id: u64,
    last_endpoint: Option<Endpoint>,
    /// Messages dropped because a peer was at its HWM (PUB/XPUB/ROUTER never block).
    pub dropped_msgs: u64,
    /// The traffic of peers whose slots were released, for the socket's totals.
    departed: Traffic,
    /// When senders write to an idle peer's stream themselves.
    direct_write: DirectWrite,
    /// The message being fanned out, encoded once for all its receivers (see
    /// [`Core::encode_for_fanout`]).
    fanout: EncodedMessage,
    /// `conflate`: each peer's queues, in and out, keep only the newest message (the HWMs
    /// are then unlimited: nothing ever waits for room).
    conflate: bool,
    /// Connection tasks to wake once the socket lock is released, while a fan-out defers
    /// them (see [`Core::defer_task_wakes`]).
    deferred_wakes: Option<Vec<Waker>>,
}

/// How a completed handshake went for a peer slot (see [`Core::handshake_completed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handshake {
    /// The slot is gone.
    Gone,
    /// Its endpoint went away meanwhile: never routable; what a persistent slot queued goes
    /// out within the linger period.
    Leaving,
    /// The pattern refused the peer (a PAIR with a peer already).
    Refused,
    /// The peer is routable.
    Attached,
}

/// What [`Core::queue_for`] queues for one peer.
enum Outgoing<'a> {
    /// A message the socket owns.
    Message(Message),
    /// `head` then `body` as one message.
    Parts {
        head: &'a [Bytes],
        body: &'a [Bytes],
    },
    /// The message of the fan-out in progress (see [`Core::encode_for_fanout`]).
    Fanout(&'a Message),
    /// A subscription (`true`) or its cancellation.
    Subscription { subscribe: bool, prefix: &'a [u8] },
}

impl Outgoing<'_> {
    /// What an inproc peer queues: the message itself, without the properties of the
    /// connection it may have arrived on.
    fn into_item(self) -> inproc::Item {
        match self {
            Outgoing::Message(message) => inproc::Item::Message(message.without_properties()),
            Outgoing::Parts { head, body } => {
                inproc::Item::Message(head.iter().chain(body).cloned().collect())
            }
            Outgoing::Fanout(message) => {
                inproc::Item::Message(message.clone().without_properties())
            }
            Outgoing::Subscription { subscribe, prefix } => {
                inproc::Item::subscription(subscribe, prefix)
            }
        }
    }
}

/// Names one bound or connected endpoint for the lifetime of the socket (never reused), so a
/// connection can tell whether the endpoint it came from is still there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EndpointId(u64);

#[derive(Debug)]
struct BoundOrConnected {
    id: EndpointId,
    /// The endpoint as bound (real port) or as given to connect.
    endpoint: Endpoint,
    /// Bound (else connected).
    bound: bool,
    /// The listening socket of a bound tcp or ipc endpoint: it lives here, not in the
    /// listener task, so that removing the entry closes it at once (and unlinks its ipc path
    /// if still ours).
    listener: Option<transport::Listener>,
    /// The listener or connector task (a connector that stopped by itself, after an ERROR
    /// or with reconnection off, clears it).
    task: Option<AbortHandle>,
    /// A connected endpoint's `persistent` peer slot (`immediate` off).
    slot: Option<PeerId>,
}

impl BoundOrConnected {
    fn is_bound(&self) -> bool {
        self.bound
    }
}

impl Core {
    fn new(options: &SocketOptions) -> Self {
        Core {
            sndhwm: 0,
            peers: PeerSlab::new(),
            lb: LoadBalancer::new(),
            inbox: FairQueue::new(0),
            recv_wakers: WakerList::default(),
            pull_from: Vec::new(),
            send_wakers: WakerList::default(),
            close_wakers: WakerList::default(),
            waiter: WaitKey::NOBODY,
            last_wait_key: 0,
            closing: None,
            endpoints: Vec::new(),
            last_endpoint_id: 0,
            last_endpoint: None,
            dropped_msgs: 0,
            departed: Traffic::default(),
            direct_write: DirectWrite::Never,
            fanout: EncodedMessage::new(),
            conflate: options.conflate,
            deferred_wakes: None,
        }
        .with_hwms(options)
    }

    /// Takes the HWMs from `options` (unlimited when conflating).
    fn with_hwms(mut self, options: &SocketOptions) -> Self {
        self.set_hwms(options);
        self
    }

    fn set_hwms(&mut self, options: &SocketOptions) {
        let (sndhwm, rcvhwm) = if self.conflate {
            (0, 0)
        } else {
            (options.sndhwm, options.rcvhwm)
        };
        self.sndhwm = sndhwm;
        self.inbox.set_hwm(rcvhwm);
    }

    /// Whether the socket is closing.
    pub fn is_closing(&self) -> bool {
        self.closing.is_some()
    }

    /// Parks the call being polled until a message may be there to receive.
    pub fn park_recv(&mut self, cx: &Context<'_>) {
        // Only a call that did not pull first gets here with a pull wanted; the movers hand
        // over instead.
        for peer in self.pull_from.drain(..) {
            if let Some(link) = self.peers.get(peer).and_then(|p| p.inproc.as_ref()) {
                link.wake_mover();
            }
        }
        self.recv_wakers.register(self.waiter, cx.waker());
    }

    /// Parks the call being polled until a peer may have room.
    pub fn park_send(&mut self, cx: &Context<'_>) {
        self.send_wakers.register(self.waiter, cx.waker());
    }

    /// The key of the call being polled, for wake-up lists kept outside the core.
    pub fn waiter(&self) -> WaitKey {
        self.waiter
    }

    fn forget_waiter(&mut self, key: WaitKey) {
        self.recv_wakers.remove(key);
        self.send_wakers.remove(key);
        self.close_wakers.remove(key);
    }

    /// Whether `id` is still bound or connected.
    fn has_endpoint(&self, id: EndpointId) -> bool {
        self.endpoints.iter().any(|e| e.id == id)
    }

    /// `Some(linger deadline)` once `peer`'s connection must finish: the socket is closing or
    /// the peer's endpoint was removed (the inner `None` lingers forever).
    fn closing_for(&self, peer: PeerId) -> Option<Option<Instant>> {
        self.closing
            .or_else(|| self.peers.get(peer).and_then(|p| p.leaving))
    }

    /// Peer slot `id` completed its handshake (or, inproc, its link) with a peer described by
    /// `info`: it joins the pattern (a persistent slot is in it since `connect`) and waiting
    /// senders are woken. A slot whose endpoint went away meanwhile never becomes routable.
    fn handshake_completed<P: Pattern>(
        &mut self,
        pattern: &mut P,
        id: PeerId,
        info: PeerInfo,
    ) -> Handshake {
        let Some(peer) = self.peers.get_mut(id) else {
            return Handshake::Gone;
        };
        if peer.leaving.is_some() {
            return Handshake::Leaving;
        }
        peer.info = Some(info);
        peer.connected_since = Some(SystemTime::now());
        if !peer.attached && !pattern.attach(self, id) {
            if let Some(peer) = self.peers.get_mut(id) {
                peer.info = None;
            }
            return Handshake::Refused;
        }
        if let Some(peer) = self.peers.get_mut(id) {
            peer.attached = true;
        }
        self.send_wakers.wake_all();
        Handshake::Attached
    }

    /// Takes the peer out of the pattern's routing, if it is in it.
    fn detach_peer<P: Pattern>(&mut self, pattern: &mut P, id: PeerId) {
        if let Some(peer) = self.peers.get_mut(id)
            && std::mem::take(&mut peer.attached)
        {
            pattern.detach(self, id);
        }
    }

    /// Queues `outgoing` for `peer`: encoded onto its byte queue, or as it is for an inproc
    /// peer. A message (not a subscription) counts against the HWM and, with its payload
    /// bytes, in the peer's traffic. Hands the queue on if it was empty (see [`Peer::kick`]
    /// and [`inproc::Link::push`]).
    fn queue_for(&mut self, peer: PeerId, outgoing: Outgoing<'_>) {
        let direct_write = self.direct_write;
        let is_message = !matches!(outgoing, Outgoing::Subscription { .. });
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if let Some(link) = &mut p.inproc {
            let item = outgoing.into_item();
            if is_message {
                if self.conflate {
                    let dropped = link.discard_messages();
                    p.traffic.dropped += dropped as u64;
                    self.dropped_msgs += dropped as u64;
                    p.out_msgs -= dropped;
                }
                p.out_msgs += 1;
                p.traffic.messages_out += 1;
                p.traffic.bytes_out += item.payload_len() as u64;
            }
            let at_hwm = self.sndhwm > 0 && p.out_msgs >= self.sndhwm;
            let sent = link.push(item, at_hwm || !is_message);
            p.out_msgs -= sent.messages;
            if sent.retry {
                p.wake_task();
            }
            return;
        }
        if is_message && self.conflate && p.out_msgs > 0 {
            // Only message sockets conflate (PUSH, PUB, DEALER): their queues hold
            // nothing but whole messages, not yet taken by the connection task.
            p.out.discard();
            p.traffic.dropped += p.out_msgs as u64;
            self.dropped_msgs += p.out_msgs as u64;
            p.out_msgs = 0;
        }
        let was_empty = p.out.is_empty();
        let payload_before = p.out.payload_queued();
        match outgoing {
            Outgoing::Message(message) => p.out.push_message(&message),
            Outgoing::Parts { head, body } => p.out.push_parts(head, body),
            Outgoing::Fanout(message) => {
                if !p.out.push_encoded(&self.fanout) {
                    p.out.push_message(message);
                }
            }
            Outgoing::Subscription { subscribe, prefix } => {
                let version = p.version();
                p.out.push_subscription(version, subscribe, prefix)
            }
        }
        if is_message {
            p.out_msgs += 1;
            p.traffic.messages_out += 1;
            p.traffic.bytes_out += p.out.payload_queued() - payload_before;
        }
        if let Some(task) = p.kick(was_empty, direct_write) {
            match &mut self.deferred_wakes {
                Some(wakes) => wakes.push(task),
                None => task.wake(),
            }
        }
    }

    /// From now until [`Core::take_deferred_wakes`], a connection task that a queued message
    /// should wake is set aside instead, for the caller to wake once it has released the
    /// socket lock. A fan-out queues for many peers under one lock: a task woken in the middle
    /// ran on another worker at once, found the lock still held, and slept on it, and every
    /// unlock then had to wake it (at 100 subscribers, nine in ten of the publisher's
    /// `futex` calls were on the socket lock; spec/performance.md).
    pub fn defer_task_wakes(&mut self) {
        self.deferred_wakes.get_or_insert_with(Vec::new);
    }

    /// The connection tasks set aside since [`Core::defer_task_wakes`]; wakes are immediate
    /// again from here on. Wake them after releasing the lock.
    #[must_use]
    pub fn take_deferred_wakes(&mut self) -> Vec<Waker> {
        self.deferred_wakes.take().unwrap_or_default()
    }

    /// Queues `message` for `peer`, handing it on if the queue was empty.
    #[inline]
    pub fn enqueue(&mut self, peer: PeerId, message: Message) {
        self.queue_for(peer, Outgoing::Message(message));
    }

    /// Counts a message for `peer` dropped at its HWM (PUB, XPUB, ROUTER and REP drop rather
    /// than wait).
    pub fn count_drop(&mut self, peer: PeerId) {
        self.dropped_msgs += 1;
        if let Some(p) = self.peers.get_mut(peer) {
            p.traffic.dropped += 1;
        }
    }

    /// Queues `head` then `body` as one message for `peer` (envelopes: REQ's delimiter, REP's
    /// saved envelope, ROUTER's body without its routing-id frame), handing it on if the
    /// queue was empty. Counts against the HWM like [`Core::enqueue`].
    pub fn enqueue_parts(&mut self, peer: PeerId, head: &[Bytes], body: &[Bytes]) {
        if head.is_empty() && body.is_empty() {
            return;
        }
        self.queue_for(peer, Outgoing::Parts { head, body });
    }

    /// Prepares `message` to be queued for many peers (PUB's fan-out): small frames are
    /// encoded once here and copied per peer by [`Core::enqueue_fanout`]; a message with a
    /// large frame is queued by reference per peer instead (frames are never copied).
    pub fn encode_for_fanout(&mut self, message: &Message) {
        self.fanout.encode(message);
    }

    /// Queues the message given to [`Core::encode_for_fanout`] for `peer`, counting it against
    /// the HWM like [`Core::enqueue`].
    pub fn enqueue_fanout(&mut self, peer: PeerId, message: &Message) {
        self.queue_for(peer, Outgoing::Fanout(message));
    }

    /// Queues a subscription or cancellation of `prefix` for `peer`, in the form its ZMTP
    /// version needs. Subscriptions do not count against the HWM: losing one would silently
    /// starve the subscriber.
    pub fn enqueue_subscription(&mut self, peer: PeerId, subscribe: bool, prefix: &[u8]) {
        self.queue_for(peer, Outgoing::Subscription { subscribe, prefix });
    }

    /// Round-robin send over ready peers with room (PUSH, PAIR, DEALER).
    #[inline]
    pub fn send_round_robin(
        &mut self,
        message: &mut Option<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<PeerId>> {
        let size = message.as_ref().map_or(0, |m| m.byte_len() as u64);
        let peer = ready!(self.pick_round_robin(size, cx))?;
        if let Some(m) = message.take() {
            self.enqueue(peer, m);
        }
        Poll::Ready(Ok(peer))
    }

    /// The next ready peer in round robin with room for a message of `size` bytes, skipping
    /// peers that announced a smaller `max_msg_size`. Fails with
    /// [`Error::MessageTooLarge`] when every attached peer announced one smaller than `size`
    /// (waiting could never help); parks the call while none has room.
    #[inline]
    pub fn pick_round_robin(&mut self, size: u64, cx: &mut Context<'_>) -> Poll<Result<PeerId>> {
        let Core {
            lb, peers, sndhwm, ..
        } = self;
        let hwm = *sndhwm;
        if let Some(peer) = lb.next_peer(|id| {
            peers
                .get(id)
                .is_some_and(|p| p.can_accept(hwm) && p.fits(size))
        }) {
            return Poll::Ready(Ok(peer));
        }
        // `Ok(Some(refusal))` only when there are attached peers and none takes the size.
        let refusal =
            self.peers
                .iter()
                .filter(|(_, p)| p.attached)
                .try_fold(None, |first, (_, p)| match p.check_size(size) {
                    Ok(()) => Err(()),
                    Err(refused) => Ok(first.or(Some(refused))),
                });
        if let Ok(Some(refusal)) = refusal {
            return Poll::Ready(Err(refusal));
        }
        self.park_send(cx);
        Poll::Pending
    }

    /// Fair-queued receive (PULL, DEALER, ROUTER, SUB, …): the next message and its peer.
    /// A closed socket receives nothing more, whatever is still queued (as libzmq's).
    #[inline]
    pub fn recv_fair(&mut self, cx: &mut Context<'_>) -> Poll<Result<(PeerId, Message)>> {
        if self.is_closing() {
            return Poll::Ready(Err(Error::Closed));
        }
        match self.pop_inbox() {
            Some(item) => Poll::Ready(Ok(item)),
            None => {
                self.park_recv(cx);
                Poll::Pending
            }
        }
    }

    /// [`Core::recv_fair`] without the peer (PULL, PAIR, DEALER, SUB, XPUB): the next message that
    /// `keep` accepts, discarding the others. The result is built once, here: mapping
    /// `recv_fair`'s result into this one copied the message through a differently laid-out
    /// enum, with stores and loads that do not line up, on every receive.
    #[inline]
    pub fn recv_fair_message(
        &mut self,
        cx: &mut Context<'_>,
        mut keep: impl FnMut(&Message) -> bool,
    ) -> Poll<Result<Message>> {
        if self.is_closing() {
            return Poll::Ready(Err(Error::Closed));
        }
        while let Some((_, message)) = self.pop_inbox() {
            if keep(&message) {
                return Poll::Ready(Ok(message));
            }
        }
        self.park_recv(cx);
        Poll::Pending
    }

    /// Queues a message from `peer` for the application; gives it back when the peer is at
    /// its RCVHWM or has [`INBOX_SOFT_LIMIT_BYTES`] queued (its connection then stops reading).
    #[inline]
    pub fn push_inbox(&mut self, peer: PeerId, message: Message) -> Result<(), Message> {
        let Some(p) = self.peers.get_mut(peer) else {
            return Err(message);
        };
        if self.conflate {
            for older in self.inbox.take_queued(peer) {
                p.inbox_bytes = p.inbox_bytes.saturating_sub(older.byte_len());
                p.traffic.dropped += 1;
            }
        }
        if p.inbox_bytes >= INBOX_SOFT_LIMIT_BYTES {
            return Err(message);
        }
        let bytes = message.byte_len();
        self.inbox.push(peer, message)?;
        p.inbox_bytes += bytes;
        Ok(())
    }

    /// [`Peer::room_freed`] for `peer`, if it is still there.
    #[inline]
    pub fn room_freed(&mut self, peer: PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.room_freed();
        }
    }

    /// Pops one message, waking a connection task that waits for room and releasing the slot
    /// of a departed peer once its last message was read.
    #[inline]
    pub fn pop_inbox(&mut self) -> Option<(PeerId, Message)> {
        // One lookup of the peer for everything: this runs once per message received.
        let (peer, message) = self.inbox.pop()?;
        let Some(p) = self.peers.get_mut(peer) else {
            return Some((peer, message));
        };
        p.inbox_bytes = p.inbox_bytes.saturating_sub(message.byte_len());
        if !p.alive && !p.persistent {
            if self.inbox.queued(peer) == 0 {
                self.release_peer(peer);
                self.close_wakers.wake_all();
            }
        } else if let Some(link) = &p.inproc {
            let left = self.inbox.queued(peer);
            // The last message held from the connection: what its sender queued behind it
            // is taken at the next socket call (`inproc::pull`).
            if left == 0 && link.hungry() {
                self.pull_from.push(peer);
            }
            // An inproc sender is woken once half the room is free, not for every message
            // read: each wake-up then hands over a batch (a tcp sender has the kernel's
            // socket buffers between it and this inbox for that).
            if left <= self.inbox.hwm() / 2 {
                p.room_freed();
            }
        } else if p.wants_room && !p.app_reads {
            // A connection that stopped reading at the RCVHWM (or the byte limit) resumes
            // once half of it is free, so each wake-up hands over a batch rather than the
            // one message there is room for.
            let hwm = self.inbox.hwm();
            if (hwm == 0 || self.inbox.queued(peer) <= hwm / 2)
                && p.inbox_bytes <= INBOX_SOFT_LIMIT_BYTES / 2
            {
                p.room_freed();
            }
        }
        Some((peer, message))
    }

    /// Frees the slot of a departed peer whose inbound messages were all read, keeping its
    /// traffic in the socket's totals.
    fn release_peer(&mut self, peer: PeerId) {
        self.inbox.remove_peer(peer);
        if let Some(p) = self.peers.remove(peer) {
            self.departed.add(&p.traffic);
        }
    }

    /// The counters of the socket and of each peer with a completed handshake.
    fn stats(&self, socket_type: SocketType, rcvhwm: usize) -> SocketStats {
        let mut totals = self.departed;
        let mut peers = Vec::new();
        for (id, p) in self.peers.iter() {
            totals.add(&p.traffic);
            let (true, Some(info), Some(endpoint)) =
                (p.attached, &p.info, self.endpoint(p.endpoint))
            else {
                continue;
            };
            peers.push(PeerStats {
                endpoint: endpoint.clone(),
                address: p.address.clone(),
                routing_id: info.identity.clone().filter(|id| !id.is_empty()),
                socket_type: info.socket_type,
                messages_in: p.traffic.messages_in,
                messages_out: p.traffic.messages_out,
                bytes_in: p.traffic.bytes_in,
                bytes_out: p.traffic.bytes_out,
                dropped: p.traffic.dropped,
                queued_in: self.inbox.queued(id),
                rcvhwm,
                queued_out: p.out_msgs,
                sndhwm: self.sndhwm,
                reconnects: p.reconnects,
                connected_since: p.connected_since.unwrap_or(SystemTime::UNIX_EPOCH),
                heartbeat_rtt: p.heartbeat_rtt,
            });
        }
        SocketStats {
            socket_type,
            messages_in: totals.messages_in,
            messages_out: totals.messages_out,
            bytes_in: totals.bytes_in,
            bytes_out: totals.bytes_out,
            // Drops with no peer to charge (a ROUTER message to an unknown id) count here only.
            dropped: self.dropped_msgs,
            queued_in: self.inbox.len(),
            peers,
        }
    }

    /// The endpoint of id `id`, while it is bound or connected.
    fn endpoint(&self, id: EndpointId) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.id == id)
            .map(|e| &e.endpoint)
    }

    fn wake_all_tasks(&mut self) {
        for (_, p) in self.peers.iter_mut() {
            p.wake_task();
        }
        self.recv_wakers.wake_all();
        self.send_wakers.wake_all();
    }

    /// The listening socket of bound endpoint `id`, while it is bound.
    fn listener(&self, id: EndpointId) -> Option<&transport::Listener> {
        self.endpoints
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| e.listener.as_ref())
    }

    fn set_task(&mut self, id: EndpointId, task: AbortHandle) {
        if let Some(entry) = self.endpoints.iter_mut().find(|e| e.id == id) {
            entry.task = Some(task);
        }
    }

    /// Peers that `close` waits for: live connections, and slots whose connector still
    /// tries to deliver their queue.
    fn live_connections(&self) -> usize {
        self.peers
            .iter()
            .filter(|(_, p)| p.alive || p.drains())
            .count()
    }

    /// Registers a bound or connected endpoint; its task is added once spawned.
    fn add_endpoint(
        &mut self,
        endpoint: Endpoint,
        bound: bool,
        listener: Option<transport::Listener>,
    ) -> EndpointId {
        self.last_endpoint_id += 1;
        let id = EndpointId(self.last_endpoint_id);
        self.endpoints.push(BoundOrConnected {
            id,
            endpoint: endpoint.clone(),
            bound,
            listener,
            task: None,
            slot: None,
        });
        self.last_endpoint = Some(endpoint);
        id
    }

    /// Removes the endpoint's entry (closing its listening socket), stops its task, and
    /// detaches its peers, which write what is queued for them within the linger period and
    /// then close. Returns the endpoint if it had a listening socket (now closed).
    ///
    /// A connected endpoint's persistent slot (`immediate` off) that still holds messages
    /// keeps its connector instead: it goes on connecting, with its usual interval, until a
    /// connection has written the queue or the linger period has passed, as libzmq's
    /// session does (see [`Core::keeps_connecting`]). A slot with nothing queued, or a
    /// linger period already over, goes at once.
    fn remove_endpoint<P: Pattern>(
        &mut self,
        pattern: &mut P,
        index: usize,
        linger: Option<Instant>,
    ) -> Option<Endpoint> {
        let entry = self.endpoints.remove(index);
        let id = entry.id;
        // A connector that already ended (`task` cleared by `connector_ended`) cannot drain;
        // an inproc slot has no connector: the registry links it if the name is bound in
        // time (see `inproc::watch_drains`).
        let can_drain = entry.task.is_some() || matches!(entry.endpoint, Endpoint::Inproc(_));
        let drain = entry
            .slot
            .filter(|_| can_drain && linger.is_none_or(|deadline| deadline > now()))
            .filter(|&slot| self.peers.get(slot).is_some_and(Peer::holds_messages));
        if drain.is_none()
            && let Some(task) = &entry.task
        {
            task.abort();
        }
        let slot = entry.slot;
        let closed = entry.listener.is_some().then(|| entry.endpoint.clone());
        // Closes the listening socket now, before the caller returns.
        drop(entry);
        let leaving: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.alive && p.endpoint == id && p.leaving.is_none())
            .map(|(id, _)| id)
            .collect();
        for id in leaving {
            self.detach_peer(pattern, id);
            if let Some(peer) = self.peers.get_mut(id) {
                peer.leaving = Some(linger);
                peer.wake_task();
            }
        }
        if let Some(slot) = drain {
            // No longer routable; the connector (woken, so it takes up the deadline) and each
            // connection it makes serve the queue until it is written or the linger is over.
            self.detach_peer(pattern, slot);
            if let Some(peer) = self.peers.get_mut(slot) {
                peer.leaving = Some(linger);
                peer.wake_task();
            }
        } else if let Some(slot) = slot
            && let Some(peer) = self.peers.get_mut(slot)
        {
            // The slot is an ordinary peer from now on: a connection in it lingers as above;
            // with none, nothing is queued for the peer (or the linger is over): it goes.
            peer.persistent = false;
            if !peer.alive {
                peer.out.discard();
                peer.out_msgs = 0;
                self.detach_peer(pattern, slot);
                if self.inbox.queued(slot) == 0 {
                    self.release_peer(slot);
                }
            }
        }
        closed
    }

    /// Whether the connector of endpoint `id`, whose persistent slot is `slot`, connects
    /// again: while the endpoint is there, or, once it was removed, while its slot still holds
    /// messages and the linger period lasts.
    fn keeps_connecting(&self, id: EndpointId, slot: Option<PeerId>) -> bool {
        self.has_endpoint(id) || slot.is_some_and(|slot| self.drain_deadline(slot).is_some())
    }

    /// `Some(linger deadline)` (the inner `None`: forever) while `slot` is a removed
    /// endpoint's slot that still holds messages and whose linger period has not passed.
    fn drain_deadline(&self, slot: PeerId) -> Option<Option<Instant>> {
        let peer = self.peers.get(slot)?;
        if !peer.drains() || !peer.holds_messages() {
            return None;
        }
        self.closing_for(slot)
            .filter(|deadline| deadline.is_none_or(|d| d > now()))
    }

    /// The connector of endpoint `id` ended. While the endpoint is there, it is marked as
    /// having none (a later removal cannot wait for it); once removed, the slot it served
    /// goes, with whatever it still holds.
    fn connector_ended<P: Pattern>(
        &mut self,
        pattern: &mut P,
        id: EndpointId,
        slot: Option<PeerId>,
    ) {
        if let Some(entry) = self.endpoints.iter_mut().find(|e| e.id == id) {
            entry.task = None;
            return;
        }
        let Some(slot) = slot else { return };
        let Some(peer) = self.peers.get_mut(slot) else {
            return;
        };
        if !peer.drains() || peer.alive {
            return;
        }
        peer.persistent = false;
        peer.out.discard();
        peer.out_msgs = 0;
        self.detach_peer(pattern, slot);
        if self.inbox.queued(slot) == 0 {
            self.release_peer(slot);
        }
        self.close_wakers.wake_all();
    }
}

/// Core plus the socket type's own routing state.
#[derive(Debug)]
pub(crate) struct State<P> {
    pub core: Core,
    pub pattern: P,
}

impl<P: Pattern> State<P> {
    /// The connection of peer slot `id` ended (whatever the transport): the slot leaves the
    /// pattern and goes once its inbound messages are read, except an endpoint's persistent
    /// slot, which stays with its queue for the next connection.
    fn connection_ended(&mut self, id: PeerId) {
        let State { core, pattern } = self;
        let Some(peer) = core.peers.get_mut(id) else {
            return;
        };
        peer.alive = false;
        peer.task = None;
        peer.helper = None;
        peer.app_reads = false;
        // Release the socket now, not when the slot's last inbound message is read.
        peer.stream = None;
        if peer.persistent {
            // Routable while the endpoint is there; once it was removed, its connector
            // decides (`Core::keeps_connecting`). Only the rest of a message half written to
            // this connection goes.
            peer.info = None;
            peer.connected_since = None;
            peer.heartbeat_rtt = None;
            peer.writer_busy = false;
            let rest = std::mem::take(&mut peer.partial).min(peer.out.len());
            if rest > 0 {
                peer.out.advance(rest);
                peer.out_msgs = peer.out_msgs.saturating_sub(1);
            }
        } else {
            core.detach_peer(pattern, id);
            if core.inbox.queued(id) == 0 {
                core.release_peer(id);
            }
        }
        core.close_wakers.wake_all();
        // Senders blocked on this peer's room may now pick another peer or fail.
        core.send_wakers.wake_all();
    }
}

/// What every task of one socket shares.
#[derive(Debug)]
pub(crate) struct Shared<P> {
    pub socket_type: SocketType,
    /// The current options: changed by [`SocketCore::update_options`], read by each
    /// connection as it starts, each connect attempt and each send or receive that waits.
    /// Lock order: the state lock first, then this one (never the reverse).
    options: Mutex<SocketOptions>,
    /// The mechanism every connection of this socket uses (a CURVE client's generated key
    /// pair is made once, here).
    pub security: Security,
    /// `socket{kind, id}`: the parent of every span and event of this socket's tasks, so the
    /// logs of two sockets in one process can be told apart (see [`SocketCore::new`]).
    pub span: tracing::Span,
    /// Where endpoint and connection events go (see [`crate::monitor`]).
    pub monitors: Monitors,
    state: Mutex<State<P>>,
}

impl<P> Shared<P> {
    /// The current options (the guard must not be held across an await or while taking the
    /// state lock).
    pub fn options(&self) -> MutexGuard<'_, SocketOptions> {
        self.options.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the socket state (a panicking holder cannot leave it half-updated in a way that
    /// matters more than stopping the socket, so poisoning is ignored).
    pub fn lock(&self) -> MutexGuard<'_, State<P>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The engine half of every socket: endpoints, tasks, close, and the send/recv plumbing.
#[derive(Debug)]
pub(crate) struct SocketCore<P: Pattern> {
    shared: Arc<Shared<P>>,
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
                if helped || !helping.help(helper, cx, receiving) {
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
        receiving: bool,
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
        helper.help(cx.waker(), receiving)
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
        identity: Option<Bytes>,
        queued: usize,
    ) -> PeerId {
        let mut state = self.lock();
        let State { core, pattern } = &mut *state;
        let id = core.peers.insert(Peer {
            info: Some(PeerInfo {
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

/// The clock, through tokio so that tests with a paused clock control it.
/// Polls the sleep in `sleep` until `deadline`, creating it or moving it there first: one
/// timer per task, re-armed rather than reallocated.
pub(crate) fn poll_sleep_until(
    sleep: &mut Option<Pin<Box<Sleep>>>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let deadline = tokio::time::Instant::from_std(deadline);
    let sleep = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
    if sleep.deadline() != deadline {
        sleep.as_mut().reset(deadline);
    }
    sleep.as_mut().poll(cx)
}

pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn runtime() -> Result<tokio::runtime::Handle> {
    tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)
}

/// A random number from the standard library's per-process hash seeds (no `rand` dependency
/// for jitter and routing-id seeds).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now().elapsed().as_nanos() as u64);
    h.finish()
}
