//! The soak: rounds of creating objects, injecting cloud faults, killing the operator at a random
//! moment (SIGKILL) and restarting it, and deleting some objects; then the invariants.
//!
//! Besides these plain rounds, the seeded dice pick rounds that put the contract's Ownership rules
//! under the same faults and kills ([`RoundKind`]): name collisions between objects (and
//! user Secrets whose names collide with the operator's), Secrets deleted before their objects,
//! namespace deletions, a leader frozen (SIGSTOP) past its lease while a second replica takes
//! over, and a cloud that shows no `DELETING` status. The first rounds go through every kind once
//! (in a seeded order), so even a short soak covers them all.
//!
//! The invariants ([`invariant`]) are checked after every round where they can be (no instance
//! recorded by two objects, no foreign Secret modified, no cloud call by a replica that lost its
//! lease) and once everything has converged at the end (finalizers, instances, orphans, deletes
//! and creates per instance from the simulator's write log). Used by the short soak of the test
//! suite and by `scripts/soak.sh`.

mod invariants;
mod rounds;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cds_redis_operator::crd::account::ProviderConfig;
use cds_redis_operator::crd::{RedisInstance, default_instance_name};
use cds_redis_operator::simulator::{RunningSimulator, SimulatorConfig};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::control_plane::{self, ControlPlane, unique_namespace};
use super::operator::{Operator, OperatorOptions};
use super::sim::{self, Admin, KEY_ID, KEY_SECRET};

/// How long and how hard to soak.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// Rounds at most.
    pub rounds: usize,
    /// Stop starting rounds after this long.
    pub max_duration: Duration,
    /// Objects created per round.
    pub batch: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// How long everything may take to converge once the faults are off.
    pub converge_within: Duration,
}

/// What a round does besides creating a batch, injecting faults and deleting some objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoundKind {
    /// Only that, then a SIGKILL of the operator at a random moment and a restart.
    Plain,
    /// Two objects with the same `spec.instanceName` (in one namespace or two), an object asking
    /// to adopt an instance another object records, and an object whose connection Secret name is
    /// taken by a user's Secret; then the kill.
    NameCollision,
    /// Objects using their own account and password Secrets; the Secrets are deleted first, then
    /// the objects; then the kill.
    SecretsFirst,
    /// A namespace with objects, their Secrets and connection Secrets is deleted; then the kill.
    /// Needs kube-controller-manager.
    NamespaceDeletion,
    /// Two replicas with leader election on one Lease; the leader is frozen (SIGSTOP) past its
    /// lease while the other takes over, then resumed (SIGCONT): it must stop without a cloud
    /// call. Replaces the kill.
    FrozenLeader,
    /// The cloud keeps an instance being deleted listed with its old status (no `DELETING`);
    /// more deletes than usual; then the kill.
    NoDeletingStatus,
}

impl RoundKind {
    /// Every kind.
    pub const ALL: [RoundKind; 6] = [
        Self::Plain,
        Self::NameCollision,
        Self::SecretsFirst,
        Self::NamespaceDeletion,
        Self::FrozenLeader,
        Self::NoDeletingStatus,
    ];

    /// Its name in the report.
    pub fn label(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::NameCollision => "name-collision",
            Self::SecretsFirst => "secrets-first",
            Self::NamespaceDeletion => "namespace-deletion",
            Self::FrozenLeader => "frozen-leader",
            Self::NoDeletingStatus => "no-deleting-status",
        }
    }

    /// How often the dice pick it, relative to the others (a frozen-leader round takes about
    /// 20 s, the others a few seconds).
    fn weight(self) -> u32 {
        match self {
            Self::Plain => 4,
            Self::NameCollision | Self::SecretsFirst | Self::NoDeletingStatus => 2,
            Self::NamespaceDeletion | Self::FrozenLeader => 1,
        }
    }
}

/// The invariants, as the report names them, in the order it prints them.
pub mod invariant {
    /// No object stays deleting, no Secret the soak deleted stays (in-use finalizer), no deleted
    /// namespace stays.
    pub const FINALIZERS: &str = "no stuck finalizer or namespace";
    /// Every live object is Ready, or failed with a reason (the expected one, for the objects
    /// made to fail).
    pub const SETTLED: &str = "every object Ready or failed with its reason";
    /// Exactly one cloud instance per object that should have one (none for a rejected create,
    /// at most one per shared name), recorded in its status.
    pub const ONE_INSTANCE: &str = "one cloud instance per object";
    /// Every cloud instance is recorded by an object (one stuck deleting counts: the stuck
    /// finalizer is reported on its own), unless its object was deleted with `Retain`.
    pub const NO_ORPHAN: &str = "no instance without its object (unless Retain)";
    /// No cloud instance is recorded by two `Full` objects (after every round and at the end).
    pub const NOT_SHARED: &str = "no instance recorded by two objects";
    /// User Secrets (password, account, and those whose names collide with what the operator
    /// writes) keep their data, owners, labels and annotations; only an account Secret may get
    /// the in-use finalizer (after every round and at the end).
    pub const FOREIGN_SECRETS: &str = "no foreign Secret modified";
    /// A replica frozen past its lease makes no cloud call once resumed, and stops.
    pub const LEASE: &str = "no cloud call by a replica that lost its lease";
    /// `DeleteDBInstance` calls per instance that reached the cloud (a 409 on an instance still
    /// `CREATING` not counted) are at most 1 + the delete answers the cloud lost.
    pub const DELETES: &str = "deletes per instance <= 1 + lost delete answers (cloud or kill)";
    /// Of an object whose create is rejected for good, at most one create per generation.
    pub const REJECTED: &str = "<= 1 create per object and generation after a definite rejection";

    /// All of them, in report order.
    pub const ALL: [&str; 9] = [
        FINALIZERS,
        SETTLED,
        ONE_INSTANCE,
        NO_ORPHAN,
        NOT_SHARED,
        FOREIGN_SECRETS,
        LEASE,
        DELETES,
        REJECTED,
    ];
}

/// How often an invariant was checked, and how often it did not hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Check {
    /// Times checked.
    pub checked: u64,
    /// Times violated.
    pub violated: u64,
}

/// What happened.
#[derive(Debug, Default)]
pub struct SoakReport {
    /// Rounds completed.
    pub rounds: usize,
    /// Rounds by kind ([`RoundKind::label`]).
    pub kinds: BTreeMap<&'static str, usize>,
    /// SIGKILLs of the operator.
    pub kills: usize,
    /// Leaders frozen (SIGSTOP) past their lease and resumed.
    pub freezes: usize,
    /// Objects created.
    pub created: usize,
    /// Objects deleted (namespace deletions included).
    pub deleted: usize,
    /// Faults injected by the simulator, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Cloud calls by action.
    pub calls: BTreeMap<String, u64>,
    /// Each invariant's count of checks and violations, in [`invariant::ALL`] order.
    pub invariants: Vec<(&'static str, Check)>,
    /// Invariant violations (empty when all held), each prefixed by its invariant.
    pub violations: Vec<String>,
    /// Time to converge after the last round.
    pub converge: Duration,
    /// Live objects at the end.
    pub live: usize,
    /// Ready objects at the end.
    pub ready: usize,
}

impl SoakReport {
    fn new() -> Self {
        Self {
            invariants: invariant::ALL.iter().map(|i| (*i, Check::default())).collect(),
            ..Self::default()
        }
    }

    /// Counts one check of `invariant`; when it does not hold, records `what` went wrong.
    fn check(&mut self, invariant: &'static str, holds: bool, what: impl FnOnce() -> String) {
        let entry = self
            .invariants
            .iter_mut()
            .find(|(name, _)| *name == invariant)
            .expect("a known invariant");
        entry.1.checked += 1;
        if !holds {
            entry.1.violated += 1;
            self.violations.push(format!("[{invariant}] {}", what()));
        }
    }

    /// The counts of `invariant`.
    pub fn invariant(&self, invariant: &str) -> Check {
        self.invariants
            .iter()
            .find(|(name, _)| *name == invariant)
            .map(|(_, c)| *c)
            .unwrap_or_default()
    }
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "soak: {} rounds survived, {} operator kills (SIGKILL), {} leaders frozen past their lease (SIGSTOP/SIGCONT), {} objects created, {} deleted",
            self.rounds, self.kills, self.freezes, self.created, self.deleted
        )?;
        let kinds: Vec<String> = RoundKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.label(), self.kinds.get(k.label()).copied().unwrap_or(0)))
            .collect();
        writeln!(f, "rounds by kind: {}", kinds.join(", "))?;
        writeln!(f, "faults injected: {:?}", self.faults)?;
        writeln!(f, "cloud calls: {:?}", self.calls)?;
        writeln!(
            f,
            "converged in {:.1}s; {} live objects, {} Ready",
            self.converge.as_secs_f64(),
            self.live,
            self.ready
        )?;
        writeln!(f, "invariants (checked / violated):")?;
        for (name, c) in &self.invariants {
            writeln!(f, "  {name}: {} / {}", c.checked, c.violated)?;
        }
        if self.violations.is_empty() {
            writeln!(f, "invariant violations: 0")
        } else {
            writeln!(f, "invariant violations: {}", self.violations.len())?;
            for v in &self.violations {
                writeln!(f, "  - {v}")?;
            }
            Ok(())
        }
    }
}

/// An access key the simulator accepts besides the test key, as (id, secret).
type AccessKey = (&'static str, &'static str);
/// The key of replica A of a frozen-leader round: the simulator counts its calls apart.
const REPLICA_A: AccessKey = ("AKIDsoakReplicaA", "sk-soak-replica-a-DO-NOT-LEAK");
/// The key of replica B of a frozen-leader round.
const REPLICA_B: AccessKey = ("AKIDsoakReplicaB", "sk-soak-replica-b-DO-NOT-LEAK");
/// The key in the account Secrets objects use (through a `ProviderConfig`).
const ACCOUNT: AccessKey = ("AKIDsoakAccount", "sk-soak-account-DO-NOT-LEAK");

/// What the soak expects of an object it made.
#[derive(Clone, Debug, PartialEq)]
enum Class {
    /// Ready in the end, with exactly one instance of its own.
    Normal,
    /// Its create is rejected for good (a `PaasGoodsId` the region does not sell): never an
    /// instance. Holds the start (ms since the epoch) of each of its generations.
    Rejected(Vec<i64>),
    /// Shares `spec.instanceName` (this one) with another object: at most one of them has it.
    Collider(String),
    /// Asks to adopt (`spec.instanceUuid`) an instance another object records.
    Adopter,
    /// Its connection Secret's name is taken by a user's Secret: `SecretConflict`.
    SecretConflict,
}

/// An object the soak made.
#[derive(Clone, Debug)]
struct Tracked {
    ns: String,
    name: String,
    uid: String,
    class: Class,
    /// `deletionPolicy: Retain` (as last set).
    retain: bool,
    /// Deleted by the soak (or with its namespace).
    deleted: bool,
    /// The round that made it.
    round: usize,
}

impl Tracked {
    /// `namespace/name (round N)`, for messages.
    fn describe(&self) -> String {
        format!("{}/{} (made in round {})", self.ns, self.name, self.round)
    }

    /// The name of the instance it creates.
    fn instance_name(&self) -> String {
        match &self.class {
            Class::Collider(shared) => shared.clone(),
            _ => default_instance_name(&self.ns, &self.name, &self.uid),
        }
    }
}

/// A user's Secret, as created, and whether the operator may hold it (in-use finalizer).
struct Foreign {
    created: Secret,
    may_hold: bool,
}

/// Objects and Secrets by (namespace, name).
type NsName = (String, String);

/// The state of a running soak.
struct Soak {
    cp: &'static ControlPlane,
    client: kube::Client,
    /// The main namespace: most objects, and the operator's Lease.
    ns: String,
    /// A second namespace, for collisions across namespaces.
    ns_b: String,
    sim: RunningSimulator,
    admin: Admin,
    rng: StdRng,
    report: SoakReport,
    batch: usize,
    /// The acting operator (in a frozen-leader round: replica A).
    op: Operator,
    /// Replica B of a frozen-leader round, until it takes over.
    standby: Option<Operator>,
    /// Objects made so far, for unique names.
    made: usize,
    /// The round under way.
    round: usize,
    objects: BTreeMap<NsName, Tracked>,
    /// Instance names of objects deleted with `Retain`.
    retained: BTreeSet<String>,
    foreign: BTreeMap<NsName, Foreign>,
    /// Secrets the soak deleted: they must go once unused.
    deleted_secrets: Vec<NsName>,
    /// Namespaces the soak deleted: they must go.
    deleted_namespaces: Vec<String>,
    /// When the operator was SIGKILLed (ms since the epoch), to explain a repeated write.
    kills_at: Vec<i64>,
}

/// Now, in milliseconds since the epoch (the simulator's write log uses the same clock).
fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn random_faults(rng: &mut StdRng) -> Value {
    let actions = [
        "CreateDBInstance",
        "DeleteDBInstance",
        "DescribeDBInstances",
        "DescribeAvailableDBConfig",
    ];
    let mut errors = serde_json::Map::new();
    for a in actions {
        if rng.random_bool(0.5) {
            errors.insert(
                a.into(),
                json!({ "internalError": rng.random_range(0.0..0.3), "resourceInUse": rng.random_range(0.0..0.15), "throttling": rng.random_range(0.0..0.1) }),
            );
        }
    }
    let mode = if rng.random_bool(0.5) { "Drop" } else { "ServerError" };
    json!({
        "errors": errors,
        "latencyMs": rng.random_range(0..150),
        "lostResponses": {
            "CreateDBInstance": { "rate": rng.random_range(0.0..0.5), "mode": mode },
            "DeleteDBInstance": { "rate": rng.random_range(0.0..0.3), "mode": "ServerError" },
        },
        "visibilityLagMs": rng.random_range(0..1500),
    })
}

/// Flags every operator of the soak runs with.
const OPERATOR_ARGS: [&str; 12] = [
    "--visibility-grace",
    "3s",
    // The simulator deletes in 1.5 s: an accepted delete still listed after 20 s was not carried
    // out (an injected 500 and an injected 409 in a row look like one that was), and the
    // convergence window is shorter than the default 5 minutes.
    "--delete-resend-after",
    "20s",
    "--busy-poll-interval",
    "300ms",
    "--steady-poll-interval",
    "5s",
    "--cds-qps",
    "200",
    "--cds-burst",
    "50",
];

/// Runs the soak and checks the invariants.
pub async fn run(config: SoakConfig) -> SoakReport {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, "soak").await;
    let ns_b = unique_namespace(&client, "soak-b").await;
    // Deleted instances stay listed for 1.5 s: several busy polls, so an accepted delete that is
    // sent again (rule 5, in no-deleting-status rounds above all) shows in the write log.
    let mut sim_config = SimulatorConfig::for_tests(
        KEY_ID,
        KEY_SECRET,
        Duration::from_millis(700),
        Duration::from_millis(1500),
    );
    sim_config
        .access_keys
        .extend([REPLICA_A, REPLICA_B, ACCOUNT].map(|(id, secret)| format!("{id}:{secret}")));
    let sim = sim::start_with(sim_config).await;
    let admin = Admin::of(&sim);
    let mut soak = Soak {
        op: start_operator(cp, &ns, &sim),
        cp,
        client,
        ns,
        ns_b,
        sim,
        admin,
        rng: StdRng::seed_from_u64(config.seed),
        report: SoakReport::new(),
        batch: config.batch,
        standby: None,
        made: 0,
        round: 0,
        objects: BTreeMap::new(),
        retained: BTreeSet::new(),
        foreign: BTreeMap::new(),
        deleted_secrets: vec![],
        deleted_namespaces: vec![],
        kills_at: vec![],
    };
    for ns in [soak.ns.clone(), soak.ns_b.clone()] {
        soak.user_secret(&ns, "pw", &[("password", "soak-password")], false)
            .await;
    }
    // The test control plane always runs kube-controller-manager, so every kind can run.
    let kinds = RoundKind::ALL.to_vec();
    let mut first = kinds.clone();
    // Every kind once, in a seeded order, then drawn by weight.
    for i in (1..first.len()).rev() {
        first.swap(i, soak.rng.random_range(0..=i));
    }
    let total: u32 = kinds.iter().map(|k| k.weight()).sum();
    let started = Instant::now();
    for round in 0..config.rounds {
        if started.elapsed() > config.max_duration {
            break;
        }
        let kind = match first.get(round) {
            Some(k) => *k,
            None => {
                let mut roll = soak.rng.random_range(0..total);
                *kinds
                    .iter()
                    .find(|k| {
                        let hit = roll < k.weight();
                        roll = roll.saturating_sub(k.weight());
                        hit
                    })
                    .expect("a roll below the total weight")
            }
        };
        eprintln!(
            "soak: round {round}: {} (at {:.0}s)",
            kind.label(),
            started.elapsed().as_secs_f64()
        );
        soak.round(round, kind).await;
        *soak.report.kinds.entry(kind.label()).or_default() += 1;
        soak.report.rounds = round + 1;
    }
    soak.converge(config.converge_within).await;
    soak.final_invariants().await;
    soak.op.kill();
    let Soak { sim, report, .. } = soak;
    sim.shutdown().await;
    report
}

fn start_operator(cp: &ControlPlane, ns: &str, sim: &RunningSimulator) -> Operator {
    let mut opts = OperatorOptions::new(ns, sim.endpoint());
    opts.all_namespaces = true;
    opts.args = ["--leader-election=false"]
        .into_iter()
        .chain(OPERATOR_ARGS)
        .map(str::to_owned)
        .collect();
    Operator::start(cp, opts)
}

impl Soak {
    fn objects_api(&self, ns: &str) -> Api<RedisInstance> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn secrets_api(&self, ns: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// A new object name with `prefix`.
    fn next_name(&mut self, prefix: &str) -> String {
        self.made += 1;
        format!("{prefix}{}", self.made)
    }

    /// Creates `ns/name` with the default spec changed by `extra`.
    async fn create_named(&mut self, ns: &str, name: &str, extra: Value, class: Class) {
        let mut spec = json!({ "regionId": "CN_Beijing_A", "vdcId": "vdc-1", "basePipeId": "pipe-1", "paasGoodsId": 12467, "passwordSecretRef": { "name": "pw" } });
        for (k, v) in extra.as_object().expect("an object") {
            spec[k] = v.clone();
        }
        let retain = spec["deletionPolicy"] == "Retain";
        let obj: RedisInstance = serde_json::from_value(json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance", "metadata": { "name": name }, "spec": spec })).unwrap();
        let created = self.objects_api(ns).create(&PostParams::default(), &obj).await.unwrap();
        self.report.created += 1;
        self.objects.insert(
            (ns.to_owned(), name.to_owned()),
            Tracked {
                ns: ns.to_owned(),
                name: name.to_owned(),
                uid: created.uid().unwrap_or_default(),
                class,
                retain,
                deleted: false,
                round: self.round,
            },
        );
    }

    /// Creates an object named after `prefix`; returns its name.
    async fn create(&mut self, ns: &str, prefix: &str, extra: Value, class: Class) -> String {
        let name = self.next_name(prefix);
        self.create_named(ns, &name, extra, class).await;
        name
    }

    /// Notes that an object is gone or going (its instance name is kept if it retains it).
    fn forget(&mut self, key: &NsName) {
        if let Some(t) = self.objects.get_mut(key)
            && !t.deleted
        {
            t.deleted = true;
            self.report.deleted += 1;
            if t.retain {
                let name = t.instance_name();
                self.retained.insert(name);
            }
        }
    }

    /// Deletes an object the soak made.
    async fn delete(&mut self, key: &NsName) {
        self.forget(key);
        let _ = self.objects_api(&key.0).delete(&key.1, &DeleteParams::default()).await;
    }

    /// Live objects (not deleted by the soak) in `namespaces`.
    fn live_in(&self, namespaces: &[&str]) -> Vec<NsName> {
        self.objects
            .values()
            .filter(|t| !t.deleted && namespaces.contains(&t.ns.as_str()))
            .map(|t| (t.ns.clone(), t.name.clone()))
            .collect()
    }

    /// Creates a user's Secret, which the operator must never write (it may only hold it with its
    /// in-use finalizer, if `may_hold`).
    async fn user_secret(&mut self, ns: &str, name: &str, data: &[(&str, &str)], may_hold: bool) {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        let s: Secret = serde_json::from_value(json!({ "metadata": { "name": name }, "stringData": data })).unwrap();
        let created = self.secrets_api(ns).create(&PostParams::default(), &s).await.unwrap();
        self.foreign
            .insert((ns.to_owned(), name.to_owned()), Foreign { created, may_hold });
    }

    /// A user's `ProviderConfig` `ns/name` reading the Secret `secret` of its namespace.
    async fn provider_config(&self, ns: &str, name: &str, secret: &str) {
        let api: Api<ProviderConfig> = Api::namespaced(self.client.clone(), ns);
        let pc: ProviderConfig = serde_json::from_value(json!({
            "metadata": { "name": name },
            "spec": { "credentials": { "secretRef": { "name": secret } } },
        }))
        .unwrap();
        api.create(&PostParams::default(), &pc).await.unwrap();
    }

    /// Deletes a user's Secret: it is no longer checked, but must go.
    async fn delete_secret(&mut self, ns: &str, name: &str) {
        let key = (ns.to_owned(), name.to_owned());
        self.foreign.remove(&key);
        let _ = self.secrets_api(ns).delete(name, &DeleteParams::default()).await;
        self.deleted_secrets.push(key);
    }

    /// SIGKILLs the acting operator.
    fn kill(&mut self) {
        self.op.kill();
        self.kills_at.push(now_ms());
        self.report.kills += 1;
    }

    /// Sleeps up to `max_ms` (seeded).
    async fn pause(&mut self, max_ms: u64) {
        tokio::time::sleep(Duration::from_millis(self.rng.random_range(0..max_ms))).await;
    }

    /// Turns faults off and waits until every object settled, every deletion finished and every
    /// deleted Secret and namespace is gone (at most `within`).
    async fn converge(&mut self, within: Duration) {
        self.admin.set_faults(json!({})).await;
        let started = Instant::now();
        let deadline = started + within;
        let all: Api<RedisInstance> = Api::all(self.client.clone());
        loop {
            let objs = all.list(&Default::default()).await.unwrap().items;
            let deleting = objs.iter().filter(|o| o.metadata.deletion_timestamp.is_some()).count();
            let settled = objs
                .iter()
                .filter(|o| o.metadata.deletion_timestamp.is_none())
                .all(|o| {
                    let conds = o.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
                    let ready = conds.iter().any(|c| c.type_ == "Ready" && c.status == "True");
                    let failed = conds.iter().any(|c| c.type_ == "Stalled" && c.status == "True");
                    ready || failed
                });
            let leftovers = self.leftover_secrets().await.len() + self.leftover_namespaces().await.len();
            if deleting == 0 && settled && leftovers == 0 {
                break;
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.report.converge = started.elapsed();
    }
}
