//! `ferromq`: every ferromq socket type from the shell.
//!
//! Each line on stdin is one message (frames separated by TAB), each received message is one
//! line on stdout. See `ferromq --help` and spec/cli.md for the full contract; the exit codes
//! are 0 (done), 1 (runtime failure) and 2 (usage error).

// The binary's root is src/bin/ferromq.rs, so its modules are named by path.
#[path = "ferromq/lines.rs"]
mod lines;
#[path = "ferromq/observe.rs"]
mod observe;
#[path = "ferromq/proxy.rs"]
mod proxy;
#[path = "ferromq/session.rs"]
mod session;

use clap::error::ErrorKind;
use clap::{Parser, ValueEnum};
use ferromq::security::{AuthPolicy, CurveKey, CurveKeyPair, Zap};
use ferromq::{Endpoint, SocketOptions};
use lines::LineCodec;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for a runtime failure (a timeout, a socket error, bad input on stdin).
const EXIT_RUNTIME_FAILURE: u8 = 1;
/// Exit code for a usage error, as clap and most Unix tools use.
const EXIT_USAGE: u8 = 2;

const AFTER_HELP: &str = "\
Messages are lines. Each stdin line is one message, its frames separated by TAB (or
--delimiter). Each received message is printed as one line, frames joined the same way, and
flushed at once. A received frame that is not printable UTF-8 (or could be misread) is printed
as 0x followed by hex; an input field of 0x followed by an even number of hex digits is sent as
those bytes, so ROUTER identities round-trip. --hex reads and prints every frame as hex.

What each type does:
  push, pub        send stdin lines
  pull, sub, xsub  print what they receive (stdin is not read)
  pair, dealer,    send stdin lines and print what they receive, both at once;
  router, xpub     router prints the sender's identity as the first field and routes a line
                   to the peer named by its first field; xpub prints subscriptions
                   (0x01 or 0x00 followed by the prefix)
  req              sends a line, prints the reply, then reads the next line
  rep              prints a request, replies with the next stdin line (or the request itself
                   with --echo)

When it stops (exit 0): push/pub after the last stdin line is sent (queued messages are
written first, up to --linger); pull/sub/xsub after --count messages, or never; req/rep when
stdin ends or after --count exchanges; pair/dealer/router/xpub when stdin ends, or with
--count once stdin has ended and --count messages have arrived.

Exit codes: 0 success, 1 runtime failure (e.g. --timeout expired), 2 usage error.

Examples:
  ferromq sub --connect tcp://feed.example:5556 --subscribe weather/
  ferromq pub --bind tcp://*:5556 --wait-subscribers 1 < events.txt
  echo ping | ferromq req --connect tcp://127.0.0.1:5555 --timeout 2000
  ferromq rep --bind ipc:///tmp/echo.sock --echo
  ferromq router --bind tcp://*:5570     # reply with: <identity><TAB><reply>
  ferromq proxy --frontend 'xsub@tcp://*:5555' --backend 'xpub@tcp://*:5556' --events
  ferromq pull --bind tcp://*:5557 --stats 1000   # a JSON stats line on stderr each second";

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "ferromq",
    version,
    about = "Send and receive ZeroMQ messages from the shell, with any socket type",
    after_help = AFTER_HELP
)]
struct Cli {
    /// Socket type.
    #[arg(value_enum, value_name = "TYPE")]
    socket_type: SocketKind,

    /// Bind to an endpoint (tcp://HOST:PORT, tcp://*:PORT, ipc:///PATH, ipc://@NAME); may be
    /// repeated.
    #[arg(long, value_name = "ENDPOINT", value_parser = parse_endpoint)]
    bind: Vec<Endpoint>,

    /// Connect to an endpoint (returns at once, reconnects in the background); may be
    /// repeated.
    #[arg(long, value_name = "ENDPOINT", value_parser = parse_endpoint)]
    connect: Vec<Endpoint>,

    /// sub/xsub: subscribe to messages whose first frame starts with PREFIX; may be repeated.
    /// Without it, subscribes to everything.
    #[arg(long, value_name = "PREFIX")]
    subscribe: Vec<String>,

    /// rep: reply to each request with the request itself instead of a stdin line.
    #[arg(long)]
    echo: bool,

    /// Exit after N messages: sent (push, pub), received (pull, sub, xsub, and pair, dealer,
    /// router, xpub once stdin has ended), or request–reply exchanges (req, rep).
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,

    /// Fail (exit 1) when no message arrives for MS milliseconds, or a send or
    /// --wait-subscribers cannot complete within MS.
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,

    /// The socket's routing identity (ZMQ_ROUTING_ID), as text or 0x-hex.
    #[arg(long, value_name = "ID")]
    identity: Option<String>,

    /// How long queued messages may delay exit once stdin has ended (ZMQ_LINGER; default:
    /// until all are written).
    #[arg(long, value_name = "MS")]
    linger: Option<u64>,

    /// Send high-water mark in messages per peer (ZMQ_SNDHWM; 0: no limit) [default: 1000].
    #[arg(long, value_name = "N")]
    sndhwm: Option<usize>,

    /// Receive high-water mark in messages per peer (ZMQ_RCVHWM; 0: no limit) [default: 1000].
    #[arg(long, value_name = "N")]
    rcvhwm: Option<usize>,

    /// Send a PING every MS milliseconds (ZMQ_HEARTBEAT_IVL; default: no heartbeats).
    #[arg(long, value_name = "MS")]
    heartbeat_ivl: Option<u64>,

    /// Drop a connection that sent nothing for MS milliseconds after a PING
    /// (ZMQ_HEARTBEAT_TIMEOUT; default: --heartbeat-ivl).
    #[arg(long, value_name = "MS")]
    heartbeat_timeout: Option<u64>,

    /// Ask peers to drop us after MS milliseconds of silence (ZMQ_HEARTBEAT_TTL).
    #[arg(long, value_name = "MS")]
    heartbeat_ttl: Option<u64>,

    /// Wait MS milliseconds before reconnecting (ZMQ_RECONNECT_IVL; default 100).
    #[arg(long, value_name = "MS")]
    reconnect_ivl: Option<u64>,

    /// Double the reconnect wait after each failed attempt up to MS milliseconds
    /// (ZMQ_RECONNECT_IVL_MAX; default: no doubling).
    #[arg(long, value_name = "MS")]
    reconnect_ivl_max: Option<u64>,

    /// pub/xpub: before the first send, wait until N subscriptions arrived (one per
    /// subscriber and prefix; the cure for the slow-joiner problem).
    #[arg(long, value_name = "N")]
    wait_subscribers: Option<usize>,

    /// Wait MS milliseconds before the first send.
    #[arg(long, value_name = "MS")]
    delay: Option<u64>,

    /// Frame separator in input and output lines (`\t` means TAB) [default: TAB].
    #[arg(long, value_name = "STR")]
    delimiter: Option<String>,

    /// Read and print every frame as hex.
    #[arg(long)]
    hex: bool,

    /// Log binds, connects, handshakes and disconnects to stderr (filter with RUST_LOG).
    #[arg(short, long)]
    verbose: bool,

    /// Print each monitor event to stderr as `<event> <endpoint> [<peer>] [<detail>]`.
    #[arg(long)]
    events: bool,

    /// Print the socket's statistics to stderr as one JSON object every MS milliseconds, and
    /// once more at exit.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    stats: Option<u64>,

    #[command(flatten)]
    proxy: ProxyArgs,

    #[command(flatten)]
    security: SecurityArgs,
}

/// The `proxy` type's sockets (spec/cli.md, "Proxy").
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Proxy")]
struct ProxyArgs {
    /// proxy: the socket facing clients, TYPE@ENDPOINT to bind or TYPE>ENDPOINT to connect
    /// (e.g. 'xsub@tcp://*:5555', 'router@tcp://*:5559').
    #[arg(long, value_name = "TYPE@ENDPOINT", value_parser = proxy::Attach::parse)]
    frontend: Option<proxy::Attach>,
    /// proxy: the socket facing services, as --frontend (e.g. 'xpub>tcp://127.0.0.1:5556').
    #[arg(long, value_name = "TYPE@ENDPOINT", value_parser = proxy::Attach::parse)]
    backend: Option<proxy::Attach>,
    /// proxy: a socket that gets a copy of every message moved, as --frontend.
    #[arg(long, value_name = "TYPE@ENDPOINT", value_parser = proxy::Attach::parse)]
    capture: Option<proxy::Attach>,
    /// proxy: a socket that takes PAUSE, RESUME, TERMINATE and STATISTICS, as --frontend
    /// (libzmq's zmq_proxy_steerable; TERMINATE ends the run with exit 0).
    #[arg(long, value_name = "TYPE@ENDPOINT", value_parser = proxy::Attach::parse)]
    control: Option<proxy::Attach>,
}

/// PLAIN, CURVE and authentication (spec/cli.md, "Security").
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Security")]
struct SecurityArgs {
    /// Be a CURVE server (needs --curve-secretkey). Without --allow-key, any client that knows
    /// the server's public key is accepted.
    #[arg(long)]
    curve_server: bool,
    /// Our CURVE secret key (40 Z85 characters, as `ferromq keygen` prints).
    #[arg(long, value_name = "KEY", value_parser = parse_key, allow_hyphen_values = true)]
    curve_secretkey: Option<CurveKey>,
    /// Our CURVE public key (derived from --curve-secretkey when omitted).
    #[arg(long, value_name = "KEY", value_parser = parse_key, allow_hyphen_values = true)]
    curve_publickey: Option<CurveKey>,
    /// Be a CURVE client of the server with this public key (own keys from
    /// --curve-secretkey, else generated).
    #[arg(long, value_name = "KEY", value_parser = parse_key, allow_hyphen_values = true)]
    curve_serverkey: Option<CurveKey>,
    /// Be a PLAIN server (needs at least one --allow-user).
    #[arg(long)]
    plain_server: bool,
    /// Be a PLAIN client with this user name.
    #[arg(long, value_name = "USER", allow_hyphen_values = true)]
    plain_username: Option<String>,
    /// The PLAIN client's password.
    #[arg(long, value_name = "PASS", allow_hyphen_values = true)]
    plain_password: Option<String>,
    /// CURVE server: accept this client public key (repeatable; default: any key).
    #[arg(long, value_name = "KEY", value_parser = parse_key, allow_hyphen_values = true)]
    allow_key: Vec<CurveKey>,
    /// PLAIN server: accept this user (repeatable).
    #[arg(long, value_name = "USER:PASS", allow_hyphen_values = true)]
    allow_user: Vec<String>,
    /// Accept peers from this IP address only (repeatable).
    #[arg(long, value_name = "ADDR")]
    allow_ip: Vec<String>,
    /// Refuse peers from this IP address (repeatable; ignored with --allow-ip).
    #[arg(long, value_name = "ADDR")]
    deny_ip: Vec<String>,
    /// The ZAP domain passed to the authenticator (ZMQ_ZAP_DOMAIN).
    #[arg(long, value_name = "NAME")]
    zap_domain: Option<String>,
}

impl SecurityArgs {
    /// Applies the security flags to `options`, checking the combinations.
    fn apply(self, options: &mut SocketOptions) -> Result<(), String> {
        let server_only = |flag: &str, given: bool, server: bool, what: &str| {
            if given && !server {
                Err(format!("{flag} applies to {what}"))
            } else {
                Ok(())
            }
        };
        server_only(
            "--allow-key",
            !self.allow_key.is_empty(),
            self.curve_server,
            "a --curve-server",
        )?;
        server_only(
            "--allow-user",
            !self.allow_user.is_empty(),
            self.plain_server,
            "a --plain-server",
        )?;
        if self.plain_server && self.allow_user.is_empty() {
            return Err("--plain-server needs at least one --allow-user USER:PASS".into());
        }
        if self.plain_password.is_some() && self.plain_username.is_none() {
            return Err("--plain-password needs --plain-username".into());
        }
        options.curve_server = self.curve_server;
        options.curve_secretkey = self.curve_secretkey;
        options.curve_publickey = self.curve_publickey;
        options.curve_serverkey = self.curve_serverkey;
        options.plain_server = self.plain_server;
        options.plain_username = self.plain_username.map(Into::into);
        options.plain_password = self.plain_password.map(Into::into);
        options.zap_domain = self.zap_domain.map(Into::into);
        let filters = !self.allow_ip.is_empty() || !self.deny_ip.is_empty();
        if !filters && self.allow_key.is_empty() && self.allow_user.is_empty() {
            return Ok(());
        }
        let mut policy = AuthPolicy::new();
        for address in self.allow_ip {
            policy = policy.allow_ip(address);
        }
        for address in self.deny_ip {
            policy = policy.deny_ip(address);
        }
        for user in self.allow_user {
            let Some((name, password)) = user.split_once(':') else {
                return Err(format!("--allow-user {user:?}: expected USER:PASS"));
            };
            policy = policy.allow_user(name.to_owned(), password.to_owned());
        }
        if self.allow_key.is_empty() {
            policy = policy.allow_any_curve_key();
        }
        for key in self.allow_key {
            policy = policy.allow_curve_key(key);
        }
        options.zap = Some(Zap::new(policy));
        Ok(())
    }
}

fn parse_key(text: &str) -> Result<CurveKey, String> {
    text.parse::<CurveKey>().map_err(|e| e.to_string())
}

/// The socket types, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SocketKind {
    Push,
    Pull,
    Pub,
    Sub,
    Xpub,
    Xsub,
    Req,
    Rep,
    Dealer,
    Router,
    Pair,
    /// Not a socket: print a new CURVE key pair as `public: KEY` and `secret: KEY`.
    Keygen,
    /// Not a socket: forward between --frontend and --backend (libzmq's zmq_proxy).
    Proxy,
}

fn parse_endpoint(text: &str) -> Result<Endpoint, String> {
    text.parse::<Endpoint>().map_err(|e| e.to_string())
}

/// Why the tool stopped early.
#[derive(Debug)]
enum Failure {
    /// The command line asks for something impossible (exit 2).
    Usage(String),
    /// Something went wrong while running (exit 1).
    Runtime(String),
    /// Whoever read stdout has gone (as `head` does): a normal end, exit 0.
    OutputClosed,
}

/// The checked settings a run needs.
#[derive(Debug)]
struct Config {
    kind: SocketKind,
    bind: Vec<Endpoint>,
    connect: Vec<Endpoint>,
    options: SocketOptions,
    codec: LineCodec,
    subscriptions: Vec<bytes::Bytes>,
    echo: bool,
    count: Option<u64>,
    timeout: Option<Duration>,
    wait_subscribers: Option<usize>,
    delay: Option<Duration>,
    events: bool,
    stats: Option<Duration>,
    /// The `proxy` type's sockets.
    proxy: Option<proxy::ProxyConfig>,
}

impl Cli {
    /// Checks what clap cannot, naming the offending option.
    fn into_config(self) -> Result<Config, Failure> {
        use SocketKind::*;
        let usage = |message: String| Err(Failure::Usage(message));
        let kind = self.socket_type;
        let proxy = self.proxy_config()?;
        if proxy.is_none() && self.bind.is_empty() && self.connect.is_empty() {
            return usage("give at least one --bind or --connect endpoint".into());
        }
        let type_name = kind
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned());
        if !self.subscribe.is_empty() && !matches!(kind, Sub | Xsub) {
            return usage(format!(
                "--subscribe applies to sub and xsub, not {type_name}"
            ));
        }
        if self.echo && kind != Rep {
            return usage(format!("--echo applies to rep, not {type_name}"));
        }
        if self.wait_subscribers.is_some() && !matches!(kind, Pub | Xpub) {
            return usage(format!(
                "--wait-subscribers applies to pub and xpub, not {type_name}"
            ));
        }
        if kind == Proxy && self.count.is_some() {
            return usage("--count does not apply to proxy".into());
        }
        if matches!(kind, Pull | Sub | Xsub | Proxy) && self.delay.is_some() {
            return usage(format!("--delay applies to sending types, not {type_name}"));
        }
        let delimiter = match self.delimiter.as_deref() {
            None | Some("\\t") => b"\t".to_vec(),
            Some("") => return usage("--delimiter must not be empty".into()),
            Some(other) => other.as_bytes().to_vec(),
        };
        let codec = LineCodec::new(delimiter, self.hex);

        let mut options = SocketOptions::default();
        if let Some(id) = &self.identity {
            let id = codec
                .parse_field(id.as_bytes())
                .map_err(|e| Failure::Usage(format!("--identity {e}")))?;
            options.routing_id = Some(id);
        }
        options.linger = self.linger.map(Duration::from_millis);
        let ms = |value: Option<u64>| value.map(Duration::from_millis);
        options.heartbeat_ivl = ms(self.heartbeat_ivl).or(options.heartbeat_ivl);
        options.heartbeat_timeout = ms(self.heartbeat_timeout).or(options.heartbeat_timeout);
        options.heartbeat_ttl = ms(self.heartbeat_ttl).or(options.heartbeat_ttl);
        options.reconnect_ivl = ms(self.reconnect_ivl).or(options.reconnect_ivl);
        options.reconnect_ivl_max = ms(self.reconnect_ivl_max).or(options.reconnect_ivl_max);
        if let Some(hwm) = self.sndhwm {
            options.sndhwm = hwm;
        }
        if let Some(hwm) = self.rcvhwm {
            options.rcvhwm = hwm;
        }
        // Tell the user about an unknown identity instead of dropping the line silently.
        options.router_mandatory = kind == Router;
        self.security.apply(&mut options).map_err(Failure::Usage)?;
        if let Err(e) = options.validate() {
            let option = match &e {
                ferromq::Error::InvalidOption {
                    option: "routing_id",
                    ..
                } => "--identity",
                _ => "option",
            };
            return usage(format!("{option}: {e}"));
        }

        let subscriptions = self
            .subscribe
            .iter()
            .map(|prefix| codec.parse_field(prefix.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::Usage(format!("--subscribe {e}")))?;

        Ok(Config {
            kind,
            bind: self.bind,
            connect: self.connect,
            options,
            codec,
            subscriptions,
            echo: self.echo,
            count: self.count,
            timeout: self.timeout.map(Duration::from_millis),
            wait_subscribers: self.wait_subscribers,
            delay: self.delay.map(Duration::from_millis),
            events: self.events,
            stats: self.stats.map(Duration::from_millis),
            proxy,
        })
    }

    /// The proxy's sockets for the `proxy` type (which takes no --bind or --connect); other
    /// types take none of its options.
    fn proxy_config(&self) -> Result<Option<proxy::ProxyConfig>, Failure> {
        let args = &self.proxy;
        let usage = |message: &str| Err(Failure::Usage(message.to_owned()));
        if self.socket_type != SocketKind::Proxy {
            let given = [&args.frontend, &args.backend, &args.capture, &args.control];
            if given.iter().any(|a| a.is_some()) {
                return usage("--frontend, --backend, --capture and --control apply to proxy");
            }
            return Ok(None);
        }
        if !self.bind.is_empty() || !self.connect.is_empty() {
            return usage("proxy takes --frontend and --backend, not --bind or --connect");
        }
        let (Some(frontend), Some(backend)) = (args.frontend.clone(), args.backend.clone()) else {
            return usage("proxy needs --frontend and --backend");
        };
        let config = proxy::ProxyConfig {
            frontend,
            backend,
            capture: args.capture.clone(),
            control: args.control.clone(),
        };
        config.check().map_err(Failure::Usage)?;
        Ok(Some(config))
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e),
    };
    if cli.socket_type == SocketKind::Keygen {
        let pair = CurveKeyPair::generate();
        println!("public: {}", pair.public.to_z85());
        println!("secret: {}", pair.secret.to_z85());
        return ExitCode::SUCCESS;
    }
    let verbose = cli.verbose;
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(failure) => return report(failure),
    };
    if verbose {
        init_logging();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return report(Failure::Runtime(format!("cannot start the runtime: {e}"))),
    };
    let outcome = runtime.block_on(session::run(config));
    // The stdin reader thread may sit in a read that cannot be cancelled; don't wait for it.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(failure),
    }
}

/// Prints a failure as one line on stderr and picks its exit code.
fn report(failure: Failure) -> ExitCode {
    let (code, message) = match failure {
        Failure::Usage(m) => (EXIT_USAGE, format!("{m} (see ferromq --help)")),
        Failure::Runtime(m) => (EXIT_RUNTIME_FAILURE, m),
        Failure::OutputClosed => return ExitCode::SUCCESS,
    };
    eprintln!("ferromq: {message}");
    ExitCode::from(code)
}

/// `--help` and `--version` print and exit 0; every other clap error becomes one line on
/// stderr and exit 2.
fn clap_exit(error: clap::Error) -> ExitCode {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        // Nothing useful can be done if stdout is gone.
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    // clap's text is several paragraphs (message, tips, usage); the first names the input.
    let text = error.to_string();
    let first_paragraph = text
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let message = first_paragraph
        .strip_prefix("error: ")
        .unwrap_or(&first_paragraph);
    report(Failure::Usage(message.to_owned()))
}

/// `--verbose`: the library's and the tool's tracing events to stderr, `RUST_LOG` if set,
/// else debug level for ferromq.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("ferromq=debug"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
