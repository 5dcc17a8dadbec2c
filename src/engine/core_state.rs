//! [`Core`]: the socket-type independent part of the socket state (peer slots, the inbox,
//! the load balancer, endpoints, wake-up lists) and the queueing every socket type shares.

use super::{
    DirectWrite, INBOX_SOFT_LIMIT_BYTES, Pattern, Peer, WaitKey, WakerList, inproc, now, transport,
};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::options::SocketOptions;
use crate::pattern::{FairQueue, LoadBalancer, PeerId, PeerSlab};
use crate::stats::{PeerStats, SocketStats, Traffic};
use crate::wire::frame::EncodedMessage;
use crate::wire::{PeerInfo, SocketType};
use bytes::Bytes;
use std::task::{Context, Poll, Waker, ready};
use std::time::{Instant, SystemTime};
use tokio::task::AbortHandle;

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
    pub(super) pull_from: Vec<PeerId>,
    pub send_wakers: WakerList,
    pub(super) close_wakers: WakerList,
    /// The call being polled under the lock, whose waker `park_*` registers.
    pub(super) waiter: WaitKey,
    /// The last key handed to a waiting call.
    pub(super) last_wait_key: u64,
    /// `Some(deadline)` once closing; the inner `None` lingers forever.
    pub(super) closing: Option<Option<Instant>>,
    pub(super) endpoints: Vec<BoundOrConnected>,
    /// The last id handed to an endpoint.
    last_endpoint_id: u64,
    pub(super) last_endpoint: Option<Endpoint>,
    /// Messages dropped because a peer was at its HWM (PUB/XPUB/ROUTER never block).
    pub dropped_msgs: u64,
    /// The traffic of peers whose slots were released, for the socket's totals.
    departed: Traffic,
    /// When senders write to an idle peer's stream themselves.
    pub(super) direct_write: DirectWrite,
    /// The message being fanned out, encoded once for all its receivers (see
    /// [`Core::encode_for_fanout`]).
    fanout: EncodedMessage,
    /// `conflate`: each peer's queues, in and out, keep only the newest message (the HWMs
    /// are then unlimited: nothing ever waits for room).
    pub(super) conflate: bool,
    /// Connection tasks to wake once the socket lock is released, while a fan-out defers
    /// them (see [`Core::defer_task_wakes`]).
    deferred_wakes: Option<Vec<Waker>>,
}

/// How a completed handshake went for a peer slot (see [`Core::handshake_completed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handshake {
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
pub(super) enum Outgoing<'a> {
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
    /// connection it may have arrived on. A frame copied from a slice stays as it is: inline
    /// (no allocation at all) or in a pooled buffer, which the receiver's drop returns for the
    /// sender to reuse (`frame_pool`). The frame accessors, which lend `Bytes`, make one on
    /// the receiver's thread if it reads them. A fan-out's copied frame becomes a `Bytes`
    /// here, once, for all its receivers to share.
    fn into_item(self) -> inproc::Item {
        match self {
            Outgoing::Message(message) => inproc::Item::Message(message.without_properties()),
            Outgoing::Parts { head, body } => {
                inproc::Item::Message(head.iter().chain(body).cloned().collect())
            }
            Outgoing::Fanout(message) => {
                inproc::Item::Message(message.shared_clone().without_properties())
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
pub(super) struct BoundOrConnected {
    pub(super) id: EndpointId,
    /// The endpoint as bound (real port) or as given to connect.
    pub(super) endpoint: Endpoint,
    /// Bound (else connected).
    pub(super) bound: bool,
    /// The listening socket of a bound tcp or ipc endpoint: it lives here, not in the
    /// listener task, so that removing the entry closes it at once (and unlinks its ipc path
    /// if still ours).
    pub(super) listener: Option<transport::Listener>,
    /// The listener or connector task (a connector that stopped by itself, after an ERROR
    /// or with reconnection off, clears it).
    pub(super) task: Option<AbortHandle>,
    /// A connected endpoint's `persistent` peer slot (`immediate` off).
    pub(super) slot: Option<PeerId>,
}

impl BoundOrConnected {
    pub(super) fn is_bound(&self) -> bool {
        self.bound
    }
}

impl Core {
    pub(super) fn new(options: &SocketOptions) -> Self {
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

    pub(super) fn set_hwms(&mut self, options: &SocketOptions) {
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

    pub(super) fn forget_waiter(&mut self, key: WaitKey) {
        self.recv_wakers.remove(key);
        self.send_wakers.remove(key);
        self.close_wakers.remove(key);
    }

    /// Whether `id` is still bound or connected.
    pub(super) fn has_endpoint(&self, id: EndpointId) -> bool {
        self.endpoints.iter().any(|e| e.id == id)
    }

    /// `Some(linger deadline)` once `peer`'s connection must finish: the socket is closing or
    /// the peer's endpoint was removed (the inner `None` lingers forever).
    pub(super) fn closing_for(&self, peer: PeerId) -> Option<Option<Instant>> {
        self.closing
            .or_else(|| self.peers.get(peer).and_then(|p| p.leaving))
    }

    /// Peer slot `id` completed its handshake (or, inproc, its link) with a peer described by
    /// `info`: it joins the pattern (a persistent slot is in it since `connect`) and waiting
    /// senders are woken. A slot whose endpoint went away meanwhile never becomes routable.
    pub(super) fn handshake_completed<P: Pattern>(
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
    pub(super) fn detach_peer<P: Pattern>(&mut self, pattern: &mut P, id: PeerId) {
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
    pub(super) fn release_peer(&mut self, peer: PeerId) {
        self.inbox.remove_peer(peer);
        if let Some(p) = self.peers.remove(peer) {
            self.departed.add(&p.traffic);
        }
    }

    /// The counters of the socket and of each peer with a completed handshake.
    pub(super) fn stats(&self, socket_type: SocketType, rcvhwm: usize) -> SocketStats {
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
    pub(super) fn endpoint(&self, id: EndpointId) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.id == id)
            .map(|e| &e.endpoint)
    }

    pub(super) fn wake_all_tasks(&mut self) {
        for (_, p) in self.peers.iter_mut() {
            p.wake_task();
        }
        self.recv_wakers.wake_all();
        self.send_wakers.wake_all();
    }

    /// The listening socket of bound endpoint `id`, while it is bound.
    pub(super) fn listener(&self, id: EndpointId) -> Option<&transport::Listener> {
        self.endpoints
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| e.listener.as_ref())
    }

    pub(super) fn set_task(&mut self, id: EndpointId, task: AbortHandle) {
        if let Some(entry) = self.endpoints.iter_mut().find(|e| e.id == id) {
            entry.task = Some(task);
        }
    }

    /// Peers that `close` waits for: live connections, and slots whose connector still
    /// tries to deliver their queue.
    pub(super) fn live_connections(&self) -> usize {
        self.peers
            .iter()
            .filter(|(_, p)| p.alive || p.drains())
            .count()
    }

    /// Registers a bound or connected endpoint; its task is added once spawned.
    pub(super) fn add_endpoint(
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
    pub(super) fn remove_endpoint<P: Pattern>(
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
    pub(super) fn keeps_connecting(&self, id: EndpointId, slot: Option<PeerId>) -> bool {
        self.has_endpoint(id) || slot.is_some_and(|slot| self.drain_deadline(slot).is_some())
    }

    /// `Some(linger deadline)` (the inner `None`: forever) while `slot` is a removed
    /// endpoint's slot that still holds messages and whose linger period has not passed.
    pub(super) fn drain_deadline(&self, slot: PeerId) -> Option<Option<Instant>> {
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
    pub(super) fn connector_ended<P: Pattern>(
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
