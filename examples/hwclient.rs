//! The Guide's "Hello World" client, blocking: a REQ socket sends ten "Hello"s and waits
//! for each "World", from a plain `main` with no async runtime.
//!
//! ```text
//! cargo run --example hwclient                            # self-contained demo, exits 0
//! cargo run --example hwclient -- tcp://localhost:5555    # against hwserver (or libzmq's)
//! ```

use ferromq::SocketOptions;
use ferromq::blocking::{Rep, Req};
use std::time::Duration;

/// How long the client waits for the server, so that a missing server is an error, not a
/// hang.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `requests` "Hello"s to `endpoint`, one at a time, and returns the replies.
pub fn run(endpoint: &str, requests: usize) -> ferromq::Result<Vec<String>> {
    let mut options = SocketOptions::default();
    options.recv_timeout = Some(TIMEOUT);
    options.send_timeout = Some(TIMEOUT);
    let client = Req::with_options(options)?;
    println!("Connecting to hello world server at {endpoint}");
    client.connect(endpoint)?;
    let mut replies = Vec::new();
    for n in 0..requests {
        println!("Sending Hello {n}…");
        client.send("Hello")?;
        let reply = client.recv()?;
        let reply = String::from_utf8_lossy(&reply.frames()[0]).into_owned();
        println!("Received {reply} {n}");
        replies.push(reply);
    }
    client.close()?;
    Ok(replies)
}

/// Runs the client against a "World" server on a fresh port in a thread.
pub fn demo() -> ferromq::Result<Vec<String>> {
    let mut options = SocketOptions::default();
    options.recv_timeout = Some(TIMEOUT);
    let server = Rep::with_options(options)?;
    let endpoint = server.bind("tcp://127.0.0.1:0")?;
    std::thread::scope(|scope| {
        let serving = scope.spawn(|| -> ferromq::Result<()> {
            for _ in 0..10 {
                server.recv()?;
                server.send("World")?;
            }
            Ok(())
        });
        let replies = run(&endpoint.to_string(), 10)?;
        serving.join().expect("server thread panicked")?;
        Ok(replies)
    })
}

fn main() -> ferromq::Result<()> {
    let replies = match std::env::args().nth(1) {
        Some(endpoint) => run(&endpoint, 10)?,
        None => demo()?,
    };
    assert_eq!(replies.len(), 10);
    Ok(())
}
