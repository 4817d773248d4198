//! The errors of the events API.

use std::fmt;

/// Why an events operation failed. Bad input is always an error value, never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsError {
    /// An argument is invalid (400).
    Invalid {
        /// The offending field (`channel`, `event`, `body`, `Last-Event-ID`, ...).
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The event is larger than the limit (413); the limit in bytes.
    TooLarge(u64),
    /// The channel is written by another component (403); its name.
    ReadOnly(&'static str),
    /// Redis could not be reached or answered with an error (503).
    Unavailable(String),
}

impl EventsError {
    /// An [`EventsError::Invalid`] for `field`.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_string(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for EventsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { field, detail } => write!(f, "{field}: {detail}"),
            Self::TooLarge(limit) => write!(f, "the event is larger than {limit} bytes"),
            Self::ReadOnly(writer) => write!(f, "the channel is written by the {writer} component"),
            Self::Unavailable(detail) => write!(f, "redis unavailable: {detail}"),
        }
    }
}

impl std::error::Error for EventsError {}

impl From<crate::redis::RedisError> for EventsError {
    fn from(error: crate::redis::RedisError) -> Self {
        Self::Unavailable(error.message)
    }
}
