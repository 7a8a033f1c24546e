//! The server's options and shared state: what `rampart serve` takes, the
//! policy set in force and where rules read Namespaces and Pods from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::watch;

use crate::log::DecisionLog;
use crate::tls::TlsFiles;
use rampart_admission::config::Config;
use rampart_admission::lookup::{NamespaceLookup, PodLookup, StaticNamespaces, StaticPods};
use rampart_admission::metrics::Metrics;
use rampart_admission::policy::{PolicySet, PolicySource};
use rampart_kube::ClusterLookups;

/// What to answer when evaluation overruns its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnTimeout {
    Allow,
    Deny,
}

/// Everything `rampart serve` takes.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    /// `None` disables the plain-HTTP health and metrics listener.
    pub metrics_addr: Option<SocketAddr>,
    pub tls: TlsFiles,
    pub config: Option<PathBuf>,
    /// User policy files and directories (`ClusterPolicy`, `Policy`,
    /// `ValidatingAdmissionPolicy` and bindings, params, Namespaces).
    pub policies: Vec<PathBuf>,
    pub namespaces: Option<PathBuf>,
    /// How long to wait at start for the namespace, pod and policy files to
    /// appear (written by a sidecar) before giving up.
    pub startup_wait: Duration,
    pub pods: Option<PathBuf>,
    /// Rampart's own namespace: always excluded and protected.
    pub namespace: String,
    pub on_timeout: OnTimeout,
    pub reload_interval: Duration,
    pub max_connections: usize,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub decision_log: bool,
    pub log_filter: String,
    pub worker_threads: Option<usize>,
    /// Testing only: wait this long before evaluating each review.
    pub debug_eval_delay: Option<Duration>,
    /// Read Namespaces, Pods and policies live from the cluster instead of
    /// from files.
    pub cluster: Option<ClusterOptions>,
}

/// `rampart serve --cluster`: where the API server is and what to watch.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// `None`: `$KUBECONFIG`, `~/.kube/config` or the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// Also watch Pods, for exec and attach protection.
    pub pods: bool,
    /// Longest a read-through GET for an object missing from the caches
    /// may take (the review's own deadline bounds it too).
    pub read_through_timeout: Duration,
    /// Testing only: apply watch events this much later, as a slow watch would.
    pub debug_watch_lag: Option<Duration>,
}

impl ServeOptions {
    /// Defaults for everything but the certificate files.
    pub fn new(tls: TlsFiles) -> Self {
        Self {
            addr: "0.0.0.0:8443".parse().expect("static address"),
            metrics_addr: Some("127.0.0.1:9090".parse().expect("static address")),
            tls,
            config: None,
            policies: Vec::new(),
            namespaces: None,
            startup_wait: Duration::ZERO,
            pods: None,
            namespace: "rampart-system".to_owned(),
            on_timeout: OnTimeout::Allow,
            reload_interval: Duration::from_secs(2),
            max_connections: 1024,
            max_body_bytes: 3 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(5),
            decision_log: true,
            log_filter: "info".to_owned(),
            worker_threads: None,
            debug_eval_delay: None,
            cluster: None,
        }
    }
}

/// Shared server state.
pub struct AppState {
    pub policies: ArcSwapOption<PolicySet>,
    pub lookups: Lookups,
    pub sources: Vec<Arc<dyn PolicySource>>,
    pub metrics: Arc<Metrics>,
    pub log: DecisionLog,
    pub tls: ArcSwap<rustls::ServerConfig>,
    pub opts: ServeOptions,
    pub tls_ready: AtomicBool,
    /// Held while a policy set is built and stored, so that two reloads
    /// (a file change and a cluster change) cannot store out of order.
    pub reload_lock: std::sync::Mutex<()>,
}

/// Where rules read Namespaces and Pods from.
pub enum Lookups {
    /// `--namespaces` and `--pods` files, reloaded on change.
    Files {
        namespaces: Arc<StaticNamespaces>,
        pods: Option<Arc<StaticPods>>,
    },
    /// Watches of the cluster (`--cluster`), with read-through on a miss.
    Cluster(Arc<ClusterLookups>),
}

impl Lookups {
    pub fn namespaces(&self) -> &dyn NamespaceLookup {
        match self {
            Lookups::Files { namespaces, .. } => &**namespaces,
            Lookups::Cluster(c) => &**c,
        }
    }

    pub fn pods(&self) -> Option<&dyn PodLookup> {
        match self {
            Lookups::Files { pods, .. } => pods.as_deref().map(|p| p as &dyn PodLookup),
            Lookups::Cluster(c) => c.has_pods().then_some(&**c as &dyn PodLookup),
        }
    }

    pub(crate) fn counts(&self) -> (usize, usize) {
        match self {
            Lookups::Files { namespaces, pods } => {
                (namespaces.len(), pods.as_ref().map_or(0, |p| p.len()))
            }
            Lookups::Cluster(c) => (c.namespace_count(), c.pod_count()),
        }
    }
}

impl AppState {
    pub(crate) fn ready(&self) -> Result<(), &'static str> {
        if self.policies.load().is_none() {
            return Err("policies not loaded");
        }
        if !self.sources.iter().all(|s| s.ready()) {
            return Err("policies not synced");
        }
        if !self.lookups.namespaces().synced() {
            return Err("namespace cache not synced");
        }
        if self.lookups.pods().is_some_and(|p| !p.synced()) {
            return Err("pod cache not synced");
        }
        if !self.tls_ready.load(Ordering::Acquire) {
            return Err("TLS not configured");
        }
        Ok(())
    }

    /// Loads the configuration file (defaults without one) and builds a set.
    pub fn build_policies(&self) -> Result<PolicySet> {
        let config = match &self.opts.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        PolicySet::build(
            config,
            &self.opts.namespace,
            &self.metrics,
            self.lookups.pods().is_some(),
            &self.sources,
        )
    }
}

/// Resolves once `rx` says the server is stopping.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
