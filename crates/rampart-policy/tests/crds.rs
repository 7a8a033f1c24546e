//! The checked-in CRD manifests are the ones the Rust types generate.

use std::path::PathBuf;

fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds")
}

/// Regenerate with `RAMPART_UPDATE_CRDS=1 cargo test -p rampart-policy --test crds`.
#[test]
fn checked_in_crds_match_the_types() {
    let update = std::env::var_os("RAMPART_UPDATE_CRDS").is_some();
    for (file, yaml) in rampart_policy::crds_yaml() {
        let path = crd_dir().join(file);
        if update {
            std::fs::create_dir_all(crd_dir()).unwrap();
            std::fs::write(&path, &yaml).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with RAMPART_UPDATE_CRDS=1", path.display()));
        assert!(
            on_disk == yaml,
            "{} is stale: run `RAMPART_UPDATE_CRDS=1 cargo test -p rampart-policy --test crds`",
            path.display()
        );
    }
}

#[test]
fn crds_are_structural_and_complete() {
    let crds = rampart_policy::crds_yaml();
    assert_eq!(crds.len(), 2);
    let (_, cluster) = &crds[0];
    let v: serde_json::Value = serde_saphyr::from_str(cluster).unwrap();
    assert_eq!(v["kind"], "CustomResourceDefinition");
    assert_eq!(v["metadata"]["name"], "clusterpolicies.rampart.dev");
    assert_eq!(v["spec"]["scope"], "Cluster");
    let version = &v["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for field in [
        "matchConstraints",
        "exclude",
        "matchConditions",
        "variables",
        "validations",
        "validationActions",
        "severity",
        "failurePolicy",
        "mutations",
        "builtin",
        "paramKind",
        "paramRef",
        "auditAnnotations",
    ] {
        assert!(
            spec.get(field).is_some(),
            "spec.{field} missing from the schema"
        );
    }
    assert_eq!(
        spec["validationActions"]["items"]["enum"],
        serde_json::json!(["Deny", "Warn", "Audit"])
    );
    // Arbitrary JSON in static patches survives the API server's pruning.
    let patch = &spec["mutations"]["items"]["properties"]["patch"];
    assert_eq!(
        patch["x-kubernetes-preserve-unknown-fields"], true,
        "{patch}"
    );
    let (_, ns) = &crds[1];
    let v: serde_json::Value = serde_saphyr::from_str(ns).unwrap();
    assert_eq!(v["metadata"]["name"], "policies.rampart.dev");
    assert_eq!(v["spec"]["scope"], "Namespaced");
}
