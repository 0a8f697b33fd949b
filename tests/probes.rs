//! The test a kubelet would have been: the chart's rendered Deployment run as its pods would run
//! (its container's command, args, env, ports and security context, as uid 65532), with its
//! readiness and liveness probes polled exactly as declared. No kubelet runs here, so this is the
//! only place that shows `helm install --wait` would see the operator's pods become Ready.
//!
//! Both tests share this binary's control plane and one of them freezes its kube-apiserver, so
//! they take turns (`SERIAL`).

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cds_redis_operator::crd::RedisInstance;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};

use support::control_plane::{self, ControlPlane, kubeconfig_yaml, unique_namespace};
use support::sim::{self, Admin, KEY_ID, KEY_SECRET};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the issue asks of every replica, from its start: Ready within 10 s.
const READY_WITHIN: Duration = Duration::from_secs(10);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A directory every user can read, for what the uid-65532 processes read (the checkout and
/// the control plane's directory may sit under a 0700 home); those of earlier test processes
/// that are gone are removed first (each holds a 100 MB copy of the binary).
fn world_readable_dir(name: &str) -> PathBuf {
    static CLEANED: std::sync::Once = std::sync::Once::new();
    CLEANED.call_once(|| {
        for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = file_name.strip_prefix("cds-redis-operator-probes-")
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    let dir = std::env::temp_dir().join(format!("cds-redis-operator-probes-{}/{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for d in [dir.parent().unwrap(), dir.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

fn write_readable(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// The chart installed in a namespace of its own: the rendered manifest applied (its
/// ServiceAccount, RBAC, credentials Secret; its Deployment too, which nothing runs here).
struct Release {
    cp: &'static ControlPlane,
    ns: String,
    name: String,
    /// The simulator the rendered `CDS_ENDPOINT` points at.
    endpoint: String,
    /// A kubeconfig with a token of the chart's ServiceAccount: what the in-cluster config of
    /// its pods would hold.
    kubeconfig: PathBuf,
    /// The Lease the replicas compete for.
    lease: String,
}

impl Release {
    async fn install(cp: &'static ControlPlane, prefix: &str, endpoint: String) -> Self {
        let client = cp.client().await;
        cp.install_crd(&client).await;
        let ns = unique_namespace(&client, prefix).await;
        let name = format!("{prefix}-{}", &ns[ns.len() - 8..]);
        let mut release = Self {
            cp,
            ns,
            name,
            endpoint,
            kubeconfig: PathBuf::new(),
            lease: String::new(),
        };
        let manifest = release.render(8080);
        ok(
            &cp.kubectl_stdin(&["apply", "-n", &release.ns, "-f", "-"], &manifest),
            "kubectl apply",
        );
        let deployment = deployment(&manifest);
        let sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .expect("a ServiceAccount")
            .to_owned();
        let token = ok(
            &cp.kubectl(&["create", "token", &sa, "-n", &release.ns, "--duration=1h"]),
            "kubectl create token",
        );
        release.kubeconfig = world_readable_dir(&release.ns).join("kubeconfig");
        write_readable(
            &release.kubeconfig,
            &kubeconfig_yaml(&cp.server, &cp.ca_pem, &format!("    token: {}\n", token.trim())),
        );
        release.lease = env_value(&deployment, "LEADER_ELECTION_ID").expect("LEADER_ELECTION_ID");
        release
    }

    /// `helm template` of the chart with what this machine needs: the test simulator as the
    /// cloud, the test key as the operator's credentials, fast busy polls, and `metrics_port`
    /// (each replica gets a port of its own: pods have their own network namespace, these
    /// processes share the host's).
    fn render(&self, metrics_port: u16) -> String {
        let values = [
            format!("cds.endpoint={}", self.endpoint),
            "credentials.create=true".into(),
            format!("credentials.accessKeyId={KEY_ID}"),
            format!("credentials.accessKeySecret={KEY_SECRET}"),
            "pollIntervals.busy=1s".into(),
            // What the other control-plane tests run the operator with (a comma needs escaping).
            r"logLevel=info\,cds_redis_operator=debug".into(),
            format!("metrics.port={metrics_port}"),
        ];
        let mut args = vec![
            "template".to_owned(),
            self.name.clone(),
            "charts/cds-redis-operator".into(),
            "--namespace".into(),
            self.ns.clone(),
            "--kube-version".into(),
            "1.37.2".into(),
        ];
        for v in values {
            args.extend(["--set".to_owned(), v]);
        }
        let out = Command::new(self.cp.assets.join("helm"))
            .env("HELM_CACHE_HOME", self.cp.dir.join("helm-cache"))
            .env("HELM_CONFIG_HOME", self.cp.dir.join("helm-config"))
            .env("HELM_DATA_HOME", self.cp.dir.join("helm-data"))
            .args(&args)
            .current_dir(root())
            .output()
            .expect("run helm");
        ok(&out, "helm template")
    }

    /// Starts replica `name` of the Deployment, as a kubelet would.
    async fn pod(&self, name: &str) -> Pod {
        let port = free_port();
        let deployment = deployment(&self.render(port));
        Pod::start(self, name, &deployment).await
    }

    /// The replica holding the Lease.
    async fn leader(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.cp.client().await, &self.ns);
        leases
            .get_opt(&self.lease)
            .await
            .unwrap()
            .and_then(|l| l.spec?.holder_identity)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The one Deployment of a rendered manifest.
fn deployment(manifest: &str) -> Value {
    let mut found = manifest
        .split("\n---")
        .filter_map(|doc| serde_yaml::from_str::<Value>(doc).ok())
        .filter(|doc| doc["kind"] == "Deployment");
    let d = found.next().expect("the chart renders a Deployment");
    assert!(found.next().is_none(), "one Deployment");
    d
}

fn container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn env_value(deployment: &Value, name: &str) -> Option<String> {
    container(deployment)["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
        .map(str::to_owned)
}

/// A probe as declared, with the API's defaults for what it leaves out.
#[derive(Clone, Debug)]
struct Probe {
    path: String,
    port: u16,
    initial_delay: Duration,
    period: Duration,
    timeout: Duration,
    success_threshold: u32,
    failure_threshold: u32,
}

impl Probe {
    fn from_spec(spec: &Value, ports: &Value) -> Self {
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
    async fn check(&self) -> Result<(u16, String), String> {
        http_get(self.port, &self.path, self.timeout).await
    }
}

async fn http_get(port: u16, path: &str, timeout: Duration) -> Result<(u16, String), String> {
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
struct ProbeState {
    /// Every result: when (since the container started), and the answer or the failure.
    results: Vec<(Duration, Result<String, String>)>,
    consecutive_failures: u32,
    consecutive_successes: u32,
    /// The highest run of failures seen.
    worst_run: u32,
    /// The probe's verdict: readiness starts false, liveness true.
    passing: bool,
    /// When the verdict first turned to passing, since the container started.
    passed_after: Option<Duration>,
}

impl ProbeState {
    fn record(&mut self, probe: &Probe, at: Duration, result: Result<String, String>) {
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

/// One container of a pod: its process, and the kubelet's view of its probes.
#[derive(Default)]
struct Container {
    pid: Option<u32>,
    started: Option<Instant>,
    exit: Option<String>,
    readiness: ProbeState,
    liveness: ProbeState,
}

/// The containers of a pod, also after a failed assertion while it was held (a test's panic
/// must not turn into a second one in `Drop`).
fn lock(containers: &Mutex<Vec<Container>>) -> std::sync::MutexGuard<'_, Vec<Container>> {
    containers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A replica of the Deployment, run as the kubelet would run its pod: the container's process
/// (restarted after a 10 s back-off when it exits, `restartPolicy: Always`) and its probes.
struct Pod {
    name: String,
    log: PathBuf,
    /// One entry per container start (restarts included).
    containers: Arc<Mutex<Vec<Container>>>,
    deleted: Arc<std::sync::atomic::AtomicBool>,
    readiness: Probe,
    liveness: Probe,
    grace: Duration,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// How to start the container's process, resolved from the Deployment.
#[derive(Clone)]
struct Launch {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    uid: u32,
    gid: u32,
    log: PathBuf,
}

/// A copy of the operator binary that uid 65532 can execute: the image's ENTRYPOINT.
fn image_entrypoint() -> PathBuf {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/cds-redis-operator"]"#),
        "the image's entrypoint is the operator binary"
    );
    let copy = world_readable_dir("bin").join("cds-redis-operator");
    static COPIED: std::sync::Once = std::sync::Once::new();
    COPIED.call_once(|| {
        std::fs::copy(env!("CARGO_BIN_EXE_cds-redis-operator"), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    });
    copy
}

impl Pod {
    async fn start(release: &Release, name: &str, deployment: &Value) -> Self {
        let pod_spec = &deployment["spec"]["template"]["spec"];
        let c = container(deployment);
        let pod_dir = world_readable_dir(&format!("{}/{name}", release.ns));

        // The container's security context over the pod's: a fixed non-root user, no
        // privilege escalation, every capability dropped.
        let security = |field: &str| {
            let own = &c["securityContext"][field];
            if own.is_null() {
                pod_spec["securityContext"][field].clone()
            } else {
                own.clone()
            }
        };
        assert_eq!(security("runAsNonRoot"), json!(true));
        let uid = security("runAsUser").as_u64().expect("runAsUser") as u32;
        let gid = security("runAsGroup").as_u64().expect("runAsGroup") as u32;
        assert_eq!((uid, gid), (65532, 65532), "the image's user");
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], json!(false));
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        // readOnlyRootFilesystem is not reproduced: these processes share the host's root.

        // Secret volumes, written where the kubelet would mount them (under the pod's own
        // directory here, and paths into them rebased to match).
        let secrets: Api<Secret> = Api::namespaced(release.cp.client().await, &release.ns);
        let mut mounts = vec![];
        for mount in c["volumeMounts"].as_array().into_iter().flatten() {
            let volume = pod_spec["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == mount["name"])
                .expect("the mounted volume");
            let secret_name = volume["secret"]["secretName"].as_str().expect("a Secret volume");
            let mount_path = mount["mountPath"].as_str().unwrap().to_owned();
            let dir = pod_dir.join(mount_path.trim_start_matches('/'));
            let secret = secrets.get(secret_name).await.unwrap();
            for (key, value) in secret.data.unwrap_or_default() {
                write_readable(&dir.join(key), &String::from_utf8(value.0).unwrap());
            }
            mounts.push((mount_path, dir.display().to_string()));
        }

        let mut env: Vec<(String, String)> = vec![];
        for e in c["env"].as_array().into_iter().flatten() {
            let var = e["name"].as_str().unwrap().to_owned();
            let value = if let Some(v) = e["value"].as_str() {
                let mut v = v.to_owned();
                for (mount_path, dir) in &mounts {
                    if let Some(rest) = v.strip_prefix(mount_path.as_str()) {
                        v = format!("{dir}{rest}");
                    }
                }
                v
            } else {
                // The downward API: the pod's own namespace and name.
                match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                    Some("metadata.namespace") => release.ns.clone(),
                    Some("metadata.name") => name.to_owned(),
                    other => panic!("env {var}: unsupported source {other:?}"),
                }
            };
            assert!(!value.contains("$("), "env {var}: no variable references to expand");
            env.push((var, value));
        }
        // The in-cluster configuration (the ServiceAccount token mounted by the kubelet and
        // KUBERNETES_SERVICE_HOST) cannot exist here; the same token in a kubeconfig stands in.
        env.push(("KUBECONFIG".into(), release.kubeconfig.display().to_string()));

        // No `command`: the image's ENTRYPOINT, with the container's args.
        assert!(c["command"].is_null(), "the chart uses the image's entrypoint");
        let args: Vec<String> = c["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        let log = release.cp.dir.join("probes").join(format!("{}-{name}.log", release.ns));
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let launch = Launch {
            program: image_entrypoint(),
            args,
            env,
            uid,
            gid,
            log: log.clone(),
        };
        let ports = &c["ports"];
        let readiness = Probe::from_spec(&c["readinessProbe"], ports);
        let liveness = Probe::from_spec(&c["livenessProbe"], ports);
        let grace = Duration::from_secs(pod_spec["terminationGracePeriodSeconds"].as_u64().unwrap_or(30));

        let containers = Arc::new(Mutex::new(Vec::<Container>::new()));
        let deleted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut pod = Self {
            name: name.to_owned(),
            log,
            containers: containers.clone(),
            deleted: deleted.clone(),
            readiness: readiness.clone(),
            liveness: liveness.clone(),
            grace,
            tasks: vec![],
        };
        pod.tasks.push(tokio::spawn(run_containers(
            launch,
            containers.clone(),
            deleted.clone(),
        )));
        pod.tasks
            .push(tokio::spawn(prober(readiness, containers.clone(), true)));
        pod.tasks.push(tokio::spawn(prober(liveness, containers, false)));
        while lock(&pod.containers).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        pod
    }

    /// Deletes the pod: SIGTERM, then SIGKILL after the grace period, no restart.
    async fn delete(&self) {
        self.deleted.store(true, std::sync::atomic::Ordering::SeqCst);
        let pid = self.current(|c| if c.exit.is_none() { c.pid } else { None });
        let Some(pid) = pid else { return };
        // SAFETY: signals our own child.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + self.grace;
        while self.current(|c| c.exit.is_none()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if self.current(|c| c.exit.is_none()) {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }

    fn current<T>(&self, f: impl FnOnce(&Container) -> T) -> T {
        let containers = lock(&self.containers);
        f(containers.last().expect("a container started"))
    }

    fn restarts(&self) -> usize {
        lock(&self.containers).len().saturating_sub(1)
    }

    /// Waits until the kubelet would mark the current container Ready; returns how long after
    /// the container's start.
    async fn ready(&self, within: Duration) -> Duration {
        let deadline = Instant::now() + within;
        loop {
            let ready = self.current(|c| {
                (c.exit.is_none() && c.readiness.passing)
                    .then_some(c.readiness.passed_after)
                    .flatten()
            });
            if let Some(after) = ready {
                return after;
            }
            assert!(
                Instant::now() < deadline,
                "{}: not Ready within {within:?}; readiness probes: {:?}\n{}",
                self.name,
                self.current(|c| c.readiness.results.clone()),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a readiness probe of the kubelet's schedule got 200 with `body` (`ok` for
    /// a leader, `standby`) and the kubelet counts the container Ready; returns when that probe
    /// was due, since the container's start.
    async fn kubelet_sees(&self, body: &str, within: Duration) -> Duration {
        let started = self.current(|c| c.started).expect("started");
        loop {
            let seen = self.current(|c| {
                let found = c.readiness.results.iter().find(|(_, r)| r.as_deref() == Ok(body));
                found
                    .filter(|_| c.readiness.passing && c.exit.is_none())
                    .map(|(at, _)| *at)
            });
            if let Some(at) = seen {
                return at;
            }
            assert!(
                started.elapsed() < within + self.readiness.timeout + Duration::from_secs(1),
                "{}: no readiness probe answered {body:?} within {within:?}: {}\n{}",
                self.name,
                summary(self),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/readyz` every 100 ms from the container's start until it answers 200 with
    /// `body`; returns how long after the start (the figure the kubelet's period rounds up).
    async fn answers_ready(&self, body: &str, within: Duration) -> Duration {
        let started = self.current(|c| c.started).expect("started");
        self.answers_ready_since(started, body, within).await
    }

    /// Polls `/readyz` every 100 ms until it answers 200 with `body`, at most `within` after
    /// `since`; returns how long after `since`.
    async fn answers_ready_since(&self, since: Instant, body: &str, within: Duration) -> Duration {
        loop {
            if let Ok((_, b)) = http_get(self.readiness.port, &self.readiness.path, self.readiness.timeout).await
                && b == body
            {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < within,
                "{}: /readyz did not answer 200 {body:?} within {within:?}\n{}",
                self.name,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.deleted.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in &self.tasks {
            t.abort();
        }
        if let Some(c) = lock(&self.containers).last()
            && c.exit.is_none()
            && let Some(pid) = c.pid
        {
            // SAFETY: signals our own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

/// The container runtime's part: starts the process as the container's user, restarts it
/// 10 s after it exits (the kubelet's first back-off), until the pod is deleted.
async fn run_containers(
    launch: Launch,
    containers: Arc<Mutex<Vec<Container>>>,
    deleted: Arc<std::sync::atomic::AtomicBool>,
) {
    let cap_last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    loop {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&launch.log)
            .unwrap();
        let mut cmd = tokio::process::Command::new(&launch.program);
        cmd.args(&launch.args)
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true);
        let (uid, gid) = (launch.uid, launch.gid);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // As root still: no capability can ever come back, no supplementary groups.
                for cap in 0..=cap_last {
                    if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                    || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    // After the uid change, which clears the parent-death signal.
                    || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start the container's process");
        lock(&containers).push(Container {
            pid: child.id(),
            started: Some(Instant::now()),
            ..Default::default()
        });
        let status = child.wait().await.expect("wait for the process");
        lock(&containers).last_mut().unwrap().exit = Some(status.to_string());
        if deleted.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        if deleted.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
    }
}

/// The kubelet's prober for one probe: after `initialDelaySeconds`, every `periodSeconds`
/// from each container start; readiness is also probed at once when the container starts
/// (the kubelet triggers it on the container's first status update). Liveness is first probed
/// a period after the start (the phase of its ticker is arbitrary; this one never catches the
/// process before it listens).
async fn prober(probe: Probe, containers: Arc<Mutex<Vec<Container>>>, readiness: bool) {
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

async fn create_objects(release: &Release, names: &[&str]) {
    let client = release.cp.client().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &release.ns);
    let pw: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "pw" }, "stringData": { "password": "probes-pw" } }))
            .unwrap();
    secrets.create(&PostParams::default(), &pw).await.unwrap();
    let api: Api<RedisInstance> = Api::namespaced(client, &release.ns);
    for name in names {
        let obj: RedisInstance = serde_json::from_value(json!({
            "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
            "metadata": { "name": name },
            "spec": { "regionId": "CN_Beijing_A", "vdcId": "vdc-1", "basePipeId": "pipe-1", "paasGoodsId": 12467,
                "passwordSecretRef": { "name": "pw" }, "writeConnectionSecretToRef": { "name": format!("{name}-conn") } },
        }))
        .unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
}

/// Waits until every object of the release's namespace is Ready (the leader really acts).
async fn objects_ready(release: &Release, count: usize, within: Duration) {
    let api: Api<RedisInstance> = Api::namespaced(release.cp.client().await, &release.ns);
    let deadline = Instant::now() + within;
    loop {
        let ready = api
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|o| {
                o.status
                    .as_ref()
                    .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if ready == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{ready} of {count} objects Ready after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks what the kubelet and the container runtime would enforce on the running process:
/// the image's user and group, no supplementary groups, no capabilities, no new privileges.
fn assert_runs_as_the_image_user(pod: &Pod) {
    let pid = pod.current(|c| c.pid).expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(field("Uid"), "65532 65532 65532 65532", "{status}");
    assert_eq!(field("Gid"), "65532 65532 65532 65532", "{status}");
    assert_eq!(field("Groups"), "", "{status}");
    for caps in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(caps), "0000000000000000", "{caps}: {status}");
    }
    assert_eq!(field("NoNewPrivs"), "1", "{status}");
}

/// How a replica fared, for the test's output.
fn summary(pod: &Pod) -> String {
    let c = lock(&pod.containers);
    let mut out = format!("{} ({} restarts):", pod.name, c.len().saturating_sub(1));
    for (i, container) in c.iter().enumerate() {
        out.push_str(&format!(
            "\n  container {i}: exit {:?}; readiness {:?}; liveness {:?}",
            container.exit, container.readiness.results, container.liveness.results
        ));
    }
    out
}

#[tokio::test]
async fn the_charts_pods_become_ready_within_10s_as_leader_standby_and_after_a_takeover_with_and_without_objects() {
    let _turn = SERIAL.lock().await;
    let cp = control_plane::shared();
    let s = sim::start(Duration::from_millis(500), Duration::from_millis(300)).await;
    let release = Release::install(cp, "probes", s.endpoint()).await;
    let all: Api<RedisInstance> = Api::all(cp.client().await);
    assert!(
        all.list(&Default::default()).await.unwrap().items.is_empty(),
        "no RedisInstance anywhere yet: the first leader starts in an empty cluster"
    );
    let mut figures = vec![];

    // A leader with no objects (the chart's default: all namespaces, leader election on).
    // Ready within 10 s as the kubelet sees it: the probe due at 10 s at the latest (probes
    // are due at 0 s, when the container starts, then every periodSeconds) answers `ok`.
    let a = release.pod("replica-a").await;
    let answered = a.answers_ready("ok", READY_WITHIN).await;
    let probed = a.kubelet_sees("ok", READY_WITHIN).await;
    assert!(probed <= READY_WITHIN, "{}", summary(&a));
    assert_eq!(release.leader().await.as_deref(), Some("replica-a"));
    assert_runs_as_the_image_user(&a);
    figures.push(format!(
        "leader, no objects: /readyz ok after {answered:?}; the kubelet's probe due at {probed:?} saw it"
    ));

    // A second replica stands by, Ready too.
    let b = release.pod("replica-b").await;
    let answered = b.answers_ready("standby", READY_WITHIN).await;
    let probed = b.kubelet_sees("standby", READY_WITHIN).await;
    assert!(probed <= READY_WITHIN, "{}", summary(&b));
    assert_runs_as_the_image_user(&b);
    figures.push(format!(
        "standby: /readyz standby after {answered:?}; the kubelet's probe due at {probed:?} saw it"
    ));

    // Objects, reconciled by the leader as the chart's ServiceAccount.
    create_objects(&release, &["one", "two", "three"]).await;
    objects_ready(&release, 3, Duration::from_secs(60)).await;

    // Takeover with objects: the leader's pod is deleted (SIGTERM; it gives the Lease up), the
    // standby leads and answers `ok` within 10 s; the kubelet sees that at its next probe, and
    // never counted it unready (a probe may land in the moment it syncs: the threshold is 3).
    let deleted = Instant::now();
    a.delete().await;
    let took_over = b.answers_ready_since(deleted, "ok", READY_WITHIN).await;
    assert_eq!(release.leader().await.as_deref(), Some("replica-b"));
    let b_started = b.current(|c| c.started).unwrap();
    let leading_since = (deleted - b_started) + took_over;
    let probed = b.kubelet_sees("ok", leading_since + b.readiness.period).await;
    assert!(probed <= leading_since + b.readiness.period, "{}", summary(&b));
    assert!(
        b.current(|c| c.readiness.worst_run) < b.readiness.failure_threshold,
        "{}",
        summary(&b)
    );
    figures.push(format!(
        "takeover with objects: the new leader answered ok {took_over:?} after the old one's deletion"
    ));

    // A fresh leader with objects from its first list.
    b.delete().await;
    let c = release.pod("replica-c").await;
    let answered = c.answers_ready("ok", READY_WITHIN).await;
    let probed = c.kubelet_sees("ok", READY_WITHIN).await;
    assert!(probed <= READY_WITHIN, "{}", summary(&c));
    assert_eq!(release.leader().await.as_deref(), Some("replica-c"));
    figures.push(format!(
        "leader with 3 objects: /readyz ok after {answered:?}; the kubelet's probe due at {probed:?} saw it"
    ));

    // It acts: deleting the objects deletes their cloud instances.
    let api: Api<RedisInstance> = Api::namespaced(cp.client().await, &release.ns);
    api.delete_collection(&DeleteParams::default(), &Default::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !api.list(&Default::default()).await.unwrap().items.is_empty() {
        assert!(Instant::now() < deadline, "objects not deleted:\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(Admin::of(&s).instances().await.is_empty());
    for pod in [&a, &b, &c] {
        assert_eq!(pod.restarts(), 0, "{}", summary(pod));
        assert_eq!(pod.current(|c| c.liveness.worst_run), 0, "{}", summary(pod));
    }
    c.delete().await;
    eprintln!("{}", figures.join("\n"));
    s.shutdown().await;
}

/// SIGCONTs kube-apiserver when dropped, so a failing test never leaves it frozen.
struct Frozen(u32);

impl Frozen {
    fn apiserver(cp: &ControlPlane) -> Self {
        // SAFETY: signals the control plane's own child process.
        assert_eq!(unsafe { libc::kill(cp.apiserver_pid as i32, libc::SIGSTOP) }, 0);
        Self(cp.apiserver_pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

#[tokio::test]
async fn liveness_stays_green_while_the_apiserver_is_frozen_for_30s_and_readiness_recovers_after() {
    let _turn = SERIAL.lock().await;
    let cp = control_plane::shared();
    let s = sim::start(Duration::from_millis(500), Duration::from_millis(300)).await;
    let release = Release::install(cp, "freeze", s.endpoint()).await;
    let a = release.pod("replica-a").await;
    a.answers_ready("ok", READY_WITHIN).await;
    let b = release.pod("replica-b").await;
    b.answers_ready("standby", READY_WITHIN).await;
    for pod in [&a, &b] {
        pod.ready(READY_WITHIN + pod.readiness.period).await;
    }

    // Frozen for 30 s: the kubelet's probes go on, and /healthz is also asked every second
    // (with the probe's own timeout) to show it never fails, not only at the probes' ticks.
    let frozen = Frozen::apiserver(cp);
    let froze = Instant::now();
    let mut healthz_failures = vec![];
    while froze.elapsed() < Duration::from_secs(30) {
        for pod in [&a, &b] {
            if pod.current(|c| c.exit.is_none())
                && let Err(e) = http_get(pod.liveness.port, &pod.liveness.path, pod.liveness.timeout).await
            {
                healthz_failures.push(format!("{} at {:?}: {e}", pod.name, froze.elapsed()));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(frozen);
    let thawed = Instant::now();
    // The requests held during the freeze complete at once; a leader whose renewal loses to the
    // standby's takeover exits within a lease retry period (2 s). Let that happen first.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        healthz_failures.is_empty(),
        "/healthz failed while frozen: {healthz_failures:?}"
    );
    for pod in [&a, &b] {
        let worst = lock(&pod.containers).iter().map(|c| c.liveness.worst_run).max();
        assert_eq!(worst, Some(0), "a liveness probe failed: {}", summary(pod));
    }

    // After: each pod is Ready again, and exactly one replica leads and says so. The freeze
    // outlasts the 15 s lease, so the standby may take the Lease at the thaw; the old leader
    // then exits and the kubelet restarts it (a restart, not a liveness failure), after its
    // 10 s back-off, and it must be Ready 10 s later.
    let within = Duration::from_secs(10) + READY_WITHIN + a.readiness.period;
    for pod in [&a, &b] {
        pod.ready(within.saturating_sub(thawed.elapsed())).await;
    }
    let leader = release.leader().await.expect("a leader");
    let (leader_pod, standby_pod) = if leader == a.name { (&a, &b) } else { (&b, &a) };
    leader_pod.answers_ready_since(thawed, "ok", within).await;
    assert!(
        http_get(
            standby_pod.readiness.port,
            &standby_pod.readiness.path,
            standby_pod.readiness.timeout
        )
        .await
        .is_ok_and(|(_, body)| body == "standby"),
        "{}",
        summary(standby_pod)
    );
    eprintln!(
        "after a 30 s freeze: every pod Ready {:?} after the thaw; leader {leader}; restarts: a {}, b {}\n{}\n{}",
        thawed.elapsed(),
        a.restarts(),
        b.restarts(),
        summary(&a),
        summary(&b)
    );
    a.delete().await;
    b.delete().await;
    s.shutdown().await;
}
