//! The one error type of `brevet-store`.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database configuration: {0}")]
    Config(String),
    /// The schema cannot be brought up to date: the database is newer than this binary, a
    /// released migration was edited, or a step failed.
    #[error("database schema: {0}")]
    Schema(String),
    /// A stored row does not decode into what the program expects (never the caller's fault).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("audit chain: {0}")]
    Audit(#[from] brevet_audit::Error),
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Corrupt(e.to_string())
    }
}

impl Error {
    /// Whether the error is a unique-constraint violation (a duplicate insert).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Error::Db(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}
