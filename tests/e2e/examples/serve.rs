//! Serves the product's components from the test host on a fixed loopback
//! port, on a SQLite store, seeded like the README's walk-through: the
//! fixtures' institution, textbook and trainers, and one approved class.
//! Tokens for every staff role are written to a file, one `NAME=value` line
//! each, for tools that drive the API from outside (the schemathesis step of
//! `.ci/schemathesis`). Not product code: the product runs on Spin.
//!
//! ```sh
//! cargo run -p e2e --example serve -- --port 3000 --tokens target/serve/tokens.env
//! ```
//!
//! It serves until its standard input closes or it is killed.

#[path = "../tests/common/mod.rs"]
mod common;

use anyhow::{Context, Result, bail};
use e2e::Host;
use std::io::Read;
use std::path::PathBuf;
use web::auth::Role;

struct Opts {
    port: u16,
    tokens: PathBuf,
    db: PathBuf,
}

fn opts() -> Result<Opts> {
    let mut o = Opts {
        port: 3000,
        tokens: PathBuf::from("target/serve/tokens.env"),
        db: PathBuf::from("target/serve/kv.db"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--port" => o.port = value()?.parse().context("--port")?,
            "--tokens" => o.tokens = value()?.into(),
            "--db" => o.db = value()?.into(),
            other => bail!("unknown argument {other:?} (--port N, --tokens FILE, --db FILE)"),
        }
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> Result<()> {
    let o = opts()?;
    for dir in [o.tokens.parent(), o.db.parent()].into_iter().flatten() {
        std::fs::create_dir_all(dir).ok();
    }
    // A fresh store every start: the seeding below must not meet old data.
    let _ = std::fs::remove_file(&o.db);
    // TCP_NODELAY (Spin with the one-line patch, docs/OPERATIONS.md §9): the
    // fuzzer checks the contract, and keep-alive stalls would only slow it.
    let host = Host::start(common::product(&o.db).port(o.port).tcp_nodelay(true))
        .context("starting the host")?;
    common::seed(&host).await;
    let (class_id, app) = common::file_class(&host, 40).await;
    // The first trainee, bound to a WeChat user as the binding step binds.
    let person = store::pii::PiiHasher::new(common::HMAC).person_ref(&app.roster[0].id_number);
    let trainee = common::trainee(&o.db, &person);
    let tokens = [
        ("BUREAU", common::token(Role::BureauAdmin, None)),
        ("INSTITUTION", common::token(Role::Institution, None)),
        ("OFFICER", common::token(Role::DistrictOfficer, None)),
        ("INSPECTOR", common::token(Role::Inspector, None)),
        ("SCHEDULER", common::token(Role::Scheduler, None)),
        ("SOCIAL_SECURITY", common::token(Role::SocialSecurity, None)),
        ("TRAINEE", trainee),
        ("CLASS_ID", class_id),
        ("URL", host.base_url().to_string()),
    ];
    let text: String = tokens.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&o.tokens, text).with_context(|| format!("writing {:?}", o.tokens))?;
    println!("serving on {} (tokens in {:?})", host.base_url(), o.tokens);
    // Serve until stdin closes (a parent that exits closes it) or a signal.
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    host.stop();
    Ok(())
}
