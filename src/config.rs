//! Settings shared by the operator and the `cds` commands, from flags with environment fallbacks.

use std::path::PathBuf;
use std::time::Duration;

use crate::cds::{self, CdsClient, ClientConfig, Credentials, SharedRateLimiter};
use crate::duration::parse_duration;

/// How to reach the CDS API and with which account.
#[derive(Clone, Debug, clap::Args)]
pub struct CdsSettings {
    /// CDS API endpoint (scheme and host; `/redis/` is appended).
    #[arg(long = "endpoint", env = "CDS_ENDPOINT", default_value = cds::client::DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Access key id of the operator's own account.
    #[arg(long, env = "CDS_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// Access key secret of the operator's own account (prefer the environment or
    /// --credentials-dir, so it does not show in the process list).
    #[arg(long, env = "CDS_ACCESS_KEY_SECRET", hide_env_values = true)]
    pub access_key_secret: Option<String>,
    /// A directory with files `accessKeyId` and `accessKeySecret` (a mounted Secret); read
    /// again on every use, so rotating the Secret takes effect without a restart.
    #[arg(long, env = "CDS_CREDENTIALS_DIR")]
    pub credentials_dir: Option<PathBuf>,
    /// Cloud calls per second allowed across everything the process does.
    #[arg(long, env = "CDS_QPS", default_value_t = 5.0)]
    pub cds_qps: f64,
    /// Burst of cloud calls allowed above the rate.
    #[arg(long, env = "CDS_BURST", default_value_t = 10)]
    pub cds_burst: u32,
    /// Timeout of one cloud call.
    #[arg(long, env = "CDS_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub cds_timeout: Duration,
}

impl CdsSettings {
    /// The operator's own credentials: the mounted directory first, then the flags/environment.
    pub fn credentials(&self) -> Result<Option<Credentials>, String> {
        if let Some(dir) = &self.credentials_dir {
            let read = |name: &str| {
                std::fs::read_to_string(dir.join(name))
                    .map(|s| s.trim().to_owned())
                    .map_err(|e| format!("cannot read {}/{name}: {e}", dir.display()))
            };
            let (id, secret) = (read("accessKeyId")?, read("accessKeySecret")?);
            if !id.is_empty() && !secret.is_empty() {
                return Ok(Some(Credentials::new(id, secret)));
            }
        }
        match (&self.access_key_id, &self.access_key_secret) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                Ok(Some(Credentials::new(id.clone(), secret.clone())))
            }
            (None, None) => Ok(None),
            _ => Err("set both CDS_ACCESS_KEY_ID and CDS_ACCESS_KEY_SECRET (or neither)".into()),
        }
    }

    /// The client configuration.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            endpoint: self.endpoint.clone(),
            request_timeout: self.cds_timeout,
            ..ClientConfig::default()
        }
    }

    /// The process-wide rate limiter.
    pub fn rate_limiter(&self) -> SharedRateLimiter {
        cds::rate_limiter(self.cds_qps, self.cds_burst)
    }

    /// A client with the operator's own credentials (required).
    pub fn client(&self) -> Result<CdsClient, String> {
        let creds = self
            .credentials()?
            .ok_or("no CDS credentials: set CDS_ACCESS_KEY_ID and CDS_ACCESS_KEY_SECRET, or CDS_CREDENTIALS_DIR")?;
        CdsClient::new(self.client_config(), creds, self.rate_limiter()).map_err(|e| e.to_string())
    }
}
