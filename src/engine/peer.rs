//! [`Peer`]: one connection's slot in the socket state (its queue, its task, what the
//! connection told us), and when a sender writes to its stream itself ([`DirectWrite`]).

use super::transport::Stream;
use super::{EndpointId, help, inproc, now};
use crate::error::{Error, Result};
use crate::stats::Traffic;
use crate::wire::frame::MAX_WRITEV_IOVECS;
use crate::wire::{PeerInfo, WriteBuf};
use std::io::IoSlice;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant, SystemTime};

/// One connection's slot in the socket state.
#[derive(Debug, Default)]
pub(crate) struct Peer {
    /// Encoded messages waiting for the connection task.
    pub out: WriteBuf,
    /// Messages in `out` (the send HWM counts these).
    pub out_msgs: usize,
    /// The connection task, to wake when `out` gains bytes, inbox room frees or we close.
    pub(super) task: Option<Waker>,
    /// Set once the handshake completed.
    pub info: Option<PeerInfo>,
    /// False once the connection ended; the slot lingers while inbound messages remain.
    pub(super) alive: bool,
    /// The connection task is waiting for room in this peer's inbox queue.
    pub(super) wants_room: bool,
    /// Bytes of this peer's messages in the inbox (see [`INBOX_SOFT_LIMIT_BYTES`]).
    pub(super) inbox_bytes: usize,
    /// The stream, shared with the connection task, for sockets that write directly.
    pub(super) stream: Option<Arc<Stream>>,
    /// The connection task runs on a current-thread runtime: it writes only when the task
    /// that sends gives the thread up (see [`DirectWrite::Sparse`]).
    pub(super) writer_waits_for_sender: bool,
    /// The connection task's last batch held more than one message: messages come faster
    /// than it takes them, so [`DirectWrite::Sparse`] senders leave the writing to it.
    pub(super) dense: bool,
    /// When a [`DirectWrite::Sparse`] sender last wrote to the stream itself.
    pub(super) last_direct_write: Option<Instant>,
    /// The connection task owns the stream's write side (it has bytes in flight); nobody else
    /// may write until it gives it back under the lock.
    pub(super) writer_busy: bool,
    /// The bound or connected endpoint this connection came from.
    pub(super) endpoint: EndpointId,
    /// The pattern knows this peer (attached after the handshake, until detached).
    pub(super) attached: bool,
    /// `Some(linger deadline)` once its endpoint was unbound or disconnected: the peer is
    /// detached, and its task writes what is queued (the inner `None` lingers forever) and
    /// ends.
    pub(super) leaving: Option<Option<Instant>>,
    /// What this connection carried and dropped.
    pub(super) traffic: Traffic,
    /// The peer's `ip:port` (TCP only).
    pub(super) address: Option<String>,
    /// Connections to this peer's endpoint before this one.
    pub(super) reconnects: u64,
    /// When the handshake completed.
    pub(super) connected_since: Option<SystemTime>,
    /// The round trip of the last heartbeat the peer answered.
    pub(super) heartbeat_rtt: Option<Duration>,
    /// The slot of a connected endpoint with `immediate` off: created at `connect`, routable
    /// at once, adopted by each connection to that endpoint and kept between them with its
    /// queue, until the endpoint is disconnected or the socket closes (libzmq's pipe of a
    /// connecting session, with `ZMQ_IMMEDIATE=0`). If it still holds messages then, it
    /// stays, detached and `leaving`, while its connector tries to deliver them within the
    /// linger period (see [`Peer::drains`]).
    pub(super) persistent: bool,
    /// Bytes at the front of `out` that are the rest of a message a sender's direct write
    /// started on the stream: if the connection ends now, they must not start the next
    /// connection's stream (the messages queued behind them may).
    pub(super) partial: usize,
    /// An inproc peer's queue and link to the other socket, used instead of `out` and the
    /// stream (see [`inproc`]).
    pub(super) inproc: Option<inproc::Link>,
    /// The connection's driver, for a receiving call to poll (see [`help`]); set once the
    /// handshake completed.
    pub(super) helper: Option<std::sync::Weak<dyn help::Help>>,
    /// A receiving call polled the connection last: it takes reading up again once the inbox
    /// is empty, so room freed in the inbox does not wake the task.
    pub(super) app_reads: bool,
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
    pub(super) fn holds_messages(&self) -> bool {
        self.out_msgs > 0 || !self.out.is_empty()
    }

    /// Whether this is a persistent slot whose endpoint was removed while it held messages:
    /// its connector keeps connecting to deliver them, within the linger period.
    pub(super) fn drains(&self) -> bool {
        self.persistent && self.leaving.is_some()
    }

    /// The negotiated ZMTP version.
    pub fn version(&self) -> (u8, u8) {
        self.info.as_ref().map_or((3, 1), |i| i.version)
    }

    pub(super) fn wake_task(&mut self) {
        if let Some(w) = self.task.take() {
            w.wake();
        }
    }

    /// Wakes the connection task if it stopped reading for want of room in what the
    /// application has not received yet.
    pub(super) fn room_freed(&mut self) {
        if std::mem::take(&mut self.wants_room) {
            self.wake_task();
        }
    }

    /// After a message was queued: if the queue was empty, either write it to the stream right
    /// here (direct-write sockets, when the connection task has nothing in flight) or return
    /// the connection task, for the caller to wake.
    #[inline]
    pub(super) fn kick(&mut self, was_empty: bool, direct_write: DirectWrite) -> Option<Waker> {
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

/// The shortest time between two direct writes of a [`DirectWrite::Sparse`] sender. A write
/// on a loopback stream costs about 2 µs of system call; messages closer than 10 times that
/// go through the connection task, which writes them in batches.
pub(super) const SPARSE_GAP: Duration = Duration::from_micros(20);
