//! Property tests for the inproc hand-over: arbitrary interleavings of non-blocking sends,
//! receives, readiness polls and turns of the runtime (when the connection's task may run),
//! with arbitrary HWMs, against a model of what a connection must do whatever the moment a
//! message moves from the sender's queue to the receiver's inbox.

use ferromq::{Error, Pull, Push, SocketOptions};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    /// `try_send` this many messages (stopping at the first that would block).
    Send(usize),
    /// `try_recv` this many messages (stopping at the first that would block).
    Recv(usize),
    /// One `recv` with a short timeout.
    RecvWaiting,
    /// A turn of the runtime: the connection's task runs if it was woken.
    Settle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..12usize).prop_map(Op::Send),
        4 => (1..12usize).prop_map(Op::Recv),
        1 => Just(Op::RecvWaiting),
        1 => Just(Op::Settle),
    ]
}

fn name() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("inproc://props-{n}")
}

/// The next message must be number `received`.
fn expect(got: ferromq::Message, received: &mut usize) -> Result<(), TestCaseError> {
    let want = format!("{received}");
    prop_assert_eq!(got.frames(), [want.as_str()], "out of order or lost");
    *received += 1;
    Ok(())
}

/// Runs `ops` on a PUSH→PULL pair on a current-thread runtime and checks after every step:
/// messages arrive in order, none lost or repeated; a receive finds nothing only when
/// nothing is on its way; a send is refused only when the sender's queue is full.
fn check(sndhwm: usize, rcvhwm: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let endpoint = name();
        let pull =
            Pull::with_options(SocketOptions::builder().rcvhwm(rcvhwm).build().unwrap()).unwrap();
        pull.bind(&endpoint).unwrap();
        let push =
            Push::with_options(SocketOptions::builder().sndhwm(sndhwm).build().unwrap()).unwrap();
        push.connect(&endpoint).unwrap();
        let (mut sent, mut received) = (0usize, 0usize);
        for op in ops {
            match op {
                Op::Send(n) => {
                    for _ in 0..n {
                        match push.try_send(format!("{sent}")) {
                            Ok(()) => sent += 1,
                            Err(e) => {
                                prop_assert!(matches!(e.error, Error::WouldBlock), "{e}");
                                prop_assert!(
                                    push.stats().peers[0].queued_out >= sndhwm,
                                    "a send was refused with room in the sender's queue"
                                );
                                break;
                            }
                        }
                    }
                }
                Op::Recv(n) => {
                    for _ in 0..n {
                        match pull.try_recv() {
                            Ok(got) => expect(got, &mut received)?,
                            Err(Error::WouldBlock) => {
                                prop_assert_eq!(
                                    received,
                                    sent,
                                    "nothing to receive with messages on their way"
                                );
                                break;
                            }
                            Err(e) => return Err(TestCaseError::fail(e.to_string())),
                        }
                    }
                }
                Op::RecvWaiting => {
                    match tokio::time::timeout(Duration::from_millis(20), pull.recv()).await {
                        Ok(got) => expect(got.unwrap(), &mut received)?,
                        Err(_) => prop_assert_eq!(received, sent, "a waiting receive missed one"),
                    }
                }
                Op::Settle => {
                    for _ in 0..4 {
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
        while received < sent {
            let got = tokio::time::timeout(Duration::from_secs(5), pull.recv())
                .await
                .map_err(|_| TestCaseError::fail("a message never arrived"))?
                .unwrap();
            expect(got, &mut received)?;
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_interleaving_delivers_everything_in_order(
        sndhwm in 1..6usize,
        rcvhwm in 1..6usize,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        check(sndhwm, rcvhwm, ops)?;
    }
}
