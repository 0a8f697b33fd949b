//! The chart rendered for a test release, and what its Deployment declares.

use super::*;
pub(crate) use crate::support::{repo_root as root, stdout_ok as ok};

/// A directory every user can read, for what the uid-65532 processes read (the checkout and
/// the control plane's directory may sit under a 0700 home); those of earlier test processes
/// that are gone are removed first (each holds a 100 MB copy of the binary).
pub(crate) fn world_readable_dir(name: &str) -> PathBuf {
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

pub(crate) fn write_readable(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// The chart installed in a namespace of its own: the rendered manifest applied (its
/// ServiceAccount, RBAC, credentials Secret; its Deployment too, which nothing runs here).
pub(crate) struct Release {
    pub(crate) cp: &'static ControlPlane,
    pub(crate) ns: String,
    pub(crate) name: String,
    /// The simulator the rendered `CDS_ENDPOINT` points at.
    pub(crate) endpoint: String,
    /// A kubeconfig with a token of the chart's ServiceAccount: what the in-cluster config of
    /// its pods would hold.
    pub(crate) kubeconfig: PathBuf,
    /// The Lease the replicas compete for.
    pub(crate) lease: String,
}

impl Release {
    pub(crate) async fn install(cp: &'static ControlPlane, prefix: &str, endpoint: String) -> Self {
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
    pub(crate) fn render(&self, metrics_port: u16) -> String {
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
    pub(crate) async fn pod(&self, name: &str) -> Pod {
        let port = free_port();
        let deployment = deployment(&self.render(port));
        Pod::start(self, name, &deployment).await
    }

    /// The replica holding the Lease.
    pub(crate) async fn leader(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.cp.client().await, &self.ns);
        leases
            .get_opt(&self.lease)
            .await
            .unwrap()
            .and_then(|l| l.spec?.holder_identity)
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The one Deployment of a rendered manifest.
pub(crate) fn deployment(manifest: &str) -> Value {
    let mut found = manifest
        .split("\n---")
        .filter_map(|doc| serde_norway::from_str::<Value>(doc).ok())
        .filter(|doc| doc["kind"] == "Deployment");
    let d = found.next().expect("the chart renders a Deployment");
    assert!(found.next().is_none(), "one Deployment");
    d
}

pub(crate) fn container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

pub(crate) fn env_value(deployment: &Value, name: &str) -> Option<String> {
    container(deployment)["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
        .map(str::to_owned)
}
