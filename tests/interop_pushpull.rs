//! PUSH/PULL against libzmq 4.3, both directions, TCP and IPC, ferromq binding and libzmq
//! binding: message shapes, 100,000 messages in order, fair-queueing of three libzmq PUSH
//! peers and round-robin to three libzmq PULL workers.

mod common;

use common::{Transport, libzmq_socket};
use ferromq::{Message, Pull, Push, SocketOptions};
use std::time::Duration;
use tokio::task::spawn_blocking;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Messages in the ordering tests.
const STREAM_MSGS: u32 = 100_000;
const ONE_MIB: usize = 1 << 20;

/// Who binds; the other side connects.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Binder {
    Ferromq,
    Libzmq,
}

/// Binds a libzmq socket and returns the endpoint it really bound.
fn libzmq_bind(socket: &zmq::Socket, addr: &str) -> String {
    socket.bind(addr).unwrap();
    socket.get_last_endpoint().unwrap().unwrap()
}

/// A 1 MiB frame whose bytes depend on their position, so a misplaced chunk is caught.
fn big_frame() -> Vec<u8> {
    (0..ONE_MIB).map(|i| (i % 251) as u8).collect()
}

/// Every message shape: single- and multi-part, empty frames, 0-byte and 1 MiB frames.
fn shapes() -> Vec<Vec<Vec<u8>>> {
    vec![
        vec![b"hello".to_vec()],
        vec![b"a".to_vec(), Vec::new(), b"c".to_vec()],
        vec![Vec::new()],
        vec![Vec::new(), Vec::new()],
        vec![big_frame()],
        vec![b"header".to_vec(), big_frame(), Vec::new()],
        (0..20u8).map(|i| vec![i; usize::from(i) * 13]).collect(),
    ]
}

fn to_message(frames: &[Vec<u8>]) -> Message {
    frames.iter().cloned().collect()
}

fn numbered(i: u32) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// libzmq PUSH sends every shape then `STREAM_MSGS` numbered messages; ferromq PULL checks
/// all of them arrive intact and in order.
async fn libzmq_push_to_ferromq_pull(transport: Transport, binder: Binder) {
    let ctx = zmq::Context::new();
    let pull = Pull::new();
    let push = libzmq_socket(&ctx, zmq::PUSH);
    match binder {
        Binder::Ferromq => {
            let endpoint = pull.bind(transport.bind_addr()).unwrap();
            push.connect(&endpoint.to_string()).unwrap();
        }
        Binder::Libzmq => pull
            .connect(libzmq_bind(&push, &transport.bind_addr()))
            .unwrap(),
    }
    // The libzmq socket is handed back and closed only after everything arrived: libzmq 4.3
    // can drop the unsent tail of an IPC stream when a socket closes while its reader is
    // behind, linger or not (spec/performance.md, "Known libzmq behaviour").
    let sender = spawn_blocking(move || {
        for shape in shapes() {
            push.send_multipart(shape, 0).unwrap();
        }
        for i in 0..STREAM_MSGS {
            push.send(numbered(i), 0).unwrap();
        }
        push
    });
    for shape in shapes() {
        assert_eq!(pull.recv().await.unwrap(), to_message(&shape));
    }
    for i in 0..STREAM_MSGS {
        let message = pull.recv().await.unwrap();
        assert_eq!(message.frames(), [numbered(i)], "message {i} out of order");
    }
    drop(sender.await.unwrap());
}

/// ferromq PUSH sends every shape then `STREAM_MSGS` numbered messages; libzmq PULL checks
/// all of them arrive intact and in order.
async fn ferromq_push_to_libzmq_pull(transport: Transport, binder: Binder) {
    let ctx = zmq::Context::new();
    let push = Push::new();
    let pull = libzmq_socket(&ctx, zmq::PULL);
    match binder {
        Binder::Ferromq => {
            let endpoint = push.bind(transport.bind_addr()).unwrap();
            pull.connect(&endpoint.to_string()).unwrap();
        }
        Binder::Libzmq => push
            .connect(libzmq_bind(&pull, &transport.bind_addr()))
            .unwrap(),
    }
    let receiver = spawn_blocking(move || {
        for shape in shapes() {
            assert_eq!(pull.recv_multipart(0).unwrap(), shape);
        }
        for i in 0..STREAM_MSGS {
            let frames = pull.recv_multipart(0).unwrap();
            assert_eq!(frames, [numbered(i)], "message {i} out of order");
        }
    });
    for shape in shapes() {
        push.send(to_message(&shape)).await.unwrap();
    }
    for i in 0..STREAM_MSGS {
        push.send(numbered(i)).await.unwrap();
    }
    receiver.await.unwrap();
    push.close().await;
}

macro_rules! both_ways {
    ($($name:ident: $transport:expr, $binder:expr;)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn libzmq_push_to_ferromq_pull() {
                timeout(TEST_TIMEOUT, super::libzmq_push_to_ferromq_pull($transport, $binder))
                    .await
                    .unwrap();
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ferromq_push_to_libzmq_pull() {
                timeout(TEST_TIMEOUT, super::ferromq_push_to_libzmq_pull($transport, $binder))
                    .await
                    .unwrap();
            }
        }
    )*};
}

both_ways! {
    tcp_ferromq_binds: Transport::Tcp, Binder::Ferromq;
    tcp_libzmq_binds: Transport::Tcp, Binder::Libzmq;
    ipc_ferromq_binds: Transport::Ipc, Binder::Ferromq;
    ipc_libzmq_binds: Transport::Ipc, Binder::Libzmq;
}

/// Messages each libzmq PUSH peer sends in the fair-queueing test: many times the longest
/// run a fair queue can show, and small enough to sit in kernel buffers without a reader.
const FAIR_MSGS_PER_PEER: u32 = 2_000;
/// The PULL's receive HWM in that test. A peer's messages join the rotation only once its
/// connection task has read them, so the test keeps that hand-off small and on the reader's
/// own thread (a current-thread runtime): the reader drains at most this many per peer, and
/// once it waits, every connection task refills before it runs again. Left to a large HWM on
/// a multi-threaded runtime, what the test saw depended on when the OS ran which thread (a
/// peer could first show up after 2,000 messages from the others).
const FAIR_RCVHWM: usize = 16;
/// Longest run of messages from one peer tolerated while others have messages pending. The
/// fair queue alternates (runs of 1) whenever two or more peers have messages queued; a queue
/// that served each peer until its queue ran dry would show runs of `FAIR_RCVHWM`.
const MAX_FAIR_RUN: usize = FAIR_RCVHWM / 4;

#[tokio::test]
async fn three_libzmq_pushers_are_fair_queued() {
    timeout(TEST_TIMEOUT, async {
        let mut options = SocketOptions::default();
        options.rcvhwm = FAIR_RCVHWM;
        let pull = Pull::with_options(options).unwrap();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap().to_string();
        // Every peer streams its whole share into the kernel's buffers before we read
        // anything, so all three have messages waiting for their connection tasks to take.
        let senders: Vec<_> = (0..3u8)
            .map(|peer| {
                let endpoint = endpoint.clone();
                spawn_blocking(move || {
                    let ctx = zmq::Context::new();
                    let push = libzmq_socket(&ctx, zmq::PUSH);
                    push.connect(&endpoint).unwrap();
                    for seq in 0..FAIR_MSGS_PER_PEER {
                        push.send_multipart([vec![peer], numbered(seq)], 0).unwrap();
                    }
                    // Terminating the context waits (linger) until libzmq wrote everything.
                    drop(push);
                    drop(ctx);
                })
            })
            .collect();
        for sender in senders {
            sender.await.unwrap();
        }

        let total = 3 * FAIR_MSGS_PER_PEER as usize;
        let mut order = Vec::with_capacity(total);
        let mut next_seq = [0u32; 3];
        for _ in 0..total {
            let message = pull.recv().await.unwrap();
            let peer = usize::from(message.frames()[0][0]);
            assert_eq!(
                message.frames()[1],
                numbered(next_seq[peer]),
                "peer {peer} out of order"
            );
            next_seq[peer] += 1;
            order.push(peer);
        }

        // Every peer shows up within the first hand-offs: a peer whose messages were not read
        // yet when the reader started joins once the others' first batches are drained.
        let all_present = (0..3)
            .map(|peer| order.iter().position(|&p| p == peer).unwrap())
            .max()
            .unwrap();
        assert!(
            all_present <= 2 * FAIR_RCVHWM,
            "a peer first appeared at message {all_present}"
        );
        // From then until the first peer runs out, no peer may monopolise the socket.
        let first_exhausted = (0..3)
            .map(|peer| order.iter().rposition(|&p| p == peer).unwrap())
            .min()
            .unwrap();
        let contended = &order[all_present..first_exhausted];
        let longest_run = contended
            .chunk_by(|a, b| a == b)
            .map(<[usize]>::len)
            .max()
            .unwrap();
        assert!(
            longest_run <= MAX_FAIR_RUN,
            "one peer got {longest_run} messages in a row while the others waited"
        );
        // Under contention the shares stay even: each peer got a third of the contended
        // stretch, give or take one run.
        for peer in 0..3 {
            let share = contended.iter().filter(|&&p| p == peer).count();
            let fair = contended.len() / 3;
            assert!(
                share.abs_diff(fair) <= MAX_FAIR_RUN,
                "peer {peer} got {share} of {} contended messages",
                contended.len()
            );
        }
    })
    .await
    .unwrap();
}

/// Work items per libzmq PULL worker in the round-robin test.
const WORK_PER_WORKER: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferromq_push_round_robins_to_three_libzmq_pullers() {
    timeout(TEST_TIMEOUT, async {
        let ctx = zmq::Context::new();
        // No HWM: with a limit, a worker whose queue is momentarily full is skipped, which is
        // correct but would make the shares depend on scheduling.
        let mut options = SocketOptions::default();
        options.sndhwm = 0;
        let push = Push::with_options(options).unwrap();
        let endpoint = push.bind("tcp://127.0.0.1:0").unwrap().to_string();
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let pull = libzmq_socket(&ctx, zmq::PULL);
                pull.connect(&endpoint).unwrap();
                spawn_blocking(move || {
                    let mut count = 0usize;
                    loop {
                        let message = pull.recv_bytes(0).expect("worker timed out");
                        if message == b"END" {
                            return count;
                        }
                        count += 1;
                    }
                })
            })
            .collect();
        // Round-robin is only meaningful over peers that are all there: wait for the three
        // handshakes (bounded; nothing is sent meanwhile).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while push.peer_count() < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "workers never connected"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        for i in 0..3 * WORK_PER_WORKER {
            push.send(format!("task {i}")).await.unwrap();
        }
        // One END each, if and only if the rotation is strict.
        for _ in 0..3 {
            push.send("END").await.unwrap();
        }
        for worker in workers {
            let count = worker.await.unwrap();
            assert!(
                count.abs_diff(WORK_PER_WORKER) <= 1,
                "a worker got {count} of {} tasks",
                3 * WORK_PER_WORKER
            );
        }
        push.close().await;
    })
    .await
    .unwrap();
}
