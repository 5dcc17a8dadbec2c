//! The per-connection task: drives one [`wire::Connection`] over one stream.
//!
//! One hand-written poll loop instead of `select!`: each wake-up (1) fires due timers,
//! (2) hands every decoded event to the socket under one lock, (3) reads one large chunk and
//! decodes all of it, (4) swaps the peer's whole outbound buffer out under the lock and writes
//! it with vectored writes until the kernel pushes back. No per-message flush, no per-message
//! wake-up, no lock held across an await.
//!
//! [`wire::Connection`]: crate::wire::Connection

use super::transport::Stream;
use super::{Pattern, Peer, Shared, State, now};
use crate::error::Error;
use crate::pattern::PeerId;
use crate::wire::ProtocolError;
use crate::wire::frame::MAX_WRITEV_IOVECS;
use crate::wire::{self, ConnectionConfig, Event, HeartbeatConfig, WriteBuf};
use bytes::BytesMut;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::time::Sleep;

/// Read buffer allocation. One read carries thousands of small messages, and several 64 KiB
/// frames share one allocation, so the partial frame at a buffer's end is copied rarely.
const READ_BUF_BYTES: usize = 120 * 1024;
/// A frame body at least this large that does not fit the read buffer gets a buffer of its
/// own size, read into directly: one allocation the consumer frees as it drops the message,
/// and no bytes of the next frame in it to copy along.
const LARGE_FRAME_BYTES: usize = 32 * 1024;
/// Largest such exact-size buffer allocated on a frame header's word before its bytes arrive
/// (bounded anyway by `max_msg_size` when set); larger bodies grow with the data.
const MAX_EXACT_FRAME_ALLOC_BYTES: usize = 8 * 1024 * 1024;
/// Read again without reallocating while at least this much room is left.
const MIN_READ_ROOM_BYTES: usize = 16 * 1024;
/// A read, or a batch taken for writing, shorter than this means traffic trickles rather than
/// streams: the emptied buffer is then released, so idle connections pin no memory. Streaming
/// connections keep theirs, which the allocator would otherwise hand back and fault in again
/// on every wake.
const TRICKLE_BYTES: usize = 4 * 1024;
/// Loop rounds per wake-up before yielding, so one busy peer cannot starve other tasks on the
/// same runtime thread.
const MAX_ROUNDS_PER_WAKE: usize = 16;

/// Runs a connection until the peer goes away, a fault, or the socket closes (after linger).
pub(super) async fn run<P: Pattern>(shared: Arc<Shared<P>>, stream: Stream) -> Ended {
    let stream = Arc::new(stream);
    let id = {
        let mut state = shared.lock();
        if state.core.is_closing() {
            return Ended {
                handshake_done: false,
                peer_error: false,
            };
        }
        state.core.peers.insert(Peer {
            alive: true,
            ..Peer::default()
        })
    };
    let guard = PeerGuard {
        shared: &shared,
        id,
    };
    let options = &shared.options;
    let config = ConnectionConfig {
        socket_type: shared.socket_type,
        routing_id: options.routing_id.clone().unwrap_or_default(),
        max_msg_size: options.max_msg_size,
        handshake_timeout: options.handshake_ivl,
        heartbeat: HeartbeatConfig {
            interval: options.heartbeat_ivl,
            timeout: options.heartbeat_timeout,
            ttl: options.heartbeat_ttl,
        },
    };
    let label = stream.peer_label();
    let mut driver = Driver {
        shared: &shared,
        id,
        conn: wire::Connection::new(config, now()),
        stream,
        read_buf: BytesMut::new(),
        spare_read_buf: None,
        out: WriteBuf::new(),
        stash: None,
        sleep: None,
        ready: false,
        last_read: 0,
        last_batch: 0,
        failure: None,
    };
    let result = poll_fn(|cx| driver.poll(cx)).await;
    let ended = Ended {
        handshake_done: driver.ready,
        peer_error: matches!(
            result,
            Err(Error::Protocol(ProtocolError::PeerError { .. }))
        ),
    };
    match result {
        Ok(()) => tracing::debug!(peer = %label, "connection closed"),
        Err(Error::Io(e)) if is_disconnect(&e) => {
            tracing::debug!(peer = %label, "peer disconnected")
        }
        Err(e) => tracing::warn!(peer = %label, error = %e, "connection dropped"),
    }
    drop(driver);
    drop(guard);
    ended
}

/// How a connection ended, for the connector's reconnect decision.
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
        let mut state = self.shared.lock();
        let State { core, pattern } = &mut *state;
        let Some(peer) = core.peers.get_mut(self.id) else {
            return;
        };
        peer.alive = false;
        peer.task = None;
        // Release the socket now, not when the slot's last inbound message is read.
        peer.stream = None;
        let was_ready = peer.info.is_some();
        if was_ready {
            pattern.detach(core, self.id);
        }
        if core.inbox.queued(self.id) == 0 {
            core.inbox.remove_peer(self.id);
            core.peers.remove(self.id);
        }
        core.close_wakers.wake_all();
        // Senders blocked on this peer's room may now pick another peer or fail.
        core.send_wakers.wake_all();
    }
}

enum ReadOutcome {
    /// Bytes were read and decoded.
    Data,
    /// The peer closed its side.
    Eof,
}

struct Driver<'a, P: Pattern> {
    shared: &'a Shared<P>,
    id: PeerId,
    conn: wire::Connection,
    stream: Arc<Stream>,
    read_buf: BytesMut,
    /// The shared read buffer, set aside while a large frame is read into its own buffer.
    spare_read_buf: Option<BytesMut>,
    /// Bytes being written: swapped out of the peer's queue, plus our own commands.
    out: WriteBuf,
    /// An event the socket could not take yet (its inbox was full).
    stash: Option<Event>,
    sleep: Option<Pin<Box<Sleep>>>,
    ready: bool,
    /// Size of the last successful read.
    last_read: usize,
    /// Size of the last batch taken for writing.
    last_batch: usize,
    /// A fatal fault waiting for its ERROR command to be flushed.
    failure: Option<Error>,
}

impl<P: Pattern> Driver<'_, P> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
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
            match self.write(cx) {
                Poll::Ready(Ok(wrote)) => progressed |= wrote,
                // A peer that sent ERROR and closed makes our last write fail too; the fault
                // it reported is the cause worth returning (it decides whether to reconnect).
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.failure.take().unwrap_or(e))),
                Poll::Pending => {}
            }
            if let Some(e) = self.failure.take() {
                return Poll::Ready(Err(e));
            }
            if let Some(deadline) = closing {
                if !self.ready || self.out.is_empty() && self.peer_queue_empty() {
                    return Poll::Ready(Ok(()));
                }
                if deadline.is_some_and(|d| d <= now) {
                    return Poll::Ready(Ok(()));
                }
            }
            if !progressed {
                if self.read_buf.is_empty() && self.last_read < TRICKLE_BYTES {
                    // Idle connections pin no read buffer.
                    self.read_buf = BytesMut::new();
                    self.spare_read_buf = None;
                }
                if self.out.is_empty() && self.last_batch < TRICKLE_BYTES {
                    self.out.shrink_if_empty();
                }
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
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
    fn poll_timers(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), Error> {
        let linger = self.shared.lock().core.closing.flatten();
        loop {
            let deadline = match (self.conn.poll_timeout(), linger) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(d) => d,
                    None => return Ok(()),
                },
            };
            if deadline <= now {
                self.conn.handle_timeout(now)?;
                if linger.is_some_and(|l| l <= now) {
                    return Ok(());
                }
                continue;
            }
            let deadline = tokio::time::Instant::from_std(deadline);
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
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
        while let Some(event) = self.stash.take().or_else(|| self.conn.poll_event()) {
            match event {
                Event::Ready(info) => {
                    if let Some(peer) = core.peers.get_mut(self.id) {
                        tracing::debug!(peer_type = %info.socket_type, "handshake complete");
                        peer.info = Some(info);
                        if core.direct_write {
                            peer.stream = Some(self.stream.clone());
                        }
                    }
                    if !pattern.attach(core, self.id) {
                        if let Some(peer) = core.peers.get_mut(self.id) {
                            peer.info = None;
                        }
                        return Err(Error::PeerRefused);
                    }
                    self.ready = true;
                    core.send_wakers.wake_all();
                }
                Event::Message(message) => match pattern.deliver(core, self.id, message) {
                    Ok(()) => delivered = true,
                    Err(message) => {
                        self.stash = Some(Event::Message(message));
                        if let Some(peer) = core.peers.get_mut(self.id) {
                            peer.wants_room = true;
                            // Register before the lock is released: a reader that frees room
                            // in between would otherwise find no waker (this task was woken
                            // and has not re-registered yet) and the connection would stall.
                            peer.task = Some(cx.waker().clone());
                        }
                        all = false;
                        break;
                    }
                },
                Event::Subscribe(prefix) => pattern.subscription(core, self.id, true, prefix),
                Event::Cancel(prefix) => pattern.subscription(core, self.id, false, prefix),
                Event::Command(command) => {
                    tracing::debug!(command = ?command.name(), "ignoring unknown command")
                }
            }
        }
        if delivered {
            core.recv_wakers.wake_all();
        }
        Ok(all)
    }

    /// One read and decode.
    fn read(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<Result<ReadOutcome, Error>> {
        loop {
            match self.stream.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Ready(Ok(())) => {}
            }
            self.make_read_room();
            match self.stream.try_read_buf(&mut self.read_buf) {
                Ok(0) => return Poll::Ready(Ok(ReadOutcome::Eof)),
                Ok(n) => {
                    self.last_read = n;
                    self.conn.handle_input(&mut self.read_buf, now)?;
                    return Poll::Ready(Ok(ReadOutcome::Data));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    }

    /// Makes room to read into, reusing the current allocation when the messages split off it
    /// have all been consumed (it is then ours alone again), else starting a new one.
    fn make_read_room(&mut self) {
        if let Some(len) = self.conn.pending_frame_len()
            && (LARGE_FRAME_BYTES..=MAX_EXACT_FRAME_ALLOC_BYTES).contains(&len)
            && self.read_buf.capacity() < len
        {
            // The buffer holds just the start of this frame's body: move it to an exact-size
            // buffer and keep the shared one for the frames after.
            let mut exact = BytesMut::with_capacity(len);
            exact.extend_from_slice(&self.read_buf);
            self.read_buf.clear();
            let shared = std::mem::replace(&mut self.read_buf, exact);
            self.spare_read_buf = Some(shared);
            return;
        }
        if self.read_buf.capacity() == 0
            && let Some(shared) = self.spare_read_buf.take()
        {
            self.read_buf = shared;
        }
        let room = self.read_buf.capacity() - self.read_buf.len();
        if room < MIN_READ_ROOM_BYTES && !self.read_buf.try_reclaim(READ_BUF_BYTES / 2) {
            self.read_buf.reserve(READ_BUF_BYTES);
        }
    }

    /// Moves the connection's own output and the peer's queued messages into `out`, and
    /// registers this task to be woken when more is queued. Returns the closing state.
    fn gather_output(&mut self, cx: &mut Context<'_>) -> Option<Option<Instant>> {
        let shared = self.shared;
        let mut state = shared.lock();
        let core = &mut state.core;
        let closing = core.closing;
        let Some(peer) = core.peers.get_mut(self.id) else {
            if let Some(bytes) = self.conn.take_transmit() {
                self.out.push_bytes(&bytes);
            }
            return closing;
        };
        // Take a new batch only once the last one is written: while the kernel pushes back,
        // messages stay in the peer's queue, where the HWM counts (and caps) them. The batch
        // goes before our own commands, as its front may be the rest of a message a sender
        // started writing directly.
        let mut freed = false;
        if self.ready && self.out.is_empty() && !peer.out.is_empty() {
            self.last_batch = peer.out.len();
            self.out.append(&mut peer.out);
            freed = std::mem::take(&mut peer.out_msgs) > 0;
        }
        if let Some(bytes) = self.conn.take_transmit() {
            self.out.push_bytes(&bytes);
        }
        // From here until the next call, only this task writes to the stream.
        peer.writer_busy = !self.out.is_empty();
        match &peer.task {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => peer.task = Some(cx.waker().clone()),
        }
        if freed {
            core.send_wakers.wake_all();
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
