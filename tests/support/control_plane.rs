//! A real Kubernetes control plane for tests: etcd + kube-apiserver on free loopback ports, with
//! TLS, RBAC, service-account token signing and an audit log, and kube-controller-manager running
//! the garbage collector, namespace deletion and the service-account token controller
//! (envtest-style, no Docker; no kubelet, so no Pod ever runs).
//!
//! One control plane per test binary, started on first use. Its processes belong to a keeper
//! thread that lives as long as the test process and are started with `PR_SET_PDEATHSIG`, so they
//! die with the test process, whether it ends normally, panics or is killed.
//!
//! A control plane that cannot start fails the test that needs it: there is no switch that
//! turns such a test into a pass.

use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A running control plane.
pub struct ControlPlane {
    /// Working directory (certs, data, logs, kubeconfig).
    pub dir: PathBuf,
    /// The directory of kube-apiserver, kube-controller-manager, etcd, kubectl (and helm).
    pub assets: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// Admin kubeconfig (client cert in `system:masters`).
    pub kubeconfig: PathBuf,
    /// PEM of the cluster CA.
    pub ca_pem: String,
    /// Process id of kube-apiserver (a test may SIGSTOP it to freeze the control plane).
    pub apiserver_pid: u32,
}

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane of this test binary, started on first use. Panics when it cannot start.
pub fn shared() -> &'static ControlPlane {
    let result = SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("control-plane-keeper".into())
            .spawn(move || {
                // The children die when this thread does (PR_SET_PDEATHSIG), so it never returns.
                let mut children = vec![];
                let result = start(&mut children);
                let _ = tx.send(result);
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the keeper thread");
        rx.recv().unwrap_or_else(|_| Err("the keeper thread died".into()))
    });
    match result {
        Ok(cp) => cp,
        Err(e) => panic!("the test control plane could not start: {e}"),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The repository's root (this file is also compiled alone, by `examples/control_plane.rs`).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn has_assets(dir: &Path) -> bool {
    ["kube-apiserver", "kube-controller-manager", "etcd", "kubectl"]
        .iter()
        .all(|b| dir.join(b).exists())
}

/// The binaries: `KUBEBUILDER_ASSETS`, or what `scripts/control-plane-tools.sh` builds/caches.
fn find_assets() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("KUBEBUILDER_ASSETS") {
        let dir = PathBuf::from(dir);
        if has_assets(&dir) {
            return Ok(dir);
        }
    }
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/control-plane-tools.sh"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run scripts/control-plane-tools.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!("scripts/control-plane-tools.sh failed ({})", out.status));
    }
    let dir = PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap_or_default(),
    );
    if has_assets(&dir) {
        Ok(dir)
    } else {
        Err(format!("no control plane binaries in {}", dir.display()))
    }
}

/// Removes working directories of earlier test processes that are gone.
fn clean_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = name.strip_prefix("cp-").and_then(|p| p.parse::<i32>().ok())
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn spawn(bin: &Path, args: &[String], log: &Path) -> Result<Child, String> {
    let out = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: prctl only changes the child's own death-signal setting.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| format!("cannot start {}: {e}", bin.display()))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

struct Pki {
    ca_pem: String,
    serving_cert: String,
    serving_key: String,
    admin_cert: String,
    admin_key: String,
    controller_manager_cert: String,
    controller_manager_key: String,
    sa_key: String,
    sa_pub: String,
}

/// A client certificate for `user` in `system:masters`.
fn client_cert(issuer: &rcgen::Issuer<'_, KeyPair>, user: &str) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![])?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, user);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn pki() -> Result<Pki, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(vec![])?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "cds-redis-operator-test-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let serving_key = KeyPair::generate()?;
    let mut serving = CertificateParams::new(vec!["localhost".to_owned()])?;
    serving
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("literal")));
    serving.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving.signed_by(&serving_key, &issuer)?;

    let (admin_cert, admin_key) = client_cert(&issuer, "test-admin")?;
    // Its own name, so the audit log tells its requests apart; `system:masters`, because with
    // --use-service-account-credentials=false every controller acts as this user, and the
    // garbage collector and namespace deletion must be able to delete any kind.
    let (controller_manager_cert, controller_manager_key) = client_cert(&issuer, "system:kube-controller-manager")?;

    let sa_key = KeyPair::generate()?;
    Ok(Pki {
        ca_pem: ca_cert.pem(),
        serving_cert: serving_cert.pem(),
        serving_key: serving_key.serialize_pem(),
        admin_cert,
        admin_key,
        controller_manager_cert,
        controller_manager_key,
        sa_key: sa_key.serialize_pem(),
        sa_pub: sa_key.public_key_pem(),
    })
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A kubeconfig for `server` authenticating with a client certificate or a bearer token.
pub fn kubeconfig_yaml(server: &str, ca_pem: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\nusers:\n- name: test\n  user:\n{user}",
        b64(ca_pem)
    )
}

fn start(children: &mut Vec<Child>) -> Result<ControlPlane, String> {
    let started = Instant::now();
    let assets = find_assets()?;
    // Integration tests get CARGO_TARGET_TMPDIR; the demo (an example) uses target/tmp.
    let tmp = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/tmp"));
    let root = tmp.join("control-plane");
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    clean_stale(&root);
    let dir = root.join(format!("cp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("etcd")).map_err(|e| e.to_string())?;

    let pki = pki().map_err(|e| format!("cannot make test certificates: {e}"))?;
    for (name, text) in [
        ("ca.crt", &pki.ca_pem),
        ("serving.crt", &pki.serving_cert),
        ("serving.key", &pki.serving_key),
        ("sa.key", &pki.sa_key),
        ("sa.pub", &pki.sa_pub),
    ] {
        write(&dir.join(name), text)?;
    }
    write(
        &dir.join("audit-policy.yaml"),
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
    )?;

    let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let etcd_args: Vec<String> = [
        "--name=test".to_owned(),
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={etcd_url}"),
        format!("--advertise-client-urls={etcd_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=test={peer_url}"),
        "--unsafe-no-fsync".to_owned(),
        "--log-level=warn".to_owned(),
    ]
    .into();
    children.push(spawn(&assets.join("etcd"), &etcd_args, &dir.join("etcd.log"))?);

    let server = format!("https://127.0.0.1:{api_port}");
    let d = |name: &str| dir.join(name).display().to_string();
    let api_args: Vec<String> = vec![
        format!("--etcd-servers={etcd_url}"),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={api_port}"),
        "--advertise-address=127.0.0.1".into(),
        "--endpoint-reconciler-type=none".into(),
        format!("--cert-dir={}", d("certs")),
        format!("--tls-cert-file={}", d("serving.crt")),
        format!("--tls-private-key-file={}", d("serving.key")),
        format!("--client-ca-file={}", d("ca.crt")),
        "--authorization-mode=RBAC".into(),
        format!("--service-account-issuer={server}"),
        format!("--service-account-key-file={}", d("sa.pub")),
        format!("--service-account-signing-key-file={}", d("sa.key")),
        "--disable-admission-plugins=ServiceAccount".into(),
        "--service-cluster-ip-range=10.0.0.0/24".into(),
        format!("--audit-policy-file={}", d("audit-policy.yaml")),
        format!("--audit-log-path={}", d("audit.log")),
        "--audit-log-mode=batch".into(),
        "--audit-log-batch-max-wait=1s".into(),
        "--allow-privileged=false".into(),
        "--v=1".into(),
    ];
    let apiserver = spawn(
        &assets.join("kube-apiserver"),
        &api_args,
        &dir.join("kube-apiserver.log"),
    )?;
    let apiserver_pid = apiserver.id();
    children.push(apiserver);
    // The log of each child, in the order of `children`.
    let mut logs = vec!["etcd.log", "kube-apiserver.log"];

    let cert_user = |cert: &str, key: &str| {
        format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(cert),
            b64(key)
        )
    };
    let kubeconfig = dir.join("kubeconfig");
    write(
        &kubeconfig,
        &kubeconfig_yaml(&server, &pki.ca_pem, &cert_user(&pki.admin_cert, &pki.admin_key)),
    )?;

    // Ready when /readyz says ok and the default namespace can be read.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        exited(children, &logs, &dir)?;
        let ok = Command::new(assets.join("kubectl"))
            .env("KUBECONFIG", &kubeconfig)
            .args(["get", "--raw=/readyz"])
            .output()
            .is_ok_and(|o| o.status.success())
            && Command::new(assets.join("kubectl"))
                .env("KUBECONFIG", &kubeconfig)
                .args(["get", "namespace", "default", "-o", "name"])
                .output()
                .is_ok_and(|o| o.status.success());
        if ok {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "kube-apiserver not ready within 120s:\n{}",
                tail(&dir.join("kube-apiserver.log"))
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let apiserver_ready = started.elapsed();

    // The CRD before the controller-manager: its garbage collector discovers resource kinds at
    // start and then only every 30 s, and until it watches RedisInstances, the dependents of a
    // deleted one wait for that resync (40 s measured), where a cluster whose CRD is older
    // than its controller-manager's last resync takes well under a second. Applied as
    // `install_crd` applies it (same field manager), which then finds it in place.
    let crd = repo_root().join("crds");
    let crd = crd.display().to_string();
    kubectl(
        &assets,
        &kubeconfig,
        &[
            "apply",
            "--server-side",
            "--field-manager=cds-redis-operator-tests",
            "--force-conflicts",
            "-f",
            &crd,
        ],
        None,
    )?;
    kubectl(
        &assets,
        &kubeconfig,
        &["wait", "--for=condition=Established", "--timeout=60s", "-f", &crd],
        None,
    )?;

    // kube-controller-manager: without it nothing is garbage-collected and a deleted namespace
    // stays Terminating forever. Only the controllers that need neither nodes nor a cloud, and
    // of those only what tests exercise: the garbage collector (ownerReferences), namespace
    // deletion, and the token controller (service-account token Secrets).
    let kcm_kubeconfig = dir.join("kube-controller-manager.kubeconfig");
    write(
        &kcm_kubeconfig,
        &kubeconfig_yaml(
            &server,
            &pki.ca_pem,
            &cert_user(&pki.controller_manager_cert, &pki.controller_manager_key),
        ),
    )?;
    let kcm_port = free_port();
    let kcm_args: Vec<String> = vec![
        format!("--kubeconfig={}", kcm_kubeconfig.display()),
        "--controllers=garbage-collector-controller,namespace-controller,serviceaccount-token-controller".into(),
        // Every controller acts as the controller-manager's own (system:masters) identity
        // instead of minting a token per controller.
        "--use-service-account-credentials=false".into(),
        "--leader-elect=false".into(),
        format!("--service-account-private-key-file={}", d("sa.key")),
        format!("--root-ca-file={}", d("ca.crt")),
        // Its secure port (/healthz, /metrics) on a free loopback port, not the default 10257
        // that the control planes of parallel test binaries would fight over.
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={kcm_port}"),
        format!("--cert-dir={}", d("kcm-certs")),
        "--v=2".into(),
    ];
    children.push(spawn(
        &assets.join("kube-controller-manager"),
        &kcm_args,
        &dir.join("kube-controller-manager.log"),
    )?);
    logs.push("kube-controller-manager.log");
    wait_for_controller_manager(&assets, &kubeconfig, children, &logs, &dir)?;

    let _ = writeln!(
        std::io::stderr(),
        "test control plane ready at {server} in {:.1}s (kube-apiserver {:.1}s, then kube-controller-manager) ({})",
        started.elapsed().as_secs_f64(),
        apiserver_ready.as_secs_f64(),
        dir.display()
    );
    Ok(ControlPlane {
        dir,
        assets,
        server,
        kubeconfig,
        ca_pem: pki.ca_pem,
        apiserver_pid,
    })
}

/// Runs kubectl with `kubeconfig`, feeding it `stdin`; its stdout, or its stderr as the error.
fn kubectl(assets: &Path, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut child = Command::new(assets.join("kubectl"))
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .map_err(|e| e.to_string())?;
    drop(input);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// An error with the log of the first child that exited, if one did.
fn exited(children: &mut [Child], logs: &[&str], dir: &Path) -> Result<(), String> {
    for (c, log) in children.iter_mut().zip(logs) {
        if let Ok(Some(status)) = c.try_wait() {
            return Err(format!(
                "{log}: the process exited ({status}):\n{}",
                tail(&dir.join(log))
            ));
        }
    }
    Ok(())
}

/// Waits until kube-controller-manager really works: a dependent ConfigMap is garbage-collected
/// after its owner is deleted.
fn wait_for_controller_manager(
    assets: &Path,
    kubeconfig: &Path,
    children: &mut [Child],
    logs: &[&str],
    dir: &Path,
) -> Result<(), String> {
    let kubectl = |args: &[&str], stdin: Option<&str>| kubectl(assets, kubeconfig, args, stdin);
    let ns = "kube-controller-manager-probe";
    kubectl(&["create", "namespace", ns], None)?;
    let owner_uid = kubectl(
        &[
            "create",
            "configmap",
            "owner",
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    )?;
    let dependent = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "dependent", "namespace": ns, "ownerReferences": [
            { "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid }
        ] },
    });
    kubectl(&["create", "-f", "-"], Some(&dependent.to_string()))?;
    kubectl(&["delete", "configmap", "owner", "-n", ns, "--wait=false"], None)?;
    // The garbage collector first waits for its informers to sync (under 2 s here).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !kubectl(&["get", "configmap", "dependent", "-n", ns], None).is_err_and(|e| e.contains("NotFound")) {
        exited(children, logs, dir)?;
        if Instant::now() > deadline {
            return Err(format!(
                "kube-controller-manager is not working: the dependent ConfigMap was not garbage-collected within 120s:\n{}",
                tail(&dir.join("kube-controller-manager.log"))
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Not waited for: a namespace takes 4-5 s to finish here (the namespace controller lists
    // and empties every resource kind), which each test binary would pay; the tests that
    // delete namespaces show that it finishes.
    kubectl(&["delete", "namespace", ns, "--wait=false"], None).map(drop)
}

impl ControlPlane {
    /// A new admin client (clients are bound to the runtime that makes them, so each test
    /// makes its own).
    pub async fn client(&self) -> kube::Client {
        self.client_for(&self.kubeconfig).await
    }

    /// A client from any kubeconfig file.
    pub async fn client_for(&self, kubeconfig: &Path) -> kube::Client {
        cds_redis_operator::cds::client::install_crypto_provider();
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("kubeconfig to config");
        kube::Client::try_from(config).expect("client")
    }

    /// Runs `kubectl` with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        Command::new(self.assets.join("kubectl"))
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// Runs `kubectl` feeding `stdin`.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let mut child = Command::new(self.assets.join("kubectl"))
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl output")
    }

    /// The audit log (`level: Metadata`), e.g. to show the 403s of a failing RBAC test.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// Installs the CRDs from `crds/` (server-side apply) and waits until they are Established
    /// (the control plane starts with them installed; this applies them again, in case a test
    /// changed one).
    pub async fn install_crd(&self, client: &kube::Client) {
        let mut files: Vec<_> = std::fs::read_dir(repo_root().join("crds"))
            .expect("read crds/")
            .map(|e| e.expect("read crds/").path())
            .collect();
        files.sort();
        for path in files {
            install_one_crd(client, &std::fs::read_to_string(path).expect("read crds/")).await;
        }
    }
}

/// Applies one CRD (server-side) and waits until it is Established.
async fn install_one_crd(client: &kube::Client, text: &str) {
    let crd: CustomResourceDefinition =
        serde_norway::from_str(text.trim_start_matches("---\n")).expect("parse the CRD");
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().expect("named");
    api.patch(
        &name,
        &PatchParams::apply("cds-redis-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply the CRD");
    let cond = kube::runtime::conditions::is_crd_established();
    tokio::time::timeout(
        Duration::from_secs(30),
        kube::runtime::wait::await_condition(api, &name, cond),
    )
    .await
    .expect("the CRD becomes Established within 30s")
    .expect("watch the CRD");
}

/// A namespace with a unique name (a deleted namespace takes a while to finish terminating, so
/// tests never reuse one).
pub async fn unique_namespace(client: &kube::Client, prefix: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    let name = format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let ns: Namespace = serde_json::from_value(serde_json::json!({ "metadata": { "name": name } })).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&Default::default(), &ns)
        .await
        .expect("create namespace");
    name
}
