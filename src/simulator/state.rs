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
mod tests {
    use super::*;
    use crate::simulator::default_cloud;

    fn cloud() -> Cloud {
        let mut c = default_cloud(
            Delays {
                create_ms: 1000,
                delete_ms: 500,
                backup_ms: 100,
            },
            3,
        );
        c.add_network("vdc", "CN_Beijing_A", "pipe", 100);
        c
    }

    fn req() -> CreateInstanceRequest {
        CreateInstanceRequest {
            region_id: "CN_Beijing_A".into(),
            vdc_id: "vdc".into(),
            base_pipe_id: "pipe".into(),
            instance_name: "r1".into(),
            paas_goods_id: Some(12467),
            password: "pw".into(),
            amount: Some(1),
            ..Default::default()
        }
    }

    #[test]
    fn instance_goes_creating_running_deleting_gone() {
        let mut c = cloud();
        let created = c.create(&req(), 0, 0).unwrap();
        let uuid = &created.uuids[0];
        let all = BTreeMap::new();
        assert_eq!(c.list(&all, 0)[0].status, "CREATING");
        assert_eq!(c.delete(Some(uuid), 10, true).unwrap_err().code, "ResourceInUse");
        c.advance(999);
        assert_eq!(c.list(&all, 999)[0].status, "CREATING");
        c.advance(1000);
        let i = &c.list(&all, 1000)[0];
        assert_eq!(
            (i.status.as_str(), i.ram, i.version.as_str(), i.port),
            ("RUNNING", Some(4096), "2.8", Some(9736))
        );
        c.delete(Some(uuid), 1000, true).unwrap();
        assert_eq!(c.list(&all, 1000)[0].status, "DELETING");
        assert_eq!(c.delete(Some(uuid), 1001, true).unwrap_err().code, "ResourceInUse");
        assert_eq!(c.advance(1500), vec![uuid.clone()]);
        assert!(c.list(&all, 1500).is_empty());
        assert_eq!(c.delete(Some(uuid), 1600, true).unwrap_err().code, "ResourceNotFound");
    }

    #[test]
    fn create_is_validated_like_the_cloud() {
        let mut c = cloud();
        let code = |c: &mut Cloud, r: CreateInstanceRequest| c.create(&r, 0, 0).unwrap_err().code;
        assert_eq!(
            code(
                &mut c,
                CreateInstanceRequest {
                    password: String::new(),
                    ..req()
                }
            ),
            "ArgMissing"
        );
        assert_eq!(
            code(
                &mut c,
                CreateInstanceRequest {
                    paas_goods_id: None,
                    ..req()
                }
            ),
            "ArgMissing"
        );
        assert_eq!(
            code(
                &mut c,
                CreateInstanceRequest {
                    paas_goods_id: Some(1),
                    ..req()
                }
            ),
            "InvalidParameter"
        );
        assert_eq!(
            code(
                &mut c,
                CreateInstanceRequest {
                    region_id: "US_NewYork_A".into(),
                    ..req()
                }
            ),
            "InvalidParameter"
        );
        assert_eq!(
            code(
                &mut c,
                CreateInstanceRequest {
                    region_id: "Mars_A".into(),
                    ..req()
                }
            ),
            "InvalidParameter"
        );
        for port in [80, 9100, 9121, 9122, 16379, 70000] {
            assert_eq!(
                code(
                    &mut c,
                    CreateInstanceRequest {
                        service_port: Some(port),
                        ..req()
                    }
                ),
                "InvalidParameter",
                "{port}"
            );
        }
        assert_eq!(
            code(
                &mut c,
                CreateInstanceRequest {
                    amount: Some(0),
                    ..req()
                }
            ),
            "InvalidParameter"
        );
        assert_eq!(
            code(
                &mut c,
                CreateInstanceRequest {
                    amount: Some(4),
                    ..req()
                }
            ),
            "InvalidParameter"
        );
        assert!(c.instances.is_empty());
        assert_eq!(
            c.create(
                &CreateInstanceRequest {
                    amount: Some(3),
                    ..req()
                },
                0,
                0
            )
            .unwrap()
            .uuids
            .len(),
            3
        );
    }

    #[test]
    fn name_filter_is_loose_and_visibility_lags() {
        let mut c = cloud();
        c.create(
            &CreateInstanceRequest {
                instance_name: "cache".into(),
                ..req()
            },
            0,
            0,
        )
        .unwrap();
        c.create(
            &CreateInstanceRequest {
                instance_name: "cache-2".into(),
                ..req()
            },
            0,
            5000,
        )
        .unwrap();
        let by_name = BTreeMap::from([("InstanceName".to_owned(), "cache".to_owned())]);
        assert_eq!(c.list(&by_name, 0).len(), 1);
        assert_eq!(c.list(&by_name, 5000).len(), 2);
    }

    #[test]
    fn backups_hold_the_instance() {
        let mut c = cloud();
        let uuid = c.create(&req(), 0, 0).unwrap().uuids[0].clone();
        c.advance(1000);
        c.create_backup(Some(&uuid), "nightly", 1000, false).unwrap();
        assert_eq!(c.delete(Some(&uuid), 1050, true).unwrap_err().code, "ResourceInUse");
        c.advance(1100);
        let b = c.backups(Some(&uuid)).unwrap();
        assert_eq!((b.len(), b[0].status.as_str()), (1, "finished"));
        let d = c.download_backup(Some(&uuid), Some(&b[0].backup_id), None).unwrap();
        assert!(!d.backup_download_url.is_empty());
        c.delete_backup(Some(&uuid), Some(&b[0].backup_id), 1100).unwrap();
        assert_eq!(
            c.delete_backup(Some(&uuid), Some(&b[0].backup_id), 1100)
                .unwrap_err()
                .code,
            "ResourceNotFound"
        );
    }

    fn running_instance(c: &mut Cloud) -> String {
        let uuid = c.create(&req(), 0, 0).unwrap().uuids[0].clone();
        c.advance(1000);
        uuid
    }

    fn file_of(uuid: &str, backup_id: &str) -> BackupFile {
        BackupFile {
            instance_uuid: uuid.into(),
            backup_id: backup_id.into(),
            file_name: format!("{backup_id}.rdb"),
        }
    }

    #[test]
    fn a_real_backup_finishes_only_with_its_file_and_reports_its_size() {
        let mut c = cloud();
        let uuid = running_instance(&mut c);
        let created = c.create_backup(Some(&uuid), "snap ✓", 1000, true).unwrap();
        c.advance(5000);
        let b = &c.backups(Some(&uuid)).unwrap()[0];
        assert_eq!((b.status.as_str(), b.backup_size), (BACKUP_RUNNING, None));
        let routes = Some(DownloadRoutes {
            authority: "127.0.0.1:1",
        });
        let d = c
            .download_backup(Some(&uuid), Some(&created.backup_id), routes)
            .unwrap();
        assert!(d.backup_download_url.is_empty(), "no file, no URL");
        assert!(c.attach_snapshot(file_of(&uuid, &created.backup_id), 4242, "tok".into()));
        c.advance(5001);
        let b = &c.backups(Some(&uuid)).unwrap()[0];
        assert_eq!(
            (b.status.as_str(), b.backup_size, b.desc.as_str()),
            (BACKUP_FINISHED, Some(4242), "snap ✓")
        );
        let d = c
            .download_backup(Some(&uuid), Some(&created.backup_id), routes)
            .unwrap();
        assert_eq!(d.backup_download_url, "http://127.0.0.1:1/download/tok");
        assert_eq!(
            d.backup_intranet_download_url,
            "http://127.0.0.1:1/download/intranet/tok"
        );
        assert_eq!(
            c.backup_file("tok").map(|f| f.backup_id.as_str()),
            Some(created.backup_id.as_str())
        );
        c.delete_backup(Some(&uuid), Some(&created.backup_id), 5001).unwrap();
        assert!(c.backup_file("tok").is_none());
        assert_eq!(c.take_dropped_files(), vec![format!("{}.rdb", created.backup_id)]);
        assert!(c.take_dropped_files().is_empty(), "handed out once");
    }

    #[test]
    fn a_snapshot_too_late_for_its_backup_is_refused_and_a_failed_one_is_listed() {
        let mut c = cloud();
        let uuid = running_instance(&mut c);
        let gone = c.create_backup(Some(&uuid), "", 1000, true).unwrap().backup_id;
        c.advance(1100);
        c.delete_backup(Some(&uuid), Some(&gone), 1100).unwrap();
        assert!(!c.attach_snapshot(file_of(&uuid, &gone), 1, "t1".into()));
        assert!(c.backup_files.is_empty());
        let failed = c.create_backup(Some(&uuid), "", 1100, true).unwrap().backup_id;
        c.fail_snapshot(&uuid, &failed);
        c.advance(2000);
        assert_eq!(c.backups(Some(&uuid)).unwrap()[0].status, BACKUP_FAILED);
        let lost = c.create_backup(Some(&uuid), "", 2000, true).unwrap().backup_id;
        c.fail_pending_snapshots();
        let listed = c.backups(Some(&uuid)).unwrap();
        assert_eq!(
            listed.iter().find(|b| b.backup_id == lost).unwrap().status,
            BACKUP_FAILED
        );
        assert!(c.pending_snapshots.is_empty());
    }

    #[test]
    fn backup_files_go_with_their_instance_and_on_reset_and_tokens_persist() {
        let mut c = cloud();
        let pristine = c.clone();
        let a = running_instance(&mut c);
        let b = running_instance(&mut c);
        for (uuid, token) in [(&a, "ta"), (&b, "tb")] {
            let id = c.create_backup(Some(uuid), "", 1000, true).unwrap().backup_id;
            assert!(c.attach_snapshot(file_of(uuid, &id), 10, token.into()));
        }
        let text = serde_json::to_string(&c).unwrap();
        let mut restored: Cloud = serde_json::from_str(&text).unwrap();
        assert_eq!(restored.backup_file("tb"), c.backup_file("tb"));
        c.advance(1100);
        c.delete(Some(&a), 1100, true).unwrap();
        c.advance(2000);
        assert!(c.backup_file("ta").is_none() && c.backup_file("tb").is_some());
        assert_eq!(c.take_dropped_files().len(), 1);
        restored.reset_to(&pristine);
        assert_eq!(restored.take_dropped_files().len(), 2);
        assert!(restored.instances.is_empty() && restored.backup_files.is_empty());
    }

    #[test]
    fn tags_given_at_create_are_listed_with_one_id_per_name_and_filter_as_substrings() {
        let mut c = cloud();
        let tagged = |name: &str, tag: Option<&str>| CreateInstanceRequest {
            instance_name: name.into(),
            tag_name: tag.map(str::to_owned),
            ..req()
        };
        c.create(&tagged("a", Some("team-shop")), 0, 0).unwrap();
        c.create(&tagged("b", Some("team-shop")), 0, 0).unwrap();
        c.create(&tagged("c", Some("team")), 0, 0).unwrap();
        c.create(&tagged("d", None), 0, 0).unwrap();
        let all = c.list(&BTreeMap::new(), 0);
        let tags: Vec<_> = all.iter().map(|i| (i.instance_name.as_str(), i.tags.clone())).collect();
        let tag = |id, name: &str| Tag {
            tag_id: Some(id),
            tag_name: name.into(),
        };
        let named = |n: &str| tags.iter().find(|(name, _)| *name == n).unwrap().1.clone();
        assert_eq!(named("a"), vec![tag(1, "team-shop")]);
        assert_eq!(named("b"), vec![tag(1, "team-shop")]);
        assert_eq!(named("c"), vec![tag(2, "team")]);
        assert!(named("d").is_empty());
        let by_tag = BTreeMap::from([("TagName".to_owned(), "team".to_owned())]);
        assert_eq!(c.list(&by_tag, 0).len(), 3, "a substring, like the other name filters");
        assert!(all.iter().filter(|i| i.has_tag("team")).all(|i| i.instance_name == "c"));
    }
}
