//! The inproc transport: sockets of one process linked without the kernel and without ZMTP.
//!
//! An inproc connection is a peer slot in each of its two sockets, each slot with a
//! [`Link`]: its outbound queue of whole messages (their `Bytes` frames, shared, never copied
//! or encoded) and the other socket's end. A send queues the message on the slot, as a tcp
//! send queues encoded bytes. While the other socket holds no message of the connection
//! (see [`Flow`]), and unless its inbox is known to be full, the send then hands the queue
//! over, still under its own socket's lock, to the other socket's pattern if that socket's
//! lock is free at that moment; otherwise the other socket takes the queue itself once it has
//! read what it holds ([`pull`]). Either way a thread takes a second socket's lock only with
//! `try_lock` (it never waits for a second socket's lock while it holds one, so two sockets
//! sending to each other cannot deadlock). The messages enter the other socket
//! exactly where a connection task hands decoded messages to it, so HWMs, fair queueing,
//! routing ids, subscriptions, linger and close behave as over tcp: the same code runs them.
//!
//! Whatever the send could not hand over (the lock was busy, or the receiver's inbox full)
//! stays queued, counted against the sender's SNDHWM, and the connection's [`Mover`] task
//! hands it over later: woken by the busy sender, or by the receiver when it frees room. So a
//! connection holds SNDHWM + RCVHWM messages, as libzmq's inproc pipe does, and the queue is
//! the only place a message waits on its way: order is kept.
//!
//! Names live in a process-wide registry. Bind and connect work in either order: a connect
//! with nobody bound waits in the registry, and every bind links the waiting connectors of
//! its name. A connection ends when either side closes, unbinds or disconnects (after the
//! linger period, for what the leaving side still has queued); a later bind of the same name
//! links the connectors that remain. Lock order: the registry's, then one socket's; a second
//! socket's only by `try_lock`.

use super::{Core, EndpointId, Handshake, Pattern, Peer, Shared, State};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::pattern::PeerId;
use crate::wire::{Mechanism, Metadata, PeerInfo, SocketType};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, TryLockError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::time::Sleep;

/// What an inproc peer slot queues in place of encoded bytes.
#[derive(Debug)]
pub(crate) enum Item {
    /// A whole message.
    Message(Message),
    /// A subscription to a prefix (from SUB or XSUB).
    Subscribe(Bytes),
    /// A cancelled subscription.
    Cancel(Bytes),
}

impl Item {
    /// A subscription or its cancellation of `prefix`.
    pub fn subscription(subscribe: bool, prefix: &[u8]) -> Item {
        let prefix = Bytes::copy_from_slice(prefix);
        match subscribe {
            true => Item::Subscribe(prefix),
            false => Item::Cancel(prefix),
        }
    }

    /// Whether it is a message (messages count against the HWM; subscriptions do not).
    pub fn is_message(&self) -> bool {
        matches!(self, Item::Message(_))
    }

    /// The payload bytes it counts in the traffic statistics.
    pub fn payload_len(&self) -> usize {
        match self {
            Item::Message(message) => message.byte_len(),
            Item::Subscribe(_) | Item::Cancel(_) => 0,
        }
    }
}

/// One direction of a connection, as both of its sockets see it without a lock.
///
/// A send hands its message over at once only while the receiving socket is *hungry*: from
/// the moment it read the last message it held from this connection until it holds two or
/// more again (a receiver that keeps up stays hungry, and nobody writes the flag). Otherwise
/// the message waits in the sender's queue and goes over with the others queued behind it,
/// when the receiver has read the last message it holds from the connection. So a busy
/// receiver takes a batch per hand-over, and its socket's lock is taken from the other side
/// once a batch, not once a message (on the multi-thread runtime that lock moved between
/// the two cores with every message).
///
/// Neither side may miss the other: the sender sets `queued` and then reads `hungry`; the
/// receiver sets `hungry` and then reads `queued` (both sequentially consistent), so at least
/// one of them sees the other's flag. The sender that sees `hungry` hands over; the receiver
/// that sees `queued` takes the queue itself at its next socket call ([`pull`]), or has the
/// connection's mover hand it over.
#[derive(Debug)]
pub(crate) struct Flow {
    /// The sending slot's queue is not empty (written under the sending socket's lock).
    queued: AtomicBool,
    /// The receiving socket takes messages at once (written under the receiving socket's
    /// lock).
    hungry: AtomicBool,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            queued: AtomicBool::new(false),
            hungry: AtomicBool::new(true),
        }
    }
}

/// An inproc peer slot's side of its connection.
#[derive(Default)]
pub(crate) struct Link {
    /// What this socket queued for the other, in order.
    queue: VecDeque<Item>,
    /// This socket's direction of the connection: its queue to the other's inbox.
    outbound: Arc<Flow>,
    /// The other direction: the other socket's queue to this socket's inbox.
    inbound: Arc<Flow>,
    /// The other socket and its slot for this connection, once both are attached.
    remote: Option<(Arc<dyn End>, PeerId)>,
    /// The connection's mover, for the other socket to wake when it frees room.
    mover: Option<Waker>,
    /// The other socket's inbox had no room for the front of the queue: sends only queue
    /// until the mover, woken when room is free, hands the queue over.
    awaiting_room: bool,
    /// What `outbound.queued` says, kept here to publish only its changes.
    marked: bool,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("queued", &self.queue.len())
            .field("linked", &self.remote.is_some())
            .finish()
    }
}

/// What [`Link::push`] did.
#[derive(Default)]
pub(crate) struct Sent {
    /// Queued messages the other socket took (their HWM room is free again).
    pub messages: usize,
    /// The other socket's lock was busy: the mover must hand the queue over.
    pub retry: bool,
}

impl Link {
    /// Queues `item` and hands the queue to the other socket if its lock is free and the
    /// other socket is hungry (see [`Flow`]) or `now` (the sender is at its HWM, or the item
    /// is a subscription, which no receive call asks for). Not while the last hand-over
    /// stopped for want of room there: the receiver wakes the mover once half its room is
    /// free, and trying again for every message until then would only be refused again (a
    /// busy lock, by contrast, is free again within nanoseconds).
    #[inline]
    pub fn push(&mut self, item: Item, now: bool) -> Sent {
        self.queue.push_back(item);
        if !self.awaiting_room && (now || self.outbound.hungry.load(Ordering::SeqCst)) {
            return self.hand_over();
        }
        self.mark_queued();
        // The receiver may have turned hungry before it could see the mark.
        if !self.awaiting_room && self.outbound.hungry.load(Ordering::SeqCst) {
            return self.hand_over();
        }
        Sent::default()
    }

    /// Publishes whether the queue holds anything, if that changed.
    #[inline]
    fn mark_queued(&mut self) {
        let queued = !self.queue.is_empty();
        if self.marked != queued {
            self.marked = queued;
            self.outbound.queued.store(queued, Ordering::SeqCst);
        }
    }

    /// The receiving side read the last message it held from this connection: from now on
    /// the other side hands its messages over at once. True if the other side has some
    /// queued already: the receiving socket then takes them itself ([`pull`]) before its
    /// next receive waits, or has the connection's mover hand them over.
    #[inline]
    pub fn hungry(&self) -> bool {
        // A receiver that keeps up is still hungry (it never held two): no write then.
        if !self.inbound.hungry.load(Ordering::Relaxed) {
            self.inbound.hungry.store(true, Ordering::SeqCst);
        }
        // Even so the other side may have some queued: what the inbox had no room for.
        self.inbound.queued.load(Ordering::SeqCst)
    }

    /// Wakes the connection's mover.
    pub fn wake_mover(&self) {
        if let Some(mover) = &self.mover {
            mover.wake_by_ref();
        }
    }

    /// Drops the queued messages, keeping subscriptions (`conflate`); returns how many.
    pub fn discard_messages(&mut self) -> usize {
        let before = self.queue.len();
        self.queue.retain(|item| !item.is_message());
        self.mark_queued();
        before - self.queue.len()
    }

    /// Hands the queue to the other socket, as much of it as that socket takes now.
    fn hand_over(&mut self) -> Sent {
        let Some((end, peer)) = &self.remote else {
            self.mark_queued();
            return Sent::default();
        };
        let accepted = end.accept(*peer, &mut self.queue);
        self.mark_queued();
        match accepted {
            Accepted::Took(messages) => {
                self.awaiting_room = !self.queue.is_empty();
                Sent {
                    messages,
                    ..Sent::default()
                }
            }
            // The other socket is leaving or gone: the mover ends the connection.
            Accepted::Busy | Accepted::Closed => Sent {
                messages: 0,
                retry: true,
            },
        }
    }
}

/// What a socket did with items handed to it.
enum Accepted {
    /// It took this many messages (maybe not every item: it wakes the mover when it has
    /// room again).
    Took(usize),
    /// Its lock was held: try again later.
    Busy,
    /// The slot is leaving or gone: it takes nothing more.
    Closed,
}

/// Where one side of a connection stands, as the mover sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Open,
    /// The socket is closing or the endpoint was removed: what it queued goes out until the
    /// deadline (`None`: linger forever); nothing more comes in.
    Leaving(Option<Instant>),
    /// The peer slot is gone.
    Gone,
}

/// What the mover learnt from one side.
struct Flushed {
    status: Status,
    /// Its queue is empty.
    empty: bool,
    /// Items went to the other side.
    moved: bool,
    /// The other side's lock was busy.
    busy: bool,
}

/// One socket, whatever its pattern, as the registry, the links and the mover use it.
trait End: Send + Sync + 'static {
    fn socket_type(&self) -> SocketType;
    /// The `routing_id` option, which a tcp peer would learn from our READY.
    fn routing_id(&self) -> Option<Bytes>;
    /// The `max_msg_size` option, which a tcp peer would learn from our READY.
    fn max_msg_size(&self) -> Option<u64>;
    /// Whether a connection from `endpoint` may be made: it is bound or connected, or it
    /// was a connected endpoint whose slot still drains its queue (see [`watch_drains`]).
    fn linkable(&self, endpoint: EndpointId) -> bool;
    /// A live peer slot for a new connection from `endpoint` (adopting the endpoint's
    /// persistent slot if it has a free one); `None` if the socket closes or the endpoint
    /// went away.
    fn open(&self, endpoint: EndpointId) -> Option<PeerId>;
    /// The "handshake": gives the slot its peer's description and attaches it to the
    /// pattern. False if the pattern refuses it (a PAIR with a peer already).
    fn attach(&self, peer: PeerId, info: PeerInfo) -> bool;
    /// Points the slot's link at the other socket's slot, with the connection's two
    /// directions (`flows`: this slot's outbound, then its inbound): from now on sends hand
    /// over.
    fn set_remote(&self, peer: PeerId, remote: (Arc<dyn End>, PeerId), flows: [Arc<Flow>; 2]);
    /// Under this socket's lock (waiting for it): registers the mover's waker on the slot
    /// and hands its queue to the other socket.
    fn flush(&self, peer: PeerId, cx: &Context<'_>) -> Flushed;
    /// Under this socket's lock if it is free now: gives items from the front of `items`
    /// to the pattern until it refuses one (its inbox is full: the mover is woken when there
    /// is room).
    fn accept(&self, peer: PeerId, items: &mut VecDeque<Item>) -> Accepted;
    /// Under this socket's lock if it is free now (false if not): hands slot `peer`'s queue
    /// to `take`, which delivers from its front to the other socket and says how many
    /// messages it took.
    fn give(&self, peer: PeerId, take: &mut dyn FnMut(&mut VecDeque<Item>) -> usize) -> bool;
    /// The connection ended.
    fn end(&self, peer: PeerId);
}

impl<P: Pattern> End for Shared<P> {
    fn socket_type(&self) -> SocketType {
        self.socket_type
    }

    fn routing_id(&self) -> Option<Bytes> {
        self.options().routing_id.clone()
    }

    fn max_msg_size(&self) -> Option<u64> {
        self.options().max_msg_size
    }

    fn linkable(&self, endpoint: EndpointId) -> bool {
        let state = self.lock();
        state.core.has_endpoint(endpoint) || draining_slot(&state.core, endpoint).is_some()
    }

    fn open(&self, endpoint: EndpointId) -> Option<PeerId> {
        let mut state = self.lock();
        let core = &mut state.core;
        let Some(entry) = core.endpoints.iter().find(|e| e.id == endpoint) else {
            // A removed endpoint's draining slot, even in a closing socket: what it holds
            // goes out within the linger period.
            let slot = draining_slot(core, endpoint)?;
            core.peers.get_mut(slot)?.alive = true;
            return Some(slot);
        };
        if let Some(slot) = entry.slot
            && let Some(peer) = core.peers.get_mut(slot)
            && peer.persistent
            && !peer.alive
        {
            peer.alive = true;
            return Some(slot);
        }
        Some(core.peers.insert(Peer {
            alive: true,
            endpoint,
            inproc: Some(Link::default()),
            ..Peer::default()
        }))
    }

    fn attach(&self, peer: PeerId, info: PeerInfo) -> bool {
        let mut state = self.lock();
        let State { core, pattern } = &mut *state;
        // A draining (leaving) slot links only to empty its queue.
        !matches!(
            core.handshake_completed(pattern, peer, info),
            Handshake::Gone | Handshake::Refused
        )
    }

    fn set_remote(&self, peer: PeerId, remote: (Arc<dyn End>, PeerId), flows: [Arc<Flow>; 2]) {
        if let Some(link) = self
            .lock()
            .core
            .peers
            .get_mut(peer)
            .and_then(|slot| slot.inproc.as_mut())
        {
            let [outbound, inbound] = flows;
            link.remote = Some(remote);
            link.outbound = outbound;
            link.inbound = inbound;
        }
    }

    fn flush(&self, peer: PeerId, cx: &Context<'_>) -> Flushed {
        let mut state = self.lock();
        let core = &mut state.core;
        let status = match core.closing_for(peer) {
            Some(deadline) => Status::Leaving(deadline),
            None => Status::Open,
        };
        let mut flushed = Flushed {
            status,
            empty: true,
            moved: false,
            busy: false,
        };
        let Some(slot) = core.peers.get_mut(peer) else {
            flushed.status = Status::Gone;
            return flushed;
        };
        match &slot.task {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.task = Some(cx.waker().clone()),
        }
        let Some(link) = &mut slot.inproc else {
            return flushed;
        };
        if !link.mover.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            link.mover = Some(cx.waker().clone());
        }
        if !link.queue.is_empty() {
            let before = link.queue.len();
            let sent = link.hand_over();
            flushed.moved = link.queue.len() < before;
            flushed.busy = sent.retry;
            if sent.messages > 0 {
                slot.out_msgs -= sent.messages;
                core.send_wakers.wake_all();
            }
        }
        flushed.empty = core
            .peers
            .get(peer)
            .and_then(|slot| slot.inproc.as_ref())
            .is_none_or(|link| link.queue.is_empty());
        flushed
    }

    fn accept(&self, peer: PeerId, items: &mut VecDeque<Item>) -> Accepted {
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::WouldBlock) => return Accepted::Busy,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        let State { core, pattern } = &mut *state;
        if core.closing_for(peer).is_some() || core.peers.get(peer).is_none() {
            return Accepted::Closed;
        }
        Accepted::Took(deliver(core, pattern, peer, items))
    }

    fn give(&self, peer: PeerId, take: &mut dyn FnMut(&mut VecDeque<Item>) -> usize) -> bool {
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::WouldBlock) => return false,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        let core = &mut state.core;
        let Some(slot) = core.peers.get_mut(peer) else {
            return true;
        };
        let Some(link) = &mut slot.inproc else {
            return true;
        };
        if link.queue.is_empty() {
            return true;
        }
        let messages = take(&mut link.queue);
        // What the receiver refused waits for the room it frees (it wakes the mover then).
        link.awaiting_room = !link.queue.is_empty();
        link.mark_queued();
        if messages > 0 {
            slot.out_msgs -= messages;
            core.send_wakers.wake_all();
        }
        true
    }

    fn end(&self, peer: PeerId) {
        let mut state = self.lock();
        let Some(slot) = state.core.peers.get_mut(peer) else {
            return;
        };
        let endpoint = slot.endpoint;
        if let Some(link) = slot.inproc.as_mut() {
            // No cycle of `Arc`s between the two sockets outlives the connection.
            link.remote = None;
            link.mover = None;
        }
        state.connection_ended(peer);
        let State { core, pattern } = &mut *state;
        if core.peers.get(peer).is_some_and(|p| p.drains()) {
            // A draining slot's one chance is over: it delivered, or its linger ran out.
            core.connector_ended(pattern, endpoint, Some(peer));
        }
    }
}

/// Under the receiving socket's lock: gives items from the front of `items`, queued by the
/// other side of `peer`'s connection, to `pattern` until it refuses one (its inbox is full:
/// the slot then wakes the connection's mover once there is room). Returns how many messages
/// it took.
fn deliver<P: Pattern>(
    core: &mut Core,
    pattern: &mut P,
    peer: PeerId,
    items: &mut VecDeque<Item>,
) -> usize {
    let (mut messages, mut bytes) = (0, 0);
    while let Some(item) = items.pop_front() {
        let refused = match item {
            Item::Message(message) => {
                let len = message.byte_len();
                match pattern.deliver(core, peer, message) {
                    Ok(()) => {
                        messages += 1;
                        bytes += len as u64;
                        None
                    }
                    Err(message) => Some(Item::Message(message)),
                }
            }
            Item::Subscribe(prefix) => pattern
                .subscription(core, peer, true, prefix)
                .err()
                .map(Item::Subscribe),
            Item::Cancel(prefix) => pattern
                .subscription(core, peer, false, prefix)
                .err()
                .map(Item::Cancel),
        };
        if let Some(item) = refused {
            items.push_front(item);
            if let Some(slot) = core.peers.get_mut(peer) {
                // Room freed wakes the slot's task: the connection's mover.
                slot.wants_room = true;
                if slot.task.is_none() {
                    slot.task = slot.inproc.as_ref().and_then(|l| l.mover.clone());
                }
            }
            break;
        }
    }
    if messages > 0 {
        if let Some(slot) = core.peers.get_mut(peer) {
            slot.traffic.messages_in += messages;
            slot.traffic.bytes_in += bytes;
            // Sated while it holds two or more, hungry again once the last is read
            // (`Core::pop_inbox`). A receiver that keeps up, reading each message before
            // the next comes, so stays hungry and the flag stays put; one that dropped
            // them (a SUB's filter), or keeps them elsewhere, too.
            if let Some(link) = &slot.inproc
                && core.inbox.queued(peer) >= 2
                && link.inbound.hungry.load(Ordering::Relaxed)
            {
                link.inbound.hungry.store(false, Ordering::SeqCst);
            }
        }
        core.recv_wakers.wake_all();
    }
    messages as usize
}

/// Under a receiving socket's lock, before a socket call: takes what the other sides of the
/// inproc connections in `core.pull_from` queued for it behind the last message it held from
/// them (see [`Flow`]), from each whose lock is free now. For one that is busy, the connection's
/// mover hands the queue over instead. So a busy receiver fetches its next batch itself,
/// without a wake-up of either side.
pub(super) fn pull<P: Pattern>(state: &mut State<P>) {
    let State { core, pattern } = state;
    while let Some(peer) = core.pull_from.pop() {
        let Some(link) = core.peers.get(peer).and_then(|slot| slot.inproc.as_ref()) else {
            continue;
        };
        let Some((end, remote)) = link.remote.clone() else {
            continue;
        };
        if core.closing_for(peer).is_some() {
            continue;
        }
        if !end.give(remote, &mut |items| deliver(core, pattern, peer, items))
            && let Some(link) = core.peers.get(peer).and_then(|slot| slot.inproc.as_ref())
        {
            link.wake_mover();
        }
    }
}

/// The draining slot of removed connected endpoint `endpoint`, if it has no connection.
fn draining_slot(core: &Core, endpoint: EndpointId) -> Option<PeerId> {
    core.peers
        .iter()
        .find(|(_, p)| p.endpoint == endpoint && p.inproc.is_some() && p.drains() && !p.alive)
        .map(|(id, _)| id)
}

/// After endpoints were removed: gives each inproc slot that drains its queue, with no
/// connection, a task that drops it when its linger period ends (a bind of the name before
/// then links it and delivers). Without a runtime to run that task, the slots go now.
pub(super) fn watch_drains<P: Pattern>(shared: &Arc<Shared<P>>, state: &mut State<P>) {
    let State { core, pattern } = state;
    let draining: Vec<(PeerId, EndpointId)> = core
        .peers
        .iter()
        .filter(|(_, p)| p.inproc.is_some() && p.drains() && !p.alive)
        .map(|(id, p)| (id, p.endpoint))
        .collect();
    let runtime = tokio::runtime::Handle::try_current().ok();
    for (slot, endpoint) in draining {
        match (core.closing_for(slot), &runtime) {
            // Linger forever: it waits for a bind, as libzmq's pending connection does.
            (Some(None), Some(_)) => {}
            (Some(Some(deadline)), Some(runtime)) => {
                let shared = shared.clone();
                runtime.spawn(async move {
                    tokio::time::sleep_until(deadline.into()).await;
                    let mut state = shared.lock();
                    let State { core, pattern } = &mut *state;
                    core.connector_ended(pattern, endpoint, Some(slot));
                });
            }
            _ => core.connector_ended(pattern, endpoint, Some(slot)),
        }
    }
}

/// A registered bound or connected inproc endpoint.
struct Registered {
    end: Weak<dyn End>,
    endpoint: EndpointId,
    /// A connector's: it has a live connection (a bind links only those without one).
    linked: Arc<AtomicBool>,
}

impl Registered {
    /// The socket, while the endpoint is still bound or connected.
    fn live(&self) -> Option<Arc<dyn End>> {
        let end = self.end.upgrade()?;
        end.linkable(self.endpoint).then_some(end)
    }
}

/// The sockets bound to and connecting to one name.
#[derive(Default)]
struct Name {
    bound: Option<Registered>,
    connectors: Vec<Registered>,
}

/// Every inproc name of the process.
static REGISTRY: LazyLock<Mutex<HashMap<String, Name>>> = LazyLock::new(Default::default);

fn registry() -> std::sync::MutexGuard<'static, HashMap<String, Name>> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Forgets endpoints that were unbound, disconnected or closed since the last call.
fn prune(names: &mut HashMap<String, Name>) {
    names.retain(|_, name| {
        if name.bound.as_ref().is_some_and(|b| b.live().is_none()) {
            name.bound = None;
        }
        name.connectors.retain(|c| c.live().is_some());
        name.bound.is_some() || !name.connectors.is_empty()
    });
}

/// Binds `name` for `socket`: `add_endpoint` registers the endpoint in the socket (under the
/// registry's lock, so two binds of one name cannot both succeed). Links every connector
/// waiting for the name, with movers spawned on `runtime`.
pub(super) fn bind<P: Pattern>(
    name: &str,
    socket: Arc<Shared<P>>,
    runtime: &tokio::runtime::Handle,
    add_endpoint: impl FnOnce() -> Result<EndpointId>,
) -> Result<()> {
    let mut names = registry();
    prune(&mut names);
    if names.get(name).is_some_and(|n| n.bound.is_some()) {
        return Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("inproc://{name} is already bound"),
        )));
    }
    let endpoint = add_endpoint()?;
    let end: Arc<dyn End> = socket;
    let entry = names.entry(name.to_owned()).or_default();
    let binder = Registered {
        end: Arc::downgrade(&end),
        endpoint,
        linked: Arc::default(),
    };
    for connector in &entry.connectors {
        if !connector.linked.load(Ordering::Acquire)
            && let Some(socket) = connector.live()
        {
            link(&socket, connector, &end, &binder, runtime);
        }
    }
    entry.bound = Some(binder);
    Ok(())
}

/// Registers `socket`'s connected endpoint `endpoint` for `name` and links it at once if the
/// name is bound.
pub(super) fn connect<P: Pattern>(
    name: &str,
    socket: Arc<Shared<P>>,
    endpoint: EndpointId,
    runtime: &tokio::runtime::Handle,
) {
    let mut names = registry();
    prune(&mut names);
    let end: Arc<dyn End> = socket;
    let connector = Registered {
        end: Arc::downgrade(&end),
        endpoint,
        linked: Arc::default(),
    };
    let entry = names.entry(name.to_owned()).or_default();
    if let Some(binder) = &entry.bound
        && let Some(bound) = binder.live()
    {
        link(&end, &connector, &bound, binder, runtime);
    }
    entry.connectors.push(connector);
}

/// What `socket` tells its peer about itself (a tcp peer's READY).
fn describe(socket: &dyn End) -> PeerInfo {
    PeerInfo {
        socket_type: socket.socket_type(),
        identity: socket.routing_id().filter(|id| !id.is_empty()),
        metadata: Metadata::new(),
        version: (3, 1),
        mechanism: Mechanism::NULL,
        user_id: None,
        max_msg_size: socket.max_msg_size(),
    }
}

/// Connects `connector` to `binder`: a peer slot in each, attached to each pattern, and a
/// mover between them.
fn link(
    connecting: &Arc<dyn End>,
    connector: &Registered,
    bound: &Arc<dyn End>,
    binder: &Registered,
    runtime: &tokio::runtime::Handle,
) {
    let (ours, theirs) = (connecting.socket_type(), bound.socket_type());
    if !ours.is_compatible_with(theirs) {
        tracing::warn!(%ours, %theirs, "inproc peer of an incompatible socket type; not connecting");
        return;
    }
    let Some(from) = connecting.open(connector.endpoint) else {
        return;
    };
    let Some(to) = bound.open(binder.endpoint) else {
        connecting.end(from);
        return;
    };
    let mover = Mover {
        sides: [(connecting.clone(), from), (bound.clone(), to)],
        sleep: None,
        linked: connector.linked.clone(),
    };
    if !connecting.attach(from, describe(&**bound)) || !bound.attach(to, describe(&**connecting)) {
        // Dropping the mover ends both slots.
        tracing::debug!("inproc peer refused by the socket pattern");
        return;
    }
    let (there, back) = (Arc::<Flow>::default(), Arc::<Flow>::default());
    connecting.set_remote(from, (bound.clone(), to), [there.clone(), back.clone()]);
    bound.set_remote(to, (connecting.clone(), from), [back, there]);
    connector.linked.store(true, Ordering::Release);
    runtime.spawn(mover);
}

/// The task of one inproc connection: hands over what the senders could not, and ends the
/// connection when either side leaves. Dropped (ended, aborted, or its runtime gone), it ends
/// both peer slots.
struct Mover {
    /// The connecting side, then the bound side.
    sides: [(Arc<dyn End>, PeerId); 2],
    /// The linger deadline of a leaving side.
    sleep: Option<Pin<Box<Sleep>>>,
    linked: Arc<AtomicBool>,
}

impl Mover {
    /// Hands over what is queued; `Ready` once the connection is over.
    fn run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let flushed = self
            .sides
            .each_ref()
            .map(|(end, peer)| end.flush(*peer, cx));
        if flushed.iter().any(|f| f.status == Status::Gone) {
            return Poll::Ready(());
        }
        let mut deadline: Option<Instant> = None;
        for (side, f) in flushed.iter().enumerate() {
            let Status::Leaving(linger) = f.status else {
                continue;
            };
            // Done once what it queued is delivered, or can never be (the other side
            // is leaving too: a leaving socket takes nothing in).
            let undeliverable = flushed[1 - side].status != Status::Open;
            if f.empty || undeliverable || linger.is_some_and(|d| d <= super::now()) {
                return Poll::Ready(());
            }
            deadline = match (deadline, linger) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if flushed.iter().any(|f| f.busy || (f.moved && !f.empty)) {
            // The other socket's lock was busy, or it took part and may take more: go round
            // again after the other tasks had their turn.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.wait_until(deadline, cx)
    }

    /// Pending, with a timer for a leaving side's linger deadline.
    fn wait_until(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> Poll<()> {
        match deadline {
            Some(deadline) => super::poll_sleep_until(&mut self.sleep, deadline, cx),
            None => Poll::Pending,
        }
    }
}

impl Future for Mover {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().run(cx)
    }
}

impl Drop for Mover {
    fn drop(&mut self) {
        for (end, peer) in &self.sides {
            end.end(*peer);
        }
        self.linked.store(false, Ordering::Release);
    }
}
