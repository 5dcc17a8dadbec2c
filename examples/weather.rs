//! The Guide's weather update server and client ("wuserver", "wuclient"), blocking: a PUB
//! socket publishes `"<zipcode> <temperature> <relhumidity>"` updates for random zip codes
//! as fast as it can, and a SUB socket subscribed to one zip code receives only that zip's
//! updates — the filtering happens at the publisher, which sends each subscriber only what
//! matches its subscriptions.
//!
//! ```text
//! cargo run --example weather                                       # demo, exits 0
//! cargo run --example weather -- server tcp://*:5556                # publish forever
//! cargo run --example weather -- client tcp://localhost:5556 10001  # average 100 updates
//! ```
//!
//! The subscription is the zip code followed by a space, so that "1000" does not also match
//! "10001". Both roles interoperate with the Guide's C programs.

use ferromq::blocking::{Pub, Sub};
use ferromq::{Error, SocketOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Bounds every wait of the demo and of the client.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Updates the client averages, as in the Guide.
const UPDATES: usize = 100;
/// Zip codes the demo's server draws from: few, so that the client's zip comes up often.
const DEMO_ZIPS: u32 = 10;

/// A small xorshift generator, so the example needs no `rand`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n)) as u32
    }
}

/// Publishes random updates for zip codes `10000..10000 + zips` until `stop` is set (never,
/// when it stays unset); returns how many it published.
pub fn server(publisher: &Pub, zips: u32, stop: &AtomicBool) -> ferromq::Result<u64> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut published = 0;
    while !stop.load(Ordering::Relaxed) {
        let zipcode = 10_000 + rng.below(zips);
        let temperature = rng.below(215) as i32 - 80;
        let relhumidity = rng.below(50) + 10;
        publisher.send(format!("{zipcode:05} {temperature} {relhumidity}"))?;
        published += 1;
    }
    Ok(published)
}

/// Receives `updates` updates on a subscriber subscribed to one zip code; returns them and
/// their average temperature.
pub fn client(subscriber: &Sub, updates: usize) -> ferromq::Result<(Vec<String>, f64)> {
    let mut received = Vec::with_capacity(updates);
    let mut total_temperature = 0i64;
    for _ in 0..updates {
        let update = subscriber.recv()?;
        let text = String::from_utf8_lossy(&update.frames()[0]).into_owned();
        let temperature: i64 = text
            .split(' ')
            .nth(1)
            .and_then(|t| t.parse().ok())
            .ok_or(Error::MalformedMessage("not a weather update"))?;
        total_temperature += temperature;
        received.push(text);
    }
    let average = total_temperature as f64 / updates.max(1) as f64;
    Ok((received, average))
}

/// Server and client on a fresh port; the server publishes from a thread until the client
/// has `updates` updates for zip code 10001. Returns the client's updates.
pub fn demo(updates: usize) -> ferromq::Result<Vec<String>> {
    let mut options = SocketOptions::default();
    options.recv_timeout = Some(TIMEOUT);
    options.send_timeout = Some(TIMEOUT);
    let publisher = Pub::with_options(options.clone())?;
    let endpoint = publisher.bind("tcp://127.0.0.1:0")?;
    let subscriber = Sub::with_options(options)?;
    subscriber.connect(&endpoint)?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Subscribe before the server starts, and let the server start once the subscription
        // has arrived: no update the client wants is published before it can receive it.
        subscriber.subscribe("10001 ");
        publisher.wait_for_subscribers(1, Some(TIMEOUT))?;
        let publishing = scope.spawn(|| server(&publisher, DEMO_ZIPS, &stop));
        let result = client(&subscriber, updates);
        stop.store(true, Ordering::Relaxed);
        let published = publishing.join().expect("server thread panicked")?;
        let (received, average) = result?;
        println!(
            "Average temperature for zipcode '10001' was {average:.1}F ({} of {published} updates)",
            received.len()
        );
        Ok(received)
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
            demo(UPDATES)?;
        }
        ["server", endpoint] => {
            let publisher = Pub::new();
            println!("Publishing on {}", publisher.bind(*endpoint)?);
            server(&publisher, 100_000, &AtomicBool::new(false))?;
        }
        ["client", endpoint, rest @ ..] if rest.len() <= 1 => {
            let zipcode = rest.first().copied().unwrap_or("10001");
            let mut options = SocketOptions::default();
            options.recv_timeout = Some(TIMEOUT);
            let subscriber = Sub::with_options(options)?;
            println!("Collecting updates from weather server…");
            subscriber.subscribe(format!("{zipcode} "));
            subscriber.connect(*endpoint)?;
            let (_, average) = client(&subscriber, UPDATES)?;
            println!("Average temperature for zipcode '{zipcode}' was {average:.1}F");
        }
        _ => {
            eprintln!("usage: weather [server <endpoint> | client <endpoint> [zipcode]]");
            std::process::exit(2);
        }
    }
    Ok(())
}
