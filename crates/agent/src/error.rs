//! The one error type of `brevet-agent`. Messages are for the administrator at the terminal or
//! reading the journal: lower case, naming the file, grant or input concerned.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An untrusted value (from a grant, the server, or the command line) failed validation.
    #[error(transparent)]
    Invalid(#[from] brevet_proto::Error),

    /// A grant was refused before anything on the system was touched.
    #[error("grant `{grant}` refused: {reason}")]
    Refused { grant: String, reason: String },

    #[error("cannot {action} `{path}`: {source}", path = .path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `visudo` (or the built-in checker) rejected a drop-in; it was not installed.
    #[error("sudoers check rejected `{path}`: {detail}", path = .path.display())]
    SudoersRejected { path: PathBuf, detail: String },

    /// A system command (visudo, gpasswd, …) could not run or failed.
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },

    /// The agent's own state (journal, enrollment files) is missing or damaged.
    #[error("agent state: {0}")]
    State(String),

    /// Talking to the server failed.
    #[error("server `{server}`: {detail}")]
    Server { server: String, detail: String },

    /// The server answered with an API error.
    #[error("server refused: {message} ({code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },

    #[error("usage: {0}")]
    Usage(String),

    /// `scan` enforce mode left a finding in place on purpose (break-glass, primary group, a
    /// name unsafe to pass to a command); the administrator must act by hand.
    #[error("left `{subject}` in place: {reason}")]
    NotRemediated { subject: String, reason: String },
}

impl Error {
    pub fn file(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::File {
            action,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
