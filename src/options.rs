//! [`SocketOptions`]: per-socket settings, with libzmq's defaults and meanings.

use crate::error::{Error, Result};
use crate::security::{CurveKey, CurveKeyPair, Zap};
use crate::wire::Security;
use bytes::Bytes;
use std::time::Duration;

/// libzmq's default send and receive high-water mark, in messages.
pub const DEFAULT_HWM_MSGS: usize = 1000;
/// libzmq's default reconnect interval (ZMQ_RECONNECT_IVL).
pub const DEFAULT_RECONNECT_IVL: Duration = Duration::from_millis(100);
/// libzmq's default handshake interval (ZMQ_HANDSHAKE_IVL).
pub const DEFAULT_HANDSHAKE_IVL: Duration = Duration::from_secs(30);
/// libzmq's default listen backlog (ZMQ_BACKLOG).
pub const DEFAULT_BACKLOG: u32 = 100;
/// libzmq's ZMQ_IMMEDIATE default (0): sends queue for a connected endpoint still connecting.
pub const DEFAULT_IMMEDIATE: bool = false;
/// Longest duration any option takes: libzmq's options are `int` milliseconds, and a clock
/// deadline this far ahead can never overflow.
pub const MAX_DURATION: Duration = Duration::from_millis(i32::MAX as u64);

/// Settings for one socket. Fields are public; start from [`SocketOptions::default`], whose
/// values are libzmq 4.3's defaults, and change what you need, or use
/// [`SocketOptions::builder`] (the struct is `#[non_exhaustive]`, so outside this crate it
/// cannot be written as a literal).
///
/// ```
/// use ferromq::SocketOptions;
/// use std::time::Duration;
///
/// let mut options = SocketOptions::default();
/// options.sndhwm = 10_000;
/// options.linger = Some(Duration::from_millis(500));
/// options.heartbeat_ivl = Some(Duration::from_secs(1));
/// assert!(options.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// Most messages queued for one peer before sends wait or drop (ZMQ_SNDHWM; 0: no limit).
    pub sndhwm: usize,
    /// Most messages queued from one peer before we stop reading from it (ZMQ_RCVHWM; 0: no
    /// limit).
    pub rcvhwm: usize,
    /// How long queued outgoing messages may delay a close (ZMQ_LINGER). `None`, libzmq's
    /// default of -1, waits until they are all written; `Some(ZERO)` drops them at once.
    pub linger: Option<Duration>,
    /// Wait before reconnecting a lost or refused connection (ZMQ_RECONNECT_IVL; `None`: never
    /// reconnect, libzmq's -1).
    pub reconnect_ivl: Option<Duration>,
    /// Upper bound for exponential reconnect backoff (ZMQ_RECONNECT_IVL_MAX; `None`: no
    /// backoff, always `reconnect_ivl`, as libzmq's 0).
    pub reconnect_ivl_max: Option<Duration>,
    /// Drop a connection whose handshake has not completed in this time (ZMQ_HANDSHAKE_IVL;
    /// `None` or zero: never, as libzmq's 0).
    pub handshake_ivl: Option<Duration>,
    /// Send a PING after this much time (ZMQ_HEARTBEAT_IVL; `None` or zero: no heartbeats,
    /// as libzmq's 0).
    pub heartbeat_ivl: Option<Duration>,
    /// Drop the peer if nothing arrives this long after a PING (ZMQ_HEARTBEAT_TIMEOUT; `None`:
    /// the heartbeat interval, as libzmq's -1; zero: never, as libzmq's 0).
    pub heartbeat_timeout: Option<Duration>,
    /// Ask peers to drop us after this much silence (ZMQ_HEARTBEAT_TTL, sent in our PINGs in
    /// deciseconds; `None`, zero or under 100 ms: no TTL, as libzmq's 0).
    pub heartbeat_ttl: Option<Duration>,
    /// Largest inbound frame and message; a peer sending more is disconnected
    /// (ZMQ_MAXMSGSIZE; `None`: no limit).
    pub max_msg_size: Option<u64>,
    /// Our routing id, announced to peers as `Identity` (ZMQ_ROUTING_ID): 1–255 bytes, not
    /// starting with a zero byte (those are reserved for generated ids).
    pub routing_id: Option<Bytes>,
    /// How long `send` waits for room (ZMQ_SNDTIMEO; `None`: forever; zero: not at all, the
    /// send fails with `Error::Timeout` at once when it cannot be placed, as libzmq's 0).
    pub send_timeout: Option<Duration>,
    /// How long `recv` waits for a message (ZMQ_RCVTIMEO; `None`: forever; zero: not at all,
    /// as libzmq's 0).
    pub recv_timeout: Option<Duration>,
    /// TCP keepalive (ZMQ_TCP_KEEPALIVE): `None` leaves the OS default.
    pub tcp_keepalive: Option<bool>,
    /// Idle time before keepalive probes (ZMQ_TCP_KEEPALIVE_IDLE).
    pub tcp_keepalive_idle: Option<Duration>,
    /// Interval between keepalive probes (ZMQ_TCP_KEEPALIVE_INTVL).
    pub tcp_keepalive_intvl: Option<Duration>,
    /// Probes before the connection is dropped (ZMQ_TCP_KEEPALIVE_CNT).
    pub tcp_keepalive_cnt: Option<u32>,
    /// Listen backlog of bound endpoints (ZMQ_BACKLOG).
    pub backlog: u32,
    /// Kernel send buffer size (ZMQ_SNDBUF; `None`: the OS default for TCP, 4 MiB for IPC,
    /// where Unix sockets do not autotune as loopback TCP does).
    pub sndbuf: Option<usize>,
    /// Kernel receive buffer size (ZMQ_RCVBUF; `None`: as for `sndbuf`).
    pub rcvbuf: Option<usize>,
    /// ROUTER: an unroutable message is an error returned with the message, instead of a
    /// silent drop (ZMQ_ROUTER_MANDATORY; default off, as in libzmq).
    pub router_mandatory: bool,
    /// ROUTER: a new connection announcing a routing id in use takes it over
    /// (ZMQ_ROUTER_HANDOVER).
    pub router_handover: bool,
    /// ROUTER: receive `[routing id, empty frame]` when a peer connects and/or disconnects
    /// (libzmq's ZMQ_ROUTER_NOTIFY; default neither).
    pub router_notify: RouterNotify,
    /// REQ: allow a new request before the reply to the last one (ZMQ_REQ_RELAXED).
    pub req_relaxed: bool,
    /// REQ: tag requests with an id and drop replies that do not carry the current one
    /// (ZMQ_REQ_CORRELATE).
    pub req_correlate: bool,
    /// XPUB: pass every subscription up, not only new ones (ZMQ_XPUB_VERBOSE).
    pub xpub_verbose: bool,
    /// XPUB: the application decides subscriptions with `XPub::subscribe` (ZMQ_XPUB_MANUAL).
    pub xpub_manual: bool,
    /// XPUB: a message sent to each new subscriber on connect (ZMQ_XPUB_WELCOME_MSG).
    pub xpub_welcome_msg: Option<Bytes>,
    /// Be the PLAIN server (ZMQ_PLAIN_SERVER): clients' user names and passwords are checked
    /// by [`SocketOptions::zap`], which must be set.
    pub plain_server: bool,
    /// Be a PLAIN client with this user name (ZMQ_PLAIN_USERNAME; at most 255 bytes).
    pub plain_username: Option<Bytes>,
    /// The PLAIN client's password (ZMQ_PLAIN_PASSWORD; at most 255 bytes; unset: empty).
    pub plain_password: Option<Bytes>,
    /// Be the CURVE server (ZMQ_CURVE_SERVER), proving `curve_secretkey`.
    pub curve_server: bool,
    /// Our long-term public key (ZMQ_CURVE_PUBLICKEY). Derived from `curve_secretkey` when
    /// unset; refused when it does not match it.
    pub curve_publickey: Option<CurveKey>,
    /// Our long-term secret key (ZMQ_CURVE_SECRETKEY). Required of a CURVE server; a CURVE
    /// client without one gets a fresh key pair when the socket is created.
    pub curve_secretkey: Option<CurveKey>,
    /// Be a CURVE client of the server with this public key (ZMQ_CURVE_SERVERKEY).
    pub curve_serverkey: Option<CurveKey>,
    /// The domain passed to the authenticator (ZMQ_ZAP_DOMAIN; at most 255 bytes).
    pub zap_domain: Option<Bytes>,
    /// How long one TCP connect attempt may take before it counts as failed and is retried
    /// after the reconnect interval (ZMQ_CONNECT_TIMEOUT; `None` or zero: the operating
    /// system's limit, about two minutes on Linux, as libzmq's 0).
    pub connect_timeout: Option<Duration>,
    /// IPv6 (ZMQ_IPV6; default off, as in libzmq): `tcp://*:port` binds `[::]` dual-stack
    /// (IPv4 and IPv6; IPv4 alone where the host has no IPv6), and host names resolve to
    /// IPv6 addresses too. Off, names resolve to IPv4 addresses only and `*` binds `0.0.0.0`;
    /// IPv6 literals (`tcp://[::1]:port`) work either way.
    pub ipv6: bool,
    /// PUB, XPUB: send each message to the subscribers whose subscriptions do *not* match
    /// it; SUB, XSUB: receive the messages that match none of the subscriptions
    /// (ZMQ_INVERT_MATCHING; default off). Subscribers of an inverted publisher must set it
    /// too, as libzmq requires, or their own filter drops what they are sent.
    pub invert_matching: bool,
    /// XPUB, PUB: a subscriber at its send HWM makes `send` wait (and `try_send` fail with
    /// `WouldBlock`) instead of losing the message (ZMQ_XPUB_NODROP; default off).
    pub xpub_nodrop: bool,
    /// PUSH, PULL, PUB, SUB, DEALER: keep only the newest message in each peer's queue, in
    /// and out, ignoring the HWMs (ZMQ_CONFLATE; default off; refused on other socket types,
    /// where libzmq does not support it). libzmq keeps only one frame of a multipart
    /// message; ferromq keeps the whole newest message.
    pub conflate: bool,
    /// Queue messages only for peers whose handshake completed (ZMQ_IMMEDIATE; default off,
    /// as in libzmq). Off, a PUSH, DEALER or REQ `connect` makes the endpoint routable at
    /// once: sends queue for it (up to the HWM) while it connects or reconnects, and go out
    /// when a connection's handshake completes. What is still queued for it when the socket
    /// closes or the endpoint is disconnected keeps it connecting for the linger period
    /// (with the default linger, until the peer has it: `close` waits as long, as libzmq's
    /// context does). On, a send with no peer whose handshake completed waits (or fails with
    /// `WouldBlock`) instead; see spec/sockets.md §4.
    pub immediate: bool,
    /// Who decides whether a peer may connect: RFC 27's handler, called in process for every
    /// handshake this socket serves (PLAIN and CURVE servers, and NULL peers on either side).
    /// Unset: PLAIN servers are refused at creation, CURVE servers accept any client key
    /// (libzmq's behaviour without a ZAP handler).
    pub zap: Option<Zap>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            sndhwm: DEFAULT_HWM_MSGS,
            rcvhwm: DEFAULT_HWM_MSGS,
            linger: None,
            reconnect_ivl: Some(DEFAULT_RECONNECT_IVL),
            reconnect_ivl_max: None,
            handshake_ivl: Some(DEFAULT_HANDSHAKE_IVL),
            heartbeat_ivl: None,
            heartbeat_timeout: None,
            heartbeat_ttl: None,
            max_msg_size: None,
            routing_id: None,
            send_timeout: None,
            recv_timeout: None,
            tcp_keepalive: None,
            tcp_keepalive_idle: None,
            tcp_keepalive_intvl: None,
            tcp_keepalive_cnt: None,
            backlog: DEFAULT_BACKLOG,
            sndbuf: None,
            rcvbuf: None,
            router_mandatory: false,
            router_handover: false,
            router_notify: RouterNotify::default(),
            req_relaxed: false,
            req_correlate: false,
            xpub_verbose: false,
            xpub_manual: false,
            xpub_welcome_msg: None,
            plain_server: false,
            plain_username: None,
            plain_password: None,
            curve_server: false,
            curve_publickey: None,
            curve_secretkey: None,
            curve_serverkey: None,
            zap_domain: None,
            zap: None,
            connect_timeout: None,
            ipv6: false,
            invert_matching: false,
            xpub_nodrop: false,
            conflate: false,
            immediate: DEFAULT_IMMEDIATE,
        }
    }
}

impl SocketOptions {
    /// A builder starting from libzmq's defaults (see [`SocketOptionsBuilder`]).
    pub fn builder() -> SocketOptionsBuilder {
        SocketOptionsBuilder::default()
    }

    /// Checks every value, naming the first bad one. Every socket constructor calls it.
    ///
    /// Zero durations take libzmq's meaning (see each field); durations past
    /// [`MAX_DURATION`], a zero reconnect interval, backlog or buffer size, and malformed
    /// routing ids are refused. spec/sockets.md lists every rule.
    pub fn validate(&self) -> Result<()> {
        let bad = |option, reason| Err(Error::InvalidOption { option, reason });
        if let Some(id) = &self.routing_id {
            if id.is_empty() || id.len() > 255 {
                return bad("routing_id", "must be 1 to 255 bytes");
            }
            if id[0] == 0 {
                return bad(
                    "routing_id",
                    "must not start with a zero byte (reserved for generated ids)",
                );
            }
        }
        if self
            .heartbeat_ttl
            .is_some_and(|ttl| ttl.as_millis() > 6_553_500)
        {
            return bad(
                "heartbeat_ttl",
                "must be at most 6553.5 s (16-bit deciseconds)",
            );
        }
        for (option, value) in [
            ("linger", self.linger),
            ("reconnect_ivl", self.reconnect_ivl),
            ("reconnect_ivl_max", self.reconnect_ivl_max),
            ("handshake_ivl", self.handshake_ivl),
            ("heartbeat_ivl", self.heartbeat_ivl),
            ("heartbeat_timeout", self.heartbeat_timeout),
            ("send_timeout", self.send_timeout),
            ("recv_timeout", self.recv_timeout),
            ("tcp_keepalive_idle", self.tcp_keepalive_idle),
            ("tcp_keepalive_intvl", self.tcp_keepalive_intvl),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value.is_some_and(|d| d > MAX_DURATION) {
                return bad(
                    option,
                    "must be at most 2147483647 ms (about 24.8 days, libzmq's int milliseconds)",
                );
            }
        }
        if self.reconnect_ivl == Some(Duration::ZERO) {
            return bad(
                "reconnect_ivl",
                "must be positive (None disables reconnection)",
            );
        }
        if self.backlog == 0 {
            return bad("backlog", "must be at least 1");
        }
        if self.sndbuf == Some(0) || self.rcvbuf == Some(0) {
            return bad(
                "sndbuf/rcvbuf",
                "must be positive (None keeps the OS default)",
            );
        }
        for (option, value) in [
            ("plain_username", &self.plain_username),
            ("plain_password", &self.plain_password),
            ("zap_domain", &self.zap_domain),
        ] {
            if value.as_ref().is_some_and(|v| v.len() > 255) {
                return bad(option, "must be at most 255 bytes");
            }
        }
        self.check_security()
    }

    /// Checks the security options, naming the first conflict (the parts of
    /// [`SocketOptions::validate`] about mechanisms).
    fn check_security(&self) -> Result<()> {
        let bad = |option, reason| Err(Error::InvalidOption { option, reason });
        let plain = self.plain_server || self.plain_username.is_some();
        let curve = self.curve_server || self.curve_serverkey.is_some();
        if plain && curve {
            return bad(
                "plain_*/curve_*",
                "a socket uses one mechanism: PLAIN or CURVE",
            );
        }
        if self.plain_server && self.plain_username.is_some() {
            return bad(
                "plain_server",
                "a socket is the PLAIN server or a client (plain_username), not both",
            );
        }
        if self.plain_password.is_some() && self.plain_username.is_none() {
            return bad(
                "plain_password",
                "needs plain_username (a PLAIN client has both)",
            );
        }
        if (self.curve_secretkey.is_some() || self.curve_publickey.is_some()) && !curve {
            return bad(
                "curve_secretkey/curve_publickey",
                "need curve_server (be the server) or curve_serverkey (be a client)",
            );
        }
        if self.plain_server && self.zap.is_none() {
            return bad(
                "plain_server",
                "needs an authenticator (zap) to check passwords, e.g. security::AuthPolicy",
            );
        }
        if self.curve_server && self.curve_serverkey.is_some() {
            return bad(
                "curve_server",
                "a socket is the CURVE server or a client (curve_serverkey), not both",
            );
        }
        if self.curve_server && self.curve_secretkey.is_none() {
            return bad("curve_secretkey", "a CURVE server needs its secret key");
        }
        if self.curve_publickey.is_some() && self.curve_secretkey.is_none() {
            return bad(
                "curve_publickey",
                "needs curve_secretkey (a client without keys gets a fresh pair: leave both unset)",
            );
        }
        if let (Some(public), Some(secret)) = (self.curve_publickey, self.curve_secretkey)
            && secret.public_from_secret() != public
        {
            return bad(
                "curve_publickey",
                "does not belong to curve_secretkey (leave it unset to derive it)",
            );
        }
        Ok(())
    }

    /// The first option that differs between `self` and `new` among those fixed when a
    /// socket is created: the security mechanism and its keys (a CURVE client's generated key
    /// pair is made once per socket), `xpub_manual` (it decides what XPUB keeps per peer) and
    /// `conflate` (it decides how the queues work).
    pub(crate) fn fixed_change(&self, new: &SocketOptions) -> Option<&'static str> {
        let security = |o: &SocketOptions| {
            (
                o.plain_server,
                o.plain_username.clone(),
                o.plain_password.clone(),
                o.curve_server,
                o.curve_publickey,
                o.curve_secretkey,
                o.curve_serverkey,
            )
        };
        if security(self) != security(new) {
            return Some("plain_*/curve_*");
        }
        if self.zap != new.zap || self.zap_domain != new.zap_domain {
            return Some("zap/zap_domain");
        }
        if self.xpub_manual != new.xpub_manual {
            return Some("xpub_manual");
        }
        if self.conflate != new.conflate {
            return Some("conflate");
        }
        None
    }

    /// The mechanism these options choose. A CURVE client without a secret key gets a fresh
    /// key pair here, once per socket. Call after [`SocketOptions::validate`].
    pub(crate) fn security(&self) -> Security {
        let keypair = || {
            self.curve_secretkey
                .map_or_else(CurveKeyPair::generate, CurveKeyPair::from_secret)
        };
        if self.curve_server {
            return Security::CurveServer { keypair: keypair() };
        }
        if let Some(server_key) = self.curve_serverkey {
            return Security::CurveClient {
                keypair: keypair(),
                server_key,
            };
        }
        if self.plain_server {
            return Security::PlainServer;
        }
        if let Some(username) = &self.plain_username {
            return Security::PlainClient {
                username: username.clone(),
                password: self.plain_password.clone().unwrap_or_default(),
            };
        }
        Security::Null
    }

    /// Makes these options a CURVE server's with this secret key (`curve_server`,
    /// `curve_secretkey`); the public key, which clients need, is `secret.public_from_secret()`.
    pub fn curve_server_with(mut self, secret: CurveKey) -> Self {
        self.curve_server = true;
        self.curve_secretkey = Some(secret);
        self
    }

    /// Makes these options a CURVE client's of the server whose public key is `server_key`,
    /// proving `keypair` (`curve_serverkey`, `curve_secretkey`, `curve_publickey`).
    pub fn curve_client_with(mut self, server_key: CurveKey, keypair: &CurveKeyPair) -> Self {
        self.curve_serverkey = Some(server_key);
        self.curve_secretkey = Some(keypair.secret);
        self.curve_publickey = Some(keypair.public);
        self
    }

    /// Makes these options a PLAIN client's (`plain_username`, `plain_password`).
    pub fn plain_client_with(
        mut self,
        username: impl Into<Bytes>,
        password: impl Into<Bytes>,
    ) -> Self {
        self.plain_username = Some(username.into());
        self.plain_password = Some(password.into());
        self
    }

    /// Makes these options a PLAIN server's, checking passwords with `zap`.
    pub fn plain_server_with(mut self, zap: Zap) -> Self {
        self.plain_server = true;
        self.zap = Some(zap);
        self
    }
}

/// Builds [`SocketOptions`] from libzmq's defaults, one setter per option, each named as the
/// option's field (libzmq's option name without `ZMQ_`, lower case). [`build`] checks the
/// result as socket creation does, so a bad value is reported where it was written.
///
/// `SocketOptions` is `#[non_exhaustive]` (options get added), so code outside this crate
/// cannot write it as a struct literal; this builder, or changing the fields of
/// `SocketOptions::default()`, is how it is made there.
///
/// Setters of optional durations, flags and keys take the value or an `Option`:
/// `.linger(Duration::ZERO)` and `.linger(None)` both work (`None` is each option's documented
/// "unset" meaning); integer setters take the field's own type (`.sndbuf(Some(1 << 20))`), so
/// literals need no suffix.
///
/// ```
/// use ferromq::{Push, SocketOptions};
/// use std::time::Duration;
///
/// let options = SocketOptions::builder()
///     .sndhwm(10_000)
///     .linger(Duration::from_millis(500))
///     .heartbeat_ivl(Duration::from_secs(1))
///     .routing_id("worker-1")
///     .build()?;
/// assert_eq!(options.sndhwm, 10_000);
/// assert_eq!(options.routing_id.as_deref(), Some(&b"worker-1"[..]));
///
/// // A bad value is refused by `build`, naming the option.
/// let refused = SocketOptions::builder().routing_id("").build();
/// assert!(matches!(
///     refused,
///     Err(ferromq::Error::InvalidOption { option: "routing_id", .. })
/// ));
/// # let _ = options;
/// # Ok::<(), ferromq::Error>(())
/// ```
///
/// [`build`]: SocketOptionsBuilder::build
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct SocketOptionsBuilder {
    options: SocketOptions,
}

/// One setter per field. `exact { name: type }` takes the field's type (integers, so that a
/// literal needs no suffix); `into { name: type }` anything that converts into it (an
/// `Option<Duration>` from a `Duration` or `None`).
macro_rules! setters {
    (exact { $($name:ident: $ty:ty),* $(,)? } into { $($iname:ident: $ity:ty),* $(,)? }) => {
        $(
            #[doc = concat!("Sets [`SocketOptions::", stringify!($name), "`].")]
            pub fn $name(mut self, value: $ty) -> Self {
                self.options.$name = value;
                self
            }
        )*
        $(
            #[doc = concat!("Sets [`SocketOptions::", stringify!($iname), "`].")]
            pub fn $iname(mut self, value: impl Into<$ity>) -> Self {
                self.options.$iname = value.into();
                self
            }
        )*
    };
}

impl SocketOptionsBuilder {
    setters! {
        exact {
            sndhwm: usize,
            rcvhwm: usize,
            max_msg_size: Option<u64>,
            tcp_keepalive_cnt: Option<u32>,
            backlog: u32,
            sndbuf: Option<usize>,
            rcvbuf: Option<usize>,
            router_mandatory: bool,
            router_handover: bool,
            router_notify: RouterNotify,
            req_relaxed: bool,
            req_correlate: bool,
            xpub_verbose: bool,
            xpub_manual: bool,
            plain_server: bool,
            curve_server: bool,
            ipv6: bool,
            invert_matching: bool,
            xpub_nodrop: bool,
            conflate: bool,
            immediate: bool,
        }
        into {
            linger: Option<Duration>,
            reconnect_ivl: Option<Duration>,
            reconnect_ivl_max: Option<Duration>,
            handshake_ivl: Option<Duration>,
            heartbeat_ivl: Option<Duration>,
            heartbeat_timeout: Option<Duration>,
            heartbeat_ttl: Option<Duration>,
            send_timeout: Option<Duration>,
            recv_timeout: Option<Duration>,
            tcp_keepalive: Option<bool>,
            tcp_keepalive_idle: Option<Duration>,
            tcp_keepalive_intvl: Option<Duration>,
            connect_timeout: Option<Duration>,
            curve_publickey: Option<CurveKey>,
            curve_secretkey: Option<CurveKey>,
            curve_serverkey: Option<CurveKey>,
            zap: Option<Zap>,
        }
    }

    /// Sets [`SocketOptions::routing_id`].
    pub fn routing_id(mut self, id: impl Into<Bytes>) -> Self {
        self.options.routing_id = Some(id.into());
        self
    }

    /// Sets [`SocketOptions::xpub_welcome_msg`].
    pub fn xpub_welcome_msg(mut self, message: impl Into<Bytes>) -> Self {
        self.options.xpub_welcome_msg = Some(message.into());
        self
    }

    /// Sets [`SocketOptions::plain_username`].
    pub fn plain_username(mut self, username: impl Into<Bytes>) -> Self {
        self.options.plain_username = Some(username.into());
        self
    }

    /// Sets [`SocketOptions::plain_password`].
    pub fn plain_password(mut self, password: impl Into<Bytes>) -> Self {
        self.options.plain_password = Some(password.into());
        self
    }

    /// Sets [`SocketOptions::zap_domain`].
    pub fn zap_domain(mut self, domain: impl Into<Bytes>) -> Self {
        self.options.zap_domain = Some(domain.into());
        self
    }

    /// The options, checked by [`SocketOptions::validate`] (the first bad one is named).
    pub fn build(self) -> Result<SocketOptions> {
        self.options.validate()?;
        Ok(self.options)
    }
}

impl From<SocketOptions> for SocketOptionsBuilder {
    /// A builder starting from `options` instead of the defaults.
    fn from(options: SocketOptions) -> Self {
        SocketOptionsBuilder { options }
    }
}

/// Which peer events a ROUTER reports as messages (libzmq's `ZMQ_ROUTER_NOTIFY`, whose
/// `ZMQ_NOTIFY_CONNECT` and `ZMQ_NOTIFY_DISCONNECT` flags these are).
///
/// Each report is the two frames `[routing id, empty frame]`, received in turn with the
/// peers' messages: a connect report once the peer's handshake has completed, before anything
/// it sends; a disconnect report after the last message that arrived from it. A report that
/// finds that peer's share of the inbox full is dropped, as libzmq's is.
///
/// ```
/// use ferromq::SocketOptions;
/// use ferromq::options::RouterNotify;
///
/// let mut options = SocketOptions::default();
/// options.router_notify = RouterNotify::BOTH;
/// assert!(options.router_notify.connect && options.router_notify.disconnect);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterNotify {
    /// Report each peer whose handshake completed (`ZMQ_NOTIFY_CONNECT`).
    pub connect: bool,
    /// Report each peer that went away after its handshake (`ZMQ_NOTIFY_DISCONNECT`).
    pub disconnect: bool,
}

impl RouterNotify {
    /// Neither report (the default).
    pub const NONE: RouterNotify = RouterNotify {
        connect: false,
        disconnect: false,
    };
    /// Connects and disconnects.
    pub const BOTH: RouterNotify = RouterNotify {
        connect: true,
        disconnect: true,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_libzmqs() {
        let o = SocketOptions::default();
        assert_eq!((o.sndhwm, o.rcvhwm), (1000, 1000));
        assert_eq!(o.linger, None);
        assert_eq!(o.reconnect_ivl, Some(Duration::from_millis(100)));
        assert!(!o.immediate);
        assert!(o.validate().is_ok());
    }

    #[test]
    fn rejects_durations_past_libzmqs_range() {
        let too_long = MAX_DURATION + Duration::from_millis(1);
        let o = SocketOptions {
            heartbeat_ivl: Some(too_long),
            ..SocketOptions::default()
        };
        assert!(matches!(
            o.validate(),
            Err(Error::InvalidOption {
                option: "heartbeat_ivl",
                ..
            })
        ));
        let o = SocketOptions {
            linger: Some(Duration::MAX),
            ..SocketOptions::default()
        };
        assert!(matches!(
            o.validate(),
            Err(Error::InvalidOption {
                option: "linger",
                ..
            })
        ));
    }

    #[test]
    fn zero_intervals_are_valid_and_mean_off() {
        let o = SocketOptions {
            heartbeat_ivl: Some(Duration::ZERO),
            heartbeat_timeout: Some(Duration::ZERO),
            heartbeat_ttl: Some(Duration::ZERO),
            handshake_ivl: Some(Duration::ZERO),
            send_timeout: Some(Duration::ZERO),
            recv_timeout: Some(Duration::ZERO),
            ..SocketOptions::default()
        };
        assert!(o.validate().is_ok());
    }

    #[test]
    fn rejects_bad_routing_ids() {
        for id in [&b""[..], &[0, 1][..], &[1u8; 256][..]] {
            let o = SocketOptions {
                routing_id: Some(Bytes::copy_from_slice(id)),
                ..SocketOptions::default()
            };
            assert!(matches!(
                o.validate(),
                Err(Error::InvalidOption {
                    option: "routing_id",
                    ..
                })
            ));
        }
    }

    fn refused(o: SocketOptions) -> &'static str {
        match o.validate() {
            Err(Error::InvalidOption { option, .. }) => option,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn security_options_refuse_every_inconsistent_combination() {
        let keys = CurveKeyPair::generate();
        let zap = || Zap::new(crate::security::AuthPolicy::new());
        let base = SocketOptions::default;
        let mut o = base().curve_server_with(keys.secret);
        o.plain_username = Some("u".into());
        assert_eq!(refused(o), "plain_*/curve_*");
        let mut o = base().plain_server_with(zap());
        o.plain_username = Some("u".into());
        assert_eq!(refused(o), "plain_server");
        let mut o = base();
        o.plain_server = true;
        assert_eq!(
            refused(o),
            "plain_server",
            "a PLAIN server needs an authenticator"
        );
        let mut o = base().curve_server_with(keys.secret);
        o.curve_serverkey = Some(keys.public);
        assert_eq!(refused(o), "curve_server");
        let mut o = base();
        o.curve_server = true;
        assert_eq!(refused(o), "curve_secretkey");
        let mut o = base().curve_server_with(keys.secret);
        o.curve_publickey = Some(CurveKeyPair::generate().public);
        assert_eq!(refused(o), "curve_publickey");
        let mut o = base();
        o.plain_password = Some("p".into());
        assert_eq!(refused(o), "plain_password");
        let mut o = base();
        o.curve_secretkey = Some(keys.secret);
        assert_eq!(refused(o), "curve_secretkey/curve_publickey");
        let mut o = base();
        o.curve_serverkey = Some(keys.public);
        o.curve_publickey = Some(keys.public);
        assert_eq!(refused(o), "curve_publickey");
        let mut o = base();
        o.zap_domain = Some(Bytes::from(vec![b'd'; 256]));
        assert_eq!(refused(o), "zap_domain");
        let o = base().plain_client_with(vec![b'u'; 256], "p");
        assert_eq!(refused(o), "plain_username");
        let o = base().plain_client_with("u", vec![b'p'; 256]);
        assert_eq!(refused(o), "plain_password");
        // 255 bytes is the limit, not over it.
        let o = base().plain_client_with(vec![b'u'; 255], vec![b'p'; 255]);
        assert!(o.validate().is_ok());
    }

    #[test]
    fn security_options_choose_the_mechanism() {
        let keys = CurveKeyPair::generate();
        assert_eq!(SocketOptions::default().security(), Security::Null);
        let server = SocketOptions::default().curve_server_with(keys.secret);
        assert!(server.validate().is_ok());
        assert_eq!(
            server.security(),
            Security::CurveServer {
                keypair: keys.clone()
            }
        );
        let client = SocketOptions {
            curve_serverkey: Some(keys.public),
            ..SocketOptions::default()
        };
        // No own keys: a fresh pair, made once per socket.
        match client.security() {
            Security::CurveClient {
                server_key,
                keypair,
            } => {
                assert_eq!(server_key, keys.public);
                assert_eq!(keypair.secret.public_from_secret(), keypair.public);
            }
            other => panic!("{other:?}"),
        }
        let plain = SocketOptions::default().plain_client_with("u", "p");
        assert_eq!(
            plain.security(),
            Security::PlainClient {
                username: "u".into(),
                password: "p".into()
            }
        );
    }
}
