//! Sans-IO routing: which peer a message goes to, and which peer is read next.
//!
//! Each ZeroMQ socket type is a choice of routing rules: round-robin to peers with room
//! (PUSH, DEALER, REQ), fair-queued reads (PULL, SUB, DEALER, ROUTER, REP), prefix-filtered
//! fan-out (PUB, XPUB) and addressing by routing id (ROUTER). This module holds those rules
//! as plain data structures keyed by [`PeerId`]: no tasks, channels, wakers or clocks. The
//! engine owns the connections, tells these structures about peers coming and going and
//! asks them where to route; that split keeps every rule unit- and property-testable.
//!
//! - [`peer`]: [`PeerId`] (slab index + generation) and the slabs that hand them out.
//! - [`lb`]: [`LoadBalancer`], outgoing round-robin that skips peers at their HWM.
//! - [`fq`]: [`FairQueue`], per-peer inbound queues served one message per turn.
//! - [`trie`]: [`SubscriptionTrie`] (publisher side) and [`LocalSubscriptions`] (subscriber).
//! - [`routing`]: [`RoutingTable`], ROUTER routing ids to peers and back.
//! - [`req`]: [`ReqState`] and [`RepState`], request–reply alternation and envelopes.

pub mod fq;
pub mod lb;
pub mod peer;
pub mod req;
pub mod routing;
pub mod trie;

pub use fq::FairQueue;
pub use lb::LoadBalancer;
pub use peer::{PeerId, PeerMap, PeerSlab};
pub use req::{RepState, ReqState, RequestEnvelope, StateError};
pub use routing::{AttachError, RoutingTable};
pub use trie::{LocalSubscriptions, SubscriptionChange, SubscriptionTrie};
