//! The only place Redis keys are built. A session is stored under the SHA-256 of its id (the
//! id itself is never written to Redis); a user's index under the user id. Each script
//! touches one key, so every operation works on Redis Cluster.

use sha2::{Digest, Sha256};

use crate::error::SessionError;

/// Longest user id accepted.
pub const MAX_USER_ID_LEN: usize = 128;

/// The SHA-256 of a session id, hex: what Redis knows the session by.
pub fn session_hash(session_id: &str) -> String {
    Sha256::digest(session_id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The session key for a session hash: `s{<hash>}`.
pub fn session(hash: &str) -> String {
    format!("s{{{hash}}}")
}

/// A user's index of sessions: `u{<user_id>}`.
pub fn user_index(user_id: &str) -> String {
    format!("u{{{user_id}}}")
}

/// A session id is 32 lower-case hex digits (128 bits); anything else is not one of ours.
pub fn validate_session_id(id: &str) -> Result<(), SessionError> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(SessionError::invalid(
            "session_id",
            "must be 32 lower-case hex digits",
        ))
    }
}

/// A user id is 1-128 characters of `A-Z a-z 0-9 . _ : @ -`, so it cannot break the hash tag.
pub fn validate_user_id(id: &str) -> Result<(), SessionError> {
    if id.is_empty() || id.len() > MAX_USER_ID_LEN {
        return Err(SessionError::invalid(
            "user_id",
            format!("must be 1 to {MAX_USER_ID_LEN} characters"),
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-')))
    {
        return Err(SessionError::invalid(
            "user_id",
            format!("invalid character {bad:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hashed_and_checked() {
        let hash = session_hash("00112233445566778899aabbccddeeff");
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, session_hash("00112233445566778899aabbccddeefe"));
        assert_eq!(session("ab"), "s{ab}");
        assert!(validate_session_id("00112233445566778899aabbccddeeff").is_ok());
        for bad in [
            "",
            "0011",
            "00112233445566778899AABBCCDDEEFF",
            "g0112233445566778899aabbccddeeff",
        ] {
            assert!(validate_session_id(bad).is_err(), "{bad}");
        }
        assert!(validate_user_id("user-42@example.com").is_ok());
        for bad in ["", "a}b", "a b", "a/b"] {
            assert!(validate_user_id(bad).is_err(), "{bad}");
        }
    }
}
