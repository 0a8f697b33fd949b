//! The probes as a kubelet runs them: HTTP GETs with a timeout, thresholds, and their state.

use super::*;

/// A probe as declared, with the API's defaults for what it leaves out.
#[derive(Clone, Debug)]
pub(crate) struct Probe {
    pub(crate) path: String,
    pub(crate) port: u16,
    pub(crate) initial_delay: Duration,
    pub(crate) period: Duration,
    pub(crate) timeout: Duration,
    pub(crate) success_threshold: u32,
    pub(crate) failure_threshold: u32,
}

impl Probe {
    pub(crate) fn from_spec(spec: &Value, ports: &Value) -> Self {
        let get = &spec["httpGet"];
        assert!(get.is_object(), "an httpGet probe: {spec}");
        assert!(get["scheme"].is_null() || get["scheme"] == "HTTP", "HTTP: {spec}");
        assert!(get["host"].is_null(), "the pod's own address: {spec}");
        // A named port resolves against the container's ports, as the kubelet does.
        let port = match &get["port"] {
            Value::Number(n) => n.as_u64().unwrap() as u16,
            Value::String(name) => ports
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name.as_str())
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("no container port named {name}")) as u16,
            other => panic!("probe port {other}"),
        };
        let secs = |field: &str, default: u64| Duration::from_secs(spec[field].as_u64().unwrap_or(default));
        let count = |field: &str, default: u64| spec[field].as_u64().unwrap_or(default) as u32;
        Self {
            path: get["path"].as_str().unwrap_or("/").to_owned(),
            port,
            initial_delay: secs("initialDelaySeconds", 0),
            period: secs("periodSeconds", 10),
            timeout: secs("timeoutSeconds", 1),
            success_threshold: count("successThreshold", 1),
            failure_threshold: count("failureThreshold", 3),
        }
    }

    /// One probe as the kubelet's HTTP prober makes it: a GET within the timeout, success for
    /// a status from 200 to 399.
    pub(crate) async fn check(&self) -> Result<(u16, String), String> {
        http_get(self.port, &self.path, self.timeout).await
    }
}

pub(crate) async fn http_get(port: u16, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    cds_redis_operator::cds::client::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent("kube-probe/1.37")
        .build()
        .unwrap();
    let response = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if (200..400).contains(&status) {
        Ok((status, body))
    } else {
        Err(format!("{status} {body}"))
    }
}

/// What the kubelet knows of one probe of one container.
#[derive(Default)]
pub(crate) struct ProbeState {
    /// Every result: when (since the container started), and the answer or the failure.
    pub(crate) results: Vec<(Duration, Result<String, String>)>,
    pub(crate) consecutive_failures: u32,
    pub(crate) consecutive_successes: u32,
    /// The highest run of failures seen.
    pub(crate) worst_run: u32,
    /// The probe's verdict: readiness starts false, liveness true.
    pub(crate) passing: bool,
    /// When the verdict first turned to passing, since the container started.
    pub(crate) passed_after: Option<Duration>,
}

impl ProbeState {
    pub(crate) fn record(&mut self, probe: &Probe, at: Duration, result: Result<String, String>) {
        if result.is_ok() {
            self.consecutive_successes += 1;
            self.consecutive_failures = 0;
            if self.consecutive_successes >= probe.success_threshold {
                self.passing = true;
                self.passed_after.get_or_insert(at);
            }
        } else {
            self.consecutive_failures += 1;
            self.consecutive_successes = 0;
            self.worst_run = self.worst_run.max(self.consecutive_failures);
            if self.consecutive_failures >= probe.failure_threshold {
                self.passing = false;
            }
        }
        self.results.push((at, result));
    }
}

/// The kubelet's prober for one probe: after `initialDelaySeconds`, every `periodSeconds`
/// from each container start; readiness is also probed at once when the container starts
/// (the kubelet triggers it on the container's first status update). Liveness is first probed
/// a period after the start (the phase of its ticker is arbitrary; this one never catches the
/// process before it listens).
pub(crate) async fn prober(probe: Probe, containers: Arc<Mutex<Vec<Container>>>, readiness: bool) {
    let mut probed = 0;
    loop {
        // The current container, once a new one runs.
        let current = {
            let c = lock(&containers);
            c.last()
                .filter(|last| c.len() != probed && last.exit.is_none())
                .map(|last| (c.len(), last.started.unwrap()))
        };
        let Some((count, started)) = current else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        probed = count;
        let first = if readiness {
            probe.initial_delay
        } else {
            probe.initial_delay.max(probe.period)
        };
        {
            let mut c = lock(&containers);
            let last = c.last_mut().unwrap();
            let state = if readiness {
                &mut last.readiness
            } else {
                &mut last.liveness
            };
            state.passing = !readiness;
        }
        for tick in 0.. {
            let at = started + first + probe.period * tick;
            // Sleep until the tick, unless the container exits first.
            let still_running = || {
                let c = lock(&containers);
                c.len() == count && c.last().is_some_and(|l| l.exit.is_none())
            };
            while Instant::now() < at && still_running() {
                tokio::time::sleep(Duration::from_millis(20).min(at - Instant::now())).await;
            }
            if !still_running() {
                break;
            }
            let result = probe.check().await.map(|(_, body)| body);
            let mut c = lock(&containers);
            if c.len() != count {
                break;
            }
            let last = c.last_mut().unwrap();
            let state = if readiness {
                &mut last.readiness
            } else {
                &mut last.liveness
            };
            state.record(&probe, at - started, result);
        }
    }
}
