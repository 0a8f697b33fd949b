//! The operator binary as a child process of a test: started against the test control plane
//! and a simulator, killed (SIGKILL) or stopped (SIGTERM) at will, its logs kept for checks.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::control_plane::ControlPlane;
use super::sim::{KEY_ID, KEY_SECRET};

/// A running operator process.
pub struct Operator {
    child: Option<Child>,
    /// Its combined stdout and stderr.
    pub log: PathBuf,
    /// Its metrics address.
    pub metrics: String,
}

/// How to start it.
pub struct OperatorOptions<'a> {
    /// Namespace it watches (also where its Lease lives).
    pub namespace: &'a str,
    /// Simulator endpoint.
    pub endpoint: String,
    /// Extra flags.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Name of the log file.
    pub name: String,
    /// Watch every namespace instead of `namespace` (which still holds the Lease).
    pub all_namespaces: bool,
}

impl<'a> OperatorOptions<'a> {
    /// Defaults for tests: fast polls, a 3 s visibility grace, the test credentials.
    pub fn new(namespace: &'a str, endpoint: String) -> Self {
        Self {
            namespace,
            endpoint,
            args: vec![],
            env: vec![],
            name: "operator".into(),
            all_namespaces: false,
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Operator {
    /// Starts the operator binary.
    pub fn start(cp: &ControlPlane, opts: OperatorOptions<'_>) -> Self {
        let dir = cp.dir.join("operators");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join(format!(
            "{}-{}-{}.log",
            opts.namespace,
            opts.name,
            uuid::Uuid::new_v4().simple()
        ));
        let out = std::fs::File::create(&log).unwrap();
        let metrics = format!("127.0.0.1:{}", free_port());
        // CDS_OPERATOR_BIN runs the tests against another build (e.g. an older commit, to show
        // that a new test fails there); by default, the binary of this build.
        let bin =
            std::env::var_os("CDS_OPERATOR_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_cds-redis-operator").into());
        let mut cmd = Command::new(bin);
        // Test defaults, unless the test sets the flag itself.
        let mut args: Vec<String> = opts.args.clone();
        for (flag, value) in [
            ("--namespace", opts.namespace),
            ("--endpoint", opts.endpoint.as_str()),
            ("--busy-poll-interval", "300ms"),
            ("--steady-poll-interval", "3s"),
            ("--visibility-grace", "3s"),
            ("--metrics-address", metrics.as_str()),
            ("--leader-election-namespace", opts.namespace),
        ] {
            if flag == "--namespace" && opts.all_namespaces {
                continue;
            }
            if !opts.args.iter().any(|a| a == flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        cmd.arg("run")
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KUBECONFIG", &cp.kubeconfig)
            .env("CDS_ACCESS_KEY_ID", KEY_ID)
            .env("CDS_ACCESS_KEY_SECRET", KEY_SECRET)
            .env("RUST_LOG", "info,cds_redis_operator=debug")
            .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        // SAFETY: prctl only changes the child's own death-signal setting.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start the operator");
        Self {
            child: Some(child),
            log,
            metrics,
        }
    }

    /// SIGKILL, as a node failure would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (a graceful shutdown); returns whether it exited by itself in time.
    pub async fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        for _ in 0..100 {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Waits until the process exits by itself (e.g. at a crash point); returns its status.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                self.child = None;
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Its output so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its /metrics text.
    pub async fn metrics_text(&self) -> String {
        cds_redis_operator::cds::client::install_crypto_provider();
        match reqwest::get(format!("http://{}/metrics", self.metrics)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}
