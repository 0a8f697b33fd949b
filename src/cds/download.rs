//! Fetching a backup file from a `DownloadBackup` URL. Such a URL grants access to the data
//! without credentials, so it is a secret: it is taken as a [`SecretString`], never logged, and
//! never part of an error (not even the parts a transport error might quote).

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use tokio::io::AsyncWriteExt as _;

use super::error::sanitise;

/// Time allowed to connect to the download server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while reading the file.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a download failed. No variant holds the URL.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// `DownloadBackup` gave no URL: the backup is not finished yet, or failed.
    #[error("the backup has no download URL (is it finished?)")]
    NoUrl,
    /// The URL is not an http(s) URL.
    #[error("the download URL is not an http(s) URL")]
    BadUrl,
    /// The server answered with an error status (e.g. 404: the backup is gone).
    #[error("the download server answered HTTP {status}")]
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// The connection failed or broke off.
    #[error("the download failed: {message}")]
    Transport {
        /// What happened, with the URL removed.
        message: String,
    },
    /// The server sent fewer (or more) bytes than it announced.
    #[error("the download ended after {written} of {expected} bytes")]
    Truncated {
        /// Bytes received.
        written: u64,
        /// Bytes announced (`Content-Length`).
        expected: u64,
    },
    /// The file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What a download reports while it runs: a progress bar, or nothing (`()`).
pub trait Progress {
    /// The download starts; `total` is its size, when the server announces it.
    fn start(&mut self, total: Option<u64>) {
        let _ = total;
    }
    /// `bytes` more were written.
    fn advance(&mut self, bytes: u64) {
        let _ = bytes;
    }
    /// The download ended, whether it succeeded or not.
    fn finish(&mut self) {}
}

/// No reports.
impl Progress for () {}

/// Downloads `url` into the file `path` and returns the number of bytes written. The bytes go to
/// a `.part` file beside it first, renamed at the end, so `path` never holds half a file.
pub async fn download_to(url: &SecretString, path: &Path, progress: &mut dyn Progress) -> Result<u64, DownloadError> {
    let url = url.expose_secret();
    if url.is_empty() {
        return Err(DownloadError::NoUrl);
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| DownloadError::BadUrl)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DownloadError::BadUrl);
    }
    super::client::install_crypto_provider();
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("cds-redis-operator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| transport(e, url))?;
    let response = http.get(parsed).send().await.map_err(|e| transport(e, url))?;
    if !response.status().is_success() {
        return Err(DownloadError::Status {
            status: response.status().as_u16(),
        });
    }
    let part = part_path(path);
    let written = write_body(response, &part, url, progress).await;
    progress.finish();
    let renamed = match written {
        Ok(n) => tokio::fs::rename(&part, path)
            .await
            .map(|()| n)
            .map_err(|source| DownloadError::Write {
                path: path.to_owned(),
                source,
            }),
        Err(e) => Err(e),
    };
    if renamed.is_err() {
        let _ = tokio::fs::remove_file(&part).await;
    }
    renamed
}

/// Streams the body into `part`, checking it against its `Content-Length`.
async fn write_body(
    mut response: reqwest::Response,
    part: &Path,
    url: &str,
    progress: &mut dyn Progress,
) -> Result<u64, DownloadError> {
    let write_error = |source| DownloadError::Write {
        path: part.to_owned(),
        source,
    };
    let expected = response.content_length();
    let mut file = tokio::fs::File::create(part).await.map_err(write_error)?;
    progress.start(expected);
    let mut written = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(e, url))? {
        file.write_all(&chunk).await.map_err(write_error)?;
        written += chunk.len() as u64;
        progress.advance(chunk.len() as u64);
    }
    file.sync_all().await.map_err(write_error)?;
    match expected {
        Some(expected) if expected != written => Err(DownloadError::Truncated { written, expected }),
        _ => Ok(written),
    }
}

/// `dir/.NAME.part` for `dir/NAME`.
fn part_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".part");
    path.with_file_name(name)
}

/// A transport error without the URL: reqwest's own URL is dropped, the message chain is
/// sanitised, and any quote of the URL or of its path (the token) is cut out.
fn transport(err: reqwest::Error, url: &str) -> DownloadError {
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    DownloadError::Transport {
        message: redact_url(&message, url),
    }
}

/// `message` with every quote of `url`, and of its path and query, replaced by `[url]`.
fn redact_url(message: &str, url: &str) -> String {
    let mut out = message.replace(url, "[url]");
    if let Ok(parsed) = reqwest::Url::parse(url) {
        let path = parsed.path();
        if path.len() > 1 {
            out = out.replace(path, "[url]");
        }
        if let Some(query) = parsed.query().filter(|q| !q.is_empty()) {
            out = out.replace(query, "[url]");
        }
    }
    sanitise(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_cut_out_of_messages() {
        let url = "http://127.0.0.1:9/download/SeCrEtToKeN?sig=abc";
        let shown = redact_url(
            &format!("error sending {url}: GET /download/SeCrEtToKeN failed; sig=abc"),
            url,
        );
        assert!(!shown.contains("SeCrEtToKeN") && !shown.contains("sig=abc"), "{shown}");
    }

    #[test]
    fn the_part_file_sits_beside_the_target() {
        assert_eq!(
            part_path(Path::new("/tmp/x/dump.rdb")),
            Path::new("/tmp/x/.dump.rdb.part")
        );
        assert_eq!(part_path(Path::new("dump.rdb")), Path::new(".dump.rdb.part"));
    }

    #[tokio::test]
    async fn refusals_never_quote_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("b.rdb");
        let empty = download_to(&SecretString::from(""), &to, &mut ()).await.unwrap_err();
        assert!(matches!(empty, DownloadError::NoUrl));
        let ftp = SecretString::from("ftp://h/SeCrEt");
        assert!(matches!(
            download_to(&ftp, &to, &mut ()).await,
            Err(DownloadError::BadUrl)
        ));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The listener is closed: the connection is refused.
        let refused = SecretString::from(format!("http://127.0.0.1:{port}/download/SeCrEtToKeN"));
        let e = download_to(&refused, &to, &mut ()).await.unwrap_err();
        assert!(matches!(e, DownloadError::Transport { .. }), "{e:?}");
        assert!(!format!("{e} {e:?}").contains("SeCrEt"), "{e:?}");
        assert!(!to.exists() && !part_path(&to).exists());
    }
}
