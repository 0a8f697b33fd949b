//! Real `redis-server` for tests: a small RESP client (to write and read keys through an
//! instance's endpoint), and a fresh server started on an RDB file, such as a downloaded backup,
//! to prove what the file holds.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// One RESP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`, `+PONG`.
    Simple(String),
    /// `-ERR …`.
    Error(String),
    /// `:1`.
    Integer(i64),
    /// `$n` bytes, or `$-1` (none).
    Bulk(Option<Vec<u8>>),
    /// `*n` replies, or `*-1` (none).
    Array(Option<Vec<Reply>>),
}

/// A connection to a `redis-server`.
pub struct Resp {
    stream: BufReader<TcpStream>,
}

impl Resp {
    /// Connects to `127.0.0.1:port`.
    pub async fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to redis-server");
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// Connects and authenticates as the default user with `password`.
    pub async fn connect_with_password(port: u16, password: &str) -> Self {
        let mut resp = Self::connect(port).await;
        let reply = resp.command(&["AUTH", password]).await;
        assert_eq!(reply, Reply::Simple("OK".into()), "AUTH");
        resp
    }

    /// Sends one command and reads its reply.
    pub async fn command(&mut self, args: &[&str]) -> Reply {
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.stream.get_mut().write_all(request.as_bytes()).await.expect("send");
        self.reply().await
    }

    /// `SET key value`, which must answer `+OK`.
    pub async fn set(&mut self, key: &str, value: &str) {
        assert_eq!(
            self.command(&["SET", key, value]).await,
            Reply::Simple("OK".into()),
            "SET {key}"
        );
    }

    /// `GET key` as text (`None` if the key does not exist).
    pub async fn get(&mut self, key: &str) -> Option<String> {
        match self.command(&["GET", key]).await {
            Reply::Bulk(value) => value.map(|v| String::from_utf8(v).expect("UTF-8 value")),
            other => panic!("GET {key}: {other:?}"),
        }
    }

    async fn reply(&mut self) -> Reply {
        let mut line = String::new();
        self.stream.read_line(&mut line).await.expect("read a reply");
        let line = line.trim_end_matches("\r\n");
        assert!(!line.is_empty(), "redis-server closed the connection");
        let (kind, rest) = line.split_at(1);
        let number = || rest.parse::<i64>().expect("a RESP length");
        match kind {
            "+" => Reply::Simple(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Integer(number()),
            "$" if number() < 0 => Reply::Bulk(None),
            "$" => {
                let mut data = vec![0; number() as usize + 2];
                self.stream.read_exact(&mut data).await.expect("read a bulk string");
                data.truncate(data.len() - 2);
                Reply::Bulk(Some(data))
            }
            "*" if number() < 0 => Reply::Array(None),
            "*" => {
                let mut items = vec![];
                for _ in 0..number() {
                    items.push(Box::pin(self.reply()).await);
                }
                Reply::Array(Some(items))
            }
            _ => panic!("not a RESP reply: {line:?}"),
        }
    }
}

/// A `redis-server` started by [`load_rdb`], killed when dropped.
pub struct LoadedRedis {
    /// Its port on 127.0.0.1 (no password).
    pub port: u16,
    _child: tokio::process::Child,
}

/// Starts a fresh `redis-server` (no password, nothing saved) that loads the RDB file `rdb` at
/// start (`--dir` its directory, `--dbfilename` its name); returns once it has loaded it.
pub async fn load_rdb(rdb: &Path) -> LoadedRedis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = rdb.parent().expect("the RDB file's directory");
    let name = rdb.file_name().expect("the RDB file's name");
    let child = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .arg("--dbfilename")
        .arg(name)
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
            let mut resp = Resp {
                stream: BufReader::new(stream),
            };
            // `-LOADING` while it reads the file.
            if resp.command(&["PING"]).await == Reply::Simple("PONG".into()) {
                return LoadedRedis { port, _child: child };
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not load {} in 10 s",
            rdb.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the tests that need `redis-server` can run: false (they skip) when it is missing,
/// except under CI, which must have it (scripts/install-deps.sh installs it).
pub fn available() -> bool {
    if super::sim::have_redis_server() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "redis-server is missing under CI: scripts/install-deps.sh installs it"
    );
    eprintln!("redis-server not installed: skipping (scripts/install-deps.sh installs it)");
    false
}
