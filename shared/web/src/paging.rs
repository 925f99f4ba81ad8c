//! Paging cursors: a position in an index, written `<page>.<offset>`, two
//! decimal numbers without leading zeros (at most 12 and 9 digits). Clients
//! treat them as opaque; the contract states the form (the `Cursor`
//! parameter's pattern in docs/openapi.yaml) so that exactly the cursors it
//! allows are read. A position past the end reads as an empty last page.

use crate::problem::Problem;
use store::index::Position;

/// Encodes a position as a cursor.
pub fn encode(pos: Position) -> String {
    format!("{}.{}", pos.page, pos.offset)
}

/// A decimal number of 1 to `max_digits` digits without a leading zero.
fn number(text: &str, max_digits: usize) -> Option<u64> {
    let ok = (1..=max_digits).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    ok.then(|| text.parse().ok()).flatten()
}

/// Decodes a cursor; 422 when it is not of the form this service returns.
pub fn decode(cursor: &str) -> Result<Position, Problem> {
    cursor
        .split_once('.')
        .and_then(|(page, offset)| {
            Some(Position {
                page: number(page, 12)?,
                offset: usize::try_from(number(offset, 9)?).ok()?,
            })
        })
        .ok_or_else(|| {
            Problem::invalid("cursor is not valid")
                .field("cursor", "not a cursor this service returned")
        })
}

/// Parses `limit`: 1 to `max`, default `default`.
pub fn limit(value: Option<&str>, default: usize, max: usize) -> Result<usize, Problem> {
    match value {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Problem::invalid(format!("limit must be 1 to {max}"))
                    .field("limit", format!("1 to {max}"))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let p = Position {
            page: 3,
            offset: 17,
        };
        assert_eq!(decode(&encode(p)).unwrap(), p);
        assert_eq!(encode(p), "3.17");
        for bad in [
            "not-a-cursor",
            "",
            "3",
            "3.",
            ".17",
            "03.17",
            "3.017",
            "-3.17",
            "3.17.1",
            "1234567890123.0",
            "0.1234567890",
            "eyJwYWdlIjowLCJvZmZzZXQiOjJ9",
        ] {
            assert_eq!(decode(bad).unwrap_err().status, 422, "{bad}");
        }
        assert_eq!(
            decode("999999999999.999999999").unwrap(),
            Position {
                page: 999_999_999_999,
                offset: 999_999_999
            }
        );
        assert_eq!(decode("0.0").unwrap(), Position { page: 0, offset: 0 });
        assert_eq!(limit(Some("0"), 50, 200).unwrap_err().status, 422);
        assert_eq!(limit(Some("201"), 50, 200).unwrap_err().status, 422);
        assert_eq!(limit(Some("200"), 50, 200).unwrap(), 200);
        assert_eq!(limit(None, 50, 200).unwrap(), 50);
    }
}
