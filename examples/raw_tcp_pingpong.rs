//! The latency floor: plain TCP ping-pong of the bytes a ferromq REQ/REP round trip puts on
//! the wire (a ZMTP empty delimiter frame plus one body frame), with no ZeroMQ at all.
//! Blocking std sockets with TCP_NODELAY, one thread per process, nothing in between:
//! whatever a messaging library adds on top of this is its own cost.
//!
//! ```text
//! raw_tcp_pingpong server <bind-to> <message-size> <roundtrip-count>
//! raw_tcp_pingpong client <connect-to> <message-size> <roundtrip-count>
//! ```
//!
//! Endpoints are `tcp://host:port` (or `host:port`). The client prints the same lines as
//! `remote_lat` (one-way latency, half a round trip).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let parsed = match args.as_slice() {
        [_, role, endpoint, size, count] => size
            .parse::<usize>()
            .ok()
            .zip(count.parse::<usize>().ok().filter(|&c| c > 0))
            .map(|(size, count)| {
                (
                    role.as_str(),
                    endpoint.trim_start_matches("tcp://"),
                    size,
                    count,
                )
            }),
        _ => None,
    };
    let Some((role, address, size, count)) = parsed else {
        eprintln!(
            "usage: raw_tcp_pingpong server|client <endpoint> <message-size> <roundtrip-count>"
        );
        return ExitCode::from(2);
    };
    let result = match role {
        "server" => serve(address, size, count),
        "client" => measure(address, size, count),
        _ => {
            eprintln!("raw_tcp_pingpong: role must be server or client");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raw_tcp_pingpong: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A REQ request as ZMTP 3 frames: empty delimiter (MORE), then the body.
fn framed_request(size: usize) -> Vec<u8> {
    let mut wire = vec![0x01, 0x00];
    if size <= 255 {
        wire.extend_from_slice(&[0x00, size as u8]);
    } else {
        wire.push(0x02);
        wire.extend_from_slice(&(size as u64).to_be_bytes());
    }
    wire.resize(wire.len() + size, 0);
    wire
}

fn serve(address: &str, size: usize, count: usize) -> std::io::Result<()> {
    let listener = TcpListener::bind(address)?;
    let (mut stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    let mut buf = framed_request(size);
    for _ in 0..count {
        stream.read_exact(&mut buf)?;
        stream.write_all(&buf)?;
    }
    Ok(())
}

fn measure(address: &str, size: usize, count: usize) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_nodelay(true)?;
    let request = framed_request(size);
    let mut reply = vec![0; request.len()];
    let mut one_way_us = Vec::with_capacity(count);
    let start = Instant::now();
    for _ in 0..count {
        let sent = Instant::now();
        stream.write_all(&request)?;
        stream.read_exact(&mut reply)?;
        one_way_us.push(sent.elapsed().as_secs_f64() * 1e6 / 2.0);
    }
    let average = start.elapsed().as_secs_f64() * 1e6 / (count as f64 * 2.0);
    one_way_us.sort_by(f64::total_cmp);
    let percentile = |p: f64| one_way_us[((count as f64 * p) as usize).min(count - 1)];
    println!("message size: {size} [B]");
    println!("roundtrip count: {count}");
    println!("average latency: {average:.3} [us]");
    println!("p50 latency: {:.3} [us]", percentile(0.50));
    println!("p99 latency: {:.3} [us]", percentile(0.99));
    Ok(())
}
