//! PAIR against libzmq 4.3: TCP and IPC, ferromq binding and libzmq binding, both directions
//! at once over one connection (every message shape, then 100,000 messages each way in
//! order), and refusal of a second peer.

mod common;

use common::{LIBZMQ_TIMEOUT_MS, Transport, libzmq_socket};
use ferromq::{Message, Pair};
use std::time::Duration;
use tokio::task::spawn_blocking;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Messages streamed in each direction.
const STREAM_MSGS: u32 = 100_000;

/// Who binds; the other side connects.
#[derive(Debug, Clone, Copy)]
enum Binder {
    Ferromq,
    Libzmq,
}

/// Every message shape: single- and multi-part, empty frames, 0-byte and 1 MiB frames.
fn shapes() -> Vec<Vec<Vec<u8>>> {
    let big: Vec<u8> = (0..1usize << 20).map(|i| (i % 253) as u8).collect();
    vec![
        vec![b"hello".to_vec()],
        vec![b"a".to_vec(), Vec::new(), b"c".to_vec()],
        vec![Vec::new()],
        vec![big.clone()],
        vec![Vec::new(), big, b"tail".to_vec()],
    ]
}

fn numbered(i: u32) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// Connects a ferromq PAIR and a libzmq PAIR, the given side binding.
fn pair_up(ctx: &zmq::Context, transport: Transport, binder: Binder) -> (Pair, zmq::Socket) {
    let ours = Pair::new();
    let theirs = libzmq_socket(ctx, zmq::PAIR);
    match binder {
        Binder::Ferromq => {
            let endpoint = ours.bind(transport.bind_addr()).unwrap();
            theirs.connect(&endpoint.to_string()).unwrap();
        }
        Binder::Libzmq => {
            theirs.bind(&transport.bind_addr()).unwrap();
            ours.connect(theirs.get_last_endpoint().unwrap().unwrap())
                .unwrap();
        }
    }
    (ours, theirs)
}

/// Both sides send every shape and then `STREAM_MSGS` numbered messages while receiving the
/// other side's, and check everything arrives intact and in order.
async fn full_duplex_exchange(transport: Transport, binder: Binder) {
    let ctx = zmq::Context::new();
    let (ours, theirs) = pair_up(&ctx, transport, binder);
    let libzmq_side = spawn_blocking(move || {
        // libzmq sockets are single-threaded: interleave sending and receiving in one loop,
        // sending everything first would also work but only thanks to buffering.
        let mut received = 0u32;
        let mut shapes_seen = 0;
        let expected = shapes();
        for shape in shapes() {
            theirs.send_multipart(shape, 0).unwrap();
        }
        for i in 0..STREAM_MSGS {
            theirs.send(numbered(i), zmq::DONTWAIT).unwrap_or_else(|_| {
                // At HWM: receive one to let the other side make progress, then block.
                check_next(&theirs, &expected, &mut shapes_seen, &mut received);
                theirs.send(numbered(i), 0).unwrap();
            });
        }
        while received < STREAM_MSGS {
            check_next(&theirs, &expected, &mut shapes_seen, &mut received);
        }
        // Closed by the caller once our side has everything: libzmq 4.3 can drop the unsent
        // tail of an IPC stream when a socket closes while its reader is behind.
        theirs
    });
    let sending = async {
        for shape in shapes() {
            ours.send(shape.into_iter().collect::<Message>())
                .await
                .unwrap();
        }
        for i in 0..STREAM_MSGS {
            ours.send(numbered(i)).await.unwrap();
        }
    };
    let receiving = async {
        for shape in shapes() {
            let expected: Message = shape.into_iter().collect();
            assert_eq!(ours.recv().await.unwrap(), expected);
        }
        for i in 0..STREAM_MSGS {
            let message = ours.recv().await.unwrap();
            assert_eq!(message.frames(), [numbered(i)], "message {i} out of order");
        }
    };
    tokio::join!(sending, receiving);
    drop(libzmq_side.await.unwrap());
    ours.close().await;
}

/// Receives one message on the libzmq side and checks it is the next one expected.
fn check_next(
    socket: &zmq::Socket,
    shapes: &[Vec<Vec<u8>>],
    shapes_seen: &mut usize,
    received: &mut u32,
) {
    let frames = socket.recv_multipart(0).unwrap();
    if *shapes_seen < shapes.len() {
        assert_eq!(frames, shapes[*shapes_seen]);
        *shapes_seen += 1;
    } else {
        assert_eq!(
            frames,
            [numbered(*received)],
            "message {received} out of order"
        );
        *received += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_ferromq_binds_full_duplex() {
    timeout(
        TEST_TIMEOUT,
        full_duplex_exchange(Transport::Tcp, Binder::Ferromq),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_libzmq_binds_full_duplex() {
    timeout(
        TEST_TIMEOUT,
        full_duplex_exchange(Transport::Tcp, Binder::Libzmq),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_ferromq_binds_full_duplex() {
    timeout(
        TEST_TIMEOUT,
        full_duplex_exchange(Transport::Ipc, Binder::Ferromq),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_libzmq_binds_full_duplex() {
    timeout(
        TEST_TIMEOUT,
        full_duplex_exchange(Transport::Ipc, Binder::Libzmq),
    )
    .await
    .unwrap();
}

/// Reads libzmq monitor events until `wanted` arrives; panics on the monitor's timeout.
fn wait_for_event(monitor: &zmq::Socket, wanted: zmq::SocketEvent) {
    loop {
        let frames = monitor.recv_multipart(0).expect("monitor timed out");
        let event = u16::from_le_bytes([frames[0][0], frames[0][1]]);
        if zmq::SocketEvent::from_raw(event) == wanted {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_libzmq_peer_is_refused_and_the_first_keeps_working() {
    timeout(TEST_TIMEOUT, async {
        let ctx = zmq::Context::new();
        let (ours, first) = pair_up(&ctx, Transport::Tcp, Binder::Ferromq);
        let endpoint = ours.last_endpoint().unwrap().to_string();
        first.send("first", 0).unwrap();
        assert_eq!(ours.recv().await.unwrap().frames()[0], "first");

        let second = libzmq_socket(&ctx, zmq::PAIR);
        second
            .monitor("inproc://second-monitor", zmq::SocketEvent::ALL as i32)
            .unwrap();
        let monitor = ctx.socket(zmq::PAIR).unwrap();
        monitor.set_rcvtimeo(LIBZMQ_TIMEOUT_MS).unwrap();
        monitor.connect("inproc://second-monitor").unwrap();
        second.connect(&endpoint).unwrap();
        second.send("intruder", 0).unwrap();
        // libzmq completes the handshake, then ferromq closes the connection.
        // Then close it, so its reconnect attempts do not run beside the checks below.
        spawn_blocking(move || {
            wait_for_event(&monitor, zmq::SocketEvent::HANDSHAKE_SUCCEEDED);
            wait_for_event(&monitor, zmq::SocketEvent::DISCONNECTED);
            second.set_linger(0).unwrap();
            drop(second);
            // libzmq's I/O thread sends monitor events with a blocking send: an event (a
            // reconnect retry of the closing socket) sent after this reader is gone blocks
            // that thread for good, and with it `first`, which it also serves. So read on
            // until the monitor's last event.
            wait_for_event(&monitor, zmq::SocketEvent::MONITOR_STOPPED);
        })
        .await
        .unwrap();

        assert_eq!(ours.peer_count(), 1);
        first.send("still here", 0).unwrap();
        assert_eq!(ours.recv().await.unwrap().frames()[0], "still here");
        ours.send("to the first").await.unwrap();
        let reply = spawn_blocking(move || first.recv_bytes(0).unwrap())
            .await
            .unwrap();
        assert_eq!(reply, b"to the first");
        assert!(
            ours.try_recv().is_err(),
            "the refused peer's message was delivered"
        );
    })
    .await
    .unwrap();
}
