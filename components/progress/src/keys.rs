//! The only place Redis keys are built. Every key of one entry shares the hash tag `{<id>}`,
//! so the scripts (which touch the entry hash and its events stream together) work on Redis
//! Cluster.

use crate::error::ProgressError;

/// Longest id accepted.
pub const MAX_ID_LEN: usize = 128;

/// The key base of entry `id`: `p{<id>}:` (entry hash `e`, events stream `s`).
pub fn base(id: &str) -> String {
    format!("p{{{id}}}:")
}

/// The entry hash of `id`.
pub fn entry(id: &str) -> String {
    format!("{}e", base(id))
}

/// The events stream of `id`.
pub fn stream(id: &str) -> String {
    redwasm_guest::channels::progress_stream(id)
}

/// An id is 1-128 characters of `A-Z a-z 0-9 . _ : -` (job ids and generated ids fit), so it
/// can never close the hash tag or reach another entry's keys.
pub fn validate_id(id: &str) -> Result<(), ProgressError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(ProgressError::invalid(
            "id",
            format!("must be 1 to {MAX_ID_LEN} characters"),
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(ProgressError::invalid(
            "id",
            format!("invalid character {bad:?}: use letters, digits, '.', '_', ':' or '-'"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag_and_ids_cannot_break_out() {
        assert_eq!(entry("job-1"), "p{job-1}:e");
        assert_eq!(stream("job-1"), "p{job-1}:s");
        assert!(validate_id("0123abcd:step_2.x-y").is_ok());
        for bad in ["", "a}b", "a{b", "a b", "a/b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_id(&"x".repeat(MAX_ID_LEN + 1)).is_err());
    }
}
