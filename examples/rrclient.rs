//! The Guide's request–reply client and worker for a broker ("rrclient", "rrworker"): the
//! client is a plain REQ that connects to the broker's frontend, the worker a plain REP that
//! connects to its backend. Neither knows there is a broker; with one in between, any number
//! of clients share any number of workers. Run them against `rr_broker` or `msgqueue`.
//!
//! ```text
//! cargo run --example rrclient                                          # demo, exits 0
//! cargo run --example msgqueue -- tcp://*:5559 tcp://*:5560             # the broker
//! cargo run --example rrclient -- worker tcp://localhost:5560           # workers
//! cargo run --example rrclient -- client tcp://localhost:5559           # clients
//! ```
//!
//! The demo runs its own broker ([`ferromq::proxy`] between a ROUTER and a DEALER), two
//! workers and three clients in one process.

use ferromq::{Dealer, Rep, Req, Router};
use futures::future::try_join_all;
use std::convert::Infallible;

/// Requests each client sends, as in the Guide.
const REQUESTS: usize = 10;

/// The Guide's client: sends "Hello" `requests` times, waiting for each reply; returns them.
pub async fn client(frontend: &str, requests: usize) -> ferromq::Result<Vec<String>> {
    let requester = Req::new();
    requester.connect(frontend)?;
    let mut replies = Vec::with_capacity(requests);
    for request in 0..requests {
        requester.send("Hello").await?;
        let reply = requester.recv().await?;
        let reply = String::from_utf8_lossy(&reply.frames()[0]).into_owned();
        println!("Received reply {request} [{reply}]");
        replies.push(reply);
    }
    Ok(replies)
}

/// The Guide's worker: answers every request with "World".
pub async fn worker(backend: &str) -> ferromq::Result<Infallible> {
    let responder = Rep::new();
    responder.connect(backend)?;
    loop {
        let request = responder.recv().await?;
        println!(
            "Received request: [{}]",
            String::from_utf8_lossy(&request.frames()[0])
        );
        responder.send("World").await?;
    }
}

/// A broker, two workers and `clients` clients sending `requests` requests each; returns
/// every client's replies.
pub async fn demo(clients: usize, requests: usize) -> ferromq::Result<Vec<Vec<String>>> {
    let frontend = Router::new();
    let frontend_endpoint = frontend.bind("tcp://127.0.0.1:0")?.to_string();
    let backend = Dealer::new();
    let backend_endpoint = backend.bind("tcp://127.0.0.1:0")?.to_string();
    let clients = try_join_all((0..clients).map(|_| client(&frontend_endpoint, requests)));
    tokio::select! {
        Err(e) = ferromq::proxy(&frontend, &backend, None) => Err(e),
        Err(e) = worker(&backend_endpoint) => Err(e),
        Err(e) = worker(&backend_endpoint) => Err(e),
        replies = clients => replies,
    }
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
            demo(3, REQUESTS).await?;
        }
        ["client", frontend] => {
            client(frontend, REQUESTS).await?;
        }
        ["worker", backend] => {
            let never = worker(backend).await?;
            match never {}
        }
        _ => {
            eprintln!("usage: rrclient [client <frontend> | worker <backend>]");
            std::process::exit(2);
        }
    }
    Ok(())
}
