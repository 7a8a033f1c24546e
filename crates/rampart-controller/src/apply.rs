//! Server-side apply of arbitrary objects given as JSON.

use anyhow::{Context, Result, anyhow};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use serde_json::Value;

/// The field manager Rampart applies with.
pub const FIELD_MANAGER: &str = "rampart";

/// `(group, version, kind, namespace, name)` of an object.
pub fn identity(obj: &Value) -> Result<(GroupVersionKind, Option<String>, String)> {
    let api_version = obj["apiVersion"]
        .as_str()
        .ok_or_else(|| anyhow!("object without apiVersion"))?;
    let kind = obj["kind"]
        .as_str()
        .ok_or_else(|| anyhow!("object without kind"))?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let name = obj["metadata"]["name"]
        .as_str()
        .ok_or_else(|| anyhow!("{kind} without metadata.name"))?;
    let namespace = obj["metadata"]["namespace"].as_str().map(str::to_owned);
    Ok((
        GroupVersionKind::gvk(group, version, kind),
        namespace,
        name.to_owned(),
    ))
}

/// Applies `obj` (server-side, forcing conflicts) and returns the stored object.
pub async fn apply(client: &kube::Client, obj: &Value) -> Result<DynamicObject> {
    let (gvk, namespace, name) = identity(obj)?;
    let (resource, caps) = discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("discovering {}/{}", gvk.group, gvk.kind))?;
    let api: Api<DynamicObject> = match (caps.scope, namespace) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), &ns, &resource),
        (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &resource),
        (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
    };
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .with_context(|| format!("applying {} {name}", gvk.kind))
}

/// Applies every object in order.
pub async fn apply_all(client: &kube::Client, objects: &[Value]) -> Result<()> {
    for obj in objects {
        apply(client, obj).await?;
    }
    Ok(())
}
