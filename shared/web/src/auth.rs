//! Bearer tokens: HS256 JWTs signed with the `jwt_secret` Spin variable.
//!
//! A token names a role and, for the roles that act for someone, a binding:
//! an institution's credit code, an officer's district, a trainee's person
//! ref. Verification refuses any algorithm but HS256 (so `alg: none` and
//! RS/HS confusion cannot work), a bad signature, an expired or not-yet-valid
//! token, and a role without its binding. Every refusal is a 401.

use crate::problem::Problem;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use policy::ids::{AreaCode, CreditCode};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 30;

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

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("an Authorization: Bearer token is required")]
    Missing,
    /// Not three base64url parts of JSON.
    #[error("the token is malformed")]
    Malformed,
    /// An algorithm other than HS256.
    #[error("the token's algorithm is not accepted (HS256 only)")]
    Algorithm,
    /// The signature does not match.
    #[error("the token's signature is invalid")]
    Signature,
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// Before `nbf` (or issued in the future).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// A role without its binding.
    #[error("the token's role needs a binding it does not carry")]
    Binding,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length")
}

/// Signs `claims` as an HS256 JWT.
pub fn mint(claims: &Claims, secret: impl AsRef<[u8]>) -> String {
    let header = B64.encode(
        serde_json::to_vec(&Header {
            alg: "HS256".into(),
            typ: Some("JWT".into()),
        })
        .expect("header"),
    );
    let payload = B64.encode(serde_json::to_vec(claims).expect("claims"));
    let signing_input = format!("{header}.{payload}");
    let mut m = mac(secret.as_ref());
    m.update(signing_input.as_bytes());
    let sig = B64.encode(m.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Verifies a token at `now` (seconds since the epoch).
pub fn verify(token: &str, secret: impl AsRef<[u8]>, now: i64) -> Result<Principal, AuthError> {
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
    if header.alg != "HS256" {
        return Err(AuthError::Algorithm);
    }
    let sig = B64.decode(s).map_err(|_| AuthError::Malformed)?;
    let mut m = mac(secret.as_ref());
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    m.verify_slice(&sig).map_err(|_| AuthError::Signature)?;
    let claims: Claims = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AuthError::Malformed)?;
    if now > claims.exp + LEEWAY_SECS {
        return Err(AuthError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) || claims.iat > now + LEEWAY_SECS {
        return Err(AuthError::NotYetValid);
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

/// Reads and verifies the bearer token of a request.
pub fn authenticate(
    req: &crate::Request,
    secret: impl AsRef<[u8]>,
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
        .and_then(|t| verify(t, secret, now))
        .map_err(|e| Problem::unauthenticated(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

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

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let t = mint(&claims(Role::Institution), SECRET);
        assert!(verify(&t, SECRET, 1_500).is_ok());
        assert!(verify(&t, SECRET, 2_000 + LEEWAY_SECS).is_ok());
        assert_eq!(
            verify(&t, SECRET, 2_001 + LEEWAY_SECS),
            Err(AuthError::Expired)
        );
        assert_eq!(
            verify(&t, SECRET, 1_000 - LEEWAY_SECS - 1),
            Err(AuthError::NotYetValid)
        );
    }

    #[test]
    fn forged_and_confused_tokens_are_refused() {
        let t = mint(&claims(Role::BureauAdmin), SECRET);
        assert_eq!(
            verify(&t, "another-secret-of-at-least-32-bytes!!", 1_500),
            Err(AuthError::Signature)
        );
        let (_, rest) = t.split_once('.').unwrap();
        let none = format!("{}.{rest}", B64.encode(br#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(verify(&none, SECRET, 1_500), Err(AuthError::Algorithm));
        let unsigned = format!("{}.", t.rsplit_once('.').unwrap().0);
        assert_eq!(verify(&unsigned, SECRET, 1_500), Err(AuthError::Signature));
        let rs = format!("{}.{rest}", B64.encode(br#"{"alg":"RS256"}"#));
        assert_eq!(verify(&rs, SECRET, 1_500), Err(AuthError::Algorithm));
        assert_eq!(verify("abc", SECRET, 1_500), Err(AuthError::Malformed));
        // A payload changed after signing.
        let mut c = claims(Role::Institution);
        c.role = Role::BureauAdmin;
        let other_payload = B64.encode(serde_json::to_vec(&c).unwrap());
        let parts: Vec<&str> = t.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
        assert_eq!(verify(&tampered, SECRET, 1_500), Err(AuthError::Signature));
    }

    #[test]
    fn a_bound_role_without_its_binding_is_refused() {
        let mut c = claims(Role::Institution);
        c.institution = None;
        assert_eq!(
            verify(&mint(&c, SECRET), SECRET, 1_500),
            Err(AuthError::Binding)
        );
        let mut c = claims(Role::Trainee);
        c.person = None;
        assert_eq!(
            verify(&mint(&c, SECRET), SECRET, 1_500),
            Err(AuthError::Binding)
        );
    }
}
