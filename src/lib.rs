//! DataMigrate: the Migration operator, its CRD and its step builders.

/// The `Migration` custom resource (spec and status types).
pub mod crd;

/// The operator's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec cannot be turned into Jobs (a permanent error until the spec changes).
    #[error("invalid spec: {message}")]
    InvalidSpec {
        /// What is wrong, naming the field.
        message: String,
    },
}

impl Error {
    /// PascalCase reason, used as Event reason and metric label.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec { .. } => "InvalidSpec",
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
