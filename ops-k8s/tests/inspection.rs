//! Inspection beyond workloads (issue 14 item 7) through the API double, with the real
//! kubectl as the oracle: what `kubectl get endpoints`, `get resourcequota`, `get nodes`,
//! `get networkpolicies` and `get events` read from the same server is what
//! `KubePlatform::inspect` reports.
//!
//! With `CI=true` these tests run, never skip: scripts/provision puts kubectl on the PATH.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::collections::BTreeMap;

use k8s_double::PodFault;
use ops_core::Platform as _;
use ops_core::platform::{InspectOptions, Inspection, Section};
use serde_json::{Value, json};
use support::{Env, deployment, kubectl_available};

const NS: &str = "shop";

async fn inspect(env: &Env, opts: InspectOptions) -> Inspection {
    env.platform
        .inspect(&NS.parse().unwrap(), opts)
        .await
        .expect("inspect")
}

async fn kubectl_json(env: &Env, args: &[&str]) -> Value {
    let run = env.kubectl(args).await;
    assert_eq!(run.code, 0, "kubectl {args:?}: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("kubectl -o json")
}

fn service(name: &str, app: &str, target: &Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": target}]},
    })
}

/// A Deployment whose container names its port `http` (8080) and requests resources.
fn web(name: &str, replicas: i64, image: &str) -> Value {
    let mut d = deployment(NS, name, replicas, image);
    d["spec"]["template"]["spec"]["containers"][0]["ports"] =
        json!([{"name": "http", "containerPort": 8080}]);
    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}});
    d
}

/// Per endpoints object: (ready IPs, not-ready IPs, ports), as kubectl shows them.
/// Ready IPs, not-ready IPs and ports of one endpoints object.
type Addresses = (Vec<String>, Vec<String>, Vec<i64>);

fn kubectl_endpoints(list: &Value) -> BTreeMap<String, Addresses> {
    let mut out = BTreeMap::new();
    for item in list["items"].as_array().unwrap() {
        let name = item["metadata"]["name"].as_str().unwrap().to_owned();
        let (mut ready, mut not_ready, mut ports) = (Vec::new(), Vec::new(), Vec::new());
        for subset in item["subsets"].as_array().into_iter().flatten() {
            for a in subset["addresses"].as_array().into_iter().flatten() {
                ready.push(a["ip"].as_str().unwrap().to_owned());
            }
            for a in subset["notReadyAddresses"].as_array().into_iter().flatten() {
                not_ready.push(a["ip"].as_str().unwrap().to_owned());
            }
            for p in subset["ports"].as_array().into_iter().flatten() {
                ports.push(p["port"].as_i64().unwrap());
            }
        }
        ready.sort();
        not_ready.sort();
        out.insert(name, (ready, not_ready, ports));
    }
    out
}

#[tokio::test]
async fn services_and_their_endpoints_are_what_kubectl_get_endpoints_shows() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    env.cluster.fail_image("never-ready", PodFault::NeverReady);
    env.create(web("web", 2, "shop/web:1")).await;
    env.create(web("slow", 1, "shop/never-ready:1")).await;
    env.create(service("web", "web", &json!("http"))).await;
    env.create(service("slow", "slow", &json!(8080))).await;
    env.create(service("nobody", "nothing-matches", &json!(80)))
        .await;

    let kubectl =
        kubectl_endpoints(&kubectl_json(&env, &["get", "endpoints", "-n", NS, "-o", "json"]).await);
    let ours = inspect(&env, InspectOptions::default()).await;
    let services = ours.services.read().expect("services read");
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["nobody", "slow", "web"]);
    for s in services {
        let ip = |e: &ops_core::platform::Endpoint| e.address.clone().unwrap();
        let mut ready: Vec<String> = s.ready.iter().map(ip).collect();
        let mut not_ready: Vec<String> = s.not_ready.iter().map(ip).collect();
        ready.sort();
        not_ready.sort();
        let (k_ready, k_not_ready, k_ports) = kubectl.get(&s.name).cloned().unwrap_or_default();
        assert_eq!(
            (&ready, &not_ready),
            (&k_ready, &k_not_ready),
            "service {}",
            s.name
        );
        if !k_ports.is_empty() {
            assert_eq!(
                k_ports,
                [8080],
                "the named target port resolved to the container's"
            );
        }
        assert_eq!(s.ports[0].port, 80);
    }
    // What a real endpoints controller computes: the ready pods' IPs for web (named port
    // resolved), the never-ready pod under notReadyAddresses, nothing for nobody.
    let web = &services[2];
    assert_eq!((web.ready.len(), web.not_ready.len()), (2, 0));
    assert!(
        web.ready
            .iter()
            .all(|e| e.instance.as_deref().is_some_and(|p| p.starts_with("web-")))
    );
    assert_eq!(web.ports[0].target, "http");
    let slow = &services[1];
    assert_eq!((slow.ready.len(), slow.not_ready.len()), (0, 1));
    assert!(!services[0].has_ready_endpoint());
    let pod_ips: Vec<String> = env
        .cluster
        .list("Pod", NS)
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "web")
        .map(|p| p["status"]["podIP"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = pod_ips.clone();
    expected.sort();
    assert_eq!(kubectl["web"].0, expected);

    // Scaled to one: the endpoints follow.
    env.cluster
        .modify("Deployment", NS, "web", |d| {
            d["spec"]["replicas"] = json!(1);
        })
        .unwrap();
    env.settle().await;
    let ours = inspect(&env, InspectOptions::default()).await;
    let kubectl =
        kubectl_endpoints(&kubectl_json(&env, &["get", "endpoints", "-n", NS, "-o", "json"]).await);
    assert_eq!(ours.services.read().unwrap()[2].ready.len(), 1);
    assert_eq!(kubectl["web"].0.len(), 1);
}

#[tokio::test]
async fn quotas_used_against_hard_are_what_kubectl_reads() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    env.create(json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "compute", "namespace": NS},
        "spec": {"hard": {"pods": "4", "requests.cpu": "1", "requests.memory": "1Gi", "limits.memory": "2Gi", "configmaps": "10"}},
    }))
    .await;
    env.create(web("web", 2, "shop/web:1")).await;
    env.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": NS}, "data": {"a": "b"}}))
        .await;

    let kubectl = kubectl_json(&env, &["get", "resourcequota", "-n", NS, "-o", "json"]).await;
    let item = &kubectl["items"][0];
    let ours = inspect(&env, InspectOptions::default()).await;
    let quotas = ours.quotas.read().expect("quotas read");
    assert_eq!(quotas.len(), 1);
    assert_eq!(quotas[0].name, "compute");
    for u in &quotas[0].resources {
        assert_eq!(
            item["status"]["used"][&u.resource],
            json!(u.used),
            "{}",
            u.resource
        );
        assert_eq!(
            item["status"]["hard"][&u.resource],
            json!(u.hard),
            "{}",
            u.resource
        );
    }
    let by: BTreeMap<&str, &ops_core::platform::QuotaUse> = quotas[0]
        .resources
        .iter()
        .map(|u| (u.resource.as_str(), u))
        .collect();
    // Two pods of 250m / 256Mi requests and 512Mi limits, one ConfigMap.
    assert_eq!(
        (by["pods"].used.as_str(), by["pods"].ratio),
        ("2", Some(0.5))
    );
    assert_eq!(
        (by["requests.cpu"].used.as_str(), by["requests.cpu"].ratio),
        ("500m", Some(0.5))
    );
    assert_eq!(
        (
            by["requests.memory"].used.as_str(),
            by["requests.memory"].ratio
        ),
        ("512Mi", Some(0.5))
    );
    assert_eq!(
        (by["limits.memory"].used.as_str(), by["limits.memory"].ratio),
        ("1Gi", Some(0.5))
    );
    assert_eq!(by["configmaps"].used, "1");

    // `kubectl describe quota` prints the same pairs.
    let run = env
        .kubectl(&["describe", "quota", "compute", "-n", NS])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    for u in &quotas[0].resources {
        let line = run
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(u.resource.as_str()))
            .unwrap_or_else(|| panic!("{} in\n{}", u.resource, run.stdout));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1..], [u.used.as_str(), u.hard.as_str()], "{line}");
    }
}

#[tokio::test]
async fn nodes_conditions_and_requests_are_what_kubectl_reads() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    env.create(web("web", 3, "shop/web:1")).await;
    env.cluster
        .modify("Node", "", "node-2", |n| {
            for c in n["status"]["conditions"].as_array_mut().unwrap() {
                if c["type"] == "DiskPressure" {
                    c["status"] = json!("True");
                    c["reason"] = json!("KubeletHasDiskPressure");
                }
            }
        })
        .unwrap();
    let kubectl = kubectl_json(&env, &["get", "nodes", "-o", "json"]).await;
    let ours = inspect(&env, InspectOptions::default()).await;
    let nodes = ours.nodes.read().expect("nodes read");
    let items = kubectl["items"].as_array().unwrap();
    assert_eq!(nodes.len(), items.len());
    for (n, item) in nodes.iter().zip(items) {
        assert_eq!(item["metadata"]["name"], json!(n.name));
        let conditions: Vec<(String, String)> = item["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap().to_owned(),
                    c["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let ours: Vec<(String, String)> = n
            .conditions
            .iter()
            .map(|c| (c.kind.clone(), c.status.clone()))
            .collect();
        assert_eq!(ours, conditions, "node {}", n.name);
        assert_eq!(n.disk_pressure, n.name == "node-2");
        assert_eq!(n.ready, Some(true));
        assert_eq!(n.allocatable.cpu_millis, 4000);

        // kubectl describe node: "Allocated resources" counts the same requests.
        let run = env.kubectl(&["describe", "node", &n.name]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let allocated = run
            .stdout
            .split("Allocated resources:")
            .nth(1)
            .unwrap_or_else(|| panic!("no allocated resources in\n{}", run.stdout));
        let cpu = allocated
            .lines()
            .find(|l| l.trim_start().starts_with("cpu"))
            .unwrap();
        let requested = cpu.split_whitespace().nth(1).unwrap();
        let millis = if let Some(m) = requested.strip_suffix('m') {
            m.parse::<u64>().unwrap()
        } else {
            requested.parse::<u64>().unwrap() * 1000
        };
        assert_eq!(n.requested.cpu_millis, millis, "node {}: {cpu}", n.name);
    }
    let total: u64 = nodes.iter().map(|n| n.requested.cpu_millis).sum();
    assert_eq!(total, 750, "three pods of 250m");
    let memory: u64 = nodes.iter().map(|n| n.limits.memory_bytes).sum();
    assert_eq!(memory, (3 * 512) << 20);
}

#[tokio::test]
async fn network_policies_and_events_newest_last_are_what_kubectl_lists() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    for name in ["deny-all", "allow-web"] {
        env.create(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        }))
        .await;
    }
    env.create(web("web", 2, "shop/web:1")).await;
    env.set_image(NS, "web", "shop/web:2").await;

    let run = env
        .kubectl(&["get", "networkpolicies", "-n", NS, "-o", "name"])
        .await;
    let mut kubectl: Vec<String> = run
        .stdout
        .lines()
        .map(|l| l.rsplit('/').next().unwrap().to_owned())
        .collect();
    kubectl.sort();
    let ours = inspect(&env, InspectOptions::default().with_events_limit(5)).await;
    assert_eq!(ours.network_policies.read().unwrap(), &kubectl);

    let events = kubectl_json(
        &env,
        &[
            "get",
            "events",
            "-n",
            NS,
            "--sort-by=.lastTimestamp",
            "-o",
            "json",
        ],
    )
    .await;
    let all = events["items"].as_array().unwrap();
    assert!(all.len() > 5, "the rollout made events: {}", all.len());
    let ours = ours.events.read().expect("events read");
    assert_eq!(ours.len(), 5, "the newest five");
    let stamps: Vec<_> = ours.iter().map(|e| e.at).collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted, "newest last");
    let newest = all
        .iter()
        .filter_map(|e| e["lastTimestamp"].as_str())
        .max()
        .unwrap();
    assert_eq!(
        ours.last().unwrap().at.unwrap(),
        newest.parse::<jiff::Timestamp>().unwrap()
    );
    assert!(matches!(ours_disks(&env).await, Section::Unsupported(_)));
}

async fn ours_disks(env: &Env) -> Section<Vec<ops_core::platform::DiskSpace>> {
    inspect(env, InspectOptions::default()).await.disks
}

#[tokio::test]
async fn nodes_forbidden_leave_the_rest_of_the_inspection_readable() {
    let env = Env::start().await;
    env.create(web("web", 1, "shop/web:1")).await;
    env.create(service("web", "web", &json!("http"))).await;
    env.cluster.fail_requests("GET", "/api/v1/nodes", 403, 10);
    let ours = inspect(&env, InspectOptions::default()).await;
    match &ours.nodes {
        Section::Unreadable(e) => assert!(e.contains("nodes"), "{e}"),
        other => panic!("nodes should be unreadable: {other:?}"),
    }
    assert_eq!(ours.services.read().unwrap()[0].ready.len(), 1);
    assert!(ours.quotas.read().unwrap().is_empty());
}
