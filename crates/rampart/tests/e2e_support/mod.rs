//! Shared helpers of the end-to-end tests (`e2e_*.rs`), which run against
//! a real kube-apiserver started by `e2e/run.sh` (it exports
//! `RAMPART_E2E_KUBECONFIG`). The tests are `#[ignore]`d so that
//! `cargo test --workspace` does not need a control plane; `e2e/run.sh`
//! runs them with `--ignored` and fails if the control plane cannot start.

#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const IGNORE_REASON: &str = "needs a control plane: run e2e/run.sh";

/// The admin kubeconfig of the control plane under test.
pub fn kubeconfig() -> PathBuf {
    match std::env::var_os("RAMPART_E2E_KUBECONFIG") {
        Some(p) => PathBuf::from(p),
        None => {
            panic!("RAMPART_E2E_KUBECONFIG is not set: run the end-to-end tests with e2e/run.sh")
        }
    }
}

pub fn kubectl_path() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

pub fn rampart_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rampart"))
}

/// Runs kubectl with the test kubeconfig and optional stdin.
pub fn kubectl_with(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(kubectl_path());
    cmd.arg("--kubeconfig")
        .arg(kubeconfig())
        .arg("--request-timeout=30s")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running kubectl");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().expect("waiting for kubectl")
}

pub fn kubectl(args: &[&str]) -> Output {
    kubectl_with(args, None)
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// kubectl that must succeed; returns stdout.
#[track_caller]
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {stderr}\n{stdout}"
    );
    stdout
}

#[track_caller]
pub fn apply(yaml: &str) -> String {
    let out = kubectl_with(&["apply", "-f", "-"], Some(yaml));
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "kubectl apply failed: {stderr}\n{yaml}"
    );
    stdout
}

/// kubectl get ... -o json, parsed.
#[track_caller]
pub fn get_json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl_ok(&all)).expect("kubectl printed JSON")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this run: `prefix-<pid>-<n>-<time>`.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 100_000;
    format!("{prefix}-{}-{n}-{t}", std::process::id())
}

/// Creates a fresh namespace (there is no namespace controller: deleted
/// namespaces stay Terminating, so every test makes its own).
pub fn fresh_namespace(prefix: &str) -> String {
    let ns = unique(prefix);
    kubectl_ok(&["create", "namespace", &ns]);
    ns
}

pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16, timeout: Duration) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_until(timeout, &format!("port {port}"), || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
}

/// Runs `rampart ARGS` against the test cluster; it must succeed. Returns stdout.
#[track_caller]
pub fn rampart_ok(args: &[&str]) -> String {
    let out = Command::new(rampart_bin())
        .args(args)
        .env("KUBECONFIG", kubeconfig())
        .output()
        .expect("running rampart");
    assert!(
        out.status.success(),
        "rampart {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("rampart printed UTF-8")
}

/// Applies Rampart's CRDs as `rampart crds` prints them and waits until
/// ClusterPolicies can be listed.
pub fn apply_crds() {
    apply(&rampart_ok(&["crds"]));
    wait_until(Duration::from_secs(30), "the ClusterPolicy CRD", || {
        kubectl(&["get", "clusterpolicies.rampart.dev"])
            .status
            .success()
    });
}

/// `rampart serve` on a free local port with `pki`'s serving certificate
/// and `extra` flags, started and listening; returns it and its address.
pub fn start_serve(
    dir: &Path,
    pki: &rampart_webhook::testing::Pki,
    extra: &[&str],
) -> (Proc, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let (cert, key) = (pki.cert_path(), pki.key_path());
    let mut args = vec![
        "serve",
        "--addr",
        &addr,
        "--metrics-addr",
        "off",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let serve = Proc::start("rampart-serve", &args, dir);
    wait_for_port(port, Duration::from_secs(30));
    (serve, addr)
}

/// A `rampart` process started by a test, killed when dropped. Its stderr
/// goes to a log file that is printed if the test fails.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Proc {
    pub fn start(name: &str, args: &[&str], dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(rampart_bin())
            .args(args)
            .env("KUBECONFIG", kubeconfig())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting rampart");
        Proc {
            child,
            log,
            name: name.to_owned(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as Kubernetes stops a pod, then wait (SIGKILL after 10 s).
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- log of {} ----\n{}", self.name, self.log_text());
        }
    }
}

/// Runs `f` when dropped (clean-up that must happen even when a test fails).
pub struct Cleanup<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for Cleanup<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

pub fn pod_yaml(ns: &str, name: &str, privileged: bool) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
spec:
  containers:
  - name: app
    image: registry.k8s.io/pause:3.10
    securityContext:
      privileged: {privileged}
"#
    )
}
