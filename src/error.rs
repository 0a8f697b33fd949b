//! The operator's one error type: where a failure came from, which `Synced` reason it shows, and
//! whether retrying can help. The error policy and the conditions both ask the error, so they
//! never disagree.

use crate::cds::CdsError;
use crate::cds::catalogue::FlavorNotAvailable;
use crate::cds::preflight::Finding;
use crate::crd::conditions::synced;

/// Everything a reconcile can fail with. Messages never hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A referenced Secret does not exist.
    #[error("Secret {namespace}/{name} not found")]
    SecretNotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A referenced Secret lacks a key, or its value is empty or not UTF-8.
    #[error("Secret {namespace}/{name}: {problem}")]
    SecretKeyMissing {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What is wrong, e.g. `key "password" is missing`.
        problem: String,
    },
    /// The spec cannot be acted upon.
    #[error("{0}")]
    InvalidSpec(String),
    /// The flavor is not in the region's catalogue.
    #[error(transparent)]
    FlavorNotAvailable(#[from] FlavorNotAvailable),
    /// The preflight found that the cloud would refuse the order: nothing was sent.
    #[error("{0}; no order was placed")]
    Preflight(#[from] Finding),
    /// More than one cloud instance carries the object's instance name.
    #[error(
        "{count} cloud instances are named {name:?}; resolve by hand (set spec.instanceUuid or delete the extra ones)"
    )]
    AmbiguousInstance {
        /// The name.
        name: String,
        /// How many carry it.
        count: usize,
    },
    /// The instance to observe or adopt does not exist in the cloud (or is being deleted).
    #[error("cloud instance {0} does not exist (or the cloud is deleting it)")]
    InstanceNotFound(String),
    /// A recorded instance vanished from the cloud; it is not re-created silently.
    #[error("cloud instance {0} no longer exists and is not re-created; delete this object to release it")]
    ExternallyDeleted(String),
    /// Another object records the instance (or is creating one with the same name).
    #[error("{instance} belongs to RedisInstance {by}; one cloud instance is managed by one object")]
    InstanceInUse {
        /// What is in use: `instance UUID`, or `the instance name`.
        instance: String,
        /// The other object, `namespace/name`.
        by: String,
    },
    /// A Secret the operator was asked to write exists and is not its own.
    #[error(
        "Secret {namespace}/{name} exists and is not owned by this RedisInstance; the operator never writes into a Secret it did not create (choose another name, or delete that Secret)"
    )]
    SecretConflict {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// This replica cannot prove it still holds the leader lease: it must not act.
    #[error("this replica no longer holds the leader lease")]
    NotLeader,
    /// A CDS call failed.
    #[error(transparent)]
    Cds(CdsError),
    /// A `RedisBackup`'s backup is gone from the cloud (or never showed up after an accepted
    /// create); it is not made again.
    #[error(
        "backup {0} is not listed by the cloud any more; it is not made again: delete this object (and make a new RedisBackup)"
    )]
    BackupNotFound(String),
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// Another writer changed the object first (optimistic concurrency); reconcile again.
    #[error("the object changed while it was reconciled; retrying")]
    Conflict,
    /// The operator has no usable credentials for the object.
    #[error("{0}")]
    Credentials(String),
    /// The config the object names does not exist (the message says what does).
    #[error("{0}")]
    ProviderConfigNotFound(String),
    /// The object's account already has its share of the workers; tried again shortly, nothing
    /// written (never shown in status).
    #[error("the account already has its share of the workers")]
    AccountBusy,
}

impl From<CdsError> for Error {
    fn from(e: CdsError) -> Self {
        match e.kind {
            // The client refused to send it: the lease was lost while the call waited its turn.
            crate::cds::ErrorKind::Fenced => Self::NotLeader,
            _ => Self::Cds(e),
        }
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        match &e {
            kube::Error::Api(s) if s.code == 409 => Self::Conflict,
            _ => Self::Kube(e),
        }
    }
}

impl Error {
    /// Whether retrying with backoff can help; otherwise the object waits for a change of
    /// itself or its Secrets.
    pub fn is_retryable(&self) -> bool {
        !self.is_terminal()
    }

    /// Whether only a change of the object or its Secrets (or a person) can fix it: decided by
    /// the reason, through the one list of terminal reasons ([`synced::is_terminal`]).
    pub fn is_terminal(&self) -> bool {
        synced::is_terminal(self.reason())
    }

    /// The `Synced` condition reason this error shows.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SecretNotFound { .. } => synced::SECRET_NOT_FOUND,
            Self::SecretKeyMissing { .. } => synced::SECRET_KEY_MISSING,
            Self::InvalidSpec(_) => synced::INVALID_SPEC,
            Self::FlavorNotAvailable(_) => synced::FLAVOR_NOT_AVAILABLE,
            Self::Preflight(finding) => match finding {
                Finding::RegionNotOnSale { .. } => synced::REGION_NOT_ON_SALE,
                Finding::VdcNotFound { .. } => synced::VDC_NOT_FOUND,
                Finding::NetworkNotFound { .. } => synced::NETWORK_NOT_FOUND,
                Finding::NetworkFull { .. } => synced::NETWORK_FULL,
                Finding::GoodsNotOffered { .. } => synced::FLAVOR_NOT_AVAILABLE,
            },
            Self::AmbiguousInstance { .. } => synced::AMBIGUOUS_INSTANCE,
            Self::InstanceNotFound(_) => synced::INSTANCE_NOT_FOUND,
            Self::ExternallyDeleted(_) => synced::EXTERNALLY_DELETED,
            Self::BackupNotFound(_) => synced::BACKUP_NOT_FOUND,
            Self::InstanceInUse { .. } => synced::INSTANCE_IN_USE,
            Self::SecretConflict { .. } => synced::SECRET_CONFLICT,
            Self::Credentials(_) => synced::CREDENTIALS_MISSING,
            Self::ProviderConfigNotFound(_) => synced::PROVIDER_CONFIG_NOT_FOUND,
            Self::AccountBusy => synced::THROTTLED,
            Self::NotLeader => synced::NOT_LEADER,
            Self::Cds(e) if e.is_throttled() => synced::THROTTLED,
            Self::Cds(e) if e.is_retryable() => synced::CLOUD_UNAVAILABLE,
            Self::Cds(_) => synced::CLOUD_REJECTED,
            Self::Kube(_) | Self::Conflict => synced::KUBERNETES_API_ERROR,
        }
    }

    /// A label for the failures metric (the reason).
    pub fn metric_label(&self) -> &'static str {
        self.reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cds::ErrorKind;

    #[test]
    fn a_preflight_finding_is_terminal_unless_the_network_is_merely_full() {
        let s = String::new;
        let findings = [
            (
                Finding::RegionNotOnSale {
                    region: s(),
                    on_sale: s(),
                },
                synced::REGION_NOT_ON_SALE,
            ),
            (
                Finding::VdcNotFound {
                    vdc: s(),
                    region: s(),
                    elsewhere: s(),
                    in_region: s(),
                },
                synced::VDC_NOT_FOUND,
            ),
            (
                Finding::NetworkNotFound {
                    network: s(),
                    vdc: s(),
                    networks: s(),
                },
                synced::NETWORK_NOT_FOUND,
            ),
            (
                Finding::NetworkFull {
                    network: s(),
                    vdc: s(),
                    free: 0,
                    needed: 1,
                },
                synced::NETWORK_FULL,
            ),
            (
                Finding::GoodsNotOffered { goods: 1, region: s() },
                synced::FLAVOR_NOT_AVAILABLE,
            ),
        ];
        for (finding, reason) in findings {
            let terminal = finding.is_terminal();
            let e = Error::from(finding);
            assert_eq!((e.reason(), e.is_terminal()), (reason, terminal), "{e}");
            assert!(e.to_string().ends_with("; no order was placed"), "{e}");
        }
    }

    #[test]
    fn reasons_and_retryability_agree() {
        let terminal = [
            Error::SecretNotFound {
                namespace: "n".into(),
                name: "s".into(),
            },
            Error::SecretKeyMissing {
                namespace: "n".into(),
                name: "s".into(),
                problem: "p".into(),
            },
            Error::InvalidSpec("x".into()),
            Error::AmbiguousInstance {
                name: "x".into(),
                count: 2,
            },
            Error::Cds(CdsError::api(
                "CreateDBInstance",
                400,
                Some("InvalidParameter".into()),
                "m",
                None,
            )),
        ];
        for e in terminal {
            assert!(e.is_terminal(), "{e}");
        }
        let cloud_down = Error::Cds(CdsError::api(
            "DescribeDBInstances",
            500,
            Some("InternalError".into()),
            "m",
            None,
        ));
        assert!(cloud_down.is_retryable());
        assert_eq!(cloud_down.reason(), synced::CLOUD_UNAVAILABLE);
        let busy = Error::Cds(CdsError::api(
            "DeleteDBInstance",
            409,
            Some("ResourceInUse".into()),
            "m",
            None,
        ));
        assert_eq!((busy.is_retryable(), busy.reason()), (true, synced::CLOUD_UNAVAILABLE));
        let throttled = Error::Cds(CdsError::other("DescribeDBInstances", ErrorKind::RateLimited, "m"));
        assert_eq!(
            (throttled.is_retryable(), throttled.reason()),
            (true, synced::THROTTLED)
        );
        let rejected = Error::Cds(CdsError::api(
            "CreateDBInstance",
            403,
            Some("SignatureDoesNotMatch".into()),
            "m",
            None,
        ));
        assert_eq!(rejected.reason(), synced::CLOUD_REJECTED);
    }
}
