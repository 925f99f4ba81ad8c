//! Bearer tokens: who vouches for a caller, and for which role (issue 14).
//!
//! Two issuers sign tokens, and no component holds a key that can sign a
//! staff role:
//!
//! - **Staff tokens** (`institution`, `district_officer`, `bureau_admin`,
//!   `inspector`, `scheduler`, `social_security`) are issued by the bureau's
//!   identity provider. They are verified against its public keys, given as a
//!   JWKS document in the `auth_jwks` variable: EdDSA (Ed25519, `kty: OKP`)
//!   or RS256 (`kty: RSA`, at least 2048 bits), the key chosen by the header's
//!   `kid` and its algorithm fixed by the key. `iss` must equal
//!   `auth_issuer`, `aud` must be or contain `auth_audience`, and `exp - iat`
//!   must not exceed `auth_max_lifetime_secs`. A staff token may not carry
//!   the role `trainee`.
//! - **Trainee tokens** are minted by the WeChat login (vouchers component)
//!   with the Ed25519 key in `trainee_signing_key`, which only that
//!   component holds; every component verifies them with the public key in
//!   `trainee_public_key`. They carry `kid: trainee`, `iss`
//!   [`TRAINEE_ISSUER`], the same audience, live at most
//!   [`TRAINEE_MAX_LIFETIME_SECS`] and are valid for the role `trainee` only.
//!
//! HS256 and `none` are never accepted, so a token signed with a public key's
//! bytes as an HMAC secret (algorithm confusion) fails. Every refusal is a
//! 401 whose `code` names the reason ([`AuthError::problem`]).

use crate::problem::Problem;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature as EdSignature, Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use http::StatusCode;
use policy::ids::{AreaCode, CreditCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 30;
/// The `kid` of trainee tokens (no key of `auth_jwks` may use it).
pub const TRAINEE_KID: &str = "trainee";
/// The `iss` of trainee tokens.
pub const TRAINEE_ISSUER: &str = "urn:vocational-training:wechat-login";
/// Longest accepted trainee token (`exp - iat`), two hours.
pub const TRAINEE_MAX_LIFETIME_SECS: i64 = 2 * 3600;
/// `auth_max_lifetime_secs` when the variable is empty: twelve hours.
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 12 * 3600;
/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Who is calling (DESIGN.md, "Who calls it").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 培训机构: bound to one credit code.
    Institution,
    /// 县区人社局职业培训办公室: bound to one district.
    DistrictOfficer,
    /// 市人社局.
    BureauAdmin,
    /// 抽查员.
    Inspector,
    /// The scheduler that starts runs and sweeps.
    Scheduler,
    /// A trainee through the mini-program: bound to one person ref.
    Trainee,
    /// The social-security card system (card activation, VO-CARD).
    SocialSecurity,
}

impl Role {
    /// The `snake_case` name.
    pub fn id(self) -> &'static str {
        match self {
            Role::Institution => "institution",
            Role::DistrictOfficer => "district_officer",
            Role::BureauAdmin => "bureau_admin",
            Role::Inspector => "inspector",
            Role::Scheduler => "scheduler",
            Role::Trainee => "trainee",
            Role::SocialSecurity => "social_security",
        }
    }
}

/// The claims of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: a user or system id (never an ID number).
    pub sub: String,
    /// Role.
    pub role: Role,
    /// Institution binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution: Option<CreditCode>,
    /// District binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<AreaCode>,
    /// Person binding (person ref).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expires at.
    pub exp: i64,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The verified claims.
    pub claims: Claims,
}

/// Why a token was refused. Each is a 401 with its own problem `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header (`unauthenticated`).
    #[error("an Authorization: Bearer token is required")]
    Missing,
    /// Not three base64url parts of JSON with the claims a token needs (`token_malformed`).
    #[error("the token is malformed")]
    Malformed,
    /// `none`, HS256, or an algorithm the selected key is not for (`token_algorithm`).
    #[error("the token's algorithm is not accepted (EdDSA or RS256, as its key says)")]
    Algorithm,
    /// No `kid`, or one the key set does not hold (`token_unknown_key`).
    #[error("the token names no key, or a key that is not configured")]
    UnknownKey,
    /// The signature does not match (`token_signature`).
    #[error("the token's signature is invalid")]
    Signature,
    /// Past `exp` (`token_expired`).
    #[error("the token has expired")]
    Expired,
    /// Before `nbf`, or issued in the future (`token_not_yet_valid`).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer (`token_issuer`).
    #[error("the token was issued by another issuer")]
    Issuer,
    /// `aud` does not name this service (`token_audience`).
    #[error("the token is meant for another audience")]
    Audience,
    /// `exp - iat` above the maximum lifetime (`token_lifetime`).
    #[error("the token lives longer than the maximum lifetime")]
    Lifetime,
    /// A trainee key signing another role, or a staff key signing `trainee` (`token_role`).
    #[error("the token's role may not be signed by its key")]
    Role,
    /// A role without its binding (`token_binding`).
    #[error("the token's role needs a binding it does not carry")]
    Binding,
}

impl AuthError {
    /// The 401 problem: its `code` names the reason.
    pub fn problem(self) -> Problem {
        const TITLE: &str = "未认证或令牌无效";
        let detail = self.to_string();
        let s = StatusCode::UNAUTHORIZED;
        match self {
            AuthError::Missing => Problem::unauthenticated(detail),
            AuthError::Malformed => Problem::new(s, "token_malformed", TITLE, detail),
            AuthError::Algorithm => Problem::new(s, "token_algorithm", TITLE, detail),
            AuthError::UnknownKey => Problem::new(s, "token_unknown_key", TITLE, detail),
            AuthError::Signature => Problem::new(s, "token_signature", TITLE, detail),
            AuthError::Expired => Problem::new(s, "token_expired", TITLE, detail),
            AuthError::NotYetValid => Problem::new(s, "token_not_yet_valid", TITLE, detail),
            AuthError::Issuer => Problem::new(s, "token_issuer", TITLE, detail),
            AuthError::Audience => Problem::new(s, "token_audience", TITLE, detail),
            AuthError::Lifetime => Problem::new(s, "token_lifetime", TITLE, detail),
            AuthError::Role => Problem::new(s, "token_role", TITLE, detail),
            AuthError::Binding => Problem::new(s, "token_binding", TITLE, detail),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Payload {
    #[serde(flatten)]
    claims: Claims,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
}

#[derive(Serialize)]
struct PayloadOut<'a> {
    #[serde(flatten)]
    claims: &'a Claims,
    iss: &'a str,
    aud: &'a str,
}

/// A public key of the identity provider.
enum PublicKey {
    Ed25519(VerifyingKey),
    Rs256(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>),
}

impl PublicKey {
    fn alg(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "EdDSA",
            PublicKey::Rs256(_) => "RS256",
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(k) => {
                EdSignature::from_slice(sig).is_ok_and(|s| k.verify_strict(message, &s).is_ok())
            }
            PublicKey::Rs256(k) => {
                use rsa::signature::Verifier;
                rsa::pkcs1v15::Signature::try_from(sig).is_ok_and(|s| k.verify(message, &s).is_ok())
            }
        }
    }
}

fn b64_field(key: &Value, name: &str, kid: &str) -> Result<Vec<u8>, String> {
    key.get(name)
        .and_then(Value::as_str)
        .and_then(|v| B64.decode(v.trim_end_matches('=')).ok())
        .ok_or_else(|| format!("variable auth_jwks: key {kid} has no base64url `{name}`"))
}

/// Parses one JWK; `Ok(None)` for a key this service does not use
/// (`use: enc`, or a key type or algorithm other than Ed25519 and RS256).
fn parse_jwk(key: &Value) -> Result<Option<(String, PublicKey)>, String> {
    let kid = key
        .get("kid")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or("variable auth_jwks: every key needs a non-empty `kid`")?;
    if kid == TRAINEE_KID {
        return Err(format!(
            "variable auth_jwks: kid `{TRAINEE_KID}` is reserved for trainee tokens"
        ));
    }
    if key
        .get("use")
        .and_then(Value::as_str)
        .is_some_and(|u| u != "sig")
    {
        return Ok(None);
    }
    let alg = key.get("alg").and_then(Value::as_str);
    let kty = key.get("kty").and_then(Value::as_str).unwrap_or("");
    let crv = key.get("crv").and_then(Value::as_str).unwrap_or("");
    let pk = match (kty, crv, alg) {
        ("OKP", "Ed25519", None | Some("EdDSA" | "Ed25519")) => {
            let x: [u8; 32] = b64_field(key, "x", kid)?
                .try_into()
                .map_err(|_| format!("variable auth_jwks: key {kid}: `x` is not 32 bytes"))?;
            PublicKey::Ed25519(VerifyingKey::from_bytes(&x).map_err(|_| {
                format!("variable auth_jwks: key {kid} is not an Ed25519 public key")
            })?)
        }
        ("RSA", _, None | Some("RS256")) => {
            let n = b64_field(key, "n", kid)?;
            let e = b64_field(key, "e", kid)?;
            let n = rsa::BigUint::from_bytes_be(&n);
            if n.bits() < MIN_RSA_BITS {
                return Err(format!(
                    "variable auth_jwks: key {kid} has fewer than {MIN_RSA_BITS} bits"
                ));
            }
            let pk = rsa::RsaPublicKey::new(n, rsa::BigUint::from_bytes_be(&e))
                .map_err(|_| format!("variable auth_jwks: key {kid} is not an RSA public key"))?;
            PublicKey::Rs256(Box::new(rsa::pkcs1v15::VerifyingKey::new(pk)))
        }
        _ => return Ok(None),
    };
    Ok(Some((kid.to_string(), pk)))
}

fn decode_key32(name: &str, value: &str) -> Result<[u8; 32], String> {
    B64.decode(value.trim().trim_end_matches('='))
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("variable {name} must be 32 bytes in base64url"))
}

/// Who may sign tokens, from the Spin variables: the identity provider's
/// public keys and claims, the trainee public key, and (vouchers only) the
/// trainee signing key. Its `Debug` shows no key.
pub struct Identity {
    keys: Vec<(String, PublicKey)>,
    issuer: String,
    audience: String,
    max_lifetime_secs: i64,
    trainee_public: VerifyingKey,
    trainee_signer: Option<SigningKey>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field(
                "kids",
                &self.keys.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("max_lifetime_secs", &self.max_lifetime_secs)
            .field("trainee_signer", &self.trainee_signer.is_some())
            .finish()
    }
}

impl Identity {
    /// Reads the variables `auth_jwks`, `auth_issuer`, `auth_audience`,
    /// `auth_max_lifetime_secs` (empty: [`DEFAULT_MAX_LIFETIME_SECS`]) and
    /// `trainee_public_key`; the error names the variable that is wrong and
    /// never shows a key.
    pub fn new(
        jwks: &str,
        issuer: &str,
        audience: &str,
        max_lifetime_secs: &str,
        trainee_public_key: &str,
    ) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(jwks)
            .map_err(|_| "variable auth_jwks is not a JSON document".to_string())?;
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("variable auth_jwks must be a JWKS document: {\"keys\": [...]}")?;
        let mut keys: Vec<(String, PublicKey)> = Vec::new();
        for key in list {
            if let Some((kid, pk)) = parse_jwk(key)? {
                if keys.iter().any(|(k, _)| *k == kid) {
                    return Err(format!("variable auth_jwks: kid {kid} appears twice"));
                }
                keys.push((kid, pk));
            }
        }
        if keys.is_empty() {
            return Err("variable auth_jwks holds no Ed25519 or RS256 signing key".into());
        }
        let (issuer, audience) = (issuer.trim(), audience.trim());
        if issuer.is_empty() {
            return Err("variable auth_issuer must not be empty".into());
        }
        if audience.is_empty() {
            return Err("variable auth_audience must not be empty".into());
        }
        let max_lifetime_secs = match max_lifetime_secs.trim() {
            "" => DEFAULT_MAX_LIFETIME_SECS,
            v => v
                .parse::<i64>()
                .ok()
                .filter(|s| (60..=7 * 24 * 3600).contains(s))
                .ok_or("variable auth_max_lifetime_secs must be seconds from 60 to 604800")?,
        };
        let trainee_public =
            VerifyingKey::from_bytes(&decode_key32("trainee_public_key", trainee_public_key)?)
                .map_err(|_| "variable trainee_public_key is not an Ed25519 public key")?;
        Ok(Self {
            keys,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            max_lifetime_secs,
            trainee_public,
            trainee_signer: None,
        })
    }

    /// Adds the trainee signing key (`trainee_signing_key`, the vouchers
    /// component only): a 32-byte Ed25519 seed in base64url whose public key
    /// must be `trainee_public_key`.
    pub fn with_trainee_signing_key(mut self, seed: &str) -> Result<Self, String> {
        let key = SigningKey::from_bytes(&decode_key32("trainee_signing_key", seed)?);
        if key.verifying_key() != self.trainee_public {
            return Err(
                "variable trainee_signing_key does not belong to trainee_public_key".into(),
            );
        }
        self.trainee_signer = Some(key);
        Ok(self)
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The configured audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The longest accepted staff token, in seconds.
    pub fn max_lifetime_secs(&self) -> i64 {
        self.max_lifetime_secs
    }

    /// Whether this component can mint trainee tokens.
    pub fn can_mint_trainee_tokens(&self) -> bool {
        self.trainee_signer.is_some()
    }

    /// Mints a trainee token: `None` unless this component holds the trainee
    /// signing key and `claims` are for the role `trainee`. No other role can
    /// be minted by any component.
    pub fn mint_trainee(&self, claims: &Claims) -> Option<String> {
        if claims.role != Role::Trainee {
            return None;
        }
        let key = self.trainee_signer.as_ref()?;
        Some(sign_ed25519(
            key,
            TRAINEE_KID,
            TRAINEE_ISSUER,
            &self.audience,
            claims,
        ))
    }

    /// The HMAC key of WeChat bind tickets, derived from the trainee signing
    /// key (so only the component that mints trainee tokens can issue them).
    pub fn bind_ticket_key(&self) -> Option<String> {
        let key = self.trainee_signer.as_ref()?;
        let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
        m.update(b"wechat-bind-ticket-key");
        Some(
            m.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    /// Verifies a token at `now` (seconds since the epoch).
    pub fn verify(&self, token: &str, now: i64) -> Result<Principal, AuthError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let header: Header = B64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::Malformed)?;
        if header.crit.is_some() {
            return Err(AuthError::Malformed);
        }
        if !matches!(header.alg.as_str(), "EdDSA" | "RS256") {
            return Err(AuthError::Algorithm);
        }
        let trainee = header.kid.as_deref() == Some(TRAINEE_KID);
        let trainee_key;
        let key = if trainee {
            trainee_key = PublicKey::Ed25519(self.trainee_public);
            &trainee_key
        } else {
            let kid = header.kid.as_deref().ok_or(AuthError::UnknownKey)?;
            &self
                .keys
                .iter()
                .find(|(k, _)| k == kid)
                .ok_or(AuthError::UnknownKey)?
                .1
        };
        if key.alg() != header.alg {
            return Err(AuthError::Algorithm);
        }
        let sig = B64.decode(s).map_err(|_| AuthError::Malformed)?;
        if !key.verify(&token.as_bytes()[..h.len() + 1 + p.len()], &sig) {
            return Err(AuthError::Signature);
        }
        let payload: Payload = B64
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::Malformed)?;
        let (issuer, max_lifetime) = if trainee {
            (TRAINEE_ISSUER, TRAINEE_MAX_LIFETIME_SECS)
        } else {
            (self.issuer.as_str(), self.max_lifetime_secs)
        };
        if payload.iss.as_deref() != Some(issuer) {
            return Err(AuthError::Issuer);
        }
        let audience_ok = match &payload.aud {
            Some(Audience::One(a)) => *a == self.audience,
            Some(Audience::Many(list)) => list.contains(&self.audience),
            None => false,
        };
        if !audience_ok {
            return Err(AuthError::Audience);
        }
        let claims = payload.claims;
        if claims.exp.saturating_sub(claims.iat) > max_lifetime {
            return Err(AuthError::Lifetime);
        }
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(AuthError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) || claims.iat > now + LEEWAY_SECS {
            return Err(AuthError::NotYetValid);
        }
        if trainee != (claims.role == Role::Trainee) {
            return Err(AuthError::Role);
        }
        let bound = match claims.role {
            Role::Institution => claims.institution.is_some(),
            Role::DistrictOfficer => claims.district.is_some(),
            Role::Trainee => claims.person.is_some(),
            _ => true,
        };
        if !bound || claims.sub.is_empty() || claims.sub.len() > 128 {
            return Err(AuthError::Binding);
        }
        Ok(Principal { claims })
    }
}

fn signing_input(header: &Value, payload: &impl Serialize) -> String {
    format!(
        "{}.{}",
        B64.encode(serde_json::to_vec(header).expect("header")),
        B64.encode(serde_json::to_vec(payload).expect("claims"))
    )
}

fn sign_ed25519(key: &SigningKey, kid: &str, iss: &str, aud: &str, claims: &Claims) -> String {
    let input = signing_input(
        &json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}),
        &PayloadOut { claims, iss, aud },
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig.to_bytes()))
}

/// An Ed25519 token issuer: what an identity provider does (and
/// `mint-token` for a local instance). Components never hold one for staff
/// roles.
pub struct Issuer {
    key: SigningKey,
    kid: String,
    iss: String,
    aud: String,
}

impl Issuer {
    /// An issuer with the Ed25519 key `seed`, its `kid`, and the `iss` and `aud` it writes.
    pub fn new(seed: [u8; 32], kid: &str, iss: &str, aud: &str) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
            kid: kid.into(),
            iss: iss.into(),
            aud: aud.into(),
        }
    }

    /// Signs `claims` (EdDSA, with `kid`, `iss`, `aud`).
    pub fn mint(&self, claims: &Claims) -> String {
        sign_ed25519(&self.key, &self.kid, &self.iss, &self.aud, claims)
    }

    /// The public key as a JWK (`kty: OKP`, `crv: Ed25519`, `alg: EdDSA`, `use: sig`).
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": B64.encode(self.key.verifying_key().as_bytes()),
        })
    }

    /// The public key in base64url (the form of `trainee_public_key`).
    pub fn public_key_b64(&self) -> String {
        B64.encode(self.key.verifying_key().as_bytes())
    }
}

/// Something that signs claims into a token (an [`Issuer`]; in tests, the test keys).
pub trait Mint {
    /// The token for `claims`.
    fn mint_token(&self, claims: &Claims) -> String;
}

impl Mint for &Issuer {
    fn mint_token(&self, claims: &Claims) -> String {
        self.mint(claims)
    }
}

/// Signs `claims` with `key`.
pub fn mint(claims: &Claims, key: impl Mint) -> String {
    key.mint_token(claims)
}

/// Reads and verifies the bearer token of a request.
pub fn authenticate(
    req: &crate::Request,
    identity: &Identity,
    now: i64,
) -> Result<Principal, Problem> {
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthError::Missing);
    let token = header.and_then(|h| {
        let (scheme, token) = h.split_once(' ').ok_or(AuthError::Missing)?;
        if scheme.eq_ignore_ascii_case("bearer") {
            Ok(token.trim())
        } else {
            Err(AuthError::Missing)
        }
    });
    token
        .and_then(|t| identity.verify(t, now))
        .map_err(AuthError::problem)
}

impl Principal {
    /// The role.
    pub fn role(&self) -> Role {
        self.claims.role
    }

    /// 403 unless the role is one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        if roles.contains(&self.claims.role) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "role {} may not use this route",
                self.claims.role.id()
            )))
        }
    }

    /// Who owns an idempotency record of this caller: role, binding and `sub`
    /// (never an ID number: a trainee's binding is a person ref). Two tokens
    /// share records only if all three are equal.
    pub fn idempotency_caller(&self) -> String {
        let binding = match self.claims.role {
            Role::Institution => self.claims.institution.as_ref().map(|c| c.to_string()),
            Role::DistrictOfficer => self.claims.district.as_ref().map(|d| d.to_string()),
            Role::Trainee => self.claims.person.clone(),
            _ => None,
        }
        .unwrap_or_default();
        format!(
            "{}\n{}\n{}",
            self.claims.role.id(),
            binding,
            self.claims.sub
        )
    }

    /// The audit actor of this caller.
    pub fn actor(&self) -> store::audit::Actor {
        store::audit::Actor {
            sub: self.claims.sub.clone(),
            role: self.claims.role.id().to_string(),
        }
    }

    /// Whether this caller may see a record of `institution` in `district`:
    /// the bureau sees all, an institution its own, a district officer their district.
    pub fn may_see(&self, institution: &CreditCode, district: &AreaCode) -> bool {
        match self.claims.role {
            Role::BureauAdmin => true,
            Role::Institution => self.claims.institution.as_ref() == Some(institution),
            Role::DistrictOfficer => self.claims.district.as_ref() == Some(district),
            _ => false,
        }
    }
}

/// Fixed test keys and minting helpers, for tests and benchmarks only
/// (feature `testing`; never in a component).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;

    /// The test identity provider's issuer.
    pub const ISSUER: &str = "https://idp.test/realms/bureau";
    /// The audience of the test deployment.
    pub const AUDIENCE: &str = "vocational-training";
    /// The `kid` of the test identity provider's Ed25519 key.
    pub const ED25519_KID: &str = "test-ed25519";
    /// The `kid` of the test identity provider's RSA key.
    pub const RSA_KID: &str = "test-rsa";
    /// The test identity provider's Ed25519 seed.
    pub const IDP_SEED: [u8; 32] = *b"test-identity-provider-seed-0001";
    /// The test trainee signing key's seed.
    pub const TRAINEE_SEED: [u8; 32] = *b"test-trainee-signing-key-seed-01";

    const RSA_N: &str = concat!(
        "935c2c3c79008f32ff43aab4f29065743ac9448f2b610806aa865d809aa1b96e",
        "9a61c7fafaf5ccd4b406137ebc4e579e233f42116e7f6c0476c4745632d7f7ea",
        "8a2960e7b1d941df4e22f391e3f7f9d9feabd2ec680672c6717168eafacfae70",
        "9b7ec8182e41a7e0a197da5ec6f6359dddd6300759ac7cf6a650a1726d023ed9",
        "62b2fc5070d4a689f878c2026996471a2269181588a24e79b367f65fc4968d14",
        "19c2d963dba36b8d6467486159f2b2c4e8be509f6710fd56b0b3d302d48fd9e6",
        "9b4c786b52bdfb13d4a47dae4a50753a3862a3f8c2930db86ff56da7de542da9",
        "ea402ee1406076f8ccca468f4ad49df7c765e97ab19bd3e62b07d583ddb6ac15",
    );
    const RSA_D: &str = concat!(
        "8912580e4da54e396b10ba730e9ec52b29f39b53c1a4c473cef35023c1b2bb16",
        "3d8219cf458496ea7ecfed6fc4cc4031827fe3d395d6992cf327d294cbe94607",
        "0e4abc8548fdda89a92e5725ac748cc8a65d9619a9648b7c3927512777f399ee",
        "77f5a53d8e3ed70b306fb1af84f5f39c7684375b89a27fab1466dedbdd626aaa",
        "73f7e763f795e51b3a5c18181c67f0f7c283709477d0416ed168487a03589db5",
        "9d10dd989c57306d019caf053f26470ff0dddfaf0c59764fbad976c3b2290e30",
        "5e3c5866baadc274d075d950b9ca365eacc3d751c3abedb5ccf57de97f40abfc",
        "659b89ca59a3c473f4a191552c6d70bc9be6c4fb229c1763edc4099e99a65e1",
    );
    const RSA_P: &str = concat!(
        "cf3a308ad8100430839af8729aaec0acd96a7aacd20f28a2463a6edd02c14c2d",
        "d2b04d707bcfb9c33cd02327b30a1e1519159e3cc6233c5e4b2cbb3a3aa9a6f5",
        "82a99a101743839de270ea2749d1c1812c50ed745f7e1bb892f2ce3d407ead66",
        "0855d6fe3e0650c51687a06bac492af27a9eb03fa68eb8d88de450b3ab7e3b21",
    );
    const RSA_Q: &str = concat!(
        "b60ae028b4dcd06a2d8a91529fb84bbe405d3054f3b86a9347353f9019ca68b9",
        "036f674962e8461aff8b29177b776c5fe388b645d7d674a4954e5af24b5b3cb4",
        "d49bda59eb9ef0c5dcb35d4cb94e4be62f8d4399358233ad18a4fb30f4f8716f",
        "1e44eb0ac129c9336920124805fbf16e2a0b24baca459ef83f83d981ad26e675",
    );

    fn big(hex: &str) -> rsa::BigUint {
        rsa::BigUint::parse_bytes(hex.as_bytes(), 16).expect("hex")
    }

    /// The test RSA private key (2048 bits).
    pub fn rsa_key() -> &'static rsa::RsaPrivateKey {
        static KEY: std::sync::OnceLock<rsa::RsaPrivateKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| {
            rsa::RsaPrivateKey::from_components(
                big(RSA_N),
                rsa::BigUint::from(65_537u32),
                big(RSA_D),
                vec![big(RSA_P), big(RSA_Q)],
            )
            .expect("the test RSA key")
        })
    }

    /// The test identity provider's Ed25519 issuer.
    pub fn idp() -> Issuer {
        Issuer::new(IDP_SEED, ED25519_KID, ISSUER, AUDIENCE)
    }

    /// The test trainee key as an issuer (to build trainee-signed tokens by hand).
    pub fn trainee_issuer() -> Issuer {
        Issuer::new(TRAINEE_SEED, TRAINEE_KID, TRAINEE_ISSUER, AUDIENCE)
    }

    /// The RSA key as a JWK.
    pub fn rsa_jwk() -> Value {
        use rsa::traits::PublicKeyParts;
        let k = rsa_key();
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": RSA_KID,
            "n": B64.encode(k.n().to_bytes_be()),
            "e": B64.encode(k.e().to_bytes_be()),
        })
    }

    /// The test identity provider's JWKS (the Ed25519 and the RSA key).
    pub fn jwks() -> String {
        static JWKS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        JWKS.get_or_init(|| json!({"keys": [idp().public_jwk(), rsa_jwk()]}).to_string())
            .clone()
    }

    /// `trainee_public_key`.
    pub fn trainee_public_key() -> String {
        trainee_issuer().public_key_b64()
    }

    /// `trainee_signing_key`.
    pub fn trainee_signing_key() -> String {
        B64.encode(TRAINEE_SEED)
    }

    /// The identity of a component that mints trainee tokens (vouchers).
    pub fn identity() -> Identity {
        Identity::new(&jwks(), ISSUER, AUDIENCE, "", &trainee_public_key())
            .and_then(|i| i.with_trainee_signing_key(&trainee_signing_key()))
            .expect("the test identity")
    }

    /// The Spin variables of the test identity for every component, then
    /// `trainee_signing_key` (for the vouchers component).
    pub fn variables() -> Vec<(&'static str, String)> {
        vec![
            ("auth_jwks", jwks()),
            ("auth_issuer", ISSUER.to_string()),
            ("auth_audience", AUDIENCE.to_string()),
            ("trainee_public_key", trainee_public_key()),
            ("trainee_signing_key", trainee_signing_key()),
        ]
    }

    /// The test keys: staff roles signed by the identity provider's Ed25519
    /// key, `trainee` by the trainee key, as the deployment would.
    #[derive(Debug, Clone, Copy)]
    pub struct TestKeys;

    impl Mint for TestKeys {
        fn mint_token(&self, claims: &Claims) -> String {
            if claims.role == Role::Trainee {
                trainee_issuer().mint(claims)
            } else {
                idp().mint(claims)
            }
        }
    }

    /// The payload of `claims` with `iss` and `aud`, to change by hand.
    pub fn payload(claims: &Claims, iss: &str, aud: &str) -> Value {
        serde_json::to_value(PayloadOut { claims, iss, aud }).expect("claims")
    }

    /// How [`sign`] signs.
    pub enum Sign<'a> {
        /// EdDSA with this seed.
        Ed25519([u8; 32]),
        /// RS256 with the test RSA key.
        Rs256,
        /// HS256 with this secret.
        Hs256(&'a [u8]),
        /// No signature (an empty third part).
        Unsigned,
    }

    /// A token of any `header` and `payload`, signed as `how` says.
    pub fn sign(header: &Value, payload: &Value, how: Sign<'_>) -> String {
        let input = signing_input(header, payload);
        let sig = match how {
            Sign::Ed25519(seed) => SigningKey::from_bytes(&seed)
                .sign(input.as_bytes())
                .to_bytes()
                .to_vec(),
            Sign::Rs256 => {
                use rsa::signature::{SignatureEncoding, Signer};
                rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa_key().clone())
                    .sign(input.as_bytes())
                    .to_vec()
            }
            Sign::Hs256(secret) => {
                let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
                m.update(input.as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            Sign::Unsigned => Vec::new(),
        };
        format!("{input}.{}", B64.encode(sig))
    }

    /// `claims` as the test identity provider's RS256 key signs them.
    pub fn mint_rs256(claims: &Claims) -> String {
        sign(
            &json!({"alg": "RS256", "typ": "JWT", "kid": RSA_KID}),
            &payload(claims, ISSUER, AUDIENCE),
            Sign::Rs256,
        )
    }

    /// `claims` signed HS256 with `secret` (refused everywhere), naming the Ed25519 key.
    pub fn mint_hs256(claims: &Claims, secret: &[u8]) -> String {
        sign(
            &json!({"alg": "HS256", "typ": "JWT", "kid": ED25519_KID}),
            &payload(claims, ISSUER, AUDIENCE),
            Sign::Hs256(secret),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn claims(role: Role) -> Claims {
        Claims {
            sub: "u1".into(),
            role,
            institution: (role == Role::Institution)
                .then(|| CreditCode::parse("52530102MJ1D4567X6").unwrap()),
            district: (role == Role::DistrictOfficer).then(|| AreaCode::parse("530102").unwrap()),
            person: (role == Role::Trainee).then(|| "ab".repeat(32)),
            iat: 1_000,
            nbf: None,
            exp: 2_000,
        }
    }

    fn ed_header(kid: &str) -> Value {
        json!({"alg": "EdDSA", "typ": "JWT", "kid": kid})
    }

    fn verify(t: &str, now: i64) -> Result<Principal, AuthError> {
        identity().verify(t, now)
    }

    #[test]
    fn eddsa_rs256_and_trainee_tokens_verify_until_they_expire() {
        for t in [
            idp().mint(&claims(Role::Institution)),
            mint_rs256(&claims(Role::BureauAdmin)),
            mint(&claims(Role::Trainee), TestKeys),
            identity().mint_trainee(&claims(Role::Trainee)).unwrap(),
        ] {
            assert!(verify(&t, 1_500).is_ok(), "{t}");
            assert!(verify(&t, 2_000 + LEEWAY_SECS).is_ok());
            assert_eq!(verify(&t, 2_001 + LEEWAY_SECS), Err(AuthError::Expired));
            assert_eq!(
                verify(&t, 1_000 - LEEWAY_SECS - 1),
                Err(AuthError::NotYetValid)
            );
        }
    }

    #[test]
    fn a_wrong_issuer_or_audience_is_refused() {
        let c = claims(Role::BureauAdmin);
        let other_iss = Issuer::new(IDP_SEED, ED25519_KID, "https://idp.other", AUDIENCE);
        assert_eq!(verify(&other_iss.mint(&c), 1_500), Err(AuthError::Issuer));
        let other_aud = Issuer::new(IDP_SEED, ED25519_KID, ISSUER, "another-service");
        assert_eq!(verify(&other_aud.mint(&c), 1_500), Err(AuthError::Audience));
        // An audience list naming this service is accepted; one without it, or none, is not.
        let mut p = payload(&c, ISSUER, AUDIENCE);
        p["aud"] = json!(["portal", AUDIENCE]);
        let t = sign(&ed_header(ED25519_KID), &p, Sign::Ed25519(IDP_SEED));
        assert!(verify(&t, 1_500).is_ok());
        p["aud"] = json!(["portal"]);
        let t = sign(&ed_header(ED25519_KID), &p, Sign::Ed25519(IDP_SEED));
        assert_eq!(verify(&t, 1_500), Err(AuthError::Audience));
        p.as_object_mut().unwrap().remove("aud");
        let t = sign(&ed_header(ED25519_KID), &p, Sign::Ed25519(IDP_SEED));
        assert_eq!(verify(&t, 1_500), Err(AuthError::Audience));
        // A trainee token must carry the trainee issuer, a staff token the configured one.
        let t =
            Issuer::new(TRAINEE_SEED, TRAINEE_KID, ISSUER, AUDIENCE).mint(&claims(Role::Trainee));
        assert_eq!(verify(&t, 1_500), Err(AuthError::Issuer));
    }

    #[test]
    fn an_unknown_or_missing_kid_is_refused() {
        let c = claims(Role::BureauAdmin);
        let t = Issuer::new(IDP_SEED, "rotated-away", ISSUER, AUDIENCE).mint(&c);
        assert_eq!(verify(&t, 1_500), Err(AuthError::UnknownKey));
        let t = sign(
            &json!({"alg": "EdDSA"}),
            &payload(&c, ISSUER, AUDIENCE),
            Sign::Ed25519(IDP_SEED),
        );
        assert_eq!(verify(&t, 1_500), Err(AuthError::UnknownKey));
        // A known kid with another key's signature.
        let t = Issuer::new([9; 32], ED25519_KID, ISSUER, AUDIENCE).mint(&c);
        assert_eq!(verify(&t, 1_500), Err(AuthError::Signature));
    }

    #[test]
    fn a_lifetime_above_the_maximum_is_refused() {
        let mut c = claims(Role::Scheduler);
        c.exp = c.iat + DEFAULT_MAX_LIFETIME_SECS;
        assert!(verify(&idp().mint(&c), 1_500).is_ok());
        c.exp += 1;
        assert_eq!(verify(&idp().mint(&c), 1_500), Err(AuthError::Lifetime));
        let short = Identity::new(&jwks(), ISSUER, AUDIENCE, "600", &trainee_public_key()).unwrap();
        let mut c = claims(Role::Scheduler);
        c.exp = c.iat + 601;
        assert_eq!(
            short.verify(&idp().mint(&c), 1_500),
            Err(AuthError::Lifetime)
        );
        let mut c = claims(Role::Trainee);
        c.exp = c.iat + TRAINEE_MAX_LIFETIME_SECS + 1;
        assert_eq!(verify(&mint(&c, TestKeys), 1_500), Err(AuthError::Lifetime));
    }

    #[test]
    fn none_hs256_and_algorithm_confusion_are_refused() {
        let c = claims(Role::BureauAdmin);
        let p = payload(&c, ISSUER, AUDIENCE);
        let none = sign(&json!({"alg": "none", "typ": "JWT"}), &p, Sign::Unsigned);
        assert_eq!(verify(&none, 1_500), Err(AuthError::Algorithm));
        let none_kid = sign(
            &json!({"alg": "none", "kid": ED25519_KID}),
            &p,
            Sign::Unsigned,
        );
        assert_eq!(verify(&none_kid, 1_500), Err(AuthError::Algorithm));
        // HS256 keyed with the public key's bytes, in every form a verifier
        // might hand to HMAC: the raw key, its base64url, the JWK, the JWKS.
        let jwk = idp().public_jwk();
        let raw = B64.decode(jwk["x"].as_str().unwrap()).unwrap();
        for secret in [
            raw.clone(),
            jwk["x"].as_str().unwrap().as_bytes().to_vec(),
            jwk.to_string().into_bytes(),
            jwks().into_bytes(),
        ] {
            assert_eq!(
                verify(&mint_hs256(&c, &secret), 1_500),
                Err(AuthError::Algorithm)
            );
        }
        let rsa_n = rsa_jwk()["n"].as_str().unwrap().as_bytes().to_vec();
        let t = sign(
            &json!({"alg": "HS256", "kid": RSA_KID}),
            &p,
            Sign::Hs256(&rsa_n),
        );
        assert_eq!(verify(&t, 1_500), Err(AuthError::Algorithm));
        let t = sign(
            &json!({"alg": "HS256", "kid": TRAINEE_KID}),
            &p,
            Sign::Hs256(&raw),
        );
        assert_eq!(verify(&t, 1_500), Err(AuthError::Algorithm));
        // The key fixes the algorithm: RS256 naming the Ed25519 key and back.
        let t = sign(
            &json!({"alg": "RS256", "kid": ED25519_KID}),
            &p,
            Sign::Rs256,
        );
        assert_eq!(verify(&t, 1_500), Err(AuthError::Algorithm));
        let t = sign(&ed_header(RSA_KID), &p, Sign::Ed25519(IDP_SEED));
        assert_eq!(verify(&t, 1_500), Err(AuthError::Algorithm));
        for alg in ["ES256", "RS512", "PS256", "HS512", "eddsa"] {
            let t = sign(
                &json!({"alg": alg, "kid": ED25519_KID}),
                &p,
                Sign::Ed25519(IDP_SEED),
            );
            assert_eq!(verify(&t, 1_500), Err(AuthError::Algorithm), "{alg}");
        }
        // An empty signature, and a payload changed after signing.
        let t = sign(&ed_header(ED25519_KID), &p, Sign::Unsigned);
        assert_eq!(verify(&t, 1_500), Err(AuthError::Signature));
        let good = idp().mint(&c);
        let parts: Vec<&str> = good.split('.').collect();
        let mut inst = payload(&claims(Role::Institution), ISSUER, AUDIENCE);
        inst["role"] = json!("bureau_admin");
        let tampered = format!("{}.{}.{}", parts[0], B64.encode(inst.to_string()), parts[2]);
        assert_eq!(verify(&tampered, 1_500), Err(AuthError::Signature));
        assert_eq!(verify("abc", 1_500), Err(AuthError::Malformed));
        let crit = sign(
            &json!({"alg": "EdDSA", "kid": ED25519_KID, "crit": ["exp"]}),
            &p,
            Sign::Ed25519(IDP_SEED),
        );
        assert_eq!(verify(&crit, 1_500), Err(AuthError::Malformed));
    }

    #[test]
    fn the_trainee_key_signs_the_trainee_role_only_and_staff_keys_never_sign_it() {
        let trainee = trainee_issuer();
        for role in [
            Role::Institution,
            Role::DistrictOfficer,
            Role::BureauAdmin,
            Role::Inspector,
            Role::Scheduler,
            Role::SocialSecurity,
        ] {
            assert_eq!(
                verify(&trainee.mint(&claims(role)), 1_500),
                Err(AuthError::Role),
                "{role:?}"
            );
            assert_eq!(identity().mint_trainee(&claims(role)), None);
        }
        assert_eq!(
            verify(&idp().mint(&claims(Role::Trainee)), 1_500),
            Err(AuthError::Role)
        );
        assert_eq!(
            verify(&mint_rs256(&claims(Role::Trainee)), 1_500),
            Err(AuthError::Role)
        );
        // The trainee key named by another kid is an unknown or wrong key.
        let t = Issuer::new(TRAINEE_SEED, ED25519_KID, ISSUER, AUDIENCE)
            .mint(&claims(Role::BureauAdmin));
        assert_eq!(verify(&t, 1_500), Err(AuthError::Signature));
        // A component without the trainee signing key mints nothing.
        let verifier = Identity::new(&jwks(), ISSUER, AUDIENCE, "", &trainee_public_key()).unwrap();
        assert_eq!(verifier.mint_trainee(&claims(Role::Trainee)), None);
        assert_eq!(verifier.bind_ticket_key(), None);
        assert!(
            verifier
                .verify(&mint(&claims(Role::Trainee), TestKeys), 1_500)
                .is_ok()
        );
    }

    #[test]
    fn a_bound_role_without_its_binding_is_refused() {
        let mut c = claims(Role::Institution);
        c.institution = None;
        assert_eq!(verify(&mint(&c, TestKeys), 1_500), Err(AuthError::Binding));
        let mut c = claims(Role::Trainee);
        c.person = None;
        assert_eq!(verify(&mint(&c, TestKeys), 1_500), Err(AuthError::Binding));
    }

    #[test]
    fn every_refusal_is_a_401_with_its_own_code() {
        use AuthError::*;
        let all = [
            Missing,
            Malformed,
            Algorithm,
            UnknownKey,
            Signature,
            Expired,
            NotYetValid,
            Issuer,
            Audience,
            Lifetime,
            Role,
            Binding,
        ];
        let codes: std::collections::BTreeSet<String> = all
            .iter()
            .map(|e| {
                let p = e.problem();
                assert_eq!(p.status, 401);
                p.code.to_string()
            })
            .collect();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn bad_configuration_is_named_without_showing_a_key() {
        let tpk = trainee_public_key();
        let new = |jwks: &str| Identity::new(jwks, ISSUER, AUDIENCE, "", &tpk).map(|_| ());
        assert!(new("not json").unwrap_err().contains("auth_jwks"));
        assert!(
            new(r#"{"keys":[]}"#)
                .unwrap_err()
                .contains("no Ed25519 or RS256")
        );
        let mut k = idp().public_jwk();
        k["kid"] = json!(TRAINEE_KID);
        assert!(
            new(&json!({"keys": [k]}).to_string())
                .unwrap_err()
                .contains("reserved")
        );
        let k = idp().public_jwk();
        assert!(
            new(&json!({"keys": [k, k]}).to_string())
                .unwrap_err()
                .contains("twice")
        );
        let mut small = rsa_jwk();
        small["n"] = json!(B64.encode([0xffu8; 128]));
        assert!(
            new(&json!({"keys": [small]}).to_string())
                .unwrap_err()
                .contains("2048")
        );
        // Keys for encryption or other algorithms are passed over.
        let enc = json!({"kty": "RSA", "use": "enc", "kid": "e1", "n": "AQAB", "e": "AQAB"});
        let ec = json!({"kty": "EC", "crv": "P-256", "kid": "p1", "x": "AA", "y": "AA"});
        assert!(new(&json!({"keys": [enc, ec, idp().public_jwk()]}).to_string()).is_ok());
        assert!(Identity::new(&jwks(), "", AUDIENCE, "", &tpk).is_err());
        assert!(
            Identity::new(&jwks(), ISSUER, AUDIENCE, "12h", &tpk)
                .unwrap_err()
                .contains("auth_max_lifetime_secs")
        );
        let err = Identity::new(&jwks(), ISSUER, AUDIENCE, "", &tpk)
            .unwrap()
            .with_trainee_signing_key(&B64.encode([7u8; 32]))
            .unwrap_err();
        assert!(err.contains("does not belong"));
        assert!(!err.contains(&B64.encode([7u8; 32])));
        assert!(!format!("{:?}", identity()).contains(&trainee_signing_key()));
    }
}
