//! What a request handler is given besides the request: the store, the
//! secrets, the time, and a source of randomness. The Spin adapter fills it
//! from the host; tests fill it with an in-memory store and a fixed clock.

use crate::Request;
use crate::auth::{self, Identity, Principal};
use crate::problem::Problem;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use store::KeyValue;
use store::pii::PiiHasher;

/// Shortest accepted signing and hashing secret, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Secrets from Spin variables.
pub struct Secrets {
    /// Who may sign tokens: the identity provider's public keys (`auth_jwks`,
    /// `auth_issuer`, `auth_audience`, `auth_max_lifetime_secs`), the trainee
    /// public key and, in the vouchers component only, the trainee signing key.
    pub identity: Identity,
    /// Key of personal-data hashes (`pii_hmac_key`).
    pub pii_hmac_key: String,
    /// Key of personal-data encryption (`pii_key`).
    pub pii_key: String,
    /// Further variables a function reads (WeChat app id and secret, base URLs).
    pub extra: BTreeMap<String, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// Checks the secrets are long enough; names the variable that is not.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("pii_hmac_key", &self.pii_hmac_key),
            ("pii_key", &self.pii_key),
        ] {
            if v.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "variable {name} must be at least {MIN_SECRET_BYTES} bytes"
                ));
            }
        }
        Ok(())
    }
}

/// The environment of one request.
pub struct Env<'a, K: KeyValue> {
    /// The key-value store.
    pub kv: &'a K,
    /// Secrets.
    pub secrets: &'a Secrets,
    /// Now.
    pub now: DateTime<Utc>,
    /// Fills a buffer with random bytes from the host.
    pub random: &'a dyn Fn(&mut [u8]),
}

impl<K: KeyValue> Env<'_, K> {
    /// Today in China Standard Time.
    pub fn today(&self) -> NaiveDate {
        (self.now + chrono::Duration::hours(8)).date_naive()
    }

    /// The personal-data hasher.
    pub fn hasher(&self) -> PiiHasher {
        PiiHasher::new(&self.secrets.pii_hmac_key)
    }

    /// Verifies the request's bearer token.
    pub fn authenticate(&self, req: &Request) -> Result<Principal, Problem> {
        auth::authenticate(req, &self.secrets.identity, self.now.timestamp())
    }
}
