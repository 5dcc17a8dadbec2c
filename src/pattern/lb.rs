//! Outgoing load balancing for PUSH, DEALER and REQ.
//!
//! ZeroMQ sends each message to exactly one peer, chosen in strict round-robin among the
//! peers that have room in their outbound queue (below their HWM). A peer at HWM is skipped,
//! not waited on; only when every peer is full does the send block. [`LoadBalancer`] holds
//! just the rotation; whether a peer has room is asked of the caller (the engine knows its
//! pipe depths), so this stays a plain data structure.

use super::peer::PeerId;

/// Strict round-robin over peers, skipping those without room.
#[derive(Debug, Clone, Default)]
pub struct LoadBalancer {
    peers: Vec<PeerId>,
    /// Position in `peers` of the next peer to try; always `< peers.len()` unless empty.
    cursor: usize,
}

impl LoadBalancer {
    /// Creates a load balancer with no peers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a peer at the end of the rotation; adding a present peer does nothing.
    pub fn add_peer(&mut self, id: PeerId) {
        if !self.peers.contains(&id) {
            self.peers.push(id);
        }
    }

    /// Removes a peer; if it was next in line, the peer after it becomes next.
    pub fn remove_peer(&mut self, id: PeerId) {
        let Some(pos) = self.peers.iter().position(|p| *p == id) else {
            return;
        };
        self.peers.remove(pos);
        if pos < self.cursor {
            self.cursor -= 1;
        }
        if self.cursor >= self.peers.len() {
            self.cursor = 0;
        }
    }

    /// Picks the next peer, in rotation from the cursor, for which `has_room` is true, and
    /// moves the cursor just past it. Returns `None` (cursor unchanged) if no peer has room.
    #[inline]
    pub fn next_peer(&mut self, mut has_room: impl FnMut(PeerId) -> bool) -> Option<PeerId> {
        // Wrapping by comparison, not `%`: this runs once per message sent, and a division
        // costs more than the rest of the loop with one or two peers.
        let n = self.peers.len();
        let mut pos = self.cursor.min(n);
        for _ in 0..n {
            if pos == n {
                pos = 0;
            }
            let id = self.peers[pos];
            pos += 1;
            if has_room(id) {
                self.cursor = if pos == n { 0 } else { pos };
                return Some(id);
            }
        }
        None
    }

    /// Whether `id` is in the rotation.
    pub fn contains(&self, id: PeerId) -> bool {
        self.peers.contains(&id)
    }

    /// Number of peers in the rotation.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether there are no peers.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The peers in rotation order (starting from the first added, not from the cursor).
    pub fn peers(&self) -> &[PeerId] {
        &self.peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::peer::test_peer_ids as ids;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    fn lb_with(peers: &[PeerId]) -> LoadBalancer {
        let mut lb = LoadBalancer::new();
        for &p in peers {
            lb.add_peer(p);
        }
        lb
    }

    #[test]
    fn lb_rotates_strictly() {
        let p = ids(3);
        let mut lb = lb_with(&p);
        let got: Vec<_> = (0..7).map(|_| lb.next_peer(|_| true)).collect();
        let want: Vec<_> = [0, 1, 2, 0, 1, 2, 0].iter().map(|&i| Some(p[i])).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn lb_skips_peer_at_hwm() {
        let p = ids(3);
        let mut lb = lb_with(&p);
        let full = p[1];
        let got: Vec<_> = (0..4).map(|_| lb.next_peer(|id| id != full)).collect();
        assert_eq!(got, vec![Some(p[0]), Some(p[2]), Some(p[0]), Some(p[2])]);
    }

    #[test]
    fn lb_returns_none_when_all_full_and_keeps_cursor() {
        let p = ids(3);
        let mut lb = lb_with(&p);
        assert_eq!(lb.next_peer(|_| true), Some(p[0]));
        assert_eq!(lb.next_peer(|_| false), None);
        assert_eq!(lb.next_peer(|_| true), Some(p[1]));
    }

    #[test]
    fn lb_with_no_peers_returns_none() {
        let mut lb = LoadBalancer::new();
        assert!(lb.is_empty());
        assert_eq!(lb.next_peer(|_| true), None);
    }

    #[test]
    fn lb_add_peer_is_idempotent() {
        let p = ids(2);
        let mut lb = lb_with(&p);
        lb.add_peer(p[0]);
        assert_eq!(lb.len(), 2);
        assert_eq!(lb.peers(), &p[..]);
    }

    #[test]
    fn lb_removal_of_next_peer_makes_following_peer_next() {
        let p = ids(4);
        let mut lb = lb_with(&p);
        assert_eq!(lb.next_peer(|_| true), Some(p[0]));
        lb.remove_peer(p[1]);
        assert_eq!(lb.next_peer(|_| true), Some(p[2]));
        assert_eq!(lb.next_peer(|_| true), Some(p[3]));
        assert_eq!(lb.next_peer(|_| true), Some(p[0]));
    }

    #[test]
    fn lb_removal_before_cursor_keeps_next_peer() {
        let p = ids(4);
        let mut lb = lb_with(&p);
        lb.next_peer(|_| true);
        lb.next_peer(|_| true);
        lb.remove_peer(p[0]);
        assert_eq!(lb.next_peer(|_| true), Some(p[2]));
        assert!(!lb.contains(p[0]));
    }

    #[test]
    fn lb_removal_of_last_peer_at_cursor_wraps() {
        let p = ids(3);
        let mut lb = lb_with(&p);
        lb.next_peer(|_| true);
        lb.next_peer(|_| true);
        lb.remove_peer(p[2]);
        assert_eq!(lb.next_peer(|_| true), Some(p[0]));
        lb.remove_peer(p[0]);
        lb.remove_peer(p[1]);
        assert_eq!(lb.next_peer(|_| true), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(usize),
        Remove(usize),
        MarkFull(usize),
        MarkReady(usize),
        Next,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..6usize).prop_map(Op::Add),
            (0..6usize).prop_map(Op::Remove),
            (0..6usize).prop_map(Op::MarkFull),
            (0..6usize).prop_map(Op::MarkReady),
            Just(Op::Next),
            Just(Op::Next),
        ]
    }

    proptest! {
        #[test]
        fn lb_never_picks_full_or_removed_peer(ops in proptest::collection::vec(op(), 0..200)) {
            let p = ids(6);
            let mut lb = LoadBalancer::new();
            let mut present: HashSet<PeerId> = HashSet::new();
            let mut full: HashSet<PeerId> = HashSet::new();
            for op in ops {
                match op {
                    Op::Add(i) => { lb.add_peer(p[i]); present.insert(p[i]); }
                    Op::Remove(i) => { lb.remove_peer(p[i]); present.remove(&p[i]); }
                    Op::MarkFull(i) => { full.insert(p[i]); }
                    Op::MarkReady(i) => { full.remove(&p[i]); }
                    Op::Next => {
                        let any_ready = present.iter().any(|id| !full.contains(id));
                        match lb.next_peer(|id| !full.contains(&id)) {
                            Some(id) => {
                                prop_assert!(present.contains(&id));
                                prop_assert!(!full.contains(&id));
                            }
                            None => prop_assert!(!any_ready),
                        }
                    }
                }
                prop_assert_eq!(lb.len(), present.len());
            }

            // With everyone ready, k full rounds serve each peer exactly k times.
            let n = lb.len();
            let k = 3;
            let mut counts: HashMap<PeerId, usize> = HashMap::new();
            for _ in 0..k * n {
                let id = lb.next_peer(|_| true);
                prop_assert!(id.is_some());
                if let Some(id) = id {
                    *counts.entry(id).or_default() += 1;
                }
            }
            prop_assert_eq!(counts.len(), n);
            prop_assert!(counts.values().all(|&c| c == k));
        }
    }
}
