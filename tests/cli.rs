//! The `ferromq` command-line tool, run as a child process: every socket type it pairs with
//! itself over TCP and IPC, usage errors (exit 2) and timeouts (exit 1), and the tool against
//! libzmq sockets with either side binding.
//!
//! Every wait on a child (a line on stdout or stderr, its exit) is bounded by the child's
//! deadline, and a child still running when its handle is dropped — a failed assertion
//! included — is killed. A tool that binds is given port 0 (or a fresh ipc path) and
//! `--verbose`, and the test reads the endpoint it really bound from its `bound …` log line.

mod pyzmq;
mod tool;

use ferromq::security::CurveKey;
use pyzmq::{PeerConfig, PyPeer, ZapConfig, keypair};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tool::{CHILD_DEADLINE, Exit, Tool};

/// libzmq's send/receive timeout, so a libzmq call can never hang a test.
const LIBZMQ_TIMEOUT_MS: i32 = 20_000;

#[derive(Debug, Clone, Copy)]
enum Transport {
    Tcp,
    Ipc,
}

impl Transport {
    /// An address for a tool to bind: an ephemeral TCP port or a fresh ipc path.
    fn bind_addr(self) -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        match self {
            Transport::Tcp => "tcp://127.0.0.1:0".to_owned(),
            Transport::Ipc => {
                let path = format!(
                    "/tmp/ferromq-cli-{}-{}.sock",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed)
                );
                let _ = std::fs::remove_file(&path);
                format!("ipc://{path}")
            }
        }
    }
}

/// Starts a tool bound to a fresh address and returns it with the endpoint it bound.
fn bound_tool(transport: Transport, args: &[&str]) -> (Tool, String) {
    let addr = transport.bind_addr();
    let mut full = args.to_vec();
    full.extend(["--bind", &addr, "--verbose"]);
    let mut tool = Tool::spawn(&full);
    let endpoint = tool.bound_endpoint();
    (tool, endpoint)
}

fn assert_success(exit: &Exit) {
    assert_eq!(exit.code, Some(0), "{exit:?}");
}

// --- the tool with itself ----------------------------------------------------------------

fn push_to_pull(transport: Transport) {
    let (pull, endpoint) = bound_tool(transport, &["pull", "-n", "3"]);
    let push = Tool::run(
        &["push", "--connect", &endpoint],
        "one\nframe a\tframe b\n0x00ff\n",
    );
    assert_success(&push);
    let pull = pull.wait();
    assert_success(&pull);
    assert_eq!(pull.stdout, ["one", "frame a\tframe b", "0x00ff"]);
}

#[test]
fn push_to_pull_over_tcp() {
    push_to_pull(Transport::Tcp);
}

#[test]
fn push_to_pull_over_ipc() {
    push_to_pull(Transport::Ipc);
}

/// The publisher waits for its one subscriber, so nothing is lost to the slow joiner.
fn pub_to_sub(transport: Transport, subscribe: &[&str], expected: &[&str]) {
    let (mut publisher, endpoint) = bound_tool(transport, &["pub", "--wait-subscribers", "1"]);
    publisher.write("apple\nbanana\navocado\nblueberry\n");
    publisher.close_stdin();
    let count = expected.len().to_string();
    let mut args = vec!["sub", "--connect", &endpoint, "-n", &count];
    for prefix in subscribe {
        args.extend(["--subscribe", prefix]);
    }
    let subscriber = Tool::run(&args, "");
    assert_success(&subscriber);
    assert_eq!(subscriber.stdout, expected);
    assert_success(&publisher.wait());
}

#[test]
fn pub_to_sub_everything_over_tcp() {
    pub_to_sub(
        Transport::Tcp,
        &[],
        &["apple", "banana", "avocado", "blueberry"],
    );
}

#[test]
fn pub_to_sub_everything_over_ipc() {
    pub_to_sub(
        Transport::Ipc,
        &[],
        &["apple", "banana", "avocado", "blueberry"],
    );
}

#[test]
fn pub_to_sub_with_prefix_over_tcp() {
    pub_to_sub(Transport::Tcp, &["b"], &["banana", "blueberry"]);
}

/// `--wait-subscribers` counts subscriptions, one per prefix: with two the publisher waits for
/// both of the subscriber's prefixes, so neither prefix's first message can be lost.
#[test]
fn pub_waits_for_every_prefix_of_a_subscriber() {
    let (mut publisher, endpoint) = bound_tool(Transport::Tcp, &["pub", "--wait-subscribers", "2"]);
    publisher.write(
        "apple
banana
avocado
blueberry
",
    );
    publisher.close_stdin();
    let subscriber = Tool::run(
        &[
            "sub",
            "--connect",
            &endpoint,
            "--subscribe",
            "ap",
            "--subscribe",
            "bl",
            "-n",
            "2",
        ],
        "",
    );
    assert_success(&subscriber);
    assert_eq!(subscriber.stdout, ["apple", "blueberry"]);
    assert_success(&publisher.wait());
}

/// An XPUB prints each subscription as it arrives; the test waits until it has printed both
/// before giving it lines to publish.
#[test]
fn xpub_to_sub_with_two_prefixes_over_ipc() {
    let (mut publisher, endpoint) = bound_tool(Transport::Ipc, &["xpub", "-n", "2"]);
    let subscriber = Tool::spawn(&[
        "sub",
        "--connect",
        &endpoint,
        "--subscribe",
        "bl",
        "--subscribe",
        "av",
        "-n",
        "2",
    ]);
    let mut subscriptions = [publisher.read_line(), publisher.read_line()];
    subscriptions.sort();
    assert_eq!(subscriptions, ["0x016176", "0x01626c"]); // 0x01 "av", 0x01 "bl"
    publisher.write("apple\nbanana\navocado\nblueberry\n");
    publisher.close_stdin();
    let subscriber = subscriber.wait();
    assert_success(&subscriber);
    assert_eq!(subscriber.stdout, ["avocado", "blueberry"]);
    assert_success(&publisher.wait());
}

fn req_to_rep_echo(transport: Transport) {
    let (rep, endpoint) = bound_tool(transport, &["rep", "--echo", "-n", "2"]);
    let req = Tool::run(
        &["req", "--connect", &endpoint],
        "hello\ttwo frames\nworld\n",
    );
    assert_success(&req);
    assert_eq!(req.stdout, ["hello\ttwo frames", "world"]);
    let rep = rep.wait();
    assert_success(&rep);
    assert_eq!(rep.stdout, ["hello\ttwo frames", "world"]);
}

#[test]
fn req_to_rep_echo_over_tcp() {
    req_to_rep_echo(Transport::Tcp);
}

#[test]
fn req_to_rep_echo_over_ipc() {
    req_to_rep_echo(Transport::Ipc);
}

#[test]
fn rep_replies_with_stdin_lines() {
    let (mut rep, endpoint) = bound_tool(Transport::Tcp, &["rep", "-n", "2"]);
    rep.write("first answer\nsecond answer\n");
    rep.close_stdin();
    let req = Tool::run(&["req", "--connect", &endpoint], "q1\nq2\n");
    assert_success(&req);
    assert_eq!(req.stdout, ["first answer", "second answer"]);
    let rep = rep.wait();
    assert_success(&rep);
    assert_eq!(rep.stdout, ["q1", "q2"]);
}

/// The router prints the dealer's identity first; the test answers with that identity as
/// the first field, and the dealer gets the reply.
fn dealer_router_round_trip(transport: Transport, identity: Option<&str>) {
    let (mut router, endpoint) = bound_tool(transport, &["router", "-n", "1"]);
    let mut dealer_args = vec!["dealer", "--connect", &endpoint, "-n", "1"];
    if let Some(id) = identity {
        dealer_args.extend(["--identity", id]);
    }
    let mut dealer = Tool::spawn(&dealer_args);
    dealer.write("hello\n");
    dealer.close_stdin();

    let request = router.read_line();
    let (sender, body) = request.split_once('\t').expect("identity, TAB, body");
    assert_eq!(body, "hello");
    match identity {
        Some(id) => assert_eq!(sender, id),
        // libzmq's generated form: a zero byte and four more, printed as hex.
        None => assert!(sender.starts_with("0x00") && sender.len() == 12, "{sender}"),
    }
    router.write(&format!("{sender}\tworld\n"));
    router.close_stdin();

    let dealer = dealer.wait();
    assert_success(&dealer);
    assert_eq!(dealer.stdout, ["world"]);
    assert_success(&router.wait());
}

#[test]
fn dealer_router_round_trip_with_identity_over_tcp() {
    dealer_router_round_trip(Transport::Tcp, Some("client-1"));
}

#[test]
fn dealer_router_round_trip_with_identity_over_ipc() {
    dealer_router_round_trip(Transport::Ipc, Some("client-1"));
}

#[test]
fn dealer_router_generated_identity_round_trips_as_hex() {
    dealer_router_round_trip(Transport::Tcp, None);
}

#[test]
fn router_warns_about_unknown_identity_and_goes_on() {
    let (mut router, endpoint) = bound_tool(Transport::Tcp, &["router", "-n", "1"]);
    let mut dealer = Tool::spawn(&[
        "dealer",
        "--connect",
        &endpoint,
        "-n",
        "1",
        "--identity",
        "d",
    ]);
    dealer.write("hi\n");
    dealer.close_stdin();
    assert_eq!(router.read_line(), "d\thi");
    router.write("nobody\tlost\nd\tfound\n");
    router.close_stdin();
    let dealer = dealer.wait();
    assert_eq!(dealer.stdout, ["found"]);
    let router = router.wait();
    assert_success(&router);
    assert!(
        router
            .stderr
            .iter()
            .any(|l| l.contains("no peer has identity nobody")),
        "{router:?}"
    );
}

#[test]
fn pair_talks_both_ways() {
    let (mut left, endpoint) = bound_tool(Transport::Ipc, &["pair", "-n", "1"]);
    left.write("from left\n");
    left.close_stdin();
    let right = Tool::run(&["pair", "--connect", &endpoint, "-n", "1"], "from right\n");
    assert_success(&right);
    assert_eq!(right.stdout, ["from left"]);
    let left = left.wait();
    assert_success(&left);
    assert_eq!(left.stdout, ["from right"]);
}

/// XPUB prints the subscription it receives (0x01 + prefix, as hex) and publishes once the
/// subscriber is there; XSUB subscribes with `--subscribe` and prints what matches.
#[test]
fn xpub_to_xsub_shows_subscription_and_filters() {
    let (mut xpub, endpoint) = bound_tool(
        Transport::Tcp,
        &["xpub", "--wait-subscribers", "1", "-n", "1"],
    );
    xpub.write("other\nnews: it works\n");
    xpub.close_stdin();
    let xsub = Tool::run(
        &[
            "xsub",
            "--connect",
            &endpoint,
            "--subscribe",
            "news",
            "-n",
            "1",
        ],
        "",
    );
    assert_success(&xsub);
    assert_eq!(xsub.stdout, ["news: it works"]);
    let xpub = xpub.wait();
    assert_success(&xpub);
    assert_eq!(xpub.stdout, ["0x016e657773"]);
}

#[test]
fn hex_mode_reads_and_prints_frames_as_hex() {
    let (pull, endpoint) = bound_tool(Transport::Tcp, &["pull", "-n", "1", "--hex"]);
    let push = Tool::run(&["push", "--connect", &endpoint, "--hex"], "6869\t00ff\n");
    assert_success(&push);
    let pull = pull.wait();
    assert_success(&pull);
    assert_eq!(pull.stdout, ["6869\t00ff"]);
}

#[test]
fn custom_delimiter_splits_and_joins_frames() {
    let (pull, endpoint) = bound_tool(Transport::Tcp, &["pull", "-n", "1", "--delimiter", "|"]);
    let push = Tool::run(&["push", "--connect", &endpoint], "a|b\tc\n");
    assert_success(&push);
    let pull = pull.wait();
    assert_success(&pull);
    // The pusher split on TAB: two frames, "a|b" and "c"; "a|b" holds the puller's delimiter
    // so it is printed as hex to stay unambiguous.
    assert_eq!(pull.stdout, ["0x617c62|c"]);
}

// --- exit codes ----------------------------------------------------------------------------

/// Runs the tool expecting a usage error: exit 2 and one line on stderr containing `names`.
fn assert_usage_error(args: &[&str], names: &str) {
    let exit = Tool::run(args, "");
    assert_eq!(exit.code, Some(2), "{args:?}: {exit:?}");
    assert_eq!(exit.stderr.len(), 1, "{args:?}: {exit:?}");
    assert!(exit.stderr[0].contains(names), "{args:?}: {exit:?}");
    assert!(exit.stdout.is_empty(), "{args:?}: {exit:?}");
}

#[test]
fn usage_errors_exit_2_naming_the_bad_input() {
    assert_usage_error(&["push"], "--bind or --connect");
    assert_usage_error(
        &["proxy", "--frontend", "pull@tcp://127.0.0.1:0"],
        "--backend",
    );
    assert_usage_error(
        &[
            "proxy",
            "--frontend",
            "push@tcp://127.0.0.1:0",
            "--backend",
            "push@tcp://127.0.0.1:0",
        ],
        "--frontend: a push socket cannot receive",
    );
    assert_usage_error(
        &["proxy", "--frontend", "tcp://127.0.0.1:5555"],
        "TYPE@ENDPOINT",
    );
    assert_usage_error(
        &[
            "pull",
            "--bind",
            "tcp://127.0.0.1:0",
            "--backend",
            "push@tcp://127.0.0.1:0",
        ],
        "apply to proxy",
    );
    assert_usage_error(
        &["push", "--connect", "udp://127.0.0.1:5555"],
        "udp://127.0.0.1:5555",
    );
    assert_usage_error(
        &["push", "--bind", "tcp://127.0.0.1:notaport"],
        "tcp://127.0.0.1:notaport",
    );
    assert_usage_error(&["bogus", "--connect", "tcp://127.0.0.1:5555"], "bogus");
    assert_usage_error(&["pull", "--bind", "tcp://127.0.0.1:0", "-n", "abc"], "abc");
    assert_usage_error(
        &["pull", "--bind", "tcp://127.0.0.1:0", "--frobnicate"],
        "--frobnicate",
    );
    assert_usage_error(
        &[
            "push",
            "--connect",
            "tcp://127.0.0.1:5555",
            "--subscribe",
            "x",
        ],
        "--subscribe",
    );
    assert_usage_error(
        &[
            "sub",
            "--connect",
            "tcp://127.0.0.1:5555",
            "--wait-subscribers",
            "1",
        ],
        "--wait-subscribers",
    );
    assert_usage_error(
        &["req", "--connect", "tcp://127.0.0.1:5555", "--echo"],
        "--echo",
    );
    assert_usage_error(
        &[
            "dealer",
            "--connect",
            "tcp://127.0.0.1:5555",
            "--identity",
            "0x00ab",
        ],
        "--identity",
    );
    assert_usage_error(
        &[
            "pull",
            "--connect",
            "tcp://127.0.0.1:5555",
            "--delimiter",
            "",
        ],
        "--delimiter",
    );
    assert_usage_error(&[], "<TYPE>");
}

#[test]
fn help_documents_every_option_and_exits_0() {
    let exit = Tool::run(&["--help"], "");
    assert_success(&exit);
    let help = exit.stdout.join("\n");
    for word in [
        "push",
        "xsub",
        "router",
        "--bind",
        "--connect",
        "--subscribe",
        "--echo",
        "--count",
        "--timeout",
        "--identity",
        "--linger",
        "--sndhwm",
        "--rcvhwm",
        "--wait-subscribers",
        "--delay",
        "--delimiter",
        "--hex",
        "--verbose",
        "--events",
        "--stats",
        "--heartbeat-ivl",
        "--heartbeat-timeout",
        "--reconnect-ivl-max",
        "--frontend",
        "--backend",
        "--capture",
        "--control",
        "Exit codes",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}

#[test]
fn timeout_without_messages_exits_1() {
    let exit = Tool::run(
        &["pull", "--bind", "tcp://127.0.0.1:0", "--timeout", "100"],
        "",
    );
    assert_eq!(exit.code, Some(1), "{exit:?}");
    assert_eq!(exit.stderr.len(), 1, "{exit:?}");
    assert!(exit.stderr[0].contains("100 ms"), "{exit:?}");
}

#[test]
fn req_timeout_waiting_for_reply_exits_1() {
    // A libzmq ROUTER takes the request and never answers.
    let ctx = zmq::Context::new();
    let router = libzmq_socket(&ctx, zmq::ROUTER);
    let endpoint = libzmq_bind(&router, "tcp://127.0.0.1:0");
    let mut req = Tool::spawn(&["req", "--connect", &endpoint, "--timeout", "1000"]);
    req.write("anyone?\n");
    assert_eq!(
        router.recv_multipart(0).unwrap().last().unwrap(),
        b"anyone?"
    );
    let exit = req.wait();
    assert_eq!(exit.code, Some(1), "{exit:?}");
    assert!(
        exit.stderr[0].contains("no message arrived within 1000 ms"),
        "{exit:?}"
    );
}

#[test]
fn bad_hex_on_stdin_exits_1_naming_the_line() {
    let exit = Tool::run(
        &["pub", "--bind", "tcp://127.0.0.1:0", "--hex"],
        "00\nxyz\n",
    );
    assert_eq!(exit.code, Some(1), "{exit:?}");
    assert!(exit.stderr[0].contains("line 2"), "{exit:?}");
    assert!(exit.stderr[0].contains("xyz"), "{exit:?}");
}

// --- against libzmq --------------------------------------------------------------------------

fn libzmq_socket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let socket = ctx.socket(kind).unwrap();
    socket.set_rcvtimeo(LIBZMQ_TIMEOUT_MS).unwrap();
    socket.set_sndtimeo(LIBZMQ_TIMEOUT_MS).unwrap();
    socket.set_linger(0).unwrap();
    socket
}

/// Binds a libzmq socket and returns the endpoint it really bound.
fn libzmq_bind(socket: &zmq::Socket, addr: &str) -> String {
    socket.bind(addr).unwrap();
    socket.get_last_endpoint().unwrap().unwrap()
}

#[test]
fn tool_push_connects_to_libzmq_pull() {
    let ctx = zmq::Context::new();
    let pull = libzmq_socket(&ctx, zmq::PULL);
    let endpoint = libzmq_bind(&pull, "tcp://127.0.0.1:0");
    let push = Tool::run(&["push", "--connect", &endpoint], "one\ttwo\n0x00ff\n");
    assert_success(&push);
    assert_eq!(pull.recv_multipart(0).unwrap(), [&b"one"[..], b"two"]);
    assert_eq!(pull.recv_multipart(0).unwrap(), [&[0u8, 0xff][..]]);
}

#[test]
fn libzmq_push_connects_to_tool_pull() {
    let (pull, endpoint) = bound_tool(Transport::Ipc, &["pull", "-n", "2"]);
    let ctx = zmq::Context::new();
    let push = libzmq_socket(&ctx, zmq::PUSH);
    push.connect(&endpoint).unwrap();
    push.send_multipart([&b"from"[..], b"libzmq"], 0).unwrap();
    push.send(&b"\x01\x02"[..], 0).unwrap();
    let pull = pull.wait();
    assert_success(&pull);
    assert_eq!(pull.stdout, ["from\tlibzmq", "0x0102"]);
}

#[test]
fn libzmq_sub_connects_to_tool_pub() {
    let (mut publisher, endpoint) = bound_tool(Transport::Tcp, &["pub", "--wait-subscribers", "1"]);
    let ctx = zmq::Context::new();
    let sub = libzmq_socket(&ctx, zmq::SUB);
    sub.set_subscribe(b"t").unwrap();
    sub.connect(&endpoint).unwrap();
    publisher.write("t1\nx\nt2\tmore\n");
    publisher.close_stdin();
    assert_eq!(sub.recv_multipart(0).unwrap(), [b"t1"]);
    assert_eq!(sub.recv_multipart(0).unwrap(), [&b"t2"[..], b"more"]);
    assert_success(&publisher.wait());
}

#[test]
fn tool_sub_connects_to_libzmq_xpub() {
    let ctx = zmq::Context::new();
    let xpub = libzmq_socket(&ctx, zmq::XPUB);
    let endpoint = libzmq_bind(&xpub, "tcp://127.0.0.1:0");
    let sub = Tool::spawn(&["sub", "--connect", &endpoint, "--subscribe", "t", "-n", "2"]);
    // The subscription arriving is the signal that the subscriber is there.
    assert_eq!(xpub.recv_bytes(0).unwrap(), b"\x01t");
    for message in [&b"t1"[..], b"x", b"t2"] {
        xpub.send(message, 0).unwrap();
    }
    let sub = sub.wait();
    assert_success(&sub);
    assert_eq!(sub.stdout, ["t1", "t2"]);
}

#[test]
fn tool_sub_binds_and_libzmq_xpub_connects() {
    let (sub, endpoint) = bound_tool(Transport::Ipc, &["sub", "-n", "1"]);
    let ctx = zmq::Context::new();
    let xpub = libzmq_socket(&ctx, zmq::XPUB);
    xpub.connect(&endpoint).unwrap();
    assert_eq!(xpub.recv_bytes(0).unwrap(), b"\x01");
    xpub.send("everything", 0).unwrap();
    let sub = sub.wait();
    assert_success(&sub);
    assert_eq!(sub.stdout, ["everything"]);
}

#[test]
fn tool_req_connects_to_libzmq_rep() {
    let ctx = zmq::Context::new();
    let rep = libzmq_socket(&ctx, zmq::REP);
    let endpoint = libzmq_bind(&rep, "tcp://127.0.0.1:0");
    let mut req = Tool::spawn(&["req", "--connect", &endpoint]);
    req.write("ping\n");
    assert_eq!(rep.recv_multipart(0).unwrap(), [b"ping"]);
    rep.send("pong", 0).unwrap();
    assert_eq!(req.read_line(), "pong");
    req.close_stdin();
    assert_success(&req.wait());
}

#[test]
fn libzmq_req_connects_to_tool_rep() {
    let (rep, endpoint) = bound_tool(Transport::Tcp, &["rep", "--echo", "-n", "1"]);
    let ctx = zmq::Context::new();
    let req = libzmq_socket(&ctx, zmq::REQ);
    req.connect(&endpoint).unwrap();
    req.send_multipart([&b"echo"[..], b"me"], 0).unwrap();
    assert_eq!(req.recv_multipart(0).unwrap(), [&b"echo"[..], b"me"]);
    let rep = rep.wait();
    assert_success(&rep);
    assert_eq!(rep.stdout, ["echo\tme"]);
}

#[test]
fn libzmq_dealer_round_trips_through_tool_router() {
    let (mut router, endpoint) = bound_tool(Transport::Tcp, &["router", "-n", "1"]);
    let ctx = zmq::Context::new();
    let dealer = libzmq_socket(&ctx, zmq::DEALER);
    dealer.set_identity(b"zmq-dealer").unwrap();
    dealer.connect(&endpoint).unwrap();
    dealer.send("job", 0).unwrap();
    assert_eq!(router.read_line(), "zmq-dealer\tjob");
    router.write("zmq-dealer\tdone\n");
    router.close_stdin();
    assert_eq!(dealer.recv_bytes(0).unwrap(), b"done");
    assert_success(&router.wait());
}

// ---------------------------------------------------------------------------------------------
// Security flags, against libzmq 4.3 with CURVE (pyzmq peers, tests/pyzmq).

#[test]
fn keygen_prints_a_z85_key_pair_whose_public_key_matches_its_secret() {
    let exit = Tool::run(&["keygen"], "");
    assert_success(&exit);
    let [public, secret] = &exit.stdout[..] else {
        panic!("two lines expected: {:?}", exit.stdout);
    };
    let public: CurveKey = public.strip_prefix("public: ").unwrap().parse().unwrap();
    let secret: CurveKey = secret.strip_prefix("secret: ").unwrap().parse().unwrap();
    assert_eq!(secret.public_from_secret(), public);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_server_pull_accepts_the_allowed_libzmq_client_and_refuses_another() {
    let server = keypair();
    let allowed = keypair();
    let (pull, endpoint) = bound_tool(
        Transport::Tcp,
        &[
            "pull",
            "-n",
            "3",
            "--curve-server",
            "--curve-secretkey",
            &server.1,
            "--allow-key",
            &allowed.0,
        ],
    );
    let stranger = PyPeer::start(
        &PeerConfig::connect("PUSH", &endpoint)
            .with_curve_client(&server.0, &keypair())
            .with_monitor(),
    )
    .await;
    let (status, _) = stranger.next_event("HANDSHAKE_FAILED_AUTH").await.unwrap();
    assert_eq!(status, 400);
    let push = PyPeer::start(
        &PeerConfig::connect("PUSH", &endpoint).with_curve_client(&server.0, &allowed),
    )
    .await;
    for word in ["one", "two", "three"] {
        push.send(&[word.as_bytes()]).await;
    }
    let exit = pull.wait();
    assert_success(&exit);
    assert_eq!(exit.stdout, ["one", "two", "three"]);
}

/// Z85 uses `-` (and the CLI's keys are random), so one key in 85 starts with it: such a key
/// is a value of its option, not an unknown flag. Clients and servers with those keys talk.
#[test]
fn keys_and_passwords_that_start_with_a_dash_are_values() {
    // "-0000" decodes to 4 bytes (0x3f * 85^4 < 2^32), so this is a valid 40-character key;
    // the server and the client both use it as their secret key, and the server also admits
    // a second, dashed public key nobody holds.
    let dashed_secret = format!("-{}", "0".repeat(39));
    let key: CurveKey = dashed_secret.parse().expect("a valid Z85 key");
    let public = key.public_from_secret().to_z85();
    let dashed_stranger = format!("-{}", "1".repeat(39));
    let (pull, endpoint) = bound_tool(
        Transport::Tcp,
        &[
            "pull",
            "-n",
            "1",
            "--curve-server",
            "--curve-secretkey",
            &dashed_secret,
            "--allow-key",
            &dashed_stranger,
            "--allow-key",
            &public,
        ],
    );
    let server_public = public;
    let mut push = Tool::spawn(&[
        "push",
        "--connect",
        &endpoint,
        "--curve-serverkey",
        &server_public,
        "--curve-secretkey",
        &dashed_secret,
    ]);
    push.write("dashed\n");
    let exit = pull.wait();
    assert_success(&exit);
    assert_eq!(exit.stdout, ["dashed"]);
    drop(push);

    // No input: the client ends at once, having parsed its options.
    let exit = Tool::run(
        &[
            "req",
            "--connect",
            "tcp://127.0.0.1:1",
            "--plain-username",
            "-user",
            "--plain-password",
            "-pass",
        ],
        "",
    );
    assert_success(&exit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_client_push_and_curve_client_req_talk_to_libzmq_servers() {
    let pull = PyPeer::start(
        &PeerConfig::bind("PULL", "tcp://127.0.0.1:0")
            .with_plain_server()
            .with_zap(ZapConfig {
                plain: vec![("admin".into(), "secret".into())],
                ..Default::default()
            }),
    )
    .await;
    let exit = Tool::run(
        &[
            "push",
            "--connect",
            pull.endpoint(),
            "--plain-username",
            "admin",
            "--plain-password",
            "secret",
        ],
        "a\nb\n",
    );
    assert_success(&exit);
    assert_eq!(pull.recv().await.unwrap(), [b"a".to_vec()]);
    assert_eq!(pull.recv().await.unwrap(), [b"b".to_vec()]);

    let server = keypair();
    let rep =
        PyPeer::start(&PeerConfig::bind("REP", "tcp://127.0.0.1:0").with_curve_server(&server.1))
            .await;
    let echo = rep.echo(1);
    let endpoint = rep.endpoint().to_owned();
    let exit = tokio::task::spawn_blocking(move || {
        Tool::run(
            &[
                "req",
                "--connect",
                &endpoint,
                "--curve-serverkey",
                &server.0,
            ],
            "ping\n",
        )
    });
    echo.await;
    let exit = exit.await.unwrap();
    assert_success(&exit);
    assert_eq!(exit.stdout, ["ping"]);
}

// --- watching a socket: --events and --stats ---------------------------------------------

/// The `accepted`/`connected` line's peer address, checked to be a loopback `ip:port`.
fn peer_of(line: &str) -> String {
    let peer = line.split(' ').nth(2).unwrap_or_default().to_owned();
    assert!(peer.starts_with("127.0.0.1:"), "{line}");
    peer
}

#[test]
fn events_name_each_connection_event_of_a_tool_that_binds_with_a_libzmq_peer() {
    let (pull, endpoint) = bound_tool(Transport::Tcp, &["pull", "-n", "1", "--events"]);
    let ctx = zmq::Context::new();
    let push = libzmq_socket(&ctx, zmq::PUSH);
    push.connect(&endpoint).unwrap();
    push.send("hello", 0).unwrap();
    let exit = pull.wait();
    assert_success(&exit);
    let events: Vec<&String> = exit
        .stderr
        .iter()
        // Not the timestamped --verbose log lines.
        .filter(|l| !l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(events[0], &format!("listening {endpoint}"), "{events:?}");
    assert!(
        events[1].starts_with(&format!("accepted {endpoint} ")),
        "{events:?}"
    );
    let peer = peer_of(events[1]);
    assert_eq!(events[2], &format!("handshake_succeeded {endpoint} {peer}"));
    assert_eq!(events[3], &format!("closed {endpoint}"));
    assert_eq!(events[4], "monitor_stopped");
}

#[test]
fn events_name_each_attempt_of_a_tool_that_connects_to_a_libzmq_peer() {
    let ctx = zmq::Context::new();
    let pull = libzmq_socket(&ctx, zmq::PULL);
    let endpoint = libzmq_bind(&pull, "tcp://127.0.0.1:0");
    let mut push = Tool::spawn(&["push", "--connect", &endpoint, "--events"]);
    // The line goes in once the handshake is reported. A PUSH queues for a peer still
    // connecting (`immediate` off, libzmq's default), so the tool could otherwise send and
    // close first; the close stops the socket's monitors, and a handshake that completes
    // while it lingers is not reported.
    push.stderr_line(
        |l| l.starts_with("handshake_succeeded "),
        "handshake_succeeded",
    );
    push.write("one\n");
    push.close_stdin();
    let push = push.wait();
    assert_success(&push);
    assert_eq!(pull.recv_bytes(0).unwrap(), b"one");
    let addr = endpoint.trim_start_matches("tcp://");
    assert_eq!(
        push.stderr,
        [
            format!("connect_delayed {endpoint}"),
            format!("connected {endpoint} {addr}"),
            format!("handshake_succeeded {endpoint} {addr}"),
            "monitor_stopped".to_owned(),
        ]
    );
}

#[test]
fn events_report_a_refused_connection_and_its_retry_interval() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let mut push = Tool::spawn(&["push", "--connect", &endpoint, "--events"]);
    push.stderr_line(|l| l == format!("closed {endpoint}"), "closed");
    let retried = push.stderr_line(|l| l.starts_with("connect_retried "), "connect_retried");
    let interval = retried
        .strip_prefix(&format!("connect_retried {endpoint} "))
        .and_then(|ms| ms.strip_suffix("ms"))
        .and_then(|ms| ms.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{retried}"));
    // libzmq's default reconnect_ivl of 100 ms, plus up to as much jitter.
    assert!((100..200).contains(&interval), "{retried}");
}

/// The value of `"key":` in a JSON line, up to the next `,` or `}` (numbers and null).
fn json_number<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len()
        + 3;
    let rest = &line[start..];
    &rest[..rest.find([',', '}']).unwrap_or(rest.len())]
}

#[test]
fn stats_print_totals_and_each_peer_as_json_lines_while_running_and_at_exit() {
    let (mut pull, endpoint) = bound_tool(Transport::Tcp, &["pull", "-n", "3", "--stats", "20"]);
    let ctx = zmq::Context::new();
    let push = libzmq_socket(&ctx, zmq::PUSH);
    push.connect(&endpoint).unwrap();
    push.send("one", 0).unwrap();
    push.send("two", 0).unwrap();
    assert_eq!(pull.read_line(), "one");
    assert_eq!(pull.read_line(), "two");
    // A periodic line, while the tool still waits for its third message.
    let line = pull.stderr_line(
        |l| l.starts_with('{') && json_number(l, "messages_in") == "2",
        "a stats line counting two messages",
    );
    assert!(line.starts_with(r#"{"socket_type":"PULL","#), "{line}");
    for key in ["messages_out", "bytes_out", "dropped"] {
        assert_eq!(json_number(&line, key), "0", "{key} in {line}");
    }
    assert_eq!(json_number(&line, "bytes_in"), "6");
    let peers = &line[line.find(r#""peers":[{"#).expect("one peer") + 9..];
    assert_eq!(json_number(peers, "messages_in"), "2", "{line}");
    assert_eq!(json_number(peers, "bytes_in"), "6", "{line}");
    assert_eq!(json_number(peers, "reconnects"), "0", "{line}");
    assert!(peers.contains(r#""socket_type":"PUSH""#), "{line}");

    push.send("three", 0).unwrap();
    let exit = pull.wait();
    assert_success(&exit);
    let last = exit
        .stderr
        .iter()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap();
    assert_eq!(
        json_number(last, "messages_in"),
        "3",
        "the line at exit: {last}"
    );
}

// --- the proxy -------------------------------------------------------------------------------

/// Starts `ferromq proxy` with `args` (whose sockets all bind port 0) and returns it with the
/// endpoints it bound, in the order given.
fn bound_proxy(args: &[&str], binds: usize) -> (Tool, Vec<String>) {
    let mut full = vec!["proxy", "--verbose"];
    full.extend(args);
    let mut tool = Tool::spawn(&full);
    let endpoints = (0..binds).map(|_| tool.bound_endpoint()).collect();
    (tool, endpoints)
}

#[test]
fn proxy_forwards_between_libzmq_publishers_and_subscribers_with_subscriptions_upstream() {
    let (proxy, endpoints) = bound_proxy(
        &[
            "--frontend",
            "xsub@tcp://127.0.0.1:0",
            "--backend",
            "xpub@tcp://127.0.0.1:0",
        ],
        2,
    );
    let ctx = zmq::Context::new();
    let publisher = libzmq_socket(&ctx, zmq::PUB);
    publisher.connect(&endpoints[0]).unwrap();
    let subscriber = libzmq_socket(&ctx, zmq::SUB);
    subscriber.set_subscribe(b"news").unwrap();
    subscriber.set_rcvtimeo(100).unwrap();
    subscriber.connect(&endpoints[1]).unwrap();
    // The subscription travels subscriber -> proxy -> publisher; until it arrives the
    // publisher drops, so publish until one arrives (each wait is a bounded receive).
    let deadline = Instant::now() + CHILD_DEADLINE;
    let received = loop {
        assert!(Instant::now() < deadline, "nothing came through the proxy");
        publisher.send("weather: rain", 0).unwrap();
        publisher.send("news: proxy works", 0).unwrap();
        if let Ok(message) = subscriber.recv_bytes(0) {
            break message;
        }
    };
    assert_eq!(
        received, b"news: proxy works",
        "filtered by the subscription"
    );
    drop(proxy);
}

#[test]
fn proxy_reports_events_and_stats_per_socket_and_a_control_socket_steers_and_terminates_it() {
    let (mut proxy, endpoints) = bound_proxy(
        &[
            "--frontend",
            "pull@tcp://127.0.0.1:0",
            "--backend",
            "push@tcp://127.0.0.1:0",
            "--control",
            "rep@tcp://127.0.0.1:0",
            "--events",
            "--stats",
            "20",
        ],
        3,
    );
    let ctx = zmq::Context::new();
    let producer = libzmq_socket(&ctx, zmq::PUSH);
    producer.connect(&endpoints[0]).unwrap();
    let consumer = libzmq_socket(&ctx, zmq::PULL);
    consumer.connect(&endpoints[1]).unwrap();
    for text in ["one", "two", "three"] {
        producer.send(text, 0).unwrap();
    }
    for text in ["one", "two", "three"] {
        assert_eq!(consumer.recv_bytes(0).unwrap(), text.as_bytes());
    }
    let frontend = endpoints[0].as_str();
    proxy.stderr_line(
        |l| l.starts_with(&format!("handshake_succeeded {frontend} 127.0.0.1:")),
        "the frontend's handshake event",
    );
    let line = proxy.stderr_line(
        |l| l.starts_with(r#"{"socket":"frontend""#) && json_number(l, "messages_in") == "3",
        "a frontend stats line counting three messages",
    );
    assert_eq!(json_number(&line, "bytes_in"), "11");

    let control = libzmq_socket(&ctx, zmq::REQ);
    control.connect(&endpoints[2]).unwrap();
    control.send("STATISTICS", 0).unwrap();
    let reply = control.recv_multipart(0).unwrap();
    let counters: Vec<u64> = reply
        .iter()
        .map(|frame| u64::from_ne_bytes(frame[..].try_into().unwrap()))
        .collect();
    // frontend in (messages, bytes), out; backend in, out
    assert_eq!(counters, [3, 11, 0, 0, 0, 0, 3, 11]);
    control.send("TERMINATE", 0).unwrap();
    assert_eq!(control.recv_bytes(0).unwrap(), b"");
    let exit = proxy.wait();
    assert_success(&exit);
    let backend_last = exit
        .stderr
        .iter()
        .rev()
        .find(|l| l.starts_with(r#"{"socket":"backend""#))
        .expect("a last backend stats line at exit");
    assert_eq!(json_number(backend_last, "messages_out"), "3");
    assert!(exit.stderr.iter().any(|l| l == "monitor_stopped"));
}
