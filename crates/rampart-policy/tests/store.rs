//! Hot reload: a broken policy never replaces the set in force, and readers
//! never see a partial set.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rampart_policy::{PolicyStore, Request};
use serde_json::json;

fn policy(name: &str, expression: &str) -> String {
    format!(
        "apiVersion: rampart.dev/v1alpha1\nkind: ClusterPolicy\nmetadata: {{name: {name}}}\nspec:\n  \
         matchConstraints: {{kinds: [ConfigMap]}}\n  validations:\n  - expression: \"{expression}\"\n"
    )
}

/// A generation: two policies that both fail every ConfigMap.
fn write_generation(dir: &Path, tag: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("a.yaml"), policy(&format!("{tag}-a"), "false")).unwrap();
    std::fs::write(dir.join("b.yaml"), policy(&format!("{tag}-b"), "false")).unwrap();
}

fn config_map() -> Request<'static> {
    Request::create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}})).unwrap()
}

#[test]
fn a_broken_reload_keeps_the_last_good_set() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    write_generation(&good, "one");
    let store = PolicyStore::default();
    assert_eq!(store.generation(), 1);
    assert!(store.current().evaluate(&config_map()).allowed());

    let summary = store.reload_from(&[&good]).unwrap();
    assert_eq!(summary.generation, 2);
    assert_eq!(
        (summary.files, summary.documents, summary.policies),
        (2, 2, 2)
    );
    assert_eq!(
        summary.added,
        ["ClusterPolicy/one-a", "ClusterPolicy/one-b"]
    );
    assert!(summary.removed.is_empty());
    let before = store.current();
    assert!(!before.evaluate(&config_map()).allowed());

    // One of the files breaks: the reload is refused as a whole.
    std::fs::write(
        good.join("b.yaml"),
        policy("one-b", "object.data.size( > 1"),
    )
    .unwrap();
    std::fs::write(good.join("c.yaml"), policy("one-c", "true")).unwrap();
    let errors = store.reload_from(&[&good]).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(text.contains("b.yaml (document 0): ClusterPolicy \"one-b\": spec.validations[0].expression: line 1, column "), "{text}");
    assert_eq!(store.generation(), 2);
    let after = store.current();
    assert!(Arc::ptr_eq(&before, &after), "the old set stays in force");
    let ev = after.evaluate(&config_map());
    assert_eq!(ev.denials().count(), 2, "and still evaluates");
    assert!(
        !after.policy_names().any(|n| n.ends_with("one-c")),
        "nothing of the broken reload leaks in"
    );

    // Fixed: the new set replaces the old one.
    std::fs::write(good.join("b.yaml"), policy("one-b", "true")).unwrap();
    let summary = store.reload_from(&[&good]).unwrap();
    assert_eq!(summary.generation, 3);
    assert_eq!(summary.added, ["ClusterPolicy/one-c"]);
    assert_eq!(store.current().evaluate(&config_map()).denials().count(), 1);
}

#[test]
fn concurrent_readers_never_see_a_partial_set() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, broken) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("broken"),
    );
    write_generation(&a, "alpha");
    write_generation(&b, "beta");
    write_generation(&broken, "gamma");
    std::fs::write(broken.join("b.yaml"), policy("gamma-b", "object.(")).unwrap();

    let store = Arc::new(PolicyStore::default());
    store.reload_from(&[&a]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            std::thread::spawn(move || {
                let req = config_map();
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let set = store.current();
                    let ev = set.evaluate(&req);
                    let names: Vec<&str> = ev
                        .decisions
                        .iter()
                        .map(|d| d.policy.name.as_str())
                        .collect();
                    assert_eq!(names.len(), 2, "{names:?}");
                    let tag = names[0].split('-').next().unwrap();
                    assert!(tag == "alpha" || tag == "beta", "{names:?}");
                    assert_eq!(
                        names,
                        [format!("{tag}-a"), format!("{tag}-b")],
                        "one generation per snapshot"
                    );
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    let mut ok = 0;
    for i in 0..60 {
        let dir = match i % 3 {
            0 => &b,
            1 => &broken,
            _ => &a,
        };
        match store.reload_from(&[dir]) {
            Ok(_) => ok += 1,
            Err(errors) => assert!(errors[0].to_string().contains("gamma-b"), "{errors:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let evaluations: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert_eq!(ok, 40);
    assert_eq!(store.generation(), 42);
    assert!(evaluations > 0);
}
