//! Emergency lockdown (issue 14 §lockdown): a deny-all NetworkPolicy (ingress and egress, no
//! rule allowing anything) per locked workload, or one with `podSelector: {}` for the whole
//! namespace, labelled as opsbook's and with the lockdown id, so a later process finds it by
//! label and the lift deletes exactly those policies. Nothing of the user's is changed or
//! deleted.
//!
//! Network policies add up: a pod selected by a policy of the user's that allows some traffic
//! still gets that traffic. The lockdown therefore lists the other policies of the namespace
//! that allow anything in its record, so the report says so; and policies are only enforced
//! by a network plugin that implements them.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use ops_core::platform::{Lockdown, LockdownId, LockdownOptions, LockdownScope};
use ops_core::{Namespace, WorkloadRef};
use serde_json::json;

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};

/// The label every object opsbook manages carries (`app.kubernetes.io/managed-by: opsbook`).
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The label holding a lockdown's id on its network policies.
pub const LOCKDOWN_LABEL: &str = "opsbook.dev/lockdown";
/// The annotation naming the workload a lockdown policy isolates (absent: the namespace).
pub const LOCKDOWN_WORKLOAD: &str = "opsbook.dev/lockdown-workload";
const LOCKDOWN_REASON: &str = "opsbook.dev/lockdown-reason";
const LOCKDOWN_CREATED: &str = "opsbook.dev/lockdown-created";

fn policy_name(id: &LockdownId, index: Option<usize>) -> String {
    match index {
        None => format!("opsbook-lockdown-{id}"),
        Some(i) => format!("opsbook-lockdown-{id}-{i}"),
    }
}

fn selector_of_lockdown(id: Option<&LockdownId>) -> String {
    match id {
        Some(id) => format!("{MANAGED_BY}=opsbook,{LOCKDOWN_LABEL}={id}"),
        None => format!("{MANAGED_BY}=opsbook,{LOCKDOWN_LABEL}"),
    }
}

/// The deny-all policy: both policy types, no rules.
fn deny_all(
    name: &str,
    id: &LockdownId,
    pods: &LabelSelector,
    workload: Option<&WorkloadRef>,
    reason: Option<&str>,
    created: jiff::Timestamp,
) -> Result<NetworkPolicy> {
    let mut annotations = BTreeMap::new();
    annotations.insert(LOCKDOWN_CREATED.to_owned(), created.to_string());
    if let Some(w) = workload {
        annotations.insert(LOCKDOWN_WORKLOAD.to_owned(), w.to_string());
    }
    if let Some(r) = reason {
        annotations.insert(
            LOCKDOWN_REASON.to_owned(),
            ops_core::text::bounded(&ops_core::text::escape(r), 500),
        );
    }
    let value = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "labels": {MANAGED_BY: "opsbook", LOCKDOWN_LABEL: id.as_str()},
            "annotations": annotations,
        },
        "spec": {
            "podSelector": pods,
            "policyTypes": ["Ingress", "Egress"],
        },
    });
    serde_json::from_value(value).map_err(|e| Error::Malformed {
        operation: "lockdown",
        target: name.to_owned(),
        reason: format!("cannot build the policy: {e}"),
    })
}

/// What a policy isolates, in words.
fn describe(p: &NetworkPolicy) -> String {
    let name = p.metadata.name.clone().unwrap_or_default();
    match p
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LOCKDOWN_WORKLOAD))
    {
        Some(w) => format!("NetworkPolicy {name} denies all ingress and egress of {w}'s pods"),
        None => format!("NetworkPolicy {name} denies all ingress and egress of every pod"),
    }
}

/// Whether a policy lets any traffic through (it has a rule).
fn allows_something(p: &NetworkPolicy) -> bool {
    p.spec.as_ref().is_some_and(|s| {
        s.ingress.as_ref().is_some_and(|r| !r.is_empty())
            || s.egress.as_ref().is_some_and(|r| !r.is_empty())
    })
}

/// Rebuild the lockdowns of `namespace` from their policies.
fn group(namespace: &Namespace, policies: &[NetworkPolicy]) -> Vec<Lockdown> {
    let mut by_id: BTreeMap<LockdownId, Vec<&NetworkPolicy>> = BTreeMap::new();
    for p in policies {
        let id = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LOCKDOWN_LABEL))
            .and_then(|v| v.parse::<LockdownId>().ok());
        if let Some(id) = id {
            by_id.entry(id).or_default().push(p);
        }
    }
    by_id
        .into_iter()
        .map(|(id, mut ps)| {
            ps.sort_by_key(|p| p.metadata.name.clone());
            let annotation = |p: &NetworkPolicy, key: &str| {
                p.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(key))
                    .cloned()
            };
            let workloads: Vec<WorkloadRef> = ps
                .iter()
                .filter_map(|p| annotation(p, LOCKDOWN_WORKLOAD))
                .filter_map(|w| w.parse().ok())
                .filter(|w: &WorkloadRef| w.namespace() == namespace)
                .collect();
            let whole = ps
                .iter()
                .any(|p| annotation(p, LOCKDOWN_WORKLOAD).is_none());
            let scope = if whole || workloads.is_empty() {
                LockdownScope::namespace_wide(namespace.clone())
            } else {
                LockdownScope::workloads(workloads)
                    .unwrap_or_else(|_| LockdownScope::namespace_wide(namespace.clone()))
            };
            let mut lockdown = Lockdown::new(id, scope);
            lockdown.created_at = ps
                .iter()
                .filter_map(|p| annotation(p, LOCKDOWN_CREATED))
                .filter_map(|t| t.parse().ok())
                .min()
                .or_else(|| {
                    ps.iter()
                        .filter_map(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
                        .min()
                });
            lockdown.reason = ps.iter().find_map(|p| annotation(p, LOCKDOWN_REASON));
            lockdown.isolated = ps.iter().map(|p| describe(p)).collect();
            lockdown
        })
        .collect()
}

impl KubePlatform {
    async fn lockdown_policies(
        &self,
        operation: &'static str,
        namespace: &Namespace,
        id: Option<&LockdownId>,
    ) -> Result<Vec<NetworkPolicy>> {
        let ns = namespace.as_str();
        let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), ns);
        let lp = ListParams::default().labels(&selector_of_lockdown(id));
        let req = Request::new("list", "networkpolicies", ns);
        let list = self
            .call(operation, ns, &req, Retry::Transient, || api.list(&lp))
            .await?;
        Ok(list.items)
    }

    /// The deny-all policies of a lockdown: one for the namespace, or one per workload with
    /// its pod selector (never an empty one: that would isolate more than asked).
    async fn policies_for(
        &self,
        scope: &LockdownScope,
        id: &LockdownId,
        reason: Option<&str>,
        created: jiff::Timestamp,
    ) -> Result<Vec<NetworkPolicy>> {
        let Some(workloads) = scope.chosen() else {
            return Ok(vec![deny_all(
                &policy_name(id, None),
                id,
                &LabelSelector::default(),
                None,
                reason,
                created,
            )?]);
        };
        let mut policies = Vec::new();
        for (i, w) in workloads.iter().enumerate() {
            let object = self.object("lockdown", w).await?;
            let selector = object.selector().cloned().ok_or_else(|| Error::Malformed {
                operation: "lockdown",
                target: w.to_string(),
                reason: "the workload has no pod selector".to_owned(),
            })?;
            if selector
                .match_labels
                .as_ref()
                .is_none_or(BTreeMap::is_empty)
                && selector
                    .match_expressions
                    .as_ref()
                    .is_none_or(Vec::is_empty)
            {
                return Err(Error::Refused {
                    operation: "lockdown",
                    target: w.to_string(),
                    reason: "its pod selector is empty; lock the namespace down instead".to_owned(),
                });
            }
            policies.push(deny_all(
                &policy_name(id, Some(i)),
                id,
                &selector,
                Some(w),
                reason,
                created,
            )?);
        }
        Ok(policies)
    }

    /// Create the deny-all policies of a lockdown; on a failure part-way, delete the ones
    /// made (and say so when that fails too).
    pub(crate) async fn isolate(
        &self,
        scope: &LockdownScope,
        opts: LockdownOptions,
    ) -> Result<Lockdown> {
        let namespace = scope.namespace();
        let ns = namespace.as_str();
        let id = opts
            .id
            .clone()
            .unwrap_or_else(|| LockdownId::generate(jiff::Timestamp::now()));
        let target = format!("{ns}/{id}");
        if !self
            .lockdown_policies("lockdown", namespace, Some(&id))
            .await?
            .is_empty()
        {
            return Err(Error::Refused {
                operation: "lockdown",
                target,
                reason: "a lockdown with this id is active".to_owned(),
            });
        }
        let created = jiff::Timestamp::now();
        let policies = self
            .policies_for(scope, &id, opts.reason.as_deref(), created)
            .await?;
        let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), ns);
        let pp = PostParams {
            dry_run: opts.dry_run,
            field_manager: Some(self.config.field_manager.clone()),
        };
        let req = Request::new("create", "networkpolicies", ns);
        let mut made: Vec<NetworkPolicy> = Vec::new();
        for policy in &policies {
            let sent = self
                .call("lockdown", &target, &req, Retry::RefusedOnly, || {
                    api.create(&pp, policy)
                })
                .await;
            match sent {
                Ok(p) => made.push(p),
                Err(e) => {
                    if !opts.dry_run {
                        self.remove_policies(&target, ns, &made).await.map_err(|undo| {
                            Error::Refused {
                                operation: "lockdown",
                                target: target.clone(),
                                reason: format!(
                                    "creating a policy failed ({e}) and removing the ones made failed too ({undo}): delete the NetworkPolicies labelled {} by hand",
                                    selector_of_lockdown(Some(&id))
                                ),
                            }
                        })?;
                    }
                    return Err(e);
                }
            }
        }
        let others: Vec<String> = self
            .others_allowing(namespace)
            .await
            .unwrap_or_else(|e| vec![format!("could not read the other NetworkPolicies: {e}")]);
        let mut lockdown = group(namespace, &made)
            .into_iter()
            .next()
            .unwrap_or_else(|| Lockdown::new(id, scope.clone()));
        lockdown.scope = scope.clone();
        lockdown.created_at = Some(created);
        lockdown.isolated.extend(others);
        Ok(lockdown)
    }

    /// The namespace's other policies that allow traffic: they still do during a lockdown.
    async fn others_allowing(&self, namespace: &Namespace) -> Result<Vec<String>> {
        let ns = namespace.as_str();
        let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), ns);
        let lp = ListParams::default();
        let req = Request::new("list", "networkpolicies", ns);
        let list = self
            .call("lockdown", ns, &req, Retry::Transient, || api.list(&lp))
            .await?;
        Ok(list
            .items
            .iter()
            .filter(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LOCKDOWN_LABEL))
                    .is_none()
                    && allows_something(p)
            })
            .map(|p| {
                format!(
                    "warning: NetworkPolicy {} of the namespace allows some traffic and still does (policies add up)",
                    p.metadata.name.clone().unwrap_or_default()
                )
            })
            .collect())
    }

    async fn remove_policies(
        &self,
        target: &str,
        ns: &str,
        policies: &[NetworkPolicy],
    ) -> Result<()> {
        let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("delete", "networkpolicies", ns);
        for p in policies {
            let name = p.metadata.name.clone().unwrap_or_default();
            // Exactly the policy that was read, not a namesake made meanwhile.
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: p.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            let sent = self
                .call("lift_lockdown", target, &req, Retry::RefusedOnly, || {
                    api.delete(&name, &dp)
                })
                .await;
            match sent {
                Ok(_) => {}
                // Already gone: what the lift wants.
                Err(e) if e.status_code() == Some(404) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The active lockdowns of `namespace`.
    pub(crate) async fn active_lockdowns(&self, namespace: &Namespace) -> Result<Vec<Lockdown>> {
        let policies = self.lockdown_policies("lockdowns", namespace, None).await?;
        Ok(group(namespace, &policies))
    }

    /// Delete the policies of lockdown `id` (only those) and return it as it was.
    pub(crate) async fn lift(&self, namespace: &Namespace, id: &LockdownId) -> Result<Lockdown> {
        let target = format!("{namespace}/{id}");
        let policies = self
            .lockdown_policies("lift_lockdown", namespace, Some(id))
            .await?;
        let Some(lockdown) = group(namespace, &policies).into_iter().next() else {
            return Err(Error::NotFound {
                operation: "lift_lockdown",
                target,
                reason: "no active lockdown with this id".to_owned(),
            });
        };
        self.remove_policies(&target, namespace.as_str(), &policies)
            .await?;
        Ok(lockdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deny_all_policy_has_both_types_and_no_rule() {
        let id: LockdownId = "ld-1".parse().unwrap_or_else(|_| unreachable!());
        let p = deny_all(
            "opsbook-lockdown-ld-1",
            &id,
            &LabelSelector::default(),
            None,
            Some("leak\n"),
            jiff::Timestamp::UNIX_EPOCH,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let spec = p.spec.clone().unwrap_or_default();
        assert_eq!(
            spec.policy_types,
            Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
        );
        assert!(spec.ingress.is_none() && spec.egress.is_none());
        assert!(!allows_something(&p));
        let labels = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(MANAGED_BY).map(String::as_str), Some("opsbook"));
        assert_eq!(labels.get(LOCKDOWN_LABEL).map(String::as_str), Some("ld-1"));
        let reason = p.metadata.annotations.unwrap_or_default();
        assert!(!reason[LOCKDOWN_REASON].contains('\n'));
    }
}
