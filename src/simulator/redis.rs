//! Optional real Redis behind each simulated instance: a `redis-server` on 127.0.0.1 with the
//! requested password, a free port and a working directory of its own, stopped on delete and on
//! shutdown; and the snapshots that make real backups of it.
//!
//! The configuration (passwords included) goes to `redis-server -` on stdin, so no password is
//! ever on a command line that `ps` could show. Besides the user's password (the `default`
//! user's), each server gets an ACL user only the simulator knows, allowed nothing but `SAVE`
//! and `PING`, so a backup never needs the user's password.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use secrecy::{ExposeSecret as _, SecretString};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};

/// The ACL user the simulator takes snapshots as.
const SNAPSHOT_USER: &str = "cds-simulator";
/// The file `SAVE` writes in a server's directory.
const DUMP_FILE: &str = "dump.rdb";

/// The running `redis-server` processes, by instance UUID, and the directory they work in.
pub struct RedisBackend {
    binary: String,
    work: tempfile::TempDir,
    servers: HashMap<String, Server>,
}

/// One running server.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
    snapshot_password: SecretString,
}

/// How to take a snapshot of one server, without holding the backend.
pub struct SnapshotSource {
    port: u16,
    password: SecretString,
    dump: PathBuf,
}

/// Why a snapshot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The instance has no running server (not backed, or stopped).
    #[error("the instance has no running redis-server")]
    NoServer,
    /// The server could not be reached or stopped answering.
    #[error("cannot talk to the instance's redis-server")]
    Connection(#[source] std::io::Error),
    /// The server refused a command; its error reply.
    #[error("redis-server refused {command}: {reply}")]
    Refused {
        /// The command (never the password).
        command: &'static str,
        /// The reply.
        reply: String,
    },
    /// The dump could not be copied into the backup directory.
    #[error("cannot copy the dump to {}", to.display())]
    Copy {
        /// The destination.
        to: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl RedisBackend {
    /// A backend starting `binary` (e.g. `redis-server`), working in a new temporary directory
    /// (removed by [`RedisBackend::shutdown`], or when the backend is dropped).
    pub fn new(binary: impl Into<String>) -> std::io::Result<Self> {
        Ok(Self {
            binary: binary.into(),
            work: tempfile::Builder::new().prefix("cds-simulator-").tempdir()?,
            servers: HashMap::new(),
        })
    }

    /// The backend's temporary directory.
    pub fn work_dir(&self) -> &Path {
        self.work.path()
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
        let dir = self.work.path().join("redis").join(uuid);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let snapshot_password = SecretString::from(random_hex());
        let config = server_config(port, &dir, password, snapshot_password.expose_secret());
        let mut cmd = Command::new(&self.binary);
        cmd.arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", self.binary))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        stdin.write_all(config.as_bytes()).await.map_err(|e| e.to_string())?;
        drop(stdin);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                let server = Server {
                    child,
                    port,
                    dir,
                    snapshot_password,
                };
                self.servers.insert(uuid.to_owned(), server);
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

    /// What [`snapshot`] needs to back up the server of `uuid`, if it runs.
    pub fn snapshot_source(&self, uuid: &str) -> Option<SnapshotSource> {
        self.servers.get(uuid).map(|s| SnapshotSource {
            port: s.port,
            password: s.snapshot_password.clone(),
            dump: s.dir.join(DUMP_FILE),
        })
    }

    /// Stops the server of `uuid`, if any, and removes its directory.
    pub async fn stop(&mut self, uuid: &str) {
        if let Some(server) = self.servers.remove(uuid) {
            server.stop().await;
        }
    }

    /// Stops every server.
    pub async fn stop_all(&mut self) {
        for (_, server) in self.servers.drain() {
            server.stop().await;
        }
    }

    /// Stops every server and removes the temporary directory's contents.
    pub async fn shutdown(&mut self) {
        self.stop_all().await;
        let _ = tokio::fs::remove_dir_all(self.work.path()).await;
    }
}

impl Server {
    async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
    }
}

/// The configuration of one server: its port, directory, the user's password and the
/// snapshot user's; no automatic saving.
fn server_config(port: u16, dir: &Path, password: &str, snapshot_password: &str) -> String {
    format!(
        "port {port}\nbind 127.0.0.1\ndir \"{}\"\ndbfilename {DUMP_FILE}\nrequirepass \"{}\"\n\
         user {SNAPSHOT_USER} on >{snapshot_password} +save +ping\n\
         save \"\"\nappendonly no\nprotected-mode yes\ndaemonize no\n",
        quote(&dir.display().to_string()),
        quote(password),
    )
}

/// Escapes a value for a double-quoted string of a redis configuration file.
fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// 32 random hex digits (128 bits).
fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Takes a snapshot (`SAVE`, so the dump is complete when it answers) and copies the dump to
/// `to`; returns its size in bytes.
pub async fn snapshot(source: &SnapshotSource, to: &Path) -> Result<u64, SnapshotError> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", source.port))
        .await
        .map_err(SnapshotError::Connection)?;
    let mut stream = BufReader::new(stream);
    let password = source.password.expose_secret();
    expect_ok(&mut stream, "AUTH", &["AUTH", SNAPSHOT_USER, password]).await?;
    expect_ok(&mut stream, "SAVE", &["SAVE"]).await?;
    tokio::fs::copy(&source.dump, to)
        .await
        .map_err(|source| SnapshotError::Copy {
            to: to.to_owned(),
            source,
        })
}

/// Sends one command in RESP and requires `+OK`.
async fn expect_ok(
    stream: &mut BufReader<tokio::net::TcpStream>,
    command: &'static str,
    args: &[&str],
) -> Result<(), SnapshotError> {
    let mut request = format!("*{}\r\n", args.len());
    for a in args {
        request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .map_err(SnapshotError::Connection)?;
    let mut reply = String::new();
    stream.read_line(&mut reply).await.map_err(SnapshotError::Connection)?;
    match reply.trim_end() {
        "+OK" => Ok(()),
        other => Err(SnapshotError::Refused {
            command,
            reply: other.chars().take(200).collect(),
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_quotes_the_password_and_gives_the_snapshot_user_only_save() {
        let config = server_config(7000, Path::new("/tmp/a \"b\""), r#"p"w\x"#, "s3cr3t");
        assert!(config.contains("requirepass \"p\\\"w\\\\x\"\n"), "{config}");
        assert!(config.contains("dir \"/tmp/a \\\"b\\\"\"\n"), "{config}");
        assert!(
            config.contains("user cds-simulator on >s3cr3t +save +ping\n"),
            "{config}"
        );
        assert!(config.contains("save \"\"\n") && config.contains("port 7000\n"));
    }
}
