//! Lockdown and export (issue 14 §lockdown, §evidence) against the real Docker engine: during
//! a lockdown the service cannot reach its peers, is not reachable by name, and its published
//! port stops answering; a later process (a new `ComposePlatform`) lists and lifts it; after
//! the lift everything answers by service name again and nothing was removed. The export
//! carries environment key names, never values.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::time::Duration;

use bollard::query_parameters::InspectContainerOptions;
use ops_core::platform::{ExecCommand, ExportOptions, LockdownId, LockdownOptions, LockdownScope};
use ops_core::{ErrorKind, Namespace, Platform as _, WorkloadRef};
use support::{Project, Spec};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CANARY: &str = "canary-3b7e19c4";

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("bounded")
}

/// `GET /health` from inside `container` to `host:8080`: true when it answers 200.
async fn reaches(p: &Project, from: &WorkloadRef, container: &str, host: &str) -> bool {
    let script = format!(
        "timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/8080 && printf \"GET /health HTTP/1.0\\r\\n\\r\\n\" >&3 && head -n1 <&3' | grep -q ' 200 '"
    );
    let out = p
        .platform
        .exec(
            &from.instance(container).unwrap(),
            &ExecCommand::new(["bash", "-c", &script])
                .unwrap()
                .with_timeout(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    out.success()
}

/// The published host port of 8080, if any.
async fn host_port(p: &Project, container: &str) -> Option<String> {
    let i = p
        .docker
        .inspect_container(container, None::<InspectContainerOptions>)
        .await
        .unwrap();
    i.network_settings?
        .ports?
        .get("8080/tcp")?
        .as_ref()?
        .first()?
        .host_port
        .clone()
}

/// `GET /health` from the host on `port`: true when it answers 200.
async fn answers(port: &str) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await?;
        s.write_all(b"GET /health HTTP/1.0\r\n\r\n").await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf).starts_with("HTTP/1.0 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), attempt).await,
        Ok(Ok(true))
    )
}

async fn healthy(p: &Project, w: &WorkloadRef) {
    p.platform
        .wait_healthy(w, Some(Duration::from_secs(60)))
        .await
        .unwrap();
}

/// `api` (port 8080 published) and `peer`, both healthy: their workloads and container names.
async fn api_and_peer(p: &Project) -> (WorkloadRef, WorkloadRef, String, String, String) {
    let api = p.service("api");
    let peer = p.service("peer");
    let api_id = p
        .add(
            "api",
            1,
            &Spec {
                publish: true,
                ..Spec::default()
            },
        )
        .await;
    p.add("peer", 1, &Spec::default()).await;
    healthy(p, &api).await;
    healthy(p, &peer).await;
    let api_c = format!("{}-api-1", p.name);
    let peer_c = format!("{}-peer-1", p.name);
    (api, peer, api_id, api_c, peer_c)
}

#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario: before, during and after"
)]
async fn a_locked_service_reaches_nothing_answers_nothing_and_a_later_process_puts_it_back() {
    bounded(Box::pin(async {
        let p = project_or_skip!("lock");
        let (api, peer, api_id, api_c, peer_c) = api_and_peer(&p).await;
        let port = host_port(&p, &api_c).await.expect("published");
        assert!(answers(&port).await, "published port answers before");
        assert!(
            reaches(&p, &peer, &peer_c, "api").await,
            "peer reaches api by name"
        );
        assert!(
            reaches(&p, &api, &api_c, "peer").await,
            "api reaches peer by name"
        );

        let id: LockdownId = format!("ld-{}", p.name).parse().unwrap();
        let scope = LockdownScope::workloads(vec![api.clone()]).unwrap();
        let lockdown = p
            .platform
            .lockdown(&scope, LockdownOptions::default().with_id(id.clone()))
            .await
            .unwrap();
        assert_eq!(
            lockdown.isolated,
            [format!("container {api_c} disconnected from {}", p.network)]
        );

        // Isolated: no published port, no way out, no way in, no name.
        assert_eq!(host_port(&p, &api_c).await, None);
        assert!(
            !answers(&port).await,
            "the old published port no longer answers"
        );
        assert!(!reaches(&p, &api, &api_c, "peer").await, "api reaches peer");
        assert!(
            !reaches(&p, &peer, &peer_c, "api").await,
            "peer reaches api"
        );
        // The peer itself is untouched.
        assert_eq!(host_port(&p, &peer_c).await, None);
        assert!(reaches(&p, &peer, &peer_c, "peer").await);

        // A later process finds it and lifts it.
        let later = ops_compose::ComposePlatform::builder().build().unwrap();
        let ns: Namespace = p.name.parse().unwrap();
        let listed = later.lockdowns(&ns).await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].id, id);
        assert_eq!(listed[0].scope, scope);
        let twice = later
            .lockdown(&scope, LockdownOptions::default().with_id(id.clone()))
            .await
            .unwrap_err();
        assert_eq!(twice.kind(), ErrorKind::Conflict);
        later.lift_lockdown(&ns, &id).await.unwrap();

        // Back: by service name both ways, on a published port, same container.
        assert!(
            reaches(&p, &peer, &peer_c, "api").await,
            "peer reaches api again"
        );
        assert!(
            reaches(&p, &api, &api_c, "peer").await,
            "api reaches peer again"
        );
        let port = host_port(&p, &api_c).await.expect("published again");
        assert!(
            answers(&port).await,
            "published port answers after the lift"
        );
        let inspect = p
            .docker
            .inspect_container(&api_c, None::<InspectContainerOptions>)
            .await
            .unwrap();
        assert_eq!(
            inspect.id.as_deref(),
            Some(api_id.as_str()),
            "same container"
        );
        let aliases = inspect.network_settings.unwrap().networks.unwrap()[&p.network]
            .aliases
            .clone()
            .unwrap_or_default();
        assert!(aliases.contains(&"api".to_owned()), "{aliases:?}");
        // Only opsbook's record network is gone; the project's network stays.
        assert!(later.lockdowns(&ns).await.unwrap().is_empty());
        let gone = p
            .docker
            .inspect_network(
                &format!("opsbook-lockdown-{id}"),
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await;
        assert!(gone.is_err(), "record network removed");
        p.docker
            .inspect_network(
                &p.network,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .expect("the project's network stays");
        let again = later.lift_lockdown(&ns, &id).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::NotFound);
    }))
    .await;
}

#[tokio::test]
async fn a_project_lockdown_survives_a_restart_and_the_export_has_env_keys_without_values() {
    bounded(Box::pin(async {
        let p = project_or_skip!("lockns");
        let api = p.service("api");
        p.add(
            "api",
            1,
            &Spec {
                env: vec![format!("DB_PASSWORD={CANARY}")],
                ..Spec::default()
            },
        )
        .await;
        p.add("peer", 1, &Spec::default()).await;
        healthy(&p, &api).await;
        let ns: Namespace = p.name.parse().unwrap();

        let export = p
            .platform
            .export(&ns, ExportOptions::default())
            .await
            .unwrap();
        let text = serde_json::to_string(&export).unwrap();
        assert!(!text.contains(CANARY), "an env value is in the export");
        assert!(text.contains("DB_PASSWORD=<redacted>"));
        let kinds = export.kinds();
        assert!(
            kinds.contains(&"Container") && kinds.contains(&"Network"),
            "{kinds:?}"
        );

        let scope = LockdownScope::namespace_wide(ns.clone());
        let lockdown = p
            .platform
            .lockdown(&scope, LockdownOptions::default())
            .await
            .unwrap();
        assert_eq!(lockdown.isolated.len(), 2, "{:?}", lockdown.isolated);
        // A restart during the lockdown does not bring a network back.
        let api_c = format!("{}-api-1", p.name);
        p.docker
            .restart_container(
                &api_c,
                Some(
                    bollard::query_parameters::RestartContainerOptionsBuilder::new()
                        .t(1)
                        .build(),
                ),
            )
            .await
            .unwrap();
        let nets = p
            .docker
            .inspect_container(&api_c, None::<InspectContainerOptions>)
            .await
            .unwrap()
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default();
        assert!(nets.is_empty(), "{nets:?}");
        let peer = p.service("peer");
        assert!(!reaches(&p, &peer, &format!("{}-peer-1", p.name), "api").await);
        p.platform.lift_lockdown(&ns, &lockdown.id).await.unwrap();
        assert!(reaches(&p, &peer, &format!("{}-peer-1", p.name), "api").await);
    }))
    .await;
}

#[tokio::test]
async fn emergency_lockdown_and_lift_lockdown_run_against_the_engine() {
    use std::sync::Arc;

    use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
    use ops_core::runbooks::{LockdownPlan, Targets, emergency_lockdown, lift_lockdown};
    use ops_core::testing::RecordingNotifier;

    bounded(Box::pin(async {
        let p = project_or_skip!("lockrb");
        let (api, peer, _, api_c, peer_c) = api_and_peer(&p).await;
        let notifier = Arc::new(RecordingNotifier::default());
        let ctx = RunContext::builder()
            .mode(Mode::Execute)
            .allow_volatile_journal()
            .approver(ApprovalPolicy::approve_all("oncall"))
            .notifier(Arc::clone(&notifier) as _)
            .build();
        let dir = tempfile::tempdir().unwrap();
        let plan = LockdownPlan::new(
            LockdownScope::workloads(vec![api.clone()]).unwrap(),
            dir.path(),
        );
        let t = Targets::new(Arc::clone(&p.platform) as _, api.clone());
        let report = emergency_lockdown(&ctx, &t, &plan).await.unwrap();
        assert_eq!(
            report.outcome,
            RunOutcome::Recovered,
            "{}",
            report.to_markdown()
        );
        assert!(!reaches(&p, &peer, &peer_c, "api").await);
        assert_eq!(host_port(&p, &api_c).await, None);

        let ns: Namespace = p.name.parse().unwrap();
        let later = Arc::new(ops_compose::ComposePlatform::builder().build().unwrap());
        let active = later.lockdowns(&ns).await.unwrap();
        assert_eq!(active.len(), 1);
        let id = active[0].id.clone();
        // The evidence: the locked container's log, checked by the real sha256sum.
        let bundle = dir.path().join(id.as_str());
        assert!(bundle.join(format!("logs/api/{api_c}.log")).is_file());
        let check = std::process::Command::new("sha256sum")
            .args(["-c", "--strict", "SHA256SUMS"])
            .current_dir(&bundle)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        );
        let sent = notifier.sent();
        assert_eq!(sent.len(), 2, "the page and the closing update");
        assert_eq!(
            sent[1].status,
            ops_core::incident::IncidentStatus::Monitoring,
            "a contained security incident is not declared resolved"
        );

        let t = Targets::new(later as _, api.clone());
        let lifted = lift_lockdown(&ctx, &t, &ns, &id).await.unwrap();
        assert_eq!(
            lifted.outcome,
            RunOutcome::Recovered,
            "{}",
            lifted.to_markdown()
        );
        assert!(reaches(&p, &peer, &peer_c, "api").await);
        let port = host_port(&p, &api_c).await.expect("published again");
        assert!(answers(&port).await);
    }))
    .await;
}
