//! A pod of the chart's Deployment: its container run as declared (command, args, env,
//! security context), restarted like a kubelet would, with its probes polled.

use super::*;

/// One container of a pod: its process, and the kubelet's view of its probes.
#[derive(Default)]
pub(crate) struct Container {
    pub(crate) pid: Option<u32>,
    pub(crate) started: Option<Instant>,
    pub(crate) exit: Option<String>,
    pub(crate) readiness: ProbeState,
    pub(crate) liveness: ProbeState,
}

/// The containers of a pod, also after a failed assertion while it was held (a test's panic
/// must not turn into a second one in `Drop`).
pub(crate) fn lock(containers: &Mutex<Vec<Container>>) -> std::sync::MutexGuard<'_, Vec<Container>> {
    containers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A replica of the Deployment, run as the kubelet would run its pod: the container's process
/// (restarted after a 10 s back-off when it exits, `restartPolicy: Always`) and its probes.
pub(crate) struct Pod {
    pub(crate) name: String,
    pub(crate) log: PathBuf,
    /// One entry per container start (restarts included).
    pub(crate) containers: Arc<Mutex<Vec<Container>>>,
    pub(crate) deleted: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) readiness: Probe,
    pub(crate) liveness: Probe,
    pub(crate) grace: Duration,
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// How to start the container's process, resolved from the Deployment.
#[derive(Clone)]
pub(crate) struct Launch {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) log: PathBuf,
}

/// A copy of the operator binary that uid 65532 can execute: the image's ENTRYPOINT.
pub(crate) fn image_entrypoint() -> PathBuf {
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
    pub(crate) async fn start(release: &Release, name: &str, deployment: &Value) -> Self {
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
    pub(crate) async fn delete(&self) {
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

    pub(crate) fn current<T>(&self, f: impl FnOnce(&Container) -> T) -> T {
        let containers = lock(&self.containers);
        f(containers.last().expect("a container started"))
    }

    pub(crate) fn restarts(&self) -> usize {
        lock(&self.containers).len().saturating_sub(1)
    }

    /// Waits until the kubelet would mark the current container Ready; returns how long after
    /// the container's start.
    pub(crate) async fn ready(&self, within: Duration) -> Duration {
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
    pub(crate) async fn kubelet_sees(&self, body: &str, within: Duration) -> Duration {
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
    pub(crate) async fn answers_ready(&self, body: &str, within: Duration) -> Duration {
        let started = self.current(|c| c.started).expect("started");
        self.answers_ready_since(started, body, within).await
    }

    /// Polls `/readyz` every 100 ms until it answers 200 with `body`, at most `within` after
    /// `since`; returns how long after `since`.
    pub(crate) async fn answers_ready_since(&self, since: Instant, body: &str, within: Duration) -> Duration {
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

    pub(crate) fn logs(&self) -> String {
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
pub(crate) async fn run_containers(
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
