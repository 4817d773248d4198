//! The errors of the progress API.

use std::fmt;

/// Why a progress operation failed. Bad input is always an error value, never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressError {
    /// An argument is invalid (400).
    Invalid {
        /// The offending field (`total_steps`, `step`, `message`, ...).
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No such entry, or it expired (404).
    NotFound,
    /// The entry exists already (on start with an explicit id), or is finished (409).
    Conflict(String),
    /// Redis could not be reached or answered with an error (503).
    Unavailable(String),
}

impl ProgressError {
    /// A [`ProgressError::Invalid`] for `field`.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_string(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ProgressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { field, detail } => write!(f, "{field}: {detail}"),
            Self::NotFound => write!(f, "no such progress entry"),
            Self::Conflict(detail) => write!(f, "conflict: {detail}"),
            Self::Unavailable(detail) => write!(f, "redis unavailable: {detail}"),
        }
    }
}

impl std::error::Error for ProgressError {}

impl From<crate::redis::RedisError> for ProgressError {
    fn from(error: crate::redis::RedisError) -> Self {
        Self::Unavailable(error.message)
    }
}
