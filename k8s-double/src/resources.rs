//! The resource types the double serves: names, groups, verbs and which subresources they have.

/// One served resource type.
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts about a resource, as discovery lists them"
)]
#[derive(Debug)]
pub(crate) struct Resource {
    pub(crate) kind: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) singular: &'static str,
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) namespaced: bool,
    pub(crate) short_names: &'static [&'static str],
    pub(crate) categories: &'static [&'static str],
    /// Writes through the main endpoint keep the stored status; `/status` changes only status.
    pub(crate) status_subresource: bool,
    /// Has an `autoscaling/v1` Scale subresource.
    pub(crate) scale: bool,
    /// `metadata.generation` counts spec changes.
    pub(crate) generation: bool,
    /// Only get/list/watch (metrics, nodes).
    pub(crate) read_only: bool,
}

impl Resource {
    /// `apps/v1`, or `v1` for the core group.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The verbs discovery advertises.
    pub(crate) fn verbs(&self) -> &'static [&'static str] {
        if self.read_only {
            &["get", "list", "watch"]
        } else {
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }
}

const ALL: &[&str] = &["all"];

const fn res(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    group: &'static str,
    version: &'static str,
) -> Resource {
    Resource {
        kind,
        plural,
        singular,
        group,
        version,
        namespaced: true,
        short_names: &[],
        categories: &[],
        status_subresource: false,
        scale: false,
        generation: false,
        read_only: false,
    }
}

const fn workload(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short: &'static [&'static str],
    scale: bool,
) -> Resource {
    Resource {
        short_names: short,
        categories: ALL,
        status_subresource: true,
        scale,
        generation: true,
        ..res(kind, plural, singular, "apps", "v1")
    }
}

/// Every resource type the double serves.
pub(crate) static RESOURCES: &[Resource] = &[
    Resource {
        namespaced: false,
        short_names: &["ns"],
        status_subresource: true,
        ..res("Namespace", "namespaces", "namespace", "", "v1")
    },
    Resource {
        namespaced: false,
        short_names: &["no"],
        status_subresource: true,
        read_only: true,
        ..res("Node", "nodes", "node", "", "v1")
    },
    Resource {
        short_names: &["po"],
        categories: ALL,
        status_subresource: true,
        ..res("Pod", "pods", "pod", "", "v1")
    },
    Resource {
        short_names: &["ev"],
        ..res("Event", "events", "event", "", "v1")
    },
    Resource {
        short_names: &["cm"],
        ..res("ConfigMap", "configmaps", "configmap", "", "v1")
    },
    res("Secret", "secrets", "secret", "", "v1"),
    Resource {
        short_names: &["svc"],
        categories: ALL,
        status_subresource: true,
        ..res("Service", "services", "service", "", "v1")
    },
    // What `kubectl get endpoints` and `describe quota` read.
    Resource {
        short_names: &["ep"],
        ..res("Endpoints", "endpoints", "endpoints", "", "v1")
    },
    Resource {
        short_names: &["quota"],
        status_subresource: true,
        ..res("ResourceQuota", "resourcequotas", "resourcequota", "", "v1")
    },
    workload("Deployment", "deployments", "deployment", &["deploy"], true),
    workload("StatefulSet", "statefulsets", "statefulset", &["sts"], true),
    workload("DaemonSet", "daemonsets", "daemonset", &["ds"], false),
    workload("ReplicaSet", "replicasets", "replicaset", &["rs"], true),
    res(
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        "apps",
        "v1",
    ),
    Resource {
        short_names: &["hpa"],
        categories: ALL,
        status_subresource: true,
        generation: true,
        ..res(
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            "autoscaling",
            "v2",
        )
    },
    Resource {
        short_names: &["netpol"],
        generation: true,
        ..res(
            "NetworkPolicy",
            "networkpolicies",
            "networkpolicy",
            "networking.k8s.io",
            "v1",
        )
    },
    Resource {
        read_only: true,
        ..res("PodMetrics", "pods", "", "metrics.k8s.io", "v1beta1")
    },
];

/// The resource type of `kind` (`"Deployment"`), ignoring the metrics kinds.
pub(crate) fn by_kind(kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.kind.eq_ignore_ascii_case(kind) && r.group != "metrics.k8s.io")
}

/// The resource type served at `group/version/plural`.
pub(crate) fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The served group versions, `("", "v1")` first, with metrics only when enabled.
pub(crate) fn group_versions(metrics: bool) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if r.group == "metrics.k8s.io" && !metrics {
            continue;
        }
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
        // autoscaling/v1 is where Scale lives; it serves no resource of its own here.
        if r.group == "autoscaling" && !out.contains(&("autoscaling", "v1")) {
            out.push(("autoscaling", "v1"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_paths_resolve() {
        assert_eq!(by_kind("deployment").map(|r| r.plural), Some("deployments"));
        assert_eq!(
            by_path("apps", "v1", "replicasets").map(|r| r.kind),
            Some("ReplicaSet")
        );
        assert_eq!(by_kind("PodMetrics").map(|r| r.kind), None);
        assert!(!group_versions(false).contains(&("metrics.k8s.io", "v1beta1")));
        assert!(group_versions(true).contains(&("autoscaling", "v1")));
    }
}
