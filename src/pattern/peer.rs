//! Peer identities for the pattern layer.
//!
//! Every routing structure in `pattern/` (load balancer, fair queue, subscription trie,
//! routing table) refers to a connected peer by a [`PeerId`] rather than by a handle to its
//! connection. A `PeerId` is a slab index plus a generation: when a peer disconnects its slot
//! is freed and may be reused by the next peer, but with a higher generation, so an id held
//! by a stale entry (a late event, a queued message) can never address the new occupant.
//!
//! [`PeerSlab`] allocates ids and owns per-peer values; [`PeerMap`] stores values under ids
//! allocated by some other slab (the engine owns the one `PeerSlab` that hands out ids, and
//! each pattern structure keeps its own per-peer state in a `PeerMap`).

/// Identifies one connected peer; stale ids never match a reused slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct PeerId {
    index: u32,
    generation: u32,
}

impl PeerId {
    /// The socket itself, in a structure that holds nobody else: a SUB's own subscriptions
    /// are a [`SubscriptionTrie`](super::SubscriptionTrie) whose one holder is this id.
    pub(crate) const OWN: PeerId = PeerId {
        index: u32::MAX,
        generation: u32::MAX,
    };

    /// The slot index; dense and reused, so handy for indexing per-peer arrays.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// One slot of a [`PeerSlab`]: the generation of its current (or next) occupant.
#[derive(Debug, Clone)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A generational slab: allocates [`PeerId`]s and stores one value per live peer.
///
/// Freed slots are reused with a bumped generation. A slot whose generation would wrap is
/// retired instead of reused, so an id is never handed out twice.
#[derive(Debug, Clone)]
pub struct PeerSlab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> PeerSlab<T> {
    /// Creates an empty slab.
    pub fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Stores `value` and returns the new peer's id, reusing a free slot when there is one.
    ///
    /// # Panics
    ///
    /// Panics if more than `u32::MAX` slots would be needed (far beyond any memory budget).
    pub fn insert(&mut self, value: T) -> PeerId {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.value = Some(value);
            return PeerId {
                index,
                generation: slot.generation,
            };
        }
        let index = u32::try_from(self.slots.len()).expect("more than u32::MAX peer slots");
        self.slots.push(Slot {
            generation: 0,
            value: Some(value),
        });
        PeerId {
            index,
            generation: 0,
        }
    }

    /// The value of a live peer; `None` for removed or stale ids.
    #[inline]
    pub fn get(&self, id: PeerId) -> Option<&T> {
        self.slots
            .get(id.index())
            .filter(|slot| slot.generation == id.generation)
            .and_then(|slot| slot.value.as_ref())
    }

    /// Mutable access to the value of a live peer; `None` for removed or stale ids.
    #[inline]
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut T> {
        self.slots
            .get_mut(id.index())
            .filter(|slot| slot.generation == id.generation)
            .and_then(|slot| slot.value.as_mut())
    }

    /// Removes a live peer and returns its value; the slot is reused with a new generation.
    pub fn remove(&mut self, id: PeerId) -> Option<T> {
        let slot = self
            .slots
            .get_mut(id.index())
            .filter(|slot| slot.generation == id.generation)?;
        let value = slot.value.take()?;
        self.len -= 1;
        if let Some(next) = slot.generation.checked_add(1) {
            slot.generation = next;
            self.free.push(id.index);
        }
        Some(value)
    }

    /// Whether `id` names a live peer.
    pub fn contains(&self, id: PeerId) -> bool {
        self.get(id).is_some()
    }

    /// Number of live peers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no live peers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Live peers and their values, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (PeerId, &T)> {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let value = slot.value.as_ref()?;
            Some((make_id(index, slot.generation), value))
        })
    }

    /// Live peers and mutable access to their values, in slot order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (PeerId, &mut T)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(index, slot)| {
                let value = slot.value.as_mut()?;
                Some((make_id(index, slot.generation), value))
            })
    }

    /// Ids of the live peers, in slot order.
    pub fn ids(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.iter().map(|(id, _)| id)
    }
}

impl<T> Default for PeerSlab<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds the id of an occupied slot; slot indices always fit in `u32` (see `insert`).
fn make_id(index: usize, generation: u32) -> PeerId {
    PeerId {
        index: index as u32,
        generation,
    }
}

/// Per-peer values stored under ids allocated by a [`PeerSlab`] elsewhere.
///
/// Indexed directly by [`PeerId::index`], so lookups are O(1) and memory is bounded by the
/// allocating slab's size. The full id (with generation) is kept, so a stale id never reads
/// or writes the value of the slot's new occupant.
#[derive(Debug, Clone)]
pub struct PeerMap<T> {
    slots: Vec<Option<(PeerId, T)>>,
    len: usize,
}

impl<T> PeerMap<T> {
    /// Creates an empty map.
    pub fn new() -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
        }
    }

    /// Stores `value` for `id`, returning whatever was stored in that slot before: the
    /// previous value of `id`, or that of a stale id with the same index (the caller
    /// vouches that `id` is the live one).
    pub fn insert(&mut self, id: PeerId, value: T) -> Option<T> {
        let index = id.index();
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, || None);
        }
        let old = self.slots[index].replace((id, value));
        if old.is_none() {
            self.len += 1;
        }
        old.map(|(_, value)| value)
    }

    /// The value stored for `id`; `None` if absent or if `id` is stale.
    #[inline]
    pub fn get(&self, id: PeerId) -> Option<&T> {
        match self.slots.get(id.index()) {
            Some(Some((stored, value))) if *stored == id => Some(value),
            _ => None,
        }
    }

    /// Mutable access to the value stored for `id`; `None` if absent or stale.
    #[inline]
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut T> {
        match self.slots.get_mut(id.index()) {
            Some(Some((stored, value))) if *stored == id => Some(value),
            _ => None,
        }
    }

    /// Removes and returns the value stored for `id`; `None` if absent or stale.
    pub fn remove(&mut self, id: PeerId) -> Option<T> {
        let slot = self.slots.get_mut(id.index())?;
        match slot {
            Some((stored, _)) if *stored == id => {
                self.len -= 1;
                slot.take().map(|(_, value)| value)
            }
            _ => None,
        }
    }

    /// Whether a value is stored for `id`.
    pub fn contains(&self, id: PeerId) -> bool {
        self.get(id).is_some()
    }

    /// Number of stored values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stored ids and values, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (PeerId, &T)> {
        self.slots
            .iter()
            .filter_map(|slot| slot.as_ref().map(|(id, value)| (*id, value)))
    }
}

impl<T> Default for PeerMap<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// `n` distinct live peer ids, for the pattern modules' unit tests.
#[cfg(test)]
pub(crate) fn test_peer_ids(n: usize) -> Vec<PeerId> {
    let mut slab = PeerSlab::new();
    (0..n).map(|_| slab.insert(())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_insert_get_remove() {
        let mut slab = PeerSlab::new();
        let a = slab.insert("a");
        let b = slab.insert("b");
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.get(a), Some(&"a"));
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(a), None);
        assert!(!slab.contains(a));
        assert!(slab.contains(b));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn slab_stale_id_never_addresses_new_occupant() {
        let mut slab = PeerSlab::new();
        let old = slab.insert(1);
        slab.remove(old);
        let new = slab.insert(2);
        assert_eq!(old.index(), new.index(), "slot is reused");
        assert_ne!(old, new);
        assert_eq!(slab.get(old), None);
        assert_eq!(slab.get_mut(old), None);
        assert_eq!(slab.remove(old), None);
        assert_eq!(slab.get(new), Some(&2));
    }

    #[test]
    fn slab_retires_slot_instead_of_wrapping_generation() {
        let mut slab = PeerSlab::new();
        let id = slab.insert(());
        slab.slots[0].generation = u32::MAX;
        let last = PeerId {
            index: id.index,
            generation: u32::MAX,
        };
        assert_eq!(slab.remove(last), Some(()));
        let next = slab.insert(());
        assert_ne!(next.index(), last.index());
    }

    #[test]
    fn slab_iterates_live_peers_in_slot_order() {
        let mut slab = PeerSlab::default();
        let a = slab.insert(10);
        let b = slab.insert(20);
        let c = slab.insert(30);
        slab.remove(b);
        for (_, value) in slab.iter_mut() {
            *value += 1;
        }
        assert_eq!(slab.iter().collect::<Vec<_>>(), vec![(a, &11), (c, &31)]);
        assert_eq!(slab.ids().collect::<Vec<_>>(), vec![a, c]);
        assert!(!slab.is_empty());
    }

    #[test]
    fn map_ignores_stale_ids() {
        let mut slab = PeerSlab::new();
        let old = slab.insert(());
        slab.remove(old);
        let new = slab.insert(());
        let mut map = PeerMap::new();
        assert_eq!(map.insert(new, "new"), None);
        assert_eq!(map.get(old), None);
        assert_eq!(map.get_mut(old), None);
        assert_eq!(map.remove(old), None);
        assert_eq!(map.get(new), Some(&"new"));
        assert_eq!(map.len(), 1);
        assert_eq!(map.remove(new), Some("new"));
        assert!(map.is_empty());
    }

    #[test]
    fn map_insert_replaces_value_of_same_slot() {
        let mut slab = PeerSlab::new();
        let old = slab.insert(());
        let mut map = PeerMap::default();
        map.insert(old, 1);
        assert_eq!(map.insert(old, 2), Some(1));
        slab.remove(old);
        let new = slab.insert(());
        assert_eq!(map.insert(new, 3), Some(2));
        assert_eq!(map.len(), 1);
        assert!(map.contains(new));
        assert!(!map.contains(old));
        assert_eq!(map.iter().collect::<Vec<_>>(), vec![(new, &3)]);
    }
}
