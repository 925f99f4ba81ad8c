//! Free text as the contract states it: a field of "1 to N characters" holds
//! 1 to N characters (Unicode scalar values, as JSON Schema's `minLength` and
//! `maxLength` count them) of which at least one is not white space.
//!
//! White space is Rust's `char::is_whitespace` (Unicode `White_Space`). The
//! contract writes the same set out as a character class, [`NOT_BLANK`], so
//! that a JSON Schema validator in any language (ECMA-262's `\s`, Python's
//! and Rust's differ at the edges) accepts exactly the strings this module
//! accepts.

/// The pattern docs/openapi.yaml gives such fields: one character that is
/// not white space, the white space listed character by character.
pub const NOT_BLANK: &str =
    r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// Whether `text` has 1 to `max` characters, not all white space. The length
/// is the text's as sent (spaces around it count), as JSON Schema counts it.
pub fn filled(text: &str, max: usize) -> bool {
    text.chars().count() <= max && text.chars().any(|c| !c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_of_one_to_n_characters_counts_characters_as_sent_and_needs_one_not_blank() {
        assert!(filled("李", 1));
        assert!(filled("养老护理员", 5));
        assert!(!filled("养老护理员", 4));
        assert!(!filled("", 5));
        assert!(!filled(" \t\u{3000}\u{a0}", 5));
        // Spaces around the text count towards the limit, as the schema counts them.
        assert!(filled(" ab ", 4));
        assert!(!filled(" ab ", 3));
    }
}
