//! The operator's one error type: where a failure came from, which `Synced` reason it shows, and
//! whether retrying can help. The error policy and the conditions both ask the error, so they
//! never disagree.

use crate::cds::CdsError;
use crate::cds::catalogue::FlavorNotAvailable;
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
    /// The instance to observe or adopt does not exist in the cloud.
    #[error("cloud instance {0} does not exist")]
    InstanceNotFound(String),
    /// A CDS call failed.
    #[error(transparent)]
    Cds(#[from] CdsError),
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// Another writer changed the object first (optimistic concurrency); reconcile again.
    #[error("the object changed while it was reconciled; retrying")]
    Conflict,
    /// The operator has no usable credentials for the object.
    #[error("{0}")]
    Credentials(String),
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
        match self {
            Self::Cds(e) => e.is_retryable(),
            Self::Kube(_) | Self::Conflict => true,
            Self::SecretNotFound { .. }
            | Self::SecretKeyMissing { .. }
            | Self::InvalidSpec(_)
            | Self::FlavorNotAvailable(_)
            | Self::AmbiguousInstance { .. }
            | Self::InstanceNotFound(_)
            | Self::Credentials(_) => false,
        }
    }

    /// Whether only a change of the object or its Secrets can fix it.
    pub fn is_terminal(&self) -> bool {
        !self.is_retryable()
    }

    /// The `Synced` condition reason this error shows.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SecretNotFound { .. } => synced::SECRET_NOT_FOUND,
            Self::SecretKeyMissing { .. } => synced::SECRET_KEY_MISSING,
            Self::InvalidSpec(_) => synced::INVALID_SPEC,
            Self::FlavorNotAvailable(_) => synced::FLAVOR_NOT_AVAILABLE,
            Self::AmbiguousInstance { .. } => synced::AMBIGUOUS_INSTANCE,
            Self::InstanceNotFound(_) => synced::INSTANCE_NOT_FOUND,
            Self::Credentials(_) => synced::CREDENTIALS_MISSING,
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
