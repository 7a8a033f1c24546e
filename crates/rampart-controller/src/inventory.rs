//! The image inventory: which workloads run which images, read live from
//! the API (`rampart inventory --image REGEX`).

use anyhow::{Context, Result};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use rampart_core::PodBearingKind;
use regex::Regex;
use serde::Serialize;
use serde_json::Value;

/// The pod-bearing kinds as `(group, version, kind, plural)`, from the one
/// list in rampart-core.
pub fn workload_kinds() -> impl Iterator<Item = (&'static str, &'static str, &'static str, String)>
{
    PodBearingKind::ALL.into_iter().map(|k| {
        let plural = rampart_core::kinds::resource_of(k.group(), k.kind());
        (k.group(), "v1", k.kind(), plural)
    })
}

pub fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// One container of one workload.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Entry {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub container: String,
    pub image: String,
}

/// The pod spec of a workload object of `kind` (list items carry no kind
/// of their own), where `rampart_core`'s table of pod-bearing kinds has it.
pub fn pod_spec<'a>(kind: &str, obj: &'a Value) -> Option<&'a Value> {
    let kind = PodBearingKind::ALL.into_iter().find(|k| k.kind() == kind)?;
    kind.template_path()
        .iter()
        .try_fold(obj, |v, key| v.get(*key))?
        .get("spec")
}

/// `(container name, image)` of every container, init and ephemeral ones included.
pub fn images(pod_spec: &Value) -> Vec<(String, String)> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| pod_spec.get(*k)?.as_array())
        .flatten()
        .filter_map(|c| {
            Some((
                c.get("name")?.as_str()?.to_owned(),
                c.get("image")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Entries of one object whose image matches `filter`.
pub fn entries(kind: &str, obj: &Value, filter: Option<&Regex>) -> Vec<Entry> {
    let Some(spec) = pod_spec(kind, obj) else {
        return Vec::new();
    };
    let meta = &obj["metadata"];
    images(spec)
        .into_iter()
        .filter(|(_, image)| filter.is_none_or(|re| re.is_match(image)))
        .map(|(container, image)| Entry {
            namespace: meta["namespace"].as_str().unwrap_or_default().to_owned(),
            kind: kind.to_owned(),
            name: meta["name"].as_str().unwrap_or_default().to_owned(),
            container,
            image,
        })
        .collect()
}

/// Lists every workload (in `namespace`, or all) and returns the matching
/// entries, sorted.
pub async fn collect(
    client: &kube::Client,
    namespace: Option<&str>,
    filter: Option<&Regex>,
) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (group, version, kind, plural) in workload_kinds() {
        let ar = api_resource(group, version, kind, &plural);
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let mut params = ListParams::default().limit(500);
        loop {
            let list = api
                .list(&params)
                .await
                .with_context(|| format!("listing {plural}"))?;
            for item in &list.items {
                let value = serde_json::to_value(item)?;
                out.extend(entries(kind, &value, filter));
            }
            match list.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A plain table of entries.
pub fn table(entries: &[Entry]) -> String {
    let headers = ["NAMESPACE", "KIND", "NAME", "CONTAINER", "IMAGE"];
    let rows: Vec<[&str; 5]> = entries
        .iter()
        .map(|e| {
            [
                e.namespace.as_str(),
                e.kind.as_str(),
                e.name.as_str(),
                e.container.as_str(),
                e.image.as_str(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(headers).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_of_every_kind() {
        let cj = json!({"metadata": {"name": "c", "namespace": "n"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "initContainers": [{"name": "i", "image": "busybox:1"}],
                "containers": [{"name": "a", "image": "ghcr.io/acme/app:2"}]}}}}}});
        let all = entries("CronJob", &cj, None);
        assert_eq!(all.len(), 2);
        let re = Regex::new("^ghcr\\.io/").unwrap();
        let some = entries("CronJob", &cj, Some(&re));
        assert_eq!(some.len(), 1);
        assert_eq!(some[0].container, "a");
        assert!(table(&some).contains("ghcr.io/acme/app:2"));
    }
}
