//! Rampart's cluster layer: the client, reflector-backed caches and the
//! live policy index the webhook and the controller read in memory.
//! See the README for what goes here and what must not.

mod cache;
mod lookups;
mod policies;

use std::path::{Path, PathBuf};

pub use cache::ObjectCache;
pub use lookups::{ClusterLookups, exec_view_of_pod};
pub use policies::{POLICY_KINDS, PolicyWatch, PolicyWatchOptions};

/// What can go wrong reaching the API server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading kubeconfig {path}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("finding a kubeconfig (KUBECONFIG, ~/.kube/config or the in-cluster service account)")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("building the Kubernetes client")]
    Client(#[from] kube::Error),
}

/// Installs aws-lc-rs as rustls' process-wide crypto provider (the only one
/// compiled in). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A client from `kubeconfig` if given, else the usual inference
/// (`$KUBECONFIG`, `~/.kube/config`, in-cluster service account).
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, Error> {
    install_crypto_provider();
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig_error = |source| Error::Kubeconfig {
                path: path.to_owned(),
                source,
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(kubeconfig_error)?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// Runs `fut` on a new multi-threaded Tokio runtime.
pub fn block_on<F: std::future::Future>(fut: F) -> std::io::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(fut))
}

/// Logs to stderr with an `EnvFilter` directive (`info`, `rampart_kube=debug`).
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
