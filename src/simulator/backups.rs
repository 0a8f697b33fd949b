//! Real backups with `--redis-backend`: `CreateBackup` snapshots the instance's `redis-server`
//! into one file per backup in the backup directory, and the simulator serves each file at the
//! URLs `DownloadBackup` gives out, `/download/{token}` and `/download/intranet/{token}`: unsigned
//! GETs, like a cloud's pre-signed URLs, whose random token is valid while the backup exists.
//! Files whose backup is gone are removed after the call that dropped them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header, uri::Authority};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use tokio::io::AsyncReadExt as _;

use super::Sim;
use super::redis::{self, SnapshotError};
use super::state::{BackupFile, DownloadRoutes};

/// Bytes read from a backup file at a time while serving it.
const CHUNK: usize = 64 * 1024;

/// The download routes.
pub(super) fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route(&format!("{}{{token}}", DownloadRoutes::PUBLIC), get(download))
        .route(&format!("{}{{token}}", DownloadRoutes::INTRANET), get(download))
}

/// A new download token: 256 random bits, URL-safe.
fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Whether `name` is a bare file name (no directory, not `..`): only such names, as the
/// simulator makes them, are opened or removed, whatever a state file says.
fn bare_file_name(name: &str) -> bool {
    Path::new(name).file_name().is_some_and(|n| n == name)
}

impl Sim {
    /// The authority of download URLs (with `--redis-backend`): the `Host` the call was sent to
    /// if it is a valid one (so URLs work through whatever name clients use), else the address
    /// the simulator listens on.
    pub(super) fn download_authority(&self, host: Option<&str>) -> Option<String> {
        self.backup_dir.as_ref()?;
        let valid = host.filter(|h| h.parse::<Authority>().is_ok());
        Some(valid.map_or_else(|| self.addr.to_string(), str::to_owned))
    }

    /// Takes the snapshot of a new backup and gives the backup its file; a snapshot that cannot
    /// be taken marks the backup failed.
    pub(super) async fn snapshot_backup(&self, uuid: &str, backup_id: &str) {
        let (Some(backend), Some(dir)) = (&self.redis, &self.backup_dir) else {
            return;
        };
        let file_name = format!("{backup_id}.rdb");
        let path = dir.join(&file_name);
        let source = backend.lock().await.snapshot_source(uuid);
        let taken = match source {
            Some(source) => redis::snapshot(&source, &path).await,
            None => Err(SnapshotError::NoServer),
        };
        let attached = {
            let mut core = self.core.lock().await;
            match &taken {
                Ok(size) => {
                    let file = BackupFile {
                        instance_uuid: uuid.to_owned(),
                        backup_id: backup_id.to_owned(),
                        file_name,
                    };
                    core.cloud.attach_snapshot(file, *size, new_token())
                }
                Err(_) => {
                    core.cloud.fail_snapshot(uuid, backup_id);
                    false
                }
            }
        };
        if let Err(e) = &taken {
            tracing::warn!(error = %e, %uuid, backup_id, "cannot take the snapshot of a backup");
        }
        if !attached {
            remove_file(&path).await;
        }
    }

    /// Removes the files of backups that no longer exist.
    pub(super) async fn remove_backup_files(&self, names: Vec<String>) {
        let Some(dir) = &self.backup_dir else { return };
        for name in names.iter().filter(|n| bare_file_name(n)) {
            remove_file(&dir.join(name)).await;
        }
    }

    /// Removes the files the state dropped outside an API call (admin changes).
    pub(super) async fn remove_dropped_backup_files(&self) {
        let dropped = self.core.lock().await.cloud.take_dropped_files();
        self.remove_backup_files(dropped).await;
    }

    /// The file of a download token, and the id of its backup.
    async fn download_file(&self, token: &str) -> Option<(PathBuf, String)> {
        let dir = self.backup_dir.as_ref()?;
        let core = self.core.lock().await;
        let file = core.cloud.backup_file(token)?;
        bare_file_name(&file.file_name).then(|| (dir.join(&file.file_name), file.backup_id.clone()))
    }
}

/// Removes a file; one already gone is fine.
async fn remove_file(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(error = %e, path = %path.display(), "cannot remove a backup file");
        }
        _ => {}
    }
}

/// `GET /download/{token}` (and `/download/intranet/{token}`): the backup file, streamed with
/// its `Content-Length`; 404 for a token that stands for no backup (never says more).
async fn download(State(sim): State<Arc<Sim>>, UrlPath(token): UrlPath<String>) -> Response {
    let Some((path, backup_id)) = sim.download_file(&token).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let opened = async {
        let file = tokio::fs::File::open(&path).await?;
        let len = file.metadata().await?.len();
        std::io::Result::Ok((file, len))
    };
    let Ok((file, len)) = opened.await else {
        // Deleted between the lookup and the open: gone, like its backup.
        return StatusCode::NOT_FOUND.into_response();
    };
    let chunks = futures::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0; CHUNK];
        let n = file.read(&mut buf).await?;
        buf.truncate(n);
        std::io::Result::Ok((n > 0).then(|| (Bytes::from(buf), file)))
    });
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::CONTENT_LENGTH, len.to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{backup_id}.rdb\""),
        ),
    ];
    (headers, Body::from_stream(chunks)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bare_file_names_are_touched() {
        for ok in ["a.rdb", "0b5c-1.rdb"] {
            assert!(bare_file_name(ok), "{ok}");
        }
        for bad in ["", "..", ".", "../a.rdb", "/etc/passwd", "a/b.rdb"] {
            assert!(!bare_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
