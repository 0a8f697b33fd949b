//! Optional real Redis behind each simulated instance: a `redis-server` on 127.0.0.1 with the
//! requested password and a free port, stopped on delete and on shutdown.
//!
//! The configuration (password included) goes to `redis-server -` on stdin, so the password is
//! never on a command line that `ps` could show.

use std::collections::HashMap;
use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};

/// The running `redis-server` processes, by instance UUID.
pub struct RedisBackend {
    binary: String,
    servers: HashMap<String, Child>,
}

impl RedisBackend {
    /// A backend starting `binary` (e.g. `redis-server`).
    pub fn new(binary: impl Into<String>) -> Self {
        Self {
            binary: binary.into(),
            servers: HashMap::new(),
        }
    }

    /// Whether the binary can be started at all (`--version` succeeds).
    pub async fn check(&self) -> std::io::Result<()> {
        let out = Command::new(&self.binary).arg("--version").output().await?;
        if out.status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("--version exited with {}", out.status)))
        }
    }

    /// Starts a server for `uuid` with `password`; returns its port once it accepts connections.
    pub async fn start(&mut self, uuid: &str, password: &str) -> Result<u16, String> {
        let port = free_port()?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", self.binary))?;
        let quoted = password.replace('\\', "\\\\").replace('"', "\\\"");
        let config = format!(
            "port {port}\nbind 127.0.0.1\nrequirepass \"{quoted}\"\nsave \"\"\nappendonly no\nprotected-mode yes\ndaemonize no\n"
        );
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        stdin.write_all(config.as_bytes()).await.map_err(|e| e.to_string())?;
        drop(stdin);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                self.servers.insert(uuid.to_owned(), child);
                return Ok(port);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited at start: {status}"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = child.kill().await;
        Err("redis-server did not start listening within 5s".into())
    }

    /// Stops the server of `uuid`, if any.
    pub async fn stop(&mut self, uuid: &str) {
        if let Some(mut child) = self.servers.remove(uuid) {
            let _ = child.kill().await;
        }
    }

    /// Stops every server.
    pub async fn stop_all(&mut self) {
        for (_, mut child) in self.servers.drain() {
            let _ = child.kill().await;
        }
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Makes a child process die when this process dies, even by SIGKILL.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the child's own process state.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}
