//! Object names for imported instances: a DNS-1123 label derived from the cloud instance's name,
//! unique within one import.

use std::collections::BTreeSet;

/// Longest object name: a DNS-1123 label (what every Kubernetes name accepts).
pub const MAX_LEN: usize = 63;

/// The first 8 letters or digits of `uuid`, lowercased (the suffix that tells apart instances
/// whose names map to the same object name).
fn short_uuid(uuid: &str) -> String {
    uuid.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `name` cut to `max` characters, without a trailing `-`.
fn cut(name: &str, max: usize) -> String {
    // Only ASCII is left by then, so byte truncation is safe.
    name[..name.len().min(max)].trim_end_matches('-').to_owned()
}

/// The object name for cloud instance `instance_name` (UUID `uuid`): ASCII letters lowercased,
/// digits kept, every run of anything else (`_`, `.`, spaces, non-ASCII letters, `-`) turned into
/// one `-`, no `-` at either end, at most 63 characters. A name with nothing left (e.g. only
/// Chinese characters) becomes `redis-` and the first 8 letters or digits of the UUID.
pub fn object_name(instance_name: &str, uuid: &str) -> String {
    let mut out = String::new();
    for c in instance_name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = cut(out.trim_start_matches('-'), MAX_LEN);
    match (out.is_empty(), short_uuid(uuid)) {
        (false, _) => out,
        (true, short) if short.is_empty() => "redis".to_owned(),
        (true, short) => format!("redis-{short}"),
    }
}

/// Object names for `(instance name, UUID)` pairs, in order, unique among themselves: the first
/// instance gets [`object_name`], a later one whose name is taken gets `-` and its short UUID
/// appended (the base cut to fit 63 characters), and, should that be taken too, `-2`, `-3`, ...
pub fn unique_names<'a>(instances: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut taken = BTreeSet::new();
    let mut names = vec![];
    for (instance_name, uuid) in instances {
        let (base, short) = (object_name(instance_name, uuid), short_uuid(uuid));
        let mut name = base.clone();
        let mut n = 1;
        while taken.contains(&name) {
            let suffix = match (short.is_empty(), n) {
                (false, 1) => format!("-{short}"),
                (false, _) => format!("-{short}-{n}"),
                (true, _) => format!("-{}", n + 1),
            };
            name = format!("{}{suffix}", cut(&base, MAX_LEN - suffix.len()));
            n += 1;
        }
        taken.insert(name.clone());
        names.push(name);
    }
    names
}

/// Whether `name` is a DNS-1123 label: 1-63 lowercase letters, digits and `-`, starting and
/// ending with a letter or digit.
pub fn is_dns_label(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=MAX_LEN).contains(&name.len())
        && name.chars().all(|c| ok(c) || c == '-')
        && name.starts_with(ok)
        && name.ends_with(ok)
}
