//! Input validation shared by the HTTP layer, the configuration and the typed export.

use crate::error::RateLimitError;

/// Longest key (and path segment), in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Longest policy name, in bytes.
pub const MAX_POLICY_NAME_BYTES: usize = 64;

/// A key or path segment: 1-256 bytes of UTF-8 without control characters.
pub fn segment(field: &str, value: &str) -> Result<(), RateLimitError> {
    if value.is_empty() || value.len() > MAX_KEY_BYTES {
        return Err(RateLimitError::invalid(
            field,
            format!("must be 1-{MAX_KEY_BYTES} bytes, got {}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(RateLimitError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A policy name: 1-64 ASCII letters, digits, `-`, `_`, `.`, `:` (it appears verbatim in key
/// names and, quoted, in the `RateLimit` headers).
pub fn policy_name(field: &str, value: &str) -> Result<(), RateLimitError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_POLICY_NAME_BYTES
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(RateLimitError::invalid(
            field,
            format!(
                "must be 1-{MAX_POLICY_NAME_BYTES} ASCII letters, digits, '-', '_', '.', ':', got {value:?}"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_reject_empty_long_and_control_characters() {
        assert!(segment("key", "user:42 {x} ünï").is_ok());
        assert!(segment("key", "").is_err());
        assert!(segment("key", &"x".repeat(257)).is_err());
        assert!(segment("key", &"x".repeat(256)).is_ok());
        assert!(segment("key", "a\nb").is_err());
    }

    #[test]
    fn policy_names_are_a_safe_ascii_subset() {
        assert!(policy_name("name", "per-user_1.s:x").is_ok());
        for bad in ["", "a b", "a\"b", "é", "a,b", "a;b", &"x".repeat(65)] {
            assert!(policy_name("name", bad).is_err(), "{bad:?}");
        }
    }
}
