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
    Fix(FixArgs),
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

#[derive(Args, Debug)]
#[command(after_help = "\
Without --write the fixed manifests are printed to standard output (one file as it is; \
several as one stream, each after a `# Source:` comment and a `---` line). What was \
fixed and what was not, and why, goes to standard error.

Exit codes: 0 nothing left at or above --fail-on, 1 findings left, 2 usage or input errors.")]
pub struct FixArgs {
    /// Files and directories to fix (directories recursively: *.yaml, *.yml, *.json); `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub selection: CheckSelection,
    /// Only fix (and report) these checks. Repeatable or comma-separated. Naming an
    /// opt-in remedy here (read-only-root-filesystem) turns it on.
    #[arg(long = "check", value_name = "CHECK", value_delimiter = ',')]
    pub checks: Vec<String>,
    /// Rewrite the files in place (standard input is still printed).
    #[arg(long)]
    pub write: bool,
    /// Print a unified diff of the changes instead of the fixed manifests.
    #[arg(long)]
    pub diff: bool,
    /// `text`: fixed manifests (or the diff) on stdout, report on stderr.
    /// `json`: a JSON summary on stdout instead.
    #[arg(short, long, value_enum, default_value_t = FixOutput::Text, conflicts_with = "diff")]
    pub output: FixOutput,
    /// Also apply remedies that can break apps: readOnlyRootFilesystem: true.
    #[arg(long)]
    pub aggressive: bool,
    /// Replace values set on purpose (seccomp Unconfined, an explicit
    /// allowPrivilegeEscalation: true, runAsNonRoot: false, ...).
    #[arg(long)]
    pub force: bool,
    /// Set imagePullPolicy: Always on every container.
    #[arg(long)]
    pub always_pull: bool,
    /// Requests and limits for containers without them: `small` (requests 100m/128Mi,
    /// limits 500m/256Mi), `medium` (250m/256Mi, 1/512Mi), `large` (500m/512Mi, 2/1Gi), or a
    /// YAML file with `requests: {cpu, memory}` and `limits: {cpu, memory}`. A limit is never
    /// set below a request the container already has.
    #[arg(long, value_name = "PROFILE")]
    pub resources_profile: Option<String>,
    /// Exit with 1 when a finding at or above this severity is left.
    #[arg(long, default_value = "low", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Do not print the report on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Largest file read, in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024, value_name = "BYTES")]
    pub max_file_size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FixOutput {
    Text,
    Json,
}
