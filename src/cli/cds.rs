//! `cds-redis-operator cds ...`: look up regions, flavors and instances of an account, for users
//! filling in a `RedisInstance` and for support.

use serde::Serialize;

use crate::cds::catalogue::{Offer, offers};
use crate::cds::wire::{Instance, Region};
use crate::cds::{CdsClient, CdsError, InstanceFilter};
use crate::config::{CdsSettings, SettingsError};

/// Output format.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns.
    #[default]
    Table,
    /// JSON, as the API returned it (after lenient parsing).
    Json,
}

/// What to look up.
#[derive(Debug, clap::Subcommand)]
pub enum CdsCommand {
    /// Regions and whether Redis is on sale there.
    Regions,
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
}

/// `cds` with its settings.
#[derive(Debug, clap::Args)]
pub struct CdsArgs {
    #[command(subcommand)]
    command: CdsCommand,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
    #[command(flatten)]
    settings: CdsSettings,
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
}

/// Runs a `cds` command, printing to stdout.
pub async fn run(args: CdsArgs) -> Result<(), CdsCommandError> {
    let client = args.settings.client()?;
    let text = render(&client, &args.command, args.output).await?;
    print!("{text}");
    Ok(())
}

async fn render(client: &CdsClient, command: &CdsCommand, output: Output) -> Result<String, CdsError> {
    Ok(match command {
        CdsCommand::Regions => format_out(output, &client.describe_regions().await?),
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

/// A thing the CLI lists, as a table row.
trait Tabular: Serialize {
    /// The column titles.
    const HEADER: &'static [&'static str];
    /// The cells, in the order of [`Tabular::HEADER`].
    fn row(&self) -> Vec<String>;
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

fn format_out<T: Tabular>(output: Output, items: &[T]) -> String {
    match output {
        Output::Json => serde_json::to_string_pretty(items).expect("serialisable") + "\n",
        Output::Table => table(T::HEADER, items.iter().map(T::row).collect()),
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
