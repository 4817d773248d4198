//! The errors of the cache API (the WIT `error` variant, with the field split out).

use std::fmt;

/// Why a cache operation failed. Bad input is always an error value, never a panic or trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheError {
    /// An argument is invalid.
    Invalid {
        /// The offending field (`ns`, `key`, `tags`, `ttl-ms`, ...).
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The value is larger than the configured limit (the limit in bytes).
    TooLarge(u64),
    /// A precondition failed: the `If-Match` token is not current.
    PreconditionFailed(String),
    /// Redis could not be reached or answered with an error.
    Unavailable(String),
}

impl CacheError {
    /// An [`CacheError::Invalid`] for `field`.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_string(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { field, detail } => write!(f, "{field}: {detail}"),
            Self::TooLarge(limit) => write!(f, "value larger than the limit of {limit} bytes"),
            Self::PreconditionFailed(detail) => write!(f, "precondition failed: {detail}"),
            Self::Unavailable(detail) => write!(f, "redis unavailable: {detail}"),
        }
    }
}

impl std::error::Error for CacheError {}

impl From<crate::redis::RedisError> for CacheError {
    fn from(error: crate::redis::RedisError) -> Self {
        Self::Unavailable(error.message)
    }
}
