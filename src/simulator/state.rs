//! The simulated cloud: regions, catalogues, instances and backups, and the rules the real API
//! applies to them. Pure: every operation takes the current time in milliseconds, so delays are
//! deterministic in tests. The backup actions and the files of real backups live in `state/backups.rs`.

mod backups;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::cds::catalogue::offers;
use crate::cds::wire::{self, Backup, CreateInstanceRequest, DbConfig, Instance, Region, Tag, Vdc};
pub use backups::{BACKUP_FAILED, BACKUP_FINISHED, BACKUP_RUNNING, BackupFile, CreatedBackup, DownloadRoutes};

/// How long the cloud takes for its asynchronous work.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Delays {
    /// From create to `RUNNING`.
    pub create_ms: i64,
    /// From delete to gone from the listing.
    pub delete_ms: i64,
    /// From `CreateBackup` to a finished backup.
    pub backup_ms: i64,
}

/// One simulated instance, with the state the listing does not show.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimInstance {
    /// What `DescribeDBInstances` returns for it.
    pub listed: Instance,
    /// The `PaasGoodsId` it was created with.
    pub paas_goods_id: i64,
    /// The base pipe it was created in.
    pub base_pipe_id: String,
    /// When it becomes `RUNNING` (ms since the epoch), while creating.
    pub running_at_ms: Option<i64>,
    /// When it disappears, while deleting.
    pub gone_at_ms: Option<i64>,
    /// Until when listings do not show it (visibility lag).
    pub visible_at_ms: i64,
    /// Until when a task (backup) holds it.
    pub busy_until_ms: i64,
    /// The create's task id.
    pub task_id: String,
    /// Its backups.
    pub backups: Vec<Backup>,
}

/// The simulated account(s): everything the API can see or change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cloud {
    /// Regions of `DescribeRegins`.
    pub regions: Vec<Region>,
    /// Catalogue per region.
    pub catalogues: HashMap<String, DbConfig>,
    /// VDCs of `DescribeVdc`, with the free IPs of their private networks.
    #[serde(default)]
    pub vdcs: Vec<Vdc>,
    /// Instances by UUID.
    pub instances: BTreeMap<String, SimInstance>,
    /// Next task id.
    pub next_task: u64,
    /// Next private IP suffix.
    pub next_ip: u32,
    /// Delays of asynchronous work.
    pub delays: Delays,
    /// Highest `Amount` accepted by `CreateDBInstance`.
    pub max_amount: i64,
    /// The account's tags: `TagID` by `TagName`, given out as creates name them.
    #[serde(default)]
    pub tag_ids: BTreeMap<String, i64>,
    /// The files of real backups (`--redis-backend`) by their download token, which is valid
    /// while the backup exists.
    #[serde(default)]
    pub backup_files: BTreeMap<String, BackupFile>,
    /// Backups waiting for their snapshot (`--redis-backend`), by id: they finish only once they
    /// have their file.
    #[serde(default)]
    pub pending_snapshots: BTreeSet<String>,
    /// Files of backups that no longer exist, for the server to remove (never persisted).
    #[serde(skip)]
    pub dropped_files: Vec<String>,
}

/// What a create made.
#[derive(Debug)]
pub struct CreatedInstances {
    /// UUIDs of the new instances.
    pub uuids: Vec<String>,
    /// The task id.
    pub task_id: String,
}

fn format_created(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// What a create the cloud accepts asks for.
struct Order {
    goods: i64,
    ram_mb: i64,
    version: String,
    sub_product: String,
    port: i64,
    amount: i64,
}

impl Cloud {
    /// A cloud with these regions and catalogues and no instances.
    pub fn new(regions: Vec<Region>, catalogues: HashMap<String, DbConfig>, delays: Delays, max_amount: i64) -> Self {
        Self {
            regions,
            catalogues,
            vdcs: vec![],
            instances: BTreeMap::new(),
            next_task: 7_424_648,
            next_ip: 10,
            delays,
            max_amount,
            tag_ids: BTreeMap::new(),
            backup_files: BTreeMap::new(),
            pending_snapshots: BTreeSet::new(),
            dropped_files: vec![],
        }
    }

    /// Moves asynchronous work forward to `now`; returns the UUIDs of instances that vanished
    /// (the files of their backups are dropped with them).
    pub fn advance(&mut self, now: i64) -> Vec<String> {
        let mut gone = vec![];
        for (uuid, inst) in &mut self.instances {
            if inst.running_at_ms.is_some_and(|t| t <= now) {
                inst.running_at_ms = None;
                inst.listed.status = wire::STATUS_RUNNING.into();
                inst.listed.status_str = "运行中".into();
            }
            if inst.gone_at_ms.is_some_and(|t| t <= now) {
                gone.push(uuid.clone());
            }
            for b in &mut inst.backups {
                let snapshot_taken = !self.pending_snapshots.contains(&b.backup_id);
                if b.status == BACKUP_RUNNING && inst.busy_until_ms <= now && snapshot_taken {
                    b.status = BACKUP_FINISHED.into();
                    b.end_time = format_created(now);
                }
            }
        }
        for uuid in &gone {
            if let Some(inst) = self.remove_instance(uuid) {
                self.use_ips(&inst.listed.vdc_id, &inst.base_pipe_id, 1);
            }
        }
        gone
    }

    /// Removes an instance at once, with its backups and their files (its IP is not given back:
    /// [`Cloud::advance`] does that for a deleted instance).
    pub fn remove_instance(&mut self, uuid: &str) -> Option<SimInstance> {
        let inst = self.instances.remove(uuid)?;
        for b in &inst.backups {
            self.pending_snapshots.remove(&b.backup_id);
        }
        self.drop_files(uuid, None);
        Some(inst)
    }

    fn task(&mut self) -> String {
        self.next_task += 1;
        self.next_task.to_string()
    }

    fn region_on_sale(&self, region_id: &str) -> Result<&DbConfig, ApiError> {
        let on_sale = self.regions.iter().any(|r| r.region_id == region_id && r.on_sale());
        match self.catalogues.get(region_id) {
            Some(cfg) if on_sale => Ok(cfg),
            _ => Err(ApiError::bad_request(
                "InvalidParameter",
                format!("Redis is not on sale in region {region_id:?}"),
            )),
        }
    }

    /// `DescribeAvailableDBConfig`.
    pub fn describe_config(&self, region_id: Option<&str>) -> Result<DbConfig, ApiError> {
        let region_id = required(region_id, "RegionId")?;
        self.region_on_sale(region_id).cloned()
    }

    /// `CreateDBInstance`: validates like the cloud, then starts `Amount` instances `CREATING`.
    /// (With the redis-server backend, the caller then points the listed IP and port at it.)
    pub fn create(
        &mut self,
        req: &CreateInstanceRequest,
        now: i64,
        visibility_lag_ms: i64,
    ) -> Result<CreatedInstances, ApiError> {
        let order = self.check_order(req)?;
        self.use_ips(&req.vdc_id, &req.base_pipe_id, -order.amount);
        let task_id = self.task();
        let tags: Vec<Tag> = req
            .tag_name
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| self.tag(n))
            .collect();
        let mut uuids = vec![];
        for _ in 0..order.amount {
            let uuid = uuid::Uuid::new_v4().to_string();
            self.next_ip += 1;
            let ip = format!("10.240.{}.{}", self.next_ip / 250, self.next_ip % 250 + 2);
            let listed = Instance {
                tags: tags.clone(),
                ..self.listed(req, &order, &uuid, ip, now)
            };
            self.instances.insert(
                uuid.clone(),
                SimInstance {
                    listed,
                    paas_goods_id: order.goods,
                    base_pipe_id: req.base_pipe_id.clone(),
                    running_at_ms: Some(now + self.delays.create_ms),
                    gone_at_ms: None,
                    visible_at_ms: now + visibility_lag_ms,
                    busy_until_ms: 0,
                    task_id: task_id.clone(),
                    backups: vec![],
                },
            );
            uuids.push(uuid);
        }
        // A zero delay means "at once": the instance is RUNNING in the create's own answer.
        self.advance(now);
        Ok(CreatedInstances { uuids, task_id })
    }

    /// Checks a create the way the cloud does: required fields, a region on sale, a product it
    /// offers there, an allowed port, an amount in range, a private network of a VDC of that
    /// region with enough free IPs.
    fn check_order(&self, req: &CreateInstanceRequest) -> Result<Order, ApiError> {
        for (name, value) in [
            ("RegionId", &req.region_id),
            ("VdcId", &req.vdc_id),
            ("BasePipeId", &req.base_pipe_id),
            ("InstanceName", &req.instance_name),
            ("Password", &req.password),
        ] {
            required(Some(value.as_str()), name)?;
        }
        let goods = req
            .paas_goods_id
            .ok_or_else(|| ApiError::bad_request("ArgMissing", "PaasGoodsId is missing"))?;
        let cfg = self.region_on_sale(&req.region_id)?;
        let offer = offers(cfg)
            .into_iter()
            .find(|o| o.paas_goods_id == goods)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidParameter",
                    format!("PaasGoodsId {goods} is not offered in region {}", req.region_id),
                )
            })?;
        let sub_product = cfg
            .products
            .iter()
            .flat_map(|p| &p.architectures)
            .find(|a| a.architecture_type == Some(offer.architecture_type))
            .map(|a| a.sub_product_name.clone())
            .unwrap_or_default();
        let port = req.service_port.unwrap_or(i64::from(wire::DEFAULT_SERVICE_PORT));
        if !wire::service_port_allowed(port) {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                format!("ServicePort {port} is not allowed: use 1024-65535 except 9100, 9121, 9122, 16379"),
            ));
        }
        let amount = req.amount.unwrap_or(1);
        if amount < 1 || amount > self.max_amount {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                format!("Amount must be between 1 and {}", self.max_amount),
            ));
        }
        self.check_network(&req.region_id, &req.vdc_id, &req.base_pipe_id, amount)?;
        Ok(Order {
            goods,
            ram_mb: offer.ram_gb * 1024,
            version: offer.version,
            sub_product,
            port,
            amount,
        })
    }

    /// The account's tag named `name`, made on first use.
    fn tag(&mut self, name: &str) -> Tag {
        let next = self.tag_ids.len() as i64 + 1;
        let id = *self.tag_ids.entry(name.to_owned()).or_insert(next);
        Tag {
            tag_id: Some(id),
            tag_name: name.to_owned(),
        }
    }

    /// How a new instance of `order` is listed.
    fn listed(&self, req: &CreateInstanceRequest, order: &Order, uuid: &str, ip: String, now: i64) -> Instance {
        let display_name = self
            .regions
            .iter()
            .find(|r| r.region_id == req.region_id)
            .map(|r| r.site_name.clone())
            .unwrap_or_default();
        Instance {
            instance_uuid: uuid.to_owned(),
            instance_name: req.instance_name.clone(),
            status: wire::STATUS_CREATING.into(),
            status_str: "创建中".into(),
            ip,
            port: Some(order.port),
            ram: Some(order.ram_mb),
            version: order.version.clone(),
            sub_product_name: order.sub_product.clone(),
            region_id: req.region_id.clone(),
            vdc_id: req.vdc_id.clone(),
            vdc_name: self.vdc_name(&req.vdc_id).unwrap_or_default().to_owned(),
            display_name,
            link_type: "default_link".into(),
            link_type_str: "默认链路".into(),
            created_time: format_created(now),
            resource_id: uuid::Uuid::new_v4().to_string(),
            master_info: serde_json::Value::String(String::new()),
            ..Default::default()
        }
    }

    /// `DescribeDBInstances`: `InstanceUuid` matches exactly, `InstanceName`, `IP` and `TagName`
    /// (any of the instance's tags) as substrings (as the doc's IP example suggests), so clients
    /// must check equality.
    pub fn list(&self, params: &BTreeMap<String, String>, now: i64) -> Vec<Instance> {
        let get = |k: &str| params.get(k).filter(|v| !v.is_empty());
        self.instances
            .values()
            .filter(|i| i.visible_at_ms <= now)
            .filter(|i| get("InstanceUuid").is_none_or(|u| &i.listed.instance_uuid == u))
            .filter(|i| get("InstanceName").is_none_or(|n| i.listed.instance_name.contains(n.as_str())))
            .filter(|i| get("IP").is_none_or(|ip| i.listed.ip.contains(ip.as_str())))
            .filter(|i| {
                get("TagName").is_none_or(|t| i.listed.tags.iter().any(|tag| tag.tag_name.contains(t.as_str())))
            })
            .map(|i| i.listed.clone())
            .collect()
    }

    fn instance_mut(&mut self, uuid: Option<&str>) -> Result<&mut SimInstance, ApiError> {
        let uuid = required(uuid, "InstanceUuid")?;
        self.instances
            .get_mut(uuid)
            .ok_or_else(|| ApiError::new(404, "ResourceNotFound", format!("instance {uuid} does not exist")))
    }

    fn busy_check(inst: &SimInstance, now: i64) -> Result<(), ApiError> {
        if inst.running_at_ms.is_some() || inst.gone_at_ms.is_some() || inst.busy_until_ms > now {
            return Err(ApiError::new(
                409,
                "ResourceInUse",
                format!("instance {} is busy with another task", inst.listed.instance_uuid),
            ));
        }
        Ok(())
    }

    /// `DeleteDBInstance`: unknown → `ResourceNotFound`; busy → `ResourceInUse`. With
    /// `show_deleting` false the instance keeps its listed status until it is gone (the cloud
    /// documents no status for an instance being deleted).
    pub fn delete(&mut self, uuid: Option<&str>, now: i64, show_deleting: bool) -> Result<String, ApiError> {
        let delay = self.delays.delete_ms;
        let inst = self.instance_mut(uuid)?;
        Self::busy_check(inst, now)?;
        inst.gone_at_ms = Some(now + delay);
        if show_deleting {
            inst.listed.status = wire::STATUS_DELETING.into();
            inst.listed.status_str = "删除中".into();
        }
        let task = self.task();
        self.advance(now);
        Ok(task)
    }
}

fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request("ArgMissing", format!("{name} is missing")))
}

#[cfg(test)]
mod tests;
