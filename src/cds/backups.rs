//! One shared `DescribeBackups` listing per cloud instance: the action is per instance, so all the
//! backups of one instance share one call per poll period, and concurrent askers share the call
//! in flight (as [`super::inventory`] does for instances).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::CdsClient;
use super::error::CdsError;
use super::wire::Backup;

/// Listings not asked for in this long are dropped (their instance's backups are all settled).
const UNUSED_LISTING_TTL: Duration = Duration::from_secs(2 * 3600);

/// The backups of one instance at one moment.
#[derive(Debug)]
pub struct BackupListing {
    /// When the listing call was started.
    pub requested_at: Instant,
    /// The backups, as listed.
    pub backups: Vec<Backup>,
}

impl BackupListing {
    /// The backup with this id.
    pub fn by_id(&self, id: &str) -> Option<&Backup> {
        self.backups.iter().find(|b| b.backup_id == id)
    }

    /// The backups whose description carries `marker`.
    pub fn by_marker(&self, marker: &str) -> Vec<&Backup> {
        self.backups.iter().filter(|b| b.desc.contains(marker)).collect()
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<BackupListing>>>>;

/// The shared backup listings of one account, by instance UUID.
#[derive(Default)]
pub struct BackupListings {
    slots: Mutex<HashMap<String, (Slot, Instant)>>,
}

impl BackupListings {
    /// A listing of `uuid`'s backups requested at or after `not_before`. Callers that arrive
    /// while one is in flight wait for it and share it.
    pub async fn listing(
        &self,
        client: &CdsClient,
        uuid: &str,
        not_before: Instant,
    ) -> Result<Arc<BackupListing>, CdsError> {
        let slot = self.slot(uuid);
        let mut latest = slot.lock().await;
        if let Some(l) = latest.as_ref()
            && l.requested_at >= not_before
        {
            return Ok(l.clone());
        }
        let requested_at = Instant::now();
        let backups = client.describe_backups(uuid).await?;
        let listing = Arc::new(BackupListing { requested_at, backups });
        *latest = Some(listing.clone());
        Ok(listing)
    }

    /// Forgets `uuid`'s listing: a create or delete was just sent, so no listing requested
    /// before it may answer for the backups of that instance.
    pub async fn invalidate(&self, uuid: &str) {
        *self.slot(uuid).lock().await = None;
    }

    fn slot(&self, uuid: &str) -> Slot {
        let mut slots = self.slots.lock().expect("not poisoned");
        let now = Instant::now();
        slots.retain(|_, (_, used)| now.duration_since(*used) < UNUSED_LISTING_TTL);
        let (slot, used) = slots.entry(uuid.to_owned()).or_insert_with(|| (Slot::default(), now));
        *used = now;
        slot.clone()
    }
}
