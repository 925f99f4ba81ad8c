//! Property test of the JSON body parser through a real route: 10,000 damaged
//! class applications (bytes changed, bodies cut short, values replaced with
//! values of other types) never panic and never get a 500: every answer is
//! a decision or a problem with a stable code.

#![allow(clippy::result_large_err)]

mod support;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::Value;
use store::MemoryStore;
use web::Env;
use web::auth::Role;

fn valid() -> Value {
    let (app, _) = policy::fixtures::valid_class(5);
    serde_json::to_value(app).unwrap()
}

fn call(body: Vec<u8>) -> (u16, Value) {
    let kv = MemoryStore::new();
    let secrets = support::secrets();
    let now = Utc.with_ymd_and_hms(2022, 6, 1, 2, 0, 0).unwrap();
    let token = support::token(Role::BureauAdmin, None, now);
    let req = support::request(
        "POST",
        "/api/v1/classes/validate",
        Some(&token),
        Some(body.into()),
        &[],
    );
    let env = Env {
        kv: &kv,
        secrets: &secrets,
        now,
        random: &|_| {},
    };
    let a = support::answer(app::class_opening::handle(&env, &req));
    assert!(!a.body.is_null(), "every answer is JSON: {}", a.text);
    (a.status.as_u16(), a.body)
}

/// Replaces the value at a pseudo-random position of the tree with `new`.
fn replace_somewhere(v: &mut Value, mut pick: usize, new: Value) -> bool {
    match v {
        Value::Object(map) => {
            let n = map.len();
            if n == 0 {
                return false;
            }
            let key = map.keys().nth(pick % n).cloned().unwrap();
            pick /= n;
            let child = map.get_mut(&key).unwrap();
            if pick.is_multiple_of(3) || !replace_somewhere(child, pick, new.clone()) {
                *child = new;
            }
            true
        }
        Value::Array(items) if !items.is_empty() => {
            let n = items.len();
            let child = &mut items[pick % n];
            pick /= n;
            if pick.is_multiple_of(3) || !replace_somewhere(child, pick, new.clone()) {
                *child = new;
            }
            true
        }
        _ => false,
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        any::<String>().prop_map(Value::String),
        "[0-9X]{18}".prop_map(Value::String),
        Just(Value::Array(vec![])),
        Just(serde_json::json!({"unexpected": 1})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damaged_applications_never_get_a_500(
        mode in 0u8..3,
        pick in any::<usize>(),
        byte in any::<u8>(),
        value in json_value(),
    ) {
        let mut body = serde_json::to_vec(&valid()).unwrap();
        match mode {
            0 => {
                let i = pick % body.len();
                body[i] = byte;
            }
            1 => body.truncate(pick % body.len()),
            _ => {
                let mut v = valid();
                replace_somewhere(&mut v, pick, value);
                body = serde_json::to_vec(&v).unwrap();
            }
        }
        let (status, answer) = call(body);
        prop_assert!(matches!(status, 200 | 400 | 403 | 422), "status {} answer {}", status, answer);
        if status != 200 {
            prop_assert!(answer["code"].as_str().is_some_and(|c| !c.is_empty()));
            prop_assert!(answer["title"].as_str().is_some_and(|c| !c.is_empty()));
        }
    }
}
