//! The process-wide runtime behind the blocking sockets, and how a blocking call waits.

use crate::error::{Error, Result};
use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::{Builder, Handle, Runtime, RuntimeFlavor};

/// Most worker threads of the shared runtime. libzmq's default is one I/O thread per context;
/// a second lets one socket's connections be read while another's are written, and more buy
/// nothing for the blocking API's typical few sockets (a program that needs more runs its own
/// tokio runtime and the async sockets).
const MAX_IO_THREADS: usize = 2;

/// The name of the shared runtime's threads, as they show in `top -H`, debuggers and panics.
pub const THREAD_NAME: &str = "ferromq-io";

/// Started on first use, never stopped (see [`handle`]). Building it can fail only when the
/// OS refuses threads; the error is kept so every later call reports it too.
static RUNTIME: OnceLock<std::io::Result<Runtime>> = OnceLock::new();

/// The shared runtime, started on first call: a multi-thread tokio runtime of
/// min([`MAX_IO_THREADS`], cores) workers named [`THREAD_NAME`]. It lives in a `static`, so it
/// is never dropped: its threads run until the process exits, and what they had not written
/// by then is lost (close sockets first; `close` waits for the linger period).
pub(crate) fn handle() -> Result<&'static Handle> {
    let runtime = RUNTIME.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Builder::new_multi_thread()
            .worker_threads(cores.clamp(1, MAX_IO_THREADS))
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()
    });
    match runtime {
        Ok(runtime) => Ok(runtime.handle()),
        Err(e) => Err(Error::Io(std::io::Error::new(e.kind(), e.to_string()))),
    }
}

/// How the calling thread may wait for the shared runtime (see [`waiter`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Waiter {
    /// A plain thread (or a `spawn_blocking` thread): block it.
    Plain(&'static Handle),
    /// A worker or `block_on` thread of a multi-thread runtime: block it inside
    /// `tokio::task::block_in_place`, which first hands that runtime's other tasks to
    /// another worker.
    InPlace(&'static Handle),
}

/// Decides how the calling thread may block, before anything is given to the call:
///
/// * outside any tokio runtime: it blocks;
/// * in a multi-thread runtime: it blocks in `block_in_place` (that runtime's other tasks
///   move to its other workers, so a peer living there keeps running);
/// * in a current-thread runtime: [`Error::BlockingInRuntime`], because blocking its only
///   thread would stop every task of that runtime, perhaps the very peer the call waits for
///   (a deadlock until the timeout, or forever), and tokio panics instead of blocking there.
///   tokio does not tell a current-thread runtime's `spawn_blocking` threads apart from the
///   runtime's own thread, so those get the error too.
pub(crate) fn waiter() -> Result<Waiter> {
    let shared = handle()?;
    match Handle::try_current() {
        Err(_) => Ok(Waiter::Plain(shared)),
        Ok(current) => match current.runtime_flavor() {
            RuntimeFlavor::MultiThread => Ok(Waiter::InPlace(shared)),
            _ => Err(Error::BlockingInRuntime),
        },
    }
}

impl Waiter {
    /// Runs `future` on the calling thread to completion, within the shared runtime's
    /// context (its timers and sockets are driven by the runtime's workers).
    pub(crate) fn block_on<F: Future>(self, future: F) -> F::Output {
        match self {
            Waiter::Plain(handle) => handle.block_on(future),
            Waiter::InPlace(handle) => tokio::task::block_in_place(|| handle.block_on(future)),
        }
    }
}

/// Runs `future` to completion as [`Waiter::block_on`], or fails as [`waiter`] does.
pub(crate) fn block_on<F: Future>(future: F) -> Result<F::Output> {
    Ok(waiter()?.block_on(future))
}
