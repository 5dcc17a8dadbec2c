//! The buffers that large copied frames are made in, kept for the next copy.
//!
//! `Message::from(&[u8])` copies a frame of 4 KiB (`WRITE_FLATTEN_THRESHOLD_BYTES`) or more
//! into a buffer of its own, which the connection writes by reference and drops once written,
//! often on another thread. Given back to the allocator, those buffers made glibc's `malloc`
//! return the top of its heap to the kernel and fault it in again for the next copy: 2–5 page
//! faults per 64 KiB message on the multi-thread runtime, half the rate (spec/performance.md,
//! "The multi-thread sender at 64 KiB"). Dropped buffers come back here instead, up to
//! [`POOL_MAX_BYTES`] and [`POOL_MAX_BUFFERS`] in all, and the next copy of a similar size
//! reuses one. Only ferromq's own copies pass through the pool: a `Bytes` or `Vec` the
//! application hands over is its own.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

use crate::engine::QUEUE_SOFT_LIMIT_BYTES;

/// The most bytes of free buffers the pool keeps, across all sizes (4 MiB): four times a
/// connection's send soft limit, what a sender has in flight to a few peers at once. The
/// oldest buffers go back to the allocator first when a newer one needs the room.
const POOL_MAX_BYTES: usize = 4 * QUEUE_SOFT_LIMIT_BYTES;

/// The most free buffers the pool keeps: sixty-four 64 KiB buffers fill [`POOL_MAX_BYTES`],
/// and a copy looks through at most this many for one of its size.
const POOL_MAX_BUFFERS: usize = 64;

/// Buffers larger than this go back to the allocator: glibc maps allocations this large on
/// their own (`mmap`) unless its threshold has grown past them, so they do not move the
/// heap's top, and one would take a quarter of the pool.
const POOLED_BUFFER_MAX_BYTES: usize = 1 << 20;

/// How much larger than the copy a reused buffer may be, as a fraction of the copy (1/4): a
/// message keeps its buffer while queued, so a much larger one would cost memory at the HWM.
const REUSE_SLACK_DIVISOR: usize = 4;

/// The process's pool of buffers for large copied frames.
pub(crate) static POOL: BufferPool = BufferPool::new();

/// Free buffers, oldest first, and the bytes they hold.
pub(crate) struct BufferPool {
    free: Mutex<Free>,
}

struct Free {
    buffers: VecDeque<Vec<u8>>,
    bytes: usize,
}

impl BufferPool {
    pub(crate) const fn new() -> BufferPool {
        BufferPool {
            free: Mutex::new(Free {
                buffers: VecDeque::new(),
                bytes: 0,
            }),
        }
    }

    /// `bytes` copied into a kept buffer of about its size (a new one if none fits), as a
    /// `Bytes` that gives the buffer back here when its last clone drops.
    pub(crate) fn copy(&'static self, bytes: &[u8]) -> Bytes {
        let mut buffer = self
            .take(bytes.len())
            .unwrap_or_else(|| Vec::with_capacity(bytes.len()));
        buffer.extend_from_slice(bytes);
        Bytes::from_owner(Pooled { buffer, pool: self })
    }

    /// A free buffer that holds `len` bytes and at most a quarter more: the most recently
    /// given back, whose memory is likeliest to be in the cache.
    fn take(&self, len: usize) -> Option<Vec<u8>> {
        // The pool holds none this large: no lock to take, no list to look through.
        if len > POOLED_BUFFER_MAX_BYTES {
            return None;
        }
        let fits = len..=len + len / REUSE_SLACK_DIVISOR;
        let mut free = self.free.lock().ok()?;
        let at = free
            .buffers
            .iter()
            .rposition(|b| fits.contains(&b.capacity()))?;
        let buffer = free.buffers.remove(at)?;
        free.bytes -= buffer.capacity();
        Some(buffer)
    }

    /// Keeps `buffer` for a later copy, making room by dropping the oldest ones.
    fn give_back(&self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity > POOLED_BUFFER_MAX_BYTES {
            return;
        }
        buffer.clear();
        // Freed after the lock is released.
        let mut evicted = Vec::new();
        let Ok(mut free) = self.free.lock() else {
            return;
        };
        while free.bytes + capacity > POOL_MAX_BYTES || free.buffers.len() >= POOL_MAX_BUFFERS {
            let Some(oldest) = free.buffers.pop_front() else {
                break;
            };
            free.bytes -= oldest.capacity();
            evicted.push(oldest);
        }
        free.bytes += capacity;
        free.buffers.push_back(buffer);
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let free = self.free.lock().expect("not poisoned");
        (free.buffers.len(), free.bytes)
    }
}

/// A pooled buffer as the owner of a `Bytes`.
struct Pooled {
    buffer: Vec<u8>,
    pool: &'static BufferPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> &'static BufferPool {
        Box::leak(Box::new(BufferPool::new()))
    }

    #[test]
    fn a_dropped_copy_lends_its_buffer_to_the_next_copy_of_its_size() {
        let pool = pool();
        let first = pool.copy(&[1; 65_536]);
        let address = first.as_ptr();
        drop(first);
        assert_eq!(pool.held(), (1, 65_536));
        let second = pool.copy(&[2; 60_000]);
        assert_eq!(second.as_ptr(), address, "the kept buffer is reused");
        assert_eq!(&second[..], &[2; 60_000][..]);
        assert_eq!(pool.held(), (0, 0));
    }

    #[test]
    fn a_buffer_much_larger_than_the_copy_is_not_lent() {
        let pool = pool();
        drop(pool.copy(&[1; 65_536]));
        let small = pool.copy(&[2; 8_192]);
        assert_eq!(&small[..], &[2; 8_192][..]);
        assert_eq!(
            pool.held(),
            (1, 65_536),
            "the 64 KiB buffer stays for a 64 KiB copy"
        );
    }

    #[test]
    fn the_buffer_returns_when_the_last_clone_drops() {
        let pool = pool();
        let copy = pool.copy(&[3; 10_000]);
        let slice = copy.slice(100..200);
        drop(copy);
        assert_eq!(pool.held(), (0, 0), "a clone still uses it");
        assert_eq!(&slice[..], &[3; 100][..]);
        drop(slice);
        assert_eq!(pool.held(), (1, 10_000));
    }

    #[test]
    fn the_pool_keeps_at_most_its_limit_dropping_the_oldest_first() {
        let pool = pool();
        let size = 300_000;
        let copies: Vec<Bytes> = (0..20).map(|i| pool.copy(&vec![i; size])).collect();
        let newest = copies.last().expect("twenty").as_ptr();
        drop(copies);
        let (count, bytes) = pool.held();
        assert!(bytes <= POOL_MAX_BYTES, "{bytes} bytes kept");
        assert_eq!(count, POOL_MAX_BYTES / size);
        // The newest buffer is still there: the next copy of its size may get it.
        let reused: Vec<Bytes> = (0..count).map(|_| pool.copy(&vec![9; size])).collect();
        assert!(reused.iter().any(|b| b.as_ptr() == newest));
    }

    #[test]
    fn the_pool_keeps_at_most_its_count_of_small_buffers() {
        let pool = pool();
        let copies: Vec<Bytes> = (0..100).map(|_| pool.copy(&[5; 4_096])).collect();
        drop(copies);
        assert_eq!(pool.held(), (POOL_MAX_BUFFERS, POOL_MAX_BUFFERS * 4_096));
    }

    #[test]
    fn the_newest_fitting_buffer_is_lent_first() {
        let pool = pool();
        let older = pool.copy(&[1; 20_000]);
        let newer = pool.copy(&[1; 20_000]);
        let newest = newer.as_ptr();
        drop(older);
        drop(newer);
        assert_eq!(pool.copy(&[2; 20_000]).as_ptr(), newest);
    }

    #[test]
    fn a_buffer_over_the_per_buffer_limit_goes_back_to_the_allocator() {
        let pool = pool();
        drop(pool.copy(&vec![4; POOLED_BUFFER_MAX_BYTES + 1]));
        assert_eq!(pool.held(), (0, 0));
    }
}
