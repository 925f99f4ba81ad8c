//! JSON request bodies: 415 for another media type, 413 over the size limit,
//! 400 with line and column for broken JSON, 422 naming the field for unknown
//! fields, wrong types and invalid identifiers. Error texts never repeat the
//! value that was sent (it may be an ID number).

use crate::problem::Problem;
use crate::{MAX_BODY_BYTES, Request, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

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
    let direct = match serde_json::from_slice(bytes) {
        Ok(typed) => return Ok(typed),
        Err(e) => e,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        Problem::malformed_json(format!(
            "invalid JSON at line {} column {}",
            e.line(),
            e.column()
        ))
        .with("line", e.line())
        .with("column", e.column())
    })?;
    match serde_path_to_error::deserialize::<_, T>(value) {
        // Read through a `Value`, a repeated key silently keeps its last
        // value; read directly it is an error. A body that two readers would
        // understand differently is refused.
        Ok(_) => {
            let detail = describe(&direct.to_string());
            Err(Problem::invalid(format!("body: {detail}")).field("body", detail))
        }
        Err(e) => Err(path_problem(e)),
    }
}

/// A 422 naming the path where `T` could not be read.
fn path_problem(e: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let path = e.path().to_string();
    let detail = describe(&e.into_inner().to_string());
    let field = if path == "." {
        "body".to_string()
    } else {
        path
    };
    Problem::invalid(format!("{field}: {detail}")).field(field, detail)
}

/// Keeps serde's explanation but drops any quoted input and the position suffix.
fn describe(message: &str) -> String {
    let without_pos = message.split(" at line ").next().unwrap_or(message);
    // serde quotes offending values as `"…"` or `` `…` ``: the value may be personal data.
    let mut out = String::new();
    let mut quote: Option<char> = None;
    for c in without_pos.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None if c == '"' => {
                out.push(c);
                quote = Some('"');
            }
            None => out.push(c),
        }
    }
    // Field names in "unknown field `x`, expected one of ..." are not personal: keep backticks.
    out
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
    fn oversized_bodies_are_413() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse::<Body>(&big).unwrap_err().status, 413);
    }
}
