//! The driver's one error type.

/// What went wrong in a benchmark step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("failed to {what}")]
    Kube {
        /// The operation, as a verb phrase.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A file, process or socket operation failed.
    #[error("failed to {what}")]
    Io {
        /// The operation, as a verb phrase.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Something did not happen in time.
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        seconds: u64,
    },
    /// Input or output that cannot be used.
    #[error("{what}")]
    Invalid {
        /// What is wrong.
        what: String,
    },
    /// Results could not be read or written as JSON.
    #[error("failed to {what}")]
    Json {
        /// The operation.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

/// The driver's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps a Kubernetes error with the operation that failed.
pub fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}

/// Wraps an I/O error with the operation that failed.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Wraps a JSON error with the operation that failed.
pub fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
    let what = what.into();
    move |source| Error::Json { what, source }
}

/// Renders an error and its causes on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
