//! What the simulator is started with: flags, access keys, fault options, and the data it serves
//! (regions and catalogues from `data/` unless files are given).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use super::faults::{self, Faults};
use super::network::parse_vdc_flag;
use super::state::{Cloud, Delays};
use crate::cds::wire::{DbConfig, Region};
use crate::duration::parse_duration;

/// Why the simulator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No access key was given.
    #[error("give at least one --access-key ID:SECRET (or --access-keys-file)")]
    NoAccessKey,
    /// An access key is not `ID:SECRET` (the line is not repeated: it may hold a secret).
    #[error("an access key must look like ID:SECRET")]
    MalformedAccessKey,
    /// A file given on the command line cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A regions, catalogue or state file is not what it should be.
    #[error("cannot parse {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A `--fault-error` or `--fault-lost-response` cannot be understood.
    #[error("bad fault {spec:?}: {problem}")]
    Fault {
        /// The option's value.
        spec: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A `--vdc` cannot be understood.
    #[error("bad --vdc {spec:?}: {problem}")]
    Vdc {
        /// The option's value.
        spec: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `--redis-backend` is asked for, but `--redis-server` cannot be run.
    #[error("cannot run {binary} for --redis-backend")]
    RedisBackend {
        /// The binary.
        binary: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The backup directory of `--redis-backend` cannot be created.
    #[error("cannot create the backup directory {}", path.display())]
    BackupDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Everything the simulator is started with.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulatorConfig {
    /// Address to listen on.
    #[arg(long, env = "CDS_SIM_LISTEN", default_value = "127.0.0.1:8790")]
    pub listen: SocketAddr,
    /// An access key the simulator accepts, as ID:SECRET (repeatable).
    #[arg(long = "access-key", value_name = "ID:SECRET")]
    pub access_keys: Vec<String>,
    /// A file of access keys, one ID:SECRET per line (# starts a comment).
    #[arg(long, value_name = "FILE")]
    pub access_keys_file: Option<PathBuf>,
    /// Time from CreateDBInstance to RUNNING (e.g. 500ms, 5s, 2m).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub create_delay: Duration,
    /// Time from DeleteDBInstance to the instance disappearing.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub delete_delay: Duration,
    /// Time from CreateBackup to a finished backup.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub backup_delay: Duration,
    /// Largest clock difference accepted in Timestamp (older or newer requests are refused).
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub timestamp_skew: Duration,
    /// Largest Amount accepted by CreateDBInstance (sources say 3 or 10).
    #[arg(long, default_value_t = 3)]
    pub max_amount: i64,
    /// Seed of the fault dice, for repeatable runs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Regions file: a DescribeRegins response (or its Data). Default: the recorded regions.
    #[arg(long, value_name = "FILE")]
    pub regions_file: Option<PathBuf>,
    /// Catalogue file: a JSON object from region id to DescribeAvailableDBConfig Data.
    /// Default: the recorded CN_Beijing_A catalogue, served for every region on sale.
    #[arg(long, value_name = "FILE")]
    pub catalogue_file: Option<PathBuf>,
    /// VDCs to serve, as a `DescribeVdc` answer or its `Data` list (default: the documentation's
    /// example, VDC `0bb08ed7-…` in `CN_Beijing_A` with private network `4e6f6790-…`).
    #[arg(long, value_name = "FILE")]
    pub vdcs_file: Option<PathBuf>,
    /// Adds a private network (and its VDC) that creates may use; repeatable. FREE_IPS defaults
    /// to 253.
    #[arg(long = "vdc", value_name = "VDC_ID:REGION:NETWORK_ID[:FREE_IPS]")]
    pub vdcs: Vec<String>,
    /// Keep state in this JSON file (read at start, written after every change).
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Serve the unsigned admin endpoint under /admin/ (for tests; never expose it).
    #[arg(long)]
    pub admin: bool,
    /// Back every instance with a real redis-server on 127.0.0.1 (reported as its IP and Port).
    #[arg(long)]
    pub redis_backend: bool,
    /// The redis-server binary for --redis-backend.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: String,
    /// Where --redis-backend keeps backup files, one per backup (default: STATE.backups/ beside
    /// --state-file, else a temporary directory removed at shutdown).
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Inject errors: ACTION=KIND:RATE, KIND one of internal (500), in-use (409), throttle
    /// (429), invalid (400 InvalidParameter, final); ACTION may be * (repeatable). Example:
    /// CreateDBInstance=internal:0.2
    #[arg(long = "fault-error", value_name = "ACTION=KIND:RATE")]
    pub fault_errors: Vec<String>,
    /// Lose the answer of a successful write: ACTION=MODE:RATE, MODE 5xx, drop or undocumented (repeatable).
    #[arg(long = "fault-lost-response", value_name = "ACTION=MODE:RATE")]
    pub fault_lost_responses: Vec<String>,
    /// Latency added to every call.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub fault_latency: Duration,
    /// A new instance shows up in listings only this long after its create.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub fault_visibility_lag: Duration,
}

impl SimulatorConfig {
    /// A configuration for tests: one key, the given delays, admin on, no file, no faults, and
    /// the test network [`TEST_VDC`]/[`TEST_NETWORK`] besides the default VDC.
    pub fn for_tests(access_key: &str, secret: &str, create_delay: Duration, delete_delay: Duration) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("literal"),
            access_keys: vec![format!("{access_key}:{secret}")],
            access_keys_file: None,
            create_delay,
            delete_delay,
            backup_delay: Duration::from_millis(100),
            timestamp_skew: Duration::from_secs(900),
            max_amount: 3,
            seed: 1,
            regions_file: None,
            catalogue_file: None,
            vdcs_file: None,
            vdcs: vec![format!("{TEST_VDC}:CN_Beijing_A:{TEST_NETWORK}:65000")],
            state_file: None,
            admin: true,
            redis_backend: false,
            redis_server: "redis-server".into(),
            backup_dir: None,
            fault_errors: vec![],
            fault_lost_responses: vec![],
            fault_latency: Duration::ZERO,
            fault_visibility_lag: Duration::ZERO,
        }
    }

    /// The cloud to serve (the state file's, if it exists) and the pristine one a reset goes
    /// back to (the data files', else the built-in data).
    pub(super) fn clouds(&self) -> Result<(Cloud, Cloud), StartError> {
        let delays = Delays {
            create_ms: self.create_delay.as_millis() as i64,
            delete_ms: self.delete_delay.as_millis() as i64,
            backup_ms: self.backup_delay.as_millis() as i64,
        };
        let mut cloud = default_cloud(delays, self.max_amount);
        if let Some(path) = &self.regions_file {
            cloud.regions = parse_data(&read(path)?).map_err(parse_error(path))?;
        }
        if let Some(path) = &self.catalogue_file {
            cloud.catalogues = serde_json::from_str(&read(path)?).map_err(parse_error(path))?;
        }
        if let Some(path) = &self.vdcs_file {
            cloud.vdcs = parse_data(&read(path)?).map_err(parse_error(path))?;
        }
        for spec in &self.vdcs {
            let (vdc, region, network, free) = parse_vdc_flag(spec).map_err(|problem| StartError::Vdc {
                spec: spec.clone(),
                problem,
            })?;
            cloud.add_network(&vdc, &region, &network, free);
        }
        let pristine = cloud.clone();
        if let Some(path) = &self.state_file
            && path.exists()
        {
            cloud = serde_json::from_str(&read(path)?).map_err(parse_error(path))?;
            cloud.delays = delays;
        }
        Ok((cloud, pristine))
    }

    /// Where backup files are kept: `--backup-dir`, else beside the state file (so they last as
    /// long as the state that lists them), else in `work`, the backend's temporary directory.
    pub(super) fn backup_dir(&self, work: &std::path::Path) -> PathBuf {
        match (&self.backup_dir, &self.state_file) {
            (Some(dir), _) => dir.clone(),
            (None, Some(state)) => state.with_extension("backups"),
            (None, None) => work.join("backups"),
        }
    }

    pub(super) fn faults(&self) -> Result<Faults, StartError> {
        let mut f = Faults {
            latency_ms: self.fault_latency.as_millis() as u64,
            visibility_lag_ms: self.fault_visibility_lag.as_millis() as u64,
            ..Default::default()
        };
        let bad = |spec: &str, problem| StartError::Fault {
            spec: spec.to_owned(),
            problem,
        };
        for spec in &self.fault_errors {
            faults::parse_error_rate(&mut f, spec).map_err(|p| bad(spec, p))?;
        }
        for spec in &self.fault_lost_responses {
            faults::parse_lost_response(&mut f, spec).map_err(|p| bad(spec, p))?;
        }
        Ok(f)
    }

    pub(super) fn keys(&self) -> Result<HashMap<String, SecretString>, StartError> {
        let mut lines: Vec<String> = self.access_keys.clone();
        if let Some(path) = &self.access_keys_file {
            let text = read(path)?;
            lines.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        let mut keys = HashMap::new();
        for line in lines {
            let (id, secret) = line
                .split_once(':')
                .filter(|(i, s)| !i.is_empty() && !s.is_empty())
                .ok_or(StartError::MalformedAccessKey)?;
            keys.insert(id.to_owned(), SecretString::from(secret.to_owned()));
        }
        if keys.is_empty() {
            return Err(StartError::NoAccessKey);
        }
        Ok(keys)
    }
}

/// The regions the simulator serves by default: a recorded `DescribeRegins` answer.
pub(super) const DEFAULT_REGIONS: &str = include_str!("data/regions.json");
/// The VDCs the simulator serves by default: the documentation's `DescribeVdc` example.
pub(super) const DEFAULT_VDCS: &str = include_str!("data/vdcs.json");
/// The VDC every test configuration adds ([`SimulatorConfig::for_tests`]), in `CN_Beijing_A`.
pub const TEST_VDC: &str = "vdc-1";
/// Its private network, with 65,000 free IPs (enough for the 5,000-object benchmark).
pub const TEST_NETWORK: &str = "pipe-1";
/// The catalogue the simulator serves for every region on sale by default: a recorded
/// `DescribeAvailableDBConfig` answer of `CN_Beijing_A`.
pub(super) const DEFAULT_CATALOGUE: &str = include_str!("data/catalogue.json");

/// An API answer's `Data`, or the text itself when it is not an envelope.
pub(super) fn parse_data<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    let v: Value = serde_json::from_str(text)?;
    let data = if v.get("Code").is_some() { v["Data"].clone() } else { v };
    serde_json::from_value(data)
}

fn read(path: &std::path::Path) -> Result<String, StartError> {
    std::fs::read_to_string(path).map_err(|source| StartError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse_error(path: &std::path::Path) -> impl FnOnce(serde_json::Error) -> StartError + '_ {
    |source| StartError::Parse {
        path: path.to_owned(),
        source,
    }
}

/// The recorded regions and catalogue: the `CN_Beijing_A` catalogue served for every region on
/// sale (with its `RegionId`).
pub fn default_cloud(delays: Delays, max_amount: i64) -> Cloud {
    let regions: Vec<Region> = parse_data(DEFAULT_REGIONS).expect("the recorded regions parse");
    let beijing: DbConfig = parse_data(DEFAULT_CATALOGUE).expect("the recorded catalogue parses");
    let catalogues = regions
        .iter()
        .filter(|r| r.on_sale() && !r.region_id.is_empty())
        .map(|r| {
            (
                r.region_id.clone(),
                DbConfig {
                    region_id: r.region_id.clone(),
                    ..beijing.clone()
                },
            )
        })
        .collect();
    let mut cloud = Cloud::new(regions, catalogues, delays, max_amount);
    cloud.vdcs = parse_data(DEFAULT_VDCS).expect("the recorded VDCs parse");
    cloud
}
