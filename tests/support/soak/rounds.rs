//! The rounds of the soak: what each [`RoundKind`] does to the cluster, the cloud and the
//! operator.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use rand::Rng;
use serde_json::json;

use super::{ACCOUNT, Class, NsName, OPERATOR_ARGS, REPLICA_A, REPLICA_B, RoundKind, Soak, invariant, now_ms};
use crate::support::control_plane::unique_namespace;
use crate::support::operator::{Operator, OperatorOptions};

/// Waits up to `within` for `needle` in `op`'s log.
async fn log_shows(op: &Operator, needle: &str, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if op.logs().contains(needle) {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends `signal` to `pid`.
fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on the id of a child process this soak started and has not reaped.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

impl Soak {
    /// One round of `kind`.
    pub(super) async fn round(&mut self, round: usize, kind: RoundKind) {
        self.round = round;
        let mut faults = super::random_faults(&mut self.rng);
        if kind == RoundKind::NoDeletingStatus {
            faults["hideDeletingStatus"] = json!(true);
        }
        self.admin.set_faults(faults).await;
        if kind == RoundKind::FrozenLeader {
            self.start_replicas(round).await;
        }
        self.create_batch().await;
        match kind {
            RoundKind::NameCollision => self.collide(round).await,
            RoundKind::SecretsFirst => self.secrets_first(round).await,
            RoundKind::NamespaceDeletion => self.delete_a_namespace().await,
            RoundKind::Plain | RoundKind::FrozenLeader | RoundKind::NoDeletingStatus => {}
        }
        self.new_generations().await;
        if kind == RoundKind::FrozenLeader {
            self.freeze_leader().await;
        } else {
            let p = if kind == RoundKind::NoDeletingStatus { 0.5 } else { 0.25 };
            self.random_deletes(p).await;
            // Kill the operator at a random moment of its work, then restart it.
            self.pause(2500).await;
            self.kill();
            self.op = super::start_operator(self.cp, &self.ns, &self.sim);
        }
        self.check_not_shared(&format!("after round {round}")).await;
        self.check_foreign_secrets(&format!("after round {round}")).await;
    }

    /// The batch every round creates: objects that should become Ready (some `Retain`), and
    /// now and then one whose create the cloud rejects for good.
    async fn create_batch(&mut self) {
        let ns = self.ns.clone();
        for _ in 0..self.batch {
            let extra = if self.rng.random_bool(0.2) {
                json!({ "deletionPolicy": "Retain" })
            } else {
                json!({})
            };
            self.create(&ns, "s", extra, Class::Normal).await;
        }
        if self.rng.random_bool(0.3) {
            let class = Class::Rejected(vec![now_ms()]);
            self.create(&ns, "r", json!({ "paasGoodsId": 999 }), class).await;
        }
    }

    /// Deletes each live object with probability `p`.
    async fn random_deletes(&mut self, p: f64) {
        let (ns, ns_b) = (self.ns.clone(), self.ns_b.clone());
        for key in self.live_in(&[&ns, &ns_b]) {
            if self.rng.random_bool(p) {
                self.delete(&key).await;
            }
        }
    }

    /// Gives some rejected objects a new generation (their `deletionPolicy` flipped) once the
    /// rejection of the current one is reported: one more create is then allowed.
    async fn new_generations(&mut self) {
        let rejected: Vec<NsName> = self
            .objects
            .values()
            .filter(|t| !t.deleted && matches!(t.class, Class::Rejected(_)))
            .map(|t| (t.ns.clone(), t.name.clone()))
            .collect();
        for key in rejected {
            if !self.rng.random_bool(0.3) {
                continue;
            }
            let api = self.objects_api(&key.0);
            let Ok(o) = api.get(&key.1).await else { continue };
            let st = o.status.clone().unwrap_or_default();
            let reported = st.observed_generation == o.metadata.generation
                && st.conditions.iter().any(|c| {
                    c.type_ == "Synced" && ["CloudRejected", "FlavorNotAvailable"].contains(&c.reason.as_str())
                });
            if !reported || o.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let retain = !self.objects[&key].retain;
            let policy = if retain { "Retain" } else { "Delete" };
            // The new generation starts before the patch: its create cannot come earlier.
            let starts = now_ms();
            let patch = json!({ "spec": { "deletionPolicy": policy } });
            if api
                .patch(&key.1, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                let t = self.objects.get_mut(&key).expect("tracked");
                t.retain = retain;
                if let Class::Rejected(generations) = &mut t.class {
                    generations.push(starts);
                }
            }
        }
    }

    /// Name collisions: two objects with one `spec.instanceName` (one namespace or two), an object
    /// asking to adopt an instance another object records, and an object whose connection
    /// Secret's name (and the name the password record had in earlier versions) a user took.
    /// Plus an object whose create the cloud rejects for good, so every short soak has one.
    async fn collide(&mut self, round: usize) {
        let (ns, ns_b) = (self.ns.clone(), self.ns_b.clone());
        let class = Class::Rejected(vec![now_ms()]);
        self.create(&ns, "r", json!({ "paasGoodsId": 999 }), class).await;
        let shared = format!("soak-shared-{round}");
        let extra = json!({ "instanceName": shared });
        self.create(&ns, "c", extra.clone(), Class::Collider(shared.clone()))
            .await;
        let other_ns = if self.rng.random_bool(0.5) { &ns_b } else { &ns };
        self.create(other_ns, "c", extra, Class::Collider(shared)).await;
        if self.rng.random_bool(0.6) {
            let owners: Vec<NsName> = self
                .objects
                .values()
                .filter(|t| !t.deleted && t.class == Class::Normal && t.ns == ns)
                .map(|t| (t.ns.clone(), t.name.clone()))
                .collect();
            if !owners.is_empty() {
                let owner = &owners[self.rng.random_range(0..owners.len())];
                let recorded = self
                    .objects_api(&owner.0)
                    .get(&owner.1)
                    .await
                    .ok()
                    .and_then(|o| o.status)
                    .and_then(|s| s.instance_uuid);
                if let Some(uuid) = recorded {
                    let at = if self.rng.random_bool(0.5) { &ns_b } else { &ns };
                    self.create(at, "a", json!({ "instanceUuid": uuid }), Class::Adopter)
                        .await;
                }
            }
        }
        if self.rng.random_bool(0.6) {
            let name = self.next_name("w");
            let conn = format!("conn-{name}");
            self.user_secret(&ns, &conn, &[("mine", "keep-me")], false).await;
            self.user_secret(
                &ns,
                &format!("{name}-cdsredis-password"),
                &[("password", "users-own")],
                false,
            )
            .await;
            let retain = if self.rng.random_bool(0.3) { "Retain" } else { "Delete" };
            let extra = json!({ "writeConnectionSecretToRef": { "name": conn }, "deletionPolicy": retain });
            self.create_named(&ns, &name, extra, Class::SecretConflict).await;
        }
    }

    /// Objects with their own account and password Secrets; at a random moment of their life the
    /// Secrets are deleted, then the objects: the instances must still be deleted, and the
    /// account Secret must go once no deletion needs it.
    async fn secrets_first(&mut self, round: usize) {
        let ns = self.ns.clone();
        let (creds, pw) = (format!("creds-r{round}"), format!("pw-r{round}"));
        let account = [("accessKeyId", ACCOUNT.0), ("accessKeySecret", ACCOUNT.1)];
        self.user_secret(&ns, &creds, &account, true).await;
        self.provider_config(&ns, &creds, &creds).await;
        self.user_secret(&ns, &pw, &[("password", "soak-password-2")], false)
            .await;
        let mut made = vec![];
        for _ in 0..self.rng.random_range(2..=3) {
            let mut extra = json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": creds }, "passwordSecretRef": { "name": pw } });
            if self.rng.random_bool(0.2) {
                extra["deletionPolicy"] = json!("Retain");
            }
            let name = self.create(&ns, "f", extra, Class::Normal).await;
            made.push((ns.clone(), name));
        }
        self.pause(4000).await;
        self.delete_secret(&ns, &creds).await;
        self.delete_secret(&ns, &pw).await;
        self.pause(500).await;
        for key in made {
            self.delete(&key).await;
        }
    }

    /// A namespace with objects (some with their own account Secret, some with a connection
    /// Secret, some `Retain`) deleted at a random moment of their life.
    async fn delete_a_namespace(&mut self) {
        let ns = unique_namespace(&self.client, "soak-del").await;
        let secrets = self.secrets_api(&ns);
        for (name, data) in [
            ("pw", json!({ "password": "soak-password-3" })),
            (
                "creds",
                json!({ "accessKeyId": ACCOUNT.0, "accessKeySecret": ACCOUNT.1 }),
            ),
        ] {
            let s = serde_json::from_value(json!({ "metadata": { "name": name }, "stringData": data })).unwrap();
            secrets.create(&Default::default(), &s).await.unwrap();
        }
        self.provider_config(&ns, "creds", "creds").await;
        for _ in 0..self.rng.random_range(2..=4) {
            let name = self.next_name("d");
            let mut extra = json!({});
            if self.rng.random_bool(0.5) {
                extra["providerConfigRef"] = json!({ "kind": "ProviderConfig", "name": "creds" });
            }
            if self.rng.random_bool(0.5) {
                extra["writeConnectionSecretToRef"] = json!({ "name": format!("conn-{name}") });
            }
            if self.rng.random_bool(0.2) {
                extra["deletionPolicy"] = json!("Retain");
            }
            self.create_named(&ns, &name, extra, Class::Normal).await;
        }
        self.pause(4000).await;
        Api::<Namespace>::all(self.client.clone())
            .delete(&ns, &DeleteParams::default())
            .await
            .unwrap();
        for key in self.live_in(&[&ns]) {
            self.forget(&key);
        }
        self.deleted_namespaces.push(ns);
    }

    fn start_replica(&self, name: &str, key: super::AccessKey, lease: &str) -> Operator {
        let mut opts = OperatorOptions::new(&self.ns, self.sim.endpoint());
        opts.all_namespaces = true;
        opts.name = name.to_owned();
        opts.args = OPERATOR_ARGS
            .into_iter()
            .chain(["--identity", name, "--leader-election-id", lease])
            .map(str::to_owned)
            .collect();
        opts.env = vec![
            ("CDS_ACCESS_KEY_ID".into(), key.0.into()),
            ("CDS_ACCESS_KEY_SECRET".into(), key.1.into()),
        ];
        Operator::start(self.cp, opts)
    }

    /// Replaces the operator with two replicas electing a leader on a new Lease: replica A
    /// (which takes it) and replica B (standby). Each signs with its own key, so the simulator
    /// tells their calls apart.
    async fn start_replicas(&mut self, round: usize) {
        self.kill();
        let lease = format!("soak-lease-{round}");
        self.op = self.start_replica("replica-a", REPLICA_A, &lease);
        if !log_shows(&self.op, "became leader", Duration::from_secs(30)).await {
            self.report.check(invariant::LEASE, false, || {
                format!("round {round}: replica A did not become leader of a new Lease within 30s")
            });
        }
        self.standby = Some(self.start_replica("replica-b", REPLICA_B, &lease));
    }

    /// Freezes replica A (SIGSTOP) at a random moment of its work, deletes some objects, waits
    /// until replica B took over and acted a little, resumes A (SIGCONT): A must stop without a
    /// cloud call. B stays as the operator.
    async fn freeze_leader(&mut self) {
        let b = self.standby.take().expect("started with the round");
        self.pause(2500).await;
        let Some(pid) = self.op.pid().filter(|_| self.op.running()) else {
            let log_file = self.op.log.display().to_string();
            self.report.check(invariant::LEASE, false, || {
                format!("replica A exited before it could be frozen (log {log_file})")
            });
            self.op = b;
            return;
        };
        signal(pid, libc::SIGSTOP);
        let stopped_at = now_ms();
        self.report.freezes += 1;
        self.random_deletes(0.25).await;
        let took_over = log_shows(&b, "became leader", Duration::from_secs(60)).await;
        self.pause(3000).await;
        let calls_before = self.admin.calls_by_key(REPLICA_A.0).await;
        let resumed_at = now_ms();
        signal(pid, libc::SIGCONT);
        let exited = self.op.wait_exit(Duration::from_secs(30)).await;
        let calls_after = self.admin.calls_by_key(REPLICA_A.0).await;
        let writes_after: Vec<String> = self
            .admin
            .writes()
            .await
            .iter()
            .filter(|w| w["accessKeyId"] == REPLICA_A.0 && w["atMs"].as_i64().unwrap_or(0) >= resumed_at)
            .map(|w| format!("{} {} ({})", w["action"], w["instanceUuid"], w["outcome"]))
            .collect();
        let log = self.op.logs();
        let late = super::invariants::calls_started_after(&log, stopped_at + 100);
        let stopped = log.contains("no longer acting") || log.contains("another replica took the lease");
        let mut problems = vec![];
        if !took_over {
            problems.push("replica B did not take over within 60s".to_owned());
        }
        if exited.is_none() {
            problems.push("replica A still runs 30s after SIGCONT".to_owned());
        }
        if !stopped {
            problems.push("replica A's log does not say it stopped acting".to_owned());
        }
        if calls_after != calls_before {
            problems.push(format!(
                "the simulator saw {} calls signed by replica A after SIGCONT (writes: {writes_after:?})",
                calls_after - calls_before
            ));
        }
        if !late.is_empty() {
            problems.push(format!(
                "replica A's log shows cloud calls started after SIGCONT: {late:?}"
            ));
        }
        let log_file = self.op.log.display().to_string();
        self.report.check(invariant::LEASE, problems.is_empty(), || {
            format!("{} (log {log_file})", problems.join("; "))
        });
        let mut a = std::mem::replace(&mut self.op, b);
        a.kill();
    }
}
