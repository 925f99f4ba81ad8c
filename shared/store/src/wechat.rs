//! WeChat in the store: bindings of mini-program users to people, the
//! attempt counters of the binding step, bind tickets, and WeChat's access
//! token shared by every replica.
//!
//! # One binding per person
//!
//! A binding is two records: `wx:<openid ref>` (which person this WeChat user
//! is, read at login) and `wx-person:<person ref>` (which WeChat user this
//! person is, the one that decides). A new binding of a person replaces the
//! old by compare-and-swap on `wx-person:`; a trainee token is current only
//! while both records point at each other ([`current`]), so the old openid's
//! tokens stop working the moment the new binding is written, whichever
//! order concurrent binds ran in.
//!
//! # Attempts
//!
//! Every binding attempt is counted with an atomic increment *before* it is
//! checked ([`count_attempt`]), per WeChat user and per person, in hour
//! windows: parallel attempts cannot all read a count below the limit.
//!
//! # The access token
//!
//! WeChat's server API needs an access token that lives about two hours. It
//! is kept sealed in the store ([`access_token`]) and refreshed by one request
//! at a time: [`take_token_fetch`] elects the fetcher of a token generation
//! with an atomic increment, in windows of [`TOKEN_FETCH_LEASE_SECS`] so a
//! fetcher that dies is replaced in the next window. The others wait for the
//! new generation. Which token is fresh enough is the caller's decision.
//!
//! No key holds an openid, an ID number or a phone number: WeChat users are
//! the HMAC of their openid ([`openid_ref`]), people their person ref.

use crate::audit::{self, Actor, Change};
use crate::keys::PREFIX;
use crate::kv::KeyValue;
use crate::pii::hex;
use crate::records::{StoreError, UpdateError, get_json, put_json, update_json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

// ---------------------------------------------------------------------------
// Keys

/// The person a WeChat user is bound to, by openid ref.
pub fn wechat_key(openid_ref: &str) -> String {
    format!("{PREFIX}wx:{openid_ref}")
}
/// The WeChat user a person is bound to, by person ref (at most one).
pub fn person_key(person: &str) -> String {
    format!("{PREFIX}wx-person:{person}")
}
/// Binding attempts of a subject (`wx:<openid ref>` or `person:<ref>`) in an hour window.
pub fn attempts_key(subject: &str, window: i64) -> String {
    format!("{PREFIX}wx-fail:{subject}:{window}")
}
/// WeChat's access token (sealed like every value).
pub const ACCESS_TOKEN_KEY: &str = "vt:wx-access-token";
/// The counter that elects the fetcher of token `generation` in a lease window.
pub fn token_fetch_key(generation: i64, window: i64) -> String {
    format!("{PREFIX}wx-token-fetch:{generation}:{window}")
}

// ---------------------------------------------------------------------------
// Records

/// A WeChat user bound to a person (`wx:<openid ref>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// Person ref.
    pub person: String,
    /// When bound.
    pub bound_at: DateTime<Utc>,
}

/// The WeChat user a person is bound to (`wx-person:<person ref>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonBinding {
    /// Openid ref of the bound WeChat user.
    pub openid_ref: String,
    /// When bound.
    pub bound_at: DateTime<Utc>,
    /// Bindings of this person so far, this one included (compare-and-swap
    /// compares values: a rebinding back to an earlier user is still a change).
    pub rev: u64,
}

/// WeChat's access token as cached.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    /// The token (a secret: never logged).
    pub token: String,
    /// When WeChat said it expires.
    pub expires_at: DateTime<Utc>,
    /// 1 for the first token fetched, one more for each later fetch.
    pub generation: i64,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// Openid refs and bind tickets

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length")
}

/// The keyed hash of a WeChat openid (never stored or logged in clear).
pub fn openid_ref(key: &str, openid: &str) -> String {
    let mut m = mac(key.as_bytes());
    m.update(b"wechat-openid\0");
    m.update(openid.as_bytes());
    hex(&m.finalize().into_bytes())
}

#[derive(Serialize, Deserialize)]
struct Ticket {
    o: String,
    exp: i64,
}

/// A short-lived ticket proving the holder logged in as `openid_ref`, for the bind call.
pub fn sign_ticket(secret: &str, openid_ref: &str, exp: i64) -> String {
    let payload = B64.encode(
        serde_json::to_vec(&Ticket {
            o: openid_ref.to_string(),
            exp,
        })
        .expect("ticket serialises"),
    );
    let mut m = mac(secret.as_bytes());
    m.update(b"wechat-bind-ticket\0");
    m.update(payload.as_bytes());
    format!("{payload}.{}", B64.encode(m.finalize().into_bytes()))
}

/// The openid ref of a valid, unexpired ticket.
pub fn verify_ticket(secret: &str, ticket: &str, now: i64) -> Option<String> {
    let (payload, sig) = ticket.split_once('.')?;
    let sig = B64.decode(sig).ok()?;
    let mut m = mac(secret.as_bytes());
    m.update(b"wechat-bind-ticket\0");
    m.update(payload.as_bytes());
    m.verify_slice(&sig).ok()?;
    let t: Ticket = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
    (t.exp >= now).then_some(t.o)
}

// ---------------------------------------------------------------------------
// Bindings

/// The person bound to an openid ref, if the binding is current: the person's
/// own record names this openid ref too (a replaced binding reads as none).
pub fn binding(kv: &impl KeyValue, openid_ref: &str) -> Result<Option<Binding>, StoreError> {
    let Some(b) = get_json::<Binding>(kv, &wechat_key(openid_ref), "wechat binding")? else {
        return Ok(None);
    };
    let back: Option<PersonBinding> = get_json(kv, &person_key(&b.person), "person binding")?;
    Ok(back.filter(|p| p.openid_ref == openid_ref).map(|_| b))
}

/// Whether `person` is bound to the WeChat user whose openid ref begins with
/// `openid_prefix` (the prefix a trainee token carries): both records in one
/// host call.
pub fn current(kv: &impl KeyValue, person: &str, openid_prefix: &str) -> Result<bool, StoreError> {
    let Some(p) = get_json::<PersonBinding>(kv, &person_key(person), "person binding")? else {
        return Ok(false);
    };
    if openid_prefix.is_empty() || !p.openid_ref.starts_with(openid_prefix) {
        return Ok(false);
    }
    let b: Option<Binding> = get_json(kv, &wechat_key(&p.openid_ref), "wechat binding")?;
    Ok(b.is_some_and(|b| b.person == person))
}

/// What [`bind`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The person's binding now.
    pub binding: PersonBinding,
    /// The openid ref of the WeChat user this binding replaced, if any.
    pub replaced: Option<String>,
    /// False when the person was already bound to this WeChat user.
    pub changed: bool,
}

/// Binds the WeChat user `openid_ref` to `person`, replacing the person's
/// earlier binding (compare-and-swap on the person's record, so of two
/// concurrent binds one replaces the other), then writes the login record and
/// the audit events: `wechat.bound` on the person (before/after), and
/// `wechat.unbound` on a person this WeChat user was bound to before. A
/// retry after a crash between the writes finishes them.
pub fn bind(
    kv: &impl KeyValue,
    openid_ref: &str,
    person: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Bound, StoreError> {
    let mut before: Option<PersonBinding> = None;
    let after = update_json::<PersonBinding, std::convert::Infallible>(
        kv,
        &person_key(person),
        "person binding",
        |cur| {
            before = cur.clone();
            Ok(match cur {
                Some(p) if p.openid_ref == openid_ref => None,
                cur => Some(PersonBinding {
                    openid_ref: openid_ref.to_string(),
                    bound_at: now,
                    rev: cur.map_or(1, |p| p.rev + 1),
                }),
            })
        },
    )
    .map_err(|e| match e {
        UpdateError::Store(e) => e,
        UpdateError::Refused(never) => match never {},
    })?
    .expect("the update leaves a binding");
    let changed = before.as_ref() != Some(&after);
    let login: Option<Binding> = get_json(kv, &wechat_key(openid_ref), "wechat binding")?;
    let login_current = login.as_ref().is_some_and(|b| b.person == person);
    if changed || !login_current {
        // The events first, the login record last: a retry after a crash
        // anywhere in between finds the login record not yet current and
        // writes the events again (at least once, never lost).
        if let Some(previous) = login.filter(|b| b.person != person) {
            audit::record(
                kv,
                Change {
                    actor: actor.clone(),
                    action: "wechat.unbound".into(),
                    entity: format!("person:{}", previous.person),
                    before: Some(audit::digest_of(&previous)),
                    after: None,
                    note: Some("the WeChat user was bound to another person".into()),
                },
                now,
            )?;
        }
        audit::record(
            kv,
            Change {
                actor: actor.clone(),
                action: "wechat.bound".into(),
                entity: format!("person:{person}"),
                before: before
                    .as_ref()
                    .filter(|b| b.openid_ref != openid_ref)
                    .map(audit::digest_of),
                after: Some(audit::digest_of(&after)),
                note: before
                    .as_ref()
                    .filter(|b| b.openid_ref != openid_ref)
                    .map(|_| "replaces the person's earlier WeChat binding".to_string()),
            },
            now,
        )?;
        put_json(
            kv,
            &wechat_key(openid_ref),
            &Binding {
                person: person.to_string(),
                bound_at: after.bound_at,
            },
        )?;
    }
    Ok(Bound {
        replaced: before
            .filter(|b| b.openid_ref != openid_ref)
            .map(|b| b.openid_ref),
        binding: after,
        changed,
    })
}

// ---------------------------------------------------------------------------
// Attempts

/// Seconds of one attempt window.
pub const ATTEMPT_WINDOW_SECS: i64 = 3600;

fn window(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(ATTEMPT_WINDOW_SECS)
}

/// When the current attempt window ends.
pub fn window_end(now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp((window(now) + 1) * ATTEMPT_WINDOW_SECS, 0).unwrap_or(now)
}

/// Attempts of `subject` in the current window (a counter read: `increment(_, 0)`).
pub fn attempts(kv: &impl KeyValue, subject: &str, now: DateTime<Utc>) -> Result<i64, StoreError> {
    Ok(kv.increment(&attempts_key(subject, window(now)), 0)?)
}

/// Counts one attempt of `subject` before it is checked, and returns its
/// number in the current window. The first attempt past `allowed` (the one
/// the lockout refuses first) audits the lockout.
pub fn count_attempt(
    kv: &impl KeyValue,
    subject: &str,
    allowed: i64,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let n = kv.increment(&attempts_key(subject, window(now)), 1)?;
    if n == allowed + 1 {
        audit::record(
            kv,
            Change {
                actor: Actor {
                    sub: "wechat-bind".into(),
                    role: "system".into(),
                },
                action: "wechat.binding_locked".into(),
                entity: subject.to_string(),
                before: None,
                after: None,
                note: Some(format!("until {}", window_end(now).to_rfc3339())),
            },
            now,
        )?;
    }
    Ok(n)
}

// ---------------------------------------------------------------------------
// The access token

/// Seconds of one fetch lease: a fetcher that dies holds up refreshing for at
/// most this long.
pub const TOKEN_FETCH_LEASE_SECS: i64 = 10;

/// The cached access token, if any (fresh or not: the caller decides).
pub fn access_token(kv: &impl KeyValue) -> Result<Option<AccessToken>, StoreError> {
    get_json(kv, ACCESS_TOKEN_KEY, "wechat access token")
}

/// Whether this request is the one to fetch token `generation` now: the
/// first to ask in the current lease window.
pub fn take_token_fetch(
    kv: &impl KeyValue,
    generation: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let window = now.timestamp().div_euclid(TOKEN_FETCH_LEASE_SECS);
    Ok(kv.increment(&token_fetch_key(generation, window), 1)? == 1)
}

/// Stores a freshly fetched token, unless a later generation is already there.
pub fn put_access_token(kv: &impl KeyValue, token: &AccessToken) -> Result<(), StoreError> {
    update_json::<AccessToken, std::convert::Infallible>(
        kv,
        ACCESS_TOKEN_KEY,
        "wechat access token",
        |cur| {
            Ok(match cur {
                Some(c) if c.generation >= token.generation => None,
                _ => Some(token.clone()),
            })
        },
    )
    .map_err(|e| match e {
        UpdateError::Store(e) => e,
        UpdateError::Refused(never) => match never {},
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + s, 0).unwrap()
    }

    fn actor() -> Actor {
        Actor {
            sub: "wx:test".into(),
            role: "trainee".into(),
        }
    }

    #[test]
    fn a_second_binding_of_a_person_ends_the_first() {
        let kv = MemoryStore::new();
        let first = bind(&kv, "aaaa1111", "p1", &actor(), t(0)).unwrap();
        assert!(first.changed && first.replaced.is_none());
        assert!(current(&kv, "p1", "aaaa").unwrap());
        let second = bind(&kv, "bbbb2222", "p1", &actor(), t(5)).unwrap();
        assert_eq!(second.replaced.as_deref(), Some("aaaa1111"));
        assert_eq!(second.binding.rev, 2);
        assert!(
            !current(&kv, "p1", "aaaa").unwrap(),
            "the old openid is no longer current"
        );
        assert!(current(&kv, "p1", "bbbb").unwrap());
        assert_eq!(
            binding(&kv, "aaaa1111").unwrap(),
            None,
            "login of the old openid is unbound"
        );
        assert_eq!(binding(&kv, "bbbb2222").unwrap().unwrap().person, "p1");
    }

    #[test]
    fn a_wechat_user_bound_to_another_person_leaves_the_first_person_unbound() {
        let kv = MemoryStore::new();
        bind(&kv, "aaaa1111", "p1", &actor(), t(0)).unwrap();
        bind(&kv, "aaaa1111", "p2", &actor(), t(1)).unwrap();
        assert!(!current(&kv, "p1", "aaaa").unwrap());
        assert!(current(&kv, "p2", "aaaa").unwrap());
        assert_eq!(binding(&kv, "aaaa1111").unwrap().unwrap().person, "p2");
    }

    #[test]
    fn binding_again_to_the_same_user_changes_nothing() {
        let kv = MemoryStore::new();
        bind(&kv, "aaaa1111", "p1", &actor(), t(0)).unwrap();
        let again = bind(&kv, "aaaa1111", "p1", &actor(), t(9)).unwrap();
        assert!(!again.changed);
        assert_eq!(again.binding.bound_at, t(0));
    }

    #[test]
    fn an_empty_token_prefix_is_never_current() {
        let kv = MemoryStore::new();
        bind(&kv, "aaaa1111", "p1", &actor(), t(0)).unwrap();
        assert!(!current(&kv, "p1", "").unwrap());
        assert!(!current(&kv, "p2", "aaaa").unwrap());
    }

    #[test]
    fn attempts_are_counted_before_the_check_and_the_first_refused_one_is_audited() {
        let kv = MemoryStore::new();
        let n: Vec<i64> = (0..7)
            .map(|_| count_attempt(&kv, "wx:a", 5, t(0)).unwrap())
            .collect();
        assert_eq!(n, vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(attempts(&kv, "wx:a", t(0)).unwrap(), 7);
        assert_eq!(attempts(&kv, "wx:a", t(ATTEMPT_WINDOW_SECS)).unwrap(), 0);
    }

    #[test]
    fn one_fetcher_per_generation_and_lease_window() {
        let kv = MemoryStore::new();
        assert!(take_token_fetch(&kv, 1, t(0)).unwrap());
        assert!(!take_token_fetch(&kv, 1, t(1)).unwrap());
        assert!(take_token_fetch(&kv, 2, t(1)).unwrap());
        assert!(
            take_token_fetch(&kv, 1, t(TOKEN_FETCH_LEASE_SECS)).unwrap(),
            "a dead fetcher is replaced in the next window"
        );
    }

    #[test]
    fn an_older_generation_never_overwrites_a_newer_token() {
        let kv = MemoryStore::new();
        let tok = |g: i64| AccessToken {
            token: format!("t{g}"),
            expires_at: t(7200),
            generation: g,
            fetched_at: t(0),
        };
        put_access_token(&kv, &tok(2)).unwrap();
        put_access_token(&kv, &tok(1)).unwrap();
        assert_eq!(access_token(&kv).unwrap().unwrap().token, "t2");
        assert!(
            !format!("{:?}", tok(3)).contains("t3"),
            "Debug hides the token"
        );
    }

    #[test]
    fn tickets_verify_until_they_expire_and_refuse_tampering() {
        let t = sign_ticket("secret", "ref1", 100);
        assert_eq!(verify_ticket("secret", &t, 100), Some("ref1".into()));
        assert_eq!(verify_ticket("secret", &t, 101), None);
        assert_eq!(verify_ticket("other", &t, 50), None);
        let forged = format!("{}x", t);
        assert_eq!(verify_ticket("secret", &forged, 50), None);
    }

    #[test]
    fn openid_refs_are_keyed_and_never_contain_the_openid() {
        let a = openid_ref("k1", "oAbCdEf123");
        assert_ne!(a, openid_ref("k2", "oAbCdEf123"));
        assert!(!a.contains("oAbCdEf123"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn a_crash_between_the_binding_and_its_event_is_repaired_by_the_retry() {
        let kv = MemoryStore::new();
        let bound = |kv: &MemoryStore| {
            crate::audit::history(kv, "person:p1", Default::default(), 100)
                .unwrap()
                .0
                .iter()
                .filter(|e| e.change.action == "wechat.bound")
                .count()
        };
        // The person's record is written (its creation takes two writes),
        // then the process dies before any event.
        kv.fail_after_writes(Some(2));
        assert!(bind(&kv, "oref-1", "p1", &actor(), t(0)).is_err());
        kv.fail_after_writes(None);
        let login = |kv: &MemoryStore| {
            get_json::<Binding>(kv, &wechat_key("oref-1"), "wechat binding").unwrap()
        };
        assert_eq!(login(&kv), None, "no login yet");
        assert_eq!(bound(&kv), 0);
        let b = bind(&kv, "oref-1", "p1", &actor(), t(1)).unwrap();
        assert!(!b.changed, "the binding itself was already there");
        assert_eq!(bound(&kv), 1, "the retry wrote the event");
        assert_eq!(login(&kv).unwrap().person, "p1");
        bind(&kv, "oref-1", "p1", &actor(), t(2)).unwrap();
        assert_eq!(bound(&kv), 1, "nothing more once done");
    }
}
