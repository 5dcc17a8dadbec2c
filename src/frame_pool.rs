//! The buffers that small copied frames are made in, handed between threads in magazines.
//!
//! `Message::from(&[u8])` copies a frame of 24 bytes to just under 4 KiB onto the heap
//! (smaller ones are stored in the message, larger ones come from `buffer_pool`). Over tcp
//! and ipc the sender encodes the frame and drops it on its own thread. Over inproc the frame
//! travels with the message and the receiver drops it on another thread, which glibc handles
//! badly: its per-thread cache only ever fills on the receiver's side and empties on the
//! sender's, so both threads take the sending thread's arena lock for every message. With
//! the receiver keeping up, 40 % of a multi-thread inproc run's samples were in `malloc` and
//! `free` (spec/performance.md, "inproc").
//!
//! Here a copy of up to 1 KiB is made in a buffer of one of five size classes. Each thread
//! keeps the buffers it drops in a stack of its own per class, and its next copy reuses the
//! newest. A thread that drops more than it copies (a receiver) passes them on a magazine
//! ([`MAGAZINE_LEN`] buffers) at a time to a stack shared by all threads, and a thread that
//! copies more than it drops (a sender) takes a whole magazine from there: one lock per
//! magazine instead of the allocator's lock per message.
//!
//! Memory held in buffers: per thread, fewer than two magazines per class it used (92,224
//! bytes over all five classes); shared, at most [`SHARED_MAX_BYTES`] per class (1.25 MiB
//! over all five); plus the stacks' own arrays (16 bytes per buffer held). A
//! buffer that fits in neither goes back to the allocator, and so does a thread's stack when
//! the thread ends.

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::{Mutex, PoisonError};

/// The buffer sizes the pool deals in, smallest first: a copy of `n` bytes gets a buffer of
/// the smallest class that holds it. Powers of two from 64 bytes, where copied frames start
/// (24 bytes) rounded up to a cache line, to 1 KiB: above it a message's allocation is a
/// small part of its cost (copy, encode, write) and the classes would hold more memory.
const CLASS_BYTES: [usize; 5] = [64, 128, 256, 512, 1024];

/// The smallest class, as a power of two.
const SMALLEST_CLASS_SHIFT: u32 = CLASS_BYTES[0].trailing_zeros();

/// The most buffers a magazine holds (32): few enough that a thread's own stacks stay small,
/// enough that the shared lock is taken for one message in 32.
const MAGAZINE_MAX_BUFFERS: usize = 32;

/// The most bytes of buffers a magazine holds (16 KiB): 1 KiB buffers travel 16 at a time.
const MAGAZINE_MAX_BYTES: usize = 16 * 1024;

/// The most bytes of buffers the shared stack of one class keeps (256 KiB): enough for the
/// messages a sender has in flight to one receiver at the default HWMs (1,000 queued on each
/// side) at 64 and 128 bytes, so a receiver that drops a whole queue's worth at once does not
/// free what the sender allocates again moments later. A receiver that drops faster than any
/// sender copies fills it, and frees the rest.
const SHARED_MAX_BYTES: usize = 256 * 1024;

/// The most full magazines the shared stack of each class keeps: [`SHARED_MAX_BYTES`] worth.
const SHARED_MAGAZINES_MAX: [usize; CLASS_BYTES.len()] = {
    let mut max = [0; CLASS_BYTES.len()];
    let mut class = 0;
    while class < CLASS_BYTES.len() {
        max[class] = SHARED_MAX_BYTES / (MAGAZINE_LEN[class] * CLASS_BYTES[class]);
        class += 1;
    }
    max
};

/// Buffers per magazine of each class: [`MAGAZINE_MAX_BUFFERS`], or fewer where those would
/// hold more than [`MAGAZINE_MAX_BYTES`]. A table, so that dropping a buffer does not divide.
const MAGAZINE_LEN: [usize; CLASS_BYTES.len()] = {
    let mut len = [0; CLASS_BYTES.len()];
    let mut class = 0;
    while class < CLASS_BYTES.len() {
        let by_bytes = MAGAZINE_MAX_BYTES / CLASS_BYTES[class];
        len[class] = if by_bytes < MAGAZINE_MAX_BUFFERS {
            by_bytes
        } else {
            MAGAZINE_MAX_BUFFERS
        };
        class += 1;
    }
    len
};

/// The class whose buffers hold `len` bytes, if the pool serves that size.
#[inline]
fn class_for_len(len: usize) -> Option<usize> {
    (len <= CLASS_BYTES[CLASS_BYTES.len() - 1]).then(|| {
        let rounded = len.max(CLASS_BYTES[0]).next_power_of_two();
        (rounded.trailing_zeros() - SMALLEST_CLASS_SHIFT) as usize
    })
}

/// The class a buffer of `capacity` bytes belongs to, if it is exactly one of them.
#[inline]
fn class_of_capacity(capacity: usize) -> Option<usize> {
    let class = capacity.trailing_zeros().wrapping_sub(SMALLEST_CLASS_SHIFT) as usize;
    (capacity.is_power_of_two() && class < CLASS_BYTES.len()).then_some(class)
}

/// One class's full magazines, and emptied ones kept for the next magazine to fill.
struct Shared {
    full: Vec<Vec<Box<[u8]>>>,
    empty: Vec<Vec<Box<[u8]>>>,
}

/// Shared stacks, one per class.
type Stacks = [Mutex<Shared>; CLASS_BYTES.len()];

/// The process's shared stacks.
static SHARED: Stacks = new_stacks();

const fn new_stacks() -> Stacks {
    [const {
        Mutex::new(Shared {
            full: Vec::new(),
            empty: Vec::new(),
        })
    }; CLASS_BYTES.len()]
}

thread_local! {
    /// This thread's free buffers, one stack per class, newest last.
    static LOCAL: RefCell<[Vec<Box<[u8]>>; CLASS_BYTES.len()]> =
        const { RefCell::new([const { Vec::new() }; CLASS_BYTES.len()]) };
}

/// A copied frame's bytes, in a buffer of one of the classes that returns to the pool when
/// dropped.
pub(crate) struct FrameBuf {
    buffer: Box<[u8]>,
    /// How much of `buffer` the frame fills.
    len: usize,
}

impl FrameBuf {
    /// A copy of `bytes`, in a pooled buffer when the pool serves its size and in an
    /// allocation of its own otherwise.
    #[inline]
    pub fn copy(bytes: &[u8]) -> FrameBuf {
        let len = bytes.len();
        let buffer = match class_for_len(len) {
            Some(class) => {
                let mut buffer = take(&SHARED, class);
                buffer[..len].copy_from_slice(bytes);
                buffer
            }
            None => Box::from(bytes),
        };
        FrameBuf { buffer, len }
    }
}

/// For `Bytes::from_owner`: a `Bytes` made of a copied frame keeps its buffer, which returns
/// to the pool when the last clone drops.
impl AsRef<[u8]> for FrameBuf {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Deref for FrameBuf {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

impl Drop for FrameBuf {
    #[inline]
    fn drop(&mut self) {
        if let Some(class) = class_of_capacity(self.buffer.len()) {
            give(&SHARED, class, std::mem::take(&mut self.buffer));
        }
    }
}

/// An empty buffer of `class`: this thread's newest, else a magazine from the `shared`
/// stack, else a new one.
#[inline]
fn take(shared: &Stacks, class: usize) -> Box<[u8]> {
    LOCAL
        .try_with(|local| {
            let stack = &mut local.borrow_mut()[class];
            stack.pop().or_else(|| refill(&shared[class], stack))
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| vec![0; CLASS_BYTES[class]].into_boxed_slice())
}

/// Moves a full magazine from `shared` onto this thread's empty `stack` and takes one buffer
/// from it.
fn refill(shared: &Mutex<Shared>, stack: &mut Vec<Box<[u8]>>) -> Option<Box<[u8]>> {
    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
    let mut magazine = shared.full.pop()?;
    stack.append(&mut magazine);
    shared.empty.push(magazine);
    drop(shared);
    stack.pop()
}

/// Keeps `buffer` (of `class`) for this thread's next copy. A stack that reaches two
/// magazines' worth passes its oldest magazine's worth to the `shared` stack, or frees it
/// when that one is full.
#[inline]
fn give(shared: &Stacks, class: usize, buffer: Box<[u8]>) {
    // When the thread's storage is gone (the thread is ending), `buffer` drops with the
    // closure: back to the allocator.
    let _ = LOCAL.try_with(move |local| {
        let stack = &mut local.borrow_mut()[class];
        stack.push(buffer);
        if stack.len() >= 2 * MAGAZINE_LEN[class] {
            spill(
                &shared[class],
                stack,
                MAGAZINE_LEN[class],
                SHARED_MAGAZINES_MAX[class],
            );
        }
    });
}

/// Moves the oldest `len` buffers of `stack` to `shared` as a magazine, or frees them when
/// `shared` already holds `max` magazines.
fn spill(shared: &Mutex<Shared>, stack: &mut Vec<Box<[u8]>>, len: usize, max: usize) {
    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
    if shared.full.len() >= max {
        drop(shared);
        stack.drain(..len);
        return;
    }
    let mut magazine = shared
        .empty
        .pop()
        .unwrap_or_else(|| Vec::with_capacity(len));
    magazine.extend(stack.drain(..len));
    shared.full.push(magazine);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buffers of `class` this thread holds (each test runs on a thread of its own).
    fn local_len(class: usize) -> usize {
        LOCAL.with(|local| local.borrow()[class].len())
    }

    #[test]
    fn each_size_gets_the_smallest_class_that_holds_it() {
        assert_eq!(class_for_len(0), Some(0));
        assert_eq!(class_for_len(24), Some(0));
        assert_eq!(class_for_len(64), Some(0));
        assert_eq!(class_for_len(65), Some(1));
        assert_eq!(class_for_len(1024), Some(4));
        assert_eq!(class_for_len(1025), None);
        let copy = FrameBuf::copy(&[7; 100]);
        assert_eq!(&*copy, &[7; 100][..]);
        assert_eq!(copy.buffer.len(), 128);
        assert_eq!(FrameBuf::copy(&[7; 1025]).buffer.len(), 1025, "not pooled");
    }

    #[test]
    fn a_dropped_buffer_is_the_next_copy_on_the_same_thread() {
        let first = FrameBuf::copy(&[1; 300]);
        let address = first.as_ptr();
        drop(first);
        let second = FrameBuf::copy(&[2; 260]);
        assert_eq!(second.as_ptr(), address);
        assert_eq!(&*second, &[2; 260][..], "the old bytes are gone");
    }

    #[test]
    fn copies_passed_between_threads_keep_their_bytes_while_buffers_circulate() {
        // Four threads copy frames of every pooled size, each with a pattern naming the
        // thread and the copy, and pass them round a ring; each checks what it receives
        // and drops it. A buffer handed out twice, or reused while still held, shows up as
        // a frame whose bytes changed.
        const THREADS: usize = 4;
        const COPIES: usize = 2_000;
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS)
            .map(|_| std::sync::mpsc::channel::<(usize, usize, FrameBuf)>())
            .unzip();
        let pattern = |thread: usize, copy: usize| {
            let len = 24 + (copy * 37 + thread * 11) % 1001;
            (0..len).map(move |i| (thread * 31 + copy * 7 + i) as u8)
        };
        let threads: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(thread, inbox)| {
                let next = senders[(thread + 1) % THREADS].clone();
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for copy in 0..COPIES {
                        let bytes: Vec<u8> = pattern(thread, copy).collect();
                        next.send((thread, copy, FrameBuf::copy(&bytes)))
                            .expect("ring open");
                        // Keep a few received frames a while, so buffers are held across
                        // later copies on this thread.
                        while let Ok(received) = inbox.try_recv() {
                            held.push(received);
                        }
                        if held.len() > 16 {
                            for (from, n, frame) in held.drain(..8) {
                                assert!(frame.iter().copied().eq(pattern(from, n)));
                            }
                        }
                    }
                    drop(next);
                    for (from, n, frame) in held.into_iter().chain(inbox) {
                        assert!(frame.iter().copied().eq(pattern(from, n)));
                    }
                })
            })
            .collect();
        drop(senders);
        for thread in threads {
            thread.join().expect("no frame changed under its holder");
        }
    }

    #[test]
    fn buffers_dropped_on_one_thread_are_reused_by_another() {
        static STACKS: Stacks = new_stacks();
        let class = 1;
        let magazine = MAGAZINE_LEN[class];
        let buffers: Vec<Box<[u8]>> = (0..3 * magazine).map(|_| take(&STACKS, class)).collect();
        let addresses: Vec<*const u8> = buffers.iter().map(|b| b.as_ptr()).collect();
        std::thread::spawn(move || {
            for buffer in buffers {
                give(&STACKS, class, buffer);
            }
            assert_eq!(local_len(class), magazine, "it kept one magazine's worth");
        })
        .join()
        .expect("dropping thread");
        assert_eq!(STACKS[class].lock().expect("not poisoned").full.len(), 2);
        assert_eq!(local_len(class), 0);
        let reused = take(&STACKS, class);
        assert!(addresses.contains(&reused.as_ptr()));
        assert_eq!(local_len(class), magazine - 1, "a whole magazine came over");
        let shared = STACKS[class].lock().expect("not poisoned");
        assert_eq!(shared.full.len(), 1);
        assert_eq!(shared.empty.len(), 1, "its emptied magazine is kept");
    }

    #[test]
    fn the_shared_stacks_are_bounded() {
        static STACKS: Stacks = new_stacks();
        let class = 4;
        let magazine = MAGAZINE_LEN[class];
        let many = (SHARED_MAGAZINES_MAX[class] + 4) * magazine;
        std::thread::spawn(move || {
            let buffers: Vec<Box<[u8]>> = (0..many).map(|_| take(&STACKS, class)).collect();
            for buffer in buffers {
                give(&STACKS, class, buffer);
            }
            assert!(local_len(class) < 2 * magazine);
        })
        .join()
        .expect("dropping thread");
        let shared = STACKS[class].lock().expect("not poisoned");
        assert_eq!(shared.full.len(), SHARED_MAGAZINES_MAX[class]);
        assert!(shared.full.iter().all(|m| m.len() == magazine));
    }

    #[test]
    fn a_buffer_made_a_bytes_returns_when_the_last_clone_drops() {
        let held = || (0..CLASS_BYTES.len()).map(local_len).sum::<usize>();
        // This thread holds at least two 64-byte buffers from here on, so the copy below
        // takes one of those rather than whatever the shared stack has.
        let primed = [FrameBuf::copy(&[0; 64]), FrameBuf::copy(&[0; 64])];
        drop(primed);
        let before = held();
        let bytes = bytes::Bytes::from_owner(FrameBuf::copy(&[6; 50]));
        let clone = bytes.clone();
        assert_eq!(clone, [6; 50][..]);
        assert_eq!(held(), before - 1);
        drop(bytes);
        assert_eq!(held(), before - 1, "a clone still holds it");
        drop(clone);
        assert_eq!(held(), before, "back in this thread's stack");
    }
}
