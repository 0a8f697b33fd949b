//! `cds-redis-operator cds import`: ready-to-apply YAML that adopts cloud instances which exist
//! already. Select the instances (cloud) → refuse those a `RedisInstance` records (cluster) →
//! place them in the catalogue and the VDC (cloud, then [`resolve`], pure) → name them
//! ([`names`], pure) → print a Secret stub and a `RedisInstance` for each ([`manifest`], pure).

pub mod cluster;
pub mod manifest;
pub mod names;
pub mod resolve;

use std::collections::HashMap;

use clap::builder::{PossibleValuesParser, TypedValueParser as _};

use self::cluster::{Check, Recorded};
use self::manifest::{Entry, Policies};
use self::resolve::Unresolved;
use crate::cds::wire::{self, DbConfig, Instance, Vdc};
use crate::cds::{CdsClient, CdsError, InstanceFilter, VdcFilter};
use crate::crd::{DeletionPolicy, ManagementPolicy};

/// How `--help` explains the cluster check.
const CLUSTER_CHECK_HELP: &str = "\
Cluster check: before printing anything, every RedisInstance of the Kubernetes cluster of \
KUBECONFIG (else ~/.kube/config, else the in-cluster service account), in every namespace, is \
read; an instance one of them already records (status.instanceUuid or spec.instanceUuid) is \
refused, naming the object, and the command fails. When no cluster is configured or it cannot \
be reached, the check is skipped with a warning on stderr (the operator still refuses to let a \
second object manage an instance: InstanceInUse). --no-cluster-check skips it on purpose.";

/// `cds import`: which instances, into which namespace, with which policies.
#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("selector").required(true).multiple(false).args(["uuid", "name", "tag", "all"])),
    after_help = CLUSTER_CHECK_HELP
)]
pub struct ImportArgs {
    /// The instance with this UUID (repeat the flag for several).
    #[arg(long, value_name = "UUID")]
    pub uuid: Vec<String>,
    /// The instances named exactly this.
    #[arg(long)]
    pub name: Option<String>,
    /// The instances with a tag named exactly this (TagName).
    #[arg(long)]
    pub tag: Option<String>,
    /// Every instance of the account.
    #[arg(long)]
    pub all: bool,
    /// The namespace of the objects.
    #[arg(long, short = 'n', value_parser = parse_namespace)]
    pub namespace: String,
    /// spec.managementPolicy: Full (observe, and delete per deletionPolicy) or ObserveOnly.
    #[arg(long, default_value = "Full", value_parser = PossibleValuesParser::new(["Full", "ObserveOnly"])
        .map(|s| if s == "Full" { ManagementPolicy::Full } else { ManagementPolicy::ObserveOnly }))]
    pub management_policy: ManagementPolicy,
    /// spec.deletionPolicy: Retain (deleting the object keeps the instance) or Delete.
    #[arg(long, default_value = "Retain", value_parser = PossibleValuesParser::new(["Retain", "Delete"])
        .map(|s| if s == "Retain" { DeletionPolicy::Retain } else { DeletionPolicy::Delete }))]
    pub deletion_policy: DeletionPolicy,
    /// Do not ask the cluster whether a RedisInstance already records these instances.
    #[arg(long)]
    pub no_cluster_check: bool,
}

fn parse_namespace(s: &str) -> Result<String, String> {
    if names::is_dns_label(s) {
        Ok(s.to_owned())
    } else {
        Err("a namespace is a DNS-1123 label: 1-63 lowercase letters, digits and '-'".into())
    }
}

/// Why `cds import` printed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// `-o` asked for another format than YAML.
    #[error("cds import prints YAML only: drop -o or use -o yaml")]
    Format,
    /// A `--uuid` names no instance of the account.
    #[error("the account has no instance {0}")]
    UnknownUuid(String),
    /// The selector matches no instance (or only instances being deleted).
    #[error("no instance to import matches {0}")]
    NoMatch(String),
    /// What a `RedisInstance` needs cannot be told for an instance.
    #[error("instance {uuid} ({name:?}): {problem}")]
    Unresolved {
        /// The instance's UUID.
        uuid: String,
        /// The instance's name.
        name: String,
        /// Why.
        #[source]
        problem: Unresolved,
    },
    /// Instances already recorded by objects of the cluster.
    #[error("refusing to import what a RedisInstance already manages (one instance, one object): {}",
        .0.iter().map(Recorded::to_string).collect::<Vec<_>>().join("; "))]
    AlreadyRecorded(Vec<Recorded>),
    /// The cluster answered, but not with its `RedisInstance` objects.
    #[error(
        "cannot read the cluster's RedisInstances to check that none records these instances (--no-cluster-check skips the check)"
    )]
    Cluster(#[source] kube::Error),
    /// A cloud call failed.
    #[error(transparent)]
    Call(#[from] CdsError),
}

/// The YAML for `args`, or why there is none. Warnings (a skipped cluster check, instances being
/// deleted) go to stderr.
pub async fn run(client: &CdsClient, args: &ImportArgs) -> Result<String, ImportError> {
    let selected = select(client, args).await?;
    if args.no_cluster_check {
        eprintln!("warning: --no-cluster-check: not checked whether a RedisInstance already records these instances");
    } else {
        match cluster::check().await.map_err(ImportError::Cluster)? {
            Check::Done(records) => {
                let taken = cluster::recorded(&selected, &records);
                if !taken.is_empty() {
                    return Err(ImportError::AlreadyRecorded(taken));
                }
            }
            Check::Skipped(why) => {
                eprintln!("warning: {why}: skipped the check that no RedisInstance already records these instances")
            }
        }
    }
    let placements = place(client, &selected).await?;
    let names = names::unique_names(
        selected
            .iter()
            .map(|i| (i.instance_name.as_str(), i.instance_uuid.as_str())),
    );
    let entries: Vec<Entry<'_>> = selected
        .iter()
        .zip(names)
        .zip(placements)
        .map(|((instance, name), placement)| Entry {
            instance,
            name,
            placement,
        })
        .collect();
    let policies = Policies {
        namespace: args.namespace.clone(),
        management: args.management_policy,
        deletion: args.deletion_policy,
    };
    Ok(manifest::documents(&entries, &policies))
}

/// The selected instances, sorted by name then UUID; those being deleted are left out (the
/// operator never adopts them).
async fn select(client: &CdsClient, args: &ImportArgs) -> Result<Vec<Instance>, ImportError> {
    let (mut found, what) = if !args.uuid.is_empty() {
        let mut found = vec![];
        for uuid in &args.uuid {
            let instance = client.describe_instance(uuid).await?;
            let instance = instance.ok_or_else(|| ImportError::UnknownUuid(uuid.clone()))?;
            if !found.iter().any(|i: &Instance| i.instance_uuid == *uuid) {
                found.push(instance);
            }
        }
        (found, "--uuid".to_owned())
    } else {
        let filter = InstanceFilter {
            instance_name: args.name.clone(),
            tag_name: args.tag.clone(),
            ..InstanceFilter::default()
        };
        // The API matches names loosely: exact matches only.
        let listed = client.describe_instances(&filter).await?.into_iter().filter(|i| {
            args.name.as_ref().is_none_or(|n| &i.instance_name == n) && args.tag.as_ref().is_none_or(|t| i.has_tag(t))
        });
        let what = match (&args.name, &args.tag) {
            (Some(n), _) => format!("--name {n:?}"),
            (_, Some(t)) => format!("--tag {t:?}"),
            _ => "--all".to_owned(),
        };
        (listed.collect(), what)
    };
    found.retain(|i| {
        let deleting = i.status == wire::STATUS_DELETING;
        if deleting {
            eprintln!("warning: instance {} is being deleted: left out", i.instance_uuid);
        }
        !deleting
    });
    if found.is_empty() {
        return Err(ImportError::NoMatch(what));
    }
    found.sort_by(|a, b| (&a.instance_name, &a.instance_uuid).cmp(&(&b.instance_name, &b.instance_uuid)));
    Ok(found)
}

/// The placement of each instance: one catalogue per region and one VDC listing in all.
async fn place(client: &CdsClient, selected: &[Instance]) -> Result<Vec<resolve::Placement>, ImportError> {
    let vdcs: Vec<Vdc> = client.describe_vdcs(&VdcFilter::default()).await?;
    let mut catalogues: HashMap<String, DbConfig> = HashMap::new();
    let mut out = vec![];
    for instance in selected {
        let region = &instance.region_id;
        let unresolved = |problem| ImportError::Unresolved {
            uuid: instance.instance_uuid.clone(),
            name: instance.instance_name.clone(),
            problem,
        };
        if region.is_empty() {
            return Err(unresolved(Unresolved::Missing("RegionId")));
        }
        if !catalogues.contains_key(region) {
            catalogues.insert(region.clone(), client.describe_available_db_config(region).await?);
        }
        let vdc = vdcs.iter().find(|v| v.vdc_id == instance.vdc_id);
        out.push(resolve::placement(instance, &catalogues[region], vdc).map_err(unresolved)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
