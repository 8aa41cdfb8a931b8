//! Leader election on a `coordination.k8s.io/v1` Lease, through kube-lease-manager.
//!
//! Only the holder reconciles. Losing the Lease ends the process (with a non-zero status), so
//! a replica that may have stale state never keeps writing; the Deployment restarts it as a
//! standby.

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

use crate::{Error, Result};

/// Name of the Lease.
pub const LEASE_NAME: &str = "datamigrate-operator-leader";
/// Seconds a Lease stays valid after its last renewal.
pub const LEASE_DURATION_SECONDS: u64 = 15;
/// Seconds before expiry at which the holder renews.
pub const LEASE_GRACE_SECONDS: u64 = 5;

/// Starts competing for the Lease in `namespace`; the channel says whether this replica holds
/// it. Dropping the receiver releases the Lease.
///
/// # Errors
/// [`Error::LeaderElection`] when the Lease cannot be read or created.
pub async fn elect(
    client: Client,
    namespace: &str,
    identity: &str,
) -> Result<watch::Receiver<bool>> {
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_DURATION_SECONDS)
        .with_grace(LEASE_GRACE_SECONDS)
        .build()
        .await
        .map_err(|e| Error::LeaderElection {
            source: Box::new(e),
        })?;
    let (channel, _task) = manager.watch().await;
    Ok(channel)
}
