//! Evaluating a [`PolicySet`] against requests.

use std::sync::Arc;

use rampart_cel::{Bindings, Input, Scope, Value as CelValue, json_to_value, value_to_json};
use rampart_core::ObjectView;
use serde_json::{Value, json};

use crate::crd::{FailurePolicy, PatchType, Reason, ValidationAction};
use crate::decision::{Actions, AppliedPatch, Decision, Evaluation, Outcome, PolicyKind};
use crate::matching::NamespaceLabels;
use crate::set::{CompiledValidation, MutationSource, Param, PolicySet, Unit, param_labels};
use rampart_core::request::Request;

/// The request's documents, converted to CEL once and shared by every policy.
struct Inputs {
    object: CelValue,
    old_object: CelValue,
    request: CelValue,
    namespace_object: CelValue,
}

enum Params<'a> {
    Found(Vec<Option<&'a Param>>),
    NotFoundAllowed,
    Error(String),
}

enum MatchConditions {
    Apply,
    Skip(String),
    Error(String, String),
}

impl PolicySet {
    /// Evaluates every policy that matches the request. A request no policy
    /// can match (by operation, group and resource or kind) returns at once
    /// without converting or evaluating anything.
    ///
    /// Mutations run first, in policy order, each seeing the object as the
    /// previous ones left it; validations, audit annotations and built-in
    /// checks then see the mutated object, as the API server's validating
    /// admission sees what mutating admission produced.
    pub fn evaluate(&self, req: &Request) -> Evaluation {
        let (matched, ns_obj) = self.matched_units(req);
        if matched.is_empty() {
            return Evaluation::default();
        }
        let mut ev = Evaluation::default();
        let mut mutated: Option<Value> = None;
        if req.object.is_some() && matched.iter().any(|u| !u.body.mutations.is_empty()) {
            mutated = self.mutate(&matched, req, ns_obj, &mut ev);
        }
        let object = mutated.as_ref().or(req.object());
        // The CEL engine copies documents into each set of bindings: build
        // them once per request, and again only for policies with params.
        let prepared = self
            .inputs(req, object, ns_obj)
            .and_then(|i| self.bindings(&i, None).map(|b| (i, b)));
        match prepared {
            Ok((inputs, base)) => {
                for u in &matched {
                    self.validate_unit(u, req, object, &inputs, &base, &mut ev);
                }
            }
            Err(e) => {
                for u in &matched {
                    ev.decisions
                        .push(error_decision(u, None, None, e.clone(), None));
                }
            }
        }
        ev.patched_object = mutated;
        finish(&mut ev);
        ev
    }

    /// Runs only the mutations of the policies that match the request (for
    /// a mutating webhook, which leaves validation to the validating one):
    /// the patches, the patched object and any mutation errors.
    pub fn evaluate_mutations(&self, req: &Request) -> Evaluation {
        let (matched, ns_obj) = self.matched_units(req);
        let mut ev = Evaluation::default();
        if req.object.is_some() && matched.iter().any(|u| !u.body.mutations.is_empty()) {
            ev.patched_object = self.mutate(&matched, req, ns_obj, &mut ev);
        }
        finish(&mut ev);
        ev
    }

    /// The units that match the request (by index, then by their match
    /// constraints) and the request's Namespace object.
    fn matched_units<'a>(&'a self, req: &'a Request) -> (Vec<&'a Unit>, Option<&'a Value>) {
        let candidates = self.index.lookup(req);
        if candidates.is_empty() {
            return (Vec::new(), None);
        }
        let ns_obj = self.namespace_object(req);
        let ns_labels = NamespaceLabels {
            name: &req.namespace,
            labels: ns_obj.and_then(|n| n.pointer("/metadata/labels")),
        };
        let matched = candidates
            .iter()
            .map(|&i| &self.units[i as usize])
            .filter(|u| unit_matches(u, req, &ns_labels))
            .collect();
        (matched, ns_obj)
    }

    /// Evaluates the built-in checks that look at many objects at once
    /// (namespace hygiene, service-account tokens, sandboxing) over a whole
    /// corpus, for the objects each built-in policy matches (as CREATE
    /// requests). Returns `(index into objects, decision)`, failures and passes.
    /// Admission cannot run these (it sees one object); scans and tests do.
    pub fn evaluate_corpus(&self, objects: &[Value]) -> Vec<(usize, Decision)> {
        let mut out = Vec::new();
        let units: Vec<&Unit> = self
            .units
            .iter()
            .filter(|u| {
                u.body
                    .builtin
                    .as_ref()
                    .is_some_and(|b| !b.corpus.is_empty())
            })
            .collect();
        if units.is_empty() {
            return out;
        }
        let views: Vec<(usize, ObjectView<'_>)> = objects
            .iter()
            .enumerate()
            .filter_map(|(i, o)| ObjectView::new(o).map(|v| (i, v)))
            .collect();
        let only_views: Vec<ObjectView<'_>> = views.iter().map(|(_, v)| v.clone()).collect();
        let requests: Vec<Option<Request>> = views
            .iter()
            .map(|(i, _)| Request::create_borrowed(&objects[*i]).ok())
            .collect();
        for u in units {
            let builtin = u.body.builtin.as_ref().expect("filtered");
            let mut findings: Vec<Vec<rampart_core::Finding>> = vec![Vec::new(); views.len()];
            for (vi, f) in builtin.corpus.check_corpus(&only_views) {
                findings[vi].push(f);
            }
            for (vi, req) in requests.iter().enumerate() {
                let Some(req) = req else { continue };
                let ns_obj = self.namespace_object(req).or_else(|| {
                    // A Namespace in the corpus itself.
                    objects.iter().find(|o| {
                        o["kind"] == "Namespace"
                            && o["apiVersion"] == "v1"
                            && o.pointer("/metadata/name").and_then(Value::as_str)
                                == Some(&req.namespace)
                    })
                });
                let ns_labels = NamespaceLabels {
                    name: &req.namespace,
                    labels: ns_obj.and_then(|n| n.pointer("/metadata/labels")),
                };
                if !unit_matches(u, req, &ns_labels) {
                    continue;
                }
                let mut found = std::mem::take(&mut findings[vi]);
                for meta in builtin.corpus.catalog() {
                    let mine: Vec<_> = found.extract_if(.., |f| f.check.id == meta.id).collect();
                    if mine.is_empty() {
                        out.push((views[vi].0, builtin_decision(u, meta, None, None)));
                    }
                    for f in mine {
                        out.push((views[vi].0, builtin_decision(u, meta, Some(f), None)));
                    }
                }
            }
        }
        out
    }

    fn namespace_object<'a>(&'a self, req: &'a Request) -> Option<&'a Value> {
        req.namespace_object.as_deref().or_else(|| {
            if req.namespace.is_empty() || req.is_namespace() {
                None
            } else {
                self.namespaces.get(req.namespace.as_ref())
            }
        })
    }

    fn inputs(
        &self,
        req: &Request,
        object: Option<&Value>,
        ns_obj: Option<&Value>,
    ) -> Result<Inputs, String> {
        let limits = &self.options.input;
        let convert = |v: Option<&Value>, name: &'static str| match v {
            Some(v) => json_to_value(v, limits, name).map_err(|e| e.to_string()),
            None => Ok(CelValue::Null),
        };
        // namespaceObject is null for cluster-scoped objects.
        let ns = if req.namespace.is_empty() || req.is_namespace() {
            None
        } else {
            ns_obj
        };
        Ok(Inputs {
            object: convert(object, "object")?,
            old_object: convert(req.old_object(), "oldObject")?,
            request: convert(Some(&req.to_request_json()), "request")?,
            namespace_object: convert(ns, "namespaceObject")?,
        })
    }

    fn resolve_params<'a>(&'a self, u: &Unit, req: &Request) -> Params<'a> {
        let Some(pb) = &u.params else {
            return Params::Found(vec![None]);
        };
        let namespace = match (&pb.namespace, pb.namespaced) {
            (Some(ns), _) => Some(ns.as_str()),
            (None, true) => {
                if req.namespace.is_empty() || req.is_namespace() {
                    return Params::Error(
                        "cannot look up a namespaced parameter for a cluster-scoped object: set paramRef.namespace".into(),
                    );
                }
                Some(req.namespace.as_ref())
            }
            (None, false) => None,
        };
        let found: Vec<Option<&Param>> = self
            .params
            .get(&(pb.group.clone(), pb.kind.clone()))
            .into_iter()
            .flatten()
            .filter(|p| namespace.is_none_or(|ns| p.namespace == ns))
            .filter(|p| pb.name.as_ref().is_none_or(|n| *n == p.name))
            .filter(|p| {
                pb.selector
                    .as_ref()
                    .is_none_or(|s| s.matches(&param_labels(p)))
            })
            .map(Some)
            .collect();
        if !found.is_empty() {
            Params::Found(found)
        } else if pb.deny_when_missing {
            Params::Error(
                "no params found for policy binding with `Deny` parameterNotFoundAction".into(),
            )
        } else {
            Params::NotFoundAllowed
        }
    }

    fn bindings(&self, inputs: &Inputs, param: Option<&Param>) -> Result<Bindings, String> {
        let mut b = Bindings::builder()
            .object(Input::Value(inputs.object.clone()))
            .old_object(Some(Input::Value(inputs.old_object.clone())))
            .request(Input::Value(inputs.request.clone()))
            .namespace_object(Input::Value(inputs.namespace_object.clone()));
        if let Some(p) = param {
            b = b.params(Input::Value(p.cel.clone()));
        }
        b.build().map_err(|e| e.to_string())
    }

    fn validate_unit(
        &self,
        u: &Unit,
        req: &Request,
        object: Option<&Value>,
        inputs: &Inputs,
        base: &Bindings,
        ev: &mut Evaluation,
    ) {
        let has_checks = !u.body.validations.is_empty()
            || !u.body.audit_annotations.is_empty()
            || u.body.builtin.is_some();
        if !has_checks {
            // Mutations only: done (and reported) in the mutation phase.
            return;
        }
        let params = match self.resolve_params(u, req) {
            Params::Found(p) => p,
            Params::NotFoundAllowed => {
                ev.decisions.push(skip_decision(
                    u,
                    "no params found (parameterNotFoundAction: Allow)".into(),
                    Some("spec.paramRef".into()),
                ));
                return;
            }
            Params::Error(msg) => {
                ev.decisions.push(error_decision(
                    u,
                    None,
                    Some("spec.paramRef".into()),
                    msg,
                    None,
                ));
                return;
            }
        };
        for param in params {
            let own;
            let bindings = match param {
                None => base,
                Some(_) => match self.bindings(inputs, param) {
                    Ok(b) => {
                        own = b;
                        &own
                    }
                    Err(e) => {
                        ev.decisions.push(error_decision(u, None, None, e, param));
                        continue;
                    }
                },
            };
            match &u.body.variables {
                Some(vars) => run_checks(u, &bindings.with_variables(vars), param, object, ev),
                None => run_checks(u, bindings, param, object, ev),
            }
        }
    }

    /// Applies the matched policies' mutations in order; returns the mutated
    /// object when anything changed.
    fn mutate(
        &self,
        matched: &[&Unit],
        req: &Request,
        ns_obj: Option<&Value>,
        ev: &mut Evaluation,
    ) -> Option<Value> {
        let mut object = req.object()?.clone();
        let mut changed = false;
        for u in matched.iter().filter(|u| !u.body.mutations.is_empty()) {
            let params = match self.resolve_params(u, req) {
                Params::Found(p) => p,
                Params::NotFoundAllowed => continue,
                Params::Error(msg) => {
                    ev.decisions.push(error_decision(
                        u,
                        None,
                        Some("spec.paramRef".into()),
                        msg,
                        None,
                    ));
                    continue;
                }
            };
            for param in params {
                let mut first = true;
                for m in &u.body.mutations {
                    let inputs = match self.inputs(req, Some(&object), ns_obj) {
                        Ok(i) => i,
                        Err(e) => {
                            ev.decisions.push(error_decision(
                                u,
                                Some(m.name.clone()),
                                Some(m.field.clone()),
                                e,
                                param,
                            ));
                            break;
                        }
                    };
                    let bindings = match self.bindings(&inputs, param) {
                        Ok(b) => b,
                        Err(e) => {
                            ev.decisions.push(error_decision(
                                u,
                                Some(m.name.clone()),
                                Some(m.field.clone()),
                                e,
                                param,
                            ));
                            break;
                        }
                    };
                    let result = match &u.body.variables {
                        Some(vars) => mutation_patch(u, m, &bindings.with_variables(vars), first),
                        None => mutation_patch(u, m, &bindings, first),
                    };
                    first = false;
                    let patch = match result {
                        Ok(Some(p)) => p,
                        // A match condition is false: the policy does not apply.
                        Ok(None) => break,
                        Err(e) => {
                            ev.decisions.push(error_decision(
                                u,
                                Some(m.name.clone()),
                                Some(m.field.clone()),
                                e,
                                param,
                            ));
                            break;
                        }
                    };
                    let before = object.clone();
                    let applied = match m.patch_type {
                        PatchType::JsonPatch => serde_json::from_value::<json_patch::Patch>(patch)
                            .map_err(|e| format!("the expression must produce a list of {{op, path, value}} operations: {e}"))
                            .and_then(|p| {
                                json_patch::patch(&mut object, &p)
                                    .map(|()| p)
                                    .map_err(|e| format!("cannot apply the patch: {e}"))
                            }),
                        PatchType::Merge if patch.is_object() => {
                            json_patch::merge(&mut object, &patch);
                            Ok(json_patch::diff(&before, &object))
                        }
                        PatchType::Merge => Err("a merge patch must be an object".into()),
                    };
                    match applied {
                        Ok(ops) => {
                            if object != before {
                                changed = true;
                                ev.patches.push(AppliedPatch {
                                    policy: Arc::clone(&u.id),
                                    mutation: m.name.clone(),
                                    operations: ops,
                                });
                            }
                            ev.decisions.push(Decision {
                                field: Some(m.field.clone()),
                                param: param.map(Param::display),
                                ..base_decision(u, Some(m.name.clone()), Outcome::Pass)
                            });
                        }
                        Err(e) => {
                            object = before;
                            ev.decisions.push(error_decision(
                                u,
                                Some(m.name.clone()),
                                Some(m.field.clone()),
                                e,
                                param,
                            ));
                            break;
                        }
                    }
                }
            }
        }
        changed.then_some(object)
    }
}

/// Whether a unit applies to a request (everything but match conditions).
fn unit_matches(u: &Unit, req: &Request, ns: &NamespaceLabels<'_>) -> bool {
    let body = &u.body;
    if body.kind == PolicyKind::Policy {
        let in_ns = !req.namespace.is_empty()
            && !req.is_namespace()
            && body.namespace.as_deref() == Some(req.namespace.as_ref());
        if !in_ns {
            return false;
        }
    }
    // As in Kubernetes, admission policies never apply to their own kinds.
    if body.kind == PolicyKind::ValidatingAdmissionPolicy
        && req.resource.group == "admissionregistration.k8s.io"
        && matches!(
            req.resource.resource.as_ref(),
            "validatingadmissionpolicies" | "validatingadmissionpolicybindings"
        )
    {
        return false;
    }
    body.constraints.matches(req, ns)
        && u.binding_matcher
            .as_ref()
            .is_none_or(|m| m.matches(req, ns))
        && !body.exclude.as_ref().is_some_and(|m| m.matches(req, ns))
}

fn base_decision(u: &Unit, rule: Option<Arc<str>>, outcome: Outcome) -> Decision {
    Decision {
        policy: Arc::clone(&u.id),
        rule,
        field: None,
        outcome,
        actions: Actions::NONE,
        severity: u.body.default_severity(),
        message: String::new(),
        reason: Reason::Invalid,
        path: None,
        param: None,
        message_expression_error: None,
        suppressed: None,
        meta: None,
    }
}

fn skip_decision(u: &Unit, message: String, field: Option<String>) -> Decision {
    Decision {
        message,
        field,
        ..base_decision(u, None, Outcome::Skip)
    }
}

/// An evaluation error: enforced with the unit's actions under
/// `failurePolicy: Fail`, reported but not enforced under `Ignore`.
fn error_decision(
    u: &Unit,
    rule: Option<Arc<str>>,
    field: Option<String>,
    error: String,
    param: Option<&Param>,
) -> Decision {
    let actions = match u.body.failure_policy {
        FailurePolicy::Fail => u.actions,
        FailurePolicy::Ignore => Actions::NONE,
    };
    let message = match &field {
        Some(f) => format!("policy errored: {f}: {error}"),
        None => format!("policy errored: {error}"),
    };
    Decision {
        field,
        actions,
        message,
        param: param.map(Param::display),
        ..base_decision(u, rule, Outcome::Error)
    }
}

fn match_conditions<S: Scope + ?Sized>(u: &Unit, scope: &S) -> MatchConditions {
    // Kubernetes: any false condition skips the policy, whatever errors others
    // had; otherwise the first error applies the failure policy.
    let mut error = None;
    for mc in &u.body.match_conditions {
        match mc.program.evaluate_bool(scope) {
            Ok(true) => {}
            Ok(false) => {
                return MatchConditions::Skip(format!("match condition {:?} is false", mc.name));
            }
            Err(e) => {
                if error.is_none() {
                    error = Some((mc.field.clone(), e.to_string()));
                }
            }
        }
    }
    match error {
        Some((field, e)) => MatchConditions::Error(field, e),
        None => MatchConditions::Apply,
    }
}

/// The patch one mutation produces, or `None` when a match condition skips
/// the policy (checked before the first mutation).
fn mutation_patch<S: Scope + ?Sized>(
    u: &Unit,
    m: &crate::set::CompiledMutation,
    scope: &S,
    first: bool,
) -> Result<Option<Value>, String> {
    if first {
        match match_conditions(u, scope) {
            MatchConditions::Apply => {}
            MatchConditions::Skip(_) => return Ok(None),
            MatchConditions::Error(field, e) => return Err(format!("{field}: {e}")),
        }
    }
    match &m.source {
        MutationSource::Static(v) => Ok(Some(v.clone())),
        MutationSource::Expression(p) => {
            let v = p.evaluate(scope).map_err(|e| e.to_string())?;
            value_to_json(&v)
                .map(Some)
                .ok_or_else(|| "the expression produced a value with no JSON form".to_owned())
        }
    }
}

/// The message of a failed validation, as Kubernetes picks it.
fn failure_message<S: Scope + ?Sized>(
    v: &CompiledValidation,
    scope: &S,
) -> (String, Option<String>) {
    let mut problem = None;
    if let Some(me) = &v.message_expression {
        match me.evaluate_string(scope) {
            Ok(s) if s.trim().is_empty() => {
                problem = Some("messageExpression produced an empty string".to_owned())
            }
            Ok(s) if s.contains(['\n', '\r']) => {
                problem = Some("messageExpression produced a multi-line string".to_owned())
            }
            Ok(s) => return (s, None),
            Err(e) => problem = Some(format!("messageExpression failed: {e}")),
        }
    }
    let message = v
        .message
        .clone()
        .unwrap_or_else(|| format!("failed expression: {}", v.expression.source().trim()));
    (message, problem)
}

/// The object's ignore annotation for check `id`, by the one rule the scan
/// and the webhook use too (the object or its pod template, with a reason).
fn ignore_reason(object: Option<&Value>, id: &str) -> Option<String> {
    rampart_core::ignore_reason(&ObjectView::new(object?)?, id)
}

fn run_checks<S: Scope + ?Sized>(
    u: &Unit,
    scope: &S,
    param: Option<&Param>,
    object: Option<&Value>,
    ev: &mut Evaluation,
) {
    match match_conditions(u, scope) {
        MatchConditions::Apply => {}
        MatchConditions::Skip(why) => {
            ev.decisions.push(Decision {
                param: param.map(Param::display),
                ..skip_decision(u, why, Some("spec.matchConditions".into()))
            });
            return;
        }
        MatchConditions::Error(field, e) => {
            ev.decisions
                .push(error_decision(u, None, Some(field), e, param));
            return;
        }
    }
    let body = &u.body;
    for v in &body.validations {
        let decision = match v.expression.evaluate_bool(scope) {
            Ok(true) => Decision {
                field: Some(v.field.clone()),
                param: param.map(Param::display),
                meta: Some(Arc::clone(&v.meta)),
                ..base_decision(u, Some(v.rule.clone()), Outcome::Pass)
            },
            Ok(false) => {
                let (message, message_expression_error) = failure_message(v, scope);
                Decision {
                    field: Some(v.field.clone()),
                    actions: u.actions,
                    message,
                    reason: v.reason,
                    param: param.map(Param::display),
                    message_expression_error,
                    suppressed: ignore_reason(object, &format!("{}.{}", body.name, v.rule)),
                    meta: Some(Arc::clone(&v.meta)),
                    ..base_decision(u, Some(v.rule.clone()), Outcome::Fail)
                }
            }
            Err(e) => Decision {
                meta: Some(Arc::clone(&v.meta)),
                ..error_decision(
                    u,
                    Some(v.rule.clone()),
                    Some(v.field.clone()),
                    e.to_string(),
                    param,
                )
            },
        };
        ev.decisions.push(decision);
    }
    for a in &body.audit_annotations {
        match a.program.evaluate(scope) {
            Ok(CelValue::Null) => {}
            Ok(CelValue::String(s)) => {
                ev.audit_annotations
                    .entry(format!("{}/{}", body.name, a.name))
                    .or_insert_with(|| s.as_str().to_owned());
            }
            Ok(other) => ev.decisions.push(error_decision(
                u,
                None,
                Some(a.field.clone()),
                format!(
                    "valueExpression must evaluate to a string or null, got {}",
                    other.type_of()
                ),
                param,
            )),
            Err(e) => ev.decisions.push(error_decision(
                u,
                None,
                Some(a.field.clone()),
                e.to_string(),
                param,
            )),
        }
    }
    if let Some(builtin) = &body.builtin {
        let Some(view) = object.and_then(ObjectView::new) else {
            return;
        };
        let mut findings = builtin.object.check_object(&view);
        for meta in builtin.object.catalog() {
            let mine: Vec<_> = findings.extract_if(.., |f| f.check.id == meta.id).collect();
            if mine.is_empty() {
                ev.decisions.push(builtin_decision(u, meta, None, param));
            }
            for f in mine {
                ev.decisions.push(builtin_decision(u, meta, Some(f), param));
            }
        }
    }
}

fn builtin_decision(
    u: &Unit,
    meta: &Arc<rampart_core::CheckMeta>,
    finding: Option<rampart_core::Finding>,
    param: Option<&Param>,
) -> Decision {
    let rule: Arc<str> = Arc::from(meta.id.as_ref());
    let policy_meta = u.body.builtin_metas.get(meta.id.as_ref()).cloned();
    let base = base_decision(u, Some(rule), Outcome::Pass);
    let Some(f) = finding else {
        return Decision {
            severity: u.body.severity.unwrap_or(meta.severity),
            param: param.map(Param::display),
            meta: policy_meta,
            ..base
        };
    };
    Decision {
        outcome: Outcome::Fail,
        actions: u.actions,
        severity: u.body.severity.unwrap_or(f.severity),
        message: f.message,
        path: Some(f.path),
        param: param.map(Param::display),
        suppressed: f.suppressed,
        meta: policy_meta,
        ..base
    }
}

/// Warnings and audit annotations for the enforced failures, as the API
/// server reports them.
fn finish(ev: &mut Evaluation) {
    let mut audit = Vec::new();
    for d in ev.decisions.iter().filter(|d| d.is_violation()) {
        if d.actions.contains(ValidationAction::Warn) {
            ev.warnings
                .push(format!("Validation failed for {}: {}", d.policy, d.message));
        }
        if d.actions.contains(ValidationAction::Audit) {
            let index = d
                .field
                .as_deref()
                .and_then(|f| f.strip_prefix("spec.validations["))
                .and_then(|f| f.split(']').next())
                .and_then(|i| i.parse::<usize>().ok());
            audit.push(json!({
                "message": d.message,
                "policy": d.policy.name,
                "binding": d.policy.binding.clone().unwrap_or_default(),
                "expressionIndex": index,
                "validationActions": d.actions,
            }));
        }
    }
    if !audit.is_empty() {
        ev.audit_annotations.insert(
            "validation.policy.admission.k8s.io/validation_failure".into(),
            Value::Array(audit).to_string(),
        );
    }
}
