//! One CDS client, inventory and catalogue per set of credentials, shared by every object that
//! uses them, so one listing per account and poll period serves all of them.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An access key id and a fingerprint of its secret.
type AccountKey = (String, u64);

/// How long an account nobody asked for is kept.
const UNUSED_ACCOUNT_TTL: Duration = Duration::from_secs(3600);

use secrecy::ExposeSecret as _;

use crate::cds::backups::BackupListings;
use crate::cds::catalogue::Catalogue;
use crate::cds::client::{CallObserver, SendGate};
use crate::cds::inventory::Inventory;
use crate::cds::preflight::Preflight;
use crate::cds::{CdsClient, CdsError, ClientConfig, Credentials, SharedRateLimiter};

/// Everything tied to one access key.
pub struct Account {
    /// The client.
    pub client: CdsClient,
    /// The shared listing.
    pub inventory: Inventory,
    /// The region catalogues.
    pub catalogue: Catalogue,
    /// What the preflight of a create looked up.
    pub preflight: Preflight,
    /// The shared backup listings, per instance.
    pub backups: BackupListings,
}

/// How long an account's lookups are cached.
#[derive(Clone, Copy, Debug)]
pub struct Ttls {
    /// Region catalogues.
    pub catalogue: Duration,
    /// The preflight's regions and VDCs.
    pub preflight: Duration,
}

/// The accounts in use, keyed by access key id and a fingerprint of the secret (a rotated
/// secret gets a fresh account; the fingerprint never leaves memory).
pub struct Accounts {
    config: ClientConfig,
    limiter: SharedRateLimiter,
    observer: Arc<dyn CallObserver>,
    gate: Arc<dyn SendGate>,
    ttls: Ttls,
    accounts: Mutex<HashMap<AccountKey, (Arc<Account>, Instant)>>,
}

impl Accounts {
    /// A pool whose clients share `limiter`, report to `observer` and send only while `gate`
    /// allows it.
    pub fn new(
        config: ClientConfig,
        limiter: SharedRateLimiter,
        observer: Arc<dyn CallObserver>,
        gate: Arc<dyn SendGate>,
        ttls: Ttls,
    ) -> Self {
        Self {
            config,
            limiter,
            observer,
            gate,
            ttls,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// The account of `credentials`, made on first use.
    pub fn get(&self, credentials: Credentials) -> Result<Arc<Account>, CdsError> {
        let mut h = DefaultHasher::new();
        credentials.access_key_secret.expose_secret().hash(&mut h);
        let key = (credentials.access_key_id.clone(), h.finish());
        let mut accounts = self.accounts.lock().expect("not poisoned");
        let now = Instant::now();
        if let Some((a, used)) = accounts.get_mut(&key) {
            *used = now;
            return Ok(a.clone());
        }
        // Two Secrets may carry the same key id with different secrets (one of them wrong, or
        // mid-rotation): each keeps its own account. Accounts unused for an hour (a rotated-away
        // secret) are dropped.
        accounts.retain(|_, (_, used)| now.duration_since(*used) < UNUSED_ACCOUNT_TTL);
        let client = CdsClient::new(self.config.clone(), credentials, self.limiter.clone())?
            .with_observer(self.observer.clone())
            .with_gate(self.gate.clone());
        let account = Arc::new(Account {
            inventory: Inventory::new(client.clone()),
            catalogue: Catalogue::new(self.ttls.catalogue),
            preflight: Preflight::new(self.ttls.preflight),
            backups: BackupListings::default(),
            client,
        });
        accounts.insert(key, (account.clone(), now));
        Ok(account)
    }
}
