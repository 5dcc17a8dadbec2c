//! The Guide's asynchronous client/server ("asyncsrv"): DEALER clients send requests without
//! waiting for replies; the server's ROUTER frontend takes them from all clients, the built-in
//! [`ferromq::proxy`] passes them to a DEALER backend, and worker tasks (DEALERs connected to
//! the backend) answer each request with any number of replies — zero, one or several — that
//! find their way back to the right client by its routing id.
//!
//! ```text
//! cargo run --example asyncsrv                                        # demo, exits 0
//! cargo run --example asyncsrv -- server tcp://*:5570                 # server, 5 workers
//! cargo run --example asyncsrv -- client tcp://localhost:5570 alice   # a request a second
//! ```
//!
//! A worker gets `[client, request]` (the frontend's routing id, then the client's frame) and
//! sends `[client, reply]`. The Guide's worker replies a random 0–4 times; here the number is
//! `request number % 4`, so the demo knows how many replies each client must get. The backend
//! is on `127.0.0.1` (the Guide's is `inproc`, which ferromq does not have).

use bytes::Bytes;
use ferromq::{Dealer, Error, Message, Router, SocketOptions};
use futures::future::{select_all, try_join_all};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Worker tasks the server runs, as in the Guide.
pub const WORKERS: usize = 5;

/// How many replies a worker sends to request number `n`.
pub fn replies_for(n: usize) -> usize {
    n % 4
}

/// A client named `name`: sends `requests` requests ("request #n from name"; `None`: forever), each
/// `pause` after the last, while receiving replies, until it has every reply they are owed.
/// Returns the replies.
pub async fn client(
    frontend: &str,
    name: &str,
    requests: Option<usize>,
    pause: Duration,
) -> ferromq::Result<Vec<String>> {
    let mut options = SocketOptions::default();
    options.routing_id = Some(Bytes::copy_from_slice(name.as_bytes()));
    let dealer = Dealer::with_options(options)?;
    dealer.connect(frontend)?;
    let owed: Option<usize> = requests.map(|r| (0..r).map(replies_for).sum());
    let send = async {
        for n in (0..).take_while(|n| requests.is_none_or(|r| *n < r)) {
            dealer.send(format!("request #{n} from {name}")).await?;
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        Ok::<_, Error>(())
    };
    let receive = async {
        let mut replies = Vec::new();
        while owed.is_none_or(|owed| replies.len() < owed) {
            let reply = dealer.recv().await?;
            let reply = String::from_utf8_lossy(&reply.frames()[0]).into_owned();
            println!("{name}: {reply}");
            replies.push(reply);
        }
        Ok(replies)
    };
    let ((), replies) = tokio::try_join!(send, receive)?;
    Ok(replies)
}

/// A worker: answers each `[client, "request #n …"]` with [`replies_for`]`(n)` replies.
pub async fn worker(backend: &str) -> ferromq::Result<Infallible> {
    let dealer = Dealer::new();
    dealer.connect(backend)?;
    loop {
        let request = dealer.recv().await?;
        let [client, content] = request.frames() else {
            return Err(Error::MalformedMessage("not [client, request]"));
        };
        let content = String::from_utf8_lossy(content);
        let n: usize = content
            .strip_prefix("request #")
            .and_then(|c| c.split(' ').next()?.parse().ok())
            .ok_or(Error::MalformedMessage("not a numbered request"))?;
        for reply in 0..replies_for(n) {
            let text = format!("reply {reply} to {content}");
            dealer
                .send(Message::from(vec![client.clone(), text.into()]))
                .await?;
        }
    }
}

/// The server: frontend and backend, [`WORKERS`] workers, and the proxy between them.
pub async fn server(frontend_endpoint: &str) -> ferromq::Result<Infallible> {
    let frontend = Router::new();
    println!("Serving on {}", frontend.bind(frontend_endpoint)?);
    serve(&frontend).await
}

async fn serve(frontend: &Router) -> ferromq::Result<Infallible> {
    let backend = Dealer::new();
    let backend_endpoint = backend.bind("tcp://127.0.0.1:0")?.to_string();
    let mut tasks: Vec<Pin<Box<dyn Future<Output = _> + '_>>> = (0..WORKERS)
        .map(|_| Box::pin(worker(&backend_endpoint)) as Pin<Box<dyn Future<Output = _>>>)
        .collect();
    tasks.push(Box::pin(ferromq::proxy(frontend, &backend, None)));
    let (result, _, _) = select_all(tasks).await;
    result
}

/// The server and `clients` clients of `requests` requests each, sent without pause;
/// returns each client's replies.
pub async fn demo(clients: usize, requests: usize) -> ferromq::Result<Vec<Vec<String>>> {
    let frontend = Router::new();
    let endpoint = frontend.bind("tcp://127.0.0.1:0")?.to_string();
    let names: Vec<String> = (0..clients).map(|c| format!("client-{c}")).collect();
    let clients = try_join_all(
        names
            .iter()
            .map(|name| client(&endpoint, name, Some(requests), Duration::ZERO)),
    );
    tokio::select! {
        Err(e) = serve(&frontend) => Err(e),
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
            demo(3, 8).await?;
        }
        ["server", endpoint] => {
            let never = server(endpoint).await?;
            match never {}
        }
        ["client", endpoint, name] => {
            client(endpoint, name, None, Duration::from_secs(1)).await?;
        }
        _ => {
            eprintln!("usage: asyncsrv [server <endpoint> | client <endpoint> <name>]");
            std::process::exit(2);
        }
    }
    Ok(())
}
