//! `rampart serve` (the admission webhook) and `rampart webhook-config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use rampart_admission::config::Config;
use rampart_admission::metrics::Metrics;
use rampart_admission::policy::user::UserPolicies;
use rampart_admission::policy::{PolicySet, PolicySource};
use rampart_admission::webhook_config::{
    ClientConfig, FailurePolicy, WebhookConfigOptions, render,
};
use rampart_webhook::ClusterOptions;
use rampart_webhook::tls::TlsFiles;
use rampart_webhook::{OnTimeout, ServeOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnTimeoutArg {
    Allow,
    Deny,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailurePolicyArg {
    #[value(name = "Ignore", alias = "ignore")]
    Ignore,
    #[value(name = "Fail", alias = "fail")]
    Fail,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    rampart_admission::duration::parse(s)
}

/// Runs the admission webhook: `POST /validate` and `POST /mutate` over TLS.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address of the HTTPS webhook listener (also serves /healthz and /readyz).
    #[arg(long, default_value = "0.0.0.0:8443", env = "RAMPART_ADDR")]
    pub addr: SocketAddr,
    /// Plain-HTTP address for /metrics, /healthz and /readyz; `off` disables it.
    #[arg(long, default_value = "127.0.0.1:9090", value_parser = parse_metrics_addr)]
    pub metrics_addr: MetricsAddr,
    /// PEM certificate chain of the server; reloaded when the file changes.
    #[arg(long, value_name = "FILE", env = "RAMPART_TLS_CERT")]
    pub tls_cert: PathBuf,
    /// PEM private key of the server; reloaded when the file changes.
    #[arg(long, value_name = "FILE", env = "RAMPART_TLS_KEY")]
    pub tls_key: PathBuf,
    /// PEM CA bundle: require client certificates signed by it (the API server's).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// YAML configuration of the built-in policies; reloaded on change (safe defaults without it).
    #[arg(long, value_name = "FILE", env = "RAMPART_CONFIG")]
    pub config: Option<PathBuf>,
    /// User policies: a file or directory of ClusterPolicy/Policy, ValidatingAdmissionPolicy
    /// and bindings (and their params); repeatable; reloaded on change, a broken set is
    /// rejected and the last good one stays in force.
    #[arg(long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// Wait this long at start for --namespaces, --pods and --policy files to appear
    /// (written by `rampart controller --sync-only` beside the webhook).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub startup_wait: Duration,
    /// Namespace objects (e.g. `kubectl get ns -o yaml`) whose labels drive Pod Security and more.
    #[arg(long, value_name = "FILE")]
    pub namespaces: Option<PathBuf>,
    /// Pod objects (e.g. `kubectl get pods -A -o yaml`) for exec/attach checks.
    #[arg(long, value_name = "FILE")]
    pub pods: Option<PathBuf>,
    /// Rampart's own namespace: always excluded from admission and protected from deletion.
    #[arg(long, default_value = "rampart-system", env = "RAMPART_NAMESPACE")]
    pub namespace: String,
    /// Answer when evaluation overruns the request's deadline.
    #[arg(long, value_enum, default_value_t = OnTimeoutArg::Allow)]
    pub on_timeout: OnTimeoutArg,
    /// How often the config, namespace, pod and certificate files are checked for changes.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub reload_interval: Duration,
    /// Most client connections open at once.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Largest request body, in bytes (larger: 413).
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Time allowed for an HTTP/1 request's headers (also the keep-alive idle limit).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Upper bound on one review, whatever the API server's `?timeout=` allows.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Time allowed for a TLS handshake.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub tls_handshake_timeout: Duration,
    /// Do not write a decision line per request.
    #[arg(long)]
    pub no_decision_log: bool,
    /// Log filter (`info`, `debug`, `rampart_admission=debug`).
    #[arg(long, default_value = "info", env = "RAMPART_LOG")]
    pub log: String,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub worker_threads: Option<usize>,
    /// Read Namespaces, Pods (for exec protection) and the cluster's policies (ClusterPolicy,
    /// Policy, ValidatingAdmissionPolicy and bindings, and their params) live from the API
    /// server through watches, instead of from --namespaces/--pods files.
    #[arg(long, conflicts_with_all = ["namespaces", "pods", "startup_wait"])]
    pub cluster: bool,
    /// Kubeconfig for --cluster (default: $KUBECONFIG, ~/.kube/config or the in-cluster
    /// service account).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// With --cluster: longest wait for one GET of a Namespace or Pod the watches have not
    /// delivered yet (a Namespace and its Pods applied together, exec right after a create).
    #[arg(long, default_value = "1s", value_parser = parse_duration, requires = "cluster")]
    pub read_through_timeout: Duration,
    /// Testing only: apply the --cluster watches' events this much later (exercises the
    /// read-through of objects the caches do not have yet).
    #[arg(long, hide = true, value_parser = parse_duration, requires = "cluster")]
    pub debug_watch_lag: Option<Duration>,
    /// Testing only: delay every evaluation (exercises --on-timeout).
    #[arg(long, hide = true, value_parser = parse_duration)]
    pub debug_eval_delay: Option<Duration>,
}

#[derive(Clone, Copy, Debug)]
pub struct MetricsAddr(pub Option<SocketAddr>);

fn parse_metrics_addr(s: &str) -> Result<MetricsAddr, String> {
    if s == "off" {
        return Ok(MetricsAddr(None));
    }
    s.parse()
        .map(|a| MetricsAddr(Some(a)))
        .map_err(|e| format!("{e}"))
}

pub fn run(args: ServeArgs) -> Result<u8> {
    let mut opts = ServeOptions::new(TlsFiles {
        cert: args.tls_cert,
        key: args.tls_key,
        client_ca: args.client_ca,
    });
    opts.addr = args.addr;
    opts.metrics_addr = args.metrics_addr.0;
    opts.config = args.config;
    opts.policies = args.policies;
    opts.startup_wait = args.startup_wait;
    opts.namespaces = args.namespaces;
    opts.pods = args.pods;
    opts.namespace = args.namespace;
    opts.on_timeout = match args.on_timeout {
        OnTimeoutArg::Allow => OnTimeout::Allow,
        OnTimeoutArg::Deny => OnTimeout::Deny,
    };
    opts.reload_interval = args.reload_interval;
    opts.max_connections = args.max_connections;
    opts.max_body_bytes = args.max_body_bytes;
    opts.header_read_timeout = args.header_read_timeout;
    opts.request_timeout = args.request_timeout;
    opts.tls_handshake_timeout = args.tls_handshake_timeout;
    opts.decision_log = !args.no_decision_log;
    opts.log_filter = args.log;
    opts.worker_threads = args.worker_threads;
    opts.debug_eval_delay = args.debug_eval_delay;
    opts.cluster = args.cluster.then_some(ClusterOptions {
        kubeconfig: args.kubeconfig,
        pods: true,
        read_through_timeout: args.read_through_timeout,
        debug_watch_lag: args.debug_watch_lag,
    });
    rampart_webhook::run(opts)?;
    Ok(0)
}

/// Prints the ValidatingWebhookConfiguration and MutatingWebhookConfiguration for `rampart serve`.
#[derive(Args, Debug)]
pub struct WebhookConfigArgs {
    /// Name of both configuration objects.
    #[arg(long, default_value = "rampart")]
    pub name: String,
    /// Rampart's namespace: excluded from admission and where its Service lives.
    #[arg(long, default_value = "rampart-system", env = "RAMPART_NAMESPACE")]
    pub namespace: String,
    /// The Service in front of `rampart serve`.
    #[arg(long, default_value = "rampart")]
    pub service_name: String,
    #[arg(long, default_value_t = 443)]
    pub service_port: u16,
    /// Reach the webhook at this URL (e.g. https://127.0.0.1:8443) instead of a Service.
    #[arg(long, conflicts_with_all = ["service_name", "service_port"])]
    pub url: Option<String>,
    /// PEM CA bundle that signed the serving certificate (written base64 as caBundle).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle_file: Option<PathBuf>,
    /// Webhook timeout, 1 to 30 seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub timeout_seconds: u32,
    /// What the API server does when Rampart cannot be reached: Ignore (default; never locks
    /// the cluster out) or Fail (nothing unchecked gets in; run several replicas).
    #[arg(long, value_enum, default_value_t = FailurePolicyArg::Ignore)]
    pub failure_policy: FailurePolicyArg,
    /// The `rampart serve` configuration, so the rules match what it evaluates.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// User policies `rampart serve --policy` loads, so the rules cover what they match.
    #[arg(long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// Also exclude this namespace (repeatable).
    #[arg(long = "exclude-namespace", value_name = "NAMESPACE")]
    pub exclude_namespaces: Vec<String>,
    /// Include exec/attach protection (needs `rampart serve --pods` or a pod cache).
    #[arg(long)]
    pub exec_protection: bool,
}

pub fn webhook_config(args: WebhookConfigArgs) -> Result<u8> {
    let config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let sources: Vec<Arc<dyn PolicySource>> = if args.policies.is_empty() {
        Vec::new()
    } else {
        vec![Arc::new(UserPolicies::new(args.policies.clone()))]
    };
    let set = PolicySet::build(
        config,
        &args.namespace,
        &Metrics::new(),
        args.exec_protection,
        &sources,
    )?;
    let ca_bundle = match &args.ca_bundle_file {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let client = match args.url {
        Some(url) => ClientConfig::Url(url),
        None => ClientConfig::Service {
            namespace: args.namespace.clone(),
            name: args.service_name,
            port: args.service_port,
        },
    };
    let opts = WebhookConfigOptions {
        name: args.name,
        client,
        ca_bundle,
        timeout_seconds: args.timeout_seconds,
        failure_policy: match args.failure_policy {
            FailurePolicyArg::Ignore => FailurePolicy::Ignore,
            FailurePolicyArg::Fail => FailurePolicy::Fail,
        },
        exclude_namespaces: args.exclude_namespaces,
    };
    print!("{}", render(&opts, &set)?);
    Ok(0)
}
