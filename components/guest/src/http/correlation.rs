//! `X-Correlation-Id`: taken from the request when acceptable, else generated.

/// The header name.
pub const CORRELATION_HEADER: &str = "X-Correlation-Id";
/// Longest accepted incoming id.
pub const MAX_CORRELATION_ID_LEN: usize = 128;

/// The request's id if it is 1-128 visible ASCII characters, else a new random one (an
/// unusable incoming id is replaced rather than rejected: it is diagnostics, not input).
pub fn correlation_id(incoming: Option<&str>) -> String {
    match incoming.map(str::trim) {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_CORRELATION_ID_LEN
                && id.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            id.to_string()
        }
        _ => crate::token::new_token(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_good_ids_and_replaces_bad_ones() {
        assert_eq!(correlation_id(Some("abc-123")), "abc-123");
        assert_eq!(correlation_id(None).len(), 32);
        assert_ne!(correlation_id(Some("bad\u{1}id")), "bad\u{1}id");
        assert_eq!(correlation_id(Some(&"x".repeat(129))).len(), 32);
    }
}
