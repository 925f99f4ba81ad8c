//! Opaque paging cursors: a position in an index, base64url-encoded JSON.

use crate::problem::Problem;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use store::index::Position;

/// Encodes a position as a cursor.
pub fn encode(pos: Position) -> String {
    B64.encode(serde_json::to_vec(&pos).expect("position serialises"))
}

/// Decodes a cursor; 422 when it is not one of ours.
pub fn decode(cursor: &str) -> Result<Position, Problem> {
    B64.decode(cursor)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
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
        assert_eq!(decode("not-a-cursor").unwrap_err().status, 422);
        assert_eq!(limit(Some("0"), 50, 200).unwrap_err().status, 422);
        assert_eq!(limit(Some("201"), 50, 200).unwrap_err().status, 422);
        assert_eq!(limit(Some("200"), 50, 200).unwrap(), 200);
        assert_eq!(limit(None, 50, 200).unwrap(), 50);
    }
}
