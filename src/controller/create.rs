//! The create protocol's act part (contract, Behaviour 1): resolve the offer, check the order
//! against what the cloud says (preflight), read and record the password, write the intent
//! marker (conditionally), then call `CreateDBInstance` once.

use super::act::{Act, Progress};
use super::claims::Claim;
use super::events::EventType;
use super::observe;
use super::status::{self, Outcome};
use crate::cds::catalogue;
use crate::cds::preflight::{Order, Verdict};
use crate::cds::wire::CreateInstanceRequest;
use crate::crd::{CreateAttempt, Phase};
use crate::error::Error;
use crate::failpoint;

impl Act<'_, '_> {
    /// Creates the object's instance.
    pub(super) async fn create(&mut self) -> Result<Progress, Error> {
        let (obj, ctx) = (self.obj, self.ctx);
        let goods = self.resolve_goods().await?;
        let order = Order {
            region_id: &obj.spec.region_id,
            vdc_id: &obj.spec.vdc_id,
            base_pipe_id: &obj.spec.base_pipe_id,
            paas_goods_id: goods,
            amount: 1,
        };
        self.preflight(&order).await?;
        let password = ctx.secrets.password(obj).await?;
        let instance_name = observe::instance_name(obj);
        ctx.claims
            .reserve(Claim::Name(instance_name.clone()), obj)
            .map_err(|by| Error::InstanceInUse {
                instance: "the instance name".into(),
                by,
            })?;
        ctx.fence()?;
        ctx.secrets.write_record(obj, &password).await?;
        self.write_intent(&instance_name, goods).await?;
        failpoint::hit("after-intent");
        ctx.event(
            obj,
            EventType::Normal,
            "Creating",
            format!("creating instance {instance_name} (PaasGoodsId {goods})"),
        )
        .await;
        let spec = &obj.spec;
        let request = CreateInstanceRequest {
            region_id: spec.region_id.clone(),
            vdc_id: spec.vdc_id.clone(),
            base_pipe_id: spec.base_pipe_id.clone(),
            instance_name,
            paas_goods_id: Some(goods),
            password,
            test_group_id: spec.test_group_id,
            amount: Some(1),
            service_port: spec.service_port.map(i64::from),
            subject_id: spec.subject_id,
            // Not a documented create field: never sent to the cloud.
            tag_name: None,
        };
        self.send_create(&request).await
    }

    /// The `PaasGoodsId` of the spec: given, or resolved from the region's catalogue.
    async fn resolve_goods(&self) -> Result<i64, Error> {
        let spec = &self.obj.spec;
        match (spec.paas_goods_id, &spec.flavor) {
            (Some(id), _) => Ok(id),
            (None, Some(flavor)) => {
                let account = self.account();
                let cfg = account.catalogue.config(&account.client, &spec.region_id).await?;
                Ok(catalogue::resolve(&cfg, &spec.region_id, &flavor.into())?)
            }
            (None, None) => Err(Error::InvalidSpec("set either paasGoodsId or flavor".into())),
        }
    }

    /// Fails with the finding if the cloud would refuse the order; says which checks could
    /// not be made (an Event), and lets the create go on without them.
    async fn preflight(&self, order: &Order<'_>) -> Result<(), Error> {
        let (obj, ctx) = (self.obj, self.ctx);
        let account = self.account();
        match account
            .preflight
            .check(&account.client, &account.catalogue, order)
            .await
        {
            Verdict::Fail(finding) => Err(finding.into()),
            Verdict::Pass(skipped) if skipped.is_empty() => Ok(()),
            Verdict::Pass(skipped) => {
                let what: Vec<String> = skipped.iter().map(|s| format!("{} ({})", s.action, s.why)).collect();
                let note = format!(
                    "preflight checks skipped, their lookups failed: {}; creating anyway, the cloud checks the order itself",
                    what.join(", ")
                );
                ctx.event(obj, EventType::Warning, "PreflightSkipped", note).await;
                Ok(())
            }
        }
    }

    /// Writes the intent marker, conditionally. Built on a copy: if the write fails, nothing of
    /// it is reported (a `createAttempt` exists only if a create may really have been sent).
    async fn write_intent(&mut self, instance_name: &str, goods: i64) -> Result<(), Error> {
        let (obj, ctx) = (self.obj, self.ctx);
        let mut intent = self.status.clone();
        intent.instance_name = Some(instance_name.to_owned());
        intent.paas_goods_id = Some(goods);
        intent.rejected_create = None;
        intent.deletion_policy = obj
            .spec
            .deletion_policy
            .is_none()
            .then_some(ctx.config.default_deletion_policy);
        intent.create_attempt = Some(CreateAttempt {
            instance_name: instance_name.to_owned(),
            started_at: self.now.clone(),
        });
        intent.phase = Some(Phase::Creating);
        status::conclude(
            &mut intent,
            false,
            status::Outcome::Waiting,
            obj.metadata.generation,
            &self.now,
        );
        self.writes.status(&intent).await?;
        self.status = intent;
        Ok(())
    }

    /// Calls `CreateDBInstance` once and records what its answer proves.
    async fn send_create(&mut self, request: &CreateInstanceRequest) -> Result<Progress, Error> {
        let (obj, ctx) = (self.obj, self.ctx);
        let name = &request.instance_name;
        ctx.fence()?;
        let sent = self.account().client.create_instance(request).await;
        if sent.is_ok() || sent.as_ref().is_err_and(|e| e.outcome_unknown()) {
            // What the listing of the network said no longer holds: one IP (maybe) less.
            self.account().preflight.placed(&Order::from(request)).await;
        }
        match sent {
            Ok(created) => {
                ctx.wrote_cloud(obj);
                failpoint::hit("after-create");
                let task = created
                    .task_id
                    .as_ref()
                    .map(|t| format!(" (task {t})"))
                    .unwrap_or_default();
                let note = format!("created instance {} named {name}{task}", created.instance_uuid);
                ctx.event(obj, EventType::Normal, "Created", note).await;
                self.status.instance_uuid = Some(created.instance_uuid);
                self.status.task_id = created.task_id;
                Ok(Progress::Report {
                    outcome: Outcome::Done {
                        connection_ok: false,
                        password_out_of_sync: false,
                    },
                    after: self.busy(),
                })
            }
            Err(e) if e.outcome_unknown() => {
                ctx.wrote_cloud(obj);
                // Keep the intent: the name lookup resolves what happened.
                let note =
                    format!("the create of {name} may have succeeded ({e}); looking the name up before any retry");
                ctx.event(obj, EventType::Warning, "CreateOutcomeUnknown", note).await;
                Err(e.into())
            }
            Err(e) => {
                // Definitely not created: the intent goes, and a rejection for good is not
                // repeated until the object or its Secrets change.
                self.status.create_attempt = None;
                if e.is_terminal() {
                    self.status.rejected_create = Some(observe::create_inputs(obj, ctx));
                }
                Err(e.into())
            }
        }
    }
}
