//! The Guide's publish–subscribe forwarder: an XSUB facing the publishers, an XPUB facing the
//! subscribers, and a loop moving messages down and subscriptions up.
//!
//! ```text
//! cargo run --example pubsub_proxy -- <xsub-endpoint> <xpub-endpoint>   # forward forever
//! cargo run --example pubsub_proxy                                      # self-contained demo
//! ```
//!
//! With endpoints, the XSUB binds the first (publishers connect to it) and the XPUB binds the
//! second (subscribers connect to it). Without, a demo runs a publisher, the proxy and two
//! subscribers in one process and exits.
//!
//! The forwarding is [`ferromq::proxy`]: data from the publishers to the subscribers, and
//! subscriptions (and anything else subscribers send) from the subscribers to the publishers.
//! Neither direction's send waits, so one can never hold up the other.

use ferromq::{Pub, Sub, XPub, XSub};
use std::convert::Infallible;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [] => demo().await,
        [frontend, backend] => serve(frontend, backend).await,
        _ => {
            eprintln!("usage: pubsub_proxy [<xsub-endpoint> <xpub-endpoint>]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pubsub_proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(frontend_endpoint: &str, backend_endpoint: &str) -> ferromq::Result<()> {
    let frontend = XSub::new();
    println!(
        "publishers connect to {}",
        frontend.bind(frontend_endpoint)?
    );
    let backend = XPub::new();
    println!("subscribers connect to {}", backend.bind(backend_endpoint)?);
    let never: Infallible = ferromq::proxy(&frontend, &backend, None).await?;
    match never {}
}

async fn demo() -> ferromq::Result<()> {
    let publisher = Pub::new();
    let upstream = publisher.bind("tcp://127.0.0.1:0")?;
    let frontend = XSub::new();
    frontend.connect(&upstream)?;
    let backend = XPub::new();
    let downstream = backend.bind("tcp://127.0.0.1:0")?;

    let weather = Sub::new();
    weather.subscribe("weather/");
    weather.connect(&downstream)?;
    let sport = Sub::new();
    sport.subscribe("sport/");
    sport.connect(&downstream)?;

    // Like the Guide's weather server, the publisher publishes periodically: a subscriber
    // joining through the proxy gets the updates from the moment its subscription arrived.
    let publish = async {
        for tick in 0u64.. {
            publisher.send(format!("weather/paris {tick}")).await?;
            publisher.send(format!("sport/cup {tick}")).await?;
            publisher.send(format!("politics/none {tick}")).await?;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        ferromq::Result::Ok(())
    };
    let receive = async {
        let weather_update = weather.recv().await?;
        let sport_update = sport.recv().await?;
        println!("weather subscriber got {:?}", weather_update.frames()[0]);
        println!("sport subscriber got {:?}", sport_update.frames()[0]);
        ferromq::Result::Ok(())
    };
    tokio::select! {
        Err(e) = ferromq::proxy(&frontend, &backend, None) => Err(e),
        result = publish => result,
        result = receive => result,
    }
}
