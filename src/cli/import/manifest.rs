//! The YAML `cds import` prints: per instance, a password Secret stub (with a comment saying to
//! fill it in) and the `RedisInstance` that adopts the instance, as one multi-document stream.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;

use super::resolve::Placement;
use crate::cds::wire::Instance;
use crate::crd::{DeletionPolicy, ManagementPolicy, RedisInstance, RedisInstanceSpec, SecretKeyRef};

/// What the Secret stub holds until the user puts the real password there.
pub const PASSWORD_PLACEHOLDER: &str = "REPLACE-WITH-THE-INSTANCE-PASSWORD";
/// The key of the password in the Secret stub (the `passwordSecretRef` default).
pub const PASSWORD_KEY: &str = "password";

/// One instance to import, named and placed.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    /// The cloud instance.
    pub instance: &'a Instance,
    /// The object name ([`super::names::unique_names`]).
    pub name: String,
    /// Its product and network.
    pub placement: Placement,
}

/// What applies to every object of one import.
#[derive(Clone, Debug)]
pub struct Policies {
    /// The namespace of every object.
    pub namespace: String,
    /// `spec.managementPolicy`.
    pub management: ManagementPolicy,
    /// `spec.deletionPolicy`.
    pub deletion: DeletionPolicy,
}

/// The name of the password Secret stub of object `name`.
pub fn secret_name(name: &str) -> String {
    format!("{name}-password")
}

/// The `RedisInstance` that adopts `entry`'s instance.
pub fn redis_instance(entry: &Entry<'_>, policies: &Policies) -> RedisInstance {
    let i = entry.instance;
    let spec = RedisInstanceSpec {
        region_id: i.region_id.clone(),
        vdc_id: i.vdc_id.clone(),
        base_pipe_id: entry.placement.base_pipe_id.clone(),
        paas_goods_id: Some(entry.placement.paas_goods_id),
        password_secret_ref: SecretKeyRef {
            name: secret_name(&entry.name),
            key: PASSWORD_KEY.to_owned(),
        },
        deletion_policy: Some(policies.deletion),
        instance_uuid: Some(i.instance_uuid.clone()),
        management_policy: Some(policies.management),
        ..RedisInstanceSpec::default()
    };
    let mut obj = RedisInstance::new(&entry.name, spec);
    obj.metadata.namespace = Some(policies.namespace.clone());
    obj
}

/// The password Secret stub of `entry`, holding [`PASSWORD_PLACEHOLDER`].
pub fn password_secret(entry: &Entry<'_>, policies: &Policies) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&entry.name)),
            namespace: Some(policies.namespace.clone()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        string_data: Some(BTreeMap::from([(
            PASSWORD_KEY.to_owned(),
            PASSWORD_PLACEHOLDER.to_owned(),
        )])),
        ..Secret::default()
    }
}

/// The comment above `entry`'s Secret stub.
fn secret_comment(entry: &Entry<'_>) -> String {
    let i = entry.instance;
    format!(
        "# FILL IN BEFORE APPLYING: put the real Redis password of instance {} ({:?})\n\
         # in stringData.password below. The cloud API cannot tell a password, so the operator\n\
         # takes this one as the instance's (e.g. for a connection Secret).\n",
        i.instance_uuid, i.instance_name
    )
}

/// The whole stream: a header comment, then per entry `---`, the Secret stub with its comment,
/// `---` and the `RedisInstance`.
pub fn documents(entries: &[Entry<'_>], policies: &Policies) -> String {
    let mut out = format!(
        "# {} existing CDS Redis instance(s) for namespace {}, from `cds-redis-operator cds import`.\n\
         # Fill in each password Secret, then: kubectl apply -f <this file>\n",
        entries.len(),
        policies.namespace
    );
    for entry in entries {
        out.push_str("---\n");
        out.push_str(&secret_comment(entry));
        out.push_str(&yaml(&password_secret(entry, policies)));
        out.push_str("---\n");
        out.push_str(&yaml(&redis_instance(entry, policies)));
    }
    out
}

fn yaml<T: serde::Serialize>(value: &T) -> String {
    serde_norway::to_string(value).expect("Kubernetes objects serialise to YAML")
}
