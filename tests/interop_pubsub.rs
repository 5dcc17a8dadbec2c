//! PUB/SUB and XPUB/XSUB against libzmq 4.3, both directions, TCP and IPC, each side binding
//! in turn: several and overlapping prefixes (a message matching two arrives once), the empty
//! prefix, unsubscribing, multipart messages, and subscription notifications both ways
//! (libzmq's SUB sends SUBSCRIBE commands, its XSUB sends the `0x01 prefix` data form; ferromq
//! sends commands to libzmq, which its XPUB shows as `1`/`0` + prefix).

mod common;

use common::{Transport, libzmq_socket};
use ferromq::{Message, Pub, Sub, XPub, XSub};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;
use tokio::sync::mpsc as async_mpsc;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Every combination: transport × (ferromq binds?).
const CASES: [(Transport, bool); 4] = [
    (Transport::Tcp, true),
    (Transport::Tcp, false),
    (Transport::Ipc, true),
    (Transport::Ipc, false),
];

/// Binds the libzmq socket (returning its real endpoint) or connects it to `ferromq_endpoint`.
fn libzmq_attach(socket: &zmq::Socket, binds: bool, addr: &str) -> String {
    if binds {
        socket.bind(addr).unwrap();
        socket.get_last_endpoint().unwrap().unwrap()
    } else {
        socket.connect(addr).unwrap();
        addr.to_owned()
    }
}

fn text(message: &Message) -> String {
    message
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect::<Vec<_>>()
        .join("|")
}

fn libzmq_recv_text(socket: &zmq::Socket) -> String {
    socket
        .recv_multipart(0)
        .unwrap()
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect::<Vec<_>>()
        .join("|")
}

/// Receives from a ferromq SUB, skipping the probes a publisher sent until it was heard.
async fn recv_skipping(sub: &Sub, probe: &str) -> String {
    loop {
        let message = text(&sub.recv().await.unwrap());
        if message != probe {
            return message;
        }
    }
}

/// The libzmq side of a test: a thread running `script`, reporting over a channel.
fn libzmq_thread<T: Send + 'static>(
    script: impl FnOnce(async_mpsc::UnboundedSender<String>) -> T + Send + 'static,
) -> (
    std::thread::JoinHandle<T>,
    async_mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = async_mpsc::unbounded_channel();
    (std::thread::spawn(move || script(tx)), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_pub_to_ferromq_sub() {
    for (transport, ferromq_binds) in CASES {
        timeout(TEST_TIMEOUT, async {
            let narrow = Sub::new();
            let everything = Sub::new();
            for prefix in ["A", "AB", "C", "END", "sync"] {
                narrow.subscribe(prefix);
            }
            everything.subscribe("");
            let addr = if ferromq_binds {
                let narrow_endpoint = narrow.bind(transport.bind_addr()).unwrap();
                let everything_endpoint = everything.bind(transport.bind_addr()).unwrap();
                format!("{narrow_endpoint} {everything_endpoint}")
            } else {
                transport.bind_addr()
            };
            let heard = Arc::new(AtomicBool::new(false));
            let (go_tx, go_rx) = mpsc::channel::<&'static [&'static str]>();
            let (endpoint_tx, mut endpoint_rx) = async_mpsc::unbounded_channel();
            let libzmq_heard = heard.clone();
            let libzmq = std::thread::spawn(move || {
                let ctx = zmq::Context::new();
                let publisher = libzmq_socket(&ctx, zmq::PUB);
                if ferromq_binds {
                    for endpoint in addr.split(' ') {
                        publisher.connect(endpoint).unwrap();
                    }
                    endpoint_tx.send(String::new()).unwrap();
                } else {
                    endpoint_tx
                        .send(libzmq_attach(&publisher, true, &addr))
                        .unwrap();
                }
                // libzmq's PUB cannot tell when subscriptions arrived: probe until heard.
                while let Ok(script) = go_rx.recv() {
                    while !libzmq_heard.swap(false, Ordering::SeqCst) {
                        publisher.send(script[0], 0).unwrap();
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    for message in &script[1..] {
                        let frames: Vec<&str> = message.split('|').collect();
                        publisher.send_multipart(frames, 0).unwrap();
                    }
                }
            });
            let endpoint = endpoint_rx.recv().await.unwrap();
            if !ferromq_binds {
                narrow.connect(endpoint.as_str()).unwrap();
                everything.connect(endpoint.as_str()).unwrap();
            }
            go_tx
                .send(&["sync", "A1", "B1", "AB2", "C3", "C|x|", "D4", "", "END"])
                .unwrap();
            // Both subscribers must hear the probe before the script runs.
            assert_eq!(narrow.recv().await.unwrap().frames()[0], "sync");
            assert_eq!(everything.recv().await.unwrap().frames()[0], "sync");
            heard.store(true, Ordering::SeqCst);
            let mut got = Vec::new();
            loop {
                let message = recv_skipping(&narrow, "sync").await;
                if message == "END" {
                    break;
                }
                got.push(message);
            }
            assert_eq!(got, ["A1", "AB2", "C3", "C|x|"], "{transport:?}");
            let mut all = Vec::new();
            loop {
                let message = recv_skipping(&everything, "sync").await;
                if message == "END" {
                    break;
                }
                all.push(message);
            }
            assert_eq!(all, ["A1", "B1", "AB2", "C3", "C|x|", "D4", ""]);

            narrow.unsubscribe("C");
            narrow.subscribe("E");
            go_tx.send(&["E-sync", "C4", "E5", "END"]).unwrap();
            assert_eq!(recv_skipping(&narrow, "sync").await, "E-sync");
            heard.store(true, Ordering::SeqCst);
            assert_eq!(recv_skipping(&narrow, "E-sync").await, "E5");
            assert_eq!(recv_skipping(&narrow, "E-sync").await, "END");
            drop(go_tx);
            libzmq.join().unwrap();
        })
        .await
        .unwrap_or_else(|_| panic!("timed out: {transport:?}, ferromq binds: {ferromq_binds}"));
    }
}

/// Publishes `probe` until the flag says a subscriber got it (ferromq's PUB cannot see when
/// a libzmq subscriber's later subscriptions arrived either).
async fn probe_until_heard(publisher: &Pub, probe: &str, heard: &AtomicBool) {
    while !heard.swap(false, Ordering::SeqCst) {
        publisher.send(probe).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferromq_pub_to_libzmq_sub() {
    for (transport, ferromq_binds) in CASES {
        timeout(TEST_TIMEOUT, async {
            let publisher = Pub::new();
            let addr = if ferromq_binds {
                publisher.bind(transport.bind_addr()).unwrap().to_string()
            } else {
                transport.bind_addr()
            };
            let heard = Arc::new(AtomicBool::new(false));
            let libzmq_heard = heard.clone();
            let (libzmq, mut events) = libzmq_thread(move |tx| {
                let ctx = zmq::Context::new();
                let sub = libzmq_socket(&ctx, zmq::SUB);
                let everything = libzmq_socket(&ctx, zmq::SUB);
                let endpoint = libzmq_attach(&sub, !ferromq_binds, &addr);
                if ferromq_binds {
                    everything.connect(&endpoint).unwrap();
                    tx.send(endpoint).unwrap();
                } else {
                    let second = libzmq_attach(&everything, true, &transport.bind_addr());
                    tx.send(format!("{endpoint} {second}")).unwrap();
                }
                // A libzmq socket that binds attaches a new peer (and only then sends it the
                // subscriptions) when the application next calls into the socket: poll (seen
                // with 4.3.4). Subscribe until the probe sent after the last prefix arrives;
                // libzmq counts the repeats.
                let mut rounds = 0;
                loop {
                    everything.poll(zmq::POLLIN, 0).unwrap();
                    for prefix in ["A", "AB", "C", "END"] {
                        sub.set_subscribe(prefix.as_bytes()).unwrap();
                    }
                    everything.set_subscribe(b"").unwrap();
                    rounds += 1;
                    if sub.poll(zmq::POLLIN, 20).unwrap() > 0 {
                        assert_eq!(libzmq_recv_text(&sub), "END-sync");
                        break;
                    }
                }
                let until_end = |socket: &zmq::Socket, skip: &str| {
                    let mut got = Vec::new();
                    loop {
                        let message = libzmq_recv_text(socket);
                        if message == skip {
                            libzmq_heard.store(true, Ordering::SeqCst);
                        } else if message == "END" {
                            return got;
                        } else {
                            got.push(message);
                        }
                    }
                };
                let narrow_got = until_end(&sub, "END-sync");
                let everything_got = until_end(&everything, "END-sync");
                tx.send(narrow_got.join(",")).unwrap();
                tx.send(everything_got.join(",")).unwrap();
                for _ in 0..rounds {
                    sub.set_unsubscribe(b"C").unwrap();
                }
                sub.set_subscribe(b"E").unwrap();
                tx.send(until_end(&sub, "E-sync").join(",")).unwrap();
            });
            let endpoints = events.recv().await.unwrap();
            if !ferromq_binds {
                for endpoint in endpoints.split(' ') {
                    publisher.connect(endpoint).unwrap();
                }
            }
            publisher
                .wait_for_subscribers(2)
                .await
                .expect("the publisher is open");
            // The END subscription comes last: once END-sync is heard, all the others are in.
            probe_until_heard(&publisher, "END-sync", &heard).await;
            for message in ["A1", "B1", "AB2", "C3", "D4", ""] {
                publisher.send(message).await.unwrap();
            }
            let multipart: Message = ["C", "x", ""].into_iter().collect();
            publisher.send(multipart).await.unwrap();
            publisher.send("END").await.unwrap();
            let narrow = events.recv().await.unwrap();
            assert_eq!(narrow, "A1,AB2,C3,C|x|", "{transport:?}");
            let everything = events.recv().await.unwrap();
            assert_eq!(everything, "A1,B1,AB2,C3,D4,,C|x|");

            // Every END-sync was read before the results came, so no stale flag remains.
            heard.store(false, Ordering::SeqCst);
            probe_until_heard(&publisher, "E-sync", &heard).await;
            for message in ["C4", "E5", "END"] {
                publisher.send(message).await.unwrap();
            }
            assert_eq!(events.recv().await.unwrap(), "E5");
            libzmq.join().unwrap();
            assert_eq!(publisher.dropped_messages(), 0);
        })
        .await
        .unwrap_or_else(|_| panic!("timed out: {transport:?}, ferromq binds: {ferromq_binds}"));
    }
}

/// libzmq's SUB (SUBSCRIBE/CANCEL commands) and XSUB (`0x01 prefix` data messages, plus a
/// message sent upstream) talking to a ferromq XPUB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_sub_and_xsub_to_ferromq_xpub() {
    for (transport, ferromq_binds) in CASES {
        timeout(TEST_TIMEOUT, async {
            let xpub = XPub::new();
            let addr = if ferromq_binds {
                xpub.bind(transport.bind_addr()).unwrap().to_string()
            } else {
                transport.bind_addr()
            };
            let (step_tx, step_rx) = mpsc::channel::<()>();
            let (libzmq, mut events) = libzmq_thread(move |tx| {
                let ctx = zmq::Context::new();
                let xsub = libzmq_socket(&ctx, zmq::XSUB);
                tx.send(libzmq_attach(&xsub, !ferromq_binds, &addr))
                    .unwrap();
                // Repeat until heard: a bound libzmq XSUB drops what it is sent before the
                // peer's pipe is attached (on its next call, see above). It counts the
                // repeats, so cancel as often.
                let mut rounds = 0;
                while step_rx.recv_timeout(Duration::from_millis(20)).is_err() {
                    xsub.send(&b"\x01A"[..], 0).unwrap();
                    rounds += 1;
                }
                xsub.send_multipart(["up", "stream"], 0).unwrap();
                tx.send(libzmq_recv_text(&xsub)).unwrap();
                for _ in 0..rounds {
                    xsub.send(&b"\x00A"[..], 0).unwrap();
                }
                step_rx.recv().unwrap();
                // A SUB sends commands rather than data messages.
                let sub = libzmq_socket(&ctx, zmq::SUB);
                let endpoint = if ferromq_binds {
                    libzmq_attach(&sub, false, &addr)
                } else {
                    libzmq_attach(&sub, true, &transport.bind_addr())
                };
                tx.send(endpoint).unwrap();
                let mut rounds = 0;
                while step_rx.recv_timeout(Duration::from_millis(20)).is_err() {
                    sub.poll(zmq::POLLIN, 0).unwrap();
                    sub.set_subscribe(b"S").unwrap();
                    rounds += 1;
                }
                for _ in 0..rounds {
                    sub.set_unsubscribe(b"S").unwrap();
                }
                step_rx.recv().unwrap();
            });
            let endpoint = events.recv().await.unwrap();
            if !ferromq_binds {
                xpub.connect(endpoint.as_str()).unwrap();
            }
            let next = async || xpub.recv().await.unwrap().frames()[0].clone();
            assert_eq!(&next().await[..], b"\x01A");
            step_tx.send(()).unwrap();
            assert_eq!(text(&xpub.recv().await.unwrap()), "up|stream");
            xpub.send("B1").await.unwrap();
            xpub.send(Message::from_iter(["A1", "more"])).await.unwrap();
            assert_eq!(events.recv().await.unwrap(), "A1|more");
            assert_eq!(&next().await[..], b"\x00A");
            step_tx.send(()).unwrap();
            let sub_endpoint = events.recv().await.unwrap();
            if !ferromq_binds {
                xpub.connect(sub_endpoint.as_str()).unwrap();
            }
            assert_eq!(&next().await[..], b"\x01S");
            step_tx.send(()).unwrap();
            assert_eq!(&next().await[..], b"\x00S");
            step_tx.send(()).unwrap();
            libzmq.join().unwrap();
        })
        .await
        .unwrap_or_else(|_| panic!("timed out: {transport:?}, ferromq binds: {ferromq_binds}"));
    }
}

/// ferromq's XSUB subscribing through a libzmq XPUB, which shows the subscriptions as
/// `1`/`0` + prefix, receives the matching messages and gets upstream messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferromq_xsub_to_libzmq_xpub() {
    for (transport, ferromq_binds) in CASES {
        timeout(TEST_TIMEOUT, async {
            let xsub = XSub::new();
            let addr = if ferromq_binds {
                xsub.bind(transport.bind_addr()).unwrap().to_string()
            } else {
                transport.bind_addr()
            };
            let (libzmq, mut events) = libzmq_thread(move |tx| {
                let ctx = zmq::Context::new();
                let xpub = libzmq_socket(&ctx, zmq::XPUB);
                tx.send(libzmq_attach(&xpub, !ferromq_binds, &addr))
                    .unwrap();
                let notification = xpub.recv_bytes(0).unwrap();
                tx.send(format!("{notification:?}")).unwrap();
                for message in ["B1", "A1", "AB2", "C3"] {
                    xpub.send(message, 0).unwrap();
                }
                tx.send(libzmq_recv_text(&xpub)).unwrap();
                tx.send(format!("{:?}", xpub.recv_bytes(0).unwrap()))
                    .unwrap();
            });
            let endpoint = events.recv().await.unwrap();
            xsub.send(&b"\x01A"[..]).await.unwrap();
            if !ferromq_binds {
                xsub.connect(endpoint.as_str()).unwrap();
            }
            // Sent before the connection existed, the subscription is replayed on attach.
            assert_eq!(
                events.recv().await.unwrap(),
                format!("{:?}", b"\x01A".to_vec())
            );
            assert_eq!(text(&xsub.recv().await.unwrap()), "A1");
            assert_eq!(text(&xsub.recv().await.unwrap()), "AB2");
            xsub.send(Message::from_iter(["up", "stream"]))
                .await
                .unwrap();
            assert_eq!(events.recv().await.unwrap(), "up|stream");
            xsub.send(&b"\x00A"[..]).await.unwrap();
            assert_eq!(
                events.recv().await.unwrap(),
                format!("{:?}", b"\x00A".to_vec())
            );
            libzmq.join().unwrap();
            assert_eq!(xsub.dropped_messages(), 0);
        })
        .await
        .unwrap_or_else(|_| panic!("timed out: {transport:?}, ferromq binds: {ferromq_binds}"));
    }
}
