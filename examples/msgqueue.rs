//! The Guide's message queue broker ("msgqueue"): a ROUTER frontend for REQ clients, a
//! DEALER backend for REP workers, and [`ferromq::proxy`] between them — the broker of
//! `rr_broker`, as a program of its own that runs until killed.
//!
//! ```text
//! cargo run --example msgqueue                                   # demo, exits 0
//! cargo run --example msgqueue -- tcp://*:5559 tcp://*:5560      # broker, forever
//! ```
//!
//! With endpoints, the frontend binds the first and the backend the second; `rrclient`'s
//! `client` and `worker` roles (or the Guide's C rrclient and rrworker) connect to them.
//! The ROUTER puts each client's routing id in front of its request, the DEALER sends
//! requests round-robin to the workers and fair-queues their replies, and the ROUTER sends
//! each reply to the client its routing id names.

use ferromq::{Dealer, Rep, Req, Router};
use futures::future::try_join_all;
use std::convert::Infallible;

/// Binds the broker's two sockets; returns them and their endpoints.
pub fn bind(frontend: &str, backend: &str) -> ferromq::Result<(Router, Dealer, String, String)> {
    let router = Router::new();
    let frontend = router.bind(frontend)?.to_string();
    let dealer = Dealer::new();
    let backend = dealer.bind(backend)?.to_string();
    Ok((router, dealer, frontend, backend))
}

/// An echo worker: replies to each request with the request and its own name.
async fn worker(backend: &str, name: &str) -> ferromq::Result<Infallible> {
    let responder = Rep::new();
    responder.connect(backend)?;
    loop {
        let request = responder.recv().await?;
        let text = String::from_utf8_lossy(&request.frames()[0]).into_owned();
        responder.send(format!("{text} by {name}")).await?;
    }
}

/// A client sending numbered requests; returns the replies.
async fn client(frontend: &str, name: &str, requests: usize) -> ferromq::Result<Vec<String>> {
    let requester = Req::new();
    requester.connect(frontend)?;
    let mut replies = Vec::with_capacity(requests);
    for i in 0..requests {
        requester.send(format!("{name}/{i}")).await?;
        let reply = requester.recv().await?;
        replies.push(String::from_utf8_lossy(&reply.frames()[0]).into_owned());
    }
    Ok(replies)
}

/// The broker with three workers and `clients` clients of `requests` requests each;
/// returns each client's replies, in order.
pub async fn demo(clients: usize, requests: usize) -> ferromq::Result<Vec<Vec<String>>> {
    let (frontend, backend, frontend_endpoint, backend_endpoint) =
        bind("tcp://127.0.0.1:0", "tcp://127.0.0.1:0")?;
    let names: Vec<String> = (0..clients).map(|c| format!("client-{c}")).collect();
    let clients = try_join_all(
        names
            .iter()
            .map(|name| client(&frontend_endpoint, name, requests)),
    );
    tokio::select! {
        Err(e) = ferromq::proxy(&frontend, &backend, None) => Err(e),
        Err(e) = worker(&backend_endpoint, "worker-0") => Err(e),
        Err(e) = worker(&backend_endpoint, "worker-1") => Err(e),
        Err(e) = worker(&backend_endpoint, "worker-2") => Err(e),
        replies = clients => replies,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ferromq::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            for (c, replies) in demo(3, 5).await?.into_iter().enumerate() {
                println!("client-{c}: {}", replies.join(", "));
            }
        }
        [frontend, backend] => {
            let (frontend, backend, frontend_endpoint, backend_endpoint) = bind(frontend, backend)?;
            println!("clients connect to {frontend_endpoint}, workers to {backend_endpoint}");
            let never = ferromq::proxy(&frontend, &backend, None).await?;
            match never {}
        }
        _ => {
            eprintln!("usage: msgqueue [<frontend-endpoint> <backend-endpoint>]");
            std::process::exit(2);
        }
    }
    Ok(())
}
