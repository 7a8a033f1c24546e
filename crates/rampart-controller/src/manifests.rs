//! The install manifests: the Helm chart's templates
//! (`deploy/helm/rampart/templates/`, compiled in) rendered with its
//! `values.yaml` and `--set` overrides by a small renderer that understands
//! the subset of Go templates the chart is written in:
//!
//! - `{{ .Values.a.b }}`, `{{ .Release.Namespace }}`, `{{ .Release.Name }}`,
//!   `{{ .Chart.AppVersion }}`;
//! - `{{- if .Values.a.b }}` … `{{- end }}` on lines of their own (nestable;
//!   false, empty, zero and missing values are false, as in Helm).
//!
//! Anything else is an error, so a template that Helm would render
//! differently fails the tests instead of being printed wrong.
//! `rampart install` prepends the Namespace and the CRDs (the chart leaves
//! CRDs to the controller, which applies them at start).

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

pub const CHART_YAML: &str = include_str!("../../../deploy/helm/rampart/Chart.yaml");
pub const VALUES_YAML: &str = include_str!("../../../deploy/helm/rampart/values.yaml");

/// `(file name, text)` of every template, in install order.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "serviceaccount.yaml",
        include_str!("../../../deploy/helm/rampart/templates/serviceaccount.yaml"),
    ),
    (
        "rbac.yaml",
        include_str!("../../../deploy/helm/rampart/templates/rbac.yaml"),
    ),
    (
        "controller.yaml",
        include_str!("../../../deploy/helm/rampart/templates/controller.yaml"),
    ),
    (
        "webhook.yaml",
        include_str!("../../../deploy/helm/rampart/templates/webhook.yaml"),
    ),
    (
        "servicemonitor.yaml",
        include_str!("../../../deploy/helm/rampart/templates/servicemonitor.yaml"),
    ),
];

/// What templates are rendered with.
#[derive(Clone, Debug)]
pub struct RenderContext {
    pub values: Value,
    pub release_name: String,
    pub namespace: String,
    pub app_version: String,
}

impl RenderContext {
    /// The chart's defaults, with `overrides` (`a.b=c`; `true`, `false`
    /// and integers are typed, anything else is a string) applied.
    pub fn new(namespace: &str, overrides: &[String]) -> Result<RenderContext> {
        let mut values: Value =
            serde_saphyr::from_str(VALUES_YAML).map_err(|e| anyhow!("values.yaml: {e}"))?;
        for o in overrides {
            let (path, raw) = o
                .split_once('=')
                .ok_or_else(|| anyhow!("--set {o:?}: expected key=value"))?;
            let value = match raw {
                "true" => json!(true),
                "false" => json!(false),
                _ => raw.parse::<i64>().map(|n| json!(n)).unwrap_or(json!(raw)),
            };
            set_path(&mut values, path, value)?;
        }
        let chart: Value =
            serde_saphyr::from_str(CHART_YAML).map_err(|e| anyhow!("Chart.yaml: {e}"))?;
        Ok(RenderContext {
            values,
            release_name: "rampart".into(),
            namespace: namespace.to_owned(),
            app_version: chart["appVersion"].as_str().unwrap_or("0.0.0").to_owned(),
        })
    }

    fn lookup(&self, expr: &str) -> Result<Value> {
        match expr {
            ".Release.Namespace" => Ok(json!(self.namespace)),
            ".Release.Name" => Ok(json!(self.release_name)),
            ".Chart.AppVersion" => Ok(json!(self.app_version)),
            _ => {
                let path = expr
                    .strip_prefix(".Values.")
                    .ok_or_else(|| anyhow!("unsupported template expression {{{{ {expr} }}}}"))?;
                let mut v = &self.values;
                for key in path.split('.') {
                    v = v.get(key).unwrap_or(&Value::Null);
                }
                Ok(v.clone())
            }
        }
    }
}

fn set_path(values: &mut Value, path: &str, value: Value) -> Result<()> {
    let mut v = values;
    let keys: Vec<&str> = path.split('.').collect();
    for (i, key) in keys.iter().enumerate() {
        if key.is_empty() {
            bail!("--set {path}: empty key");
        }
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        let map = v.as_object_mut().expect("an object");
        if i + 1 == keys.len() {
            map.insert((*key).to_owned(), value);
            return Ok(());
        }
        v = map.entry(*key).or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn scalar(v: &Value, expr: &str) -> Result<String> {
    Ok(match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => bail!("{expr} is not a scalar"),
    })
}

/// Renders one template to text.
pub fn render_template(name: &str, text: &str, cx: &RenderContext) -> Result<String> {
    let mut out = String::new();
    // Whether each enclosing `if` is true.
    let mut stack: Vec<bool> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("{name}:{}", n + 1);
        let trimmed = line.trim();
        if let Some(rest) = trimmed
            .strip_prefix("{{- if ")
            .or_else(|| trimmed.strip_prefix("{{ if "))
        {
            let expr = rest
                .strip_suffix("}}")
                .map(|e| e.trim().trim_end_matches('-').trim())
                .ok_or_else(|| anyhow!("{}: malformed if", at()))?;
            stack.push(truthy(&cx.lookup(expr).with_context(at)?));
            continue;
        }
        if matches!(trimmed, "{{- end }}" | "{{ end }}" | "{{- end -}}") {
            stack
                .pop()
                .ok_or_else(|| anyhow!("{}: end without if", at()))?;
            continue;
        }
        if stack.contains(&false) {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .ok_or_else(|| anyhow!("{}: unclosed {{{{", at()))?;
            let expr = rest[start + 2..start + end].trim();
            out.push_str(&scalar(&cx.lookup(expr).with_context(at)?, expr)?);
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    if !stack.is_empty() {
        bail!("{name}: if without end");
    }
    Ok(out)
}

/// The chart's objects, rendered, as JSON values in order.
pub fn render_chart(cx: &RenderContext) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for (name, text) in TEMPLATES {
        let rendered = render_template(name, text, cx)?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&rendered)
            .map_err(|e| anyhow!("{name} renders to invalid YAML: {e}"))?;
        objects.extend(docs.into_iter().filter(|d| !d.is_null()));
    }
    Ok(objects)
}

/// Everything `rampart install` applies: the Namespace, the CRDs, the chart.
pub fn install_objects(cx: &RenderContext, crds: bool) -> Result<Vec<Value>> {
    let mut objects = vec![json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": cx.namespace, "labels": {"app.kubernetes.io/name": "rampart"}},
    })];
    if crds {
        objects.extend(crate::crds::all_crds());
    }
    objects.extend(render_chart(cx)?);
    Ok(objects)
}

/// Multi-document YAML of `objects`.
pub fn to_yaml(objects: &[Value]) -> Result<String> {
    let mut out = String::new();
    for obj in objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(obj).map_err(|e| anyhow!("rendering YAML: {e}"))?);
    }
    Ok(out)
}

/// The first lines of `deploy/manifests/rampart.yaml`.
pub const STATIC_MANIFEST_HEADER: &str = "# Generated by `rampart install --dry-run --no-crds` from deploy/helm/rampart; do not edit.\n# Regenerate: cargo run -- install --dry-run --no-crds > deploy/manifests/rampart.yaml (then add back this header),\n# or UPDATE_MANIFESTS=1 cargo test -p rampart-controller. The controller applies the CRDs when it starts.\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(objects: &[Value]) -> Vec<String> {
        objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn chart_renders_with_defaults() {
        let cx = RenderContext::new("rampart-system", &[]).unwrap();
        let objects = render_chart(&cx).unwrap();
        let k = kinds(&objects);
        for want in [
            "ServiceAccount/rampart",
            "ClusterRole/rampart-controller",
            "Role/rampart-controller",
            "Deployment/rampart-controller",
            "Deployment/rampart-webhook",
            "Service/rampart-webhook",
            "PodDisruptionBudget/rampart-webhook",
        ] {
            assert!(k.iter().any(|x| x == want), "{want} missing from {k:?}");
        }
        assert!(!k.iter().any(|x| x.starts_with("ServiceMonitor")));
        for o in &objects {
            if o["metadata"].get("namespace").is_some() {
                assert_eq!(o["metadata"]["namespace"], "rampart-system");
            }
        }
        let webhook = objects
            .iter()
            .find(|o| o["metadata"]["name"] == "rampart-webhook" && o["kind"] == "Deployment")
            .unwrap();
        assert_eq!(webhook["spec"]["replicas"], 3);
        assert!(webhook["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"].is_object());
        let controller = objects
            .iter()
            .find(|o| o["metadata"]["name"] == "rampart-controller" && o["kind"] == "Deployment")
            .unwrap();
        assert_eq!(controller["spec"]["replicas"], 2);
        let args = controller["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap();
        assert!(args.contains(&json!("--failure-policy=Ignore")));
        assert!(!args.contains(&json!("--cert-manager")));
        assert_eq!(
            controller["spec"]["template"]["spec"]["containers"][0]["image"],
            "ghcr.io/rampart-dev/rampart:0.1.0"
        );
    }

    #[test]
    fn overrides_and_conditionals() {
        let cx = RenderContext::new(
            "sec",
            &[
                "serviceMonitor.enabled=true".into(),
                "webhook.certManager=true".into(),
                "controller.replicas=4".into(),
                "webhook.failurePolicy=Fail".into(),
            ],
        )
        .unwrap();
        let objects = render_chart(&cx).unwrap();
        assert!(
            kinds(&objects)
                .iter()
                .any(|k| k == "ServiceMonitor/rampart-webhook")
        );
        let controller = objects
            .iter()
            .find(|o| o["metadata"]["name"] == "rampart-controller" && o["kind"] == "Deployment")
            .unwrap();
        assert_eq!(controller["spec"]["replicas"], 4);
        let args = controller["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap();
        assert!(args.contains(&json!("--cert-manager")));
        assert!(args.contains(&json!("--failure-policy=Fail")));
        let all = install_objects(&cx, true).unwrap();
        assert_eq!(all[0]["kind"], "Namespace");
        assert_eq!(all.len(), objects.len() + 5);
        assert!(to_yaml(&all).unwrap().contains("kind: PolicyReport"));
    }

    #[test]
    fn static_manifest_is_up_to_date() {
        let cx = RenderContext::new("rampart-system", &[]).unwrap();
        let want = format!(
            "{STATIC_MANIFEST_HEADER}{}",
            to_yaml(&install_objects(&cx, false).unwrap()).unwrap()
        );
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/manifests/rampart.yaml"
        );
        if std::env::var_os("UPDATE_MANIFESTS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "deploy/manifests/rampart.yaml is stale: UPDATE_MANIFESTS=1 cargo test -p rampart-controller"
        );
    }

    #[test]
    fn unsupported_syntax_is_an_error() {
        let cx = RenderContext::new("x", &[]).unwrap();
        assert!(render_template("t", "a: {{ toYaml .Values }}\n", &cx).is_err());
        assert!(render_template("t", "{{- if .Values.x }}\n", &cx).is_err());
        assert!(render_template("t", "{{- end }}\n", &cx).is_err());
    }
}
