//! `set_image` against the API server double, with the real kubectl as the oracle:
//! `kubectl set image` (and `--record`, which writes the change cause) and `KubePlatform`
//! act on identical Deployments in two namespaces; the requests they send and the objects
//! that result must be the same, and `kubectl rollout history` must show opsbook's revision
//! with its change cause.
//!
//! With `CI=true` these tests run, never skip: scripts/provision puts kubectl on the PATH.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use ops_core::platform::{ImageUpdate, RollbackOptions};
use ops_core::{ErrorKind, Platform as _};
use serde_json::{Value, json};
use support::{Env, comparable, deployment, kubectl_available, workload, writes};

const K: &str = "by-kubectl";
const O: &str = "by-opsbook";

fn state(env: &Env, ns: &str, name: &str) -> Value {
    let d = comparable(env.get("Deployment", ns, name));
    json!({"annotations": d["metadata"]["annotations"], "spec": d["spec"], "status": d["status"]})
}

fn image(env: &Env, ns: &str, name: &str) -> Value {
    env.get("Deployment", ns, name)["spec"]["template"]["spec"]["containers"][0]["image"].clone()
}

fn update(image: &str) -> ImageUpdate {
    ImageUpdate::new(image.parse().unwrap())
}

#[tokio::test]
async fn set_image_sends_kubectls_patch_records_the_cause_and_rolls_back() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    for ns in [K, O] {
        env.create(deployment(ns, "web", 2, "shop/web:1")).await;
    }
    let web = workload(O, "deployment", "web");

    // Without a change cause: the same strategic merge patch as `kubectl set image`.
    env.cluster.clear_requests();
    let run = env
        .kubectl(&["set", "image", "deployment/web", "app=shop/web:2", "-n", K])
        .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let change = env
        .platform
        .set_image(&web, update("shop/web:2"))
        .await
        .expect("set image");
    assert_eq!(change.container, "app");
    assert_eq!(change.from.as_deref(), Some("shop/web:1"));
    assert!(change.rollout_started);
    env.settle().await;
    let (k, o) = (writes(&env.cluster, K), writes(&env.cluster, O));
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].2, "application/strategic-merge-patch+json");
    assert_eq!(o, k, "same method, path, patch type and body as kubectl");
    assert_eq!(state(&env, O, "web"), state(&env, K, "web"));
    assert_eq!(image(&env, O, "web"), json!("shop/web:2"));

    // With a change cause: kubectl's `--record` puts it in the same patch.
    env.cluster.clear_requests();
    let run = env
        .kubectl(&[
            "set",
            "image",
            "deployment/web",
            "app=shop/web:3",
            "-n",
            K,
            "--record",
        ])
        .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let cause = env.get("Deployment", K, "web")["metadata"]["annotations"][ops_k8s::CHANGE_CAUSE]
        .as_str()
        .expect("kubectl recorded a change cause")
        .to_owned();
    let change = env
        .platform
        .set_image(
            &web,
            update("shop/web:3").with_change_cause(&cause).unwrap(),
        )
        .await
        .expect("set image with a cause");
    assert_eq!(change.from.as_deref(), Some("shop/web:2"));
    env.settle().await;
    assert_eq!(writes(&env.cluster, O), writes(&env.cluster, K));
    assert_eq!(state(&env, O, "web"), state(&env, K, "web"));

    // kubectl's history shows opsbook's revision and its cause; so does `revisions`.
    let run = env
        .kubectl(&["rollout", "history", "deployment/web", "-n", O])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = run
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some("3"))
        .unwrap_or_else(|| panic!("revision 3 in {}", run.stdout));
    assert!(row.contains(&cause), "{row:?} vs {cause:?}");
    let revisions = env.platform.revisions(&web).await.expect("revisions");
    assert_eq!(revisions[0].number, 3);
    assert!(revisions[0].current);
    assert_eq!(revisions[0].images, ["shop/web:3"]);
    assert_eq!(revisions[0].change_cause.as_deref(), Some(cause.as_str()));

    // Rollback returns to the previous image, as `kubectl rollout undo` does.
    env.cluster.clear_requests();
    let run = env
        .kubectl(&["rollout", "undo", "deployment/web", "-n", K])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    env.platform
        .rollback(&web, RollbackOptions::default())
        .await
        .expect("undo");
    env.settle().await;
    assert_eq!(writes(&env.cluster, O), writes(&env.cluster, K));
    assert_eq!(image(&env, O, "web"), json!("shop/web:2"));
    assert_eq!(state(&env, O, "web"), state(&env, K, "web"));

    // The image it already runs: nothing sent, no rollout.
    env.cluster.clear_requests();
    let same = env
        .platform
        .set_image(&web, update("shop/web:2"))
        .await
        .expect("same image");
    assert!(!same.rollout_started);
    assert!(writes(&env.cluster, O).is_empty());
}

#[tokio::test]
async fn a_container_that_is_not_there_or_not_named_is_refused_and_nothing_is_written() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    for ns in [K, O] {
        let mut d = deployment(ns, "web", 1, "shop/web:1");
        d["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "proxy", "image": "envoy:1"}));
        env.create(d).await;
    }
    let web = workload(O, "deployment", "web");
    env.cluster.clear_requests();
    let run = env
        .kubectl(&["set", "image", "deployment/web", "nope=shop/web:2", "-n", K])
        .await;
    let err = env
        .platform
        .set_image(&web, update("shop/web:2").in_container("nope").unwrap())
        .await
        .expect_err("no such container");
    assert_ne!(run.code, 0, "kubectl did not refuse: {}", run.stdout);
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.chain());
    let reason = err.detail().unwrap_or_default();
    assert!(
        run.stderr.contains(reason),
        "kubectl says {:?}, opsbook {reason:?}",
        run.stderr
    );
    let err = env
        .platform
        .set_image(&web, update("shop/web:2"))
        .await
        .expect_err("two containers, none named");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.chain().contains("app, proxy"), "{}", err.chain());
    assert!(writes(&env.cluster, K).is_empty() && writes(&env.cluster, O).is_empty());

    // The named one of two: the same patch as kubectl, `$setElementOrder` keeping both.
    let run = env
        .kubectl(&["set", "image", "deployment/web", "proxy=envoy:2", "-n", K])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    env.platform
        .set_image(&web, update("envoy:2").in_container("proxy").unwrap())
        .await
        .expect("named container");
    env.settle().await;
    assert_eq!(writes(&env.cluster, O), writes(&env.cluster, K));
    assert_eq!(state(&env, O, "web"), state(&env, K, "web"));
}
