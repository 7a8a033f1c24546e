//! `rampart controller`: the in-cluster controller (see `rampart_controller::controller`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use rampart_admission::webhook_config::FailurePolicy;
use rampart_controller::controller::{Options, WebhookOptions, default_identity};

fn parse_duration(s: &str) -> Result<Duration, String> {
    rampart_admission::duration::parse(s)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailurePolicyArg {
    #[value(name = "Ignore", alias = "ignore")]
    Ignore,
    #[value(name = "Fail", alias = "fail")]
    Fail,
}

/// Runs the controller: CRDs, webhook certificates and configuration, background audit into
/// PolicyReports, Events; leader-elected on a Lease.
#[derive(Args, Debug)]
pub struct ControllerArgs {
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Rampart's namespace (the Lease and the certificate Secret live there).
    #[arg(long, default_value = "rampart-system", env = "RAMPART_NAMESPACE")]
    pub namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "rampart-controller")]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: $POD_NAME, else host-pid).
    #[arg(long)]
    pub identity: Option<String>,
    /// How long a Lease holds without renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// Do not install or update the CRDs.
    #[arg(long)]
    pub no_install_crds: bool,
    /// How often changed reports are written.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub report_interval: Duration,
    /// Most results listed in one report (its summary counts every result).
    #[arg(long, default_value_t = 1000)]
    pub max_results_per_report: usize,
    /// Do not publish Events on violations.
    #[arg(long)]
    pub no_events: bool,
    /// At most one Event per object this often.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub event_interval: Duration,
    /// At most this many Events per minute in all (a token bucket).
    #[arg(long, default_value_t = 60)]
    pub max_events_per_minute: u32,
    /// Also write the cluster's policies in force (and their parameter objects) to
    /// DIR/policies.yaml, for `rampart serve --policy DIR` outside the cluster. The
    /// managed webhook configurations do not need it: they follow the compiled policies.
    #[arg(long, value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Create and rotate the webhook's CA and serving certificate Secret and apply the
    /// webhook configurations with its CA bundle.
    #[arg(long)]
    pub manage_webhook: bool,
    /// Name of the webhook configurations.
    #[arg(long, default_value = "rampart")]
    pub webhook_name: String,
    /// The webhook Service.
    #[arg(long, default_value = "rampart-webhook")]
    pub webhook_service: String,
    #[arg(long, default_value_t = 443)]
    pub webhook_service_port: u16,
    /// The Secret holding the webhook's CA and serving certificate.
    #[arg(long, default_value = "rampart-webhook-tls")]
    pub webhook_secret: String,
    #[arg(long, value_enum, default_value_t = FailurePolicyArg::Ignore)]
    pub failure_policy: FailurePolicyArg,
    #[arg(long, default_value_t = 5)]
    pub webhook_timeout_seconds: u32,
    /// Include exec/attach protection in the webhook configuration.
    #[arg(long)]
    pub exec_protection: bool,
    /// The `rampart serve` configuration, so the webhook rules match it.
    #[arg(long, value_name = "FILE")]
    pub webhook_config: Option<PathBuf>,
    /// Also exclude this namespace from the webhooks (repeatable or comma-separated).
    #[arg(
        long = "exclude-namespace",
        value_name = "NAMESPACE",
        value_delimiter = ','
    )]
    pub exclude_namespaces: Vec<String>,
    /// cert-manager manages the Secret: only read its ca.crt.
    #[arg(long)]
    pub cert_manager: bool,
    /// Log filter.
    #[arg(long, default_value = "info", env = "RAMPART_LOG")]
    pub log: String,
}

pub fn run(args: ControllerArgs) -> Result<u8> {
    rampart_controller::init_logging(&args.log);
    let webhook = args.manage_webhook.then(|| WebhookOptions {
        name: args.webhook_name.clone(),
        service_name: args.webhook_service.clone(),
        service_port: args.webhook_service_port,
        secret_name: args.webhook_secret.clone(),
        failure_policy: match args.failure_policy {
            FailurePolicyArg::Ignore => FailurePolicy::Ignore,
            FailurePolicyArg::Fail => FailurePolicy::Fail,
        },
        timeout_seconds: args.webhook_timeout_seconds,
        exec_protection: args.exec_protection,
        config: args.webhook_config.clone(),
        exclude_namespaces: args
            .exclude_namespaces
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        cert_manager: args.cert_manager,
    });
    let opts = Options {
        namespace: args.namespace,
        lease_name: args.lease_name,
        identity: args.identity.unwrap_or_else(default_identity),
        lease_duration: args.lease_duration,
        lease_grace: (args.lease_duration / 3).max(Duration::from_secs(1)),
        install_crds: !args.no_install_crds,
        report_interval: args.report_interval,
        max_results: args.max_results_per_report,
        events: !args.no_events,
        event_interval: args.event_interval,
        max_events_per_minute: args.max_events_per_minute,
        policy_dir: args.policy_dir,
        webhook,
    };
    let kubeconfig = args.kubeconfig;
    rampart_controller::block_on(async move {
        let client = rampart_controller::client(kubeconfig.as_deref()).await?;
        rampart_controller::controller::run(client, opts).await
    })??;
    Ok(0)
}
