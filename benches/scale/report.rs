//! The report: one Markdown table per N, its rows printed from the run's figures.

use super::*;

/// The figures of one run for one N, as the report prints them.
pub(crate) struct Figures {
    pub(crate) n: usize,
    /// The operator's `--steady-poll-interval`.
    pub(crate) steady_poll: Duration,
    pub(crate) ready: ToReady,
    pub(crate) steady: Steady,
    pub(crate) restart: Restart,
    pub(crate) end: WholeRun,
    pub(crate) floor: Floor,
}

/// From the first create until all N objects were Ready.
pub(crate) struct ToReady {
    /// Until the API had taken all creates.
    pub(crate) applied: Duration,
    /// Until all were Ready.
    pub(crate) time: Duration,
    /// The operator's Kubernetes writes until then (plus a settling pause).
    pub(crate) writes: Writes,
    /// Cloud calls by action until then.
    pub(crate) calls: BTreeMap<String, u64>,
    /// The operator's peak RSS (KiB) and CPU seconds then.
    pub(crate) hwm_kb: u64,
    pub(crate) cpu: f64,
    /// Its resident set then (KiB): anonymous, and file-backed (its code).
    pub(crate) anon_kb: u64,
    pub(crate) file_kb: u64,
    /// A status as the operator wrote it, the model of the floor client's status writes.
    pub(crate) status: Value,
}

/// Steady state: N Ready objects and nothing to do.
pub(crate) struct Steady {
    /// How long it was held, in minutes.
    pub(crate) minutes: f64,
    /// Cloud calls by action meanwhile.
    pub(crate) calls: BTreeMap<String, u64>,
    /// The operator's Kubernetes writes meanwhile.
    pub(crate) writes: Writes,
    /// The operator's peak RSS (KiB) at its end, and its CPU seconds meanwhile.
    pub(crate) hwm_kb: u64,
    pub(crate) cpu: f64,
}

/// Deleting all, and the whole run's figures (the restart window left out).
pub(crate) struct WholeRun {
    /// From the delete until all objects were gone.
    pub(crate) deleted: Duration,
    /// Cloud calls by action.
    pub(crate) calls: BTreeMap<String, u64>,
    /// The operator's Kubernetes writes.
    pub(crate) writes: Writes,
    /// The operator's peak RSS (KiB) and CPU seconds.
    pub(crate) hwm_kb: u64,
    pub(crate) cpu: f64,
    /// Instances the simulator still has after the delete.
    pub(crate) left_in_cloud: usize,
}

/// Prints the table of one N.
pub(crate) fn print_report(f: &Figures) {
    print_times(f);
    print_cloud_calls(f);
    print_writes(f);
    print_memory_cpu(f);
    println!("| cloud instances left after delete | {} | 0 | |", f.end.left_in_cloud);
    print_floor(f);
    print_restart(f);
}

/// `m`'s calls of `action` per object.
fn per(m: &BTreeMap<String, u64>, action: &str, n: usize) -> f64 {
    *m.get(action).unwrap_or(&0) as f64 / n as f64
}

/// KiB in MiB.
fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The table's heading and its first rows: the times to apply, to Ready and to deleted.
fn print_times(f: &Figures) {
    let n = f.n;
    let t_ready = f.ready.time;
    let t_deleted = f.end.deleted;
    println!();
    println!("## N = {n}");
    println!();
    println!("| figure | measured | floor | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| objects applied (API, 16 in parallel) | {:.1} s | | |",
        f.ready.applied.as_secs_f64()
    );
    println!(
        "| time to all Ready (simulator create delay {}s) | {:.1} s | {:.1} s | {:.1} |",
        CREATE_DELAY.as_secs(),
        t_ready.as_secs_f64(),
        CREATE_DELAY.as_secs_f64(),
        t_ready.as_secs_f64() / CREATE_DELAY.as_secs_f64()
    );
    println!(
        "| time to all deleted (simulator delete delay {}s) | {:.1} s | {:.1} s | {:.1} |",
        DELETE_DELAY.as_secs(),
        t_deleted.as_secs_f64(),
        DELETE_DELAY.as_secs_f64(),
        t_deleted.as_secs_f64() / DELETE_DELAY.as_secs_f64()
    );
}

/// Cloud calls: per object by action over the whole run, listings until Ready, and per minute
/// in steady state against one listing per poll.
fn print_cloud_calls(f: &Figures) {
    let (n, calls_end, minutes) = (f.n, &f.end.calls, f.steady.minutes);
    let listing_floor = 60.0 / f.steady_poll.as_secs_f64();
    for action in ["CreateDBInstance", "DeleteDBInstance"] {
        println!(
            "| {action} calls per object | {:.3} | 1 | {:.3} |",
            per(calls_end, action, n),
            per(calls_end, action, n)
        );
    }
    for action in ["DescribeDBInstances", "DescribeAvailableDBConfig"] {
        println!(
            "| {action} calls per object (whole run) | {:.3} | | |",
            per(calls_end, action, n)
        );
    }
    println!(
        "| listings until all Ready | {} | | |",
        f.ready.calls.get("DescribeDBInstances").unwrap_or(&0)
    );
    let steady_total: f64 = f.steady.calls.values().map(|c| *c as f64 / minutes).sum();
    println!(
        "| cloud calls per minute, steady ({:.0} min, poll {}s) | {:.2} | {:.2} | {:.2} |",
        minutes,
        f.steady_poll.as_secs(),
        steady_total,
        listing_floor,
        steady_total / listing_floor
    );
}

/// One row of Kubernetes writes per object, by kind.
fn print_writes_row(label: &str, w: &Writes, n: usize) {
    let nf = n as f64;
    println!(
        "| Kubernetes writes per object, {label} | {:.2} (status {:.2}, finalizer {:.2}, events {:.2}, secrets {:.2}) | | |",
        w.total() as f64 / nf,
        w.status as f64 / nf,
        w.finalizer as f64 / nf,
        w.events as f64 / nf,
        w.secrets as f64 / nf
    )
}

/// Kubernetes writes: per object until Ready, in steady state, per object over the whole life.
fn print_writes(f: &Figures) {
    print_writes_row("apply → Ready", &f.ready.writes, f.n);
    println!(
        "| Kubernetes writes in steady state | {} in {:.0} min | 0 | |",
        f.steady.writes.total(),
        f.steady.minutes
    );
    print_writes_row("whole life", &f.end.writes, f.n);
}

/// The operator's memory (peaks, and what it holds once all are Ready) and CPU seconds.
fn print_memory_cpu(f: &Figures) {
    println!(
        "| operator peak RSS: until Ready / until end of steady state / whole run | {:.1} / {:.1} / {:.1} MiB | | |",
        mib(f.ready.hwm_kb),
        mib(f.steady.hwm_kb),
        mib(f.end.hwm_kb)
    );
    println!(
        "| operator RSS once all are Ready: heap and other anonymous memory / file-backed (its code) | {:.1} / {:.1} MiB | | |",
        mib(f.ready.anon_kb),
        mib(f.ready.file_kb)
    );
    println!(
        "| operator CPU seconds: to Ready / steady / total | {:.1} / {:.1} / {:.1} | | |",
        f.ready.cpu, f.steady.cpu, f.end.cpu
    );
}

/// The apiserver floor: its time, time to Ready against it, its latencies and its audited writes.
fn print_floor(f: &Figures) {
    let (floor, t_ready) = (&f.floor, f.ready.time);
    let floor_s = floor.elapsed.as_secs_f64();
    println!(
        "| apiserver floor: the same writes from a minimal kube-rs client on fresh objects ({} creates of the objects and {} writes of the operator's kinds, {CONCURRENCY} + {CONCURRENCY} in flight, the operator's two watches open; no cloud, no reads) | {:.1} s for {} writes | | |",
        floor.creates,
        floor.planned.total(),
        floor_s,
        floor.creates + floor.planned.total()
    );
    println!(
        "| time to all Ready vs. the apiserver floor (ratio: the operator's own overhead and the cloud's delay) | {:.1} s | {:.1} s | {:.1} |",
        t_ready.as_secs_f64(),
        floor_s,
        t_ready.as_secs_f64() / floor_s
    );
    let (mean, p50, p99) = floor.latency_ms();
    println!("| apiserver floor: latency per write, mean / median / p99 | {mean:.1} / {p50:.1} / {p99:.1} ms | | |");
    println!(
        "| apiserver floor: writes the audit log shows from the floor client (all {} planned, {} retried) | {} | {} | |",
        floor.planned.total(),
        floor.retries,
        floor.audited.total(),
        floor.planned.total()
    );
}

/// The restart: its time, cloud calls, writes, reconciles, and the new process's memory and CPU.
fn print_restart(f: &Figures) {
    let (rs, n) = (&f.restart, f.n);
    let listings = *rs.calls.get("DescribeDBInstances").unwrap_or(&0);
    let restart_calls: u64 = rs.calls.values().sum();
    println!(
        "| operator restart (SIGKILL, same options, {n} Ready): time from the new process's start until it reconciled all {n}{} ({}) | {:.2} s | | |",
        if rs.steady { "" } else { " — NOT REACHED, gave up" },
        rs.readyz,
        rs.time.as_secs_f64()
    );
    println!(
        "| restart: cloud calls (listings {listings}) | {} | 1 | {:.2} |",
        calls_text(&rs.calls),
        restart_calls as f64
    );
    println!(
        "| restart: Kubernetes writes | {} (status {}, finalizer {}, events {}, secrets {}, other {}) | 0 | |",
        rs.writes.total(),
        rs.writes.status,
        rs.writes.finalizer,
        rs.writes.events,
        rs.writes.secrets,
        rs.writes.other
    );
    println!(
        "| restart: reconciles by the new process until steady (+3 s), success / error | {} / {} | {n} | {:.2} |",
        rs.reconciles_ok,
        rs.reconciles_err,
        (rs.reconciles_ok + rs.reconciles_err) as f64 / n as f64
    );
    println!(
        "| restart: new process's peak RSS / CPU seconds until steady again (+3 s) | {:.1} MiB / {:.2} | | |",
        mib(rs.hwm_kb),
        rs.cpu
    );
}

/// `Action count, …` of the actions called at all, or `none`.
fn calls_text(m: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = m
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}
