//! `rampart serve` and `rampart webhook-config`, run as the built binary and
//! spoken to over HTTPS with a CA made by rcgen.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_webhook::testing::{
    Client, Pki, Review, base64, client_config, client_config_versions, deployment, h2_post,
    http_get, patched, pod, restricted_pod, rustls,
};
use serde_json::{Value, json};

const NAMESPACES: &str = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: plain}}
- apiVersion: v1
  kind: Namespace
  metadata:
    name: restricted
    labels:
      pod-security.kubernetes.io/enforce: restricted
      pod-security.kubernetes.io/warn: restricted
      pod-security.kubernetes.io/audit: restricted
- apiVersion: v1
  kind: Namespace
  metadata:
    name: warned
    labels: {pod-security.kubernetes.io/warn: baseline, pod-security.kubernetes.io/audit: restricted}
- {apiVersion: v1, kind: Namespace, metadata: {name: strict, labels: {rampart.dev/enforce: baseline}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: untrusted, labels: {rampart.dev/untrusted: "true"}}}
- apiVersion: v1
  kind: Namespace
  metadata:
    name: pinned
    annotations: {scheduler.alpha.kubernetes.io/node-selector: "pool=blue"}
"#;

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: priv, namespace: plain}
spec: {containers: [{name: app, image: "nginx:1.25", securityContext: {privileged: true}}]}
---
apiVersion: v1
kind: Pod
metadata: {name: hostpid, namespace: plain}
spec: {hostPID: true, containers: [{name: app, image: "nginx:1.25"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: plain}
spec: {containers: [{name: app, image: "nginx:1.25"}]}
"#;

/// A running `rampart serve`.
struct Server {
    child: Child,
    addr: SocketAddr,
    metrics_addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    pki: Pki,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(config: &str) -> Self {
        Self::start_with(config, &[])
    }

    fn start_with(config: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path()).unwrap();
        let p = |name: &str| dir.path().join(name);
        std::fs::write(p("config.yaml"), config).unwrap();
        std::fs::write(p("namespaces.yaml"), NAMESPACES).unwrap();
        std::fs::write(p("pods.yaml"), PODS).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
        cmd.arg("serve")
            .args(["--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(pki.cert_path())
            .arg("--tls-key")
            .arg(pki.key_path())
            .arg("--config")
            .arg(p("config.yaml"))
            .arg("--namespaces")
            .arg(p("namespaces.yaml"))
            .arg("--pods")
            .arg(p("pods.yaml"))
            .args(["--reload-interval", "100ms", "--worker-threads", "2"])
            .args(extra)
            .env_remove("RAMPART_NAMESPACE")
            .env_remove("RAMPART_CONFIG")
            .env_remove("RAMPART_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn rampart serve");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Self {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            metrics_addr: "127.0.0.1:1".parse().unwrap(),
            lines,
            pki,
            dir,
        };
        let listening =
            server.wait_for_log(|v| v["message"] == "listening", Duration::from_secs(30));
        server.addr = listening["addr"].as_str().unwrap().parse().unwrap();
        server.metrics_addr = listening["metrics_addr"].as_str().unwrap().parse().unwrap();
        server.wait_for_log(|v| v["message"] == "ready", Duration::from_secs(30));
        server
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The first JSON log line matching `pred`, waiting up to `timeout`.
    fn wait_for_log(&mut self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        let end = Instant::now() + timeout;
        loop {
            if let Some(v) = self.find_log(&pred) {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("rampart serve exited with {status}:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < end,
                "no such log line within {timeout:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn find_log(&self, pred: &impl Fn(&Value) -> bool) -> Option<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| pred(v))
    }

    fn count_logs(&self, pred: impl Fn(&Value) -> bool) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| pred(v))
            .count()
    }

    fn log_text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The decision line of a review.
    fn decision(&mut self, uid: &str) -> Value {
        let uid = uid.to_owned();
        self.wait_for_log(
            move |v| v["target"] == "rampart::decision" && v["uid"] == uid.as_str(),
            Duration::from_secs(10),
        )
    }

    fn client(&self) -> Client {
        Client::connect(self.addr, client_config(&self.pki.ca_pem, None).unwrap()).unwrap()
    }

    fn validate(&self, review: &Review) -> Value {
        self.client().review("/validate", &review.json()).unwrap()
    }

    fn mutate(&self, review: &Review) -> Value {
        self.client().review("/mutate", &review.json()).unwrap()
    }

    fn metrics(&self) -> String {
        let r = http_get(self.metrics_addr, "/metrics").unwrap();
        assert_eq!(r.status, 200);
        r.text()
    }

    /// The value of one metric sample line (`name{labels}`), 0 when absent.
    fn metric(&self, sample: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|r| r.trim().parse().ok()))
            .unwrap_or(0.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const QUIET: &str = "bestPractices: {mode: off}\nrules: {image-tag-latest: off}\n";

fn privileged_pod(ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.25", "securityContext": {"privileged": true}}]}})
}

/// Writes as Kubernetes updates a mounted ConfigMap (a rename), so the
/// server's poll never sees a half-written file and reloads once.
fn write_atomic(path: PathBuf, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, &path)
}

fn annotations(resp: &Value) -> serde_json::Map<String, Value> {
    resp["auditAnnotations"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn pod_security_enforce_warn_audit() {
    let mut s = Server::start(QUIET);
    let review = Review::of("CREATE", privileged_pod("restricted"));
    let r = s.validate(&review);
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 403);
    assert_eq!(r["status"]["reason"], "Forbidden");
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(r#"pods "p" is forbidden: violates PodSecurity "restricted:latest": privileged (container "app" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities"#),
        "{msg}"
    );
    assert!(r.get("warnings").is_none(), "no warnings on a denial: {r}");
    assert_eq!(annotations(&r)["enforce-policy"], "restricted:latest");
    let d = s.decision(review.uid());
    assert_eq!(d["result"], "denied");
    assert_eq!(d["code"], 403);
    assert_eq!(
        d["rules"],
        json!([{"rule": "pod-security", "mode": "enforce"}, {"rule": "pod-security", "mode": "audit"}])
    );

    let r = s.validate(&Review::of("CREATE", privileged_pod("warned")));
    assert_eq!(r["allowed"], true);
    assert_eq!(r["warnings"].as_array().unwrap().len(), 1);
    assert!(
        r["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with(r#"would violate PodSecurity "baseline:latest": privileged"#)
    );
    assert!(
        annotations(&r)["audit-violations"]
            .as_str()
            .unwrap()
            .starts_with(r#"would violate PodSecurity "restricted:latest""#)
    );

    let r = s.validate(&Review::of("CREATE", restricted_pod("good", "restricted")));
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r.get("warnings").is_none());
}

#[test]
fn rampart_label_enforces_on_workloads() {
    let s = Server::start(QUIET);
    let bad = deployment("web", "strict", &privileged_pod("strict"));
    let r = s.validate(&Review::of("CREATE", bad.clone()));
    assert_eq!(r["allowed"], false);
    assert!(r["status"]["message"].as_str().unwrap().starts_with(
        r#"deployments.apps "web" is forbidden: violates PodSecurity "baseline:latest": privileged"#
    ));
    // Upstream labels only warn for workloads.
    let r = s.validate(&Review::of(
        "CREATE",
        deployment("web", "restricted", &privileged_pod("x")),
    ));
    assert_eq!(r["allowed"], true);
    assert_eq!(r["warnings"].as_array().unwrap().len(), 1);
}

#[test]
fn image_and_best_practice_rules() {
    let s = Server::start(
        "bestPractices: {mode: warn}\nimages: {allowedRegistries: [ghcr.io/acme], requireDigestIn: [pinned]}\n",
    );
    let r = s.validate(&Review::of(
        "CREATE",
        pod("a", "plain", "docker.io/nginx:1.25"),
    ));
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("image-registry-not-allowed: ")
    );
    let r = s.validate(&Review::of("CREATE", pod("a", "plain", "ghcr.io/acme/app")));
    assert_eq!(r["allowed"], true);
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.starts_with("image-tag-latest: ")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("resources-missing-limits: ")),
        "{warnings:?}"
    );
    let r = s.validate(&Review::of(
        "CREATE",
        pod("a", "pinned", "ghcr.io/acme/app:1.0"),
    ));
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("image-digest-required: ")
    );
    let r = s.validate(&Review::of("CREATE", restricted_pod("a", "pinned")));
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r.get("warnings").is_none(), "{r}");
}

#[test]
fn sandbox_rules() {
    let s = Server::start(QUIET);
    let mut p = privileged_pod("plain");
    p["spec"]["runtimeClassName"] = json!("kata");
    let r = s.validate(&Review::of("CREATE", p));
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("sandbox-privileged: ")
    );
    let r = s.validate(&Review::of("CREATE", privileged_pod("untrusted")));
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("untrusted-namespace-without-sandbox: ")
    );
}

#[test]
fn mutations_patch_the_raw_object() {
    let s = Server::start(
        r#"
mutations:
  alwaysPullImages: true
  securityContext: true
  defaultResources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
  defaultTolerationSeconds: 300
  podNodeSelector: true
  untrustedRuntimeClass: kata
"#,
    );
    let mut object = pod("p", "pinned", "nginx:1.25");
    object["spec"]["someFutureField"] = json!({"x": [1, 2]});
    object["metadata"]["annotations"] = json!({"example.com/keep": "yes"});
    let review = Review::of("CREATE", object.clone());
    let r = s.mutate(&review);
    assert_eq!(r["allowed"], true);
    assert_eq!(r["patchType"], "JSONPatch");
    let out = patched(&object, &r);
    assert_eq!(out["spec"]["someFutureField"], json!({"x": [1, 2]}));
    assert_eq!(out["metadata"]["annotations"]["example.com/keep"], "yes");
    let c = &out["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(
        c["securityContext"],
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}})
    );
    assert_eq!(
        out["spec"]["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(out["spec"]["tolerations"].as_array().unwrap().len(), 2);
    assert_eq!(out["spec"]["tolerations"][0]["tolerationSeconds"], 300);
    assert_eq!(out["spec"]["nodeSelector"], json!({"pool": "blue"}));
    let mut d = s;
    let log = d.decision(review.uid());
    assert_eq!(log["result"], "patched");
    assert!(log["patch_ops"].as_u64().unwrap() >= 6);

    // Untrusted namespace: Kata.
    let object = pod("p", "untrusted", "nginx:1.25");
    let r = d.mutate(&Review::of("CREATE", object.clone()));
    assert_eq!(patched(&object, &r)["spec"]["runtimeClassName"], "kata");
    // Conflicting node selector: denied by the mutating webhook.
    let mut object = pod("p", "pinned", "nginx:1.25");
    object["spec"]["nodeSelector"] = json!({"pool": "red"});
    let r = d.mutate(&Review::of("CREATE", object));
    assert_eq!(r["allowed"], false);
    assert!(r.get("patch").is_none());
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("conflicts with its namespace node label selector")
    );
    // Nothing to change: no patch at all.
    let r = d.mutate(&Review::of("CREATE", out));
    assert!(r.get("patch").is_none(), "{r}");
}

#[test]
fn namespace_and_exec_protection() {
    let s = Server::start_with("", &["--namespace", "rampart-custom"]);
    for ns in ["kube-system", "default", "kube-public", "rampart-custom"] {
        let r = s.validate(&Review::delete_namespace(ns));
        assert_eq!(r["allowed"], false, "{ns}");
        assert_eq!(
            r["status"]["message"],
            format!(
                "namespaces \"{ns}\" is forbidden: this namespace is protected by Rampart and may not be deleted"
            )
        );
    }
    assert_eq!(
        s.validate(&Review::delete_namespace("team-a"))["allowed"],
        true
    );

    let r = s.validate(&Review::connect("exec", "plain", "priv"));
    assert_eq!(
        r["status"]["message"],
        "pods \"priv\" is forbidden: cannot exec into or attach to a privileged container"
    );
    let r = s.validate(&Review::connect("attach", "plain", "hostpid"));
    assert_eq!(
        r["status"]["message"],
        "pods \"hostpid\" is forbidden: cannot exec into or attach to a container using host pid"
    );
    assert_eq!(
        s.validate(&Review::connect("exec", "plain", "web"))["allowed"],
        true
    );
    let r = s.validate(&Review::connect("exec", "plain", "unknown"));
    assert_eq!(
        r["allowed"], false,
        "pods not in the cache are denied by default"
    );
}

#[test]
fn request_rules_and_rate_limits() {
    let s = Server::start(
        r#"
bestPractices: {mode: off}
requestRules:
  - name: contractors-read-only
    groups: [contractors]
    namespaces: [plain]
    message: contractors may not change the plain namespace
rateLimit:
  perUser: {qps: 0.01, burst: 3}
  exemptGroups: ["system:masters"]
"#,
    );
    let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "plain"}, "data": {"k": "v"}});
    let r = s.validate(&Review::of("CREATE", cm("a")).user("carol", &["contractors"]));
    assert_eq!(r["allowed"], false);
    assert!(r["status"]["message"].as_str().unwrap().starts_with(
        "contractors-read-only: contractors may not change the plain namespace (user \"carol\", CREATE configmaps in namespace \"plain\")"
    ));
    // carol's first request used one token; two more pass, then 429.
    let mut c = s.client();
    for i in 0..2 {
        let r = c
            .review(
                "/validate",
                &Review::of("CREATE", cm(&format!("x{i}")))
                    .namespace("other")
                    .user("carol", &[])
                    .json(),
            )
            .unwrap();
        assert_eq!(r["allowed"], true, "{r}");
    }
    let r = c
        .review(
            "/validate",
            &Review::of("CREATE", cm("y"))
                .namespace("other")
                .user("carol", &[])
                .json(),
        )
        .unwrap();
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 429);
    assert_eq!(r["status"]["reason"], "TooManyRequests");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("user \"carol\" is over its admission rate limit")
    );
    // Other users and exempt groups are unaffected.
    let r = c
        .review(
            "/validate",
            &Review::of("CREATE", cm("z"))
                .namespace("other")
                .user("dave", &[])
                .json(),
        )
        .unwrap();
    assert_eq!(r["allowed"], true);
    for _ in 0..5 {
        let r = c
            .review(
                "/validate",
                &Review::of("CREATE", cm("z"))
                    .namespace("other")
                    .user("root", &["system:masters"])
                    .json(),
            )
            .unwrap();
        assert_eq!(r["allowed"], true);
    }
}

#[test]
fn lockout_exclusions() {
    let mut s = Server::start_with(
        "excludedNamespaces: [kube-system, kube-node-lease, infra]\n",
        &["--namespace", "rampart-custom"],
    );
    for ns in ["kube-system", "kube-node-lease", "rampart-custom", "infra"] {
        let review =
            Review::of("CREATE", privileged_pod(ns)).user("system:node:n1", &["system:nodes"]);
        let r = s.validate(&review);
        assert_eq!(r["allowed"], true, "{ns}");
        assert!(
            r.get("warnings").is_none() && r.get("auditAnnotations").is_none(),
            "{r}"
        );
        assert_eq!(s.decision(review.uid())["result"], "excluded");
        let r = s.mutate(&Review::of("CREATE", privileged_pod(ns)));
        assert!(r.get("patch").is_none());
    }
    // Not excluded: evaluated.
    let review = Review::of("CREATE", privileged_pod("restricted"));
    assert_eq!(s.validate(&review)["allowed"], false);
    // A kind no rule matches is answered without evaluation.
    let review = Review::of(
        "UPDATE",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "restricted"}}),
    );
    assert_eq!(s.validate(&review)["allowed"], true);
    assert_eq!(s.decision(review.uid())["result"], "unmatched");
}

#[test]
fn decision_log_has_no_secrets() {
    let mut s = Server::start(
        "requestRules: [{name: audit-secrets, mode: audit, resources: [secrets], apiGroups: ['']}]\n",
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "plain"},
        "data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "TOPSECRET-TOKEN-VALUE"}});
    let review = Review::of("CREATE", secret).user("alice", &["developers"]);
    let r = s.validate(&review);
    assert_eq!(r["allowed"], true);
    let mut p = pod("p", "plain", "nginx:1.25");
    p["spec"]["containers"][0]["env"] = json!([{"name": "API_KEY", "value": "SUPERSECRET-ENV"}]);
    let pod_review = Review::of("CREATE", p);
    s.validate(&pod_review);
    let d = s.decision(review.uid());
    for field in [
        "timestamp",
        "uid",
        "user",
        "groups",
        "operation",
        "kind",
        "namespace",
        "name",
        "result",
        "rules",
        "latency_us",
    ] {
        assert!(d.get(field).is_some(), "decision line lacks {field}: {d}");
    }
    assert_eq!(d["user"], "alice");
    assert_eq!(d["groups"], json!(["developers"]));
    assert_eq!(d["kind"], "Secret");
    assert_eq!(d["name"], "db");
    assert_eq!(
        d["rules"],
        json!([{"rule": "audit-secrets", "mode": "audit"}])
    );
    s.decision(pod_review.uid());
    let text = s.log_text();
    for secret in [
        "aHVudGVyMg==",
        "TOPSECRET-TOKEN-VALUE",
        "SUPERSECRET-ENV",
        "hunter2",
    ] {
        assert!(!text.contains(secret), "log contains {secret}");
    }
}

fn raw_tls(s: &Server) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(s.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ClientConnection::new(
        client_config(&s.pki.ca_pem, None).unwrap(),
        "localhost".try_into().unwrap(),
    )
    .unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn bad_input_gets_clear_errors() {
    let s = Server::start("");
    let mut c = s.client();
    let review = Review::of("CREATE", pod("p", "plain", "nginx:1"));
    let status = |c: &mut Client, body: &[u8]| {
        let r = c.post_json("/validate", body).unwrap();
        (r.status, r.text())
    };
    // Too large by Content-Length: refused before the body is sent.
    let mut t = raw_tls(&s);
    write!(t, "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", 3 * 1024 * 1024 + 1).unwrap();
    let r = rampart_webhook::testing::read_response(&mut t).unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("over the limit of 3145728 bytes"));
    // Too large without Content-Length (chunked): refused while reading.
    let mut t = raw_tls(&s);
    write!(t, "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..4 {
        if write!(t, "{:x}\r\n", chunk.len()).is_err()
            || t.write_all(&chunk).is_err()
            || t.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = t.write_all(b"0\r\n\r\n");
    let r = rampart_webhook::testing::read_response(&mut t).unwrap();
    assert_eq!(r.status, 413);

    let (code, text) = status(&mut c, b"{not json");
    assert_eq!(code, 400);
    assert!(text.contains("not a JSON AdmissionReview"), "{text}");
    let (code, text) = status(&mut c, b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": \"AdmissionReview\", \"x\": \"\xff\xfe\"}");
    assert_eq!(code, 400);
    assert!(text.contains("UTF-8"), "{text}");
    let mut v1beta1 = review.json();
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (code, text) = status(&mut c, &serde_json::to_vec(&v1beta1).unwrap());
    assert_eq!(code, 400);
    assert!(text.contains("v1beta1"), "{text}");
    let mut no_object = review.json();
    no_object["request"]["object"] = Value::Null;
    let (code, text) = status(&mut c, &serde_json::to_vec(&no_object).unwrap());
    assert_eq!(code, 400);
    assert!(text.contains("no object"), "{text}");
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let body = serde_json::to_string(&review.json()).unwrap().replace(
        "\"image\":\"nginx:1\"",
        &format!("\"image\":\"nginx:1\",\"x\":{deep}"),
    );
    let (code, text) = status(&mut c, body.as_bytes());
    assert_eq!(code, 400);
    assert!(text.contains("nested too deeply"), "{text}");
    let r = c
        .request(
            "POST",
            "/validate",
            &[("Content-Type", "text/plain")],
            b"{}",
        )
        .unwrap();
    assert_eq!(r.status, 415);
    let r = c.request("GET", "/validate", &[], b"").unwrap();
    assert_eq!(r.status, 405);
    let r = c.request("POST", "/nope", &[], b"").unwrap();
    assert_eq!(r.status, 404);
    // After all that, the same connection still answers reviews.
    let r = c.review("/validate", &review.json()).unwrap();
    assert_eq!(r["allowed"], true);
    assert!(
        s.metric("rampart_admission_requests_total{endpoint=\"validate\",result=\"invalid\"}")
            >= 7.0
    );
}

#[test]
fn slow_clients_are_cut_off() {
    let s = Server::start_with("", &["--header-read-timeout", "1s"]);
    // Slowloris: headers never finish.
    let mut t = raw_tls(&s);
    t.write_all(b"POST /validate HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let start = Instant::now();
    // Meanwhile, others are served promptly.
    let t0 = Instant::now();
    assert_eq!(
        s.validate(&Review::of("CREATE", pod("p", "plain", "nginx:1")))["allowed"],
        true
    );
    assert!(t0.elapsed() < Duration::from_millis(500));
    let mut buf = [0u8; 256];
    let n = t.read(&mut buf).unwrap_or(0);
    let waited = start.elapsed();
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );

    // A body that never arrives: 408 at the review's deadline (timeout=1s → 800 ms).
    let mut t = raw_tls(&s);
    write!(t, "POST /validate?timeout=1s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"apiVersion\"").unwrap();
    let start = Instant::now();
    let r = rampart_webhook::testing::read_response(&mut t).unwrap();
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn tls_garbage_and_plain_http_do_not_hurt() {
    let s = Server::start("");
    for junk in [
        &b"\x16\x03\x01\x00\x05hello-garbage"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0u8; 4096],
    ] {
        let mut tcp = TcpStream::connect(s.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = tcp.write_all(junk);
        let mut buf = Vec::new();
        let _ = tcp.read_to_end(&mut buf);
    }
    // Connect and say nothing: the handshake timeout (5 s) frees it; others go on.
    let _idle = TcpStream::connect(s.addr).unwrap();
    assert_eq!(
        s.validate(&Review::of("CREATE", pod("p", "plain", "nginx:1")))["allowed"],
        true
    );
    assert!(s.metric("rampart_tls_handshake_errors_total") >= 3.0);
}

#[test]
fn connection_limit_queues_extra_connections() {
    let s = Server::start_with("", &["--max-connections", "3"]);
    let mut held: Vec<Client> = (0..3).map(|_| s.client()).collect();
    // A fourth connection is accepted by the kernel but not served yet.
    let addr = s.addr;
    let config = client_config(&s.pki.ca_pem, None).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let waiter = std::thread::spawn(move || {
        let mut c = Client::connect(addr, config).unwrap();
        flag.store(true, Ordering::SeqCst);
        c.review(
            "/validate",
            &Review::of("CREATE", pod("p", "plain", "nginx:1")).json(),
        )
        .unwrap()
    });
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !done.load(Ordering::SeqCst),
        "the fourth connection was served over the limit"
    );
    // Held connections still work.
    assert_eq!(
        held[0]
            .review(
                "/validate",
                &Review::of("CREATE", pod("p", "plain", "nginx:1")).json()
            )
            .unwrap()["allowed"],
        true
    );
    drop(held.pop());
    let r = waiter.join().unwrap();
    assert_eq!(r["allowed"], true);
}

#[test]
fn client_certificates_when_required() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path()).unwrap();
    let ca = pki.client_ca_path();
    let s = Server::start_with("", &["--client-ca", ca.to_str().unwrap()]);
    // s has its own PKI; the client CA file is from `pki`, and so is the client certificate.
    let review = Review::of("CREATE", pod("p", "plain", "nginx:1"));
    let without = Client::connect(s.addr, client_config(&s.pki.ca_pem, None).unwrap())
        .and_then(|mut c| c.review("/validate", &review.json()));
    assert!(without.is_err(), "served without a client certificate");
    let with = client_config(
        &s.pki.ca_pem,
        Some((&pki.client_cert_pem, &pki.client_key_pem)),
    )
    .unwrap();
    let mut c = Client::connect(s.addr, with).unwrap();
    assert_eq!(
        c.review("/validate", &review.json()).unwrap()["allowed"],
        true
    );
    // A certificate from another CA is refused.
    let other = s.pki.client_cert_pem.clone();
    let wrong = client_config(&s.pki.ca_pem, Some((&other, &s.pki.client_key_pem))).unwrap();
    let r = Client::connect(s.addr, wrong).and_then(|mut c| c.review("/validate", &review.json()));
    assert!(r.is_err());
}

#[test]
fn tls12_and_http2_work() {
    let s = Server::start(QUIET);
    // Only TLS 1.2 offered.
    let tls12 = client_config_versions(&s.pki.ca_pem, None, &[&rustls::version::TLS12]).unwrap();
    let mut c = Client::connect(s.addr, tls12).unwrap();
    let review = Review::of("CREATE", privileged_pod("restricted"));
    assert_eq!(
        c.review("/validate", &review.json()).unwrap()["allowed"],
        false
    );
    let (status, body, alpn) = h2_post(
        s.addr,
        &s.pki.ca_pem,
        "/validate?timeout=10s",
        review.body(),
    )
    .unwrap();
    assert_eq!(alpn.as_deref(), Some("h2"));
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["response"]["allowed"], false);
}

#[test]
fn health_readiness_and_metrics() {
    let s = Server::start("");
    assert_eq!(http_get(s.metrics_addr, "/healthz").unwrap().status, 200);
    assert_eq!(http_get(s.metrics_addr, "/readyz").unwrap().text(), "ok\n");
    let mut c = s.client();
    assert_eq!(c.request("GET", "/healthz", &[], b"").unwrap().status, 200);
    assert_eq!(c.request("GET", "/readyz", &[], b"").unwrap().status, 200);
    assert_eq!(
        c.request("GET", "/metrics", &[], b"").unwrap().status,
        404,
        "metrics stay off the webhook port"
    );
    s.validate(&Review::of("CREATE", privileged_pod("restricted")));
    s.mutate(&Review::of("CREATE", privileged_pod("plain")));
    let m = s.metrics();
    for want in [
        "rampart_admission_requests_total{endpoint=\"validate\",result=\"denied\"} 1",
        "rampart_admission_request_duration_seconds_bucket{le=",
        "rampart_admission_rule_hits_total{rule=\"pod-security\",mode=\"enforce\"} 1",
        "rampart_admission_rule_duration_seconds_count{rule=\"pod-security\"}",
        "rampart_policy_reload_errors_total{source=\"config\"} 0",
        "rampart_policy_rules ",
        "rampart_connections_active ",
        "rampart_log_lines_dropped 0",
    ] {
        assert!(m.contains(want), "metrics lack {want}:\n{m}");
    }
}

/// Sends reviews in a loop on keep-alive connections (reconnecting every 20
/// requests) until `stop`; counts successes and failures.
fn load(
    s: &Server,
    stop: Arc<AtomicBool>,
    review: Value,
) -> (
    std::thread::JoinHandle<()>,
    Arc<AtomicUsize>,
    Arc<Mutex<Vec<String>>>,
) {
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let (addr, ca) = (s.addr, s.pki.ca_pem.clone());
    let (ok2, failures2) = (ok.clone(), failures.clone());
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let result =
                Client::connect(addr, client_config(&ca, None).unwrap()).and_then(|mut c| {
                    for _ in 0..20 {
                        c.review("/validate", &review)?;
                        ok2.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(())
                });
            if let Err(e) = result {
                failures2.lock().unwrap().push(format!("{e:#}"));
            }
        }
    });
    (handle, ok, failures)
}

#[test]
fn config_hot_reload_while_requests_flow() {
    let mut s = Server::start("bestPractices: {mode: off}\nrules: {image-tag-latest: audit}\n");
    let latest = pod("p", "plain", "nginx");
    let stop = Arc::new(AtomicBool::new(false));
    let (handle, ok, failures) = load(
        &s,
        stop.clone(),
        Review::of("CREATE", latest.clone()).json(),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s.validate(&Review::of("CREATE", latest.clone()))["allowed"],
        true
    );

    write_atomic(
        s.path("config.yaml"),
        "bestPractices: {mode: off}\nrules: {image-tag-latest: enforce}\n",
    )
    .unwrap();
    s.wait_for_log(
        |v| v["message"] == "policies reloaded",
        Duration::from_secs(10),
    );
    let r = s.validate(&Review::of("CREATE", latest.clone()));
    assert_eq!(r["allowed"], false, "{r}");

    // A broken file: logged, counted, and the last good set stays.
    write_atomic(
        s.path("config.yaml"),
        "rules: {image-tag-latest: sometimes}\n",
    )
    .unwrap();
    s.wait_for_log(
        |v| v["message"] == "policy reload failed; keeping the policies in force",
        Duration::from_secs(10),
    );
    assert_eq!(
        s.metric("rampart_policy_reload_errors_total{source=\"config\"}"),
        1.0
    );
    assert_eq!(
        s.validate(&Review::of("CREATE", latest.clone()))["allowed"],
        false
    );
    assert_eq!(http_get(s.metrics_addr, "/readyz").unwrap().status, 200);

    // Namespace labels reload too.
    write_atomic(
        s.path("namespaces.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: plain, labels: {pod-security.kubernetes.io/enforce: baseline}}\n",
    )
    .unwrap();
    s.wait_for_log(
        |v| v["message"] == "namespaces reloaded",
        Duration::from_secs(10),
    );
    let r = s.validate(&Review::of("CREATE", privileged_pod("plain")));
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("violates PodSecurity \"baseline:latest\""),
        "{r}"
    );

    stop.store(true, Ordering::SeqCst);
    handle.join().unwrap();
    assert!(
        failures.lock().unwrap().is_empty(),
        "failed requests during reload: {:?}",
        failures.lock().unwrap()
    );
    assert!(
        ok.load(Ordering::SeqCst) > 50,
        "too few requests: {}",
        ok.load(Ordering::SeqCst)
    );
}

#[test]
fn certificate_hot_reload_while_requests_flow() {
    let mut s = Server::start("");
    let first = s.client().peer_certificate().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (handle, ok, failures) = load(
        &s,
        stop.clone(),
        Review::of("CREATE", pod("p", "plain", "nginx:1")).json(),
    );
    // A connection opened before the change keeps working after it.
    let mut old = s.client();
    std::thread::sleep(Duration::from_millis(300));

    let new_der = s.pki.write_server_cert("rampart-2").unwrap();
    assert_ne!(new_der, first);
    s.wait_for_log(
        |v| v["message"] == "TLS certificate reloaded",
        Duration::from_secs(10),
    );
    assert_eq!(
        s.client().peer_certificate().unwrap(),
        new_der,
        "new handshakes get the new certificate"
    );
    assert_eq!(
        old.review(
            "/validate",
            &Review::of("CREATE", pod("p", "plain", "nginx:1")).json()
        )
        .unwrap()["allowed"],
        true
    );

    // A key that does not match: the old pair stays in force.
    let (_, other_key) = s.pki.server_cert("mismatch").unwrap();
    std::fs::write(s.pki.key_path(), other_key).unwrap();
    s.wait_for_log(
        |v| v["message"] == "TLS reload failed; keeping the certificate in force",
        Duration::from_secs(10),
    );
    assert_eq!(s.client().peer_certificate().unwrap(), new_der);

    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    handle.join().unwrap();
    assert!(
        failures.lock().unwrap().is_empty(),
        "failed requests during reload: {:?}",
        failures.lock().unwrap()
    );
    assert!(ok.load(Ordering::SeqCst) > 50);
    assert_eq!(
        s.count_logs(|v| v["message"] == "TLS certificate reloaded"),
        1
    );
}

#[test]
fn on_timeout_allow_and_deny() {
    let review = Review::of("CREATE", privileged_pod("restricted"));
    let post = |s: &Server| {
        let r = s
            .client()
            .post_json("/validate?timeout=1s", &review.body())
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["response"].clone()
    };
    let mut s = Server::start_with("", &["--debug-eval-delay", "1200ms"]);
    let r = post(&s);
    assert_eq!(r["allowed"], true, "{r}");
    assert!(
        r["warnings"][0]
            .as_str()
            .unwrap()
            .contains("--on-timeout allow")
    );
    assert_eq!(s.decision(review.uid())["result"], "timeout");
    // Without ?timeout the deadline is 9 s: the delay fits and the pod is denied.
    let r = s.validate(&review);
    assert_eq!(r["allowed"], false);

    let s = Server::start_with(
        "",
        &["--debug-eval-delay", "1200ms", "--on-timeout", "deny"],
    );
    let r = post(&s);
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 504);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("--on-timeout deny")
    );
}

#[test]
fn bad_startup_config_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path()).unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "podSecurity: {defaults: {enforce: strict}}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["serve", "--addr", "127.0.0.1:0", "--metrics-addr", "off"])
        .arg("--tls-cert")
        .arg(pki.cert_path())
        .arg("--tls-key")
        .arg(pki.key_path())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("podSecurity.defaults.enforce"), "{err}");
}

fn webhook_config(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("webhook-config")
        .args(args)
        .env_remove("RAMPART_NAMESPACE")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn parse_yaml(text: &str) -> Vec<Value> {
    let loaded = rampart_manifest::Loader::new(rampart_manifest::Limits::default())
        .load_str("webhooks.yaml", text);
    assert!(loaded.issues.is_empty(), "{:?}\n{text}", loaded.issues);
    loaded.manifests.into_iter().map(|m| m.value).collect()
}

#[test]
fn webhook_config_is_lockout_proof() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (code, out, err) = webhook_config(&[
        "--url",
        "https://127.0.0.1:8443",
        "--ca-bundle-file",
        ca.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let docs = parse_yaml(&out);
    assert_eq!(docs.len(), 2);
    let (v, m) = (&docs[0], &docs[1]);
    assert_eq!(v["kind"], "ValidatingWebhookConfiguration");
    assert_eq!(m["kind"], "MutatingWebhookConfiguration");
    assert_eq!(
        m["webhooks"],
        json!([]),
        "no mutations configured, no mutating webhook"
    );
    let hooks = v["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2);
    let main = &hooks[0];
    assert_eq!(main["name"], "validate.rampart.dev");
    assert_eq!(main["admissionReviewVersions"], json!(["v1"]));
    assert_eq!(main["sideEffects"], "None");
    assert_eq!(main["timeoutSeconds"], 5);
    assert_eq!(main["failurePolicy"], "Ignore");
    assert_eq!(
        main["clientConfig"]["url"],
        "https://127.0.0.1:8443/validate"
    );
    use base64::Engine as _;
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(main["clientConfig"]["caBundle"].as_str().unwrap())
        .unwrap();
    assert_eq!(bundle, std::fs::read(&ca).unwrap());
    let expr = &main["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(expr["key"], "kubernetes.io/metadata.name");
    assert_eq!(expr["operator"], "NotIn");
    assert_eq!(
        expr["values"],
        json!(["kube-system", "kube-node-lease", "rampart-system"])
    );
    assert_eq!(
        main["matchConditions"][0]["expression"],
        "!request.userInfo.username.startsWith('system:node:')"
    );
    let rules = main["rules"].as_array().unwrap();
    let core = rules
        .iter()
        .find(|r| r["apiGroups"] == json!([""]))
        .unwrap();
    assert_eq!(
        core["resources"],
        json!([
            "pods",
            "pods/ephemeralcontainers",
            "podtemplates",
            "replicationcontrollers"
        ])
    );
    assert_eq!(core["operations"], json!(["CREATE", "UPDATE"]));
    assert!(rules.iter().any(|r| {
        r["apiGroups"] == json!(["apps"])
            && r["resources"]
                .as_array()
                .unwrap()
                .contains(&json!("deployments"))
    }));
    // Namespace protection has no namespace selector: it must see kube-system.
    let ns = &hooks[1];
    assert_eq!(ns["name"], "namespaces.validate.rampart.dev");
    assert!(ns.get("namespaceSelector").is_none());
    assert_eq!(
        ns["rules"],
        json!([{"apiGroups": [""], "apiVersions": ["*"], "operations": ["DELETE"], "resources": ["namespaces"], "scope": "*"}])
    );

    // Service mode, Fail, a config with mutations and exec protection.
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "excludedNamespaces: [kube-system, kube-node-lease, monitoring]\nmutations: {securityContext: true, defaultTolerationSeconds: 300}\n").unwrap();
    let (code, out, err) = webhook_config(&[
        "--failure-policy",
        "Fail",
        "--timeout-seconds",
        "3",
        "--namespace",
        "security",
        "--config",
        config.to_str().unwrap(),
        "--exec-protection",
        "--exclude-namespace",
        "extra",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let docs = parse_yaml(&out);
    let main = &docs[0]["webhooks"][0];
    assert_eq!(main["failurePolicy"], "Fail");
    assert_eq!(main["timeoutSeconds"], 3);
    assert_eq!(
        main["clientConfig"]["service"],
        json!({"namespace": "security", "name": "rampart", "path": "/validate", "port": 443})
    );
    assert_eq!(
        main["namespaceSelector"]["matchExpressions"][0]["values"],
        json!([
            "kube-system",
            "kube-node-lease",
            "monitoring",
            "security",
            "extra"
        ])
    );
    assert!(
        main["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["operations"] == json!(["CONNECT"])
                && r["resources"] == json!(["pods/attach", "pods/exec"]))
    );
    let mutating = &docs[1]["webhooks"][0];
    assert_eq!(mutating["name"], "mutate.rampart.dev");
    assert_eq!(mutating["reinvocationPolicy"], "IfNeeded");
    assert_eq!(mutating["clientConfig"]["service"]["path"], "/mutate");
    let core = mutating["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["apiGroups"] == json!([""]))
        .unwrap();
    assert_eq!(core["operations"], json!(["CREATE"]));
    assert!(
        core["resources"]
            .as_array()
            .unwrap()
            .contains(&json!("pods"))
    );

    let (code, _, err) = webhook_config(&["--timeout-seconds", "31"]);
    assert_eq!(code, Some(2), "{err}");
}

const USER_POLICIES: &str = r#"
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: replica-ceiling}
spec:
  matchConstraints:
    kinds: [apps/Deployment]
    operations: [CREATE, UPDATE]
  validations:
  - name: at-most-100
    expression: "object.spec.replicas <= 100"
    messageExpression: "'replicas ' + string(object.spec.replicas) + ' exceed 100'"
---
apiVersion: rampart.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: team-label}
spec:
  matchConstraints:
    kinds: [core/Pod]
    operations: [CREATE]
  mutations:
  - name: default-team
    patchType: Merge
    expression: >-
      has(object.metadata.labels) && 'team' in object.metadata.labels
      ? {} : {'metadata': {'labels': {'team': 'unassigned'}}}
"#;

fn replicas(n: i64) -> Value {
    let mut d = deployment("web", "plain", &restricted_pod("web", "plain"));
    d["spec"]["replicas"] = json!(n);
    d
}

#[test]
fn user_cel_policies_deny_warn_mutate_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("user.yaml"), USER_POLICIES).unwrap();
    // The ValidatingAdmissionPolicy example with ConfigMap params: `plain`
    // is not labelled environment=test, so its binding warns above 50.
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policies/examples/max-replicas.yaml"
        ),
        policies.join("max-replicas.yaml"),
    )
    .unwrap();
    let mut s = Server::start_with(QUIET, &["--policy", policies.to_str().unwrap()]);

    let r = s.validate(&Review::of("CREATE", replicas(3)));
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r.get("warnings").is_none(), "{r}");

    let r = s.validate(&Review::of("CREATE", replicas(60)));
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(
        r["warnings"],
        json!([
            "Validation failed for ValidatingAdmissionPolicy 'max-replicas' with binding \
             'max-replicas-other': replicas must be at most 50 in namespace plain"
        ]),
        "{r}"
    );

    let review = Review::of("CREATE", replicas(120));
    let r = s.validate(&review);
    assert_eq!(r["allowed"], false, "{r}");
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("replicas 120 exceed 100"), "{message}");
    assert!(message.contains("replica-ceiling"), "{message}");
    assert_eq!(r["status"]["code"], 403);
    let log = s.decision(review.uid());
    assert_eq!(log["result"], "denied");
    assert!(
        log.to_string().contains("replica-ceiling/at-most-100"),
        "{log}"
    );
    // The object's author cannot exempt it from a denying policy with an
    // ignore annotation, on the object or on its pod template.
    for at in ["/metadata", "/spec/template/metadata"] {
        let mut annotated = replicas(120);
        annotated.pointer_mut(at).unwrap()["annotations"] =
            json!({"rampart.dev/ignore-replica-ceiling.at-most-100": "we need them"});
        let r = s.validate(&Review::of("CREATE", annotated));
        assert_eq!(r["allowed"], false, "ignore annotation at {at}: {r}");
    }
    // A kind no user policy matches is not evaluated by them.
    let r = s.validate(&Review::of(
        "CREATE",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "plain"}}),
    ));
    assert_eq!(r["allowed"], true);

    // Mutation: raw object keeps unknown fields; the label is added.
    let mut object = pod("p", "plain", "nginx:1.25");
    object["spec"]["someFutureField"] = json!(1);
    let r = s.mutate(&Review::of("CREATE", object.clone()));
    assert_eq!(r["allowed"], true, "{r}");
    let out = patched(&object, &r);
    assert_eq!(out["metadata"]["labels"]["team"], "unassigned");
    assert_eq!(out["spec"]["someFutureField"], 1);
    let mut labelled = object.clone();
    labelled["metadata"]["labels"] = json!({"team": "web"});
    let r = s.mutate(&Review::of("CREATE", labelled));
    assert!(r.get("patch").is_none(), "{r}");

    // A broken policy: rejected with its location, counted, and the last
    // good set stays in force.
    write_atomic(
        policies.join("broken.yaml"),
        "apiVersion: rampart.dev/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: broken}\n\
         spec:\n  matchConstraints: {kinds: [apps/Deployment]}\n  validations:\n  \
         - expression: \"object.spec.replicas <=\"\n",
    )
    .unwrap();
    let failed = s.wait_for_log(
        |v| v["message"] == "policy reload failed; keeping the policies in force",
        Duration::from_secs(10),
    );
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("broken"), "{error}");
    assert!(error.contains("spec.validations[0].expression"), "{error}");
    assert_eq!(
        s.metric("rampart_policy_reload_errors_total{source=\"config\"}"),
        1.0
    );
    assert_eq!(
        s.validate(&Review::of("CREATE", replicas(120)))["allowed"],
        false
    );

    // Fixed, and the ceiling lowered: the new set is in force.
    std::fs::remove_file(policies.join("broken.yaml")).unwrap();
    write_atomic(
        policies.join("user.yaml"),
        USER_POLICIES
            .replace("<= 100", "<= 10")
            .replace("exceed 100", "exceed 10"),
    )
    .unwrap();
    s.wait_for_log(
        |v| v["message"] == "policies reloaded",
        Duration::from_secs(10),
    );
    let r = s.validate(&Review::of("CREATE", replicas(20)));
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("replicas 20 exceed 10"),
        "{r}"
    );
}

#[test]
fn webhook_config_routes_what_user_policies_match() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(
        &file,
        "apiVersion: rampart.dev/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: cm}\n\
         spec:\n  matchConstraints: {kinds: [core/ConfigMap], operations: [CREATE]}\n  \
         validations:\n  - expression: \"has(object.data)\"\n",
    )
    .unwrap();
    let (code, out, err) = webhook_config(&["--policy", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let docs = parse_yaml(&out);
    let rules = docs[0]["webhooks"][0]["rules"].as_array().unwrap();
    assert!(
        rules.iter().any(|r| r["apiGroups"] == json!([""])
            && r["operations"] == json!(["CREATE"])
            && r["resources"]
                .as_array()
                .unwrap()
                .contains(&json!("configmaps"))),
        "{out}"
    );
    let (_, without, _) = webhook_config(&[]);
    assert!(!without.contains("configmaps"), "{without}");
}
