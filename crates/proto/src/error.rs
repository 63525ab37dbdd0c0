//! The one error type of `brevet-proto`. Messages are written for the person at the terminal.

/// Why an input or a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An untrusted input failed validation. `field` names the input, `reason` says what is wrong.
    #[error("invalid {field} `{value}`: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    /// A grant document failed verification.
    #[error("grant rejected: {0}")]
    Grant(String),
    /// A value could not be encoded or decoded.
    #[error("encoding: {0}")]
    Encoding(String),
}

impl Error {
    pub(crate) fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> Self {
        // Bound and sanitise the echoed value: it is hostile input and may end up in a log line.
        let mut shown: String = value
            .chars()
            .take(64)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        if value.chars().count() > 64 {
            shown.push('…');
        }
        Error::Invalid {
            field,
            value: shown,
            reason: reason.into(),
        }
    }

    /// The stable API error code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_input",
            Error::Grant(_) => "grant_rejected",
            Error::Encoding(_) => "bad_encoding",
        }
    }
}
