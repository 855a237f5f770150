//! Emergency lockdown (issue 14 §lockdown) on a Compose project: the containers of the chosen
//! services (or of the whole project) are disconnected from every network, and connected back
//! to each one with its aliases and static addresses by the lift.
//!
//! Why every network and not an `internal` one: measured against Docker 20.10, a container
//! moved to an internal network keeps its published ports — the engine publishes them again,
//! on a new host port when the host port was ephemeral, and that port answers (the userland
//! proxy reaches the container over the bridge). A container on no network has no endpoint to
//! publish on: its ports stop answering, it reaches nothing, and it stays so across restarts.
//! (`ufw deny`, the seeds' way, does not block published ports either: Docker's own iptables
//! rules come first.)
//!
//! The record of a lockdown is a network opsbook creates, `opsbook-lockdown-<id>` (internal,
//! nothing attached), whose labels hold what the lift needs: which container was on which
//! network with which aliases. A later process finds it by label. It is created before the
//! first disconnect and removed after the last reconnect, so a failed lift can be run again.
//! Nothing of the user's is deleted. A container recreated during the lockdown (`docker
//! compose up`) comes back on its networks by itself: the lift skips containers that are gone
//! and says so. An ephemeral host port may change across the lockdown, as across a restart.

use std::collections::{BTreeSet, HashMap};

use bollard::models::{
    EndpointIpamConfig, EndpointSettings, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest,
};
use bollard::query_parameters::ListNetworksOptionsBuilder;
use ops_core::Namespace;
use ops_core::platform::{Lockdown, LockdownId, LockdownOptions, LockdownScope};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::labels;
use crate::platform::ComposePlatform;

/// Label on opsbook's lockdown record networks: who manages them.
pub const MANAGED_BY: &str = "dev.opsbook.managed-by";
/// Label holding the lockdown id.
pub const LOCKDOWN: &str = "dev.opsbook.lockdown";
/// Label holding the project the lockdown is in.
pub const LOCKDOWN_PROJECT: &str = "dev.opsbook.lockdown.project";
/// Label holding the record (JSON) the lift reads.
pub const LOCKDOWN_RECORD: &str = "dev.opsbook.lockdown.record";

/// One network a container was on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Attachment {
    network: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ipv4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ipv6: Option<String>,
}

/// One isolated container and where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Isolated {
    id: String,
    name: String,
    networks: Vec<Attachment>,
}

/// What the record network's label holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    scope: LockdownScope,
    created_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    containers: Vec<Isolated>,
}

impl Record {
    fn lockdown(&self, id: LockdownId) -> Lockdown {
        let mut l = Lockdown::new(id, self.scope.clone());
        l.created_at = Some(self.created_at);
        l.reason.clone_from(&self.reason);
        l.isolated = self
            .containers
            .iter()
            .map(|c| {
                let nets: Vec<&str> = c.networks.iter().map(|n| n.network.as_str()).collect();
                if nets.is_empty() {
                    format!("container {} (was on no network)", c.name)
                } else {
                    format!("container {} disconnected from {}", c.name, nets.join(", "))
                }
            })
            .collect();
        l
    }
}

/// A container's name as inspect gives it, without the engine's leading `/`.
pub(crate) fn inspected_name(inspect: &bollard::models::ContainerInspectResponse) -> String {
    inspect
        .name
        .as_deref()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_owned()
}

fn record_network(id: &LockdownId) -> String {
    format!("opsbook-lockdown-{id}")
}

/// The aliases to restore: the engine adds the container's short id itself.
fn aliases_of(endpoint: &EndpointSettings, id: &str) -> Vec<String> {
    let short = id.get(..12).unwrap_or(id);
    endpoint
        .aliases
        .iter()
        .flatten()
        .filter(|a| a.as_str() != short)
        .cloned()
        .collect()
}

impl ComposePlatform {
    /// The record networks of `project` (of lockdown `id` when given).
    async fn records(
        &self,
        operation: &'static str,
        project: &str,
        id: Option<&LockdownId>,
    ) -> Result<Vec<(LockdownId, Record)>> {
        let docker = self.docker().await?;
        let mut wanted = vec![
            format!("{MANAGED_BY}=opsbook"),
            format!("{LOCKDOWN_PROJECT}={project}"),
        ];
        if let Some(id) = id {
            wanted.push(format!("{LOCKDOWN}={id}"));
        }
        let filters = HashMap::from([("label".to_owned(), wanted)]);
        let opts = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let networks = self
            .call(operation, project, docker.list_networks(Some(opts)))
            .await?;
        let mut out = Vec::new();
        for n in networks {
            let labels = n.labels.unwrap_or_default();
            let (Some(id), Some(record)) = (labels.get(LOCKDOWN), labels.get(LOCKDOWN_RECORD))
            else {
                continue;
            };
            let (Ok(id), Ok(record)) = (
                id.parse::<LockdownId>(),
                serde_json::from_str::<Record>(record),
            ) else {
                return Err(Error::Conflict {
                    operation,
                    target: n.name.unwrap_or_default(),
                    reason: "opsbook's lockdown record on this network is unreadable".to_owned(),
                });
            };
            out.push((id, record));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The containers in scope and their networks, refusing any that networks cannot isolate.
    async fn plan_isolation(&self, scope: &LockdownScope) -> Result<Vec<Isolated>> {
        let project = scope.namespace().as_str();
        labels::validate_project(project)?;
        let summaries = match scope.chosen() {
            None => self.list(project, None).await?,
            Some(workloads) => {
                let mut all = Vec::new();
                for w in workloads {
                    let (_, service) = labels::project_service(w)?;
                    let found = self.list(project, Some(service)).await?;
                    if found.is_empty() {
                        return Err(Error::NotFound {
                            operation: "lockdown",
                            target: w.to_string(),
                        });
                    }
                    all.extend(found);
                }
                all
            }
        };
        if summaries.is_empty() {
            return Err(Error::NotFound {
                operation: "lockdown",
                target: project.to_owned(),
            });
        }
        let mut out = Vec::new();
        for s in summaries {
            let Some(id) = s.id.clone() else { continue };
            let inspect = self.inspect(&id).await?;
            let name = inspected_name(&inspect);
            let mode = inspect
                .host_config
                .as_ref()
                .and_then(|h| h.network_mode.clone())
                .unwrap_or_default();
            if mode == "host" || mode.starts_with("container:") {
                return Err(Error::Unsupported {
                    operation: "lockdown",
                    target: name,
                    reason: format!(
                        "network mode {mode}: the container shares a network stack networks cannot isolate; stop it instead"
                    ),
                });
            }
            let mut networks: Vec<Attachment> = inspect
                .network_settings
                .as_ref()
                .and_then(|n| n.networks.as_ref())
                .map(|nets| {
                    nets.iter()
                        .filter(|(net, _)| net.as_str() != "none")
                        .map(|(net, e)| {
                            let ipam = e.ipam_config.as_ref();
                            Attachment {
                                network: net.clone(),
                                aliases: aliases_of(e, &id),
                                ipv4: ipam
                                    .and_then(|i| i.ipv4_address.clone())
                                    .filter(|a| !a.is_empty()),
                                ipv6: ipam
                                    .and_then(|i| i.ipv6_address.clone())
                                    .filter(|a| !a.is_empty()),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            networks.sort_by(|a, b| a.network.cmp(&b.network));
            out.push(Isolated { id, name, networks });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn disconnect(&self, container: &Isolated, network: &str) -> Result<()> {
        let docker = self.docker().await?;
        let req = NetworkDisconnectRequest {
            container: container.id.clone(),
            force: Some(false),
        };
        self.call(
            "lockdown",
            &format!("{} from {network}", container.name),
            docker.disconnect_network(network, req),
        )
        .await
    }

    async fn reconnect(&self, container: &Isolated, a: &Attachment) -> Result<()> {
        let docker = self.docker().await?;
        let ipam = (a.ipv4.is_some() || a.ipv6.is_some()).then(|| EndpointIpamConfig {
            ipv4_address: a.ipv4.clone(),
            ipv6_address: a.ipv6.clone(),
            ..EndpointIpamConfig::default()
        });
        let req = NetworkConnectRequest {
            container: container.id.clone(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(a.aliases.clone()),
                ipam_config: ipam,
                ..EndpointSettings::default()
            }),
        };
        self.call(
            "lift_lockdown",
            &format!("{} to {}", container.name, a.network),
            docker.connect_network(&a.network, req),
        )
        .await
    }

    async fn remove_record(&self, id: &LockdownId) -> Result<()> {
        let docker = self.docker().await?;
        let name = record_network(id);
        match self
            .call("lift_lockdown", &name, docker.remove_network(&name))
            .await
        {
            Err(e) if e.status_code() == Some(404) => Ok(()),
            other => other,
        }
    }

    /// Isolate the containers of `scope`.
    pub(crate) async fn isolate(
        &self,
        scope: &LockdownScope,
        opts: LockdownOptions,
    ) -> Result<Lockdown> {
        let project = scope.namespace().as_str();
        if opts.dry_run {
            return Err(Error::Unsupported {
                operation: "lockdown",
                target: scope.to_string(),
                reason: "the Docker engine has no server-side dry run; plan the step through RunContext in Mode::DryRun".to_owned(),
            });
        }
        let id = opts
            .id
            .clone()
            .unwrap_or_else(|| LockdownId::generate(jiff::Timestamp::now()));
        if !self
            .records("lockdown", project, Some(&id))
            .await?
            .is_empty()
        {
            return Err(Error::Conflict {
                operation: "lockdown",
                target: format!("{project}/{id}"),
                reason: "a lockdown with this id is active".to_owned(),
            });
        }
        let containers = self.plan_isolation(scope).await?;
        let record = Record {
            scope: scope.clone(),
            created_at: jiff::Timestamp::now(),
            reason: opts
                .reason
                .as_deref()
                .map(|r| ops_core::text::bounded(&ops_core::text::escape(r), 500)),
            containers,
        };
        let json = serde_json::to_string(&record).map_err(|e| Error::InvalidArgument {
            operation: "lockdown",
            target: project.to_owned(),
            reason: format!("cannot write the record: {e}"),
        })?;
        let docker = self.docker().await?;
        let network = NetworkCreateRequest {
            name: record_network(&id),
            driver: Some("bridge".to_owned()),
            internal: Some(true),
            labels: Some(HashMap::from([
                (MANAGED_BY.to_owned(), "opsbook".to_owned()),
                (LOCKDOWN.to_owned(), id.to_string()),
                (LOCKDOWN_PROJECT.to_owned(), project.to_owned()),
                (LOCKDOWN_RECORD.to_owned(), json),
            ])),
            ..NetworkCreateRequest::default()
        };
        // The record first: whatever happens next, a lift can find what to put back.
        self.call(
            "lockdown",
            &record_network(&id),
            docker.create_network(network),
        )
        .await?;
        let mut done: Vec<(&Isolated, &Attachment)> = Vec::new();
        for c in &record.containers {
            for a in &c.networks {
                if let Err(e) = self.disconnect(c, &a.network).await {
                    return Err(self.undo_isolation(&id, &done, e).await);
                }
                done.push((c, a));
            }
        }
        Ok(record.lockdown(id))
    }

    /// Reconnect what was disconnected and remove the record; the error says what remains
    /// when that fails too.
    async fn undo_isolation(
        &self,
        id: &LockdownId,
        done: &[(&Isolated, &Attachment)],
        cause: Error,
    ) -> Error {
        let mut failed = Vec::new();
        for (c, a) in done {
            if let Err(e) = self.reconnect(c, a).await {
                failed.push(format!("reconnecting {} to {}: {e}", c.name, a.network));
            }
        }
        if failed.is_empty() {
            if let Err(e) = self.remove_record(id).await {
                failed.push(format!("removing {}: {e}", record_network(id)));
            }
        } else {
            failed.push(format!(
                "the record network {} is kept: lift lockdown {id} to finish",
                record_network(id)
            ));
        }
        if failed.is_empty() {
            cause
        } else {
            Error::Compensation {
                operation: "lockdown",
                target: id.to_string(),
                source: Box::new(cause),
                failed,
            }
        }
    }

    /// The active lockdowns of a project.
    pub(crate) async fn active_lockdowns(&self, namespace: &Namespace) -> Result<Vec<Lockdown>> {
        labels::validate_project(namespace.as_str())?;
        Ok(self
            .records("lockdowns", namespace.as_str(), None)
            .await?
            .into_iter()
            .map(|(id, r)| r.lockdown(id))
            .collect())
    }

    /// Reconnect every recorded container to every recorded network with its aliases, then
    /// remove the record. Containers that are gone are skipped (and said to be).
    pub(crate) async fn lift(&self, namespace: &Namespace, id: &LockdownId) -> Result<Lockdown> {
        let project = namespace.as_str();
        labels::validate_project(project)?;
        let Some((_, record)) = self
            .records("lift_lockdown", project, Some(id))
            .await?
            .into_iter()
            .next()
        else {
            return Err(Error::NotFound {
                operation: "lift_lockdown",
                target: format!("{project}/{id}"),
            });
        };
        let mut lockdown = record.lockdown(id.clone());
        for c in &record.containers {
            let current = match self.inspect(&c.id).await {
                Ok(i) => i,
                Err(e) if e.status_code() == Some(404) => {
                    lockdown.isolated.push(format!(
                        "container {} is gone (recreated or removed): nothing to reconnect",
                        c.name
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let on: BTreeSet<String> = current
                .network_settings
                .and_then(|n| n.networks)
                .map(|n| n.into_keys().collect())
                .unwrap_or_default();
            for a in &c.networks {
                if !on.contains(&a.network) {
                    self.reconnect(c, a).await?;
                }
            }
        }
        self.remove_record(id).await?;
        Ok(lockdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_names_what_was_isolated() {
        let scope =
            LockdownScope::namespace_wide("shop".parse().unwrap_or_else(|_| unreachable!()));
        let record = Record {
            scope,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            reason: None,
            containers: vec![Isolated {
                id: "abc".to_owned(),
                name: "shop-api-1".to_owned(),
                networks: vec![Attachment {
                    network: "shop_default".to_owned(),
                    aliases: vec!["api".to_owned()],
                    ipv4: None,
                    ipv6: None,
                }],
            }],
        };
        let json = serde_json::to_string(&record).unwrap_or_default();
        let back: Record = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, record);
        let l = back.lockdown("ld-1".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(
            l.isolated,
            ["container shop-api-1 disconnected from shop_default"]
        );
    }

    #[test]
    fn the_short_id_alias_is_left_to_the_engine() {
        let e = EndpointSettings {
            aliases: Some(vec!["api".to_owned(), "0123456789ab".to_owned()]),
            ..EndpointSettings::default()
        };
        assert_eq!(aliases_of(&e, "0123456789abcdef"), ["api"]);
    }
}
