//! Condition types and reasons of `RedisInstance` status, and the one function that sets a
//! condition so that `lastTransitionTime` moves only when the condition's status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition type: the instance is usable (cloud `RUNNING`, connection Secret written).
pub const READY: &str = "Ready";
/// Condition type: the last reconcile of `observedGeneration` succeeded.
pub const SYNCED: &str = "Synced";
/// Condition type: the operator is still working towards the spec on its own (present only
/// while True; kstatus reads it as `InProgress`).
pub const RECONCILING: &str = "Reconciling";
/// Condition type: progress needs a person (present only while True; kstatus reads it as
/// `Failed`).
pub const STALLED: &str = "Stalled";

/// Reasons of the `Ready` condition.
pub mod ready {
    /// The cloud reports the instance running and the connection Secret is written.
    pub const AVAILABLE: &str = "Available";
    /// The instance is being created.
    pub const CREATING: &str = "Creating";
    /// The instance is being deleted.
    pub const DELETING: &str = "Deleting";
    /// The instance exists but is not running (or nothing exists yet).
    pub const UNAVAILABLE: &str = "Unavailable";
    /// A known instance vanished from the cloud; the operator does not re-create it.
    pub const EXTERNALLY_DELETED: &str = "ExternallyDeleted";
}

/// Reasons of the `Synced` condition.
pub mod synced {
    /// The last reconcile succeeded.
    pub const RECONCILE_SUCCESS: &str = "ReconcileSuccess";
    /// A referenced Secret does not exist.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// A referenced Secret lacks the key, or its value is empty or invalid.
    pub const SECRET_KEY_MISSING: &str = "SecretKeyMissing";
    /// The spec cannot be acted upon (something admission could not check).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The flavor is not offered in the region.
    pub const FLAVOR_NOT_AVAILABLE: &str = "FlavorNotAvailable";
    /// The cloud refused the request with an error that retrying will not fix.
    pub const CLOUD_REJECTED: &str = "CloudRejected";
    /// The cloud failed or could not be reached; retried with backoff.
    pub const CLOUD_UNAVAILABLE: &str = "CloudUnavailable";
    /// The cloud or the operator's rate limit throttled the request; retried with backoff.
    pub const THROTTLED: &str = "Throttled";
    /// More than one cloud instance carries this object's name; the operator will not guess.
    pub const AMBIGUOUS_INSTANCE: &str = "AmbiguousInstance";
    /// The password Secret changed after the instance was created with another password.
    pub const PASSWORD_OUT_OF_SYNC: &str = "PasswordOutOfSync";
    /// The cloud does not know the instance this object manages any more.
    pub const EXTERNALLY_DELETED: &str = "ExternallyDeleted";
    /// The instance to adopt or observe does not exist.
    pub const INSTANCE_NOT_FOUND: &str = "InstanceNotFound";
    /// Neither the operator nor the object has CDS credentials, or the config's Secret is
    /// missing or lacks a key.
    pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";
    /// `spec.providerConfigRef` names a config that does not exist (or a `ProviderConfig` of
    /// another namespace).
    pub const PROVIDER_CONFIG_NOT_FOUND: &str = "ProviderConfigNotFound";
    /// A Kubernetes API call failed; retried with backoff.
    pub const KUBERNETES_API_ERROR: &str = "KubernetesAPIError";
    /// Another object records the cloud instance (or creates one with the same name).
    pub const INSTANCE_IN_USE: &str = "InstanceInUse";
    /// A Secret to write exists and belongs to someone else.
    pub const SECRET_CONFLICT: &str = "SecretConflict";
    /// Redis is not on sale in the object's region (preflight).
    pub const REGION_NOT_ON_SALE: &str = "RegionNotOnSale";
    /// The object's VDC is not in its region (preflight).
    pub const VDC_NOT_FOUND: &str = "VdcNotFound";
    /// `basePipeId` is not a private network of the VDC (preflight).
    pub const NETWORK_NOT_FOUND: &str = "NetworkNotFound";
    /// The private network has no free IP address (preflight; retried, IPs may be freed).
    pub const NETWORK_FULL: &str = "NetworkFull";
    /// A `RedisBackup`'s recorded backup is gone from the cloud (or never showed up after the
    /// cloud accepted the create).
    pub const BACKUP_NOT_FOUND: &str = "BackupNotFound";
    /// The replica lost the leader lease mid-reconcile (never written: it stops writing).
    pub const NOT_LEADER: &str = "NotLeader";

    /// The reasons only a change of the object, its Secrets or the cloud by a person can clear:
    /// the object is `Stalled`, and nothing is retried on its own. Every other failure reason is
    /// retried with backoff. The one list, used by the error type, the status and the soak.
    pub const TERMINAL: [&str; 16] = [
        SECRET_NOT_FOUND,
        SECRET_KEY_MISSING,
        INVALID_SPEC,
        FLAVOR_NOT_AVAILABLE,
        CLOUD_REJECTED,
        AMBIGUOUS_INSTANCE,
        EXTERNALLY_DELETED,
        INSTANCE_NOT_FOUND,
        CREDENTIALS_MISSING,
        PROVIDER_CONFIG_NOT_FOUND,
        INSTANCE_IN_USE,
        SECRET_CONFLICT,
        REGION_NOT_ON_SALE,
        VDC_NOT_FOUND,
        NETWORK_NOT_FOUND,
        BACKUP_NOT_FOUND,
    ];

    /// Whether `reason` is terminal (see [`TERMINAL`]).
    pub fn is_terminal(reason: &str) -> bool {
        TERMINAL.contains(&reason)
    }
}

/// Reasons of a `RedisBackup`'s conditions beyond the shared ones.
pub mod backup {
    /// `Ready`: the cloud reports the backup finished.
    pub const COMPLETED: &str = "Completed";
    /// `Ready` and `Reconciling`: the backup waits for its `RedisInstance` to run.
    pub const PENDING: &str = "Pending";
    /// `Synced`: the named `RedisInstance` does not exist (yet); the backup waits for it.
    pub const INSTANCE_NOT_FOUND: &str = "InstanceNotFound";
    /// `Synced`: the `RedisInstance` exists but is not running yet; the backup waits for it.
    pub const INSTANCE_NOT_READY: &str = "InstanceNotReady";
}

/// Reasons of the `Reconciling` condition.
pub mod reconciling {
    /// The cloud is creating the instance, or a create's outcome is awaited.
    pub const CREATING: &str = "Creating";
    /// The cloud is deleting the instance.
    pub const DELETING: &str = "Deleting";
    /// A retryable failure is retried with backoff.
    pub const RETRYING: &str = "Retrying";
    /// The instance runs; the connection Secret or the cloud's report is still awaited.
    pub const PROGRESSING: &str = "Progressing";
}

/// Sets condition `new` in `conditions`, keeping the old `lastTransitionTime` unless the status
/// flips. Returns whether anything other than the transition time changed.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
            let changed = old.status != new.status
                || old.reason != new.reason
                || old.message != new.message
                || old.observed_generation != new.observed_generation;
            *old = new;
            changed
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

/// A condition of `type_` with the given status, reason and message, stamped `now`.
pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: now,
    }
}

/// The condition of `type_` in `conditions`, if any.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut cs = vec![];
        assert!(set_condition(
            &mut cs,
            condition(READY, false, ready::CREATING, "", Some(1), t(10))
        ));
        // Same status, new reason: changed, but the transition time stays.
        assert!(set_condition(
            &mut cs,
            condition(READY, false, ready::UNAVAILABLE, "", Some(1), t(20))
        ));
        assert_eq!(cs[0].last_transition_time, t(10));
        // Identical: nothing changed.
        assert!(!set_condition(
            &mut cs,
            condition(READY, false, ready::UNAVAILABLE, "", Some(1), t(30))
        ));
        assert_eq!(cs[0].last_transition_time, t(10));
        // Flip: the transition time moves.
        assert!(set_condition(
            &mut cs,
            condition(READY, true, ready::AVAILABLE, "", Some(1), t(40))
        ));
        assert_eq!(cs[0].last_transition_time, t(40));
        assert_eq!(cs.len(), 1);
    }
}
