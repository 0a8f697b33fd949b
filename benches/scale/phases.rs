//! The phases of one run: set up, start the operator, create N, wait until all are Ready, hold
//! steady state, delete all; each phase measures its own figures.

use super::*;

/// What the phases of one run share: the control plane, the namespace with its objects, the
/// operator's identity and options, and the simulator's admin client.
pub(crate) struct Bench {
    pub(crate) cp: &'static ControlPlane,
    pub(crate) client: kube::Client,
    pub(crate) ns: String,
    /// The operator's kubeconfig, and its user name in the audit log.
    pub(crate) kubeconfig: PathBuf,
    pub(crate) user: String,
    /// The simulator's endpoint, and its admin client (call counts, instances).
    pub(crate) endpoint: String,
    pub(crate) admin: Admin,
    /// The objects, in `ns`.
    pub(crate) api: Api<RedisInstance>,
    pub(crate) n: usize,
    /// The operator's `--steady-poll-interval`.
    pub(crate) steady_poll: Duration,
}

/// The control plane with the CRD, a fresh namespace, the operator's identity and the simulator.
pub(crate) async fn setup(n: usize, steady_poll: Duration) -> (Bench, RunningSimulator) {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, &format!("bench-{n}")).await;
    // The operator gets its own identity, so the audit log tells its writes apart.
    let (kubeconfig, user) = service_account(cp, &client, &ns, "bench-operator", &format!("{ns}-operator")).await;

    let s = sim::start(CREATE_DELAY, DELETE_DELAY).await;
    let bench = Bench {
        cp,
        api: Api::namespaced(client.clone(), &ns),
        client,
        ns,
        kubeconfig,
        user,
        endpoint: s.endpoint(),
        admin: Admin::of(&s),
        n,
        steady_poll,
    };
    (bench, s)
}

/// The operator's options: the same for the first operator and the one started after the kill.
pub(crate) fn operator_options(b: &Bench) -> OperatorOptions<'_> {
    let steady_poll_s = format!("{}s", b.steady_poll.as_secs());
    let concurrency = CONCURRENCY.to_string();
    let mut opts = OperatorOptions::new(&b.ns, b.endpoint.clone());
    opts.args = [
        "--leader-election=false",
        "--busy-poll-interval",
        "2s",
        "--steady-poll-interval",
        steady_poll_s.as_str(),
        "--visibility-grace",
        "10s",
        "--cds-qps",
        "100",
        "--cds-burst",
        "100",
        "--concurrency",
        concurrency.as_str(),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    opts.env = vec![
        ("KUBECONFIG".into(), b.kubeconfig.display().to_string()),
        ("RUST_LOG".into(), "info".into()),
    ];
    opts.name = format!("bench-{}", b.n);
    opts
}

/// The objects' password Secret; then, after a pause, the operator's writes so far (the figures
/// count from there).
pub(crate) async fn prepare(b: &Bench) -> Writes {
    let secrets: Api<Secret> = Api::namespaced(b.client.clone(), &b.ns);
    let pw: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "pw" }, "stringData": { "password": "bench-password" } }))
            .unwrap();
    secrets.create(&PostParams::default(), &pw).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    writes(&b.cp.audit_log(), &b.user)
}

/// Creates the N objects, CONCURRENCY in flight; returns once the API has taken them all.
pub(crate) async fn create_all(b: &Bench) {
    futures::stream::iter(0..b.n)
        .map(|i| {
            let api = b.api.clone();
            async move {
                create_retried(&api, &object(i)).await;
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
}

/// Waits until the counts of the objects (all, Ready) say `done`, looking every second.
async fn wait_until(api: &Api<RedisInstance>, done: impl Fn((usize, usize)) -> bool) {
    while !done(count_ready(api).await) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits until all N are Ready; the figures from the first create (`t0`) until then, the
/// operator's writes counted from `before`.
pub(crate) async fn wait_ready(b: &Bench, pid: u32, t0: Instant, applied: Duration, before: &Writes) -> ToReady {
    wait_until(&b.api, |(_, ready)| ready == b.n).await;
    let time = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let written = writes(&b.cp.audit_log(), &b.user).minus(before);
    let called = calls(&b.admin.calls_json().await);
    let (hwm_kb, cpu) = proc_stats(pid);
    let (anon_kb, file_kb) = rss_now(pid);
    // A status as the operator wrote it, the model of the floor client's status writes.
    let status = b
        .api
        .get_status(&object_name(0))
        .await
        .ok()
        .and_then(|o| serde_json::to_value(o.status).ok())
        .unwrap_or(Value::Null);
    ToReady {
        applied,
        time,
        writes: written,
        calls: called,
        hwm_kb,
        cpu,
        anon_kb,
        file_kb,
        status,
    }
}

/// Holds steady state for `period`: what the operator did meanwhile.
pub(crate) async fn steady_state(b: &Bench, pid: u32, period: Duration) -> Steady {
    let calls_a = calls(&b.admin.calls_json().await);
    let writes_a = writes(&b.cp.audit_log(), &b.user);
    let (_, cpu_a) = proc_stats(pid);
    tokio::time::sleep(period).await;
    let calls_b = calls(&b.admin.calls_json().await);
    let writes_b = writes(&b.cp.audit_log(), &b.user);
    let (hwm_kb, cpu_b) = proc_stats(pid);
    Steady {
        minutes: period.as_secs_f64() / 60.0,
        calls: minus_calls(&calls_b, &calls_a),
        writes: writes_b.minus(&writes_a),
        hwm_kb,
        cpu: cpu_b - cpu_a,
    }
}

/// Deletes all objects and waits until they are gone; the whole run's figures (the operator's
/// writes counted from `before`), with the restart window `rs` left out. `pid`: the operator now.
pub(crate) async fn delete_all(b: &Bench, pid: u32, rs: &Restart, before: &Writes) -> WholeRun {
    let t1 = Instant::now();
    while let Err(e) = b
        .api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
    {
        eprintln!("deleting the objects failed ({e}); retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    wait_until(&b.api, |(left, _)| left == 0).await;
    let deleted = t1.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The whole-run figures leave the restart window out: they measure what they did before the
    // restart was added (the restart has its own rows).
    let called = minus_calls(&calls(&b.admin.calls_json().await), &rs.calls);
    let written = writes(&b.cp.audit_log(), &b.user).minus(before).minus(&rs.writes);
    let (hwm_end2, cpu_end2) = proc_stats(pid);
    WholeRun {
        deleted,
        calls: called,
        writes: written,
        hwm_kb: rs.old_hwm_kb.max(hwm_end2),
        cpu: rs.old_cpu + (cpu_end2 - rs.cpu),
        left_in_cloud: b.admin.instances().await.len(),
    }
}
