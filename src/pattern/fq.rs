//! Incoming fair queueing for PULL, SUB, DEALER, ROUTER and REP.
//!
//! ZeroMQ reads from its peers in round-robin, one message at a time, so a chatty peer
//! cannot starve a quiet one. [`FairQueue`] keeps a bounded FIFO per peer (the receive HWM)
//! and a ring of the peers that have something queued; `pop` serves the peer at the front of
//! the ring and sends it to the back if it still has more. Items are whole multipart
//! messages, so multipart atomicity holds by construction. Push and pop are O(1) amortised.

use std::collections::VecDeque;

use super::peer::{PeerId, PeerMap};

/// Per-peer bounded FIFOs served in round-robin, one item per turn.
#[derive(Debug, Clone)]
pub struct FairQueue<T> {
    queues: PeerMap<VecDeque<T>>,
    /// Peers with a non-empty queue, each exactly once, in serving order.
    ready: VecDeque<PeerId>,
    /// Max items per peer; 0 means unlimited.
    hwm: usize,
    total: usize,
}

impl<T> FairQueue<T> {
    /// Creates a fair queue holding at most `hwm` items per peer (0 = unlimited).
    pub fn new(hwm: usize) -> Self {
        Self {
            queues: PeerMap::new(),
            ready: VecDeque::new(),
            hwm,
            total: 0,
        }
    }

    /// Changes the per-peer limit (0 = unlimited); items already queued are kept.
    pub fn set_hwm(&mut self, hwm: usize) {
        self.hwm = hwm;
    }

    /// The per-peer limit (0 = unlimited).
    pub fn hwm(&self) -> usize {
        self.hwm
    }

    /// Starts accepting items from `id`; adding a present peer does nothing.
    pub fn add_peer(&mut self, id: PeerId) {
        if self.queues.contains(id) {
            return;
        }
        if let Some(displaced) = self.queues.insert(id, VecDeque::new()) {
            // A stale id with the same slot was never removed: forget it entirely.
            self.total -= displaced.len();
            let index = id.index();
            self.ready.retain(|p| p.index() != index);
        }
    }

    /// Drops `id`'s queue and takes it out of the rotation; returns how many items were dropped.
    pub fn remove_peer(&mut self, id: PeerId) -> usize {
        let Some(queue) = self.queues.remove(id) else {
            return 0;
        };
        if !queue.is_empty() {
            self.ready.retain(|p| *p != id);
        }
        self.total -= queue.len();
        queue.len()
    }

    /// Whether `id` is known and below its HWM.
    pub fn has_room(&self, id: PeerId) -> bool {
        self.queues
            .get(id)
            .is_some_and(|queue| self.hwm == 0 || queue.len() < self.hwm)
    }

    /// Queues `item` from `id`; gives it back if the peer is unknown or at its HWM.
    #[inline]
    pub fn push(&mut self, id: PeerId, item: T) -> Result<(), T> {
        let hwm = self.hwm;
        let Some(queue) = self.queues.get_mut(id) else {
            return Err(item);
        };
        if hwm != 0 && queue.len() >= hwm {
            return Err(item);
        }
        if queue.is_empty() {
            self.ready.push_back(id);
        }
        queue.push_back(item);
        self.total += 1;
        Ok(())
    }

    /// Empties `id`'s queue, keeping the peer (a conflating socket keeps only the newest
    /// item); returns the items taken out.
    pub fn take_queued(&mut self, id: PeerId) -> VecDeque<T> {
        let Some(queue) = self.queues.get_mut(id) else {
            return VecDeque::new();
        };
        let taken = std::mem::take(queue);
        if !taken.is_empty() {
            self.ready.retain(|p| *p != id);
            self.total -= taken.len();
        }
        taken
    }

    /// Takes one item from the peer whose turn it is, then moves that peer to the back of the
    /// rotation if it has more.
    #[inline]
    pub fn pop(&mut self) -> Option<(PeerId, T)> {
        while let Some(&id) = self.ready.front() {
            // Invariant: every id in `ready` has a non-empty queue; skip defensively if not.
            let Some((item, more)) = self
                .queues
                .get_mut(id)
                .and_then(|queue| Some((queue.pop_front()?, !queue.is_empty())))
            else {
                self.ready.pop_front();
                continue;
            };
            // A peer alone in the rotation stays at its front: this runs once per message
            // received, and most sockets read one busy peer.
            if !more || self.ready.len() > 1 {
                self.ready.pop_front();
                if more {
                    self.ready.push_back(id);
                }
            }
            self.total -= 1;
            return Some((id, item));
        }
        None
    }

    /// The item [`FairQueue::pop`] would take next, and its peer, leaving it queued.
    pub fn peek(&self) -> Option<(PeerId, &T)> {
        self.ready
            .iter()
            .find_map(|&id| Some((id, self.queues.get(id)?.front()?)))
    }

    /// Number of items queued from everyone.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Number of items queued from `id` (0 for unknown peers).
    pub fn queued(&self, id: PeerId) -> usize {
        self.queues.get(id).map_or(0, VecDeque::len)
    }

    /// Whether `id` is a known peer.
    pub fn contains(&self, id: PeerId) -> bool {
        self.queues.contains(id)
    }

    /// Number of known peers.
    pub fn peer_count(&self) -> usize {
        self.queues.len()
    }

    /// Whether nothing is queued from anyone.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Number of items queued across all peers.
    pub fn total_queued(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::peer::{PeerSlab, test_peer_ids as ids};
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn fq_peek_shows_what_pop_takes_without_taking_it() {
        let p = ids(2);
        let mut fq = FairQueue::new(0);
        fq.add_peer(p[0]);
        fq.add_peer(p[1]);
        assert_eq!(fq.peek(), None);
        fq.push(p[1], 'b').unwrap();
        fq.push(p[0], 'a').unwrap();
        for _ in 0..2 {
            let (peer, &item) = fq.peek().expect("queued");
            assert_eq!(fq.len(), 2 - usize::from(item == 'a'));
            assert_eq!(fq.pop(), Some((peer, item)));
        }
        assert_eq!(fq.peek(), None);
    }

    #[test]
    fn fq_alternates_between_two_full_peers() {
        let p = ids(2);
        let mut fq = FairQueue::new(3);
        fq.add_peer(p[0]);
        fq.add_peer(p[1]);
        for i in 0..3 {
            assert_eq!(fq.push(p[0], ('a', i)), Ok(()));
            assert_eq!(fq.push(p[1], ('b', i)), Ok(()));
        }
        let got: Vec<_> = std::iter::from_fn(|| fq.pop()).collect();
        let want = vec![
            (p[0], ('a', 0)),
            (p[1], ('b', 0)),
            (p[0], ('a', 1)),
            (p[1], ('b', 1)),
            (p[0], ('a', 2)),
            (p[1], ('b', 2)),
        ];
        assert_eq!(got, want);
        assert!(fq.is_empty());
    }

    #[test]
    fn fq_chatty_peer_cannot_starve_quiet_peer() {
        let p = ids(2);
        let mut fq = FairQueue::new(0);
        fq.add_peer(p[0]);
        fq.add_peer(p[1]);
        for i in 0..1000 {
            assert!(fq.push(p[0], i).is_ok());
        }
        assert!(fq.push(p[1], -1).is_ok());
        assert_eq!(fq.total_queued(), 1001);
        let order: Vec<_> = std::iter::from_fn(|| fq.pop()).map(|(id, _)| id).collect();
        assert_eq!(&order[..4], &[p[0], p[1], p[0], p[0]]);
        assert_eq!(order.len(), 1001);
    }

    #[test]
    fn fq_enforces_hwm_per_peer() {
        let p = ids(2);
        let mut fq = FairQueue::new(2);
        fq.add_peer(p[0]);
        fq.add_peer(p[1]);
        assert_eq!(fq.push(p[0], 1), Ok(()));
        assert_eq!(fq.push(p[0], 2), Ok(()));
        assert!(!fq.has_room(p[0]));
        assert_eq!(fq.push(p[0], 3), Err(3));
        assert!(fq.has_room(p[1]));
        assert_eq!(fq.push(p[1], 4), Ok(()));
        assert_eq!(fq.pop(), Some((p[0], 1)));
        assert!(fq.has_room(p[0]));
        assert_eq!(fq.queued(p[0]), 1);
    }

    #[test]
    fn fq_hwm_zero_is_unlimited() {
        let p = ids(1);
        let mut fq = FairQueue::new(0);
        fq.add_peer(p[0]);
        for i in 0..10_000 {
            assert_eq!(fq.push(p[0], i), Ok(()));
        }
        assert!(fq.has_room(p[0]));
    }

    #[test]
    fn fq_lowering_hwm_keeps_queued_items() {
        let p = ids(1);
        let mut fq = FairQueue::new(0);
        fq.add_peer(p[0]);
        for i in 0..5 {
            assert_eq!(fq.push(p[0], i), Ok(()));
        }
        fq.set_hwm(2);
        assert_eq!(fq.hwm(), 2);
        assert_eq!(fq.push(p[0], 5), Err(5));
        assert_eq!(fq.queued(p[0]), 5);
    }

    #[test]
    fn fq_rejects_unknown_peer() {
        let p = ids(1);
        let mut fq = FairQueue::new(10);
        assert!(!fq.has_room(p[0]));
        assert_eq!(fq.push(p[0], 1), Err(1));
        assert_eq!(fq.queued(p[0]), 0);
    }

    #[test]
    fn fq_remove_peer_drops_items_and_never_pops_them() {
        let p = ids(2);
        let mut fq = FairQueue::new(0);
        fq.add_peer(p[0]);
        fq.add_peer(p[1]);
        for i in 0..3 {
            assert!(fq.push(p[0], i).is_ok());
            assert!(fq.push(p[1], 10 + i).is_ok());
        }
        assert_eq!(fq.remove_peer(p[0]), 3);
        assert_eq!(fq.remove_peer(p[0]), 0);
        assert_eq!(fq.total_queued(), 3);
        let got: Vec<_> = std::iter::from_fn(|| fq.pop()).collect();
        assert_eq!(got, vec![(p[1], 10), (p[1], 11), (p[1], 12)]);
        assert!(!fq.contains(p[0]));
        assert_eq!(fq.push(p[0], 99), Err(99));
    }

    #[test]
    fn fq_stale_id_cannot_push_to_reused_slot() {
        let mut slab = PeerSlab::new();
        let old = slab.insert(());
        let mut fq = FairQueue::new(0);
        fq.add_peer(old);
        assert!(fq.push(old, 1).is_ok());
        fq.remove_peer(old);
        slab.remove(old);
        let new = slab.insert(());
        fq.add_peer(new);
        assert_eq!(fq.push(old, 2), Err(2));
        assert_eq!(fq.remove_peer(old), 0);
        assert!(fq.push(new, 3).is_ok());
        assert_eq!(fq.pop(), Some((new, 3)));
    }

    #[test]
    fn fq_add_peer_over_unremoved_stale_id_forgets_its_items() {
        let mut slab = PeerSlab::new();
        let old = slab.insert(());
        let mut fq = FairQueue::new(0);
        fq.add_peer(old);
        assert!(fq.push(old, 1).is_ok());
        slab.remove(old);
        let new = slab.insert(());
        fq.add_peer(new);
        assert_eq!(fq.total_queued(), 0);
        assert_eq!(fq.pop(), None);
        assert_eq!(fq.peer_count(), 1);
    }

    /// Naive model: a Vec of peers with their queues, and a Vec rotation.
    #[derive(Default)]
    struct Model {
        queues: HashMap<PeerId, VecDeque<u32>>,
        ring: Vec<PeerId>,
        hwm: usize,
    }

    impl Model {
        fn push(&mut self, id: PeerId, item: u32) -> Result<(), u32> {
            let hwm = self.hwm;
            match self.queues.get_mut(&id) {
                Some(q) if hwm == 0 || q.len() < hwm => {
                    if q.is_empty() {
                        self.ring.push(id);
                    }
                    q.push_back(item);
                    Ok(())
                }
                _ => Err(item),
            }
        }

        fn pop(&mut self) -> Option<(PeerId, u32)> {
            if self.ring.is_empty() {
                return None;
            }
            let id = self.ring.remove(0);
            let q = self.queues.get_mut(&id)?;
            let item = q.pop_front()?;
            if !q.is_empty() {
                self.ring.push(id);
            }
            Some((id, item))
        }

        fn remove(&mut self, id: PeerId) -> usize {
            self.ring.retain(|p| *p != id);
            self.queues.remove(&id).map_or(0, |q| q.len())
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(usize),
        Remove(usize),
        Push(usize),
        Pop,
        SetHwm(usize),
        /// Remove the peer everywhere, free its slab slot and give it a fresh id.
        Reconnect(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => (0..4usize).prop_map(Op::Add),
            1 => (0..64usize).prop_map(Op::Remove),
            4 => (0..64usize).prop_map(Op::Push),
            4 => Just(Op::Pop),
            1 => (0..4usize).prop_map(Op::SetHwm),
            1 => (0..4usize).prop_map(Op::Reconnect),
        ]
    }

    proptest! {
        #[test]
        fn fq_matches_round_robin_model(ops in proptest::collection::vec(op(), 0..300)) {
            let mut slab = PeerSlab::new();
            // Live ids (one per peer) plus every stale id ever used, to poke with.
            let mut live: Vec<PeerId> = (0..4).map(|_| slab.insert(())).collect();
            let mut all: Vec<PeerId> = live.clone();
            let mut fq = FairQueue::new(2);
            let mut model = Model { hwm: 2, ..Model::default() };
            let mut next_item = 0u32;
            let mut last_from: HashMap<PeerId, u32> = HashMap::new();
            for op in ops {
                match op {
                    Op::Add(i) => {
                        fq.add_peer(live[i]);
                        model.queues.entry(live[i]).or_default();
                    }
                    Op::Remove(i) => {
                        let id = all[i % all.len()];
                        prop_assert_eq!(fq.remove_peer(id), model.remove(id));
                    }
                    Op::Push(i) => {
                        let id = all[i % all.len()];
                        prop_assert_eq!(fq.has_room(id), model.queues.get(&id).is_some_and(|q| model.hwm == 0 || q.len() < model.hwm));
                        prop_assert_eq!(fq.push(id, next_item), model.push(id, next_item));
                        next_item += 1;
                    }
                    Op::Pop => {
                        let got = fq.pop();
                        prop_assert_eq!(got, model.pop());
                        if let Some((id, item)) = got {
                            // Per-peer order is FIFO: items were numbered increasingly.
                            if let Some(prev) = last_from.insert(id, item) {
                                prop_assert!(prev < item);
                            }
                        }
                    }
                    Op::SetHwm(h) => {
                        fq.set_hwm(h);
                        model.hwm = h;
                    }
                    Op::Reconnect(i) => {
                        let old = live[i];
                        prop_assert_eq!(fq.remove_peer(old), model.remove(old));
                        slab.remove(old);
                        let new = slab.insert(());
                        live[i] = new;
                        all.push(new);
                    }
                }
                let model_total: usize = model.queues.values().map(VecDeque::len).sum();
                prop_assert_eq!(fq.total_queued(), model_total);
                prop_assert_eq!(fq.is_empty(), model_total == 0);
                for &id in &all {
                    prop_assert_eq!(fq.queued(id), model.queues.get(&id).map_or(0, VecDeque::len));
                }
            }
        }
    }
}
