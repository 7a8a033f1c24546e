//! End-to-end: the control plane itself, through kubectl and kube-rs.
//! Run with `e2e/run.sh` (these tests are ignored by a plain `cargo test`).

mod e2e_support;

use e2e_support::*;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn kubectl_talks_to_the_api_server() {
    let version = get_json(&["version"]);
    assert_eq!(
        version["serverVersion"]["gitVersion"], "v1.37.2",
        "{version}"
    );
    let ns = fresh_namespace("e2e-kubectl");
    // Without nodes or a scheduler, a Pod is stored and stays Pending.
    apply(&pod_yaml(&ns, "p", true));
    let pod = get_json(&["get", "pod", "-n", &ns, "p"]);
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(
        kubectl_ok(&["auth", "can-i", "create", "pods", "-n", &ns]).trim(),
        "yes"
    );
}

#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn kube_rs_talks_to_the_api_server() {
    rampart_controller::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = rampart_controller::client(Some(&kubeconfig()))
            .await
            .unwrap();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let list = namespaces.list(&ListParams::default()).await.unwrap();
        assert!(
            list.items
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some("kube-system"))
        );
        let ns = fresh_namespace("e2e-kube-rs");
        let cms: Api<ConfigMap> = Api::namespaced(client, &ns);
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("hello".into()),
                ..ObjectMeta::default()
            },
            data: Some([("k".to_owned(), "v".to_owned())].into()),
            ..ConfigMap::default()
        };
        cms.create(&PostParams::default(), &cm).await.unwrap();
        let got = cms.get("hello").await.unwrap();
        assert_eq!(got.data.unwrap()["k"], "v");
    });
}

/// `rampart fix` output is what kubectl and the API server accept: the fixed
/// examples pass `kubectl apply --dry-run=client` and the API server's own
/// validation (`--dry-run=server`), so a fix never produces an object the
/// cluster would reject.
#[test]
#[ignore = "needs a control plane: run e2e/run.sh"]
fn fixed_examples_are_accepted_by_kubectl_and_the_api_server() {
    let tmp = tempfile::tempdir().unwrap();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    let before: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let out = std::process::Command::new(rampart_bin())
        .args(["fix", "--write"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_ne!(before, after, "fix changed nothing");

    let dir = tmp.path().to_str().unwrap();
    kubectl_ok(&["apply", "--dry-run=client", "-f", dir]);
    // The namespaces the examples use, so the server can validate them.
    for ns in ["shop", "ci", "reports"] {
        let out = kubectl(&["create", "namespace", ns]);
        let (_, err) = text(&out);
        assert!(
            out.status.success() || err.contains("AlreadyExists"),
            "{err}"
        );
    }
    let applied = kubectl_ok(&["apply", "--dry-run=server", "-f", dir]);
    assert!(applied.contains("(server dry run)"), "{applied}");
}
