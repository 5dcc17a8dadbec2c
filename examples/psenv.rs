//! The Guide's pub–sub message envelopes ("psenvpub", "psenvsub"): the publisher sends each
//! update as two frames, a key and the data, and the subscriber subscribes to a key. A
//! subscription is matched against the first frame only, so the key frame is the envelope
//! and the data frame can hold anything, even bytes that look like another key.
//!
//! ```text
//! cargo run --example psenv                                    # demo, exits 0
//! cargo run --example psenv -- pub tcp://*:5563                # publish A and B forever
//! cargo run --example psenv -- sub tcp://localhost:5563        # print the B updates
//! ```
//!
//! The Guide's publisher sends a pair every second; so does `pub` here, for a person to
//! watch. The demo publishes as soon as the subscription has arrived.

use ferromq::{Error, Message, Pub, Sub};
use std::time::Duration;

/// The key the subscriber wants.
pub const KEY: &str = "B";

/// Sends `count` (`None`: forever) rounds of one "A" and one "B" update, waiting `pause`
/// between rounds.
pub async fn publish(
    publisher: &Pub,
    count: Option<usize>,
    pause: Duration,
) -> ferromq::Result<()> {
    let mut round = 0;
    while count.is_none_or(|n| round < n) {
        publisher
            .send(Message::from_iter(["A", "We don't want to see this"]))
            .await?;
        publisher
            .send(Message::from_iter([
                KEY.to_owned(),
                format!("We would like to see this ({round})"),
            ]))
            .await?;
        round += 1;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(())
}

/// Receives `count` (`None`: forever) updates; returns them as (key, data).
pub async fn subscribe(
    subscriber: &Sub,
    count: Option<usize>,
) -> ferromq::Result<Vec<(String, String)>> {
    let mut updates = Vec::new();
    while count.is_none_or(|n| updates.len() < n) {
        let message = subscriber.recv().await?;
        let [key, data] = message.frames() else {
            return Err(Error::MalformedMessage("not a key and a data frame"));
        };
        let (key, data) = (
            String::from_utf8_lossy(key).into_owned(),
            String::from_utf8_lossy(data).into_owned(),
        );
        println!("[{key}] {data}");
        updates.push((key, data));
    }
    Ok(updates)
}

/// A publisher and a subscriber to [`KEY`] on a fresh port; the publisher sends `rounds`
/// A/B pairs once the subscription has arrived. Returns what the subscriber received.
pub async fn demo(rounds: usize) -> ferromq::Result<Vec<(String, String)>> {
    let publisher = Pub::new();
    let endpoint = publisher.bind("tcp://127.0.0.1:0")?;
    let subscriber = Sub::new();
    subscriber.subscribe(KEY);
    subscriber.connect(&endpoint)?;
    publisher.wait_for_subscriptions(1).await?;
    let (_, updates) = tokio::try_join!(
        publish(&publisher, Some(rounds), Duration::ZERO),
        subscribe(&subscriber, Some(rounds)),
    )?;
    Ok(updates)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ferromq::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {
            demo(5).await?;
        }
        ["pub", endpoint] => {
            let publisher = Pub::new();
            publisher.bind(*endpoint)?;
            publish(&publisher, None, Duration::from_secs(1)).await?;
        }
        ["sub", endpoint] => {
            let subscriber = Sub::new();
            subscriber.subscribe(KEY);
            subscriber.connect(*endpoint)?;
            subscribe(&subscriber, None).await?;
        }
        _ => {
            eprintln!("usage: psenv [pub <endpoint> | sub <endpoint>]");
            std::process::exit(2);
        }
    }
    Ok(())
}
