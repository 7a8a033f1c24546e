use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rampart_checks::pss::{Level, Version};
use rampart_core::Severity;

#[derive(Parser, Debug)]
#[command(
    name = "rampart",
    version,
    about = "Kubernetes security engine",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan manifests (files, directories, `-` for stdin) for security problems.
    Scan(ScanArgs),
    /// List the built-in checks.
    Checks(ChecksArgs),
    /// Run policy test suites (`rampart-test.yaml`): expected results of policies on resources.
    Test(crate::test_cmd::TestArgs),
    /// Print the CustomResourceDefinitions of Rampart's ClusterPolicy and Policy.
    Crds(crate::test_cmd::CrdsArgs),
    /// Run the admission webhook: validate and mutate AdmissionReviews over TLS.
    Serve(crate::serve::ServeArgs),
    /// Print the Validating- and MutatingWebhookConfiguration for `rampart serve`.
    WebhookConfig(crate::serve::WebhookConfigArgs),
    /// Rewrite manifests so they pass the checks where a fix is safe, keeping comments and layout.
    Fix(crate::fix::FixArgs),
    /// Run the in-cluster controller: CRDs, webhook certificates, background audit, reports.
    Controller(crate::controller::ControllerArgs),
    /// List the images of the cluster's workloads (`--image REGEX` to search).
    Inventory(crate::inventory::InventoryArgs),
    /// Install Rampart into a cluster, or print its manifests (`--dry-run`).
    Install(crate::install::InstallArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Sarif,
    Junit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Which built-in checks run, shared by `scan` and `checks`.
#[derive(Args, Debug, Clone)]
pub struct CheckSelection {
    /// Pod Security Standards level to enforce.
    #[arg(long, default_value = "restricted", value_parser = parse_level, env = "RAMPART_PSS_LEVEL")]
    pub pss_level: Level,
    /// Pod Security Standards policy version: `latest` or `v1.N`.
    #[arg(long, default_value = "latest", value_parser = parse_version, env = "RAMPART_PSS_VERSION")]
    pub pss_version: Version,
    /// Registries (`ghcr.io`) or repository prefixes (`ghcr.io/acme/`) images may come from.
    /// Repeatable or comma-separated; without it, registries are not checked.
    #[arg(
        long = "allowed-registry",
        value_name = "REGISTRY",
        value_delimiter = ',',
        env = "RAMPART_ALLOWED_REGISTRIES"
    )]
    pub allowed_registries: Vec<String>,
    /// Namespaces treated as untrusted (in addition to those labelled so in the scan).
    #[arg(
        long = "untrusted-namespace",
        value_name = "NAMESPACE",
        value_delimiter = ','
    )]
    pub untrusted_namespaces: Vec<String>,
    /// Skip these checks (by ID). Repeatable or comma-separated.
    #[arg(long = "skip", value_name = "CHECK", value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Leave out the best-practice checks and run only the Pod Security Standards.
    #[arg(long)]
    pub pss_only: bool,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files and directories to scan (directories recursively: *.yaml, *.yml, *.json); `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub selection: CheckSelection,
    /// Policies to evaluate as well (repeatable): files or directories of ClusterPolicy, Policy,
    /// ValidatingAdmissionPolicy and bindings, with their ConfigMap params and Namespaces.
    #[arg(long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Exit with 1 when a finding is at or above this severity.
    #[arg(long, default_value = "low", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Exit with 2 when any input could not be scanned.
    #[arg(long)]
    pub strict: bool,
    /// Also list findings silenced by `rampart.dev/ignore-<check>` annotations (table output).
    #[arg(long)]
    pub show_suppressed: bool,
    /// When to colour the table.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Print how long each phase took to stderr.
    #[arg(long)]
    pub timings: bool,
    /// Largest file read, in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024, value_name = "BYTES")]
    pub max_file_size: u64,
}

#[derive(Args, Debug)]
pub struct ChecksArgs {
    #[command(flatten)]
    pub selection: CheckSelection,
    /// Output format (`table` or `json`).
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn parse_version(s: &str) -> Result<Version, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse().map_err(|e| format!("{e}"))
}
