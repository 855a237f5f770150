//! `ControllerRevisions` for StatefulSets and DaemonSets: one per distinct pod template, numbered.

use serde_json::{Value, json};

use super::{create, delete, write};
use crate::json;
use crate::meta;
use crate::store::State;

/// The revision a StatefulSet or DaemonSet's current template maps to.
#[derive(Debug, Clone)]
pub(super) struct Revision {
    pub(super) name: String,
    pub(super) hash: String,
}

/// `data` of a `ControllerRevision` for `owner`'s template: a patch that replaces the template.
pub(super) fn data(owner: &Value) -> Value {
    let mut template = json::at(owner, &["spec", "template"])
        .cloned()
        .unwrap_or(json!({}));
    json::set_at(&mut template, &["$patch"], json!("replace"));
    json!({"spec": {"template": template}})
}

/// The template a revision records.
pub(super) fn template(revision: &Value) -> Value {
    let mut t = json::at(revision, &["data", "spec", "template"])
        .cloned()
        .unwrap_or(json!({}));
    json::remove_at(&mut t, &["$patch"]);
    t
}

/// The revisions controlled by `owner`, oldest revision first.
pub(super) fn owned(state: &State, owner: &Value) -> Vec<Value> {
    let mut list: Vec<Value> = state
        .all("ControllerRevision", Some(meta::namespace(owner)))
        .filter(|r| meta::controller_uid(r) == Some(meta::uid(owner)))
        .cloned()
        .collect();
    list.sort_by_key(|r| json::i64_at(r, &["revision"]).unwrap_or(0));
    list
}

/// Finds or makes the revision of `owner`'s current template, making it the newest, and trims
/// history beyond `revisionHistoryLimit` (never removing `keep`).
pub(super) fn sync(state: &mut State, owner: &Value, keep: &[&str]) -> Option<Revision> {
    let wanted = data(owner);
    let comparable = json::canonical(&json::pruned(&wanted));
    let hash = meta::safe_encode(meta::fnv32a(&comparable));
    let existing = owned(state, owner);
    let max = existing
        .iter()
        .filter_map(|r| json::i64_at(r, &["revision"]))
        .max()
        .unwrap_or(0);
    let found = existing
        .iter()
        .find(|r| {
            json::canonical(&json::pruned(r.get("data").unwrap_or(&Value::Null))) == comparable
        })
        .cloned();
    let name = if let Some(mut r) = found {
        {
            if json::i64_at(&r, &["revision"]).unwrap_or(0) < max {
                json::set_at(&mut r, &["revision"], json!(max + 1));
                write(state, r.clone());
            }
            meta::name(&r).to_owned()
        }
    } else {
        {
            let mut labels = json::at(owner, &["spec", "template", "metadata", "labels"])
                .cloned()
                .unwrap_or(json!({}));
            json::set_at(&mut labels, &["controller-revision-hash"], json!(hash));
            let revision = json!({
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": {
                    "name": format!("{}-{hash}", meta::name(owner)),
                    "namespace": meta::namespace(owner),
                    "labels": labels,
                    "ownerReferences": [meta::controller_ref(owner)],
                },
                "data": wanted,
                "revision": max + 1,
            });
            meta::name(&create(state, revision)?).to_owned()
        }
    };
    let limit = json::i64_at(owner, &["spec", "revisionHistoryLimit"])
        .unwrap_or(10)
        .max(0);
    let old: Vec<Value> = owned(state, owner)
        .into_iter()
        .filter(|r| meta::name(r) != name && !keep.contains(&meta::name(r)))
        .collect();
    let excess = usize::try_from(limit)
        .ok()
        .and_then(|l| old.len().checked_sub(l))
        .unwrap_or(0);
    for r in old.iter().take(excess) {
        delete(
            state,
            "ControllerRevision",
            meta::namespace(r),
            meta::name(r),
        );
    }
    Some(Revision { name, hash })
}
