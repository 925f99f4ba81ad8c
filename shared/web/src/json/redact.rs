//! Error texts without the values that were sent: serde's messages taken
//! apart by shape and rebuilt from the kind of what came and what was
//! expected, and paths whose caller-chosen keys are named only when they
//! look like member names.

/// Whether `text` may be named as a member name: what the contract's member
/// names look like (a lower-case ASCII letter, then lower-case letters,
/// digits and `_`, at most 64 characters). Anything else (an object key that
/// could be personal data, an ID number or a mobile) is not repeated.
pub fn is_member_name(text: &str) -> bool {
    text.len() <= 64
        && text.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The path as serde_path_to_error writes it, with any object key that is
/// not a member name (a key of a map, chosen by the caller) written `…`.
pub(super) fn safe_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    let mut first = true;
    for segment in path {
        if !matches!(segment, Segment::Seq { .. }) && !first {
            out.push('.');
        }
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(if is_member_name(key) { key } else { "…" })
            }
            Segment::Unknown => out.push('?'),
        }
        first = false;
    }
    if out.is_empty() { ".".to_string() } else { out }
}

/// What serde reported, rewritten so that it names what was expected and
/// the kind of what came, never the value that came (it may be an ID number
/// or a mobile). serde's messages quote the value (`invalid type: string
/// "…", expected …`, ``unknown variant `…` ``, ``integer `…` ``); each shape
/// is taken apart from its end, where only our own text is (the expected
/// names), so that a value holding quotes or `, expected` cannot smuggle
/// itself out. A message of another shape (a parse error of our own
/// newtypes, which never repeat their input) loses anything quoted.
pub(super) fn describe(message: &str) -> String {
    let message = strip_position(message);
    if let Some(rest) = message.strip_prefix("unknown field `") {
        return match split_expected(rest, "`, expected ", "`, there are no fields") {
            (name, expected) if is_member_name(name) => {
                format!("unknown field `{name}`{}", expected_clause(expected))
            }
            (_, expected) => format!("unknown field{}", expected_clause(expected)),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (_, expected) = split_expected(rest, "`, expected ", "`, there are no variants");
        return format!("unknown variant{}", expected_clause(expected));
    }
    for head in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(head) {
            let (unexpected, expected) = match rest.rsplit_once(", expected ") {
                Some((u, e)) => (u, Some(e)),
                None => (rest, None),
            };
            return format!("{head}{}{}", kind_of(unexpected), expected_clause(expected));
        }
    }
    if message.starts_with("missing field `")
        || message.starts_with("duplicate field `")
        || message.starts_with("invalid length ")
    {
        // Names from our own types, and a count.
        return without_quoted(&message, &['"']);
    }
    without_quoted(&message, &['"', '`'])
}

/// The message without serde_json's ` at line L column C` suffix.
fn strip_position(message: &str) -> String {
    if let Some((head, tail)) = message.rsplit_once(" at line ") {
        let mut parts = tail.splitn(2, " column ");
        let digits = |s: Option<&str>| {
            s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        };
        if digits(parts.next()) && digits(parts.next()) {
            return head.to_string();
        }
    }
    message.to_string()
}

/// Splits `rest` (after the opening quote of a caller's value) at the last
/// `sep` into the value and our list of expected names; or at `none`, when
/// there is nothing to expect. The value is whatever comes first.
fn split_expected<'a>(rest: &'a str, sep: &str, none: &str) -> (&'a str, Option<&'a str>) {
    // Our list of names never ends like `none`: test that first, so that a
    // value holding `sep` is not split there.
    if let Some(value) = rest.strip_suffix(none) {
        return (value, None);
    }
    match rest.rsplit_once(sep) {
        Some((value, expected)) => (value, Some(expected)),
        None => ("", None),
    }
}

fn expected_clause(expected: Option<&str>) -> String {
    match expected {
        Some(e) => format!(", expected {}", without_quoted(e, &['"'])),
        None => String::new(),
    }
}

/// The kind of an unexpected value as serde names it (`string`, `integer`,
/// `map` …), without the value itself.
fn kind_of(unexpected: &str) -> &'static str {
    const KINDS: [&str; 17] = [
        "boolean",
        "integer",
        "floating point",
        "character",
        "string",
        "byte array",
        "unit value",
        "Option value",
        "newtype struct",
        "sequence",
        "map",
        "enum",
        "unit variant",
        "newtype variant",
        "tuple variant",
        "struct variant",
        "null",
    ];
    KINDS
        .into_iter()
        .find(|k| {
            unexpected == *k
                || unexpected
                    .strip_prefix(k)
                    .is_some_and(|r| r.starts_with(" `") || r.starts_with(" \""))
        })
        .unwrap_or("value")
}

/// `text` with every segment between a pair of `quotes` written `…` (an
/// unterminated one to the end).
fn without_quoted(text: &str, quotes: &[char]) -> String {
    let mut out = String::new();
    let mut open: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match open {
            Some(q) if c == q && !escaped => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => escaped = c == '\\' && !escaped,
            None if quotes.contains(&c) => {
                out.push(c);
                open = Some(c);
                escaped = false;
            }
            None => out.push(c),
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde's messages for every shape, with values that try to get out.
    #[test]
    fn descriptions_name_the_expectation_and_never_the_value() {
        let cases = [
            (
                "invalid type: string \"13912345678\", expected u32",
                "invalid type: string, expected u32",
            ),
            (
                "invalid type: integer `987654321`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "invalid value: integer `-5`, expected u32",
                "invalid value: integer, expected u32",
            ),
            (
                "invalid type: floating point `31415.9265`, expected u16",
                "invalid type: floating point, expected u16",
            ),
            (
                "unknown variant `zz_marker_77`, expected `passed` or `failed`",
                "unknown variant, expected `passed` or `failed`",
            ),
            (
                "unknown variant `a`, expected `b`, expected one of `x`, `y`",
                "unknown variant, expected one of `x`, `y`",
            ),
            (
                "unknown variant `q`, there are no variants",
                "unknown variant",
            ),
            (
                "unknown field `extra`, expected `roster`",
                "unknown field `extra`, expected `roster`",
            ),
            (
                "unknown field `530102199001011234`, expected `roster`",
                "unknown field, expected `roster`",
            ),
            (
                "unknown field `a`, expected `zz`, there are no fields",
                "unknown field",
            ),
            ("missing field `roster`", "missing field `roster`"),
            (
                "invalid length 3, expected a tuple of size 2",
                "invalid length 3, expected a tuple of size 2",
            ),
            (
                "invalid type: string \"a\\\" , expected \\\"x\", expected u32",
                "invalid type: string, expected u32",
            ),
            (
                "check character does not match",
                "check character does not match",
            ),
            ("bad `M-1` and \"M-2\"", "bad `…` and \"…\""),
            (
                "invalid type: map, expected a string at line 3 column 7",
                "invalid type: map, expected a string",
            ),
        ];
        for (message, want) in cases {
            assert_eq!(describe(message), want, "{message}");
        }
    }
}
