//! The Guide's node coordination ("syncpub", "syncsub"), blocking: a publisher that must not
//! start before a known number of subscribers is there. Each subscriber connects its SUB,
//! then says so over a REQ socket; the publisher's REP collects one such request per expected
//! subscriber, answers them, publishes its updates and ends with "END".
//!
//! ```text
//! cargo run --example syncpub                                               # demo, exits 0
//! cargo run --example syncpub -- pub tcp://*:5561 tcp://*:5562 10           # wait for 10
//! cargo run --example syncpub -- sub tcp://localhost:5561 tcp://localhost:5562   # × 10
//! ```
//!
//! A subscriber's sync request and its subscription travel on different connections, so the
//! request can arrive first. The Guide's subscriber sleeps a second to make that unlikely;
//! here the publisher, having heard from every subscriber, also waits until it holds that
//! many subscriptions ([`Pub::wait_for_subscribers`]), which makes it certain.
//!
//! The publisher's send high-water mark is off, so that a subscriber slower than the
//! publisher gets every update instead of losing those past the default 1000 queued.

use ferromq::SocketOptions;
use ferromq::blocking::{Pub, Rep, Req, Sub};
use std::time::Duration;

/// Bounds every wait.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The message that ends the stream.
const END: &str = "END";

fn options() -> SocketOptions {
    let mut options = SocketOptions::default();
    options.recv_timeout = Some(TIMEOUT);
    options.send_timeout = Some(TIMEOUT);
    options
}

/// The publisher, bound: waits for `subscribers` sync requests and subscriptions, then
/// publishes `updates` updates and "END". Returns how many it published.
pub fn publisher(
    publisher: &Pub,
    syncservice: &Rep,
    subscribers: usize,
    updates: usize,
) -> ferromq::Result<usize> {
    println!("Waiting for {subscribers} subscribers");
    for _ in 0..subscribers {
        syncservice.recv()?;
        syncservice.send("")?;
    }
    publisher.wait_for_subscribers(subscribers, Some(TIMEOUT))?;
    println!("Broadcasting messages");
    for _ in 0..updates {
        publisher.send("Rhubarb")?;
    }
    publisher.send(END)?;
    Ok(updates)
}

/// A subscriber: connects, subscribes to everything, syncs with the publisher and counts
/// updates until "END".
pub fn subscriber(publisher: &str, syncservice: &str) -> ferromq::Result<usize> {
    let subscriber = Sub::with_options(options())?;
    subscriber.subscribe("");
    subscriber.connect(publisher)?;
    let syncclient = Req::with_options(options())?;
    syncclient.connect(syncservice)?;
    syncclient.send("")?;
    syncclient.recv()?;
    let mut updates = 0;
    while subscriber.recv()?.frames()[0] != END {
        updates += 1;
    }
    println!("Received {updates} updates");
    Ok(updates)
}

fn bind(publish_on: &str, sync_on: &str) -> ferromq::Result<(Pub, Rep, String, String)> {
    let mut publisher_options = options();
    publisher_options.sndhwm = 0;
    let publisher = Pub::with_options(publisher_options)?;
    let publish_endpoint = publisher.bind(publish_on)?.to_string();
    let syncservice = Rep::with_options(options())?;
    let sync_endpoint = syncservice.bind(sync_on)?.to_string();
    Ok((publisher, syncservice, publish_endpoint, sync_endpoint))
}

/// The publisher and `subscribers` subscribers, each on its own thread; returns how many
/// updates each subscriber received.
pub fn demo(subscribers: usize, updates: usize) -> ferromq::Result<Vec<usize>> {
    let (publisher_socket, syncservice, publish_endpoint, sync_endpoint) =
        bind("tcp://127.0.0.1:0", "tcp://127.0.0.1:0")?;
    std::thread::scope(|scope| {
        let receiving: Vec<_> = (0..subscribers)
            .map(|_| scope.spawn(|| subscriber(&publish_endpoint, &sync_endpoint)))
            .collect();
        let published = publisher(&publisher_socket, &syncservice, subscribers, updates);
        let received: ferromq::Result<Vec<usize>> = receiving
            .into_iter()
            .map(|r| r.join().expect("subscriber thread panicked"))
            .collect();
        published?;
        received
    })
}

fn main() -> ferromq::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {
            demo(3, 10_000)?;
        }
        ["pub", publish_on, sync_on, subscribers] => {
            let subscribers = subscribers.parse().unwrap_or(10);
            let (publisher_socket, syncservice, _, _) = bind(publish_on, sync_on)?;
            publisher(&publisher_socket, &syncservice, subscribers, 1_000_000)?;
            publisher_socket.close()?; // waits until every update is written
        }
        ["sub", publisher, syncservice] => {
            subscriber(publisher, syncservice)?;
        }
        _ => {
            eprintln!(
                "usage: syncpub [pub <pub-bind> <sync-bind> <subscribers> | sub <pub> <sync>]"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}
