//! `rampart inventory`: images per workload, read live from the API.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InventoryFormat {
    Table,
    Json,
}

/// Lists the images of every workload (Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets,
/// Jobs, CronJobs, ReplicationControllers, PodTemplates), optionally filtered by image.
#[derive(Args, Debug)]
pub struct InventoryArgs {
    /// Only images matching this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub image: Option<String>,
    /// Only this namespace (default: all).
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[arg(short, long, value_enum, default_value_t = InventoryFormat::Table)]
    pub output: InventoryFormat,
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

pub fn run(args: &InventoryArgs) -> Result<u8> {
    let filter = args
        .image
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("--image")?;
    let entries = rampart_controller::block_on(async {
        let client = rampart_controller::client(args.kubeconfig.as_deref()).await?;
        rampart_controller::inventory::collect(&client, args.namespace.as_deref(), filter.as_ref())
            .await
    })??;
    match args.output {
        InventoryFormat::Table => print!("{}", rampart_controller::inventory::table(&entries)),
        InventoryFormat::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
    }
    Ok(0)
}
