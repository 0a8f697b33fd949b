//! Shards: several operator processes, each owning a disjoint part of the objects
//! (`../shared/spec/accounts.md`, "Shards"). An object belongs to shard `S` when it carries the
//! label [`SHARD_LABEL`]` = S`; a process started with `--shard S` watches only those (a label
//! selector on every watch of our kinds, so the apiserver filters and the process caches only
//! its part) and elects its leader on its own Lease. The default process (no `--shard`) owns the
//! objects without the label and those whose label names no shard in `--known-shards`, so that
//! none is orphaned.
//!
//! Moving an object between shards is changing its label: the old shard's watch delivers a
//! delete (the object left its selector), so the old process drops it from its caches and no
//! new reconcile of it starts there; a reconcile already in flight can write nothing derived
//! from what it read, since every object write is conditional on the `resourceVersion` the
//! relabel changed; and the new shard picks up from status (a create whose intent is recorded is
//! waited for, not sent again).

use crate::crd::SHARD_LABEL;

/// Which objects a process owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shard {
    /// The objects labelled with this shard.
    Named(String),
    /// The objects without the label or whose label names none of these shards (may be empty:
    /// then every object, as an unsharded operator).
    Default {
        /// The shards other processes run.
        known: Vec<String>,
    },
}

impl Shard {
    /// From `--shard` and `--known-shards` (the latter only means something without the former).
    pub fn new(shard: Option<&str>, known: &[String]) -> Self {
        match shard {
            Some(s) => Self::Named(s.to_owned()),
            None => {
                let mut known: Vec<String> = known.iter().filter(|k| !k.is_empty()).cloned().collect();
                known.sort();
                known.dedup();
                Self::Default { known }
            }
        }
    }

    /// The label selector of this process's watches; `None`: every object.
    pub fn selector(&self) -> Option<String> {
        match self {
            Self::Named(s) => Some(format!("{SHARD_LABEL}={s}")),
            Self::Default { known } if known.is_empty() => None,
            // `notin` also matches the objects without the label.
            Self::Default { known } => Some(format!("{SHARD_LABEL} notin ({})", known.join(","))),
        }
    }

    /// `selector` and this process's selector together (a selector's terms are ANDed).
    pub fn and(&self, selector: &str) -> String {
        match self.selector() {
            Some(own) => format!("{selector},{own}"),
            None => selector.to_owned(),
        }
    }

    /// The name of the leader Lease: `base` for the default process, `base-S` for shard `S`.
    pub fn lease_name(&self, base: &str) -> String {
        match self {
            Self::Named(s) => format!("{base}-{s}"),
            Self::Default { .. } => base.to_owned(),
        }
    }

    /// The reporting instance of this process's Events: its identity, with `/shard-S` for a
    /// named shard, so `kubectl get events` shows which shard reconciled an object.
    pub fn reporting_instance(&self, identity: &str) -> String {
        match self {
            Self::Named(s) => format!("{identity}/shard-{s}"),
            Self::Default { .. } => identity.to_owned(),
        }
    }

    /// Whether other processes own some objects: then this process sees only part of the cluster,
    /// and what needs the whole view (releasing account Secrets no object of the cluster needs)
    /// is not done here.
    pub fn is_partial(&self) -> bool {
        !matches!(self, Self::Default { known } if known.is_empty())
    }

    /// What a backup (or schedule) whose `RedisInstance` this process does not see should be
    /// told: the instance may be in another shard. `None` for an unsharded process.
    pub fn missing_instance_hint(&self) -> Option<String> {
        let owned = match self {
            Self::Default { known } if known.is_empty() => return None,
            Self::Named(s) => format!("the objects of shard {s}"),
            Self::Default { known } => format!("the objects of no shard in [{}]", known.join(", ")),
        };
        Some(format!(
            " (this operator process sees {owned} only: if the instance is in another shard, give this object its {SHARD_LABEL} label)"
        ))
    }

    /// Whether an object with these labels belongs to this process.
    pub fn owns(&self, labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
        let label = labels.and_then(|l| l.get(SHARD_LABEL));
        match self {
            Self::Named(s) => label == Some(s),
            Self::Default { known } => label.is_none_or(|l| !known.contains(l)),
        }
    }
}

/// Parses a shard name: a label value that is not empty (`--shard`, `--known-shards`).
pub fn parse_shard_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a shard name: a label value of 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(shard: Option<&str>) -> std::collections::BTreeMap<String, String> {
        shard
            .map(|s| [(SHARD_LABEL.to_owned(), s.to_owned())].into())
            .unwrap_or_default()
    }

    #[test]
    fn a_named_shard_selects_its_label_and_leases_its_own_lease() {
        let a = Shard::new(Some("a"), &["b".into()]);
        assert_eq!(a.selector().as_deref(), Some("cds.capitalonline.net/shard=a"));
        assert_eq!(a.lease_name("cds-redis-operator"), "cds-redis-operator-a");
        assert_eq!(a.reporting_instance("pod-1"), "pod-1/shard-a");
        assert_eq!(
            a.and("cds.capitalonline.net/schedule"),
            "cds.capitalonline.net/schedule,cds.capitalonline.net/shard=a"
        );
        assert!(a.is_partial());
        assert!(a.owns(Some(&labels(Some("a")))));
        assert!(
            a.missing_instance_hint()
                .unwrap()
                .contains("sees the objects of shard a only")
        );
        assert!(!a.owns(Some(&labels(Some("b")))));
        assert!(!a.owns(None));
    }

    #[test]
    fn the_default_process_owns_the_unlabelled_and_the_unknown_shards() {
        let d = Shard::new(None, &["b".into(), "a".into(), "a".into()]);
        assert_eq!(d.selector().as_deref(), Some("cds.capitalonline.net/shard notin (a,b)"));
        assert_eq!(d.lease_name("cds-redis-operator"), "cds-redis-operator");
        assert_eq!(d.reporting_instance("pod-1"), "pod-1");
        assert!(d.is_partial());
        assert!(d.owns(None));
        assert!(d.owns(Some(&labels(None))));
        assert!(d.owns(Some(&labels(Some("c")))));
        assert!(!d.owns(Some(&labels(Some("a")))));
    }

    #[test]
    fn without_shards_everything_is_owned_and_nothing_filtered() {
        let d = Shard::new(None, &[]);
        assert_eq!(d.selector(), None);
        assert_eq!(d.and("x"), "x");
        assert!(!d.is_partial());
        assert_eq!(d.missing_instance_hint(), None);
        assert!(d.owns(Some(&labels(Some("a")))));
    }

    #[test]
    fn shard_names_are_label_values() {
        for good in ["a", "team-1", "eu.west_2", &"x".repeat(63)] {
            assert_eq!(parse_shard_name(good).as_deref(), Ok(good));
        }
        for bad in ["", "-a", "a-", "a b", "a,b", "a=b", "ä", &"x".repeat(64)] {
            assert!(parse_shard_name(bad).is_err(), "{bad:?}");
        }
    }
}
