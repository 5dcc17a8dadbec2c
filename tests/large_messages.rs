//! Large and mixed-size messages between two ferromq sockets arrive whole, in order and
//! byte-exact: the receive path moves partial bodies between read buffers, reuses buffers the
//! application has released, grows huge bodies step by step and stops reading while the
//! receiver's inbox holds its byte budget, and none of that may show in what is delivered.

use ferromq::{Message, Pull, Push};
use std::time::Duration;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Sizes chosen to land frame boundaries everywhere in a read buffer: tiny frames between
/// large ones, bodies just under and over the large-frame threshold, one past the largest
/// buffer allocated on a header's word (20 MiB), and a long run of 64 KiB messages.
fn sizes() -> Vec<usize> {
    let mut sizes = vec![1, 31 * 1024, 32 * 1024, 33 * 1024, 7, 100_000, 20 << 20, 3];
    sizes.extend(std::iter::repeat_n(64 * 1024, 300));
    sizes.extend([1 << 20, 5, 512 * 1024 + 1, 64 * 1024 - 1, 0, 200 * 1024]);
    sizes
}

/// A body whose every byte depends on the message index and position, so a byte from the
/// wrong place or the wrong message is caught.
fn body(index: usize, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i.wrapping_mul(31) ^ index.wrapping_mul(131)) as u8)
        .collect()
}

async fn mixed_sizes_arrive_intact(bind: &str) {
    let pull = Pull::new();
    let endpoint = pull.bind(bind).unwrap();
    let push = Push::new();
    push.connect(endpoint).unwrap();
    let sizes = sizes();
    let sender = tokio::spawn({
        let sizes = sizes.clone();
        async move {
            for (index, &size) in sizes.iter().enumerate() {
                let message: Message = [body(index, size), vec![index as u8]].into_iter().collect();
                push.send(message).await.unwrap();
            }
            push
        }
    });
    for (index, &size) in sizes.iter().enumerate() {
        let message = pull.recv().await.unwrap();
        let frames = message.frames();
        assert_eq!(frames.len(), 2, "message {index}");
        assert_eq!(frames[0].len(), size, "message {index}");
        assert!(frames[0] == body(index, size), "message {index} corrupted");
        assert_eq!(frames[1][..], [index as u8]);
    }
    sender.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_sizes_arrive_intact_over_tcp() {
    timeout(TEST_TIMEOUT, mixed_sizes_arrive_intact("tcp://127.0.0.1:0"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_sizes_arrive_intact_over_ipc() {
    let path = format!("ipc:///tmp/ferromq-large-{}.sock", std::process::id());
    timeout(TEST_TIMEOUT, mixed_sizes_arrive_intact(&path))
        .await
        .unwrap();
}

/// Size of message `index` in [`kept_messages_are_never_overwritten`]: all large frames,
/// each a different length so frame boundaries move through the read buffers.
fn kept_message_size(index: usize) -> usize {
    40 * 1024 + index * 97
}

/// A receiver that holds on to every message it got (so no read buffer can be reused) still
/// receives everything: buffers the application keeps are never written over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_messages_are_never_overwritten() {
    timeout(TEST_TIMEOUT, async {
        let pull = Pull::new();
        let endpoint = pull.bind("tcp://127.0.0.1:0").unwrap();
        let push = Push::new();
        push.connect(endpoint).unwrap();
        const COUNT: usize = 400;
        let sender = tokio::spawn(async move {
            for index in 0..COUNT {
                push.send(body(index, kept_message_size(index)))
                    .await
                    .unwrap();
            }
            push
        });
        let mut kept = Vec::with_capacity(COUNT);
        for _ in 0..COUNT {
            kept.push(pull.recv().await.unwrap());
        }
        for (index, message) in kept.iter().enumerate() {
            assert!(
                message.frames()[0] == body(index, kept_message_size(index)),
                "message {index} changed after delivery"
            );
        }
        sender.await.unwrap();
    })
    .await
    .unwrap();
}
