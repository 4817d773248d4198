//! The errors of the rate-limit API (the WIT `error` variant, with the field split out).

use std::fmt;

/// Why a rate-limit operation failed. Bad input is always an error value, never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitError {
    /// An argument is invalid.
    Invalid {
        /// The offending field (`key`, `cost`, `policies[1].limit`, ...).
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A policy name the configuration does not define.
    UnknownPolicy(String),
    /// The configuration (a Spin variable) is invalid.
    Config(String),
    /// Redis could not be reached or answered with an error, and the check fails closed.
    Unavailable(String),
}

impl RateLimitError {
    /// An [`RateLimitError::Invalid`] for `field`.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_string(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for RateLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { field, detail } => write!(f, "{field}: {detail}"),
            Self::UnknownPolicy(name) => write!(f, "unknown policy {name:?}"),
            Self::Config(detail) => write!(f, "invalid configuration: {detail}"),
            Self::Unavailable(detail) => write!(f, "redis unavailable: {detail}"),
        }
    }
}

impl std::error::Error for RateLimitError {}

impl From<crate::redis::RedisError> for RateLimitError {
    fn from(error: crate::redis::RedisError) -> Self {
        Self::Unavailable(error.message)
    }
}
