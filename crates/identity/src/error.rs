//! The one error type of this crate.
//!
//! Messages are written for the operator reading a log or a terminal: lower case, naming the
//! input that was wrong and what to do about it. Secrets (keys, passwords, TOTP secrets) are never
//! echoed back.

/// Everything that can go wrong in `brevet-identity`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PEM input could not be read.
    #[error("cannot read the {what} as PEM: {source}; expected a `-----BEGIN {label}-----` block")]
    Pem {
        /// Which input, e.g. "CA certificate".
        what: &'static str,
        /// The PEM label we looked for.
        label: &'static str,
        /// Why it failed.
        source: rustls_pki_types::pem::Error,
    },

    /// A certificate (DER) could not be parsed.
    #[error("cannot parse the {what}: {detail}")]
    CertificateParse {
        /// Which certificate, e.g. "client certificate".
        what: &'static str,
        /// The parser's complaint.
        detail: String,
    },

    /// A sealed secret or its key is unusable.
    #[error("sealed secret: {0}")]
    Seal(String),

    /// The key given with the CA certificate is not the CA's key.
    #[error(
        "the CA key does not belong to the CA certificate; check that the certificate and key files come from the same `brevetd init`"
    )]
    CaKeyMismatch,

    /// The certificate given as CA is not a CA.
    #[error("the certificate given as CA is not a CA (basic constraints lack `CA:TRUE`)")]
    NotACa,

    /// The private key could not be read or is of an unsupported kind.
    #[error("cannot use the {what}: {source}")]
    Key {
        /// Which key, e.g. "CA key".
        what: &'static str,
        /// Why it failed.
        source: rcgen::Error,
    },

    /// Certificate generation or signing failed.
    #[error("cannot build the {what}: {source}")]
    Issue {
        /// Which certificate, e.g. "server certificate".
        what: &'static str,
        /// Why it failed.
        source: rcgen::Error,
    },

    /// A device's public key was not an acceptable SubjectPublicKeyInfo.
    #[error(
        "the device public key is not usable: {detail}; send a DER SubjectPublicKeyInfo for an ECDSA P-256, P-384 or Ed25519 key"
    )]
    PublicKey {
        /// What was wrong with it.
        detail: String,
    },

    /// A DNS name (server name or device name) is not acceptable.
    #[error(
        "invalid {what} `{name}`: use a DNS name of letters, digits, `-` and `.`, at most 253 characters"
    )]
    InvalidName {
        /// "server DNS name" or "device name".
        what: &'static str,
        /// The rejected name.
        name: String,
    },

    /// A CA was requested with an empty name.
    #[error("the CA common name is empty; give the CA a name such as `Brevet CA`")]
    EmptyCaName,

    /// A server certificate was requested without any name.
    #[error("a server certificate needs at least one DNS name or IP address")]
    NoServerNames,

    /// A validity period is zero or too large.
    #[error("invalid validity for the {what}: {detail}")]
    Validity {
        /// Which certificate.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },

    /// A client certificate does not name a device the way Brevet issues them.
    #[error("the client certificate does not name a device: {detail}")]
    NotADeviceCertificate {
        /// What was missing or inconsistent.
        detail: String,
    },

    /// rustls refused a configuration.
    #[error("cannot build the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),

    /// The client-certificate verifier could not be built (usually: no usable CA certificate).
    #[error("cannot build the client certificate verifier from the client CA: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),

    /// Argon2 refused to hash.
    #[error("cannot hash the password: {0}")]
    PasswordHash(argon2::password_hash::Error),

    /// A TOTP secret could not be decoded.
    #[error("invalid TOTP secret: {detail}; expected RFC 4648 base32 (letters A-Z and digits 2-7)")]
    TotpSecret {
        /// What was wrong (never the secret itself).
        detail: String,
    },

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed; cannot make keys or secrets")]
    Random,
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
