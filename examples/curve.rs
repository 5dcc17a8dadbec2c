//! CURVE between two sockets: the server admits one client key, the message arrives
//! encrypted on the wire and carries the sender's key as its `User-Id`.
//!
//! `cargo run --example curve`

use ferromq::security::{AuthPolicy, CurveKeyPair, Zap};
use ferromq::{Pull, Push, SocketOptions};

#[tokio::main]
async fn main() -> ferromq::Result<()> {
    let server = CurveKeyPair::generate(); // or `ferromq keygen`, or "<40 Z85 chars>".parse()
    let client = CurveKeyPair::generate();

    let mut options = SocketOptions::default().curve_server_with(server.secret);
    options.zap = Some(Zap::new(AuthPolicy::new().allow_curve_key(client.public)));
    let sink = Pull::with_options(options)?;
    let endpoint = sink.bind("tcp://127.0.0.1:0")?;

    let source =
        Push::with_options(SocketOptions::default().curve_client_with(server.public, &client))?;
    source.connect(&endpoint)?;
    source.send("attack at dawn").await?;
    let message = sink.recv().await?;
    println!("{:?} from {:?}", message, message.user_id()); // User-Id: the client's key
    assert_eq!(message.user_id().unwrap(), client.public.to_z85());
    source.close().await;
    Ok(())
}
