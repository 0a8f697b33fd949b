//! The HTTP edge of the CDS client: signs each call, waits on the shared rate limiter, sends it,
//! reads the envelope, classifies failures, and retries reads (never writes) with backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::Instrument as _;

use super::error::{CdsError, ErrorKind};
use super::signer::{self, Credentials, Method};
use super::wire::{self, Envelope};
use crate::backoff;

/// The cloud's default endpoint (mainland China).
pub const DEFAULT_ENDPOINT: &str = "https://cdsapi.capitalonline.net";
/// The Redis service path.
pub const SERVICE_PATH: &str = "/redis/";
/// The VDC service path (`DescribeVdc`).
pub const NETWORK_PATH: &str = "/network/";
/// The most pages of a paged listing followed (a guard against a cloud that never says "last").
const MAX_PAGES: i64 = 100;
/// The longest wait between two read attempts (unless the cloud asks for more).
const RETRY_CAP: Duration = Duration::from_secs(10);

pub use super::budget::{CallBudget, SharedRateLimiter, rate_limiter};

/// Receives one report per cloud call, for metrics. Never sees a URL, body or secret.
pub trait CallObserver: Send + Sync {
    /// `action` finished with `outcome` (`success` or an error label) after `latency`.
    fn observe(&self, action: &str, outcome: &str, latency: Duration);
}

/// Asked right before each request leaves, after the rate-limiter wait: a process that lost its
/// leader lease while it waited must not call the cloud (contract, Ownership rule 7).
pub trait SendGate: Send + Sync {
    /// Whether a request may be sent now.
    fn may_send(&self) -> bool;
}

/// How the client talks to the cloud.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://cdsapi.capitalonline.net`; `/redis/` is appended unless present.
    pub endpoint: String,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, and for waiting on the rate limiter.
    pub request_timeout: Duration,
    /// Attempts for a read (GET) in all, including the first; writes are always tried once.
    pub read_attempts: u32,
    /// First backoff between read attempts; doubles each time, up to 10 s, with jitter
    /// ([`crate::backoff`]).
    pub retry_base: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            read_attempts: 3,
            retry_base: Duration::from_millis(200),
        }
    }
}

/// The result of `CreateDBInstance`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// UUID of the new instance.
    pub instance_uuid: String,
    /// Task id of the create, if the cloud returned one.
    pub task_id: Option<String>,
}

/// Filters of `DescribeDBInstances`. The cloud may match loosely; callers check equality.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceFilter {
    /// `InstanceUuid`.
    pub instance_uuid: Option<String>,
    /// `InstanceName`.
    pub instance_name: Option<String>,
    /// `IP`.
    pub ip: Option<String>,
    /// `TagName`: instances with a tag of this name.
    pub tag_name: Option<String>,
}

/// Filters of `DescribeVdc`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VdcFilter {
    /// `RegionId`.
    pub region_id: Option<String>,
    /// `VdcId`.
    pub vdc_id: Option<String>,
    /// `Keyword` (matched by the cloud against names).
    pub keyword: Option<String>,
}

/// The service an action belongs to: the path it is sent to, with the same signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Redis,
    Network,
}

/// A CDS Redis API client for one access key. Cheap to clone.
#[derive(Clone)]
pub struct CdsClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The endpoint without a service path, e.g. `https://cdsapi.capitalonline.net`.
    root: String,
    /// For full listings only, keeping at most one idle connection. A connection keeps the read
    /// buffer its largest answer grew (hyper's grows up to about 400 KiB for a listing, and does
    /// not shrink): on the shared pool, listings landed on many of its connections, and heap
    /// profiles of the benchmark at 1,000 objects found 1.7 to 3.1 MiB in the read buffers of 13
    /// to 18 connections. Listings are one at a time per account (the inventory), so one
    /// connection serves them.
    listing_http: reqwest::Client,
    base_url: String,
    credentials: Credentials,
    limiter: SharedRateLimiter,
    config: ClientConfig,
    observer: Option<Arc<dyn CallObserver>>,
    gate: Option<Arc<dyn SendGate>>,
}

impl std::fmt::Debug for CdsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdsClient")
            .field("base_url", &self.inner.base_url)
            .field("credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

/// Installs the process-wide rustls crypto provider (ring) once; reqwest is built without one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl CdsClient {
    /// A client for `credentials`, sharing `limiter` with every other client of the process.
    pub fn new(config: ClientConfig, credentials: Credentials, limiter: SharedRateLimiter) -> Result<Self, CdsError> {
        install_crypto_provider();
        let http_client = |idle_per_host: usize| {
            reqwest::Client::builder()
                .connect_timeout(config.connect_timeout)
                .timeout(config.request_timeout)
                .user_agent(concat!("cds-redis-operator/", env!("CARGO_PKG_VERSION")))
                .pool_max_idle_per_host(idle_per_host)
                .build()
                .map_err(|e| CdsError::transport("client", e))
        };
        // reqwest's default: no limit on idle connections.
        let http = http_client(usize::MAX)?;
        let listing_http = http_client(1)?;
        let base = config.endpoint.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CdsError::other(
                "client",
                ErrorKind::Config,
                &format!("endpoint {base:?} is not an http(s) URL"),
            ));
        }
        let root = base.strip_suffix("/redis").unwrap_or(base).to_owned();
        let base_url = format!("{root}{SERVICE_PATH}");
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                root,
                listing_http,
                base_url,
                credentials,
                limiter,
                config,
                observer: None,
                gate: None,
            }),
        })
    }

    /// The same client reporting every call to `observer`.
    pub fn with_observer(self, observer: Arc<dyn CallObserver>) -> Self {
        self.rebuild(|inner| inner.observer = Some(observer))
    }

    /// The same client sending a request only while `gate` allows it.
    pub fn with_gate(self, gate: Arc<dyn SendGate>) -> Self {
        self.rebuild(|inner| inner.gate = Some(gate))
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|arc| Inner {
            http: arc.http.clone(),
            root: arc.root.clone(),
            listing_http: arc.listing_http.clone(),
            base_url: arc.base_url.clone(),
            credentials: arc.credentials.clone(),
            limiter: arc.limiter.clone(),
            config: arc.config.clone(),
            observer: arc.observer.clone(),
            gate: arc.gate.clone(),
        });
        change(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// The service URL, e.g. `https://cdsapi.capitalonline.net/redis/`.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// `DescribeRegins`: regions and whether Redis is on sale there (empty ids skipped).
    pub async fn describe_regions(&self) -> Result<Vec<wire::Region>, CdsError> {
        let env = self.get("DescribeRegins", vec![]).await?;
        let regions: Vec<wire::Region> = decode("DescribeRegins", env.data_as_list())?;
        Ok(regions.into_iter().filter(|r| !r.region_id.is_empty()).collect())
    }

    /// `DescribeVdc` (on `/network/`): the VDCs matching `filter`, every page of them.
    pub async fn describe_vdcs(&self, filter: &VdcFilter) -> Result<Vec<wire::Vdc>, CdsError> {
        const ACTION: &str = "DescribeVdc";
        let mut base = vec![];
        for (k, v) in [
            ("RegionId", &filter.region_id),
            ("VdcId", &filter.vdc_id),
            ("Keyword", &filter.keyword),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                base.push((k, v.clone()));
            }
        }
        let mut vdcs = vec![];
        for page in 1..=MAX_PAGES {
            let mut params = base.clone();
            params.push(("PageNumber", page.to_string()));
            let env = self.get_from(Service::Network, ACTION, params).await?;
            let listed: Vec<wire::Vdc> = decode(ACTION, env.data_as_list())?;
            let empty = listed.is_empty();
            vdcs.extend(listed);
            // The doc's example has no page count (one page); its table has a top-level one.
            if empty || env.page_count.is_none_or(|count| page >= count) {
                break;
            }
        }
        Ok(vdcs)
    }

    /// `DescribeAvailableDBConfig`: the Redis catalogue of `region_id`.
    pub async fn describe_available_db_config(&self, region_id: &str) -> Result<wire::DbConfig, CdsError> {
        let env = self
            .get("DescribeAvailableDBConfig", vec![("RegionId", region_id.to_owned())])
            .await?;
        decode("DescribeAvailableDBConfig", env.data_as())
    }

    /// `CreateDBInstance`, sent once: never retried here, since the cloud has no idempotency
    /// token. On an error with [`CdsError::outcome_unknown`] the instance may exist.
    pub async fn create_instance(&self, request: &wire::CreateInstanceRequest) -> Result<Created, CdsError> {
        const ACTION: &str = "CreateDBInstance";
        let body =
            serde_json::to_value(request).map_err(|e| CdsError::other(ACTION, ErrorKind::Config, &e.to_string()))?;
        let env = self.post(ACTION, body).await?;
        let data: wire::CreateInstanceData = decode(ACTION, env.data_as())?;
        let instance_uuid = data
            .instances_uuid
            .into_iter()
            .next()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| CdsError::other(ACTION, ErrorKind::Decode, "the answer holds no InstancesUuid"))?;
        Ok(Created {
            instance_uuid,
            task_id: env.task_id(),
        })
    }

    /// `DescribeDBInstances` with optional filters (all instances of the account without).
    pub async fn describe_instances(&self, filter: &InstanceFilter) -> Result<Vec<wire::Instance>, CdsError> {
        self.describe_instances_as(filter).await
    }

    /// [`Self::describe_instances`], parsed into `T` (e.g. [`wire::InstanceSummary`]).
    pub async fn describe_instances_as<T: serde::de::DeserializeOwned>(
        &self,
        filter: &InstanceFilter,
    ) -> Result<Vec<T>, CdsError> {
        let mut params = vec![];
        for (k, v) in [
            ("InstanceUuid", &filter.instance_uuid),
            ("InstanceName", &filter.instance_name),
            ("IP", &filter.ip),
            ("TagName", &filter.tag_name),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                params.push((k, v.clone()));
            }
        }
        let env = self.get("DescribeDBInstances", params).await?;
        decode("DescribeDBInstances", env.data_as_list())
    }

    /// The instance with exactly this UUID, if the cloud lists it.
    pub async fn describe_instance(&self, instance_uuid: &str) -> Result<Option<wire::Instance>, CdsError> {
        let filter = InstanceFilter {
            instance_uuid: Some(instance_uuid.to_owned()),
            ..Default::default()
        };
        Ok(self
            .describe_instances(&filter)
            .await?
            .into_iter()
            .find(|i| i.instance_uuid == instance_uuid))
    }

    /// `DeleteDBInstance`, sent once. Returns the task id, if any.
    pub async fn delete_instance(&self, instance_uuid: &str) -> Result<Option<String>, CdsError> {
        let body = serde_json::json!({ "InstanceUuid": instance_uuid });
        Ok(self.post("DeleteDBInstance", body).await?.task_id())
    }

    /// `DescribeBackups` of an instance.
    pub async fn describe_backups(&self, instance_uuid: &str) -> Result<Vec<wire::Backup>, CdsError> {
        let env = self
            .get("DescribeBackups", vec![("InstanceUuid", instance_uuid.to_owned())])
            .await?;
        decode("DescribeBackups", env.data_as_list())
    }

    /// `DownloadBackup`: one backup with its download URLs.
    pub async fn download_backup(&self, instance_uuid: &str, backup_id: &str) -> Result<wire::Backup, CdsError> {
        let params = vec![
            ("InstanceUuid", instance_uuid.to_owned()),
            ("BackupId", backup_id.to_owned()),
        ];
        let env = self.get("DownloadBackup", params).await?;
        decode("DownloadBackup", env.data_as())
    }

    /// `CreateBackup`, sent once. Returns the task id, if any.
    pub async fn create_backup(&self, instance_uuid: &str, desc: &str) -> Result<Option<String>, CdsError> {
        let body = serde_json::to_value(wire::CreateBackupRequest {
            instance_uuid: instance_uuid.into(),
            desc: desc.into(),
        })
        .expect("plain struct");
        Ok(self.post("CreateBackup", body).await?.task_id())
    }

    /// `DeleteBackup`, sent once. Returns the task id, if any.
    pub async fn delete_backup(&self, instance_uuid: &str, backup_id: &str) -> Result<Option<String>, CdsError> {
        let body = serde_json::to_value(wire::DeleteBackupRequest {
            instance_uuid: instance_uuid.into(),
            backup_id: backup_id.into(),
        })
        .expect("plain struct");
        Ok(self.post("DeleteBackup", body).await?.task_id())
    }

    /// A read of the Redis service.
    async fn get(&self, action: &str, params: Vec<(&str, String)>) -> Result<Envelope, CdsError> {
        self.get_from(Service::Redis, action, params).await
    }

    /// A read: parameters signed in the query, retried on retryable errors with backoff.
    async fn get_from(
        &self,
        service: Service,
        action: &str,
        params: Vec<(&str, String)>,
    ) -> Result<Envelope, CdsError> {
        let attempts = self.inner.config.read_attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.send(service, action, Method::Get, &params, None).await {
                // A throttled account's calls are paused: the caller retries later, without
                // holding a worker every account shares.
                Err(e) if e.is_throttled() => return Err(e),
                Err(e) if e.is_retryable() && attempt < attempts => {
                    let delay = backoff::exponential(self.inner.config.retry_base, attempt, RETRY_CAP)
                        .max(e.retry_after().unwrap_or_default());
                    tracing::debug!(action, attempt, delay_ms = delay.as_millis() as u64, error = %e, "retrying CDS read");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// A write: common parameters signed, the body as JSON, sent exactly once.
    async fn post(&self, action: &str, body: Value) -> Result<Envelope, CdsError> {
        self.send(Service::Redis, action, Method::Post, &[], Some(body)).await
    }

    async fn send(
        &self,
        service: Service,
        action: &str,
        method: Method,
        params: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Envelope, CdsError> {
        let span = tracing::debug_span!(
            "cds_call",
            action,
            status = tracing::field::Empty,
            code = tracing::field::Empty,
            latency_ms = tracing::field::Empty
        );
        async {
            let started = Instant::now();
            let result = self.send_once(service, action, method, params, body).await;
            let latency = started.elapsed();
            let span = tracing::Span::current();
            span.record("latency_ms", latency.as_millis() as u64);
            let outcome = match &result {
                Ok(_) => {
                    span.record("status", 200);
                    "success".to_owned()
                }
                Err(e) => {
                    if let Some(s) = e.http_status {
                        span.record("status", s);
                    }
                    span.record("code", e.metric_label());
                    e.metric_label()
                }
            };
            tracing::debug!(outcome, "CDS call finished");
            if let Some(obs) = &self.inner.observer {
                obs.observe(action, &outcome, latency);
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn send_once(
        &self,
        service: Service,
        action: &str,
        method: Method,
        params: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Envelope, CdsError> {
        if self.inner.limiter.paused_for().is_some() {
            // The same words every time: the message goes into status, and a changing one would
            // make a status write, and so a reconcile, of every failure.
            return Err(CdsError::other(
                action,
                ErrorKind::RateLimited,
                "not sent: the cloud is throttling this account; its calls are paused",
            ));
        }
        let wait = self.inner.config.request_timeout;
        if tokio::time::timeout(wait, self.inner.limiter.until_ready())
            .await
            .is_err()
        {
            return Err(CdsError::other(
                action,
                ErrorKind::RateLimited,
                "the operator's CDS rate limit is exhausted",
            ));
        }
        if self.inner.gate.as_ref().is_some_and(|g| !g.may_send()) {
            return Err(CdsError::other(
                action,
                ErrorKind::Fenced,
                "not sent: this process is no longer the leader",
            ));
        }
        let nonce = uuid::Uuid::new_v4().to_string();
        let signed = signer::sign(
            &self.inner.credentials,
            method,
            action,
            params,
            jiff::Timestamp::now(),
            &nonce,
        );
        let url = match service {
            Service::Redis => format!("{}?{}", self.inner.base_url, signed.query),
            Service::Network => format!("{}{NETWORK_PATH}?{}", self.inner.root, signed.query),
        };
        // A full listing: the one large answer.
        let http = if action == "DescribeDBInstances" && params.is_empty() {
            &self.inner.listing_http
        } else {
            &self.inner.http
        };
        let request = match method {
            Method::Get => http.get(url),
            Method::Post => http.post(url).json(&body.unwrap_or(Value::Object(Default::default()))),
        };
        let response = request.send().await.map_err(|e| CdsError::transport(action, e))?;
        let status = response.status().as_u16();
        let header_request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Parsed from the received bytes: no UTF-8 copy of a possibly large listing.
        let body = response.bytes().await.map_err(|e| CdsError::transport(action, e))?;
        let result = interpret(action, status, &body, header_request_id);
        match &result {
            Err(e) if e.is_throttled() => self.inner.limiter.throttled(e.retry_after().unwrap_or_default()),
            _ => self.inner.limiter.answered(),
        }
        result
    }
}

/// Turns an HTTP answer into an envelope or an error (pure; the client's decision table).
pub fn interpret(
    action: &str,
    status: u16,
    body: impl AsRef<[u8]>,
    header_request_id: Option<String>,
) -> Result<Envelope, CdsError> {
    let body = body.as_ref();
    match serde_json::from_slice::<Envelope>(body) {
        Ok(env) => {
            let request_id = header_request_id.or_else(|| Some(env.request_id.clone()));
            if status == 200 && env.code == wire::SUCCESS {
                Ok(env)
            } else {
                let code = (!env.code.is_empty() && env.code != wire::SUCCESS).then(|| env.code.clone());
                Err(CdsError::api(action, status, code, &env.message, request_id))
            }
        }
        Err(_) if status != 200 => {
            let snippet: String = String::from_utf8_lossy(&body[..body.len().min(800)])
                .chars()
                .take(200)
                .collect();
            Err(CdsError::api(action, status, None, &snippet, header_request_id))
        }
        Err(e) => Err(CdsError::other(
            action,
            ErrorKind::Decode,
            &format!("the answer is not a CDS envelope: {e}"),
        )),
    }
}

fn decode<T>(action: &str, result: Result<T, serde_json::Error>) -> Result<T, CdsError> {
    result.map_err(|e| CdsError::other(action, ErrorKind::Decode, &format!("unexpected Data: {e}")))
}

#[cfg(test)]
mod tests;
