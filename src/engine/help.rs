//! A waiting call that drives its connection itself.
//!
//! On the multi-thread runtime a connection task runs on a worker thread while the
//! application receives on another, so each batch the task reads is handed across threads,
//! and an application faster than the stream parks and is woken again for every batch. A
//! `recv` that finds nothing queued from a socket's only connection therefore polls that
//! connection's driver itself (reading, decoding, delivering into the inbox) instead of
//! waiting for the task: while the stream is busier than the application, one thread does
//! the whole receive path, as on a current-thread runtime. A `send` that finds the
//! connection's queue at the SNDHWM does the same to write it out, rather than park until
//! the task has been scheduled, written and woken it.
//!
//! The driver registers one waker, a [`Route`], wherever it waits (stream readiness, timers,
//! queue room). A route wakes the waiting call while that call waits having polled the
//! driver, and the connection task otherwise. A call that leaves after being woken for the
//! driver and without polling it again hands the wake-up on to the task, so no readiness is
//! lost between the two.

use super::WaitKey;
use futures::task::AtomicWaker;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Wake, Waker};

/// What the application calls on a connection it may drive (the connection's driver is
/// generic over the socket's pattern; the peer table is not).
pub(crate) trait Help: Send + Sync {
    /// Takes the connection over for a call whose task `app` is woken for the driver until
    /// [`Help::stop`], and polls the driver unless it is idle (see [`Route::driver_idle`]).
    /// `receiver` is the call's key when it is a receive (it then reads for the connection
    /// from now on, see `app_reads` in the peer slot; what this poll delivers does not wake
    /// it, since it tries again once this returns true); a send stopped at the HWM polls it
    /// to write. True when it polled; false when the driver is idle (the call waits for its
    /// wake-up), the connection task holds it, or the connection ended.
    fn help(&self, app: &Waker, receiver: Option<WaitKey>) -> bool;

    /// The waiting call is done (it received or sent, failed or was dropped): wake-ups go to
    /// the connection task again.
    fn stop(&self);
}

/// Nobody helps: wake the connection task.
const TASK: u8 = 0;
/// A waiting call (a `recv`, or a `send` at the SNDHWM) took the driver over: wake it.
const APP: u8 = 1;
/// The waiting call was woken for the driver and has not polled it since.
const APP_WOKEN: u8 = 2;

/// The waker a connection's driver registers: routes each wake-up to whoever drives it now.
///
/// The two wakers sit in [`AtomicWaker`]s, not behind locks: a sender on another thread wakes
/// the connection task for every batch it starts, while the task registers its waker on every
/// poll, and with a lock the two met often enough that each meeting cost a `futex` wait and a
/// `futex` wake (spec/performance.md). A wake-up takes the waker out; the woken side registers
/// it again when it polls (the task on each poll, a waiting call each time it takes the
/// driver over), so the wake-ups that find none are ones already owed to a pending poll.
#[derive(Debug, Default)]
pub(crate) struct Route {
    state: AtomicU8,
    app: AtomicWaker,
    task: AtomicWaker,
    /// No wake-up since the driver's last poll began.
    quiet: AtomicBool,
    /// The driver's last poll ended waiting for a wake-up, with nothing left to hand over.
    parked: AtomicBool,
}

impl Route {
    /// A poll of the driver begins.
    pub fn poll_begins(&self) {
        self.quiet.store(true, Ordering::SeqCst);
    }

    /// A poll of the driver ended; `parked` when it waits for a wake-up with nothing left to
    /// hand over.
    pub fn poll_ended(&self, parked: bool) {
        self.parked.store(parked, Ordering::SeqCst);
    }

    /// Whether the driver has nothing to do until a wake-up comes: its last poll parked and
    /// nothing woke it since. A receiving call that routed wake-ups to itself
    /// ([`Route::app_drives`]) then waits without polling it (a request–reply `recv`
    /// otherwise polled an idle connection once per reply for nothing). Checked after the
    /// route changed, a wake-up either comes after the change, and so to the call, or before
    /// the check, which then fails.
    pub fn driver_idle(&self) -> bool {
        self.parked.load(Ordering::SeqCst) && self.quiet.load(Ordering::SeqCst)
    }

    /// Records the connection task's waker (called on each of its polls).
    pub fn set_task(&self, waker: &Waker) {
        self.task.register(waker);
    }

    /// A waiting call takes the driver over: wake-ups go to `app` from now on. True when
    /// one reached the call since it last polled the driver: the call owes the driver a poll,
    /// or the task a wake-up if it cannot poll.
    pub fn app_drives(&self, app: &Waker) -> bool {
        self.app.register(app);
        self.state.swap(APP, Ordering::SeqCst) == APP_WOKEN
    }

    /// The waiting call is done: wake-ups go to the task again, and one that reached the
    /// call since it last polled the driver is handed on.
    pub fn app_leaves(&self) {
        if self.state.swap(TASK, Ordering::SeqCst) == APP_WOKEN {
            self.wake_task();
        }
    }

    /// Wakes the connection task itself (the driver finished under a waiting call).
    pub fn wake_task(&self) {
        self.task.wake();
    }
}

impl Wake for Route {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.quiet.store(false, Ordering::SeqCst);
        match self
            .state
            .compare_exchange(APP, APP_WOKEN, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => self.app.wake(),
            // Already woken: it polls the driver (or hands the wake-up on) when it runs.
            Err(APP_WOKEN) => {}
            Err(_) => self.wake_task(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counted() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    /// A route with a counted connection task.
    fn route() -> (Arc<Route>, Arc<Count>) {
        let route = Arc::new(Route::default());
        let (task, task_waker) = counted();
        route.set_task(&task_waker);
        (route, task)
    }

    #[test]
    fn a_wake_goes_to_the_task_unless_a_receiving_call_drives() {
        let (route, task) = route();
        let (app, app_waker) = counted();
        let waker = Waker::from(route.clone());
        waker.wake_by_ref();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        route.app_drives(&app_waker);
        waker.wake_by_ref();
        waker.wake_by_ref();
        assert_eq!(
            app.0.load(Ordering::SeqCst),
            1,
            "woken once until it polls again"
        );
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_call_waits_without_polling_only_while_nothing_woke_a_parked_driver() {
        let route = Arc::new(Route::default());
        let (_app, app_waker) = counted();
        let waker = Waker::from(route.clone());
        route.poll_begins();
        route.poll_ended(true);
        assert!(!route.app_drives(&app_waker));
        assert!(route.driver_idle());
        waker.wake_by_ref();
        assert!(
            route.app_drives(&app_waker),
            "the wake-up is owed to the driver"
        );
        assert!(!route.driver_idle(), "woken since it parked");
        route.poll_begins();
        waker.wake_by_ref();
        route.poll_ended(true);
        assert!(!route.driver_idle(), "woken during its poll");
        route.poll_begins();
        route.poll_ended(false);
        assert!(!route.driver_idle(), "it did not park");
    }

    #[test]
    fn a_call_that_leaves_after_a_wake_hands_it_to_the_task() {
        let (route, task) = route();
        let (_app, app_waker) = counted();
        route.app_drives(&app_waker);
        route.app_leaves();
        assert_eq!(task.0.load(Ordering::SeqCst), 0, "nothing owed");
        route.app_drives(&app_waker);
        Waker::from(route.clone()).wake_by_ref();
        route.app_leaves();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the wake-up is handed on");
    }
}
