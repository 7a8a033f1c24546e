//! Per-policy last-good compilation: a policy whose new version does not
//! compile keeps its previous version in force, and every other policy's
//! update goes through. The cluster paths (the webhook's live policy cache
//! and the controller) compile through this; files still compile as a whole.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::PolicyError;
use crate::set::{CompileOptions, PolicySet, policy_label};

/// A policy document that was kept out of the set in force.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    /// `Kind "name"` or `Kind "ns/name"`, as errors name policies.
    pub policy: String,
    /// Why its current version does not compile.
    pub errors: Vec<PolicyError>,
    /// Whether its previous version stays in force (else it has none).
    pub kept_previous: bool,
}

/// The outcome of [`LastGood::compile`].
pub struct Compiled {
    pub set: PolicySet,
    /// Policies whose current version is not in force, sorted by label.
    pub rejected: Vec<Rejected>,
}

/// Remembers, per policy, the last version that compiled.
#[derive(Default)]
pub struct LastGood {
    good: HashMap<String, Value>,
}

impl LastGood {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compiles `policies` (ClusterPolicy, Policy, ValidatingAdmissionPolicy
    /// and bindings) with `context` (parameter objects, Namespaces). A policy
    /// whose version does not compile is replaced by its last good version,
    /// or left out if it never compiled. Errors that name no policy (a broken
    /// parameter object) cannot be pinned on one, and fail the whole
    /// compilation: the caller keeps the set it has.
    pub fn compile(
        &mut self,
        policies: &[Value],
        context: &[Value],
        options: &CompileOptions,
    ) -> Result<Compiled, Vec<PolicyError>> {
        let mut current: Vec<(String, Value)> = policies
            .iter()
            .map(|p| (policy_label(p).unwrap_or_default(), p.clone()))
            .collect();
        let mut rejected: BTreeMap<String, Rejected> = BTreeMap::new();
        // Each round takes out at least one policy, so this ends.
        for _ in 0..=policies.len() {
            let docs = current
                .iter()
                .map(|(_, v)| v.clone())
                .chain(context.iter().cloned());
            let errors = match PolicySet::compile_with(docs, options) {
                Ok(set) => {
                    let labels: BTreeSet<String> =
                        policies.iter().filter_map(policy_label).collect();
                    self.remember(&current, &rejected, &labels);
                    return Ok(Compiled {
                        set,
                        rejected: rejected.into_values().collect(),
                    });
                }
                Err(errors) => errors,
            };
            let mut by_policy: BTreeMap<String, Vec<PolicyError>> = BTreeMap::new();
            for e in &errors {
                match &e.policy {
                    Some(p) if current.iter().any(|(l, _)| l == p) => {
                        by_policy.entry(p.clone()).or_default().push(e.clone());
                    }
                    _ => return Err(errors),
                }
            }
            for (label, errs) in by_policy {
                let failed_twice = rejected.contains_key(&label);
                let previous = self
                    .good
                    .get(&label)
                    .filter(|_| !failed_twice)
                    .filter(|g| current.iter().all(|(l, v)| l != &label || v != *g))
                    .cloned();
                let kept_previous = previous.is_some();
                match previous {
                    Some(g) => {
                        for (l, v) in current.iter_mut() {
                            if *l == label {
                                *v = g.clone();
                            }
                        }
                    }
                    None => current.retain(|(l, _)| *l != label),
                }
                let entry = rejected.entry(label.clone()).or_insert_with(|| Rejected {
                    policy: label,
                    errors: errs,
                    kept_previous,
                });
                // The previous version failed too (its context changed):
                // nothing of the policy is in force any more.
                entry.kept_previous &= kept_previous;
            }
        }
        Err(vec![PolicyError::new(
            "policies could not be compiled even after leaving out the broken ones",
        )])
    }

    fn remember(
        &mut self,
        in_force: &[(String, Value)],
        rejected: &BTreeMap<String, Rejected>,
        present: &BTreeSet<String>,
    ) {
        for (label, value) in in_force {
            if !rejected.contains_key(label) {
                self.good.insert(label.clone(), value.clone());
            }
        }
        // A deleted policy is forgotten: re-created broken, it has no
        // previous version to fall back to.
        self.good.retain(|l, _| present.contains(l));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Request;
    use serde_json::json;

    fn policy(name: &str, expression: &str) -> Value {
        json!({"apiVersion": "rampart.dev/v1alpha1", "kind": "ClusterPolicy",
            "metadata": {"name": name},
            "spec": {"matchConstraints": {"kinds": ["apps/Deployment"]},
                     "validations": [{"expression": expression}]}})
    }

    fn denies(set: &PolicySet, replicas: i64) -> Vec<String> {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": replicas}});
        let ev = set.evaluate(&Request::create(d).unwrap());
        ev.decisions
            .iter()
            .filter(|d| d.is_violation())
            .map(|d| d.check_id().to_string())
            .collect()
    }

    #[test]
    fn a_broken_update_keeps_the_previous_version_and_lets_others_through() {
        let mut lg = LastGood::new();
        let opts = CompileOptions::default();
        let v1 = [
            policy("a", "object.spec.replicas <= 5"),
            policy("b", "object.spec.replicas <= 10"),
        ];
        let c = lg.compile(&v1, &[], &opts).unwrap();
        assert!(c.rejected.is_empty());
        assert_eq!(denies(&c.set, 7).len(), 1);

        // A's update does not compile; B's update (<= 6) does.
        let v2 = [
            policy("a", "object.spec.replicas <="),
            policy("b", "object.spec.replicas <= 6"),
        ];
        let c = lg.compile(&v2, &[], &opts).unwrap();
        assert_eq!(c.rejected.len(), 1);
        assert_eq!(c.rejected[0].policy, "ClusterPolicy \"a\"");
        assert!(c.rejected[0].kept_previous);
        assert!(!c.rejected[0].errors.is_empty());
        // A's previous version (<= 5) and B's new one (<= 6) are in force.
        let mut at_7 = denies(&c.set, 7);
        at_7.sort();
        assert_eq!(at_7.len(), 2, "{at_7:?}");
        assert_eq!(denies(&c.set, 6).len(), 1, "A's old ceiling of 5 holds");
    }

    #[test]
    fn a_policy_that_never_compiled_is_left_out() {
        let mut lg = LastGood::new();
        let c = lg
            .compile(
                &[
                    policy("a", "object.spec.replicas <="),
                    policy("b", "object.spec.replicas <= 6"),
                ],
                &[],
                &CompileOptions::default(),
            )
            .unwrap();
        assert_eq!(c.rejected.len(), 1);
        assert!(!c.rejected[0].kept_previous);
        assert_eq!(c.set.policy_count(), 1);
        assert_eq!(denies(&c.set, 7).len(), 1);
    }

    #[test]
    fn a_deleted_policy_is_forgotten() {
        let mut lg = LastGood::new();
        let opts = CompileOptions::default();
        lg.compile(&[policy("a", "object.spec.replicas <= 5")], &[], &opts)
            .unwrap();
        lg.compile(&[], &[], &opts).unwrap();
        let c = lg
            .compile(&[policy("a", "object.spec.replicas <=")], &[], &opts)
            .unwrap();
        assert!(!c.rejected[0].kept_previous);
        assert_eq!(c.set.policy_count(), 0);
    }
}
