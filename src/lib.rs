//! DataMigrate: the Migration operator, its CRD and its step builders.

/// The controller: `Context`, `run`, `reconcile`, `error_policy`.
pub mod controller;
/// The `Migration` custom resource (spec and status types).
pub mod crd;
/// Leader election on a Lease.
pub mod leader;
/// Prometheus metrics.
pub mod metrics;
/// Health, readiness and metrics HTTP server.
pub mod server;
/// Logging setup.
pub mod telemetry;

#[cfg(test)]
mod fixtures;
/// Pure `Migration -> Job` builder and the work pod defaults.
pub mod job;
/// `datamigrate run`: the steps as local processes, without a cluster.
pub mod local;
/// Reads Jobs, pods, the progress ConfigMap and referenced inputs.
pub mod observe;
/// Pure builders of the other objects a Migration owns (PVC, ConfigMap, RBAC).
pub mod owned;
/// What the run does next, from the observed Jobs.
pub mod plan;
/// Step pods that cannot start, from a watch of the Jobs' pods.
pub mod pods;
/// Conditions, phases, progress folding and the desired status.
pub mod status;
/// Each step's container, shared by the Job builder and the local runner.
pub mod steps;

/// Boxed error source for errors from several libraries.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The operator's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec cannot be turned into Jobs (permanent until the spec changes).
    #[error("invalid spec: {message}")]
    InvalidSpec {
        /// What is wrong, naming the field.
        message: String,
    },
    /// A configuration file could not be read.
    #[error("failed to read {path}")]
    ReadConfig {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: BoxError,
    },
    /// A referenced Secret, Secret key, ConfigMap or ConfigMap key does not exist (yet).
    #[error("{message}")]
    MissingInput {
        /// One of the `status::reason` constants (`SecretNotFound`, ...).
        reason: &'static str,
        /// What is missing, by name.
        message: String,
    },
    /// An object this Migration would own already exists and belongs to another Migration: an
    /// earlier one of the same name, whose objects the garbage collector has yet to delete.
    #[error("{kind} {name} belongs to an earlier Migration of this name; waiting for its deletion")]
    ForeignObject {
        /// Its kind.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// Reading a referenced Secret failed.
    #[error("failed to get secret {name}")]
    GetSecret {
        /// Secret name.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Server-side apply of an owned object failed.
    #[error("failed to apply {kind} {name}")]
    ApplyOwned {
        /// Object kind.
        kind: &'static str,
        /// Object name.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Listing the Migration's Jobs failed.
    #[error("failed to list jobs")]
    ListJobs {
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Creating a step Job failed.
    #[error("failed to create job {name}")]
    CreateJob {
        /// Job name.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Suspending or resuming a step Job failed.
    #[error("failed to patch job {name}")]
    PatchJob {
        /// Job name.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Reading the progress ConfigMap or a pod's termination message failed.
    #[error("failed to read {what}")]
    Observe {
        /// What was read.
        what: &'static str,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("failed to patch status")]
    PatchStatus {
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Serializing an object failed.
    #[error("failed to serialize {what}")]
    Serialize {
        /// What was serialized.
        what: &'static str,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// Connecting to the API server failed.
    #[error("failed to create the kubernetes client")]
    Client {
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// The HTTP server failed.
    #[error("failed to serve {addr}")]
    Serve {
        /// Listen address.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Leader election failed.
    #[error("leader election failed")]
    LeaderElection {
        /// Cause.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// PascalCase reason, used as Event reason, condition reason and metric label.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec { .. } => "InvalidSpec",
            Self::ReadConfig { .. } => "ReadConfig",
            Self::MissingInput { reason, .. } => reason,
            Self::GetSecret { .. } => "GetSecret",
            Self::ForeignObject { .. } => "ForeignObject",
            Self::ApplyOwned { .. } => "ApplyOwned",
            Self::ListJobs { .. } => "ListJobs",
            Self::CreateJob { .. } => "CreateJob",
            Self::PatchJob { .. } => "PatchJob",
            Self::Observe { .. } => "Observe",
            Self::PatchStatus { .. } => "PatchStatus",
            Self::Serialize { .. } => "Serialize",
            Self::Client { .. } => "Client",
            Self::Serve { .. } => "Serve",
            Self::LeaderElection { .. } => "LeaderElection",
        }
    }

    /// Whether retrying cannot help until the Migration changes.
    ///
    /// Missing Secrets are transient: they may be created at any time, so the controller keeps
    /// retrying with backoff (and reports them in a condition meanwhile).
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::InvalidSpec { .. } | Self::ReadConfig { .. } | Self::Serialize { .. } => true,
            Self::ApplyOwned { source, .. }
            | Self::CreateJob { source, .. }
            | Self::PatchJob { source, .. } => is_invalid_request(source),
            _ => false,
        }
    }

    /// The error and its causes on one line, at most `max` bytes (Events take 1 KiB).
    #[must_use]
    pub fn chain(&self, max: usize) -> String {
        truncate(&error_chain(self), max)
    }
}

/// An API answer that repeating the same request cannot change (422 Invalid, 400 BadRequest).
fn is_invalid_request(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 422 || s.code == 400)
}

/// `error` and its causes on one line. An API server refusal ends the line with its message,
/// code and reason (kube's own text of it repeats the message inside a debug dump).
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    if let Some(api) = api_status(error) {
        return api;
    }
    while let Some(e) = source {
        if let Some(api) = api_status(e) {
            text.push_str(&format!(": {api}"));
            break;
        }
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

fn api_status(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    match error.downcast_ref::<kube::Error>()? {
        kube::Error::Api(s) => Some(format!("{} ({} {})", s.message, s.code, s.reason)),
        _ => None,
    }
}

/// `text` cut to at most `max` bytes on a character boundary, ending in `…` when cut (so a
/// shortened reason never reads as whole).
#[must_use]
pub fn truncate(text: &str, max: usize) -> String {
    const MARK: &str = "…";
    if text.len() <= max {
        return text.to_string();
    }
    let room = if max > MARK.len() {
        max - MARK.len()
    } else {
        max
    };
    let mut end = room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if room == max {
        return text[..end].to_string();
    }
    format!("{}{MARK}", &text[..end])
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_refusal_ends_the_chain_with_its_message_code_and_reason() {
        let status = kube::core::Status::failure("roles \"x\" not found", "NotFound");
        let e = Error::ApplyOwned {
            kind: "RoleBinding",
            name: "x-agent".into(),
            source: kube::Error::Api(status.with_code(404).boxed()),
        };
        let want = "failed to apply RoleBinding x-agent: roles \"x\" not found (404 NotFound)";
        assert_eq!(error_chain(&e), want);
        assert_eq!(e.chain(1024), want);
        assert_eq!(e.chain(20), "failed to apply R…");
    }

    #[test]
    fn missing_secret_is_transient_and_invalid_spec_permanent() {
        let missing = Error::MissingInput {
            reason: "SecretNotFound",
            message: "m".into(),
        };
        assert!(!missing.is_permanent());
        assert_eq!(missing.reason(), "SecretNotFound");
        let invalid = Error::InvalidSpec {
            message: "m".into(),
        };
        assert!(invalid.is_permanent());
    }

    #[test]
    fn chain_joins_causes_and_respects_the_bound() {
        let e = Error::ReadConfig {
            path: "f".into(),
            source: "no such file".into(),
        };
        assert_eq!(e.chain(1024), "failed to read f: no such file");
        assert_eq!(e.chain(6), "fai…");
        assert_eq!(truncate("ééé", 5), "é…");
        assert_eq!(truncate("abc", 2), "ab");
        assert!(truncate(&"x".repeat(600), 512).len() <= 512);
    }
}
