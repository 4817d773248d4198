//! The errors of the sessions API.

use std::fmt;

/// Why a session operation failed. Bad input is always an error value, never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// An argument is invalid (400).
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A value over its limit (413).
    TooLarge {
        /// The offending field.
        field: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// No such session, or it expired (404).
    NotFound,
    /// `If-Match` names another version (412); the current one.
    VersionMismatch(u64),
    /// Redis (or randomness) is not available (503).
    Unavailable(String),
}

impl SessionError {
    /// A [`SessionError::Invalid`] for `field`.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_string(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { field, detail } => write!(f, "{field}: {detail}"),
            Self::TooLarge { field, limit } => write!(f, "{field}: larger than {limit} bytes"),
            Self::NotFound => write!(f, "no such session"),
            Self::VersionMismatch(current) => write!(f, "the session is at version {current}"),
            Self::Unavailable(detail) => write!(f, "unavailable: {detail}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<crate::redis::RedisError> for SessionError {
    fn from(error: crate::redis::RedisError) -> Self {
        Self::Unavailable(error.message)
    }
}
