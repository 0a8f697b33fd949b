//! What the simulator remembers of the calls it served: counts by action and outcome (overall
//! and per access key), and a log of every create and delete for the tests' invariants.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::state::Cloud;
use super::{Core, auth};

/// Calls counted by action and outcome (`success`, or the error code).
pub type CallCounts = BTreeMap<String, BTreeMap<String, u64>>;

/// One `CreateDBInstance` or `DeleteDBInstance` call, as the admin write log shows it: who sent
/// it, when, for which instance, what the instance was doing, and how it ended. Tests use it to
/// count writes per instance and per access key (e.g. the soak's delete and lease invariants).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteRecord {
    /// When the call arrived (verified), in milliseconds since the epoch.
    pub at_ms: i64,
    /// The access key that signed it.
    pub access_key_id: String,
    /// The action.
    pub action: String,
    /// `InstanceUuid` of a delete.
    pub instance_uuid: Option<String>,
    /// `InstanceName` of a create; the name of the instance a delete is for, if it exists.
    pub instance_name: Option<String>,
    /// What the instance of a delete was doing when the call was carried out: `creating`,
    /// `running`, `deleting` (an earlier delete was accepted) or `absent`.
    pub instance_state: Option<&'static str>,
    /// `success`, `lost_5xx`, `lost_drop`, or the error code (injected errors included).
    pub outcome: String,
    /// Whether the call reached the cloud's state (false: an injected error answered it first).
    pub executed: bool,
}

impl WriteRecord {
    /// A record of `req` if it is a logged write, with its parameters from the JSON `body`.
    pub(super) fn of(req: &auth::Verified, body: &[u8], at_ms: i64) -> Option<Self> {
        if !matches!(req.action.as_str(), "CreateDBInstance" | "DeleteDBInstance") {
            return None;
        }
        let body: Value = serde_json::from_slice(body).unwrap_or_default();
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            at_ms,
            access_key_id: req.access_key_id.clone(),
            action: req.action.clone(),
            instance_uuid: field("InstanceUuid"),
            instance_name: field("InstanceName"),
            instance_state: None,
            outcome: String::new(),
            executed: false,
        })
    }

    /// Notes that the call is carried out on `cloud`, and what the instance of a delete is doing.
    pub(super) fn carried_out(&mut self, cloud: &Cloud, now: i64) {
        self.executed = true;
        let Some(uuid) = &self.instance_uuid else { return };
        let inst = cloud.instances.get(uuid);
        self.instance_state = Some(match inst {
            None => "absent",
            Some(i) if i.gone_at_ms.is_some() => "deleting",
            Some(i) if i.running_at_ms.is_some_and(|t| t > now) => "creating",
            Some(_) => "running",
        });
        if let Some(i) = inst {
            self.instance_name = Some(i.listed.instance_name.clone());
        }
    }
}

impl Core {
    pub(super) fn count(&mut self, action: &str, outcome: &str) {
        let action = if action.is_empty() { "<none>" } else { action };
        *self
            .calls
            .entry(action.to_owned())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
    }

    /// Counts a verified call by its access key, and logs it if it is a write.
    pub(super) fn count_verified(&mut self, req: &auth::Verified, outcome: &str, write: Option<WriteRecord>) {
        *self
            .calls_by_key
            .entry(req.access_key_id.clone())
            .or_default()
            .entry(req.action.clone())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
        if let Some(mut w) = write {
            w.outcome = outcome.to_owned();
            self.writes.push(w);
        }
    }
}
