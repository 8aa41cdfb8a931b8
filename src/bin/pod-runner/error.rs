//! The pod runner's one error type.

/// Every failure of the pod runner.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the kubeconfig or building the client failed.
    #[error("failed to build a kubernetes client")]
    Client {
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// An API call failed.
    #[error("failed to {action} {name}")]
    Api {
        /// What the call did (`get secret`, `bind pod`, ...).
        action: &'static str,
        /// The object's name.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// The pod cannot start yet: a Secret, ConfigMap or claim it needs is missing. The kubelet
    /// reports this as `CreateContainerConfigError` and retries.
    #[error("{message}")]
    Config {
        /// A message naming the missing object, never a value.
        message: String,
    },
    /// A file or folder of the runner's state could not be written.
    #[error("failed to write {path}")]
    Write {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The images table is malformed.
    #[error("failed to read the image table")]
    Images {
        /// The cause.
        #[source]
        source: crate::images::ParseImageTable,
    },
}

impl Error {
    /// A `Config` error from anything printable.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }

    /// A `Write` error for `path`.
    pub fn write(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Write {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Whether a kube error is a 404 answer.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// The error and its sources, for logs.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
