//! `cds-redis-operator cds ...`: look up regions, flavors and instances of an account, for users
//! filling in a `RedisInstance` and for support.

use serde::Serialize;

use crate::cds::catalogue::offers;
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
    match command {
        CdsCommand::Regions => {
            let regions = client.describe_regions().await?;
            let rows = regions
                .iter()
                .map(|r| {
                    vec![
                        r.region_id.clone(),
                        if r.on_sale() { "yes" } else { "no" }.into(),
                        r.region_name.clone(),
                        r.city_name.clone(),
                        r.site_name.clone(),
                    ]
                })
                .collect();
            Ok(format_out(
                output,
                &regions,
                &["REGION", "ON SALE", "AREA", "CITY", "SITE"],
                rows,
            ))
        }
        CdsCommand::Flavors { region } => {
            let cfg = client.describe_available_db_config(region).await?;
            let list = offers(&cfg);
            let rows = list
                .iter()
                .map(|o| {
                    let arch = o
                        .architecture
                        .map_or_else(|| format!("type {}", o.architecture_type), |a| a.to_string());
                    vec![
                        o.version.clone(),
                        arch,
                        o.ram_gb.to_string(),
                        o.paas_goods_id.to_string(),
                    ]
                })
                .collect();
            Ok(format_out(
                output,
                &list,
                &["VERSION", "ARCHITECTURE", "RAM(GB)", "PAASGOODSID"],
                rows,
            ))
        }
        CdsCommand::Instances { uuid, name } => {
            let filter = InstanceFilter {
                instance_uuid: uuid.clone(),
                instance_name: name.clone(),
                ip: None,
            };
            let list: Vec<_> = client
                .describe_instances(&filter)
                .await?
                .into_iter()
                .filter(|i| {
                    uuid.as_ref().is_none_or(|u| &i.instance_uuid == u)
                        && name.as_ref().is_none_or(|n| &i.instance_name == n)
                })
                .collect();
            let rows = list
                .iter()
                .map(|i| {
                    vec![
                        i.instance_uuid.clone(),
                        i.instance_name.clone(),
                        i.status.clone(),
                        format!("{}:{}", i.ip, i.port.map(|p| p.to_string()).unwrap_or_default()),
                        i.ram.map(|r| r.to_string()).unwrap_or_default(),
                        i.version.clone(),
                        i.region_id.clone(),
                    ]
                })
                .collect();
            Ok(format_out(
                output,
                &list,
                &["UUID", "NAME", "STATUS", "ENDPOINT", "RAM(MB)", "VERSION", "REGION"],
                rows,
            ))
        }
    }
}

fn format_out<T: Serialize>(output: Output, items: &T, header: &[&str], rows: Vec<Vec<String>>) -> String {
    match output {
        Output::Json => serde_json::to_string_pretty(items).expect("serialisable") + "\n",
        Output::Table => table(header, rows),
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
