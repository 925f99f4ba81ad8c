//! Prints a valid sample class-opening application as JSON, for trying the API.
//!
//! ```text
//! cargo run -q -p policy --features fixtures --example sample-application -- 2027-03-01 40
//! ```
//! Arguments: the first class day (default: 14 days from today) and the number
//! of trainees (default 40). ID numbers and mobiles are generated and belong to nobody.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let today = policy::ids::today_cst();
    let start = args
        .first()
        .map(|d| {
            d.parse()
                .unwrap_or_else(|_| panic!("first argument must be a date YYYY-MM-DD"))
        })
        .unwrap_or(today + chrono::Duration::days(14));
    let n = args
        .get(1)
        .map(|n| n.parse().expect("second argument is a number of trainees"))
        .unwrap_or(40);
    let (app, _) = policy::fixtures::valid_class_from(start, today, n, 0);
    println!(
        "{}",
        serde_json::to_string_pretty(&app).expect("serialises")
    );
}
