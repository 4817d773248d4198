//! Input validation shared by the HTTP layer and the typed export.

use crate::error::CacheError;

/// Longest path segment (`ns`, `key`) and tag, in bytes.
pub const MAX_SEGMENT_BYTES: usize = 256;
/// Most tags on one entry or one invalidation.
pub const MAX_TAGS: usize = 32;
/// Longest content type, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 256;
/// Longest `If-Match` token, in bytes (ours are 32).
pub const MAX_TOKEN_BYTES: usize = 128;

/// A path segment or tag: 1-256 bytes of UTF-8 without control characters.
pub fn segment(field: &str, value: &str) -> Result<(), CacheError> {
    if value.is_empty() || value.len() > MAX_SEGMENT_BYTES {
        return Err(CacheError::invalid(
            field,
            format!("must be 1-{MAX_SEGMENT_BYTES} bytes, got {}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(CacheError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A list of tags: each a valid segment, at most [`MAX_TAGS`] distinct ones. Returns them
/// de-duplicated, in first-seen order.
pub fn tags(field: &str, tags: &[String]) -> Result<Vec<String>, CacheError> {
    let mut distinct: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        segment(field, tag)?;
        if !distinct.contains(tag) {
            distinct.push(tag.clone());
        }
    }
    if distinct.len() > MAX_TAGS {
        return Err(CacheError::invalid(
            field,
            format!("at most {MAX_TAGS} tags, got {}", distinct.len()),
        ));
    }
    Ok(distinct)
}

/// A content type: 1-256 bytes of visible ASCII and spaces (it is echoed as a header).
pub fn content_type(field: &str, value: &str) -> Result<(), CacheError> {
    if value.is_empty()
        || value.len() > MAX_CONTENT_TYPE_BYTES
        || !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
    {
        return Err(CacheError::invalid(
            field,
            format!("must be 1-{MAX_CONTENT_TYPE_BYTES} bytes of printable ASCII"),
        ));
    }
    Ok(())
}

/// An `If-Match` token: 1-128 visible ASCII bytes.
pub fn token(field: &str, value: &str) -> Result<(), CacheError> {
    if value.is_empty()
        || value.len() > MAX_TOKEN_BYTES
        || !value.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(CacheError::invalid(
            field,
            format!("must be 1-{MAX_TOKEN_BYTES} bytes of visible ASCII"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_reject_empty_long_and_control_characters() {
        assert!(segment("key", "ok {with} braces / and ünïcode").is_ok());
        assert!(segment("key", "").is_err());
        assert!(segment("key", &"x".repeat(257)).is_err());
        assert!(segment("key", &"x".repeat(256)).is_ok());
        assert!(segment("key", "a\nb").is_err());
        assert!(segment("key", "a\u{7f}").is_err());
    }

    #[test]
    fn tags_are_deduplicated_and_capped() {
        let tags_in = vec!["a".to_string(), "b".into(), "a".into()];
        assert_eq!(tags("tags", &tags_in).unwrap(), vec!["a", "b"]);
        let many: Vec<String> = (0..33).map(|i| i.to_string()).collect();
        assert!(tags("tags", &many).is_err());
    }
}
