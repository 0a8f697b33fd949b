//! Observe: the facts the planner decides on. [`local_facts`] reads only the object, the caches
//! and the controller's memory; [`look`] asks the cloud what the planner asked to see.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::accounts::Account;
use super::claims::Claim;
use super::context::Context;
use super::plan::{Cloud, Facts, Found, Look};
use crate::cds::wire::InstanceSummary;
use crate::crd::{DeletionPolicy, FINALIZER, RedisInstance, RejectedCreate, default_instance_name};
use crate::error::Error;

/// The instance name of `obj`: the one recorded, else the spec's, else the derived default.
pub fn instance_name(obj: &RedisInstance) -> String {
    let status = obj.status.as_ref();
    status
        .and_then(|s| s.instance_name.clone())
        .or_else(|| status.and_then(|s| s.create_attempt.as_ref().map(|a| a.instance_name.clone())))
        .or_else(|| obj.spec.instance_name.clone())
        .unwrap_or_else(|| {
            default_instance_name(
                &obj.namespace().unwrap_or_default(),
                &obj.name_any(),
                &obj.uid().unwrap_or_default(),
            )
        })
}

/// The deletion policy in force: the spec's, else the default recorded when the instance was
/// created or adopted, else the operator's default.
pub fn deletion_policy(obj: &RedisInstance, operator_default: DeletionPolicy) -> DeletionPolicy {
    obj.spec
        .deletion_policy
        .or_else(|| obj.status.as_ref().and_then(|s| s.deletion_policy))
        .unwrap_or(operator_default)
}

/// What a create of `obj` depends on besides the cloud: its generation and its Secrets.
pub fn create_inputs(obj: &RedisInstance, ctx: &Context) -> RejectedCreate {
    RejectedCreate {
        generation: obj.metadata.generation.unwrap_or_default(),
        secret_versions: ctx.input_versions(obj),
    }
}

/// The facts that need no cloud call.
pub fn local_facts(obj: &RedisInstance, ctx: &Context, now: &Time) -> Facts {
    let status = obj.status.clone().unwrap_or_default();
    let age = |t: &Time| now.0.duration_since(t.0).unsigned_abs();
    let config = &ctx.config;
    Facts {
        deleting: obj.metadata.deletion_timestamp.is_some(),
        has_finalizer: obj.finalizers().iter().any(|f| f == FINALIZER),
        management: obj.management_policy(),
        deletion_policy: deletion_policy(obj, config.default_deletion_policy),
        recorded_uuid: status.instance_uuid.clone(),
        spec_uuid: obj.spec.instance_uuid.clone(),
        create_attempt_age: status.create_attempt.as_ref().map(|a| age(&a.started_at)),
        delete_requested_age: status.delete_requested_at.as_ref().map(age),
        create_rejected: status
            .rejected_create
            .as_ref()
            .is_some_and(|r| *r == create_inputs(obj, ctx)),
        name_claimed_by: ctx.claims.holder(&Claim::Name(instance_name(obj)), obj),
        credentials_unheld: ctx.account_unheld(obj),
        listing_stale: false,
        cloud: Cloud::NotAsked,
        // The intent marker is written before the rate limiter's wait, which is bounded by the
        // request timeout: the create may reach the cloud that much later.
        visibility_grace: config.visibility_grace + config.cds.cds_timeout,
        delete_resend_after: config.delete_resend_after,
        delete_busy_age: ctx.delete_busy_age(obj),
        delete_busy_retry: DELETE_BUSY_RETRY,
    }
}

/// How long a delete refused as busy (409), with no delete of ours known, waits before it is
/// sent again: a backup or a change ends within minutes, and a delete of ours sent by a process
/// killed before it recorded the answer finishes on its own.
pub const DELETE_BUSY_RETRY: Duration = Duration::from_secs(15);

/// Answers the planner's `look` into `facts.cloud` (and `facts.listing_stale`).
pub async fn look(
    obj: &RedisInstance,
    ctx: &Context,
    account: &Account,
    facts: &mut Facts,
    look: &Look,
) -> Result<(), Error> {
    match look {
        Look::Listing => {
            let busy = facts.deleting
                || facts.create_attempt_age.is_some()
                || facts.recorded_uuid.is_none()
                || obj.status.as_ref().and_then(|s| s.phase) != Some(crate::crd::Phase::Running);
            let max_age = if busy {
                ctx.config.busy_poll_interval
            } else {
                ctx.config.steady_poll_interval
            };
            let snapshot = account.inventory.snapshot(max_age).await?;
            facts.listing_stale = ctx.listing_stale(obj, snapshot.requested_at);
            facts.cloud = match facts.known_uuid() {
                Some(uuid) => Cloud::ByUuid {
                    found: snapshot.by_uuid(uuid).map(|i| found(obj, ctx, i)),
                    confirmed: false,
                },
                None => Cloud::ByName(
                    snapshot
                        .by_name(&instance_name(obj))
                        .into_iter()
                        .map(|i| found(obj, ctx, i))
                        .collect(),
                ),
            };
        }
        Look::Confirm(uuid) => {
            let answer = account.inventory.query_uuid(uuid).await?;
            // A per-UUID answer is fresher than any of our own writes.
            facts.listing_stale = false;
            facts.cloud = Cloud::ByUuid {
                found: answer.as_ref().map(|i| found(obj, ctx, i)),
                confirmed: true,
            };
        }
    }
    Ok(())
}

fn found(obj: &RedisInstance, ctx: &Context, instance: &InstanceSummary) -> Found {
    Found {
        claimed_by: ctx.claims.holder(&Claim::Uuid(instance.instance_uuid.clone()), obj),
        instance: instance.clone(),
    }
}
