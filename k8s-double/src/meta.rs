//! Object metadata: names, namespaces, owners, timestamps, uids.

use serde_json::{Value, json};

use crate::json;

/// Where an object lives: kind, namespace (empty for cluster-scoped) and name.
pub(crate) type Key = (String, String, String);

/// `metadata.name`, empty when missing.
pub(crate) fn name(obj: &Value) -> &str {
    json::str_at(obj, &["metadata", "name"]).unwrap_or_default()
}

/// `metadata.namespace`, empty when missing.
pub(crate) fn namespace(obj: &Value) -> &str {
    json::str_at(obj, &["metadata", "namespace"]).unwrap_or_default()
}

/// `metadata.uid`, empty when missing.
pub(crate) fn uid(obj: &Value) -> &str {
    json::str_at(obj, &["metadata", "uid"]).unwrap_or_default()
}

/// `kind`, empty when missing.
pub(crate) fn kind(obj: &Value) -> &str {
    json::str_at(obj, &["kind"]).unwrap_or_default()
}

/// The store key of `obj`.
pub(crate) fn key(obj: &Value) -> Key {
    (
        kind(obj).to_owned(),
        namespace(obj).to_owned(),
        name(obj).to_owned(),
    )
}

/// The uid of the controlling owner (`ownerReferences[].controller == true`).
pub(crate) fn controller_uid(obj: &Value) -> Option<&str> {
    json::array_at(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| json::bool_at(r, &["controller"]))
        .and_then(|r| json::str_at(r, &["uid"]))
}

/// The uids of every owner.
pub(crate) fn owner_uids(obj: &Value) -> Vec<&str> {
    json::array_at(obj, &["metadata", "ownerReferences"])
        .iter()
        .filter_map(|r| json::str_at(r, &["uid"]))
        .collect()
}

/// An `ownerReference` naming `owner` as the controller, as the built-in controllers write it.
pub(crate) fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": json::str_at(owner, &["apiVersion"]).unwrap_or_default(),
        "kind": kind(owner),
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn is_terminating(obj: &Value) -> bool {
    json::at(obj, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null())
}

/// A fresh uid in the usual 8-4-4-4-12 hex form.
pub(crate) fn new_uid() -> String {
    let hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
            .collect()
    };
    format!("{}-{}-4{}-a{}-{}", hex(8), hex(4), hex(3), hex(3), hex(12))
}

/// The alphabet Kubernetes uses for generated name suffixes (no vowels, no confusable digits).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A random suffix of `n` characters from the generated-name alphabet.
pub(crate) fn random_suffix(n: usize) -> String {
    (0..n)
        .map(|_| char::from(ALPHANUMS[fastrand::usize(0..ALPHANUMS.len())]))
        .collect()
}

/// The decimal digits of `hash` mapped onto the generated-name alphabet, as template hashes are written.
pub(crate) fn safe_encode(hash: u32) -> String {
    hash.to_string()
        .bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// FNV-1a (32 bit) of `text`.
pub(crate) fn fnv32a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Now, to the second, as metadata timestamps are written (`2026-01-02T03:04:05Z`).
pub(crate) fn now() -> String {
    seconds(jiff::Timestamp::now())
}

/// `ts` to the second in RFC 3339.
pub(crate) fn seconds(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses an RFC 3339 timestamp.
pub(crate) fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_names_use_the_safe_alphabet() {
        let h = safe_encode(fnv32a("x"));
        assert!(h.bytes().all(|b| ALPHANUMS.contains(&b)));
        assert_eq!(random_suffix(5).len(), 5);
        assert_eq!(new_uid().len(), 36);
        assert!(parse_time(&now()).is_some());
    }
}
