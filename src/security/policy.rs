//! [`AuthPolicy`]: a ready-made [`Authenticator`] with address lists, a PLAIN password table
//! and a CURVE key list, in the manner of pyzmq's `zmq.auth`.

use super::keys::CurveKey;
use super::zap::{Authenticator, Credentials, ZapReply, ZapRequest};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};

/// Which CURVE clients a policy lets in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum CurveClients {
    /// None: every CURVE client is refused (the default, so a forgotten key list denies).
    #[default]
    None,
    /// Only these public keys.
    Keys(HashSet<CurveKey>),
    /// Any client that completes the handshake (it knew our public key).
    Any,
}

/// A ready-made authenticator: allow or deny by IP address, then check the mechanism's
/// credentials.
///
/// * Addresses: with an allow list, only listed addresses pass; otherwise listed deny
///   addresses are refused and every other address passes (pyzmq's rule). IPC peers have no
///   address and pass only when there is no allow list.
/// * NULL: passes on address alone; the user id is empty.
/// * PLAIN: the password must match the table; the user id is the user name.
/// * CURVE: the client key must be listed (or [`AuthPolicy::allow_any_curve_key`]); the user
///   id is the key in Z85, as pyzmq sets it.
///
/// Every refusal is status 400 with a reason in the log.
///
/// ```
/// use ferromq::security::{AuthPolicy, CurveKeyPair, Zap};
///
/// let client = CurveKeyPair::generate();
/// let policy = AuthPolicy::new()
///     .allow_ip("127.0.0.1")
///     .allow_user("admin", "secret")
///     .allow_curve_key(client.public);
/// let zap = Zap::new(policy);
/// # let _ = zap;
/// ```
#[derive(Debug, Clone, Default)]
pub struct AuthPolicy {
    allow: HashSet<String>,
    deny: HashSet<String>,
    passwords: HashMap<Bytes, Bytes>,
    curve: CurveClients,
}

impl AuthPolicy {
    /// A policy that lets every address in and no PLAIN or CURVE client.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets `address` in; once any address is allowed, only allowed addresses get in.
    pub fn allow_ip(mut self, address: impl Into<String>) -> Self {
        self.allow.insert(address.into());
        self
    }

    /// Refuses `address` (ignored once an allow list exists, as in pyzmq).
    pub fn deny_ip(mut self, address: impl Into<String>) -> Self {
        self.deny.insert(address.into());
        self
    }

    /// Adds a PLAIN user.
    pub fn allow_user(mut self, username: impl Into<Bytes>, password: impl Into<Bytes>) -> Self {
        self.passwords.insert(username.into(), password.into());
        self
    }

    /// Lets the CURVE client with this public key in.
    pub fn allow_curve_key(mut self, key: CurveKey) -> Self {
        match &mut self.curve {
            CurveClients::Keys(keys) => {
                keys.insert(key);
            }
            CurveClients::None => self.curve = CurveClients::Keys(HashSet::from([key])),
            CurveClients::Any => {}
        }
        self
    }

    /// Lets any CURVE client in (encryption without client authentication: it must still
    /// know the server's public key).
    pub fn allow_any_curve_key(mut self) -> Self {
        self.curve = CurveClients::Any;
        self
    }

    fn address_allowed(&self, address: &str) -> Result<(), String> {
        if !self.allow.is_empty() {
            return match self.allow.contains(address) {
                true => Ok(()),
                false => Err(format!("address {address:?} is not in the allow list")),
            };
        }
        match self.deny.contains(address) {
            true => Err(format!("address {address:?} is in the deny list")),
            false => Ok(()),
        }
    }
}

impl Authenticator for AuthPolicy {
    fn authenticate(&self, request: &ZapRequest) -> ZapReply {
        if let Err(reason) = self.address_allowed(&request.address) {
            return ZapReply::deny(reason);
        }
        match &request.credentials {
            Credentials::Null => ZapReply::allow(Bytes::new()),
            Credentials::Plain { username, password } => match self.passwords.get(username) {
                Some(expected) if expected == password => ZapReply::allow(username.clone()),
                Some(_) => ZapReply::deny("wrong password"),
                None => ZapReply::deny("unknown user"),
            },
            Credentials::Curve { client_key } => {
                let allowed = match &self.curve {
                    CurveClients::Any => true,
                    CurveClients::Keys(keys) => keys.contains(client_key),
                    CurveClients::None => false,
                };
                match allowed {
                    true => ZapReply::allow(client_key.to_z85()),
                    false => ZapReply::deny("client key is not allowed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::{CurveKeyPair, ZapStatus};

    fn request(address: &str, credentials: Credentials) -> ZapRequest {
        ZapRequest {
            domain: Bytes::new(),
            address: address.into(),
            routing_id: Bytes::new(),
            mechanism: credentials.mechanism(),
            credentials,
        }
    }

    fn plain(user: &str, pass: &str) -> Credentials {
        Credentials::Plain {
            username: Bytes::copy_from_slice(user.as_bytes()),
            password: Bytes::copy_from_slice(pass.as_bytes()),
        }
    }

    #[test]
    fn allow_list_admits_only_listed_addresses_and_overrides_the_deny_list() {
        let policy = AuthPolicy::new().allow_ip("10.0.0.1").deny_ip("10.0.0.1");
        assert_eq!(
            policy
                .authenticate(&request("10.0.0.1", Credentials::Null))
                .status,
            ZapStatus::Allowed
        );
        assert_eq!(
            policy
                .authenticate(&request("10.0.0.2", Credentials::Null))
                .status,
            ZapStatus::Denied
        );
    }

    #[test]
    fn deny_list_refuses_listed_addresses_only() {
        let policy = AuthPolicy::new().deny_ip("10.0.0.9");
        assert_eq!(
            policy
                .authenticate(&request("10.0.0.9", Credentials::Null))
                .status,
            ZapStatus::Denied
        );
        assert_eq!(
            policy
                .authenticate(&request("10.0.0.1", Credentials::Null))
                .status,
            ZapStatus::Allowed
        );
    }

    #[test]
    fn plain_users_need_the_right_password_and_get_their_name_as_user_id() {
        let policy = AuthPolicy::new().allow_user("admin", "secret");
        let ok = policy.authenticate(&request("1.2.3.4", plain("admin", "secret")));
        assert_eq!(ok.status, ZapStatus::Allowed);
        assert_eq!(ok.user_id, "admin");
        for (user, pass) in [("admin", "wrong"), ("nobody", "secret")] {
            assert_eq!(
                policy
                    .authenticate(&request("1.2.3.4", plain(user, pass)))
                    .status,
                ZapStatus::Denied
            );
        }
    }

    #[test]
    fn curve_clients_need_a_listed_key_unless_any_key_is_allowed() {
        let known = CurveKeyPair::generate().public;
        let stranger = CurveKeyPair::generate().public;
        let curve = |key| request("1.2.3.4", Credentials::Curve { client_key: key });
        assert_eq!(
            AuthPolicy::new().authenticate(&curve(known)).status,
            ZapStatus::Denied
        );
        let listed = AuthPolicy::new().allow_curve_key(known);
        let reply = listed.authenticate(&curve(known));
        assert_eq!(reply.status, ZapStatus::Allowed);
        assert_eq!(reply.user_id, known.to_z85());
        assert_eq!(
            listed.authenticate(&curve(stranger)).status,
            ZapStatus::Denied
        );
        let any = AuthPolicy::new().allow_any_curve_key();
        assert_eq!(
            any.authenticate(&curve(stranger)).status,
            ZapStatus::Allowed
        );
    }
}
