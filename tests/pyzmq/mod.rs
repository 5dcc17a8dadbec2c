//! Scriptable libzmq 4.3 peers with CURVE, PLAIN and ZAP, driven through pyzmq.
//!
//! The `zmq` crate's bundled libzmq is built without CURVE, so the security interop tests
//! talk to pyzmq (27.x wheels bundle libzmq 4.3.5 with CURVE) instead. Each [`PyPeer`] is
//! one `python3 tests/pyzmq/peer.py <json config>` process holding one libzmq socket; the
//! test sends it line commands on stdin and reads its line replies on stdout (the protocol
//! is described at the top of `peer.py`).
//!
//! [`python()`] finds `python3` and makes pyzmq importable, installing it with pip into
//! `<target dir>/pyzmq-27` the first time, so a plain `cargo test` works on a fresh machine
//! that has `python3` and `pip` (`.ci/run` installs those).
//!
//! Use it from a test file in `tests/` with `mod pyzmq;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::Mutex;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::{Instant, timeout, timeout_at};

/// How long any single wait on a peer may take before the test panics.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The pip requirement installed into `<target dir>/pyzmq-27`.
const PYZMQ_REQUIREMENT: &str = "pyzmq>=27,<28";
const PYZMQ_DIR: &str = "pyzmq-27";
const PEER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyzmq/peer.py");
const CHECK_SCRIPT: &str = "import zmq; print(zmq.pyzmq_version(), zmq.zmq_version(), \
                            'curve' if zmq.has('curve') else 'nocurve')";

/// A Python interpreter that can `import zmq` (pyzmq 27, libzmq 4.3 with CURVE).
#[derive(Debug)]
pub struct PythonEnv {
    /// The interpreter: `$FERROMQ_PYTHON`, else `python3` from `PATH`.
    pub program: String,
    /// The directory to put on `PYTHONPATH` (holds the `zmq` package).
    pub pythonpath: PathBuf,
    /// pyzmq's version, e.g. "27.1.0".
    pub pyzmq_version: String,
    /// The bundled libzmq's version, e.g. "4.3.5".
    pub libzmq_version: String,
}

impl PythonEnv {
    /// A `Command` running this interpreter with pyzmq importable.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.env("PYTHONPATH", &self.pythonpath)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONNOUSERSITE", "1");
        cmd
    }
}

/// The shared Python environment, set up (and pyzmq installed) on first use.
///
/// Panics with a clear message if `python3`/pip is missing or the install fails.
pub fn python() -> &'static PythonEnv {
    static ENV: OnceLock<PythonEnv> = OnceLock::new();
    ENV.get_or_init(setup_python)
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
            }
        }
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

/// Runs the check script with `dir` on `PYTHONPATH`: `Ok((pyzmq, libzmq, has_curve))` or
/// `Err(stderr)`.
fn probe_pyzmq(program: &str, dir: &Path) -> Result<(String, String, bool), String> {
    let output = Command::new(program)
        .env("PYTHONPATH", dir)
        .env("PYTHONNOUSERSITE", "1")
        .args(["-c", CHECK_SCRIPT])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let words: Vec<&str> = stdout.split_whitespace().collect();
    match words.as_slice() {
        [pyzmq, libzmq, curve] => {
            Ok(((*pyzmq).to_owned(), (*libzmq).to_owned(), *curve == "curve"))
        }
        _ => Err(format!(
            "unexpected output from the pyzmq check: {stdout:?}"
        )),
    }
}

/// pip-installs pyzmq into a fresh temporary directory next to `dir`, then renames it to
/// `dir`. Racing test binaries each install into their own temporary directory; the losers'
/// renames fail and they use the winner's copy.
fn install_pyzmq(program: &str, dir: &Path) {
    let parent = dir.parent().expect("pyzmq dir has a parent");
    std::fs::create_dir_all(parent)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = parent.join(format!("{PYZMQ_DIR}.tmp-{}-{nanos}", std::process::id()));
    let output = Command::new(program)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet"])
        .arg("--target")
        .arg(&tmp)
        .arg(PYZMQ_REQUIREMENT)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("pyzmq install failed: cannot run {program} -m pip: {e}; .ci/run installs python3 and pip")
        });
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        panic!(
            "pyzmq install failed: {}; .ci/run installs python3 and pip",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    if std::fs::rename(&tmp, dir).is_ok() {
        return;
    }
    // Someone else's copy is there: use it if it works, else replace it.
    if probe_pyzmq(program, dir).is_ok() {
        let _ = std::fs::remove_dir_all(&tmp);
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        if probe_pyzmq(program, dir).is_err() {
            panic!(
                "pyzmq install failed: cannot move {} to {}: {e}",
                tmp.display(),
                dir.display()
            );
        }
    }
}

fn setup_python() -> PythonEnv {
    let program = std::env::var("FERROMQ_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    match Command::new(&program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => {}
        other => panic!(
            "{program} not found or not working ({other:?}); .ci/run installs python3 and pip"
        ),
    }
    let dir = target_dir().join(PYZMQ_DIR);
    let probed = match probe_pyzmq(&program, &dir) {
        Ok(found) => found,
        Err(_) => {
            install_pyzmq(&program, &dir);
            probe_pyzmq(&program, &dir).unwrap_or_else(|e| {
                panic!(
                    "pyzmq installed into {} but `import zmq` fails: {e}",
                    dir.display()
                )
            })
        }
    };
    let (pyzmq_version, libzmq_version, has_curve) = probed;
    assert!(
        has_curve && libzmq_version.starts_with("4.3"),
        "pyzmq {pyzmq_version} in {} bundles libzmq {libzmq_version} {} CURVE; the tests \
         need libzmq 4.3 with CURVE (delete that directory to reinstall)",
        dir.display(),
        if has_curve { "with" } else { "without" },
    );
    PythonEnv {
        program,
        pythonpath: dir,
        pyzmq_version,
        libzmq_version,
    }
}

/// A fresh CURVE keypair as Z85 strings: `(public, secret)`.
pub fn keypair() -> (String, String) {
    let output = python()
        .command()
        .args([
            "-c",
            "import zmq; print(*[k.decode() for k in zmq.curve_keypair()])",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run python3 for a curve keypair");
    assert!(
        output.status.success(),
        "zmq.curve_keypair() failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("Z85 keys are ASCII");
    let mut keys = stdout.split_whitespace();
    match (keys.next(), keys.next()) {
        (Some(public), Some(secret)) if public.len() == 40 && secret.len() == 40 => {
            (public.to_owned(), secret.to_owned())
        }
        _ => panic!("unexpected curve_keypair output: {stdout:?}"),
    }
}

/// The ZAP handler (pyzmq's `ThreadAuthenticator`) a peer runs in its context.
#[derive(Debug, Clone, Default)]
pub struct ZapConfig {
    /// Allowed client IP addresses (if non-empty, every other address is denied).
    pub allow: Vec<String>,
    /// Denied client IP addresses (used only if `allow` is empty).
    pub deny: Vec<String>,
    /// PLAIN `(username, password)` table; empty means PLAIN is not configured.
    pub plain: Vec<(String, String)>,
    /// CURVE client public keys (Z85) that are allowed.
    pub curve_keys: Option<Vec<String>>,
    /// Allow any CURVE client key (overrides `curve_keys`).
    pub curve_any: bool,
    /// The ZAP domain the tables apply to; `None` means "*".
    pub domain: Option<String>,
}

/// One pyzmq peer's configuration; each field maps to the JSON key of the same name
/// (`socket_type` is `type`). `None`/`false`/empty fields are left out.
#[derive(Debug, Clone, Default)]
pub struct PeerConfig {
    /// "PUSH", "PULL", "PUB", "SUB", "XPUB", "XSUB", "REQ", "REP", "DEALER", "ROUTER", "PAIR".
    pub socket_type: &'static str,
    pub bind: Option<String>,
    pub connect: Option<String>,
    pub plain_server: bool,
    pub plain_username: Option<String>,
    pub plain_password: Option<String>,
    pub curve_server: bool,
    pub curve_publickey: Option<String>,
    pub curve_secretkey: Option<String>,
    pub curve_serverkey: Option<String>,
    pub zap_domain: Option<String>,
    pub routing_id: Option<String>,
    pub zap: Option<ZapConfig>,
    /// Print `EVENT` lines from a socket monitor.
    pub monitor: bool,
    /// SUB: `ZMQ_SUBSCRIBE` prefixes; XSUB: subscription messages sent after connecting.
    pub subscribe: Vec<String>,
    /// Milliseconds; the peer defaults to 20000.
    pub rcvtimeo: Option<i32>,
    /// Milliseconds; the peer defaults to 20000.
    pub sndtimeo: Option<i32>,
    /// Milliseconds; the peer defaults to 2000.
    pub linger: Option<i32>,
    pub sndhwm: Option<i32>,
    pub rcvhwm: Option<i32>,
    pub immediate: Option<bool>,
}

impl PeerConfig {
    /// A socket of `socket_type` that binds `endpoint` (e.g. "tcp://127.0.0.1:0").
    pub fn bind(socket_type: &'static str, endpoint: &str) -> Self {
        PeerConfig {
            socket_type,
            bind: Some(endpoint.to_owned()),
            ..Default::default()
        }
    }

    /// A socket of `socket_type` that connects to `endpoint`.
    pub fn connect(socket_type: &'static str, endpoint: &str) -> Self {
        PeerConfig {
            socket_type,
            connect: Some(endpoint.to_owned()),
            ..Default::default()
        }
    }

    /// CURVE server with this secret key.
    pub fn with_curve_server(mut self, secret_key: &str) -> Self {
        self.curve_server = true;
        self.curve_secretkey = Some(secret_key.to_owned());
        self
    }

    /// CURVE client of the server with public key `server_key`, using `(public, secret)`.
    pub fn with_curve_client(mut self, server_key: &str, keys: &(String, String)) -> Self {
        self.curve_serverkey = Some(server_key.to_owned());
        self.curve_publickey = Some(keys.0.clone());
        self.curve_secretkey = Some(keys.1.clone());
        self
    }

    /// PLAIN server.
    pub fn with_plain_server(mut self) -> Self {
        self.plain_server = true;
        self
    }

    /// PLAIN client with these credentials.
    pub fn with_plain_client(mut self, username: &str, password: &str) -> Self {
        self.plain_username = Some(username.to_owned());
        self.plain_password = Some(password.to_owned());
        self
    }

    pub fn with_zap(mut self, zap: ZapConfig) -> Self {
        self.zap = Some(zap);
        self
    }

    pub fn with_monitor(mut self) -> Self {
        self.monitor = true;
        self
    }

    pub fn with_rcvtimeo(mut self, ms: i32) -> Self {
        self.rcvtimeo = Some(ms);
        self
    }

    pub fn with_sndtimeo(mut self, ms: i32) -> Self {
        self.sndtimeo = Some(ms);
        self
    }

    /// The JSON object `peer.py` reads.
    pub fn to_json(&self) -> String {
        let mut o = JsonObject::default();
        o.str("type", self.socket_type);
        o.opt_str("bind", &self.bind);
        o.opt_str("connect", &self.connect);
        o.flag("plain_server", self.plain_server);
        o.opt_str("plain_username", &self.plain_username);
        o.opt_str("plain_password", &self.plain_password);
        o.flag("curve_server", self.curve_server);
        o.opt_str("curve_publickey", &self.curve_publickey);
        o.opt_str("curve_secretkey", &self.curve_secretkey);
        o.opt_str("curve_serverkey", &self.curve_serverkey);
        o.opt_str("zap_domain", &self.zap_domain);
        o.opt_str("routing_id", &self.routing_id);
        if let Some(zap) = &self.zap {
            o.raw("zap", zap.to_json());
        }
        o.flag("monitor", self.monitor);
        if !self.subscribe.is_empty() {
            o.raw("subscribe", json_str_array(&self.subscribe));
        }
        for (key, value) in [
            ("rcvtimeo", self.rcvtimeo),
            ("sndtimeo", self.sndtimeo),
            ("linger", self.linger),
            ("sndhwm", self.sndhwm),
            ("rcvhwm", self.rcvhwm),
        ] {
            if let Some(v) = value {
                o.raw(key, v.to_string());
            }
        }
        if let Some(immediate) = self.immediate {
            o.raw("immediate", immediate.to_string());
        }
        o.finish()
    }
}

impl ZapConfig {
    fn to_json(&self) -> String {
        let mut o = JsonObject::default();
        if !self.allow.is_empty() {
            o.raw("allow", json_str_array(&self.allow));
        }
        if !self.deny.is_empty() {
            o.raw("deny", json_str_array(&self.deny));
        }
        if !self.plain.is_empty() {
            let mut table = JsonObject::default();
            for (user, password) in &self.plain {
                table.str(user, password);
            }
            o.raw("plain", table.finish());
        }
        if self.curve_any {
            o.str("curve_keys", "any");
        } else if let Some(keys) = &self.curve_keys {
            o.raw("curve_keys", json_str_array(keys));
        }
        o.opt_str("domain", &self.domain);
        o.finish()
    }
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_str_array(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| json_str(s)).collect();
    format!("[{}]", items.join(","))
}

#[derive(Default)]
struct JsonObject(Vec<String>);

impl JsonObject {
    fn raw(&mut self, key: &str, value: String) {
        self.0.push(format!("{}:{value}", json_str(key)));
    }
    fn str(&mut self, key: &str, value: &str) {
        self.raw(key, json_str(value));
    }
    fn opt_str(&mut self, key: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }
    fn flag(&mut self, key: &str, value: bool) {
        if value {
            self.raw(key, "true".to_owned());
        }
    }
    fn finish(self) -> String {
        format!("{{{}}}", self.0.join(","))
    }
}

/// Hex for one frame, `-` for an empty one.
fn frame_to_hex(frame: &[u8]) -> String {
    if frame.is_empty() {
        return "-".to_owned();
    }
    frame.iter().map(|b| format!("{b:02x}")).collect()
}

fn frame_from_hex(word: &str) -> Vec<u8> {
    if word == "-" {
        return Vec::new();
    }
    assert!(
        word.len().is_multiple_of(2),
        "odd-length hex frame {word:?}"
    );
    (0..word.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&word[i..i + 2], 16).expect("hex frame"))
        .collect()
}

/// One ZAP decision of a peer's authenticator (its `ZAP` lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZapDecision {
    /// "200", "400", ...
    pub status_code: String,
    /// The User-Id on success (PLAIN: the username; CURVE: the client's Z85 public key).
    pub user_id: Option<String>,
    /// "OK", "Unknown key", "Invalid password", "Address not allowed", ...
    pub status_text: String,
}

/// A running `peer.py` process with one libzmq socket. Killed when dropped.
pub struct PyPeer {
    label: String,
    child: Mutex<Child>,
    stdin: Mutex<ChildStdin>,
    replies: Mutex<UnboundedReceiver<String>>,
    events: Mutex<UnboundedReceiver<String>>,
    zap: Mutex<UnboundedReceiver<String>>,
    /// `EVENT` lines that `next_event` skipped, in order.
    skipped_events: StdMutex<Vec<String>>,
    stderr: Arc<StdMutex<String>>,
    endpoint: Option<String>,
    /// Bound on every wait.
    pub timeout: Duration,
}

impl PyPeer {
    /// Spawns a peer and waits until it is `READY` (bound or connected, ZAP handler up).
    pub async fn start(config: &PeerConfig) -> PyPeer {
        let env = python();
        let json = config.to_json();
        let mut cmd = tokio::process::Command::from(env.command());
        cmd.arg(PEER_SCRIPT)
            .arg(&json)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {} {PEER_SCRIPT}: {e}", env.program));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");

        let (reply_tx, reply_rx) = unbounded_channel();
        let (event_tx, event_rx) = unbounded_channel();
        let (zap_tx, zap_rx) = unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let tx = if line.starts_with("EVENT ") {
                    &event_tx
                } else if line.starts_with("ZAP ") {
                    &zap_tx
                } else {
                    &reply_tx
                };
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(StdMutex::new(String::new()));
        let stderr_sink = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr_pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = stderr_sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });

        let mut peer = PyPeer {
            label: format!(
                "pyzmq {} peer {}",
                config.socket_type,
                config
                    .bind
                    .as_deref()
                    .or(config.connect.as_deref())
                    .unwrap_or("?")
            ),
            child: Mutex::new(child),
            stdin: Mutex::new(stdin),
            replies: Mutex::new(reply_rx),
            events: Mutex::new(event_rx),
            zap: Mutex::new(zap_rx),
            skipped_events: StdMutex::new(Vec::new()),
            stderr,
            endpoint: None,
            timeout: DEFAULT_TIMEOUT,
        };
        loop {
            let line = peer.reply().await;
            if let Some(endpoint) = line.strip_prefix("BOUND ") {
                peer.endpoint = Some(endpoint.to_owned());
                peer.label = format!("pyzmq {} peer bound to {endpoint}", config.socket_type);
            } else if line == "READY" {
                return peer;
            } else if line != "CONNECTED" {
                peer.fail(&format!("unexpected line {line:?} while starting"))
                    .await;
            }
        }
    }

    /// The endpoint the peer bound (its `BOUND` line). Panics for a connecting peer.
    pub fn endpoint(&self) -> &str {
        self.endpoint
            .as_deref()
            .unwrap_or_else(|| panic!("{} did not bind", self.label))
    }

    /// What the peer wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Panics with `what` and the peer's stderr.
    async fn fail(&self, what: &str) -> ! {
        // Give the stderr reader a moment to catch up with a traceback.
        tokio::time::sleep(Duration::from_millis(200)).await;
        panic!(
            "{}: {what}\n--- peer stderr ---\n{}",
            self.label,
            self.stderr()
        );
    }

    /// The next reply line; panics on timeout, exit, or an `ERROR` line.
    async fn reply(&self) -> String {
        let mut replies = self.replies.lock().await;
        match timeout(self.timeout, replies.recv()).await {
            Err(_) => {
                drop(replies);
                self.fail(&format!("no reply within {:?}", self.timeout))
                    .await
            }
            Ok(None) => {
                drop(replies);
                self.fail("exited (stdout closed)").await
            }
            Ok(Some(line)) if line.starts_with("ERROR") => {
                drop(replies);
                self.fail(&line).await
            }
            Ok(Some(line)) => line,
        }
    }

    /// Sends one command line and returns the first reply line.
    pub async fn command(&self, line: &str) -> String {
        {
            let mut stdin = self.stdin.lock().await;
            let written = async {
                stdin.write_all(line.as_bytes()).await?;
                stdin.write_all(b"\n").await?;
                stdin.flush().await
            };
            if let Err(e) = written.await {
                self.fail(&format!("cannot send {line:?}: {e}")).await;
            }
        }
        self.reply().await
    }

    /// `SEND`: sends a multipart message; panics if it times out (sndtimeo).
    pub async fn send(&self, frames: &[&[u8]]) {
        if !self.try_send(frames).await {
            self.fail("SEND timed out").await;
        }
    }

    /// `SEND`: sends a multipart message; `false` if it timed out (sndtimeo).
    pub async fn try_send(&self, frames: &[&[u8]]) -> bool {
        let words: Vec<String> = frames.iter().map(|f| frame_to_hex(f)).collect();
        match self
            .command(&format!("SEND {}", words.join(" ")))
            .await
            .as_str()
        {
            "SENT" => true,
            "TIMEOUT" => false,
            other => {
                self.fail(&format!("SEND: unexpected reply {other:?}"))
                    .await
            }
        }
    }

    fn parse_msg(line: &str) -> Option<Vec<Vec<u8>>> {
        let rest = line.strip_prefix("MSG")?;
        Some(rest.split_whitespace().map(frame_from_hex).collect())
    }

    /// `RECV`: one multipart message, or `None` if it timed out (rcvtimeo).
    pub async fn recv(&self) -> Option<Vec<Vec<u8>>> {
        let line = self.command("RECV").await;
        if line == "TIMEOUT" {
            return None;
        }
        match Self::parse_msg(&line) {
            Some(frames) => Some(frames),
            None => self.fail(&format!("RECV: unexpected reply {line:?}")).await,
        }
    }

    /// `RECVMETA`: one multipart message and the metadata `property` of its last frame
    /// ("User-Id", "Peer-Address", "Socket-Type", ...; `None` if absent). Panics on timeout.
    pub async fn recv_meta(&self, property: &str) -> (Vec<Vec<u8>>, Option<String>) {
        let line = self.command(&format!("RECVMETA {property}")).await;
        let Some(frames) = Self::parse_msg(&line) else {
            self.fail(&format!("RECVMETA: unexpected reply {line:?}"))
                .await
        };
        let meta = self.reply().await;
        let prefix = format!("META {property} ");
        match meta.strip_prefix(&prefix) {
            Some("-") => (frames, None),
            Some(value) => (frames, Some(value.to_owned())),
            None => {
                self.fail(&format!("RECVMETA: unexpected reply {meta:?}"))
                    .await
            }
        }
    }

    /// `ECHO n`: receives `n` messages, sending each straight back.
    pub async fn echo(&self, n: usize) {
        let line = self.command(&format!("ECHO {n}")).await;
        if line != format!("ECHOED {n}") {
            self.fail(&format!("ECHO: unexpected reply {line:?}")).await;
        }
    }

    /// `SENDN n size`: sends `n` numbered messages of `size` bytes (see [`numbered`]).
    pub async fn send_n(&self, n: usize, size: usize) {
        assert!(size >= 4, "send_n size must be at least 4");
        let line = self.command(&format!("SENDN {n} {size}")).await;
        if line != format!("SENT {n}") {
            self.fail(&format!("SENDN: unexpected reply {line:?}"))
                .await;
        }
    }

    /// `RECVN n`: receives `n` messages and checks they are `numbered(0..n)` in order.
    /// `Err("<index> <detail>")` on the first wrong one (or a timeout).
    pub async fn recv_n(&self, n: usize) -> Result<(), String> {
        let line = self.command(&format!("RECVN {n}")).await;
        if line == format!("GOT {n}") {
            Ok(())
        } else if let Some(bad) = line.strip_prefix("BAD ") {
            Err(bad.to_owned())
        } else {
            self.fail(&format!("RECVN: unexpected reply {line:?}"))
                .await
        }
    }

    /// `SUBSCRIBE` (SUB: sockopt; XSUB: subscription message).
    pub async fn subscribe(&self, prefix: &[u8]) {
        self.expect_ok(&format!("SUBSCRIBE {}", frame_to_hex(prefix)))
            .await;
    }

    /// `UNSUBSCRIBE` (SUB: sockopt; XSUB: unsubscription message).
    pub async fn unsubscribe(&self, prefix: &[u8]) {
        self.expect_ok(&format!("UNSUBSCRIBE {}", frame_to_hex(prefix)))
            .await;
    }

    async fn expect_ok(&self, command: &str) {
        let line = self.command(command).await;
        if line != "OK" {
            self.fail(&format!("{command}: unexpected reply {line:?}"))
                .await;
        }
    }

    /// `SLEEPMS`: the peer sleeps (commands queue behind it).
    pub async fn sleep_ms(&self, ms: u64) {
        let line = self.command(&format!("SLEEPMS {ms}")).await;
        if line != "SLEPT" {
            self.fail(&format!("SLEEPMS: unexpected reply {line:?}"))
                .await;
        }
    }

    /// Waits (up to [`Self::timeout`]) for the next monitor event `name`, e.g.
    /// "HANDSHAKE_FAILED_AUTH", returning its value and endpoint. Other events are skipped
    /// and kept in [`Self::skipped_events`]. `None` on timeout or if the peer exited.
    pub async fn next_event(&self, name: &str) -> Option<(i64, String)> {
        self.next_event_within(name, self.timeout).await
    }

    /// [`Self::next_event`] with its own bound.
    pub async fn next_event_within(&self, name: &str, wait: Duration) -> Option<(i64, String)> {
        let deadline = Instant::now() + wait;
        let mut events = self.events.lock().await;
        loop {
            let line = timeout_at(deadline, events.recv()).await.ok()??;
            let mut words = line.splitn(4, ' ').skip(1);
            let (event, value, endpoint) = (words.next()?, words.next()?, words.next()?);
            if event == name {
                let value = value.parse().unwrap_or(-1);
                return Some((value, endpoint.to_owned()));
            }
            self.skipped_events.lock().unwrap().push(line);
        }
    }

    /// The `EVENT` lines that [`Self::next_event`] skipped so far.
    pub fn skipped_events(&self) -> Vec<String> {
        self.skipped_events.lock().unwrap().clone()
    }

    /// Waits (up to [`Self::timeout`]) for the peer's ZAP handler's next decision.
    pub async fn next_zap(&self) -> Option<ZapDecision> {
        self.next_zap_within(self.timeout).await
    }

    /// [`Self::next_zap`] with its own bound.
    pub async fn next_zap_within(&self, wait: Duration) -> Option<ZapDecision> {
        let mut zap = self.zap.lock().await;
        let line = timeout(wait, zap.recv()).await.ok()??;
        let mut words = line.splitn(4, ' ').skip(1);
        let status_code = words.next()?.to_owned();
        let user_id = words.next()?;
        let status_text = words.next().unwrap_or("").to_owned();
        Some(ZapDecision {
            status_code,
            user_id: (user_id != "-").then(|| user_id.to_owned()),
            status_text,
        })
    }

    /// `QUIT`: closes the socket (lingering as configured) and the context, then checks the
    /// process exited with status 0.
    pub async fn quit(self) {
        let line = self.command("QUIT").await;
        if line != "BYE" {
            self.fail(&format!("QUIT: unexpected reply {line:?}")).await;
        }
        let status = {
            let mut child = self.child.lock().await;
            timeout(self.timeout, child.wait()).await
        };
        match status {
            Ok(Ok(status)) if status.success() => {}
            other => self.fail(&format!("did not exit cleanly: {other:?}")).await,
        }
    }
}

impl Drop for PyPeer {
    fn drop(&mut self) {
        let child = self.child.get_mut();
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let _ = child.start_kill();
        for _ in 0..200 {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The `i`th message of `SENDN`/`RECVN`: `i` as 4 big-endian bytes, then `size - 4` bytes
/// of `i % 251`.
pub fn numbered(i: u32, size: usize) -> Vec<u8> {
    let mut msg = i.to_be_bytes().to_vec();
    msg.resize(size.max(4), (i % 251) as u8);
    msg
}

/// Checks `msg` is `numbered(i, _)`.
pub fn check_numbered(i: u32, msg: &[u8]) -> Result<(), String> {
    if msg.len() < 4 {
        return Err(format!("{i}: {} bytes", msg.len()));
    }
    let got = u32::from_be_bytes([msg[0], msg[1], msg[2], msg[3]]);
    if got != i {
        return Err(format!("{i}: numbered {got}"));
    }
    if msg[4..].iter().any(|&b| b != (i % 251) as u8) {
        return Err(format!("{i}: body"));
    }
    Ok(())
}
