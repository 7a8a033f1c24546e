//! `rampart install`: the Helm chart's templates rendered with its values
//! (see `rampart_controller::manifests`), printed or applied.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use rampart_controller::manifests::{RenderContext, install_objects, to_yaml};

/// Installs Rampart (Namespace, CRDs, RBAC, the controller and webhook Deployments, Services,
/// PodDisruptionBudgets) by server-side apply, or prints the manifests with --dry-run.
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Print the manifests instead of applying them.
    #[arg(long)]
    pub dry_run: bool,
    /// The namespace to install into.
    #[arg(short, long, default_value = "rampart-system")]
    pub namespace: String,
    /// Override a chart value (`webhook.replicas=5`, `serviceMonitor.enabled=true`); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Leave the CRDs out (the controller applies them when it starts).
    #[arg(long)]
    pub no_crds: bool,
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

pub fn run(args: &InstallArgs) -> Result<u8> {
    let cx = RenderContext::new(&args.namespace, &args.set)?;
    let objects = install_objects(&cx, !args.no_crds)?;
    if args.dry_run {
        print!("{}", to_yaml(&objects)?);
        return Ok(0);
    }
    rampart_controller::block_on(async {
        let client = rampart_controller::client(args.kubeconfig.as_deref()).await?;
        for obj in &objects {
            rampart_controller::apply::apply(&client, obj).await?;
            println!(
                "{}/{} applied",
                obj["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                obj["metadata"]["name"].as_str().unwrap_or_default()
            );
        }
        anyhow::Ok(())
    })??;
    Ok(0)
}
