//! The only two writes to an object of ours (a `RedisInstance`, a `RedisBackup`): its status and
//! its finalizers; and the in-use finalizer the operator puts on configs and their Secrets. Both are conditional
//! on the `resourceVersion` of the object as read (or as our previous write in the same
//! reconcile left it), so a write derived from a stale read fails with a conflict instead of
//! undoing someone else's change (contract, Ownership rule 3), and both are fenced by the
//! leader lease.
//!
//! kube-runtime's `finalizer()` helper is not used: it decides the finalizer on its own, before
//! our planner sees the object, and it writes the finalizer with a JSON patch test on the list
//! index, while here the planner decides (a `Retain` deletion, a never-created instance) and
//! every object write carries the `resourceVersion` precondition.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::context::Context;
use crate::crd::account::IN_USE_FINALIZER;
use crate::crd::{FIELD_MANAGER, FINALIZER, RedisInstance, RedisInstanceStatus};
use crate::error::Error;

/// Writes to one object during one reconcile.
pub struct ObjectWrites<'a> {
    ctx: &'a Context,
    obj: &'a RedisInstance,
    api: Api<RedisInstance>,
    resource_version: Option<String>,
}

impl<'a> ObjectWrites<'a> {
    /// Writes to `obj`, conditional on the version it was read at.
    pub fn new(ctx: &'a Context, obj: &'a RedisInstance) -> Self {
        Self {
            ctx,
            obj,
            api: Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default()),
            resource_version: obj.resource_version(),
        }
    }

    /// Writes the whole status (server-side apply by our field manager, so fields we no longer
    /// set are removed); returns it as the server stored it.
    pub async fn status(&mut self, status: &RedisInstanceStatus) -> Result<(), Error> {
        let written = write_status(self.ctx, &self.api, self.obj, &mut self.resource_version, status).await?;
        self.ctx.wrote_status(self.obj, written.status);
        Ok(())
    }

    /// Adds (`true`) or removes (`false`) the cleanup finalizer, keeping every other one.
    pub async fn finalizer(&mut self, present: bool) -> Result<(), Error> {
        write_finalizer(self.ctx, &self.api, self.obj, &mut self.resource_version, present).await?;
        Ok(())
    }
}

/// A kind whose objects the operator writes with [`write_status`] and [`write_finalizer`].
pub trait Written: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug {}

impl<K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug> Written for K {}

/// Writes `obj`'s whole status by server-side apply, conditional on `resource_version` (the
/// version read, or the one our previous write left, which it then becomes); fenced.
pub async fn write_status<K: Written>(
    ctx: &Context,
    api: &Api<K>,
    obj: &K,
    resource_version: &mut Option<String>,
    status: &impl Serialize,
) -> Result<K, Error> {
    ctx.fence()?;
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        // A resourceVersion in an apply patch is a precondition: another writer first → 409.
        "metadata": { "resourceVersion": resource_version },
        "status": status,
    });
    let written = api
        .patch_status(
            &obj.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    *resource_version = written.resource_version();
    Ok(written)
}

/// Adds (`true`) or removes (`false`) the cleanup finalizer of `obj`, keeping every other one,
/// conditional on `resource_version` (which it then advances); fenced.
pub async fn write_finalizer<K: Written>(
    ctx: &Context,
    api: &Api<K>,
    obj: &K,
    resource_version: &mut Option<String>,
    present: bool,
) -> Result<K, Error> {
    ctx.fence()?;
    let mut finalizers: Vec<String> = obj.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    if present {
        finalizers.push(FINALIZER.to_owned());
    }
    // The resourceVersion makes the merge patch conditional: no lost update of other finalizers.
    let patch = json!({ "metadata": { "resourceVersion": resource_version, "finalizers": finalizers } });
    let written = api
        .patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    *resource_version = written.resource_version();
    Ok(written)
}

/// Adds (`held`) or removes the in-use finalizer of `name` (a config, or a credentials Secret),
/// keeping every other one: a fresh metadata read, then a merge patch conditional on its
/// `resourceVersion`. Nothing if it does not exist, or if it is being deleted and the finalizer
/// would be added (the apiserver refuses new finalizers then).
pub async fn set_in_use<K>(api: &Api<K>, name: &str, held: bool) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(meta) = api.get_metadata_opt(name).await? else {
        return Ok(());
    };
    let mut finalizers: Vec<String> = meta.finalizers().to_vec();
    let has = finalizers.iter().any(|f| f == IN_USE_FINALIZER);
    if held && meta.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    match (held, has) {
        (true, false) => finalizers.push(IN_USE_FINALIZER.to_owned()),
        (false, true) => finalizers.retain(|f| f != IN_USE_FINALIZER),
        _ => return Ok(()),
    }
    let patch = json!({ "metadata": { "resourceVersion": meta.resource_version(), "finalizers": finalizers } });
    api.patch_metadata(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}
