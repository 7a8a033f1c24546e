//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rampart_policy::{Decision, Evaluation, Outcome, PolicyError, PolicySet, Request, UserInfo};
use serde_json::Value;

/// Parses YAML documents (`---` separated) the way policy files are read.
pub fn docs(yaml: &str) -> Vec<Value> {
    let loaded = rampart_manifest::Loader::default().load_str("test.yaml", yaml);
    assert!(loaded.issues.is_empty(), "{:?}", loaded.issues);
    loaded.manifests.into_iter().map(|m| m.value).collect()
}

pub fn compile(yaml: &str) -> PolicySet {
    match PolicySet::compile(docs(yaml)) {
        Ok(set) => set,
        Err(errors) => panic!("{}", rampart_policy::ErrorList(&errors)),
    }
}

pub fn compile_err(yaml: &str) -> Vec<PolicyError> {
    match PolicySet::compile(docs(yaml)) {
        Ok(_) => panic!("expected compile errors"),
        Err(errors) => errors,
    }
}

pub fn one(yaml: &str) -> Value {
    let mut d = docs(yaml);
    assert_eq!(d.len(), 1);
    d.remove(0)
}

pub fn create(set: &PolicySet, object: &str) -> Evaluation {
    set.evaluate(&Request::create(one(object)).unwrap())
}

pub fn create_as(set: &PolicySet, object: &str, user: &str, groups: &[&str]) -> Evaluation {
    let user = UserInfo {
        username: user.into(),
        groups: groups.iter().map(|g| (*g).into()).collect(),
        ..UserInfo::default()
    };
    set.evaluate(&Request::create(one(object)).unwrap().with_user(user))
}

pub fn outcomes(ev: &Evaluation) -> Vec<(String, Outcome)> {
    ev.decisions
        .iter()
        .map(|d| (d.check_id(), d.outcome))
        .collect()
}

pub fn failures(ev: &Evaluation) -> Vec<&Decision> {
    ev.decisions
        .iter()
        .filter(|d| d.outcome == Outcome::Fail)
        .collect()
}
