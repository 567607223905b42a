//! The HTTP clients of one [`crate::Registry`]: one per [`Tls`] policy,
//! each built the first time it is needed and then shared by every
//! endpoint, request and lookaside store.
//!
//! Building a client is not free: a client that verifies certificates
//! reads and parses the whole system trust store when it is built (about
//! 3.5 ms, more than the rest of a `criguard verify` against a local
//! registry), and each client has its own connection pool, so requests
//! spread over several clients open several connections to one registry.
//! One client per TLS policy keeps one pool, and the trust store is read
//! only by a process that meets a registry or lookaside store whose
//! certificates are checked. A registry marked `insecure` (HTTPS without
//! certificate checks, then plain HTTP) and an `http://` lookaside store
//! never need it.

use std::sync::Mutex;
use std::time::Duration;

use crate::Error;
use crate::transport::USER_AGENT;

/// What a client may connect to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Tls {
    /// HTTPS with certificates checked against the system trust store.
    Verified,
    /// HTTPS without certificate checks, for registries marked `insecure`.
    Unverified,
    /// Plain HTTP only, for `http://` lookaside stores: a redirect to
    /// HTTPS is not followed but handed back, so that the verifying client
    /// (and the trust store) is only needed when a certificate is really
    /// to be checked.
    PlainHttp,
}

/// Redirects a client follows before giving up, as reqwest's default.
const MAX_REDIRECTS: usize = 10;

pub(crate) struct HttpClients {
    timeout: Duration,
    verified: Mutex<Option<reqwest::Client>>,
    unverified: Mutex<Option<reqwest::Client>>,
    plain: Mutex<Option<reqwest::Client>>,
}

impl HttpClients {
    /// Builds nothing yet.
    pub(crate) fn new(timeout: Duration) -> HttpClients {
        HttpClients {
            timeout,
            verified: Mutex::new(None),
            unverified: Mutex::new(None),
            plain: Mutex::new(None),
        }
    }

    /// The client for `tls`, built on first use. `for_what` names what it
    /// is for in an error.
    pub(crate) fn get(&self, tls: Tls, for_what: &str) -> Result<reqwest::Client, Error> {
        let slot = match tls {
            Tls::Verified => &self.verified,
            Tls::Unverified => &self.unverified,
            Tls::PlainHttp => &self.plain,
        };
        // Only ever set once, whole: a panic elsewhere cannot leave it
        // half-made.
        let mut slot = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(USER_AGENT);
        builder = match tls {
            Tls::Verified => builder,
            Tls::Unverified => builder.tls_danger_accept_invalid_certs(true),
            // Not meant for HTTPS (redirects there stop); should TLS happen
            // anyway (an https:// proxy), no root is trusted, so it fails
            // instead of going unchecked, and the trust store stays unread.
            Tls::PlainHttp => builder
                .tls_certs_only(Vec::<reqwest::Certificate>::new())
                .redirect(reqwest::redirect::Policy::custom(|attempt| {
                    if attempt.url().scheme() != "http" {
                        attempt.stop()
                    } else if attempt.previous().len() >= MAX_REDIRECTS {
                        attempt.error("too many redirects")
                    } else {
                        attempt.follow()
                    }
                })),
        };
        let client = builder.build().map_err(|e| Error::ClientSetup {
            host: for_what.to_owned(),
            message: setup_message(&e),
        })?;
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Which clients were built so far (verified, unverified, plain): for
    /// tests that check the trust store is not needed.
    #[cfg(test)]
    pub(crate) fn built(&self) -> (bool, bool, bool) {
        let is_built = |slot: &Mutex<Option<reqwest::Client>>| {
            slot.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some()
        };
        (
            is_built(&self.verified),
            is_built(&self.unverified),
            is_built(&self.plain),
        )
    }
}

/// reqwest says "builder error"; the cause (no CA certificates at all, for
/// one) is what a person can act on.
fn setup_message(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if message.contains("No CA certificates") {
        return "no system CA certificates could be loaded (install ca-certificates, or set \
                SSL_CERT_FILE); registries and lookaside stores reached over HTTPS with \
                certificate checks need them"
            .to_owned();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_is_built_once_and_only_when_asked_for() {
        let clients = HttpClients::new(Duration::from_secs(5));
        assert_eq!(clients.built(), (false, false, false));
        clients.get(Tls::Unverified, "test").unwrap();
        assert_eq!(
            clients.built(),
            (false, true, false),
            "no verifying client yet"
        );
        clients.get(Tls::PlainHttp, "test").unwrap();
        clients.get(Tls::Unverified, "test").unwrap();
        assert_eq!(clients.built(), (false, true, true));
    }
}
