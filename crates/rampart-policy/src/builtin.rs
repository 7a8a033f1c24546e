//! Rampart's built-in checks as a policy (`spec.builtin`).

use rampart_checks::practices::{self, PracticeConfig};
use rampart_checks::pss::{self, Level, Profile, Version};
use rampart_core::{Check, CorpusCheck, Engine};

use crate::PolicyError;
use crate::crd::BuiltinChecks;

/// The engines a `builtin` block instantiates: checks over one object (run
/// for every request) and checks over a whole corpus (run by scans and tests).
pub(crate) struct Builtin {
    pub(crate) object: Engine,
    pub(crate) corpus: Engine,
}

/// Every check ID `skip` may name: Pod Security checks and best practices.
fn known_ids() -> Vec<String> {
    pss::CHECKS
        .iter()
        .map(pss::CheckDef::rampart_id)
        .chain(practices::meta::ALL.iter().map(|m| m.id.to_string()))
        .collect()
}

pub(crate) fn compile(b: &BuiltinChecks, field: &str) -> Result<Builtin, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let mut object: Vec<Box<dyn Check>> = Vec::new();
    if let Some(ps) = &b.pod_security {
        let level = ps.level.parse::<Level>();
        let version = ps.version.as_deref().unwrap_or("latest").parse::<Version>();
        match (level, version) {
            (Ok(level), Ok(version)) => object.extend(Profile::new(level, version).into_checks()),
            (level, version) => {
                if let Err(e) = level {
                    errors.push(
                        PolicyError::new(e.to_string())
                            .at_field(format!("{field}.podSecurity.level")),
                    );
                }
                if let Err(e) = version {
                    errors.push(
                        PolicyError::new(e.to_string())
                            .at_field(format!("{field}.podSecurity.version")),
                    );
                }
            }
        }
    }
    let practice_ids: Vec<&str> = practices::meta::ALL.iter().map(|m| m.id.as_ref()).collect();
    let allowed_registries = b.allowed_registries.clone().unwrap_or_default();
    let mut wanted: Vec<String> = Vec::new();
    for (i, id) in b.checks.iter().flatten().enumerate() {
        if id == "*" {
            wanted.extend(practice_ids.iter().map(|s| (*s).to_owned()));
        } else if !practice_ids.contains(&id.as_str()) {
            errors.push(
                PolicyError::new(format!(
                    "unknown best-practice check {id:?}; known: {}",
                    practice_ids.join(", ")
                ))
                .at_field(format!("{field}.checks[{i}]")),
            );
        } else if *id == practices::meta::IMAGE_REGISTRY_NOT_ALLOWED.id
            && allowed_registries.is_empty()
        {
            errors.push(
                PolicyError::new(format!("{id} needs allowedRegistries"))
                    .at_field(format!("{field}.checks[{i}]")),
            );
        } else {
            wanted.push(id.clone());
        }
    }
    let known = known_ids();
    let skip = b.skip.clone().unwrap_or_default();
    for (i, id) in skip.iter().enumerate() {
        if !known.contains(id) {
            errors.push(
                PolicyError::new(format!("unknown check {id:?} (see `rampart checks`)"))
                    .at_field(format!("{field}.skip[{i}]")),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut corpus: Vec<Box<dyn CorpusCheck>> = Vec::new();
    if !wanted.is_empty() {
        let config = PracticeConfig {
            allowed_registries,
            untrusted_namespaces: b.untrusted_namespaces.clone().unwrap_or_default(),
            require_cpu_limits: b.require_cpu_limits.unwrap_or(true),
            ..PracticeConfig::default()
        };
        let (o, c) = practices::checks(&config);
        object.extend(
            o.into_iter()
                .filter(|c| wanted.iter().any(|w| *w == c.meta().id)),
        );
        corpus.extend(
            c.into_iter()
                .filter(|c| wanted.iter().any(|w| *w == c.meta().id)),
        );
    }
    object.retain(|c| !skip.iter().any(|s| *s == c.meta().id));
    corpus.retain(|c| !skip.iter().any(|s| *s == c.meta().id));
    Ok(Builtin {
        object: Engine::new(object, Vec::new()),
        corpus: Engine::new(Vec::new(), corpus),
    })
}
