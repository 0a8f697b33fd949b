//! One CDS client, inventory and catalogue per account, shared by every object that uses it, so
//! one listing per account and poll period serves all of them; and one call budget (rate
//! limiter) per config, so one account's burst or outage never slows another.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The config, the endpoint, the access key id and a fingerprint of its secret.
type AccountKey = (ConfigId, String, String, u64);

/// How long an account nobody asked for is kept.
const UNUSED_ACCOUNT_TTL: Duration = Duration::from_secs(3600);

use secrecy::ExposeSecret as _;

use crate::cds::backups::BackupListings;
use crate::cds::catalogue::Catalogue;
use crate::cds::client::{CallObserver, SendGate};
use crate::cds::inventory::Inventory;
use crate::cds::preflight::Preflight;
use crate::cds::{CdsClient, CdsError, ClientConfig, Credentials, SharedRateLimiter};
use crate::crd::account::ConfigId;

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
    /// The config's call budget the client waits on.
    limiter: SharedRateLimiter,
    /// Reconciles of this account's objects under way (see [`Accounts::enter`]).
    in_flight: Arc<AtomicUsize>,
    /// When a reconcile of this account's objects last started.
    last_entered: Mutex<Option<Instant>>,
}

/// A reconcile of an account's object under way; ends when dropped.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How recently an account must have started a reconcile to count as busy for the fair share.
const ACTIVE_WINDOW: Duration = Duration::from_secs(5);

/// How long an account's lookups are cached.
#[derive(Clone, Copy, Debug)]
pub struct Ttls {
    /// Region catalogues.
    pub catalogue: Duration,
    /// The preflight's regions and VDCs.
    pub preflight: Duration,
}

/// Calls per second and burst.
type Rate = (f64, u32);

/// What a config asks of its account, where it differs from the operator's defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budget {
    /// The endpoint.
    pub endpoint: Option<String>,
    /// Calls per second.
    pub qps: Option<f64>,
    /// Burst.
    pub burst: Option<u32>,
}

/// The accounts in use, keyed by config, endpoint, access key id and a fingerprint of the secret
/// (a rotated secret gets a fresh account; the fingerprint never leaves memory). The rate limiter
/// is kept per config, across rotations.
pub struct Accounts {
    config: ClientConfig,
    default_rate: Rate,
    limiters: Mutex<HashMap<ConfigId, (Rate, SharedRateLimiter)>>,
    observer: Arc<dyn CallObserver>,
    gate: Arc<dyn SendGate>,
    ttls: Ttls,
    accounts: Mutex<HashMap<AccountKey, (Arc<Account>, Instant)>>,
    /// The controller's workers, shared fairly by the busy accounts.
    workers: usize,
}

impl Accounts {
    /// A pool whose accounts get `qps` and `burst` unless their config says otherwise, report
    /// to `observer` and send only while `gate` allows it.
    pub fn new(
        config: ClientConfig,
        (qps, burst): Rate,
        observer: Arc<dyn CallObserver>,
        gate: Arc<dyn SendGate>,
        ttls: Ttls,
    ) -> Self {
        Self {
            config,
            default_rate: (qps, burst),
            limiters: Mutex::new(HashMap::new()),
            observer,
            gate,
            ttls,
            accounts: Mutex::new(HashMap::new()),
            workers: usize::MAX,
        }
    }

    /// Shares `workers` (the controller's concurrency) fairly between the accounts busy at the
    /// same time (see [`Accounts::enter`]).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Starts a reconcile of one of `account`'s objects, unless the account already has its
    /// share of the workers: all of them while it is the only busy account, `workers / n` while
    /// `n` accounts are (busy: a reconcile started in the last 5 s). A slow account then never
    /// holds the workers another account needs; the object that did not get in is tried again
    /// a moment later, without a cloud call or a write.
    pub fn enter(&self, account: &Account) -> Option<InFlight> {
        let now = Instant::now();
        *account.last_entered.lock().expect("not poisoned") = Some(now);
        let busy: std::collections::HashSet<ConfigId> = self
            .accounts
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(_, (a, _))| {
                a.last_entered
                    .lock()
                    .expect("not poisoned")
                    .is_some_and(|t| now.duration_since(t) < ACTIVE_WINDOW)
            })
            .map(|(k, _)| k.0.clone())
            .collect();
        let share = (self.workers / busy.len().max(1)).max(1);
        let before = account.in_flight.fetch_add(1, Ordering::SeqCst);
        if before >= share {
            account.in_flight.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(InFlight(account.in_flight.clone()))
    }

    /// The budget of `config`: its rate limiter, made again when its rate changes.
    fn limiter(&self, config: &ConfigId, budget: &Budget) -> SharedRateLimiter {
        let rate = (
            budget.qps.unwrap_or(self.default_rate.0),
            budget.burst.unwrap_or(self.default_rate.1),
        );
        let mut limiters = self.limiters.lock().expect("not poisoned");
        match limiters.get(config) {
            Some((r, limiter)) if *r == rate => limiter.clone(),
            _ => {
                let limiter = crate::cds::rate_limiter(rate.0, rate.1);
                limiters.insert(config.clone(), (rate, limiter.clone()));
                limiter
            }
        }
    }

    /// The account of `credentials` under `config`, made on first use.
    pub fn get(&self, config: &ConfigId, budget: &Budget, credentials: Credentials) -> Result<Arc<Account>, CdsError> {
        let mut h = DefaultHasher::new();
        credentials.access_key_secret.expose_secret().hash(&mut h);
        let endpoint = budget.endpoint.clone().unwrap_or_else(|| self.config.endpoint.clone());
        let key = (
            config.clone(),
            endpoint.clone(),
            credentials.access_key_id.clone(),
            h.finish(),
        );
        let limiter = self.limiter(config, budget);
        let mut accounts = self.accounts.lock().expect("not poisoned");
        let now = Instant::now();
        if let Some((a, used)) = accounts.get_mut(&key)
            && Arc::ptr_eq(&a.limiter, &limiter)
        {
            *used = now;
            return Ok(a.clone());
        }
        // Two Secrets may carry the same key id with different secrets (one of them wrong, or
        // mid-rotation): each keeps its own account. Accounts unused for an hour (a rotated-away
        // secret) are dropped.
        accounts.retain(|_, (_, used)| now.duration_since(*used) < UNUSED_ACCOUNT_TTL);
        let client_config = ClientConfig {
            endpoint,
            ..self.config.clone()
        };
        let client = CdsClient::new(client_config, credentials, limiter.clone())?
            .with_observer(self.observer.clone())
            .with_gate(self.gate.clone());
        let account = Arc::new(Account {
            inventory: Inventory::new(client.clone()),
            catalogue: Catalogue::new(self.ttls.catalogue),
            preflight: Preflight::new(self.ttls.preflight),
            backups: BackupListings::default(),
            client,
            limiter,
            in_flight: Arc::new(AtomicUsize::new(0)),
            last_entered: Mutex::new(None),
        });
        accounts.insert(key, (account.clone(), now));
        Ok(account)
    }
}
