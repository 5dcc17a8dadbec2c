//! Routing ids for ROUTER sockets.
//!
//! A ROUTER prefixes every received message with the sending peer's routing id and routes
//! every sent message by its first frame. A peer may announce its own id (the `Identity`
//! READY property); otherwise the ROUTER makes one up in libzmq's form: a zero byte then a
//! big-endian `u32` counter (the leading zero marks it as generated). [`RoutingTable`] keeps
//! the two-way mapping between those ids and [`PeerId`]s and applies libzmq's rules for an
//! announced id that is already taken (reject the newcomer, or hand the id over to it when
//! `ZMQ_ROUTER_HANDOVER` is set).

use std::collections::HashMap;

use bytes::Bytes;

use super::peer::{PeerId, PeerMap};

/// Length of a generated routing id: one zero byte and a big-endian `u32`.
const GENERATED_ID_BYTES: usize = 5;

/// Why a peer could not be attached to a [`RoutingTable`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// The announced routing id belongs to another peer and handover is off.
    #[error("routing id {0:?} is already in use by another peer")]
    DuplicateId(Bytes),
}

/// Two-way map between routing ids and peers.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    by_id: HashMap<Bytes, PeerId>,
    by_peer: PeerMap<Bytes>,
    /// Counter value of the next generated id.
    next_id: u32,
}

impl RoutingTable {
    /// Creates an empty table whose first generated id uses counter value `seed`.
    pub fn new(seed: u32) -> Self {
        Self {
            by_id: HashMap::new(),
            by_peer: PeerMap::new(),
            next_id: seed,
        }
    }

    /// Makes a fresh id (`0x00` + big-endian counter), skipping ids currently in use.
    ///
    /// The id is not reserved; [`attach`](Self::attach) it to keep it. Terminates because
    /// fewer than 2³² ids can be in use.
    pub fn generate_id(&mut self) -> Bytes {
        loop {
            let mut id = [0u8; GENERATED_ID_BYTES];
            id[1..].copy_from_slice(&self.next_id.to_be_bytes());
            self.next_id = self.next_id.wrapping_add(1);
            if !self.by_id.contains_key(&id[..]) {
                return Bytes::copy_from_slice(&id);
            }
        }
    }

    /// Gives `peer` a routing id: the `announced` one if present and free, else a generated
    /// one when none (or an empty one) was announced.
    ///
    /// If the announced id belongs to another peer, fails with
    /// [`AttachError::DuplicateId`] unless `handover` is set, in which case `peer` takes the
    /// id and the previous owner, now detached, is returned alongside it. A peer attached
    /// again gives up its previous id first (unless it re-announces that same id).
    pub fn attach(
        &mut self,
        peer: PeerId,
        announced: Option<Bytes>,
        handover: bool,
    ) -> Result<(Bytes, Option<PeerId>), AttachError> {
        let announced = announced.filter(|id| !id.is_empty());
        let mut displaced = None;
        if let Some(id) = &announced {
            if let Some(&owner) = self.by_id.get(id) {
                if owner == peer {
                    return Ok((id.clone(), None));
                }
                if !handover {
                    return Err(AttachError::DuplicateId(id.clone()));
                }
                self.by_id.remove(id);
                self.by_peer.remove(owner);
                displaced = Some(owner);
            }
        }
        self.remove_peer(peer);
        let id = match announced {
            Some(id) => id,
            None => self.generate_id(),
        };
        self.by_id.insert(id.clone(), peer);
        self.by_peer.insert(peer, id.clone());
        Ok((id, displaced))
    }

    /// The peer owning routing id `id`.
    pub fn lookup(&self, id: &[u8]) -> Option<PeerId> {
        self.by_id.get(id).copied()
    }

    /// The routing id of `peer`.
    pub fn id_of(&self, peer: PeerId) -> Option<&Bytes> {
        self.by_peer.get(peer)
    }

    /// Every routing id in use, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = &Bytes> {
        self.by_id.keys()
    }

    /// Detaches `peer`, returning the routing id it had.
    pub fn remove_peer(&mut self, peer: PeerId) -> Option<Bytes> {
        let id = self.by_peer.remove(peer)?;
        self.by_id.remove(&id);
        Some(id)
    }

    /// Number of attached peers.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no peer is attached.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::peer::{PeerSlab, test_peer_ids as ids};

    #[test]
    fn routing_generated_id_is_zero_then_big_endian_counter() {
        let mut table = RoutingTable::new(0x0102_0304);
        assert_eq!(table.generate_id(), Bytes::from_static(&[0, 1, 2, 3, 4]));
        assert_eq!(table.generate_id(), Bytes::from_static(&[0, 1, 2, 3, 5]));
    }

    #[test]
    fn routing_generated_counter_wraps() {
        let mut table = RoutingTable::new(u32::MAX);
        assert_eq!(
            table.generate_id(),
            Bytes::from_static(&[0, 255, 255, 255, 255])
        );
        assert_eq!(table.generate_id(), Bytes::from_static(&[0, 0, 0, 0, 0]));
    }

    #[test]
    fn routing_generated_id_skips_ids_in_use() {
        let p = ids(2);
        let mut table = RoutingTable::new(7);
        let taken = Bytes::from_static(&[0, 0, 0, 0, 7]);
        assert_eq!(
            table.attach(p[0], Some(taken.clone()), false),
            Ok((taken, None))
        );
        let (id, displaced) = table.attach(p[1], None, false).expect("fresh id");
        assert_eq!(id, Bytes::from_static(&[0, 0, 0, 0, 8]));
        assert_eq!(displaced, None);
    }

    #[test]
    fn routing_missing_or_empty_announcement_gets_generated_id() {
        let p = ids(2);
        let mut table = RoutingTable::new(1);
        let (a, _) = table.attach(p[0], None, false).expect("attach");
        let (b, _) = table
            .attach(p[1], Some(Bytes::new()), false)
            .expect("attach");
        assert_eq!(a, Bytes::from_static(&[0, 0, 0, 0, 1]));
        assert_eq!(b, Bytes::from_static(&[0, 0, 0, 0, 2]));
        assert_eq!(table.lookup(&a), Some(p[0]));
        assert_eq!(table.lookup(&b), Some(p[1]));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn routing_free_announced_id_is_used() {
        let p = ids(1);
        let mut table = RoutingTable::new(0);
        let id = Bytes::from_static(b"alice");
        assert_eq!(table.attach(p[0], Some(id.clone()), false), Ok((id, None)));
        assert_eq!(table.lookup(b"alice"), Some(p[0]));
        assert_eq!(table.id_of(p[0]), Some(&Bytes::from_static(b"alice")));
    }

    #[test]
    fn routing_duplicate_id_without_handover_is_rejected() {
        let p = ids(2);
        let mut table = RoutingTable::new(0);
        let id = Bytes::from_static(b"alice");
        table.attach(p[0], Some(id.clone()), false).expect("first");
        let err = table.attach(p[1], Some(id.clone()), false);
        assert_eq!(err, Err(AttachError::DuplicateId(id)));
        assert_eq!(table.lookup(b"alice"), Some(p[0]));
        assert_eq!(table.id_of(p[1]), None);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn routing_duplicate_id_with_handover_moves_id_to_new_peer() {
        let p = ids(2);
        let mut table = RoutingTable::new(0);
        let id = Bytes::from_static(b"alice");
        table.attach(p[0], Some(id.clone()), true).expect("first");
        assert_eq!(
            table.attach(p[1], Some(id.clone()), true),
            Ok((id, Some(p[0])))
        );
        assert_eq!(table.lookup(b"alice"), Some(p[1]));
        assert_eq!(table.id_of(p[0]), None);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn routing_reattach_replaces_previous_id() {
        let p = ids(1);
        let mut table = RoutingTable::new(0);
        let alice = Bytes::from_static(b"alice");
        table
            .attach(p[0], Some(alice.clone()), false)
            .expect("first");
        assert_eq!(
            table.attach(p[0], Some(alice.clone()), false),
            Ok((alice, None))
        );
        table
            .attach(p[0], Some(Bytes::from_static(b"bob")), false)
            .expect("rename");
        assert_eq!(table.lookup(b"alice"), None);
        assert_eq!(table.lookup(b"bob"), Some(p[0]));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn routing_remove_peer_frees_its_id() {
        let p = ids(2);
        let mut table = RoutingTable::new(0);
        let id = Bytes::from_static(b"alice");
        table.attach(p[0], Some(id.clone()), false).expect("first");
        assert_eq!(table.remove_peer(p[0]), Some(id.clone()));
        assert_eq!(table.remove_peer(p[0]), None);
        assert!(table.is_empty());
        assert_eq!(table.attach(p[1], Some(id.clone()), false), Ok((id, None)));
    }

    #[test]
    fn routing_stale_peer_id_has_no_routing_id() {
        let mut slab = PeerSlab::new();
        let old = slab.insert(());
        let mut table = RoutingTable::new(0);
        table.attach(old, None, false).expect("attach");
        table.remove_peer(old);
        slab.remove(old);
        let new = slab.insert(());
        table.attach(new, None, false).expect("attach");
        assert_eq!(table.id_of(old), None);
        assert_eq!(table.remove_peer(old), None);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn routing_attach_error_displays_id() {
        let err = AttachError::DuplicateId(Bytes::from_static(b"alice"));
        assert_eq!(
            err.to_string(),
            "routing id b\"alice\" is already in use by another peer"
        );
    }
}
