//! The one error type of the `brevet` command line.
//!
//! Every message is written for the person at the terminal: lower case, the offending input in
//! backticks, and what to do next. `main` prints it as `brevet: <message>` and exits non-zero.

use std::path::PathBuf;

/// Why a `brevet` command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line value failed the shared validation (DESIGN §10); nothing was sent.
    #[error(transparent)]
    Invalid(#[from] brevet_proto::Error),

    /// The server answered with an error body; the message is the server's own.
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },

    /// The server could not be reached, or the TLS handshake failed; `hint` says what to check.
    #[error("cannot talk to `{server}`: {detail}; {hint}")]
    Transport {
        server: String,
        detail: String,
        hint: &'static str,
    },

    /// The server answered, but not with what this client expects.
    #[error(
        "unexpected answer from `{server}` for `{path}`: {detail}; check that `brevet` and `brevetd` are the same version"
    )]
    BadResponse {
        server: String,
        path: String,
        detail: String,
    },

    /// The server URL is not an `https://host[:port]` URL.
    #[error(
        "invalid server URL `{url}`: {reason}; pass something like `--server https://brevet.example.com:8443`"
    )]
    ServerUrl { url: String, reason: String },

    /// The CA certificate could not be used as a trust anchor.
    #[error(
        "invalid CA certificate: {0}; pass the PEM file `brevetd init` wrote (--ca or BREVET_CA)"
    )]
    CaPem(String),

    /// A bearer token that cannot be sent in an HTTP header.
    #[error(
        "the token is not a valid bearer token; pass the token `brevet login` printed (--token or BREVET_TOKEN), or log in again"
    )]
    BadToken,

    #[error(
        "no server given; pass `--server URL`, set BREVET_SERVER, or log in with `brevet login --server URL --ca FILE --user NAME`"
    )]
    NoServer,

    #[error("no CA certificate given for `{server}`; pass `--ca FILE` or set BREVET_CA")]
    NoCa { server: String },

    #[error(
        "not logged in to `{server}`; run `brevet login --user NAME`, or pass a token with --token or BREVET_TOKEN"
    )]
    NotLoggedIn { server: String },

    #[error("the session for `{server}` expired at {at}; run `brevet login --user NAME` again")]
    SessionExpired { server: String, at: String },

    #[error("no configuration directory: set BREVET_CONFIG_DIR, XDG_CONFIG_HOME or HOME")]
    NoConfigDir,

    #[error("session file `{path}` is readable by other users; run `chmod 600 {path}` or `brevet login` again", path = .path.display())]
    SessionPermissions { path: PathBuf },

    #[error("session file `{path}` is damaged ({detail}); run `brevet logout` and `brevet login` again", path = .path.display())]
    SessionCorrupt { path: PathBuf, detail: String },

    /// A file could not be read or written.
    #[error("cannot {action} `{path}`: {source}", path = .path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "`--totp` is required: pass the six-digit code from your authenticator app, e.g. `--totp 123456`"
    )]
    MissingTotp,

    #[error("no password given; type it at the prompt, or pipe it in with `--password-stdin`")]
    MissingPassword,

    #[error("cannot read the password from standard input: {0}")]
    Stdin(#[source] std::io::Error),

    /// A request the policy (or the server) denied at once.
    #[error("request {id} denied: {explain}")]
    Denied { id: String, explain: String },

    #[error("invalid otpauth URI: {0}; pass the whole `otpauth://totp/…?secret=…` text")]
    TotpUri(String),

    #[error("audit export format `{0}` is not yet supported; use `--format jsonl`")]
    UnsupportedFormat(&'static str),

    #[error(
        "the server returned audit events out of order (seq {seq} after {after}); export again or report a bug"
    )]
    AuditOrder { seq: u64, after: u64 },

    /// `brevet audit verify` found the first event that does not verify.
    #[error("FAILED at seq {seq}: {reason}")]
    AuditVerify { seq: u64, reason: String },

    /// The checkpoint given to `brevet audit verify` or `checkpoint --extends` was rejected.
    #[error("FAILED: checkpoint `{path}` rejected: {reason}", path = .path.display())]
    CheckpointRejected { path: PathBuf, reason: String },

    #[error(
        "cannot read `{path}` as an audit checkpoint: {detail}; pass a file saved with `brevet audit checkpoint`",
        path = .path.display()
    )]
    CheckpointFile { path: PathBuf, detail: String },

    #[error(
        "invalid audit public key `{0}`: pass the server's audit.pub file or the base64 text in it"
    )]
    AuditKey(String),

    /// The server's latest checkpoint does not verify, or does not extend the one kept.
    #[error("FAILED: the server's checkpoint {0}")]
    ServerCheckpoint(String),

    #[error("policy file `{path}` rejected: {source}", path = .path.display())]
    Policy {
        path: PathBuf,
        #[source]
        source: brevet_policy::Error,
    },

    /// Standard output is gone (a closed pipe) or cannot be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// The stable API error code when the server sent one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}
