//! Settings shared by the operator and the `cds` commands, from flags with environment fallbacks.

use std::path::PathBuf;
use std::time::Duration;

use crate::cds::{self, CdsClient, CdsError, ClientConfig, Credentials, SharedRateLimiter};
use crate::duration::parse_duration;

/// Why the settings give no credentials, or no client.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A file of `--credentials-dir` cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Only one of the access key id and secret is set.
    #[error("set both CDS_ACCESS_KEY_ID and CDS_ACCESS_KEY_SECRET (or neither)")]
    Incomplete,
    /// No credentials, where they are required.
    #[error("no CDS credentials: set CDS_ACCESS_KEY_ID and CDS_ACCESS_KEY_SECRET, or CDS_CREDENTIALS_DIR")]
    Missing,
    /// The client cannot be built (e.g. the endpoint is not an http(s) URL).
    #[error(transparent)]
    Client(#[from] CdsError),
}

/// How to reach the CDS API and with which account. `Debug` never prints the secret.
#[derive(Clone, clap::Args)]
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
    /// Cloud calls per second allowed to each account (a ProviderConfig may set its own).
    #[arg(long, env = "CDS_QPS", default_value_t = 5.0)]
    pub cds_qps: f64,
    /// Burst of cloud calls allowed above the rate, per account.
    #[arg(long, env = "CDS_BURST", default_value_t = 10)]
    pub cds_burst: u32,
    /// Timeout of one cloud call.
    #[arg(long, env = "CDS_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub cds_timeout: Duration,
}

impl std::fmt::Debug for CdsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdsSettings")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &self.access_key_secret.as_ref().map(|_| "***"))
            .field("credentials_dir", &self.credentials_dir)
            .field("cds_qps", &self.cds_qps)
            .field("cds_burst", &self.cds_burst)
            .field("cds_timeout", &self.cds_timeout)
            .finish()
    }
}

impl CdsSettings {
    /// The operator's own credentials: the mounted directory first, then the flags/environment.
    pub fn credentials(&self) -> Result<Option<Credentials>, SettingsError> {
        if let Some(dir) = &self.credentials_dir {
            let read = |name: &str| {
                let path = dir.join(name);
                std::fs::read_to_string(&path)
                    .map(|s| s.trim().to_owned())
                    .map_err(|source| SettingsError::Read { path, source })
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
            _ => Err(SettingsError::Incomplete),
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
    pub fn client(&self) -> Result<CdsClient, SettingsError> {
        let creds = self.credentials()?.ok_or(SettingsError::Missing)?;
        Ok(CdsClient::new(self.client_config(), creds, self.rate_limiter())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_access_key_secret() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Args {
            #[command(flatten)]
            cds: CdsSettings,
        }
        let args = Args::parse_from(["x", "--access-key-id", "AKID", "--access-key-secret", "sk-DO-NOT-LEAK"]);
        let shown = format!("{:?}", args.cds);
        assert!(shown.contains("AKID") && !shown.contains("sk-DO-NOT-LEAK"), "{shown}");
    }

    fn settings() -> CdsSettings {
        CdsSettings {
            endpoint: cds::client::DEFAULT_ENDPOINT.into(),
            access_key_id: None,
            access_key_secret: None,
            credentials_dir: None,
            cds_qps: 5.0,
            cds_burst: 10,
            cds_timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn credentials_come_from_the_directory_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("accessKeyId"), "from-dir\n").unwrap();
        std::fs::write(dir.path().join("accessKeySecret"), "dir-secret\n").unwrap();
        let s = CdsSettings {
            credentials_dir: Some(dir.path().to_owned()),
            access_key_id: Some("from-env".into()),
            access_key_secret: Some("env-secret".into()),
            ..settings()
        };
        assert_eq!(s.credentials().unwrap().unwrap().access_key_id, "from-dir");
        let flags_only = CdsSettings {
            credentials_dir: None,
            ..s
        };
        assert_eq!(flags_only.credentials().unwrap().unwrap().access_key_id, "from-env");
        assert!(settings().credentials().unwrap().is_none());
    }

    #[test]
    fn credential_problems_are_typed_with_their_cause() {
        let dir = tempfile::tempdir().unwrap();
        let unreadable = CdsSettings {
            credentials_dir: Some(dir.path().join("absent")),
            ..settings()
        };
        let e = unreadable.credentials().unwrap_err();
        assert!(
            matches!(&e, SettingsError::Read { path, .. } if path.ends_with("absent/accessKeyId")),
            "{e:?}"
        );
        let cause = std::error::Error::source(&e).expect("the I/O error is the source");
        assert!(cause.to_string().contains("No such file"), "{cause}");
        let half = CdsSettings {
            access_key_id: Some("id".into()),
            ..settings()
        };
        assert!(matches!(half.credentials(), Err(SettingsError::Incomplete)));
        assert!(matches!(settings().client(), Err(SettingsError::Missing)));
        let bad_endpoint = CdsSettings {
            endpoint: "ftp://x".into(),
            access_key_id: Some("id".into()),
            access_key_secret: Some("secret".into()),
            ..settings()
        };
        let e = bad_endpoint.client().unwrap_err();
        assert!(
            matches!(e, SettingsError::Client(_)) && e.to_string().contains("not an http(s) URL"),
            "{e}"
        );
    }
}
