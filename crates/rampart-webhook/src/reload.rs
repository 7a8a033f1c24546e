//! Loading and reloading what the server reads from files: the
//! configuration (and policy sources), the namespace and pod files, and the
//! TLS certificate, key and client CA.
//!
//! Files are polled every `--reload-interval` by modification time, size and
//! inode, which also catches Kubernetes' atomic symlink swaps of mounted
//! ConfigMaps and Secrets. A change triggers a reload of that source; a
//! reload that fails is logged and counted in
//! `rampart_policy_reload_errors_total{source=...}`, and the last good
//! version stays in force until the files change again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use tokio::sync::watch;
use tracing::{error, info};

use crate::state::{AppState, Lookups, stopped};
use rampart_admission::lookup::{StaticNamespaces, StaticPods};

/// What identifies one version of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp(Option<(SystemTime, u64, u64)>);

fn stamp(path: &std::path::Path) -> Stamp {
    Stamp(std::fs::metadata(path).ok().map(|m| {
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(&m);
        #[cfg(not(unix))]
        let ino = 0;
        (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len(), ino)
    }))
}

/// A set of files and the versions last acted on.
pub struct FileWatch {
    paths: Vec<PathBuf>,
    seen: Vec<Stamp>,
}

impl FileWatch {
    /// Watches `paths` as they are now.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let seen = paths.iter().map(|p| stamp(p)).collect();
        Self { paths, seen }
    }

    /// Whether any file changed since the last call (or `new`). A change is
    /// reported once: a reload that fails waits for the next change.
    pub fn changed(&mut self) -> bool {
        let now: Vec<Stamp> = self.paths.iter().map(|p| stamp(p)).collect();
        if now == self.seen {
            return false;
        }
        self.seen = now;
        true
    }

    /// Like [`FileWatch::changed`] for a list of files that may itself
    /// change (the files of a policy directory): a file added or removed is
    /// a change too.
    pub fn changed_among(&mut self, paths: Vec<PathBuf>) -> bool {
        if paths != self.paths {
            self.seen = paths.iter().map(|p| stamp(p)).collect();
            self.paths = paths;
            return true;
        }
        self.changed()
    }
}

/// Loads everything once at startup; any error is fatal (a server that
/// starts without its policy set would be ready with nothing to enforce).
pub fn initial_load(state: &AppState) -> Result<()> {
    if let Lookups::Files { namespaces, pods } = &state.lookups {
        if let Some(path) = &state.opts.namespaces {
            namespaces.replace(StaticNamespaces::load_file(path)?);
        }
        if let (Some(path), Some(pods)) = (&state.opts.pods, pods) {
            pods.replace(StaticPods::load_file(path)?);
        }
    }
    let _serial = state.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
    let set = state.build_policies()?;
    state.policies.store(Some(Arc::new(set)));
    Ok(())
}

fn config_paths(state: &AppState) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = state.opts.config.iter().cloned().collect();
    for s in &state.sources {
        paths.extend(s.watched_paths());
    }
    paths
}

/// Reloads the policy set now. On error the set in force stays.
pub fn reload_policies(state: &AppState) -> Result<()> {
    let _serial = state.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
    match state.build_policies() {
        Ok(set) => {
            let rules = set.len();
            state.policies.store(Some(Arc::new(set)));
            state.metrics.reload_ok("config");
            info!(rules, "policies reloaded");
            Ok(())
        }
        Err(e) => {
            state.metrics.reload_error("config");
            error!(error = %format!("{e:#}"), "policy reload failed; keeping the policies in force");
            Err(e)
        }
    }
}

fn reload_namespaces(state: &AppState) {
    let (Some(path), Lookups::Files { namespaces, .. }) = (&state.opts.namespaces, &state.lookups)
    else {
        return;
    };
    match StaticNamespaces::load_file(path) {
        Ok(items) => {
            let n = items.len();
            namespaces.replace(items);
            state.metrics.reload_ok("namespaces");
            info!(namespaces = n, "namespaces reloaded");
        }
        Err(e) => {
            state.metrics.reload_error("namespaces");
            error!(error = %format!("{e:#}"), "namespace reload failed; keeping the namespaces in force");
        }
    }
}

fn reload_pods(state: &AppState) {
    let (
        Some(path),
        Lookups::Files {
            pods: Some(pods), ..
        },
    ) = (&state.opts.pods, &state.lookups)
    else {
        return;
    };
    match StaticPods::load_file(path) {
        Ok(items) => {
            pods.replace(items);
            state.metrics.reload_ok("pods");
            info!(pods = pods.len(), "pods reloaded");
        }
        Err(e) => {
            state.metrics.reload_error("pods");
            error!(error = %format!("{e:#}"), "pod reload failed; keeping the pods in force");
        }
    }
}

fn reload_tls(state: &AppState) {
    match crate::tls::server_config(&state.opts.tls) {
        Ok(config) => {
            state.tls.store(config);
            state.metrics.reload_ok("tls");
            info!("TLS certificate reloaded");
        }
        Err(e) => {
            state.metrics.reload_error("tls");
            error!(error = %format!("{e:#}"), "TLS reload failed; keeping the certificate in force");
        }
    }
}

/// Rebuilds the policy set whenever the cluster's policies compile anew
/// (`--cluster`), until shutdown.
pub async fn follow_policy_watch(
    state: Arc<AppState>,
    policies: Arc<rampart_kube::PolicyWatch>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changes = policies.subscribe();
    loop {
        let rejected = policies.rejected().len();
        state.metrics.policies_rejected.set(rejected as i64);
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = stopped(&mut shutdown) => return,
        }
        let st = state.clone();
        let _ = tokio::task::spawn_blocking(move || reload_policies(&st)).await;
    }
}

/// Polls the files until shutdown.
pub async fn watch(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let opts = &state.opts;
    let mut config = FileWatch::new(config_paths(&state));
    let mut namespaces = FileWatch::new(opts.namespaces.iter().cloned().collect());
    let mut pods = FileWatch::new(opts.pods.iter().cloned().collect());
    let mut tls = FileWatch::new(opts.tls.paths());
    let mut tick = tokio::time::interval(
        opts.reload_interval
            .max(std::time::Duration::from_millis(10)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&mut shutdown) => return,
        }
        // File reads and parsing are blocking work; keep them off the workers
        // that serve requests.
        let st = state.clone();
        let (c, n, p, t) = (
            config.changed_among(config_paths(&state)),
            namespaces.changed(),
            pods.changed(),
            tls.changed(),
        );
        if !(c || n || p || t) {
            continue;
        }
        let _ = tokio::task::spawn_blocking(move || {
            if t {
                reload_tls(&st);
            }
            if n {
                reload_namespaces(&st);
            }
            if p {
                reload_pods(&st);
            }
            if c {
                let _ = reload_policies(&st);
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_watch_reports_each_change_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.yaml");
        std::fs::write(&f, "a").unwrap();
        let mut w = FileWatch::new(vec![f.clone()]);
        assert!(!w.changed());
        std::fs::write(&f, "bb").unwrap();
        assert!(w.changed());
        assert!(!w.changed());
        std::fs::remove_file(&f).unwrap();
        assert!(w.changed(), "deletion is a change");
        std::fs::write(&f, "c").unwrap();
        assert!(w.changed(), "re-creation is a change");
    }
}
