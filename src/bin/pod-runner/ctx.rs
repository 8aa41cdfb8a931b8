//! What every pod task shares: the client, the node, the state folder and the settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use crate::error::Error;
use crate::images::ImageTable;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What every pod task shares.
pub struct Ctx {
    /// The API client.
    pub client: kube::Client,
    /// The Node the runner plays.
    pub node_name: String,
    /// The runner's state folder (pods, claims, logs).
    pub state_dir: PathBuf,
    /// `KUBERNETES_SERVICE_HOST` and `_PORT` for containers.
    pub service_host: String,
    /// See `service_host`.
    pub service_port: u16,
    /// Images from `POD_RUNNER_IMAGES`.
    pub images: ImageTable,
    /// A file with more `repo=bindir` lines, re-read at every container start.
    pub images_file: PathBuf,
    /// This binary, used as the exec helper.
    pub helper: PathBuf,
    /// The `unshare` program.
    pub unshare: PathBuf,
    /// Host variables handed to every container (`LANG`, ...).
    pub pass_env: Vec<(String, String)>,
    /// First restart delay; doubles per restart.
    pub backoff_initial: Duration,
    /// Largest restart delay.
    pub backoff_max: Duration,
}

impl Ctx {
    /// `<state>/logs/<namespace>/<pod>/<container>.log`.
    pub fn log_path(&self, namespace: &str, pod: &str, container: &str) -> PathBuf {
        self.state_dir
            .join("logs")
            .join(namespace)
            .join(pod)
            .join(format!("{container}.log"))
    }

    /// The image table: `POD_RUNNER_IMAGES` plus the images file, read now.
    pub fn image_table(&self) -> Result<ImageTable, Error> {
        let text = match std::fs::read_to_string(&self.images_file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::write(&self.images_file, e)),
        };
        let file = ImageTable::parse(&text).map_err(|source| Error::Images { source })?;
        Ok(self.images.clone().merged(file))
    }

    /// What every container gets before its own `envFrom` and `env`.
    pub fn base_env(&self, pod: &Pod, bin_dir: Option<&Path>) -> Vec<(String, String)> {
        let path = match bin_dir {
            Some(dir) => format!("{}:{DEFAULT_PATH}", dir.display()),
            None => DEFAULT_PATH.to_owned(),
        };
        let port = self.service_port.to_string();
        let host = &self.service_host;
        let mut env = vec![
            ("PATH".to_owned(), path),
            ("HOME".to_owned(), "/root".to_owned()),
            (
                "HOSTNAME".to_owned(),
                pod.metadata.name.clone().unwrap_or_default(),
            ),
            ("KUBERNETES_SERVICE_HOST".to_owned(), host.clone()),
            ("KUBERNETES_SERVICE_PORT".to_owned(), port.clone()),
            ("KUBERNETES_SERVICE_PORT_HTTPS".to_owned(), port.clone()),
            ("KUBERNETES_PORT".to_owned(), format!("tcp://{host}:{port}")),
        ];
        env.extend(self.pass_env.iter().cloned());
        env
    }
}
