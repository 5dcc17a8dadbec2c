//! The Guide's "Hello World" server, blocking: a REP socket answers every "Hello" with
//! "World", from a plain `main` with no async runtime.
//!
//! ```text
//! cargo run --example hwserver                      # self-contained demo, exits 0
//! cargo run --example hwserver -- tcp://*:5555      # serve forever (try with hwclient)
//! ```

use ferromq::SocketOptions;
use ferromq::blocking::{Rep, Req};
use std::time::Duration;

/// Bounds every wait of the demo, so that it fails instead of hanging.
const DEMO_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers `requests` requests (`None`: forever) with "World"; returns how many it answered.
pub fn serve(server: &Rep, requests: Option<usize>) -> ferromq::Result<usize> {
    let mut answered = 0;
    while requests.is_none_or(|n| answered < n) {
        let request = server.recv()?;
        println!(
            "Received request: {}",
            String::from_utf8_lossy(&request.frames()[0])
        );
        server.send("World")?;
        answered += 1;
    }
    Ok(answered)
}

/// Serves ten requests on a fresh port from a thread while this thread sends them; returns
/// the replies.
pub fn demo() -> ferromq::Result<Vec<String>> {
    let mut options = SocketOptions::default();
    options.recv_timeout = Some(DEMO_TIMEOUT);
    options.send_timeout = Some(DEMO_TIMEOUT);
    let server = Rep::with_options(options.clone())?;
    let endpoint = server.bind("tcp://127.0.0.1:0")?;
    let client = Req::with_options(options)?;
    client.connect(&endpoint)?;
    std::thread::scope(|scope| {
        let serving = scope.spawn(|| serve(&server, Some(10)));
        let mut replies = Vec::new();
        for _ in 0..10 {
            client.send("Hello")?;
            let reply = client.recv()?;
            replies.push(String::from_utf8_lossy(&reply.frames()[0]).into_owned());
        }
        serving.join().expect("server thread panicked")?;
        Ok(replies)
    })
}

fn main() -> ferromq::Result<()> {
    match std::env::args().nth(1) {
        Some(endpoint) => {
            let server = Rep::new();
            println!("Serving on {}", server.bind(endpoint.as_str())?);
            serve(&server, None)?;
        }
        None => {
            let replies = demo()?;
            println!("Demo: {} replies", replies.len());
        }
    }
    Ok(())
}
