//! The policy set in force, swapped atomically on reload.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::PolicyError;
use crate::load::load_policy_paths;
use crate::set::{CompileOptions, PolicySet};

/// What a successful reload changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Incremented on every successful swap; the first set is generation 1.
    pub generation: u64,
    pub files: usize,
    pub documents: usize,
    pub policies: usize,
    /// Policies (with bindings) evaluated per request.
    pub units: usize,
    /// `Kind/[namespace/]name` of policies that were not in the previous set.
    pub added: Vec<String>,
    /// `Kind/[namespace/]name` of policies that are gone.
    pub removed: Vec<String>,
    pub warnings: Vec<String>,
    pub took: Duration,
}

/// Holds the policy set in force for the webhook and the controller:
/// readers take a snapshot ([`PolicyStore::current`]) that stays valid and
/// whole for as long as they hold it; a reload compiles a complete new set
/// and swaps it in atomically only if every document compiled, so a broken
/// policy is rejected and the last good set stays in force.
pub struct PolicyStore {
    current: ArcSwap<PolicySet>,
    generation: AtomicU64,
    options: CompileOptions,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Default for PolicyStore {
    fn default() -> Self {
        Self::new(PolicySet::empty())
    }
}

impl PolicyStore {
    /// A store holding `set` as generation 1.
    pub fn new(set: PolicySet) -> Self {
        Self::with_options(set, CompileOptions::default())
    }

    /// A store whose reloads compile with `options`.
    pub fn with_options(set: PolicySet, options: CompileOptions) -> Self {
        PolicyStore {
            current: ArcSwap::from_pointee(set),
            generation: AtomicU64::new(1),
            options,
        }
    }

    /// The set in force. Cheap; hold it for one request.
    pub fn current(&self) -> Arc<PolicySet> {
        self.current.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reads and compiles the policies under `paths` and, only if all of
    /// them compile, makes them the set in force. On error the current set
    /// is untouched and every problem is returned.
    pub fn reload_from<P: AsRef<Path>>(
        &self,
        paths: &[P],
    ) -> Result<ReloadSummary, Vec<PolicyError>> {
        let start = Instant::now();
        let (set, stats) = load_policy_paths(paths, &self.options)?;
        let mut summary = self.replace(set);
        summary.files = stats.files;
        summary.documents = stats.documents;
        summary.took = start.elapsed();
        Ok(summary)
    }

    /// Makes `set` the set in force.
    pub fn replace(&self, set: PolicySet) -> ReloadSummary {
        let start = Instant::now();
        let new = Arc::new(set);
        let old = self.current.swap(Arc::clone(&new));
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        ReloadSummary {
            generation,
            files: 0,
            documents: 0,
            policies: new.policy_count(),
            units: new.unit_count(),
            added: new
                .policy_ids
                .difference(&old.policy_ids)
                .cloned()
                .collect(),
            removed: old
                .policy_ids
                .difference(&new.policy_ids)
                .cloned()
                .collect(),
            warnings: new.warnings().to_vec(),
            took: start.elapsed(),
        }
    }
}
