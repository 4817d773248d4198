//! The errors of the queue API.

use std::fmt;

/// Why a queue operation failed. Bad input is always an error value, never a panic or trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// An argument is invalid (400).
    Invalid {
        /// The offending field (`queue`, `priority`, `delay_ms`, `jobs[3].payload`, ...).
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A payload or batch over its limit (413).
    TooLarge {
        /// The offending field.
        field: String,
        /// The limit (bytes or items).
        limit: u64,
    },
    /// No such job (404).
    NotFound,
    /// The lease is not current, or the job is already finished (409); the job's status.
    Conflict(String),
    /// Redis could not be reached or answered with an error (503).
    Unavailable(String),
}

impl QueueError {
    /// A [`QueueError::Invalid`] for `field`.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_string(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { field, detail } => write!(f, "{field}: {detail}"),
            Self::TooLarge { field, limit } => {
                write!(f, "{field}: larger than the limit of {limit}")
            }
            Self::NotFound => write!(f, "no such job"),
            Self::Conflict(status) => write!(f, "conflict: the job is {status}"),
            Self::Unavailable(detail) => write!(f, "redis unavailable: {detail}"),
        }
    }
}

impl std::error::Error for QueueError {}

impl From<crate::redis::RedisError> for QueueError {
    fn from(error: crate::redis::RedisError) -> Self {
        Self::Unavailable(error.message)
    }
}
