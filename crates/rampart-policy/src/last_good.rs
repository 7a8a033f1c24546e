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
    /// The policy documents in force: each policy's current version, or the
    /// previous one where the current does not compile.
    pub in_force: Vec<Value>,
}

/// Remembers, per policy, the last version that compiled.
#[derive(Default)]
pub struct LastGood {
    good: HashMap<String, Value>,
}

fn group_kind(doc: &Value) -> (String, String) {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    (group.to_owned(), kind.to_owned())
}

impl LastGood {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compiles `policies` (ClusterPolicy, Policy, ValidatingAdmissionPolicy
    /// and bindings) with `context` (parameter objects, Namespaces). A policy
    /// whose version does not compile, or is named in `held` (labelled as
    /// errors name policies, with the reason it cannot be compiled yet: its
    /// parameter kind is not listed), is replaced by its last good version,
    /// or left out if it never compiled. Parameter objects of kinds no policy
    /// in force uses are left out. Errors that name no policy cannot be
    /// pinned on one, and fail the whole compilation: the caller keeps the
    /// set it has.
    pub fn compile(
        &mut self,
        policies: &[Value],
        context: &[Value],
        held: &[(String, String)],
        options: &CompileOptions,
    ) -> Result<Compiled, Vec<PolicyError>> {
        let mut current: Vec<(String, Value)> = policies
            .iter()
            .map(|p| (policy_label(p).unwrap_or_default(), p.clone()))
            .collect();
        let mut rejected: BTreeMap<String, Rejected> = BTreeMap::new();
        for (label, reason) in held {
            if current.iter().any(|(l, _)| l == label) {
                self.reject(
                    &mut current,
                    &mut rejected,
                    label,
                    vec![PolicyError::new(reason.clone()).in_policy(label.clone())],
                );
            }
        }
        // Each round takes out or swaps back at least one policy, and a
        // policy is swapped back at most once, so this ends.
        for _ in 0..=2 * policies.len() {
            let param_kinds: BTreeSet<(String, String)> = current
                .iter()
                .filter_map(|(_, v)| crate::param_kind(v).map(|p| (p.group, p.kind)))
                .collect();
            let context = context.iter().filter(|doc| {
                let gk = group_kind(doc);
                (gk.0.is_empty() && gk.1 == "Namespace") || param_kinds.contains(&gk)
            });
            let docs = current
                .iter()
                .map(|(_, v)| v.clone())
                .chain(context.cloned());
            let errors = match PolicySet::compile_with(docs, options) {
                Ok(set) => {
                    let labels: BTreeSet<String> =
                        policies.iter().filter_map(policy_label).collect();
                    self.remember(&current, &rejected, &labels);
                    return Ok(Compiled {
                        set,
                        rejected: rejected.into_values().collect(),
                        in_force: current.into_iter().map(|(_, v)| v).collect(),
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
                self.reject(&mut current, &mut rejected, &label, errs);
            }
        }
        Err(vec![PolicyError::new(
            "policies could not be compiled even after leaving out the broken ones",
        )])
    }

    /// Takes `label`'s current version out of `current`: its last good
    /// version goes in instead, unless that is what just failed (or it has
    /// none), in which case the policy is left out.
    fn reject(
        &self,
        current: &mut Vec<(String, Value)>,
        rejected: &mut BTreeMap<String, Rejected>,
        label: &str,
        errors: Vec<PolicyError>,
    ) {
        let failed_before = rejected.contains_key(label);
        let previous = self
            .good
            .get(label)
            .filter(|_| !failed_before)
            .filter(|g| current.iter().all(|(l, v)| l != label || v != *g))
            .cloned();
        let kept_previous = previous.is_some();
        match previous {
            Some(g) => {
                for (l, v) in current.iter_mut() {
                    if l == label {
                        *v = g.clone();
                    }
                }
            }
            None => current.retain(|(l, _)| l != label),
        }
        let entry = rejected
            .entry(label.to_owned())
            .or_insert_with(|| Rejected {
                policy: label.to_owned(),
                errors,
                kept_previous,
            });
        // The previous version failed too (its context changed): nothing of
        // the policy is in force any more.
        entry.kept_previous &= kept_previous;
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
        let c = lg.compile(&v1, &[], &[], &opts).unwrap();
        assert!(c.rejected.is_empty());
        assert_eq!(denies(&c.set, 7).len(), 1);

        // A's update does not compile; B's update (<= 6) does.
        let v2 = [
            policy("a", "object.spec.replicas <="),
            policy("b", "object.spec.replicas <= 6"),
        ];
        let c = lg.compile(&v2, &[], &[], &opts).unwrap();
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
        lg.compile(&[policy("a", "object.spec.replicas <= 5")], &[], &[], &opts)
            .unwrap();
        lg.compile(&[], &[], &[], &opts).unwrap();
        let c = lg
            .compile(&[policy("a", "object.spec.replicas <=")], &[], &[], &opts)
            .unwrap();
        assert!(!c.rejected[0].kept_previous);
        assert_eq!(c.set.policy_count(), 0);
    }

    fn param_policy(name: &str, expression: &str) -> Value {
        json!({"apiVersion": "rampart.dev/v1alpha1", "kind": "ClusterPolicy",
            "metadata": {"name": name},
            "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                     "paramRef": {"name": "limits", "namespace": "default", "parameterNotFoundAction": "Deny"},
                     "matchConstraints": {"kinds": ["apps/Deployment"]},
                     "validations": [{"expression": expression}]}})
    }

    #[test]
    fn parameters_of_a_left_out_policy_do_not_fail_the_others() {
        let limits = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "limits", "namespace": "default"}, "data": {"max": "3"}});
        let mut lg = LastGood::new();
        // The only user of ConfigMap parameters never compiled.
        let c = lg
            .compile(
                &[
                    param_policy("p", "object.spec.replicas <="),
                    policy("b", "object.spec.replicas <= 6"),
                ],
                &[limits],
                &[],
                &CompileOptions::default(),
            )
            .unwrap();
        assert_eq!(c.rejected.len(), 1);
        assert_eq!(c.set.policy_count(), 1);
        assert_eq!(c.in_force.len(), 1);
    }

    #[test]
    fn a_held_policy_keeps_its_previous_version() {
        let mut lg = LastGood::new();
        let opts = CompileOptions::default();
        lg.compile(&[policy("a", "object.spec.replicas <= 5")], &[], &[], &opts)
            .unwrap();
        let held = [(
            "ClusterPolicy \"a\"".to_owned(),
            "parameter kind example.com/Limits is not listed".to_owned(),
        )];
        let c = lg
            .compile(
                &[policy("a", "object.spec.replicas <= 9")],
                &[],
                &held,
                &opts,
            )
            .unwrap();
        assert!(c.rejected[0].kept_previous);
        assert!(c.rejected[0].errors[0].message.contains("not listed"));
        assert_eq!(
            denies(&c.set, 7).len(),
            1,
            "the previous ceiling of 5 holds"
        );
    }
}
