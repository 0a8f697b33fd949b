//! `cds-redis-operator cds ...`: look up regions, VDCs, flavors and instances of an account, for
//! users filling in a `RedisInstance` and for support; `cds import` ([`super::import`]) writes
//! the objects that adopt existing instances; `cds backups` and `cds backup ...`
//! ([`super::backup`]) list, make, delete and download an instance's backups.

use serde::Serialize;

use crate::cds::catalogue::{Offer, offers};
use crate::cds::download::DownloadError;
use crate::cds::wire::{Instance, Region, Vdc};
use crate::cds::{CdsClient, CdsError, InstanceFilter, VdcFilter};
use crate::cli::backup::{self, BackupCommand};
use crate::cli::import::{self, ImportArgs, ImportError};
use crate::config::{CdsSettings, SettingsError};

/// Output format.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns.
    #[default]
    Table,
    /// JSON, as the API returned it (after lenient parsing).
    Json,
    /// YAML, the same document as JSON.
    Yaml,
}

/// What to look up.
#[derive(Debug, clap::Subcommand)]
pub enum CdsCommand {
    /// Regions and whether Redis is on sale there.
    Regions,
    /// VDCs and their private networks: the vdcId and basePipeId a RedisInstance needs.
    ///
    /// One table row per private network, with its status, free IP addresses and segments.
    Vdcs {
        /// Only the VDCs of this region, e.g. CN_Beijing_A.
        #[arg(long)]
        region: Option<String>,
    },
    /// The Redis flavors of a region: version, architecture, RAM and PaasGoodsId.
    Flavors {
        /// Region id, e.g. CN_Beijing_A.
        #[arg(long)]
        region: String,
    },
    /// Instances of the account (all, or the one with this UUID or name, exactly).
    Instances {
        /// Only the instance with exactly this UUID.
        #[arg(long, conflicts_with = "name")]
        uuid: Option<String>,
        /// Only instances named exactly this.
        #[arg(long)]
        name: Option<String>,
    },
    /// Print ready-to-apply YAML that adopts existing instances.
    ///
    /// Per instance, a password Secret stub to fill in and a RedisInstance with its instanceUuid.
    /// Select the instances with exactly one of --uuid, --name, --tag or --all.
    Import(ImportArgs),
    /// The backups of an instance: id, status, size, times and description.
    Backups {
        /// The instance's UUID.
        #[arg(long)]
        uuid: String,
    },
    /// Create, delete or download a backup of an instance.
    #[command(subcommand)]
    Backup(BackupCommand),
}

/// `cds` with its settings.
#[derive(Debug, clap::Args)]
pub struct CdsArgs {
    /// What to look up.
    #[command(subcommand)]
    pub command: CdsCommand,
    /// Output format (default: table; `import` prints YAML only; for `backup download`, `-o`
    /// names the file to write).
    #[arg(long, short = 'o', value_enum, global = true)]
    pub output: Option<Output>,
    /// Endpoint and credentials.
    #[command(flatten)]
    pub settings: CdsSettings,
}

/// Why a `cds` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CdsCommandError {
    /// No client: missing or unreadable credentials, or a bad endpoint.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The cloud call failed.
    #[error(transparent)]
    Call(#[from] CdsError),
    /// `cds import` printed nothing.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// `cds backup download` could not fetch or write the file.
    #[error(transparent)]
    Download(#[from] DownloadError),
}

/// Runs a `cds` command, printing to stdout.
pub async fn run(args: CdsArgs) -> Result<(), CdsCommandError> {
    let client = args.settings.client()?;
    let text = render(&client, &args.command, args.output).await?;
    print!("{text}");
    Ok(())
}

async fn render(client: &CdsClient, command: &CdsCommand, format: Option<Output>) -> Result<String, CdsCommandError> {
    let output = format.unwrap_or_default();
    Ok(match command {
        CdsCommand::Import(args) => match format {
            None | Some(Output::Yaml) => import::run(client, args).await?,
            Some(_) => return Err(ImportError::Format.into()),
        },
        CdsCommand::Backups { uuid } => backup::list(client, uuid, output).await?,
        CdsCommand::Backup(command) => backup::run(client, command, output).await?,
        CdsCommand::Regions => format_out(output, &client.describe_regions().await?),
        CdsCommand::Vdcs { region } => {
            let filter = VdcFilter {
                region_id: region.clone(),
                ..VdcFilter::default()
            };
            format_out(output, &client.describe_vdcs(&filter).await?)
        }
        CdsCommand::Flavors { region } => {
            format_out(output, &offers(&client.describe_available_db_config(region).await?))
        }
        CdsCommand::Instances { uuid, name } => {
            let filter = InstanceFilter {
                instance_uuid: uuid.clone(),
                instance_name: name.clone(),
                ..InstanceFilter::default()
            };
            // The API matches names as substrings: keep exact matches only.
            let list: Vec<_> = client
                .describe_instances(&filter)
                .await?
                .into_iter()
                .filter(|i| {
                    uuid.as_ref().is_none_or(|u| &i.instance_uuid == u)
                        && name.as_ref().is_none_or(|n| &i.instance_name == n)
                })
                .collect();
            format_out(output, &list)
        }
    })
}

/// A thing the CLI lists, as table rows.
pub(super) trait Tabular: Serialize {
    /// The column titles.
    const HEADER: &'static [&'static str];
    /// The cells of its first (often only) row, in the order of [`Tabular::HEADER`].
    fn row(&self) -> Vec<String>;
    /// All its rows.
    fn rows(&self) -> Vec<Vec<String>> {
        vec![self.row()]
    }
}

impl Tabular for Region {
    const HEADER: &'static [&'static str] = &["REGION", "ON SALE", "AREA", "CITY", "SITE"];
    fn row(&self) -> Vec<String> {
        vec![
            self.region_id.clone(),
            if self.on_sale() { "yes" } else { "no" }.into(),
            self.region_name.clone(),
            self.city_name.clone(),
            self.site_name.clone(),
        ]
    }
}

impl Tabular for Vdc {
    const HEADER: &'static [&'static str] = &[
        "VDC",
        "VDC NAME",
        "REGION",
        "NETWORK (basePipeId)",
        "NETWORK NAME",
        "STATUS",
        "FREE IPS",
        "SEGMENTS",
    ];
    /// The VDC alone: a VDC without private networks still shows.
    fn row(&self) -> Vec<String> {
        let mut row = vec![self.vdc_id.clone(), self.vdc_name.clone(), self.region_id.clone()];
        row.extend(["-", "", "", "", ""].map(String::from));
        row
    }
    /// One row per private network.
    fn rows(&self) -> Vec<Vec<String>> {
        if self.private_network.is_empty() {
            return vec![self.row()];
        }
        self.private_network
            .iter()
            .map(|n| {
                vec![
                    self.vdc_id.clone(),
                    self.vdc_name.clone(),
                    self.region_id.clone(),
                    n.private_id.clone(),
                    n.name.clone(),
                    n.status.clone(),
                    n.unuse_ip_num.map(|f| f.to_string()).unwrap_or_default(),
                    n.segments.join(","),
                ]
            })
            .collect()
    }
}

impl Tabular for Offer {
    const HEADER: &'static [&'static str] = &["VERSION", "ARCHITECTURE", "RAM(GB)", "PAASGOODSID"];
    fn row(&self) -> Vec<String> {
        let arch = self
            .architecture
            .map_or_else(|| format!("type {}", self.architecture_type), |a| a.to_string());
        vec![
            self.version.clone(),
            arch,
            self.ram_gb.to_string(),
            self.paas_goods_id.to_string(),
        ]
    }
}

impl Tabular for Instance {
    const HEADER: &'static [&'static str] = &["UUID", "NAME", "STATUS", "ENDPOINT", "RAM(MB)", "VERSION", "REGION"];
    fn row(&self) -> Vec<String> {
        vec![
            self.instance_uuid.clone(),
            self.instance_name.clone(),
            self.status.clone(),
            format!("{}:{}", self.ip, self.port.map(|p| p.to_string()).unwrap_or_default()),
            self.ram.map(|r| r.to_string()).unwrap_or_default(),
            self.version.clone(),
            self.region_id.clone(),
        ]
    }
}

/// `items` as a table, JSON or YAML.
pub(super) fn format_out<T: Tabular>(output: Output, items: &[T]) -> String {
    match output {
        Output::Json => serde_json::to_string_pretty(items).expect("serialisable") + "\n",
        Output::Yaml => serde_norway::to_string(items).expect("serialisable"),
        Output::Table => table(T::HEADER, items.iter().flat_map(T::rows).collect()),
    }
}

/// Left-aligned columns separated by three spaces, like `kubectl get`.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell}{}   ", " ".repeat(w - cell.chars().count())));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cds::wire::PrivateNetwork;

    fn vdcs() -> Vec<Vdc> {
        let network = |id: &str, free| PrivateNetwork {
            private_id: id.into(),
            name: format!("{id}-name"),
            status: "ok".into(),
            unuse_ip_num: free,
            segments: vec!["10.240.59.0/16~10.240.59.255/16".into(), "10.241.0.0/24".into()],
        };
        vec![
            Vdc {
                vdc_id: "vdc-a".into(),
                vdc_name: "shop".into(),
                region_id: "CN_Beijing_A".into(),
                private_network: vec![network("pipe-1", Some(253)), network("pipe-2", None)],
                ..Vdc::default()
            },
            Vdc {
                vdc_id: "vdc-b".into(),
                vdc_name: "empty".into(),
                region_id: "CN_Beijing_B".into(),
                ..Vdc::default()
            },
        ]
    }

    #[test]
    fn vdcs_table_has_one_row_per_private_network_and_one_for_a_vdc_without() {
        let text = format_out(Output::Table, &vdcs());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("VDC ") && lines[0].contains("NETWORK (basePipeId)"));
        let cells = |line: &str| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            cells(lines[1]),
            [
                "vdc-a",
                "shop",
                "CN_Beijing_A",
                "pipe-1",
                "pipe-1-name",
                "ok",
                "253",
                "10.240.59.0/16~10.240.59.255/16,10.241.0.0/24"
            ]
        );
        assert_eq!(
            cells(lines[2])[..6],
            ["vdc-a", "shop", "CN_Beijing_A", "pipe-2", "pipe-2-name", "ok"]
        );
        assert_eq!(cells(lines[3]), ["vdc-b", "empty", "CN_Beijing_B", "-"]);
    }

    #[test]
    fn yaml_and_json_are_the_same_document() {
        let json: serde_json::Value = serde_json::from_str(&format_out(Output::Json, &vdcs())).unwrap();
        let yaml: serde_json::Value = serde_norway::from_str(&format_out(Output::Yaml, &vdcs())).unwrap();
        assert_eq!(json, yaml);
        assert_eq!(yaml[0]["PrivateNetwork"][0]["PrivateId"], "pipe-1");
    }
}
