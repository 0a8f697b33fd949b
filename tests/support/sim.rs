//! A simulator in the test process, a client for it, and a tiny RESP client for `redis-server`.

use std::time::Duration;

use cds_redis_operator::cds::{self, CdsClient, ClientConfig, Credentials};
use cds_redis_operator::simulator::{self, RunningSimulator, SimulatorConfig};
use serde_json::Value;

/// The access key every test simulator accepts.
pub const KEY_ID: &str = "AKIDtest0001";
/// Its secret; tests grep captured output for it.
pub const KEY_SECRET: &str = "sk-test-7f1e2d9c-DO-NOT-LEAK";

/// A valid one-instance create request in `CN_Beijing_A` named `name` with `password`.
pub fn create_request(name: &str, password: &str) -> cds_redis_operator::cds::wire::CreateInstanceRequest {
    cds_redis_operator::cds::wire::CreateInstanceRequest {
        region_id: "CN_Beijing_A".into(),
        vdc_id: "vdc-1".into(),
        base_pipe_id: "pipe-1".into(),
        instance_name: name.into(),
        paas_goods_id: Some(12467),
        password: password.into(),
        amount: Some(1),
        ..Default::default()
    }
}

/// A simulator with the test key, admin on, and the given delays.
pub async fn start(create: Duration, delete: Duration) -> RunningSimulator {
    start_with(SimulatorConfig::for_tests(KEY_ID, KEY_SECRET, create, delete)).await
}

/// A simulator with a custom configuration.
pub async fn start_with(config: SimulatorConfig) -> RunningSimulator {
    simulator::start(config).await.expect("start the simulator")
}

/// A client for `sim` with the test key.
pub fn client(sim: &RunningSimulator) -> CdsClient {
    client_with(sim, Credentials::new(KEY_ID, KEY_SECRET), 3)
}

/// A client for `sim` with any key and read attempts.
pub fn client_with(sim: &RunningSimulator, creds: Credentials, read_attempts: u32) -> CdsClient {
    let config = ClientConfig {
        endpoint: sim.endpoint(),
        request_timeout: Duration::from_secs(5),
        read_attempts,
        retry_base: Duration::from_millis(20),
        ..ClientConfig::default()
    };
    CdsClient::new(config, creds, cds::rate_limiter(1000.0, 1000)).expect("client")
}

/// The admin API of a simulator.
pub struct Admin {
    base: String,
    http: reqwest::Client,
}

impl Admin {
    /// The admin API of `sim`.
    pub fn of(sim: &RunningSimulator) -> Self {
        cds_redis_operator::cds::client::install_crypto_provider();
        Self {
            base: sim.endpoint(),
            http: reqwest::Client::new(),
        }
    }

    /// `GET /admin/instances`.
    pub async fn instances(&self) -> Vec<Value> {
        let v = self.get("instances").await;
        v["instances"].as_array().cloned().unwrap_or_default()
    }

    /// Calls of `action` with `outcome` so far.
    pub async fn calls(&self, action: &str, outcome: &str) -> u64 {
        let v = self.calls_json().await;
        v["calls"][action][outcome].as_u64().unwrap_or(0)
    }

    /// All calls of `action`, whatever the outcome.
    pub async fn calls_total(&self, action: &str) -> u64 {
        let v = self.calls_json().await;
        v["calls"][action]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
    }

    /// `GET /admin/calls`.
    pub async fn calls_json(&self) -> Value {
        self.get("calls").await
    }

    /// `GET /admin/{path}` as JSON.
    async fn get(&self, path: &str) -> Value {
        let url = format!("{}/admin/{path}", self.base);
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// `GET /admin/writes`: every create and delete call so far, in arrival order.
    pub async fn writes(&self) -> Vec<Value> {
        let v = self.get("writes").await;
        v["writes"].as_array().cloned().unwrap_or_default()
    }

    /// All calls signed with `access_key_id` so far, whatever the action and outcome.
    pub async fn calls_by_key(&self, access_key_id: &str) -> u64 {
        let v = self.calls_json().await;
        v["byAccessKey"][access_key_id].as_object().map_or(0, |actions| {
            actions
                .values()
                .filter_map(Value::as_object)
                .flat_map(|outcomes| outcomes.values())
                .filter_map(Value::as_u64)
                .sum()
        })
    }

    /// `PUT /admin/faults`.
    pub async fn set_faults(&self, faults: Value) {
        let r = self
            .http
            .put(format!("{}/admin/faults", self.base))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }

    /// `DELETE /admin/instances/{uuid}`.
    pub async fn vanish(&self, uuid: &str) {
        let r = self
            .http
            .delete(format!("{}/admin/instances/{uuid}", self.base))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }

    /// `PATCH /admin/instances/{uuid}`: give an instance a new address.
    pub async fn move_to(&self, uuid: &str, ip: &str, port: u16) {
        let r = self
            .http
            .patch(format!("{}/admin/instances/{uuid}", self.base))
            .json(&serde_json::json!({ "IP": ip, "Port": port }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }

    /// `POST /admin/reset`.
    pub async fn reset(&self) {
        self.http
            .post(format!("{}/admin/reset", self.base))
            .send()
            .await
            .unwrap();
    }
}

/// Sends `AUTH password` then `PING` over RESP; returns the two replies' first lines.
pub async fn redis_auth_ping(host: &str, port: u16, password: &str) -> (String, String) {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .expect("connect to redis");
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let command = |args: &[&str]| {
        let mut s = format!("*{}\r\n", args.len());
        for a in args {
            s.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s
    };
    let mut replies = vec![];
    for args in [&["AUTH", password][..], &["PING"][..]] {
        w.write_all(command(args).as_bytes()).await.unwrap();
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        replies.push(line.trim_end().to_owned());
    }
    (replies[0].clone(), replies[1].clone())
}

/// Whether `redis-server` can be run here (scripts/install-deps.sh installs it).
pub fn have_redis_server() -> bool {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
