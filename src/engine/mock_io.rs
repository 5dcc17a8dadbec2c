//! Scripted IO for engine tests (in the style of h2's mock IO and tokio-test's
//! `io::Builder`): a [`Stream`](super::transport::Stream) whose other end is a [`MockPeer`]
//! held by the test. No kernel is involved, so with tokio's paused clock every test is
//! deterministic: virtual time only advances when the connection task and the test are both
//! waiting.

use bytes::{BufMut, BytesMut};
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct Shared {
    /// Bytes the peer sent that the engine has not read yet.
    inbound: BytesMut,
    /// The peer closed its side: reads return end of stream once `inbound` is drained.
    eof: bool,
    /// Everything the engine wrote.
    written: Vec<u8>,
    /// Bytes the engine may still write before writes would block (`None`: no limit), as a
    /// peer that stops reading makes the kernel push back.
    write_room: Option<usize>,
    /// The engine dropped its end.
    dropped: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// The test task, waiting for the engine to write or close.
    peer: Option<Waker>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The engine's end.
#[derive(Debug)]
pub(crate) struct MockIo(Arc<Mutex<Shared>>);

/// The test's end.
#[derive(Debug, Clone)]
pub(crate) struct MockPeer(Arc<Mutex<Shared>>);

/// A connected pair.
pub(crate) fn pair() -> (MockIo, MockPeer) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    (MockIo(shared.clone()), MockPeer(shared))
}

impl MockIo {
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = lock(&self.0);
        if s.inbound.is_empty() && !s.eof {
            s.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    pub(crate) fn try_read_buf<B: BufMut>(&self, buf: &mut B, room: usize) -> io::Result<usize> {
        let mut s = lock(&self.0);
        if s.inbound.is_empty() {
            return if s.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = s.inbound.len().min(room);
        buf.put_slice(&s.inbound.split_to(n));
        Ok(n)
    }

    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = lock(&self.0);
        if s.write_room == Some(0) {
            s.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut s = lock(&self.0);
        let mut room = s.write_room.unwrap_or(usize::MAX);
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut written = 0;
        for buf in bufs {
            let n = buf.len().min(room);
            s.written.extend_from_slice(&buf[..n]);
            written += n;
            room -= n;
            if room == 0 {
                break;
            }
        }
        if let Some(r) = &mut s.write_room {
            *r -= written;
        }
        if let Some(w) = s.peer.take() {
            w.wake();
        }
        Ok(written)
    }
}

impl Drop for MockIo {
    fn drop(&mut self) {
        let mut s = lock(&self.0);
        s.dropped = true;
        if let Some(w) = s.peer.take() {
            w.wake();
        }
    }
}

impl MockPeer {
    /// Sends bytes to the engine.
    pub(crate) fn send(&self, bytes: &[u8]) {
        let mut s = lock(&self.0);
        s.inbound.extend_from_slice(bytes);
        if let Some(w) = s.reader.take() {
            w.wake();
        }
    }

    /// Closes the peer's side (the engine reads end of stream).
    pub(crate) fn close(&self) {
        let mut s = lock(&self.0);
        s.eof = true;
        if let Some(w) = s.reader.take() {
            w.wake();
        }
    }

    /// Limits what the engine may still write (`None`: unlimited; `Some(0)`: the peer has
    /// stopped reading), waking a blocked writer when room appears.
    pub(crate) fn set_write_room(&self, room: Option<usize>) {
        let mut s = lock(&self.0);
        s.write_room = room;
        if room != Some(0)
            && let Some(w) = s.writer.take()
        {
            w.wake();
        }
    }

    /// Takes what the engine wrote so far.
    pub(crate) fn take_written(&self) -> Vec<u8> {
        std::mem::take(&mut lock(&self.0).written)
    }

    /// Waits until the engine has written at least `n` bytes, then takes exactly `n`.
    pub(crate) async fn read_exact(&self, n: usize) -> Vec<u8> {
        std::future::poll_fn(|cx| {
            let mut s = lock(&self.0);
            if s.written.len() >= n {
                let rest = s.written.split_off(n);
                return Poll::Ready(std::mem::replace(&mut s.written, rest));
            }
            s.peer = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Waits until the engine has dropped its end (the connection ended).
    pub(crate) async fn closed(&self) {
        std::future::poll_fn(|cx| {
            let mut s = lock(&self.0);
            if s.dropped {
                return Poll::Ready(());
            }
            s.peer = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}
