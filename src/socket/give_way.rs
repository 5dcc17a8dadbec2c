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
//! Two bounds keep this cheap where it does not help:
//! - with nothing else to run, a yield returns at once, and the publisher then yields on
//!   fewer and fewer sends, down to one in [`MAX_SENDS_PER_YIELD`]: a slow subscriber on an
//!   otherwise idle machine costs it almost nothing;
//! - after a yield that let other threads run, the publisher does not yield again until it
//!   has run for as long as that yield lasted: on a machine busy with other work, it gives
//!   up at most half its time.

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
    /// No yield before this: the publisher runs at least as long as its last yield lasted.
    quiet_until: Option<Instant>,
}

impl Backoff {
    const START: Self = Self {
        skip: 0,
        every: 1,
        quiet_until: None,
    };

    /// Counts one long-queue send; whether it yields. Reads the clock only when the count
    /// says a yield is due.
    fn due(&mut self, now: impl FnOnce() -> Instant) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        self.quiet_until.is_none_or(|until| now() >= until)
    }

    /// After a yield that ended at `end` and took `took`: every long-queue send may yield
    /// while yields let other threads run (once the quiet time has passed), and the interval
    /// doubles, up to [`MAX_SENDS_PER_YIELD`], while they do not.
    fn yielded(&mut self, end: Instant, took: Duration) {
        let others_ran = took >= OTHERS_RAN;
        self.every = match others_ran {
            true => 1,
            false => (self.every * 2).min(MAX_SENDS_PER_YIELD),
        };
        self.skip = self.every - 1;
        self.quiet_until = others_ran.then(|| end + took);
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
        // The instant `due` read to check the quiet time, if it read one, is the yield's start.
        let mut read = None;
        if next.due(|| *read.insert(Instant::now())) {
            let start = read.unwrap_or_else(Instant::now);
            std::thread::yield_now();
            let end = Instant::now();
            next.yielded(end, end - start);
        }
        backoff.set(next);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A yield that let nothing run.
    const BARE: Duration = Duration::from_nanos(200);
    /// A yield that let another thread run for a while.
    const LONG: Duration = Duration::from_micros(500);

    /// How many of `sends` long-queue sends yield at the instant `at`, each yield taking
    /// `took` (the clock does not move).
    fn yields_in(backoff: &mut Backoff, sends: u32, at: Instant, took: Duration) -> u32 {
        let mut yields = 0;
        for _ in 0..sends {
            if backoff.due(|| at) {
                backoff.yielded(at, took);
                yields += 1;
            }
        }
        yields
    }

    #[test]
    fn yields_that_let_nothing_run_back_off_to_one_in_the_maximum() {
        let mut backoff = Backoff::START;
        let now = Instant::now();
        // 1 + 2 + 4 + ... + 128 = 255 sends reach the cap in 8 yields; then one per 256.
        assert_eq!(yields_in(&mut backoff, 255, now, BARE), 8);
        assert_eq!(backoff.every, MAX_SENDS_PER_YIELD);
        assert_eq!(yields_in(&mut backoff, 256 * 10, now, BARE), 10);
    }

    #[test]
    fn after_a_yield_that_let_others_run_the_publisher_runs_as_long_before_the_next() {
        let mut backoff = Backoff::START;
        let start = Instant::now();
        assert!(backoff.due(|| start));
        backoff.yielded(start + LONG, LONG);
        let back = start + LONG;
        assert!(!backoff.due(|| back));
        assert!(!backoff.due(|| back + LONG - Duration::from_nanos(1)));
        assert!(backoff.due(|| back + LONG));
    }

    #[test]
    fn a_yield_that_let_others_run_ends_the_backoff() {
        let mut backoff = Backoff::START;
        let now = Instant::now();
        yields_in(&mut backoff, 10_000, now, BARE);
        while !backoff.due(|| now) {}
        backoff.yielded(now, LONG);
        assert_eq!(backoff.every, 1);
        assert_eq!(backoff.skip, 0);
        // The next send is counted as due again as soon as the quiet time has passed.
        assert!(backoff.due(|| now + LONG));
    }

    #[test]
    fn the_clock_is_read_only_when_a_yield_is_due() {
        let mut backoff = Backoff::START;
        let now = Instant::now();
        yields_in(&mut backoff, 3, now, BARE);
        assert!(backoff.skip > 0);
        assert!(!backoff.due(|| panic!("read the clock while skipping")));
    }
}
