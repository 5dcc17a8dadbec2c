//! A publisher whose subscribers fall behind gives its thread's CPU to other threads.
//!
//! The threads that would deliver its messages need that CPU. They are its connection tasks'
//! workers, and the subscribers when they share the machine. A publishing loop that never
//! waits stays runnable, and the scheduler shares the CPUs among runnable threads, so such a
//! loop takes its share even when most of what it queues is then dropped at a full
//! subscriber queue. After a send that left some subscriber's queue long, the publisher
//! therefore calls `sched_yield`: other threads that are ready to run go first. The send still
//! never waits for a subscriber, and what it drops is dropped exactly as before
//! (spec/pubsub.md).
//!
//! With nothing else to run, a yield returns at once. The publisher then yields less and less
//! often, down to once in [`MAX_SENDS_PER_YIELD`] such sends, so a stalled subscriber costs
//! an otherwise idle machine almost nothing.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// A yield that took at least this long let another thread run. A `sched_yield` with
/// nothing else to run took 160 ns on the 2-core test machine; a switch to another thread
/// and back takes several microseconds.
const OTHERS_RAN: Duration = Duration::from_micros(1);

/// At most this many long-queue sends go by between two yields once yields stop letting
/// anything run: a yield then adds under a nanosecond per send (160 ns / 256).
const MAX_SENDS_PER_YIELD: u32 = 256;

/// When the next long-queue send on this thread yields.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Backoff {
    /// Long-queue sends still to go by before the next yield.
    skip: u32,
    /// Long-queue sends from one yield to the next.
    every: u32,
}

impl Backoff {
    const START: Self = Self { skip: 0, every: 1 };

    /// Counts one long-queue send; whether it yields.
    fn due(&mut self) -> bool {
        match self.skip {
            0 => true,
            _ => {
                self.skip -= 1;
                false
            }
        }
    }

    /// After a yield: every long-queue send yields while yields let other threads run, and
    /// the interval doubles, up to [`MAX_SENDS_PER_YIELD`], while they do not.
    fn yielded(&mut self, others_ran: bool) {
        self.every = match others_ran {
            true => 1,
            false => (self.every * 2).min(MAX_SENDS_PER_YIELD),
        };
        self.skip = self.every - 1;
    }
}

thread_local! {
    static BACKOFF: Cell<Backoff> = const { Cell::new(Backoff::START) };
}

/// Called after a send that left some subscriber's queue long: yields the thread when this
/// send is due to (see the module's documentation).
pub(crate) fn after_long_queue_send() {
    BACKOFF.with(|backoff| {
        let mut next = backoff.get();
        if next.due() {
            let start = Instant::now();
            std::thread::yield_now();
            next.yielded(start.elapsed() >= OTHERS_RAN);
        }
        backoff.set(next);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `sends` long-queue sends yield, each yield reporting `others_ran`.
    fn yields_in(backoff: &mut Backoff, sends: u32, others_ran: bool) -> u32 {
        let mut yields = 0;
        for _ in 0..sends {
            if backoff.due() {
                backoff.yielded(others_ran);
                yields += 1;
            }
        }
        yields
    }

    #[test]
    fn every_long_queue_send_yields_while_others_run() {
        let mut backoff = Backoff::START;
        assert_eq!(yields_in(&mut backoff, 1000, true), 1000);
    }

    #[test]
    fn yields_that_let_nothing_run_back_off_to_one_in_the_maximum() {
        let mut backoff = Backoff::START;
        // 1 + 2 + 4 + ... + 128 = 255 sends reach the cap in 8 yields; then one per 256.
        assert_eq!(yields_in(&mut backoff, 255, false), 8);
        assert_eq!(backoff.every, MAX_SENDS_PER_YIELD);
        assert_eq!(yields_in(&mut backoff, 256 * 10, false), 10);
    }

    #[test]
    fn one_yield_that_lets_others_run_ends_the_backoff() {
        let mut backoff = Backoff::START;
        yields_in(&mut backoff, 10_000, false);
        while !backoff.due() {}
        backoff.yielded(true);
        assert_eq!(backoff, Backoff::START);
        assert_eq!(yields_in(&mut backoff, 5, true), 5);
    }
}
