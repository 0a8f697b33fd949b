//! Starts a local control plane (etcd + kube-apiserver + kube-controller-manager on loopback, the
//! same harness the tests use), prints `KUBECONFIG=<path>` once it is ready, and keeps it running
//! until the process is stopped (its children die with it). Used by `scripts/demo.sh`.

#[allow(dead_code)] // the demo uses only part of the test support
#[path = "../tests/support/control_plane.rs"]
mod control_plane;

use std::io::Write as _;

fn main() {
    let cp = control_plane::shared();
    println!("KUBECONFIG={}", cp.kubeconfig.display());
    println!("SERVER={}", cp.server);
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
