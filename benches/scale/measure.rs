//! What the benchmark measures with: the operator's Kubernetes writes from the audit log, the
//! simulator's call counts, the operator's memory and CPU from `/proc`, and its metrics.

use super::*;

/// Kubernetes writes by the operator, from the audit log.
#[derive(Default, Debug, Clone)]
pub(crate) struct Writes {
    pub(crate) status: u64,
    pub(crate) finalizer: u64,
    pub(crate) events: u64,
    pub(crate) secrets: u64,
    pub(crate) other: u64,
}

impl Writes {
    /// All writes, whatever their kind.
    pub(crate) fn total(&self) -> u64 {
        self.status + self.finalizer + self.events + self.secrets + self.other
    }
    /// The writes made since `o` was read.
    pub(crate) fn minus(&self, o: &Writes) -> Writes {
        Writes {
            status: self.status - o.status,
            finalizer: self.finalizer - o.finalizer,
            events: self.events - o.events,
            secrets: self.secrets - o.secrets,
            other: self.other - o.other,
        }
    }
}

/// The writes (create, update, patch, delete) `user` made so far, by kind, from the audit log.
pub(crate) fn writes(audit: &std::path::Path, user: &str) -> Writes {
    let text = std::fs::read_to_string(audit).unwrap_or_default();
    let mut w = Writes::default();
    for line in text.lines() {
        if !line.contains(user) || !line.contains("\"stage\":\"ResponseComplete\"") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["user"]["username"] != user
            || !matches!(v["verb"].as_str(), Some("create" | "update" | "patch" | "delete"))
        {
            continue;
        }
        let res = v["objectRef"]["resource"].as_str().unwrap_or_default();
        let sub = v["objectRef"]["subresource"].as_str().unwrap_or_default();
        match (res, sub) {
            ("redisinstances", "status") => w.status += 1,
            ("redisinstances", _) => w.finalizer += 1,
            ("events", _) => w.events += 1,
            ("secrets", _) => w.secrets += 1,
            _ => w.other += 1,
        }
    }
    w
}

/// Cloud calls so far by action (all outcomes), from the simulator's `/admin/calls` answer.
pub(crate) fn calls(v: &Value) -> BTreeMap<String, u64> {
    v["calls"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_object().map_or(0, |o| o.values().filter_map(Value::as_u64).sum()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The calls by action in `a` that `b` (an earlier count) does not have yet.
pub(crate) fn minus_calls(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    a.iter()
        .map(|(k, v)| (k.clone(), v - b.get(k).copied().unwrap_or(0)))
        .collect()
}

/// A `kB` field of `/proc/PID/status` (e.g. `VmHWM:`), 0 when absent.
pub(crate) fn status_kb(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The operator's resident set now, in KiB: (anonymous, file-backed such as its own code).
pub(crate) fn rss_now(pid: u32) -> (u64, u64) {
    (status_kb(pid, "RssAnon:"), status_kb(pid, "RssFile:"))
}

/// Peak RSS in KiB and CPU seconds so far.
pub(crate) fn proc_stats(pid: u32) -> (u64, f64) {
    let hwm_kb = status_kb(pid, "VmHWM:");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (hwm_kb, ticks / hz)
}

/// The objects in `api`'s namespace: (how many there are, how many of them are Ready).
pub(crate) async fn count_ready(api: &Api<RedisInstance>) -> (usize, usize) {
    // A loaded apiserver may drop a large list now and then: retry rather than lose the run.
    let list = loop {
        match api.list(&ListParams::default()).await {
            Ok(list) => break list,
            Err(e) => {
                eprintln!("listing the objects failed ({e}); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let ready = list.items.iter().filter(|o| support::env::is_ready(o)).count();
    (list.items.len(), ready)
}

/// The value of one series (`name{labels}`) in a Prometheus text exposition.
pub(crate) fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .filter(|rest| rest.starts_with(' '))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    })
}
