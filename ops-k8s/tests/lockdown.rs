//! Lockdown and export (issue 14 §lockdown, §evidence) against the API server double, with the
//! real kubectl as the oracle: kubectl sees the labelled deny-all policies, a second
//! `KubePlatform` (a later process) lists and lifts them, the lift removes only opsbook's
//! policies, and the export is what `kubectl get -o json` shows minus the server's fields,
//! with secrets as key names only, and `kubectl apply` takes it back.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::time::Duration;

use ops_core::platform::{ExportOptions, LockdownId, LockdownOptions, LockdownScope};
use ops_core::{ErrorKind, Namespace, Platform as _};
use serde_json::{Value, json};
use support::{Env, comparable, deployment, kubectl_available, workload};

const NS: &str = "locked";
const CANARY: &str = "canary-5e0d9b71";

/// A platform built from the same kubeconfig: what `opsbook lift-lockdown` run later has.
async fn later_process(env: &Env) -> ops_k8s::KubePlatform {
    ops_k8s::KubePlatformBuilder::from_env()
        .kubeconfig(&env.kubeconfig)
        .context("double")
        .with_request_timeout(Duration::from_secs(10))
        .build()
        .await
        .unwrap()
}

fn json_of(run: &support::Run) -> Value {
    assert_eq!(run.code, 0, "kubectl failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn names(list: &Value) -> Vec<String> {
    let mut out: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

fn user_policy() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-web", "namespace": NS},
        "spec": {
            "podSelector": {"matchLabels": {"app": "api"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
        },
    })
}

#[tokio::test]
async fn a_workload_lockdown_is_a_labelled_deny_all_policy_kubectl_sees_and_a_later_process_lifts()
{
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    env.create(deployment(NS, "api", 2, "shop/api:1")).await;
    env.create(deployment(NS, "web", 1, "shop/web:1")).await;
    env.create(user_policy()).await;
    let api = workload(NS, "deployment", "api");
    let scope = LockdownScope::workloads(vec![api.clone()]).unwrap();
    let id: LockdownId = "ld-test-1".parse().unwrap();

    let lockdown = env
        .platform
        .lockdown(
            &scope,
            LockdownOptions::default()
                .with_id(id.clone())
                .with_reason("credential leak"),
        )
        .await
        .unwrap();
    assert_eq!(lockdown.id, id);
    assert_eq!(lockdown.scope, scope);
    assert!(
        lockdown.isolated.iter().any(|l| l.contains("allow-web")),
        "the user's allowing policy is named: {:?}",
        lockdown.isolated
    );

    // kubectl finds it by opsbook's labels, as the runbook's undo says.
    let selector = format!("app.kubernetes.io/managed-by=opsbook,opsbook.dev/lockdown={id}");
    let found = json_of(
        &env.kubectl(&[
            "get",
            "networkpolicy",
            "-l",
            &selector,
            "-n",
            NS,
            "-o",
            "json",
        ])
        .await,
    );
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    let spec = &items[0]["spec"];
    assert_eq!(spec["podSelector"], json!({"matchLabels": {"app": "api"}}));
    assert_eq!(spec["policyTypes"], json!(["Ingress", "Egress"]));
    assert!(
        spec.get("ingress").is_none() && spec.get("egress").is_none(),
        "{spec}"
    );

    // A later process lists it and lifts it.
    let later = later_process(&env).await;
    let ns: Namespace = NS.parse().unwrap();
    let listed = later.lockdowns(&ns).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].scope, scope);
    assert_eq!(listed[0].reason.as_deref(), Some("credential leak"));
    let undone = later.lift_lockdown(&ns, &id).await.unwrap();
    assert_eq!(undone.id, id);

    // Only opsbook's policy went; the user's policy and the workloads are untouched.
    let left = json_of(
        &env.kubectl(&["get", "networkpolicy", "-n", NS, "-o", "json"])
            .await,
    );
    assert_eq!(names(&left), ["allow-web"]);
    let deployments = json_of(
        &env.kubectl(&["get", "deployments", "-n", NS, "-o", "json"])
            .await,
    );
    assert_eq!(names(&deployments), ["api", "web"]);
    assert!(later.lockdowns(&ns).await.unwrap().is_empty());
    let again = later.lift_lockdown(&ns, &id).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::NotFound);
    // Never a delete of anything else.
    let deletes: Vec<String> = env
        .cluster
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path)
        .collect();
    assert_eq!(
        deletes,
        [format!(
            "/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies/opsbook-lockdown-{id}-0"
        )]
    );
}

#[tokio::test]
async fn a_namespace_lockdown_selects_every_pod_a_dry_run_makes_nothing_and_an_id_is_used_once() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    env.create(deployment(NS, "api", 1, "shop/api:1")).await;
    let ns: Namespace = NS.parse().unwrap();
    let scope = LockdownScope::namespace_wide(ns.clone());
    let id: LockdownId = "ld-ns".parse().unwrap();

    let mut dry = LockdownOptions::default().with_id(id.clone());
    dry.dry_run = true;
    env.platform.lockdown(&scope, dry).await.unwrap();
    let none = json_of(
        &env.kubectl(&["get", "networkpolicy", "-n", NS, "-o", "json"])
            .await,
    );
    assert!(names(&none).is_empty(), "a dry run made {none}");

    env.platform
        .lockdown(&scope, LockdownOptions::default().with_id(id.clone()))
        .await
        .unwrap();
    let found = json_of(
        &env.kubectl(&[
            "get",
            "networkpolicy",
            &format!("opsbook-lockdown-{id}"),
            "-n",
            NS,
            "-o",
            "json",
        ])
        .await,
    );
    assert_eq!(found["spec"]["podSelector"], json!({}));
    assert_eq!(
        found["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "opsbook"
    );

    let twice = env
        .platform
        .lockdown(&scope, LockdownOptions::default().with_id(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(twice.kind(), ErrorKind::Conflict);
    let listed = env.platform.lockdowns(&ns).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].scope, scope);

    // A workload that does not exist: nothing is made.
    let ghost = LockdownScope::workloads(vec![workload(NS, "deployment", "ghost")]).unwrap();
    let err = env
        .platform
        .lockdown(&ghost, LockdownOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(env.platform.lockdowns(&ns).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_policy_creation_removes_the_policies_already_made_and_nothing_else() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 1, "shop/api:1")).await;
    env.create(deployment(NS, "web", 1, "shop/web:1")).await;
    let ns: Namespace = NS.parse().unwrap();
    let id: LockdownId = "ld-clash".parse().unwrap();
    // Someone else's policy holds the name of the second policy: its creation is refused
    // (409) after the first was made.
    env.create(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": format!("opsbook-lockdown-{id}-1"), "namespace": NS},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }))
    .await;
    let scope = LockdownScope::workloads(vec![
        workload(NS, "deployment", "api"),
        workload(NS, "deployment", "web"),
    ])
    .unwrap();
    let err = env
        .platform
        .lockdown(&scope, LockdownOptions::default().with_id(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err:#}");
    assert!(env.platform.lockdowns(&ns).await.unwrap().is_empty());
    let left: Vec<String> = env
        .cluster
        .list("NetworkPolicy", NS)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        left,
        [format!("opsbook-lockdown-{id}-1")],
        "only the other policy is left"
    );
}

#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario: export, compare, apply again"
)]
async fn the_export_is_kubectls_object_minus_server_fields_with_secret_key_names_only_and_applies_again()
 {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    env.create(deployment(NS, "api", 1, "shop/api:1")).await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = json!({
        "apiVersion": "v1", "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
             "stringData": {"password": CANARY, "user": "app"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
             "data": {"LOG_LEVEL": "info"}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
             "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        ],
    });
    let file = dir.path().join("objects.json");
    std::fs::write(&file, manifests.to_string()).unwrap();
    // Applied with kubectl: the Secret's last-applied annotation holds the password.
    let applied = env
        .kubectl(&[
            "apply",
            "--validate=false",
            "-n",
            NS,
            "-f",
            file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    env.settle().await;

    let export = env
        .platform
        .export(&NS.parse().unwrap(), ExportOptions::default())
        .await
        .unwrap();
    let text = serde_json::to_string(&export).unwrap();
    assert!(!text.contains(CANARY), "the secret value is in the export");
    let kinds = export.kinds();
    for kind in ["ConfigMap", "Deployment", "Pod", "Secret", "Service"] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
    for o in &export.objects {
        let meta = &o.object["metadata"];
        for field in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
        ] {
            assert!(
                meta.get(field).is_none(),
                "{} {} keeps {field}",
                o.kind,
                o.name
            );
        }
        assert!(o.object.get("status").is_none(), "{} {}", o.kind, o.name);
    }
    let secret = export
        .objects
        .iter()
        .find(|o| o.kind == "Secret" && o.name == "db")
        .unwrap();
    assert_eq!(
        secret.object["metadata"]["annotations"][ops_k8s::REDACTED_KEYS],
        "password,user"
    );
    assert!(export.notes.iter().any(|n| n.contains("Secret db")));

    // kubectl's view of each object, minus what the server manages, is the export.
    for (kind, name) in [
        ("configmap", "settings"),
        ("deployment", "api"),
        ("service", "api"),
    ] {
        let mut seen = json_of(
            &env.kubectl(&["get", kind, name, "-n", NS, "-o", "json"])
                .await,
        );
        ops_k8s::strip_server_fields(&mut seen);
        let ours = export
            .objects
            .iter()
            .find(|o| o.kind.eq_ignore_ascii_case(kind) && o.name == name)
            .unwrap();
        assert_eq!(ours.object, seen, "{kind} {name}");
    }

    // The export applies again: into a fresh namespace, with kubectl, and the objects come
    // back the same.
    env.cluster
        .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "restored"}}))
        .unwrap();
    for o in &export.objects {
        if !["ConfigMap", "Deployment", "Service"].contains(&o.kind.as_str()) {
            continue;
        }
        let mut copy = o.object.clone();
        copy["metadata"]["namespace"] = json!("restored");
        let path = dir.path().join(o.file_name());
        std::fs::write(&path, copy.to_string()).unwrap();
        let run = env
            .kubectl(&[
                "apply",
                "--validate=false",
                "-n",
                "restored",
                "-f",
                path.to_str().unwrap(),
            ])
            .await;
        assert_eq!(run.code, 0, "{} {}: {}", o.kind, o.name, run.stderr);
    }
    env.settle().await;
    for (kind, name) in [
        ("configmap", "settings"),
        ("deployment", "api"),
        ("service", "api"),
    ] {
        let strip = |mut v: Value| {
            ops_k8s::strip_server_fields(&mut v);
            if let Some(a) = v["metadata"].as_object_mut() {
                a.remove("annotations");
            }
            comparable(v)
        };
        let original = strip(json_of(
            &env.kubectl(&["get", kind, name, "-n", NS, "-o", "json"])
                .await,
        ));
        let restored = strip(json_of(
            &env.kubectl(&["get", kind, name, "-n", "restored", "-o", "json"])
                .await,
        ));
        assert_eq!(original, restored, "{kind} {name}");
    }
}
