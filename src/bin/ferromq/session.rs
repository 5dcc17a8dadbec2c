//! One run of the tool: open the socket, bind and connect, then move lines between stdin,
//! the socket and stdout the way its type calls for.

use crate::lines::LineCodec;
use crate::observe::Observed;
use crate::{Config, Failure, SocketKind};
use bytes::Bytes;
use ferromq::{
    Dealer, Endpoint, Error, Message, Pair, Pub, Pull, Push, Rep, Req, Router, SendError, Socket,
    Sub, XPub, XSub,
};
use std::future::Future;
use std::io::{self, BufRead, Write};
use std::time::Duration;
use tokio::sync::mpsc;

/// Lines read ahead of the socket: enough to keep a fast sender busy, small enough that a
/// blocked send does not pull much of a large input into memory.
const STDIN_READ_AHEAD_LINES: usize = 256;

/// First byte of an XSUB subscription message.
const XSUB_SUBSCRIBE_BYTE: u8 = 1;

/// Runs the socket described by `config` until it is done or fails.
pub async fn run(config: Config) -> Result<(), Failure> {
    let output = Output {
        codec: config.codec.clone(),
    };
    let mut input = Input::default();
    let input = &mut input;
    let codec = &config.codec;
    let timeout = config.timeout;
    // The sending types, and the two-way ones that send stdin and print what arrives, differ
    // only in their socket type and in what they wait for before the first send.
    macro_rules! send_only {
        ($s:ident: $ty:ty, $wait_for_subscribers:expr) => {{
            let $s: Observed<$ty> = open(&config)?;
            let ready = get_ready(&config, $wait_for_subscribers);
            let send = async |m| send_within(timeout, $s.send(m)).await;
            let result = send_lines(input, codec, config.count, ready, send).await;
            finish($s, result).await
        }};
    }
    macro_rules! two_way {
        ($s:ident: $ty:ty, $wait_for_subscribers:expr) => {{
            let $s: Observed<$ty> = open(&config)?;
            let ready = get_ready(&config, $wait_for_subscribers);
            let send = async |m| send_within(timeout, $s.send(m)).await;
            let result = duplex(&config, input, &output, ready, send, async || {
                $s.recv().await
            })
            .await;
            finish($s, result).await
        }};
    }
    match config.kind {
        SocketKind::Push => send_only!(s: Push, no_subscriber_wait()),
        SocketKind::Pub => send_only!(
            s: Pub,
            config.wait_subscribers.map(|n| s.wait_for_subscriptions(n))
        ),
        SocketKind::Pull => {
            let s: Observed<Pull> = open(&config)?;
            let result =
                print_received(&output, config.count, timeout, async || s.recv().await).await;
            finish(s, result).await
        }
        SocketKind::Sub => {
            let s: Observed<Sub> = open(&config)?;
            if config.subscriptions.is_empty() {
                s.subscribe(b"");
            }
            for prefix in &config.subscriptions {
                s.subscribe(prefix);
            }
            let result =
                print_received(&output, config.count, timeout, async || s.recv().await).await;
            finish(s, result).await
        }
        SocketKind::Xsub => {
            let s: Observed<XSub> = open(&config)?;
            let everything = [Bytes::new()];
            let prefixes = match config.subscriptions.as_slice() {
                [] => &everything[..],
                some => some,
            };
            for prefix in prefixes {
                let mut subscription = Vec::with_capacity(1 + prefix.len());
                subscription.push(XSUB_SUBSCRIBE_BYTE);
                subscription.extend_from_slice(prefix);
                send_within(timeout, s.send(subscription)).await?;
            }
            let result =
                print_received(&output, config.count, timeout, async || s.recv().await).await;
            finish(s, result).await
        }
        SocketKind::Req => {
            let s: Observed<Req> = open(&config)?;
            let result = request_reply(&config, input, &output, &s).await;
            finish(s, result).await
        }
        SocketKind::Rep => {
            let s: Observed<Rep> = open(&config)?;
            let result = reply_to_requests(&config, input, &output, &s).await;
            finish(s, result).await
        }
        // Opens no socket: main prints the key pair before a session starts.
        SocketKind::Keygen => Ok(()),
        SocketKind::Proxy => {
            let proxy = config
                .proxy
                .as_ref()
                .expect("into_config checked the proxy's sockets");
            crate::proxy::run(proxy, &config.options, config.events, config.stats).await
        }
        SocketKind::Pair => two_way!(s: Pair, no_subscriber_wait()),
        SocketKind::Dealer => two_way!(s: Dealer, no_subscriber_wait()),
        SocketKind::Router => {
            let s: Observed<Router> = open(&config)?;
            let ready = get_ready(&config, no_subscriber_wait());
            let send = async |m: Message| {
                let id = m.first().cloned().unwrap_or_default();
                match within(timeout, send_timed_out, s.send(m)).await? {
                    // An unknown identity is a typo or a peer that left: say so and go on.
                    Err(SendError {
                        error: Error::HostUnreachable(_),
                        ..
                    }) => {
                        let id = output.codec.format_message(&Message::from(id));
                        let id = String::from_utf8_lossy(&id);
                        eprintln!(
                            "ferromq: no peer has identity {}; message dropped",
                            id.trim_end()
                        );
                        Ok(())
                    }
                    other => other.map_err(send_failed),
                }
            };
            let result = duplex(&config, input, &output, ready, send, async || {
                s.recv().await
            })
            .await;
            finish(s, result).await
        }
        SocketKind::Xpub => two_way!(
            s: XPub,
            config.wait_subscribers.map(|n| s.wait_for_subscriptions(n))
        ),
    }
}

/// Creates the socket, starts watching it as `--events` and `--stats` ask, then binds and
/// connects every endpoint.
fn open<S: Socket>(config: &Config) -> Result<Observed<S>, Failure> {
    let socket =
        S::with_options(config.options.clone()).map_err(|e| Failure::Usage(e.to_string()))?;
    let socket = Observed::new(socket, config.events, config.stats, None);
    let endpoint_failure = |verb: &str, endpoint: &Endpoint, e: Error| {
        let message = format!("cannot {verb} {endpoint}: {e}");
        match e {
            Error::InvalidEndpoint { .. } | Error::UnsupportedTransport { .. } => {
                Failure::Usage(message)
            }
            _ => Failure::Runtime(message),
        }
    };
    for endpoint in &config.bind {
        let bound = socket
            .bind(endpoint)
            .map_err(|e| endpoint_failure("bind", endpoint, e))?;
        tracing::info!("bound {bound}");
    }
    for endpoint in &config.connect {
        socket
            .connect(endpoint)
            .map_err(|e| endpoint_failure("connect to", endpoint, e))?;
        tracing::info!("connecting to {endpoint}");
    }
    Ok(socket)
}

/// Closes the socket after a successful run, honouring linger; a failed run exits at once.
async fn finish<S: Socket>(
    socket: Observed<S>,
    result: Result<(), Failure>,
) -> Result<(), Failure> {
    socket.finish(result.is_ok()).await;
    result
}

/// The stand-in for "no --wait-subscribers" on types that have no subscribers.
fn no_subscriber_wait() -> Option<std::future::Ready<ferromq::Result<()>>> {
    None
}

/// Waits for what must happen before the first send: enough subscribers, then `--delay`.
async fn get_ready(
    config: &Config,
    wait_for_subscribers: Option<impl Future<Output = ferromq::Result<()>>>,
) -> Result<(), Failure> {
    if let Some(wait) = wait_for_subscribers {
        let wanted = config.wait_subscribers.unwrap_or_default();
        within(
            config.timeout,
            |ms| format!("fewer than {wanted} subscribers after {ms} ms"),
            wait,
        )
        .await?
        .map_err(|e| Failure::Runtime(format!("waiting for subscribers: {e}")))?;
    }
    if let Some(delay) = config.delay {
        tokio::time::sleep(delay).await;
    }
    Ok(())
}

/// Sends stdin lines until stdin ends or `limit` messages went out.
async fn send_lines(
    input: &mut Input,
    codec: &LineCodec,
    limit: Option<u64>,
    ready: impl Future<Output = Result<(), Failure>>,
    send: impl AsyncFn(Message) -> Result<(), Failure>,
) -> Result<(), Failure> {
    ready.await?;
    let mut sent = 0;
    while limit.is_none_or(|n| sent < n) {
        let Some(message) = input.next_message(codec).await? else {
            break;
        };
        send(message).await?;
        sent += 1;
    }
    Ok(())
}

/// Prints received messages until `limit` arrived (forever without one).
async fn print_received(
    output: &Output,
    limit: Option<u64>,
    timeout: Option<Duration>,
    recv: impl AsyncFn() -> ferromq::Result<Message>,
) -> Result<(), Failure> {
    let mut received = 0;
    while limit.is_none_or(|n| received < n) {
        let message = within(timeout, recv_timed_out, recv()).await?;
        output.print(&message.map_err(recv_failed)?)?;
        received += 1;
    }
    Ok(())
}

/// Sends and receives at once. Done when stdin has ended and, with `--count`, that many
/// messages have arrived.
async fn duplex(
    config: &Config,
    input: &mut Input,
    output: &Output,
    ready: impl Future<Output = Result<(), Failure>>,
    send: impl AsyncFn(Message) -> Result<(), Failure>,
    recv: impl AsyncFn() -> ferromq::Result<Message>,
) -> Result<(), Failure> {
    let sending = send_lines(input, &config.codec, None, ready, send);
    let receiving = print_received(output, config.count, config.timeout, recv);
    match config.count {
        // Receiving never ends by itself here: stop when sending does, or on a failure.
        None => tokio::select! {
            result = sending => result,
            result = receiving => result,
        },
        Some(_) => tokio::try_join!(sending, receiving).map(drop),
    }
}

/// REQ: send a line, print its reply, repeat.
async fn request_reply(
    config: &Config,
    input: &mut Input,
    output: &Output,
    socket: &Req,
) -> Result<(), Failure> {
    get_ready(config, no_subscriber_wait()).await?;
    let mut exchanges = 0;
    while config.count.is_none_or(|n| exchanges < n) {
        let Some(request) = input.next_message(&config.codec).await? else {
            break;
        };
        send_within(config.timeout, socket.send(request)).await?;
        let reply = within(config.timeout, recv_timed_out, socket.recv()).await?;
        output.print(&reply.map_err(recv_failed)?)?;
        exchanges += 1;
    }
    Ok(())
}

/// REP: print a request, answer with the next line (or the request itself with `--echo`).
async fn reply_to_requests(
    config: &Config,
    input: &mut Input,
    output: &Output,
    socket: &Rep,
) -> Result<(), Failure> {
    let mut exchanges = 0;
    while config.count.is_none_or(|n| exchanges < n) {
        let request = within(config.timeout, recv_timed_out, socket.recv()).await?;
        let request = request.map_err(recv_failed)?;
        output.print(&request)?;
        let reply = if config.echo {
            request
        } else {
            match input.next_message(&config.codec).await? {
                Some(reply) => reply,
                None => break,
            }
        };
        if exchanges == 0 {
            get_ready(config, no_subscriber_wait()).await?;
        }
        send_within(config.timeout, socket.send(reply)).await?;
        exchanges += 1;
    }
    Ok(())
}

/// Awaits `future`, failing with `on_timeout(milliseconds)` when it takes longer than
/// `limit`.
async fn within<T>(
    limit: Option<Duration>,
    on_timeout: impl FnOnce(u128) -> String,
    future: impl Future<Output = T>,
) -> Result<T, Failure> {
    match limit {
        None => Ok(future.await),
        Some(limit) => tokio::time::timeout(limit, future)
            .await
            .map_err(|_| Failure::Runtime(on_timeout(limit.as_millis()))),
    }
}

async fn send_within(
    limit: Option<Duration>,
    send: impl Future<Output = Result<(), SendError>>,
) -> Result<(), Failure> {
    within(limit, send_timed_out, send)
        .await?
        .map_err(send_failed)
}

fn send_timed_out(ms: u128) -> String {
    format!("timeout: could not send within {ms} ms (no peer ready to take the message)")
}

fn recv_timed_out(ms: u128) -> String {
    format!("timeout: no message arrived within {ms} ms")
}

fn send_failed(e: SendError) -> Failure {
    Failure::Runtime(format!("send failed: {}", e.error))
}

fn recv_failed(e: Error) -> Failure {
    Failure::Runtime(format!("receive failed: {e}"))
}

/// stdin as lines, read on a thread of its own (a blocking read cannot be cancelled, so it
/// must not hold up exit) and only once a line is first wanted.
#[derive(Debug, Default)]
struct Input {
    lines: Option<mpsc::Receiver<io::Result<Vec<u8>>>>,
    line_number: u64,
}

impl Input {
    /// The next line as a message; `None` once stdin has ended.
    async fn next_message(&mut self, codec: &LineCodec) -> Result<Option<Message>, Failure> {
        let lines = match &mut self.lines {
            Some(lines) => lines,
            None => self.lines.insert(spawn_stdin_reader()?),
        };
        match lines.recv().await {
            None => Ok(None),
            Some(Err(e)) => Err(Failure::Runtime(format!("cannot read stdin: {e}"))),
            Some(Ok(line)) => {
                self.line_number += 1;
                codec
                    .parse_line(&line)
                    .map(Some)
                    .map_err(|e| Failure::Runtime(format!("stdin line {}: {e}", self.line_number)))
            }
        }
    }
}

fn spawn_stdin_reader() -> Result<mpsc::Receiver<io::Result<Vec<u8>>>, Failure> {
    let (lines, receiver) = mpsc::channel(STDIN_READ_AHEAD_LINES);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            loop {
                let mut line = Vec::new();
                let item = match stdin.read_until(b'\n', &mut line) {
                    Ok(0) => return,
                    Ok(_) => {
                        strip_line_ending(&mut line);
                        Ok(line)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if lines.blocking_send(item).is_err() || failed {
                    return;
                }
            }
        })
        .map_err(|e| Failure::Runtime(format!("cannot start the stdin reader: {e}")))?;
    Ok(receiver)
}

/// Removes a trailing `\n` or `\r\n`.
fn strip_line_ending(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// stdout, one line per received message, flushed at once.
#[derive(Debug)]
struct Output {
    codec: LineCodec,
}

impl Output {
    fn print(&self, message: &Message) -> Result<(), Failure> {
        let line = self.codec.format_message(message);
        let mut stdout = io::stdout().lock();
        stdout
            .write_all(&line)
            .and_then(|()| stdout.flush())
            .map_err(|e| match e.kind() {
                io::ErrorKind::BrokenPipe => Failure::OutputClosed,
                _ => Failure::Runtime(format!("cannot write to stdout: {e}")),
            })
    }
}
