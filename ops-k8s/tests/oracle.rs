//! kubectl is the oracle: kubectl and `KubePlatform` act on identical objects in two
//! namespaces of the same API server double, and the tests compare what each sent (method,
//! path, patch type, body with timestamps aside), the objects that result, and the
//! rollout-status verdicts.
//!
//! With `CI=true` these tests run, never skip: scripts/provision puts kubectl on the PATH.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use ops_core::platform::{RestartOptions, RollbackOptions, ScaleOptions};
use ops_core::{ErrorKind, Platform as _};
use serde_json::{Value, json};
use support::{Env, comparable, deployment, kubectl_available, workload, writes};

const K: &str = "by-kubectl";
const O: &str = "by-opsbook";

/// kubectl failed, and opsbook refused with `kind` and kubectl's own words.
fn refused_alike(run: &support::Run, err: &ops_core::OpsError, kind: ErrorKind) {
    assert_ne!(run.code, 0, "kubectl did not refuse: {}", run.stdout);
    assert_eq!(err.kind(), kind, "{}", err.chain());
    let reason = err.detail().unwrap_or_default();
    assert!(
        !reason.is_empty() && run.stderr.contains(reason),
        "kubectl says {:?}, opsbook {reason:?}",
        run.stderr
    );
}

/// Neither tool wrote anything in its namespace.
fn nothing_written(env: &Env) {
    let (k, o) = (writes(&env.cluster, K), writes(&env.cluster, O));
    assert!(
        k.is_empty() && o.is_empty(),
        "kubectl wrote {k:?}, opsbook {o:?}"
    );
}

/// The same Deployment, rolled out, in both namespaces.
async fn twins(env: &Env, name: &str, image: &str) {
    for ns in [K, O] {
        env.create(deployment(ns, name, 2, image)).await;
    }
}

/// The Deployment's spec, annotations and status with identity and times removed.
fn deployment_state(env: &Env, ns: &str, name: &str) -> Value {
    let d = comparable(env.get("Deployment", ns, name));
    json!({"annotations": d["metadata"]["annotations"], "spec": d["spec"], "status": d["status"]})
}

#[tokio::test]
async fn rollout_restart_sends_kubectls_patch_and_ends_in_the_same_objects() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    twins(&env, "web", "shop/web:1").await;
    env.cluster.clear_requests();

    let run = env
        .kubectl(&["rollout", "restart", "deployment/web", "-n", K])
        .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    env.platform
        .rollout_restart(&workload(O, "deployment", "web"), RestartOptions::default())
        .await
        .expect("opsbook restart");
    env.settle().await;

    let by_kubectl = writes(&env.cluster, K);
    let by_opsbook = writes(&env.cluster, O);
    assert_eq!(by_kubectl.len(), 1, "{by_kubectl:?}");
    assert_eq!(
        by_opsbook, by_kubectl,
        "same method, path, patch type and body"
    );
    assert_eq!(by_opsbook[0].2, "application/strategic-merge-patch+json");
    assert_eq!(
        deployment_state(&env, O, "web"),
        deployment_state(&env, K, "web")
    );
    let annotation = &env.get("Deployment", O, "web")["spec"]["template"]["metadata"]["annotations"]
        [ops_k8s::RESTARTED_AT];
    let stamp = annotation.as_str().expect("annotation written");
    assert!(
        stamp.parse::<jiff::Timestamp>().is_ok(),
        "RFC 3339: {stamp}"
    );
    assert_eq!(
        env.get("Deployment", O, "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        json!("2")
    );
}

#[tokio::test]
async fn a_paused_deployment_is_refused_with_kubectls_reason() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    twins(&env, "web", "shop/web:1").await;
    // Two revisions before the pause, so that undo has one to go back to: a paused
    // Deployment never rolls a new template out, and without history kubectl and opsbook
    // refuse for another reason ("no rollout history found") before the paused check.
    for ns in [K, O] {
        env.set_image(ns, "web", "shop/web:2").await;
        env.cluster
            .modify("Deployment", ns, "web", |d| {
                d["spec"]["paused"] = json!(true);
            })
            .expect("paused");
    }
    env.cluster.clear_requests();
    let run = env
        .kubectl(&["rollout", "restart", "deployment/web", "-n", K])
        .await;
    let err = env
        .platform
        .rollout_restart(&workload(O, "deployment", "web"), RestartOptions::default())
        .await
        .expect_err("paused is refused");
    refused_alike(&run, &err, ErrorKind::Conflict);
    nothing_written(&env);

    // Undo of a paused Deployment: refused by both, with the same words.
    let run = env
        .kubectl(&["rollout", "undo", "deployment/web", "-n", K])
        .await;
    let err = env
        .platform
        .rollback(
            &workload(O, "deployment", "web"),
            RollbackOptions::default(),
        )
        .await
        .expect_err("paused is refused");
    refused_alike(&run, &err, ErrorKind::Conflict);
    nothing_written(&env);
}

#[tokio::test]
async fn a_restart_within_the_same_second_is_refused_not_sent_empty() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    twins(&env, "web", "shop/web:1").await;
    // Both tools read "now" themselves: each is tried on its own, right after a second begins,
    // with the annotation pinned to that second, until one attempt stays inside it (kubectl
    // alone can take most of a second on a loaded machine).
    let web = workload(O, "deployment", "web");
    let mut mine = None;
    let mut theirs = None;
    for _ in 0..30 {
        if mine.is_some() && theirs.is_some() {
            break;
        }
        let now = next_second().await;
        for ns in [K, O] {
            env.cluster
                .modify("Deployment", ns, "web", |d| {
                    d["spec"]["template"]["metadata"]["annotations"] =
                        json!({ops_k8s::RESTARTED_AT: now});
                })
                .expect("annotated");
        }
        if mine.is_none() {
            env.cluster.clear_requests();
            let result = env
                .platform
                .rollout_restart(&web, RestartOptions::default())
                .await;
            let written = writes(&env.cluster, O);
            if second() == now {
                mine = Some((result, written));
            }
        } else {
            let run = env
                .kubectl(&["rollout", "restart", "deployment/web", "-n", K])
                .await;
            if second() == now {
                theirs = Some(run);
            }
        }
    }
    let (Some((result, written)), Some(run)) = (mine, theirs) else {
        panic!("no attempt stayed within one second");
    };
    let err = result.expect_err("same second is refused");
    refused_alike(&run, &err, ErrorKind::Conflict);
    assert!(written.is_empty(), "no empty patch sent");
}

/// The current second, as the restart annotation writes it.
fn second() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Waits until a new second has just begun and returns it.
async fn next_second() -> String {
    let start = second();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let now = second();
        if now != start {
            return now;
        }
    }
}

#[tokio::test]
async fn rollout_undo_matches_kubectl_for_previous_given_and_current_revisions() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    twins(&env, "web", "shop/web:1").await;
    for ns in [K, O] {
        env.set_image(ns, "web", "shop/web:2").await;
        env.set_image(ns, "web", "shop/web:3").await;
    }
    let web = workload(O, "deployment", "web");

    // Previous revision (2).
    env.cluster.clear_requests();
    let run = env
        .kubectl(&["rollout", "undo", "deployment/web", "-n", K])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let change = env
        .platform
        .rollback(&web, RollbackOptions::default())
        .await
        .expect("undo");
    assert_eq!((change.from_revision, change.to_revision), (Some(3), 2));
    env.settle().await;
    let (k, o) = (writes(&env.cluster, K), writes(&env.cluster, O));
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].2, "application/json-patch+json");
    assert_eq!(o, k, "same JSON patch as kubectl");
    assert_eq!(
        deployment_state(&env, O, "web"),
        deployment_state(&env, K, "web")
    );

    // A given revision (1).
    env.cluster.clear_requests();
    let run = env
        .kubectl(&[
            "rollout",
            "undo",
            "deployment/web",
            "--to-revision=1",
            "-n",
            K,
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    env.platform
        .rollback(&web, RollbackOptions::default().to_revision(1))
        .await
        .expect("undo to 1");
    env.settle().await;
    assert_eq!(writes(&env.cluster, O), writes(&env.cluster, K));
    assert_eq!(
        deployment_state(&env, O, "web"),
        deployment_state(&env, K, "web")
    );
    let image =
        &env.get("Deployment", O, "web")["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(image, &json!("shop/web:1"));

    // Already at that template: kubectl skips, opsbook sends nothing either.
    let revisions = env.platform.revisions(&web).await.expect("revisions");
    let current = revisions.iter().find(|r| r.current).expect("a current one");
    env.cluster.clear_requests();
    let to = format!("--to-revision={}", current.number);
    let run = env
        .kubectl(&["rollout", "undo", "deployment/web", &to, "-n", K])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("skipped rollback"), "{}", run.stdout);
    let change = env
        .platform
        .rollback(&web, RollbackOptions::default().to_revision(current.number))
        .await
        .expect("skipped");
    assert_eq!(change.from_revision, Some(change.to_revision));
    nothing_written(&env);

    // An unknown revision: both refuse with the same words.
    let run = env
        .kubectl(&[
            "rollout",
            "undo",
            "deployment/web",
            "--to-revision=42",
            "-n",
            K,
        ])
        .await;
    let err = env
        .platform
        .rollback(&web, RollbackOptions::default().to_revision(42))
        .await
        .expect_err("unknown revision");
    refused_alike(&run, &err, ErrorKind::NotFound);
}

#[tokio::test]
async fn history_matches_kubectl_rollout_history() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    env.create(deployment(O, "web", 1, "shop/web:1")).await;
    env.set_image(O, "web", "shop/web:2").await;
    let run = env
        .kubectl(&["rollout", "history", "deployment/web", "-n", O])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let revisions = env
        .platform
        .revisions(&workload(O, "deployment", "web"))
        .await
        .expect("revisions");
    let numbers: Vec<u64> = revisions.iter().map(|r| r.number).collect();
    assert_eq!(numbers, [2, 1], "newest first");
    assert!(revisions[0].current && !revisions[1].current);
    assert_eq!(revisions[0].images, ["shop/web:2"]);
    assert!(revisions[0].created_at.is_some());
    for r in &revisions {
        let cause = r
            .change_cause
            .clone()
            .unwrap_or_else(|| "<none>".to_owned());
        let row = run
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&r.number.to_string()))
            .unwrap_or_else(|| panic!("revision {} in {}", r.number, run.stdout));
        assert!(row.contains(&cause), "{row:?} vs {cause:?}");
    }
}

#[tokio::test]
async fn scale_goes_through_the_scale_subresource_with_kubectls_precondition() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    twins(&env, "web", "shop/web:1").await;
    env.cluster.clear_requests();
    let run = env
        .kubectl(&[
            "scale",
            "deployment/web",
            "--current-replicas=2",
            "--replicas=4",
            "-n",
            K,
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let change = env
        .platform
        .scale(
            &workload(O, "deployment", "web"),
            4,
            ScaleOptions::default().expecting(2),
        )
        .await
        .expect("scale");
    assert_eq!((change.from, change.to), (2, 4));
    env.settle().await;
    let (k, o) = (writes(&env.cluster, K), writes(&env.cluster, O));
    assert_eq!(o.len(), 1);
    assert_eq!(
        (o[0].0.as_str(), o[0].1.as_str()),
        ("PUT", "/apis/apps/v1/namespaces/NS/deployments/web/scale")
    );
    // kubectl sends its PUT without a Content-Type (the server reads it as JSON); the
    // method, path and body are what matter for an update.
    let strip_type = |w: &[(String, String, String, Value)]| -> Vec<(String, String, Value)> {
        w.iter()
            .map(|(m, p, _, b)| (m.clone(), p.clone(), b.clone()))
            .collect()
    };
    assert_eq!(
        strip_type(&o),
        strip_type(&k),
        "same request as kubectl --current-replicas"
    );
    assert_eq!(
        deployment_state(&env, O, "web"),
        deployment_state(&env, K, "web")
    );

    // A stale expectation: both refuse with kubectl's words and change nothing.
    env.cluster.clear_requests();
    let run = env
        .kubectl(&[
            "scale",
            "deployment/web",
            "--current-replicas=3",
            "--replicas=1",
            "-n",
            K,
        ])
        .await;
    let err = env
        .platform
        .scale(
            &workload(O, "deployment", "web"),
            1,
            ScaleOptions::default().expecting(3),
        )
        .await
        .expect_err("stale");
    refused_alike(&run, &err, ErrorKind::Conflict);
    nothing_written(&env);
}

/// A hand-crafted state, frozen, judged by `kubectl rollout status --watch=false` and by
/// opsbook: same exit (0 / non-zero), same message.
async fn same_verdict(env: &Env, obj: Value, status: Value, generation: i64) {
    let kind = obj["kind"].as_str().expect("kind").to_owned();
    let name = obj["metadata"]["name"].as_str().expect("name").to_owned();
    env.cluster.create(obj).expect("created");
    env.cluster
        .replace_status(&kind, O, &name, status)
        .expect("status");
    env.cluster
        .set_generation(&kind, O, &name, generation)
        .expect("generation");
    let target = format!("{}/{name}", kind.to_lowercase());
    let run = env
        .kubectl(&["rollout", "status", &target, "--watch=false", "-n", O])
        .await;
    let mine = env
        .platform
        .rollout_status(&workload(O, &kind.to_lowercase(), &name))
        .await;
    match mine {
        Ok(s) if !s.failed => {
            assert_eq!(run.code, 0, "{target}: kubectl {}", run.stderr);
            assert_eq!(run.stdout.trim(), s.message, "{target}");
        }
        Ok(s) => {
            assert_ne!(run.code, 0, "{target}: kubectl says {}", run.stdout);
            assert!(
                run.stderr.contains(&s.message),
                "{target}: {:?} vs {:?}",
                run.stderr,
                s.message
            );
        }
        Err(e) => {
            assert_ne!(run.code, 0, "{target}: kubectl says {}", run.stdout);
            assert!(
                run.stderr.contains(e.detail().unwrap_or_default()),
                "{target}: {:?} vs {:?}",
                run.stderr,
                e.detail()
            );
        }
    }
}

#[tokio::test]
async fn rollout_status_verdicts_match_kubectl() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    env.cluster.pause_controllers();
    let d = |name: &str| deployment(O, name, 3, "shop/web:1");
    let cases = [
        (
            "progressing",
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 1}),
            2,
        ),
        (
            "old-pending",
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}),
            2,
        ),
        (
            "unavailable",
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
            2,
        ),
        (
            "complete",
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
            2,
        ),
        (
            "unobserved",
            json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
            2,
        ),
        (
            "deadline",
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "took too long"}]}),
            2,
        ),
    ];
    for (name, status, generation) in cases {
        same_verdict(&env, d(name), status, generation).await;
    }
    // A paused Deployment: kubectl judges it by the same counts.
    let mut paused = d("paused");
    paused["spec"]["paused"] = json!(true);
    same_verdict(&env, paused, json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 1}), 1).await;

    // StatefulSets: partitioned waiting and complete, plain rolling update, OnDelete refused.
    let sts = |name: &str, partition: Option<i64>, strategy: &str| {
        let mut s = support::statefulset(O, name, 3, "shop/db:1");
        s["spec"]["updateStrategy"] = match partition {
            Some(p) => json!({"type": strategy, "rollingUpdate": {"partition": p}}),
            None => json!({"type": strategy}),
        };
        s
    };
    same_verdict(&env, sts("part-wait", Some(1), "RollingUpdate"),
        json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 1, "currentRevision": "a", "updateRevision": "b"}), 2).await;
    same_verdict(&env, sts("part-done", Some(1), "RollingUpdate"),
        json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 2, "currentRevision": "a", "updateRevision": "b"}), 2).await;
    same_verdict(&env, sts("not-ready", Some(0), "RollingUpdate"),
        json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 1, "updatedReplicas": 3, "currentRevision": "b", "updateRevision": "b"}), 2).await;
    same_verdict(
        &env,
        sts("on-delete", None, "OnDelete"),
        json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3}),
        2,
    )
    .await;

    // DaemonSets: waiting for updates, for availability, complete, OnDelete refused.
    let ds = |name: &str, strategy: &str| {
        let mut d = support::daemonset(O, name, "shop/agent:1");
        d["spec"]["updateStrategy"] = json!({"type": strategy});
        d
    };
    same_verdict(&env, ds("ds-updating", "RollingUpdate"),
        json!({"observedGeneration": 2, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": 3, "updatedNumberScheduled": 1, "numberAvailable": 3}), 2).await;
    same_verdict(&env, ds("ds-unavailable", "RollingUpdate"),
        json!({"observedGeneration": 2, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}), 2).await;
    same_verdict(&env, ds("ds-done", "RollingUpdate"),
        json!({"observedGeneration": 2, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}), 2).await;
    same_verdict(&env, ds("ds-on-delete", "OnDelete"),
        json!({"observedGeneration": 2, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": 3}), 2).await;
}
