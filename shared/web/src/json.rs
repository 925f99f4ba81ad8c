//! JSON request bodies: 415 for another media type, 413 over the size limit,
//! 400 with line and column for broken JSON, 422 naming the field for unknown
//! fields, wrong types and invalid identifiers. Error texts never repeat the
//! value that was sent (it may be an ID number).

use crate::problem::Problem;
use crate::{MAX_BODY_BYTES, Request, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

mod redact;
pub use redact::is_member_name;
use redact::{describe, safe_path};

/// Parses the request body as `T`.
pub fn body<T: DeserializeOwned>(req: &Request) -> Result<T, Problem> {
    let ct = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(Problem::unsupported_media_type());
    }
    parse(req.body())
}

/// Parses bytes as `T` (see the module doc for the mapping of errors).
///
/// The bytes are first read as a JSON value, so that every syntax error is a
/// 400 with its position; the value is then read as `T`, so that every type
/// error (serde_json reports some of them as syntax errors when reading
/// straight from bytes, an enum given a number for one) is a 422 with its path.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::too_large(MAX_BODY_BYTES));
    }
    // Well-formed bodies, nearly all of them, are read once, straight into
    // `T`. Only a body that fails is read again, the slow way below, to tell
    // a syntax error from a type error and to name the path (reading a
    // 60-trainee application twice was a tenth of a validation's time).
    // Every body of the contract is an object. serde reads a struct from a
    // JSON array too, by position, which would skip the unknown-member and
    // repeated-member checks: anything but an object is refused first.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(Problem::invalid("body: the body must be a JSON object")
            .field("body", "must be a JSON object"));
    }
    if let Ok(typed) = serde_json::from_slice(bytes) {
        return Ok(typed);
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        Problem::malformed_json(format!(
            "invalid JSON at line {} column {}",
            e.line(),
            e.column()
        ))
        .with("line", e.line())
        .with("column", e.column())
    })?;
    // Read through a `Value`, a repeated key silently keeps its last value;
    // read directly it is an error. A body that two readers would understand
    // differently is refused, whatever else is wrong with it.
    if let Some(key) = repeated_key(bytes) {
        let detail = format!("duplicate field `{key}`");
        return Err(Problem::invalid(format!("body: {detail}")).field("body", detail));
    }
    // JSON Schema's `integer` is any number whose fraction is zero: `12.0`
    // is the integer 12 (RFC 8259 numbers have no integer type), while serde
    // reads it as a float and refuses it for a `u32`.
    let value = whole_numbers_as_integers(value);
    serde_path_to_error::deserialize::<_, T>(value).map_err(path_problem)
}

/// Every number with a zero fraction (`12.0`, `1e2`) written as an integer,
/// where it fits one; other numbers as they were.
fn whole_numbers_as_integers(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // 2^63: every whole float below it in magnitude converts exactly.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            if f.fract() == 0.0 && f.abs() < LIMIT {
                Value::from(f as i64)
            } else {
                Value::Number(n)
            }
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(whole_numbers_as_integers).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, whole_numbers_as_integers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The first object key that appears twice in one object, at any depth.
fn repeated_key(bytes: &[u8]) -> Option<String> {
    use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    /// Walks a JSON value, failing with the repeated key's name.
    struct Walk;

    impl<'de> DeserializeSeed<'de> for Walk {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Walk)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value_seed(Walk)?;
                if !seen.insert(key.clone()) {
                    // A member name is named; anything else (a key that
                    // could be personal data) is not.
                    let key = if is_member_name(&key) {
                        key
                    } else {
                        "…".to_string()
                    };
                    return Err(A::Error::custom(RepeatedKey(key)));
                }
            }
            Ok(())
        }
    }

    /// Carries the key out through serde_json's error text.
    struct RepeatedKey(String);
    impl fmt::Display for RepeatedKey {
        fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "\u{0}{}\u{0}", self.0)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(bytes);
    let err = Walk.deserialize(&mut de).err()?;
    let text = err.to_string();
    let mut parts = text.split('\u{0}');
    parts.next()?;
    parts.next().map(str::to_string)
}

/// A 422 naming the path where `T` could not be read, and what was expected
/// there: never the value that was sent.
fn path_problem(e: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let path = safe_path(e.path());
    let detail = describe(&e.into_inner().to_string());
    let field = if path == "." {
        "body".to_string()
    } else {
        path
    };
    Problem::invalid(format!("{field}: {detail}")).field(field, detail)
}

/// A JSON response.
pub fn respond<T: Serialize>(status: http::StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).expect("responses serialise");
    let mut res = http::Response::new(Bytes::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::ids::IdNumber;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        id_number: IdNumber,
        n: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        roster: Vec<Line>,
    }

    #[test]
    fn broken_json_is_400_with_its_position() {
        let p = parse::<Body>(b"{\"roster\": [}").unwrap_err();
        assert_eq!((p.status, p.code.as_str()), (400, "malformed_json"));
        assert_eq!(p.extra["line"], 1);
        assert!(parse::<Body>(b"{\"roster\": []} x").is_err());
    }

    #[test]
    fn an_invalid_id_on_a_roster_line_is_422_naming_the_path_without_the_value() {
        let body = br#"{"roster":[{"id_number":"11010519491231002X","n":1},{"id_number":"130402198207290622","n":2}]}"#;
        let p = parse::<Body>(body).unwrap_err();
        assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
        assert_eq!(p.errors[0].field, "roster[1].id_number");
        let text = serde_json::to_string(&p).unwrap();
        assert!(!text.contains("130402198207290622"), "{text}");
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_422() {
        let p = parse::<Body>(br#"{"roster":[],"extra":1}"#).unwrap_err();
        assert_eq!(p.status, 422);
        assert!(p.detail.contains("extra"), "{}", p.detail);
        let p = parse::<Body>(br#"{"roster":[{"id_number":"11010519491231002X","n":"one"}]}"#)
            .unwrap_err();
        assert_eq!((p.status, p.errors[0].field.as_str()), (422, "roster[0].n"));
    }

    #[test]
    fn a_repeated_key_is_422_not_silently_the_last_value() {
        let body = br#"{"roster":[],"roster":[{"id_number":"11010519491231002X","n":1}]}"#;
        let p = parse::<Body>(body).unwrap_err();
        assert_eq!(
            (p.status, p.code.as_str()),
            (422, "validation_failed"),
            "{p:?}"
        );
        assert!(
            p.detail.contains("duplicate field `roster`"),
            "{}",
            p.detail
        );
        assert!(!p.detail.contains("11010519491231002X"));
    }

    #[test]
    fn a_well_formed_body_reads_the_same_directly_and_through_a_value() {
        let body = br#"{"roster":[{"id_number":"11010519491231002X","n":1},{"id_number":"11010519491231002X","n":2}]}"#;
        let direct = parse::<Body>(body).unwrap();
        let slow: Body = serde_path_to_error::deserialize(
            serde_json::from_slice::<serde_json::Value>(body).unwrap(),
        )
        .unwrap();
        assert_eq!(format!("{direct:?}"), format!("{slow:?}"));
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_422_naming_the_body() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Activation {
            id_number: String,
            active: bool,
        }
        for body in [
            r#"["11010519491231002X", true]"#,
            r#""text""#,
            "12",
            "null",
            " true",
            "[]",
        ] {
            let p = parse::<Activation>(body.as_bytes()).unwrap_err();
            assert_eq!(
                (p.status, p.code.as_str()),
                (422, "validation_failed"),
                "{body}"
            );
            assert_eq!(p.errors[0].field, "body", "{body}");
        }
        // Broken JSON stays a 400 with its position; an object is read.
        assert_eq!(parse::<Activation>(b"[1,").unwrap_err().status, 400);
        assert!(parse::<Activation>(br#"{"id_number":"x","active":true}"#).is_ok());
    }

    #[test]
    fn an_integer_written_with_a_zero_fraction_is_read_as_that_integer() {
        let body = br#"{"roster":[{"id_number":"11010519491231002X","n":12.0},{"id_number":"11010519491231002X","n":1e2}]}"#;
        let b = parse::<Body>(body).unwrap();
        assert_eq!((b.roster[0].n, b.roster[1].n), (12, 100));
        // A fraction is still a wrong type, named by its path; so is a negative count.
        let p = parse::<Body>(br#"{"roster":[{"id_number":"11010519491231002X","n":12.5}]}"#)
            .unwrap_err();
        assert_eq!((p.status, p.errors[0].field.as_str()), (422, "roster[0].n"));
        let p = parse::<Body>(br#"{"roster":[{"id_number":"11010519491231002X","n":-1.0}]}"#)
            .unwrap_err();
        assert_eq!((p.status, p.errors[0].field.as_str()), (422, "roster[0].n"));
    }

    #[test]
    fn a_repeated_key_is_refused_even_where_a_float_also_needed_reading() {
        let body = br#"{"roster":[{"id_number":"11010519491231002X","n":1.0,"n":2}]}"#;
        let p = parse::<Body>(body).unwrap_err();
        assert_eq!(p.status, 422);
        assert!(p.detail.contains("duplicate field `n`"), "{}", p.detail);
        // A repeated key that is not a member name is not repeated back.
        let p = parse::<Body>(br#"{"roster":[],"11010519491231002X":1,"11010519491231002X":1}"#)
            .unwrap_err();
        assert!(!p.detail.contains("11010519491231002X"), "{}", p.detail);
    }

    #[test]
    fn wrong_values_of_every_kind_are_422_without_the_value() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Check {
            result: policy::checks::CheckResult,
            notes: String,
            hours: u32,
            by_line: std::collections::BTreeMap<String, u32>,
        }
        let bodies = [
            r#"{"result":"zz_marker_77","notes":"","hours":1,"by_line":{}}"#,
            r#"{"result":"passed","notes":987654321,"hours":1,"by_line":{}}"#,
            r#"{"result":"passed","notes":"","hours":"4242424242","by_line":{}}"#,
            r#"{"result":"passed","notes":"","hours":31415.9265,"by_line":{}}"#,
            r#"{"result":"passed","notes":"","hours":13912345678,"by_line":{}}"#,
            r#"{"result":"passed","notes":"","hours":1,"by_line":{"530102199001011234":"x"}}"#,
            r#"{"result":13912345678,"notes":"","hours":1,"by_line":{}}"#,
        ];
        for body in bodies {
            let p = parse::<Check>(body.as_bytes()).unwrap_err();
            assert_eq!(p.status, 422, "{body}");
            let text = serde_json::to_string(&p).unwrap();
            for marker in [
                "zz_marker_77",
                "987654321",
                "4242424242",
                "31415",
                "13912345678",
                "530102199001011234",
            ] {
                assert!(!text.contains(marker), "{body}: {text}");
            }
        }
    }

    #[test]
    fn oversized_bodies_are_413() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse::<Body>(&big).unwrap_err().status, 413);
    }
}
