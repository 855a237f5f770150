//! The object store: objects as JSON, resource versions, the watch history, and the write verbs
//! (create, update, patch, delete, scale) with the API server's checks.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::controllers::Sim;
use crate::defaults;
use crate::error::ApiError;
use crate::json;
use crate::meta::{self, Key};
use crate::patch::{self, PatchKind};
use crate::requests::RecordedRequest;
use crate::resources::{self, Resource};
use crate::selector::{FieldSelector, LabelSelector};

/// How many past watch events are kept for watches that resume from a resourceVersion.
const HISTORY: usize = 20_000;

/// One change, as watches stream it.
#[derive(Debug)]
pub(crate) struct WatchEvent {
    pub(crate) rv: u64,
    pub(crate) kind: String,
    pub(crate) namespace: String,
    pub(crate) event_type: &'static str,
    pub(crate) object: Value,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Main,
    Status,
}

/// The knobs of a DELETE.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOptions {
    pub(crate) propagation: Option<String>,
    pub(crate) grace_seconds: Option<i64>,
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
}

/// Everything the double knows, behind one lock.
#[derive(Debug)]
pub(crate) struct State {
    objects: BTreeMap<Key, Value>,
    /// Keys of the objects whose `ownerReferences` name each uid: controllers ask "what does
    /// this own" for every object on every tick, which a scan made quadratic.
    owned: std::collections::HashMap<String, std::collections::BTreeSet<Key>>,
    rv: u64,
    history: VecDeque<Arc<WatchEvent>>,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) sim: Sim,
}

impl State {
    /// An empty store with the usual namespaces.
    pub(crate) fn new(sim: Sim) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let mut state = Self {
            objects: BTreeMap::new(),
            owned: std::collections::HashMap::new(),
            rv: 1000,
            history: VecDeque::new(),
            tx,
            requests: Vec::new(),
            sim,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            state.ensure_namespace(ns);
        }
        state
    }

    /// The current resourceVersion.
    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    /// A new subscription to every change.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.tx.subscribe()
    }

    /// Events after `rv` still in the history, or `None` when `rv` is older than the history.
    pub(crate) fn history_since(&self, rv: u64) -> Option<Vec<Arc<WatchEvent>>> {
        if let Some(first) = self.history.front()
            && first.rv > rv + 1
        {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|e| e.rv > rv)
                .map(Arc::clone)
                .collect(),
        )
    }

    /// The object of `kind` at `namespace/name`.
    pub(crate) fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(kind.to_owned(), namespace.to_owned(), name.to_owned()))
    }

    /// Every object of `kind`, in `namespace` when given.
    pub(crate) fn all<'a>(
        &'a self,
        kind: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        // Keys sort by kind, then namespace: read only this kind's range (a scan of the whole
        // store per call made every tick cost as much as all the events ever recorded).
        let start = (
            kind.to_owned(),
            namespace.unwrap_or_default().to_owned(),
            String::new(),
        );
        self.objects
            .range(start..)
            .take_while(move |((k, ns, _), _)| k == kind && namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
    }

    /// Clones of the objects of `kind` in `namespace` (all when `None`) that match the selectors.
    pub(crate) fn list(
        &self,
        kind: &str,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.all(kind, namespace)
            .filter(|o| labels.matches_object(o) && fields.matches(o))
            .cloned()
            .collect()
    }

    /// Every object anywhere whose `ownerReferences` name `uid`.
    pub(crate) fn dependents(&self, uid: &str) -> Vec<Key> {
        self.owned
            .get(uid)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The objects of `kind` whose `ownerReferences` name `uid`.
    pub(crate) fn owned_by<'a>(
        &'a self,
        kind: &'a str,
        uid: &str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.owned
            .get(uid)
            .into_iter()
            .flatten()
            .filter(move |k| k.0 == kind)
            .filter_map(|k| self.objects.get(k))
    }

    fn unindex(&mut self, key: &Key, obj: &Value) {
        for owner in meta::owner_uids(obj) {
            if let Some(keys) = self.owned.get_mut(owner) {
                keys.remove(key);
                if keys.is_empty() {
                    self.owned.remove(owner);
                }
            }
        }
    }

    /// Every uid in the store.
    pub(crate) fn uids(&self) -> std::collections::HashSet<String> {
        self.objects
            .values()
            .map(|o| meta::uid(o).to_owned())
            .collect()
    }

    /// Every key in the store.
    pub(crate) fn keys(&self) -> Vec<Key> {
        self.objects.keys().cloned().collect()
    }

    fn emit(&mut self, event_type: &'static str, object: &Value) {
        let event = Arc::new(WatchEvent {
            rv: self.rv,
            kind: meta::kind(object).to_owned(),
            namespace: meta::namespace(object).to_owned(),
            event_type,
            object: object.clone(),
        });
        if self.history.len() >= HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Arc::clone(&event));
        // Nobody listening is fine: sends fail only when there are no receivers.
        let _ = self.tx.send(event);
    }

    /// Stores `obj` under a new resourceVersion and tells the watchers.
    pub(crate) fn put(&mut self, mut obj: Value) -> Value {
        self.rv += 1;
        json::set_at(
            &mut obj,
            &["metadata", "resourceVersion"],
            json!(self.rv.to_string()),
        );
        let key = meta::key(&obj);
        let event_type = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        if let Some(previous) = self.objects.insert(key.clone(), obj.clone()) {
            self.unindex(&key, &previous);
        }
        for owner in meta::owner_uids(&obj) {
            self.owned
                .entry(owner.to_owned())
                .or_default()
                .insert(key.clone());
        }
        self.emit(event_type, &obj);
        obj
    }

    /// Removes the object at `key` and tells the watchers.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.unindex(key, &obj);
        self.rv += 1;
        json::set_at(
            &mut obj,
            &["metadata", "resourceVersion"],
            json!(self.rv.to_string()),
        );
        self.emit("DELETED", &obj);
        Some(obj)
    }

    /// Creates namespace `name` when missing.
    pub(crate) fn ensure_namespace(&mut self, name: &str) {
        if self.get("Namespace", "", name).is_none() {
            let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            if let Some(res) = resources::by_kind("Namespace") {
                // A valid name was checked by the caller's own create; an invalid one is simply not made.
                let _ = self.create(res, "", ns, false, false);
            }
        }
    }

    /// Creates `obj` as the API server would; `from_api` resets `status` for kinds with a status subresource.
    ///
    /// # Errors
    /// 400 for a mismatched kind or namespace, 404 for a missing namespace, 409 `AlreadyExists`, 422.
    pub(crate) fn create(
        &mut self,
        res: &Resource,
        namespace: &str,
        mut obj: Value,
        dry_run: bool,
        from_api: bool,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        check_type(res, &mut obj)?;
        let body_ns = meta::namespace(&obj).to_owned();
        if res.namespaced {
            if !body_ns.is_empty() && body_ns != namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            json::set_at(&mut obj, &["metadata", "namespace"], json!(namespace));
            if self.get("Namespace", "", namespace).is_none() {
                return Err(ApiError::not_found("", "namespaces", namespace));
            }
            if let Some(ns) = self.get("Namespace", "", namespace)
                && meta::is_terminating(ns)
            {
                return Err(ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                        res.plural,
                        meta::name(&obj)
                    ),
                ));
            }
        } else if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("namespace");
        }
        if meta::name(&obj).is_empty()
            && let Some(prefix) =
                json::str_at(&obj, &["metadata", "generateName"]).map(str::to_owned)
        {
            json::set_at(
                &mut obj,
                &["metadata", "name"],
                json!(format!("{prefix}{}", meta::random_suffix(5))),
            );
        }
        defaults::apply(res.kind, &mut obj);
        defaults::validate(res, &obj, None)?;
        let name = meta::name(&obj).to_owned();
        if self
            .get(res.kind, if res.namespaced { namespace } else { "" }, &name)
            .is_some()
        {
            return Err(ApiError::already_exists(res.group, res.plural, &name));
        }
        let m = json::object_mut(&mut obj, &["metadata"]);
        m.insert("uid".to_owned(), json!(meta::new_uid()));
        m.insert("creationTimestamp".to_owned(), json!(meta::now()));
        m.remove("resourceVersion");
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        if res.generation {
            m.insert("generation".to_owned(), json!(1));
        } else {
            m.remove("generation");
        }
        if res.kind == "Namespace" {
            json::set_at(
                &mut obj,
                &["metadata", "labels", "kubernetes.io/metadata.name"],
                json!(name),
            );
            json::set_at(&mut obj, &["spec", "finalizers"], json!(["kubernetes"]));
        }
        if res.status_subresource && (from_api || obj.get("status").is_none()) {
            let status = match res.kind {
                "Pod" => json!({"phase": "Pending", "qosClass": "BestEffort"}),
                "Namespace" => json!({"phase": "Active"}),
                "Service" => json!({"loadBalancer": {}}),
                _ => json!({}),
            };
            json::set_at(&mut obj, &["status"], status);
        }
        if dry_run {
            return Ok(obj);
        }
        Ok(self.put(obj))
    }

    fn existing(&self, res: &Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let ns = if res.namespaced { namespace } else { "" };
        self.get(res.kind, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res.group, res.plural, name))
    }

    /// Replaces the object (or only its status) as PUT does.
    ///
    /// # Errors
    /// 404, 400 for a mismatched name, 409 for a stale `resourceVersion`, 422.
    pub(crate) fn update(
        &mut self,
        res: &Resource,
        namespace: &str,
        name: &str,
        mut new: Value,
        part: Part,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let old = self.existing(res, namespace, name)?;
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        check_type(res, &mut new)?;
        let body_name = meta::name(&new);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_rv = json::str_at(&new, &["metadata", "resourceVersion"]).unwrap_or_default();
        if !body_rv.is_empty()
            && body_rv != json::str_at(&old, &["metadata", "resourceVersion"]).unwrap_or_default()
        {
            return Err(ApiError::stale(res.group, res.plural, name));
        }
        let mut merged = match part {
            Part::Main => {
                let mut merged = new;
                if res.status_subresource {
                    match old.get("status") {
                        Some(status) => json::set_at(&mut merged, &["status"], status.clone()),
                        None => {
                            json::remove_at(&mut merged, &["status"]);
                        }
                    }
                }
                for field in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "namespace",
                    "name",
                ] {
                    match json::at(&old, &["metadata", field]) {
                        Some(v) => json::set_at(&mut merged, &["metadata", field], v.clone()),
                        None => {
                            json::remove_at(&mut merged, &["metadata", field]);
                        }
                    }
                }
                defaults::apply(res.kind, &mut merged);
                defaults::validate(res, &merged, Some(&old))?;
                merged
            }
            Part::Status => {
                let mut merged = old.clone();
                json::set_at(
                    &mut merged,
                    &["status"],
                    new.get("status").cloned().unwrap_or(json!({})),
                );
                merged
            }
        };
        // `Value` equality ignores key order, as the canonical text did, without building
        // two strings per write (controllers write every object's status on every tick).
        if res.generation && merged.get("spec") != old.get("spec") {
            let generation = json::i64_at(&old, &["metadata", "generation"]).unwrap_or(0) + 1;
            json::set_at(&mut merged, &["metadata", "generation"], json!(generation));
        }
        let rv = json::at(&old, &["metadata", "resourceVersion"])
            .cloned()
            .unwrap_or(Value::Null);
        json::set_at(&mut merged, &["metadata", "resourceVersion"], rv);
        if merged == old || dry_run {
            return Ok(merged);
        }
        if meta::is_terminating(&merged)
            && json::array_at(&merged, &["metadata", "finalizers"]).is_empty()
        {
            let key = meta::key(&merged);
            return Ok(self.remove(&key).unwrap_or(merged));
        }
        Ok(self.put(merged))
    }

    /// Applies a patch as PATCH does.
    ///
    /// # Errors
    /// As [`State::update`], plus 400/422 from the patch itself.
    #[allow(clippy::too_many_arguments, reason = "the parts of a PATCH request")]
    pub(crate) fn patch(
        &mut self,
        res: &Resource,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        body: &Value,
        part: Part,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let old = self.existing(res, namespace, name)?;
        let patched = patch::apply(kind, &old, body)?;
        let (old_rv, new_rv) = (
            json::str_at(&old, &["metadata", "resourceVersion"]).unwrap_or_default(),
            json::str_at(&patched, &["metadata", "resourceVersion"]).unwrap_or_default(),
        );
        if !new_rv.is_empty() && new_rv != old_rv {
            return Err(ApiError::stale(res.group, res.plural, name));
        }
        self.update(res, namespace, name, patched, part, dry_run)
    }

    /// Deletes as DELETE does: preconditions, graceful pod deletion, finalizers and propagation.
    ///
    /// # Errors
    /// 404, 409 for a failed precondition.
    pub(crate) fn delete(
        &mut self,
        res: &Resource,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let old = self.existing(res, namespace, name)?;
        if let Some(uid) = &opts.uid
            && uid != meta::uid(&old)
        {
            return Err(ApiError::conflict(
                res.group,
                res.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta::uid(&old)
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version {
            let actual = json::str_at(&old, &["metadata", "resourceVersion"]).unwrap_or_default();
            if rv != actual {
                return Err(ApiError::conflict(
                    res.group,
                    res.plural,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                    ),
                ));
            }
        }
        if dry_run {
            return Ok(old);
        }
        let uid = meta::uid(&old).to_owned();
        let key = meta::key(&old);
        match opts.propagation.as_deref() {
            Some("Orphan") => {
                for dep in self.dependents(&uid) {
                    if let Some(mut d) = self.objects.get(&dep).cloned() {
                        if let Some(Value::Array(refs)) = d.pointer_mut("/metadata/ownerReferences")
                        {
                            refs.retain(|r| json::str_at(r, &["uid"]) != Some(uid.as_str()));
                        }
                        self.put(d);
                    }
                }
            }
            Some("Foreground") if !self.dependents(&uid).is_empty() => {
                let mut obj = old;
                mark_terminating(&mut obj, None);
                let finalizers = json::object_mut(&mut obj, &["metadata"])
                    .entry("finalizers")
                    .or_insert_with(|| json!([]));
                if let Value::Array(list) = finalizers
                    && !list.contains(&json!("foregroundDeletion"))
                {
                    list.push(json!("foregroundDeletion"));
                }
                return Ok(self.put(obj));
            }
            _ => {}
        }
        if res.kind == "Pod" && meta::is_terminating(&old) && opts.grace_seconds != Some(0) {
            return Ok(old);
        }
        let graceful_pod = res.kind == "Pod" && !meta::is_terminating(&old) && {
            let default =
                json::i64_at(&old, &["spec", "terminationGracePeriodSeconds"]).unwrap_or(30);
            opts.grace_seconds.unwrap_or(default) > 0
        };
        let has_finalizers = !json::array_at(&old, &["metadata", "finalizers"]).is_empty();
        if graceful_pod || has_finalizers || res.kind == "Namespace" {
            if meta::is_terminating(&old) {
                return Ok(old);
            }
            let mut obj = old;
            let grace = if graceful_pod {
                Some(
                    opts.grace_seconds
                        .or_else(|| json::i64_at(&obj, &["spec", "terminationGracePeriodSeconds"]))
                        .unwrap_or(30),
                )
            } else {
                None
            };
            mark_terminating(&mut obj, grace);
            if res.kind == "Namespace" {
                json::set_at(&mut obj, &["status", "phase"], json!("Terminating"));
            }
            return Ok(self.put(obj));
        }
        Ok(self.remove(&key).unwrap_or(old))
    }

    /// The `autoscaling/v1` Scale of a workload.
    ///
    /// # Errors
    /// 404 when the object or its scale subresource does not exist.
    pub(crate) fn scale(
        &self,
        res: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        if !res.scale {
            return Err(ApiError::not_found(
                res.group,
                &format!("{}/scale", res.plural),
                name,
            ));
        }
        let obj = self.existing(res, namespace, name)?;
        let selector = json::at(&obj, &["spec", "selector"])
            .map(LabelSelector::from_object)
            .transpose()?
            .unwrap_or_default();
        Ok(json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": meta::uid(&obj),
                "resourceVersion": json::str_at(&obj, &["metadata", "resourceVersion"]),
                "creationTimestamp": json::str_at(&obj, &["metadata", "creationTimestamp"]),
            },
            "spec": {"replicas": json::i64_at(&obj, &["spec", "replicas"]).unwrap_or(0)},
            "status": {
                "replicas": json::i64_at(&obj, &["status", "replicas"]).unwrap_or(0),
                "selector": selector.to_query(),
            },
        }))
    }

    /// Writes a Scale back to its workload (PUT `/scale`).
    ///
    /// # Errors
    /// 404, 409 for a stale `resourceVersion`, 422 for a bad replica count.
    pub(crate) fn update_scale(
        &mut self,
        res: &Resource,
        namespace: &str,
        name: &str,
        scale: &Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let current = self.scale(res, namespace, name)?;
        let body_rv = json::str_at(scale, &["metadata", "resourceVersion"]).unwrap_or_default();
        if !body_rv.is_empty()
            && Some(body_rv) != json::str_at(&current, &["metadata", "resourceVersion"])
        {
            return Err(ApiError::stale(res.group, res.plural, name));
        }
        let replicas = json::i64_at(scale, &["spec", "replicas"])
            .filter(|r| *r >= 0 && i32::try_from(*r).is_ok())
            .ok_or_else(|| {
                ApiError::invalid(
                    "Scale",
                    "autoscaling",
                    name,
                    &[(
                        "spec.replicas",
                        "Invalid value: must be greater than or equal to 0".to_owned(),
                    )],
                )
            })?;
        let mut obj = self.existing(res, namespace, name)?;
        json::set_at(&mut obj, &["spec", "replicas"], json!(replicas));
        let updated = self.update(res, namespace, name, obj, Part::Main, dry_run)?;
        if dry_run {
            let mut out = current;
            json::set_at(&mut out, &["spec", "replicas"], json!(replicas));
            return Ok(out);
        }
        let _ = updated;
        self.scale(res, namespace, name)
    }
}

/// Sets `deletionTimestamp` (and the grace period) on `obj`.
pub(crate) fn mark_terminating(obj: &mut Value, grace: Option<i64>) {
    let when = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(grace.unwrap_or(0)))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    json::set_at(
        obj,
        &["metadata", "deletionTimestamp"],
        json!(meta::seconds(when)),
    );
    if let Some(grace) = grace {
        json::set_at(
            obj,
            &["metadata", "deletionGracePeriodSeconds"],
            json!(grace),
        );
    }
}

/// Fills or checks `apiVersion` and `kind` against the resource the URL names.
fn check_type(res: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    let expected = res.api_version();
    match json::str_at(obj, &["apiVersion"]) {
        Some(v) if v != expected => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
        _ => json::set_at(obj, &["apiVersion"], json!(expected)),
    }
    match json::str_at(obj, &["kind"]) {
        Some(k) if k != res.kind => Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            res.kind
        ))),
        _ => {
            json::set_at(obj, &["kind"], json!(res.kind));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_kind;

    fn deployment(name: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}})
    }

    #[test]
    fn create_update_conflict_and_generation() {
        let res = by_kind("Deployment").unwrap();
        let mut s = State::new(Sim::default());
        let created = s
            .create(res, "default", deployment("web"), false, true)
            .unwrap();
        assert_eq!(json::i64_at(&created, &["metadata", "generation"]), Some(1));
        assert_eq!(
            s.create(res, "default", deployment("web"), false, true)
                .unwrap_err()
                .code(),
            409
        );
        let mut stale = created.clone();
        json::set_at(&mut stale, &["metadata", "resourceVersion"], json!("1"));
        assert_eq!(
            s.update(res, "default", "web", stale, Part::Main, false)
                .unwrap_err()
                .code(),
            409
        );
        let same = s
            .update(res, "default", "web", created.clone(), Part::Main, false)
            .unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            created["metadata"]["resourceVersion"]
        );
        let patched = s
            .patch(
                res,
                "default",
                "web",
                PatchKind::Merge,
                &json!({"spec": {"replicas": 3}}),
                Part::Main,
                false,
            )
            .unwrap();
        assert_eq!(json::i64_at(&patched, &["metadata", "generation"]), Some(2));
        let annotated = s
            .patch(
                res,
                "default",
                "web",
                PatchKind::Merge,
                &json!({"metadata": {"annotations": {"a": "b"}}}),
                Part::Main,
                false,
            )
            .unwrap();
        assert_eq!(
            json::i64_at(&annotated, &["metadata", "generation"]),
            Some(2)
        );
        let dry = s
            .patch(
                res,
                "default",
                "web",
                PatchKind::Merge,
                &json!({"spec": {"replicas": 9}}),
                Part::Main,
                true,
            )
            .unwrap();
        assert_eq!(json::i64_at(&dry, &["spec", "replicas"]), Some(9));
        assert_eq!(
            json::i64_at(
                s.get("Deployment", "default", "web").unwrap(),
                &["spec", "replicas"]
            ),
            Some(3)
        );
        assert_eq!(
            s.create(res, "nope", deployment("x"), false, true)
                .unwrap_err()
                .code(),
            404
        );
    }

    #[test]
    fn scale_carries_parent_version_and_rejects_stale() {
        let res = by_kind("Deployment").unwrap();
        let mut s = State::new(Sim::default());
        s.create(res, "default", deployment("web"), false, true)
            .unwrap();
        let scale = s.scale(res, "default", "web").unwrap();
        assert_eq!(
            json::str_at(&scale, &["status", "selector"]),
            Some("app=web")
        );
        let mut outdated = scale.clone();
        json::set_at(&mut outdated, &["metadata", "resourceVersion"], json!("5"));
        assert_eq!(
            s.update_scale(res, "default", "web", &outdated, false)
                .unwrap_err()
                .code(),
            409
        );
        let mut ok = scale;
        json::set_at(&mut ok, &["spec", "replicas"], json!(4));
        let out = s.update_scale(res, "default", "web", &ok, false).unwrap();
        assert_eq!(json::i64_at(&out, &["spec", "replicas"]), Some(4));
    }

    #[test]
    fn delete_preconditions_and_graceful_pods() {
        let res = by_kind("Pod").unwrap();
        let mut s = State::new(Sim::default());
        s.create(res, "default", json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}), false, true).unwrap();
        let bad = DeleteOptions {
            uid: Some("x".to_owned()),
            ..DeleteOptions::default()
        };
        assert_eq!(
            s.delete(res, "default", "p", &bad, false)
                .unwrap_err()
                .code(),
            409
        );
        let out = s
            .delete(res, "default", "p", &DeleteOptions::default(), false)
            .unwrap();
        assert!(meta::is_terminating(&out));
        let now = DeleteOptions {
            grace_seconds: Some(0),
            ..DeleteOptions::default()
        };
        s.delete(res, "default", "p", &now, false).unwrap();
        assert!(s.get("Pod", "default", "p").is_none());
    }
}
