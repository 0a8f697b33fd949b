//! One shared listing of an account's instances: however many objects ask, at most one
//! `DescribeDBInstances` call per poll period, and concurrent askers share the call in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::client::{CdsClient, InstanceFilter};
use super::error::CdsError;
use super::wire::InstanceSummary;

/// All instances of an account at one moment, sorted by UUID for exact lookups.
#[derive(Debug)]
pub struct Snapshot {
    /// When the listing call was started: anything created before this moment and visible to
    /// the cloud is in it.
    pub requested_at: Instant,
    instances: Vec<InstanceSummary>,
}

impl Snapshot {
    /// A snapshot of `instances` requested at `requested_at`.
    pub fn new(mut instances: Vec<InstanceSummary>, requested_at: Instant) -> Self {
        // Sorted in place, no index: a lookup is a binary search, and the snapshot holds each
        // instance once, without the slack a growing Vec leaves.
        instances.sort_unstable_by(|a, b| a.instance_uuid.cmp(&b.instance_uuid));
        instances.shrink_to_fit();
        Self {
            requested_at,
            instances,
        }
    }

    /// The instance with exactly this UUID (the first, should the cloud list one twice).
    pub fn by_uuid(&self, uuid: &str) -> Option<&InstanceSummary> {
        let first = self.instances.partition_point(|i| i.instance_uuid.as_str() < uuid);
        self.instances.get(first).filter(|i| i.instance_uuid == uuid)
    }

    /// Every instance named exactly `name`.
    pub fn by_name(&self, name: &str) -> Vec<&InstanceSummary> {
        self.instances.iter().filter(|i| i.instance_name == name).collect()
    }

    /// Every instance.
    pub fn instances(&self) -> &[InstanceSummary] {
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
        let instances = self
            .client
            .describe_instances_as::<InstanceSummary>(&InstanceFilter::default())
            .await?;
        let snap = Arc::new(Snapshot::new(instances, requested_at));
        *latest = Some(snap.clone());
        Ok(snap)
    }

    /// A per-UUID query, for the rare cases a fresh answer on one instance is needed.
    pub async fn query_uuid(&self, uuid: &str) -> Result<Option<InstanceSummary>, CdsError> {
        Ok(self.client.describe_instance(uuid).await?.map(InstanceSummary::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(uuid: &str, name: &str) -> InstanceSummary {
        InstanceSummary {
            instance_uuid: uuid.into(),
            instance_name: name.into(),
            ..InstanceSummary::default()
        }
    }

    #[test]
    fn lookups_by_uuid_and_name_are_exact() {
        let snap = Snapshot::new(
            vec![
                inst("c", "cache"),
                inst("a", "cache-2"),
                inst("b", "cache"),
                inst("ab", "x"),
            ],
            Instant::now(),
        );
        for uuid in ["a", "ab", "b", "c"] {
            assert_eq!(snap.by_uuid(uuid).map(|i| i.instance_uuid.as_str()), Some(uuid));
        }
        for absent in ["", "0", "aa", "bb", "d"] {
            assert!(snap.by_uuid(absent).is_none(), "{absent}");
        }
        let mut named: Vec<&str> = snap.by_name("cache").iter().map(|i| i.instance_uuid.as_str()).collect();
        named.sort_unstable();
        assert_eq!(named, ["b", "c"]);
        assert!(snap.by_name("cach").is_empty());
        assert_eq!(snap.instances().len(), 4);
    }
}
