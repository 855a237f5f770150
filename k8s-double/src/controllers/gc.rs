//! The garbage collector and namespace controller: dependents of deleted owners go, foreground
//! deletions wait for their dependents, terminating namespaces are emptied.

use serde_json::Value;

use super::{delete, write};
use crate::json;
use crate::meta;
use crate::store::State;

pub(super) fn step(state: &mut State) {
    let uids = state.uids();
    // Dependents whose every owner is gone (background propagation).
    for key in state.keys() {
        let Some(obj) = state.get(&key.0, &key.1, &key.2) else {
            continue;
        };
        let owners = meta::owner_uids(obj);
        if !owners.is_empty()
            && owners.iter().all(|u| !uids.contains(*u))
            && !meta::is_terminating(obj)
        {
            delete(state, &key.0, &key.1, &key.2);
        }
    }
    // Foreground deletions: delete dependents, then drop the finalizer.
    let foreground: Vec<Value> = state
        .keys()
        .into_iter()
        .filter_map(|k| {
            state.get(&k.0, &k.1, &k.2).filter(|o| {
                meta::is_terminating(o)
                    && json::array_at(o, &["metadata", "finalizers"])
                        .iter()
                        .any(|f| f.as_str() == Some("foregroundDeletion"))
            })
        })
        .cloned()
        .collect();
    for owner in foreground {
        let dependents = state.dependents(meta::uid(&owner));
        if dependents.is_empty() {
            let mut done = owner.clone();
            if let Some(Value::Array(list)) = done.pointer_mut("/metadata/finalizers") {
                list.retain(|f| f.as_str() != Some("foregroundDeletion"));
            }
            write(state, done);
        } else {
            for (kind, ns, name) in dependents {
                if state
                    .get(&kind, &ns, &name)
                    .is_some_and(|d| !meta::is_terminating(d))
                {
                    delete(state, &kind, &ns, &name);
                }
            }
        }
    }
    // Terminating namespaces: remove their content, then themselves.
    let terminating: Vec<String> = state
        .all("Namespace", None)
        .filter(|n| meta::is_terminating(n))
        .map(|n| meta::name(n).to_owned())
        .collect();
    for ns in terminating {
        for key in state.keys().into_iter().filter(|k| k.1 == ns) {
            state.sim.logs.remove_pod(&key.1, &key.2);
            state.remove(&key);
        }
        state.remove(&("Namespace".to_owned(), String::new(), ns));
    }
}
