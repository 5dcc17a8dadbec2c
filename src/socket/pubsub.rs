//! Publish–subscribe (RFC 29): [`Pub`], [`Sub`], [`XPub`] and [`XSub`].
//!
//! Filtering happens at the publisher. Subscribers send their prefixes upstream (a SUBSCRIBE
//! command to ZMTP 3.1 peers, the `0x01 prefix` data message to 3.0 peers) and replay them on
//! every (re)connect; a publisher matches each message's first frame against a
//! [`SubscriptionTrie`], encodes the message once and queues it only for the peers that asked
//! for it. A publisher never waits: a subscriber at its send high-water mark loses the whole
//! message, and the socket counts the loss (unless `xpub_nodrop` is set: the send then waits).
//! `invert_matching` sends to, and receives, what does *not* match. spec/pubsub.md lists every
//! departure from libzmq; spec/sockets.md §11 these options.

use crate::engine::{Core, Pattern, QUEUE_SOFT_LIMIT_BYTES, SocketCore, State, WaitKey, WakerList};
use crate::error::{Error, Result, SendError};
use crate::message::Message;
use crate::options::SocketOptions;
use crate::pattern::{LocalSubscriptions, PeerId, PeerMap, SubscriptionChange, SubscriptionTrie};
use crate::wire::SocketType;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::task::{Context, Poll};

/// First byte of a subscription sent as data (ZMTP 3.0 form, and XPUB/XSUB user messages).
const SUBSCRIBE_BYTE: u8 = 1;
/// First byte of a cancellation sent as data.
const CANCEL_BYTE: u8 = 0;

/// Most memory one peer's subscriptions may take in a publisher's trie: each distinct prefix
/// counts its bytes plus [`PREFIX_OVERHEAD_BYTES`]. About 30,000 prefixes of 16 bytes. A
/// subscription past it is ignored with a warning: libzmq has no limit, and a peer sending
/// distinct prefixes without end would grow the trie without bound (spec/pubsub.md).
pub(crate) const MAX_SUBSCRIPTION_BYTES_PER_PEER: usize = 4 * 1024 * 1024;
/// What one prefix costs in the trie besides its bytes: a node (label, children and peers
/// vectors) and its place in the parent.
const PREFIX_OVERHEAD_BYTES: usize = 128;

/// The distinct prefixes each peer holds in one trie, and what they weigh.
#[derive(Debug, Default)]
struct PeerPrefixes(PeerMap<Held>);

#[derive(Debug, Clone, Copy)]
struct Held {
    prefixes: usize,
    bytes: usize,
}

impl PeerPrefixes {
    fn weight(prefix: &[u8]) -> usize {
        prefix.len() + PREFIX_OVERHEAD_BYTES
    }

    /// Subscribes `peer` to `prefix` in `trie`, unless that would take the peer's
    /// subscriptions past [`MAX_SUBSCRIPTION_BYTES_PER_PEER`]; keeps the counts.
    fn subscribe(
        &mut self,
        trie: &mut SubscriptionTrie,
        peer: PeerId,
        prefix: &[u8],
    ) -> SubscriptionChange {
        let weight = Self::weight(prefix);
        let held = self.0.get(peer).map_or(0, |h| h.bytes);
        if held + weight > MAX_SUBSCRIPTION_BYTES_PER_PEER && !trie.contains(prefix, peer) {
            tracing::warn!(
                prefix_len = prefix.len(),
                "subscription ignored: the peer's subscriptions would pass 4 MiB"
            );
            return SubscriptionChange {
                for_peer: false,
                for_trie: false,
            };
        }
        let change = trie.subscribe(prefix, peer);
        if change.for_peer {
            match self.0.get_mut(peer) {
                Some(h) => {
                    h.prefixes += 1;
                    h.bytes += weight;
                }
                None => {
                    self.0.insert(
                        peer,
                        Held {
                            prefixes: 1,
                            bytes: weight,
                        },
                    );
                }
            }
        }
        change
    }

    /// Unsubscribes `peer` from `prefix` in `trie`; keeps the counts.
    fn unsubscribe(
        &mut self,
        trie: &mut SubscriptionTrie,
        peer: PeerId,
        prefix: &[u8],
    ) -> SubscriptionChange {
        let change = trie.unsubscribe(prefix, peer);
        if change.for_peer
            && let Some(h) = self.0.get_mut(peer)
        {
            h.prefixes -= 1;
            h.bytes -= Self::weight(prefix);
            if h.prefixes == 0 {
                self.0.remove(peer);
            }
        }
        change
    }

    fn remove_peer(&mut self, peer: PeerId) {
        self.0.remove(peer);
    }

    /// Peers holding at least one prefix.
    fn peers(&self) -> usize {
        self.0.len()
    }

    /// (peer, prefix) pairs held.
    fn total(&self) -> usize {
        self.0.iter().map(|(_, h)| h.prefixes).sum()
    }
}

/// The publishing half shared by PUB and XPUB: who wants what, and fan-out.
#[derive(Debug)]
struct Publisher {
    trie: SubscriptionTrie,
    /// Prefixes each peer holds in the trie; only peers holding at least one are present.
    prefixes_held: PeerPrefixes,
    /// Matching peers of the message being sent (kept to avoid an allocation per send).
    matched: Vec<PeerId>,
    /// Tasks in `wait_for_subscribers`.
    subscriber_wakers: WakerList,
    /// Peers whose handshake completed, subscribed or not (`invert_matching` sends to those
    /// that do not match).
    attached: Vec<PeerId>,
    /// `invert_matching`: send to the peers whose subscriptions do not match.
    invert: bool,
    /// `xpub_nodrop`: a send waits while a receiving peer is at its HWM.
    nodrop: bool,
}

impl Publisher {
    fn new(options: &SocketOptions) -> Self {
        Publisher {
            trie: SubscriptionTrie::new(),
            prefixes_held: PeerPrefixes::default(),
            matched: Vec::new(),
            subscriber_wakers: WakerList::default(),
            attached: Vec::new(),
            invert: options.invert_matching,
            nodrop: options.xpub_nodrop,
        }
    }

    fn options_changed(&mut self, options: &SocketOptions) {
        self.invert = options.invert_matching;
        self.nodrop = options.xpub_nodrop;
    }

    fn attach(&mut self, peer: PeerId) {
        self.attached.push(peer);
    }

    /// Puts the peers `message` goes to in `self.matched`: those with a matching
    /// subscription, or with `invert_matching` every other attached peer. False when the
    /// message has no frames.
    fn find_receivers(&mut self, message: &Message) -> bool {
        let Some(topic) = message.first_slice() else {
            return false;
        };
        self.trie.matching_peers(topic, &mut self.matched);
        if self.invert {
            let matching = std::mem::take(&mut self.matched);
            self.matched.extend(
                self.attached
                    .iter()
                    .copied()
                    .filter(|peer| !matching.contains(peer)),
            );
        }
        true
    }

    /// With `xpub_nodrop`: whether every peer `message` goes to has room under its HWM (if
    /// not, the send waits, registered as a sender). Always true without it.
    fn ready_for(&mut self, core: &mut Core, message: &Message, cx: &Context<'_>) -> bool {
        if !self.nodrop || !self.find_receivers(message) {
            return true;
        }
        let hwm = core.sndhwm;
        let ready = self
            .matched
            .iter()
            .all(|&peer| core.peers.get(peer).is_none_or(|p| p.has_room(hwm)));
        if !ready {
            core.park_send(cx);
        }
        ready
    }

    /// Applies one subscribe or cancel of `peer` to the trie.
    fn apply(&mut self, peer: PeerId, subscribe: bool, prefix: &[u8]) -> SubscriptionChange {
        if subscribe {
            let change = self.prefixes_held.subscribe(&mut self.trie, peer, prefix);
            if change.for_peer {
                self.subscriber_wakers.wake_all();
            }
            change
        } else {
            self.prefixes_held.unsubscribe(&mut self.trie, peer, prefix)
        }
    }

    /// Forgets a departed peer; `on_last` sees each prefix no peer holds any more.
    fn remove_peer(&mut self, peer: PeerId, on_last: impl FnMut(&[u8])) {
        self.attached.retain(|&p| p != peer);
        self.trie.remove_peer(peer, on_last);
        self.prefixes_held.remove_peer(peer);
    }

    fn subscriber_count(&self) -> usize {
        self.prefixes_held.peers()
    }

    /// (peer, prefix) subscriptions held across all peers.
    fn subscription_count(&self) -> usize {
        self.prefixes_held.total()
    }

    /// Queues `message` for every subscriber whose prefix matches its first frame and that is
    /// under its send HWM; counts one drop per subscriber at its HWM. Returns whether a
    /// receiving peer's queue reached the soft byte limit or half its HWM (the sender should
    /// yield: small messages reach the HWM long before the byte limit).
    fn distribute(&mut self, core: &mut Core, message: &Message) -> bool {
        if !self.find_receivers(message) || self.matched.is_empty() {
            return false;
        }
        core.encode_for_fanout(message);
        let hwm = core.sndhwm;
        let mut congested = false;
        let size = message.byte_len() as u64;
        for &peer in &self.matched {
            // A subscriber that announced a smaller max size would drop the connection.
            if !core
                .peers
                .get(peer)
                .is_some_and(|p| p.has_room(hwm) && p.fits(size))
            {
                core.count_drop(peer);
                continue;
            }
            core.enqueue_fanout(peer, message);
            congested |= core.peers.get(peer).is_some_and(|p| {
                p.out.len() >= QUEUE_SOFT_LIMIT_BYTES || (hwm > 0 && p.out_msgs >= hwm / 2)
            });
        }
        congested
    }
}

/// Sends `message` to matching subscribers. If some subscriber's queue is then long, it gives
/// way twice before returning.
///
/// - **To the runtime's other tasks**, with one `yield_now`. This matters on a
///   current-thread runtime, where connection tasks run only when the publishing task gives
///   up the thread. A publisher that never waits would otherwise keep queueing until every
///   subscriber reached its HWM and lost messages, even subscribers fast enough to take
///   everything. One yield lets their tasks write the batch out.
/// - **To the machine's other threads**, the workers and subscribers that deliver what it
///   queues ([`give_way`](super::give_way)).
///
/// Neither waits for anything, so a stalled subscriber still cannot hold the publisher up.
/// With `xpub_nodrop`, a receiving peer at its HWM makes it wait instead (honouring the send
/// timeout).
async fn publish<P: Pattern>(
    core: &SocketCore<P>,
    message: Message,
    publisher: impl Fn(&mut P) -> &mut Publisher,
) -> Result<(), SendError> {
    match publish_now(core, message, &publisher, true)? {
        Published::Sent { congested } => {
            if congested {
                super::give_way::after_long_queue_send();
                tokio::task::yield_now().await;
            }
            Ok(())
        }
        Published::MustWait(message) => {
            core.send_with(message, |state, slot, cx| {
                nodrop_attempt(state, slot, cx, &publisher)
            })
            .await
        }
    }
}

/// One attempt of an `xpub_nodrop` send: fan out once every receiver has room.
fn nodrop_attempt<P>(
    state: &mut State<P>,
    slot: &mut Option<Message>,
    cx: &mut Context<'_>,
    publisher: impl Fn(&mut P) -> &mut Publisher,
) -> Poll<Result<()>> {
    let State { core, pattern } = state;
    let publisher = publisher(pattern);
    let Some(message) = slot.as_ref() else {
        return Poll::Ready(Ok(()));
    };
    if !publisher.ready_for(core, message, cx) {
        return Poll::Pending;
    }
    publisher.distribute(core, message);
    slot.take();
    Poll::Ready(Ok(()))
}

/// `try_send` for PUB and XPUB: as `send`, except that with `xpub_nodrop` a receiving peer at
/// its HWM fails it with `WouldBlock` (the message handed back) instead of waiting.
fn try_publish<P: Pattern>(
    core: &SocketCore<P>,
    message: Message,
    publisher: impl Fn(&mut P) -> &mut Publisher,
) -> Result<(), SendError> {
    let message = super::non_empty(message)?;
    core.try_send_with(message, |state, slot, cx| {
        nodrop_attempt(state, slot, cx, &publisher)
    })
}

/// What [`publish_now`] did with a message.
enum Published {
    /// Fanned out; `congested` when some subscriber's queue is long (see [`publish`]).
    Sent { congested: bool },
    /// Not sent: an `xpub_nodrop` socket's send, which waits for room (asked for by
    /// `nodrop_waits`).
    MustWait(Message),
}

/// Sends `message` to matching subscribers under one hold of the socket lock, and wakes the
/// connection tasks it gave work to once the lock is released (see
/// [`Core::defer_task_wakes`](crate::engine::Core::defer_task_wakes)). With `xpub_nodrop`,
/// hands the message back when `nodrop_waits` (an async send, which waits for room) and fails
/// with `WouldBlock` when a receiver is at its HWM otherwise (a sink's send, which cannot
/// wait here).
fn publish_now<P: Pattern>(
    core: &SocketCore<P>,
    message: Message,
    publisher: impl FnOnce(&mut P) -> &mut Publisher,
    nodrop_waits: bool,
) -> Result<Published, SendError> {
    let message = super::non_empty(message)?;
    let mut state = core.lock();
    let State { core, pattern } = &mut *state;
    let publisher = publisher(pattern);
    if publisher.nodrop {
        if nodrop_waits {
            return Ok(Published::MustWait(message));
        }
        let cx = Context::from_waker(std::task::Waker::noop());
        if !publisher.ready_for(core, &message, &cx) {
            return Err(SendError::new(Error::WouldBlock, message));
        }
    }
    core.defer_task_wakes();
    let congested = publisher.distribute(core, &message);
    let wakes = core.take_deferred_wakes();
    drop(state);
    wakes.into_iter().for_each(std::task::Waker::wake);
    Ok(Published::Sent { congested })
}

/// The proxy's send for PUB and XPUB: fans the message out and never waits; reports a long
/// subscriber queue so the proxy lets the connection tasks run (see [`publish`]).
fn proxy_publish(
    core: &mut Core,
    publisher: &mut Publisher,
    slot: &mut Option<Message>,
) -> Poll<Result<crate::proxy::Placed>> {
    let congested = slot.take().is_some_and(|m| publisher.distribute(core, &m));
    Poll::Ready(Ok(if congested {
        crate::proxy::Placed::Congested
    } else {
        crate::proxy::Placed::Yes
    }))
}

/// Waits until `enough` holds for the publisher's subscriptions (re-checked whenever one
/// arrives).
async fn wait_for_publisher<P: Pattern>(
    core: &SocketCore<P>,
    publisher: impl Fn(&mut P) -> &mut Publisher,
    enough: impl Fn(&Publisher) -> bool,
) -> Result<()> {
    core.wait_until(|state, cx| {
        if state.core.is_closing() {
            return Poll::Ready(Err(Error::Closed));
        }
        let key = state.core.waiter();
        let publisher = publisher(&mut state.pattern);
        if enough(publisher) {
            return Poll::Ready(Ok(()));
        }
        publisher.subscriber_wakers.register(key, cx.waker());
        Poll::Pending
    })
    .await
}

/// Drop counting and subscription introspection, the same on PUB and XPUB (both patterns
/// keep their subscriptions in a `publisher: Publisher` field).
macro_rules! publisher_methods {
    ($ty:ident) => {
        impl $ty {
            /// Messages not delivered because a subscriber was at its send HWM, counted once
            /// per subscriber that missed one (libzmq drops them without counting).
            pub fn dropped_messages(&self) -> u64 {
                self.core.dropped_messages()
            }

            /// Connected peers holding at least one subscription.
            pub fn subscriber_count(&self) -> usize {
                self.core.lock().pattern.publisher.subscriber_count()
            }

            /// Waits until at least `n` peers hold a subscription: the cure for the
            /// slow-joiner problem when the number of subscribers is known. Fails with
            /// [`Error::Closed`] once the socket closes.
            ///
            /// Cancel-safe: it only waits.
            pub async fn wait_for_subscribers(&self, n: usize) -> Result<()> {
                wait_for_publisher(
                    &self.core,
                    |p| &mut p.publisher,
                    |p| p.subscriber_count() >= n,
                )
                .await
            }

            /// Subscriptions held, one per (peer, prefix): a peer subscribed to two prefixes
            /// counts twice.
            pub fn subscription_count(&self) -> usize {
                self.core.lock().pattern.publisher.subscription_count()
            }

            /// Waits until at least `n` subscriptions are held: for when the subscribers'
            /// prefixes, not just their number, are known. Fails with [`Error::Closed`] once
            /// the socket closes.
            ///
            /// Cancel-safe: it only waits.
            pub async fn wait_for_subscriptions(&self, n: usize) -> Result<()> {
                wait_for_publisher(
                    &self.core,
                    |p| &mut p.publisher,
                    |p| p.subscription_count() >= n,
                )
                .await
            }
        }
    };
}

publisher_methods!(Pub);
publisher_methods!(XPub);

/// The subscribing half shared by SUB and XSUB: counted local subscriptions, sent upstream.
#[derive(Debug)]
struct Subscriber {
    subscriptions: LocalSubscriptions,
    /// Publishers whose handshake completed, in attach order.
    publishers: Vec<PeerId>,
}

impl Subscriber {
    fn new() -> Self {
        Subscriber {
            subscriptions: LocalSubscriptions::new(),
            publishers: Vec::new(),
        }
    }

    /// A publisher connected (or reconnected): it hears every subscription, each prefix once.
    fn attach(&mut self, core: &mut Core, peer: PeerId) {
        core.inbox.add_peer(peer);
        self.publishers.push(peer);
        for prefix in self.subscriptions.iter() {
            core.enqueue_subscription(peer, true, prefix);
        }
    }

    fn detach(&mut self, peer: PeerId) {
        self.publishers.retain(|&p| p != peer);
    }

    /// Every subscribe goes upstream, even a repeated one, as libzmq's XSUB does (an XPUB
    /// upstream in verbose mode wants to see each); the local count decides cancels.
    fn subscribe(&mut self, core: &mut Core, prefix: &[u8]) {
        self.subscriptions.add(prefix);
        self.tell_publishers(core, true, prefix);
    }

    /// A cancel goes upstream only when the last of the prefix's subscriptions is removed.
    fn unsubscribe(&mut self, core: &mut Core, prefix: &[u8]) {
        if self.subscriptions.remove(prefix) {
            self.tell_publishers(core, false, prefix);
        }
    }

    fn tell_publishers(&mut self, core: &mut Core, subscribe: bool, prefix: &[u8]) {
        for &peer in &self.publishers {
            core.enqueue_subscription(peer, subscribe, prefix);
        }
    }
}

/// What a single-frame XPUB/XSUB data message starting with 1 or 0 means.
fn as_subscription(message: &Message) -> Option<(bool, &[u8])> {
    if message.len() != 1 {
        return None;
    }
    let frame = message.first_slice()?;
    match frame.first() {
        Some(&SUBSCRIBE_BYTE) => Some((true, &frame[1..])),
        Some(&CANCEL_BYTE) => Some((false, &frame[1..])),
        _ => None,
    }
}

/// A subscription notification as XPUB hands it to the user: `1`/`0` then the prefix.
fn notification(subscribe: bool, prefix: &[u8]) -> Message {
    let mut body = BytesMut::with_capacity(1 + prefix.len());
    body.put_u8(if subscribe {
        SUBSCRIBE_BYTE
    } else {
        CANCEL_BYTE
    });
    body.put_slice(prefix);
    Message::from(body.freeze())
}

// ---------------------------------------------------------------------------------------------

/// Publishes messages to every connected SUB/XSUB peer subscribed to a prefix of the
/// message's first frame. Send only.
///
/// `send` never waits for subscribers: a message no one subscribed to is discarded, and a
/// subscriber whose queue is at the send high-water mark misses it (see
/// [`Pub::dropped_messages`]). A subscriber that connects late misses what was published
/// before its subscription arrived (the "slow joiner"); [`Pub::wait_for_subscribers`] waits
/// for subscriptions without sleeping.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Message, Pub, Sub};
///
/// let publisher = Pub::new();
/// let endpoint = publisher.bind("tcp://127.0.0.1:0")?;
/// let subscriber = Sub::new();
/// subscriber.subscribe("weather/");
/// subscriber.connect(&endpoint)?;
/// publisher.wait_for_subscribers(1).await?;
///
/// publisher.send("sports/cup final").await?;
/// publisher.send(Message::from_iter(["weather/paris", "sunny"])).await?;
/// let message = subscriber.recv().await?;
/// assert_eq!(message.frames()[0], "weather/paris");
/// assert_eq!(message.frames()[1], "sunny");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Pub {
    core: SocketCore<PubPattern>,
}

#[derive(Debug)]
pub(crate) struct PubPattern {
    publisher: Publisher,
}

impl PubPattern {
    fn new(options: &SocketOptions) -> Self {
        PubPattern {
            publisher: Publisher::new(options),
        }
    }
}

impl Pattern for PubPattern {
    /// A subscriber receives nothing until it subscribes (with `invert_matching`, everything
    /// until it subscribes).
    fn attach(&mut self, _: &mut Core, peer: PeerId) -> bool {
        self.publisher.attach(peer);
        true
    }

    fn options_changed(&mut self, _: &mut Core, options: &SocketOptions) {
        self.publisher.options_changed(options);
    }

    fn detach(&mut self, _: &mut Core, peer: PeerId) {
        self.publisher.remove_peer(peer, |_| {});
    }

    /// PUB ignores anything but subscriptions from its peers, as libzmq does.
    fn deliver(&mut self, _: &mut Core, _: PeerId, _: Message) -> Result<(), Message> {
        Ok(())
    }

    fn subscription(
        &mut self,
        _: &mut Core,
        peer: PeerId,
        subscribe: bool,
        prefix: Bytes,
    ) -> Result<(), Bytes> {
        self.publisher.apply(peer, subscribe, &prefix);
        Ok(())
    }

    fn forget_waiter(&mut self, key: WaitKey) {
        self.publisher.subscriber_wakers.remove(key);
    }

    fn closing(&mut self) {
        self.publisher.subscriber_wakers.wake_all();
    }
}

super::socket_common!(Pub, PubPattern, SocketType::Pub, {});
super::socket_readiness!(Pub, PubPattern, readable: super::never, writable: super::always);
super::immediate_sink!(Pub, |publisher, message| {
    publish_now(&publisher.core, message, |p| &mut p.publisher, false).map(drop)
});
crate::proxy::proxied!(Pub, SocketType::Pub, send: |state, slot, _| {
    let State { core, pattern } = state;
    proxy_publish(core, &mut pattern.publisher, slot)
});

impl Pub {
    /// Publishes a message to every subscriber with a matching subscription. Never waits for
    /// a subscriber; it only fails for a message without frames. A send that leaves some
    /// subscriber's queue long lets other tasks and threads run before it returns, so that
    /// the subscribers can take what is queued (spec/pubsub.md).
    ///
    /// Cancel-safe: the message is queued (or dropped for a full subscriber, as above) at the
    /// first poll, before anything can cancel it.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        publish(&self.core, message.into(), |p| &mut p.publisher).await
    }

    /// Publishes without waiting: as [`Pub::send`], except that with `xpub_nodrop` a
    /// subscriber at its HWM fails it with [`Error::WouldBlock`], handing the message back.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        try_publish(&self.core, message.into(), |p| &mut p.publisher)
    }
}

// ---------------------------------------------------------------------------------------------

/// Receives messages from PUB/XPUB peers matching its subscriptions. Receive only.
///
/// [`Sub::subscribe`] and [`Sub::unsubscribe`] are counted: two subscribes to one prefix need
/// two unsubscribes. Subscriptions are sent to every connected publisher (which then filters
/// for us) and replayed whenever a publisher connects or reconnects. Messages are checked
/// against the subscriptions again on receipt, so nothing that was in flight when its
/// subscription was cancelled is returned.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Pub, Sub};
///
/// let subscriber = Sub::new();
/// let endpoint = subscriber.bind("tcp://127.0.0.1:0")?;
/// subscriber.subscribe(""); // everything
/// let publisher = Pub::new();
/// publisher.connect(&endpoint)?;
/// publisher.wait_for_subscribers(1).await?;
/// publisher.send("hello").await?;
/// assert_eq!(subscriber.recv().await?.frames()[0], "hello");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Sub {
    core: SocketCore<SubPattern>,
    poll: super::Streaming,
}

#[derive(Debug)]
pub(crate) struct SubPattern {
    subscriber: Subscriber,
    /// `invert_matching`: receive the messages that match no subscription.
    invert: bool,
}

impl SubPattern {
    fn new(options: &SocketOptions) -> Self {
        SubPattern {
            subscriber: Subscriber::new(),
            invert: options.invert_matching,
        }
    }

    /// Whether `recv` returns `message`: its topic matches a current subscription (with
    /// `invert_matching`: matches none).
    fn wants(&self, message: &Message) -> bool {
        let topic = message.first_slice().unwrap_or_default();
        self.subscriber.subscriptions.matches(topic) != self.invert
    }

    /// The next queued message that [`SubPattern::wants`]; others are discarded.
    fn poll_recv(&mut self, core: &mut Core, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        core.recv_fair_message(cx, |message| self.wants(message))
    }
}

impl Pattern for SubPattern {
    fn options_changed(&mut self, _: &mut Core, options: &SocketOptions) {
        self.invert = options.invert_matching;
    }

    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool {
        self.subscriber.attach(core, peer);
        true
    }

    fn detach(&mut self, _: &mut Core, peer: PeerId) {
        self.subscriber.detach(peer);
    }
}

super::socket_common!(Sub, SubPattern, SocketType::Sub);
// Readable once a message `recv` would return is queued; those it would discard (they match
// no current subscription, or with `invert_matching` match one) are discarded here.
super::socket_readiness!(
    Sub,
    SubPattern,
    readable: |state| {
        while let Some((_, message)) = state.core.inbox.peek() {
            if state.pattern.wants(message) {
                return true;
            }
            state.core.pop_inbox();
        }
        false
    },
    writable: super::never
);
super::socket_stream!(Sub, |state, cx| state
    .pattern
    .poll_recv(&mut state.core, cx));
crate::proxy::proxied!(Sub, SocketType::Sub, recv: |state, cx| state
    .pattern
    .poll_recv(&mut state.core, cx));

impl Sub {
    /// Subscribes to messages whose first frame starts with `prefix` (`""`: every message).
    pub fn subscribe(&self, prefix: impl AsRef<[u8]>) {
        let mut state = self.core.lock();
        let State { core, pattern } = &mut *state;
        pattern.subscriber.subscribe(core, prefix.as_ref());
    }

    /// Removes one subscription to `prefix`; the publishers hear of it when none is left.
    /// Unsubscribing from a prefix never subscribed to does nothing.
    pub fn unsubscribe(&self, prefix: impl AsRef<[u8]>) {
        let mut state = self.core.lock();
        let State { core, pattern } = &mut *state;
        pattern.subscriber.unsubscribe(core, prefix.as_ref());
    }

    /// Receives the next matching message, waiting until one arrives (or the receive
    /// timeout).
    ///
    /// Cancel-safe: dropped before it completes (by `select!` or a timeout), it has taken no
    /// message, and the next receive gets it.
    pub async fn recv(&self) -> Result<Message> {
        self.core
            .recv_with(|state, cx| state.pattern.poll_recv(&mut state.core, cx))
            .await
    }

    /// Receives without waiting: [`Error::WouldBlock`] when no matching message is queued.
    pub fn try_recv(&self) -> Result<Message> {
        self.core
            .try_recv_with(|state, cx| state.pattern.poll_recv(&mut state.core, cx))
    }
}

// ---------------------------------------------------------------------------------------------

/// A publisher that shows subscriptions to the application: what [`XPub::recv`] returns is a
/// notification (`1` or `0`, then the prefix) for each new or cancelled subscription, or a
/// message a subscriber sent upstream. Sending works as for [`Pub`].
///
/// Options: `xpub_verbose` passes every subscribe up, not only the first for a prefix;
/// `xpub_manual` leaves the filter to the application, which calls [`XPub::subscribe`] and
/// [`XPub::unsubscribe`] for the peer whose notification it received last;
/// `xpub_welcome_msg` is sent to each subscriber when it connects.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Sub, XPub};
///
/// let xpub = XPub::new();
/// let endpoint = xpub.bind("tcp://127.0.0.1:0")?;
/// let subscriber = Sub::new();
/// subscriber.connect(&endpoint)?;
/// subscriber.subscribe("news");
/// assert_eq!(&xpub.recv().await?.frames()[0][..], b"\x01news");
/// subscriber.unsubscribe("news");
/// assert_eq!(&xpub.recv().await?.frames()[0][..], b"\x00news");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct XPub {
    core: SocketCore<XPubPattern>,
    poll: super::Streaming,
}

#[derive(Debug)]
pub(crate) struct XPubPattern {
    publisher: Publisher,
    verbose: bool,
    /// In manual mode, what each peer asked for (the trie holds what the application chose),
    /// with what each peer's requests weigh.
    requested: Option<(SubscriptionTrie, PeerPrefixes)>,
    welcome: Option<Message>,
    /// Notifications not yet received, with the peer they came from (`None`: a cancel caused
    /// by a disconnect, at most one per prefix the peer held).
    notifications: VecDeque<(Option<PeerId>, Message)>,
    /// Notifications queued per peer: at the RCVHWM, a peer's further subscriptions wait in
    /// its connection, which stops reading (libzmq's queue grows without bound instead).
    notified: PeerMap<usize>,
    rcvhwm: usize,
    /// The peer of the notification received last (manual mode).
    last_peer: Option<PeerId>,
}

impl XPubPattern {
    fn new(options: &SocketOptions) -> Self {
        XPubPattern {
            publisher: Publisher::new(options),
            verbose: options.xpub_verbose,
            requested: options.xpub_manual.then(Default::default),
            welcome: options
                .xpub_welcome_msg
                .clone()
                .filter(|w| !w.is_empty())
                .map(Message::from),
            notifications: VecDeque::new(),
            notified: PeerMap::new(),
            rcvhwm: options.rcvhwm,
            last_peer: None,
        }
    }

    /// Whether `peer` may queue another notification.
    fn may_notify(&self, peer: PeerId) -> bool {
        self.rcvhwm == 0 || self.notified.get(peer).is_none_or(|&n| n < self.rcvhwm)
    }

    fn notify(&mut self, core: &mut Core, peer: Option<PeerId>, subscribe: bool, prefix: &[u8]) {
        self.notifications
            .push_back((peer, notification(subscribe, prefix)));
        if let Some(peer) = peer {
            match self.notified.get_mut(peer) {
                Some(n) => *n += 1,
                None => {
                    self.notified.insert(peer, 1);
                }
            }
        }
        core.recv_wakers.wake_all();
    }

    /// Notifications first, then messages sent upstream by subscribers.
    fn poll_recv(&mut self, core: &mut Core, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        if core.is_closing() {
            return Poll::Ready(Err(Error::Closed));
        }
        if let Some((peer, message)) = self.notifications.pop_front() {
            if let Some(peer) = peer
                && let Some(n) = self.notified.get_mut(peer)
            {
                *n -= 1;
                if *n == 0 {
                    self.notified.remove(peer);
                }
                core.room_freed(peer);
            }
            if self.requested.is_some() {
                self.last_peer = peer;
            }
            return Poll::Ready(Ok(message));
        }
        core.recv_fair_message(cx, |_| true)
    }

    /// Subscribes or unsubscribes the last notifying peer (manual mode only).
    fn manual(&mut self, subscribe: bool, prefix: &[u8]) -> Result<()> {
        if self.requested.is_none() {
            return Err(Error::WrongState {
                socket: SocketType::XPub,
                reason: "subscribe and unsubscribe need the xpub_manual option",
            });
        }
        // `detach` clears `last_peer`, so it always names a connected peer.
        if let Some(peer) = self.last_peer {
            self.publisher.apply(peer, subscribe, prefix);
        }
        Ok(())
    }
}

impl Pattern for XPubPattern {
    fn options_changed(&mut self, _: &mut Core, options: &SocketOptions) {
        self.publisher.options_changed(options);
        self.verbose = options.xpub_verbose;
        self.rcvhwm = options.rcvhwm;
        self.welcome = options
            .xpub_welcome_msg
            .clone()
            .filter(|w| !w.is_empty())
            .map(Message::from);
    }

    fn forget_waiter(&mut self, key: WaitKey) {
        self.publisher.subscriber_wakers.remove(key);
    }

    fn closing(&mut self) {
        self.publisher.subscriber_wakers.wake_all();
    }

    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool {
        core.inbox.add_peer(peer);
        self.publisher.attach(peer);
        if let Some(welcome) = &self.welcome {
            core.enqueue(peer, welcome.clone());
        }
        true
    }

    fn detach(&mut self, core: &mut Core, peer: PeerId) {
        let mut gone = Vec::new();
        match &mut self.requested {
            Some((requested, held)) => {
                requested.remove_peer(peer, |prefix| gone.push(prefix.to_vec()));
                held.remove_peer(peer);
                self.publisher.remove_peer(peer, |_| {});
            }
            None => self
                .publisher
                .remove_peer(peer, |prefix| gone.push(prefix.to_vec())),
        }
        if self.last_peer == Some(peer) {
            self.last_peer = None;
        }
        self.notified.remove(peer);
        for prefix in gone {
            self.notify(core, None, false, &prefix);
        }
    }

    fn subscription(
        &mut self,
        core: &mut Core,
        peer: PeerId,
        subscribe: bool,
        prefix: Bytes,
    ) -> Result<(), Bytes> {
        if !self.may_notify(peer) {
            return Err(prefix);
        }
        let notify = match &mut self.requested {
            // Manual mode shows every request; the application decides.
            Some((requested, held)) => {
                if subscribe {
                    held.subscribe(requested, peer, &prefix).for_peer
                } else {
                    held.unsubscribe(requested, peer, &prefix);
                    true
                }
            }
            None => {
                let change = self.publisher.apply(peer, subscribe, &prefix);
                change.for_trie || (subscribe && self.verbose)
            }
        };
        if notify {
            self.notify(core, Some(peer), subscribe, &prefix);
        }
        Ok(())
    }
}

super::socket_common!(XPub, XPubPattern, SocketType::XPub);
super::socket_readiness!(
    XPub,
    XPubPattern,
    readable: |state| !state.pattern.notifications.is_empty() || super::inbox_ready(state),
    writable: super::always
);
super::immediate_sink!(XPub, |publisher, message| {
    publish_now(&publisher.core, message, |p| &mut p.publisher, false).map(drop)
});
super::socket_stream!(XPub, |state, cx| state
    .pattern
    .poll_recv(&mut state.core, cx));
crate::proxy::proxied!(
    XPub,
    SocketType::XPub,
    recv: |state, cx| state.pattern.poll_recv(&mut state.core, cx),
    send: |state, slot, _| {
        let State { core, pattern } = state;
        proxy_publish(core, &mut pattern.publisher, slot)
    }
);

impl XPub {
    super::live_setters! {
        /// Sets `xpub_verbose` (ZMQ_XPUB_VERBOSE) on the live socket, from the next
        /// subscription.
        set_xpub_verbose => xpub_verbose: bool,
    }

    /// Publishes a message to every matching subscriber; never waits (see [`Pub::send`]).
    ///
    /// Cancel-safe: the message is queued (or dropped for a full subscriber, as above) at the
    /// first poll, before anything can cancel it.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        publish(&self.core, message.into(), |p| &mut p.publisher).await
    }

    /// Publishes without waiting: as [`XPub::send`], except that with `xpub_nodrop` a
    /// subscriber at its HWM fails it with [`Error::WouldBlock`], handing the message back.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        try_publish(&self.core, message.into(), |p| &mut p.publisher)
    }

    /// Receives the next subscription notification (`1`/`0` then the prefix) or upstream
    /// message, waiting until there is one (or the receive timeout).
    ///
    /// Cancel-safe: dropped before it completes (by `select!` or a timeout), it has taken no
    /// message, and the next receive gets it.
    pub async fn recv(&self) -> Result<Message> {
        self.core
            .recv_with(|state, cx| state.pattern.poll_recv(&mut state.core, cx))
            .await
    }

    /// Receives without waiting: [`Error::WouldBlock`] when nothing is queued.
    pub fn try_recv(&self) -> Result<Message> {
        self.core
            .try_recv_with(|state, cx| state.pattern.poll_recv(&mut state.core, cx))
    }

    /// With `xpub_manual`: subscribes the peer whose notification was received last to
    /// `prefix`. Does nothing when that peer is gone; fails without `xpub_manual`.
    pub fn subscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.core.lock().pattern.manual(true, prefix.as_ref())
    }

    /// With `xpub_manual`: removes `prefix` from the peer whose notification was received
    /// last. Fails without `xpub_manual`.
    pub fn unsubscribe(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        self.core.lock().pattern.manual(false, prefix.as_ref())
    }
}

// ---------------------------------------------------------------------------------------------

/// A subscriber driven by messages: sending `1` + prefix subscribes, `0` + prefix cancels
/// (counted as for [`Sub`]), and any other message goes upstream to every connected
/// publisher. [`XSub::recv`] returns what the publishers send, without filtering it again
/// (publishers filter; libzmq's XSUB does not re-check either).
///
/// Together with [`XPub`] it makes a forwarding proxy (see `examples/pubsub_proxy.rs`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ferromq::Result<()> {
/// use ferromq::{Pub, XSub};
///
/// let publisher = Pub::new();
/// let endpoint = publisher.bind("tcp://127.0.0.1:0")?;
/// let xsub = XSub::new();
/// xsub.connect(&endpoint)?;
/// xsub.send(b"\x01alerts").await?;
/// publisher.wait_for_subscribers(1).await?;
/// publisher.send("alerts: disk full").await?;
/// assert_eq!(xsub.recv().await?.frames()[0], "alerts: disk full");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct XSub {
    core: SocketCore<XSubPattern>,
    poll: super::Streaming,
}

#[derive(Debug)]
pub(crate) struct XSubPattern {
    subscriber: Subscriber,
}

impl XSubPattern {
    fn new(_: &SocketOptions) -> Self {
        XSubPattern {
            subscriber: Subscriber::new(),
        }
    }

    /// Applies a subscription message, or sends a data message to every publisher with room
    /// (counting a drop for each one at its HWM).
    fn send(&mut self, core: &mut Core, message: &Message) {
        match as_subscription(message) {
            Some((true, prefix)) => self.subscriber.subscribe(core, prefix),
            Some((false, prefix)) => self.subscriber.unsubscribe(core, prefix),
            None => {
                let hwm = core.sndhwm;
                for &peer in &self.subscriber.publishers {
                    let size = message.byte_len() as u64;
                    if core
                        .peers
                        .get(peer)
                        .is_some_and(|p| p.has_room(hwm) && p.fits(size))
                    {
                        core.enqueue(peer, message.clone());
                    } else {
                        core.count_drop(peer);
                    }
                }
            }
        }
    }
}

impl Pattern for XSubPattern {
    fn attach(&mut self, core: &mut Core, peer: PeerId) -> bool {
        self.subscriber.attach(core, peer);
        true
    }

    fn detach(&mut self, _: &mut Core, peer: PeerId) {
        self.subscriber.detach(peer);
    }
}

super::socket_common!(XSub, XSubPattern, SocketType::XSub);
super::socket_readiness!(XSub, XSubPattern, readable: super::inbox_ready, writable: super::always);
super::socket_stream!(XSub, super::fair_attempt);
super::immediate_sink!(XSub, |xsub, message| xsub.send_now(message));
crate::proxy::proxied!(
    XSub,
    SocketType::XSub,
    recv: super::fair_attempt,
    send: |state, slot, _| {
        if let Some(message) = slot.take() {
            let State { core, pattern } = state;
            pattern.send(core, &message);
        }
        Poll::Ready(Ok(crate::proxy::Placed::Yes))
    }
);

impl XSub {
    /// Sends a subscription (`1` + prefix), a cancellation (`0` + prefix) or an upstream
    /// message. Never waits: an upstream message for a publisher at its HWM is dropped for
    /// that publisher (see [`XSub::dropped_messages`]).
    ///
    /// Cancel-safe: it never waits, so the message is queued at the first poll.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.send_now(message.into())
    }

    fn send_now(&self, message: Message) -> Result<(), SendError> {
        let message = super::non_empty(message)?;
        let mut state = self.core.lock();
        let State { core, pattern } = &mut *state;
        pattern.send(core, &message);
        Ok(())
    }

    /// Receives the next message from the publishers, waiting until one arrives (or the
    /// receive timeout).
    ///
    /// Cancel-safe: dropped before it completes (by `select!` or a timeout), it has taken no
    /// message, and the next receive gets it.
    pub async fn recv(&self) -> Result<Message> {
        self.core.recv_with(super::fair_attempt).await
    }

    /// Receives without waiting: [`Error::WouldBlock`] when nothing is queued.
    pub fn try_recv(&self) -> Result<Message> {
        self.core.try_recv_with(super::fair_attempt)
    }

    /// Upstream messages not delivered because a publisher was at its send HWM.
    pub fn dropped_messages(&self) -> u64 {
        self.core.dropped_messages()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_frame_messages_starting_with_0_or_1_are_subscriptions() {
        assert_eq!(
            as_subscription(&Message::from(&b"\x01ab"[..])),
            Some((true, &b"ab"[..]))
        );
        assert_eq!(
            as_subscription(&Message::from(&b"\x00"[..])),
            Some((false, &b""[..]))
        );
        assert_eq!(as_subscription(&Message::from(&b"\x02ab"[..])), None);
        assert_eq!(as_subscription(&Message::from(&b""[..])), None);
        let multipart: Message = [&b"\x01ab"[..], b"x"].into_iter().collect();
        assert_eq!(as_subscription(&multipart), None);
    }

    #[test]
    fn notifications_carry_the_flag_byte_then_the_prefix() {
        assert_eq!(&notification(true, b"ab").frames()[0][..], b"\x01ab");
        assert_eq!(&notification(false, b"").frames()[0][..], b"\x00");
    }
}
