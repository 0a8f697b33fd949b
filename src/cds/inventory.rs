//! One shared listing of an account's instances: however many objects ask, at most one
//! `DescribeDBInstances` call per poll period, and concurrent askers share the call in flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::client::{CdsClient, InstanceFilter};
use super::error::CdsError;
use super::wire::Instance;

/// All instances of an account at one moment, indexed for exact lookups.
#[derive(Debug)]
pub struct Snapshot {
    /// When the listing call was started: anything created before this moment and visible to
    /// the cloud is in it.
    pub requested_at: Instant,
    /// When the listing was taken, as wall-clock time.
    pub taken_at: jiff::Timestamp,
    instances: Vec<Instance>,
    by_uuid: HashMap<String, usize>,
}

impl Snapshot {
    /// A snapshot of `instances` requested at `requested_at`.
    pub fn new(instances: Vec<Instance>, requested_at: Instant) -> Self {
        let by_uuid = instances
            .iter()
            .enumerate()
            .map(|(i, inst)| (inst.instance_uuid.clone(), i))
            .collect();
        Self {
            requested_at,
            taken_at: jiff::Timestamp::now(),
            instances,
            by_uuid,
        }
    }

    /// The instance with exactly this UUID.
    pub fn by_uuid(&self, uuid: &str) -> Option<&Instance> {
        self.by_uuid.get(uuid).map(|&i| &self.instances[i])
    }

    /// Every instance named exactly `name`.
    pub fn by_name(&self, name: &str) -> Vec<&Instance> {
        self.instances.iter().filter(|i| i.instance_name == name).collect()
    }

    /// Every instance.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }
}

/// The shared listing of one account.
pub struct Inventory {
    client: CdsClient,
    latest: Mutex<Option<Arc<Snapshot>>>,
}

impl Inventory {
    /// An inventory listing through `client`.
    pub fn new(client: CdsClient) -> Self {
        Self {
            client,
            latest: Mutex::new(None),
        }
    }

    /// The client the inventory lists through.
    pub fn client(&self) -> &CdsClient {
        &self.client
    }

    /// A snapshot no older than `max_age`. Callers that arrive while a listing is in flight wait
    /// for it and share its result.
    pub async fn snapshot(&self, max_age: Duration) -> Result<Arc<Snapshot>, CdsError> {
        let not_before = Instant::now().checked_sub(max_age).unwrap_or_else(Instant::now);
        self.snapshot_since(not_before).await
    }

    /// A snapshot whose listing was requested at or after `not_before` (e.g. after a create, to
    /// be sure the listing could see it).
    pub async fn snapshot_since(&self, not_before: Instant) -> Result<Arc<Snapshot>, CdsError> {
        let mut latest = self.latest.lock().await;
        if let Some(s) = latest.as_ref()
            && s.requested_at >= not_before
        {
            return Ok(s.clone());
        }
        let requested_at = Instant::now();
        let instances = self.client.describe_instances(&InstanceFilter::default()).await?;
        let snap = Arc::new(Snapshot::new(instances, requested_at));
        *latest = Some(snap.clone());
        Ok(snap)
    }

    /// A per-UUID query, for the rare cases a fresh answer on one instance is needed.
    pub async fn query_uuid(&self, uuid: &str) -> Result<Option<Instance>, CdsError> {
        self.client.describe_instance(uuid).await
    }
}
