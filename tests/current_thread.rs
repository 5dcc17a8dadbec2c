//! On a current-thread runtime a connection task runs only when the application's task gives
//! the thread up. A task that computes between its sends, without waiting on anything, must
//! still see each message leave as it sends it, as it would with libzmq's I/O thread: a
//! sparse message is written in the send call itself (spec/sockets.md, "Sending").

use ferromq::{Dealer, Message, Pull, Push};
use futures::{Sink, SinkExt};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Messages each sender sends, one after the other arrived.
const MESSAGES: u8 = 5;
/// How long a sender computes, waiting for a message to arrive, before it counts as held.
const PATIENCE: Duration = Duration::from_secs(5);

/// Runs a receiver on a thread of its own (a multi-thread runtime): it binds, hands back its
/// endpoint, then reports the first byte of each of `MESSAGES` messages it receives.
fn spawn_receiver<F, Fut>(receive: F) -> (String, mpsc::Receiver<u8>, std::thread::JoinHandle<()>)
where
    F: FnOnce(mpsc::Sender<String>, mpsc::Sender<u8>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (endpoint_tx, endpoint_rx) = mpsc::channel();
    let (got_tx, got_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            tokio::time::timeout(PATIENCE * 4, receive(endpoint_tx, got_tx))
                .await
                .expect("the receiver timed out")
        });
    });
    let endpoint = endpoint_rx.recv_timeout(PATIENCE).expect("no endpoint");
    (endpoint, got_rx, thread)
}

/// Sends `MESSAGES` one-byte messages on a current-thread runtime, and after each computes
/// without yielding until the receiver reports it (or `PATIENCE` has passed).
fn send_computing<S>(connected: impl std::future::Future<Output = S>, got: &mpsc::Receiver<u8>)
where
    S: Sink<Message> + Unpin,
    S::Error: std::fmt::Debug,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut socket = tokio::time::timeout(PATIENCE, connected)
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
}

#[test]
fn a_push_that_computes_between_sends_delivers_each_message_as_it_sends_it() {
    let (endpoint, got, receiver) = spawn_receiver(|endpoint, got| async move {
        let pull = Pull::new();
        let bound = pull.bind("tcp://127.0.0.1:0").unwrap();
        endpoint.send(bound.to_string()).unwrap();
        for _ in 0..MESSAGES {
            let message = pull.recv().await.unwrap();
            got.send(message.frames()[0][0]).unwrap();
        }
    });
    let connected = async {
        let push = Push::new();
        push.connect(endpoint.as_str()).unwrap();
        while push.peer_count() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        push
    };
    send_computing(connected, &got);
    receiver.join().unwrap();
}

#[test]
fn a_dealer_that_computes_between_sends_delivers_each_message_as_it_sends_it() {
    let (endpoint, got, receiver) = spawn_receiver(|endpoint, got| async move {
        let dealer = Dealer::new();
        let bound = dealer.bind("tcp://127.0.0.1:0").unwrap();
        endpoint.send(bound.to_string()).unwrap();
        for _ in 0..MESSAGES {
            let message = dealer.recv().await.unwrap();
            got.send(message.frames()[0][0]).unwrap();
        }
    });
    let connected = async {
        let dealer = Dealer::new();
        dealer.connect(endpoint.as_str()).unwrap();
        while dealer.peer_count() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        dealer
    };
    send_computing(connected, &got);
    receiver.join().unwrap();
}
