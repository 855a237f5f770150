//! A namespace beyond its workloads (`kubectl get endpoints`, `describe nodes`, `describe
//! resourcequota`, `get networkpolicies`, `get events`): each part one list request, read
//! concurrently, each failing on its own.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Endpoints, Event, Node, Pod, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ListParams};
use ops_core::platform::{
    Condition, CpuQuantity, Endpoint, EventOptions, InspectOptions, Inspection, MemoryQuantity,
    NodeStatus, QuotaStatus, QuotaUse, Resources, Section, ServiceEndpoints, ServicePort,
};
use ops_core::{Namespace, OpsError};

use crate::error::{Request, Result};
use crate::events::{select, to_event};
use crate::platform::{KubePlatform, Retry};
use crate::usage::parse_quantity;

const OP: &str = "inspect";

impl KubePlatform {
    /// Every part of [`Inspection`] the API has; disk space only as the nodes' `DiskPressure`
    /// (the API server reports no filesystem sizes).
    pub(crate) async fn inspect_namespace(
        &self,
        namespace: &Namespace,
        opts: &InspectOptions,
    ) -> Inspection {
        let ns = namespace.as_str();
        let (services, nodes, quotas, policies, events) = tokio::join!(
            self.services_of(ns),
            self.nodes_status(),
            self.quotas_of(ns),
            self.network_policies_of(ns),
            self.namespace_events(ns, opts),
        );
        let mut out = Inspection::default();
        out.services = section(services);
        out.nodes = section(nodes);
        out.quotas = section(quotas);
        out.network_policies = section(policies);
        out.events = section(events);
        out.disks = Section::unsupported(
            "the Kubernetes API reports no filesystem sizes; nodes report DiskPressure",
        );
        out.engine_disk_usage = Section::unsupported("no container engine API in Kubernetes");
        out
    }

    async fn list_in<K>(&self, ns: &str, resource: &'static str) -> Result<Vec<K>>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("list", resource, ns);
        let lp = ListParams::default();
        let list = self
            .call(OP, ns, &req, Retry::Transient, || api.list(&lp))
            .await?;
        Ok(list.items)
    }

    async fn services_of(&self, ns: &str) -> Result<Vec<ServiceEndpoints>> {
        let (services, endpoints) = tokio::join!(
            self.list_in::<Service>(ns, "services"),
            self.list_in::<Endpoints>(ns, "endpoints"),
        );
        let endpoints: BTreeMap<String, Endpoints> = endpoints?
            .into_iter()
            .filter_map(|e| Some((e.metadata.name.clone()?, e)))
            .collect();
        let mut out: Vec<ServiceEndpoints> = services?
            .iter()
            .map(|s| {
                service_endpoints(
                    s,
                    endpoints.get(s.metadata.name.as_deref().unwrap_or_default()),
                )
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn nodes_status(&self) -> Result<Vec<NodeStatus>> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let pods: Api<Pod> = Api::all(self.client.clone());
        let lp = ListParams::default();
        let (node_req, pod_req) = (
            Request::new("list", "nodes", ""),
            Request::new("list", "pods", ""),
        );
        let (nodes, pods) = tokio::join!(
            self.call(OP, "nodes", &node_req, Retry::Transient, || nodes.list(&lp)),
            self.call(OP, "pods", &pod_req, Retry::Transient, || pods.list(&lp)),
        );
        let pods = pods?.items;
        let mut out: Vec<NodeStatus> = nodes?.items.iter().map(|n| node_status(n, &pods)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn quotas_of(&self, ns: &str) -> Result<Vec<QuotaStatus>> {
        let mut out: Vec<QuotaStatus> = self
            .list_in::<ResourceQuota>(ns, "resourcequotas")
            .await?
            .iter()
            .map(quota_status)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn network_policies_of(&self, ns: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .list_in::<NetworkPolicy>(ns, "networkpolicies")
            .await?
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        Ok(names)
    }

    async fn namespace_events(
        &self,
        ns: &str,
        opts: &InspectOptions,
    ) -> Result<Vec<ops_core::platform::PlatformEvent>> {
        let events = self.list_in::<Event>(ns, "events").await?;
        let mut select_opts = EventOptions::default();
        select_opts.limit = opts.events_limit;
        Ok(select(
            events.iter().map(to_event).collect(),
            &select_opts,
            jiff::Timestamp::now(),
        ))
    }
}

fn section<T>(result: Result<T>) -> Section<T> {
    Section::from_result(result.map_err(OpsError::from))
}

fn service_endpoints(s: &Service, endpoints: Option<&Endpoints>) -> ServiceEndpoints {
    let mut out = ServiceEndpoints::new(s.metadata.name.clone().unwrap_or_default());
    let spec = s.spec.as_ref();
    out.selects_instances = spec
        .and_then(|sp| sp.selector.as_ref())
        .is_some_and(|sel| !sel.is_empty());
    out.ports = spec
        .and_then(|sp| sp.ports.as_ref())
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    let target = match &p.target_port {
                        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i)) => {
                            i.to_string()
                        }
                        Some(
                            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name),
                        ) => name.clone(),
                        // The API server defaults targetPort to port.
                        None => p.port.to_string(),
                    };
                    let mut port = ServicePort::new(
                        u16::try_from(p.port).unwrap_or_default(),
                        target,
                        p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                    );
                    port.name.clone_from(&p.name);
                    port
                })
                .collect()
        })
        .unwrap_or_default();
    for subset in endpoints
        .and_then(|e| e.subsets.as_ref())
        .into_iter()
        .flatten()
    {
        let to = |a: &k8s_openapi::api::core::v1::EndpointAddress| {
            Endpoint::new(
                a.target_ref.as_ref().and_then(|r| r.name.clone()),
                Some(a.ip.clone()),
            )
        };
        out.ready.extend(subset.addresses.iter().flatten().map(to));
        out.not_ready
            .extend(subset.not_ready_addresses.iter().flatten().map(to));
    }
    out.ready.sort();
    out.not_ready.sort();
    out
}

/// CPU in millicores, rounded up as the API server rounds requests (`MilliValue()`, exact:
/// ops-core's one quantity parser).
fn millis(q: &Quantity) -> u64 {
    CpuQuantity::parse(&q.0).map_or(0, CpuQuantity::millis)
}

/// Memory in bytes, rounded up as the API server rounds (`Value()`).
fn bytes(q: &Quantity) -> u64 {
    MemoryQuantity::parse(&q.0).map_or(0, MemoryQuantity::bytes)
}

fn amounts(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
    let cpu = list.and_then(|l| l.get("cpu")).map_or(0, millis);
    let memory = list.and_then(|l| l.get("memory")).map_or(0, bytes);
    Resources::new(cpu, memory)
}

fn max(a: Resources, b: Resources) -> Resources {
    Resources::new(
        a.cpu_millis.max(b.cpu_millis),
        a.memory_bytes.max(b.memory_bytes),
    )
}

fn add(a: Resources, b: Resources) -> Resources {
    Resources::new(
        a.cpu_millis.saturating_add(b.cpu_millis),
        a.memory_bytes.saturating_add(b.memory_bytes),
    )
}

/// A pod's requests and limits as `kubectl describe node` counts them: the larger of the sum
/// over its containers and the largest init container, plus the pod overhead.
fn pod_amounts(pod: &Pod) -> (Resources, Resources) {
    let Some(spec) = pod.spec.as_ref() else {
        return (Resources::default(), Resources::default());
    };
    let of = |c: &k8s_openapi::api::core::v1::Container| {
        let r = c.resources.as_ref();
        (
            amounts(r.and_then(|r| r.requests.as_ref())),
            amounts(r.and_then(|r| r.limits.as_ref())),
        )
    };
    let (mut requests, mut limits) = spec.containers.iter().map(of).fold(
        (Resources::default(), Resources::default()),
        |(r, l), (cr, cl)| (add(r, cr), add(l, cl)),
    );
    for init in spec.init_containers.iter().flatten() {
        let (ir, il) = of(init);
        requests = max(requests, ir);
        limits = max(limits, il);
    }
    let overhead = amounts(spec.overhead.as_ref());
    (add(requests, overhead), add(limits, overhead))
}

fn node_status(node: &Node, pods: &[Pod]) -> NodeStatus {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut out = NodeStatus::new(name.clone());
    let status = node.status.as_ref();
    out.conditions = status
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let mut cond =
                        Condition::new(c.type_.clone(), c.status.clone(), c.reason.clone());
                    cond.message = c
                        .message
                        .as_deref()
                        .map(|m| ops_core::text::evidence(m, 300));
                    cond
                })
                .collect()
        })
        .unwrap_or_default();
    let is_true = |kind: &str| {
        out.conditions
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.status == "True")
    };
    out.ready = is_true("Ready");
    out.memory_pressure = is_true("MemoryPressure").unwrap_or(false);
    out.disk_pressure = is_true("DiskPressure").unwrap_or(false);
    out.pid_pressure = is_true("PIDPressure").unwrap_or(false);
    out.unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    out.allocatable = amounts(status.and_then(|s| s.allocatable.as_ref()));
    for pod in pods.iter().filter(|p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str())
            && !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
    }) {
        let (requests, limits) = pod_amounts(pod);
        out.requested = add(out.requested, requests);
        out.limits = add(out.limits, limits);
    }
    out
}

fn quota_status(q: &ResourceQuota) -> QuotaStatus {
    let status = q.status.as_ref();
    let hard = status.and_then(|s| s.hard.as_ref());
    let used = status.and_then(|s| s.used.as_ref());
    let resources = hard
        .into_iter()
        .flatten()
        .map(|(resource, hard)| {
            let used_q = used.and_then(|u| u.get(resource));
            let ratio = used_q.and_then(|u| {
                let (u, h) = (parse_quantity(&u.0).ok()?, parse_quantity(&hard.0).ok()?);
                (h > 0.0).then_some(u / h)
            });
            QuotaUse::new(
                resource.clone(),
                used_q.map_or_else(|| "0".to_owned(), |u| u.0.clone()),
                hard.0.clone(),
                ratio,
            )
        })
        .collect();
    QuotaStatus::new(q.metadata.name.clone().unwrap_or_default(), resources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(node: &str, phase: &str, cpu: &str, memory: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": node, "containers": [
                {"name": "a", "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}},
                {"name": "b", "resources": {"requests": {"cpu": cpu}}},
            ], "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3"}}}]},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn node_requests_count_running_pods_as_kubectl_describe_does() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "node-1"},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi"}, "conditions": [
                {"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "True"},
            ]},
        }))
        .unwrap();
        let pods = [
            pod("node-1", "Running", "250m", "1Gi"),
            pod("node-1", "Succeeded", "1", "1Gi"),
            pod("node-2", "Running", "1", "1Gi"),
        ];
        let n = node_status(&node, &pods);
        // Containers 250m + 250m = 500m, the init container's 3 cores are larger.
        assert_eq!(n.requested, Resources::new(3000, 1 << 30));
        assert_eq!(n.limits, Resources::new(0, 1 << 30));
        assert_eq!(n.allocatable, Resources::new(4000, 8 << 30));
        assert_eq!(
            (n.ready, n.disk_pressure, n.memory_pressure),
            (Some(true), true, false)
        );
    }

    #[test]
    fn whole_millicores_are_not_rounded_up_by_float_noise() {
        assert_eq!(millis(&Quantity("8698219m".to_owned())), 8_698_219);
        assert_eq!(millis(&Quantity("0.1".to_owned())), 100);
        assert_eq!(
            millis(&Quantity("1n".to_owned())),
            1,
            "a nanocore is requested as 1m"
        );
        assert_eq!(bytes(&Quantity("1.5Ki".to_owned())), 1536);
    }

    #[test]
    fn quota_ratios_read_both_quantities() {
        let q: ResourceQuota = serde_json::from_value(json!({
            "metadata": {"name": "compute"},
            "status": {"hard": {"requests.cpu": "2", "pods": "10", "requests.memory": "0"},
                       "used": {"requests.cpu": "1500m", "pods": "10"}},
        }))
        .unwrap();
        let s = quota_status(&q);
        let by: BTreeMap<_, _> = s
            .resources
            .iter()
            .map(|u| (u.resource.as_str(), u))
            .collect();
        assert_eq!(by["requests.cpu"].ratio, Some(0.75));
        assert_eq!(by["pods"].ratio, Some(1.0));
        assert_eq!(
            by["requests.memory"].ratio, None,
            "a zero hard limit has no ratio"
        );
        assert_eq!(by["requests.memory"].used, "0");
        assert_eq!(s.fullest().map(|u| u.resource.as_str()), Some("pods"));
    }
}
