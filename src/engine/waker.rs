//! Wakers of tasks parked in a socket call, keyed by the waiting call so that a call that is
//! dropped while it waits (cancelled by `select!` or a timeout) takes its waker with it.
//!
//! Without the key, a cancelled `recv()` would leave its waker behind until the next message
//! woke every stale one: 160,000 cancelled calls held 70 MB and made each call 20× slower.

use std::task::Waker;

/// Identifies one waiting socket call (see [`super::SocketCore::poll_with`]). 0 is "nobody":
/// calls that never wait (`try_*`, polled with a no-op waker) register nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WaitKey(pub(super) u64);

impl WaitKey {
    /// The key of calls that must not be registered.
    pub const NOBODY: WaitKey = WaitKey(0);
}

/// The tasks parked on one condition (a message to receive, room to send, a peer to leave).
#[derive(Debug, Default)]
pub(crate) struct WakerList(Vec<(WaitKey, Waker)>);

impl WakerList {
    /// Parks `key`'s task until the next [`WakerList::wake_all`]; a key already parked keeps
    /// one entry, with the newest waker.
    pub fn register(&mut self, key: WaitKey, waker: &Waker) {
        if key == WaitKey::NOBODY {
            return;
        }
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, w)) if w.will_wake(waker) => {}
            Some((_, w)) => w.clone_from(waker),
            None => self.0.push((key, waker.clone())),
        }
    }

    /// Forgets `key`'s entry, if it has one.
    pub fn remove(&mut self, key: WaitKey) {
        self.0.retain(|(k, _)| *k != key);
    }

    /// Wakes and forgets every parked task.
    pub fn wake_all(&mut self) {
        for (_, w) in self.0.drain(..) {
            w.wake();
        }
    }

    /// Wakes and forgets every parked task but `key`'s, which is only forgotten: a call that
    /// will look again by itself (see `Help::help`).
    pub fn wake_all_but(&mut self, key: WaitKey) {
        for (k, w) in self.0.drain(..) {
            if k != key {
                w.wake();
            }
        }
    }

    /// Parked tasks.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_key_and_removal_by_key() {
        let mut list = WakerList::default();
        let waker = Waker::noop();
        list.register(WaitKey(1), waker);
        list.register(WaitKey(1), waker);
        list.register(WaitKey(2), waker);
        assert_eq!(list.len(), 2);
        list.remove(WaitKey(1));
        assert_eq!(list.len(), 1);
        list.wake_all();
        assert_eq!(list.len(), 0);
    }

    #[test]
    fn nobody_is_never_registered() {
        let mut list = WakerList::default();
        list.register(WaitKey::NOBODY, Waker::noop());
        assert_eq!(list.len(), 0);
    }
}
