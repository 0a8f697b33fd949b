//! The command line of the `cds-redis-operator` binary: one subcommand per role. `run`, `crd`
//! and `simulator` hand over to [`crate::controller`], [`crate::crd`] and [`crate::simulator`];
//! `cds`, a front end of the CDS client for people, lives here ([`cds`], with `cds import` in
//! [`import`] and the backup commands in [`backup`]).

pub mod backup;
pub mod cds;
pub mod import;

use clap::{Parser, Subcommand};

/// Kubernetes operator for Redis instances on CapitalOnline cloud (CDS).
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Run the operator: reconcile RedisInstance objects against the CDS API.
    Run(Box<crate::controller::RunConfig>),
    /// Print the CustomResourceDefinitions as YAML (all, or the one of --kind).
    Crd {
        /// Only this kind's CRD: RedisInstance, RedisBackup or RedisBackupSchedule.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Serve a local CDS Redis API (for tests, demos and GitOps dry runs).
    Simulator(Box<crate::simulator::SimulatorConfig>),
    /// Inspect the CDS account (regions, VDCs, flavors, instances), import its instances, or
    /// list, create, delete and download backups.
    Cds(Box<cds::CdsArgs>),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_duration_default_parses() {
        for args in [
            &["cds-redis-operator", "run"][..],
            &["cds-redis-operator", "simulator", "--access-key", "a:b"][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(matches!(cli.command, Command::Run(_) | Command::Simulator(_)));
        }
    }
}
