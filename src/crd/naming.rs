//! The deterministic default name of a cloud instance.

/// Longest default instance name. The cloud documents no limit; 60 keeps well inside what
/// consoles and the other CDS products accept.
const MAX_LEN: usize = 60;

/// The default cloud instance name for object `namespace/name` with `uid`:
/// `k8s-<namespace>-<name>-<first 8 characters of uid>`, with the namespace/name part cut so the
/// whole stays within 60 characters. The UID suffix keeps it unique across objects that are
/// deleted and re-created with the same name, and the name is stable for the object's lifetime,
/// so it can find an instance whose create response was lost.
pub fn default_instance_name(namespace: &str, name: &str, uid: &str) -> String {
    let uid8: String = uid.chars().filter(|c| *c != '-').take(8).collect();
    let budget = MAX_LEN - "k8s-".len() - 1 - uid8.len();
    let mut middle: String = format!("{namespace}-{name}");
    if middle.len() > budget {
        // Object names are ASCII (DNS labels/subdomains), so byte truncation is safe.
        middle.truncate(budget);
        while middle.ends_with(['-', '.']) {
            middle.pop();
        }
    }
    format!("k8s-{middle}-{uid8}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_whole() {
        assert_eq!(
            default_instance_name("shop", "cache", "0f3c2a91-5d6e-4b7a-9c8d-1e2f3a4b5c6d"),
            "k8s-shop-cache-0f3c2a91"
        );
    }

    #[test]
    fn long_names_are_cut_but_keep_the_uid() {
        let n = default_instance_name(&"n".repeat(63), &"x".repeat(253), "abcdef12-0000");
        assert!(n.len() <= MAX_LEN, "{n} is {} long", n.len());
        assert!(n.ends_with("-abcdef12"));
        assert!(n.starts_with("k8s-nnnn"));
    }

    #[test]
    fn same_object_same_name_other_uid_other_name() {
        let a = default_instance_name("ns", "r", "11111111-aaaa");
        assert_eq!(a, default_instance_name("ns", "r", "11111111-aaaa"));
        assert_ne!(a, default_instance_name("ns", "r", "22222222-aaaa"));
    }
}
