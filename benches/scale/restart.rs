//! The operator restart: a crash with N Ready objects in steady state, and what the new process
//! started with the same options costs until it has reconciled them all.

use super::*;

/// What the restart cost.
pub(crate) struct Restart {
    /// From the new process's start until it had reconciled all N objects.
    pub(crate) time: Duration,
    /// What its `/readyz` said: when it first answered ok, or its answer once steady.
    pub(crate) readyz: String,
    /// Whether it got there (else `time` is when the benchmark gave up).
    pub(crate) steady: bool,
    /// Cloud calls by action from the kill until steady again (plus a settling pause).
    pub(crate) calls: BTreeMap<String, u64>,
    /// The operator's Kubernetes writes in the same window.
    pub(crate) writes: Writes,
    /// The new process's reconciles until then that succeeded, and that failed.
    pub(crate) reconciles_ok: u64,
    pub(crate) reconciles_err: u64,
    /// The new process's peak RSS (KiB) and CPU seconds until then.
    pub(crate) hwm_kb: u64,
    pub(crate) cpu: f64,
    /// The first process's peak RSS (KiB) and CPU seconds when it was killed.
    pub(crate) old_hwm_kb: u64,
    pub(crate) old_cpu: f64,
}

/// How long the benchmark waits for the restarted operator to reconcile `n` objects.
fn give_up(n: usize) -> Duration {
    Duration::from_secs(300 + n as u64 / 10)
}

/// Kills the operator (SIGKILL) with N Ready objects in steady state and starts a new one with
/// the same options; measures until the new one has reconciled all N (its `Running` gauge is N).
pub(crate) async fn restart(b: &Bench, mut op: Operator) -> (Operator, Restart) {
    let n = b.n;
    let (old_hwm_kb, old_cpu) = proc_stats(op_pid(&op));
    op.kill();
    // Whatever the old process wrote reaches the audit log (batches of at most 1 s) before the
    // window starts; the simulator counts a call when it gets it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls_before = calls(&b.admin.calls_json().await);
    let writes_before = writes(&b.cp.audit_log(), &b.user);

    let started = Instant::now();
    let op = Operator::start(b.cp, operator_options(b));
    let pid = op_pid(&op);
    let http = reqwest::Client::new();
    let (synced, steady) = until_steady(&op, &http, n, started).await;
    let time = started.elapsed();
    if !steady {
        eprintln!(
            "the restarted operator did not reconcile all {n} objects within {:?}",
            give_up(n)
        );
    }
    // Settle: the writes of the last reconciles reach the audit log; a call or write made right
    // after the last object's report still counts. The next drift checks are a steady period away.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls_window = minus_calls(&calls(&b.admin.calls_json().await), &calls_before);
    let writes_window = writes(&b.cp.audit_log(), &b.user).minus(&writes_before);
    let (hwm_kb, cpu) = proc_stats(pid);
    let (reconciles_ok, reconciles_err) = reconciles(&op).await;
    let readyz = readyz_text(&op, &http, synced).await;
    reset_peak_rss(pid);
    let (_, ready) = count_ready(&b.api).await;
    if ready != n {
        eprintln!("after the restart only {ready} of {n} objects are Ready");
    }
    let restart = Restart {
        time,
        readyz,
        steady,
        calls: calls_window,
        writes: writes_window,
        reconciles_ok,
        reconciles_err,
        hwm_kb,
        cpu,
        old_hwm_kb,
        old_cpu,
    };
    (op, restart)
}

/// Polls the new process until its `Running` gauge reaches `n` or the benchmark gives up: when
/// its `/readyz` first answered ok (since `started`), and whether it got there.
async fn until_steady(op: &Operator, http: &reqwest::Client, n: usize, started: Instant) -> (Option<Duration>, bool) {
    let give_up = give_up(n);
    let mut synced = None;
    while started.elapsed() < give_up {
        if synced.is_none()
            && http
                .get(format!("http://{}/readyz", op.metrics))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        {
            synced = Some(started.elapsed());
        }
        let text = op.metrics_text().await;
        if metric(&text, "cds_redis_objects{phase=\"Running\"}").unwrap_or(0.0) >= n as f64 {
            return (synced, true);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (synced, false)
}

/// The process's reconciles so far, from its metrics: (succeeded, failed).
async fn reconciles(op: &Operator) -> (u64, u64) {
    let text = op.metrics_text().await;
    let ok = metric(&text, "cds_redis_reconciles_total{outcome=\"success\"}").unwrap_or(0.0);
    let err = metric(&text, "cds_redis_reconciles_total{outcome=\"error\"}").unwrap_or(0.0);
    (ok as u64, err as u64)
}

/// What the restart row says of `/readyz`: when it first said ok (`synced`), else what it answers now.
async fn readyz_text(op: &Operator, http: &reqwest::Client, synced: Option<Duration>) -> String {
    match synced {
        Some(d) => format!("/readyz ok after {:.2} s", d.as_secs_f64()),
        None => {
            let answer = match http.get(format!("http://{}/readyz", op.metrics)).send().await {
                Ok(r) => format!("{} {}", r.status().as_u16(), r.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            eprintln!("the restarted operator's /readyz did not say ok before it was steady; 3 s later: {answer}");
            format!("/readyz not ok yet; 3 s later: {answer}")
        }
    }
}

/// Resets the process's peak RSS (`VmHWM`).
fn reset_peak_rss(pid: u32) {
    // Later figures (the whole-run peak RSS) then leave the restart out, as before the restart
    // was measured: "5" resets the process's VmHWM (Linux 4.0+).
    if let Err(e) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        eprintln!("cannot reset the new operator's peak RSS ({e}): the whole-run peak includes the restart");
    }
}
