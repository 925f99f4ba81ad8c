//! `recompute-run`: checks a published spot-check run from outside the system.
//!
//! ```text
//! curl -s -H "authorization: Bearer $TOKEN" \
//!   "$BASE/api/v1/spot-checks/runs/2022-06-20?limit=1000" > run.json
//! cargo run -p policy --bin recompute-run -- run.json      # or: ... < run.json
//! ```
//!
//! The input is the JSON of `GET /api/v1/spot-checks/runs/{id}`: one page, or
//! several pages one after another (as `curl` of each `next_cursor` appends
//! them). The command checks the chain SC-DRAW publishes: when the committed
//! bytes are revealed, that their SHA-256 is the commitment published at the
//! run's creation and that the run seed is SHA-256 of the bytes and the public
//! value; that each class seed derives from the run seed (when it is shown);
//! and for every class it recomputes the population digest, the sample
//! (Rivest's consistent sampler, DESIGN.md "Sampling") and any second sample
//! from its class seed and population. An institution's copy, taken before
//! the run seed is revealed, holds only its own classes and checks their
//! samples. Exit status: 0 when everything agrees, 1 when something
//! disagrees (each named on stderr), 2 when the input cannot be read.

use policy::sampling::{self, PublishedRun};
use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut text = String::new();
    let read = match args.first().map(String::as_str) {
        None | Some("-") => std::io::stdin().read_to_string(&mut text).map(|_| ()),
        Some("-h") | Some("--help") => {
            println!(
                "usage: recompute-run [FILE|-]  (the JSON of GET /api/v1/spot-checks/runs/{{id}})"
            );
            return ExitCode::SUCCESS;
        }
        Some(path) => std::fs::read_to_string(path).map(|t| text = t),
    };
    if let Err(e) = read {
        eprintln!("recompute-run: cannot read the input: {e}");
        return ExitCode::from(2);
    }
    let mut pages = Vec::new();
    for doc in serde_json::Deserializer::from_str(&text).into_iter::<PublishedRun>() {
        match doc {
            Ok(p) => pages.push(p),
            Err(e) => {
                eprintln!("recompute-run: not a published run (is the seed fixed yet?): {e}");
                return ExitCode::from(2);
            }
        }
    }
    if pages.is_empty() {
        eprintln!("recompute-run: the input holds no run");
        return ExitCode::from(2);
    }
    let mut classes = 0;
    let mut bad = 0;
    for page in &pages {
        classes += page.classes.len();
        for m in sampling::verify(page) {
            eprintln!("DISAGREES run {}: {m}", page.run);
            bad += 1;
        }
    }
    if bad > 0 {
        eprintln!("recompute-run: {bad} disagreement(s) in {classes} class(es)");
        ExitCode::from(1)
    } else {
        println!(
            "recompute-run: run {} agrees: {classes} class(es) recomputed with {} version {}",
            pages[0].run,
            sampling::ALGORITHM,
            sampling::ALGORITHM_VERSION
        );
        ExitCode::SUCCESS
    }
}
