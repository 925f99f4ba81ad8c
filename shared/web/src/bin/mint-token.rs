//! Keys and bearer tokens for a local instance: what the bureau's identity
//! provider and the WeChat login do in production.
//!
//! ```text
//! cargo run -q -p web --bin mint-token -- keygen [--dir .identity] [--issuer URL] [--audience NAME] [--kid ID]
//! cargo run -q -p web --bin mint-token -- [--dir .identity] --role institution \
//!     --institution 52530102MJ1D4567X6 [--sub inst-admin] [--hours 8]
//! ```
//! `keygen` writes, in the directory (default `.identity`): `idp.json` (the
//! identity provider's Ed25519 private key, its kid, issuer and audience;
//! never give it to a component), `jwks.json` (its public key: the value of
//! `auth_jwks`), `trainee.key` (`trainee_signing_key`, for the vouchers
//! component only) and `trainee.pub` (`trainee_public_key`), and prints the
//! variables for `spin up`. Minting signs staff roles with the identity
//! provider's key and `trainee` with the trainee key.
//! Roles: institution (--institution), district_officer (--district),
//! bureau_admin, inspector, scheduler, trainee (--person), social_security.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use policy::ids::{AreaCode, CreditCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use web::auth::{Claims, Issuer, Role, TRAINEE_ISSUER, TRAINEE_KID};

const USAGE: &str = "usage: mint-token keygen [--dir D] [--issuer URL] [--audience NAME] [--kid ID]\n       mint-token [--dir D] --role ROLE [--institution CODE] [--district CODE] [--person REF] [--sub ID] [--hours N]";

fn fail(msg: &str) -> ! {
    eprintln!("mint-token: {msg}");
    eprintln!("{USAGE}");
    std::process::exit(2)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|_| {
        fail(&format!(
            "cannot read {}; run `mint-token keygen` first",
            path.display()
        ))
    })
}

fn write(path: &Path, text: &str, private: bool) {
    std::fs::write(path, text)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = private;
}

fn seed_from(text: &str, what: &str) -> [u8; 32] {
    B64.decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .unwrap_or_else(|| fail(&format!("{what} is not a 32-byte key in base64url")))
}

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap_or_else(|_| fail("no randomness from the system"));
    seed
}

fn keygen(dir: &Path, get: &dyn Fn(&str) -> Option<String>) {
    let iss = get("--issuer").unwrap_or_else(|| "http://localhost/local-idp".into());
    let aud = get("--audience").unwrap_or_else(|| "vocational-training".into());
    let kid = get("--kid")
        .unwrap_or_else(|| format!("local-{}", chrono::Utc::now().format("%Y%m%d%H%M%S")));
    if kid == TRAINEE_KID {
        fail("--kid trainee is reserved for trainee tokens");
    }
    std::fs::create_dir_all(dir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", dir.display())));
    let idp_seed = random_seed();
    let idp = Issuer::new(idp_seed, &kid, &iss, &aud);
    let trainee_seed = random_seed();
    let trainee = Issuer::new(trainee_seed, TRAINEE_KID, TRAINEE_ISSUER, &aud);
    let idp_json = json!({"seed": B64.encode(idp_seed), "kid": kid, "iss": iss, "aud": aud});
    write(&dir.join("idp.json"), &format!("{idp_json}\n"), true);
    write(
        &dir.join("jwks.json"),
        &format!("{}\n", json!({"keys": [idp.public_jwk()]})),
        false,
    );
    write(
        &dir.join("trainee.key"),
        &format!("{}\n", B64.encode(trainee_seed)),
        true,
    );
    write(
        &dir.join("trainee.pub"),
        &format!("{}\n", trainee.public_key_b64()),
        false,
    );
    let d = dir.display();
    println!(
        "wrote {d}/idp.json (private: the identity provider's key), {d}/jwks.json, {d}/trainee.key (private), {d}/trainee.pub"
    );
    println!("spin up variables:");
    println!("  --variable auth_jwks=\"$(cat {d}/jwks.json)\" \\");
    println!("  --variable auth_issuer={iss} \\");
    println!("  --variable auth_audience={aud} \\");
    println!("  --variable trainee_public_key=$(cat {d}/trainee.pub) \\");
    println!("  --variable trainee_signing_key=$(cat {d}/trainee.key)");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let dir = PathBuf::from(get("--dir").unwrap_or_else(|| ".identity".into()));
    if args.first().map(String::as_str) == Some("keygen") {
        keygen(&dir, &get);
        return;
    }
    let role: Role = get("--role")
        .and_then(|r| serde_json::from_value(Value::String(r)).ok())
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
        .unwrap_or(if role == Role::Trainee { 2 } else { 8 });
    let idp: Value = serde_json::from_str(&read(&dir.join("idp.json")))
        .unwrap_or_else(|_| fail("idp.json is not JSON"));
    let field = |n: &str| {
        idp[n]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| fail(&format!("idp.json has no {n}")))
    };
    let aud = field("aud");
    let issuer = if role == Role::Trainee {
        let seed = seed_from(&read(&dir.join("trainee.key")), "trainee.key");
        Issuer::new(seed, TRAINEE_KID, TRAINEE_ISSUER, &aud)
    } else {
        let seed = seed_from(&field("seed"), "idp.json seed");
        Issuer::new(seed, &field("kid"), &field("iss"), &aud)
    };
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
    println!("{}", issuer.mint(&claims));
}
