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
//!
//! # Files
//! * `mod.rs`: the [`Pattern`] trait socket types implement, the locked [`State`] and what
//!   every task of a socket shares ([`Shared`]), the clock.
//! * `peer.rs`: one connection's slot ([`Peer`]) and when a sender writes to its stream
//!   itself ([`DirectWrite`]).
//! * `core_state.rs`: the socket-type independent state ([`Core`]): peer slots, inbox,
//!   endpoints, wake-up lists, and the queueing every socket type shares.
//! * `socket_core.rs`: the engine half of every socket ([`SocketCore`]): endpoints, tasks,
//!   close, and the plumbing of its calls (one attempt under the lock, waiting with a
//!   timeout, helping the connection while a call waits).
//! * `connection.rs`, `connector.rs`, `listener.rs`, `inproc.rs`: the tasks; `help.rs`: a
//!   waiting call driving its connection; `transport.rs`: tcp and ipc; `waker.rs`: wake-up
//!   lists.
//!
//! [`wire::Connection`]: crate::wire::Connection
//! [`WriteBuf`]: crate::wire::WriteBuf

mod connection;
mod connector;
mod core_state;
mod help;
mod inproc;
mod listener;
#[cfg(test)]
mod mock_io;
mod peer;
mod socket_core;
#[cfg(test)]
mod tests;
pub(crate) mod transport;
mod waker;

use crate::error::{Error, Result};
use crate::message::Message;
use crate::monitor::Monitors;
use crate::options::SocketOptions;
use crate::pattern::PeerId;
use crate::wire::{Security, SocketType};
use bytes::Bytes;
use core_state::Handshake;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::time::Sleep;

pub(crate) use core_state::{Core, EndpointId};
pub(crate) use peer::{DirectWrite, INBOX_SOFT_LIMIT_BYTES, Peer, QUEUE_SOFT_LIMIT_BYTES};
pub(crate) use socket_core::{PollState, SocketCore};
pub(crate) use waker::{WaitKey, WakerList};

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

/// The clock, through tokio so that tests with a paused clock control it.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The runtime a socket call runs in, for the tasks it spawns ([`Error::NoRuntime`] outside one).
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
