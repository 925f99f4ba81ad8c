//! `mint-token keygen` writes a key pair and the matching JWKS, and the tokens
//! `mint-token` signs with them verify against exactly those variables, as
//! `spin up` would be given them (README, "Run").

use std::path::Path;
use std::process::Command;
use web::auth::{AuthError, Identity, Role};

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mint-token"))
        .args(args)
        .output()
        .expect("mint-token runs");
    assert!(
        out.status.success(),
        "mint-token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn keygen_writes_a_jwks_that_verifies_the_tokens_it_mints() {
    let dir = std::env::temp_dir().join(format!("mint-token-test-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let printed = run(&[
        "keygen",
        "--dir",
        d,
        "--issuer",
        "http://localhost/idp-test",
    ]);
    assert!(printed.contains("--variable auth_jwks="), "{printed}");
    let identity = Identity::new(
        &read(&dir, "jwks.json"),
        "http://localhost/idp-test",
        "vocational-training",
        "",
        &read(&dir, "trainee.pub"),
    )
    .unwrap()
    .with_trainee_signing_key(&read(&dir, "trainee.key"))
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let bureau = run(&["--dir", d, "--role", "bureau_admin"]);
    let p = identity.verify(bureau.trim(), now).unwrap();
    assert_eq!(p.claims.role, Role::BureauAdmin);
    let inst = run(&[
        "--dir",
        d,
        "--role",
        "institution",
        "--institution",
        "52530102MJ1D4567X6",
    ]);
    assert!(identity.verify(inst.trim(), now).is_ok());
    let trainee = run(&[
        "--dir",
        d,
        "--role",
        "trainee",
        "--person",
        &"ab".repeat(32),
    ]);
    assert_eq!(
        identity.verify(trainee.trim(), now).unwrap().claims.role,
        Role::Trainee
    );
    // Longer than the maximum lifetime (12 h by default): refused.
    let long = run(&["--dir", d, "--role", "scheduler", "--hours", "13"]);
    assert_eq!(identity.verify(long.trim(), now), Err(AuthError::Lifetime));
    // The private key is not in the JWKS, and is not readable by others.
    let idp: serde_json::Value = serde_json::from_str(&read(&dir, "idp.json")).unwrap();
    assert!(!read(&dir, "jwks.json").contains(idp["seed"].as_str().unwrap()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["idp.json", "trainee.key"] {
            let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{f}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
