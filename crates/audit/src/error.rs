//! The errors of `brevet-audit`: [`Error`] for building and decoding audit records, and
//! [`VerifyError`], which names the first audit event that failed verification.

use std::fmt;

/// Why an audit record could not be built, decoded or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An input has the wrong shape. `field` names it, `reason` says what is expected.
    #[error("invalid {field} `{value}`: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    /// The event could not be turned into canonical JSON.
    #[error("cannot encode the audit event: {0}")]
    Encoding(String),
    /// The log already holds `u64::MAX` events.
    #[error("the audit log is full: no sequence number follows {0}")]
    SequenceExhausted(u64),
    /// A checkpoint's Ed25519 signature does not verify.
    #[error(
        "checkpoint signature does not verify: check that the public key is the server's audit \
         key and that the checkpoint was not edited"
    )]
    BadSignature,
    /// An inclusion or consistency proof does not verify.
    #[error("{0}")]
    BadProof(String),
}

impl Error {
    pub(crate) fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> Self {
        // The value may be hostile and may reach a log line: bound it, hide control characters.
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
}

impl From<brevet_proto::Error> for Error {
    fn from(e: brevet_proto::Error) -> Self {
        Error::Encoding(e.to_string())
    }
}

/// Verification failed. Every event with a sequence number below `seq` verified; `seq` is the
/// first that did not (or the first that is missing). `seq` 0 means the checkpoint itself was
/// rejected before any event was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    /// The first bad sequence number (0: the checkpoint).
    pub seq: u64,
    /// What is wrong with it, for the person reading the report.
    pub reason: String,
}

impl VerifyError {
    pub(crate) fn new(seq: u64, reason: impl Into<String>) -> Self {
        VerifyError {
            seq,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seq == 0 {
            write!(f, "audit checkpoint rejected: {}", self.reason)
        } else {
            write!(
                f,
                "audit event {} failed verification: {}",
                self.seq, self.reason
            )
        }
    }
}

impl std::error::Error for VerifyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_for_the_reader() {
        let e = Error::invalid("kind", "Bad\nKind", "use lower case");
        assert_eq!(e.to_string(), "invalid kind `Bad?Kind`: use lower case");
        assert_eq!(
            VerifyError::new(7, "leaf hash does not match").to_string(),
            "audit event 7 failed verification: leaf hash does not match"
        );
        assert!(
            VerifyError::new(0, "x")
                .to_string()
                .starts_with("audit checkpoint")
        );
    }

    #[test]
    fn echoed_values_are_bounded() {
        let Error::Invalid { value, .. } = Error::invalid("at", &"9".repeat(500), "x") else {
            panic!("expected Invalid");
        };
        assert_eq!(value.chars().count(), 65);
    }
}
