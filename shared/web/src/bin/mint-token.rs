//! Mints a bearer token for calling a local instance.
//!
//! ```text
//! cargo run -q -p web --bin mint-token -- --secret "$JWT_SECRET" --role institution \
//!     --institution 52530102MJ1D4567X6 [--sub inst-admin] [--hours 8]
//! ```
//! Roles: institution (--institution), district_officer (--district),
//! bureau_admin, inspector, scheduler, trainee (--person), social_security.

use policy::ids::{AreaCode, CreditCode};
use web::auth::{Claims, Role, mint};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let fail = |msg: &str| -> ! {
        eprintln!("mint-token: {msg}");
        eprintln!(
            "usage: mint-token --secret S --role ROLE [--institution CODE] [--district CODE] [--person REF] [--sub ID] [--hours N]"
        );
        std::process::exit(2)
    };
    let secret = get("--secret")
        .or_else(|| std::env::var("JWT_SECRET").ok())
        .unwrap_or_else(|| fail("--secret or JWT_SECRET is required"));
    let role: Role = get("--role")
        .and_then(|r| serde_json::from_value(serde_json::Value::String(r)).ok())
        .unwrap_or_else(|| fail("--role must be one of institution, district_officer, bureau_admin, inspector, scheduler, trainee, social_security"));
    let institution = get("--institution")
        .map(|c| CreditCode::parse(c).unwrap_or_else(|e| fail(&format!("--institution: {e}"))));
    let district = get("--district")
        .map(|c| AreaCode::parse(c).unwrap_or_else(|e| fail(&format!("--district: {e}"))));
    let hours: i64 = get("--hours")
        .map(|h| {
            h.parse()
                .unwrap_or_else(|_| fail("--hours must be a number"))
        })
        .unwrap_or(8);
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: get("--sub").unwrap_or_else(|| format!("{}-cli", role.id())),
        role,
        institution,
        district,
        person: get("--person"),
        iat: now,
        nbf: None,
        exp: now + hours * 3600,
    };
    println!("{}", mint(&claims, secret));
}
