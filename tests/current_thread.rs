//! On a current-thread runtime a connection task runs only when the application's task gives
//! the thread up. A task that computes between its sends, without waiting on anything, must
//! still see each message leave as it sends it, as it would with libzmq's I/O thread: a
//! sparse message is written in the send call itself (spec/sockets.md, "Direct writes of
//! sparse messages").

use ferromq::{Dealer, Message, Pull, Push, Socket, SocketOptions};
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::fmt::Debug;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Messages each sender sends, each one after the one before arrived.
const MESSAGES: u8 = 5;
/// How long a sender computes, waiting for a message to arrive, before it counts as held.
const PATIENCE: Duration = Duration::from_secs(5);

/// A socket of type `S` on a current-thread runtime, connected to one of type `R` bound on a
/// thread of its own, sends `MESSAGES` one-byte messages; after each it computes, without
/// yielding, until the receiver reports that message (or `PATIENCE` has passed).
fn computing_sender_delivers_each_message<R, S>()
where
    R: Socket + Stream<Item = ferromq::Result<Message>> + Unpin + Send + 'static,
    S: Socket + Sink<Message> + Unpin,
    S::Error: Debug,
{
    let (endpoint_tx, endpoint_rx) = mpsc::channel();
    let (got_tx, got) = mpsc::channel();
    let receiver = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let mut socket = R::with_options(SocketOptions::default()).unwrap();
            let bound = socket.bind("tcp://127.0.0.1:0").unwrap();
            endpoint_tx.send(bound).unwrap();
            for _ in 0..MESSAGES {
                let message = tokio::time::timeout(PATIENCE * 2, socket.next())
                    .await
                    .expect("the receiver timed out")
                    .expect("the receiver ended")
                    .unwrap();
                got_tx.send(message.frames()[0][0]).unwrap();
            }
        });
    });
    let endpoint = endpoint_rx.recv_timeout(PATIENCE).expect("no endpoint");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut socket = S::with_options(SocketOptions::default()).unwrap();
        socket.connect(&endpoint).unwrap();
        tokio::time::timeout(PATIENCE, async {
            while socket.peer_count() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("never connected");
        for i in 0..MESSAGES {
            socket.send(Message::from(vec![i])).await.unwrap();
            let deadline = Instant::now() + PATIENCE;
            loop {
                match got.try_recv() {
                    Ok(n) => {
                        assert_eq!(n, i);
                        break;
                    }
                    Err(mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                        std::hint::spin_loop()
                    }
                    Err(e) => panic!("message {i} did not leave while its sender computed: {e}"),
                }
            }
        }
    });
    receiver.join().unwrap();
}

#[test]
fn a_push_that_computes_between_sends_delivers_each_message_as_it_sends_it() {
    computing_sender_delivers_each_message::<Pull, Push>();
}

#[test]
fn a_dealer_that_computes_between_sends_delivers_each_message_as_it_sends_it() {
    computing_sender_delivers_each_message::<Dealer, Dealer>();
}
