//! The cluster check of `cds import`: which cloud instances a `RedisInstance` already records,
//! in any namespace (contract, Ownership rule 1: one instance, one object).

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Client, Config, ResourceExt as _};

use crate::cds::wire::Instance;
use crate::crd::RedisInstance;

/// Objects listed per page.
const PAGE: u32 = 500;

/// The instances recorded in the cluster: `namespace/name` of the objects, by instance UUID.
pub type Records = BTreeMap<String, Vec<String>>;

/// What the cluster said.
#[derive(Debug)]
pub enum Check {
    /// The cluster answered: what its objects record.
    Done(Records),
    /// No cluster could be asked: why.
    Skipped(String),
}

/// An instance already recorded by objects of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The instance's UUID.
    pub uuid: String,
    /// The instance's name.
    pub name: String,
    /// The objects, `namespace/name`.
    pub by: Vec<String>,
}

impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "instance {} ({:?}) is already recorded by RedisInstance {}",
            self.uuid,
            self.name,
            self.by.join(", ")
        )
    }
}

/// Asks the cluster of `KUBECONFIG`, `~/.kube/config` or the in-cluster service account for
/// every `RedisInstance`. No configuration, or a cluster that cannot be reached: `Skipped`. A
/// cluster without the CRD records nothing. Any other answer (e.g. 403) is an error.
pub async fn check() -> Result<Check, kube::Error> {
    let mut config = match Config::infer().await {
        Ok(config) => config,
        Err(e) => return Ok(Check::Skipped(format!("no Kubernetes cluster is configured ({e})"))),
    };
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(30));
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config)?;
    match list(client).await {
        Ok(objects) => Ok(Check::Done(records(&objects))),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Check::Done(Records::new())),
        Err(e @ kube::Error::Api(_)) => Err(e),
        Err(e) => Ok(Check::Skipped(format!(
            "the Kubernetes cluster at {server} cannot be reached ({e})"
        ))),
    }
}

/// Every `RedisInstance` of the cluster, page by page, read schema-free (an object an older or
/// newer operator wrote still counts).
async fn list(client: Client) -> Result<Vec<DynamicObject>, kube::Error> {
    let api: Api<DynamicObject> = Api::all_with(client, &ApiResource::erase::<RedisInstance>(&()));
    let mut params = ListParams::default().limit(PAGE);
    let mut objects = vec![];
    loop {
        let page = api.list(&params).await?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        objects.extend(page.items);
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(objects),
        }
    }
}

/// What `objects` record: `status.instanceUuid` and `spec.instanceUuid`, by UUID.
pub fn records(objects: &[DynamicObject]) -> Records {
    let mut out = Records::new();
    for obj in objects {
        let by = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
        let uuids = [&obj.data["status"]["instanceUuid"], &obj.data["spec"]["instanceUuid"]];
        let mut uuids: Vec<&str> = uuids
            .iter()
            .filter_map(|u| u.as_str())
            .filter(|u| !u.is_empty())
            .collect();
        uuids.dedup();
        for uuid in uuids {
            out.entry(uuid.to_owned()).or_default().push(by.clone());
        }
    }
    out
}

/// The instances of `selected` that `records` show recorded already.
pub fn recorded(selected: &[Instance], records: &Records) -> Vec<Recorded> {
    selected
        .iter()
        .filter_map(|i| {
            records.get(&i.instance_uuid).map(|by| Recorded {
                uuid: i.instance_uuid.clone(),
                name: i.instance_name.clone(),
                by: by.clone(),
            })
        })
        .collect()
}
